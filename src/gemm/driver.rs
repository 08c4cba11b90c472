//! The BLIS loop nest, written once and monomorphized per micro-kernel.
//!
//! ```text
//! LOOP 5  jc over n in steps of NC      B block: KC x NC, packed, lives in L3
//! LOOP 4  pc over k in steps of KC      (beta applies on the first pc only)
//! LOOP 3  ic over m in steps of MC      A block: MC x KC, packed, lives in L2
//! LOOP 2  jr over the block's columns in steps of NR   B micro-panel: KC x NR, in L1
//! LOOP 1  ir over the block's rows in steps of MR      A micro-panel: MR x KC, in L1
//!         micro-kernel: MR x NR tile of C in registers, KC rank-1 updates
//! ```
//!
//! Small products skip packing where it cannot pay for itself (see [`Plan`]): the kernel
//! then broadcasts A straight from its strided storage and loads B rows straight from memory.

use std::cell::RefCell;

use super::kernel::Tile;
use super::pack::{AlignedBuf, pack_a, pack_b};
use crate::simd::Vector;

/// A micro-kernel and the blocking sizes tuned for it.
///
/// # Safety
///
/// `tile` must implement the [`Tile`] contract for `rows <= MR`, `cols <= NR`, and
/// `NR == NV * V::LANES`.
pub(crate) unsafe trait MicroKernel {
    /// The vector vocabulary the kernel is written in.
    type V: Vector;
    /// Rows of C per tile (A values broadcast per step).
    const MR: usize;
    /// Columns of C per tile (a multiple of the vector width).
    const NR: usize;
    /// Depth of one packed block: an MR x KC panel of A and a KC x NR panel of B share L1.
    const KC: usize;
    /// Rows of one packed A block (a multiple of MR): MC x KC floats sized for L2.
    const MC: usize;
    /// Columns of one packed B block (a multiple of NR): KC x NC floats sized for L3.
    const NC: usize;

    /// Computes one tile.
    ///
    /// # Safety
    ///
    /// The kernel's features are available and `t` satisfies the [`Tile`] contract; when
    /// `packed_a`, A is a packed panel (`a_rs = 1`, `a_cs = MR`).
    unsafe fn tile(t: &Tile, packed_a: bool);
}

/// The raw description of one product `C = alpha A B + beta C` (strides in elements).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Problem {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub alpha: f32,
    pub a: *const f32,
    pub rsa: isize,
    pub csa: isize,
    pub b: *const f32,
    pub rsb: isize,
    pub csb: isize,
    pub beta: f32,
    pub c: *mut f32,
    pub rsc: isize,
    pub csc: isize,
}

// SAFETY: a Problem is only shared between threads by the parallel splitter, which gives each
// thread a sub-problem writing a disjoint set of C elements (distinct addresses are part of
// the caller's contract) and only reading A and B.
unsafe impl Send for Problem {}
// SAFETY: as above.
unsafe impl Sync for Problem {}

impl Problem {
    /// The sub-problem for rows `r0..r1` and columns `c0..c1` of C (all of k).
    pub(crate) fn sub(&self, r0: usize, r1: usize, c0: usize, c1: usize) -> Problem {
        Problem {
            m: r1 - r0,
            n: c1 - c0,
            a: self.a.wrapping_offset(r0 as isize * self.rsa),
            b: self.b.wrapping_offset(c0 as isize * self.csb),
            c: self
                .c
                .wrapping_offset(r0 as isize * self.rsc + c0 as isize * self.csc),
            ..*self
        }
    }
}

/// Which operands get packed; decided once for the whole product so that every thread's
/// piece takes the same path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub pack_a: bool,
    pub pack_b: bool,
    /// Dot products instead of the loop nest (see [`super::dot`]); packing is then moot.
    pub dot: bool,
}

/// B is read in place when its rows are contiguous and all of it fits comfortably in L2
/// (256 KiB): then every micro-panel load hits cache anyway and packing is pure overhead.
const DIRECT_B_MAX_FLOATS: usize = 64 * 1024;

impl Plan {
    pub(crate) fn new<K: MicroKernel>(p: &Problem) -> Plan {
        // Packing A costs a strided pass over each MC x KC block; it pays only once the
        // block is reused across several column tiles. Up to four (n <= 4 NR), broadcasting
        // straight from A's own storage measured as fast or faster on this machine.
        let column_tiles = p.n.div_ceil(K::NR);
        let pack_a = column_tiles > 4 && p.m > K::MR;
        // Packing B costs a read and a write of it; reading it in place costs one pass per
        // MR-row panel of A. With few row panels in place wins; with many, B must also keep
        // its micro-panel in L1 between them, which fails when its rows are a multiple of
        // 256 bytes apart (they then map to a quarter of L1's 64 sets or fewer) or when B
        // does not fit in L2.
        let few_row_panels = p.m <= 4 * K::MR;
        let row_bytes = p.rsb.unsigned_abs().saturating_mul(4);
        let cache_friendly =
            !row_bytes.is_multiple_of(256) && p.k.saturating_mul(p.n) <= DIRECT_B_MAX_FLOATS;
        let pack_b = !(p.csb == 1 && (few_row_panels || cache_friendly));
        Plan {
            pack_a,
            pack_b,
            dot: super::dot::suits(p, K::V::LANES),
        }
    }
}

/// One thread's packing buffers: an A block, a B block, and a ragged-edge B panel.
#[derive(Default)]
struct Buffers {
    a: AlignedBuf,
    b: AlignedBuf,
    b_edge: AlignedBuf,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// The floats each packing buffer needs for an `m x n x k` product with kernel `K`. Every
/// piece the parallel splitter cuts from a product has the same k and at most its m and n,
/// so these sizes cover all of its pieces.
struct BufferSizes {
    a: usize,
    b: usize,
    b_edge: usize,
}

impl BufferSizes {
    fn new<K: MicroKernel>(m: usize, n: usize, k: usize) -> BufferSizes {
        let kc = K::KC.min(k);
        BufferSizes {
            a: K::MC.min(m.next_multiple_of(K::MR)) * kc,
            b: K::NC.min(n.next_multiple_of(K::NR)) * kc,
            b_edge: K::NR * kc,
        }
    }
}

/// Grows the calling thread's packing buffers to what an `m x n x k` product with kernel `K`
/// (or any piece of it) can use, so that running one later allocates nothing.
pub(crate) fn reserve<K: MicroKernel>(m: usize, n: usize, k: usize) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let sizes = BufferSizes::new::<K>(m, n, k);
    BUFFERS.with_borrow_mut(|bufs| {
        bufs.a.get(sizes.a);
        bufs.b.get(sizes.b);
        bufs.b_edge.get(sizes.b_edge);
    });
}

/// `C = beta * C` (k == 0 or alpha == 0); with beta == 0, C is overwritten without a read.
///
/// # Safety
///
/// C is a writable `m x n` view with the problem's strides.
#[inline(always)]
pub(crate) unsafe fn scale_c(p: &Problem) {
    for i in 0..p.m {
        for j in 0..p.n {
            let c = p.c.wrapping_offset(i as isize * p.rsc + j as isize * p.csc);
            // SAFETY: (i, j) is inside C's shape, which the caller vouches for.
            unsafe { *c = if p.beta == 0.0 { 0.0 } else { p.beta * *c } };
        }
    }
}

/// Runs a whole (sub-)problem on the calling thread with micro-kernel `K`.
///
/// # Safety
///
/// `K`'s features are available; A and B are readable and C writable with the given shapes
/// and strides; distinct elements of C have distinct addresses and alias neither A nor B.
#[inline(always)]
pub(crate) unsafe fn run<K: MicroKernel>(p: &Problem, plan: Plan) {
    if p.m == 0 || p.n == 0 {
        return;
    }
    if p.k == 0 || p.alpha == 0.0 {
        // SAFETY: forwarded from this function's contract.
        unsafe { scale_c(p) };
        return;
    }
    if plan.dot {
        // SAFETY: the plan chose this path for a problem whose A rows and B columns are
        // contiguous (`dot::suits`); the operands are this function's contract; k >= 1.
        unsafe { super::dot::run::<K::V>(p) };
        return;
    }
    // Move the thread's buffers out for the duration of the product (three Vec headers, no
    // allocation) rather than working inside a `with` closure: a closure would be compiled
    // without the entry function's target features, and nothing in it would be inlined.
    let mut bufs = BUFFERS.take();
    let sizes = BufferSizes::new::<K>(p.m, p.n, p.k);
    let a_buf = if plan.pack_a {
        bufs.a.get(sizes.a)
    } else {
        std::ptr::null_mut()
    };
    let b_buf = if plan.pack_b {
        bufs.b.get(sizes.b)
    } else {
        std::ptr::null_mut()
    };
    let edge_buf = bufs.b_edge.get(sizes.b_edge);
    // SAFETY: forwarded from this function's contract; buffers sized just above.
    unsafe { loops::<K>(p, plan, a_buf, b_buf, edge_buf) };
    BUFFERS.set(bufs);
}

/// The depth of the KC blocks: at most KC, with the blocks as equal as possible. k = 784
/// becomes 4 x 196 rather than 3 x 256 + 16, whose last block would load and store every C
/// tile for only 16 rank-1 updates.
#[inline(always)]
fn balanced_kc<K: MicroKernel>(k: usize) -> usize {
    k.div_ceil(k.div_ceil(K::KC).max(1)).max(1)
}

/// The five loops.
///
/// # Safety
///
/// As [`run`], with `a_buf` / `b_buf` holding a packed block when their plan flag is set, and
/// `edge_buf` holding `NR * min(KC, k)` floats.
#[inline(always)]
unsafe fn loops<K: MicroKernel>(
    p: &Problem,
    plan: Plan,
    a_buf: *mut f32,
    b_buf: *mut f32,
    edge_buf: *mut f32,
) {
    let at = |ptr: *const f32, rs: isize, cs: isize, i: usize, j: usize| {
        ptr.wrapping_offset(i as isize * rs + j as isize * cs)
    };
    let kc_step = balanced_kc::<K>(p.k);
    // LOOP 5: column blocks of C and B.
    for jc in (0..p.n).step_by(K::NC) {
        let nc = (p.n - jc).min(K::NC);
        // LOOP 4: the shared dimension, KC at a time; beta applies only to the first block.
        for pc in (0..p.k).step_by(kc_step) {
            let kc = (p.k - pc).min(kc_step);
            let beta = if pc == 0 { p.beta } else { 1.0 };
            let b_block = at(p.b, p.rsb, p.csb, pc, jc);
            if plan.pack_b {
                // SAFETY: the block is inside B; b_buf holds ceil(nc/NR)*NR*kc floats.
                unsafe { pack_b::<K::V>(K::NR, b_buf, b_block, p.rsb, p.csb, kc, nc) };
            }
            // LOOP 3: row blocks of A and C.
            for ic in (0..p.m).step_by(K::MC) {
                let mc = (p.m - ic).min(K::MC);
                let a_block = at(p.a, p.rsa, p.csa, ic, pc);
                if plan.pack_a {
                    // SAFETY: the block is inside A; a_buf holds ceil(mc/MR)*MR*kc floats.
                    unsafe { pack_a(K::MR, a_buf, a_block, p.rsa, p.csa, mc, kc) };
                }
                // LOOP 2: NR-column micro-panels of B.
                for jr in (0..nc).step_by(K::NR) {
                    let cols = (nc - jr).min(K::NR);
                    let (b, b_rs) = if plan.pack_b {
                        let panel = b_buf.wrapping_add(jr / K::NR * K::NR * kc);
                        (panel.cast_const(), K::NR as isize)
                    } else if cols == K::NR {
                        (at(b_block, p.rsb, 1, 0, jr), p.rsb)
                    } else {
                        // A ragged right edge read in place would need masked loads in the
                        // innermost loop; copying its kc x cols floats once is cheaper.
                        // SAFETY: the strip is inside B; edge_buf holds NR * kc floats.
                        unsafe {
                            pack_b::<K::V>(
                                K::NR,
                                edge_buf,
                                at(b_block, p.rsb, 1, 0, jr),
                                p.rsb,
                                1,
                                kc,
                                cols,
                            )
                        };
                        (edge_buf.cast_const(), K::NR as isize)
                    };
                    // LOOP 1: MR-row micro-panels of A.
                    for ir in (0..mc).step_by(K::MR) {
                        let rows = (mc - ir).min(K::MR);
                        let (a, a_rs, a_cs) = if plan.pack_a {
                            (
                                a_buf.wrapping_add(ir / K::MR * K::MR * kc).cast_const(),
                                1,
                                K::MR as isize,
                            )
                        } else {
                            (at(a_block, p.rsa, p.csa, ir, 0), p.rsa, p.csa)
                        };
                        let tile = Tile {
                            k: kc,
                            a,
                            a_rs,
                            a_cs,
                            b,
                            b_rs,
                            c: at(p.c, p.rsc, p.csc, ic + ir, jc + jr).cast_mut(),
                            rsc: p.rsc,
                            csc: p.csc,
                            rows,
                            cols,
                            alpha: p.alpha,
                            beta,
                        };
                        // SAFETY: the tile addresses rows < rows of the A panel, the B panel
                        // (full NR columns: packed, edge-copied, or in place with cols == NR)
                        // and rows x cols of C, all inside the caller's operands.
                        unsafe { K::tile(&tile, plan.pack_a) };
                    }
                }
            }
        }
    }
}
