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

    const HAS_TRANSPOSE_8X8: bool = true;

    #[inline(always)]
    unsafe fn transpose_8x8(src: *const f32, src_stride: isize, dst: *mut f32, dst_stride: usize) {
        // SAFETY: the AVX-512 entry points also enable AVX2 (see gemm::avx512), so the AVX
        // shuffles are available; blocks are valid by the trait contract.
        unsafe { super::avx2::transpose_8x8(src, src_stride, dst, dst_stride) }
    }
}
