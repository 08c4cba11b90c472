//! `train --plot FILE.svg` (cost and accuracy per epoch as an SVG) and `train
//! --halve-eta-after N` (the book's learning-rate schedule), run as a subprocess on a tiny
//! synthetic MNIST directory (4x4 images, 4 classes).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::idx;
use simdnet::data::mnist::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use tempfile::TempDir;

const SIDE: usize = 4;

/// `count` 4x4 images: the quadrant of the label bright, the rest dim noise (an LCG).
fn images(count: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut state = seed.wrapping_add(0x2545_f491_4f6c_dd1d);
    let mut next = move |m: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % m
    };
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
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

/// A temporary working directory with `mnist/` (100 training, 40 test images).
fn fixture() -> TempDir {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("mnist");
    fs::create_dir(&data).unwrap();
    let s = SIDE as u32;
    for (count, seed, images_name, labels_name) in [
        (100, 5, TRAIN_IMAGES, TRAIN_LABELS),
        (40, 6, TEST_IMAGES, TEST_LABELS),
    ] {
        let (p, l) = images(count, seed);
        fs::write(data.join(images_name), idx(8, &[count as u32, s, s], &p)).unwrap();
        fs::write(data.join(labels_name), idx(8, &[count as u32], &l)).unwrap();
    }
    root
}

/// `train <args>` in `dir`, with `--data mnist --sizes 16,6,4 --validation-size 20
/// --mini-batch-size 5` where `args` does not give them.
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
    for (flag, value) in [
        ("--data", "mnist"),
        ("--sizes", "16,6,4"),
        ("--validation-size", "20"),
        ("--mini-batch-size", "5"),
    ] {
        if !args.contains(&flag) {
            cmd.args([flag, value]);
        }
    }
    cmd.args(args)
        .current_dir(dir)
        .env_remove("MNIST_DIR")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\n{}\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn assert_error(out: &Output, code: i32, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Checks that `svg` is well-formed XML with an `<svg>` root (tags balanced and properly
/// nested, attributes quoted), and returns the names of its elements in document order with
/// their attribute text.
fn parse_svg(svg: &str) -> Vec<(String, String)> {
    let mut stack: Vec<String> = Vec::new();
    let mut elements = Vec::new();
    let mut rest = svg.trim_start();
    if let Some(decl) = rest.strip_prefix("<?xml") {
        rest = &decl[decl.find("?>").expect("unterminated XML declaration") + 2..];
    }
    let mut seen_root = false;
    while let Some(open) = rest.find('<') {
        let between = &rest[..open];
        assert!(
            !stack.is_empty() || between.trim().is_empty(),
            "text outside the root: {between:?}"
        );
        assert!(!between.contains('>'), "stray '>' in text: {between:?}");
        rest = &rest[open + 1..];
        // A '>' inside a quoted attribute value does not end the tag.
        let mut quote = None;
        let end = rest
            .char_indices()
            .find(|&(_, c)| match quote {
                Some(q) if c == q => {
                    quote = None;
                    false
                }
                Some(_) => false,
                None if c == '"' || c == '\'' => {
                    quote = Some(c);
                    false
                }
                None => c == '>',
            })
            .map(|(i, _)| i)
            .expect("unterminated tag");
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name_end = body.find(char::is_whitespace).unwrap_or(body.len());
        let name = &body[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "bad element name {name:?}"
        );
        if stack.is_empty() {
            assert!(!seen_root, "a second root element <{name}>");
            assert_eq!(name, "svg", "the root element is not <svg>");
            seen_root = true;
        }
        elements.push((name.to_string(), body[name_end..].to_string()));
        if !self_closing {
            stack.push(name.to_string());
        }
    }
    assert!(rest.trim().is_empty(), "text after the root: {rest:?}");
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    assert!(seen_root, "no <svg> element");
    elements
}

/// The number of points of each coloured (data or legend) polyline.
fn coloured_polylines(elements: &[(String, String)]) -> Vec<usize> {
    elements
        .iter()
        .filter(|(name, attrs)| name == "polyline" && !attrs.contains("stroke=\"#000000\""))
        .map(|(_, attrs)| {
            let points = attrs.split("points=\"").nth(1).unwrap();
            points[..points.find('"').unwrap()]
                .split_whitespace()
                .count()
        })
        .collect()
}

#[test]
fn plot_draws_the_four_series_book_style() {
    let dir = fixture();
    let out = train(dir.path(), &["--epochs", "4", "--plot", "run.svg"]);
    let stdout = assert_ok(&out);
    assert!(stdout.contains("Saved the plot to run.svg"), "{stdout}");
    // Without --monitor, --plot monitors all four series.
    assert!(stdout.contains("training cost"), "{stdout}");
    let svg = fs::read_to_string(dir.path().join("run.svg")).unwrap();
    let elements = parse_svg(&svg);
    for label in [
        "training cost",
        "evaluation cost",
        "training accuracy",
        "evaluation accuracy",
        "accuracy (%)",
        "epoch",
    ] {
        assert!(svg.contains(label), "{label} missing");
    }
    // Four lines of one point per epoch, and four legend strokes of two points.
    let mut lines = coloured_polylines(&elements);
    lines.sort_unstable();
    assert_eq!(lines, [2, 2, 2, 2, 4, 4, 4, 4]);
    // A marker per epoch on each line.
    assert_eq!(elements.iter().filter(|(n, _)| n == "circle").count(), 16);
    // Nothing left beside it.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

#[test]
fn plot_draws_only_the_monitored_series() {
    let dir = fixture();
    let out = train(
        dir.path(),
        &[
            "--epochs",
            "3",
            "--monitor",
            "evaluation-accuracy",
            "--plot",
            "acc.svg",
        ],
    );
    assert_ok(&out);
    let svg = fs::read_to_string(dir.path().join("acc.svg")).unwrap();
    let elements = parse_svg(&svg);
    assert!(svg.contains("evaluation accuracy"));
    assert!(!svg.contains("training cost") && !svg.contains("evaluation cost"));
    assert!(!svg.contains("training accuracy"));
    let mut lines = coloured_polylines(&elements);
    lines.sort_unstable();
    assert_eq!(lines, [2, 3]);
    // One panel: half as wide as two.
    assert!(svg.starts_with("<svg width=\"640\""), "{}", &svg[..60]);
}

#[test]
fn plot_bad_outputs_are_clean_errors_before_training() {
    let dir = fixture();
    let out = train(dir.path(), &["--epochs", "50", "--plot", "missing/run.svg"]);
    assert_error(
        &out,
        1,
        "cannot write the plot to missing/run.svg: the directory missing does not exist",
    );
    assert!(!text(&out.stdout).contains("Epoch 1"), "trained anyway");
    fs::create_dir(dir.path().join("a.svg")).unwrap();
    let out = train(dir.path(), &["--plot", "a.svg"]);
    assert_error(&out, 1, "cannot write the plot to a.svg: it is a directory");
    let out = train(dir.path(), &["--plot", "m.csv", "--metrics", "m.csv"]);
    assert_error(&out, 2, "--metrics and --plot both name m.csv");
    let out = train(dir.path(), &["--plot", "n.json", "--save", "n.json"]);
    assert_error(&out, 2, "--save and --plot both name n.json");
    let out = train(dir.path(), &["--plot", "x.svg", "--monitor", "none"]);
    assert_error(&out, 2, "--plot has nothing to draw");
    assert!(!dir.path().join("x.svg").exists());
}

#[cfg(unix)]
#[test]
fn plot_into_a_read_only_directory_is_a_clean_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = fixture();
    let ro: PathBuf = dir.path().join("ro");
    fs::create_dir(&ro).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores permissions: nothing to test then.
    if fs::write(ro.join("probe"), b"").is_ok() {
        return;
    }
    let out = train(dir.path(), &["--plot", "ro/run.svg"]);
    assert_error(
        &out,
        1,
        "cannot write the plot to ro/run.svg: Permission denied",
    );
}

#[test]
fn halve_eta_after_follows_the_schedule_from_the_command_line() {
    let dir = fixture();
    // An eta so small that nothing is learnt: the accuracy never improves after epoch 1.
    let out = train(
        dir.path(),
        &[
            "--halve-eta-after",
            "2",
            "--eta",
            "1e-20",
            "--lambda",
            "0",
            "--epochs",
            "100",
            "--evaluation",
            "validation",
            "--metrics",
            "m.csv",
            "--plot",
            "s.svg",
        ],
    );
    let stdout = assert_ok(&out);
    assert!(
        stdout.contains("Eta:         halved after 2 epochs"),
        "{stdout}"
    );
    assert!(stdout.contains("at eta 5e-21"), "{stdout}");
    assert!(
        stdout.contains("The eta schedule ended training after epoch"),
        "{stdout}"
    );
    let csv = fs::read_to_string(dir.path().join("m.csv")).unwrap();
    let etas: Vec<f32> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    // Two epochs at each of eta0 ... eta0/64, plus one if epoch 1 improved on nothing.
    let mut want: Vec<f32> = (0..7)
        .flat_map(|k| [1e-20 / (1u32 << k) as f32; 2])
        .collect();
    if etas.len() == 15 {
        want.insert(0, 1e-20);
    }
    assert_eq!(etas, want, "{csv}");
    parse_svg(&fs::read_to_string(dir.path().join("s.svg")).unwrap());
}

#[test]
fn halve_eta_after_bad_input() {
    let dir = fixture();
    let out = train(dir.path(), &["--halve-eta-after", "0"]);
    assert_error(
        &out,
        2,
        "invalid eta halving: must be at least 1 epoch without improvement",
    );
    let out = train(
        dir.path(),
        &[
            "--halve-eta-after",
            "3",
            "--monitor",
            "none",
            "--evaluation",
            "validation",
            "--validation-size",
            "0",
        ],
    );
    assert_error(
        &out,
        2,
        "--halve-eta-after watches the evaluation accuracy, but the validation set is empty",
    );
    let out = train(dir.path(), &["--halve-eta-after", "x"]);
    assert_error(&out, 2, "invalid value 'x' for '--halve-eta-after <N>'");
}

#[test]
fn help_documents_plot_and_halve_eta_after() {
    let dir = fixture();
    let out = train(dir.path(), &["--help"]);
    let help = assert_ok(&out);
    assert!(help.contains("--plot <FILE>"), "{help}");
    assert!(help.contains("--halve-eta-after <N>"), "{help}");
    assert!(help.contains("1/128"), "{help}");
}
