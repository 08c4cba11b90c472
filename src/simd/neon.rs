//! AArch64 Advanced SIMD: four f32 lanes in a `float32x4_t`.

use std::arch::aarch64::*;

use super::Vector;

/// Four f32 lanes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct F32x4(float32x4_t);

// SAFETY: every method uses only NEON instructions, which the trait's contract makes the
// caller guarantee; partial loads and stores go through a stack buffer and copy exactly the
// lanes the caller vouches for, since NEON has no masked memory operations.
/// Lane `i`'s bit, for [`Vector::nonzero_lanes`].
static LANE_BITS: [u32; 4] = [1, 2, 4, 8];

unsafe impl Vector for F32x4 {
    const LANES: usize = 4;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: NEON is guaranteed by the caller.
        F32x4(unsafe { vdupq_n_f32(0.0) })
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: NEON is guaranteed by the caller.
        F32x4(unsafe { vdupq_n_f32(x) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: NEON and 4 readable lanes at p are guaranteed by the caller.
        F32x4(unsafe { vld1q_f32(p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: NEON and 4 writable lanes at p are guaranteed by the caller.
        unsafe { vst1q_f32(p, self.0) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        let mut lanes = [0.0f32; 4];
        // SAFETY: n < 4 readable lanes at p (caller), and `lanes` has room for 4.
        unsafe {
            std::ptr::copy_nonoverlapping(p, lanes.as_mut_ptr(), n);
            F32x4(vld1q_f32(lanes.as_ptr()))
        }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        let mut lanes = [0.0f32; 4];
        // SAFETY: `lanes` has room for 4; n < 4 writable lanes at p (caller).
        unsafe {
            vst1q_f32(lanes.as_mut_ptr(), self.0);
            std::ptr::copy_nonoverlapping(lanes.as_ptr(), p, n);
        }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: NEON is guaranteed by the caller. vfmaq_f32(acc, x, y) = acc + x*y, fused.
        F32x4(unsafe { vfmaq_f32(c.0, self.0, b.0) })
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        // SAFETY: NEON is guaranteed by the caller.
        F32x4(unsafe { vmulq_f32(self.0, b.0) })
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: NEON is guaranteed by the caller.
        F32x4(unsafe { vaddq_f32(self.0, b.0) })
    }
    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        // SAFETY: NEON is guaranteed by the caller.
        F32x4(unsafe { vsubq_f32(self.0, b.0) })
    }
    #[inline(always)]
    unsafe fn div(self, b: Self) -> Self {
        // SAFETY: NEON is guaranteed by the caller (AArch64 has a vector divide).
        F32x4(unsafe { vdivq_f32(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        // SAFETY: NEON is guaranteed by the caller (AArch64 has a vector square root).
        F32x4(unsafe { vsqrtq_f32(self.0) })
    }

    /// All-ones lanes where true.
    type Mask = uint32x4_t;

    #[inline(always)]
    unsafe fn lt(self, b: Self) -> uint32x4_t {
        // SAFETY: NEON is guaranteed by the caller.
        unsafe { vcltq_f32(self.0, b.0) }
    }
    #[inline(always)]
    unsafe fn le(self, b: Self) -> uint32x4_t {
        // SAFETY: NEON is guaranteed by the caller.
        unsafe { vcleq_f32(self.0, b.0) }
    }
    #[inline(always)]
    unsafe fn eq(self, b: Self) -> uint32x4_t {
        // SAFETY: NEON is guaranteed by the caller.
        unsafe { vceqq_f32(self.0, b.0) }
    }
    #[inline(always)]
    unsafe fn nonzero_lanes(self) -> u32 {
        // SAFETY: NEON is guaranteed by the caller; LANE_BITS is 4 readable u32. vtst sets a
        // lane where the bits but the sign's are not all zero; each set lane keeps its own
        // bit of LANE_BITS and the horizontal add packs them.
        unsafe {
            let set = vtstq_u32(vreinterpretq_u32_f32(self.0), vdupq_n_u32(0x7fff_ffff));
            vaddvq_u32(vandq_u32(set, vld1q_u32(LANE_BITS.as_ptr())))
        }
    }
    #[inline(always)]
    unsafe fn select(mask: uint32x4_t, a: Self, b: Self) -> Self {
        // SAFETY: NEON is guaranteed by the caller. vbsl takes bits of `a` where the mask is set.
        F32x4(unsafe { vbslq_f32(mask, a.0, b.0) })
    }

    type Bits = uint32x4_t;

    #[inline(always)]
    unsafe fn to_bits(self) -> uint32x4_t {
        // SAFETY: NEON is guaranteed by the caller; a reinterpretation emits no instruction.
        unsafe { vreinterpretq_u32_f32(self.0) }
    }
    #[inline(always)]
    unsafe fn from_bits(bits: uint32x4_t) -> Self {
        // SAFETY: NEON is guaranteed by the caller; a reinterpretation emits no instruction.
        F32x4(unsafe { vreinterpretq_f32_u32(bits) })
    }
    #[inline(always)]
    unsafe fn splat_bits(x: u32) -> uint32x4_t {
        // SAFETY: NEON is guaranteed by the caller.
        unsafe { vdupq_n_u32(x) }
    }
    #[inline(always)]
    unsafe fn bits_add(a: uint32x4_t, b: uint32x4_t) -> uint32x4_t {
        // SAFETY: NEON is guaranteed by the caller.
        unsafe { vaddq_u32(a, b) }
    }
    #[inline(always)]
    unsafe fn bits_and(a: uint32x4_t, b: uint32x4_t) -> uint32x4_t {
        // SAFETY: NEON is guaranteed by the caller.
        unsafe { vandq_u32(a, b) }
    }
    #[inline(always)]
    unsafe fn bits_or(a: uint32x4_t, b: uint32x4_t) -> uint32x4_t {
        // SAFETY: NEON is guaranteed by the caller.
        unsafe { vorrq_u32(a, b) }
    }
    #[inline(always)]
    unsafe fn bits_shl<const N: i32>(a: uint32x4_t) -> uint32x4_t {
        // SAFETY: NEON is guaranteed by the caller; N is a valid immediate (1..32).
        unsafe { vshlq_n_u32::<N>(a) }
    }
    #[inline(always)]
    unsafe fn bits_shr<const N: i32>(a: uint32x4_t) -> uint32x4_t {
        // SAFETY: NEON is guaranteed by the caller; N is a valid immediate (1..32).
        unsafe { vshrq_n_u32::<N>(a) }
    }
}
