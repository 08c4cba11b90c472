//! Seeded normal deviates for the initializers.

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

/// Standard normal deviates from a seeded ChaCha8 stream, by the Box-Muller transform (each
/// pair of uniforms gives two deviates; the second is kept for the next call).
///
/// Box-Muller rather than a faster ziggurat: initialization draws at most a few million
/// numbers, and the transform is exact up to the rounding of `ln`, `sqrt`, `cos` and `sin`,
/// with no tables to get wrong.
pub(crate) struct Normal {
    rng: ChaCha8Rng,
    spare: Option<f64>,
}

impl Normal {
    pub(crate) fn new(seed: u64) -> Normal {
        Normal {
            rng: ChaCha8Rng::seed_from_u64(seed),
            spare: None,
        }
    }

    /// One N(0, 1) deviate.
    pub(crate) fn sample(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        // u1 in (0, 1] so that ln(u1) is finite; u2 in [0, 1).
        let u1 = 1.0 - self.rng.random::<f64>();
        let u2 = self.rng.random::<f64>();
        let radius = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        self.spare = Some(radius * angle.sin());
        radius * angle.cos()
    }
}

#[cfg(test)]
mod tests {
    use super::Normal;

    #[test]
    fn moments_are_standard_normal() {
        let mut normal = Normal::new(7);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| normal.sample()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let within_one = xs.iter().filter(|x| x.abs() < 1.0).count() as f64 / n as f64;
        // Standard errors: mean 0.0022, variance 0.0032, P(|x| < 1) 0.001.
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "variance {var}");
        assert!(
            (within_one - 0.6827).abs() < 0.005,
            "P(|x| < 1) = {within_one}"
        );
    }

    #[test]
    fn same_seed_same_stream() {
        let (mut a, mut b, mut c) = (Normal::new(1), Normal::new(1), Normal::new(2));
        let xa: Vec<f64> = (0..5).map(|_| a.sample()).collect();
        let xb: Vec<f64> = (0..5).map(|_| b.sample()).collect();
        let xc: Vec<f64> = (0..5).map(|_| c.sample()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }
}
