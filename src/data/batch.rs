//! Gathering a mini-batch: `u8` pixels from a [`Dataset`] into caller-owned `f32` rows.
//!
//! The trainer owns the buffers (allocated once, reused for every mini-batch) and the order
//! of the indices (its seeded shuffle); these functions only copy, convert and check. Nothing
//! here allocates.

use std::ops::Range;

use crate::data::mmap;
use crate::data::mnist::Dataset;
use crate::error::{Error, Result};

/// The value a pixel byte becomes in the network's input: `p / 255` in `f32`, so that 0 is
/// 0.0 and 255 is exactly 1.0, bit for bit the IEEE quotient `f32::from(p) / 255.0` (the
/// `f32` nearest to `p / 255`).
///
/// It is computed without a division, which would bound the gather's speed: since
/// `1/255 = 257/65535 = 257/65536 + 1/(255 * 65536)`, the quotient is `p * C1 + p * C2` with
/// `C1 = 257/65536` (exact in `f32`, and so is `p * C1`: at most 16 significant bits) and
/// `C2 = 1/16711680` rounded to `f32`. The one rounding of `p * C2` is far below half an ulp
/// of the result, and for each of the 256 inputs the sum rounds to the correctly rounded
/// quotient (checked exhaustively by the tests). Two multiplies and an add vectorize on every
/// target.
#[inline]
pub fn pixel_value(p: u8) -> f32 {
    /// 257/65536, the head of 1/255: exact, and exact times any byte.
    const C1: f32 = 257.0 / 65536.0;
    /// 1/(255 * 65536), the tail: 1/255 - C1.
    const C2: f32 = 1.0 / 16_711_680.0;
    let x = f32::from(p);
    x * C1 + x * C2
}

/// Writes the images `indices` of `data` into `pixels` and their labels into `labels`.
///
/// Row `r` of `pixels` (a `indices.len() x data.input_size()` row-major matrix) becomes image
/// `indices[r]`, each byte `p` as [`pixel_value`]`(p)`, and `labels[r]` its label. Indices may
/// repeat and come in any order. While one image is converted the next one is prefetched, so
/// that a shuffled order does not wait on memory at every image (see [`prefetch`]).
///
/// # Errors
///
/// [`Error::BatchBufferMismatch`] unless `pixels.len() == indices.len() * data.input_size()`
/// and `labels.len() == indices.len()`; [`Error::BatchIndexOutOfRange`] for the first index
/// that is not below `data.len()`. Everything is checked before anything is written, so on
/// error the buffers are unchanged.
pub fn gather(
    data: &Dataset,
    indices: &[usize],
    pixels: &mut [f32],
    labels: &mut [u8],
) -> Result<()> {
    check_buffers(data, indices.len(), pixels, labels)?;
    if let Some(&index) = indices.iter().find(|&&i| i >= data.len()) {
        return Err(Error::BatchIndexOutOfRange {
            path: data.images_path().to_path_buf(),
            index,
            len: data.len(),
        });
    }
    let size = data.input_size(); // never zero
    let (all_pixels, all_labels) = (data.pixels(), data.labels());
    let image = |i: usize| &all_pixels[i * size..(i + 1) * size];
    let rows = pixels.chunks_exact_mut(size).zip(labels.iter_mut());
    for (r, (row, label)) in rows.enumerate() {
        if let Some(&next) = indices.get(r + 1) {
            mmap::prefetch(image(next));
        }
        let i = indices[r];
        convert(row, image(i));
        *label = all_labels[i];
    }
    Ok(())
}

/// [`gather`] for the consecutive images `range` of `data` (evaluation in file order, or
/// network2's `--no-shuffle` training): one contiguous copy.
///
/// # Errors
///
/// As [`gather`]: [`Error::BatchBufferMismatch`], and [`Error::BatchIndexOutOfRange`] if the
/// range does not lie within `0..data.len()`.
pub fn gather_range(
    data: &Dataset,
    range: Range<usize>,
    pixels: &mut [f32],
    labels: &mut [u8],
) -> Result<()> {
    if range.start > range.end || range.end > data.len() {
        return Err(Error::BatchIndexOutOfRange {
            path: data.images_path().to_path_buf(),
            // The first index of the range that is out of bounds.
            index: range.start.max(data.len()),
            len: data.len(),
        });
    }
    check_buffers(data, range.len(), pixels, labels)?;
    let size = data.input_size();
    convert(pixels, &data.pixels()[range.start * size..range.end * size]);
    labels.copy_from_slice(&data.labels()[range]);
    Ok(())
}

/// Asks the CPU to start loading the images `indices` of `data` into its caches, and returns
/// at once. A trainer that knows the next mini-batch can call this before computing the
/// current one, so that gathering the next one finds its pixels in cache. Only a hint: it
/// changes no result, ignores indices out of range, and does nothing on CPUs other than
/// x86-64.
pub fn prefetch(data: &Dataset, indices: &[usize]) {
    let size = data.input_size();
    let all_pixels = data.pixels();
    for &i in indices.iter().filter(|&&i| i < data.len()) {
        mmap::prefetch(&all_pixels[i * size..(i + 1) * size]);
    }
}

/// Checks the buffer lengths for a batch of `batch` images.
fn check_buffers(data: &Dataset, batch: usize, pixels: &[f32], labels: &[u8]) -> Result<()> {
    // A product that overflows cannot equal any slice length; saturating keeps it unequal.
    let expected = batch.saturating_mul(data.input_size());
    if pixels.len() != expected {
        return Err(Error::BatchBufferMismatch {
            buffer: "pixel",
            expected,
            actual: pixels.len(),
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

/// `dst[k] = pixel_value(src[k])`: a plain zip of equal lengths, which the compiler
/// vectorizes.
#[inline]
fn convert(dst: &mut [f32], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    for (x, &p) in dst.iter_mut().zip(src) {
        *x = pixel_value(p);
    }
}

#[cfg(test)]
mod tests {
    use super::pixel_value;

    #[test]
    fn pixel_value_is_the_ieee_quotient_for_every_byte() {
        for p in 0..=255u8 {
            let quotient = f32::from(p) / 255.0;
            assert_eq!(pixel_value(p).to_bits(), quotient.to_bits(), "pixel {p}");
        }
    }
}
