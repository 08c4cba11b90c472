//! The training loop allocates nothing: every buffer is made before the first mini-batch.
//! A counting global allocator watches the stretches between two progress reports of an
//! epoch (about 1% of the epoch each), which contain only gathering and `Trainer::step`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use simdnet::network::{
    Cost, FloatExamples, Init, Monitor, Network, Observer, Optimizer, SgdConfig, sgd,
};

struct Counting;

static ARMED: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; counting has no effect on
// the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`; `ptr` came from `System.alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Arms the counter at each progress report of the watched epoch and records what the
/// stretch since the previous report allocated.
struct Watch {
    epoch: usize,
    windows: usize,
    allocations: usize,
}

impl Observer for Watch {
    fn progress(&mut self, epoch: usize, done: usize, total: usize) {
        if epoch != self.epoch {
            return;
        }
        if ARMED.swap(false, Ordering::SeqCst) {
            self.allocations += ALLOCATIONS.swap(0, Ordering::SeqCst);
            self.windows += 1;
        }
        if done < total {
            ALLOCATIONS.store(0, Ordering::SeqCst);
            ARMED.store(true, Ordering::SeqCst);
        }
    }
}

fn watch(
    sizes: &[usize],
    mini_batch: usize,
    shuffle: bool,
    threads: usize,
    sparse: bool,
    optimizer: Optimizer,
) -> Watch {
    let n = 2_000;
    // Dense inputs take the GEMM through the first layer; inputs 80% zero (MNIST's pixels
    // are about 81% zero) take the sparse products.
    let x: Vec<f32> = (0..n * sizes[0])
        .map(|i| {
            if sparse && i % 5 != 0 {
                0.0
            } else {
                (i % 251) as f32 / 251.0
            }
        })
        .collect();
    let y: Vec<u8> = (0..n).map(|i| (i % sizes[2]) as u8).collect();
    let data = FloatExamples::new(&x, &y, sizes[0]).unwrap();
    let mut net = Network::new(sizes, Cost::CrossEntropy, Init::Default, 0).unwrap();
    let config = SgdConfig {
        epochs: 3,
        mini_batch_size: mini_batch,
        shuffle,
        monitor: Monitor::default(),
        optimizer,
        // L1 on too whenever another optimizer is: the gradient takes the general path.
        lambda1: if optimizer == Optimizer::Sgd {
            0.0
        } else {
            0.5
        },
        ..SgdConfig::default()
    };
    // Epochs 1 and 2 warm up every thread's GEMM buffers; epoch 3 is watched.
    let mut watch = Watch {
        epoch: 3,
        windows: 0,
        allocations: 0,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| sgd(&mut net, &data, None, &config, &mut watch))
        .unwrap();
    ARMED.store(false, Ordering::SeqCst);
    watch
}

#[test]
fn training_steps_allocate_nothing() {
    // Sequential products (mini-batch 10), shuffled and in order; then products large enough
    // to be split across two threads (mini-batch 100: 4.7 MFLOP).
    // The sparse first layer at mini-batch 100 for 784-100-10 is split across two threads.
    // Momentum and Adam (with L1) keep their state in the trainer and take the gradient as a
    // matrix, dense and sparse.
    let momentum = Optimizer::Momentum {
        mu: 0.9,
        nesterov: true,
    };
    for (hidden, mb, shuffle, threads, sparse, optimizer) in [
        (30, 10, true, 1, false, Optimizer::Sgd),
        (30, 10, false, 2, false, Optimizer::Sgd),
        (30, 100, true, 2, false, Optimizer::Sgd),
        (30, 10, true, 1, true, Optimizer::Sgd),
        (100, 100, true, 2, true, Optimizer::Sgd),
        (30, 100, true, 2, false, momentum),
        (100, 100, true, 2, true, Optimizer::ADAM),
    ] {
        let w = watch(&[784, hidden, 10], mb, shuffle, threads, sparse, optimizer);
        assert!(w.windows >= 10, "only {} windows watched", w.windows);
        assert_eq!(
            w.allocations, 0,
            "mini-batch {mb}, shuffle {shuffle}, {threads} threads, sparse {sparse}, {optimizer:?}: {} allocations in {} stretches of training",
            w.allocations, w.windows
        );
    }
}
