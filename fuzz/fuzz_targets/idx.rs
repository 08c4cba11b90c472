//! The IDX parser and the image + label pair validation, on arbitrary bytes.
//!
//! Each input is used twice:
//!
//! 1. The whole input is one IDX file for [`IdxView::parse`]. On `Ok` the view must describe
//!    the input exactly: rank 1 to [`MAX_DIMS`], the header `4 + 4 * rank` bytes and equal to
//!    the input's first bytes (re-encoded from the dimensions), the payload the rest of the
//!    input with `product(dims)` bytes. On `Err` the message must format.
//! 2. The input is a pair of files: byte 0 chooses the load mode, bytes 1 and 2 (little
//!    endian, modulo the length left) how many of the remaining bytes form the image file;
//!    the rest is the label file. Both are written to a scratch directory (`/dev/shm` when
//!    there is one) and opened with [`Dataset::open`]. On `Ok` the dataset must agree with
//!    what the parser says of each file (count, rows, cols, every pixel and label), its views
//!    must stay in bounds, and a gathered batch must hold the right pixel values.
//!
//! Any disagreement panics, which libFuzzer reports as a crash.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use simdnet::data::idx::{IdxView, MAX_DIMS, TYPE_U8};
use simdnet::data::{Dataset, LoadMode, gather, gather_range, pixel_value};

/// The two scratch files of this process: images, labels.
fn scratch() -> &'static (PathBuf, PathBuf) {
    static PATHS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    PATHS.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let pid = std::process::id();
        (
            dir.join(format!("simdnet-fuzz-idx-{pid}-images")),
            dir.join(format!("simdnet-fuzz-idx-{pid}-labels")),
        )
    })
}

/// Checks everything a successful parse promises about `bytes`; returns the view.
fn check_parse(bytes: &[u8]) -> Option<IdxView<'_>> {
    let view = match IdxView::parse(bytes) {
        Ok(view) => view,
        Err(problem) => {
            assert!(!problem.to_string().is_empty());
            return None;
        }
    };
    let rank = view.dims().len();
    assert!((1..=MAX_DIMS).contains(&rank), "rank {rank}");
    assert_eq!(view.shape().rank(), rank);
    assert_eq!(view.header_len(), 4 + 4 * rank);
    assert_eq!(view.shape().header_len(), view.header_len());

    let mut header = vec![0, 0, TYPE_U8, rank as u8];
    for d in view.dims() {
        header.extend_from_slice(&d.to_be_bytes());
    }
    assert_eq!(&bytes[..view.header_len()], &header[..]);

    let count = view
        .dims()
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
        .expect("a parsed shape's element count fits in usize");
    assert_eq!(view.shape().element_count(), Some(count));
    assert_eq!(view.data().len(), count);
    assert_eq!(view.header_len() + count, bytes.len());
    assert_eq!(view.data(), &bytes[view.header_len()..]);

    for r in 1..=MAX_DIMS {
        assert_eq!(view.expect_rank(r).is_ok(), r == rank);
    }
    let shown = view.shape().to_string();
    assert_eq!(shown.split('x').count(), rank, "{shown}");
    Some(view)
}

/// Opens the pair through files and checks the dataset against the parser's view of each.
fn check_pair(mode: LoadMode, images: &[u8], labels: &[u8]) {
    let (images_path, labels_path) = scratch();
    std::fs::write(images_path, images).expect("write the scratch image file");
    std::fs::write(labels_path, labels).expect("write the scratch label file");
    let opened = Dataset::open(images_path, labels_path, mode);

    let image_view = IdxView::parse(images).ok();
    let label_view = IdxView::parse(labels).ok();
    let expected = match (image_view, label_view) {
        (Some(i), Some(l)) => match (i.dims(), l.dims()) {
            (&[n, rows, cols], &[m]) if rows > 0 && cols > 0 && n == m => {
                Some((i, l, n as usize, rows as usize, cols as usize))
            }
            _ => None,
        },
        _ => None,
    };
    let data = match (opened, expected) {
        (Ok(data), Some(expected)) => (data, expected),
        (Err(e), None) => {
            assert!(!e.to_string().is_empty());
            return;
        }
        (Ok(data), None) => panic!("Dataset::open accepted a pair the parser rejects: {data:?}"),
        (Err(e), Some(_)) => panic!("Dataset::open rejected a valid pair: {e}"),
    };
    let (data, (image_view, label_view, count, rows, cols)) = data;

    let size = rows * cols;
    assert_eq!(
        (data.len(), data.rows(), data.cols(), data.input_size()),
        (count, rows, cols, size)
    );
    assert_eq!(data.is_empty(), count == 0);
    assert_eq!(data.file_range(), 0..count);
    assert_eq!(data.pixels(), image_view.data());
    assert_eq!(data.labels(), label_view.data());
    for i in [0, count / 2, count.wrapping_sub(1)] {
        if i < count {
            assert_eq!(data.image(i), &image_view.data()[i * size..(i + 1) * size]);
            assert_eq!(data.label(i), label_view.data()[i]);
        }
    }
    data.check_input_size(size).expect("the images' own size");
    assert!(data.check_input_size(size + 1).is_err());
    let max_label = data
        .labels()
        .iter()
        .max()
        .map_or(0, |&l| usize::from(l) + 1);
    assert!(data.check_labels(max_label).is_ok());
    if max_label > 0 {
        assert!(data.check_labels(max_label - 1).is_err());
    }

    // Views: every sub-range of a few, and ranges that are out of bounds.
    let half = count / 2;
    let tail = data.get(half..count).expect("a range within the dataset");
    assert_eq!(tail.len(), count - half);
    assert_eq!(tail.file_range(), half..count);
    assert_eq!(tail.pixels(), &image_view.data()[half * size..]);
    assert_eq!(tail.labels(), &label_view.data()[half..]);
    assert!(data.get(0..count + 1).is_none());
    let (start, end) = (1, 0);
    assert!(data.get(start..end).is_none());

    // A batch of the first and last images of the tail (a few pixels only, to stay fast).
    if !tail.is_empty() && size <= 1 << 16 {
        let indices = [0, tail.len() - 1];
        let mut pixels = vec![f32::NAN; indices.len() * size];
        let mut batch_labels = vec![0xAA; indices.len()];
        gather(&tail, &indices, &mut pixels, &mut batch_labels).expect("a valid batch");
        for (row, &i) in indices.iter().enumerate() {
            let got = &pixels[row * size..(row + 1) * size];
            assert!(
                got.iter()
                    .zip(tail.image(i))
                    .all(|(&x, &p)| x == pixel_value(p))
            );
            assert_eq!(batch_labels[row], tail.label(i));
        }
        let mut one = vec![0.0; size];
        let mut one_label = [0];
        gather_range(&tail, 0..1, &mut one, &mut one_label).expect("a valid range");
        assert_eq!(&one[..], &pixels[..size]);
        assert!(gather(&tail, &[tail.len()], &mut one, &mut one_label).is_err());
        assert!(gather_range(&tail, 0..2, &mut one, &mut one_label).is_err());
    }
    drop(data);
    drop(tail);
}

fuzz_target!(|bytes: &[u8]| {
    check_parse(bytes);

    if let [flags, lo, hi, rest @ ..] = bytes {
        let mode = if flags & 1 == 0 {
            LoadMode::Read
        } else {
            LoadMode::Mmap
        };
        let split = usize::from(u16::from_le_bytes([*lo, *hi])) % (rest.len() + 1);
        let (images, labels) = rest.split_at(split);
        check_parse(images);
        check_parse(labels);
        check_pair(mode, images, labels);
        let (images_path, labels_path) = scratch();
        let _ = std::fs::remove_file(images_path);
        let _ = std::fs::remove_file(labels_path);
    }
});
