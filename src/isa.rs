//! Instruction-set selection: detected once at run time, cached, and overridable.
//!
//! [`selected_isa`] is the path every default entry point uses. It is the best instruction
//! set this CPU has, unless the environment variable `SIMDNET_ISA` names another one
//! (`scalar`, `avx2`, `avx512` or `neon`; empty counts as unset). The variable is read once,
//! on the first call, and never again. Code that wants a particular path for one call (tests,
//! benchmarks, the `train --isa` flag) passes an [`Isa`] explicitly instead, e.g. through
//! [`Gemm::with_isa`](crate::Gemm::with_isa); there is no global setter.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The name of the environment variable that forces an instruction set.
pub const ISA_ENV_VAR: &str = "SIMDNET_ISA";

/// A family of SIMD kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Portable Rust with no target features; runs everywhere.
    Scalar,
    /// x86-64 AVX2 with FMA3 (256-bit vectors).
    Avx2,
    /// x86-64 AVX-512F (512-bit vectors with lane masks).
    Avx512,
    /// AArch64 Advanced SIMD (128-bit vectors).
    Neon,
}

impl Isa {
    /// Every instruction set simdnet has kernels for, from the most portable to the widest.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Neon, Isa::Avx2, Isa::Avx512];

    /// The lower-case name used by `SIMDNET_ISA`, `--isa` and [`Display`](fmt::Display).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Whether this CPU can run the kernels of this instruction set.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The instruction sets this CPU supports, scalar first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL
            .into_iter()
            .filter(|isa| isa.is_available())
            .collect()
    }

    /// The widest instruction set this CPU supports.
    pub fn best_available() -> Isa {
        Isa::ALL
            .into_iter()
            .rev()
            .find(|isa| isa.is_available())
            .unwrap_or(Isa::Scalar)
    }

    /// The instruction set whose fused element-wise and sparse kernels
    /// ([`Kernels`](crate::kernels::Kernels)) the trainer and the batch inference run beside a
    /// GEMM on `self`: AVX2's for AVX-512, `self` otherwise. An AVX-512 CPU always has AVX2 and
    /// FMA ([`Isa::is_available`] checks them), so the answer is available whenever `self` is.
    ///
    /// Why not the 512-bit kernels: they work on rows as short as a hidden layer (30 or 100
    /// neurons, 120 or 400 bytes), where nearly every 64-byte load and store of a row of
    /// `W^T` straddles two cache lines and ends in a masked partial vector. On an Intel Xeon
    /// with AVX-512 a [784, 30, 10] mini-batch-10 epoch took 0.100 s with them and 0.064 s
    /// with AVX2's, the GEMM on AVX-512 in both; the 512-bit GEMM itself is as fast or faster
    /// at every shape (see the README's performance section). The AVX-512 kernels remain
    /// available through [`Kernels::for_isa`](crate::kernels::Kernels::for_isa).
    pub fn fused_kernels_isa(self) -> Isa {
        match self {
            Isa::Avx512 => Isa::Avx2,
            isa => isa,
        }
    }

    /// `Ok(self)` if the CPU supports it, otherwise [`Error::IsaUnavailable`].
    pub fn require(self) -> Result<Isa> {
        if self.is_available() {
            Ok(self)
        } else {
            Err(Error::IsaUnavailable {
                isa: self,
                available: Isa::available()
                    .iter()
                    .map(|isa| isa.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }

    /// Resolves an override such as the value of `SIMDNET_ISA`: `None` or empty text means
    /// "the best available"; anything else must name an instruction set this CPU has.
    pub fn resolve(requested: Option<&str>) -> Result<Isa> {
        match requested.map(str::trim) {
            None | Some("") => Ok(Isa::best_available()),
            Some(text) => text.parse::<Isa>()?.require(),
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = Error;

    fn from_str(text: &str) -> Result<Isa> {
        Isa::ALL
            .into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| Error::UnknownIsa {
                value: text.to_owned(),
            })
    }
}

static SELECTED: OnceLock<Result<Isa>> = OnceLock::new();

/// The instruction set the default entry points use: `SIMDNET_ISA` if set and non-empty,
/// otherwise the best this CPU supports. Resolved once; later calls return the cached answer.
///
/// Returns an error if `SIMDNET_ISA` is not a known name or names an instruction set the CPU
/// lacks. Programs should call this first so that such a mistake is reported cleanly.
pub fn try_selected_isa() -> Result<Isa> {
    SELECTED
        .get_or_init(|| Isa::resolve(std::env::var(ISA_ENV_VAR).ok().as_deref()))
        .clone()
}

/// Makes `isa` the process-wide selection (what `SIMDNET_ISA` would do), for programs that
/// take the instruction set as an option: call it before anything uses the default ISA. It
/// takes precedence over `SIMDNET_ISA`, which is then not read.
///
/// # Errors
///
/// [`Error::IsaUnavailable`] if this CPU lacks `isa`; [`Error::BadOption`] if a different
/// instruction set was already selected (the choice is made once per process); the error of
/// a bad `SIMDNET_ISA` if that was already resolved.
pub fn select_isa(isa: Isa) -> Result<Isa> {
    let isa = isa.require()?;
    let chosen = SELECTED.get_or_init(|| Ok(isa)).clone()?;
    if chosen == isa {
        Ok(isa)
    } else {
        Err(Error::BadOption {
            option: "instruction set",
            problem: format!("{isa} was requested after {chosen} had already been selected"),
        })
    }
}

/// The instruction set in use by default; see [`try_selected_isa`].
///
/// # Panics
///
/// If `SIMDNET_ISA` is set to an unknown name or to an instruction set this CPU lacks. The
/// message names the variable and the problem. Call [`try_selected_isa`] to handle that case.
pub fn selected_isa() -> Isa {
    match try_selected_isa() {
        Ok(isa) => isa,
        Err(err) => panic!("{ISA_ENV_VAR}: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>().unwrap(), isa);
            assert_eq!(isa.to_string(), isa.name());
        }
        assert_eq!("AVX2".parse::<Isa>().unwrap(), Isa::Avx2);
        assert!(matches!(
            "sse9".parse::<Isa>(),
            Err(Error::UnknownIsa { .. })
        ));
    }

    #[test]
    fn resolve_treats_empty_as_unset() {
        assert_eq!(Isa::resolve(None).unwrap(), Isa::best_available());
        assert_eq!(Isa::resolve(Some("")).unwrap(), Isa::best_available());
        assert_eq!(Isa::resolve(Some("scalar")).unwrap(), Isa::Scalar);
    }

    #[test]
    fn unavailable_isa_is_a_clear_error() {
        #[cfg(target_arch = "x86_64")]
        let missing = Isa::Neon;
        #[cfg(not(target_arch = "x86_64"))]
        let missing = Isa::Avx2;
        let err = Isa::resolve(Some(missing.name())).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(missing.name()), "{text}");
        assert!(text.contains("does not support"), "{text}");
        assert!(text.contains("scalar"), "{text}");
    }

    #[test]
    fn best_is_available() {
        assert!(Isa::best_available().is_available());
        assert!(Isa::available().contains(&Isa::Scalar));
    }
}
