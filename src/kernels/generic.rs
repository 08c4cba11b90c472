//! The fused kernels, each written once generic over [`Vector`].
//!
//! A kernel is a value holding its operands (already checked by [`super::Kernels`]) whose
//! [`Kernel::run`] is instantiated for one vector type inside one per-ISA entry function
//! (see [`super::entry`]) that carries the target features. Every loop has the same shape:
//! whole vectors while `LANES` elements remain, then one masked (partial) load and store for
//! the remainder, so no element is touched twice and nothing past a slice is read or written.
//!
//! Kernels that need no rounding-sensitive operation beyond `+ - * /` avoid `mul_add`, so
//! that they give bitwise the same results on every ISA (the scalar type has no fused
//! multiply-add); only those built on `exp`/`ln` round differently from ISA to ISA.

use std::marker::PhantomData;

use crate::simd::{MAX_LANES, Vector, math};

/// One fused operation over checked operands.
pub(crate) trait Kernel {
    /// What the kernel returns.
    type Output;

    /// Runs the kernel with vectors of type `V`.
    ///
    /// # Safety
    ///
    /// `V`'s instruction set is available, and the operands satisfy the invariants documented
    /// on the implementing type (which [`super::Kernels`] checks before building it).
    unsafe fn run<V: Vector>(self) -> Self::Output;
}

/// A lane-wise function `f32 -> f32`.
pub(crate) trait Unary {
    /// Applies the function to each lane.
    ///
    /// # Safety
    ///
    /// `V`'s instruction set is available.
    unsafe fn apply<V: Vector>(x: V) -> V;
}

/// [`math::exp`].
pub(crate) struct Exp;

impl Unary for Exp {
    #[inline(always)]
    unsafe fn apply<V: Vector>(x: V) -> V {
        // SAFETY: forwarded from the trait contract.
        unsafe { math::exp(x) }
    }
}

/// [`math::ln`].
pub(crate) struct Ln;

impl Unary for Ln {
    #[inline(always)]
    unsafe fn apply<V: Vector>(x: V) -> V {
        // SAFETY: forwarded from the trait contract.
        unsafe { math::ln(x) }
    }
}

/// `dst[i] = F(src[i])`. Invariant: `src.len() == dst.len()`.
pub(crate) struct Map<'a, F> {
    pub src: &'a [f32],
    pub dst: &'a mut [f32],
    pub f: PhantomData<F>,
}

impl<F: Unary> Kernel for Map<'_, F> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let n = self.src.len();
        let (src, dst) = (self.src.as_ptr(), self.dst.as_mut_ptr());
        // SAFETY: the ISA is the caller's contract; every access is below n (whole vectors
        // while i + LANES <= n, then exactly n - i lanes), and both slices hold n elements.
        unsafe {
            let mut i = 0;
            while i + V::LANES <= n {
                F::apply(V::load(src.add(i))).store(dst.add(i));
                i += V::LANES;
            }
            if i < n {
                F::apply(V::load_partial(src.add(i), n - i)).store_partial(dst.add(i), n - i);
            }
        }
    }
}

/// [`math::sigmoid`].
pub(crate) struct Sigmoid;

impl Unary for Sigmoid {
    #[inline(always)]
    unsafe fn apply<V: Vector>(x: V) -> V {
        // SAFETY: forwarded from the trait contract.
        unsafe { math::sigmoid(x) }
    }
}

/// [`math::tanh`].
pub(crate) struct Tanh;

impl Unary for Tanh {
    #[inline(always)]
    unsafe fn apply<V: Vector>(x: V) -> V {
        // SAFETY: forwarded from the trait contract.
        unsafe { math::tanh(x) }
    }
}

/// [`math::relu`].
pub(crate) struct Relu;

impl Unary for Relu {
    #[inline(always)]
    unsafe fn apply<V: Vector>(x: V) -> V {
        // SAFETY: forwarded from the trait contract.
        unsafe { math::relu(x) }
    }
}

/// `z[r][c] += bias[c]; a[r][c] = F(z[r][c])` in one pass.
///
/// Invariants: `z.len() == a.len()`, and `z.len()` is a multiple of `bias.len()` (zero when
/// `bias` is empty).
pub(crate) struct BiasActivation<'a, F> {
    pub z: &'a mut [f32],
    pub a: &'a mut [f32],
    pub bias: &'a [f32],
    pub f: PhantomData<F>,
}

impl<F: Unary> Kernel for BiasActivation<'_, F> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let cols = self.bias.len();
        if cols == 0 {
            return;
        }
        let rows = self.z.len() / cols;
        let (z, a, b) = (self.z.as_mut_ptr(), self.a.as_mut_ptr(), self.bias.as_ptr());
        let whole = cols - cols % V::LANES;
        // SAFETY: the ISA is the caller's contract; row r covers r*cols..(r+1)*cols of z and
        // a (rows*cols = z.len() = a.len()), and within a row every access is below cols, as
        // is every access to bias (cols elements).
        unsafe {
            for r in 0..rows {
                let (zr, ar) = (z.add(r * cols), a.add(r * cols));
                let mut j = 0;
                while j < whole {
                    let zv = V::load(zr.add(j)).add(V::load(b.add(j)));
                    zv.store(zr.add(j));
                    F::apply(zv).store(ar.add(j));
                    j += V::LANES;
                }
                if j < cols {
                    let n = cols - j;
                    let zv = V::load_partial(zr.add(j), n).add(V::load_partial(b.add(j), n));
                    zv.store_partial(zr.add(j), n);
                    F::apply(zv).store_partial(ar.add(j), n);
                }
            }
        }
    }
}

/// The first `n` lanes of `v`, in an array.
///
/// # Safety
///
/// `V`'s instruction set is available.
#[inline(always)]
unsafe fn lanes<V: Vector>(v: V) -> [f32; MAX_LANES] {
    let mut out = [0.0f32; MAX_LANES];
    // SAFETY: the ISA is the caller's contract; `out` has room for LANES <= MAX_LANES.
    unsafe { v.store(out.as_mut_ptr()) };
    out
}

/// The largest of the `cols` values at `x`, by compare and select: a NaN among them is
/// skipped (the softmax still turns NaN, through `exp(NaN - max)`); `-inf` if `cols == 0`.
///
/// # Safety
///
/// `V`'s instruction set is available; `x..x + cols` is readable.
#[inline(always)]
unsafe fn row_max<V: Vector>(x: *const f32, cols: usize) -> f32 {
    // SAFETY: the ISA is the caller's contract; whole-vector loads stay below
    // cols - cols % LANES, the tail is read scalar below cols.
    unsafe {
        let mut j = 0;
        let mut best = f32::NEG_INFINITY;
        if cols >= V::LANES {
            let mut m = V::load(x);
            j = V::LANES;
            while j + V::LANES <= cols {
                let v = V::load(x.add(j));
                m = V::select(m.lt(v), v, m);
                j += V::LANES;
            }
            for &v in &lanes(m)[..V::LANES] {
                if best < v {
                    best = v;
                }
            }
        }
        while j < cols {
            let v = *x.add(j);
            if best < v {
                best = v;
            }
            j += 1;
        }
        best
    }
}

/// `sum(e^(x[j] - max))` over the `cols` values at `x`, with `e^(x - max)` written to `out`
/// when it is not null. The lanes are added in a fixed order for a given ISA.
///
/// # Safety
///
/// `V`'s instruction set is available; `x..x + cols` is readable and, unless null,
/// `out..out + cols` writable.
#[inline(always)]
unsafe fn exp_sum<V: Vector>(x: *const f32, cols: usize, max: f32, out: *mut f32) -> f32 {
    // SAFETY: the ISA is the caller's contract; every access is below cols (whole vectors,
    // then exactly the n remaining lanes).
    unsafe {
        let m = V::splat(max);
        let mut acc = V::zero();
        let mut j = 0;
        while j + V::LANES <= cols {
            let e = math::exp(V::load(x.add(j)).sub(m));
            if !out.is_null() {
                e.store(out.add(j));
            }
            acc = acc.add(e);
            j += V::LANES;
        }
        let mut sum = 0.0f32;
        for &v in &lanes(acc)[..V::LANES] {
            sum += v;
        }
        if j < cols {
            let n = cols - j;
            let e = math::exp(V::load_partial(x.add(j), n).sub(m));
            if !out.is_null() {
                e.store_partial(out.add(j), n);
            }
            for &v in &lanes(e)[..n] {
                sum += v;
            }
        }
        sum
    }
}

/// `z[r][c] += bias[c]`, then each row of `a` is the softmax of the row of `z`:
/// `a = e^(z - max z) / sum(e^(z - max z))`. Subtracting the row's maximum keeps every
/// exponential in `(0, 1]` (no overflow for any finite `z`, and the sum is at least 1); the
/// division is one correctly rounded `/` per output.
///
/// Invariants: as [`BiasActivation`].
pub(crate) struct BiasSoftmax<'a> {
    pub z: &'a mut [f32],
    pub a: &'a mut [f32],
    pub bias: &'a [f32],
}

impl Kernel for BiasSoftmax<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let cols = self.bias.len();
        if cols == 0 {
            return;
        }
        let rows = self.z.len() / cols;
        let (z, a, b) = (self.z.as_mut_ptr(), self.a.as_mut_ptr(), self.bias.as_ptr());
        // SAFETY: the ISA is the caller's contract; row r covers r*cols..(r+1)*cols of z and
        // a (rows*cols = z.len() = a.len()), and within a row every access is below cols, as
        // is every access to bias.
        unsafe {
            for r in 0..rows {
                let (zr, ar) = (z.add(r * cols), a.add(r * cols));
                let mut j = 0;
                while j + V::LANES <= cols {
                    V::load(zr.add(j)).add(V::load(b.add(j))).store(zr.add(j));
                    j += V::LANES;
                }
                if j < cols {
                    let n = cols - j;
                    V::load_partial(zr.add(j), n)
                        .add(V::load_partial(b.add(j), n))
                        .store_partial(zr.add(j), n);
                }
                let max = row_max::<V>(zr, cols);
                let sum = V::splat(exp_sum::<V>(zr, cols, max, ar));
                let mut j = 0;
                while j + V::LANES <= cols {
                    V::load(ar.add(j)).div(sum).store(ar.add(j));
                    j += V::LANES;
                }
                if j < cols {
                    let n = cols - j;
                    V::load_partial(ar.add(j), n)
                        .div(sum)
                        .store_partial(ar.add(j), n);
                }
            }
        }
    }
}

/// An activation's derivative, computed from the activation's value `a = f(z)`.
pub(crate) trait Derivative {
    /// `f'(z)` from `a = f(z)`, lane by lane.
    ///
    /// # Safety
    ///
    /// `V`'s instruction set is available.
    unsafe fn from_value<V: Vector>(a: V) -> V;
}

impl Derivative for Sigmoid {
    /// `a (1 - a)`.
    #[inline(always)]
    unsafe fn from_value<V: Vector>(a: V) -> V {
        // SAFETY: forwarded from the trait contract.
        unsafe { a.mul(V::splat(1.0).sub(a)) }
    }
}

impl Derivative for Tanh {
    /// `1 - a^2`, rounded as `(1 - a) (1 + a)`, which is exact in its factors and keeps the
    /// relative accuracy of small results near `|a| = 1`.
    #[inline(always)]
    unsafe fn from_value<V: Vector>(a: V) -> V {
        // SAFETY: forwarded from the trait contract.
        unsafe {
            let one = V::splat(1.0);
            one.sub(a).mul(one.add(a))
        }
    }
}

impl Derivative for Relu {
    /// 1 where `a > 0`, else 0 (the derivative at 0 taken as 0, as in PyTorch). Returned as a
    /// factor, so that `delta * 0` keeps a NaN or infinite `delta` visible.
    #[inline(always)]
    unsafe fn from_value<V: Vector>(a: V) -> V {
        // SAFETY: forwarded from the trait contract.
        unsafe { V::select(V::zero().lt(a), V::splat(1.0), V::zero()) }
    }
}

/// `delta[i] *= F'(a[i])`. Invariant: `delta.len() == a.len()`.
pub(crate) struct PrimeMul<'a, F> {
    pub delta: &'a mut [f32],
    pub a: &'a [f32],
    pub f: PhantomData<F>,
}

impl<F: Derivative> Kernel for PrimeMul<'_, F> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let n = self.delta.len();
        let (d, a) = (self.delta.as_mut_ptr(), self.a.as_ptr());
        // SAFETY: the ISA is the caller's contract; accesses stay below n = both lengths.
        unsafe {
            let mut i = 0;
            while i + V::LANES <= n {
                let dv = V::load(d.add(i)).mul(F::from_value(V::load(a.add(i))));
                dv.store(d.add(i));
                i += V::LANES;
            }
            if i < n {
                let dv = V::load_partial(d.add(i), n - i)
                    .mul(F::from_value(V::load_partial(a.add(i), n - i)));
                dv.store_partial(d.add(i), n - i);
            }
        }
    }
}

/// Which output-layer delta to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeltaRule {
    /// `a - y` (cross-entropy with sigmoid outputs).
    CrossEntropy,
    /// `(a - y) * a * (1 - a)` (quadratic cost with sigmoid outputs).
    Quadratic,
}

/// The output delta for one-hot targets: `delta = a - y` or `(a - y) * (a * (1 - a))`, where
/// `y[r][c] = 1` if `c == labels[r]`, else 0.
///
/// Invariants: `a.len() == delta.len() == labels.len() * cols`, and every label is `< cols`.
pub(crate) struct OutputDelta<'a> {
    pub rule: DeltaRule,
    pub a: &'a [f32],
    pub labels: &'a [u8],
    pub cols: usize,
    pub delta: &'a mut [f32],
}

impl Kernel for OutputDelta<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let n = self.a.len();
        let (a, d) = (self.a.as_ptr(), self.delta.as_mut_ptr());
        // SAFETY: the ISA is the caller's contract; the flat pass stays below n (both
        // lengths), and each fix-up index r*cols + label is below (r+1)*cols <= n because
        // labels are < cols.
        unsafe {
            // One flat pass with y = 0 everywhere: delta = a, or a * (a * (1 - a)) (the same
            // operations as (a - 0) * (a * (1 - a)): a - 0 is exactly a) ...
            match self.rule {
                DeltaRule::CrossEntropy => {
                    std::ptr::copy_nonoverlapping(a, d, n);
                }
                DeltaRule::Quadratic => {
                    let mut i = 0;
                    while i + V::LANES <= n {
                        let av = V::load(a.add(i));
                        av.mul(Sigmoid::from_value(av)).store(d.add(i));
                        i += V::LANES;
                    }
                    if i < n {
                        let av = V::load_partial(a.add(i), n - i);
                        av.mul(Sigmoid::from_value(av))
                            .store_partial(d.add(i), n - i);
                    }
                }
            }
            // ... then the one element per row where y = 1, with the same operations.
            for (r, &label) in self.labels.iter().enumerate() {
                let at = r * self.cols + label as usize;
                let av = *a.add(at);
                *d.add(at) = match self.rule {
                    DeltaRule::CrossEntropy => av - 1.0,
                    DeltaRule::Quadratic => (av - 1.0) * (av * (1.0 - av)),
                };
            }
        }
    }
}

/// `2 * MAX_LANES` zeros but for a 1 at index `MAX_LANES`: the `LANES` values starting at
/// `MAX_LANES - k` are the one-hot vector with its 1 in lane `k`, for any `k < LANES`.
static ONE_HOT: [f32; 2 * MAX_LANES] = {
    let mut v = [0.0; 2 * MAX_LANES];
    v[MAX_LANES] = 1.0;
    v
};

/// The lanes of `y` for columns `j..j + LANES` of a row whose label is `label`.
///
/// # Safety
///
/// `V`'s instruction set is available.
#[inline(always)]
unsafe fn one_hot<V: Vector>(label: usize, j: usize) -> V {
    let k = label.wrapping_sub(j);
    // SAFETY: the ISA is the caller's contract; when k < LANES <= MAX_LANES the LANES values
    // from MAX_LANES - k lie inside ONE_HOT's 2 * MAX_LANES.
    unsafe {
        if k < V::LANES {
            V::load(ONE_HOT.as_ptr().add(MAX_LANES - k))
        } else {
            V::zero()
        }
    }
}

/// numpy's `nan_to_num` for one value: NaN becomes 0 and infinities the largest finite f64
/// of their sign.
#[inline(always)]
pub(crate) fn nan_to_num(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else if x == f64::INFINITY {
        f64::MAX
    } else if x == f64::NEG_INFINITY {
        f64::MIN
    } else {
        x
    }
}

/// Adds the first `n` lanes of `v`, as f64 after `nan_to_num`, to `sum` in lane order.
///
/// # Safety
///
/// `V`'s instruction set is available; `n <= V::LANES`.
#[inline(always)]
unsafe fn add_lanes<V: Vector>(v: V, n: usize, sum: &mut f64) {
    let mut lanes = [0.0f32; MAX_LANES];
    // SAFETY: the ISA is the caller's contract; `lanes` has room for LANES <= MAX_LANES.
    unsafe { v.store(lanes.as_mut_ptr()) };
    for &x in &lanes[..n] {
        *sum += nan_to_num(f64::from(x));
    }
}

/// The smallest f32 `z` for which network2's f64 `sigmoid(z)` is exactly 1.0, 36.736801...
/// (`1 + e^-z` rounds to 1 once `e^-z <= 2^-53`). Found by a search over f32 values with f64
/// arithmetic; the unit tests check it and its neighbour.
pub(crate) const Z_SATURATES_TO_ONE: f32 = f32::from_bits(0x4212_f27c);
/// The largest f32 `z` for which network2's f64 `sigmoid(z)` is exactly 0.0, -709.78271...
/// (`e^-z` overflows to infinity past `-709.7827`).
pub(crate) const Z_SATURATES_TO_ZERO: f32 = f32::from_bits(0xc431_7218);

/// network2's cross-entropy term `-y ln a - (1 - y) ln(1 - a)` of `a = sigmoid(z)`, from `z`,
/// before `nan_to_num`: `softplus(z)` for `y = 0` and `softplus(-z)` for `y = 1`, which is
/// exact where network2's f64 `a` is neither 0 nor 1. Where it is (see
/// [`Z_SATURATES_TO_ONE`] and [`Z_SATURATES_TO_ZERO`]), the term is what network2 computes:
/// `+inf` for `-log(0)`, NaN for `0 * log(0)`; `nan_to_num` then makes them `f64::MAX` and 0.
///
/// # Safety
///
/// `V`'s instruction set is available.
#[inline(always)]
unsafe fn cross_entropy_term<V: Vector>(z: V, y: V) -> V {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let is_one = V::splat(0.5).lt(y);
        // s is the logit of the wrong answer: the term is softplus(s).
        let s = V::select(is_one, V::zero().sub(z), z);
        let term = math::softplus(s);
        // y = 0: a == 1 (s = z >= Z1) gives -log(0) = inf; a == 0 (s <= Z0) gives 0 log 0.
        // y = 1: a == 0 (s = -z >= -Z0) gives inf; a == 1 (s <= -Z1) gives 0 log 0.
        let inf_from = V::select(
            is_one,
            V::splat(-Z_SATURATES_TO_ZERO),
            V::splat(Z_SATURATES_TO_ONE),
        );
        let nan_below = V::select(
            is_one,
            V::splat(-Z_SATURATES_TO_ONE),
            V::splat(Z_SATURATES_TO_ZERO),
        );
        let term = V::select(inf_from.le(s), V::splat(f32::INFINITY), term);
        V::select(s.le(nan_below), V::splat(f32::NAN), term)
    }
}

/// Which cost to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CostRule {
    /// Cross-entropy, from the output layer's weighted inputs `z`.
    CrossEntropy,
    /// `0.5 * ||a - y||^2`, from the activations `a`.
    Quadratic,
    /// `-ln softmax(z)_y`, from the output layer's weighted inputs `z`.
    LogLikelihood,
}

/// Per-row costs against one-hot targets, written to `row_costs`, and their sum.
///
/// Invariants: `x.len() == labels.len() * cols == row_costs.len() * cols`, every label `< cols`.
pub(crate) struct Cost<'a> {
    pub rule: CostRule,
    pub x: &'a [f32],
    pub labels: &'a [u8],
    pub cols: usize,
    pub row_costs: &'a mut [f64],
}

impl Kernel for Cost<'_> {
    type Output = f64;

    #[inline(always)]
    unsafe fn run<V: Vector>(self) -> f64 {
        let cols = self.cols;
        let x = self.x.as_ptr();
        let mut total = 0.0f64;
        for (r, (&label, out)) in self
            .labels
            .iter()
            .zip(self.row_costs.iter_mut())
            .enumerate()
        {
            let row = r * cols;
            let mut sum = 0.0f64;
            match self.rule {
                CostRule::CrossEntropy => {
                    let mut j = 0;
                    // SAFETY: the ISA is the caller's contract; row r is row..row + cols of x
                    // (rows * cols = x.len()), and every access is below cols in the row.
                    unsafe {
                        while j < cols {
                            let n = V::LANES.min(cols - j);
                            let z = if n == V::LANES {
                                V::load(x.add(row + j))
                            } else {
                                V::load_partial(x.add(row + j), n)
                            };
                            let term = cross_entropy_term(z, one_hot::<V>(label as usize, j));
                            add_lanes(term, n, &mut sum);
                            j += V::LANES;
                        }
                    }
                }
                CostRule::Quadratic => {
                    // Exact in f64 (a difference of f32s squared needs at most 50 bits), and
                    // only run once per epoch over the data: no vectors needed.
                    for c in 0..cols {
                        // SAFETY: row + c < (r + 1) * cols <= x.len().
                        let a = f64::from(unsafe { *x.add(row + c) });
                        let d = if c == label as usize { a - 1.0 } else { a };
                        sum += d * d;
                    }
                    sum *= 0.5;
                }
                CostRule::LogLikelihood => {
                    // -ln(e^(z_y - m) / s) = ln(s) + (m - z_y), s = sum e^(z - m) >= 1: no
                    // overflow, and no -ln(0) where the softmax output rounds to 0.
                    // SAFETY: the ISA is the caller's contract; row r is row..row + cols of x
                    // and label < cols.
                    unsafe {
                        let zr = x.add(row);
                        let max = row_max::<V>(zr, cols);
                        let s = exp_sum::<V>(zr, cols, max, std::ptr::null_mut());
                        let ln_s = lanes(math::ln(V::splat(s)))[0];
                        let z_y = *zr.add(label as usize);
                        sum = f64::from(ln_s) + (f64::from(max) - f64::from(z_y));
                    }
                }
            }
            *out = sum;
            total += sum;
        }
        total
    }
}

/// `w = decay * w - step * grad` (weights) or `w = w - step * grad` (biases, `decay = None`).
///
/// Invariant: `w.len() == grad.len()`.
pub(crate) struct SgdStep<'a> {
    pub w: &'a mut [f32],
    pub grad: &'a [f32],
    pub decay: Option<f32>,
    pub step: f32,
}

impl Kernel for SgdStep<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let n = self.w.len();
        let (w, g) = (self.w.as_mut_ptr(), self.grad.as_ptr());
        // SAFETY: the ISA is the caller's contract; accesses stay below n = both lengths.
        unsafe {
            let step = V::splat(self.step);
            match self.decay {
                Some(decay) => {
                    let decay = V::splat(decay);
                    let mut i = 0;
                    while i + V::LANES <= n {
                        let wv = V::load(w.add(i)).mul(decay);
                        wv.sub(V::load(g.add(i)).mul(step)).store(w.add(i));
                        i += V::LANES;
                    }
                    if i < n {
                        let wv = V::load_partial(w.add(i), n - i).mul(decay);
                        let gv = V::load_partial(g.add(i), n - i);
                        wv.sub(gv.mul(step)).store_partial(w.add(i), n - i);
                    }
                }
                None => {
                    let mut i = 0;
                    while i + V::LANES <= n {
                        let wv = V::load(w.add(i));
                        wv.sub(V::load(g.add(i)).mul(step)).store(w.add(i));
                        i += V::LANES;
                    }
                    if i < n {
                        let wv = V::load_partial(w.add(i), n - i);
                        let gv = V::load_partial(g.add(i), n - i);
                        wv.sub(gv.mul(step)).store_partial(w.add(i), n - i);
                    }
                }
            }
        }
    }
}

/// `out[c] = sum over r of m[r][c]`, adding rows in order from `+0.0`.
///
/// Invariants: `m.len() == rows * cols`, `out.len() == cols`.
pub(crate) struct ColumnSums<'a> {
    pub m: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub out: &'a mut [f32],
}

/// Vectors of columns summed at once: four independent accumulators per row hide the
/// latency of the additions, and a block of `4 * LANES` columns stays in registers.
const COLUMN_BLOCK: usize = 4;

impl Kernel for ColumnSums<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let (rows, cols) = (self.rows, self.cols);
        let (m, out) = (self.m.as_ptr(), self.out.as_mut_ptr());
        // SAFETY: the ISA is the caller's contract; element (r, c) is at r*cols + c with
        // r < rows and c < cols, inside m (rows * cols); out accesses are below cols.
        unsafe {
            let mut j = 0;
            while j + COLUMN_BLOCK * V::LANES <= cols {
                let mut acc = [V::zero(); COLUMN_BLOCK];
                for r in 0..rows {
                    let p = m.add(r * cols + j);
                    for (k, acc) in acc.iter_mut().enumerate() {
                        *acc = acc.add(V::load(p.add(k * V::LANES)));
                    }
                }
                for (k, acc) in acc.iter().enumerate() {
                    acc.store(out.add(j + k * V::LANES));
                }
                j += COLUMN_BLOCK * V::LANES;
            }
            while j + V::LANES <= cols {
                let mut acc = V::zero();
                for r in 0..rows {
                    acc = acc.add(V::load(m.add(r * cols + j)));
                }
                acc.store(out.add(j));
                j += V::LANES;
            }
            if j < cols {
                let n = cols - j;
                let mut acc = V::zero();
                for r in 0..rows {
                    acc = acc.add(V::load_partial(m.add(r * cols + j), n));
                }
                acc.store_partial(out.add(j), n);
            }
        }
    }
}

/// The rule of a [`ParamUpdate`], with its constants resolved for one step.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RuleConsts {
    /// `w -= eta g`.
    Sgd,
    /// `v = mu v - eta g; w += v`, or with Nesterov's look-ahead `w += v + mu (v - v_old)`.
    Momentum { mu: f32, nesterov: bool },
    /// `m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    /// w -= eta (m c1) / (sqrt(v) c2 + eps)`, with the bias corrections
    /// `c1 = 1 / (1 - b1^t)` and `c2 = 1 / sqrt(1 - b2^t)`.
    Adam {
        b1: f32,
        b2: f32,
        eps: f32,
        c1: f32,
        c2: f32,
    },
}

/// One optimizer step on a parameter array from its gradient summed over a mini-batch:
/// `g = grad * grad_scale + w * l2 + sgn(w) * l1` (the mean gradient plus the L2 and L1
/// terms, so that momentum and Adam carry the regularization too), then the rule.
///
/// Only `+ - * /` and `sqrt` (all correctly rounded, no fused multiply-add), in a fixed
/// order: bitwise the same on every ISA.
///
/// Invariants: `grad.len() == w.len()`; `s1.len() == w.len()` for momentum and Adam,
/// `s2.len() == w.len()` for Adam (unused slices may be empty).
pub(crate) struct ParamUpdate<'a> {
    pub w: &'a mut [f32],
    pub grad: &'a [f32],
    pub s1: &'a mut [f32],
    pub s2: &'a mut [f32],
    pub rule: RuleConsts,
    pub eta: f32,
    pub grad_scale: f32,
    pub l2: f32,
    pub l1: f32,
}

/// `sgn(w)`: -1, 0 or 1 (0 for ±0; NaN gives 0, but then `w * l2` and the update are NaN).
///
/// # Safety
///
/// `V`'s instruction set is available.
#[inline(always)]
unsafe fn signum<V: Vector>(w: V) -> V {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let zero = V::zero();
        let positive = V::select(zero.lt(w), V::splat(1.0), zero);
        V::select(w.lt(zero), V::splat(-1.0), positive)
    }
}

/// `x` with its subnormal lanes replaced by zero (of the same sign); zeros, normal numbers,
/// infinities and NaN pass unchanged.
///
/// # Safety
///
/// `V`'s instruction set is available.
#[inline(always)]
unsafe fn flush_subnormal<V: Vector>(x: V) -> V {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let bits = x.to_bits();
        let magnitude = V::from_bits(V::bits_and(bits, V::splat_bits(0x7fff_ffff)));
        let sign = V::from_bits(V::bits_and(bits, V::splat_bits(0x8000_0000)));
        V::select(magnitude.lt(V::splat(f32::MIN_POSITIVE)), sign, x)
    }
}

impl ParamUpdate<'_> {
    /// The step on one vector of lanes: the new `(w, s1, s2)`.
    ///
    /// # Safety
    ///
    /// `V`'s instruction set is available.
    #[inline(always)]
    unsafe fn lanes<V: Vector>(&self, w: V, grad: V, s1: V, s2: V) -> (V, V, V) {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let g = grad
                .mul(V::splat(self.grad_scale))
                .add(w.mul(V::splat(self.l2)))
                .add(signum(w).mul(V::splat(self.l1)));
            let eta = V::splat(self.eta);
            match self.rule {
                RuleConsts::Sgd => (w.sub(eta.mul(g)), s1, s2),
                RuleConsts::Momentum { mu, nesterov } => {
                    let mu = V::splat(mu);
                    let v = mu.mul(s1).sub(eta.mul(g));
                    let w = if nesterov {
                        w.add(v).add(mu.mul(v.sub(s1)))
                    } else {
                        w.add(v)
                    };
                    (w, v, s2)
                }
                RuleConsts::Adam {
                    b1,
                    b2,
                    eps,
                    c1,
                    c2,
                } => {
                    let one = V::splat(1.0);
                    let (b1, b2) = (V::splat(b1), V::splat(b2));
                    let m = flush_subnormal(b1.mul(s1).add(one.sub(b1).mul(g)));
                    let v = flush_subnormal(b2.mul(s2).add(one.sub(b2).mul(g.mul(g))));
                    let denom = v.sqrt().mul(V::splat(c2)).add(V::splat(eps));
                    let w = w.sub(eta.mul(m.mul(V::splat(c1))).div(denom));
                    (flush_subnormal(w), m, v)
                }
            }
        }
    }
}

impl Kernel for ParamUpdate<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let n = self.w.len();
        let (uses_s1, uses_s2) = match self.rule {
            RuleConsts::Sgd => (false, false),
            RuleConsts::Momentum { .. } => (true, false),
            RuleConsts::Adam { .. } => (true, true),
        };
        let w = self.w.as_mut_ptr();
        let g = self.grad.as_ptr();
        let s1 = self.s1.as_mut_ptr();
        let s2 = self.s2.as_mut_ptr();
        // SAFETY: the ISA is the caller's contract; every access is below n, and w, grad
        // and every state slice in use hold n values (the invariants); unused states are
        // neither read nor written.
        unsafe {
            let mut i = 0;
            while i < n {
                // (No closures here: they would be compiled without the entry's features.)
                let k = V::LANES.min(n - i);
                let zero = V::zero();
                let (wv, s1v, s2v) = if k == V::LANES {
                    self.lanes(
                        V::load(w.add(i)),
                        V::load(g.add(i)),
                        if uses_s1 { V::load(s1.add(i)) } else { zero },
                        if uses_s2 { V::load(s2.add(i)) } else { zero },
                    )
                } else {
                    self.lanes(
                        V::load_partial(w.add(i), k),
                        V::load_partial(g.add(i), k),
                        if uses_s1 {
                            V::load_partial(s1.add(i), k)
                        } else {
                            zero
                        },
                        if uses_s2 {
                            V::load_partial(s2.add(i), k)
                        } else {
                            zero
                        },
                    )
                };
                for (v, p, used) in [(wv, w, true), (s1v, s1, uses_s1), (s2v, s2, uses_s2)] {
                    if used {
                        if k == V::LANES {
                            v.store(p.add(i));
                        } else {
                            v.store_partial(p.add(i), k);
                        }
                    }
                }
                i += V::LANES;
            }
        }
    }
}
