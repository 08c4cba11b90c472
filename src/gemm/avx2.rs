//! The AVX2 + FMA micro-kernel: 6 x 16 tiles (12 ymm accumulators).

use super::driver::{MicroKernel, Plan, Problem, run};
use super::kernel::{Tile, dispatch_rows};
use crate::simd::avx2::F32x8;

/// 6 rows x 2 vectors of 8: 12 accumulators, 2 B loads and 1 broadcast use 15 of 16 ymm.
/// Each step issues 12 FMAs against 2 loads and 6 broadcasts, enough independent chains
/// (12 > 2 ports x 4 cycles latency) to keep both FMA pipes busy.
pub(crate) struct Avx2Kernel;

// SAFETY: `tile` dispatches to the generic kernel with ROWS <= MR = 6 and NV * LANES = 16 = NR.
unsafe impl MicroKernel for Avx2Kernel {
    type V = F32x8;
    const MR: usize = 6;
    const NR: usize = 16;
    /// A 6 x 256 panel (6 KiB) and a 256 x 16 panel (16 KiB) share a 32 KiB (Zen 3) or
    /// 48 KiB (Golden Cove) L1d with room left for the C tile's lines.
    const KC: usize = 256;
    /// 144 x 256 floats = 144 KiB of packed A: under half of a 512 KiB L2, so B micro-panels
    /// streaming through do not evict it.
    const MC: usize = 144;
    /// 256 x 2048 floats = 2 MiB of packed B, held in the shared L3.
    const NC: usize = 2048;

    #[inline(always)]
    unsafe fn tile(t: &Tile, packed_a: bool) {
        // SAFETY: forwarded from the trait contract.
        unsafe { dispatch_rows!(F32x8, 2, 6, t, packed_a, [1 2 3 4 5 6]) }
    }
}

/// Runs a problem with the AVX2 kernel.
///
/// # Safety
///
/// The CPU supports AVX2 and FMA, and [`run`]'s contract holds.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn gemm(p: &Problem, plan: Plan) {
    // SAFETY: forwarded; this function's features are exactly the kernel's.
    unsafe { run::<Avx2Kernel>(p, plan) }
}
