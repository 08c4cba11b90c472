//! The NEON micro-kernel: 8 x 12 tiles (24 q-register accumulators).

use super::driver::{MicroKernel, Plan, Problem, run};
use super::kernel::{Tile, dispatch_rows};
use crate::simd::neon::F32x4;

/// 8 rows x 3 vectors of 4: 24 accumulators, 3 B loads and 1 broadcast use 28 of the 32
/// 128-bit registers; 24 FMAs per step against 3 loads and 8 broadcasts.
pub(crate) struct NeonKernel;

// SAFETY: `tile` dispatches to the generic kernel with ROWS <= MR = 8 and NV * LANES = 12.
unsafe impl MicroKernel for NeonKernel {
    type V = F32x4;
    const MR: usize = 8;
    const NR: usize = 12;
    /// An 8 x 256 panel (8 KiB) and a 256 x 12 panel (12 KiB) fit a 64 KiB (or 32 KiB) L1d.
    const KC: usize = 256;
    /// 128 x 256 floats = 128 KiB of packed A, for a 512 KiB to 1 MiB L2.
    const MC: usize = 128;
    /// 256 x 2040 floats = 2 MiB of packed B (2040 is a multiple of NR = 12).
    const NC: usize = 2040;

    #[inline(always)]
    unsafe fn tile(t: &Tile, packed_a: bool) {
        // SAFETY: forwarded from the trait contract.
        unsafe { dispatch_rows!(F32x4, 3, 8, t, packed_a, [1 2 3 4 5 6 7 8]) }
    }
}

/// Runs a problem with the NEON kernel.
///
/// # Safety
///
/// The CPU supports NEON, and [`run`]'s contract holds.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn gemm(p: &Problem, plan: Plan) {
    // SAFETY: forwarded; this function's features are exactly the kernel's.
    unsafe { run::<NeonKernel>(p, plan) }
}
