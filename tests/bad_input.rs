//! The README's "Bad input" table, row by row: every bad input a user can give the `train`
//! binary (and, through it, the library's loaders), run as a subprocess against crafted files
//! in a temporary directory. Each test asserts the exit status (1 runtime, 2 usage), that
//! stderr is `error: <message>` with the table's text and the offending file, and that nothing
//! panicked. Rows about the data files run twice, memory-mapped and with `--no-mmap`, and must
//! print the same error both ways; `no_mmap_trains_the_same_network` checks that `--no-mmap`
//! changes nothing else.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::idx;
use simdnet::data::mnist::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use tempfile::TempDir;

/// Exit status of runtime errors (files, divergence).
const RUNTIME: i32 = 1;
/// Exit status of usage and configuration errors.
const USAGE: i32 = 2;

const TRAINING_IMAGES: usize = 120;
const TEST_COUNT: usize = 30;
const SIDE: usize = 4;

/// `count` 4x4 images of 4 classes (the bright quadrant) and their labels.
fn synthetic(count: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = move |modulus: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % modulus
    };
    let mut pixels = Vec::with_capacity(count * SIDE * SIDE);
    let mut labels = Vec::with_capacity(count);
    for _ in 0..count {
        let label = next(4) as usize;
        for r in 0..SIDE {
            for c in 0..SIDE {
                let bright = (r / 2) * 2 + c / 2 == label;
                pixels.push(if bright { 150 + next(100) } else { next(90) } as u8);
            }
        }
        labels.push(label as u8);
    }
    (pixels, labels)
}

/// A temporary working directory with a synthetic MNIST directory `mnist/` in it.
struct Fixture {
    root: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir().expect("create a temporary directory");
        fs::create_dir(root.path().join("mnist")).expect("create the data directory");
        let fx = Fixture { root };
        let side = SIDE as u32;
        let (pixels, labels) = synthetic(TRAINING_IMAGES, 1);
        let n = TRAINING_IMAGES as u32;
        fx.write_data(TRAIN_IMAGES, &idx(0x08, &[n, side, side], &pixels));
        fx.write_data(TRAIN_LABELS, &idx(0x08, &[n], &labels));
        let (pixels, labels) = synthetic(TEST_COUNT, 2);
        let n = TEST_COUNT as u32;
        fx.write_data(TEST_IMAGES, &idx(0x08, &[n, side, side], &pixels));
        fx.write_data(TEST_LABELS, &idx(0x08, &[n], &labels));
        fx
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn data(&self, name: &str) -> PathBuf {
        self.path("mnist").join(name)
    }

    fn read_data(&self, name: &str) -> Vec<u8> {
        fs::read(self.data(name)).expect("read a fixture file")
    }

    fn write_data(&self, name: &str, bytes: &[u8]) {
        fs::write(self.data(name), bytes).expect("write a fixture file");
    }

    /// Writes a network2 JSON model to `name`.
    fn write_model(&self, name: &str, json: &str) {
        fs::write(self.path(name), json).expect("write a model file");
    }

    /// `train <args>`, completed with `--data mnist --validation-size 20 --mini-batch-size 5
    /// --epochs 1` and `--sizes 16,8,4` (unless `--load`) where `args` does not give them.
    fn args(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        for (flag, value) in [
            ("--data", "mnist"),
            ("--validation-size", "20"),
            ("--mini-batch-size", "5"),
            ("--epochs", "1"),
        ] {
            if !args.contains(&flag) {
                all.extend([flag.to_string(), value.to_string()]);
            }
        }
        if !args.contains(&"--sizes") && !args.contains(&"--load") {
            all.extend(["--sizes".to_string(), "16,8,4".to_string()]);
        }
        all
    }

    /// Runs `train` with [`Fixture::args`].
    fn train(&self, args: &[&str]) -> Output {
        self.run(train_command(), &self.args(args))
    }

    /// Runs `cmd` (the binary, perhaps wrapped) with `args` in the working directory.
    fn run(&self, mut cmd: Command, args: &[String]) -> Output {
        cmd.args(args)
            .current_dir(self.root.path())
            .env_remove("MNIST_DIR")
            .env_remove("RAYON_NUM_THREADS")
            .env_remove("SIMDNET_CACHE_DIR")
            .output()
            .expect("run the train binary")
    }
}

/// The `train` binary, through `SIMDNET_TEST_RUNNER` when set (CI's qemu job).
fn train_command() -> Command {
    let mut words = runner_words();
    if words.is_empty() {
        Command::new(env!("CARGO_BIN_EXE_train"))
    } else {
        let mut cmd = Command::new(words.remove(0));
        cmd.args(words).arg(env!("CARGO_BIN_EXE_train"));
        cmd
    }
}

/// The runner and its arguments, then the binary: the words that run `train`.
fn runner_words() -> Vec<String> {
    std::env::var("SIMDNET_TEST_RUNNER")
        .map(|r| r.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a clean failure: exit status `code`, stderr `error: ...` containing every one of
/// `needles`, no panic, and (`before_training`) no epoch run. Returns stderr.
fn assert_fails(out: &Output, code: i32, needles: &[&str], before_training: bool) -> String {
    let err = stderr(out);
    let context = format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{err}",
        out.status.code(),
        stdout(out)
    );
    assert!(!err.contains("panicked"), "a panic: {context}");
    assert_eq!(
        out.status.code(),
        Some(code),
        "wrong exit status: {context}"
    );
    assert!(err.starts_with("error: "), "not an error line: {context}");
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {context}");
    }
    if before_training {
        assert!(
            !stdout(out).contains("Epoch 1/"),
            "trained first: {context}"
        );
    }
    err
}

/// A bad-input row about the data files: the same failure memory-mapped and with
/// `--no-mmap`.
fn assert_data_fails(fx: &Fixture, args: &[&str], code: i32, needles: &[&str]) {
    let mapped = assert_fails(&fx.train(args), code, needles, true);
    let mut read = args.to_vec();
    read.push("--no-mmap");
    let copied = assert_fails(&fx.train(&read), code, needles, true);
    assert_eq!(mapped, copied, "--no-mmap changed the error");
}

fn data_path(name: &str) -> String {
    format!("mnist/{name}")
}

/// A network2 model of the given sizes, every weight `w`, every bias 0, as text.
fn model(sizes: &[usize], w: &str, cost: &str) -> String {
    let weights: Vec<String> = sizes
        .windows(2)
        .map(|p| {
            let row = format!("[{}]", vec![w; p[0]].join(", "));
            format!("[{}]", vec![row; p[1]].join(", "))
        })
        .collect();
    let biases: Vec<String> = sizes[1..]
        .iter()
        .map(|&n| format!("[{}]", vec!["[0.0]"; n].join(", ")))
        .collect();
    let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
    format!(
        "{{\"sizes\": [{}], \"weights\": [{}], \"biases\": [{}], \"cost\": \"{cost}\"}}",
        sizes.join(", "),
        weights.join(", "),
        biases.join(", ")
    )
}

// ---- The data directory and its files (exit status 1). ----

#[test]
fn missing_data_directory() {
    let fx = Fixture::new();
    assert_fails(
        &fx.train(&["--data", "no-such-dir"]),
        RUNTIME,
        &[
            "error: data directory no-such-dir does not exist",
            "run `train --download --data no-such-dir`",
        ],
        true,
    );
}

#[test]
fn data_path_is_a_file() {
    let fx = Fixture::new();
    fs::write(fx.path("plain"), "x").unwrap();
    assert_fails(
        &fx.train(&["--data", "plain"]),
        RUNTIME,
        &["cannot open the data directory plain: it is not a directory"],
        true,
    );
}

#[test]
fn missing_file() {
    let fx = Fixture::new();
    fs::remove_file(fx.data(TRAIN_LABELS)).unwrap();
    assert_data_fails(
        &fx,
        &[],
        RUNTIME,
        &[
            &format!(
                "{TRAIN_LABELS} (or {TRAIN_LABELS}.gz) is missing from the data directory mnist"
            ),
            "train --download --data mnist",
        ],
    );
}

#[test]
fn data_file_is_a_directory() {
    let fx = Fixture::new();
    fs::remove_file(fx.data(TEST_IMAGES)).unwrap();
    fs::create_dir(fx.data(TEST_IMAGES)).unwrap();
    let file = data_path(TEST_IMAGES);
    assert_data_fails(
        &fx,
        &[],
        RUNTIME,
        &[&format!("cannot load {file}: it is a directory")],
    );
}

#[test]
fn empty_idx_file() {
    let fx = Fixture::new();
    fx.write_data(TRAIN_IMAGES, b"");
    let msg = format!("{}: empty file", data_path(TRAIN_IMAGES));
    assert_data_fails(&fx, &[], RUNTIME, &[&msg]);
}

#[test]
fn truncated_idx_header() {
    let fx = Fixture::new();
    let bytes = fx.read_data(TRAIN_IMAGES);
    fx.write_data(TRAIN_IMAGES, &bytes[..10]);
    let msg = format!(
        "{}: truncated IDX header: the header needs 16 bytes, the file has 10",
        data_path(TRAIN_IMAGES)
    );
    assert_data_fails(&fx, &[], RUNTIME, &[&msg]);
}

#[test]
fn truncated_idx_file() {
    let fx = Fixture::new();
    let bytes = fx.read_data(TRAIN_IMAGES);
    fx.write_data(TRAIN_IMAGES, &bytes[..bytes.len() - 7]);
    let msg = format!(
        "{}: truncated IDX file: header says 120x4x4 = 1936 bytes with the 16-byte header, \
         file has 1929 bytes",
        data_path(TRAIN_IMAGES)
    );
    assert_data_fails(&fx, &[], RUNTIME, &[&msg]);
}

#[test]
fn idx_file_with_trailing_bytes() {
    let fx = Fixture::new();
    let mut bytes = fx.read_data(TEST_LABELS);
    bytes.extend_from_slice(b"xyz");
    fx.write_data(TEST_LABELS, &bytes);
    let msg = format!("{}: IDX file has 3 trailing bytes", data_path(TEST_LABELS));
    assert_data_fails(&fx, &[], RUNTIME, &[&msg]);
}

#[test]
fn wrong_magic() {
    let fx = Fixture::new();
    let mut bytes = fx.read_data(TRAIN_LABELS);
    bytes[..2].copy_from_slice(b"PK");
    fx.write_data(TRAIN_LABELS, &bytes);
    let msg = format!(
        "{}: not an IDX file: it starts with bytes 50 4b 08 01, but an IDX file starts with 00 00",
        data_path(TRAIN_LABELS)
    );
    assert_data_fails(&fx, &[], RUNTIME, &[&msg]);
}

#[test]
fn gzip_file_under_the_raw_name() {
    let fx = Fixture::new();
    let mut bytes = fx.read_data(TRAIN_IMAGES);
    bytes[..4].copy_from_slice(&[0x1f, 0x8b, 0x08, 0x00]);
    fx.write_data(TRAIN_IMAGES, &bytes);
    let msg = format!("{}: not an IDX file", data_path(TRAIN_IMAGES));
    assert_data_fails(
        &fx,
        &[],
        RUNTIME,
        &[&msg, "this looks like a gzip file: decompress it first"],
    );
}

#[test]
fn wrong_type_code() {
    let fx = Fixture::new();
    let mut bytes = fx.read_data(TRAIN_IMAGES);
    bytes[2] = 0x0d;
    fx.write_data(TRAIN_IMAGES, &bytes);
    let msg = format!(
        "{}: unsupported IDX element type 0x0d (32-bit float): only 0x08 (unsigned byte) is \
         supported",
        data_path(TRAIN_IMAGES)
    );
    assert_data_fails(&fx, &[], RUNTIME, &[&msg]);
}

#[test]
fn wrong_number_of_dimensions() {
    let fx = Fixture::new();
    // A label file (1 dimension) where the images (3) should be.
    let labels = fx.read_data(TRAIN_LABELS);
    fx.write_data(TRAIN_IMAGES, &labels);
    let msg = format!(
        "{}: expected an IDX file with 3 dimension(s) (an image file: count x rows x cols), \
         but the header declares 1 (120)",
        data_path(TRAIN_IMAGES)
    );
    assert_data_fails(&fx, &[], RUNTIME, &[&msg]);
}

#[test]
fn images_of_zero_pixels() {
    let fx = Fixture::new();
    fx.write_data(TEST_IMAGES, &idx(0x08, &[30, 0, 4], &[]));
    let msg = format!(
        "{}: the IDX header declares images of 0x4 pixels, which are empty",
        data_path(TEST_IMAGES)
    );
    assert_data_fails(&fx, &[], RUNTIME, &[&msg]);
}

#[test]
fn image_and_label_counts_disagree() {
    let fx = Fixture::new();
    let labels = fx.read_data(TRAIN_LABELS);
    fx.write_data(TRAIN_LABELS, &idx(0x08, &[119], &labels[8..8 + 119]));
    let msg = format!(
        "{} holds 120 images but {} holds 119 labels",
        data_path(TRAIN_IMAGES),
        data_path(TRAIN_LABELS)
    );
    assert_data_fails(&fx, &[], RUNTIME, &[&msg]);
}

#[test]
fn corrupt_gz_archive() {
    let fx = Fixture::new();
    fs::remove_file(fx.data(TEST_LABELS)).unwrap();
    fs::write(fx.data(&format!("{TEST_LABELS}.gz")), b"not gzip at all").unwrap();
    let msg = format!("cannot decompress {}.gz", data_path(TEST_LABELS));
    assert_data_fails(&fx, &[], RUNTIME, &[&msg]);
}

// ---- Data that does not fit the network (exit status 2). ----

#[test]
fn label_out_of_range() {
    let fx = Fixture::new();
    let mut labels = fx.read_data(TRAIN_LABELS);
    labels[8 + 17] = 7;
    fx.write_data(TRAIN_LABELS, &labels);
    let msg = format!(
        "{}: label 7 at index 17 is out of range for 4 classes (labels must be below 4)",
        data_path(TRAIN_LABELS)
    );
    assert_data_fails(&fx, &[], USAGE, &[&msg]);
}

#[test]
fn image_size_does_not_match_the_input_layer() {
    let fx = Fixture::new();
    let msg = format!(
        "{}: images are 4x4 = 16 pixels but the network's input layer has 15 neurons",
        data_path(TRAIN_IMAGES)
    );
    assert_data_fails(&fx, &["--sizes", "15,8,4"], USAGE, &[&msg]);
}

#[test]
fn loaded_network_does_not_fit_the_images() {
    let fx = Fixture::new();
    fx.write_model("small.json", &model(&[9, 4], "0.1", "CrossEntropyCost"));
    let msg = format!(
        "{}: images are 4x4 = 16 pixels but the network's input layer has 9 neurons (the \
         network was loaded from small.json)",
        data_path(TRAIN_IMAGES)
    );
    assert_data_fails(&fx, &["--load", "small.json"], USAGE, &[&msg]);
}

#[test]
fn validation_size_larger_than_the_training_file() {
    let fx = Fixture::new();
    let msg = format!(
        "invalid validation size: 121 is more than the 120 images in {}",
        data_path(TRAIN_IMAGES)
    );
    assert_data_fails(&fx, &["--validation-size", "121"], USAGE, &[&msg]);
}

#[test]
fn validation_size_is_the_whole_training_file() {
    let fx = Fixture::new();
    let msg = format!(
        "invalid validation size: 120 is all of the 120 images in {}, which leaves no \
         training data",
        data_path(TRAIN_IMAGES)
    );
    assert_data_fails(&fx, &["--validation-size", "120"], USAGE, &[&msg]);
}

#[test]
fn evaluation_on_an_empty_validation_set() {
    let fx = Fixture::new();
    assert_fails(
        &fx.train(&["--validation-size", "0", "--evaluation", "validation"]),
        USAGE,
        &["--monitor asks for evaluation series, but the validation set is empty"],
        true,
    );
}

// ---- Model files given to --load (exit status 1, or 2 for a contradicting flag). ----

#[test]
fn load_a_missing_model() {
    let fx = Fixture::new();
    assert_fails(
        &fx.train(&["--load", "missing.json"]),
        RUNTIME,
        &["cannot read missing.json: No such file or directory"],
        true,
    );
}

#[test]
fn load_malformed_json() {
    let fx = Fixture::new();
    fx.write_model("broken.json", "{\"sizes\": [16, 8");
    assert_fails(
        &fx.train(&["--load", "broken.json"]),
        RUNTIME,
        &["broken.json: not a usable network2 model: malformed network2 JSON"],
        true,
    );
}

#[test]
fn load_inconsistent_shapes() {
    let fx = Fixture::new();
    let json = r#"{"sizes": [16, 8, 4], "weights": [[[0.5]], [[0.5]]], "biases": [[[0.0]], [[0.0]]], "cost": "CrossEntropyCost"}"#;
    fx.write_model("bad.json", json);
    assert_fails(
        &fx.train(&["--load", "bad.json"]),
        RUNTIME,
        &["bad.json: not a usable network2 model: weights[0] has 1 rows, but sizes[1] = 8"],
        true,
    );
}

#[test]
fn load_a_layer_of_zero_neurons() {
    let fx = Fixture::new();
    let json = r#"{"sizes": [16, 0], "weights": [[]], "biases": [[]], "cost": "CrossEntropyCost"}"#;
    fx.write_model("zero.json", json);
    assert_fails(
        &fx.train(&["--load", "zero.json"]),
        RUNTIME,
        &["zero.json: not a usable network2 model: sizes [16, 0]: layer 1 has 0 neurons"],
        true,
    );
}

#[test]
fn load_a_number_that_is_not_an_f32() {
    let fx = Fixture::new();
    fx.write_model("huge.json", &model(&[16, 4], "1e39", "CrossEntropyCost"));
    assert_fails(
        &fx.train(&["--load", "huge.json"]),
        RUNTIME,
        &[
            "huge.json: not a usable network2 model: weights[0][0][0] = ",
            "is not a finite f32 value",
        ],
        true,
    );
}

#[test]
fn load_an_unknown_cost() {
    let fx = Fixture::new();
    fx.write_model("cost.json", &model(&[16, 4], "0.1", "FooCost"));
    assert_fails(
        &fx.train(&["--load", "cost.json"]),
        RUNTIME,
        &["cost.json: not a usable network2 model: unknown cost \"FooCost\""],
        true,
    );
}

#[test]
fn sizes_contradict_the_loaded_model() {
    let fx = Fixture::new();
    fx.write_model("net.json", &model(&[16, 4], "0.1", "CrossEntropyCost"));
    assert_fails(
        &fx.train(&["--load", "net.json", "--sizes", "16,8,4"]),
        USAGE,
        &["--sizes 16,8,4 disagrees with the network in net.json, whose sizes are 16,4"],
        true,
    );
}

// ---- Hyperparameters and flags (exit status 2). ----

/// Asserts that `args` is a usage error mentioning `needles`, before any training.
fn assert_usage(args: &[&str], needles: &[&str]) {
    let fx = Fixture::new();
    assert_fails(&fx.train(args), USAGE, needles, true);
}

#[test]
fn eta_zero() {
    assert_usage(
        &["--eta", "0"],
        &["invalid eta: the learning rate must be a finite number > 0, got 0"],
    );
}

#[test]
fn eta_negative() {
    assert_usage(
        &["--eta", "-0.5"],
        &["invalid eta: the learning rate must be a finite number > 0, got -0.5"],
    );
}

#[test]
fn eta_nan() {
    assert_usage(
        &["--eta", "NaN"],
        &["invalid eta: the learning rate must be a finite number > 0, got NaN"],
    );
}

#[test]
fn eta_infinite() {
    assert_usage(
        &["--eta", "inf"],
        &["invalid eta: the learning rate must be a finite number > 0, got inf"],
    );
}

#[test]
fn eta_not_a_number() {
    assert_usage(
        &["--eta", "fast"],
        &["invalid value 'fast' for '--eta <ETA>'"],
    );
}

#[test]
fn lambda_negative() {
    assert_usage(
        &["--lambda", "-1"],
        &["invalid lambda: the regularization parameter must be a finite number >= 0, got -1"],
    );
}

#[test]
fn lambda_nan() {
    assert_usage(
        &["--lambda", "NaN"],
        &["invalid lambda: the regularization parameter must be a finite number >= 0, got NaN"],
    );
}

#[test]
fn mini_batch_size_zero() {
    assert_usage(
        &["--mini-batch-size", "0"],
        &["invalid mini-batch size: must be at least 1"],
    );
}

#[test]
fn epochs_zero() {
    assert_usage(
        &["--epochs", "0"],
        &["invalid value '0' for '--epochs <N>': must be at least 1"],
    );
}

#[test]
fn sizes_with_a_layer_of_zero() {
    assert_usage(
        &["--sizes", "16,0,4"],
        &["invalid value '16,0,4' for '--sizes <N,N,...>': a layer needs at least 1 neuron, got 0"],
    );
}

#[test]
fn sizes_with_one_layer() {
    assert_usage(
        &["--sizes", "16"],
        &["invalid value '16' for '--sizes <N,N,...>': a network needs at least 2 layers"],
    );
}

#[test]
fn sizes_not_numbers() {
    assert_usage(
        &["--sizes", "16,x,4"],
        &["invalid value '16,x,4' for '--sizes <N,N,...>': \"x\" is not a layer size"],
    );
}

#[test]
fn threads_zero() {
    assert_usage(
        &["--threads", "0"],
        &["invalid value '0' for '--threads <N>': must be at least 1"],
    );
}

#[test]
fn early_stopping_zero() {
    assert_usage(
        &["--early-stopping", "0"],
        &["invalid early stopping: must be at least 1 epoch without improvement"],
    );
}

#[test]
fn unknown_monitor_series() {
    assert_usage(
        &["--monitor", "speed"],
        &["invalid value 'speed' for '--monitor <LIST>': \"speed\" is not a series"],
    );
}

#[test]
fn unknown_isa() {
    assert_usage(
        &["--isa", "sse9"],
        &["invalid value 'sse9' for '--isa <ISA>'"],
    );
}

#[test]
fn unavailable_isa() {
    let Some(isa) = simdnet::Isa::ALL.into_iter().find(|i| !i.is_available()) else {
        return; // this CPU has every instruction set
    };
    let msg = format!(
        "instruction set {isa} was requested but this CPU does not support it (available: "
    );
    assert_usage(&["--isa", isa.name()], &[&msg]);
}

#[test]
fn unknown_flag() {
    assert_usage(
        &["--learning-rate", "1"],
        &["unexpected argument '--learning-rate' found"],
    );
}

#[test]
fn mirror_without_download() {
    assert_usage(
        &["--mirror", "http://127.0.0.1:9/"],
        &[
            "the following required arguments were not provided",
            "--download",
        ],
    );
}

#[test]
fn save_and_metrics_name_the_same_file() {
    assert_usage(
        &["--save", "out", "--metrics", "out"],
        &["--save and --metrics both name out: give them different files"],
    );
}

// ---- Output files (exit status 1). ----

#[test]
fn save_into_a_missing_directory() {
    let fx = Fixture::new();
    assert_fails(
        &fx.train(&["--save", "no/such/dir/net.json"]),
        RUNTIME,
        &[
            "cannot save the network to no/such/dir/net.json: the directory no/such/dir does not exist",
        ],
        true,
    );
}

#[test]
fn save_onto_a_directory() {
    let fx = Fixture::new();
    fs::create_dir(fx.path("adir")).unwrap();
    assert_fails(
        &fx.train(&["--save", "adir"]),
        RUNTIME,
        &["cannot save the network to adir: it is a directory"],
        true,
    );
}

#[test]
fn metrics_into_a_missing_directory() {
    let fx = Fixture::new();
    assert_fails(
        &fx.train(&["--metrics", "nowhere/m.csv"]),
        RUNTIME,
        &["cannot write the metrics to nowhere/m.csv: the directory nowhere does not exist"],
        true,
    );
}

/// The shell script that mounts a small tmpfs on the directory `$1` in a private mount
/// namespace, puts an old `net.json` there, fills it (`$2` = fill) or makes it read-only
/// (`$2` = ro), runs the rest of the arguments, then prints what became of `net.json` and of
/// the directory on lines starting with `@@` (the mount is gone once the namespace ends).
const TMPFS_SCRIPT: &str = r#"
d=$1; mode=$2; shift 2
mount -t tmpfs -o size=64k tmpfs "$d" || exit 97
printf old > "$d/net.json"
if [ "$mode" = fill ]; then head -c 1048576 /dev/zero > "$d/fill" 2>/dev/null; fi
if [ "$mode" = ro ]; then mount -o remount,ro "$d" || exit 97; fi
"$@"; rc=$?
echo "@@saved:$(cat "$d/net.json")"
for f in "$d"/.* "$d"/*; do echo "@@entry:${f##*/}"; done
exit $rc
"#;

/// Runs `train <args>` with `dir` a 64 KiB tmpfs (see [`TMPFS_SCRIPT`]), or `None` if this
/// machine cannot make one (no `unshare`, or no unprivileged user namespaces).
fn train_on_tmpfs(fx: &Fixture, dir: &str, mode: &str, args: &[&str]) -> Option<Output> {
    fs::create_dir(fx.path(dir)).unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["-rm", "sh", "-c", TMPFS_SCRIPT, "sh", dir, mode]);
    let mut words = runner_words();
    words.push(env!("CARGO_BIN_EXE_train").to_string());
    words.extend(fx.args(args));
    let out = cmd
        .args(&words)
        .current_dir(fx.root.path())
        .env_remove("MNIST_DIR")
        .env_remove("RAYON_NUM_THREADS")
        .output();
    match out {
        // The script ran to its end (whatever train did).
        Ok(out) if stdout(&out).contains("@@saved:") => Some(out),
        other => {
            let why = match other {
                Ok(out) => stderr(&out).trim().to_string(),
                Err(e) => e.to_string(),
            };
            eprintln!(
                "NOTICE bad_input: cannot mount a tmpfs in a private namespace ({why}); using \
                 the fallback"
            );
            None
        }
    }
}

/// The `@@` lines of [`TMPFS_SCRIPT`]: the saved file's contents and the directory's
/// entries (other than `.`, `..` and the glob patterns themselves).
fn tmpfs_report(out: &Output) -> (String, Vec<String>) {
    let text = stdout(out);
    let saved = text
        .lines()
        .find_map(|l| l.strip_prefix("@@saved:"))
        .unwrap_or_else(|| panic!("no @@saved line in:\n{text}"))
        .to_string();
    let entries = text
        .lines()
        .filter_map(|l| l.strip_prefix("@@entry:"))
        .filter(|e| !matches!(*e, "." | ".." | ".*" | "*"))
        .map(str::to_string)
        .collect();
    (saved, entries)
}

#[test]
fn save_into_a_read_only_directory() {
    let fx = Fixture::new();
    let args = ["--save", "ro/net.json"];
    let out = match train_on_tmpfs(&fx, "ro", "ro", &args) {
        Some(out) => out,
        None => {
            // Permission bits stop everyone but root.
            if fs::metadata("/proc/self")
                .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
                .unwrap_or(true)
            {
                eprintln!("NOTICE bad_input: running as root without a tmpfs; skipping");
                return;
            }
            set_mode(&fx.path("ro"), 0o555);
            let out = fx.train(&args);
            set_mode(&fx.path("ro"), 0o755);
            out
        }
    };
    let err = assert_fails(
        &out,
        RUNTIME,
        &["cannot save the network to ro/net.json: "],
        true,
    );
    assert!(
        err.contains("Read-only file system") || err.contains("Permission denied"),
        "{err}"
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn save_onto_a_full_disk() {
    let fx = Fixture::new();
    let args = ["--save", "disk/net.json"];
    match train_on_tmpfs(&fx, "disk", "fill", &args) {
        Some(out) => {
            // The check before training creates an empty file, which a full tmpfs allows; the
            // save after training is what fails.
            assert_fails(
                &out,
                RUNTIME,
                &[
                    "cannot write disk/net.json: No space left on device",
                    "; the network was not saved (disk/net.json is unchanged)",
                ],
                false,
            );
            let (saved, entries) = tmpfs_report(&out);
            assert_eq!(saved, "old", "the old file was changed");
            assert_eq!(entries, ["fill", "net.json"], "a temporary was left behind");
        }
        None => {
            // No tmpfs: a file-size limit makes the write fail instead (EFBIG; SIGXFSZ is
            // ignored so that the write returns the error rather than killing the process).
            fs::write(fx.path("disk/net.json"), "old").unwrap();
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "trap '' XFSZ; ulimit -f 1; exec \"$@\"", "sh"]);
            let mut words = runner_words();
            words.push(env!("CARGO_BIN_EXE_train").to_string());
            words.extend(fx.args(&args));
            let out = fx.run(cmd, &words);
            assert_fails(
                &out,
                RUNTIME,
                &[
                    "cannot write disk/net.json: ",
                    "; the network was not saved (disk/net.json is unchanged)",
                ],
                false,
            );
            assert_eq!(fs::read_to_string(fx.path("disk/net.json")).unwrap(), "old");
            let left: Vec<_> = fs::read_dir(fx.path("disk")).unwrap().collect();
            assert_eq!(left.len(), 1, "a temporary was left behind");
        }
    }
}

#[test]
fn checkpoint_onto_a_full_disk() {
    let fx = Fixture::new();
    let args = ["--checkpoint", "disk/ck.bin", "--epochs", "2"];
    let expected = [
        "cannot write disk/ck.bin: ",
        "; training stopped; disk/ck.bin was not created",
    ];
    match train_on_tmpfs(&fx, "disk", "fill", &args) {
        Some(out) => {
            let err = assert_fails(&out, RUNTIME, &expected, false);
            assert!(err.contains("No space left on device"), "{err}");
            let (_, entries) = tmpfs_report(&out);
            assert_eq!(entries, ["fill", "net.json"], "a temporary was left behind");
        }
        None => {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "trap '' XFSZ; ulimit -f 1; exec \"$@\"", "sh"]);
            let mut words = runner_words();
            words.push(env!("CARGO_BIN_EXE_train").to_string());
            words.extend(fx.args(&args));
            fs::create_dir(fx.path("disk")).ok();
            let out = fx.run(cmd, &words);
            assert_fails(&out, RUNTIME, &expected, false);
            let left: Vec<_> = fs::read_dir(fx.path("disk")).unwrap().collect();
            assert!(left.is_empty(), "a temporary was left behind");
        }
    }
}

#[test]
fn checkpoint_into_a_missing_directory() {
    let fx = Fixture::new();
    let out = fx.train(&["--checkpoint", "nowhere/ck.bin"]);
    assert_fails(
        &out,
        RUNTIME,
        &["cannot write the checkpoint to nowhere/ck.bin: the directory nowhere does not exist"],
        true,
    );
}

#[test]
fn checkpoint_naming_another_output() {
    let fx = Fixture::new();
    let out = fx.train(&["--checkpoint", "out.json", "--save", "out.json"]);
    assert_fails(
        &out,
        USAGE,
        &["--save and the checkpoint both name out.json: give them different files"],
        true,
    );
}

// ---- Training (exit status 1). ----

#[test]
fn divergence_names_epoch_and_layer_and_keeps_the_save_file() {
    let fx = Fixture::new();
    fs::write(fx.path("net.json"), "old").unwrap();
    let out = fx.train(&["--eta", "1e30", "--epochs", "3", "--save", "net.json"]);
    assert_fails(
        &out,
        RUNTIME,
        &[
            "error: training diverged in epoch 1: the weight matrix of layer 1 (16 inputs to 8 \
             neurons) is no longer finite (weights[0][",
            "try a smaller eta",
            "training-set size); --eta was 1e30; ",
            "the network was not saved (net.json is unchanged)",
        ],
        false,
    );
    assert_eq!(fs::read_to_string(fx.path("net.json")).unwrap(), "old");
    assert!(!stdout(&out).contains("Epoch 2/"), "{}", stdout(&out));

    // Without an old file there is nothing to keep, and nothing is created.
    let out = fx.train(&["--eta", "1e30", "--save", "new.json"]);
    assert_fails(
        &out,
        RUNTIME,
        &["the network was not saved (new.json was not created)"],
        false,
    );
    assert!(!fx.path("new.json").exists());
}

// ---- --no-mmap. ----

#[test]
fn no_mmap_trains_the_same_network() {
    let fx = Fixture::new();
    let common = ["--epochs", "2", "--seed", "3", "--monitor", "all"];
    let mut mapped = common.to_vec();
    mapped.extend(["--save", "mapped.json"]);
    let mut read = common.to_vec();
    read.extend(["--save", "read.json", "--no-mmap"]);
    let (a, b) = (fx.train(&mapped), fx.train(&read));
    for out in [&a, &b] {
        assert!(
            out.status.success() && !stderr(out).contains("panicked"),
            "exit {:?}: {}",
            out.status.code(),
            stderr(out)
        );
    }
    assert!(
        stdout(&b).contains("Data:        mnist (read into memory)"),
        "{}",
        stdout(&b)
    );
    assert!(!stdout(&a).contains("read into memory"), "{}", stdout(&a));
    // The same per-epoch lines (without their times) and the same saved network.
    let epochs = |out: &Output| -> Vec<String> {
        stdout(out)
            .lines()
            .filter(|l| l.starts_with("Epoch "))
            .map(|l| {
                l.split_once(" s training")
                    .map_or(l, |(_, rest)| rest)
                    .to_string()
            })
            .collect()
    };
    assert_eq!(epochs(&a), epochs(&b));
    assert_eq!(epochs(&a).len(), 2);
    assert!(
        fs::read(fx.path("mapped.json")).unwrap() == fs::read(fx.path("read.json")).unwrap(),
        "--no-mmap saved a different network"
    );
}

#[test]
fn help_documents_no_mmap_and_the_memory_map_contract() {
    let fx = Fixture::new();
    let out = fx.run(train_command(), &["--help".to_string()]);
    assert!(out.status.success());
    // Wrapping depends on the help's width: compare with single spaces.
    let text = stdout(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for needle in [
        "--no-mmap",
        "the IDX files are memory-mapped",
        "must not be modified or truncated while train runs",
        "SIGBUS",
        "--no-mmap copies each file into memory once",
        "has no such requirement",
    ] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }
}
