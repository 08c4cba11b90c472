//! Products with a mostly-zero left operand: the first layer of a network fed MNIST-like
//! inputs, where about 19% of the pixels are nonzero.
//!
//! A batch `X` (`rows x k`, row-major) is turned into its nonzero entries, row by row
//! ([`SparseRows`], compressed sparse rows, found a vector of inputs at a time). With the
//! weights stored as `W^T` (`k x n`, row-major: row `i` holds the weights out of input `i`),
//! both products of a training step touch whole contiguous rows of `W^T`:
//!
//! ```text
//! forward  Z[r, :]    = sum over nonzero X[r, i] of X[r, i] * W^T[i, :]     (SparseTimesDense)
//! update   W^T        = beta * W^T, then for each nonzero X[r, i]:
//!          W^T[i, :] += X[r, i] * (alpha * D[r, :])                         (SparseUpdate)
//! ```
//!
//! Each is a chain of vector multiply-adds over rows of `n` floats, so the arithmetic drops
//! with the density (to about a fifth on MNIST) while staying as vector-wide as a dense GEMM.
//! The sums run in entry order with the ISA's fused multiply-add, as deterministic as the
//! GEMM: the same inputs give the same bits on one ISA, for any number of threads.
//!
//! Column layout of both kernels: the `n` columns are `ceil(n / LANES)` vectors, the last
//! possibly partial (masked loads and stores, never past the row). The vectors are split into
//! balanced groups of at most 13, each group's accumulators (or held gradient row) in
//! registers, and each group walks the entries once: a layer of up to 104 neurons on AVX2
//! (13 vectors of 8) reads each entry once per product. The forward product keeps a second
//! set of accumulators for the odd entries when a row is 6 vectors or fewer, so that
//! consecutive entries feed independent chains and the multiply-add latency stays hidden.
//!
//! The trainer keeps a batch's entries as two [`SparseRows`], one per [`Half`] of the inputs
//! (columns), and runs each half on its own thread: its forward product into a partial `Z`
//! (the two partials are then added), its update on its half of the rows of `W^T`. Listed
//! examples record where each list crosses into the high half, so each thread copies just
//! its half ([`SparseRows::fill_listed_half`]).

use std::ops::Range;

use super::Kernels;
use super::generic::Kernel;
use crate::data::mmap::AnonArray;
use crate::simd::{MAX_LANES, Vector};

/// The nonzero entries of a row-major `rows x cols` batch, row by row.
///
/// Made once with a capacity ([`SparseRows::new`]) and refilled per batch without allocating.
/// A batch with more nonzeros than the capacity is refused ([`SparseRows::fill`] returns
/// `false`): above that density the dense GEMM is the faster product anyway.
#[derive(Clone, Debug)]
pub(crate) struct SparseRows {
    cols: usize,
    max_nonzeros: usize,
    /// Rows of the last batch.
    rows: usize,
    /// Entries of the last batch.
    nonzeros: usize,
    /// The columns the entries of the last batch may lie in: all of them, or a [`Half`].
    columns: Range<usize>,
    /// Row `r`'s entries are `starts[r]..starts[r + 1]` (`max_rows + 1` slots).
    starts: Vec<u32>,
    /// Column of each entry (`max_nonzeros + MAX_LANES` slots: see [`ScanNonzeros`]).
    index: Vec<u32>,
    /// Value of each entry (as many slots).
    values: Vec<f32>,
}

impl SparseRows {
    /// Room for batches of `cols` columns with at most `max_rows` rows and `max_nonzeros`
    /// entries. Entry positions and columns are `u32`: beyond that the capacity is clamped
    /// (a batch that does not fit then takes the dense path).
    pub(crate) fn new(max_rows: usize, cols: usize, max_nonzeros: usize) -> SparseRows {
        let max_nonzeros = if cols > u32::MAX as usize {
            0
        } else {
            max_nonzeros.min(u32::MAX as usize - MAX_LANES)
        };
        SparseRows {
            cols,
            max_nonzeros,
            rows: 0,
            nonzeros: 0,
            columns: 0..cols,
            starts: vec![0; max_rows + 1],
            index: vec![0; max_nonzeros + MAX_LANES],
            values: vec![0.0; max_nonzeros + MAX_LANES],
        }
    }

    /// Collects the nonzero entries of `x` (row-major, `rows x cols`) with `kernels`'
    /// vectors; `false` (and an empty batch) if there are more than the capacity, or `x` is
    /// not `rows` whole rows, or `rows` is beyond the capacity given to [`SparseRows::new`].
    ///
    /// An entry is nonzero when its bits other than the sign are: NaN and infinities are
    /// kept (so they propagate as they would through the dense product), `-0.0` is dropped
    /// (its products are zeros, which add nothing).
    pub(crate) fn fill(&mut self, kernels: &Kernels, x: &[f32], rows: usize) -> bool {
        self.rows = 0;
        self.nonzeros = 0;
        self.columns = 0..self.cols;
        if rows.checked_mul(self.cols) != Some(x.len()) || rows >= self.starts.len() {
            return false;
        }
        kernels.run(ScanNonzeros {
            x,
            rows,
            into: self,
        })
    }

    /// The number of rows of the last batch filled.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// The most entries a batch may have.
    pub(crate) fn capacity(&self) -> usize {
        self.max_nonzeros
    }

    /// The number of nonzero entries of the last batch.
    pub(crate) fn nonzeros(&self) -> usize {
        self.nonzeros
    }

    /// The positions of row `r`'s entries whose columns lie in `inputs`: the row's entries
    /// are in column order, so its part in `inputs` is one run.
    #[inline(always)]
    fn entries_in(&self, r: usize, inputs: &Range<usize>) -> Range<usize> {
        let (start, end) = (self.starts[r] as usize, self.starts[r + 1] as usize);
        if inputs.start <= self.columns.start && inputs.end >= self.columns.end {
            return start..end;
        }
        let row = &self.index[start..end];
        let before = |k: usize| row.partition_point(|&i| (i as usize) < k);
        start + before(inputs.start)..start + before(inputs.end)
    }

    /// The entries of row `r`: (column, value) pairs in column order.
    #[cfg(test)]
    pub(crate) fn row(&self, r: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        let range = self.starts[r] as usize..self.starts[r + 1] as usize;
        self.index[range.clone()]
            .iter()
            .map(|&i| i as usize)
            .zip(self.values[range].iter().copied())
    }
}

impl SparseRows {
    /// Fills the batch with the listed examples `examples` of `list`, in that order: their
    /// entries copied as they are, so the batch is the one [`SparseRows::fill`] would make
    /// from the same examples gathered densely. `false` (and an empty batch) if they hold more
    /// entries than the capacity, there are more of them than the capacity's rows, an index
    /// is out of the list, or the list has another number of columns.
    #[cfg(test)]
    pub(crate) fn fill_listed(&mut self, list: &ListedRows, examples: &[usize]) -> bool {
        self.fill_listed_from(list, examples, None)
    }

    /// [`SparseRows::fill_listed`] with only the entries in `half` of the columns: the rows
    /// that [`SparseRows::take_half`] would take from the whole batch.
    pub(crate) fn fill_listed_half(
        &mut self,
        list: &ListedRows,
        examples: &[usize],
        half: Half,
    ) -> bool {
        self.fill_listed_from(list, examples, Some(half))
    }

    fn fill_listed_from(
        &mut self,
        list: &ListedRows,
        examples: &[usize],
        half: Option<Half>,
    ) -> bool {
        let columns = half.map_or(0..self.cols, |h| h.columns(self.cols));
        self.fill_runs(list.cols, columns, examples.len(), |r| {
            list.entries(examples[r], half)
        })
    }

    /// Fills the batch with the entries of `full`'s rows in `half` of the columns; `false`
    /// (and an empty batch) if they pass the capacity or the column counts differ.
    pub(crate) fn take_half(&mut self, full: &SparseRows, half: Half) -> bool {
        let columns = half.columns(self.cols);
        self.fill_runs(full.cols, columns.clone(), full.rows, |r| {
            let run = full.entries_in(r, &columns);
            Some((&full.index[run.clone()], &full.values[run]))
        })
    }

    /// Fills `rows` rows, taken from a source of `source_cols` columns, whose entries lie in
    /// `columns`: row `r`'s (indices, values) are `run(r)`. `false` (and an empty batch) if
    /// the source has another number of columns, a run is `None`, or the rows or entries
    /// pass the capacity.
    fn fill_runs<'a>(
        &mut self,
        source_cols: usize,
        columns: Range<usize>,
        rows: usize,
        mut run: impl FnMut(usize) -> Option<(&'a [u32], &'a [f32])>,
    ) -> bool {
        self.rows = 0;
        self.nonzeros = 0;
        self.columns = columns;
        if source_cols != self.cols || rows >= self.starts.len() {
            return false;
        }
        let mut count = 0;
        self.starts[0] = 0;
        for r in 0..rows {
            let Some((index, values)) = run(r) else {
                return false;
            };
            let end = count + index.len();
            if end > self.max_nonzeros {
                return false;
            }
            self.index[count..end].copy_from_slice(index);
            self.values[count..end].copy_from_slice(values);
            count = end;
            self.starts[r + 1] = count as u32;
        }
        self.rows = rows;
        self.nonzeros = count;
        true
    }
}

/// One of the two halves of a batch's columns (inputs), split at [`Half::split`]: the
/// trainer's first layer runs each half's entries on its own thread, so that each thread
/// reads and updates only its half of `W^T`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Half {
    /// Columns `0..split`.
    Low,
    /// Columns `split..cols`.
    High,
}

impl Half {
    /// The first column of the high half of `cols` columns.
    pub(crate) fn split(cols: usize) -> usize {
        cols / 2
    }

    /// The half's columns of `cols`.
    pub(crate) fn columns(self, cols: usize) -> Range<usize> {
        match self {
            Half::Low => 0..Half::split(cols),
            Half::High => Half::split(cols)..cols,
        }
    }
}

/// The nonzero entries of every example of a set, listed once so that a mini-batch of them
/// is a copy of its examples' lists ([`SparseRows::fill_listed`]) instead of a gather, a
/// conversion and a scan of the dense rows. On shuffled MNIST the lists are also the cheaper
/// random reads: about 1.2 KB per image, against 784 bytes of pixels spread over a
/// memory-mapped file plus 3 KB of `f32` rows written and scanned again.
///
/// The examples are listed in consecutive segments ([`ListSegment`]), which can be made in
/// parallel and are kept as they are, without a copy into one array.
#[derive(Debug)]
pub(crate) struct ListedRows {
    cols: usize,
    /// Examples per segment (all but the last segment hold exactly this many).
    per_segment: usize,
    segments: Vec<ListSegment>,
}

/// The lists of consecutive examples: example `e` of the segment has entries
/// `starts[e]..starts[e + 1]` of `index` and `values`, those of the [`Half::Low`] columns
/// before `mids[e]`.
#[derive(Debug)]
pub(crate) struct ListSegment {
    cols: usize,
    starts: Vec<usize>,
    mids: Vec<usize>,
    index: AnonArray<u32>,
    values: AnonArray<f32>,
}

impl ListSegment {
    /// An empty segment of examples of `cols` values, with room for `entries` entries.
    ///
    /// The room is only reserved ([`AnonArray`]): memory that the lists do not reach is
    /// never touched, so reserving for the densest set that can be listed costs address
    /// space, not memory, and spares the copies of a growing array.
    pub(crate) fn with_capacity(cols: usize, entries: usize) -> ListSegment {
        ListSegment {
            cols,
            starts: vec![0],
            mids: Vec::new(),
            index: AnonArray::with_capacity(entries),
            values: AnonArray::with_capacity(entries),
        }
    }

    /// Appends the rows of `batch` as the next examples; `false` (and nothing appended) if
    /// the batch has another number of columns or its entries pass the capacity.
    pub(crate) fn push(&mut self, batch: &SparseRows) -> bool {
        let used = batch.nonzeros;
        if batch.cols != self.cols
            || self.index.len() + used > self.index.capacity().min(self.values.capacity())
        {
            return false;
        }
        let base = self.index.len();
        let fits = self.index.extend_from_slice(&batch.index[..used])
            && self.values.extend_from_slice(&batch.values[..used]);
        debug_assert!(fits, "both arrays have the capacity checked above");
        let split = Half::split(self.cols);
        self.mids.extend((0..batch.rows).map(|r| {
            let run = batch.entries_in(r, &(0..split));
            base + run.end
        }));
        self.starts.extend(
            batch.starts[1..=batch.rows]
                .iter()
                .map(|&end| base + end as usize),
        );
        true
    }

    /// The number of examples listed.
    pub(crate) fn len(&self) -> usize {
        self.starts.len() - 1
    }
}

impl ListedRows {
    /// The examples of `segments`, in order; `None` unless every segment has `cols`
    /// columns and all but the last hold `per_segment` examples (the last at most that).
    pub(crate) fn new(
        cols: usize,
        per_segment: usize,
        segments: Vec<ListSegment>,
    ) -> Option<ListedRows> {
        let last = segments.len().checked_sub(1);
        let fits = segments.iter().enumerate().all(|(s, segment)| {
            segment.cols == cols
                && if Some(s) == last {
                    segment.len() <= per_segment
                } else {
                    segment.len() == per_segment
                }
        });
        fits.then_some(ListedRows {
            cols,
            per_segment,
            segments,
        })
    }

    /// The number of examples listed.
    pub(crate) fn len(&self) -> usize {
        self.segments.iter().map(ListSegment::len).sum()
    }

    /// The two slots of `starts` that bound example `e`'s entries, if it is listed.
    fn bounds(&self, e: usize) -> Option<(&ListSegment, &[usize])> {
        let segment = self.segments.get(e.checked_div(self.per_segment)?)?;
        let e = e % self.per_segment;
        Some((segment, segment.starts.get(e..e + 2)?))
    }

    /// Example `e`'s entries (indices, values), or those in `half` of the columns, if it
    /// is listed.
    fn entries(&self, e: usize, half: Option<Half>) -> Option<(&[u32], &[f32])> {
        let (segment, bounds) = self.bounds(e)?;
        let range = match half {
            None => bounds[0]..bounds[1],
            Some(half) => {
                let mid = segment.mids[e % self.per_segment];
                match half {
                    Half::Low => bounds[0]..mid,
                    Half::High => mid..bounds[1],
                }
            }
        };
        Some((&segment.index[range.clone()], &segment.values[range]))
    }

    /// The number of entries of the examples `examples`; `None` if one is not listed.
    pub(crate) fn count(&self, examples: &[usize]) -> Option<usize> {
        examples.iter().try_fold(0, |sum, &e| {
            let (_, bounds) = self.bounds(e)?;
            Some(sum + bounds[1] - bounds[0])
        })
    }

    /// Where the entry lists of the examples `examples` are (their slots of the segments'
    /// `starts`), for a prefetch hint a mini-batch before [`ListedRows::lists`]: in shuffled
    /// order each example's bounds are a cache miss of their own, which the lists' prefetch
    /// would otherwise wait for.
    pub(crate) fn bounds_of<'a>(
        &'a self,
        examples: &'a [usize],
    ) -> impl Iterator<Item = &'a [usize]> + 'a {
        examples.iter().filter_map(|&e| Some(self.bounds(e)?.1))
    }

    /// The entry lists (indices, values) of the examples `examples`, for a prefetch hint;
    /// examples out of the list are skipped.
    pub(crate) fn lists<'a>(
        &'a self,
        examples: &'a [usize],
        half: Option<Half>,
    ) -> impl Iterator<Item = (&'a [u32], &'a [f32])> + 'a {
        examples.iter().filter_map(move |&e| self.entries(e, half))
    }
}

/// Fills a [`SparseRows`] from a dense batch: per vector of inputs one compare gives the
/// mask of nonzero lanes, and the vector's nonzero lanes are left-packed onto the entries
/// (`Vector::compress_store`: on AVX2 one permutation through a table and two whole-vector
/// stores, with no branch per entry). Runs of zeros, most of an MNIST image, cost one
/// compare per vector.
///
/// Invariants: `x.len() == rows * into.cols`, `rows < into.starts.len()`, and the entry
/// arrays have `MAX_LANES` slots beyond `into.max_nonzeros`.
struct ScanNonzeros<'a> {
    x: &'a [f32],
    rows: usize,
    into: &'a mut SparseRows,
}

impl Kernel for ScanNonzeros<'_> {
    /// Whether the batch fitted.
    type Output = bool;

    #[inline(always)]
    unsafe fn run<V: Vector>(self) -> bool {
        let into = self.into;
        let (cols, limit) = (into.cols, into.max_nonzeros);
        let (x, index, values) = (
            self.x.as_ptr(),
            into.index.as_mut_ptr(),
            into.values.as_mut_ptr(),
        );
        let mut count = 0usize;
        into.starts[0] = 0;
        // SAFETY: the ISA is the caller's contract. Reads: row r's lanes j.. (whole vectors
        // while j + LANES <= cols, then cols - j lanes) lie in x (rows * cols). Writes: a
        // vector writes LANES <= MAX_LANES slots from a count that is at most `limit` before
        // it (checked after every vector), so they land below limit + MAX_LANES, the arrays'
        // length.
        unsafe {
            for r in 0..self.rows {
                let row = x.add(r * cols);
                let mut j = 0;
                while j < cols {
                    let lanes = (cols - j).min(V::LANES);
                    let v = if lanes == V::LANES {
                        V::load(row.add(j))
                    } else {
                        V::load_partial(row.add(j), lanes)
                    };
                    let bits = v.nonzero_lanes();
                    if bits != 0 {
                        count +=
                            v.compress_store(bits, j as u32, values.add(count), index.add(count));
                        if count > limit {
                            return false;
                        }
                    }
                    j += V::LANES;
                }
                into.starts[r + 1] = count as u32;
            }
        }
        into.rows = self.rows;
        into.nonzeros = count;
        true
    }
}

/// The column groups of a row of `n` columns in vectors of `lanes`: balanced, at most a
/// given width each (14 vectors make 7 + 7, not 13 + 1). Yields `(first column, vectors in the group, lanes of the group's last vector)`.
///
/// An iterator rather than a function taking a closure: a closure's body would not inherit
/// the calling entry's `#[target_feature]`s, and the vector operations in it would become
/// calls.
struct Groups {
    n: usize,
    lanes: usize,
    vectors: usize,
    groups: usize,
    group: usize,
    done: usize,
}

impl Groups {
    /// Groups of at most `max_width` vectors.
    #[inline(always)]
    fn new(n: usize, lanes: usize, max_width: usize) -> Groups {
        let vectors = n.div_ceil(lanes);
        Groups {
            n,
            lanes,
            vectors,
            groups: vectors.div_ceil(max_width),
            group: 0,
            done: 0,
        }
    }
}

impl Iterator for Groups {
    type Item = (usize, usize, usize);

    #[inline(always)]
    fn next(&mut self) -> Option<(usize, usize, usize)> {
        if self.group == self.groups {
            return None;
        }
        let width = (self.vectors - self.done).div_ceil(self.groups - self.group);
        let c0 = self.done * self.lanes;
        let last_lanes = (self.n - c0 - (width - 1) * self.lanes).min(self.lanes);
        self.group += 1;
        self.done += width;
        Some((c0, width, last_lanes))
    }
}

/// Loads vector `j` of `N` from `p` (column offset `j * LANES`); the last is partial with
/// `last_lanes` lanes when `PARTIAL`.
///
/// # Safety
///
/// `V`'s instruction set is available and the lanes read lie in one allocation.
#[inline(always)]
unsafe fn load_lane_group<V: Vector, const N: usize, const PARTIAL: bool>(
    p: *const f32,
    j: usize,
    last_lanes: usize,
) -> V {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        if PARTIAL && j == N - 1 {
            V::load_partial(p.add(j * V::LANES), last_lanes)
        } else {
            V::load(p.add(j * V::LANES))
        }
    }
}

/// As [`load_lane_group`], but the partial last vector is read whole when `whole`: its lanes
/// past `last_lanes` then hold whatever follows in memory, for an accumulator whose extra
/// lanes are never stored.
///
/// # Safety
///
/// `V`'s instruction set is available and the lanes read lie in one allocation: with
/// `whole`, all `N * LANES` of them.
#[inline(always)]
unsafe fn load_lane_group_over<V: Vector, const N: usize, const PARTIAL: bool>(
    p: *const f32,
    j: usize,
    last_lanes: usize,
    whole: bool,
) -> V {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        if PARTIAL && j == N - 1 && !whole {
            V::load_partial(p.add(j * V::LANES), last_lanes)
        } else {
            V::load(p.add(j * V::LANES))
        }
    }
}

/// Stores vector `j` of `N` to `p`, as [`load_lane_group`] loads it.
///
/// # Safety
///
/// `V`'s instruction set is available and the lanes written lie in one allocation.
#[inline(always)]
unsafe fn store_lane_group<V: Vector, const N: usize, const PARTIAL: bool>(
    v: V,
    p: *mut f32,
    j: usize,
    last_lanes: usize,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        if PARTIAL && j == N - 1 {
            v.store_partial(p.add(j * V::LANES), last_lanes)
        } else {
            v.store(p.add(j * V::LANES))
        }
    }
}

/// Calls `$f::<V, N, PARTIAL>` for a group's runtime width `N` (1..=[`MAX_WIDTH`]) and
/// partial flag.
macro_rules! dispatch_group {
    ($width:expr, $partial:expr, $f:ident, $v:ty, $args:tt) => {
        dispatch_group!(@arms ($width, $partial), $f, $v, $args,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    };
    (@arms $key:expr, $f:ident, $v:ty, $args:tt, [$($w:literal),*]) => {
        match $key {
            $(
                ($w, false) => $f::<$v, $w, false> $args,
                ($w, true) => $f::<$v, $w, true> $args,
            )*
            (_, false) => $f::<$v, MAX_WIDTH, false> $args,
            (_, true) => $f::<$v, MAX_WIDTH, true> $args,
        }
    };
}

/// The widest column group, in vectors: 13 accumulators, one broadcast entry value and a
/// scratch register fit the 16 registers of AVX2, so a layer of up to 104 neurons (100 for
/// MNIST's 784-100-10) is one group and its entries are walked once.
const MAX_WIDTH: usize = 13;

/// Up to this many vectors, the forward product keeps two accumulators per vector (even and
/// odd entries): with fewer than 7 vectors an entry's multiply-adds do not cover the 4-cycle
/// latency of the previous entry's, and 2 x 6 accumulators plus 2 broadcasts still fit 16
/// registers. Wider groups have enough independent chains with one accumulator each.
const MAX_DUAL_WIDTH: usize = 6;

/// `out = X W^T` for a sparse `X` (`rows x k`) and a row-major `k x n` matrix `wt`:
/// `out[r, :] = sum of X[r, i] * wt[i, :]` over row `r`'s entries, in entry order from
/// `+0.0`; for rows of at most [`MAX_DUAL_WIDTH`] vectors in two interleaved chains (even
/// and odd entries) added at the end.
///
/// When `n` is not a multiple of the vector width, the last vector of a row of `wt` is read
/// whole, running into the next row, wherever that stays inside `wt` (every row but the
/// last one or two): the extra lanes feed accumulator lanes that are never stored. A masked
/// load there measured as the most expensive instruction of the loop (AVX2's `vmaskmovps`,
/// plus its mask rebuilt for want of a free register with 13 accumulators).
///
/// Only rows `rows` of `X` are computed, into `out` (`rows.len() x n`): a product can be
/// split by rows across threads, each row's result the same bits either way.
///
/// Invariants: `x` is a valid [`SparseRows`] with `x.cols() == k`; `rows.end <= x.rows()`;
/// `wt.len() == k * n`; `out.len() == rows.len() * n`.
pub(crate) struct SparseTimesDense<'a> {
    pub x: &'a SparseRows,
    pub rows: Range<usize>,
    pub wt: &'a [f32],
    pub n: usize,
    pub out: &'a mut [f32],
}

/// One column group of [`SparseTimesDense`]: columns `c0..` (`N` vectors) of every row.
///
/// # Safety
///
/// `V`'s instruction set is available; the kernel's invariants hold; the group lies within
/// the `n` columns.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // j indexes two accumulator arrays and the lanes of a row
#[allow(clippy::too_many_arguments)] // the kernel's operands and the group's place in the row
unsafe fn times_dense_group<V: Vector, const N: usize, const PARTIAL: bool>(
    x: &SparseRows,
    rows: Range<usize>,
    wt: *const f32,
    n: usize,
    out: *mut f32,
    c0: usize,
    last_lanes: usize,
    whole_below: usize,
) {
    // SAFETY: the ISA is the caller's contract. Entry e of row r has index i < k, so the
    // lanes read at wt + i*n + c0 .. + c0 + (N-1)*LANES + last_lanes lie in row i of wt
    // (k * n values); for i < whole_below all N * LANES lanes from wt + i*n + c0 lie in wt
    // (the caller's bound). The lanes written at out + r*n + c0 .. lie in row r of out
    // (rows * n): the stores are partial where the loads may not be.
    unsafe {
        for r in rows.clone() {
            let (start, end) = (x.starts[r] as usize, x.starts[r + 1] as usize);
            let o = out.add((r - rows.start) * n + c0);
            if N > MAX_DUAL_WIDTH {
                // One chain per vector: N >= 7 independent multiply-adds per entry.
                let mut acc = [V::zero(); N];
                for e in start..end {
                    let i = *x.index.get_unchecked(e) as usize;
                    let v = V::splat(*x.values.get_unchecked(e));
                    let p = wt.add(i * n + c0);
                    let whole = i < whole_below;
                    for j in 0..N {
                        let w = load_lane_group_over::<V, N, PARTIAL>(p, j, last_lanes, whole);
                        acc[j] = v.mul_add(w, acc[j]);
                    }
                }
                for j in 0..N {
                    store_lane_group::<V, N, PARTIAL>(acc[j], o, j, last_lanes);
                }
                continue;
            }
            let mut even = [V::zero(); N];
            let mut odd = [V::zero(); N];
            let mut e = start;
            while e + 1 < end {
                let (i0, i1) = (*x.index.get_unchecked(e), *x.index.get_unchecked(e + 1));
                let (v0, v1) = (
                    V::splat(*x.values.get_unchecked(e)),
                    V::splat(*x.values.get_unchecked(e + 1)),
                );
                let (i0, i1) = (i0 as usize, i1 as usize);
                let (p0, p1) = (wt.add(i0 * n + c0), wt.add(i1 * n + c0));
                let whole = i0.max(i1) < whole_below;
                for j in 0..N {
                    let w0 = load_lane_group_over::<V, N, PARTIAL>(p0, j, last_lanes, whole);
                    let w1 = load_lane_group_over::<V, N, PARTIAL>(p1, j, last_lanes, whole);
                    even[j] = v0.mul_add(w0, even[j]);
                    odd[j] = v1.mul_add(w1, odd[j]);
                }
                e += 2;
            }
            if e < end {
                let i = *x.index.get_unchecked(e) as usize;
                let v = V::splat(*x.values.get_unchecked(e));
                let p = wt.add(i * n + c0);
                let whole = i < whole_below;
                for j in 0..N {
                    let w = load_lane_group_over::<V, N, PARTIAL>(p, j, last_lanes, whole);
                    even[j] = v.mul_add(w, even[j]);
                }
            }
            for j in 0..N {
                store_lane_group::<V, N, PARTIAL>(even[j].add(odd[j]), o, j, last_lanes);
            }
        }
    }
}

impl Kernel for SparseTimesDense<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let (x, rows, wt, n) = (self.x, self.rows, self.wt.as_ptr(), self.n);
        let wt_len = self.wt.len();
        let out = self.out.as_mut_ptr();
        if n == 0 {
            return;
        }
        // A row of up to MAX_DUAL_WIDTH vectors is one two-chain group; a wider one is split
        // into balanced groups of 7..=MAX_WIDTH vectors (more than MAX_WIDTH vectors make at
        // least two groups of at least (MAX_WIDTH + 1) / 2 = 7), each with one chain.
        let max_width = if n.div_ceil(V::LANES) <= MAX_DUAL_WIDTH {
            MAX_DUAL_WIDTH
        } else {
            MAX_WIDTH
        };
        for (c0, width, last_lanes) in Groups::new(n, V::LANES, max_width) {
            let partial = last_lanes < V::LANES;
            // Row i's group may be read whole while i * n + c0 + width * LANES <= wt_len.
            let span = c0 + width * V::LANES;
            let whole_below = if wt_len >= span {
                (wt_len - span) / n + 1
            } else {
                0
            };
            // SAFETY: the ISA is the caller's contract, the invariants are the kernel's, the
            // groups tile 0..n, and whole_below is the bound times_dense_group asks for.
            unsafe {
                dispatch_group!(
                    width,
                    partial,
                    times_dense_group,
                    V,
                    (x, rows.clone(), wt, n, out, c0, last_lanes, whole_below)
                )
            }
        }
    }
}

/// From this many vectors per row, [`SparseUpdate`] merges the examples of a batch of up to
/// [`UPDATE_MERGE`]; narrower rows and larger batches are updated one example at a time.
/// Both give the same bits. Epochs measured on AVX2 (Intel Xeon), merged against one at a
/// time, mini-batch 10: 100 neurons (13 vectors) 0.140 against 0.170 s, 80 (10) 0.132
/// against 0.138, 60 (8) 0.100 against 0.103, but 50 (7) 0.100 against 0.093 and 30 (4)
/// 0.081 against 0.062, where the scatter and the unpredictable count of examples per row
/// cost more than the loads and stores they save. Mini-batch 100 in chunks of 16 lost at 60
/// and 80 neurons (0.078 against 0.070, 0.122 against 0.113 s) and tied at 100: past the
/// first chunk the decay is no longer folded in, and more examples per row mean more of the
/// loop's hard-to-predict exits.
const MERGE_MIN_WIDTH: usize = 8;

/// The most examples (rows of `X`) [`SparseUpdate`] merges: one bit each in a `u16`.
pub(crate) const UPDATE_MERGE: usize = 16;

/// Working memory of [`SparseUpdate`] for a range of up to `inputs` inputs and rows of up to
/// `n` values; made by the caller so that the kernel never allocates, and grown by
/// [`Kernels::sparse_update`] if a call needs more.
#[derive(Clone, Debug, Default)]
pub(crate) struct UpdateScratch {
    /// Per input of the range: bit `g` set when example `g` of the batch has an entry there.
    mask: Vec<u16>,
    /// Per input, per example of the batch: the entry's value (valid where `mask` says).
    values: Vec<f32>,
    /// The inputs of the range with at least one entry in the batch, in first-seen order
    /// (one slot more than `mask`).
    touched: Vec<u32>,
    /// Per example of the batch: `alpha * d[r, :]`, `padded(n)` values (zero past `n`).
    scaled: Vec<f32>,
}

/// Row length of [`UpdateScratch::scaled`]: `n` rounded up to whole vectors of any ISA,
/// so that every vector of a column group can be loaded whole.
fn padded(n: usize) -> usize {
    n.div_ceil(MAX_LANES) * MAX_LANES
}

impl UpdateScratch {
    /// Room for updates of up to `inputs` rows of `W^T` with rows of up to `n` values.
    pub(crate) fn new(inputs: usize, n: usize) -> UpdateScratch {
        let mut scratch = UpdateScratch::default();
        scratch.reserve(inputs, n);
        scratch
    }

    /// Whether an update of `inputs` rows of `n` values fits without growing.
    pub(crate) fn fits(&self, inputs: usize, n: usize) -> bool {
        self.mask.len() >= inputs && self.scaled.len() >= UPDATE_MERGE * padded(n)
    }

    /// Grows to fit an update of `inputs` rows of `n` values.
    pub(crate) fn reserve(&mut self, inputs: usize, n: usize) {
        if self.mask.len() < inputs {
            // The mask must start (and is always left) all zero.
            self.mask = vec![0; inputs];
            self.values = vec![0.0; inputs * UPDATE_MERGE];
            // One spare slot: every entry writes its input at the count, which moves on
            // only for a first sighting, so the write after the last input is a spare.
            self.touched = vec![0; inputs + 1];
        }
        let scaled = UPDATE_MERGE * padded(n);
        if self.scaled.len() < scaled {
            self.scaled = vec![0.0; scaled];
        }
    }
}

/// `W^T = beta * W^T + alpha * X^T D` for a sparse `X` (`rows x k`), a row-major `rows x n`
/// matrix `d` and a row-major `k x n` matrix `wt`: `wt *= beta`, then for each row `r` of
/// `X`, in order, and each of its entries `X[r, i]`: `wt[i, :] += X[r, i] * (alpha * d[r,
/// :])` (one fused multiply-add per lane, with `alpha * d[r, :]` rounded once per row).
///
/// For wide rows ([`MERGE_MIN_WIDTH`] vectors or more) and batches of up to
/// [`UPDATE_MERGE`] examples, the examples are merged. Their entries are first sorted by
/// input into `scratch` (a bit per example and the value); then each input row of `W^T`
/// that any of them touches is loaded once, gets the multiply-adds of every example that
/// has the input, in example order, and is stored once. With `beta != 1` every row is
/// visited, touched or not, and scaled on the way, so the decay costs no pass of its own.
/// Each weight goes through exactly the operations, in the order, of the one-example-at-a-
/// time update (`beta * w` rounded, then one multiply-add per example), so the result is
/// the same bits; but on MNIST, where the images of a mini-batch share most of their
/// nonzero pixels, a row of `W^T` is loaded and stored once for several examples instead of
/// once per example plus once for the decay, and the update was bound by those loads and
/// stores. Otherwise: `wt *= beta` in one pass, then the entries one example at a time.
///
/// The rounding differs from network2's `beta w - alpha sum` only in where the `m`
/// per-example terms are rounded (into `wt` one by one).
///
/// Only the rows `inputs` of `W^T` are updated, `wt` holding just those (`inputs.len() x n`):
/// an update can be split by inputs across threads, each weight the same bits either way.
///
/// Invariants: `x` is a valid [`SparseRows`] with `x.cols() == k`; `inputs.end <= k`;
/// `d.len() == x.rows() * n`; `wt.len() == inputs.len() * n`; `scratch.fits(inputs.len(), n)`
/// and its mask is all zero.
pub(crate) struct SparseUpdate<'a> {
    pub x: &'a SparseRows,
    pub inputs: Range<usize>,
    pub d: &'a [f32],
    pub n: usize,
    pub alpha: f32,
    pub beta: f32,
    pub wt: &'a mut [f32],
    pub scratch: &'a mut UpdateScratch,
}

/// The merged update on one column group of [`SparseUpdate`]: columns `c0..` (`N` vectors)
/// of the rows of `wt` listed in `rows` (local row numbers), or of all `all_rows` rows when
/// `rows` is `None`, scaling by `beta` first when given.
///
/// # Safety
///
/// `V`'s instruction set is available; `wt` holds `all_rows * n` values and every listed
/// row is below `all_rows`; the group lies within the `n` columns; `mask` and `values` have
/// `all_rows` and `all_rows * UPDATE_MERGE` values; `scaled` holds a row of `stride >= c0 +
/// N * LANES` values per example whose mask bit can be set.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // j indexes the held row of wt and the lanes of scaled
#[allow(clippy::too_many_arguments)] // the batch's tables and the group's place in the row
unsafe fn update_group<V: Vector, const N: usize, const PARTIAL: bool>(
    wt: *mut f32,
    n: usize,
    rows: Option<&[u32]>,
    all_rows: usize,
    beta: Option<f32>,
    mask: &[u16],
    values: &[f32],
    scaled: *const f32,
    stride: usize,
    c0: usize,
    last_lanes: usize,
) {
    // SAFETY: the ISA and the bounds are the caller's contract: row li < all_rows of wt spans
    // li*n .. li*n + n, and the group's lanes c0 .. c0 + (N-1)*LANES + last_lanes are within
    // it; example g's scaled row spans g*stride .. g*stride + c0 + N*LANES within scaled.
    unsafe {
        // A loop rather than a closure per row: a closure's body would not inherit the
        // entry's target features (see `Groups`).
        let count = rows.map_or(all_rows, <[u32]>::len);
        for t in 0..count {
            let li = match rows {
                Some(rows) => *rows.get_unchecked(t) as usize,
                None => t,
            };
            let row = wt.add(li * n + c0);
            let mut w = [V::zero(); N];
            for j in 0..N {
                w[j] = load_lane_group::<V, N, PARTIAL>(row, j, last_lanes);
            }
            if let Some(beta) = beta {
                let beta = V::splat(beta);
                for j in 0..N {
                    w[j] = w[j].mul(beta);
                }
            }
            let mut bits = *mask.get_unchecked(li);
            while bits != 0 {
                let g = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let v = V::splat(*values.get_unchecked(li * UPDATE_MERGE + g));
                let s = scaled.add(g * stride + c0);
                for j in 0..N {
                    w[j] = v.mul_add(V::load(s.add(j * V::LANES)), w[j]);
                }
            }
            for j in 0..N {
                store_lane_group::<V, N, PARTIAL>(w[j], row, j, last_lanes);
            }
        }
    }
}

/// One column group of [`SparseUpdate`] where it does not merge (rows under
/// [`MERGE_MIN_WIDTH`] vectors, batches over [`UPDATE_MERGE`]): one example at a time, after
/// the separate `beta` pass; columns `c0..` (`N` vectors).
///
/// # Safety
///
/// `V`'s instruction set is available; the kernel's invariants hold; the group lies within
/// the `n` columns.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // j indexes the held row of d and the lanes of a row of wt
#[allow(clippy::too_many_arguments)] // the kernel's operands and the group's place in the row
unsafe fn update_group_each<V: Vector, const N: usize, const PARTIAL: bool>(
    x: &SparseRows,
    inputs: Range<usize>,
    d: *const f32,
    n: usize,
    alpha: f32,
    wt: *mut f32,
    c0: usize,
    last_lanes: usize,
) {
    // SAFETY: the ISA is the caller's contract. Row r < rows of d spans r*n..(r+1)*n of its
    // rows * n values; entry indices i < k select row i of wt (k * n values); the group's
    // lanes c0 .. c0 + (N-1)*LANES + last_lanes are within n.
    unsafe {
        let alpha_v = V::splat(alpha);
        for r in 0..x.rows {
            let Range { start, end } = x.entries_in(r, &inputs);
            if start == end {
                continue;
            }
            let p = d.add(r * n + c0);
            let mut scaled = [V::zero(); N];
            for j in 0..N {
                scaled[j] = load_lane_group::<V, N, PARTIAL>(p, j, last_lanes).mul(alpha_v);
            }
            for e in start..end {
                let i = *x.index.get_unchecked(e) as usize;
                let v = V::splat(*x.values.get_unchecked(e));
                let w = wt.add((i - inputs.start) * n + c0);
                for j in 0..N {
                    let wv = load_lane_group::<V, N, PARTIAL>(w, j, last_lanes);
                    store_lane_group::<V, N, PARTIAL>(v.mul_add(scaled[j], wv), w, j, last_lanes);
                }
            }
        }
    }
}

impl Kernel for SparseUpdate<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let (x, d, n, inputs) = (self.x, self.d.as_ptr(), self.n, self.inputs);
        let wt = self.wt.as_mut_ptr();
        let all_rows = inputs.len();
        let scratch = self.scratch;
        if n == 0 {
            return;
        }
        if n.div_ceil(V::LANES) < MERGE_MIN_WIDTH || x.rows > UPDATE_MERGE {
            // SAFETY: the ISA is the caller's contract; the flat pass stays below
            // all_rows * n, the length of wt.
            unsafe {
                if self.beta != 1.0 {
                    let (beta, len) = (V::splat(self.beta), all_rows * n);
                    let mut i = 0;
                    while i + V::LANES <= len {
                        V::load(wt.add(i)).mul(beta).store(wt.add(i));
                        i += V::LANES;
                    }
                    if i < len {
                        V::load_partial(wt.add(i), len - i)
                            .mul(beta)
                            .store_partial(wt.add(i), len - i);
                    }
                }
            }
            for (c0, width, last_lanes) in Groups::new(n, V::LANES, MAX_WIDTH) {
                let partial = last_lanes < V::LANES;
                // SAFETY: the ISA is the caller's contract, the invariants are the kernel's,
                // and the groups tile 0..n.
                unsafe {
                    dispatch_group!(
                        width,
                        partial,
                        update_group_each,
                        V,
                        (x, inputs.clone(), d, n, self.alpha, wt, c0, last_lanes)
                    )
                }
            }
            return;
        }
        let stride = padded(n);
        // SAFETY: the ISA is the caller's contract.
        let alpha = unsafe { V::splat(self.alpha) };
        let beta = (self.beta != 1.0).then_some(self.beta);
        // Sort the batch's entries in `inputs` by input, and scale its rows of d.
        let mut touched = 0;
        for r in 0..x.rows {
            let Range { start, end } = x.entries_in(r, &inputs);
            for e in start..end {
                // The scan wrote only columns below x.cols, and the run keeps those in
                // inputs, so li < all_rows: the slices' own bounds checks never fail.
                let li = x.index[e] as usize - inputs.start;
                let seen = scratch.mask[li];
                scratch.touched[touched] = li as u32;
                touched += usize::from(seen == 0);
                // r < rows <= UPDATE_MERGE (checked above): a bit of the u16.
                scratch.mask[li] = seen | (1 << r);
                scratch.values[li * UPDATE_MERGE + r] = x.values[e];
            }
            // SAFETY: the ISA is the caller's contract. Row r of d spans r*n..(r+1)*n of
            // its rows * n values; example r's scaled row spans r*stride..(r+1)*stride
            // with stride = padded(n) >= n rounded up to LANES, within scratch.scaled
            // (UPDATE_MERGE rows: `fits`), its lanes past n written as zeros.
            unsafe {
                let s = scratch.scaled.as_mut_ptr().add(r * stride);
                let row = d.add(r * n);
                let mut j = 0;
                while j + V::LANES <= n {
                    V::load(row.add(j)).mul(alpha).store(s.add(j));
                    j += V::LANES;
                }
                if j < n {
                    V::load_partial(row.add(j), n - j)
                        .mul(alpha)
                        .store(s.add(j));
                }
            }
        }
        let rows = if beta.is_some() {
            None
        } else {
            Some(&scratch.touched[..touched])
        };
        for (c0, width, last_lanes) in Groups::new(n, V::LANES, MAX_WIDTH) {
            let partial = last_lanes < V::LANES;
            // SAFETY: the ISA is the caller's contract; wt holds all_rows * n values and
            // the touched rows are below all_rows; the groups tile 0..n; mask and values
            // have all_rows and all_rows * UPDATE_MERGE slots (`fits`); the bits set are
            // those of the batch's examples, whose scaled rows were just written, and
            // c0 + width * LANES <= n rounded up to LANES <= stride.
            unsafe {
                dispatch_group!(
                    width,
                    partial,
                    update_group,
                    V,
                    (
                        wt,
                        n,
                        rows,
                        all_rows,
                        beta,
                        &scratch.mask,
                        &scratch.values,
                        scratch.scaled.as_ptr(),
                        stride,
                        c0,
                        last_lanes
                    )
                )
            }
        }
        for &li in &scratch.touched[..touched] {
            scratch.mask[li as usize] = 0;
        }
    }
}
