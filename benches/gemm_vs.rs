//! Side-by-side GEMM throughput, robust to a noisy machine: every measurement round times
//! matrixmultiply and each simdnet instruction set back to back on the same operands, and the
//! table reports medians over rounds of GFLOP/s and of the per-round ratio to matrixmultiply.
//! Load that comes and goes slows both sides of a round alike, so the ratios stay meaningful
//! where separate criterion runs drift.
//!
//! `cargo bench --bench gemm_vs` prints the README's table; arguments `m,k,n` (append `,t` for
//! a column-major B, as the trainer's `W^T`) replace the default shapes, and `--threads`
//! compares 2 threads with 1.

use std::time::Instant;

use simdnet::{Gemm, Isa, MatRef, Matrix, Parallelism};

/// Rounds per shape; each round times every contender once (after one warm-up call each).
const ROUNDS: usize = 31;
/// Each timing repeats the product until this many seconds have passed.
const MIN_SECONDS: f64 = 0.004;

struct Shape {
    m: usize,
    k: usize,
    n: usize,
    b_col_major: bool,
}

fn parse(arg: &str) -> Shape {
    let parts: Vec<&str> = arg.split(',').collect();
    let dim = |i: usize| -> usize {
        parts
            .get(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("expected m,k,n[,t], got {arg:?}"))
    };
    Shape {
        m: dim(0),
        k: dim(1),
        n: dim(2),
        b_col_major: parts.get(3) == Some(&"t"),
    }
}

/// Seconds per call of `f`, repeating it for at least MIN_SECONDS.
fn time(f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0u32;
    while calls == 0 || start.elapsed().as_secs_f64() < MIN_SECONDS {
        f();
        calls += 1;
    }
    start.elapsed().as_secs_f64() / calls as f64
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Times each contender in every round; returns per-contender (median GFLOP/s, median ratio
/// to contender 0).
/// One timed product.
type Contender<'a> = Box<dyn FnMut() + 'a>;

fn race(flops: f64, contenders: &mut [Contender<'_>]) -> Vec<(f64, f64)> {
    for f in contenders.iter_mut() {
        f();
    }
    let mut seconds = vec![Vec::with_capacity(ROUNDS); contenders.len()];
    for _ in 0..ROUNDS {
        for (i, f) in contenders.iter_mut().enumerate() {
            seconds[i].push(time(f.as_mut()));
        }
    }
    (0..contenders.len())
        .map(|i| {
            let gflops = median(seconds[i].iter().map(|s| flops / s / 1e9).collect());
            let ratio = median(
                seconds[0]
                    .iter()
                    .zip(&seconds[i])
                    .map(|(base, s)| base / s)
                    .collect(),
            );
            (gflops, ratio)
        })
        .collect()
}

fn operands(s: &Shape) -> (Matrix, Matrix, Matrix) {
    let a = Matrix::from_fn(s.m, s.k, |i, j| ((i * 7 + j * 3) % 17) as f32 / 17.0 - 0.5);
    // Stored transposed when B is to be read column-major.
    let (br, bc) = if s.b_col_major {
        (s.n, s.k)
    } else {
        (s.k, s.n)
    };
    let b = Matrix::from_fn(br, bc, |i, j| ((i * 5 + j * 11) % 13) as f32 / 13.0 - 0.5);
    (a, b, Matrix::zeros(s.m, s.n))
}

fn b_view<'a>(b: &'a Matrix, s: &Shape) -> MatRef<'a> {
    if s.b_col_major {
        b.view().t()
    } else {
        b.view()
    }
}

fn versus_matrixmultiply(shapes: &[Shape]) {
    let isas = Isa::available();
    print!("| shape (m,k,n) | matrixmultiply |");
    for isa in &isas {
        print!(" simdnet {isa} | ratio |");
    }
    println!();
    println!("|---|---|{}", "---|---|".repeat(isas.len()));
    for s in shapes {
        let (a, b, mut c) = operands(s);
        let bv = b_view(&b, s);
        let (rsb, csb) = (bv.row_stride(), bv.col_stride());
        let c_cell = std::cell::RefCell::new(&mut c);
        let mut contenders: Vec<Contender<'_>> = vec![Box::new(|| {
            let mut c = c_cell.borrow_mut();
            // SAFETY: A is m x k row-major, B is k x n with the strides of its view, and
            // C is a distinct m x n row-major matrix.
            unsafe {
                matrixmultiply::sgemm(
                    s.m,
                    s.k,
                    s.n,
                    1.0,
                    a.as_slice().as_ptr(),
                    s.k as isize,
                    1,
                    bv.as_ptr(),
                    rsb,
                    csb,
                    0.0,
                    c.as_mut_slice().as_mut_ptr(),
                    s.n as isize,
                    1,
                )
            }
        })];
        for &isa in &isas {
            let gemm = Gemm::new()
                .with_isa(isa)
                .expect("available")
                .with_parallelism(Parallelism::Sequential);
            let (a, c_cell) = (&a, &c_cell);
            contenders.push(Box::new(move || {
                let mut c = c_cell.borrow_mut();
                gemm.run(1.0, a.view(), bv, 0.0, c.view_mut())
                    .expect("shapes agree")
            }));
        }
        let flops = 2.0 * (s.m * s.k * s.n) as f64;
        let results = race(flops, &mut contenders);
        let t = if s.b_col_major { " B col-major" } else { "" };
        print!("| ({},{},{}){t} | {:.1} |", s.m, s.k, s.n, results[0].0);
        for (gflops, ratio) in &results[1..] {
            print!(" {gflops:.1} | {ratio:.2}x |");
        }
        println!();
    }
}

fn threads(shapes: &[Shape]) {
    let isa = Isa::best_available();
    println!("| shape (m,k,n) | 1 thread GFLOP/s | 2 threads GFLOP/s | speed-up |");
    println!("|---|---|---|---|");
    for s in shapes {
        let (a, b, mut c) = operands(s);
        let bv = b_view(&b, s);
        let c_cell = std::cell::RefCell::new(&mut c);
        let pools: Vec<rayon::ThreadPool> = [1, 2]
            .iter()
            .map(|&n| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .expect("thread pool")
            })
            .collect();
        let gemm = Gemm::new()
            .with_isa(isa)
            .expect("available")
            .with_parallelism(Parallelism::Rayon);
        let mut contenders: Vec<Contender<'_>> = pools
            .iter()
            .map(|pool| {
                let (a, c_cell) = (&a, &c_cell);
                let f: Contender<'_> = Box::new(move || {
                    let mut c = c_cell.borrow_mut();
                    let c_view = c.view_mut();
                    pool.install(move || {
                        gemm.run(1.0, a.view(), bv, 0.0, c_view)
                            .expect("shapes agree")
                    })
                });
                f
            })
            .collect();
        let flops = 2.0 * (s.m * s.k * s.n) as f64;
        let r = race(flops, &mut contenders);
        println!(
            "| ({},{},{}) | {:.1} | {:.1} | {:.2}x |",
            s.m, s.k, s.n, r[0].0, r[1].0, r[1].1
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; ignore flags other than ours.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let thread_mode = args.iter().any(|a| a == "--threads");
    let mut shapes: Vec<Shape> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(|a| parse(a))
        .collect();
    if shapes.is_empty() {
        let defaults: &[&str] = if thread_mode {
            &[
                "100,784,30",
                "100,784,100",
                "256,256,256",
                "1024,1024,1024",
                "2048,2048,2048",
            ]
        } else {
            &[
                "10,784,30",
                "10,784,30,t",
                "10,30,10",
                "30,10,784",
                "784,10,30",
                "10,784,100",
                "100,784,100",
                "100,784,100,t",
                "100,784,30",
                "64,64,64",
                "128,128,128",
                "256,256,256",
                "512,512,512",
                "1024,1024,1024",
                "2048,2048,2048",
            ]
        };
        shapes = defaults.iter().map(|a| parse(a)).collect();
    }
    if thread_mode {
        threads(&shapes);
    } else {
        versus_matrixmultiply(&shapes);
    }
}
