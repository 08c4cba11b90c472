//! Integration tests of the `train` binary, run as a subprocess on tiny synthetic MNIST
//! directories (4x4 images, 4 classes: the label is the brightest quadrant), so no real MNIST
//! is needed.
//!
//! They check a full run (header, epoch lines, the `--metrics` CSV, the `--save`d network),
//! `--load`, that `--threads` does not change the result, `--no-shuffle`, early stopping,
//! divergence, and that every bad input is a clean `error: <message>` with the documented exit
//! status (1 runtime, 2 usage) and never a panic.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::idx;
use simdnet::Isa;
use simdnet::data::mnist::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use simdnet::network::{Activation, Cost, Network};
use tempfile::TempDir;

const TRAINING_IMAGES: usize = 120;
const TEST_COUNT: usize = 30;
const SIDE: usize = 4;

/// The exit status of runtime errors (files, divergence).
const RUNTIME: i32 = 1;
/// The exit status of usage and configuration errors.
const USAGE: i32 = 2;

/// `count` 4x4 images and their labels: the labelled quadrant is bright, the others dim, with
/// deterministic noise.
fn synthetic(count: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = move |modulus: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % modulus
    };
    let mut pixels = Vec::with_capacity(count * SIDE * SIDE);
    let mut labels = Vec::with_capacity(count);
    for _ in 0..count {
        let label = next(4) as usize;
        for r in 0..SIDE {
            for c in 0..SIDE {
                let quadrant = (r / 2) * 2 + c / 2;
                let value = if quadrant == label {
                    160 + next(96)
                } else {
                    next(100)
                };
                pixels.push(value as u8);
            }
        }
        labels.push(label as u8);
    }
    (pixels, labels)
}

/// A temporary directory holding a synthetic MNIST directory `mnist/`; the binary runs with
/// the temporary directory as its working directory.
struct Fixture {
    root: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir().expect("create a temporary directory");
        let data = root.path().join("mnist");
        fs::create_dir(&data).expect("create the data directory");
        let side = SIDE as u32;
        let (train_pixels, train_labels) = synthetic(TRAINING_IMAGES, 1);
        let (test_pixels, test_labels) = synthetic(TEST_COUNT, 2);
        let write = |name: &str, bytes: Vec<u8>| {
            fs::write(data.join(name), bytes).expect("write a synthetic IDX file")
        };
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
        Fixture { root }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn data_file(&self, name: &str) -> PathBuf {
        self.path("mnist").join(name)
    }

    /// Runs `train <args>` with, unless `args` gives them, `--data mnist --validation-size 20
    /// --mini-batch-size 5`, and `--sizes 16,8,4` unless `args` has `--sizes` or `--load`.
    fn train(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        for (flag, value) in [
            ("--data", "mnist"),
            ("--validation-size", "20"),
            ("--mini-batch-size", "5"),
        ] {
            if !args.contains(&flag) {
                all.extend([flag, value]);
            }
        }
        if !args.contains(&"--sizes") && !args.contains(&"--load") {
            all.extend(["--sizes", "16,8,4"]);
        }
        self.train_raw(&all)
    }

    /// Runs `train <args>` exactly.
    fn train_raw(&self, args: &[&str]) -> Output {
        train_command()
            .args(args)
            .current_dir(self.root.path())
            .env_remove("MNIST_DIR")
            .env_remove("RAYON_NUM_THREADS")
            .output()
            .expect("run the train binary")
    }
}

/// A command running the `train` binary; through `SIMDNET_TEST_RUNNER` when that is set
/// (CI's cross-compiled aarch64 job sets it to `qemu-aarch64 -L ...`, as cargo's runner).
fn train_command() -> Command {
    let exe = env!("CARGO_BIN_EXE_train");
    match std::env::var("SIMDNET_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut cmd = Command::new(words.next().unwrap());
            cmd.args(words).arg(exe);
            cmd
        }
        _ => Command::new(exe),
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a successful run, showing its output otherwise.
fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    assert!(!stderr(out).contains("panicked"), "{what}: {}", stderr(out));
}

/// Asserts a clean failure: exit status `code`, `error: ...` on stderr mentioning every one
/// of `needles`, and no panic.
fn assert_fails(out: &Output, code: i32, needles: &[&str], what: &str) {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: wrong exit status\nstdout:\n{}\nstderr:\n{err}",
        stdout(out)
    );
    assert!(!err.contains("panicked"), "{what}: panic text: {err}");
    assert!(err.starts_with("error: "), "{what}: {err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "{what}: stderr does not mention {needle:?}:\n{err}"
        );
    }
}

/// The instruction set the binary should report.
fn expected_isa() -> Isa {
    Isa::resolve(std::env::var("SIMDNET_ISA").ok().as_deref())
        .expect("SIMDNET_ISA, if set, names an available instruction set")
}

#[test]
fn short_run_writes_metrics_and_network() {
    let fx = Fixture::new();
    let out = fx.train(&[
        "--epochs",
        "3",
        "--metrics",
        "m.csv",
        "--save",
        "net.json",
        "--monitor",
        "all",
    ]);
    assert_success(&out, "short run");
    let text = stdout(&out);

    let isa_line = text
        .lines()
        .find(|l| l.starts_with("ISA:"))
        .unwrap_or_else(|| panic!("no ISA line in:\n{text}"));
    assert!(
        isa_line.contains(expected_isa().name()),
        "{isa_line} does not name {}",
        expected_isa()
    );
    assert!(text.contains("16-8-4"), "{text}");
    for epoch in 1..=3 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("Epoch {epoch}/3:")))
            .unwrap_or_else(|| panic!("no line for epoch {epoch} in:\n{text}"));
        for series in [
            "evaluation accuracy",
            "evaluation cost",
            "training accuracy",
            "training cost",
        ] {
            assert!(line.contains(series), "{line}");
        }
    }
    assert!(text.contains("Best evaluation accuracy"), "{text}");
    assert!(text.contains("Saved the network to net.json"), "{text}");
    assert!(text.contains("Saved the metrics to m.csv"), "{text}");

    let csv = fs::read_to_string(fx.path("m.csv")).expect("the metrics file exists");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,eta,training_cost,training_accuracy,evaluation_cost,evaluation_accuracy,seconds"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    for (i, row) in lines[1..].iter().enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells.len(), 7, "{row}");
        assert!(cells.iter().all(|c| !c.is_empty()), "{row}");
        assert_eq!(cells[0], (i + 1).to_string());
        assert_eq!(cells[1].parse::<f32>().unwrap(), 0.5);
        for &col in &[3, 5] {
            let acc: f64 = cells[col].parse().unwrap();
            assert!((0.0..=1.0).contains(&acc), "{row}");
        }
        for &col in &[2, 4, 6] {
            let v: f64 = cells[col].parse().unwrap();
            assert!(v.is_finite() && v >= 0.0, "{row}");
        }
    }
    // No temporary file is left next to the outputs.
    let leftovers: Vec<_> = fs::read_dir(fx.root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let net = Network::load(fx.path("net.json")).expect("the saved network loads");
    assert_eq!(net.sizes(), &[16, 8, 4]);
    assert_eq!(net.cost(), Cost::CrossEntropy);
}

#[test]
fn unmonitored_series_are_empty_cells() {
    let fx = Fixture::new();
    let out = fx.train(&["--epochs", "2", "--metrics", "m.csv"]);
    assert_success(&out, "default monitoring");
    let csv = fs::read_to_string(fx.path("m.csv")).unwrap();
    for row in csv.lines().skip(1) {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells.len(), 7, "{row}");
        assert!(cells[2].is_empty() && cells[3].is_empty() && cells[4].is_empty());
        assert!(!cells[5].is_empty() && !cells[6].is_empty(), "{row}");
    }
    let text = stdout(&out);
    assert!(!text.contains("training accuracy"), "{text}");
    assert!(text.contains("evaluation accuracy"), "{text}");
}

#[test]
fn load_continues_training() {
    let fx = Fixture::new();
    assert_success(
        &fx.train(&["--epochs", "1", "--save", "net.json"]),
        "first run",
    );
    let out = fx.train(&["--load", "net.json", "--epochs", "1", "--save", "net.json"]);
    assert_success(&out, "--load");
    assert!(
        stdout(&out).contains("loaded from net.json"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        Network::load(fx.path("net.json")).unwrap().sizes(),
        &[16, 8, 4]
    );

    // The same sizes may be given; --init is ignored with a note; --cost overrides the file's.
    let out = fx.train(&[
        "--load",
        "net.json",
        "--sizes",
        "16,8,4",
        "--init",
        "large",
        "--cost",
        "quadratic",
        "--epochs",
        "1",
        "--save",
        "quad.json",
    ]);
    assert_success(&out, "--load with --sizes, --init and --cost");
    assert!(
        stderr(&out).contains("--init is ignored"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        Network::load(fx.path("quad.json")).unwrap().cost(),
        Cost::Quadratic
    );
    // Without --cost, the file's cost is kept.
    let out = fx.train(&["--load", "quad.json", "--epochs", "1", "--save", "q2.json"]);
    assert_success(&out, "--load keeps the file's cost");
    assert_eq!(
        Network::load(fx.path("q2.json")).unwrap().cost(),
        Cost::Quadratic
    );

    // Other sizes contradict the file.
    let out = fx.train(&["--load", "net.json", "--sizes", "16,9,4", "--epochs", "1"]);
    assert_fails(
        &out,
        USAGE,
        &["--sizes", "net.json", "16,8,4"],
        "--sizes vs --load",
    );
}

#[test]
fn activations_and_log_likelihood_from_the_command_line() {
    let fx = Fixture::new();
    let out = fx.train(&[
        "--epochs",
        "2",
        "--cost",
        "log-likelihood",
        "--hidden-activation",
        "relu",
        "--eta",
        "0.1",
        "--save",
        "soft.json",
    ]);
    assert_success(&out, "softmax + log-likelihood");
    assert!(
        stdout(&out).contains("Activations: relu, softmax"),
        "{}",
        stdout(&out)
    );
    let net = Network::load(fx.path("soft.json")).unwrap();
    assert_eq!(net.cost(), Cost::LogLikelihood);
    assert_eq!(net.activations(), [Activation::Relu, Activation::Softmax]);

    // Loading keeps the file's activations; flags that contradict them are refused.
    let out = fx.train(&["--load", "soft.json", "--epochs", "1"]);
    assert_success(&out, "--load of a softmax network");
    let out = fx.train(&[
        "--load",
        "soft.json",
        "--hidden-activation",
        "tanh",
        "--epochs",
        "1",
    ]);
    assert_fails(
        &out,
        USAGE,
        &["--hidden-activation tanh", "soft.json", "relu"],
        "--hidden-activation vs --load",
    );
    let out = fx.train(&[
        "--load",
        "soft.json",
        "--cost",
        "quadratic",
        "--epochs",
        "1",
    ]);
    assert_fails(
        &out,
        USAGE,
        &["--cost", "soft.json", "log-likelihood"],
        "--cost vs a softmax file",
    );

    // Pairings that make no sense, before any training.
    for (args, needle) in [
        (
            &["--output-activation", "softmax"][..],
            "softmax output layer goes with the log-likelihood cost",
        ),
        (
            &["--cost", "log-likelihood", "--output-activation", "sigmoid"][..],
            "needs a softmax output layer",
        ),
        (
            &["--output-activation", "tanh"][..],
            "cross-entropy cost needs a sigmoid output layer",
        ),
    ] {
        let mut all = args.to_vec();
        all.extend(["--epochs", "1"]);
        let out = fx.train(&all);
        assert_fails(&out, USAGE, &[needle], &format!("{args:?}"));
        assert!(!stdout(&out).contains("Epoch 1"), "{args:?} trained");
    }
    // Quadratic cost with tanh outputs trains.
    let out = fx.train(&[
        "--cost",
        "quadratic",
        "--hidden-activation",
        "tanh",
        "--output-activation",
        "tanh",
        "--epochs",
        "1",
    ]);
    assert_success(&out, "tanh + quadratic");
}

#[test]
fn optimizers_and_l1_from_the_command_line() {
    let fx = Fixture::new();
    for (args, shown) in [
        (
            &["--optimizer", "nesterov", "--momentum", "0.5"][..],
            "Nesterov momentum 0.5",
        ),
        (&["--optimizer", "momentum"][..], "momentum 0.9"),
        (
            &["--optimizer", "adam", "--eta", "0.001"][..],
            "Adam (beta1 0.9",
        ),
        (&["--lambda1", "0.5"][..], "L1 lambda1 0.5"),
    ] {
        let mut all = args.to_vec();
        all.extend(["--epochs", "1"]);
        let out = fx.train(&all);
        assert_success(&out, &format!("{args:?}"));
        assert!(stdout(&out).contains(shown), "{args:?}: {}", stdout(&out));
    }
    for (args, needle) in [
        (&["--momentum", "0.5"][..], "--momentum applies to"),
        (
            &["--optimizer", "momentum", "--momentum", "1.0"][..],
            "momentum",
        ),
        (&["--lambda1", "-1"][..], "lambda1"),
    ] {
        let mut all = args.to_vec();
        all.extend(["--epochs", "1"]);
        assert_fails(&fx.train(&all), USAGE, &[needle], &format!("{args:?}"));
    }
}

#[test]
fn thread_count_does_not_change_the_result() {
    let fx = Fixture::new();
    let common = ["--epochs", "2", "--seed", "7", "--monitor", "all"];
    for (threads, file) in [("1", "t1.json"), ("2", "t2.json")] {
        let mut args = common.to_vec();
        args.extend(["--threads", threads, "--save", file]);
        let out = fx.train(&args);
        assert_success(&out, "threads");
        let plural = if threads == "1" {
            "thread)"
        } else {
            "threads)"
        };
        assert!(
            stdout(&out).contains(&format!("({threads} {plural}")),
            "{}",
            stdout(&out)
        );
    }
    let one = fs::read(fx.path("t1.json")).unwrap();
    let two = fs::read(fx.path("t2.json")).unwrap();
    assert!(
        one == two,
        "--threads 1 and --threads 2 saved different networks"
    );

    // The seed does matter.
    let mut args = common.to_vec();
    args[3] = "8";
    args.extend(["--save", "s8.json"]);
    assert_success(&fx.train(&args), "seed 8");
    assert!(fs::read(fx.path("s8.json")).unwrap() != one);
}

#[test]
fn no_shuffle_runs() {
    let fx = Fixture::new();
    let out = fx.train(&["--epochs", "2", "--no-shuffle", "--save", "a.json"]);
    assert_success(&out, "--no-shuffle");
    assert!(stdout(&out).contains("not shuffled"), "{}", stdout(&out));
    // Without shuffling the seed only seeds the weights: same seed, same network.
    let out = fx.train(&["--epochs", "2", "--no-shuffle", "--save", "b.json"]);
    assert_success(&out, "--no-shuffle again");
    assert!(fs::read(fx.path("a.json")).unwrap() == fs::read(fx.path("b.json")).unwrap());
}

#[test]
fn early_stopping_runs_with_evaluation() {
    let fx = Fixture::new();
    let out = fx.train(&[
        "--early-stopping",
        "3",
        "--epochs",
        "40",
        "--evaluation",
        "validation",
        "--save",
        "net.json",
        "--metrics",
        "m.csv",
    ]);
    assert_success(&out, "--early-stopping 3");
    let text = stdout(&out);
    assert!(text.contains("Best evaluation accuracy"), "{text}");
    let rows = fs::read_to_string(fx.path("m.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    if rows < 40 {
        assert!(text.contains("Early stopping ended training"), "{text}");
    }
    // The network is saved when early stopping ends training.
    assert!(Network::load(fx.path("net.json")).is_ok());

    // Even unmonitored, the evaluation accuracy drives early stopping.
    let out = fx.train(&[
        "--early-stopping",
        "3",
        "--epochs",
        "5",
        "--monitor",
        "none",
    ]);
    assert_success(&out, "--early-stopping with --monitor none");
}

#[test]
fn divergence_keeps_the_old_save_file() {
    let fx = Fixture::new();
    fs::write(fx.path("net.json"), "old").unwrap();
    let out = fx.train(&["--eta", "1e38", "--epochs", "2", "--save", "net.json"]);
    assert_fails(&out, RUNTIME, &["diverged", "net.json"], "divergence");
    assert_eq!(fs::read_to_string(fx.path("net.json")).unwrap(), "old");
}

#[test]
fn help_mentions_defaults_and_exit_status() {
    let fx = Fixture::new();
    let out = fx.train_raw(&["--help"]);
    assert_success(&out, "--help");
    let text = stdout(&out);
    for needle in [
        "[default: 784,30,10]",
        "[default: 30]",
        "[default: 0.5]",
        "[default: 5.0]",
        "[default: cross-entropy]",
        "MNIST_DIR",
        "Exit status",
    ] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }
}

/// One bad-input case: how to spoil the fixture, the arguments, the exit status, and what
/// stderr must mention.
struct Case {
    what: &'static str,
    spoil: fn(&Fixture),
    args: &'static [&'static str],
    code: i32,
    needles: &'static [&'static str],
}

fn nothing(_: &Fixture) {}

fn set_label_7(fx: &Fixture) {
    let path = fx.data_file(TRAIN_LABELS);
    let mut bytes = fs::read(&path).unwrap();
    bytes[8 + 17] = 7;
    fs::write(path, bytes).unwrap();
}

fn mismatched_network(fx: &Fixture) {
    let json = r#"{"sizes": [16, 8, 4], "weights": [[[0.5]], [[0.5]]], "biases": [[[0.0]], [[0.0]]], "cost": "CrossEntropyCost"}"#;
    fs::write(fx.path("bad.json"), json).unwrap();
}

#[test]
fn bad_inputs_are_clean_errors() {
    let other_isa = Isa::ALL
        .into_iter()
        .find(|isa| !isa.is_available())
        .map(Isa::name);
    let cases = [
        Case {
            what: "missing data directory",
            spoil: nothing,
            args: &["--data", "no-such-dir"],
            code: RUNTIME,
            needles: &["no-such-dir", "does not exist"],
        },
        Case {
            what: "missing label file",
            spoil: |fx| fs::remove_file(fx.data_file(TRAIN_LABELS)).unwrap(),
            args: &[],
            code: RUNTIME,
            needles: &[TRAIN_LABELS, "missing"],
        },
        Case {
            what: "wrong magic",
            spoil: |fx| {
                let path = fx.data_file(TRAIN_IMAGES);
                let mut bytes = fs::read(&path).unwrap();
                bytes[..4].copy_from_slice(&[0x1f, 0x8b, 0x08, 0x03]);
                fs::write(path, bytes).unwrap();
            },
            args: &[],
            code: RUNTIME,
            needles: &[TRAIN_IMAGES, "not an IDX file"],
        },
        Case {
            what: "truncated image file",
            spoil: |fx| {
                let path = fx.data_file(TRAIN_IMAGES);
                let bytes = fs::read(&path).unwrap();
                fs::write(path, &bytes[..bytes.len() - 7]).unwrap();
            },
            args: &[],
            code: RUNTIME,
            needles: &[TRAIN_IMAGES, "truncated"],
        },
        Case {
            what: "label beyond the output layer",
            spoil: set_label_7,
            args: &[],
            code: USAGE,
            needles: &[TRAIN_LABELS, "label 7", "4 classes"],
        },
        Case {
            what: "input layer vs image size",
            spoil: nothing,
            args: &["--sizes", "15,8,4"],
            code: USAGE,
            needles: &[TRAIN_IMAGES, "4x4", "15"],
        },
        Case {
            what: "eta 0",
            spoil: nothing,
            args: &["--eta", "0"],
            code: USAGE,
            needles: &["eta"],
        },
        Case {
            what: "negative eta",
            spoil: nothing,
            args: &["--eta", "-1"],
            code: USAGE,
            needles: &["eta", "-1"],
        },
        Case {
            what: "NaN eta",
            spoil: nothing,
            args: &["--eta", "NaN"],
            code: USAGE,
            needles: &["eta"],
        },
        Case {
            what: "negative lambda",
            spoil: nothing,
            args: &["--lambda", "-0.5"],
            code: USAGE,
            needles: &["lambda", "-0.5"],
        },
        Case {
            what: "mini-batch size 0",
            spoil: nothing,
            args: &["--mini-batch-size", "0"],
            code: USAGE,
            needles: &["mini-batch"],
        },
        Case {
            what: "one layer",
            spoil: nothing,
            args: &["--sizes", "16"],
            code: USAGE,
            needles: &["--sizes", "2 layers"],
        },
        Case {
            what: "a layer of 0",
            spoil: nothing,
            args: &["--sizes", "16,0,4"],
            code: USAGE,
            needles: &["--sizes", "0"],
        },
        Case {
            what: "non-numeric size",
            spoil: nothing,
            args: &["--sizes", "16,x,4"],
            code: USAGE,
            needles: &["--sizes", "\"x\""],
        },
        Case {
            what: "validation set is the whole training file",
            spoil: nothing,
            args: &["--validation-size", "120"],
            code: USAGE,
            needles: &["validation size", "120", "no training data", TRAIN_IMAGES],
        },
        Case {
            what: "validation set larger than the training file",
            spoil: nothing,
            args: &["--validation-size", "121"],
            code: USAGE,
            needles: &["validation size", "121", TRAIN_IMAGES],
        },
        Case {
            what: "evaluation on an empty validation set",
            spoil: nothing,
            args: &["--validation-size", "0", "--evaluation", "validation"],
            code: USAGE,
            needles: &["validation set is empty"],
        },
        Case {
            what: "early stopping without evaluation data",
            spoil: nothing,
            args: &[
                "--validation-size",
                "0",
                "--evaluation",
                "validation",
                "--monitor",
                "none",
                "--early-stopping",
                "3",
            ],
            code: USAGE,
            needles: &["--early-stopping", "empty"],
        },
        Case {
            what: "early stopping after 0 epochs",
            spoil: nothing,
            args: &["--early-stopping", "0"],
            code: USAGE,
            needles: &["early stopping"],
        },
        Case {
            what: "0 epochs",
            spoil: nothing,
            args: &["--epochs", "0"],
            code: USAGE,
            needles: &["--epochs", "at least 1"],
        },
        Case {
            what: "0 threads",
            spoil: nothing,
            args: &["--threads", "0"],
            code: USAGE,
            needles: &["--threads", "at least 1"],
        },
        Case {
            what: "unknown series",
            spoil: nothing,
            args: &["--monitor", "evaluation-accuracy,speed"],
            code: USAGE,
            needles: &["--monitor", "speed"],
        },
        Case {
            what: "load a missing file",
            spoil: nothing,
            args: &["--load", "missing.json"],
            code: RUNTIME,
            needles: &["missing.json"],
        },
        Case {
            what: "load malformed JSON",
            spoil: |fx| fs::write(fx.path("broken.json"), "{\"sizes\": [16, 8").unwrap(),
            args: &["--load", "broken.json"],
            code: RUNTIME,
            needles: &["broken.json", "malformed"],
        },
        Case {
            what: "load weights that do not match the sizes",
            spoil: mismatched_network,
            args: &["--load", "bad.json"],
            code: RUNTIME,
            needles: &["bad.json", "weights[0]"],
        },
        Case {
            what: "unknown ISA",
            spoil: nothing,
            args: &["--isa", "bogus"],
            code: USAGE,
            needles: &["--isa", "bogus"],
        },
        Case {
            what: "save into a missing directory",
            spoil: nothing,
            args: &["--save", "no/such/dir/net.json"],
            code: RUNTIME,
            needles: &["no/such/dir/net.json", "does not exist"],
        },
        Case {
            what: "metrics into a missing directory",
            spoil: nothing,
            args: &["--metrics", "nowhere/m.csv"],
            code: RUNTIME,
            needles: &["nowhere/m.csv", "does not exist"],
        },
        Case {
            what: "save onto a directory",
            spoil: |fx| fs::create_dir(fx.path("adir")).unwrap(),
            args: &["--save", "adir"],
            code: RUNTIME,
            needles: &["adir", "directory"],
        },
    ];
    for case in &cases {
        let fx = Fixture::new();
        (case.spoil)(&fx);
        let mut args = case.args.to_vec();
        if !args.contains(&"--epochs") {
            args.extend(["--epochs", "1"]);
        }
        let out = fx.train(&args);
        assert_fails(&out, case.code, case.needles, case.what);
        // Errors found before training come before any epoch.
        assert!(
            !stdout(&out).contains("Epoch 1/"),
            "{}: {}",
            case.what,
            stdout(&out)
        );
    }

    if let Some(name) = other_isa {
        let fx = Fixture::new();
        let out = fx.train(&["--epochs", "1", "--isa", name]);
        assert_fails(&out, USAGE, &[name, "does not support"], "unavailable ISA");
    }
}

#[test]
fn explicit_isa_is_used() {
    let fx = Fixture::new();
    let out = fx.train(&["--epochs", "1", "--isa", "scalar"]);
    assert_success(&out, "--isa scalar");
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("ISA:") && l.contains("scalar")),
        "{text}"
    );
}

#[test]
fn mnist_dir_is_the_default_data_directory() {
    let fx = Fixture::new();
    let data: &Path = &fx.path("mnist");
    let out = train_command()
        .args([
            "--sizes",
            "16,8,4",
            "--validation-size",
            "20",
            "--epochs",
            "1",
        ])
        .current_dir(fx.root.path())
        .env("MNIST_DIR", data)
        .output()
        .unwrap();
    assert_success(&out, "MNIST_DIR");
    assert!(
        stdout(&out).contains(&data.display().to_string()),
        "{}",
        stdout(&out)
    );
}
