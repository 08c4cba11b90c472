//! The book's expanded training data (chapter 3, made by its `expand_mnist.py`): each image
//! together with four copies of it shifted by one pixel up, down, left and right, five times
//! the images, generated on the fly from the `u8` pixels as mini-batches are gathered.
//!
//! A shift moves the whole image one pixel: the row or column that leaves at one edge is
//! dropped and the one that enters at the other edge is 0 (background). Nothing is copied in
//! advance: [`Expanded`] is a view of a [`Dataset`], and gathering example `i` writes the
//! shifted image straight into the caller's `f32` row, one pass per image, as
//! [`gather`](crate::data::gather) writes an unshifted one.
//!
//! ```no_run
//! use simdnet::data::expand::Expanded;
//! use simdnet::data::{Mnist, MnistOptions};
//! use simdnet::network::Examples;
//!
//! let mnist = Mnist::open("data/mnist", &MnistOptions::default())?;
//! let expanded = Expanded::new(mnist.training())?;
//! assert_eq!(expanded.len(), 5 * mnist.training().len()); // 250,000 on MNIST
//!
//! // Example 7 is image 1 shifted down (7 = 1 * 5 + 2).
//! let mut x = vec![0.0f32; expanded.input_size()];
//! let mut y = [0u8];
//! expanded.gather(&[7], &mut x, &mut y)?;
//! # Ok::<(), simdnet::Error>(())
//! ```

use std::ops::Range;

use crate::data::batch::pixel_value;
use crate::data::mmap;
use crate::data::mnist::Dataset;
use crate::error::{Error, Result};
use crate::network::Examples;

/// How example `i` of an [`Expanded`] set is made from image `i / COPIES` of its dataset: the
/// variant `i % COPIES`, in the order of [`Shift::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shift {
    /// The image as it is (variant 0).
    Original,
    /// Moved up one pixel (variant 1): row `r` is the image's row `r + 1`, the bottom row is
    /// 0.
    Up,
    /// Moved down one pixel (variant 2): row `r` is the image's row `r - 1`, the top row is 0.
    Down,
    /// Moved left one pixel (variant 3): column `c` is the image's column `c + 1`, the
    /// rightmost column is 0.
    Left,
    /// Moved right one pixel (variant 4): column `c` is the image's column `c - 1`, the
    /// leftmost column is 0.
    Right,
}

impl Shift {
    /// Every variant, in index order: example `i` is image `i / COPIES` with shift
    /// `ALL[i % COPIES]`.
    pub const ALL: [Shift; COPIES] = [
        Shift::Original,
        Shift::Up,
        Shift::Down,
        Shift::Left,
        Shift::Right,
    ];
}

/// Examples per image of the dataset: the image and its four shifts.
pub const COPIES: usize = 5;

/// A [`Dataset`] expanded five times: example `i` is image `i / 5` shifted by
/// [`Shift::ALL`]`[i % 5]` (the image itself, then up, down, left, right), with the image's
/// label. An image and its four shifts are consecutive, so `--no-shuffle` training visits each
/// image's variants together and a shuffle scatters them like any other examples.
///
/// Images are the dataset's `rows() x cols()`, any size. A view: it borrows the dataset and
/// allocates nothing, ever; [`Examples::gather`] converts and shifts in one pass per image.
/// Evaluate on the unexpanded sets.
#[derive(Clone, Copy, Debug)]
pub struct Expanded<'a> {
    data: &'a Dataset,
    len: usize,
}

impl<'a> Expanded<'a> {
    /// The expansion of `data`: `5 * data.len()` examples.
    ///
    /// # Errors
    ///
    /// [`Error::BadOption`] if `5 * data.len()` does not fit in a `usize` (only possible on
    /// 32-bit targets).
    pub fn new(data: &'a Dataset) -> Result<Expanded<'a>> {
        let len = data
            .len()
            .checked_mul(COPIES)
            .ok_or_else(|| Error::BadOption {
                option: "expanded training data",
                problem: format!(
                    "{} images of {} make more than {} examples",
                    data.len(),
                    data.images_path().display(),
                    usize::MAX
                ),
            })?;
        Ok(Expanded { data, len })
    }

    /// The dataset whose images are expanded.
    pub fn dataset(&self) -> &'a Dataset {
        self.data
    }

    /// The image of the dataset and the shift that make example `i`, or `None` if `i >=
    /// self.len()`.
    pub fn locate(&self, i: usize) -> Option<(usize, Shift)> {
        (i < self.len).then(|| (i / COPIES, Shift::ALL[i % COPIES]))
    }

    /// Writes example `i` (known to be in range) into `row` and returns its label.
    #[inline]
    fn write(&self, i: usize, row: &mut [f32]) -> u8 {
        let image = i / COPIES;
        shift_into(
            row,
            self.data.image(image),
            self.data.cols(),
            Shift::ALL[i % COPIES],
        );
        self.data.label(image)
    }

    fn out_of_range(&self, index: usize) -> Error {
        Error::BatchIndexOutOfRange {
            path: self.data.images_path().to_path_buf(),
            index,
            len: self.len,
        }
    }

    /// Checks the buffer lengths for a batch of `batch` examples, as [`crate::data::gather`]
    /// does.
    fn check_buffers(&self, batch: usize, inputs: &[f32], labels: &[u8]) -> Result<()> {
        // A product that overflows cannot equal any slice length; saturating keeps it unequal.
        let expected = batch.saturating_mul(self.data.input_size());
        if inputs.len() != expected {
            return Err(Error::BatchBufferMismatch {
                buffer: "pixel",
                expected,
                actual: inputs.len(),
            });
        }
        if labels.len() != batch {
            return Err(Error::BatchBufferMismatch {
                buffer: "label",
                expected: batch,
                actual: labels.len(),
            });
        }
        Ok(())
    }
}

impl Examples for Expanded<'_> {
    /// `5 * dataset().len()`.
    fn len(&self) -> usize {
        self.len
    }

    fn input_size(&self) -> usize {
        self.data.input_size()
    }

    /// The image file, marked as expanded.
    fn source(&self) -> String {
        format!(
            "{} (expanded: each image and its 4 one-pixel shifts)",
            self.data.images_path().display()
        )
    }

    /// As [`crate::data::gather`], with the same errors (an index is out of range at or past
    /// `5 * dataset().len()`), and the same guarantee that on error nothing was written. The
    /// next example's image is prefetched while one is written.
    fn gather(&self, indices: &[usize], inputs: &mut [f32], labels: &mut [u8]) -> Result<()> {
        self.check_buffers(indices.len(), inputs, labels)?;
        if let Some(&index) = indices.iter().find(|&&i| i >= self.len) {
            return Err(self.out_of_range(index));
        }
        let size = self.data.input_size(); // never zero
        let rows = inputs.chunks_exact_mut(size).zip(labels.iter_mut());
        for (r, (row, label)) in rows.enumerate() {
            if let Some(&next) = indices.get(r + 1) {
                mmap::prefetch(self.data.image(next / COPIES));
            }
            *label = self.write(indices[r], row);
        }
        Ok(())
    }

    /// As [`crate::data::gather_range`], with the same errors.
    fn gather_range(
        &self,
        range: Range<usize>,
        inputs: &mut [f32],
        labels: &mut [u8],
    ) -> Result<()> {
        if range.start > range.end || range.end > self.len {
            // The first index of the range that is out of bounds.
            return Err(self.out_of_range(range.start.max(self.len)));
        }
        self.check_buffers(range.len(), inputs, labels)?;
        let size = self.data.input_size();
        let rows = inputs.chunks_exact_mut(size).zip(labels.iter_mut());
        for (i, (row, label)) in range.zip(rows) {
            *label = self.write(i, row);
        }
        Ok(())
    }

    /// Prefetches the images the examples `indices` are made from; indices out of range are
    /// ignored.
    fn prefetch(&self, indices: &[usize]) {
        for &i in indices.iter().filter(|&&i| i < self.len) {
            mmap::prefetch(self.data.image(i / COPIES));
        }
    }

    /// The dataset's check: the labels are the images' labels. The error names the label
    /// file and the label's index in that file.
    fn check_labels(&self, classes: usize) -> Result<()> {
        self.data.check_labels(classes)
    }

    fn check_input_size(&self, inputs: usize) -> Result<()> {
        self.data.check_input_size(inputs)
    }
}

/// Writes `image` (`rows x cols` bytes, `cols` > 0) moved by `shift` into `dst` as
/// [`pixel_value`]s: each part is a plain conversion of a contiguous run, which the compiler
/// vectorizes, and the pixels that enter are zeros.
#[inline]
fn shift_into(dst: &mut [f32], image: &[u8], cols: usize, shift: Shift) {
    debug_assert_eq!(dst.len(), image.len());
    debug_assert!(cols > 0 && image.len().is_multiple_of(cols));
    let size = image.len();
    match shift {
        Shift::Original => convert(dst, image),
        Shift::Up => {
            let (body, bottom) = dst.split_at_mut(size - cols);
            convert(body, &image[cols..]);
            bottom.fill(0.0);
        }
        Shift::Down => {
            let (top, body) = dst.split_at_mut(cols);
            top.fill(0.0);
            convert(body, &image[..size - cols]);
        }
        Shift::Left => {
            for (d, s) in dst.chunks_exact_mut(cols).zip(image.chunks_exact(cols)) {
                let (body, right) = d.split_at_mut(cols - 1);
                convert(body, &s[1..]);
                right[0] = 0.0;
            }
        }
        Shift::Right => {
            for (d, s) in dst.chunks_exact_mut(cols).zip(image.chunks_exact(cols)) {
                let (left, body) = d.split_at_mut(1);
                left[0] = 0.0;
                convert(body, &s[..cols - 1]);
            }
        }
    }
}

/// `dst[k] = pixel_value(src[k])`.
#[inline]
fn convert(dst: &mut [f32], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    for (x, &p) in dst.iter_mut().zip(src) {
        *x = pixel_value(p);
    }
}
