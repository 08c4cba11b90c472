//! Unit tests of the kernels on every available ISA. Tests whose names start with `miri_` are
//! small enough for Miri, which is where CI executes the AVX-512 kernels on machines without
//! AVX-512 (Miri answers feature detection from `-C target-feature`). Miri perturbs the last
//! bits of f64 `exp`/`ln`, so comparisons with the reference there use tolerances; the purely
//! arithmetic kernels are compared bit for bit.

use super::generic::{Z_SATURATES_TO_ONE, Z_SATURATES_TO_ZERO, nan_to_num};
use super::*;

fn all() -> Vec<Kernels> {
    Isa::available()
        .into_iter()
        .map(|isa| Kernels::for_isa(isa).unwrap())
        .collect()
}

/// Deterministic values in `[-scale, scale]`, with some exact zeros and halves.
fn values(n: usize, seed: u32, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let h = (i as u32 ^ seed)
                .wrapping_mul(2_654_435_761)
                .rotate_left(13);
            match h % 11 {
                0 => 0.0,
                1 => 0.5,
                _ => (h >> 8) as f32 / (1u32 << 24) as f32 * 2.0 * scale - scale,
            }
        })
        .collect()
}

fn close(got: f32, want: f32, rel: f32) -> bool {
    got == want || (got - want).abs() <= rel * want.abs().max(f32::MIN_POSITIVE)
}

#[test]
fn miri_every_kernel_every_isa_small() {
    for k in all() {
        let isa = k.isa();
        // Lengths around every vector width: 0, 1, a partial vector, whole vectors + tails.
        for cols in [1usize, 3, 10, 17] {
            for rows in [0usize, 1, 3] {
                let n = rows * cols;
                let bias = values(cols, 7, 3.0);
                // |z| <= 33 stays below network2's saturation at 36.74 (tested separately).
                let z0 = values(n, 1, 30.0);
                let (mut z, mut a) = (z0.clone(), vec![f32::NAN; n]);
                k.bias_sigmoid(&mut z, &mut a, &bias).unwrap();
                let (mut zr, mut ar) = (z0.clone(), vec![0.0; n]);
                reference::bias_sigmoid(&mut zr, &mut ar, &bias);
                assert_eq!(z, zr, "{isa} z");
                for (g, w) in a.iter().zip(&ar) {
                    assert!(close(*g, *w, 1e-5), "{isa} sigmoid {g} vs {w}");
                }

                let labels: Vec<u8> = (0..rows).map(|r| ((r * 7) % cols) as u8).collect();
                let mut d = vec![f32::NAN; n];
                let mut dr = vec![0.0; n];
                k.cross_entropy_delta(&a, &labels, &mut d).unwrap();
                reference::cross_entropy_delta(&a, &labels, &mut dr);
                assert_eq!(d, dr, "{isa} ce delta");
                k.quadratic_delta(&a, &labels, &mut d).unwrap();
                reference::quadratic_delta(&a, &labels, &mut dr);
                assert_eq!(d, dr, "{isa} quadratic delta");
                k.sigmoid_prime_mul(&mut d, &a).unwrap();
                reference::sigmoid_prime_mul(&mut dr, &a);
                assert_eq!(d, dr, "{isa} sigmoid'");

                let (mut rc, mut rcr) = (vec![f64::NAN; rows], vec![0.0; rows]);
                let total = k.cross_entropy_cost(&z, &labels, &mut rc).unwrap();
                let total_r = reference::cross_entropy_cost(&z, &labels, &mut rcr);
                assert!(
                    (total - total_r).abs() <= 1e-5 * total_r.abs() + 1e-6,
                    "{isa}"
                );
                let total = k.quadratic_cost(&a, &labels, &mut rc).unwrap();
                let total_r = reference::quadratic_cost(&a, &labels, &mut rcr);
                assert_eq!(total, total_r, "{isa} quadratic cost");

                let mut sums = vec![f32::NAN; cols];
                let mut sums_r = vec![0.0; cols];
                k.column_sums(&z, rows, cols, &mut sums).unwrap();
                reference::column_sums(&z, rows, cols, &mut sums_r);
                assert_eq!(sums, sums_r, "{isa} column sums");

                let (mut w, mut wr) = (z.clone(), z.clone());
                k.sgd_l2_update(&mut w, &a, 0.999, 0.05).unwrap();
                reference::sgd_l2_update(&mut wr, &a, 0.999, 0.05);
                assert_eq!(w, wr, "{isa} l2 step");
                k.sgd_update(&mut w, &a, 0.05).unwrap();
                reference::sgd_update(&mut wr, &a, 0.05);
                assert_eq!(w, wr, "{isa} step");
            }
        }
    }
}

#[test]
fn miri_exp_ln_special_values() {
    let x = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        88.72,
        88.73,
        89.5,
        1e30,
        f32::INFINITY,
        -87.0,
        -100.0,
        -103.0,
        -104.5,
        -1e30,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MIN_POSITIVE,
        1e-45,
        f32::MAX,
    ];
    for k in all() {
        let isa = k.isa();
        let mut e = vec![0.0; x.len()];
        k.exp(&x, &mut e).unwrap();
        for (&x, &e) in x.iter().zip(&e) {
            let want = reference::exp(x);
            if want.is_nan() {
                assert!(e.is_nan(), "{isa} exp({x}) = {e}");
            } else if want == 0.0 || want.is_infinite() {
                assert_eq!(e, want, "{isa} exp({x})");
            } else {
                // Subnormal results are within an ulp of the subnormal grid.
                let err = (e - want).abs();
                assert!(
                    err <= 3e-7 * want || err <= 1.5e-45,
                    "{isa} exp({x}) = {e}, want {want}"
                );
            }
        }
        assert_eq!(e[0], 1.0);
        assert_eq!(e[1], 1.0);

        let mut l = vec![0.0; x.len()];
        k.ln(&x, &mut l).unwrap();
        for (&x, &l) in x.iter().zip(&l) {
            let want = reference::ln(x);
            if want.is_nan() {
                assert!(l.is_nan(), "{isa} ln({x}) = {l}");
            } else if want.is_infinite() || want == 0.0 {
                assert_eq!(l, want, "{isa} ln({x})");
            } else {
                assert!(close(l, want, 3e-7), "{isa} ln({x}) = {l}, want {want}");
            }
        }
    }
}

#[test]
fn miri_sigmoid_saturates_safely() {
    let z = [
        0.0,
        -0.0,
        20.0,
        100.0,
        1e30,
        f32::INFINITY,
        -20.0,
        -100.0,
        -200.0,
        -1e30,
        f32::NEG_INFINITY,
        f32::NAN,
    ];
    for k in all() {
        let isa = k.isa();
        let (mut zz, mut a) = (z.to_vec(), vec![0.0; z.len()]);
        k.bias_sigmoid(&mut zz, &mut a, &[0.0]).unwrap();
        assert_eq!(&a[..6], &[0.5, 0.5, 1.0, 1.0, 1.0, 1.0], "{isa}");
        // e^-20 and e^-100 keep their relative accuracy; e^-200 underflows.
        assert!(close(a[6], 2.061_153_6e-9, 1e-6), "{isa} {}", a[6]);
        assert!(
            a[7] > 0.0 && (a[7] - reference::sigmoid(-100.0)).abs() <= 1.5e-45,
            "{isa}"
        );
        assert_eq!(&a[8..11], &[0.0, 0.0, 0.0], "{isa}");
        assert!(a[11].is_nan(), "{isa}");
    }
}

#[test]
fn miri_cross_entropy_cost_matches_nan_to_num() {
    let big = f64::MAX;
    // (z, label column, expected cost) for a 1-column batch... with 2 columns so both y = 0
    // and y = 1 appear: row cost = term(z0, y0) + term(z1, y1).
    let cases: [([f32; 2], u8, f64); 6] = [
        // a = 1 exactly (f64) for the labelled unit: -1*log(1) - 0*log(0) = nan -> 0; the
        // other unit with a = 1 and y = 0: -log(0) = inf -> MAX.
        ([40.0, 40.0], 1, big),
        // Both a = 0 exactly: y = 1 gives -log(0) = inf -> MAX; y = 0 gives 0*log(0) -> 0.
        ([-800.0, -800.0], 0, big),
        // a = 1 for y = 1 and a = 0 for y = 0: both nan -> 0, a perfect (saturated) answer.
        ([-800.0, 40.0], 1, 0.0),
        // Two MAX terms overflow in the sum, as numpy's np.sum does.
        ([40.0, -800.0], 1, f64::INFINITY),
        // Not saturated in f64 (z = 30 < 36.74), though a = 1 in f32: finite, = softplus.
        ([30.0, 0.0], 1, 30.0 + 2f64.ln()),
        // NaN contributes 0.
        ([f32::NAN, 0.0], 1, 2f64.ln()),
    ];
    for k in all() {
        for (z, label, want) in cases {
            let mut rc = [0.0];
            let total = k.cross_entropy_cost(&z, &[label], &mut rc).unwrap();
            assert_eq!(total, rc[0]);
            let reference = reference::cross_entropy_cost(&z, &[label], &mut [0.0]);
            if want.is_finite() && want < big && want > 0.0 {
                assert!(
                    (total - want).abs() <= 1e-6 * want,
                    "{} {z:?}: {total}",
                    k.isa()
                );
                assert!((reference - want).abs() <= 1e-12 * want);
            } else {
                assert_eq!(total, want, "{} {z:?}", k.isa());
                assert_eq!(reference, want, "{z:?}");
            }
        }
    }
}

#[test]
fn saturation_thresholds_are_network2s() {
    let one = |z: f32| reference::sigmoid_f64(z) == 1.0;
    let zero = |z: f32| reference::sigmoid_f64(z) == 0.0;
    let down = |z: f32| f32::from_bits(z.to_bits() - 1);
    assert!(one(Z_SATURATES_TO_ONE) && !one(down(Z_SATURATES_TO_ONE)));
    // For negative z, `to_bits() - 1` moves toward zero.
    assert!(zero(Z_SATURATES_TO_ZERO) && !zero(down(Z_SATURATES_TO_ZERO)));
    assert_eq!(nan_to_num(f64::NAN), 0.0);
    assert_eq!(nan_to_num(f64::INFINITY), f64::MAX);
    assert_eq!(nan_to_num(f64::NEG_INFINITY), f64::MIN);
}

#[test]
fn miri_shape_errors_write_nothing() {
    for k in all() {
        let mut z = vec![1.0; 6];
        let mut a = vec![7.0; 6];
        assert!(matches!(
            k.bias_sigmoid(&mut z, &mut a, &[0.0; 4]),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(k.bias_sigmoid(&mut z, &mut a[..5], &[0.0; 3]).is_err());
        assert!(k.bias_sigmoid(&mut z, &mut a, &[]).is_err());
        assert!(k.bias_sigmoid(&mut [], &mut [], &[]).is_ok());
        assert_eq!((z.as_slice(), a.as_slice()), (&[1.0; 6][..], &[7.0; 6][..]));

        let mut d = vec![7.0; 6];
        assert!(matches!(
            k.cross_entropy_delta(&z, &[0, 3], &mut d),
            Err(Error::InvalidView { .. })
        ));
        assert!(k.cross_entropy_delta(&z, &[0, 1, 2, 3], &mut d).is_err());
        assert!(k.quadratic_delta(&z, &[0, 1], &mut d[..3]).is_err());
        assert!(k.quadratic_delta(&z, &[], &mut d).is_err());
        assert_eq!(d, [7.0; 6]);
        assert!(k.cross_entropy_cost(&z, &[0, 1], &mut [0.0]).is_err());
        assert!(k.quadratic_cost(&z, &[0, 1, 1], &mut [0.0; 3]).is_ok());
        assert!(k.sigmoid_prime_mul(&mut d, &z[1..]).is_err());
        assert!(k.sgd_l2_update(&mut d, &z[1..], 1.0, 1.0).is_err());
        assert!(k.sgd_update(&mut d[1..], &z, 1.0).is_err());
        assert!(k.column_sums(&z, 2, 3, &mut d[..2]).is_err());
        assert!(k.column_sums(&z, 3, 3, &mut d[..3]).is_err());
        assert!(k.column_sums(&z, usize::MAX, 2, &mut d[..2]).is_err());
        assert!(k.exp(&z, &mut d[..5]).is_err());
        assert!(k.ln(&z[..5], &mut d).is_err());
        assert_eq!(d, [7.0; 6]);
    }
}

#[test]
fn label_error_names_the_row() {
    let k = Kernels::for_isa(Isa::Scalar).unwrap();
    let err = k
        .cross_entropy_delta(&[0.0; 20], &[1, 4, 10, 3], &mut [0.0; 20])
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("label 10 of row 2"), "{text}");
    assert!(text.contains("4 x 5"), "{text}");
}
