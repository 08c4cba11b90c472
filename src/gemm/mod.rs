//! Single-precision matrix multiplication: `C <- alpha * A * B + beta * C`.
//!
//! Two entry points share one engine:
//!
//! * [`Gemm::run`] (and the shorthand [`gemm()`]) over checked [`MatRef`]/[`MatMut`] views,
//!   returning an error on mismatched shapes;
//! * [`sgemm`], a drop-in for `matrixmultiply::sgemm` over raw pointers and strides.
//!
//! Either way the product runs the cache-blocked loop nest (`src/gemm/driver.rs`) with the
//! micro-kernel of one [`Isa`], split over rows or columns of C (never over k) when it is
//! large enough to gain from threads, so that the result is bitwise the same for any thread
//! count.

mod dot;
mod driver;
mod kernel;
mod pack;
mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::isa::{Isa, selected_isa, try_selected_isa};
use crate::matrix::{MatMut, MatRef};
use driver::{MicroKernel, Plan, Problem};

/// How a product may use threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Parallelism {
    /// Always on the calling thread.
    Sequential,
    /// On the current rayon thread pool (install a pool to choose the thread count), for
    /// products of at least [`PARALLEL_MIN_FLOPS`]; smaller ones stay on the calling thread.
    #[default]
    Rayon,
}

/// Products with fewer floating-point operations (`2 m n k`) than this run on one thread even
/// under [`Parallelism::Rayon`]. Measured on a 2-core shared VM with `cargo bench --bench
/// gemm_vs -- --threads`: from 33 MFLOP (256^3) up, 2 threads gave 1.6-1.8x; at 5-16 MFLOP
/// (the trainer's (100,784,30) and (100,784,100)) runs ranged from 0.76x to 1.47x, so those
/// stay on one thread, where they can never be slower than one thread.
pub const PARALLEL_MIN_FLOPS: usize = 32_000_000;

/// A configured matrix multiplier: which kernels to run and how to use threads.
///
/// ```
/// use simdnet::{Gemm, Matrix, Parallelism};
///
/// let a = Matrix::from_fn(2, 3, |i, j| (i + j) as f32);
/// let b = Matrix::from_fn(3, 2, |i, j| (i * j) as f32);
/// let mut c = Matrix::zeros(2, 2);
/// Gemm::new()
///     .with_parallelism(Parallelism::Sequential)
///     .run(1.0, a.view(), b.view(), 0.0, c.view_mut())?;
/// assert_eq!(c.as_slice(), &[0.0, 5.0, 0.0, 8.0]);
/// # Ok::<(), simdnet::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gemm {
    isa: Isa,
    parallelism: Parallelism,
    min_parallel_flops: usize,
    /// Products of fewer flops than `.1` run on the ISA `.0` instead
    /// ([`Gemm::with_small_products_on`]).
    small_products: Option<(Isa, usize)>,
}

impl Default for Gemm {
    fn default() -> Self {
        Gemm::new()
    }
}

impl Gemm {
    /// The [`selected_isa`] with [`Parallelism::Rayon`].
    ///
    /// # Panics
    ///
    /// If `SIMDNET_ISA` is invalid; use [`Gemm::try_new`] to get an error instead.
    pub fn new() -> Gemm {
        Gemm {
            isa: selected_isa(),
            parallelism: Parallelism::Rayon,
            min_parallel_flops: PARALLEL_MIN_FLOPS,
            small_products: None,
        }
    }

    /// As [`Gemm::new`], but reports a bad `SIMDNET_ISA` as an error.
    pub fn try_new() -> Result<Gemm> {
        Ok(Gemm {
            isa: try_selected_isa()?,
            parallelism: Parallelism::Rayon,
            min_parallel_flops: PARALLEL_MIN_FLOPS,
            small_products: None,
        })
    }

    /// Uses the kernels of `isa`; an error if this CPU does not support it.
    pub fn with_isa(self, isa: Isa) -> Result<Gemm> {
        Ok(Gemm {
            isa: isa.require()?,
            ..self
        })
    }

    /// Uses the given threading policy.
    pub fn with_parallelism(self, parallelism: Parallelism) -> Gemm {
        Gemm {
            parallelism,
            ..self
        }
    }

    /// Splits products across threads (with [`Parallelism::Rayon`]) from `flops` floating-point
    /// operations (`2 m n k`) up, instead of [`PARALLEL_MIN_FLOPS`]. For callers that run many
    /// small products back to back on a pool whose threads stay busy (the trainer), where a
    /// split pays off earlier than for an isolated call that has to wake the pool.
    pub fn with_min_parallel_flops(self, flops: usize) -> Gemm {
        Gemm {
            min_parallel_flops: flops,
            ..self
        }
    }

    /// Runs products of fewer than `below_flops` floating-point operations (`2 m n k`) on
    /// `isa` instead of [`Gemm::isa`] (an error if this CPU lacks it). For the trainer on
    /// AVX-512: its products at small mini-batches are a few thousand flops, too small to
    /// fill one 14 x 32 AVX-512 tile, and its epochs measured 3-5% faster with them on AVX2.
    pub(crate) fn with_small_products_on(self, isa: Isa, below_flops: usize) -> Result<Gemm> {
        Ok(Gemm {
            small_products: Some((isa.require()?, below_flops)),
            ..self
        })
    }

    /// The instruction set that runs an `m x k` by `k x n` product.
    fn isa_for(&self, m: usize, n: usize, k: usize) -> Isa {
        match self.small_products {
            Some((isa, below)) if 2 * (m as u128) * (n as u128) * (k as u128) < below as u128 => {
                isa
            }
            _ => self.isa,
        }
    }

    /// Grows the calling thread's packing buffers so that products of up to `m x k` times
    /// `k x n` run on it without allocating, including the pieces a split product hands to
    /// this thread. Each thread keeps its buffers for its lifetime and grows them on demand,
    /// so this only matters to callers that must not allocate after a warm-up (a training
    /// loop, a real-time caller); to prepare every thread of a pool, call it from
    /// `rayon::broadcast`.
    pub fn reserve_thread_buffers(&self, m: usize, n: usize, k: usize) {
        // A smaller product of the same layer (the last mini-batch of an epoch) may fall
        // under the small products' bound: their kernel gets buffers for this size too.
        if let Some((isa, _)) = self.small_products
            && isa != self.isa
        {
            Gemm {
                isa,
                small_products: None,
                ..*self
            }
            .reserve_thread_buffers(m, n, k);
        }
        match self.isa {
            Isa::Scalar => driver::reserve::<scalar::ScalarKernel>(m, n, k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => driver::reserve::<avx2::Avx2Kernel>(m, n, k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => driver::reserve::<avx512::Avx512Kernel>(m, n, k),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => driver::reserve::<neon::NeonKernel>(m, n, k),
            #[allow(unreachable_patterns)]
            isa => unreachable!("a Gemm for {isa} cannot be built on this target"),
        }
    }

    /// The instruction set this multiplier runs.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The threading policy.
    pub fn parallelism(&self) -> Parallelism {
        self.parallelism
    }

    /// `C <- alpha * A * B + beta * C` for an `m x k` A, a `k x n` B and an `m x n` C.
    ///
    /// When `beta == 0`, C is written without being read, so it may hold NaN or garbage.
    /// When `alpha == 0` or `k == 0`, A and B are not read and C becomes `beta * C`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the shapes do not agree. (Views are checked for bounds and,
    /// for C, distinct addresses when they are made; borrowing rules keep C apart from A, B.)
    pub fn run(
        &self,
        alpha: f32,
        a: MatRef<'_>,
        b: MatRef<'_>,
        beta: f32,
        mut c: MatMut<'_>,
    ) -> Result<()> {
        if a.cols() != b.rows() || a.rows() != c.rows() || b.cols() != c.cols() {
            return Err(Error::ShapeMismatch {
                op: "gemm",
                a_rows: a.rows(),
                a_cols: a.cols(),
                b_rows: b.rows(),
                b_cols: b.cols(),
                c_rows: c.rows(),
                c_cols: c.cols(),
            });
        }
        let problem = Problem {
            m: a.rows(),
            k: a.cols(),
            n: b.cols(),
            alpha,
            a: a.as_ptr(),
            rsa: a.row_stride(),
            csa: a.col_stride(),
            b: b.as_ptr(),
            rsb: b.row_stride(),
            csb: b.col_stride(),
            beta,
            rsc: c.row_stride(),
            csc: c.col_stride(),
            c: c.as_mut_ptr(),
        };
        // SAFETY: the views guarantee in-bounds elements for their shapes (checked when they
        // were made), C's elements have distinct addresses (checked by MatMut), C cannot alias
        // A or B (it is an exclusive borrow), and `self.isa` was verified available when this
        // Gemm was built.
        unsafe { self.dispatch(problem) };
        Ok(())
    }

    /// The raw form of [`Gemm::run`], with the signature of `matrixmultiply::sgemm`.
    ///
    /// # Safety
    ///
    /// As [`sgemm`].
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn run_raw(
        &self,
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        let problem = Problem {
            m,
            k,
            n,
            alpha,
            a,
            rsa,
            csa,
            b,
            rsb,
            csb,
            beta,
            c,
            rsc,
            csc,
        };
        // SAFETY: the operand requirements are this function's contract; the ISA was verified
        // available when this Gemm was built.
        unsafe { self.dispatch(problem) }
    }

    /// How many threads a product may use, and from how many flops it is split.
    fn threads(&self) -> (usize, usize) {
        let threads = match self.parallelism {
            Parallelism::Sequential => 1,
            Parallelism::Rayon => rayon::current_num_threads(),
        };
        (threads, self.min_parallel_flops)
    }

    /// # Safety
    ///
    /// The problem's operands are valid as [`sgemm`] requires, and `self.isa` is available.
    unsafe fn dispatch(&self, p: Problem) {
        // SAFETY (each arm): the entry's target features are those of `self.isa`, which was
        // checked by `Isa::require` (directly or through `selected_isa`) before this Gemm
        // existed, as was the small products' ISA; the operands are the caller's contract.
        match self.isa_for(p.m, p.n, p.k) {
            Isa::Scalar => split::<scalar::ScalarKernel>(&p, self.threads(), scalar::gemm),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => split::<avx2::Avx2Kernel>(&p, self.threads(), avx2::gemm),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => split::<avx512::Avx512Kernel>(&p, self.threads(), avx512::gemm),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => split::<neon::NeonKernel>(&p, self.threads(), neon::gemm),
            #[allow(unreachable_patterns)]
            isa => unreachable!("a Gemm for {isa} cannot be built on this target"),
        }
    }
}

/// Runs `entry` on the whole problem, or on pieces of C in parallel when the product is large
/// enough. Pieces are whole multiples of MR rows or NR columns, so every element of C is
/// computed by the same tile arithmetic as in a sequential run.
fn split<K: MicroKernel>(
    p: &Problem,
    (threads, min_flops): (usize, usize),
    entry: unsafe fn(&Problem, Plan),
) {
    let plan = Plan::new::<K>(p);
    let flops = 2u128 * p.m as u128 * p.n as u128 * p.k as u128;
    let row_units = p.m.div_ceil(K::MR);
    let col_units = p.n.div_ceil(K::NR);
    if threads <= 1 || flops < min_flops as u128 || row_units.max(col_units) < 2 {
        // SAFETY: the caller (`Gemm::dispatch`) guarantees the operands and the features.
        unsafe { entry(p, plan) };
        return;
    }
    // Each piece packs its own share of the operands. Splitting C's rows gives every piece
    // all of B to pack, splitting its columns all of A: split so that the operand packed
    // again is the one that is not packed at all, or else the smaller one.
    let split_rows = match (plan.pack_a, plan.pack_b) {
        (true, false) => true,
        (false, true) => false,
        (true, true) => p.n <= p.m,
        (false, false) => row_units >= col_units,
    };
    let split_rows = if split_rows {
        row_units >= 2
    } else {
        col_units < 2
    };
    let units = if split_rows { row_units } else { col_units };
    // One piece per thread, or a few per thread for big products so that work stealing can
    // even out a noisy machine once the repacking is small against the arithmetic.
    let per_thread = if flops >= 1u128 << 30 { 3 } else { 1 };
    let per_piece = units.div_ceil(threads * per_thread);
    let pieces = units.div_ceil(per_piece);
    (0..pieces).into_par_iter().for_each(|piece| {
        let sub = if split_rows {
            let r0 = piece * per_piece * K::MR;
            p.sub(r0, (r0 + per_piece * K::MR).min(p.m), 0, p.n)
        } else {
            let c0 = piece * per_piece * K::NR;
            p.sub(0, p.m, c0, (c0 + per_piece * K::NR).min(p.n))
        };
        // SAFETY: `sub` is a rectangle of the caller's problem, so its operands are valid;
        // pieces cover disjoint rows (or columns) of C, and C's elements have distinct
        // addresses, so no two threads write the same element.
        unsafe { entry(&sub, plan) };
    });
}

/// `C <- alpha * A * B + beta * C` with the default [`Gemm`] (the [`selected_isa`], rayon for
/// large products). See [`Gemm::run`].
///
/// # Errors
///
/// [`Error::ShapeMismatch`] if the shapes do not agree.
///
/// # Panics
///
/// If `SIMDNET_ISA` is invalid (see [`selected_isa`]).
pub fn gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>) -> Result<()> {
    Gemm::new().run(alpha, a, b, beta, c)
}

/// General matrix multiplication, `C <- alpha * A * B + beta * C`, with the signature and
/// semantics of `matrixmultiply::sgemm`: a user switches by changing one import.
///
/// A is `m x k`, B is `k x n`, C is `m x n`; element `(i, j)` of A is at
/// `a.offset(i * rsa + j * csa)`, and likewise for B and C. Strides are in elements and may be
/// anything that gives valid addresses, so row-major, column-major and transposed operands cost
/// nothing. Any dimension may be zero. When `beta == 0`, C is written without being read (NaN
/// in C is overwritten). Runs the [`selected_isa`], using rayon threads for large products
/// (the result does not depend on the number of threads).
///
/// # Safety
///
/// * Every element `(i, j)` of A (for `i < m`, `j < k`) and of B (`i < k`, `j < n`) must be
///   readable at the address above, and every element of C (`i < m`, `j < n`) writable.
/// * Distinct elements of C must have distinct addresses, and C must not overlap A or B.
///
/// # Panics
///
/// If `SIMDNET_ISA` is set to an unknown or unsupported instruction set.
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        Gemm::new().run_raw(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
    }
}

#[cfg(test)]
mod tests;
