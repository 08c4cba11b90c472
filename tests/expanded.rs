//! The expanded training data (`simdnet::data::expand`): every example against a plain
//! pixel-by-pixel shift written here, on synthetic IDX files of several shapes and on real
//! MNIST when it is available; the errors, which are `Dataset`'s; training on it equals
//! training on the same examples written out in memory (so n in the L2 decay is 5x); and
//! `train --expand`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::idx;
use simdnet::Error;
use simdnet::data::expand::{COPIES, Expanded, Shift};
use simdnet::data::mnist::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use simdnet::data::{Dataset, LoadMode, Mnist, MnistOptions};
use simdnet::network::{Cost, Examples, FloatExamples, Init, Monitor, Network, SgdConfig, sgd};
use tempfile::TempDir;

/// A deterministic byte stream (an LCG's high bits).
fn bytes(count: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

/// Example `index` of the expansion, computed the plain way: image `index / 5`, variant
/// `index % 5` (0 the image, 1 up, 2 down, 3 left, 4 right), pixel by pixel, each byte as
/// `p / 255` and a pixel from outside the image as 0.
fn naive(pixels: &[u8], rows: usize, cols: usize, index: usize) -> Vec<f32> {
    let image = &pixels[index / 5 * rows * cols..(index / 5 + 1) * rows * cols];
    // Where output pixel (r, c) comes from: (r + dr, c + dc).
    let (dr, dc): (isize, isize) = match index % 5 {
        0 => (0, 0),
        1 => (1, 0),  // up: row r shows row r + 1
        2 => (-1, 0), // down: row r shows row r - 1
        3 => (0, 1),  // left: column c shows column c + 1
        4 => (0, -1), // right: column c shows column c - 1
        _ => unreachable!(),
    };
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows as isize {
        for c in 0..cols as isize {
            let (sr, sc) = (r + dr, c + dc);
            let inside = (0..rows as isize).contains(&sr) && (0..cols as isize).contains(&sc);
            out.push(if inside {
                f32::from(image[sr as usize * cols + sc as usize]) / 255.0
            } else {
                0.0
            });
        }
    }
    out
}

/// A synthetic image file and label file of `count` `rows x cols` images in a temporary
/// directory. Pixels are never 0, so a missed zero fill shows.
struct Synthetic {
    _dir: TempDir,
    images: PathBuf,
    labels: PathBuf,
    pixels: Vec<u8>,
    label_bytes: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl Synthetic {
    fn new(count: usize, rows: usize, cols: usize, seed: u64) -> Synthetic {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let pixels: Vec<u8> = bytes(count * rows * cols, seed)
            .into_iter()
            .map(|p| p.max(1))
            .collect();
        let label_bytes: Vec<u8> = bytes(count, seed + 1).iter().map(|b| b % 10).collect();
        let images = dir.path().join("images");
        let labels = dir.path().join("labels");
        let dims = [count as u32, rows as u32, cols as u32];
        fs::write(&images, idx(0x08, &dims, &pixels)).unwrap();
        fs::write(&labels, idx(0x08, &[count as u32], &label_bytes)).unwrap();
        Synthetic {
            _dir: dir,
            images,
            labels,
            pixels,
            label_bytes,
            rows,
            cols,
        }
    }

    fn open(&self) -> Dataset {
        Dataset::open(&self.images, &self.labels, LoadMode::Mmap).expect("open the dataset")
    }

    fn expected(&self, indices: &[usize]) -> (Vec<f32>, Vec<u8>) {
        let inputs = indices
            .iter()
            .flat_map(|&i| naive(&self.pixels, self.rows, self.cols, i))
            .collect();
        let labels = indices.iter().map(|&i| self.label_bytes[i / 5]).collect();
        (inputs, labels)
    }
}

/// Gathers `indices` from `examples` into fresh buffers.
fn gather(examples: &dyn Examples, indices: &[usize]) -> (Vec<f32>, Vec<u8>) {
    let mut inputs = vec![f32::NAN; indices.len() * examples.input_size()];
    let mut labels = vec![u8::MAX; indices.len()];
    examples
        .gather(indices, &mut inputs, &mut labels)
        .expect("gather");
    (inputs, labels)
}

fn gather_range(examples: &dyn Examples, range: std::ops::Range<usize>) -> (Vec<f32>, Vec<u8>) {
    let mut inputs = vec![f32::NAN; range.len() * examples.input_size()];
    let mut labels = vec![u8::MAX; range.len()];
    examples
        .gather_range(range, &mut inputs, &mut labels)
        .expect("gather_range");
    (inputs, labels)
}

/// Asserts two gathered batches are bitwise equal, naming the first differing pixel.
fn assert_same(
    actual: &(Vec<f32>, Vec<u8>),
    expected: &(Vec<f32>, Vec<u8>),
    size: usize,
    what: &str,
) {
    assert_eq!(actual.0.len(), expected.0.len(), "{what}: pixel count");
    for (k, (a, e)) in actual.0.iter().zip(&expected.0).enumerate() {
        assert_eq!(
            a.to_bits(),
            e.to_bits(),
            "{what}: row {}, pixel {}: {a} != {e}",
            k / size,
            k % size
        );
    }
    assert_eq!(actual.1, expected.1, "{what}: labels");
}

/// The shapes tested: square, wide, tall, a single row, a single column, a single pixel.
const SHAPES: [(usize, usize); 7] = [(5, 5), (3, 7), (7, 3), (1, 6), (6, 1), (1, 1), (28, 28)];

#[test]
fn every_example_is_the_plain_shift() {
    for (s, &(rows, cols)) in SHAPES.iter().enumerate() {
        let count = 6;
        let syn = Synthetic::new(count, rows, cols, 10 + s as u64);
        let data = syn.open();
        let ex = Expanded::new(&data).unwrap();
        let what = format!("{rows}x{cols}");
        assert_eq!(ex.len(), 5 * count, "{what}");
        assert_eq!(Examples::len(&ex), COPIES * data.len(), "{what}");
        assert_eq!(ex.input_size(), rows * cols, "{what}");
        let all: Vec<usize> = (0..ex.len()).collect();
        assert_same(&gather(&ex, &all), &syn.expected(&all), rows * cols, &what);
        // One at a time too.
        for i in 0..ex.len() {
            assert_same(&gather(&ex, &[i]), &syn.expected(&[i]), rows * cols, &what);
            assert_eq!(
                ex.locate(i),
                Some((i / 5, Shift::ALL[i % 5])),
                "{what}: example {i}"
            );
        }
        assert_eq!(ex.locate(ex.len()), None);
    }
}

#[test]
fn variants_are_in_the_documented_order() {
    assert_eq!(
        Shift::ALL,
        [
            Shift::Original,
            Shift::Up,
            Shift::Down,
            Shift::Left,
            Shift::Right
        ]
    );
    // A 3x3 image 1..=9: each shift by hand.
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = (dir.path().join("i"), dir.path().join("l"));
    let pixels: Vec<u8> = (1..=9).collect();
    fs::write(&images, idx(0x08, &[1, 3, 3], &pixels)).unwrap();
    fs::write(&labels, idx(0x08, &[1], &[7])).unwrap();
    let data = Dataset::open(&images, &labels, LoadMode::Read).unwrap();
    let ex = Expanded::new(&data).unwrap();
    let expected: [[u8; 9]; 5] = [
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
        [4, 5, 6, 7, 8, 9, 0, 0, 0], // up
        [0, 0, 0, 1, 2, 3, 4, 5, 6], // down
        [2, 3, 0, 5, 6, 0, 8, 9, 0], // left
        [0, 1, 2, 0, 4, 5, 0, 7, 8], // right
    ];
    for (v, want) in expected.iter().enumerate() {
        let (x, y) = gather(&ex, &[v]);
        let want: Vec<f32> = want.iter().map(|&p| f32::from(p) / 255.0).collect();
        assert_eq!(x, want, "variant {v}");
        assert_eq!(y, [7]);
    }
}

#[test]
fn the_original_is_the_dataset_s_own_gather() {
    let syn = Synthetic::new(9, 4, 6, 3);
    let data = syn.open();
    let ex = Expanded::new(&data).unwrap();
    let images: Vec<usize> = vec![8, 0, 3, 3, 5];
    let originals: Vec<usize> = images.iter().map(|i| i * 5).collect();
    assert_same(
        &gather(&ex, &originals),
        &gather(&data, &images),
        24,
        "variant 0",
    );
}

#[test]
fn arbitrary_index_lists_and_ranges() {
    let syn = Synthetic::new(11, 5, 4, 7);
    let data = syn.open();
    let ex = Expanded::new(&data).unwrap();
    let n = ex.len();
    let size = ex.input_size();
    let lists: Vec<Vec<usize>> = vec![
        vec![],
        vec![n - 1],
        vec![3, 3, 3],
        vec![n - 1, 0, 17, 17, 2, 54, 1, 5, 4, 6],
        (0..n).rev().collect(),
        (0..3 * n).map(|k| (k * 37 + 11) % n).collect(),
    ];
    for indices in &lists {
        assert_same(
            &gather(&ex, indices),
            &syn.expected(indices),
            size,
            &format!("indices {indices:?}"),
        );
        // The prefetch hint changes nothing and ignores indices out of range.
        let mut hinted = indices.clone();
        hinted.push(n);
        hinted.push(usize::MAX);
        ex.prefetch(&hinted);
    }
    for range in [0..0, 0..n, 0..1, n - 1..n, 3..17, 12..13, 20..50, n..n] {
        let indices: Vec<usize> = range.clone().collect();
        assert_same(
            &gather_range(&ex, range.clone()),
            &syn.expected(&indices),
            size,
            &format!("range {range:?}"),
        );
    }
    // Buffers reused across batches: a gather overwrites every value.
    let mut inputs = vec![f32::NAN; 3 * size];
    let mut labels = vec![0u8; 3];
    for batch in [[1, 2, 3], [54, 0, 9], [9, 9, 9]] {
        ex.gather(&batch, &mut inputs, &mut labels).unwrap();
        assert_same(
            &(inputs.clone(), labels.clone()),
            &syn.expected(&batch),
            size,
            "reused buffers",
        );
    }
}

#[test]
fn labels_repeat_five_times() {
    let syn = Synthetic::new(13, 2, 3, 21);
    let data = syn.open();
    let ex = Expanded::new(&data).unwrap();
    let (_, labels) = gather_range(&ex, 0..ex.len());
    let want: Vec<u8> = syn.label_bytes.iter().flat_map(|&l| [l; 5]).collect();
    assert_eq!(labels, want);
    assert!(ex.check_labels(10).is_ok());
    assert!(matches!(
        ex.check_labels(1),
        Err(Error::LabelOutOfRange { .. })
    ));
    assert!(ex.check_input_size(6).is_ok());
    assert!(matches!(
        ex.check_input_size(7),
        Err(Error::InputSizeMismatch { .. })
    ));
    let source = ex.source();
    assert!(source.contains(&*syn.images.to_string_lossy()), "{source}");
    assert!(source.contains("expanded"), "{source}");
    assert_eq!(ex.dataset().len(), 13);
}

#[test]
fn empty_dataset_expands_to_nothing() {
    let syn = Synthetic::new(0, 3, 3, 1);
    let data = syn.open();
    let ex = Expanded::new(&data).unwrap();
    assert!(ex.is_empty());
    assert_eq!(gather(&ex, &[]).0.len(), 0);
    assert_eq!(gather_range(&ex, 0..0).0.len(), 0);
}

/// The error's variant and fields, with the path checked separately.
fn out_of_range(err: Error) -> (PathBuf, usize, usize) {
    match err {
        Error::BatchIndexOutOfRange { path, index, len } => (path, index, len),
        other => panic!("expected BatchIndexOutOfRange, got {other:?}"),
    }
}

fn buffer_mismatch(err: Error) -> (&'static str, usize, usize) {
    match err {
        Error::BatchBufferMismatch {
            buffer,
            expected,
            actual,
        } => (buffer, expected, actual),
        other => panic!("expected BatchBufferMismatch, got {other:?}"),
    }
}

#[test]
fn errors_are_the_dataset_s_and_write_nothing() {
    let syn = Synthetic::new(4, 3, 2, 5);
    let data = syn.open();
    let ex = Expanded::new(&data).unwrap();
    let (n, size) = (ex.len(), ex.input_size());
    assert_eq!(n, 20);
    let sentinel = -7.0f32;

    // Index out of range: the first bad one, with the expanded length.
    let mut inputs = vec![sentinel; 3 * size];
    let mut labels = vec![99u8; 3];
    for (indices, bad) in [
        ([0, n, 1], n),
        ([n + 5, usize::MAX, 0], n + 5),
        ([1, 2, usize::MAX], usize::MAX),
    ] {
        let err = ex.gather(&indices, &mut inputs, &mut labels).unwrap_err();
        assert_eq!(out_of_range(err), (syn.images.clone(), bad, n));
    }
    // Dataset gives the same error, with its own length.
    let err = data
        .gather(&[0, 4, 1], &mut inputs, &mut labels)
        .unwrap_err();
    assert_eq!(out_of_range(err), (syn.images.clone(), 4, 4));

    // Ranges past the end, or backwards: the first index out of bounds (the length, for a
    // backwards range), as Dataset reports for its own.
    let ranges = |len: usize| {
        [
            (0..len + 1, len),
            (len..len + 1, len),
            (len + 3..len + 6, len + 3),
            (std::ops::Range { start: 3, end: 2 }, len), // backwards
        ]
    };
    for (examples, len) in [(&ex as &dyn Examples, n), (&data, 4)] {
        for (range, bad) in ranges(len) {
            let mut inputs = vec![sentinel; range.len() * size];
            let mut labels = vec![99u8; range.len()];
            let err = examples
                .gather_range(range.clone(), &mut inputs, &mut labels)
                .unwrap_err();
            assert_eq!(
                out_of_range(err),
                (syn.images.clone(), bad, len),
                "{range:?} of {len}"
            );
        }
    }

    // Wrong buffer sizes, pixel buffer checked first.
    let cases: [(usize, usize, (&str, usize, usize)); 4] = [
        (3 * size - 1, 3, ("pixel", 3 * size, 3 * size - 1)),
        (3 * size + 1, 3, ("pixel", 3 * size, 3 * size + 1)),
        (3 * size, 2, ("label", 3, 2)),
        (0, 4, ("pixel", 3 * size, 0)),
    ];
    for (pixels, label_count, want) in cases {
        let mut inputs = vec![sentinel; pixels];
        let mut labels = vec![99u8; label_count];
        let err = ex.gather(&[0, 1, 2], &mut inputs, &mut labels).unwrap_err();
        assert_eq!(buffer_mismatch(err), want);
        let same = data
            .gather(&[0, 1, 2], &mut inputs, &mut labels)
            .unwrap_err();
        assert_eq!(buffer_mismatch(same), want, "Dataset's error");
        let err = ex.gather_range(2..5, &mut inputs, &mut labels).unwrap_err();
        assert_eq!(buffer_mismatch(err), want);
        assert!(inputs.iter().all(|&x| x == sentinel));
        assert!(labels.iter().all(|&l| l == 99));
    }
    // An out-of-range index with wrong buffers: the buffers are reported, as by Dataset.
    let mut inputs = vec![sentinel; 1];
    let mut labels = vec![99u8; 1];
    let err = ex.gather(&[n], &mut inputs, &mut labels).unwrap_err();
    assert_eq!(buffer_mismatch(err), ("pixel", size, 1));
    // Nothing was written by any failed call.
    assert!(inputs.iter().all(|&x| x == sentinel));
    assert!(labels.iter().all(|&l| l == 99));
}

#[test]
fn real_mnist_images() {
    let Some(dir) = common::mnist_dir("real_mnist_images") else {
        return;
    };
    let mnist = Mnist::open(&dir, &MnistOptions::default()).expect("open MNIST");
    let training = mnist.training();
    let ex = Expanded::new(training).unwrap();
    assert_eq!(ex.len(), 5 * training.len());
    let (rows, cols) = (training.rows(), training.cols());
    let last = ex.len() - 1;
    let indices: Vec<usize> = [
        0,
        1,
        2,
        3,
        4,
        5,
        9,
        12_345 * 5 + 3,
        31_337 * 5 + 4,
        777 * 5 + 1,
        778 * 5 + 2,
        last,
        0,
    ]
    .into_iter()
    .filter(|&i| i <= last)
    .collect();
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for &i in &indices {
        pixels.push(naive(training.image(i / 5), rows, cols, i % 5));
        labels.push(training.label(i / 5));
    }
    let expected = (pixels.concat(), labels);
    assert_same(&gather(&ex, &indices), &expected, rows * cols, "real MNIST");
    // The shifts of a real digit differ from it (its ink does not touch the edges).
    let (x, _) = gather_range(&ex, 0..5);
    let size = rows * cols;
    for v in 1..5 {
        assert_ne!(x[..size], x[v * size..(v + 1) * size], "variant {v}");
        let ink = |img: &[f32]| img.iter().map(|&p| f64::from(p)).sum::<f64>();
        assert!((ink(&x[..size]) - ink(&x[v * size..(v + 1) * size])).abs() < 1e-3);
    }
    let range = 5 * 49_990..5 * 49_990 + 23;
    let indices: Vec<usize> = range.clone().collect();
    let mut pixels = Vec::new();
    for &i in &indices {
        pixels.push(naive(training.image(i / 5), rows, cols, i % 5));
    }
    let labels = indices.iter().map(|&i| training.label(i / 5)).collect();
    assert_same(
        &gather_range(&ex, range),
        &(pixels.concat(), labels),
        size,
        "real range",
    );
}

/// Training on the expansion is training on the same examples written out in memory: the
/// same network, bit for bit, shuffled or not (so the order, the labels and n = 5 * images in
/// the L2 decay are the same).
#[test]
fn sgd_on_the_expansion_equals_sgd_on_it_in_memory() {
    let syn = Synthetic::new(24, 4, 4, 99);
    let data = syn.open();
    let ex = Expanded::new(&data).unwrap();
    let all: Vec<usize> = (0..ex.len()).collect();
    let (inputs, labels) = syn.expected(&all);
    let memory = FloatExamples::new(&inputs, &labels, 16).unwrap();
    for shuffle in [true, false] {
        let config = SgdConfig {
            epochs: 2,
            mini_batch_size: 7,
            eta: 0.3,
            lambda: 2.0,
            shuffle,
            seed: 5,
            monitor: Monitor {
                training_accuracy: true,
                training_cost: true,
                ..Monitor::default()
            },
            ..SgdConfig::default()
        };
        let mut a = Network::new(&[16, 6, 10], Cost::CrossEntropy, Init::Default, 1).unwrap();
        let mut b = a.clone();
        let sa = sgd(&mut a, &ex, None, &config, &mut ()).unwrap();
        let sb = sgd(&mut b, &memory, None, &config, &mut ()).unwrap();
        assert!(a == b, "shuffle {shuffle}: the networks differ");
        for (ra, rb) in sa.epochs.iter().zip(&sb.epochs) {
            assert_eq!(ra.training_accuracy, rb.training_accuracy);
            assert_eq!(ra.training_cost, rb.training_cost);
            assert_eq!(ra.training_accuracy.unwrap().total, 5 * 24);
        }
        // And not what training on the images alone gives.
        let mut c = Network::new(&[16, 6, 10], Cost::CrossEntropy, Init::Default, 1).unwrap();
        sgd(&mut c, &data, None, &config, &mut ()).unwrap();
        assert!(a != c);
    }
}

// ---- `train --expand` ------------------------------------------------------------------

const TRAINING_IMAGES: usize = 60;
const TEST_COUNT: usize = 30;
const SIDE: usize = 4;

/// `count` 4x4 images, 4 classes (the bright quadrant), as in tests/train_cli.rs.
fn quadrants(count: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let noise = bytes(count * (SIDE * SIDE + 1), seed);
    let mut pixels = Vec::with_capacity(count * SIDE * SIDE);
    let mut labels = Vec::with_capacity(count);
    for k in 0..count {
        let n = &noise[k * (SIDE * SIDE + 1)..(k + 1) * (SIDE * SIDE + 1)];
        let label = usize::from(n[0] % 4);
        for r in 0..SIDE {
            for c in 0..SIDE {
                let p = n[1 + r * SIDE + c];
                let bright = (r / 2) * 2 + c / 2 == label;
                pixels.push(if bright { 160 + p % 96 } else { p % 100 });
            }
        }
        labels.push(label as u8);
    }
    (pixels, labels)
}

/// A temporary directory holding a synthetic MNIST directory `mnist/`.
fn fixture() -> TempDir {
    let root = tempfile::tempdir().expect("create a temporary directory");
    let data = root.path().join("mnist");
    fs::create_dir(&data).unwrap();
    let side = SIDE as u32;
    let (train_pixels, train_labels) = quadrants(TRAINING_IMAGES, 1);
    let (test_pixels, test_labels) = quadrants(TEST_COUNT, 2);
    let write = |name: &str, bytes: Vec<u8>| fs::write(data.join(name), bytes).unwrap();
    write(
        TRAIN_IMAGES,
        idx(0x08, &[TRAINING_IMAGES as u32, side, side], &train_pixels),
    );
    write(
        TRAIN_LABELS,
        idx(0x08, &[TRAINING_IMAGES as u32], &train_labels),
    );
    write(
        TEST_IMAGES,
        idx(0x08, &[TEST_COUNT as u32, side, side], &test_pixels),
    );
    write(TEST_LABELS, idx(0x08, &[TEST_COUNT as u32], &test_labels));
    root
}

/// Runs the `train` binary in `dir` (through `SIMDNET_TEST_RUNNER` when set, as
/// tests/train_cli.rs does).
fn train(dir: &Path, args: &[&str]) -> Output {
    let exe = env!("CARGO_BIN_EXE_train");
    let mut cmd = match std::env::var("SIMDNET_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut cmd = Command::new(words.next().unwrap());
            cmd.args(words).arg(exe);
            cmd
        }
        _ => Command::new(exe),
    };
    cmd.args(args)
        .current_dir(dir)
        .env_remove("MNIST_DIR")
        .env_remove("RAYON_NUM_THREADS")
        .output()
        .expect("run the train binary")
}

fn success(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{what}: exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status.code()
    );
    stdout
}

#[test]
fn train_expand_trains_on_five_times_the_images() {
    let fx = fixture();
    let common = [
        "--data",
        "mnist",
        "--sizes",
        "16,8,4",
        "--epochs",
        "2",
        "--mini-batch-size",
        "5",
        "--validation-size",
        "10",
        "--monitor",
        "training-accuracy,evaluation-accuracy",
    ];
    let training = TRAINING_IMAGES - 10;

    let mut args = common.to_vec();
    args.extend(["--expand", "--save", "expanded.json"]);
    let text = success(&train(fx.path(), &args), "train --expand");
    let sets = text
        .lines()
        .find(|l| l.starts_with("Sets:"))
        .unwrap_or_else(|| panic!("no Sets line in:\n{text}"));
    assert!(
        sets.contains(&format!(
            "{} training ({training} images, each also shifted one pixel up, down, left and right)",
            5 * training
        )),
        "{sets}"
    );
    assert!(
        sets.contains("10 validation, 30 test images of 4x4"),
        "{sets}"
    );
    for epoch in 1..=2 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("Epoch {epoch}/2:")))
            .unwrap_or_else(|| panic!("no epoch {epoch} line in:\n{text}"));
        // Training accuracy over the expanded set, evaluation over the unexpanded test set.
        assert!(line.contains(&format!("/{} (", 5 * training)), "{line}");
        assert!(line.contains(&format!("/{TEST_COUNT} (")), "{line}");
    }

    // Without --expand: the plain count, and a different network.
    let mut args = common.to_vec();
    args.extend(["--save", "plain.json"]);
    let text = success(&train(fx.path(), &args), "train");
    assert!(
        text.contains(&format!("Sets:        {training} training, 10 validation")),
        "{text}"
    );
    assert!(text.contains(&format!("/{training} (")), "{text}");
    let expanded = Network::load(fx.path().join("expanded.json")).unwrap();
    let plain = Network::load(fx.path().join("plain.json")).unwrap();
    assert!(expanded != plain);

    // Evaluating on the validation set: not expanded either.
    let mut args = common.to_vec();
    args.extend(["--expand", "--evaluation", "validation"]);
    let text = success(
        &train(fx.path(), &args),
        "train --expand --evaluation validation",
    );
    assert!(text.contains("/10 ("), "{text}");
}

#[test]
fn train_help_documents_expand() {
    let out = train(Path::new("."), &["--help"]);
    let text = success(&out, "train --help");
    assert!(text.contains("--expand"), "{text}");
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(
            "plus each image shifted one pixel up, down, left and right (5x the images, generated \
             on the fly)"
        ),
        "{text}"
    );
}
