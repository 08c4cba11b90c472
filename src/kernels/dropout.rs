//! Inverted dropout on hidden layers: reproducible masks from a counter-based hash, applied
//! by fused kernels.
//!
//! The keep/drop decision of unit `unit` of example row `row` of hidden layer `layer` at
//! training step `step` is a pure function of `(seed, step, layer, row, unit)` and the rate:
//! a SplitMix64-style mix of the counters ([`Dropout::keep`]). No generator state is carried
//! from one element to the next, so the masks are the same bits whatever the thread count,
//! the ISA or the order in which the elements are visited.
//!
//! A kept unit is scaled by `1 / (1 - p)` (the f32 nearest to it, [`Dropout::scale`]), a
//! dropped one multiplied by 0, so that the expected activation is unchanged and evaluation
//! needs no correction.

use std::marker::PhantomData;

use super::generic::{Derivative, Kernel, Relu, Sigmoid, Tanh};
use super::{Activation, Kernels, check_same, softmax_not_elementwise};
use crate::error::{Error, Result};
use crate::simd::{MAX_LANES, Vector};

/// The golden-ratio increment of SplitMix64.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Separates the dropout streams from any other use of the same seed ("dropout\0").
const DOMAIN: u64 = 0x6472_6f70_6f75_7400;

/// SplitMix64's output function (Stafford's "mix13"): a bijection of `u64` in which every
/// input bit affects every output bit.
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Folds one counter into a key.
#[inline(always)]
fn absorb(key: u64, counter: u64) -> u64 {
    mix(key ^ counter.wrapping_add(1).wrapping_mul(GOLDEN))
}

/// The hash of one unit from its row's key: element `unit` of the SplitMix64 stream whose
/// state starts at `row_key`.
#[inline(always)]
fn unit_hash(row_key: u64, unit: u64) -> u64 {
    mix(row_key.wrapping_add(unit.wrapping_add(1).wrapping_mul(GOLDEN)))
}

/// Inverted dropout of rate `p` with a seed: which units are kept, and their scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    p: f32,
    seed: u64,
    /// A unit is kept when the top 32 bits of its hash are `>= threshold`
    /// (`round_down(p 2^32)`), so with probability `1 - threshold / 2^32`.
    threshold: u64,
    scale: f32,
}

impl Dropout {
    /// Dropout of rate `p` (each unit dropped with probability `p`) with masks seeded by
    /// `seed`. `p = 0` keeps every unit with scale 1.
    ///
    /// # Errors
    ///
    /// [`Error::BadOption`] (option `dropout`) unless `p` is a number in `[0, 1)`.
    pub fn new(p: f32, seed: u64) -> Result<Dropout> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::BadOption {
                option: "dropout",
                problem: format!("the dropout rate must be a number in [0, 1), got {p}"),
            });
        }
        Ok(Dropout {
            p,
            seed,
            // p < 1, so the product is below 2^32; both conversions are exact or truncate.
            threshold: (f64::from(p) * 4_294_967_296.0) as u64,
            scale: (1.0 / (1.0 - f64::from(p))) as f32,
        })
    }

    /// The rate.
    pub fn rate(&self) -> f32 {
        self.p
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The factor of a kept unit: `1 / (1 - p)` rounded once to f32.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// The key of one layer at one step, from which each row's key is derived.
    fn layer_key(&self, step: u64, layer: usize) -> u64 {
        absorb(absorb(mix(self.seed ^ DOMAIN), step), layer as u64)
    }

    /// Whether unit `unit` of example row `row` (within the mini-batch) of hidden layer
    /// `layer` (numbered as in the README: 1 is the first hidden layer) is kept at training
    /// step `step` (counted from 0 by the trainer).
    pub fn keep(&self, step: u64, layer: usize, row: usize, unit: usize) -> bool {
        let row_key = absorb(self.layer_key(step, layer), row as u64);
        (unit_hash(row_key, unit as u64) >> 32) >= self.threshold
    }

    /// The mask value of a unit: [`Dropout::scale`] if it is kept ([`Dropout::keep`]), else 0.
    pub fn mask(&self, step: u64, layer: usize, row: usize, unit: usize) -> f32 {
        if self.keep(step, layer, row, unit) {
            self.scale
        } else {
            0.0
        }
    }
}

/// Scalar versions of the kernels, the specification the SIMD versions are tested against.
pub mod reference {
    use super::Dropout;

    /// [`super::Kernels::dropout`], one element at a time.
    ///
    /// # Panics
    ///
    /// If the lengths differ or are not a multiple of `cols`.
    pub fn dropout(
        d: &Dropout,
        step: u64,
        layer: usize,
        cols: usize,
        a: &mut [f32],
        undropped: &mut [f32],
        mask: &mut [f32],
    ) {
        assert!(a.len() == undropped.len() && a.len() == mask.len());
        assert!(cols > 0 && a.len().is_multiple_of(cols));
        for i in 0..a.len() {
            let m = d.mask(step, layer, i / cols, i % cols);
            undropped[i] = a[i];
            mask[i] = m;
            a[i] *= m;
        }
    }

    /// [`super::Kernels::dropout_prime_mul`]: `delta = (delta f'(undropped)) mask`, with `f`
    /// named as in [`crate::kernels::reference::activation_prime_mul`].
    pub fn dropout_prime_mul(f: &str, delta: &mut [f32], undropped: &[f32], mask: &[f32]) {
        crate::kernels::reference::activation_prime_mul(f, delta, undropped);
        for (d, m) in delta.iter_mut().zip(mask) {
            *d *= m;
        }
    }
}

/// The forward dropout pass over a `rows x cols` activation matrix.
///
/// Invariants: `a`, `undropped` and `mask` have the same length, a multiple of `cols`, and
/// `cols > 0`.
struct DropoutPass<'a> {
    a: &'a mut [f32],
    undropped: &'a mut [f32],
    mask: &'a mut [f32],
    cols: usize,
    layer_key: u64,
    threshold: u64,
    scale: f32,
}

impl DropoutPass<'_> {
    /// Fills `out[..n]` with the mask values of units `c0..c0 + n` of a row.
    #[inline(always)]
    fn masks(&self, row_key: u64, c0: usize, n: usize, out: &mut [f32; MAX_LANES]) {
        for (j, m) in out.iter_mut().enumerate().take(n) {
            let keep = (unit_hash(row_key, (c0 + j) as u64) >> 32) >= self.threshold;
            *m = if keep { self.scale } else { 0.0 };
        }
    }
}

impl Kernel for DropoutPass<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let cols = self.cols;
        let rows = self.a.len() / cols;
        let a = self.a.as_mut_ptr();
        let und = self.undropped.as_mut_ptr();
        let mk = self.mask.as_mut_ptr();
        let mut lanes = [0.0f32; MAX_LANES];
        for r in 0..rows {
            let row_key = absorb(self.layer_key, r as u64);
            let base = r * cols;
            let mut c = 0;
            // SAFETY: the ISA is the caller's contract; every access is in row r, below
            // base + cols <= len of all three slices (whole vectors while c + LANES <= cols,
            // then exactly cols - c lanes), and `lanes` holds MAX_LANES >= LANES values.
            unsafe {
                while c + V::LANES <= cols {
                    self.masks(row_key, c, V::LANES, &mut lanes);
                    let m = V::load(lanes.as_ptr());
                    let x = V::load(a.add(base + c));
                    x.store(und.add(base + c));
                    m.store(mk.add(base + c));
                    x.mul(m).store(a.add(base + c));
                    c += V::LANES;
                }
                if c < cols {
                    let n = cols - c;
                    self.masks(row_key, c, n, &mut lanes);
                    let m = V::load_partial(lanes.as_ptr(), n);
                    let x = V::load_partial(a.add(base + c), n);
                    x.store_partial(und.add(base + c), n);
                    m.store_partial(mk.add(base + c), n);
                    x.mul(m).store_partial(a.add(base + c), n);
                }
            }
        }
    }
}

/// `delta = (delta * F'(undropped)) * mask`.
///
/// Invariant: the three slices have the same length.
struct DropoutPrimeMul<'a, F> {
    delta: &'a mut [f32],
    undropped: &'a [f32],
    mask: &'a [f32],
    f: PhantomData<F>,
}

impl<F: Derivative> Kernel for DropoutPrimeMul<'_, F> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let n = self.delta.len();
        let (d, a, m) = (
            self.delta.as_mut_ptr(),
            self.undropped.as_ptr(),
            self.mask.as_ptr(),
        );
        // SAFETY: the ISA is the caller's contract; accesses stay below n = all three
        // lengths (whole vectors, then exactly n - i lanes).
        unsafe {
            let mut i = 0;
            while i + V::LANES <= n {
                let dv = V::load(d.add(i))
                    .mul(F::from_value(V::load(a.add(i))))
                    .mul(V::load(m.add(i)));
                dv.store(d.add(i));
                i += V::LANES;
            }
            if i < n {
                let k = n - i;
                let dv = V::load_partial(d.add(i), k)
                    .mul(F::from_value(V::load_partial(a.add(i), k)))
                    .mul(V::load_partial(m.add(i), k));
                dv.store_partial(d.add(i), k);
            }
        }
    }
}

impl Kernels {
    /// Inverted dropout, forward, in one pass over a `rows x cols` activation matrix `a` of
    /// hidden layer `layer` at training step `step`: for each element, `undropped = a`,
    /// `mask = d.mask(step, layer, row, unit)` (`1 / (1 - p)` or 0, [`Dropout::mask`]) and
    /// `a *= mask`.
    ///
    /// The decisions are hashed in scalar integer code per element; the copies and the
    /// multiply are vectors. Bitwise the same on every ISA (the mask is exact, the product
    /// a single rounding).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] unless the three slices have the same length, a multiple of
    /// `cols`, and `cols > 0`.
    #[allow(clippy::too_many_arguments)]
    pub fn dropout(
        &self,
        d: &Dropout,
        step: u64,
        layer: usize,
        cols: usize,
        a: &mut [f32],
        undropped: &mut [f32],
        mask: &mut [f32],
    ) -> Result<()> {
        let op = "Kernels::dropout (A = a, B = one row, C = mask)";
        check_same(op, a.len(), undropped.len())?;
        check_same(op, a.len(), mask.len())?;
        if cols == 0 || !a.len().is_multiple_of(cols) {
            return Err(Error::ShapeMismatch {
                op,
                a_rows: 1,
                a_cols: a.len(),
                b_rows: 1,
                b_cols: cols,
                c_rows: 1,
                c_cols: mask.len(),
            });
        }
        self.run(DropoutPass {
            a,
            undropped,
            mask,
            cols,
            layer_key: d.layer_key(step, layer),
            threshold: d.threshold,
            scale: d.scale,
        });
        Ok(())
    }

    /// Backward step through a hidden layer with element-wise activation `f` and dropout:
    /// `delta = (delta * f'(undropped)) * mask`, `f'` taken from the activations before
    /// dropout and `mask` as [`Kernels::dropout`] wrote it. Bitwise the same on every ISA.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the lengths differ; [`Error::BadOption`] for softmax.
    pub fn dropout_prime_mul(
        &self,
        f: Activation,
        delta: &mut [f32],
        undropped: &[f32],
        mask: &[f32],
    ) -> Result<()> {
        let op = "Kernels::dropout_prime_mul";
        check_same(op, undropped.len(), delta.len())?;
        check_same(op, mask.len(), delta.len())?;
        match f {
            Activation::Sigmoid => self.run(DropoutPrimeMul::<Sigmoid> {
                delta,
                undropped,
                mask,
                f: PhantomData,
            }),
            Activation::Tanh => self.run(DropoutPrimeMul::<Tanh> {
                delta,
                undropped,
                mask,
                f: PhantomData,
            }),
            Activation::Relu => self.run(DropoutPrimeMul::<Relu> {
                delta,
                undropped,
                mask,
                f: PhantomData,
            }),
            Activation::Softmax => return Err(softmax_not_elementwise(op)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Isa;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        (0..n)
            .map(|i| (mix(seed ^ i as u64) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
            .collect()
    }

    #[test]
    fn miri_dropout_matches_reference_every_isa() {
        let d = Dropout::new(0.3, 9).unwrap();
        for cols in [1, 3, 8, 17, 33] {
            let rows = 3;
            let a0 = values(rows * cols, cols as u64);
            let (mut a_ref, mut u_ref, mut m_ref) =
                (a0.clone(), vec![0.0; a0.len()], vec![0.0; a0.len()]);
            reference::dropout(&d, 4, 2, cols, &mut a_ref, &mut u_ref, &mut m_ref);
            for isa in Isa::available() {
                let k = Kernels::for_isa(isa).unwrap();
                let (mut a, mut u, mut m) = (a0.clone(), vec![0.0; a0.len()], vec![0.0; a0.len()]);
                k.dropout(&d, 4, 2, cols, &mut a, &mut u, &mut m).unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&m), bits(&m_ref), "{isa} cols {cols}: mask");
                assert_eq!(bits(&a), bits(&a_ref), "{isa} cols {cols}: a");
                assert_eq!(bits(&u), bits(&a0), "{isa} cols {cols}: undropped");
                for f in ["sigmoid", "tanh", "relu"] {
                    let act: Activation = f.parse().unwrap();
                    let mut delta = values(a0.len(), 77);
                    let mut want = delta.clone();
                    reference::dropout_prime_mul(f, &mut want, &u_ref, &m_ref);
                    k.dropout_prime_mul(act, &mut delta, &u, &m).unwrap();
                    assert_eq!(bits(&delta), bits(&want), "{isa} {f} cols {cols}");
                }
            }
        }
    }

    #[test]
    fn miri_dropout_shape_errors() {
        let k = Kernels::for_isa(Isa::Scalar).unwrap();
        let d = Dropout::new(0.5, 1).unwrap();
        let (mut a, mut u, mut m) = (vec![0.0; 6], vec![0.0; 6], vec![0.0; 5]);
        assert!(k.dropout(&d, 0, 1, 3, &mut a, &mut u, &mut m).is_err());
        let mut m = vec![0.0; 6];
        assert!(k.dropout(&d, 0, 1, 4, &mut a, &mut u, &mut m).is_err());
        assert!(k.dropout(&d, 0, 1, 0, &mut a, &mut u, &mut m).is_err());
        assert!(
            k.dropout_prime_mul(Activation::Softmax, &mut a, &u, &m)
                .is_err()
        );
    }
}
