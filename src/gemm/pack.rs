//! Packing operands into contiguous, aligned micro-panels.
//!
//! A packed A block holds `ceil(mc / mr)` panels; panel `q` stores rows `q*mr .. q*mr+mr`
//! step by step: `panel[p*mr + i] = A(q*mr + i, p)`. A packed B block holds `ceil(nc / nr)`
//! panels with `panel[p*nr + j] = B(p, q*nr + j)`. Rows or columns past the matrix are zero,
//! so the micro-kernel always loads whole vectors. Each micro-kernel step then reads mr + nr
//! consecutive floats, the access pattern the hardware prefetchers follow best.

use crate::simd::Vector;

/// A growable, 64-byte-aligned f32 buffer (one cache line, one AVX-512 vector).
#[derive(Default)]
pub(crate) struct AlignedBuf {
    lines: Vec<CacheLine>,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct CacheLine([f32; 16]);

impl AlignedBuf {
    /// A pointer to at least `len` floats; grows (only) when needed, so a thread's buffers
    /// reach their working size on the first products and never allocate again.
    pub(crate) fn get(&mut self, len: usize) -> *mut f32 {
        let lines = len.div_ceil(16);
        if self.lines.len() < lines {
            self.lines.resize(lines, CacheLine([0.0; 16]));
        }
        self.lines.as_mut_ptr().cast::<f32>()
    }
}

/// Packs the `rows x depth` block of A at `a` (strides `rsa`, `csa`) into MR-row panels.
///
/// # Safety
///
/// `a` addresses a readable `rows x depth` block with those strides; `dst` has room for
/// `rows.div_ceil(mr) * mr * depth` floats.
#[inline(always)]
pub(crate) unsafe fn pack_a(
    mr: usize,
    dst: *mut f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    rows: usize,
    depth: usize,
) {
    for (q, r0) in (0..rows).step_by(mr).enumerate() {
        let live = (rows - r0).min(mr);
        let panel = dst.wrapping_add(q * mr * depth);
        let src = a.wrapping_offset(r0 as isize * rsa);
        // SAFETY: reads are at (r0 + i < rows, p < depth) of A and writes at
        // p*mr + i < mr*depth of panel q, which lies inside dst: both by the size contract.
        unsafe {
            if csa == 1 {
                // Rows are contiguous: read each row forwards, write with stride mr.
                for i in 0..live {
                    let row = src.wrapping_offset(i as isize * rsa);
                    for p in 0..depth {
                        *panel.add(p * mr + i) = *row.add(p);
                    }
                }
            } else {
                for p in 0..depth {
                    let col = src.wrapping_offset(p as isize * csa);
                    for i in 0..live {
                        *panel.add(p * mr + i) = *col.wrapping_offset(i as isize * rsa);
                    }
                }
            }
            if live < mr {
                // A zero the optimizer cannot see, or the stores become a memset call per
                // step p (784 calls of a few bytes for a 10-row A).
                let zero = std::hint::black_box(0.0f32);
                for p in 0..depth {
                    for i in live..mr {
                        *panel.add(p * mr + i) = zero;
                    }
                }
            }
        }
    }
}

/// Packs the `depth x cols` block of B at `b` (strides `rsb`, `csb`) into NR-column panels.
///
/// # Safety
///
/// `b` addresses a readable `depth x cols` block with those strides; `dst` has room for
/// `cols.div_ceil(nr) * nr * depth` floats; `V`'s features are available.
#[inline(always)]
pub(crate) unsafe fn pack_b<V: Vector>(
    nr: usize,
    dst: *mut f32,
    b: *const f32,
    rsb: isize,
    csb: isize,
    depth: usize,
    cols: usize,
) {
    for (q, j0) in (0..cols).step_by(nr).enumerate() {
        let live = (cols - j0).min(nr);
        let panel = dst.wrapping_add(q * nr * depth);
        let src = b.wrapping_offset(j0 as isize * csb);
        // SAFETY: reads are at (p < depth, j0 + j < cols) of B and writes at
        // p*nr + j < nr*depth of panel q, which lies inside dst: both by the size contract.
        // The 8 x 8 blocks handed to transpose_8x8 lie inside those same ranges.
        unsafe {
            if csb == 1 {
                // Rows of B are contiguous: each step is one short memcpy (plus zero padding).
                for p in 0..depth {
                    let row = src.wrapping_offset(p as isize * rsb);
                    let out = panel.add(p * nr);
                    if live == nr {
                        // A constant length: inlined as a few vector moves, not a memcpy call.
                        std::ptr::copy_nonoverlapping(row, out, nr);
                    } else {
                        // A ragged edge of fewer than nr floats, a vector at a time: whole
                        // vectors, then one masked load whose zeroed lanes are the padding,
                        // then zero vectors. (A scalar loop with a select per float compiled
                        // to a compare chain that took a quarter of a (10,784,30) product.)
                        for c in (0..nr).step_by(V::LANES) {
                            let n = live.saturating_sub(c).min(V::LANES);
                            let v = if n == V::LANES {
                                V::load(row.add(c))
                            } else if n > 0 {
                                V::load_partial(row.add(c), n)
                            } else {
                                V::zero()
                            };
                            v.store(out.add(c));
                        }
                    }
                }
                continue;
            }
            // Columns are (usually) contiguous: read each column forwards, write with stride
            // nr. Where the vocabulary has an 8 x 8 register transpose, whole 8 x 8 blocks
            // go through it (8 loads, 24 shuffles, 8 stores for 64 values); the rest, and
            // every column when rows are not contiguous, element by element.
            let (mut j_fast, mut p_fast) = (0, 0);
            if V::HAS_TRANSPOSE_8X8 && rsb == 1 {
                j_fast = live / 8 * 8;
                p_fast = depth / 8 * 8;
            }
            // Zero the panel from the last whole vector below column j_fast on, a vector at a
            // time, before anything else is written there: the padding past `live` needs
            // it, and the columns j_fast..live are overwritten below. (Zeroing only the
            // padding, a few floats per row, compiled to one memset call per row.)
            if j_fast < nr {
                let first = j_fast / V::LANES * V::LANES;
                // Hidden from the optimizer, or it turns these stores back into a memset
                // call per row.
                let zero = std::hint::black_box(V::zero());
                for p in 0..depth {
                    for c in (first..nr).step_by(V::LANES) {
                        zero.store(panel.add(p * nr + c));
                    }
                }
            }
            for j in (0..j_fast).step_by(8) {
                for p in (0..p_fast).step_by(8) {
                    V::transpose_8x8(
                        src.wrapping_offset(j as isize * csb + p as isize),
                        csb,
                        panel.add(p * nr + j),
                        nr,
                    );
                }
            }
            // Below the last whole 8 x 8 block, and every column past j_fast: element by
            // element, reading each column forwards.
            for j in 0..live {
                let col = src.wrapping_offset(j as isize * csb);
                let first_p = if j < j_fast { p_fast } else { 0 };
                for p in first_p..depth {
                    *panel.add(p * nr + j) = *col.wrapping_offset(p as isize * rsb);
                }
            }
        }
    }
}
