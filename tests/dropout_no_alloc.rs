//! A training step with dropout allocates nothing: the masks and the undropped activations
//! live in buffers `Trainer::with_dropout` allocates once.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use simdnet::network::{Activation, Cost, Init, Network, Optimizer, Trainer};

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

#[test]
fn dropout_steps_allocate_nothing() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| {
        let sizes = [30, 20, 12, 5];
        let acts = [Activation::Relu, Activation::Tanh, Activation::Sigmoid];
        let mut net =
            Network::with_activations(&sizes, &acts, Cost::CrossEntropy, Init::Default, 4).unwrap();
        let rows = 10;
        let x: Vec<f32> = (0..rows * sizes[0])
            .map(|i| {
                if i % 3 == 0 {
                    0.0
                } else {
                    (i % 17) as f32 / 17.0
                }
            })
            .collect();
        let y: Vec<u8> = (0..rows).map(|r| (r % 5) as u8).collect();
        for optimizer in [Optimizer::Sgd, Optimizer::ADAM] {
            let mut trainer = Trainer::new(&net, rows)
                .unwrap()
                .with_optimizer(optimizer)
                .unwrap()
                .with_dropout(0.5, 3)
                .unwrap();
            trainer.step(&mut net, &x, &y, 0.1, 1.0, 100).unwrap();
            ALLOCATIONS.store(0, Ordering::SeqCst);
            ARMED.store(true, Ordering::SeqCst);
            for _ in 0..5 {
                trainer.step(&mut net, &x, &y, 0.1, 1.0, 100).unwrap();
            }
            ARMED.store(false, Ordering::SeqCst);
            assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0, "{optimizer:?}");
            assert_eq!(trainer.dropout_step(), 6);
        }
    });
}
