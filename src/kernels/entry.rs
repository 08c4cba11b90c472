//! One entry function per instruction set: the only functions that carry `#[target_feature]`.
//! Each instantiates a [`Kernel`] with that ISA's [`Vector`](crate::simd::Vector) type; the
//! kernel's generic code and the vector methods are `#[inline(always)]`, so all of it is
//! compiled with the entry's features.

use super::generic::Kernel;

/// Runs `kernel` with the portable one-lane vector.
///
/// # Safety
///
/// The kernel's operand invariants hold.
pub(crate) unsafe fn scalar<K: Kernel>(kernel: K) -> K::Output {
    // SAFETY: F32x1 needs no target feature; the operands are the caller's contract.
    unsafe { kernel.run::<crate::simd::scalar::F32x1>() }
}

/// Runs `kernel` with AVX2 + FMA vectors.
///
/// # Safety
///
/// The CPU supports AVX2 and FMA, and the kernel's operand invariants hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn avx2<K: Kernel>(kernel: K) -> K::Output {
    // SAFETY: this function's features are exactly F32x8's; operands are the caller's contract.
    unsafe { kernel.run::<crate::simd::avx2::F32x8>() }
}

/// Runs `kernel` with AVX-512F vectors.
///
/// # Safety
///
/// The CPU supports AVX-512F, AVX2 and FMA, and the kernel's operand invariants hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn avx512<K: Kernel>(kernel: K) -> K::Output {
    // SAFETY: this function's features include F32x16's; operands are the caller's contract.
    unsafe { kernel.run::<crate::simd::avx512::F32x16>() }
}

/// Runs `kernel` with NEON vectors.
///
/// # Safety
///
/// The CPU supports NEON, and the kernel's operand invariants hold.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn neon<K: Kernel>(kernel: K) -> K::Output {
    // SAFETY: this function's features are exactly F32x4's; operands are the caller's contract.
    unsafe { kernel.run::<crate::simd::neon::F32x4>() }
}
