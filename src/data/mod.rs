//! The data layer: IDX files, memory-mapped, viewed as MNIST's three datasets, gathered into
//! mini-batches.
//!
//! ```text
//! IDX file --[mmap]--> MappedFile --[idx: validated header]--> Dataset (u8 pixels, in place)
//!   --[mnist: network2's split]--> training / validation / test views
//!   --[batch: indices chosen by the trainer]--> B x input_size f32 (pixel / 255) + B labels
//! ```
//!
//! * [`idx`]: the pure, never-panicking IDX header parser.
//! * [`mmap`]: [`MappedFile`] and [`LoadMode`], and the memory-map contract (the one module
//!   with `unsafe`).
//! * [`mnist`]: [`Mnist::open`] and [`Dataset`], cheap shareable views.
//! * [`batch`]: [`gather`] and [`gather_range`] into caller-owned buffers, and a [`prefetch`]
//!   hint for the next mini-batch.
//! * [`gz`]: directories holding only `NAME.gz` files, decompressed once (beside them, or
//!   into a cache directory where they are read-only).
//! * `download` (feature `download`, on by default): fetching MNIST from public mirrors,
//!   verified by SHA-256.
//!
//! ```no_run
//! use simdnet::data::{Mnist, MnistOptions, gather};
//!
//! let mnist = Mnist::open("data/mnist", &MnistOptions::default())?;
//! let training = mnist.training(); // 50,000 images on MNIST
//! training.check_labels(10)?;
//! training.check_input_size(784)?;
//!
//! let indices = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];
//! let mut x = vec![0.0f32; indices.len() * training.input_size()];
//! let mut y = vec![0u8; indices.len()];
//! gather(training, &indices, &mut x, &mut y)?;
//! # Ok::<(), simdnet::Error>(())
//! ```

pub mod batch;
#[cfg(feature = "download")]
pub mod download;
pub mod expand;
pub mod gz;
pub mod idx;
pub mod mmap;
pub mod mnist;

pub use batch::{gather, gather_range, pixel_value, prefetch};
pub use idx::{IdxProblem, IdxView, Shape};
pub use mmap::{LoadMode, MappedFile};
pub use mnist::{Dataset, Mnist, MnistOptions};
