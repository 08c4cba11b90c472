//! The portable "vector": one f32 lane, plain Rust arithmetic.

use super::Vector;

/// One f32, so that the generic kernels compile to portable scalar code.
#[derive(Clone, Copy, Debug)]
pub(crate) struct F32x1(f32);

// SAFETY: nothing here depends on a target feature; pointer methods read or write exactly the
// lanes their callers vouch for.
unsafe impl Vector for F32x1 {
    const LANES: usize = 1;

    #[inline(always)]
    unsafe fn zero() -> Self {
        F32x1(0.0)
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        F32x1(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees one readable lane at p.
        F32x1(unsafe { p.read_unaligned() })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees one writable lane at p.
        unsafe { p.write_unaligned(self.0) }
    }
    #[inline(always)]
    unsafe fn load_partial(_p: *const f32, _n: usize) -> Self {
        // n < LANES = 1 means nothing to read.
        F32x1(0.0)
    }
    #[inline(always)]
    unsafe fn store_partial(self, _p: *mut f32, _n: usize) {}
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // Deliberately not f32::mul_add: without hardware FMA that becomes a libm call.
        F32x1(self.0 * b.0 + c.0)
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        F32x1(self.0 * b.0)
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        F32x1(self.0 + b.0)
    }
    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        F32x1(self.0 - b.0)
    }
    #[inline(always)]
    unsafe fn div(self, b: Self) -> Self {
        F32x1(self.0 / b.0)
    }

    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        F32x1(self.0.sqrt())
    }

    type Mask = bool;

    #[inline(always)]
    unsafe fn lt(self, b: Self) -> bool {
        self.0 < b.0
    }
    #[inline(always)]
    unsafe fn le(self, b: Self) -> bool {
        self.0 <= b.0
    }
    #[inline(always)]
    unsafe fn eq(self, b: Self) -> bool {
        self.0 == b.0
    }
    #[inline(always)]
    unsafe fn nonzero_lanes(self) -> u32 {
        // The bits but the sign's are zero exactly for +0.0 and -0.0.
        u32::from(self.0.to_bits() << 1 != 0)
    }
    #[inline(always)]
    unsafe fn select(mask: bool, a: Self, b: Self) -> Self {
        if mask { a } else { b }
    }

    type Bits = u32;

    #[inline(always)]
    unsafe fn to_bits(self) -> u32 {
        self.0.to_bits()
    }
    #[inline(always)]
    unsafe fn from_bits(bits: u32) -> Self {
        F32x1(f32::from_bits(bits))
    }
    #[inline(always)]
    unsafe fn splat_bits(x: u32) -> u32 {
        x
    }
    #[inline(always)]
    unsafe fn bits_add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }
    #[inline(always)]
    unsafe fn bits_and(a: u32, b: u32) -> u32 {
        a & b
    }
    #[inline(always)]
    unsafe fn bits_or(a: u32, b: u32) -> u32 {
        a | b
    }
    #[inline(always)]
    unsafe fn bits_shl<const N: i32>(a: u32) -> u32 {
        a << N
    }
    #[inline(always)]
    unsafe fn bits_shr<const N: i32>(a: u32) -> u32 {
        a >> N
    }
}
