//! Integration tests for the data layer (`simdnet::data`).
//!
//! Synthetic IDX files written into temporary directories exercise every error case (missing
//! directory or file, bad magic, wrong element type, wrong dimensions, truncated and trailing
//! bytes, empty files, count mismatches, labels out of range, a validation size too large),
//! both load modes, images that are not 28x28, and the exact values of gathered mini-batches.
//! When `MNIST_DIR` is set, the real MNIST files are checked too: network2's 50,000 / 10,000
//! / 10,000 split, 784 inputs, known labels, and that validation is the end of the training
//! file. Without it those tests print a notice and pass.

mod common;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use common::idx;
use simdnet::Error;
use simdnet::data::mnist::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use simdnet::data::{
    Dataset, IdxProblem, LoadMode, Mnist, MnistOptions, Shape, gather, gather_range, pixel_value,
    prefetch,
};

const MODES: [LoadMode; 2] = [LoadMode::Mmap, LoadMode::Read];

/// Pixel `j` of synthetic image `i`: every byte value occurs, and images differ.
fn pixel(i: usize, j: usize) -> u8 {
    ((i * 31 + j * 7) % 256) as u8
}

/// Label of synthetic item `i`.
fn label(i: usize) -> u8 {
    (i % 10) as u8
}

fn image_file(count: usize, rows: u32, cols: u32) -> Vec<u8> {
    let size = (rows * cols) as usize;
    let payload: Vec<u8> = (0..count)
        .flat_map(|i| (0..size).map(move |j| pixel(i, j)))
        .collect();
    idx(0x08, &[count as u32, rows, cols], &payload)
}

fn label_file(count: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..count).map(label).collect();
    idx(0x08, &[count as u32], &payload)
}

/// A temporary MNIST-style directory with `train` training and `test` test items of
/// `rows x cols`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(train: usize, test: usize, rows: u32, cols: u32) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let f = Fixture { dir };
        f.write(TRAIN_IMAGES, &image_file(train, rows, cols));
        f.write(TRAIN_LABELS, &label_file(train));
        f.write(TEST_IMAGES, &image_file(test, rows, cols));
        f.write(TEST_LABELS, &label_file(test));
        f
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        fs::write(self.file(name), bytes).unwrap();
    }

    fn open(&self, validation_size: usize, load: LoadMode) -> Result<Mnist, Error> {
        Mnist::open(
            self.path(),
            &MnistOptions {
                validation_size,
                load,
            },
        )
    }

    /// Opening fails, in both load modes, with the same error; returns it.
    fn open_err(&self, validation_size: usize) -> Error {
        let err = self.open(validation_size, LoadMode::Mmap).unwrap_err();
        assert_eq!(self.open(validation_size, LoadMode::Read).unwrap_err(), err);
        err
    }
}

/// The `Error::Idx` for `path` with `problem`.
fn idx_error(path: PathBuf, problem: IdxProblem) -> Error {
    Error::Idx { path, problem }
}

fn shape(dims: &[u32]) -> Shape {
    Shape::new(dims).unwrap()
}

#[test]
fn opens_and_splits_like_network2() {
    let f = Fixture::new(60, 15, 4, 5);
    for load in MODES {
        let mnist = f.open(10, load).unwrap();
        let (train, valid, test) = (mnist.training(), mnist.validation(), mnist.test());
        assert_eq!((train.len(), valid.len(), test.len()), (50, 10, 15));
        assert_eq!((train.file_range(), valid.file_range()), (0..50, 50..60));
        for d in [train, valid, test] {
            assert_eq!((d.rows(), d.cols(), d.input_size()), (4, 5, 20));
            assert!(!d.is_empty());
        }
        assert_eq!(train.images_path(), f.file(TRAIN_IMAGES));
        assert_eq!(valid.labels_path(), f.file(TRAIN_LABELS));
        assert_eq!(test.images_path(), f.file(TEST_IMAGES));

        for i in 0..50 {
            let expect: Vec<u8> = (0..20).map(|j| pixel(i, j)).collect();
            assert_eq!(train.image(i), &expect[..]);
            assert_eq!(train.label(i), label(i));
        }
        for i in 0..10 {
            let expect: Vec<u8> = (0..20).map(|j| pixel(50 + i, j)).collect();
            assert_eq!(
                valid.image(i),
                &expect[..],
                "validation is the end of the file"
            );
            assert_eq!(valid.label(i), label(50 + i));
        }
        assert_eq!(
            test.image(14),
            &(0..20).map(|j| pixel(14, j)).collect::<Vec<_>>()[..]
        );
        assert_eq!(test.labels(), &(0..15).map(label).collect::<Vec<_>>()[..]);
        assert_eq!(train.pixels().len(), 50 * 20);
        assert_eq!(valid.pixels(), &image_file(60, 4, 5)[16 + 50 * 20..]);
        mnist.check_labels(10).unwrap();
    }
}

#[test]
fn load_modes_agree() {
    let f = Fixture::new(30, 7, 28, 28);
    let mapped = f.open(5, LoadMode::Mmap).unwrap();
    let read = f.open(5, LoadMode::Read).unwrap();
    for (a, b) in [
        (mapped.training(), read.training()),
        (mapped.validation(), read.validation()),
        (mapped.test(), read.test()),
    ] {
        assert_eq!(a.pixels(), b.pixels());
        assert_eq!(a.labels(), b.labels());
        assert_eq!(a.file_range(), b.file_range());
    }
    assert_eq!(MnistOptions::default().validation_size, 10_000);
    assert_eq!(MnistOptions::default().load, LoadMode::Mmap);
}

#[test]
fn image_sizes_other_than_28x28() {
    for (rows, cols) in [(1, 1), (3, 7), (16, 16), (32, 24)] {
        let f = Fixture::new(12, 3, rows, cols);
        let mnist = f.open(2, LoadMode::Mmap).unwrap();
        let size = (rows * cols) as usize;
        assert_eq!(mnist.training().input_size(), size);
        assert_eq!(
            (mnist.test().rows(), mnist.test().cols()),
            (rows as usize, cols as usize)
        );
        assert_eq!(mnist.validation().image(1).len(), size);
        assert_eq!(mnist.validation().image(1)[size - 1], pixel(11, size - 1));
        mnist.training().check_input_size(size).unwrap();
        let err = mnist.training().check_input_size(784).unwrap_err();
        if size != 784 {
            assert_eq!(
                err,
                Error::InputSizeMismatch {
                    path: f.file(TRAIN_IMAGES),
                    rows: rows as usize,
                    cols: cols as usize,
                    inputs: 784
                }
            );
            let msg = err.to_string();
            assert!(
                msg.contains(TRAIN_IMAGES)
                    && msg.contains(&format!("{rows}x{cols} = {size} pixels"))
                    && msg.contains("784 neurons"),
                "{msg}"
            );
        }
    }
}

#[test]
fn validation_sizes() {
    let f = Fixture::new(20, 5, 2, 2);
    let all = f.open(20, LoadMode::Mmap).unwrap();
    assert!(all.training().is_empty());
    assert_eq!(all.validation().len(), 20);
    let none = f.open(0, LoadMode::Mmap).unwrap();
    assert_eq!((none.training().len(), none.validation().len()), (20, 0));
    assert!(none.validation().pixels().is_empty());

    let err = f.open_err(21);
    let Error::BadOption { option, problem } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*option, "validation size");
    assert!(
        problem.contains("21") && problem.contains("20 images"),
        "{problem}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("validation size") && msg.contains(TRAIN_IMAGES),
        "{msg}"
    );
}

#[test]
fn missing_directory() {
    let f = Fixture::new(1, 1, 1, 1);
    let dir = f.path().join("no-such-dir");
    for load in MODES {
        let err = Mnist::open(
            &dir,
            &MnistOptions {
                validation_size: 0,
                load,
            },
        )
        .unwrap_err();
        assert_eq!(err, Error::MissingDirectory { dir: dir.clone() });
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }
    // A file where the directory should be.
    let err = Mnist::open(f.file(TRAIN_IMAGES), &MnistOptions::default()).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Io {
                kind: ErrorKind::NotADirectory,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn missing_files() {
    for name in [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS] {
        let f = Fixture::new(3, 2, 2, 2);
        fs::remove_file(f.file(name)).unwrap();
        let err = f.open_err(1);
        assert_eq!(
            err,
            Error::MissingData {
                dir: f.path().to_path_buf(),
                file: name.to_string(),
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains(name) && msg.contains(&f.path().display().to_string()),
            "{msg}"
        );

        // Only a .gz archive, and a broken one (it is decompressed when valid: see
        // tests/download.rs): the error names the archive.
        let archive = f.file(&format!("{name}.gz"));
        f.write(&format!("{name}.gz"), &[0x1f, 0x8b, 8, 0]);
        let err = f.open_err(1);
        assert!(
            matches!(&err, Error::Io { path, operation: "decompress", .. } if *path == archive),
            "{err:?}"
        );
        assert!(
            !f.file(name).exists(),
            "nothing is left for the broken archive"
        );
    }
}

#[test]
fn a_directory_in_place_of_a_file() {
    let f = Fixture::new(3, 2, 2, 2);
    fs::remove_file(f.file(TEST_LABELS)).unwrap();
    fs::create_dir(f.file(TEST_LABELS)).unwrap();
    let err = f.open_err(1);
    assert!(
        matches!(&err, Error::Io { path, kind: ErrorKind::IsADirectory, .. } if *path == f.file(TEST_LABELS)),
        "{err:?}"
    );
}

#[test]
fn wrong_magic() {
    let f = Fixture::new(3, 2, 2, 2);
    let mut bytes = image_file(3, 2, 2);
    bytes[1] = 3;
    f.write(TRAIN_IMAGES, &bytes);
    let err = f.open_err(1);
    assert_eq!(
        err,
        idx_error(
            f.file(TRAIN_IMAGES),
            IdxProblem::BadMagic {
                magic: [0, 3, 8, 3]
            }
        )
    );
    let msg = err.to_string();
    assert!(
        msg.contains(TRAIN_IMAGES) && msg.contains("not an IDX file"),
        "{msg}"
    );

    // A gzip file under the plain name.
    f.write(TRAIN_IMAGES, &[0x1f, 0x8b, 0x08, 0x08, 1, 2, 3, 4, 5]);
    let msg = f.open_err(1).to_string();
    assert!(msg.contains("gzip"), "{msg}");
}

#[test]
fn wrong_type_code() {
    let f = Fixture::new(3, 2, 2, 2);
    // The same items as 32-bit floats.
    f.write(TEST_IMAGES, &idx(0x0D, &[2, 2, 2], &[0; 2 * 2 * 2 * 4]));
    let err = f.open_err(1);
    assert_eq!(
        err,
        idx_error(
            f.file(TEST_IMAGES),
            IdxProblem::UnsupportedType { code: 0x0D }
        )
    );
    let msg = err.to_string();
    assert!(
        msg.contains(TEST_IMAGES) && msg.contains("0x0d") && msg.contains("32-bit float"),
        "{msg}"
    );
}

#[test]
fn wrong_dimensions() {
    let f = Fixture::new(3, 2, 2, 2);
    // Labels with three dimensions.
    f.write(TRAIN_LABELS, &idx(0x08, &[3, 1, 1], &[0, 1, 2]));
    let err = f.open_err(1);
    assert_eq!(
        err,
        idx_error(
            f.file(TRAIN_LABELS),
            IdxProblem::UnexpectedDimensions {
                expected: 1,
                found: 3,
                shape: shape(&[3, 1, 1])
            }
        )
    );
    assert!(err.to_string().contains("label file"), "{err}");

    // Images flattened to two dimensions.
    let f = Fixture::new(3, 2, 2, 2);
    f.write(TRAIN_IMAGES, &idx(0x08, &[3, 4], &[0; 12]));
    let err = f.open_err(1);
    assert_eq!(
        err,
        idx_error(
            f.file(TRAIN_IMAGES),
            IdxProblem::UnexpectedDimensions {
                expected: 3,
                found: 2,
                shape: shape(&[3, 4])
            }
        )
    );
    assert!(err.to_string().contains("count x rows x cols"), "{err}");

    // No dimensions at all, and images with no pixels.
    f.write(TRAIN_IMAGES, &idx(0x08, &[], &[]));
    assert_eq!(
        f.open_err(1),
        idx_error(
            f.file(TRAIN_IMAGES),
            IdxProblem::DimensionCount { found: 0 }
        )
    );
    f.write(TRAIN_IMAGES, &idx(0x08, &[3, 0, 5], &[]));
    assert_eq!(
        f.open_err(1),
        idx_error(
            f.file(TRAIN_IMAGES),
            IdxProblem::EmptyImages { rows: 0, cols: 5 }
        )
    );
}

#[test]
fn truncated_files() {
    let f = Fixture::new(3, 2, 28, 28);
    // An MNIST header over 1000 bytes: the example of the requirements.
    f.write(TRAIN_IMAGES, &idx(0x08, &[60000, 28, 28], &[7; 984]));
    let err = f.open_err(1);
    assert_eq!(
        err,
        idx_error(
            f.file(TRAIN_IMAGES),
            IdxProblem::Truncated {
                shape: shape(&[60000, 28, 28]),
                expected: 47_040_016,
                actual: 1000
            }
        )
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: truncated IDX file: header says 60000x28x28 = 47040016 bytes with the \
             16-byte header, file has 1000 bytes",
            f.file(TRAIN_IMAGES).display()
        )
    );

    // One label short; and a header cut short.
    let f = Fixture::new(3, 2, 2, 2);
    let labels = label_file(2);
    f.write(TEST_LABELS, &labels[..labels.len() - 1]);
    assert!(matches!(
        f.open_err(1),
        Error::Idx {
            problem: IdxProblem::Truncated {
                expected: 10,
                actual: 9,
                ..
            },
            ..
        }
    ));
    f.write(TEST_LABELS, &[0, 0, 8, 1, 0, 0]);
    let err = f.open_err(1);
    assert_eq!(
        err,
        idx_error(
            f.file(TEST_LABELS),
            IdxProblem::HeaderTruncated {
                needed: 8,
                actual: 6
            }
        )
    );
    assert!(
        err.to_string().contains("needs 8 bytes, the file has 6"),
        "{err}"
    );
}

#[test]
fn trailing_bytes() {
    let f = Fixture::new(3, 2, 2, 2);
    let mut bytes = image_file(3, 2, 2);
    bytes.extend_from_slice(&[0; 5]);
    f.write(TRAIN_IMAGES, &bytes);
    let err = f.open_err(1);
    assert_eq!(
        err,
        idx_error(
            f.file(TRAIN_IMAGES),
            IdxProblem::TrailingBytes {
                shape: shape(&[3, 2, 2]),
                expected: 28,
                actual: 33
            }
        )
    );
    let msg = err.to_string();
    assert!(
        msg.contains("5 trailing bytes") && msg.contains("28 bytes") && msg.contains("33 bytes"),
        "{msg}"
    );
}

#[test]
fn empty_file() {
    for name in [TRAIN_IMAGES, TEST_LABELS] {
        let f = Fixture::new(3, 2, 2, 2);
        f.write(name, b"");
        let err = f.open_err(1);
        assert_eq!(err, idx_error(f.file(name), IdxProblem::Empty));
        assert!(err.to_string().contains("empty file"), "{err}");
    }
}

#[test]
fn count_mismatch() {
    let f = Fixture::new(5, 4, 2, 2);
    f.write(TRAIN_LABELS, &label_file(6));
    let err = f.open_err(1);
    assert_eq!(
        err,
        Error::CountMismatch {
            images: f.file(TRAIN_IMAGES),
            labels: f.file(TRAIN_LABELS),
            image_count: 5,
            label_count: 6
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains(TRAIN_IMAGES) && msg.contains("5 images") && msg.contains("6 labels"),
        "{msg}"
    );

    let f = Fixture::new(5, 4, 2, 2);
    f.write(TEST_IMAGES, &image_file(3, 2, 2));
    assert!(matches!(
        f.open_err(1),
        Error::CountMismatch {
            image_count: 3,
            label_count: 4,
            ..
        }
    ));
}

#[test]
fn labels_out_of_range() {
    let f = Fixture::new(30, 5, 2, 2);
    let mut labels = label_file(30);
    labels[8 + 27] = 12; // validation item 2 (file index 27)
    labels[8 + 29] = 200;
    f.write(TRAIN_LABELS, &labels);
    let mnist = f.open(5, LoadMode::Mmap).unwrap();

    mnist.training().check_labels(10).unwrap();
    mnist.test().check_labels(10).unwrap();
    let err = mnist.validation().check_labels(10).unwrap_err();
    assert_eq!(
        err,
        Error::LabelOutOfRange {
            path: f.file(TRAIN_LABELS),
            index: 27,
            label: 12,
            classes: 10
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains(TRAIN_LABELS)
            && msg.contains("label 12")
            && msg.contains("index 27")
            && msg.contains("10 classes"),
        "{msg}"
    );
    assert_eq!(mnist.check_labels(10), Err(err));
    mnist.validation().check_labels(201).unwrap();

    // The output layer decides: 5 classes reject the 5..=9 of the synthetic labels.
    assert_eq!(
        mnist.training().check_labels(5),
        Err(Error::LabelOutOfRange {
            path: f.file(TRAIN_LABELS),
            index: 5,
            label: 5,
            classes: 5
        })
    );
    assert!(mnist.test().check_labels(0).is_err());
}

#[test]
fn dataset_open_and_get() {
    let f = Fixture::new(10, 1, 3, 3);
    for load in MODES {
        let d = Dataset::open(f.file(TRAIN_IMAGES), f.file(TRAIN_LABELS), load).unwrap();
        assert_eq!((d.len(), d.file_range()), (10, 0..10));
        let sub = d.get(2..7).unwrap();
        assert_eq!((sub.len(), sub.file_range()), (5, 2..7));
        assert_eq!(sub.image(0), d.image(2));
        let subsub = sub.get(1..3).unwrap();
        assert_eq!(subsub.file_range(), 3..5);
        assert_eq!(subsub.label(1), label(4));
        assert!(sub.get(0..6).is_none());
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = sub.get(3..2);
        assert!(reversed.is_none());
        assert!(d.get(10..10).unwrap().is_empty());
        let debug = format!("{sub:?}");
        assert!(debug.contains("range: 2..7"), "{debug}");
    }
    let err = Dataset::open(f.file("nope"), f.file(TRAIN_LABELS), LoadMode::Mmap).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Io {
                kind: ErrorKind::NotFound,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
#[should_panic]
fn image_index_past_the_view_panics() {
    let f = Fixture::new(10, 1, 2, 2);
    let mnist = f.open(4, LoadMode::Mmap).unwrap();
    // Item 6 exists in the file (as validation item 0), but not in the training view.
    mnist.training().image(6);
}

#[test]
fn pixel_values_are_exact_quotients() {
    for p in 0..=255u8 {
        assert_eq!(pixel_value(p).to_bits(), (p as f32 / 255.0).to_bits());
        // The f32 nearest to p / 255, whose f64 quotient is far more precise.
        let exact = p as f64 / 255.0;
        let v = pixel_value(p);
        let next = f32::from_bits(v.to_bits() + 1);
        let prev = if p == 0 {
            0.0
        } else {
            f32::from_bits(v.to_bits() - 1)
        };
        assert!((v as f64 - exact).abs() <= (next as f64 - exact).abs());
        assert!((v as f64 - exact).abs() <= (prev as f64 - exact).abs());
    }
    assert_eq!(pixel_value(0), 0.0);
    assert_eq!(pixel_value(255), 1.0);
}

#[test]
fn gather_writes_pixels_over_255_and_labels() {
    let f = Fixture::new(40, 3, 5, 3);
    let mnist = f.open(10, LoadMode::Mmap).unwrap();
    for d in [mnist.training(), mnist.validation()] {
        let size = d.input_size();
        let indices = [7, 0, 7, 9, 3];
        let mut x = vec![f32::NAN; indices.len() * size];
        let mut y = vec![255u8; indices.len()];
        gather(d, &indices, &mut x, &mut y).unwrap();
        for (r, &i) in indices.iter().enumerate() {
            let file_i = d.file_range().start + i;
            for j in 0..size {
                let expect = pixel(file_i, j) as f32 / 255.0;
                assert_eq!(
                    x[r * size + j].to_bits(),
                    expect.to_bits(),
                    "row {r} col {j}"
                );
            }
            assert_eq!(y[r], label(file_i));
        }

        // gather_range agrees with gather over the same consecutive indices.
        let mut xr = vec![0.0; 4 * size];
        let mut yr = vec![0; 4];
        gather_range(d, 3..7, &mut xr, &mut yr).unwrap();
        let (mut xg, mut yg) = (xr.clone(), yr.clone());
        gather(d, &[3, 4, 5, 6], &mut xg, &mut yg).unwrap();
        assert_eq!((xr, yr), (xg, yg));
    }
    // Every byte value converts exactly (the synthetic pixels take all 256 values).
    let train = mnist.training();
    let all: Vec<usize> = (0..train.len()).collect();
    let mut x = vec![0.0; all.len() * train.input_size()];
    let mut y = vec![0; all.len()];
    gather(train, &all, &mut x, &mut y).unwrap();
    for (v, &p) in x.iter().zip(train.pixels()) {
        assert_eq!(v.to_bits(), (p as f32 / 255.0).to_bits());
    }
    assert_eq!(y, train.labels());
    // An empty batch is fine.
    gather(train, &[], &mut [], &mut []).unwrap();
    gather_range(train, 5..5, &mut [], &mut []).unwrap();

    // Prefetching is only a hint: any indices, no effect on the data.
    let before = train.pixels().to_vec();
    prefetch(train, &[0, 29, 29, 30, 1_000_000, usize::MAX]);
    prefetch(train, &[]);
    assert_eq!(train.pixels(), &before[..]);
}

#[test]
fn gather_checks_before_writing() {
    let f = Fixture::new(12, 3, 2, 3);
    let mnist = f.open(2, LoadMode::Read).unwrap();
    let d = mnist.training(); // 10 images of 6 pixels
    let path = f.file(TRAIN_IMAGES);
    let mut x = vec![-1.0f32; 3 * 6];
    let mut y = vec![99u8; 3];

    assert_eq!(
        gather(d, &[0, 1], &mut x, &mut y[..2]),
        Err(Error::BatchBufferMismatch {
            buffer: "pixel",
            expected: 12,
            actual: 18
        })
    );
    assert_eq!(
        gather(d, &[0, 1, 2], &mut x, &mut y[..2]),
        Err(Error::BatchBufferMismatch {
            buffer: "label",
            expected: 3,
            actual: 2
        })
    );
    // Index 10 is in the file (validation) but not in the training view.
    let err = gather(d, &[0, 10, 11], &mut x, &mut y).unwrap_err();
    assert_eq!(
        err,
        Error::BatchIndexOutOfRange {
            path: path.clone(),
            index: 10,
            len: 10
        }
    );
    assert!(err.to_string().contains(TRAIN_IMAGES), "{err}");
    assert_eq!(
        gather_range(d, 8..11, &mut x, &mut y),
        Err(Error::BatchIndexOutOfRange {
            path: path.clone(),
            index: 10,
            len: 10
        })
    );
    assert_eq!(
        gather_range(d, 12..15, &mut x, &mut y),
        Err(Error::BatchIndexOutOfRange {
            path,
            index: 12,
            len: 10
        })
    );
    assert!(gather_range(d, 0..2, &mut x, &mut y).is_err());
    // Nothing was written by any of the failed calls.
    assert!(x.iter().all(|&v| v == -1.0));
    assert!(y.iter().all(|&v| v == 99));
}

#[test]
fn datasets_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Dataset>();
    assert_send_sync::<Mnist>();

    let f = Fixture::new(8, 2, 2, 2);
    let mnist = f.open(2, LoadMode::Mmap).unwrap();
    let train = mnist.training().clone();
    drop(mnist);
    let sums: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let d = train.clone();
                s.spawn(move || (t..d.len()).step_by(2).map(|i| d.image(i)[0] as u64).sum())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total: u64 = (0..6).map(|i| pixel(i, 0) as u64).sum();
    assert_eq!(sums.iter().sum::<u64>(), total);
}

// ----------------------------------------------------------------------------------------
// Real MNIST, when MNIST_DIR says where it is.

#[test]
fn real_mnist_split_and_labels() {
    let Some(dir) = common::mnist_dir("real_mnist_split_and_labels") else {
        return;
    };
    let raw_images = fs::read(dir.join(TRAIN_IMAGES)).unwrap();
    let raw_labels = fs::read(dir.join(TRAIN_LABELS)).unwrap();
    for load in MODES {
        let mnist = Mnist::open(
            &dir,
            &MnistOptions {
                validation_size: 10_000,
                load,
            },
        )
        .unwrap();
        let (train, valid, test) = (mnist.training(), mnist.validation(), mnist.test());
        assert_eq!(
            (train.len(), valid.len(), test.len()),
            (50_000, 10_000, 10_000)
        );
        for d in [train, valid, test] {
            assert_eq!((d.rows(), d.cols(), d.input_size()), (28, 28, 784));
            d.check_input_size(784).unwrap();
        }
        mnist.check_labels(10).unwrap();
        assert!(matches!(
            train.check_labels(9),
            Err(Error::LabelOutOfRange { label: 9, .. })
        ));

        // The first training label of MNIST is 5, the first test label 7.
        assert_eq!(train.label(0), 5);
        assert_eq!(test.label(0), 7);
        assert_eq!(&train.labels()[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
        assert_eq!(&test.labels()[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);

        // Validation is the last 10,000 images of the training file.
        assert_eq!(valid.file_range(), 50_000..60_000);
        assert_eq!(valid.pixels(), &raw_images[16 + 50_000 * 784..]);
        assert_eq!(valid.labels(), &raw_labels[8 + 50_000..]);
        assert_eq!(
            valid.image(0),
            &raw_images[16 + 50_000 * 784..16 + 50_001 * 784]
        );
        assert_eq!(train.pixels(), &raw_images[16..16 + 50_000 * 784]);

        // The first training image, a 5: its top rows are blank and its peak is 255.
        let first = train.image(0);
        assert!(first[..4 * 28].iter().all(|&p| p == 0));
        assert_eq!(first.iter().max(), Some(&255));

        // A gathered mini-batch from the end of validation.
        let indices = [9_999, 0];
        let mut x = vec![0.0; 2 * 784];
        let mut y = [0; 2];
        gather(valid, &indices, &mut x, &mut y).unwrap();
        assert_eq!(y, [raw_labels[8 + 59_999], raw_labels[8 + 50_000]]);
        for (j, &v) in x[..784].iter().enumerate() {
            assert_eq!(v, raw_images[16 + 59_999 * 784 + j] as f32 / 255.0);
        }
    }
}

#[test]
fn real_mnist_other_validation_sizes() {
    let Some(dir) = common::mnist_dir("real_mnist_other_validation_sizes") else {
        return;
    };
    let open = |v| {
        Mnist::open(
            &dir,
            &MnistOptions {
                validation_size: v,
                load: LoadMode::Mmap,
            },
        )
    };
    let m = open(0).unwrap();
    assert_eq!((m.training().len(), m.validation().len()), (60_000, 0));
    let m = open(60_000).unwrap();
    assert_eq!((m.training().len(), m.validation().len()), (0, 60_000));
    let err = open(60_001).unwrap_err();
    assert!(matches!(err, Error::BadOption { .. }), "{err:?}");
    assert!(err.to_string().contains("60000 images"), "{err}");
}
