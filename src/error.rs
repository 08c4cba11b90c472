//! The crate's one error type.

use std::io;
use std::path::{Path, PathBuf};

use crate::data::idx::IdxProblem;
use crate::isa::Isa;

/// Everything that can go wrong in simdnet, with enough context to act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `SIMDNET_ISA` (or a `--isa` flag) named something that is not an instruction set.
    #[error("unknown instruction set {value:?}: expected one of scalar, avx2, avx512, neon")]
    UnknownIsa {
        /// The text that was given.
        value: String,
    },
    /// An instruction set was asked for that this CPU (or this build target) does not have.
    #[error(
        "instruction set {isa} was requested but this CPU does not support it (available: {available})"
    )]
    IsaUnavailable {
        /// The instruction set that was requested.
        isa: Isa,
        /// The instruction sets this CPU does support, comma separated.
        available: String,
    },
    /// A matrix view does not fit the buffer it was made from, or its strides are invalid.
    #[error("invalid matrix view: {reason}")]
    InvalidView {
        /// What is wrong with the view.
        reason: String,
    },
    /// The operands of a matrix product do not have compatible shapes.
    #[error(
        "shape mismatch in {op}: A is {a_rows}x{a_cols}, B is {b_rows}x{b_cols}, C is {c_rows}x{c_cols}"
    )]
    ShapeMismatch {
        /// The operation that was attempted.
        op: &'static str,
        /// Rows of A.
        a_rows: usize,
        /// Columns of A.
        a_cols: usize,
        /// Rows of B.
        b_rows: usize,
        /// Columns of B.
        b_cols: usize,
        /// Rows of C.
        c_rows: usize,
        /// Columns of C.
        c_cols: usize,
    },
    /// A file could not be opened, read or memory-mapped.
    #[error("cannot {operation} {path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done: `"open"`, `"read"`, `"memory-map"`, ...
        operation: &'static str,
        /// The kind of the underlying [`io::Error`].
        kind: io::ErrorKind,
        /// The underlying error's message (kept as text so that `Error` stays `Clone + Eq`).
        message: String,
    },
    /// A data directory does not exist.
    #[error("data directory {dir} does not exist")]
    MissingDirectory {
        /// The directory that was given.
        dir: PathBuf,
    },
    /// A data directory lacks one of the files it must hold (neither it nor its `.gz` archive
    /// is there).
    #[error("{file} (or {file}.gz) is missing from the data directory {dir}")]
    MissingData {
        /// The directory.
        dir: PathBuf,
        /// The name of the missing file.
        file: String,
    },
    /// A file is not a valid IDX file, or not the kind of IDX file expected.
    #[error("{path}: {problem}")]
    Idx {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: IdxProblem,
    },
    /// An image file and its label file disagree on the number of items.
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// The number of images.
        image_count: usize,
        /// The number of labels.
        label_count: usize,
    },
    /// A label is not a valid class for the network's output layer.
    #[error(
        "{path}: label {label} at index {index} is out of range for {classes} classes (labels must be below {classes})"
    )]
    LabelOutOfRange {
        /// The label file.
        path: PathBuf,
        /// The label's index in the file (not in a training/validation view of it).
        index: usize,
        /// The label.
        label: u8,
        /// The number of classes (the size of the output layer).
        classes: usize,
    },
    /// The images do not have as many pixels as the network has inputs.
    #[error(
        "{path}: images are {rows}x{cols} = {pixels} pixels but the network's input layer has {inputs} neurons",
        pixels = .rows.saturating_mul(*.cols)
    )]
    InputSizeMismatch {
        /// The image file.
        path: PathBuf,
        /// Rows per image.
        rows: usize,
        /// Columns per image.
        cols: usize,
        /// The size of the input layer.
        inputs: usize,
    },
    /// An option (a configuration value) is invalid.
    #[error("invalid {option}: {problem}")]
    BadOption {
        /// The option, as a user would name it (e.g. `"validation size"`).
        option: &'static str,
        /// What is wrong with its value.
        problem: String,
    },
    /// A mini-batch buffer does not have the length the batch needs.
    #[error("mini-batch {buffer} buffer has {actual} elements, expected {expected}")]
    BatchBufferMismatch {
        /// Which buffer: `"pixel"` or `"label"`.
        buffer: &'static str,
        /// The length the batch needs.
        expected: usize,
        /// The length of the buffer given.
        actual: usize,
    },
    /// A mini-batch names an image that is not in the dataset.
    #[error("mini-batch index {index} is out of range for a dataset of {len} images from {path}")]
    BatchIndexOutOfRange {
        /// The image file the dataset views.
        path: PathBuf,
        /// The offending index (into the dataset).
        index: usize,
        /// The number of images in the dataset.
        len: usize,
    },
    /// A network2 JSON model file cannot be read as a network: malformed JSON, missing keys,
    /// shapes that disagree with `sizes`, an unknown cost, or numbers that are not finite
    /// `f32` values.
    #[error("{path}: not a usable network2 model: {problem}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A checkpoint file cannot be used: wrong magic or version, truncated, a checksum
    /// mismatch, a malformed or inconsistent header, or a state that does not fit the run.
    #[error("{path}: not a usable checkpoint: {problem}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A network's layer sizes, weights or biases are inconsistent (built in memory, not read
    /// from a file).
    #[error("invalid network: {problem}")]
    InvalidNetwork {
        /// What is wrong.
        problem: String,
    },
    /// Training diverged: a weight or bias became NaN or infinite.
    #[error(
        "training diverged in epoch {epoch}: the {part} of layer {layer} ({inputs} inputs to \
         {neurons} neurons) is no longer finite ({what}); try a smaller eta (or a smaller \
         lambda relative to the training-set size)"
    )]
    Diverged {
        /// The epoch (counted from 1) at the end of which it was found.
        epoch: usize,
        /// The layer, counted from 1 as the README counts them: layer `l` is network2's
        /// `weights[l - 1]` and `biases[l - 1]`, from layer `l - 1` (0: the inputs) into layer
        /// `l`.
        layer: usize,
        /// `"weight matrix"` or `"bias vector"`.
        part: &'static str,
        /// The layer's inputs (`sizes[layer - 1]`).
        inputs: usize,
        /// The layer's neurons (`sizes[layer]`).
        neurons: usize,
        /// The first non-finite value, in network2's indexing (e.g. `weights[0][3][5] is NaN,
        /// not a finite number`).
        what: String,
    },
    /// An HTTP transfer failed: no connection, a timeout, an HTTP error status, or a
    /// connection that ended before the whole file arrived.
    #[error("cannot download {url}: {problem}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        problem: String,
    },
    /// A file does not have the SHA-256 digest it must have.
    #[error(
        "{file} from {origin} has SHA-256 {actual}, expected {expected}{}",
        mismatch_hint(*.discarded)
    )]
    DigestMismatch {
        /// The (raw, decompressed) file's name.
        file: String,
        /// Where it came from: the URL, or the path of a file already on disk.
        origin: String,
        /// The digest it must have (hexadecimal).
        expected: String,
        /// The digest it has (hexadecimal).
        actual: String,
        /// Whether it was discarded (a download), rather than left in place (a file that was
        /// already there, which is never overwritten).
        discarded: bool,
    },
    /// No mirror gave a file: every attempt failed.
    #[error("could not download {file}: {}", attempts_text(.attempts))]
    DownloadFailed {
        /// The file (`NAME.gz`).
        file: String,
        /// Each attempt's error, in order ([`Error::Http`], [`Error::DigestMismatch`],
        /// [`Error::Io`]).
        attempts: Vec<Error>,
    },
}

impl Error {
    /// An [`Error::Io`] for `operation` on `path`.
    pub(crate) fn io(path: &Path, operation: &'static str, err: &io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            operation,
            kind: err.kind(),
            message: err.to_string(),
        }
    }
}

/// What happened to a file whose digest did not match.
fn mismatch_hint(discarded: bool) -> &'static str {
    if discarded {
        "; it was discarded"
    } else {
        "; it was left in place: delete it (or choose another directory) to download it again"
    }
}

/// Every failed attempt of a download, numbered.
fn attempts_text(attempts: &[Error]) -> String {
    match attempts {
        [] => "nothing was tried".to_string(),
        [only] => only.to_string(),
        _ => attempts
            .iter()
            .enumerate()
            .map(|(i, e)| format!("({}) {e}", i + 1))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// `Result` with [`Error`] as its error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
