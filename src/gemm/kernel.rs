//! The register-blocked micro-kernel, written once for every [`Vector`].
//!
//! A tile is `ROWS x NR` of C with `NR = NV * LANES`. Register layout for AVX2 (6 x 16):
//!
//! ```text
//!             B(p, 0..8)   B(p, 8..16)      <- two vector loads per step p
//!   A(0, p) [ acc[0][0]    acc[0][1] ]
//!   A(1, p) [ acc[1][0]    acc[1][1] ]     <- one broadcast per row and step,
//!     ...         ...          ...            two FMAs into the row's accumulators
//!   A(5, p) [ acc[5][0]    acc[5][1] ]
//! ```
//!
//! 12 accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers. AVX-512 uses
//! 14 x 32 (28 + 2 + 1 = 31 of 32 zmm), NEON 8 x 12 (24 + 3 + 1 = 28 of 32 q registers),
//! scalar 4 x 4.
//!
//! Every element of C gets the same arithmetic whatever tile, edge or thread computes it:
//! `acc = fma(A(i,p), B(p,j), acc)` for p in order, then `C = fma(beta, C, alpha * acc)` (or
//! `alpha * acc` when beta is zero, without reading C). That is what makes results bitwise
//! independent of the thread count.

use crate::simd::{MAX_LANES, Vector, prefetch};

/// One call of the micro-kernel: `C[0..rows, 0..cols] = alpha * A B + beta * C` over `k` steps.
///
/// * A: element `(i, p)` at `a + i*a_rs + p*a_cs`; only rows `< rows` are read.
/// * B: element `(p, j)` at `b + p*b_rs + j`; all `NR` columns of each step are readable
///   (they are zero padding past `cols` when the panel was packed or edge-copied).
/// * C: element `(i, j)` at `c + i*rsc + j*csc`; only `i < rows, j < cols` are touched, and
///   when `beta == 0` C is never read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tile {
    pub k: usize,
    pub a: *const f32,
    pub a_rs: isize,
    pub a_cs: isize,
    pub b: *const f32,
    pub b_rs: isize,
    pub c: *mut f32,
    pub rsc: isize,
    pub csc: isize,
    pub rows: usize,
    pub cols: usize,
    pub alpha: f32,
    pub beta: f32,
}

/// Computes one tile with `ROWS` rows and `NV` vectors of columns.
///
/// `PACKED_A` says that A is a packed micro-panel (`a_rs = 1`, `a_cs = mr`): the strides are
/// then compile-time constants, which frees the row pointers from registers.
///
/// # Safety
///
/// The vector type's features are available, and the [`Tile`] contract holds.
#[inline(always)]
pub(crate) unsafe fn tile<V: Vector, const ROWS: usize, const NV: usize, const MR: usize>(
    t: &Tile,
    packed_a: bool,
) {
    // SAFETY: forwarded from this function's contract; `packed_a` only picks constant strides
    // that equal the tile's own when it is set.
    unsafe {
        if packed_a {
            accumulate_and_store::<V, ROWS, NV>(t, 1, MR as isize)
        } else {
            accumulate_and_store::<V, ROWS, NV>(t, t.a_rs, t.a_cs)
        }
    }
}

/// # Safety
///
/// As [`tile`]; `a_rs` and `a_cs` are the tile's A strides.
#[inline(always)]
unsafe fn accumulate_and_store<V: Vector, const ROWS: usize, const NV: usize>(
    t: &Tile,
    a_rs: isize,
    a_cs: isize,
) {
    // SAFETY: the caller guarantees the features. Pointers advance with wrapping arithmetic,
    // and are dereferenced only at (i < ROWS = rows, p < k) for A and (p < k, j < NR) for B,
    // which the Tile contract makes readable.
    unsafe {
        // C rows a power-of-two apart (1024 floats = 4 KiB) fall into one L1 set and evict each
        // other between visits; asking for the tile's lines now overlaps those misses with
        // the k loop instead of paying them at the store.
        for i in 0..ROWS {
            let row = t.c.wrapping_offset(i as isize * t.rsc).cast_const();
            prefetch(row);
            prefetch(row.wrapping_offset((t.cols as isize - 1) * t.csc));
        }
        let mut acc = [[V::zero(); NV]; ROWS];
        let mut a = t.a;
        let mut b = t.b;
        for _ in 0..t.k {
            let mut bv = [V::zero(); NV];
            for (v, slot) in bv.iter_mut().enumerate() {
                *slot = V::load(b.add(v * V::LANES));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = V::splat(*a.wrapping_offset(i as isize * a_rs));
                for (acc_v, b_v) in row.iter_mut().zip(bv) {
                    *acc_v = ai.mul_add(b_v, *acc_v);
                }
            }
            a = a.wrapping_offset(a_cs);
            b = b.wrapping_offset(t.b_rs);
        }
        store::<V, ROWS, NV>(acc, t);
    }
}

/// Writes `alpha * acc + beta * C` into the tile of C.
///
/// # Safety
///
/// As [`tile`].
#[inline(always)]
unsafe fn store<V: Vector, const ROWS: usize, const NV: usize>(acc: [[V; NV]; ROWS], t: &Tile) {
    // SAFETY: features from the caller; every access below is to (i < rows, j < cols), which
    // the Tile contract makes valid. Stack buffers hold MAX_LANES >= LANES values.
    unsafe {
        let alpha = V::splat(t.alpha);
        let beta = V::splat(t.beta);
        let read_c = t.beta != 0.0;
        if t.csc == 1 && t.cols == NV * V::LANES {
            // The common case, a whole tile of unit-stride C: straight-line code with the
            // beta test hoisted, so the accumulators go from registers to memory directly.
            if read_c {
                for (i, row) in acc.into_iter().enumerate() {
                    let c_row = t.c.wrapping_offset(i as isize * t.rsc);
                    for (v, acc_v) in row.into_iter().enumerate() {
                        let p = c_row.add(v * V::LANES);
                        V::load(p).mul_add(beta, acc_v.mul(alpha)).store(p);
                    }
                }
            } else {
                for (i, row) in acc.into_iter().enumerate() {
                    let c_row = t.c.wrapping_offset(i as isize * t.rsc);
                    for (v, acc_v) in row.into_iter().enumerate() {
                        acc_v.mul(alpha).store(c_row.add(v * V::LANES));
                    }
                }
            }
            return;
        }
        for (i, row) in acc.into_iter().enumerate() {
            let c_row = t.c.wrapping_offset(i as isize * t.rsc);
            for (v, acc_v) in row.into_iter().enumerate() {
                let col0 = v * V::LANES;
                if col0 >= t.cols {
                    // (Not `break`: a loop without early exits is fully unrolled, which keeps
                    // the accumulators in registers.)
                    continue;
                }
                let lanes = (t.cols - col0).min(V::LANES);
                let scaled = acc_v.mul(alpha);
                if t.csc == 1 {
                    let p = c_row.add(col0);
                    if lanes == V::LANES {
                        let out = if read_c {
                            V::load(p).mul_add(beta, scaled)
                        } else {
                            scaled
                        };
                        out.store(p);
                    } else {
                        let out = if read_c {
                            V::load_partial(p, lanes).mul_add(beta, scaled)
                        } else {
                            scaled
                        };
                        out.store_partial(p, lanes);
                    }
                } else {
                    // Strided C: gather and scatter through the stack, same arithmetic.
                    let mut buf = [0.0f32; MAX_LANES];
                    let at = |j: usize| c_row.wrapping_offset((col0 + j) as isize * t.csc);
                    let out = if read_c {
                        for (j, slot) in buf.iter_mut().enumerate().take(lanes) {
                            *slot = *at(j);
                        }
                        V::load(buf.as_ptr()).mul_add(beta, scaled)
                    } else {
                        scaled
                    };
                    out.store(buf.as_mut_ptr());
                    for (j, value) in buf.iter().enumerate().take(lanes) {
                        *at(j) = *value;
                    }
                }
            }
        }
    }
}

/// Expands to a `match` on a runtime row count that calls `tile::<V, ROWS, NV, MR>` with
/// `ROWS` as a constant, for every listed row count. A tile whose columns fit in one vector
/// (a ragged right edge) runs the one-vector kernel, which skips the FMAs on padding.
macro_rules! dispatch_rows {
    ($v:ty, $nv:expr, $mr:expr, $t:expr, $packed:expr, [$($rows:literal)*]) => {
        if $t.cols <= <$v as $crate::simd::Vector>::LANES {
            match $t.rows {
                $($rows => $crate::gemm::kernel::tile::<$v, $rows, 1, $mr>($t, $packed),)*
                rows => unreachable!("micro-kernel asked for {rows} rows"),
            }
        } else {
            match $t.rows {
                $($rows => $crate::gemm::kernel::tile::<$v, $rows, $nv, $mr>($t, $packed),)*
                rows => unreachable!("micro-kernel asked for {rows} rows"),
            }
        }
    };
}
pub(crate) use dispatch_rows;
