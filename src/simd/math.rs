//! Vectorized `exp`, `ln`, `log1p`, sigmoid and softplus, written once for every [`Vector`].
//!
//! The algorithms are the classic Cephes single-precision ones (S. L. Moshier), restated on
//! the [`Vector`] vocabulary: no table lookups, no gathers, only multiply-add, compare, select
//! and integer operations on the float encoding. Every function here is `#[inline(always)]`
//! and carries no target feature, so that it compiles into the kernel entry that calls it
//! (see [`crate::kernels`]).
//!
//! Accuracy against f64 `exp`/`ln` is measured by `tests/kernels.rs` over the f32 ranges the
//! network uses: both are faithfully rounded (at most 1 ulp from the correctly rounded
//! result); the sigmoid built on `exp` is within 2 ulp of f64's on `[-120, 120]`.
//!
//! Special values follow IEEE and libm: `exp(NaN) = NaN`, `exp(+inf) = +inf`,
//! `exp(-inf) = 0`, `exp` overflows to `+inf` past `ln(f32::MAX) = 88.72` and underflows
//! gradually (subnormal results) to 0 below about `-103.3`; `ln(NaN) = NaN`, `ln(x < 0) = NaN`,
//! `ln(±0) = -inf`, `ln(+inf) = +inf`, and subnormal arguments are handled exactly.

use super::Vector;

/// `exp` clamps its argument to `[EXP_LO, EXP_HI]` so that the exponent arithmetic stays in
/// range. `exp(89) = 4.5e38` overflows to `+inf` anyway, and `exp(-104) = 6.8e-46` is below
/// half the smallest subnormal, so it rounds to 0: clamping changes no result.
const EXP_HI: f32 = 89.0;
/// See [`EXP_HI`].
const EXP_LO: f32 = -104.0;
/// `1.5 * 2^23`: adding it to a float `|v| < 2^22` rounds `v` to the nearest integer `n`
/// (ties to even), and leaves `n` in the low mantissa bits: `bits(v + M) = bits(M) + n`.
/// Subtracting it again gives `n` as a float. No float-to-int conversion is needed.
const ROUND_MAGIC: f32 = 12_582_912.0;
/// `ln 2` split into a head with 9 significant bits (so `n * LN2_HI` is exact for the
/// `|n| <= 150` that occur here) and the rest (Cody and Waite).
#[allow(clippy::excessive_precision)] // Cephes's published digits, kept verbatim.
const LN2_HI: f32 = 0.693_359_375;
/// `ln 2 - LN2_HI`.
#[allow(clippy::excessive_precision)] // Cephes's published digits, kept verbatim.
const LN2_LO: f32 = -2.121_944_4e-4;
/// Coefficients of `(exp(r) - 1 - r) / r^2` on `|r| <= ln(2) / 2` (Cephes `expf`), highest
/// degree first, for Horner's rule.
#[allow(clippy::excessive_precision)] // Cephes's published digits, kept verbatim.
const EXP_POLY: [f32; 6] = [
    1.987_569_15e-4,
    1.398_199_950_7e-3,
    8.333_451_907_3e-3,
    4.166_579_589_4e-2,
    1.666_666_545_9e-1,
    5.000_000_120_1e-1,
];
/// Coefficients of `(ln(1 + f) - f + f^2/2) / f^3` on `f` in `[sqrt(1/2) - 1, sqrt(2) - 1]`
/// (Cephes `logf`), highest degree first.
#[allow(clippy::excessive_precision)] // Cephes's published digits, kept verbatim.
const LN_POLY: [f32; 9] = [
    7.037_683_629_2e-2,
    -1.151_461_031_0e-1,
    1.167_699_874_0e-1,
    -1.242_014_084_6e-1,
    1.424_932_278_7e-1,
    -1.666_805_766_5e-1,
    2.000_071_476_5e-1,
    -2.499_999_399_3e-1,
    3.333_333_117_4e-1,
];

/// `2^k` for the `k` held in `t = k + ROUND_MAGIC` (see [`ROUND_MAGIC`]), `|k| <= 126`.
///
/// The low 9 bits of `bits(t)` are `k mod 512` (those of `bits(ROUND_MAGIC)` are zero);
/// shifted left by 23 they land in the exponent field, where adding the bias 127 makes the
/// encoding of `2^k` (the wrap-around drops everything above bit 31).
///
/// # Safety
///
/// The vector type's features are available.
#[inline(always)]
unsafe fn pow2_from_magic<V: Vector>(t: V) -> V {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        V::from_bits(V::bits_add(
            V::bits_shl::<23>(t.to_bits()),
            V::splat_bits(127 << 23),
        ))
    }
}

/// `e^x`, lane by lane.
///
/// Range reduction `x = n ln 2 + r` with `n = round(x / ln 2)` and a two-constant Cody-Waite
/// split of `ln 2`, so `|r| <= ln(2) / 2`; `e^r = 1 + r + r^2 p(r)` with a degree-5 `p`; then
/// `e^x = e^r 2^n`, with `2^n` built directly in the exponent bits. The scale is applied as
/// two factors `2^n1 2^n2` (`n1 + n2 = n`, each at most 75 in magnitude), so that results in
/// the subnormal range are rounded once, correctly for the computed `e^r`, and overflow gives
/// `+inf` without special cases.
///
/// Measured against f64 `exp` on every 61st f32 of `[-88, 88]` (`exp_max_error` in
/// `tests/kernels.rs`), on scalar, AVX2 and NEON: never more than 1 ulp from the correctly
/// rounded result (subnormal results included), maximum relative error 8.3e-8 (0.70 of
/// f32's epsilon).
///
/// # Safety
///
/// The vector type's features are available.
#[inline(always)]
pub(crate) unsafe fn exp<V: Vector>(x: V) -> V {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        // Clamp with compare + select (not min/max, whose NaN rules differ between ISAs and
        // which Miri lacks on AVX-512): a NaN fails both comparisons and stays NaN.
        let hi = V::splat(EXP_HI);
        let lo = V::splat(EXP_LO);
        let x = V::select(hi.lt(x), hi, x);
        let x = V::select(x.lt(lo), lo, x);

        let magic = V::splat(ROUND_MAGIC);
        let t = x.mul_add(V::splat(std::f32::consts::LOG2_E), magic);
        let n = t.sub(magic);
        // r = x - n ln 2: both steps are exact or nearly so (n * LN2_HI has at most 17 bits).
        let r = n.mul_add(V::splat(-LN2_HI), x);
        let r = n.mul_add(V::splat(-LN2_LO), r);

        let mut p = V::splat(EXP_POLY[0]);
        for c in &EXP_POLY[1..] {
            p = p.mul_add(r, V::splat(*c));
        }
        let y = p.mul_add(r.mul(r), r).add(V::splat(1.0));

        // 2^n = 2^n1 * 2^n2 with n1 = round(n / 2), n2 = n - n1, both exact in f32.
        let t1 = n.mul_add(V::splat(0.5), magic);
        let n2 = n.sub(t1.sub(magic));
        let t2 = n2.add(magic);
        y.mul(pow2_from_magic(t1)).mul(pow2_from_magic(t2))
    }
}

/// `ln x`, lane by lane.
///
/// `x = m 2^e` with `m` in `[sqrt(1/2), sqrt(2))` read from the encoding (subnormals are first
/// scaled by `2^23`); with `f = m - 1` (exact), `ln x = f - f^2/2 + f^3 q(f) + e ln 2`, the
/// `e ln 2` term again split in two. Negative arguments give NaN, zero `-inf`, `+inf` itself.
///
/// Measured against f64 `ln` on every 61st positive finite f32, subnormals included
/// (`ln_max_error` in `tests/kernels.rs`), on scalar, AVX2 and NEON: never more than 1 ulp
/// from the correctly rounded result, maximum relative error 8.1e-8 (0.68 of epsilon).
///
/// # Safety
///
/// The vector type's features are available.
#[inline(always)]
pub(crate) unsafe fn ln<V: Vector>(x: V) -> V {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let one = V::splat(1.0);
        let zero = V::zero();
        // Subnormals: scale into the normal range and remember the 23.
        let tiny = x.lt(V::splat(f32::MIN_POSITIVE));
        let xs = V::select(tiny, x.mul(V::splat(8_388_608.0)), x);
        let e_adjust = V::select(tiny, V::splat(23.0), zero);

        let bits = xs.to_bits();
        // The biased exponent as a float through the ROUND_MAGIC encoding (it is < 2^22):
        // bits(M) + b is the encoding of M + b.
        let magic = V::splat(ROUND_MAGIC);
        let biased = V::from_bits(V::bits_add(
            V::bits_shr::<23>(bits),
            V::splat_bits(ROUND_MAGIC.to_bits()),
        ));
        // m in [0.5, 1), so x = m 2^(biased - 126).
        let m = V::from_bits(V::bits_or(
            V::bits_and(bits, V::splat_bits(0x007f_ffff)),
            V::splat_bits(0x3f00_0000),
        ));
        let e = biased.sub(magic.add(V::splat(126.0))).sub(e_adjust);
        // Move m below sqrt(1/2) up an octave: f = 2m - 1 (e - 1) or m - 1, both exact.
        let low = m.lt(V::splat(std::f32::consts::FRAC_1_SQRT_2));
        let e = e.sub(V::select(low, one, zero));
        let f = m.add(V::select(low, m, zero)).sub(one);

        let f2 = f.mul(f);
        let mut p = V::splat(LN_POLY[0]);
        for c in &LN_POLY[1..] {
            p = p.mul_add(f, V::splat(*c));
        }
        let y = p.mul(f).mul(f2);
        let y = e.mul_add(V::splat(LN2_LO), y);
        let y = f2.mul_add(V::splat(-0.5), y);
        let r = e.mul_add(V::splat(LN2_HI), f.add(y));

        let r = V::select(x.eq(V::splat(f32::INFINITY)), x, r);
        let r = V::select(x.eq(zero), V::splat(f32::NEG_INFINITY), r);
        let r = V::select(x.lt(zero), V::splat(f32::NAN), r);
        // NaN in, the same NaN out.
        V::select(x.eq(x), r, x)
    }
}

/// `ln(1 + u)` for `u >= 0` (or NaN), accurate for tiny `u` where `1 + u` rounds.
///
/// With `w = 1 + u` rounded, `ln(1 + u) = ln(w) * u / (w - 1)` cancels the rounding of `w`
/// to first order (Goldberg 1991); when `w == 1`, `ln(1 + u) = u` to within an ulp.
///
/// # Safety
///
/// The vector type's features are available.
#[inline(always)]
pub(crate) unsafe fn log1p<V: Vector>(u: V) -> V {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let w = u.add(V::splat(1.0));
        let d = w.sub(V::splat(1.0));
        let r = ln(w).mul(u.div(d));
        V::select(d.eq(V::zero()), u, r)
    }
}

/// `ln(1 + e^s)` (softplus), without overflow or cancellation for any `s`:
/// `max(s, 0) + log1p(e^-|s|)`. NaN propagates.
///
/// # Safety
///
/// The vector type's features are available.
#[inline(always)]
pub(crate) unsafe fn softplus<V: Vector>(s: V) -> V {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let zero = V::zero();
        let negative = s.lt(zero);
        let minus_abs = V::select(negative, s, zero.sub(s));
        let positive_part = V::select(negative, zero, s);
        positive_part.add(log1p(exp(minus_abs)))
    }
}

/// The logistic function `1 / (1 + e^-z)`, lane by lane.
///
/// Computed as `1 / (1 + e)` for `z >= 0` and `e / (1 + e)` for `z < 0`, with `e = e^-|z|`,
/// so `exp` never overflows, the result is in `[0, 1]` for every non-NaN `z`, and tiny
/// results for very negative `z` keep their relative accuracy (down to the subnormals).
/// One division per lane. NaN propagates.
///
/// # Safety
///
/// The vector type's features are available.
#[inline(always)]
pub(crate) unsafe fn sigmoid<V: Vector>(z: V) -> V {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let zero = V::zero();
        let one = V::splat(1.0);
        let negative = z.lt(zero);
        let e = exp(V::select(negative, z, zero.sub(z)));
        V::select(negative, e, one).div(one.add(e))
    }
}

/// Below this `|z|`, [`tanh`] uses its odd Taylor polynomial; from it, `(1 - t) / (1 + t)`
/// with `t = e^(-2|z|)`. At 0.4 the polynomial's first omitted term is 4e-9 of the result,
/// and `1 - t` (`t <= 0.45`) no longer cancels: both sides stay within a few ulp.
const TANH_POLY_BELOW: f32 = 0.4;

/// The odd Taylor coefficients of `tanh` through `z^13`, highest first, for Horner's rule
/// in `z^2`.
const TANH_POLY: [f32; 7] = [
    21_844.0 / 6_081_075.0,
    -1_382.0 / 155_925.0,
    62.0 / 2_835.0,
    -17.0 / 315.0,
    2.0 / 15.0,
    -1.0 / 3.0,
    1.0,
];

/// The hyperbolic tangent, lane by lane.
///
/// A polynomial near 0 (where `1 - e^(-2|z|)` would cancel and lose the relative accuracy
/// of small results), `(1 - t) / (1 + t)` with `t = e^(-2|z|)` elsewhere, the sign restored
/// afterwards: `exp` never overflows, the result is exactly `±1` from `|z| = 9` or so, odd
/// symmetry is exact, and NaN propagates.
///
/// # Safety
///
/// The vector type's features are available.
#[inline(always)]
pub(crate) unsafe fn tanh<V: Vector>(z: V) -> V {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let zero = V::zero();
        let one = V::splat(1.0);
        let negative = z.lt(zero);
        let abs = V::select(negative, zero.sub(z), z);
        let t = exp(abs.mul(V::splat(-2.0)));
        let far = one.sub(t).div(one.add(t));
        let far = V::select(negative, zero.sub(far), far);
        let z2 = z.mul(z);
        let mut p = V::splat(TANH_POLY[0]);
        for c in &TANH_POLY[1..] {
            p = p.mul_add(z2, V::splat(*c));
        }
        let near = p.mul(z);
        V::select(abs.lt(V::splat(TANH_POLY_BELOW)), near, far)
    }
}

/// `max(z, 0)` lane by lane, with compare + select so that NaN stays NaN on every ISA (the
/// hardware `max` instructions disagree about NaN operands) and `-0.0` stays `-0.0`.
///
/// # Safety
///
/// The vector type's features are available.
#[inline(always)]
pub(crate) unsafe fn relu<V: Vector>(z: V) -> V {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let zero = V::zero();
        V::select(z.lt(zero), zero, z)
    }
}
