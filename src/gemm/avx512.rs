//! The AVX-512F micro-kernel: 14 x 32 tiles (28 zmm accumulators).

use super::driver::{MicroKernel, Plan, Problem, run};
use super::kernel::{Tile, dispatch_rows};
use crate::simd::avx512::F32x16;

/// 14 rows x 2 vectors of 16: 28 accumulators, 2 B loads and 1 broadcast use 31 of 32 zmm.
/// 28 FMAs per step against 2 loads and 14 broadcasts (which fold into the FMAs as embedded
/// broadcasts), far more independent chains than the 2 x 4 the FMA pipes need.
pub(crate) struct Avx512Kernel;

// SAFETY: `tile` dispatches to the generic kernel with ROWS <= MR = 14 and NV * LANES = 32.
unsafe impl MicroKernel for Avx512Kernel {
    type V = F32x16;
    const MR: usize = 14;
    const NR: usize = 32;
    /// A 14 x 192 panel (10.5 KiB) and a 192 x 32 panel (24 KiB): 34.5 KiB of a 48 KiB L1d.
    const KC: usize = 192;
    /// 336 x 192 floats = 252 KiB of packed A: an eighth of a 2 MiB L2 (half of a 512 KiB
    /// one), leaving the rest for B micro-panels and C.
    const MC: usize = 336;
    /// 192 x 2048 floats = 1.5 MiB of packed B, held in L3.
    const NC: usize = 2048;

    #[inline(always)]
    unsafe fn tile(t: &Tile, packed_a: bool) {
        // SAFETY: forwarded from the trait contract.
        unsafe {
            dispatch_rows!(
                F32x16,
                2,
                14,
                t,
                packed_a,
                [1 2 3 4 5 6 7 8 9 10 11 12 13 14]
            )
        }
    }
}

/// Runs a problem with the AVX-512 kernel.
///
/// # Safety
///
/// The CPU supports AVX-512F, AVX2 and FMA, and [`run`]'s contract holds.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn gemm(p: &Problem, plan: Plan) {
    // SAFETY: forwarded; this function's features are exactly the kernel's.
    unsafe { run::<Avx512Kernel>(p, plan) }
}
