//! Integration tests for the GEMM engine (`simdnet::sgemm`, `Gemm`, `gemm`).
//!
//! Every test runs every instruction set this CPU has (`Isa::available()`), and checks:
//!
//! * results against a naive f64 reference, with an error bound that grows with k
//!   (`|c - ref| <= 2 (k + 2) eps (|alpha| sum_p |a_ip b_pj| + |beta c0_ij|) + tiny`), and
//!   against the scalar kernel;
//! * exact equality on integer-valued operands across shapes that hit every tile edge and
//!   every cache block boundary (KC, MC, NC);
//! * BLAS semantics for `beta == 0` (C is never read), `alpha == 0` and `k == 0` (A and B are
//!   never read);
//! * that nothing outside C's view is written (sentinel guard bands around every operand) and
//!   that A and B are not modified;
//! * bitwise independence of the thread count;
//! * the raw `sgemm` against the safe API, and shape errors from the safe API;
//! * the `SIMDNET_ISA` override and, through `SIMDNET_EXPECT_ISAS`, which ISAs CI expects.

mod common;

use std::fmt::Debug;

use proptest::prelude::*;
use simdnet::gemm::PARALLEL_MIN_FLOPS;
use simdnet::{Error, Gemm, Isa, MatMut, MatRef, Matrix, Parallelism, gemm, selected_isa, sgemm};

const EPS: f64 = f32::EPSILON as f64;

/// Sentinels (quiet NaNs with distinct payloads) for the memory around each operand's view.
const A_GUARD: u32 = 0x7fc0_a11a;
const B_GUARD: u32 = 0x7fc0_b11b;
const C_GUARD: u32 = 0x7fc0_c11c;

/// Whether to run the big products at full size. Debug builds and (emulated) AArch64 use
/// smaller ones that still cross the same thresholds.
const FULL_SIZE: bool = cfg!(not(any(debug_assertions, target_arch = "aarch64")));

/// The instruction sets under test: all that this CPU has, scalar first.
fn isas() -> Vec<Isa> {
    let isas = Isa::available();
    assert_eq!(isas.first(), Some(&Isa::Scalar), "scalar must come first");
    isas
}

fn multiplier(isa: Isa, par: Parallelism) -> Gemm {
    Gemm::new()
        .with_isa(isa)
        .unwrap_or_else(|e| panic!("{isa} is listed as available but: {e}"))
        .with_parallelism(par)
}

/// SplitMix64: a tiny deterministic generator, seeded by proptest or by the test.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-2, 2), with 24 random bits (so most products round).
    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
    }

    /// An integer in `-r..=r`, as f32.
    fn int(&mut self, r: u64) -> f32 {
        (self.next_u64() % (2 * r + 1)) as f32 - r as f32
    }
}

/// How an operand is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    /// Storage order of the buffer.
    col_major: bool,
    /// Extra elements per leading dimension (ld = inner + pad).
    pad: usize,
    /// Negative row stride (row 0 is stored last).
    rev_rows: bool,
    /// Negative column stride.
    rev_cols: bool,
    /// The buffer holds the transpose, and the operand is read through `.t()`.
    transposed: bool,
}

impl Layout {
    const ROW: Layout = Layout {
        col_major: false,
        pad: 0,
        rev_rows: false,
        rev_cols: false,
        transposed: false,
    };
    const COL: Layout = Layout {
        col_major: true,
        ..Layout::ROW
    };
    const fn pad(self, pad: usize) -> Layout {
        Layout { pad, ..self }
    }
    const fn rev(self, rows: bool, cols: bool) -> Layout {
        Layout {
            rev_rows: rows,
            rev_cols: cols,
            ..self
        }
    }
    const fn t(self) -> Layout {
        Layout {
            transposed: true,
            ..self
        }
    }
}

/// A menu of layouts for the deterministic tests, cycled through by index.
const LAYOUTS: [Layout; 9] = [
    Layout::ROW,
    Layout::COL,
    Layout::ROW.pad(3),
    Layout::COL.pad(2),
    Layout::ROW.t(),
    Layout::COL.pad(1).t(),
    Layout::ROW.rev(true, false),
    Layout::COL.pad(1).rev(false, true),
    Layout::ROW.pad(2).rev(true, true).t(),
];

/// A `rows x cols` operand inside a larger buffer filled with a sentinel.
#[derive(Clone, Debug)]
struct Strided {
    buf: Vec<f32>,
    offset: usize,
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
    layout: Layout,
    guard: u32,
}

impl Strided {
    fn new(
        rows: usize,
        cols: usize,
        layout: Layout,
        guard: u32,
        mut fill: impl FnMut(usize, usize) -> f32,
    ) -> Strided {
        const FRONT: usize = 7;
        const BACK: usize = 9;
        let (srows, scols) = if layout.transposed {
            (cols, rows)
        } else {
            (rows, cols)
        };
        let (inner, outer) = if layout.col_major {
            (srows, scols)
        } else {
            (scols, srows)
        };
        // With an empty inner dimension and no padding, ld = 0: a zero stride on the other
        // dimension, which an empty view must accept.
        let ld = inner + layout.pad;
        let (srs, scs) = if layout.col_major {
            (1, ld as isize)
        } else {
            (ld as isize, 1)
        };
        let (mut rs, mut cs) = if layout.transposed {
            (scs, srs)
        } else {
            (srs, scs)
        };
        let mut offset = FRONT;
        if rows > 0 && cols > 0 {
            if layout.rev_rows {
                offset += (rows - 1) * rs.unsigned_abs();
                rs = -rs;
            }
            if layout.rev_cols {
                offset += (cols - 1) * cs.unsigned_abs();
                cs = -cs;
            }
        }
        let mut s = Strided {
            buf: vec![f32::from_bits(guard); FRONT + outer * ld + BACK],
            offset,
            rows,
            cols,
            rs,
            cs,
            layout,
            guard,
        };
        for i in 0..rows {
            for j in 0..cols {
                let at = s.idx(i, j);
                s.buf[at] = fill(i, j);
            }
        }
        s
    }

    fn idx(&self, i: usize, j: usize) -> usize {
        assert!(i < self.rows && j < self.cols);
        (self.offset as isize + i as isize * self.rs + j as isize * self.cs) as usize
    }

    fn get(&self, i: usize, j: usize) -> f32 {
        self.buf[self.idx(i, j)]
    }

    fn view(&self) -> MatRef<'_> {
        let v = if self.layout.transposed {
            MatRef::from_strided(
                &self.buf,
                self.offset,
                self.cols,
                self.rows,
                self.cs,
                self.rs,
            )
            .unwrap()
            .t()
        } else {
            MatRef::from_strided(
                &self.buf,
                self.offset,
                self.rows,
                self.cols,
                self.rs,
                self.cs,
            )
            .unwrap()
        };
        assert_eq!(
            (v.rows(), v.cols(), v.row_stride(), v.col_stride()),
            (self.rows, self.cols, self.rs, self.cs)
        );
        v
    }

    fn view_mut(&mut self) -> MatMut<'_> {
        let (offset, rows, cols, rs, cs) = (self.offset, self.rows, self.cols, self.rs, self.cs);
        let v = if self.layout.transposed {
            MatMut::from_strided(&mut self.buf, offset, cols, rows, cs, rs)
                .unwrap()
                .t()
        } else {
            MatMut::from_strided(&mut self.buf, offset, rows, cols, rs, cs).unwrap()
        };
        assert_eq!(
            (v.rows(), v.cols(), v.row_stride(), v.col_stride()),
            (rows, cols, rs, cs)
        );
        v
    }

    /// Pointer to element (0, 0), derived from the whole buffer.
    fn ptr(&self) -> *const f32 {
        self.buf.as_ptr().wrapping_add(self.offset)
    }

    fn ptr_mut(&mut self) -> *mut f32 {
        self.buf.as_mut_ptr().wrapping_add(self.offset)
    }

    /// The view's elements, row-major.
    fn values(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(self.rows * self.cols);
        for i in 0..self.rows {
            v.extend((0..self.cols).map(|j| self.get(i, j)));
        }
        v
    }

    fn bits(&self) -> Vec<u32> {
        self.buf.iter().map(|x| x.to_bits()).collect()
    }

    /// Every element outside the view still holds the sentinel, bit for bit.
    fn check_guards(&self, ctx: &dyn Debug) {
        let mut inside = vec![false; self.buf.len()];
        for i in 0..self.rows {
            for j in 0..self.cols {
                inside[self.idx(i, j)] = true;
            }
        }
        for (at, (x, inside)) in self.buf.iter().zip(inside).enumerate() {
            assert!(
                inside || x.to_bits() == self.guard,
                "{ctx:?}: element {at} of the buffer, outside the view, was overwritten with {x} \
                 (layout {:?}, offset {}, strides ({}, {}))",
                self.layout,
                self.offset,
                self.rs,
                self.cs
            );
        }
    }
}

/// The f64 reference and, per element, the magnitude its error bound scales with.
struct Expected {
    k: usize,
    value: Vec<f64>,
    scale: Vec<f64>,
}

impl Expected {
    fn bound(&self, at: usize) -> f64 {
        2.0 * (self.k + 2) as f64 * EPS * self.scale[at] + 1e-35
    }
}

/// `alpha A B + beta C0` in f64, with BLAS semantics: A and B are not read when alpha is
/// zero, C0 is not read when beta is zero.
fn reference(alpha: f32, a: &Strided, b: &Strided, beta: f32, c0: &Strided) -> Expected {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!((b.rows, c0.rows, c0.cols), (k, m, n));
    let mut value = Vec::with_capacity(m * n);
    let mut scale = Vec::with_capacity(m * n);
    let a_rows: Vec<Vec<f64>> = (0..m)
        .map(|i| (0..k).map(|p| a.get(i, p) as f64).collect())
        .collect();
    let b_cols: Vec<Vec<f64>> = (0..n)
        .map(|j| (0..k).map(|p| b.get(p, j) as f64).collect())
        .collect();
    for (i, a_row) in a_rows.iter().enumerate() {
        for (j, b_col) in b_cols.iter().enumerate() {
            let (mut dot, mut mag) = (0.0f64, 0.0f64);
            if alpha != 0.0 {
                for (x, y) in a_row.iter().zip(b_col) {
                    dot += x * y;
                    mag += (x * y).abs();
                }
            }
            let c = if beta == 0.0 {
                0.0
            } else {
                beta as f64 * c0.get(i, j) as f64
            };
            value.push(if alpha == 0.0 {
                c
            } else {
                alpha as f64 * dot + c
            });
            scale.push((alpha as f64).abs() * mag + c.abs());
        }
    }
    Expected { k, value, scale }
}

fn check_close(got: &[f32], exp: &Expected, n: usize, ctx: &dyn Debug) {
    assert_eq!(got.len(), exp.value.len());
    for (at, &g) in got.iter().enumerate() {
        let want = exp.value[at];
        let bound = exp.bound(at);
        let err = (g as f64 - want).abs();
        assert!(
            err <= bound,
            "{ctx:?}: C({}, {}) = {g}, reference {want}, error {err:e} > bound {bound:e}",
            at / n,
            at % n
        );
    }
}

/// Which entry point a product goes through.
#[derive(Clone, Copy, Debug)]
enum Entry {
    Run,
    RunRaw,
}

/// Runs `C <- alpha A B + beta C` and checks that A and B are untouched and that nothing
/// outside C's view changed. (The argument list mirrors `sgemm`'s.)
#[allow(clippy::too_many_arguments)]
fn product(
    g: Gemm,
    entry: Entry,
    alpha: f32,
    a: &Strided,
    b: &Strided,
    beta: f32,
    c: &mut Strided,
    ctx: &dyn Debug,
) {
    let (a_bits, b_bits) = (a.bits(), b.bits());
    match entry {
        Entry::Run => g
            .run(alpha, a.view(), b.view(), beta, c.view_mut())
            .unwrap_or_else(|e| panic!("{ctx:?}: {e}")),
        Entry::RunRaw => {
            let (m, k, n) = (a.rows, a.cols, b.cols);
            let (rsc, csc) = (c.rs, c.cs);
            // SAFETY: each Strided addresses its rows x cols elements inside its own buffer
            // (the view constructors above check the same strides), C's elements are distinct
            // (padding keeps ld >= inner) and C's buffer is separate from A's and B's.
            unsafe {
                g.run_raw(
                    m,
                    k,
                    n,
                    alpha,
                    a.ptr(),
                    a.rs,
                    a.cs,
                    b.ptr(),
                    b.rs,
                    b.cs,
                    beta,
                    c.ptr_mut(),
                    rsc,
                    csc,
                )
            }
        }
    }
    assert!(a.bits() == a_bits, "{ctx:?}: A's buffer was modified");
    assert!(b.bits() == b_bits, "{ctx:?}: B's buffer was modified");
    c.check_guards(ctx);
}

// ---------------------------------------------------------------------------------------------
// Property test against the f64 reference.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Case {
    m: usize,
    k: usize,
    n: usize,
    la: Layout,
    lb: Layout,
    lc: Layout,
    alpha: f32,
    beta: f32,
    nan_c: bool,
    seed: u64,
    entry: Entry,
    par: Parallelism,
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        any::<bool>(),
        prop_oneof![2 => Just(0usize), 1 => 1usize..=5],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(col_major, pad, rev_rows, rev_cols, transposed)| Layout {
            col_major,
            pad,
            rev_rows,
            rev_cols,
            transposed,
        })
}

fn scalar_param() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(0.0f32),
        Just(1.0f32),
        Just(-1.0f32),
        Just(0.5f32),
        Just(2.5f32),
        -3.0f32..3.0,
    ]
}

fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0usize..=70, 1 => Just(0usize), 1 => Just(1usize)]
}

fn shape() -> impl Strategy<Value = (usize, usize, usize)> {
    prop_oneof![
        8 => (dim(), dim(), dim()),
        // m crossing the MC blocks of the scalar/NEON (128) and AVX2 (144) kernels.
        1 => (prop_oneof![126usize..=130, 142usize..=146], 0usize..=12, 30usize..=70),
        // k crossing KC (192 for AVX-512, 256 otherwise).
        1 => (0usize..=16, prop_oneof![190usize..=194, 254usize..=258], 0usize..=40),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        shape(),
        (layout(), layout(), layout()),
        (scalar_param(), scalar_param()),
        any::<bool>(),
        any::<u64>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |((m, k, n), (la, lb, lc), (alpha, beta), nan_c, seed, raw, seq)| Case {
                m,
                k,
                n,
                la,
                lb,
                lc,
                alpha,
                beta,
                nan_c,
                seed,
                entry: if raw { Entry::RunRaw } else { Entry::Run },
                par: if seq {
                    Parallelism::Sequential
                } else {
                    Parallelism::Rayon
                },
            },
        )
}

fn proptest_config() -> ProptestConfig {
    // An explicit `cases` would shadow PROPTEST_CASES, so honour the variable here.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn run_case(case: &Case) {
    let Case { m, k, n, .. } = *case;
    let mut rng = Rng(case.seed);
    let a = Strided::new(m, k, case.la, A_GUARD, |_, _| rng.uniform());
    let b = Strided::new(k, n, case.lb, B_GUARD, |_, _| rng.uniform());
    let nan_c = case.nan_c && case.beta == 0.0;
    let c0 = Strided::new(m, n, case.lc, C_GUARD, |_, _| {
        if nan_c { f32::NAN } else { rng.uniform() }
    });
    let exp = reference(case.alpha, &a, &b, case.beta, &c0);
    let mut results = Vec::new();
    for isa in isas() {
        let ctx = (isa, case);
        let mut c = c0.clone();
        let g = multiplier(isa, case.par);
        product(g, case.entry, case.alpha, &a, &b, case.beta, &mut c, &ctx);
        let got = c.values();
        check_close(&got, &exp, n, &ctx);
        results.push((isa, got));
    }
    // Every ISA against the scalar kernel: both are within the bound of the reference.
    let (_, scalar) = &results[0];
    for (isa, got) in &results[1..] {
        for (at, (&x, &s)) in got.iter().zip(scalar).enumerate() {
            let err = (x as f64 - s as f64).abs();
            assert!(
                err <= 2.0 * exp.bound(at),
                "{isa} vs scalar, {case:?}: C({}, {}) = {x} vs {s}",
                at / n.max(1),
                at % n.max(1)
            );
        }
    }
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn every_isa_matches_f64_reference(case in case()) {
        run_case(&case);
    }
}

// ---------------------------------------------------------------------------------------------
// Exact results on small integers, across every edge and block boundary.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct IntCase {
    m: usize,
    k: usize,
    n: usize,
    la: Layout,
    lb: Layout,
    lc: Layout,
    alpha: i64,
    beta: i64,
    seed: u64,
}

/// Integer operands in -3..=3 (C in -4..=4, or NaN when beta is 0) and integer alpha, beta:
/// every partial sum is an integer far below 2^24, so the f32 result must be exact whatever the
/// order of summation.
fn check_exact(isa: Isa, par: Parallelism, case: IntCase) {
    let IntCase { m, k, n, .. } = case;
    let mut rng = Rng(case.seed);
    let a = Strided::new(m, k, case.la, A_GUARD, |_, _| rng.int(3));
    let b = Strided::new(k, n, case.lb, B_GUARD, |_, _| rng.int(3));
    let c0 = Strided::new(m, n, case.lc, C_GUARD, |_, _| {
        if case.beta == 0 { f32::NAN } else { rng.int(4) }
    });
    let a_rows: Vec<Vec<i64>> = (0..m)
        .map(|i| (0..k).map(|p| a.get(i, p) as i64).collect())
        .collect();
    let b_cols: Vec<Vec<i64>> = (0..n)
        .map(|j| (0..k).map(|p| b.get(p, j) as i64).collect())
        .collect();
    let mut c = c0.clone();
    let ctx = (isa, par, case);
    product(
        multiplier(isa, par),
        Entry::Run,
        case.alpha as f32,
        &a,
        &b,
        case.beta as f32,
        &mut c,
        &ctx,
    );
    for (i, a_row) in a_rows.iter().enumerate() {
        for (j, b_col) in b_cols.iter().enumerate() {
            let dot: i64 = a_row.iter().zip(b_col).map(|(x, y)| x * y).sum();
            let old = if case.beta == 0 {
                0
            } else {
                c0.get(i, j) as i64
            };
            let want = case.alpha * dot + case.beta * old;
            assert!(want.abs() < 1 << 24);
            let got = c.get(i, j);
            assert!(
                got == want as f32,
                "{ctx:?}: C({i}, {j}) = {got}, exact answer {want}"
            );
        }
    }
}

const ALPHAS: [i64; 3] = [1, -2, 3];
const BETAS: [i64; 4] = [0, 1, -1, 2];

fn int_case(m: usize, k: usize, n: usize, variant: usize) -> IntCase {
    IntCase {
        m,
        k,
        n,
        la: LAYOUTS[variant % LAYOUTS.len()],
        lb: LAYOUTS[(variant / 2 + 3) % LAYOUTS.len()],
        lc: LAYOUTS[(variant / 3 + 5) % LAYOUTS.len()],
        alpha: ALPHAS[variant % ALPHAS.len()],
        beta: BETAS[variant % BETAS.len()],
        seed: (m * 1_000_003 + k * 1009 + n) as u64 ^ variant as u64,
    }
}

#[test]
fn exact_every_tile_edge() {
    // m, n in 1..=40 cover every remainder of MR (4, 6, 8, 14) and NR (4, 12, 16, 32), full and
    // partial tiles, and (for n > 2 NR) the packed-A path.
    for isa in isas() {
        let mut variant = 0;
        for m in 1..=40 {
            for n in 1..=40 {
                let k = 1 + (m * 7 + n * 3) % 6;
                check_exact(isa, Parallelism::Sequential, int_case(m, k, n, variant));
                variant += 1;
            }
        }
    }
}

#[test]
fn exact_packed_column_major_b() {
    // Column-major B (row stride 1) is packed through 8 x 8 register transposes where the
    // vocabulary has them, element by element for the remainder: cover every remainder of 8
    // in both k and n, with positive and negative column strides.
    let lbs = [
        Layout::COL,
        Layout::COL.pad(3).rev(false, true),
        Layout::ROW.t(),
    ];
    for isa in isas() {
        let mut variant = 0;
        for n in 1..=40 {
            for (i, &k) in [7, 8, 9, 15, 16, 17, 31, 33].iter().enumerate() {
                let case = IntCase {
                    lb: lbs[(n + i) % lbs.len()],
                    ..int_case(if n % 2 == 0 { 5 } else { 17 }, k, n, variant)
                };
                check_exact(isa, Parallelism::Sequential, case);
                variant += 1;
            }
        }
    }
}

#[test]
fn exact_k_crosses_kc() {
    let ks = [191, 192, 193, 255, 256, 257, 383, 384, 385, 513];
    let mns = [(1, 1), (7, 17), (15, 33), (15, 65)];
    for isa in isas() {
        let mut variant = 0;
        for &k in &ks {
            for &(m, n) in &mns {
                check_exact(isa, Parallelism::Sequential, int_case(m, k, n, variant));
                variant += 1;
            }
        }
    }
}

#[test]
fn exact_m_crosses_mc() {
    // MC is 128 (scalar, NEON), 144 (AVX2), 336 (AVX-512); n = 70 > 2 NR for every kernel so A
    // is packed block by block.
    let ms = [127, 128, 129, 143, 144, 145, 289, 335, 336, 337];
    for isa in isas() {
        for (variant, &m) in ms.iter().enumerate() {
            check_exact(isa, Parallelism::Sequential, int_case(m, 3, 70, variant));
        }
        // Both blockings at once, with beta applied on the first k block only.
        let case = IntCase {
            beta: -1,
            ..int_case(145, 257, 70, 1)
        };
        check_exact(isa, Parallelism::Sequential, case);
    }
}

#[test]
fn exact_n_crosses_nc() {
    // NC is 2048 (2040 for NEON). Row-major B with k * n small is read in place; column-major
    // B, or k * n > 64 Ki, is packed.
    for isa in isas() {
        for (variant, &n) in [2039, 2040, 2041, 2047, 2048, 2049, 4097]
            .iter()
            .enumerate()
        {
            for lb in [Layout::ROW, Layout::COL.pad(1)] {
                let case = IntCase {
                    lb,
                    ..int_case(3, 3, n, variant)
                };
                check_exact(isa, Parallelism::Sequential, case);
            }
        }
        let case = IntCase {
            la: Layout::ROW,
            lb: Layout::ROW,
            lc: Layout::COL.pad(1),
            ..int_case(15, 33, 2049, 1)
        };
        check_exact(isa, Parallelism::Sequential, case);
        let case = IntCase {
            la: Layout::COL,
            lb: Layout::ROW.pad(3).rev(true, true),
            lc: Layout::ROW.rev(false, true),
            ..int_case(7, 40, 4100, 2)
        };
        check_exact(isa, Parallelism::Rayon, case);
    }
}

// ---------------------------------------------------------------------------------------------
// BLAS semantics: beta = 0, alpha = 0, k = 0, empty products, NaN propagation.
// ---------------------------------------------------------------------------------------------

const SEMANTIC_SHAPES: [(usize, usize, usize); 7] = [
    (1, 1, 1),
    (5, 7, 3),
    (6, 16, 16),
    (7, 17, 33),
    (15, 300, 70),
    (20, 3, 9),
    (33, 260, 5),
];

#[test]
fn beta_zero_overwrites_nan_and_inf_in_c() {
    for isa in isas() {
        for (s, &(m, k, n)) in SEMANTIC_SHAPES.iter().enumerate() {
            for (v, &lc) in LAYOUTS.iter().enumerate() {
                for alpha in [1.0, -2.5, 0.0] {
                    let mut rng = Rng((s * 100 + v) as u64);
                    let a = Strided::new(m, k, LAYOUTS[(s + v) % 9], A_GUARD, |_, _| rng.uniform());
                    let b = Strided::new(k, n, LAYOUTS[(s + 2 * v) % 9], B_GUARD, |_, _| {
                        rng.uniform()
                    });
                    let c0 = Strided::new(m, n, lc, C_GUARD, |i, j| match (i + j) % 3 {
                        0 => f32::NAN,
                        1 => f32::INFINITY,
                        _ => f32::NEG_INFINITY,
                    });
                    let exp = reference(alpha, &a, &b, 0.0, &c0);
                    let mut c = c0.clone();
                    let ctx = (isa, m, k, n, lc, alpha, "beta = 0");
                    let entry = if v.is_multiple_of(2) {
                        Entry::Run
                    } else {
                        Entry::RunRaw
                    };
                    product(
                        multiplier(isa, Parallelism::Rayon),
                        entry,
                        alpha,
                        &a,
                        &b,
                        0.0,
                        &mut c,
                        &ctx,
                    );
                    check_close(&c.values(), &exp, n, &ctx);
                    if alpha == 0.0 {
                        assert!(c.values().iter().all(|&x| x == 0.0), "{ctx:?}");
                    }
                }
            }
        }
    }
}

/// With alpha == 0 or k == 0, C must become exactly `beta * C` (one f32 multiply; zero when
/// beta is zero even if C held NaN), without reading A or B (which hold NaN here).
fn check_scaled_only(isa: Isa, m: usize, k: usize, n: usize, alpha: f32, beta: f32, v: usize) {
    let a = Strided::new(m, k, LAYOUTS[v % 9], A_GUARD, |_, _| f32::NAN);
    let b = Strided::new(k, n, LAYOUTS[(v + 4) % 9], B_GUARD, |_, _| f32::NAN);
    let mut rng = Rng(v as u64);
    let c0 = Strided::new(m, n, LAYOUTS[(v + 7) % 9], C_GUARD, |_, _| {
        if beta == 0.0 { f32::NAN } else { rng.uniform() }
    });
    let mut c = c0.clone();
    let ctx = (isa, m, k, n, alpha, beta);
    let entry = if v.is_multiple_of(2) {
        Entry::Run
    } else {
        Entry::RunRaw
    };
    product(
        multiplier(isa, Parallelism::Rayon),
        entry,
        alpha,
        &a,
        &b,
        beta,
        &mut c,
        &ctx,
    );
    for (at, (&got, &old)) in c.values().iter().zip(&c0.values()).enumerate() {
        let want = if beta == 0.0 { 0.0 } else { beta * old };
        assert!(
            got.to_bits() == want.to_bits(),
            "{ctx:?}: element {at} is {got}, want beta * {old} = {want}"
        );
    }
}

#[test]
fn alpha_zero_scales_c_without_reading_a_or_b() {
    for isa in isas() {
        for (v, &(m, k, n)) in SEMANTIC_SHAPES.iter().enumerate() {
            for beta in [0.0, 1.0, -1.0, 0.5, 2.5, 0.3] {
                check_scaled_only(isa, m, k, n, 0.0, beta, v);
            }
        }
        // Large enough for the rayon split.
        check_scaled_only(isa, 200, 60, 200, 0.0, 0.5, 3);
    }
}

#[test]
fn k_zero_scales_c() {
    for isa in isas() {
        for (v, &(m, n)) in [(1, 1), (3, 5), (6, 16), (17, 33), (40, 7)]
            .iter()
            .enumerate()
        {
            for alpha in [1.0, -2.5] {
                for beta in [0.0, 1.0, -1.0, 0.5, 2.5] {
                    check_scaled_only(isa, m, 0, n, alpha, beta, v);
                }
            }
        }
    }
}

#[test]
fn empty_views_are_valid() {
    // A view with no elements cannot alias, whatever its strides: the dense constructors give
    // an empty dimension's partner a zero stride.
    let mut empty: Vec<f32> = Vec::new();
    for (rows, cols) in [(0, 0), (0, 5), (4, 0)] {
        assert!(MatRef::from_row_major(&empty, rows, cols).is_ok());
        assert!(MatRef::from_col_major(&empty, rows, cols).is_ok());
        let r = MatMut::from_row_major(&mut empty, rows, cols);
        assert!(r.is_ok(), "row-major {rows}x{cols}: {r:?}");
        let r = MatMut::from_col_major(&mut empty, rows, cols);
        assert!(r.is_ok(), "col-major {rows}x{cols}: {r:?}");
        let mut m = Matrix::zeros(rows, cols);
        let a = Matrix::zeros(rows, 3);
        let b = Matrix::zeros(3, cols);
        for isa in isas() {
            multiplier(isa, Parallelism::Rayon)
                .run(1.0, a.view(), b.view(), 0.0, m.view_mut())
                .unwrap();
        }
    }
}

#[test]
fn empty_c_is_untouched() {
    for isa in isas() {
        for (v, &(m, k, n)) in [(0, 5, 7), (5, 7, 0), (0, 0, 0), (0, 3, 0), (4, 0, 0)]
            .iter()
            .enumerate()
        {
            let a = Strided::new(m, k, LAYOUTS[v], A_GUARD, |_, _| 1.0);
            let b = Strided::new(k, n, LAYOUTS[v + 1], B_GUARD, |_, _| 1.0);
            let mut c = Strided::new(m, n, LAYOUTS[v + 2], C_GUARD, |_, _| 1.0);
            for entry in [Entry::Run, Entry::RunRaw] {
                let g = multiplier(isa, Parallelism::Rayon);
                product(g, entry, 1.0, &a, &b, 1.0, &mut c, &(isa, m, k, n));
            }
            assert!(c.buf.iter().all(|x| x.to_bits() == C_GUARD));
        }
    }
}

#[test]
fn nan_in_one_element_poisons_only_its_row_or_column() {
    let (m, k, n) = (20, 300, 50);
    for isa in isas() {
        for (v, (bad_a, bad_b)) in [(true, false), (false, true)].into_iter().enumerate() {
            let (i0, p0, j0) = (13, 271, 37);
            let mut rng = Rng(99);
            let a = Strided::new(m, k, LAYOUTS[v + 1], A_GUARD, |i, p| {
                if bad_a && (i, p) == (i0, p0) {
                    f32::NAN
                } else {
                    rng.uniform()
                }
            });
            let b = Strided::new(k, n, LAYOUTS[v + 4], B_GUARD, |p, j| {
                if bad_b && (p, j) == (p0, j0) {
                    f32::NAN
                } else {
                    rng.uniform()
                }
            });
            let mut c = Strided::new(m, n, LAYOUTS[v + 6], C_GUARD, |_, _| 0.25);
            let ctx = (isa, bad_a, bad_b);
            product(
                multiplier(isa, Parallelism::Sequential),
                Entry::Run,
                1.5,
                &a,
                &b,
                0.5,
                &mut c,
                &ctx,
            );
            for i in 0..m {
                for j in 0..n {
                    let poisoned = (bad_a && i == i0) || (bad_b && j == j0);
                    assert_eq!(
                        c.get(i, j).is_nan(),
                        poisoned,
                        "{ctx:?}: C({i}, {j}) = {}",
                        c.get(i, j)
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Threads.
// ---------------------------------------------------------------------------------------------

fn check_thread_invariance(m: usize, k: usize, n: usize, variant: usize) {
    assert!(
        2 * m * n * k >= PARALLEL_MIN_FLOPS,
        "{m}x{k}x{n} is too small to be split over threads"
    );
    let mut rng = Rng(variant as u64 + 7);
    let a = Strided::new(m, k, LAYOUTS[variant % 9], A_GUARD, |_, _| rng.uniform());
    let b = Strided::new(k, n, LAYOUTS[(variant + 5) % 9], B_GUARD, |_, _| {
        rng.uniform()
    });
    let c0 = Strided::new(m, n, LAYOUTS[(variant + 2) % 9], C_GUARD, |_, _| {
        rng.uniform()
    });
    let (alpha, beta) = (0.7, -1.3);
    // The reference at a sample of elements, so that all runs are also right, not just equal.
    let sample: Vec<(usize, usize)> = (0..61).map(|s| (s * 37 % m, s * 53 % n)).collect();
    for isa in isas() {
        let mut seq = c0.clone();
        let ctx = (isa, m, k, n, "sequential");
        let g = multiplier(isa, Parallelism::Sequential);
        product(g, Entry::Run, alpha, &a, &b, beta, &mut seq, &ctx);
        for &(i, j) in &sample {
            let (mut dot, mut mag) = (0.0f64, 0.0f64);
            for p in 0..k {
                let t = a.get(i, p) as f64 * b.get(p, j) as f64;
                dot += t;
                mag += t.abs();
            }
            let old = beta as f64 * c0.get(i, j) as f64;
            let want = alpha as f64 * dot + old;
            let bound = 2.0 * (k + 2) as f64 * EPS * (alpha.abs() as f64 * mag + old.abs());
            let got = seq.get(i, j) as f64;
            assert!(
                (got - want).abs() <= bound,
                "{ctx:?}: C({i}, {j}) = {got}, reference {want}"
            );
        }
        let seq_bits = seq.bits();
        for threads in 1..=4 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut par = c0.clone();
            let ctx = (isa, m, k, n, threads);
            pool.install(|| {
                assert_eq!(rayon::current_num_threads(), threads);
                let g = multiplier(isa, Parallelism::Rayon);
                product(g, Entry::Run, alpha, &a, &b, beta, &mut par, &ctx);
            });
            let differing = par
                .bits()
                .iter()
                .zip(&seq_bits)
                .filter(|(x, y)| x != y)
                .count();
            assert!(
                differing == 0,
                "{ctx:?}: {differing} elements differ from the sequential run"
            );
        }
    }
}

#[test]
fn thread_count_does_not_change_results_square() {
    if FULL_SIZE {
        check_thread_invariance(300, 400, 500, 0);
    } else {
        check_thread_invariance(200, 200, 400, 0);
    }
}

#[test]
fn thread_count_does_not_change_results_tall_skinny() {
    if FULL_SIZE {
        check_thread_invariance(8000, 64, 32, 1);
    } else {
        check_thread_invariance(4000, 64, 64, 1);
    }
}

#[test]
fn thread_count_does_not_change_results_short_wide() {
    if FULL_SIZE {
        check_thread_invariance(32, 64, 8000, 2);
    } else {
        check_thread_invariance(64, 64, 4000, 2);
    }
}

// ---------------------------------------------------------------------------------------------
// The trainer's shapes.
// ---------------------------------------------------------------------------------------------

#[test]
fn trainer_shapes_all_layouts_every_isa() {
    let shapes = [
        (10, 784, 30),
        (10, 30, 10),
        (30, 10, 784),
        (784, 10, 30),
        (10, 784, 100),
        (100, 784, 100),
        (100, 784, 30),
    ];
    for (s, &(m, k, n)) in shapes.iter().enumerate() {
        let mut rng = Rng(s as u64);
        let a = Matrix::from_fn(m, k, |_, _| rng.uniform());
        let b = Matrix::from_fn(k, n, |_, _| rng.uniform());
        let a_t = a.view().t().to_matrix();
        let b_t = b.view().t().to_matrix();
        let a_rows: Vec<Vec<f64>> = (0..m)
            .map(|i| a.row(i).iter().map(|&x| x as f64).collect())
            .collect();
        let b_cols: Vec<Vec<f64>> = (0..n)
            .map(|j| b_t.row(j).iter().map(|&x| x as f64).collect())
            .collect();
        // (reference, bound) per element, row-major.
        let expected: Vec<(f64, f64)> = a_rows
            .iter()
            .flat_map(|a_row| {
                b_cols.iter().map(move |b_col| {
                    let (dot, mag) = a_row
                        .iter()
                        .zip(b_col)
                        .fold((0.0, 0.0), |(d, g), (x, y)| (d + x * y, g + (x * y).abs()));
                    (dot, 2.0 * (k + 2) as f64 * EPS * mag)
                })
            })
            .collect();
        for isa in isas() {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let av = if ta { a_t.view().t() } else { a.view() };
                let bv = if tb { b_t.view().t() } else { b.view() };
                let mut c = Matrix::from_fn(m, n, |_, _| f32::NAN);
                multiplier(isa, Parallelism::Rayon)
                    .run(1.0, av, bv, 0.0, c.view_mut())
                    .unwrap();
                for (at, (&got, &(want, bound))) in c.as_slice().iter().zip(&expected).enumerate() {
                    assert!(
                        (got as f64 - want).abs() <= bound,
                        "{isa} {m}x{k}x{n} A^T {ta} B^T {tb}: C({}, {}) = {got}, reference {want}",
                        at / n,
                        at % n
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points, errors and ISA selection.
// ---------------------------------------------------------------------------------------------

#[test]
fn raw_sgemm_agrees_with_safe_api() {
    let shapes = [
        (1, 1, 1),
        (7, 5, 3),
        (13, 40, 35),
        (64, 300, 100),
        (3, 2, 2049),
    ];
    for (s, &(m, k, n)) in shapes.iter().enumerate() {
        for (v, (alpha, beta)) in [(1.0, 0.0), (-0.5, 1.5), (2.5, -1.0)]
            .into_iter()
            .enumerate()
        {
            let variant = s * 3 + v;
            let mut rng = Rng(variant as u64 + 1000);
            let a = Strided::new(m, k, LAYOUTS[variant % 9], A_GUARD, |_, _| rng.uniform());
            let b = Strided::new(k, n, LAYOUTS[(variant + 3) % 9], B_GUARD, |_, _| {
                rng.uniform()
            });
            let c0 = Strided::new(m, n, LAYOUTS[(variant + 6) % 9], C_GUARD, |_, _| {
                rng.uniform()
            });
            let ctx = (m, k, n, alpha, beta);

            let mut c_raw = c0.clone();
            let (rsc, csc) = (c_raw.rs, c_raw.cs);
            // SAFETY: as in `product`: each operand is in bounds of its own buffer and C's
            // elements are distinct.
            unsafe {
                sgemm(
                    m,
                    k,
                    n,
                    alpha,
                    a.ptr(),
                    a.rs,
                    a.cs,
                    b.ptr(),
                    b.rs,
                    b.cs,
                    beta,
                    c_raw.ptr_mut(),
                    rsc,
                    csc,
                )
            };
            c_raw.check_guards(&ctx);

            let mut c_fn = c0.clone();
            gemm(alpha, a.view(), b.view(), beta, c_fn.view_mut()).unwrap();
            let mut c_run = c0.clone();
            Gemm::new()
                .run(alpha, a.view(), b.view(), beta, c_run.view_mut())
                .unwrap();
            let mut c_sel = c0.clone();
            multiplier(selected_isa(), Parallelism::Sequential)
                .run(alpha, a.view(), b.view(), beta, c_sel.view_mut())
                .unwrap();
            assert!(c_raw.bits() == c_fn.bits(), "{ctx:?}: sgemm vs gemm()");
            assert!(c_raw.bits() == c_run.bits(), "{ctx:?}: sgemm vs Gemm::run");
            assert!(
                c_raw.bits() == c_sel.bits(),
                "{ctx:?}: sgemm vs Gemm::with_isa(selected_isa())"
            );

            // And it is a drop-in for matrixmultiply::sgemm.
            let mut c_mm = c0.clone();
            let (rsc, csc) = (c_mm.rs, c_mm.cs);
            // SAFETY: as above.
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    alpha,
                    a.ptr(),
                    a.rs,
                    a.cs,
                    b.ptr(),
                    b.rs,
                    b.cs,
                    beta,
                    c_mm.ptr_mut(),
                    rsc,
                    csc,
                )
            };
            let exp = reference(alpha, &a, &b, beta, &c0);
            check_close(&c_raw.values(), &exp, n, &ctx);
            check_close(&c_mm.values(), &exp, n, &(ctx, "matrixmultiply"));
        }
    }
}

#[test]
fn shape_mismatch_is_an_error_and_leaves_c_alone() {
    // (A rows, A cols, B rows, B cols, C rows, C cols)
    let bad = [
        (2, 3, 4, 5, 2, 5),
        (2, 3, 3, 5, 3, 5),
        (2, 3, 3, 5, 2, 4),
        (2, 0, 1, 5, 2, 5),
        (0, 3, 3, 5, 1, 5),
        (2, 3, 3, 0, 2, 1),
    ];
    for isa in isas() {
        for (v, &(ar, ac, br, bc, cr, cc)) in bad.iter().enumerate() {
            let a = Strided::new(ar, ac, LAYOUTS[v], A_GUARD, |_, _| 1.0);
            let b = Strided::new(br, bc, LAYOUTS[v + 1], B_GUARD, |_, _| 1.0);
            let mut c = Strided::new(cr, cc, LAYOUTS[v + 2], C_GUARD, |_, _| 3.0);
            let before = c.bits();
            let err = multiplier(isa, Parallelism::Rayon)
                .run(1.0, a.view(), b.view(), 0.0, c.view_mut())
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::ShapeMismatch { a_rows, a_cols, b_rows, b_cols, c_rows, c_cols, .. }
                        if (a_rows, a_cols, b_rows, b_cols, c_rows, c_cols)
                            == (ar, ac, br, bc, cr, cc)
                ),
                "{isa}: {err:?}"
            );
            assert!(c.bits() == before, "{isa}: C changed on a shape error");
            let err = gemm(1.0, a.view(), b.view(), 0.0, c.view_mut()).unwrap_err();
            assert!(matches!(err, Error::ShapeMismatch { .. }), "{err:?}");
            assert!(c.bits() == before);
        }
    }
}

#[test]
fn unavailable_isas_are_refused() {
    for isa in Isa::ALL {
        let result = Gemm::new().with_isa(isa);
        if isas().contains(&isa) {
            assert_eq!(result.unwrap().isa(), isa);
        } else {
            assert!(
                matches!(result, Err(Error::IsaUnavailable { isa: i, .. }) if i == isa),
                "{isa}: {result:?}"
            );
        }
    }
    #[cfg(target_arch = "x86_64")]
    assert!(!isas().contains(&Isa::Neon));
    #[cfg(target_arch = "aarch64")]
    assert!(!isas().contains(&Isa::Avx2) && isas().contains(&Isa::Neon));
}

/// CI sets `SIMDNET_EXPECT_ISAS=scalar,avx2,...`: each must be available here, hence run by
/// every test above (they all iterate over `isas()`), and must compute a product correctly.
#[test]
fn expected_isas_are_exercised() {
    let expected = common::expected_isas();
    let tested = isas();
    for isa in &expected {
        assert!(
            tested.contains(isa),
            "SIMDNET_EXPECT_ISAS lists {isa}, but this CPU only has {tested:?}, so it is not tested"
        );
    }
    // Each tested ISA, run for real on a product with partial tiles on both edges.
    for (v, isa) in tested.into_iter().enumerate() {
        check_exact(isa, Parallelism::Sequential, int_case(37, 29, 71, v));
        run_case(&Case {
            m: 37,
            k: 29,
            n: 71,
            la: LAYOUTS[v % 9],
            lb: LAYOUTS[(v + 1) % 9],
            lc: LAYOUTS[(v + 2) % 9],
            alpha: 0.5,
            beta: 2.5,
            nan_c: false,
            seed: v as u64,
            entry: Entry::Run,
            par: Parallelism::Rayon,
        });
    }
}

#[test]
fn selected_isa_honours_simdnet_isa() {
    let selected = selected_isa();
    match std::env::var("SIMDNET_ISA") {
        Ok(name) if !name.trim().is_empty() => assert_eq!(
            selected.name(),
            name.trim().to_ascii_lowercase(),
            "SIMDNET_ISA={name} but selected_isa() is {selected}"
        ),
        _ => assert_eq!(selected, Isa::best_available()),
    }
    assert!(isas().contains(&selected));
    assert_eq!(Gemm::new().isa(), selected);
    assert_eq!(Gemm::try_new().unwrap().isa(), selected);

    // The default entry points really run that ISA: on random data the kernels round
    // differently (FMA or not, KC), so compare bit for bit with an explicit multiplier.
    let (m, k, n) = (23, 300, 41);
    let mut rng = Rng(5);
    let a = Strided::new(m, k, Layout::ROW, A_GUARD, |_, _| rng.uniform());
    let b = Strided::new(k, n, Layout::COL, B_GUARD, |_, _| rng.uniform());
    let c0 = Strided::new(m, n, Layout::ROW, C_GUARD, |_, _| rng.uniform());
    let mut c_default = c0.clone();
    let (rsc, csc) = (c_default.rs, c_default.cs);
    // SAFETY: as in `product`.
    unsafe {
        sgemm(
            m,
            k,
            n,
            1.0,
            a.ptr(),
            a.rs,
            a.cs,
            b.ptr(),
            b.rs,
            b.cs,
            0.5,
            c_default.ptr_mut(),
            rsc,
            csc,
        )
    };
    let mut c_explicit = c0.clone();
    multiplier(selected, Parallelism::Sequential)
        .run(1.0, a.view(), b.view(), 0.5, c_explicit.view_mut())
        .unwrap();
    assert!(c_default.bits() == c_explicit.bits());
}
