//! AVX2 + FMA: eight f32 lanes in a `__m256`.

use std::arch::x86_64::*;

use super::Vector;

/// Eight f32 lanes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct F32x8(__m256);

/// A lane mask selecting the first `n` of eight lanes, as `vmaskmovps` wants it (sign bits).
///
/// # Safety
///
/// AVX2 must be available.
#[inline(always)]
unsafe fn first_lanes(n: usize) -> __m256i {
    // SAFETY: the caller guarantees AVX2.
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

// SAFETY: every method uses only AVX, AVX2 and FMA instructions, which the trait's contract
// makes the caller guarantee; the pointer methods touch only the lanes the caller vouches for
// (the masked forms suppress faults on the masked-off lanes).
unsafe impl Vector for F32x8 {
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: AVX is guaranteed by the caller.
        F32x8(unsafe { _mm256_setzero_ps() })
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: AVX is guaranteed by the caller.
        F32x8(unsafe { _mm256_set1_ps(x) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: AVX and 8 readable lanes at p are guaranteed by the caller.
        F32x8(unsafe { _mm256_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: AVX and 8 writable lanes at p are guaranteed by the caller.
        unsafe { _mm256_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        // SAFETY: AVX2 and n readable lanes are guaranteed; masked lanes are not accessed.
        F32x8(unsafe { _mm256_maskload_ps(p, first_lanes(n)) })
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        // Not vmaskmovps: as a store it is microcoded on AMD cores (tens of cycles), while
        // this binary decomposition n = 4 + 2 + 1 costs at most three plain stores.
        // SAFETY: AVX is guaranteed; each store writes lanes below n, which are writable.
        unsafe {
            let mut rest = _mm256_castps256_ps128(self.0);
            let mut p = p;
            if n & 4 != 0 {
                _mm_storeu_ps(p, rest);
                rest = _mm256_extractf128_ps::<1>(self.0);
                p = p.add(4);
            }
            if n & 2 != 0 {
                _mm_store_sd(p.cast::<f64>(), _mm_castps_pd(rest));
                rest = _mm_movehl_ps(rest, rest);
                p = p.add(2);
            }
            if n & 1 != 0 {
                _mm_store_ss(p, rest);
            }
        }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: FMA is guaranteed by the caller.
        F32x8(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        // SAFETY: AVX is guaranteed by the caller.
        F32x8(unsafe { _mm256_mul_ps(self.0, b.0) })
    }
}
