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
    let shapes: Vec<(usize, usize, usize, bool)> = std::env::args()
        .skip(1)
        .map(|s| {
            let v: Vec<usize> = s.split(',').map(|x| x.parse().unwrap()).collect();
            (v[0], v[1], v[2], v.get(3) == Some(&1))
        })
        .collect();
    let shapes = if shapes.is_empty() {
        [
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
        .map(|(m, k, n)| (m, k, n, false))
        .to_vec()
    } else {
        shapes
    };
    println!(
        "{:>16} {:>10} {:>10} {:>10}",
        "m,k,n", "isa", "GFLOP/s", "vs mm"
    );
    for (m, k, n, b_transposed) in shapes {
        let a = Matrix::from_fn(m, k, |i, j| ((i + 2 * j) % 7) as f32 * 0.1);
        let b = Matrix::from_fn(k, n, |i, j| ((3 * i + j) % 5) as f32 * 0.1);
        // With a trailing ",1" B is stored column-major (the trainer's W^T).
        let bt = b.view().t().to_matrix();
        let bv = if b_transposed {
            bt.view().t()
        } else {
            b.view()
        };
        let (rsb, csb) = (bv.row_stride(), bv.col_stride());
        let mut c = Matrix::zeros(m, n);
        let flops = 2.0 * (m * n * k) as f64;
        let mm = median_seconds(|| {
            // SAFETY: dense row-major operands of the stated shapes.
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_slice().as_ptr(),
                    k as isize,
                    1,
                    bv.as_ptr(),
                    rsb,
                    csb,
                    0.0,
                    c.as_mut_slice().as_mut_ptr(),
                    n as isize,
                    1,
                )
            }
        });
        println!(
            "{:>16} {:>10} {:>10.1} {:>10}",
            format!("{m},{k},{n}{}", if b_transposed { "T" } else { "" }),
            "mm",
            flops / mm / 1e9,
            "1.00"
        );
        for isa in Isa::available() {
            let gemm = Gemm::new()
                .with_isa(isa)
                .unwrap()
                .with_parallelism(Parallelism::Sequential);
            let t = median_seconds(|| {
                gemm.run(1.0, a.view(), bv, 0.0, c.view_mut()).unwrap();
            });
            println!(
                "{:>16} {:>10} {:>10.1} {:>10.2}",
                "",
                isa.name(),
                flops / t / 1e9,
                mm / t
            );
        }
    }
}
