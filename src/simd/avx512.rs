//! AVX-512F: sixteen f32 lanes in a `__m512`, with lane masks for ragged edges.

use std::arch::x86_64::*;

use super::Vector;

/// Sixteen f32 lanes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct F32x16(__m512);

#[inline(always)]
fn first_lanes(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

// SAFETY: every method uses only AVX-512F instructions, which the trait's contract makes the
// caller guarantee; the masked loads and stores touch only the lanes the caller vouches for.
unsafe impl Vector for F32x16 {
    const LANES: usize = 16;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: AVX-512F is guaranteed by the caller.
        F32x16(unsafe { _mm512_setzero_ps() })
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: AVX-512F is guaranteed by the caller.
        F32x16(unsafe { _mm512_set1_ps(x) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: AVX-512F and 16 readable lanes at p are guaranteed by the caller.
        F32x16(unsafe { _mm512_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: AVX-512F and 16 writable lanes at p are guaranteed by the caller.
        unsafe { _mm512_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        // SAFETY: AVX-512F and n readable lanes; masked-off lanes are neither read nor faulted.
        F32x16(unsafe { _mm512_maskz_loadu_ps(first_lanes(n), p) })
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        // SAFETY: AVX-512F and n writable lanes; masked-off lanes are not written.
        unsafe { _mm512_mask_storeu_ps(p, first_lanes(n), self.0) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: AVX-512F is guaranteed by the caller.
        F32x16(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        // SAFETY: AVX-512F is guaranteed by the caller.
        F32x16(unsafe { _mm512_mul_ps(self.0, b.0) })
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: AVX-512F is guaranteed by the caller.
        F32x16(unsafe { _mm512_add_ps(self.0, b.0) })
    }
    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        // SAFETY: AVX-512F is guaranteed by the caller.
        F32x16(unsafe { _mm512_sub_ps(self.0, b.0) })
    }
    #[inline(always)]
    unsafe fn div(self, b: Self) -> Self {
        // SAFETY: AVX-512F is guaranteed by the caller.
        F32x16(unsafe { _mm512_div_ps(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        // SAFETY: AVX-512F is guaranteed by the caller.
        F32x16(unsafe { _mm512_sqrt_ps(self.0) })
    }

    /// One bit per lane in a mask register. (Comparisons and blends rather than
    /// `_mm512_max_ps`/`_mm512_min_ps`, which Miri cannot execute.)
    type Mask = __mmask16;

    #[inline(always)]
    unsafe fn lt(self, b: Self) -> __mmask16 {
        #[cfg(not(miri))]
        // SAFETY: AVX-512F is guaranteed by the caller.
        unsafe {
            _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, b.0)
        }
        #[cfg(miri)]
        // SAFETY: AVX-512F is guaranteed by the caller.
        unsafe {
            miri::ordered(self.0, b.0) & _mm512_cmplt_epi32_mask(miri::key(self.0), miri::key(b.0))
        }
    }
    #[inline(always)]
    unsafe fn le(self, b: Self) -> __mmask16 {
        #[cfg(not(miri))]
        // SAFETY: AVX-512F is guaranteed by the caller.
        unsafe {
            _mm512_cmp_ps_mask::<_CMP_LE_OQ>(self.0, b.0)
        }
        #[cfg(miri)]
        // SAFETY: AVX-512F is guaranteed by the caller.
        unsafe {
            miri::ordered(self.0, b.0) & _mm512_cmple_epi32_mask(miri::key(self.0), miri::key(b.0))
        }
    }
    #[inline(always)]
    unsafe fn eq(self, b: Self) -> __mmask16 {
        #[cfg(not(miri))]
        // SAFETY: AVX-512F is guaranteed by the caller.
        unsafe {
            _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(self.0, b.0)
        }
        #[cfg(miri)]
        // SAFETY: AVX-512F is guaranteed by the caller.
        unsafe {
            miri::ordered(self.0, b.0) & _mm512_cmpeq_epi32_mask(miri::key(self.0), miri::key(b.0))
        }
    }
    #[inline(always)]
    unsafe fn nonzero_lanes(self) -> u32 {
        // SAFETY: AVX-512F is guaranteed by the caller. An integer test of the bits but the
        // sign's (zero exactly for +0.0 and -0.0), which Miri also runs.
        unsafe {
            let magnitude =
                _mm512_and_si512(_mm512_castps_si512(self.0), _mm512_set1_epi32(0x7fff_ffff));
            u32::from(_mm512_test_epi32_mask(magnitude, magnitude))
        }
    }
    #[inline(always)]
    unsafe fn select(mask: __mmask16, a: Self, b: Self) -> Self {
        // SAFETY: AVX-512F is guaranteed by the caller. The blend takes its second operand
        // where the mask bit is set.
        F32x16(unsafe { _mm512_mask_blend_ps(mask, b.0, a.0) })
    }

    type Bits = __m512i;

    #[inline(always)]
    unsafe fn to_bits(self) -> __m512i {
        // SAFETY: AVX-512F is guaranteed by the caller; a cast emits no instruction.
        unsafe { _mm512_castps_si512(self.0) }
    }
    #[inline(always)]
    unsafe fn from_bits(bits: __m512i) -> Self {
        // SAFETY: AVX-512F is guaranteed by the caller; a cast emits no instruction.
        F32x16(unsafe { _mm512_castsi512_ps(bits) })
    }
    #[inline(always)]
    unsafe fn splat_bits(x: u32) -> __m512i {
        // SAFETY: AVX-512F is guaranteed by the caller.
        unsafe { _mm512_set1_epi32(x as i32) }
    }
    #[inline(always)]
    unsafe fn bits_add(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512F is guaranteed by the caller.
        unsafe { _mm512_add_epi32(a, b) }
    }
    #[inline(always)]
    unsafe fn bits_and(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512F is guaranteed by the caller.
        unsafe { _mm512_and_si512(a, b) }
    }
    #[inline(always)]
    unsafe fn bits_or(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512F is guaranteed by the caller.
        unsafe { _mm512_or_si512(a, b) }
    }
    #[inline(always)]
    unsafe fn bits_shl<const N: i32>(a: __m512i) -> __m512i {
        // The immediate forms take a `u32` count; a constant variable count folds to the
        // same `vpslld` with an immediate.
        // SAFETY: AVX-512F is guaranteed by the caller.
        unsafe { _mm512_sllv_epi32(a, _mm512_set1_epi32(N)) }
    }
    #[inline(always)]
    unsafe fn bits_shr<const N: i32>(a: __m512i) -> __m512i {
        // SAFETY: AVX-512F is guaranteed by the caller.
        unsafe { _mm512_srlv_epi32(a, _mm512_set1_epi32(N)) }
    }

    const HAS_TRANSPOSE_8X8: bool = true;

    #[inline(always)]
    unsafe fn transpose_8x8(src: *const f32, src_stride: isize, dst: *mut f32, dst_stride: usize) {
        // SAFETY: the AVX-512 entry points also enable AVX2 (see gemm::avx512), so the AVX
        // shuffles are available; blocks are valid by the trait contract.
        unsafe { super::avx2::transpose_8x8(src, src_stride, dst, dst_stride) }
    }
}

/// Float comparisons for Miri, which cannot execute `vcmpps` with a mask result
/// (`llvm.x86.avx512.mask.cmp.ps.512`): the same ordered IEEE comparisons, exactly, from
/// integer operations that lower to generic SIMD operations Miri does run. Real builds use
/// the single instruction.
#[cfg(miri)]
mod miri {
    use std::arch::x86_64::*;

    /// An integer that orders like the float for every non-NaN value, with `-0 == +0`:
    /// sign-magnitude to two's complement, `key = sign ? -magnitude : magnitude`.
    ///
    /// # Safety
    ///
    /// AVX-512F is available.
    #[inline(always)]
    pub(super) unsafe fn key(x: __m512) -> __m512i {
        // SAFETY: AVX-512F is the caller's guarantee.
        unsafe {
            let bits = _mm512_castps_si512(x);
            let magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fff_ffff));
            let sign = _mm512_srai_epi32::<31>(bits);
            _mm512_sub_epi32(_mm512_xor_si512(magnitude, sign), sign)
        }
    }

    /// Lanes where neither value is NaN.
    ///
    /// # Safety
    ///
    /// AVX-512F is available.
    #[inline(always)]
    pub(super) unsafe fn ordered(a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: AVX-512F is the caller's guarantee.
        unsafe {
            let magnitude = _mm512_set1_epi32(0x7fff_ffff);
            let inf = _mm512_set1_epi32(0x7f80_0000);
            let a = _mm512_and_si512(_mm512_castps_si512(a), magnitude);
            let b = _mm512_and_si512(_mm512_castps_si512(b), magnitude);
            _mm512_cmple_epi32_mask(a, inf) & _mm512_cmple_epi32_mask(b, inf)
        }
    }
}
