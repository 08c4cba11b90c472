//! A small per-ISA vocabulary of f32 vector operations.
//!
//! Algorithms (the GEMM micro-kernel, the fused element-wise kernels) are written once,
//! generic over [`Vector`]; each instruction set supplies one implementation of the trait in
//! its own module. Every method is `#[inline(always)]` and carries no `#[target_feature]`:
//! the operations are inlined into an entry function that does carry the features, and that
//! entry is only ever called after the features were detected (see [`crate::isa`]).

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
pub(crate) mod math;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
pub(crate) mod scalar;

/// The widest vector any implementation has, in f32 lanes (AVX-512).
pub(crate) const MAX_LANES: usize = 16;

/// One register of f32 lanes and the operations the kernels need.
///
/// # Safety
///
/// Implementations are only sound to call from code compiled with (or running on a CPU
/// verified to have) the target features of their instruction set. Every method is `unsafe`
/// for that reason; those that take pointers also require the pointed-to lanes to be valid.
pub(crate) unsafe trait Vector: Copy {
    /// Number of f32 lanes.
    const LANES: usize;

    /// All lanes zero.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn zero() -> Self;

    /// All lanes `x`.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn splat(x: f32) -> Self;

    /// Loads `LANES` consecutive values (no alignment needed).
    ///
    /// # Safety
    ///
    /// Features available; `p..p+LANES` readable.
    unsafe fn load(p: *const f32) -> Self;

    /// Stores `LANES` consecutive values (no alignment needed).
    ///
    /// # Safety
    ///
    /// Features available; `p..p+LANES` writable.
    unsafe fn store(self, p: *mut f32);

    /// Loads the first `n < LANES` values; the other lanes are zero and their memory is not
    /// touched.
    ///
    /// # Safety
    ///
    /// Features available; `p..p+n` readable.
    unsafe fn load_partial(p: *const f32, n: usize) -> Self;

    /// Stores the first `n < LANES` lanes; memory past them is not touched.
    ///
    /// # Safety
    ///
    /// Features available; `p..p+n` writable.
    unsafe fn store_partial(self, p: *mut f32, n: usize);

    /// `self * b + c`, with a single rounding where the instruction set has fused multiply-add.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;

    /// Lane-wise product.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn mul(self, b: Self) -> Self;

    /// Lane-wise sum.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn add(self, b: Self) -> Self;

    /// Lane-wise difference `self - b`.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn sub(self, b: Self) -> Self;

    /// Lane-wise quotient `self / b`, correctly rounded (IEEE division, not an estimate).
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn div(self, b: Self) -> Self;

    /// The square root of each lane, correctly rounded (IEEE `sqrt`); NaN for negative lanes.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn sqrt(self) -> Self;

    /// A per-lane boolean, as the instruction set represents it (a lane mask register, a
    /// vector of all-ones / all-zeros lanes, or a `bool`).
    type Mask: Copy;

    /// Lanes where `self < b` (ordered: false where either is NaN).
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn lt(self, b: Self) -> Self::Mask;

    /// Lanes where `self <= b` (ordered: false where either is NaN).
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn le(self, b: Self) -> Self::Mask;

    /// Lanes where `self == b` (ordered: false where either is NaN, so `x.eq(x)` is "not NaN").
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn eq(self, b: Self) -> Self::Mask;

    /// One bit per lane (lane `i` in bit `i`), set where the lane is neither `+0.0` nor
    /// `-0.0` (NaN and infinities count as nonzero).
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn nonzero_lanes(self) -> u32;

    /// Left-packs the lanes selected by `bits` (bit `i` for lane `i`, none at or beyond
    /// `LANES`): writes them, lowest lane first, to `values[0..]` and their lane numbers plus
    /// `first` to `index[0..]`, and returns how many there are. Slots after those may be
    /// overwritten with garbage, up to `LANES` slots in all: the scan for nonzero inputs
    /// stores whole vectors and advances by the count.
    ///
    /// The default moves one lane at a time; AVX2 permutes the vector once through a table.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available; `values` and `index` must be valid
    /// for writes of `LANES` elements each.
    #[inline(always)]
    unsafe fn compress_store(
        self,
        bits: u32,
        first: u32,
        values: *mut f32,
        index: *mut u32,
    ) -> usize {
        let mut lanes = [0.0f32; MAX_LANES];
        let mut bits = bits;
        let mut count = 0;
        // SAFETY: the ISA is the caller's contract; LANES <= MAX_LANES lanes are stored into
        // `lanes`; the set bits are below LANES and number at most LANES, so the writes stay
        // within the LANES slots the caller vouches for.
        unsafe {
            self.store(lanes.as_mut_ptr());
            while bits != 0 {
                let lane = bits.trailing_zeros();
                *values.add(count) = lanes[lane as usize];
                *index.add(count) = first + lane;
                count += 1;
                bits &= bits - 1;
            }
        }
        count
    }

    /// `mask ? a : b`, lane by lane.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn select(mask: Self::Mask, a: Self, b: Self) -> Self;

    /// The same lanes as 32-bit integers, for bit manipulation of the float encoding.
    type Bits: Copy;

    /// Reinterprets the lanes' bits as integers (no conversion).
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn to_bits(self) -> Self::Bits;

    /// Reinterprets integer lanes as f32 bit patterns (no conversion).
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn from_bits(bits: Self::Bits) -> Self;

    /// All integer lanes `x`.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn splat_bits(x: u32) -> Self::Bits;

    /// Lane-wise wrapping integer sum.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn bits_add(a: Self::Bits, b: Self::Bits) -> Self::Bits;

    /// Lane-wise bitwise and.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn bits_and(a: Self::Bits, b: Self::Bits) -> Self::Bits;

    /// Lane-wise bitwise or.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn bits_or(a: Self::Bits, b: Self::Bits) -> Self::Bits;

    /// Lane-wise shift left by `N` in `1..32`, shifting in zeros.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn bits_shl<const N: i32>(a: Self::Bits) -> Self::Bits;

    /// Lane-wise logical shift right by `N` in `1..32`, shifting in zeros.
    ///
    /// # Safety
    ///
    /// The instruction set's features must be available.
    unsafe fn bits_shr<const N: i32>(a: Self::Bits) -> Self::Bits;

    /// Whether [`Vector::transpose_8x8`] is implemented with vector shuffles.
    const HAS_TRANSPOSE_8X8: bool = false;

    /// Transposes an 8 x 8 block: value `c` of source row `r` (at `src + r*src_stride + c`)
    /// becomes value `r` of destination row `c` (at `dst + c*dst_stride + r`).
    ///
    /// # Safety
    ///
    /// Features available; `HAS_TRANSPOSE_8X8` is true; both blocks are valid and disjoint.
    unsafe fn transpose_8x8(src: *const f32, src_stride: isize, dst: *mut f32, dst_stride: usize) {
        let _ = (src, src_stride, dst, dst_stride);
        unreachable!("transpose_8x8 called on a vector type without it")
    }
}

/// Hints the CPU to bring the cache line holding `p` into L1. Never faults, whatever `p` is;
/// a no-op where the target has no stable prefetch instruction.
#[inline(always)]
pub(crate) fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is part of baseline x86-64 (SSE) and is only a hint: it never
    // faults or changes memory, whatever address it is given.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
