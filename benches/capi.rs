//! The C ABI's cost, measured against the Rust calls in the same run (feature `capi`):
//!
//! * `cblas_sgemm` (called through a function pointer the optimizer cannot see through, so the
//!   exported `extern "C"` function really runs, argument checks, panic guard and all) against
//!   `simdnet::sgemm` on the same operands, at (100,784,100) and 1024^3, in interleaved rounds;
//!   medians of GFLOP/s and of the per-round ratio C ABI / Rust;
//! * MNIST inference: the 10,000 test images (from `MNIST_DIR`) classified by
//!   `simdnet_network_predict`, against `Network::predict_batch`, with a [784,100,10] network
//!   from `SIMDNET_BENCH_MODEL` (a network2 JSON file, e.g. one trained by
//!   `cargo run --release --bin train -- --sizes 784,100,10 --epochs 1 --eta 0.1 --save
//!   /tmp/net100.json`), or a freshly initialized one if that is unset.
//!
//! `cargo bench --features capi --bench capi`. Arguments `m,k,n` replace the GEMM shapes.

use std::ffi::{CString, c_int};
use std::hint::black_box;
use std::time::Instant;

use simdnet::Matrix;
use simdnet::capi::{self, CBLAS_NO_TRANS, CBLAS_ROW_MAJOR};
use simdnet::data::{Mnist, MnistOptions};
use simdnet::network::{Cost, Init, Network};

const ROUNDS: usize = 31;
const MIN_SECONDS: f64 = 0.01;

type CblasSgemm = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    f32,
    *const f32,
    c_int,
    *const f32,
    c_int,
    f32,
    *mut f32,
    c_int,
);

/// Seconds per call of `f`, repeating it for at least MIN_SECONDS.
fn time(f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0u32;
    while calls == 0 || start.elapsed().as_secs_f64() < MIN_SECONDS {
        f();
        calls += 1;
    }
    start.elapsed().as_secs_f64() / f64::from(calls)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Interleaved rounds of every contender; per contender the median seconds per call and the
/// median per-round ratio of contender 0's time to its own (above 1: faster than contender 0).
fn race(contenders: &mut [Box<dyn FnMut() + '_>]) -> Vec<(f64, f64)> {
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
            let ratio = median(
                seconds[0]
                    .iter()
                    .zip(&seconds[i])
                    .map(|(base, s)| base / s)
                    .collect(),
            );
            (median(seconds[i].clone()), ratio)
        })
        .collect()
}

fn gemm_shape(m: usize, k: usize, n: usize) {
    let a = Matrix::from_fn(m, k, |i, j| ((i * 7 + j * 3) % 17) as f32 / 17.0 - 0.5);
    let b = Matrix::from_fn(k, n, |i, j| ((i * 5 + j * 11) % 13) as f32 / 13.0 - 0.5);
    let c = std::cell::RefCell::new(Matrix::zeros(m, n));
    let cblas: CblasSgemm = black_box(capi::cblas_sgemm);
    let (mi, ki, ni) = (m as c_int, k as c_int, n as c_int);
    let mut contenders: Vec<Box<dyn FnMut() + '_>> = vec![
        Box::new(|| {
            let mut c = c.borrow_mut();
            // SAFETY: A is m x k, B k x n, C m x n, all dense row-major and distinct.
            unsafe {
                simdnet::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_slice().as_ptr(),
                    k as isize,
                    1,
                    b.as_slice().as_ptr(),
                    n as isize,
                    1,
                    0.0,
                    c.as_mut_slice().as_mut_ptr(),
                    n as isize,
                    1,
                )
            }
        }),
        Box::new(|| {
            let mut c = c.borrow_mut();
            // SAFETY: as above, described to CBLAS as row-major with tight leading dimensions.
            unsafe {
                cblas(
                    CBLAS_ROW_MAJOR,
                    CBLAS_NO_TRANS,
                    CBLAS_NO_TRANS,
                    mi,
                    ni,
                    ki,
                    1.0,
                    a.as_slice().as_ptr(),
                    ki,
                    b.as_slice().as_ptr(),
                    ni,
                    0.0,
                    c.as_mut_slice().as_mut_ptr(),
                    ni,
                )
            }
        }),
    ];
    let results = race(&mut contenders);
    let flops = 2.0 * (m * k * n) as f64;
    let gf = |s: f64| flops / s / 1e9;
    println!(
        "| ({m},{k},{n}) | {:.1} | {:.1} | {:.3}x |",
        gf(results[0].0),
        gf(results[1].0),
        results[1].1
    );
}

fn mnist_inference() {
    let Some(dir) = std::env::var_os("MNIST_DIR").filter(|d| !d.is_empty()) else {
        println!("\nMNIST inference: skipped (MNIST_DIR is not set)");
        return;
    };
    let mnist = Mnist::open(&dir, &MnistOptions::default()).expect("MNIST_DIR");
    let test = mnist.test();
    let rows = test.len();
    let inputs: Vec<f32> = test
        .pixels()
        .iter()
        .map(|&p| f32::from(p) / 255.0)
        .collect();
    let tmp = tempfile::tempdir().expect("temporary directory");
    let path = match std::env::var_os("SIMDNET_BENCH_MODEL").filter(|p| !p.is_empty()) {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let p = tmp.path().join("net.json");
            Network::new(&[784, 100, 10], Cost::CrossEntropy, Init::Default, 0)
                .and_then(|n| n.save(&p))
                .expect("saving a fresh network");
            println!("\n(SIMDNET_BENCH_MODEL unset: an untrained [784,100,10] network)");
            p
        }
    };
    let net = Network::load(&path).expect("model");
    let cpath = CString::new(path.to_str().expect("UTF-8 path")).expect("path");
    // SAFETY: a NUL-terminated path.
    let handle = unsafe { capi::simdnet_network_load(cpath.as_ptr()) };
    assert!(!handle.is_null(), "simdnet_network_load failed");
    let mut classes_c = vec![0u32; rows];
    let mut classes_rust = vec![0u32; rows];
    let mut contenders: Vec<Box<dyn FnMut() + '_>> = vec![
        Box::new(|| {
            net.predict_batch(&inputs, rows, &mut classes_rust)
                .expect("predict_batch")
        }),
        Box::new(|| {
            // SAFETY: a live handle; `rows` rows of 784 floats in, `rows` classes out.
            let rc = unsafe {
                capi::simdnet_network_predict(handle, inputs.as_ptr(), rows, classes_c.as_mut_ptr())
            };
            assert_eq!(rc, capi::SIMDNET_OK);
        }),
    ];
    let results = race(&mut contenders);
    drop(contenders);
    // SAFETY: the handle is live and no longer used.
    unsafe { capi::simdnet_network_free(handle) };
    assert_eq!(classes_c, classes_rust);
    let correct = classes_c
        .iter()
        .zip(test.labels())
        .filter(|&(&c, &l)| c == u32::from(l))
        .count();
    println!(
        "\nMNIST inference, {rows} test images, {:?} network from {}:",
        net.sizes(),
        path.display()
    );
    println!("| path | median ms per {rows} images | ratio |\n|---|---|---|");
    println!("| Network::predict_batch | {:.2} | 1 |", results[0].0 * 1e3);
    println!(
        "| simdnet_network_predict (C ABI) | {:.2} | {:.3}x |",
        results[1].0 * 1e3,
        results[1].1
    );
    println!("accuracy: {correct}/{rows}");
}

fn main() {
    let shapes: Vec<(usize, usize, usize)> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| {
            let d: Vec<usize> = a
                .split(',')
                .map(|x| x.parse().expect("shape m,k,n"))
                .collect();
            (d[0], d[1], d[2])
        })
        .collect();
    let shapes = if shapes.is_empty() {
        vec![(100, 784, 100), (1024, 1024, 1024)]
    } else {
        shapes
    };
    println!(
        "ISA {}, {} threads; medians of {ROUNDS} interleaved rounds",
        simdnet::selected_isa(),
        rayon::current_num_threads()
    );
    println!(
        "| shape (m,k,n) | simdnet::sgemm GFLOP/s | cblas_sgemm (C ABI) GFLOP/s | ratio C/Rust |"
    );
    println!("|---|---|---|---|");
    for (m, k, n) in shapes {
        gemm_shape(m, k, n);
    }
    mnist_inference();
}
