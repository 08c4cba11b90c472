//! The inner-product path: C = A B for a short C whose A rows and B columns are both
//! contiguous along k (the trainer's forward pass `Z = X W^T`, with W row-major).
//!
//! The BLIS path would pack B there, transposing all of `W^T` on every call (for a
//! 10 x 784 by 784 x 30 product that costs as much as the arithmetic). Here each element of C
//! is instead a dot product of two contiguous vectors, computed `DOT_ROWS x DOT_COLS` at a
//! time with no packing at all:
//!
//! ```text
//!             B(:, j) .. B(:, j+3)        <- one vector load per column and k-step
//!   A(i, :)   [ acc  acc  acc  acc ]
//!   A(i+1, :) [ acc  acc  acc  acc ]      <- one vector load per row and k-step,
//!   A(i+2, :) [ acc  acc  acc  acc ]         12 FMAs into lane-wise partial sums
//! ```
//!
//! 12 accumulators + 3 A vectors + 1 B vector = 16 registers on AVX2; 7 loads feed 12 FMAs,
//! so the loop is bound by the FMA pipes, not the load ports. The k tail is one masked load
//! (zeroed lanes add nothing), and each accumulator is reduced once at the end, its lanes
//! added in lane order. An element's arithmetic depends only on k and its own row and column,
//! never on the tile or thread that computes it, so results stay bitwise independent of the
//! thread count.

use super::driver::Problem;
use crate::simd::{MAX_LANES, Vector};

/// Rows of C per dot tile.
const DOT_ROWS: usize = 3;
/// Columns of C per dot tile.
const DOT_COLS: usize = 4;

/// The largest m the inner-product path takes. Measured with `cargo bench --bench gemm_vs --
/// 10,784,30,t 20,784,30,t 30,784,30,t` on Zen 3: it wins clearly while m is a few micro-tile
/// rows; beyond that the BLIS kernel's reuse of each packed B panel across many rows of A
/// pays for the packing.
pub(crate) const DOT_MAX_M: usize = 24;
/// The smallest k it takes: shorter dot products spend too much on the final reductions.
pub(crate) const DOT_MIN_K: usize = 64;

/// Whether `p` has the shape and layout of the inner-product path, for vectors of `lanes`.
/// Not for one-lane (scalar) vectors: the plain loop nest auto-vectorizes there, and the
/// dot products, summed along k, cannot.
pub(crate) fn suits(p: &Problem, lanes: usize) -> bool {
    lanes > 1 && p.csa == 1 && p.rsb == 1 && p.m <= DOT_MAX_M && p.k >= DOT_MIN_K
}

/// `C = alpha A B + beta C` by dot products.
///
/// # Safety
///
/// `V`'s features are available; A's rows (`csa == 1`) and B's columns (`rsb == 1`) are
/// readable for `k` elements each, C writable at its `m x n` elements (never read when
/// `beta == 0`), and `k >= 1`.
#[inline(always)]
pub(crate) unsafe fn run<V: Vector>(p: &Problem) {
    debug_assert!(p.csa == 1 && p.rsb == 1 && p.k >= 1);
    for i0 in (0..p.m).step_by(DOT_ROWS) {
        let rows = (p.m - i0).min(DOT_ROWS);
        for j0 in (0..p.n).step_by(DOT_COLS) {
            let cols = (p.n - j0).min(DOT_COLS);
            // SAFETY: rows i0.. i0+rows and columns j0..j0+cols lie inside the problem, as
            // `tile` requires; the rest is this function's contract.
            unsafe {
                match (rows, cols) {
                    (3, 4) => tile::<V, 3, 4>(p, i0, j0),
                    (3, 3) => tile::<V, 3, 3>(p, i0, j0),
                    (3, 2) => tile::<V, 3, 2>(p, i0, j0),
                    (3, 1) => tile::<V, 3, 1>(p, i0, j0),
                    (2, 4) => tile::<V, 2, 4>(p, i0, j0),
                    (2, 3) => tile::<V, 2, 3>(p, i0, j0),
                    (2, 2) => tile::<V, 2, 2>(p, i0, j0),
                    (2, 1) => tile::<V, 2, 1>(p, i0, j0),
                    (1, 4) => tile::<V, 1, 4>(p, i0, j0),
                    (1, 3) => tile::<V, 1, 3>(p, i0, j0),
                    (1, 2) => tile::<V, 1, 2>(p, i0, j0),
                    (1, 1) => tile::<V, 1, 1>(p, i0, j0),
                    _ => unreachable!("dot tile of {rows} x {cols}"),
                }
            }
        }
    }
}

/// The `R x C` elements of C from row `i0` and column `j0`.
///
/// # Safety
///
/// As [`run`], with rows `i0..i0+R` and columns `j0..j0+C` inside the problem.
#[inline(always)]
unsafe fn tile<V: Vector, const R: usize, const C: usize>(p: &Problem, i0: usize, j0: usize) {
    let a: [*const f32; R] =
        std::array::from_fn(|r| p.a.wrapping_offset((i0 + r) as isize * p.rsa));
    let b: [*const f32; C] =
        std::array::from_fn(|c| p.b.wrapping_offset((j0 + c) as isize * p.csb));
    let whole = p.k / V::LANES * V::LANES;
    // SAFETY: features from the caller. Loads are at offsets q..q+LANES <= whole <= k of a
    // row of A or a column of B (readable for k elements by the contract), the tail's masked
    // loads at whole..k; C is touched only at the tile's own elements.
    unsafe {
        let mut acc = [[V::zero(); C]; R];
        let mut q = 0;
        while q < whole {
            let av: [V; R] = std::array::from_fn(|r| V::load(a[r].add(q)));
            for c in 0..C {
                let bv = V::load(b[c].add(q));
                for r in 0..R {
                    acc[r][c] = av[r].mul_add(bv, acc[r][c]);
                }
            }
            q += V::LANES;
        }
        if whole < p.k {
            let tail = p.k - whole;
            let av: [V; R] = std::array::from_fn(|r| V::load_partial(a[r].add(whole), tail));
            for c in 0..C {
                let bv = V::load_partial(b[c].add(whole), tail);
                for r in 0..R {
                    acc[r][c] = av[r].mul_add(bv, acc[r][c]);
                }
            }
        }
        let mut lanes = [0.0f32; MAX_LANES];
        for (r, row) in acc.iter().enumerate() {
            for (c, sum) in row.iter().enumerate() {
                sum.store(lanes.as_mut_ptr());
                let dot = lanes[..V::LANES].iter().fold(0.0f32, |s, &x| s + x);
                let out =
                    p.c.wrapping_offset((i0 + r) as isize * p.rsc + (j0 + c) as isize * p.csc);
                *out = if p.beta == 0.0 {
                    p.alpha * dot
                } else {
                    (*out).mul_add(p.beta, p.alpha * dot)
                };
            }
        }
    }
}
