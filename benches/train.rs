//! Training speed: one `Trainer::step` (network2's `update_mini_batch`) at mini-batches of 10
//! and 100 for [784, 30, 10] and [784, 100, 10], and one whole epoch of 50,000 images.
//!
//! `cargo bench --bench train` runs it on the real MNIST training set when `MNIST_DIR` is
//! set, on synthetic images of the same shape otherwise (the speed does not depend on the
//! pixel values). The ISA is the selected one (`SIMDNET_ISA` forces another); the pool is
//! rayon's default (`RAYON_NUM_THREADS=1` for one thread). Criterion's `elem/s` is images
//! per second.
//!
//! `epoch/...` is the training time of one epoch as `train` reports it and the README's table
//! quotes: from the first mini-batch to the last update, without what a run does once before
//! it (buffers, the listing of the training set's nonzero inputs) or after it. `run/...` is
//! the wall time of a whole one-epoch run, all of that included.
//! `run/[784,30,10]/mb10+checkpoint` is that run with a checkpoint written at the
//! epoch's end (`train --checkpoint`: encoded, written to a temporary file, synced, renamed),
//! and `checkpoint/save` writes one alone: its time over the epoch's is the cost of
//! checkpointing every epoch.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use simdnet::data::{Mnist, MnistOptions};
use std::collections::BTreeMap;
use std::path::PathBuf;

use simdnet::network::{
    Cost, Examples, FloatExamples, Init, Monitor, Network, Observer, SgdConfig, Trainer,
    TrainingState, checkpoint, sgd,
};

/// Writes every checkpoint offered to one file, as `train --checkpoint` does.
struct Checkpointer {
    path: PathBuf,
    last: Option<TrainingState>,
}

impl Observer for Checkpointer {
    fn wants_checkpoints(&self) -> bool {
        true
    }

    fn checkpoint(
        &mut self,
        net: &Network,
        config: &SgdConfig,
        state: &TrainingState,
    ) -> simdnet::Result<()> {
        checkpoint::save(&self.path, net, config, state, &BTreeMap::new())?;
        self.last = Some(state.clone());
        Ok(())
    }
}

const SHAPES: [[usize; 3]; 2] = [[784, 30, 10], [784, 100, 10]];

/// 50,000 training images: MNIST's from `MNIST_DIR`, or deterministic synthetic ones.
enum Images {
    Mnist(Mnist),
    Synthetic(Vec<f32>, Vec<u8>),
}

impl Images {
    fn load() -> Images {
        if let Some(dir) = std::env::var_os("MNIST_DIR") {
            let mnist = Mnist::open(&dir, &MnistOptions::default())
                .unwrap_or_else(|e| panic!("MNIST_DIR: {e}"));
            return Images::Mnist(mnist);
        }
        eprintln!("MNIST_DIR is not set: benchmarking on synthetic 28x28 images");
        let n = 50_000;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let pixels = (0..n * 784)
            .map(|_| (next() % 256) as f32 / 255.0)
            .collect();
        let labels = (0..n).map(|_| (next() % 10) as u8).collect();
        Images::Synthetic(pixels, labels)
    }

    fn with<R>(&self, f: impl FnOnce(&dyn Examples) -> R) -> R {
        match self {
            Images::Mnist(m) => f(m.training()),
            Images::Synthetic(x, y) => f(&FloatExamples::new(x, y, 784).unwrap()),
        }
    }
}

fn step(c: &mut Criterion, images: &Images) {
    let pool = rayon::ThreadPoolBuilder::new().build().unwrap();
    let mut group = c.benchmark_group("step");
    group.measurement_time(Duration::from_secs(3));
    for sizes in SHAPES {
        for mb in [10usize, 100] {
            let mut x = vec![0.0f32; mb * 784];
            let mut y = vec![0u8; mb];
            images.with(|data| data.gather_range(0..mb, &mut x, &mut y).unwrap());
            let mut net = Network::new(&sizes, Cost::CrossEntropy, Init::Default, 1).unwrap();
            let mut trainer = Trainer::new(&net, mb).unwrap();
            let name = format!("{sizes:?}/mb{mb}").replace(' ', "");
            group.throughput(Throughput::Elements(mb as u64));
            group.bench_function(BenchmarkId::from_parameter(name), |bench| {
                // On a pool thread, as in the trainer, so that a split product does not
                // have to wake the pool from outside.
                pool.install(|| {
                    bench.iter(|| {
                        trainer
                            .step(&mut net, black_box(&x), &y, 0.5, 5.0, 50_000)
                            .unwrap()
                    })
                })
            });
        }
    }
    group.finish();
}

fn epoch(c: &mut Criterion, images: &Images) {
    let pool = rayon::ThreadPoolBuilder::new().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut checkpointer = Checkpointer {
        path: dir.path().join("bench.ckpt"),
        last: None,
    };
    let mut group = c.benchmark_group("epoch");
    let mut in_run_group = false;
    for (sizes, mb, whole_run, checkpoints) in [
        (SHAPES[0], 10, false, false),
        (SHAPES[0], 100, false, false),
        (SHAPES[1], 10, false, false),
        (SHAPES[0], 10, true, false),
        (SHAPES[0], 10, true, true),
    ] {
        if whole_run && !in_run_group {
            group.finish();
            group = c.benchmark_group("run");
            in_run_group = true;
        }
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(10));
        group.throughput(Throughput::Elements(50_000));
        let config = SgdConfig {
            epochs: 1,
            mini_batch_size: mb,
            monitor: Monitor::default(),
            ..SgdConfig::default()
        };
        let start = Network::new(&sizes, Cost::CrossEntropy, Init::Default, 1).unwrap();
        let suffix = if checkpoints { "+checkpoint" } else { "" };
        let name = format!("{sizes:?}/mb{mb}{suffix}").replace(' ', "");
        group.bench_function(BenchmarkId::from_parameter(name), |bench| {
            images.with(|data| {
                pool.install(|| {
                    bench.iter_custom(|iterations| {
                        let mut measured = Duration::ZERO;
                        for _ in 0..iterations {
                            let mut net = start.clone();
                            let began = Instant::now();
                            let summary = if checkpoints {
                                sgd(&mut net, data, None, &config, &mut checkpointer)
                            } else {
                                sgd(&mut net, data, None, &config, &mut ())
                            };
                            let wall = began.elapsed();
                            let epoch = summary.unwrap().epochs[0].seconds;
                            measured += if whole_run {
                                wall
                            } else {
                                Duration::from_secs_f64(epoch)
                            };
                            black_box(net);
                        }
                        measured
                    })
                })
            })
        });
    }
    group.finish();

    // One checkpoint of the [784, 30, 10] run above, written alone. When a filter
    // (`cargo bench --bench train -- checkpoint/save`) left that run out, its epoch is run
    // here, unmeasured, for the state to save.
    if checkpointer.last.is_none() {
        let config = SgdConfig {
            epochs: 1,
            mini_batch_size: 10,
            monitor: Monitor::default(),
            ..SgdConfig::default()
        };
        let mut net = Network::new(&SHAPES[0], Cost::CrossEntropy, Init::Default, 1).unwrap();
        images.with(|data| {
            pool.install(|| sgd(&mut net, data, None, &config, &mut checkpointer).unwrap())
        });
    }
    let state = checkpointer
        .last
        .take()
        .expect("the epoch wrote a checkpoint");
    let mut group = c.benchmark_group("checkpoint");
    group.measurement_time(Duration::from_secs(5));
    let net = Network::new(&SHAPES[0], Cost::CrossEntropy, Init::Default, 1).unwrap();
    let config = SgdConfig {
        epochs: 1,
        monitor: Monitor::default(),
        ..SgdConfig::default()
    };
    let path = dir.path().join("alone.ckpt");
    group.bench_function("save/[784,30,10]", |bench| {
        bench.iter(|| checkpoint::save(&path, &net, &config, &state, &BTreeMap::new()).unwrap())
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let images = Images::load();
    eprintln!("ISA: {}", simdnet::selected_isa());
    step(c, &images);
    epoch(c, &images);
}

criterion_group!(train, benches);
criterion_main!(train);
