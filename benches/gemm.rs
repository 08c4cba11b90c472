//! GEMM throughput: every instruction set this CPU has, side by side with matrixmultiply in
//! the same run. Throughput is reported in elements = floating-point operations (2 m n k),
//! so criterion's `Gelem/s` reads as GFLOP/s.
//!
//! `cargo bench --bench gemm` runs everything; a filter narrows it, e.g.
//! `cargo bench --bench gemm -- 'trainer/'` or `-- 'square/1024'`.
//! `scripts/bench-table.py` turns the saved medians into the README's table.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use simdnet::{Gemm, Isa, Matrix, Parallelism};

/// The products the network2 trainer runs, as (m, k, n).
const TRAINER_SHAPES: [(usize, usize, usize); 7] = [
    (10, 784, 30),
    (10, 30, 10),
    (30, 10, 784),
    (784, 10, 30),
    (10, 784, 100),
    (100, 784, 100),
    (100, 784, 30),
];

const SQUARES: [usize; 6] = [64, 128, 256, 512, 1024, 2048];

struct Operands {
    a: Matrix,
    b: Matrix,
    c: Matrix,
}

impl Operands {
    fn new(m: usize, k: usize, n: usize) -> Operands {
        Operands {
            a: Matrix::from_fn(m, k, |i, j| ((i * 7 + j * 3) % 17) as f32 / 17.0 - 0.5),
            b: Matrix::from_fn(k, n, |i, j| ((i * 5 + j * 11) % 13) as f32 / 13.0 - 0.5),
            c: Matrix::zeros(m, n),
        }
    }
}

fn matrixmultiply(ops: &mut Operands) {
    let (m, k, n) = (ops.a.rows(), ops.a.cols(), ops.b.cols());
    // SAFETY: dense row-major operands of exactly these shapes, C distinct from A and B.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            ops.a.as_slice().as_ptr(),
            k as isize,
            1,
            ops.b.as_slice().as_ptr(),
            n as isize,
            1,
            0.0,
            ops.c.as_mut_slice().as_mut_ptr(),
            n as isize,
            1,
        )
    }
}

fn bench_shape(c: &mut Criterion, group_name: &str, (m, k, n): (usize, usize, usize)) {
    let flops = 2 * m * k * n;
    let mut group = c.benchmark_group(format!("{group_name}/{m}x{k}x{n}"));
    group.throughput(Throughput::Elements(flops as u64));
    if flops > 1 << 30 {
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(4));
    } else {
        group.measurement_time(Duration::from_secs(2));
    }
    group.warm_up_time(Duration::from_millis(500));
    let mut ops = Operands::new(m, k, n);

    group.bench_function("matrixmultiply", |bench| {
        bench.iter(|| matrixmultiply(black_box(&mut ops)))
    });
    for isa in Isa::available() {
        // The portable kernel is a correctness baseline; timing it on 2048^3 takes minutes.
        if isa == Isa::Scalar && flops > 1 << 28 {
            continue;
        }
        let gemm = Gemm::new()
            .with_isa(isa)
            .expect("available")
            .with_parallelism(Parallelism::Sequential);
        group.bench_function(BenchmarkId::new("simdnet", isa.name()), |bench| {
            bench.iter(|| {
                gemm.run(1.0, ops.a.view(), ops.b.view(), 0.0, ops.c.view_mut())
                    .expect("shapes agree")
            })
        });
    }
    group.finish();
}

fn bench_threads(c: &mut Criterion) {
    let best = Gemm::new()
        .with_isa(Isa::best_available())
        .expect("available");
    for &(m, k, n) in &[
        (100, 784, 30),
        (100, 784, 100),
        (256, 256, 256),
        (1024, 1024, 1024),
        (2048, 2048, 2048),
    ] {
        let flops = 2 * m * k * n;
        let mut group = c.benchmark_group(format!("threads/{m}x{k}x{n}"));
        group.throughput(Throughput::Elements(flops as u64));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(3));
        let mut ops = Operands::new(m, k, n);
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            let gemm = best.with_parallelism(Parallelism::Rayon);
            group.bench_function(
                BenchmarkId::new(format!("simdnet-{}", best.isa()), threads),
                |bench| {
                    bench.iter(|| {
                        pool.install(|| {
                            gemm.run(1.0, ops.a.view(), ops.b.view(), 0.0, ops.c.view_mut())
                                .expect("shapes agree")
                        })
                    })
                },
            );
        }
        group.finish();
    }
}

fn benches(c: &mut Criterion) {
    for shape in TRAINER_SHAPES {
        bench_shape(c, "trainer", shape);
    }
    for size in SQUARES {
        bench_shape(c, "square", (size, size, size));
    }
    bench_threads(c);
}

criterion_group!(gemm_benches, benches);
criterion_main!(gemm_benches);
