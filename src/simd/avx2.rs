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

/// For each 8-bit lane mask, the numbers of its set lanes, lowest first, one per byte (the
/// bytes past the count are 0): the permutation that left-packs those lanes.
const LEFT_PACK: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut mask = 0;
    while mask < 256 {
        let (mut lane, mut packed, mut entry) = (0, 0, 0u64);
        while lane < 8 {
            if mask >> lane & 1 == 1 {
                entry |= (lane as u64) << (8 * packed);
                packed += 1;
            }
            lane += 1;
        }
        table[mask] = entry;
        mask += 1;
    }
    table
};

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
                // Two lanes as one unaligned 8-byte write (`_mm_store_sd` would assume f64 alignment).
                p.cast::<f64>()
                    .write_unaligned(_mm_cvtsd_f64(_mm_castps_pd(rest)));
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
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: AVX is guaranteed by the caller.
        F32x8(unsafe { _mm256_add_ps(self.0, b.0) })
    }
    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        // SAFETY: AVX is guaranteed by the caller.
        F32x8(unsafe { _mm256_sub_ps(self.0, b.0) })
    }
    #[inline(always)]
    unsafe fn div(self, b: Self) -> Self {
        // SAFETY: AVX is guaranteed by the caller.
        F32x8(unsafe { _mm256_div_ps(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        // SAFETY: AVX is guaranteed by the caller.
        F32x8(unsafe { _mm256_sqrt_ps(self.0) })
    }

    /// All-ones lanes where true (what `vblendvps` reads: the sign bit).
    type Mask = __m256;

    #[inline(always)]
    unsafe fn lt(self, b: Self) -> __m256 {
        // SAFETY: AVX is guaranteed by the caller.
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, b.0) }
    }
    #[inline(always)]
    unsafe fn le(self, b: Self) -> __m256 {
        // SAFETY: AVX is guaranteed by the caller.
        unsafe { _mm256_cmp_ps::<_CMP_LE_OQ>(self.0, b.0) }
    }
    #[inline(always)]
    unsafe fn eq(self, b: Self) -> __m256 {
        // SAFETY: AVX is guaranteed by the caller.
        unsafe { _mm256_cmp_ps::<_CMP_EQ_OQ>(self.0, b.0) }
    }
    #[inline(always)]
    unsafe fn nonzero_lanes(self) -> u32 {
        // SAFETY: AVX is guaranteed by the caller. NEQ_UQ is true for NaN lanes, and false
        // for -0.0 (which compares equal to 0.0); movemask gathers the lanes' sign bits.
        unsafe {
            _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(self.0, _mm256_setzero_ps())) as u32
        }
    }
    #[inline(always)]
    unsafe fn compress_store(
        self,
        bits: u32,
        first: u32,
        values: *mut f32,
        index: *mut u32,
    ) -> usize {
        // SAFETY: AVX2 is guaranteed by the caller; bits < 256 (8 lanes) indexes the table;
        // the two unaligned stores write 8 elements each, which the caller vouches for.
        unsafe {
            let order =
                _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(LEFT_PACK[bits as usize & 0xff] as i64));
            _mm256_storeu_ps(values, _mm256_permutevar8x32_ps(self.0, order));
            _mm256_storeu_si256(
                index.cast::<__m256i>(),
                _mm256_add_epi32(order, _mm256_set1_epi32(first as i32)),
            );
        }
        bits.count_ones() as usize
    }
    #[inline(always)]
    unsafe fn select(mask: __m256, a: Self, b: Self) -> Self {
        // SAFETY: AVX is guaranteed by the caller. blendv takes its second operand where the
        // mask lane's sign bit is set.
        F32x8(unsafe { _mm256_blendv_ps(b.0, a.0, mask) })
    }

    type Bits = __m256i;

    #[inline(always)]
    unsafe fn to_bits(self) -> __m256i {
        // SAFETY: AVX is guaranteed by the caller; a cast emits no instruction.
        unsafe { _mm256_castps_si256(self.0) }
    }
    #[inline(always)]
    unsafe fn from_bits(bits: __m256i) -> Self {
        // SAFETY: AVX is guaranteed by the caller; a cast emits no instruction.
        F32x8(unsafe { _mm256_castsi256_ps(bits) })
    }
    #[inline(always)]
    unsafe fn splat_bits(x: u32) -> __m256i {
        // SAFETY: AVX is guaranteed by the caller.
        unsafe { _mm256_set1_epi32(x as i32) }
    }
    #[inline(always)]
    unsafe fn bits_add(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 is guaranteed by the caller.
        unsafe { _mm256_add_epi32(a, b) }
    }
    #[inline(always)]
    unsafe fn bits_and(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 is guaranteed by the caller.
        unsafe { _mm256_and_si256(a, b) }
    }
    #[inline(always)]
    unsafe fn bits_or(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 is guaranteed by the caller.
        unsafe { _mm256_or_si256(a, b) }
    }
    #[inline(always)]
    unsafe fn bits_shl<const N: i32>(a: __m256i) -> __m256i {
        // SAFETY: AVX2 is guaranteed by the caller.
        unsafe { _mm256_slli_epi32::<N>(a) }
    }
    #[inline(always)]
    unsafe fn bits_shr<const N: i32>(a: __m256i) -> __m256i {
        // SAFETY: AVX2 is guaranteed by the caller.
        unsafe { _mm256_srli_epi32::<N>(a) }
    }

    const HAS_TRANSPOSE_8X8: bool = true;

    #[inline(always)]
    unsafe fn transpose_8x8(src: *const f32, src_stride: isize, dst: *mut f32, dst_stride: usize) {
        // SAFETY: forwarded from the trait contract (AVX available, blocks valid).
        unsafe { transpose_8x8(src, src_stride, dst, dst_stride) }
    }
}

/// Transposes an 8 x 8 block of f32 in registers (24 shuffles for 64 values, against 64
/// scalar loads and stores): unpack pairs of rows, shuffle pairs of pairs, swap 128-bit halves.
///
/// # Safety
///
/// AVX is available; the 8 source rows of 8 floats at `src + r*src_stride` are readable and
/// the 8 destination rows at `dst + c*dst_stride` writable.
#[inline(always)]
pub(crate) unsafe fn transpose_8x8(
    src: *const f32,
    src_stride: isize,
    dst: *mut f32,
    dst_stride: usize,
) {
    // SAFETY: AVX is guaranteed; loads and stores stay in the rows the caller vouches for.
    unsafe {
        // (No closures here: a closure is compiled without the caller's target features.)
        let r0 = _mm256_loadu_ps(src);
        let r1 = _mm256_loadu_ps(src.wrapping_offset(src_stride));
        let r2 = _mm256_loadu_ps(src.wrapping_offset(2 * src_stride));
        let r3 = _mm256_loadu_ps(src.wrapping_offset(3 * src_stride));
        let r4 = _mm256_loadu_ps(src.wrapping_offset(4 * src_stride));
        let r5 = _mm256_loadu_ps(src.wrapping_offset(5 * src_stride));
        let r6 = _mm256_loadu_ps(src.wrapping_offset(6 * src_stride));
        let r7 = _mm256_loadu_ps(src.wrapping_offset(7 * src_stride));
        // [a0 b0 a1 b1 | a4 b4 a5 b5] and [a2 b2 a3 b3 | a6 b6 a7 b7] for each pair of rows.
        let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
        let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
        let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
        let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
        // Columns c and c + 4 of rows 0..4 (s0..s3) and of rows 4..8 (s4..s7).
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let d = dst_stride;
        _mm256_storeu_ps(dst, _mm256_permute2f128_ps::<0x20>(s0, s4));
        _mm256_storeu_ps(dst.add(d), _mm256_permute2f128_ps::<0x20>(s1, s5));
        _mm256_storeu_ps(dst.add(2 * d), _mm256_permute2f128_ps::<0x20>(s2, s6));
        _mm256_storeu_ps(dst.add(3 * d), _mm256_permute2f128_ps::<0x20>(s3, s7));
        _mm256_storeu_ps(dst.add(4 * d), _mm256_permute2f128_ps::<0x31>(s0, s4));
        _mm256_storeu_ps(dst.add(5 * d), _mm256_permute2f128_ps::<0x31>(s1, s5));
        _mm256_storeu_ps(dst.add(6 * d), _mm256_permute2f128_ps::<0x31>(s2, s6));
        _mm256_storeu_ps(dst.add(7 * d), _mm256_permute2f128_ps::<0x31>(s3, s7));
    }
}
