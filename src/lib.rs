//! # simdnet
//!
//! The neural networks of Michael Nielsen's *Neural Networks and Deep Learning* as fast as a
//! CPU allows, on a hand-written, cache-blocked f32 GEMM in `std::arch` SIMD.
//!
//! ## The GEMM engine
//!
//! * [`sgemm`]: a drop-in for `matrixmultiply::sgemm` (raw pointers, arbitrary strides).
//! * [`Gemm`] / [`gemm()`]: the safe API over strided views ([`MatRef`], [`MatMut`]), with the
//!   instruction set and the [`Parallelism`] as explicit values.
//!
//! Strides are in elements: element `(i, j)` of a view lives at
//! `offset + i * row_stride + j * col_stride`, so row-major, column-major, transposed
//! ([`MatRef::t`]) and padded layouts are read in place.
//!
//! ## As a backend for C, C++ and Python
//!
//! With the cargo feature `capi` (off by default), the `capi` module exports the standard
//! `cblas_sgemm` and an inference API over network2 JSON models from `libsimdnet.so` and
//! `libsimdnet.a` (`cargo build --release --features capi`), declared in `include/simdnet.h`.
//!
//! ## Instruction sets
//!
//! | [`Isa`] | CPUs | micro-kernel (rows x columns) |
//! |---|---|---|
//! | `avx512` | x86-64 with AVX-512F | 14 x 32 |
//! | `avx2` | x86-64 with AVX2 and FMA | 6 x 16 |
//! | `neon` | AArch64 | 8 x 12 |
//! | `scalar` | anything | 4 x 4 |
//!
//! The best one the CPU has is detected once at run time ([`selected_isa`]); the environment
//! variable `SIMDNET_ISA=scalar|avx2|avx512|neon` forces one for a whole process, and
//! [`Gemm::with_isa`] picks one for a single multiplier.
//!
//! ```
//! use simdnet::{Matrix, gemm};
//!
//! // C = A * B^T, with B^T read through swapped strides rather than copied.
//! let a = Matrix::from_fn(10, 784, |i, j| ((i + j) % 7) as f32);
//! let w = Matrix::from_fn(30, 784, |i, j| ((i * j) % 5) as f32 - 2.0);
//! let mut z = Matrix::zeros(10, 30);
//! gemm(1.0, a.view(), w.view().t(), 0.0, z.view_mut())?;
//! let expect: f32 = (0..784).map(|p| a[(3, p)] * w[(4, p)]).sum();
//! assert_eq!(z[(3, 4)], expect);
//! # Ok::<(), simdnet::Error>(())
//! ```

#![warn(missing_docs)]

pub mod atomic;
#[cfg(feature = "capi")]
pub mod capi;
pub mod data;
pub mod error;
pub mod gemm;
pub mod isa;
pub mod kernels;
pub mod matrix;
pub mod network;
mod pair;
mod simd;

pub use error::{Error, Result};
pub use gemm::{Gemm, Parallelism, gemm, sgemm};
pub use isa::{Isa, select_isa, selected_isa, try_selected_isa};
pub use matrix::{MatMut, MatRef, Matrix};

/// The README's Rust examples, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
