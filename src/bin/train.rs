//! `train`: network2.py's `SGD` on MNIST from the command line, at native speed.
//!
//! With no flags it is the book's chapter-3 run: a 784-30-10 sigmoid network with the default
//! weight initializer and the cross-entropy cost, trained for 30 epochs on mini-batches of 10
//! with eta 0.5 and lambda 5.0, evaluated on the test set after each epoch.
//!
//! The library never prints; everything the user sees is written here: a header, one line per
//! epoch (with a progress bar on stderr while an epoch runs, when stderr is a terminal), a
//! summary, and errors as `error: <message>` on stderr. See `train --help` for the flags and
//! the exit status.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, IsTerminal, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use simdnet::atomic;
use simdnet::data::download::{DownloadOptions, DownloadProgress, FileReport, Outcome, download};
use simdnet::data::expand::{self, Expanded};
use simdnet::data::{Dataset, LoadMode, Mnist, MnistOptions};
use simdnet::isa::ISA_ENV_VAR;
use simdnet::network::{
    Accuracy, Activation, Cost, EpochReport, Examples, Init, Monitor, Network, Observer, Optimizer,
    SgdConfig, StopReason, TrainingState, TrainingSummary, checkpoint, sgd_from,
};
use simdnet::{Error, Isa};

#[path = "train/plot.rs"]
mod plot;
#[path = "train/resume.rs"]
mod resume;

/// The data directory when neither `--data` nor `$MNIST_DIR` names one.
const DEFAULT_DATA_DIR: &str = "data/mnist";

/// The environment variable that names the data directory when `--data` is not given.
const DATA_ENV_VAR: &str = "MNIST_DIR";

/// The header row of the `--metrics` file.
const METRICS_HEADER: &str =
    "epoch,eta,training_cost,training_accuracy,evaluation_cost,evaluation_accuracy,seconds";

/// Exit status for usage and configuration errors.
const EXIT_USAGE: u8 = 2;

/// Exit status for runtime errors.
const EXIT_RUNTIME: u8 = 1;

/// The exit status after Ctrl-C (128 + SIGINT, as a shell reports a process it interrupted).
const EXIT_INTERRUPTED: u8 = 130;

const SHORT_AFTER_HELP: &str = "\
Exit status: 0 success, 1 runtime error (files, divergence), 2 usage or configuration error.
Errors are printed to stderr as \"error: <message>\". See --help for more.";

const AFTER_HELP: &str = "\
Data:
  The data directory holds MNIST's four IDX files: train-images-idx3-ubyte,
  train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, raw or as .gz
  archives (decompressed once beside them, or into $SIMDNET_CACHE_DIR, else
  $XDG_CACHE_HOME/simdnet, else ~/.cache/simdnet where the directory is read-only).
  --download fetches them from public mirrors and checks their SHA-256 digests. As in
  network2.py's mnist_loader, the last --validation-size images of the training file are the
  validation set and the rest the training set; the t10k files are the test set.

Reproducibility:
  --seed seeds both the initial weights and the shuffle. The same seed, flags and data give
  the same network on any number of --threads (the saved JSON is byte-identical), and the same
  initial network on every machine and instruction set.

Environment:
  MNIST_DIR          the data directory when --data is not given
  SIMDNET_ISA        the instruction set when --isa is not given (scalar, avx2, avx512, neon)
  SIMDNET_CACHE_DIR  where the .gz files of a read-only data directory are decompressed
  HTTPS_PROXY        the proxy for --download, if one is needed (NO_PROXY is honoured)

Exit status:
  0  success
  1  runtime error: a file cannot be found, read, parsed or written (the data directory and
     its IDX files, --load, --save, --metrics), --download failed (no mirror answered, or a
     file did not match its SHA-256), or training diverged
  2  usage or configuration error: a malformed or invalid option, options that contradict
     each other, or options that do not fit the data (--sizes against the image size or the
     labels, --validation-size against the training file, --sizes against a --load file), an
     unknown or unavailable --isa
  Errors are printed to stderr as \"error: <message>\".

Examples:
  train --download                              fetch MNIST into data/mnist, then train
  train                                         the book's chapter-3 run
  train --sizes 784,100,10 --epochs 60 --save net.json --metrics run.csv
  train --load net.json --epochs 10 --eta 0.1 --save net.json
  train --evaluation validation --early-stopping 10 --monitor all
  train --evaluation validation --halve-eta-after 10 --epochs 200   the book's eta schedule
  train --epochs 10 --plot run.svg              cost and accuracy per epoch, as an SVG";

/// Train a sigmoid network on MNIST with network2.py's mini-batch SGD (L2 regularization,
/// cross-entropy or quadratic cost), on simdnet's SIMD GEMM.
///
/// With no flags this is the book's chapter-3 run: 784-30-10, cross-entropy, 30 epochs,
/// mini-batches of 10, eta 0.5, lambda 5.0, test accuracy after each epoch.
#[derive(Parser, Clone, Debug)]
#[command(name = "train", version, after_help = SHORT_AFTER_HELP, after_long_help = AFTER_HELP)]
struct Cli {
    /// Directory holding the four MNIST IDX files [default: $MNIST_DIR if set, else data/mnist]
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// Layer sizes, inputs first, comma separated
    ///
    /// The input layer must have as many neurons as the images have pixels, and the output
    /// layer more neurons than the largest label. With --load, leave it out to use the file's
    /// sizes (or give the same ones).
    #[arg(long, value_name = "N,N,...", default_value = "784,30,10", value_parser = parse_sizes)]
    sizes: Sizes,

    /// Number of passes over the training data
    #[arg(long, value_name = "N", default_value = "30", value_parser = parse_at_least_one)]
    epochs: NonZeroUsize,

    /// Training examples per mini-batch
    ///
    /// The last mini-batch of an epoch holds the remainder when this does not divide the
    /// training-set size.
    #[arg(long, value_name = "N", default_value_t = 10)]
    mini_batch_size: usize,

    /// Learning rate, > 0
    #[arg(
        long,
        value_name = "ETA",
        default_value = "0.5",
        allow_negative_numbers = true
    )]
    eta: f32,

    /// L2 regularization parameter, >= 0
    ///
    /// Each step scales the weights by 1 - eta * lambda / n, n the training-set size.
    #[arg(
        long,
        value_name = "LAMBDA",
        default_value = "5.0",
        allow_negative_numbers = true
    )]
    lambda: f32,

    /// L1 regularization parameter, >= 0
    ///
    /// Each step also moves every weight by -(eta * lambda1 / n) sgn(w), sgn(0) = 0, through
    /// the optimizer like the L2 term; usable together with --lambda.
    #[arg(
        long,
        value_name = "LAMBDA1",
        default_value = "0.0",
        allow_negative_numbers = true
    )]
    lambda1: f32,

    /// Inverted-dropout rate of the hidden layers, in [0, 1)
    ///
    /// During training each hidden activation is kept with probability 1 - P and scaled by
    /// 1/(1 - P), else set to 0 (the same mask multiplies its backpropagated error); the
    /// inputs and the output layer are never dropped, and evaluation never drops. The masks
    /// follow from --seed, the step, the layer, the example and the unit, so results do not
    /// depend on --threads or --isa. 0 (the default) is off, as network2.
    #[arg(
        long,
        value_name = "P",
        default_value = "0.0",
        allow_negative_numbers = true
    )]
    dropout: f32,

    /// How the parameters follow the gradient
    ///
    /// sgd: network2's plain gradient descent. momentum: v = mu v - eta g, w += v (mu from
    /// --momentum). nesterov: momentum with Nesterov's look-ahead. adam: Adam with beta1 0.9,
    /// beta2 0.999, epsilon 1e-8 (use a small --eta, e.g. 0.001). The L2 and L1 terms are
    /// part of g for every optimizer.
    #[arg(long, value_name = "OPT", value_enum, default_value_t = OptimizerName::Sgd)]
    optimizer: OptimizerName,

    /// Momentum coefficient mu for --optimizer momentum or nesterov, in [0, 1)
    #[arg(
        long,
        value_name = "MU",
        default_value = "0.9",
        allow_negative_numbers = true
    )]
    momentum: f32,

    /// Cost function
    ///
    /// With --load, the cost saved in the file unless this flag is given.
    #[arg(
        long,
        value_name = "COST",
        default_value = "cross-entropy",
        value_parser = PossibleValuesParser::new(["cross-entropy", "quadratic", "log-likelihood"])
            .try_map(|s: String| s.parse::<Cost>())
    )]
    cost: Cost,

    /// Activation of the hidden layers of a new network
    ///
    /// With --load, the file's activations are used; giving this flag then must agree with
    /// them.
    #[arg(
        long,
        value_name = "ACT",
        default_value = "sigmoid",
        value_parser = PossibleValuesParser::new(["sigmoid", "tanh", "relu"])
            .try_map(|s: String| s.parse::<Activation>())
    )]
    hidden_activation: Activation,

    /// Activation of the output layer of a new network [default: softmax with
    /// --cost log-likelihood, else sigmoid]
    ///
    /// softmax goes with --cost log-likelihood and only with it; cross-entropy needs sigmoid
    /// outputs; quadratic takes sigmoid, tanh or relu. With --load, as --hidden-activation.
    #[arg(
        long,
        value_name = "ACT",
        value_parser = PossibleValuesParser::new(["sigmoid", "tanh", "relu", "softmax"])
            .try_map(|s: String| s.parse::<Activation>())
    )]
    output_activation: Option<Activation>,

    /// Weight initializer of a new network (ignored with --load)
    ///
    /// default: weights N(0, 1/n_in), n_in the neuron's number of inputs; large: weights
    /// N(0, 1), as in the book's chapter 1. Biases are N(0, 1) with either.
    #[arg(
        long,
        value_name = "INIT",
        default_value = "default",
        value_parser = PossibleValuesParser::new(["default", "large"])
            .try_map(|s: String| s.parse::<Init>())
    )]
    init: Init,

    /// Seed of the initial weights and of the shuffle
    ///
    /// The same seed gives the same run on any number of threads.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    seed: u64,

    /// Which set to evaluate on after each epoch
    #[arg(long, value_name = "SET", value_enum, default_value_t = EvaluationSet::Test)]
    evaluation: EvaluationSet,

    /// Images at the end of the training file held out as the validation set
    ///
    /// The rest of the training file is the training set, as in network2.py's mnist_loader.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    validation_size: usize,

    /// Series to compute after each epoch, comma separated: evaluation-cost,
    /// evaluation-accuracy, training-cost, training-accuracy; or all, or none
    ///
    /// Costs are network2's total_cost (including the L2 term), accuracies its accuracy.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "evaluation-accuracy",
        value_parser = parse_monitor
    )]
    monitor: Monitor,

    /// Stop after N epochs in a row without a new best evaluation accuracy [default: off]
    ///
    /// network2's early_stopping_n. The evaluation accuracy is computed for it even when not
    /// monitored.
    #[arg(long, value_name = "N")]
    early_stopping: Option<usize>,

    /// Halve eta after N epochs in a row without a new best evaluation accuracy; stop when
    /// eta would reach 1/128 of --eta [default: off]
    ///
    /// The book's chapter-3 learning-rate schedule. Each halving restarts the count, as does a
    /// new best accuracy. The epochs run at --eta, --eta/2, ..., --eta/64; when the count
    /// reaches N at --eta/64, training stops instead of halving to --eta/128. Works with
    /// --early-stopping (which counts from the last new best only): whichever fires first
    /// stops training. The evaluation accuracy is computed for it even when not monitored;
    /// each epoch's eta is in the --metrics file (column eta) and on the epoch lines.
    #[arg(long, value_name = "N")]
    halve_eta_after: Option<usize>,

    /// Start from a network saved in network2's JSON format [default: a new network]
    ///
    /// FILE may come from network2.py's save or from --save. Without --load, a new network
    /// is made from --sizes, --init and --seed.
    #[arg(long, value_name = "FILE")]
    load: Option<PathBuf>,

    /// Save the trained network to FILE in network2's JSON format [default: not saved]
    ///
    /// Written atomically after training, also when early stopping ends it; never when
    /// training diverges (FILE is then left as it was). network2.py can load it.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,

    /// Write the whole training state to FILE after every epoch [default: no checkpoints]
    ///
    /// The network, the optimizer's state (velocities, Adam's moments), the position in the
    /// run, eta and the counters of --halve-eta-after and --early-stopping, the metrics so
    /// far and every hyperparameter, in one binary file with a checksum. Written atomically
    /// (a temporary file in the same directory, synced, then renamed over FILE), so a crash
    /// or a full disk at any moment leaves the previous checkpoint intact. Ctrl-C stops at
    /// the end of the current mini-batch and writes FILE there. Continue with --resume FILE.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,

    /// Continue the run saved in the checkpoint FILE
    ///
    /// The network, the hyperparameters and the data options come from FILE; the run
    /// continues at the mini-batch after the checkpoint and ends with the same network, bit
    /// for bit, as if it had never stopped (on the same --isa; any --threads). Only --data,
    /// --no-mmap, --threads, --isa, --save, --metrics, --plot, --quiet, --checkpoint and
    /// --download may be given with it. Checkpoints keep going to FILE unless --checkpoint
    /// names another file. --metrics gets the rows of the epochs before the checkpoint too.
    #[arg(long, value_name = "FILE")]
    resume: Option<PathBuf>,

    /// Visit the training data in file order every epoch instead of shuffling it
    #[arg(long)]
    no_shuffle: bool,

    /// Train on the training set plus each image shifted one pixel up, down, left and right
    /// (5x the images, generated on the fly)
    ///
    /// The book's expanded training data (chapter 3): 250,000 examples from MNIST's 50,000
    /// training images, each shifted copy made from the image as its mini-batch is gathered
    /// (the pixels that enter at the edge are 0). n in the L2 decay (eta * lambda / n) is the
    /// expanded size, as are the training-cost and training-accuracy series; the evaluation,
    /// validation and test sets are never expanded.
    #[arg(long)]
    expand: bool,

    /// Read the data files into memory instead of memory-mapping them
    ///
    /// By default the IDX files are memory-mapped: nothing is copied, but the files must not
    /// be modified or truncated while train runs (a file changed under the map changes the
    /// data mid-run, and a truncated one kills the process with SIGBUS; replacing a file by
    /// renaming a new one over it is safe). --no-mmap copies each file into memory once
    /// (about 55 MB for MNIST) and has no such requirement: use it for data that something
    /// else may rewrite, e.g. on a shared network file system. The results are the same.
    #[arg(long)]
    no_mmap: bool,

    /// Worker threads [default: $RAYON_NUM_THREADS if set, else one per CPU]
    ///
    /// The result does not depend on it.
    #[arg(long, value_name = "N", value_parser = parse_at_least_one)]
    threads: Option<NonZeroUsize>,

    /// Instruction set of the kernels [default: $SIMDNET_ISA if set, else the best this CPU
    /// has]
    ///
    /// It must be one this CPU supports. With avx512 the larger products run AVX-512, and
    /// the fused element-wise and sparse kernels and the products under 1 MFLOP AVX2, which
    /// measured faster on a hidden layer's short rows and a small mini-batch's products.
    #[arg(
        long,
        value_name = "ISA",
        ignore_case = true,
        value_parser = PossibleValuesParser::new(Isa::ALL.map(Isa::name))
            .try_map(|s: String| s.parse::<Isa>())
    )]
    isa: Option<Isa>,

    /// Write per-epoch metrics to FILE as CSV [default: not written]
    ///
    /// Columns: epoch, eta, training_cost, training_accuracy, evaluation_cost,
    /// evaluation_accuracy, seconds (training time of the epoch, evaluation excluded).
    /// Accuracies are fractions in [0, 1]; series not monitored are empty cells. The file is
    /// rewritten atomically after every epoch, so an interrupted run leaves a complete CSV of
    /// the finished epochs.
    #[arg(long, value_name = "FILE")]
    metrics: Option<PathBuf>,

    /// Draw the cost and the accuracy per epoch into FILE as an SVG [default: not drawn]
    ///
    /// Two panels, as the book's chapter-3 figures: cost (left) and accuracy in % (right)
    /// against the epoch, one line per monitored series (training and evaluation), with a
    /// legend; a panel whose series were not monitored is left out. Without --monitor,
    /// --plot monitors all four series (--monitor all); with --monitor, only the series it
    /// names are drawn. Written atomically once training ends (also by early stopping or the
    /// eta schedule; not when training diverges). The directory must exist: it is checked
    /// before training.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,

    /// Print only the final summary (no header, no per-epoch lines, no progress bar)
    #[arg(long, short)]
    quiet: bool,

    /// Download MNIST into the data directory first, where it is not there yet
    ///
    /// Fetches the four .gz files (about 11 MB) over HTTPS from public mirrors, tried in
    /// order (or from --mirror), checks each file's SHA-256, and decompresses it beside its
    /// archive. Files already there are only checked. Every file is written atomically: an
    /// interrupted or rejected download leaves nothing behind.
    #[arg(long)]
    download: bool,

    /// With --download, fetch from URL instead of the built-in mirrors; repeat to try several
    /// in order
    ///
    /// URL/NAME.gz is fetched for each file, e.g. --mirror
    /// https://ossci-datasets.s3.amazonaws.com/mnist/
    // The URL is help text for the terminal, not a link.
    #[allow(rustdoc::bare_urls)]
    #[arg(long, value_name = "URL", requires = "download")]
    mirror: Vec<String>,
}

/// The set evaluated after each epoch.
/// The `--optimizer` choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OptimizerName {
    Sgd,
    Momentum,
    Nesterov,
    Adam,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum EvaluationSet {
    /// The t10k files.
    Test,
    /// The last --validation-size images of the training file.
    Validation,
}

impl EvaluationSet {
    fn name(self) -> &'static str {
        match self {
            EvaluationSet::Test => "test",
            EvaluationSet::Validation => "validation",
        }
    }
}

/// Activations as `relu, relu, softmax`.
fn join_activations(activations: &[Activation]) -> String {
    activations
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Layer sizes, as parsed from `--sizes`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sizes(Vec<usize>);

impl std::fmt::Display for Sizes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&join_sizes(&self.0, ","))
    }
}

fn join_sizes(sizes: &[usize], separator: &str) -> String {
    sizes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(separator)
}

/// `784,30,10` into layer sizes: at least two, none zero.
fn parse_sizes(text: &str) -> Result<Sizes, String> {
    let sizes = text
        .split(',')
        .map(|part| {
            let part = part.trim();
            match part.parse::<usize>() {
                Ok(0) => Err("a layer needs at least 1 neuron, got 0".to_string()),
                Ok(n) => Ok(n),
                Err(_) if part.is_empty() => {
                    Err("empty layer size (expected numbers separated by commas)".to_string())
                }
                Err(_) => Err(format!("{part:?} is not a layer size (a positive integer)")),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if sizes.len() < 2 {
        return Err(format!(
            "a network needs at least 2 layers (inputs and outputs, e.g. 784,30,10), got {}",
            sizes.len()
        ));
    }
    Ok(Sizes(sizes))
}

/// A count that must be at least 1.
fn parse_at_least_one(text: &str) -> Result<NonZeroUsize, String> {
    let n: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))?;
    NonZeroUsize::new(n).ok_or_else(|| "must be at least 1".to_string())
}

/// `--monitor`'s list into a [`Monitor`].
fn parse_monitor(text: &str) -> Result<Monitor, String> {
    let mut monitor = Monitor::default();
    for item in text.split(',').map(str::trim) {
        match item {
            "evaluation-cost" => monitor.evaluation_cost = true,
            "evaluation-accuracy" => monitor.evaluation_accuracy = true,
            "training-cost" => monitor.training_cost = true,
            "training-accuracy" => monitor.training_accuracy = true,
            "all" => monitor = Monitor::all(),
            "none" | "" => {}
            other => {
                return Err(format!(
                    "{other:?} is not a series: expected evaluation-cost, evaluation-accuracy, \
                     training-cost, training-accuracy, all or none"
                ));
            }
        }
    }
    Ok(monitor)
}

/// Which flags the user gave on the command line (rather than left at their defaults).
#[derive(Clone, Debug)]
struct Given {
    sizes: bool,
    cost: bool,
    init: bool,
    hidden_activation: bool,
    momentum: bool,
    monitor: bool,
    /// The flags given that --resume does not allow, as `--flag`.
    resume_conflicts: Vec<String>,
}

impl Given {
    fn from_matches(matches: &ArgMatches) -> Given {
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        Given {
            sizes: given("sizes"),
            cost: given("cost"),
            init: given("init"),
            hidden_activation: given("hidden_activation"),
            momentum: given("momentum"),
            monitor: given("monitor"),
            resume_conflicts: resume::flags_conflicting_with_resume(&Cli::command(), matches),
        }
    }
}

/// Why the run failed, with the exit status it gets.
#[derive(Debug)]
enum Failure {
    /// A usage or configuration error (exit status 2).
    Usage(String),
    /// A runtime error: files, training (exit status 1).
    Runtime(String),
    /// Ctrl-C stopped training (exit status 130, as a shell reports a SIGINT): the message
    /// says where, and where the checkpoint is.
    Interrupted(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Runtime(_) => EXIT_RUNTIME,
            Failure::Interrupted(_) => EXIT_INTERRUPTED,
        }
    }

    fn message(&self) -> &str {
        match self {
            Failure::Usage(m) | Failure::Runtime(m) | Failure::Interrupted(m) => m,
        }
    }
}

impl From<Error> for Failure {
    /// Options, and options that do not fit the data, are usage errors; files and training
    /// are runtime errors.
    fn from(err: Error) -> Failure {
        let message = err.to_string();
        match err {
            Error::BadOption { .. }
            | Error::UnknownIsa { .. }
            | Error::IsaUnavailable { .. }
            | Error::LabelOutOfRange { .. }
            | Error::InputSizeMismatch { .. } => Failure::Usage(message),
            _ => Failure::Runtime(message),
        }
    }
}

/// Writes a line to stdout; a closed stdout (e.g. `train | head`) is not worth a panic, and
/// training goes on.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stdout().lock(), $($arg)*);
    }};
}

/// Writes a line to stderr, ignoring failures.
macro_rules! tell {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stderr().lock(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    let started = Instant::now();
    let parsed = Cli::command().try_get_matches().and_then(|matches| {
        Ok((
            Cli::from_arg_matches(&matches)?,
            Given::from_matches(&matches),
        ))
    });
    let (cli, given) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            // Help and version go to stdout with status 0; errors to stderr with status 2.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(EXIT_USAGE));
        }
    };

    if let Err(err) = resume::install_interrupt_handler()
        && !cli.quiet
    {
        tell!("warning: cannot catch Ctrl-C ({err}); it will stop train without a checkpoint");
    }

    // --isa fixes the process-wide selection before anything reads SIMDNET_ISA.
    if let Some(isa) = cli.isa
        && let Err(err) = simdnet::select_isa(isa)
    {
        return fail(&Failure::from(err));
    }
    if let Err(err) = simdnet::try_selected_isa() {
        return fail(&Failure::Usage(format!("{ISA_ENV_VAR}: {err}")));
    }

    let outcome = match cli.threads {
        Some(n) => match rayon::ThreadPoolBuilder::new().num_threads(n.get()).build() {
            Ok(pool) => pool.install(|| run(&cli, given, started)),
            Err(err) => Err(Failure::Runtime(format!("cannot start {n} threads: {err}"))),
        },
        None => run(&cli, given, started),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => fail(&failure),
    }
}

/// Prints `failure` as `error: <message>` and returns its exit status.
fn fail(failure: &Failure) -> ExitCode {
    match failure {
        Failure::Interrupted(message) => tell!("interrupted: {message}"),
        _ => tell!("error: {}", failure.message()),
    }
    ExitCode::from(failure.code())
}

/// The data directory: `--data`, else `$MNIST_DIR`, else `data/mnist`.
fn data_dir(cli: &Cli) -> PathBuf {
    cli.data
        .clone()
        .or_else(|| {
            std::env::var_os(DATA_ENV_VAR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

/// Everything after argument parsing, inside the thread pool.
fn run(cli: &Cli, given: Given, started: Instant) -> Result<(), Failure> {
    let isa = simdnet::try_selected_isa()?;
    let threads = rayon::current_num_threads();

    // --resume: the run's network, hyperparameters and data options come from the
    // checkpoint; the flags that would change them are refused.
    let resumed = match &cli.resume {
        Some(path) => {
            if !given.resume_conflicts.is_empty() {
                return Err(Failure::Usage(format!(
                    "{} cannot be given with --resume: the run's network, hyperparameters and \
                     data options come from the checkpoint {}",
                    given.resume_conflicts.join(", "),
                    path.display()
                )));
            }
            let resumed = resume::Resumed::load(path)?;
            if resumed.isa != isa.name() && !cli.quiet {
                tell!(
                    "note: {} was written on ISA {}; continuing on {isa} gives a different \
                     network, bit for bit, than the uninterrupted run would have (give --isa {} \
                     for the same one)",
                    path.display(),
                    resumed.isa,
                    resumed.isa
                );
            }
            Some(resumed)
        }
        None => None,
    };
    let resumed_cli;
    let cli = match &resumed {
        Some(r) => {
            resumed_cli = cli_of_checkpoint(cli, r)?;
            &resumed_cli
        }
        None => cli,
    };
    let checkpoint_path = cli.checkpoint.clone().or_else(|| cli.resume.clone());

    let mut config = SgdConfig {
        epochs: cli.epochs.get(),
        mini_batch_size: cli.mini_batch_size,
        eta: cli.eta,
        lambda: cli.lambda,
        shuffle: !cli.no_shuffle,
        seed: cli.seed,
        early_stopping: cli.early_stopping,
        halve_eta_after: cli.halve_eta_after,
        // --plot without --monitor draws all four series, as the book's figures.
        monitor: if cli.plot.is_some() && !given.monitor {
            Monitor::all()
        } else {
            cli.monitor
        },
        optimizer: match cli.optimizer {
            OptimizerName::Sgd => Optimizer::Sgd,
            OptimizerName::Momentum | OptimizerName::Nesterov => Optimizer::Momentum {
                mu: cli.momentum,
                nesterov: cli.optimizer == OptimizerName::Nesterov,
            },
            OptimizerName::Adam => Optimizer::ADAM,
        },
        lambda1: cli.lambda1,
        dropout: cli.dropout,
    };
    if given.momentum && !matches!(config.optimizer, Optimizer::Momentum { .. }) {
        return Err(Failure::Usage(
            "--momentum applies to --optimizer momentum or nesterov".to_string(),
        ));
    }
    if let Some(r) = &resumed {
        config = r.checkpoint.config;
    }
    config.validate()?;
    if let (Some(save), Some(metrics)) = (&cli.save, &cli.metrics)
        && save == metrics
    {
        return Err(Failure::Usage(format!(
            "--save and --metrics both name {}: give them different files",
            save.display()
        )));
    }
    if let Some(path) = &checkpoint_path {
        for (flag, other) in [
            ("--save", &cli.save),
            ("--metrics", &cli.metrics),
            ("--plot", &cli.plot),
        ] {
            if other.as_ref() == Some(path) {
                return Err(Failure::Usage(format!(
                    "{flag} and the checkpoint both name {}: give them different files",
                    path.display()
                )));
            }
        }
    }
    if let Some(plot) = &cli.plot {
        for (flag, other) in [("--save", &cli.save), ("--metrics", &cli.metrics)] {
            if other.as_ref() == Some(plot) {
                return Err(Failure::Usage(format!(
                    "{flag} and --plot both name {}: give them different files",
                    plot.display()
                )));
            }
        }
        let m = config.monitor;
        if !(m.training_cost || m.training_accuracy || m.evaluation_cost || m.evaluation_accuracy) {
            return Err(Failure::Usage(
                "--plot has nothing to draw: --monitor names no series (leave --monitor out to \
                 plot all four)"
                    .to_string(),
            ));
        }
    }

    // The data.
    let dir = data_dir(cli);
    if cli.download {
        fetch_mnist(cli, &dir)?;
    }
    let mnist = Mnist::open(
        &dir,
        &MnistOptions {
            validation_size: cli.validation_size,
            load: if cli.no_mmap {
                LoadMode::Read
            } else {
                LoadMode::Mmap
            },
        },
    )
    .map_err(|err| missing_data(err, cli))?;
    let training = mnist.training();
    if training.is_empty() {
        let file = training.images_path().display();
        let total = mnist.validation().len();
        return Err(Failure::Usage(if cli.validation_size > 0 {
            format!(
                "invalid validation size: {} is all of the {total} images in {file}, which \
                 leaves no training data (use a smaller --validation-size)",
                cli.validation_size
            )
        } else {
            format!("invalid training data: {file} holds no images")
        }));
    }
    let evaluation = match cli.evaluation {
        EvaluationSet::Test => mnist.test(),
        EvaluationSet::Validation => mnist.validation(),
    };
    let m = config.monitor;
    let evaluation_wanted = m.evaluation_cost
        || m.evaluation_accuracy
        || cli.early_stopping.is_some()
        || cli.halve_eta_after.is_some();
    if evaluation_wanted && evaluation.is_empty() {
        let why = if cli.early_stopping.is_some() {
            "--early-stopping watches the evaluation accuracy"
        } else if cli.halve_eta_after.is_some() {
            "--halve-eta-after watches the evaluation accuracy"
        } else {
            "--monitor asks for evaluation series"
        };
        let hint = match cli.evaluation {
            EvaluationSet::Validation => " (give --validation-size > 0)",
            EvaluationSet::Test => "",
        };
        return Err(Failure::Usage(format!(
            "{why}, but the {} set is empty{hint}",
            cli.evaluation.name()
        )));
    }

    // The network.
    let (mut net, origin) = if let Some(r) = &resumed {
        let state = &r.checkpoint.state;
        let at = if state.batches_done() > 0 {
            format!(
                "{} mini-batches into epoch {}",
                state.batches_done(),
                state.epochs_done() + 1
            )
        } else {
            format!("after epoch {}", state.epochs_done())
        };
        (
            r.checkpoint.network.clone(),
            format!("resumed from {}, {at}", r.path.display()),
        )
    } else {
        match &cli.load {
            Some(path) => {
                let mut net = Network::load(path)?;
                if given.sizes && net.sizes() != cli.sizes.0.as_slice() {
                    return Err(Failure::Usage(format!(
                        "--sizes {} disagrees with the network in {}, whose sizes are {} (leave \
                         --sizes out to use the file's)",
                        cli.sizes,
                        path.display(),
                        join_sizes(net.sizes(), ",")
                    )));
                }
                let hidden = &net.activations()[..net.layers() - 1];
                if given.hidden_activation && hidden.iter().any(|&a| a != cli.hidden_activation) {
                    return Err(Failure::Usage(format!(
                        "--hidden-activation {} disagrees with the network in {}, whose hidden \
                         layers are {} (leave it out to use the file's)",
                        cli.hidden_activation,
                        path.display(),
                        join_activations(hidden)
                    )));
                }
                if let Some(out) = cli.output_activation
                    && out != net.output_activation()
                {
                    return Err(Failure::Usage(format!(
                        "--output-activation {out} disagrees with the network in {}, whose output \
                         layer is {} (leave it out to use the file's)",
                        path.display(),
                        net.output_activation()
                    )));
                }
                if given.cost {
                    net.set_cost(cli.cost).map_err(|e| {
                        Failure::Usage(format!(
                            "--cost with the network in {}: {e}",
                            path.display()
                        ))
                    })?;
                }
                if given.init && !cli.quiet {
                    tell!(
                        "note: --init is ignored with --load (the network's weights come from {})",
                        path.display()
                    );
                }
                (net, format!("loaded from {}", path.display()))
            }
            None => {
                let init = match cli.init {
                    Init::Default => "default",
                    Init::Large => "large",
                };
                let layers = cli.sizes.0.len().saturating_sub(1);
                let mut activations = vec![cli.hidden_activation; layers];
                if let Some(last) = activations.last_mut() {
                    *last = cli.output_activation.unwrap_or(match cli.cost {
                        Cost::LogLikelihood => Activation::Softmax,
                        _ => Activation::Sigmoid,
                    });
                }
                let net = Network::with_activations(
                    &cli.sizes.0,
                    &activations,
                    cli.cost,
                    cli.init,
                    cli.seed,
                )?;
                (
                    net,
                    format!("new, {init} initialization, seed {}", cli.seed),
                )
            }
        }
    };

    // The data must fit the network: the library's sgd checks this too, but only once the
    // outputs below are prepared.
    check_fits(&net, training, cli.load.as_deref())?;
    if !evaluation.is_empty() {
        check_fits(&net, evaluation, cli.load.as_deref())?;
    }

    // A checkpoint continues only on the data it was made on: checked before any output
    // file is touched (the library checks it too, but only once training starts).
    if let Some(r) = &resumed {
        let examples = training.len() * if cli.expand { expand::COPIES } else { 1 };
        let made_with = r.checkpoint.state.training_examples();
        if examples != made_with {
            return Err(Failure::Usage(format!(
                "{}: the checkpoint was made with {made_with} training examples, and the \
                 training data in {} now holds {examples}: resume it on the data it was made on",
                r.path.display(),
                dir.display()
            )));
        }
    }

    // The outputs, before any training time is spent.
    if let Some(path) = &cli.save {
        check_writable(path, "save the network to")?;
    }
    if let Some(path) = &checkpoint_path {
        check_writable(path, "write the checkpoint to")?;
    }
    let restored: &[EpochReport] = match &resumed {
        Some(r) => &r.checkpoint.state.summary().epochs,
        None => &[],
    };
    let metrics = match &cli.metrics {
        Some(path) => Some(MetricsFile::create(path, restored)?),
        None => None,
    };
    if let Some(path) = &cli.plot {
        check_writable(path, "write the plot to")?;
    }

    if !cli.quiet {
        print_header(&Header {
            cli,
            isa,
            threads,
            dir: &dir,
            mnist: &mnist,
            net: &net,
            origin: &origin,
            config: &config,
        });
    }

    // --expand: the training set and its one-pixel shifts, made as they are gathered.
    let expanded = if cli.expand {
        Some(Expanded::new(training)?)
    } else {
        None
    };
    let training: &dyn Examples = match &expanded {
        Some(expanded) => expanded,
        None => training,
    };
    let mut reporter = Reporter {
        epochs: config.epochs,
        per_epoch: training.len(),
        show_bar: !cli.quiet && io::stderr().is_terminal(),
        quiet: cli.quiet,
        bar: None,
        metrics,
        metrics_error: None,
        show_eta: config.halve_eta_after.is_some(),
        checkpoint: checkpoint_path.clone().map(|path| CheckpointTarget {
            path,
            notes: resume::notes(
                &resume::DataOptions {
                    evaluation: cli.evaluation.name().to_string(),
                    validation_size: cli.validation_size,
                    expand: cli.expand,
                },
                isa.name(),
                &dir,
            ),
            last: None,
        }),
    };
    let state = resumed.as_ref().map(|r| &r.checkpoint.state);
    let first_epoch = state.map_or(1, |s| s.epochs_done() + 1);
    if reporter.show_bar && first_epoch <= config.epochs && !state.is_some_and(|s| s.finished()) {
        reporter.bar = Some((first_epoch, reporter.new_bar(first_epoch, training.len())));
    }
    let outcome = sgd_from(
        &mut net,
        training,
        (!evaluation.is_empty()).then_some(evaluation as _),
        &config,
        &mut reporter,
        state,
    );
    reporter.clear_bar();
    let summary = match outcome {
        Ok(summary) => summary,
        Err(err @ Error::Diverged { .. }) => {
            let kept = match &cli.save {
                Some(path) => format!("; {}", not_saved(path)),
                None => String::new(),
            };
            return Err(Failure::Runtime(format!(
                "{err}; --eta was {:?}{kept}",
                config.eta
            )));
        }
        Err(Error::Io { ref path, .. }) if Some(path) == checkpoint_path.as_ref() => {
            // A checkpoint could not be written (a full disk): training stops there, and the
            // file keeps the previous checkpoint, if any, whole.
            let state = if path.exists() {
                format!(
                    "{} holds the previous checkpoint, intact: continue with train --resume {}",
                    path.display(),
                    path.display()
                )
            } else {
                format!("{} was not created", path.display())
            };
            let kept = match &cli.save {
                Some(save) => format!("; {}", not_saved(save)),
                None => String::new(),
            };
            return Err(Failure::Runtime(format!(
                "{}; training stopped; {state}{kept}",
                outcome.expect_err("matched an error")
            )));
        }
        Err(err) => return Err(err.into()),
    };
    if summary.stop == StopReason::Interrupted {
        return Err(Failure::Interrupted(interrupted_message(
            &summary,
            reporter.checkpoint.as_ref(),
            cli,
        )));
    }
    if let Some(r) = &resumed
        && r.checkpoint.state.finished()
        && !cli.quiet
    {
        tell!(
            "note: the run in {} had already finished; nothing was trained",
            r.path.display()
        );
    }

    if let Some(path) = &cli.save {
        net.save(path)
            .map_err(|err| Failure::Runtime(format!("{err}; {}", not_saved(path))))?;
    }
    if let Some(path) = &cli.plot {
        let svg = plot::render(
            &summary.epochs,
            &config.monitor,
            &plot::title(&net, &config),
        )
        .map_err(|e| Failure::Runtime(format!("cannot draw {}: {e}", path.display())))?;
        atomic::write_file(path, svg.as_bytes())
            .map_err(|e| Failure::Runtime(write_problem(path, "write the plot to", &e)))?;
    }
    print_summary(cli, &summary, &config, &reporter, started);
    if let Some(path) = &cli.plot {
        say!("Saved the plot to {}", path.display());
    }
    match reporter.metrics_error {
        Some(problem) => Err(Failure::Runtime(problem)),
        None => Ok(()),
    }
}

/// The command line of the run a checkpoint continues: `cli`'s data location, outputs and
/// how to run, with the network's shape, the hyperparameters and the data options of the
/// checkpoint (the SGD configuration itself is taken whole from the checkpoint).
fn cli_of_checkpoint(cli: &Cli, r: &resume::Resumed) -> Result<Cli, Failure> {
    let (net, config) = (&r.checkpoint.network, &r.checkpoint.config);
    let bad = |what: String| {
        Failure::Runtime(format!(
            "{}: not a usable checkpoint: {what}",
            r.path.display()
        ))
    };
    let mut c = cli.clone();
    c.sizes = Sizes(net.sizes().to_vec());
    c.epochs = NonZeroUsize::new(config.epochs).ok_or_else(|| bad("a run of 0 epochs".into()))?;
    c.mini_batch_size = config.mini_batch_size;
    c.eta = config.eta;
    c.lambda = config.lambda;
    c.cost = net.cost();
    c.seed = config.seed;
    c.no_shuffle = !config.shuffle;
    c.early_stopping = config.early_stopping;
    c.halve_eta_after = config.halve_eta_after;
    c.monitor = config.monitor;
    c.lambda1 = config.lambda1;
    c.dropout = config.dropout;
    c.load = None;
    c.evaluation = match r.data.evaluation.as_str() {
        "validation" => EvaluationSet::Validation,
        _ => EvaluationSet::Test,
    };
    c.validation_size = r.data.validation_size;
    c.expand = r.data.expand;
    // Without --data, the run's own data directory (before $MNIST_DIR and data/mnist).
    if c.data.is_none() {
        c.data.clone_from(&r.data_dir);
    }
    Ok(c)
}

/// What became of the `--save` file when the network could not be saved.
fn not_saved(path: &Path) -> String {
    let state = if path.exists() {
        "is unchanged"
    } else {
        "was not created"
    };
    format!("the network was not saved ({} {state})", path.display())
}

/// `train --download`: fetches what is missing of MNIST into `dir`, with a progress bar.
fn fetch_mnist(cli: &Cli, dir: &Path) -> Result<(), Failure> {
    let options = if cli.mirror.is_empty() {
        DownloadOptions::default()
    } else {
        DownloadOptions::with_mirrors(cli.mirror.iter().cloned())
    };
    let mut bar = DownloadBar {
        show_bar: !cli.quiet && io::stderr().is_terminal(),
        quiet: cli.quiet,
        bar: None,
    };
    let outcome = download(dir, &options, &mut bar);
    bar.clear();
    let report = outcome?;
    let bytes = report.downloaded_bytes();
    if !cli.quiet && bytes > 0 {
        say!(
            "Downloaded:  {:.1} MB into {}, SHA-256 verified",
            bytes as f64 / 1e6,
            dir.display()
        );
    }
    Ok(())
}

/// A missing data directory or file, with the command that downloads it (unless this run
/// already tried).
fn missing_data(err: Error, cli: &Cli) -> Failure {
    match &err {
        Error::MissingDirectory { .. } | Error::MissingData { .. } if !cli.download => {
            let data = match &cli.data {
                Some(dir) => format!(" --data {}", dir.display()),
                None => String::new(),
            };
            Failure::Runtime(format!(
                "{err}; to download MNIST there, run `train --download{data}` (from the source \
                 tree: `cargo run --release --bin train -- --download{data}`)"
            ))
        }
        _ => err.into(),
    }
}

/// The [`DownloadProgress`] of `--download`: a byte progress bar on a terminal, else a line
/// per file.
struct DownloadBar {
    show_bar: bool,
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl DownloadBar {
    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl DownloadProgress for DownloadBar {
    fn fetching(&mut self, name: &str, url: &str, total: Option<u64>) {
        self.clear();
        if self.show_bar {
            let template = if total.is_some() {
                "{prefix} [{wide_bar}] {bytes}/{total_bytes} ({bytes_per_sec}), ETA {eta}"
            } else {
                "{prefix} {spinner} {bytes} ({bytes_per_sec})"
            };
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let bar = match total {
                Some(total) => ProgressBar::new(total),
                None => ProgressBar::new_spinner(),
            };
            bar.set_style(style);
            bar.set_prefix(format!("{name}.gz"));
            self.bar = Some(bar);
        } else if !self.quiet {
            say!("Fetching:    {url}");
        }
    }

    fn received(&mut self, received: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(received);
        }
    }

    fn attempt_failed(&mut self, _name: &str, error: &Error, retrying: bool) {
        self.clear();
        if retrying {
            tell!("warning: {error}; trying the next mirror");
        }
    }

    fn finished(&mut self, report: &FileReport) {
        self.clear();
        if self.quiet {
            return;
        }
        match &report.outcome {
            Outcome::Present => {}
            Outcome::Decompressed => say!(
                "Unpacked:    {} from its .gz archive, SHA-256 verified",
                report.path.display()
            ),
            Outcome::Downloaded { url, bytes } => say!(
                "Fetched:     {} ({bytes} bytes from {url}), SHA-256 verified",
                report.path.display()
            ),
        }
    }
}

/// Checks that `data`'s images have as many pixels as `net` has inputs, and that its labels
/// name output neurons; the error names the `--load` file the network came from, if any.
fn check_fits(net: &Network, data: &Dataset, loaded: Option<&Path>) -> Result<(), Failure> {
    let fits = data
        .check_input_size(net.inputs())
        .and_then(|()| data.check_labels(net.outputs()));
    match (fits, loaded) {
        (Ok(()), _) => Ok(()),
        (Err(err), Some(path)) => Err(Failure::Usage(format!(
            "{err} (the network was loaded from {})",
            path.display()
        ))),
        (Err(err), None) => Err(err.into()),
    }
}

/// Everything the header describes.
struct Header<'a> {
    cli: &'a Cli,
    isa: Isa,
    threads: usize,
    dir: &'a Path,
    mnist: &'a Mnist,
    net: &'a Network,
    origin: &'a str,
    config: &'a SgdConfig,
}

fn print_header(h: &Header<'_>) {
    let (mnist, config) = (h.mnist, h.config);
    let training = mnist.training();
    say!(
        "simdnet train: network2.py's SGD (simdnet {})",
        env!("CARGO_PKG_VERSION")
    );
    let kernels = h.isa.fused_kernels_isa();
    say!(
        "ISA:         {}{} ({} thread{})",
        h.isa,
        if kernels == h.isa {
            String::new()
        } else {
            format!(" GEMM, {kernels} element-wise kernels")
        },
        h.threads,
        if h.threads == 1 { "" } else { "s" }
    );
    say!(
        "Data:        {}{}",
        h.dir.display(),
        if h.cli.no_mmap {
            " (read into memory)"
        } else {
            ""
        }
    );
    say!(
        "Sets:        {}, {} validation, {} test images of {}x{}; evaluating on {}",
        if h.cli.expand {
            format!(
                "{} training ({} images, each also shifted one pixel up, down, left and right)",
                training.len().saturating_mul(5),
                training.len()
            )
        } else {
            format!("{} training", training.len())
        },
        mnist.validation().len(),
        mnist.test().len(),
        training.rows(),
        training.cols(),
        h.cli.evaluation.name()
    );
    say!(
        "Network:     {} ({})",
        join_sizes(h.net.sizes(), "-"),
        h.origin
    );
    say!("Cost:        {}", h.net.cost());
    if !h.net.is_all_sigmoid() {
        say!("Activations: {}", join_activations(h.net.activations()));
    }
    let shuffle = if config.shuffle {
        format!("shuffled (seed {})", config.seed)
    } else {
        "not shuffled".to_string()
    };
    let stopping = match config.early_stopping {
        Some(n) => format!("after {n} epoch{} without improvement", plural(n)),
        None => "off".to_string(),
    };
    say!(
        "Training:    {} epoch{}, mini-batches of {}, eta {:?}, lambda {:?}, {shuffle}",
        config.epochs,
        plural(config.epochs),
        config.mini_batch_size,
        config.eta,
        config.lambda
    );
    let optimizer = match config.optimizer {
        Optimizer::Sgd => "plain gradient descent (network2)".to_string(),
        Optimizer::Momentum { mu, nesterov } => {
            format!("{}momentum {mu:?}", if nesterov { "Nesterov " } else { "" })
        }
        Optimizer::Adam {
            beta1,
            beta2,
            epsilon,
        } => format!("Adam (beta1 {beta1:?}, beta2 {beta2:?}, epsilon {epsilon:?})"),
    };
    let l1 = if config.lambda1 > 0.0 {
        format!(", L1 lambda1 {:?}", config.lambda1)
    } else {
        String::new()
    };
    say!("Optimizer:   {optimizer}{l1}");
    if config.dropout > 0.0 {
        say!(
            "Dropout:     {:?} on the hidden layers (seed {})",
            config.dropout,
            config.seed
        );
    }
    say!("Early stop:  {stopping}");
    if let Some(n) = config.halve_eta_after {
        say!(
            "Eta:         halved after {n} epoch{} without improvement, down to {:?} (stops \
             instead of reaching {:?} = eta/128)",
            plural(n),
            config.eta / 64.0,
            config.eta / 128.0
        );
    }
    say!("Monitoring:  {}", monitor_names(&config.monitor));
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn monitor_names(m: &Monitor) -> String {
    let names: Vec<&str> = [
        (m.evaluation_accuracy, "evaluation accuracy"),
        (m.evaluation_cost, "evaluation cost"),
        (m.training_accuracy, "training accuracy"),
        (m.training_cost, "training cost"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if names.is_empty() {
        "nothing".to_string()
    } else {
        names.join(", ")
    }
}

fn accuracy_text(a: Accuracy) -> String {
    format!("{}/{} ({:.2}%)", a.correct, a.total, 100.0 * a.fraction())
}

/// The line printed after each epoch: only the monitored series.
fn epoch_line(r: &EpochReport, epochs: usize, show_eta: bool) -> String {
    let mut line = format!("Epoch {}/{epochs}: {:.2} s training", r.epoch, r.seconds);
    if show_eta {
        let _ = write!(line, " at eta {:?}", r.eta);
    }
    if let Some(a) = r.evaluation_accuracy {
        let _ = write!(line, "; evaluation accuracy {}", accuracy_text(a));
    }
    if let Some(c) = r.evaluation_cost {
        let _ = write!(line, "; evaluation cost {c:.4}");
    }
    if let Some(a) = r.training_accuracy {
        let _ = write!(line, "; training accuracy {}", accuracy_text(a));
    }
    if let Some(c) = r.training_cost {
        let _ = write!(line, "; training cost {c:.4}");
    }
    line
}

fn print_summary(
    cli: &Cli,
    summary: &TrainingSummary,
    config: &SgdConfig,
    reporter: &Reporter,
    started: Instant,
) {
    match summary.best_evaluation() {
        Some((epoch, acc)) => say!(
            "Best evaluation accuracy: {} in epoch {epoch}",
            accuracy_text(acc)
        ),
        None => {
            say!("Best evaluation accuracy: not measured (add evaluation-accuracy to --monitor)")
        }
    }
    let run = summary.epochs.len();
    if summary.stop == StopReason::EtaScheduleExhausted {
        let n = config.halve_eta_after.unwrap_or(0);
        say!(
            "The eta schedule ended training after epoch {run} of {}: {n} epoch{} without a new \
             best at eta {:?} (eta/64); halving again would reach eta/128",
            config.epochs,
            plural(n),
            summary.epochs.last().map_or(config.eta, |r| r.eta)
        );
    } else if summary.stopped_early {
        say!(
            "Early stopping ended training after epoch {run} of {} ({} epoch{} without a new best)",
            config.epochs,
            config.early_stopping.unwrap_or(0),
            plural(config.early_stopping.unwrap_or(0))
        );
    } else if run == 1 {
        say!("Trained 1 epoch");
    } else {
        say!("Trained all {run} epochs");
    }
    let training: f64 = summary.epochs.iter().map(|r| r.seconds).sum();
    say!(
        "Time: {training:.2} s training (evaluation excluded), {:.2} s wall (whole run)",
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &cli.save {
        say!("Saved the network to {}", path.display());
    }
    if let Some(metrics) = &reporter.metrics
        && reporter.metrics_error.is_none()
    {
        say!("Saved the metrics to {}", metrics.path.display());
    }
}

/// The `--metrics` CSV, kept in memory and rewritten whole after every epoch.
struct MetricsFile {
    path: PathBuf,
    text: String,
}

impl MetricsFile {
    /// Writes the header and the rows of `restored` epochs (those before a --resume
    /// checkpoint), which also checks that the file can be written.
    fn create(path: &Path, restored: &[EpochReport]) -> Result<MetricsFile, Failure> {
        let mut file = MetricsFile {
            path: path.to_path_buf(),
            text: format!("{METRICS_HEADER}\n"),
        };
        for r in restored {
            file.push(r);
        }
        file.write().map_err(Failure::Runtime)?;
        Ok(file)
    }

    fn push(&mut self, r: &EpochReport) {
        // Debug formatting: the shortest text that reads back as the same number, with an
        // exponent for very large or small magnitudes.
        fn cell(v: Option<f64>) -> String {
            v.map(|v| format!("{v:?}")).unwrap_or_default()
        }
        let _ = writeln!(
            self.text,
            "{},{:?},{},{},{},{},{:?}",
            r.epoch,
            r.eta,
            cell(r.training_cost),
            cell(r.training_accuracy.map(|a| a.fraction())),
            cell(r.evaluation_cost),
            cell(r.evaluation_accuracy.map(|a| a.fraction())),
            r.seconds
        );
    }

    fn write(&self) -> Result<(), String> {
        atomic::write_file(&self.path, self.text.as_bytes())
            .map_err(|e| write_problem(&self.path, "write the metrics to", &e))
    }
}

/// `"cannot <what> <path>: <why>"`, with a clearer why when the directory is missing.
fn write_problem(path: &Path, what: &str, err: &io::Error) -> String {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let why = if path.is_dir() {
        "it is a directory".to_string()
    } else if !dir.exists() {
        format!("the directory {} does not exist", dir.display())
    } else if !dir.is_dir() {
        format!("{} is not a directory", dir.display())
    } else {
        err.to_string()
    };
    format!("cannot {what} {}: {why}", path.display())
}

/// Checks, before training, that a file can be created next to `path` (as the atomic save
/// will), without touching `path` itself.
fn check_writable(path: &Path, what: &str) -> Result<(), Failure> {
    let probe = if path.is_dir() {
        Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "it is a directory",
        ))
    } else {
        atomic::temporary_sibling(path).and_then(|tmp| {
            File::create(&tmp)?;
            fs::remove_file(&tmp)
        })
    };
    probe.map_err(|e| Failure::Runtime(write_problem(path, what, &e)))
}

/// The [`Observer`]: progress bar, epoch lines, metrics file.
struct Reporter {
    epochs: usize,
    /// Training examples per epoch.
    per_epoch: usize,
    show_bar: bool,
    quiet: bool,
    /// The current epoch's bar and its epoch.
    bar: Option<(usize, ProgressBar)>,
    metrics: Option<MetricsFile>,
    /// The last failure to write the metrics (cleared by a later success, since each write
    /// rewrites the whole file).
    metrics_error: Option<String>,
    /// Print each epoch's eta (it changes with --halve-eta-after).
    show_eta: bool,
    /// Where checkpoints go (--checkpoint, or the --resume file).
    checkpoint: Option<CheckpointTarget>,
}

/// The checkpoint file, the notes written into it, and the position of the last one written.
struct CheckpointTarget {
    path: PathBuf,
    notes: BTreeMap<String, String>,
    /// (epochs finished, mini-batches of the next epoch) of the last checkpoint written.
    last: Option<(usize, usize)>,
}

impl Reporter {
    fn new_bar(&self, epoch: usize, total: usize) -> ProgressBar {
        let style = ProgressStyle::with_template(
            "{prefix} [{wide_bar}] {human_pos}/{human_len} images ({per_sec:0}), ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = ProgressBar::new(total as u64).with_style(style);
        bar.set_prefix(format!("Epoch {epoch}/{}", self.epochs));
        bar
    }

    fn clear_bar(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Reporter {
    fn progress(&mut self, epoch: usize, done: usize, total: usize) {
        if !self.show_bar {
            return;
        }
        if self.bar.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.clear_bar();
            self.bar = Some((epoch, self.new_bar(epoch, total)));
        }
        if let Some((_, bar)) = &self.bar {
            bar.set_position(done as u64);
            if done >= total {
                bar.set_message("(evaluating)");
            }
        }
    }

    fn epoch(&mut self, report: &EpochReport) {
        self.clear_bar();
        if !self.quiet {
            say!("{}", epoch_line(report, self.epochs, self.show_eta));
        }
        if let Some(metrics) = &mut self.metrics {
            metrics.push(report);
            match metrics.write() {
                Ok(()) => self.metrics_error = None,
                Err(problem) => {
                    tell!("warning: {problem} (will retry after the next epoch)");
                    self.metrics_error = Some(problem);
                }
            }
        }
        // Start the next epoch's bar now, so that its rate and ETA count from the epoch's
        // start rather than from its first progress report (a checkpoint is written first).
        if self.show_bar && report.epoch < self.epochs {
            let next = report.epoch + 1;
            self.bar = Some((next, self.new_bar(next, self.per_epoch)));
        }
    }

    fn interrupted(&mut self) -> bool {
        resume::interrupted()
    }

    fn wants_checkpoints(&self) -> bool {
        self.checkpoint.is_some()
    }

    fn checkpoint(
        &mut self,
        net: &Network,
        config: &SgdConfig,
        state: &TrainingState,
    ) -> Result<(), Error> {
        if let Some(target) = &mut self.checkpoint {
            checkpoint::save(&target.path, net, config, state, &target.notes)?;
            target.last = Some((state.epochs_done(), state.batches_done()));
        }
        Ok(())
    }
}

/// What `train` says when Ctrl-C stopped it: where, and how to continue.
fn interrupted_message(
    summary: &TrainingSummary,
    checkpoint: Option<&CheckpointTarget>,
    cli: &Cli,
) -> String {
    let done = summary.epochs.len();
    match checkpoint {
        Some(CheckpointTarget {
            path,
            last: Some((epochs, batches)),
            ..
        }) => {
            let at = if *batches > 0 {
                format!("{batches} mini-batches into epoch {}", epochs + 1)
            } else {
                format!("after epoch {epochs}")
            };
            format!(
                "training stopped {at}; the checkpoint {} holds that point: continue with \
                 train --resume {}{}",
                path.display(),
                path.display(),
                if cli.save.is_some() {
                    " (--save was not written: the run is not over)"
                } else {
                    ""
                }
            )
        }
        _ => format!(
            "training stopped after {done} finished epoch{} without a checkpoint (give \
             --checkpoint FILE to be able to continue an interrupted run); --save was not \
             written",
            plural(done)
        ),
    }
}
