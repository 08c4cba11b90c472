//! The portable micro-kernel: 4 x 4 tiles of plain f32 arithmetic.

use super::driver::{MicroKernel, Plan, Problem, run};
use super::kernel::{Tile, dispatch_rows};
use crate::simd::scalar::F32x1;

/// 4 x 4 with one-lane "vectors": 16 accumulators fit the 16 FP registers of x86-64 (and
/// half of AArch64's) without spilling, on any target.
pub(crate) struct ScalarKernel;

// SAFETY: `tile` dispatches to the generic kernel with ROWS <= MR = 4 and NV * LANES = 4 = NR.
unsafe impl MicroKernel for ScalarKernel {
    type V = F32x1;
    const MR: usize = 4;
    const NR: usize = 4;
    /// 4 x 256 A and 256 x 4 B panels: 8 KiB, well inside any L1.
    const KC: usize = 256;
    /// 128 x 256 floats = 128 KiB of A per block.
    const MC: usize = 128;
    /// 256 x 2048 floats = 2 MiB of B per block.
    const NC: usize = 2048;

    #[inline(always)]
    unsafe fn tile(t: &Tile, packed_a: bool) {
        // SAFETY: forwarded from the trait contract.
        unsafe { dispatch_rows!(F32x1, 4, 4, t, packed_a, [1 2 3 4]) }
    }
}

/// Runs a problem with the scalar kernel.
///
/// # Safety
///
/// As [`run`] (the scalar kernel needs no CPU features).
pub(crate) unsafe fn gemm(p: &Problem, plan: Plan) {
    // SAFETY: forwarded from this function's contract.
    unsafe { run::<ScalarKernel>(p, plan) }
}
