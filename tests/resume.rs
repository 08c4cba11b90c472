//! Checkpoints and `--resume`, end to end: a run that is stopped at any moment, by SIGKILL
//! or Ctrl-C, and resumed from its checkpoint ends with the network of the uninterrupted run,
//! bit for bit, on any number of threads.
//!
//! - `sigkill_at_random_moments_then_resume_gives_the_uninterrupted_network` kills the
//!   `train` binary at 20 random moments (and resumes it each time) and compares the saved
//!   JSON with the uninterrupted run's, byte for byte (the JSON prints floats in shortest
//!   round-trip form, so equal bytes are equal bits). After every kill the checkpoint on disk
//!   must be complete.
//! - The `sigint_*` tests send SIGINT: exit status 130, a message saying where training
//!   stopped and how to continue, a mid-epoch checkpoint that resumes exactly.
//! - The `library_*` tests do the same through `sgd_from`, for every optimizer with L1,
//!   dropout and the eta schedule on, from every checkpoint a run offers, on pools of 1 and 2
//!   threads, interrupted mid-epoch and between epochs.
//! - The `resume_*` tests give `--resume` files that are missing, not checkpoints,
//!   truncated, corrupt, of another version or of other data, or flags it does not allow:
//!   each is refused cleanly (`error: ...` naming the file, no panic).
//! - The `checkpoint_*` tests cover unwritable checkpoint paths: a missing or read-only
//!   directory, and a disk that fills up after the first checkpoint (the previous
//!   checkpoint must stay intact and resume exactly).
//!
//! The binary runs through `SIMDNET_TEST_RUNNER` when it is set (CI's qemu job); the data
//! of the long runs is sized so that a run takes about a second wherever the tests run.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::idx;
use simdnet::data::mnist::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use simdnet::network::checkpoint::{self, Checkpoint};
use simdnet::network::{
    Cost, FloatExamples, Init, Monitor, Network, Observer, Optimizer, SgdConfig, StopReason,
    TrainingState, TrainingSummary, sgd_from,
};
use tempfile::TempDir;

/// Exit status of runtime errors (files, divergence).
const RUNTIME: i32 = 1;
/// Exit status of usage and configuration errors.
const USAGE: i32 = 2;
/// Exit status after Ctrl-C.
const INTERRUPTED: i32 = 130;

// ---- Synthetic data and the fixture. ----

/// Marsaglia's xorshift64: the fixed-seed random numbers of these tests.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift((seed ^ 0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, modulus: u64) -> u64 {
        self.next() % modulus
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// `count` images of `side` x `side` pixels in 4 classes (the bright quadrant), with one
/// label in 8 replaced by a random one so that the accuracy stays below 100% and moves
/// from epoch to epoch (which exercises the eta schedule and early stopping).
fn synthetic(count: usize, side: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = XorShift::new(seed);
    let half = side / 2;
    let mut pixels = Vec::with_capacity(count * side * side);
    let mut labels = Vec::with_capacity(count);
    for _ in 0..count {
        let class = rng.below(4) as usize;
        for r in 0..side {
            for c in 0..side {
                let bright = (r / half) * 2 + c / half == class;
                pixels.push(if bright {
                    110 + rng.below(120)
                } else {
                    rng.below(150)
                } as u8);
            }
        }
        let label = if rng.below(8) == 0 {
            rng.below(4) as usize
        } else {
            class
        };
        labels.push(label as u8);
    }
    (pixels, labels)
}

/// A temporary working directory with a synthetic MNIST directory `mnist/` in it.
struct Fixture {
    root: TempDir,
}

impl Fixture {
    /// `training` images of `side` x `side` in the training file, `test` in the test file.
    fn new(side: usize, training: usize, test: usize) -> Fixture {
        let root = tempfile::tempdir().expect("create a temporary directory");
        fs::create_dir(root.path().join("mnist")).expect("create the data directory");
        let fx = Fixture { root };
        fx.write_images(TRAIN_IMAGES, TRAIN_LABELS, side, training, 1);
        fx.write_images(TEST_IMAGES, TEST_LABELS, side, test, 2);
        fx
    }

    /// Writes `count` synthetic images (seeded by `seed`) and their labels to the data files
    /// `images` and `labels`.
    fn write_images(&self, images: &str, labels: &str, side: usize, count: usize, seed: u64) {
        let (pixels, classes) = synthetic(count, side, seed);
        let (n, s) = (count as u32, side as u32);
        let dir = self.path("mnist");
        fs::write(dir.join(images), idx(0x08, &[n, s, s], &pixels)).expect("write images");
        fs::write(dir.join(labels), idx(0x08, &[n], &classes)).expect("write labels");
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        fs::write(self.path(name), bytes).unwrap_or_else(|e| panic!("write {name}: {e}"));
    }

    /// `train <args>` in the working directory, without the environment that would change
    /// it.
    fn command(&self, args: &[String]) -> Command {
        let mut cmd = train_command();
        cmd.args(args)
            .current_dir(self.root.path())
            .env_remove("MNIST_DIR")
            .env_remove("RAYON_NUM_THREADS")
            .env_remove("SIMDNET_ISA")
            .env_remove("SIMDNET_CACHE_DIR");
        cmd
    }

    /// Runs `train <args>` to its end.
    fn train(&self, args: &[String]) -> Output {
        self.command(args).output().expect("run the train binary")
    }

    /// Starts `train <args>`: stdout as given, stderr into the file `stderr.txt`.
    fn spawn(&self, args: &[String], stdout: Stdio) -> Running {
        let stderr = File::create(self.path("stderr.txt")).expect("create stderr.txt");
        let child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start the train binary");
        Running(child)
    }

    /// What the last [`Fixture::spawn`]ed process wrote on stderr.
    fn spawned_stderr(&self) -> String {
        String::from_utf8_lossy(&self.read("stderr.txt")).into_owned()
    }
}

/// A child process that is killed if the test panics before it ends.
struct Running(Child);

impl Running {
    fn wait(&mut self) -> ExitStatus {
        self.0.wait().expect("wait for train")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
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

/// The runner and its arguments: the words before the binary.
fn runner_words() -> Vec<String> {
    std::env::var("SIMDNET_TEST_RUNNER")
        .map(|r| r.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that `out` is a success.
fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success() && !stderr(out).contains("panicked"),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
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

/// Sends `signal` (a name for `kill -s`) to the process `pid`.
fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -s {signal} {pid} failed: {status}");
}

/// The temporary files of atomic writes (`.NAME.tmp-PID`) in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list a directory")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.contains(".tmp-"))
        .collect();
    names.sort();
    names
}

// ---- The long run: calibrated once, shared by the SIGKILL and SIGINT tests. ----

/// Side of the long run's images, and its fewest and most training-file images.
const LONG_SIDE: usize = 8;
const MIN_IMAGES: usize = 240;
const MAX_IMAGES: usize = 240_000;

/// About how long the uninterrupted long run should take, start to end.
const TARGET_WALL: Duration = Duration::from_millis(900);

/// The long run's flags, for `images` images in the training file (a sixth of them the
/// validation set): 8x8 images, 64-24-4, 6 epochs of mini-batches of 10 with Adam, L1,
/// dropout, eta halving and early stopping (so that every kind of state is in its
/// checkpoints), every series monitored.
fn long_run_args(images: usize) -> Vec<String> {
    let validation = (images / 6).to_string();
    strings(&[
        "--data",
        "mnist",
        "--sizes",
        "64,24,4",
        "--mini-batch-size",
        "10",
        "--epochs",
        "6",
        "--evaluation",
        "validation",
        "--validation-size",
        &validation,
        "--optimizer",
        "adam",
        "--eta",
        "0.003",
        "--lambda",
        "1.0",
        "--lambda1",
        "0.5",
        "--dropout",
        "0.2",
        "--halve-eta-after",
        "1",
        "--early-stopping",
        "4",
        "--monitor",
        "all",
        "--seed",
        "11",
    ])
}

/// The long run's data.
fn long_run_fixture(images: usize) -> Fixture {
    Fixture::new(LONG_SIDE, images, 40)
}

/// The uninterrupted long run: its size, its saved network and how long it took.
struct Reference {
    images: usize,
    json: Vec<u8>,
    wall: Duration,
}

/// Runs the long run uninterrupted (`--threads 1`), resizing its data until it takes about
/// [`TARGET_WALL`] (debug or release build, native or under a runner), once per process.
fn reference() -> &'static Reference {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let mut images = 1200;
        for round in 0.. {
            let fx = long_run_fixture(images);
            let mut args = long_run_args(images);
            args.extend(strings(&["--save", "ref.json", "--threads", "1", "-q"]));
            let started = Instant::now();
            let out = fx.train(&args);
            let wall = started.elapsed();
            assert_success(&out, "the uninterrupted long run");
            let ratio = TARGET_WALL.as_secs_f64() / wall.as_secs_f64();
            let next = ((images as f64 * ratio) as usize)
                .clamp(MIN_IMAGES, MAX_IMAGES)
                .min(images * 50);
            if round == 4 || (0.6..=1.8).contains(&ratio) || next == images {
                eprintln!(
                    "resume: the long run uses {images} images and takes {:.3} s",
                    wall.as_secs_f64()
                );
                return Reference {
                    images,
                    json: fx.read("ref.json"),
                    wall,
                };
            }
            images = next;
        }
        unreachable!("the loop returns")
    })
}

// ---- SIGKILL. ----

/// How many SIGKILLs must land on a running process.
const KILLS: usize = 20;

#[test]
fn sigkill_at_random_moments_then_resume_gives_the_uninterrupted_network() {
    let reference = reference();
    let fx = long_run_fixture(reference.images);
    let base = long_run_args(reference.images);
    // A temporary of a writer killed earlier, which must not get in the way.
    fx.write(".ck.bin.tmp-999999999", b"half a checkpoint");
    let ck = fx.path("ck.bin");
    let mut rng = XorShift::new(0x5eed);
    let (mut kills, mut attempts, mut chains, mut resumed_runs) = (0, 0, 0, 0);
    let mut kills_before_a_checkpoint = 0;
    // The checkpoint's position after each kill, per chain, to check that it only advances.
    let mut last_position: Option<(usize, usize)> = None;
    loop {
        let resume = ck.exists();
        let threads = (attempts % 3 + 1).to_string();
        attempts += 1;
        let mut args = if resume {
            resumed_runs += 1;
            strings(&["--resume", "ck.bin", "--data", "mnist"])
        } else {
            let mut args = base.clone();
            args.extend(strings(&["--checkpoint", "ck.bin"]));
            args
        };
        args.extend(strings(&[
            "--save",
            "out.json",
            "--threads",
            &threads,
            "-q",
        ]));
        let started = Instant::now();
        let mut child = fx.spawn(&args, Stdio::null());
        let mut killed = false;
        if kills < KILLS {
            // Sleep until the kill time, or until the run ends by itself; kill it if it is
            // still running then.
            let at = reference.wall.mul_f64(rng.unit());
            while child.0.try_wait().expect("poll train").is_none() {
                let left = at.saturating_sub(started.elapsed());
                if left.is_zero() {
                    child.0.kill().expect("SIGKILL train");
                    child.wait();
                    killed = true;
                    break;
                }
                std::thread::sleep(left.min(Duration::from_millis(2)));
            }
        }
        if killed {
            kills += 1;
            if !ck.exists() {
                kills_before_a_checkpoint += 1;
                continue;
            }
            // The checkpoint on disk is always a complete one.
            let state = Checkpoint::load(&ck)
                .unwrap_or_else(|e| panic!("after kill {kills} the checkpoint is broken: {e}"))
                .state;
            let position = (state.epochs_done(), state.batches_done());
            assert_eq!(position.1, 0, "SIGKILL cannot leave a mid-epoch checkpoint");
            assert!(
                last_position.is_none_or(|p| p <= position),
                "the checkpoint went back from {last_position:?} to {position:?}"
            );
            last_position = Some(position);
            continue;
        }
        // The run ended by itself: the chain is complete.
        let status = child.wait();
        let err = fx.spawned_stderr();
        assert!(
            status.success() && !err.contains("panicked"),
            "run {attempts} ({args:?}) failed: {status}\n{err}"
        );
        chains += 1;
        assert!(
            fx.read("out.json") == reference.json,
            "chain {chains} (after {kills} kills, the last run {args:?}) saved another network \
             than the uninterrupted run"
        );
        let state = Checkpoint::load(&ck).expect("the last checkpoint").state;
        assert!(
            state.finished(),
            "the chain ended on an unfinished checkpoint"
        );
        if kills >= KILLS {
            break;
        }
        // Start the next chain from scratch.
        fs::remove_file(&ck).unwrap();
        fs::remove_file(fx.path("out.json")).unwrap();
        last_position = None;
    }
    eprintln!(
        "resume: {kills} kills ({kills_before_a_checkpoint} before the first checkpoint), \
         {attempts} runs ({resumed_runs} resumed), {chains} chains each ending with the \
         uninterrupted network; temporaries left by killed writers: {:?}",
        temporaries(fx.root.path())
    );
    assert!(
        resumed_runs > 0,
        "no kill landed after a checkpoint: nothing was resumed"
    );
}

// ---- SIGINT. ----

/// Whether signals can be sent to `train` itself (not under a runner such as qemu, which
/// would receive them instead); prints a notice when not.
fn signals_reach_train(test: &str) -> bool {
    if runner_words().is_empty() {
        return true;
    }
    eprintln!(
        "NOTICE {test}: SIMDNET_TEST_RUNNER is set, so a signal would go to the runner; skipping"
    );
    false
}

/// Starts the long run with `extra` flags and its epoch lines on a pipe, and returns a little
/// into the training of epoch 2 (so that the SIGINT handler is installed and a signal sent
/// now stops training mid-epoch): once the line of epoch 1 is printed and the `checkpoint`
/// of epoch 1 (if any) is written, and a fraction of an epoch later. Returns the rest of its
/// stdout too.
fn start_into_epoch_2(
    fx: &Fixture,
    extra: &[&str],
    checkpoint: Option<&str>,
) -> (Running, BufReader<std::process::ChildStdout>) {
    let reference = reference();
    let mut args = long_run_args(reference.images);
    args.extend(strings(extra));
    let mut child = fx.spawn(&args, Stdio::piped());
    let mut lines = BufReader::new(child.0.stdout.take().expect("piped stdout"));
    let mut seen = String::new();
    while !seen.lines().any(|l| l.starts_with("Epoch 1/")) {
        let mut line = String::new();
        let read = lines.read_line(&mut line).expect("read train's stdout");
        assert!(
            read > 0,
            "train ended before epoch 1 ended: {}\nstdout:\n{seen}\nstderr:\n{}",
            child.wait(),
            fx.spawned_stderr()
        );
        seen.push_str(&line);
    }
    if let Some(name) = checkpoint {
        // Writing the checkpoint (and syncing it to disk) can take longer than epoch 2.
        while !fx.path(name).exists() {
            assert!(
                child.0.try_wait().expect("poll train").is_none(),
                "train ended without writing {name}: {}",
                fx.spawned_stderr()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // An epoch is a sixth of the run, evaluation included.
    std::thread::sleep(reference.wall / 6 / 8);
    (child, lines)
}

/// Reads the rest of the child's stdout and waits for it.
fn finish(mut child: Running, mut lines: BufReader<std::process::ChildStdout>) -> ExitStatus {
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut lines, &mut rest);
    child.wait()
}

#[test]
fn sigint_writes_a_mid_epoch_checkpoint_that_resumes_exactly() {
    if !signals_reach_train("sigint_writes_a_mid_epoch_checkpoint_that_resumes_exactly") {
        return;
    }
    let reference = reference();
    let fx = long_run_fixture(reference.images);
    // The signal lands in epoch 2 almost always; retry the rare times it lands between
    // epochs (then the run stops after epoch 1, which must resume exactly too).
    let mut positions = Vec::new();
    for attempt in 1..=3 {
        let (child, lines) = start_into_epoch_2(
            &fx,
            &[
                "--checkpoint",
                "ck.bin",
                "--save",
                "out.json",
                "--threads",
                "2",
            ],
            Some("ck.bin"),
        );
        send_signal(child.0.id(), "INT");
        let status = finish(child, lines);
        let err = fx.spawned_stderr();
        assert_eq!(status.code(), Some(INTERRUPTED), "{status}\n{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains(
                "interrupted: stopping at the end of this mini-batch (Ctrl-C again to quit now)"
            ),
            "{err}"
        );
        assert!(
            err.contains("interrupted: training stopped ")
                && err.contains(
                    "the checkpoint ck.bin holds that point: continue with train --resume ck.bin \
                     (--save was not written: the run is not over)"
                ),
            "{err}"
        );
        assert!(!fx.path("out.json").exists(), "--save was written");
        let state = Checkpoint::load(fx.path("ck.bin"))
            .expect("the checkpoint of the interruption")
            .state;
        assert!(!state.finished());
        let (epochs, batches) = (state.epochs_done(), state.batches_done());
        positions.push((epochs, batches));
        if batches > 0 {
            let at = format!(
                "training stopped {batches} mini-batches into epoch {}",
                epochs + 1
            );
            assert!(err.contains(&at), "stderr lacks {at:?}:\n{err}");
        } else {
            assert!(
                err.contains(&format!("training stopped after epoch {epochs}")),
                "{err}"
            );
        }

        // Resumed once with checkpoints to another file (ck.bin stays as it is), and once
        // from a copy that receives the checkpoints itself; on other thread counts.
        let interrupted = fx.read("ck.bin");
        fx.write("copy.bin", &interrupted);
        let out = fx.train(&strings(&[
            "--resume",
            "ck.bin",
            "--data",
            "mnist",
            "--checkpoint",
            "ck2.bin",
            "--save",
            "out.json",
            "--threads",
            "1",
        ]));
        assert_success(&out, "resuming the interrupted run");
        let resumed_at = if batches > 0 {
            format!("{batches} mini-batches into epoch {}", epochs + 1)
        } else {
            format!("after epoch {epochs}")
        };
        let header = stdout(&out);
        let network = header
            .lines()
            .find(|l| l.starts_with("Network:"))
            .unwrap_or_else(|| panic!("no Network: line in\n{header}"));
        assert!(
            network.contains("resumed from ck.bin") && network.contains(&resumed_at),
            "{network}"
        );
        assert!(
            fx.read("out.json") == reference.json,
            "the resumed run saved another network"
        );
        assert!(
            fx.read("ck.bin") == interrupted,
            "--checkpoint ck2.bin wrote to ck.bin"
        );
        assert!(
            Checkpoint::load(fx.path("ck2.bin"))
                .unwrap()
                .state
                .finished()
        );

        let out = fx.train(&strings(&[
            "--resume",
            "copy.bin",
            "--data",
            "mnist",
            "--save",
            "out2.json",
            "--threads",
            "3",
            "-q",
        ]));
        assert_success(&out, "resuming the copy");
        assert!(
            fx.read("out2.json") == reference.json,
            "the resumed copy saved another network"
        );
        assert!(
            Checkpoint::load(fx.path("copy.bin"))
                .unwrap()
                .state
                .finished(),
            "the resumed run did not write its checkpoints to the --resume file"
        );
        if batches > 0 {
            break;
        }
        eprintln!("NOTICE sigint: attempt {attempt} stopped between epochs; trying again");
        for f in ["ck.bin", "ck2.bin", "copy.bin", "out.json", "out2.json"] {
            fs::remove_file(fx.path(f)).unwrap();
        }
    }
    assert!(
        positions.iter().any(|&(_, batches)| batches > 0),
        "SIGINT never stopped training mid-epoch: {positions:?}"
    );
}

#[test]
fn sigint_without_a_checkpoint_exits_130_and_says_so() {
    if !signals_reach_train("sigint_without_a_checkpoint_exits_130_and_says_so") {
        return;
    }
    let fx = long_run_fixture(reference().images);
    let (child, lines) = start_into_epoch_2(&fx, &["--save", "out.json"], None);
    send_signal(child.0.id(), "INT");
    let status = finish(child, lines);
    let err = fx.spawned_stderr();
    assert_eq!(status.code(), Some(INTERRUPTED), "{status}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in [
        "interrupted: training stopped after ",
        " without a checkpoint (give --checkpoint FILE to be able to continue an interrupted \
         run); --save was not written",
    ] {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
    assert!(!fx.path("out.json").exists(), "--save was written");
    assert!(temporaries(fx.root.path()).is_empty());
}

#[test]
fn sigint_twice_exits_130_and_leaves_a_complete_checkpoint() {
    if !signals_reach_train("sigint_twice_exits_130_and_leaves_a_complete_checkpoint") {
        return;
    }
    let reference = reference();
    let fx = long_run_fixture(reference.images);
    let (child, lines) = start_into_epoch_2(
        &fx,
        &["--checkpoint", "ck.bin", "--save", "out.json"],
        Some("ck.bin"),
    );
    send_signal(child.0.id(), "INT");
    std::thread::sleep(Duration::from_millis(1));
    send_signal(child.0.id(), "INT");
    let status = finish(child, lines);
    let err = fx.spawned_stderr();
    assert_eq!(status.code(), Some(INTERRUPTED), "{status}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!fx.path("out.json").exists(), "--save was written");
    // Whether the second signal came before, during or after the checkpoint of the
    // interruption, the file holds a complete checkpoint (epoch 1's at least), which resumes
    // exactly. (A second signal during the write may leave its temporary file behind.)
    let state = Checkpoint::load(fx.path("ck.bin"))
        .expect("a complete checkpoint")
        .state;
    assert!(state.epochs_done() >= 1 && !state.finished());
    let out = fx.train(&strings(&[
        "--resume", "ck.bin", "--data", "mnist", "--save", "out.json", "-q",
    ]));
    assert_success(&out, "resuming after two SIGINTs");
    assert!(
        fx.read("out.json") == reference.json,
        "the resumed run saved another network"
    );
}

// ---- The library: sgd_from from every checkpoint. ----

/// `count` 4x4 examples as floats in [0, 1].
fn float_data(count: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
    let (pixels, labels) = synthetic(count, 4, seed);
    (
        pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
        labels,
    )
}

/// Records every checkpoint offered (encoded) and interrupts at the `interrupt_at`-th call
/// of [`Observer::interrupted`].
#[derive(Default)]
struct Recorder {
    checkpoints: Vec<Vec<u8>>,
    interrupt_at: Option<usize>,
    calls: usize,
}

impl Observer for Recorder {
    fn interrupted(&mut self) -> bool {
        self.calls += 1;
        self.interrupt_at == Some(self.calls)
    }

    fn wants_checkpoints(&self) -> bool {
        true
    }

    fn checkpoint(
        &mut self,
        net: &Network,
        config: &SgdConfig,
        state: &TrainingState,
    ) -> simdnet::Result<()> {
        let notes = BTreeMap::from([("test".to_string(), "resume".to_string())]);
        self.checkpoints
            .push(checkpoint::encode(net, config, state, &notes));
        Ok(())
    }
}

/// Training examples of the library tests: 230, so that mini-batches of 7 leave a last one
/// of 6 (33 per epoch).
const LIB_TRAINING: usize = 230;

/// Every optimizer, with L2, L1, dropout and the eta schedule on (and early stopping, and
/// an unshuffled run).
fn library_configs() -> Vec<(&'static str, SgdConfig)> {
    let base = SgdConfig {
        epochs: 5,
        mini_batch_size: 7,
        eta: 0.5,
        lambda: 2.0,
        shuffle: true,
        seed: 5,
        early_stopping: None,
        halve_eta_after: Some(1),
        monitor: Monitor::all(),
        optimizer: Optimizer::Sgd,
        lambda1: 0.5,
        dropout: 0.25,
    };
    vec![
        ("sgd", base),
        (
            "nesterov with early stopping",
            SgdConfig {
                optimizer: Optimizer::Momentum {
                    mu: 0.9,
                    nesterov: true,
                },
                eta: 0.05,
                early_stopping: Some(2),
                ..base
            },
        ),
        (
            "adam",
            SgdConfig {
                optimizer: Optimizer::ADAM,
                eta: 0.01,
                ..base
            },
        ),
        (
            "momentum, unshuffled",
            SgdConfig {
                optimizer: Optimizer::Momentum {
                    mu: 0.8,
                    nesterov: false,
                },
                eta: 0.05,
                shuffle: false,
                ..base
            },
        ),
    ]
}

/// The library tests' data and starting network.
struct LibraryRun {
    training: (Vec<f32>, Vec<u8>),
    evaluation: (Vec<f32>, Vec<u8>),
    start: Network,
}

impl LibraryRun {
    fn new() -> LibraryRun {
        LibraryRun {
            training: float_data(LIB_TRAINING, 3),
            evaluation: float_data(60, 4),
            start: Network::new(&[16, 12, 8, 4], Cost::CrossEntropy, Init::Default, 9).unwrap(),
        }
    }

    /// `sgd_from` on a pool of `threads` threads.
    fn train(
        &self,
        threads: usize,
        net: &mut Network,
        config: &SgdConfig,
        observer: &mut Recorder,
        state: Option<&TrainingState>,
    ) -> simdnet::Result<TrainingSummary> {
        let training = FloatExamples::new(&self.training.0, &self.training.1, 16).unwrap();
        let evaluation = FloatExamples::new(&self.evaluation.0, &self.evaluation.1, 16).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool");
        pool.install(|| sgd_from(net, &training, Some(&evaluation), config, observer, state))
    }

    /// The uninterrupted run: the network, the summary and every checkpoint offered.
    fn uninterrupted(&self, config: &SgdConfig) -> (Network, TrainingSummary, Vec<Vec<u8>>) {
        let mut net = self.start.clone();
        let mut recorder = Recorder::default();
        let summary = self
            .train(1, &mut net, config, &mut recorder, None)
            .expect("the uninterrupted run");
        (net, summary, recorder.checkpoints)
    }
}

/// The summary with every epoch's time set to 0 (the only thing a resumed run may change).
fn timeless(summary: &TrainingSummary) -> TrainingSummary {
    let mut s = summary.clone();
    for r in &mut s.epochs {
        r.seconds = 0.0;
    }
    s
}

/// Asserts that `net` and `summary` are the uninterrupted run's.
fn assert_same_run(
    what: &str,
    (net, summary): (&Network, &TrainingSummary),
    (want_net, want_summary): (&Network, &TrainingSummary),
) {
    assert!(net == want_net, "{what}: another network");
    assert_eq!(
        net.to_network2_json(),
        want_net.to_network2_json(),
        "{what}: another network"
    );
    assert_eq!(
        timeless(summary),
        timeless(want_summary),
        "{what}: another summary"
    );
}

#[test]
fn library_every_epoch_checkpoint_resumes_to_the_uninterrupted_network() {
    let run = LibraryRun::new();
    let (mut halved, mut stopped_early) = (false, false);
    for (name, config) in library_configs() {
        let (want_net, want_summary, checkpoints) = run.uninterrupted(&config);
        halved |= want_summary.epochs.iter().any(|r| r.eta < config.eta);
        stopped_early |= want_summary.stop == StopReason::EarlyStopping;
        assert_eq!(
            checkpoints.len(),
            want_summary.epochs.len(),
            "{name}: one checkpoint per epoch"
        );
        assert!(
            want_summary.epochs.len() > 1,
            "{name}: the run stopped after one epoch"
        );
        for (i, bytes) in checkpoints.iter().enumerate() {
            let ck = Checkpoint::from_bytes(bytes)
                .unwrap_or_else(|e| panic!("{name}: checkpoint {} does not decode: {e}", i + 1));
            assert!(
                ck.to_bytes() == *bytes,
                "{name}: checkpoint {} re-encodes differently",
                i + 1
            );
            assert_eq!(ck.config, config);
            assert_eq!(ck.notes["test"], "resume");
            let state = &ck.state;
            assert_eq!((state.epochs_done(), state.batches_done()), (i + 1, 0));
            assert_eq!(state.training_examples(), LIB_TRAINING);
            assert_eq!(
                state.finished(),
                i + 1 == checkpoints.len(),
                "{name}: epoch {}",
                i + 1
            );
            assert_eq!(
                timeless(state.summary()).epochs,
                timeless(&want_summary).epochs[..=i],
                "{name}: the reports in checkpoint {}",
                i + 1
            );
            for threads in [1, 2] {
                let mut net = ck.network.clone();
                let mut recorder = Recorder::default();
                let summary = run
                    .train(threads, &mut net, &ck.config, &mut recorder, Some(state))
                    .unwrap_or_else(|e| panic!("{name}: resuming after epoch {}: {e}", i + 1));
                assert_same_run(
                    &format!("{name}, resumed after epoch {} on {threads} threads", i + 1),
                    (&net, &summary),
                    (&want_net, &want_summary),
                );
                // The resumed run offers the checkpoints of the epochs it ran.
                assert_eq!(recorder.checkpoints.len(), checkpoints.len() - i - 1);
            }
        }
    }
    // The checkpoints carried the eta schedule's and early stopping's counters.
    assert!(halved, "no run halved eta");
    assert!(stopped_early, "no run stopped early");
}

#[test]
fn library_interrupted_runs_resume_exactly_mid_epoch_and_between_epochs() {
    let run = LibraryRun::new();
    // Calls of `interrupted` at which each run of a chain stops: 33 calls per epoch (after
    // each of the first 32 mini-batches, and one after the epoch's checkpoint), so 1 and 32
    // stop after the first and the next-to-last mini-batch, 33 between epochs.
    let chains: [&[usize]; 3] = [&[1, 32, 33, 20, 45, 7], &[66, 1, 1, 1], &[100]];
    for (name, config) in library_configs() {
        let (want_net, want_summary, _) = run.uninterrupted(&config);
        let mut all_positions = Vec::new();
        for (c, stops) in chains.iter().enumerate() {
            let mut net = run.start.clone();
            let mut state: Option<TrainingState> = None;
            let mut positions = Vec::new();
            let mut runs = 0;
            let summary = loop {
                let mut recorder = Recorder {
                    interrupt_at: stops.get(runs).copied(),
                    ..Recorder::default()
                };
                let threads = runs % 2 + 1;
                runs += 1;
                let summary = run
                    .train(threads, &mut net, &config, &mut recorder, state.as_ref())
                    .unwrap_or_else(|e| panic!("{name}, chain {c}, run {runs}: {e}"));
                if summary.stop != StopReason::Interrupted {
                    break summary;
                }
                // Continue from the last checkpoint offered, through its bytes.
                let bytes = recorder
                    .checkpoints
                    .pop()
                    .expect("an interrupted run offered a checkpoint");
                let ck = Checkpoint::from_bytes(&bytes).expect("the checkpoint decodes");
                assert!(
                    !ck.state.finished(),
                    "{name}: an interrupted run is not finished"
                );
                let position = (ck.state.epochs_done(), ck.state.batches_done());
                if let Some(&last) = positions.last() {
                    assert!(last <= position, "{name}: went back to {position:?}");
                }
                positions.push(position);
                net = ck.network;
                state = Some(ck.state);
            };
            assert_same_run(
                &format!("{name}, chain {c} resumed at {positions:?}"),
                (&net, &summary),
                (&want_net, &want_summary),
            );
            all_positions.extend(positions);
        }
        assert!(
            all_positions.iter().any(|&(_, b)| b > 0),
            "{name}: no mid-epoch checkpoint ({all_positions:?})"
        );
        assert!(
            all_positions.iter().any(|&(e, b)| e > 0 && b == 0),
            "{name}: no interruption between epochs ({all_positions:?})"
        );
    }
}

#[test]
fn library_first_interruption_is_one_mini_batch_in() {
    let run = LibraryRun::new();
    let (_, config) = library_configs().remove(2);
    let mut net = run.start.clone();
    let mut recorder = Recorder {
        interrupt_at: Some(1),
        ..Recorder::default()
    };
    let summary = run
        .train(1, &mut net, &config, &mut recorder, None)
        .unwrap();
    assert_eq!(summary.stop, StopReason::Interrupted);
    assert!(summary.epochs.is_empty());
    assert_eq!(recorder.checkpoints.len(), 1);
    let ck = Checkpoint::from_bytes(&recorder.checkpoints[0]).unwrap();
    assert_eq!((ck.state.epochs_done(), ck.state.batches_done()), (0, 1));
    assert!(
        ck.network == net,
        "the checkpoint holds another network than the run's"
    );
}

#[test]
fn library_checkpoint_refuses_other_training_data() {
    let run = LibraryRun::new();
    let (_, config) = library_configs().remove(0);
    let (_, _, checkpoints) = run.uninterrupted(&config);
    let ck = Checkpoint::from_bytes(&checkpoints[0]).unwrap();
    let fewer = (run.training.0[16..].to_vec(), run.training.1[1..].to_vec());
    let other = LibraryRun {
        training: fewer,
        evaluation: run.evaluation.clone(),
        start: run.start.clone(),
    };
    let mut net = ck.network.clone();
    let err = other
        .train(
            1,
            &mut net,
            &ck.config,
            &mut Recorder::default(),
            Some(&ck.state),
        )
        .expect_err("a checkpoint of 230 examples resumed on 229");
    let text = err.to_string();
    assert!(
        text.contains(
            "it was made with 230 training examples, and the training data now holds 229"
        ),
        "{text}"
    );
    assert!(net == ck.network, "the network changed");
}

// ---- Bad --resume files and flags (the small run). ----

/// 4x4 images: 120 in the training file (20 of them validation), 30 in the test file.
fn small_fixture() -> Fixture {
    Fixture::new(4, 120, 30)
}

/// The small run's flags.
fn small_run_args() -> Vec<String> {
    strings(&[
        "--data",
        "mnist",
        "--sizes",
        "16,8,4",
        "--validation-size",
        "20",
        "--evaluation",
        "validation",
        "--mini-batch-size",
        "5",
        "--epochs",
        "3",
        "--optimizer",
        "nesterov",
        "--monitor",
        "all",
        "-q",
    ])
}

/// The small fixture with the small run done: its checkpoint `ck.bin` and network `net.json`.
fn small_fixture_with_checkpoint() -> Fixture {
    let fx = small_fixture();
    let mut args = small_run_args();
    args.extend(strings(&["--checkpoint", "ck.bin", "--save", "net.json"]));
    assert_success(&fx.train(&args), "the small run");
    fx
}

/// `train --resume <file> <extra>` must fail with `code` and `error: ...` naming `file` and
/// containing `needles`, before training, leaving `file` as it was.
fn assert_resume_fails(
    fx: &Fixture,
    file: &str,
    extra: &[&str],
    code: i32,
    needles: &[&str],
) -> String {
    let before = fs::read(fx.path(file)).ok();
    let mut args = strings(&["--resume", file, "--data", "mnist", "--save", "out.json"]);
    args.extend(strings(extra));
    let out = fx.train(&args);
    let mut all = vec![file];
    all.extend(needles);
    let err = assert_fails(&out, code, &all, true);
    assert_eq!(fs::read(fx.path(file)).ok(), before, "{file} was changed");
    assert!(!fx.path("out.json").exists(), "--save was written");
    err
}

#[test]
fn resume_from_a_missing_file() {
    let fx = small_fixture();
    assert_resume_fails(
        &fx,
        "gone.bin",
        &[],
        RUNTIME,
        &["error: cannot read gone.bin: "],
    );
}

#[test]
fn resume_from_an_empty_file() {
    let fx = small_fixture();
    fx.write("empty.bin", b"");
    assert_resume_fails(
        &fx,
        "empty.bin",
        &[],
        RUNTIME,
        &["error: empty.bin: not a usable checkpoint: it does not start with \"SIMDCKPT\""],
    );
}

#[test]
fn resume_from_a_saved_network_says_it_is_not_a_checkpoint() {
    let fx = small_fixture_with_checkpoint();
    assert_resume_fails(
        &fx,
        "net.json",
        &[],
        RUNTIME,
        &[
            "error: net.json: not a usable checkpoint: it does not start with \"SIMDCKPT\" (is \
             it a checkpoint? a network saved with --save is read with --load)",
        ],
    );
}

#[test]
fn resume_from_a_truncated_checkpoint() {
    let fx = small_fixture_with_checkpoint();
    let bytes = fx.read("ck.bin");
    for (name, len) in [
        ("half.bin", bytes.len() / 2),
        ("short.bin", bytes.len() - 1),
        ("prefix.bin", 21),
    ] {
        fx.write(name, &bytes[..len]);
        let err = assert_resume_fails(
            &fx,
            name,
            &[],
            RUNTIME,
            &[&format!("error: {name}: not a usable checkpoint: ")],
        );
        assert!(
            err.contains("truncated") || err.contains("checksum mismatch"),
            "{name}: {err}"
        );
    }
}

#[test]
fn resume_from_a_checkpoint_with_a_flipped_byte() {
    let fx = small_fixture_with_checkpoint();
    let bytes = fx.read("ck.bin");
    // A byte of the payload (the last weights or optimizer state), and one of the header.
    for (name, at) in [("payload.bin", bytes.len() - 9), ("header.bin", 40)] {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x10;
        fx.write(name, &flipped);
        assert_resume_fails(
            &fx,
            name,
            &[],
            RUNTIME,
            &[
                &format!("error: {name}: not a usable checkpoint: checksum mismatch"),
                "the file is corrupt or was cut short",
            ],
        );
    }
}

#[test]
fn resume_from_a_checkpoint_of_another_version() {
    let fx = small_fixture_with_checkpoint();
    let mut bytes = fx.read("ck.bin");
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    fx.write("v2.bin", &bytes);
    assert_resume_fails(
        &fx,
        "v2.bin",
        &[],
        RUNTIME,
        &["error: v2.bin: not a usable checkpoint: format version 2; this build reads version 1"],
    );
}

#[test]
fn resume_from_a_checkpoint_without_train_notes() {
    let fx = small_fixture_with_checkpoint();
    let mut ck = Checkpoint::load(fx.path("ck.bin")).unwrap();
    ck.notes.clear();
    fx.write("library.bin", &ck.to_bytes());
    assert_resume_fails(
        &fx,
        "library.bin",
        &[],
        RUNTIME,
        &[
            "error: library.bin: not a usable checkpoint: it has no train.evaluation note (was it \
             written by train --checkpoint?)",
        ],
    );
}

/// A checkpoint made on other data (another training-set size) is refused before training,
/// with both counts and the checkpoint's name.
#[test]
fn resume_with_other_training_data() {
    let fx = small_fixture_with_checkpoint();
    // 100 images instead of 120: 80 training examples instead of 100.
    fx.write_images(TRAIN_IMAGES, TRAIN_LABELS, 4, 100, 1);
    assert_resume_fails(
        &fx,
        "ck.bin",
        &[],
        USAGE,
        &[
            "error: ck.bin: the checkpoint was made with 100 training examples, and the \
             training data in mnist now holds 80: resume it on the data it was made on",
        ],
    );
}

#[test]
fn resume_with_flags_it_does_not_allow() {
    let fx = small_fixture_with_checkpoint();
    assert_resume_fails(
        &fx,
        "ck.bin",
        &["--eta", "0.1"],
        USAGE,
        &[
            "error: --eta cannot be given with --resume: the run's network, hyperparameters and \
             data options come from the checkpoint ck.bin",
        ],
    );
    assert_resume_fails(
        &fx,
        "ck.bin",
        &["--epochs", "9", "--validation-size", "10", "--seed", "1"],
        USAGE,
        &[
            "--epochs",
            "--seed",
            "--validation-size",
            "cannot be given with --resume",
        ],
    );
}

// ---- Unwritable checkpoints. ----

#[test]
fn checkpoint_into_a_missing_directory_fails_before_training() {
    let fx = small_fixture();
    let mut args = small_run_args();
    args.extend(strings(&["--checkpoint", "missing/ck.bin"]));
    assert_fails(
        &fx.train(&args),
        RUNTIME,
        &[
            "error: cannot write the checkpoint to missing/ck.bin: the directory missing does \
             not exist",
        ],
        true,
    );
    // A --resume whose checkpoints go into a missing directory, the same.
    let fx = small_fixture_with_checkpoint();
    let out = fx.train(&strings(&[
        "--resume",
        "ck.bin",
        "--data",
        "mnist",
        "--checkpoint",
        "missing/ck.bin",
    ]));
    assert_fails(
        &out,
        RUNTIME,
        &["cannot write the checkpoint to missing/ck.bin"],
        true,
    );
}

/// The shell script that mounts a tmpfs of `$2` bytes on the directory `$1` in a private
/// mount namespace, runs the shell commands `$3` (with `$d` the directory), then the rest of
/// the arguments, then copies `$d/ck.bin` to `after.bin` and prints the directory's entries
/// on lines starting with `@@entry:` (the mount is gone once the namespace ends).
const TMPFS_SCRIPT: &str = r#"
d=$1; size=$2; setup=$3; shift 3
mount -t tmpfs -o size=$size tmpfs "$d" || exit 97
eval "$setup" || exit 98
"$@"; rc=$?
echo "@@ran"
cp "$d/ck.bin" after.bin 2>/dev/null
for f in "$d"/.* "$d"/*; do echo "@@entry:${f##*/}"; done
exit $rc
"#;

/// Runs `train <args>` with `dir` a tmpfs of `size` bytes prepared by `setup` (see
/// [`TMPFS_SCRIPT`]), or `None` if this machine cannot make one.
fn train_on_tmpfs(
    fx: &Fixture,
    dir: &str,
    size: usize,
    setup: &str,
    args: &[String],
) -> Option<Output> {
    fs::create_dir(fx.path(dir)).unwrap();
    let mut words = runner_words();
    words.push(env!("CARGO_BIN_EXE_train").to_string());
    words.extend(args.iter().cloned());
    let out = Command::new("unshare")
        .args([
            "-rm",
            "sh",
            "-c",
            TMPFS_SCRIPT,
            "sh",
            dir,
            &size.to_string(),
            setup,
        ])
        .args(&words)
        .current_dir(fx.root.path())
        .env_remove("MNIST_DIR")
        .env_remove("RAYON_NUM_THREADS")
        .env_remove("SIMDNET_ISA")
        .output();
    match out {
        Ok(out) if stdout(&out).contains("@@ran") => Some(out),
        other => {
            let why = match other {
                Ok(out) => format!("exit {:?}: {}", out.status.code(), stderr(&out).trim()),
                Err(e) => e.to_string(),
            };
            eprintln!("NOTICE resume: cannot mount a tmpfs in a private namespace ({why})");
            None
        }
    }
}

/// The entries the script listed (other than `.`, `..` and unmatched globs).
fn tmpfs_entries(out: &Output) -> Vec<String> {
    stdout(out)
        .lines()
        .filter_map(|l| l.strip_prefix("@@entry:"))
        .filter(|e| !matches!(*e, "." | ".." | ".*" | "*"))
        .map(str::to_string)
        .collect()
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(true)
}

#[test]
fn checkpoint_in_a_read_only_directory_fails_before_training_and_is_kept() {
    let fx = small_fixture_with_checkpoint();
    let original = fx.read("ck.bin");
    let args = strings(&[
        "--resume",
        "ro/ck.bin",
        "--data",
        "mnist",
        "--save",
        "out.json",
    ]);
    let setup = r#"cp ck.bin "$d/ck.bin" && mount -o remount,ro "$d""#;
    let (out, kept) = match train_on_tmpfs(&fx, "ro", 1 << 20, setup, &args) {
        Some(out) => {
            assert_eq!(
                tmpfs_entries(&out),
                ["ck.bin"],
                "a temporary was left behind"
            );
            (out, fx.read("after.bin"))
        }
        None if is_root() => {
            eprintln!(
                "NOTICE resume: running as root without a tmpfs, where permission bits do not \
                 stop writes; skipping the read-only directory test"
            );
            return;
        }
        None => {
            use std::os::unix::fs::PermissionsExt;
            fx.write("ro/ck.bin", &original);
            fs::set_permissions(fx.path("ro"), fs::Permissions::from_mode(0o555)).unwrap();
            let out = fx.train(&args);
            fs::set_permissions(fx.path("ro"), fs::Permissions::from_mode(0o755)).unwrap();
            assert!(
                temporaries(&fx.path("ro")).is_empty(),
                "a temporary was left behind"
            );
            (out, fx.read("ro/ck.bin"))
        }
    };
    let err = assert_fails(
        &out,
        RUNTIME,
        &["error: cannot write the checkpoint to ro/ck.bin: "],
        true,
    );
    assert!(
        err.contains("Read-only file system") || err.contains("Permission denied"),
        "{err}"
    );
    assert!(kept == original, "the checkpoint was changed");
}

#[test]
fn checkpoint_on_a_disk_that_fills_up_keeps_the_previous_one_which_resumes_exactly() {
    let fx = small_fixture();
    // A network whose checkpoint spans many pages (Adam keeps two arrays per parameter).
    let mut run = small_run_args();
    for (flag, value) in [
        ("--sizes", "16,200,4"),
        ("--optimizer", "adam"),
        ("--eta", "0.01"),
    ] {
        let at = run.iter().position(|a| a == flag);
        match at {
            Some(i) => run[i + 1] = value.to_string(),
            None => run.extend(strings(&[flag, value])),
        }
    }
    let mut args = run.clone();
    args.extend(strings(&["--checkpoint", "ref.bin", "--save", "ref.json"]));
    assert_success(&fx.train(&args), "the uninterrupted run");
    let size = fx.read("ref.bin").len();
    assert!(size > 40_000, "a checkpoint of {size} bytes");
    // Room for one checkpoint and a half: the first is written (its temporary, then renamed),
    // the second's temporary cannot be, next to the first.
    let setup = format!(
        r#"avail=$(df -B1 --output=avail "$d" | tail -n 1) && head -c $((avail - {})) /dev/zero > "$d/fill""#,
        size * 3 / 2
    );
    let mut args = run;
    args.extend(strings(&[
        "--checkpoint",
        "disk/ck.bin",
        "--save",
        "out.json",
    ]));
    let Some(out) = train_on_tmpfs(&fx, "disk", 1 << 20, &setup, &args) else {
        eprintln!("NOTICE resume: skipping the full-disk checkpoint test");
        return;
    };
    assert_fails(
        &out,
        RUNTIME,
        &["error: cannot write disk/ck.bin: No space left on device"],
        false,
    );
    assert!(!fx.path("out.json").exists(), "--save was written");
    assert_eq!(
        tmpfs_entries(&out),
        ["ck.bin", "fill"],
        "a temporary was left behind"
    );
    // The checkpoint of epoch 1 is intact, and continues the run exactly.
    let state = Checkpoint::load(fx.path("after.bin"))
        .expect("the previous checkpoint is intact")
        .state;
    assert_eq!((state.epochs_done(), state.batches_done()), (1, 0));
    let out = fx.train(&strings(&[
        "--resume",
        "after.bin",
        "--data",
        "mnist",
        "--save",
        "out.json",
        "-q",
    ]));
    assert_success(&out, "resuming the kept checkpoint");
    assert!(
        fx.read("out.json") == fx.read("ref.json"),
        "the resumed run saved another network"
    );
}
