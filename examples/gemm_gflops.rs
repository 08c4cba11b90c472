//! Quick GFLOP/s table: every available ISA and matrixmultiply on the same shapes, measured
//! in one run (median of repeated timings). `cargo run --release --example gemm_gflops`.
//! For publishable figures use `cargo bench --bench gemm`.

use std::time::Instant;

use simdnet::{Gemm, Isa, Matrix, Parallelism};

fn median_seconds(mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut reps = 0;
    while start.elapsed().as_secs_f64() < 0.02 {
        f();
        reps += 1;
    }
    let per_sample = reps.max(1);
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_sample {
                f();
            }
            t.elapsed().as_secs_f64() / per_sample as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let shapes: Vec<(usize, usize, usize)> = std::env::args()
        .skip(1)
        .map(|s| {
            let v: Vec<usize> = s.split(',').map(|x| x.parse().unwrap()).collect();
            (v[0], v[1], v[2])
        })
        .collect();
    let shapes = if shapes.is_empty() {
        vec![
            (10, 784, 30),
            (10, 30, 10),
            (30, 10, 784),
            (784, 10, 30),
            (10, 784, 100),
            (100, 784, 100),
            (100, 784, 30),
            (256, 256, 256),
            (1024, 1024, 1024),
        ]
    } else {
        shapes
    };
    println!("{:>16} {:>10} {:>10} {:>10}", "m,k,n", "isa", "GFLOP/s", "vs mm");
    for (m, k, n) in shapes {
        let a = Matrix::from_fn(m, k, |i, j| ((i + 2 * j) % 7) as f32 * 0.1);
        let b = Matrix::from_fn(k, n, |i, j| ((3 * i + j) % 5) as f32 * 0.1);
        let mut c = Matrix::zeros(m, n);
        let flops = 2.0 * (m * n * k) as f64;
        let mm = median_seconds(|| {
            // SAFETY: dense row-major operands of the stated shapes.
            unsafe {
                matrixmultiply::sgemm(
                    m, k, n, 1.0, a.as_slice().as_ptr(), k as isize, 1,
                    b.as_slice().as_ptr(), n as isize, 1, 0.0,
                    c.as_mut_slice().as_mut_ptr(), n as isize, 1,
                )
            }
        });
        println!("{:>16} {:>10} {:>10.1} {:>10}", format!("{m},{k},{n}"), "mm", flops / mm / 1e9, "1.00");
        for isa in Isa::available() {
            let gemm = Gemm::new().with_isa(isa).unwrap().with_parallelism(Parallelism::Sequential);
            let t = median_seconds(|| {
                gemm.run(1.0, a.view(), b.view(), 0.0, c.view_mut()).unwrap();
            });
            println!("{:>16} {:>10} {:>10.1} {:>10.2}", "", isa.name(), flops / t / 1e9, mm / t);
        }
    }
}
