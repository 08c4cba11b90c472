//! `--checkpoint`, `--resume` and Ctrl-C: what `train` stores beside the library's training
//! state, which flags a resumed run may change, and the SIGINT flag.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};
use simdnet::network::checkpoint::Checkpoint;

/// The flags a resumed run may give: where the data and the outputs are, and how to run.
/// Everything else (the network, the hyperparameters, the data sets) comes from the
/// checkpoint, so that the resumed run is the interrupted one.
const ALLOWED_WITH_RESUME: &[&str] = &[
    "data",
    "download",
    "mirror",
    "no_mmap",
    "threads",
    "isa",
    "save",
    "metrics",
    "plot",
    "quiet",
    "checkpoint",
    "resume",
];

/// The flags given on the command line that a resumed run may not change, as `--flag`.
pub fn flags_conflicting_with_resume(command: &Command, matches: &ArgMatches) -> Vec<String> {
    command
        .get_arguments()
        .map(|arg| arg.get_id().as_str())
        .filter(|id| {
            !ALLOWED_WITH_RESUME.contains(id)
                && matches.value_source(id) == Some(ValueSource::CommandLine)
        })
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect()
}

/// The note keys `train` stores in its checkpoints.
const NOTE_EVALUATION: &str = "train.evaluation";
const NOTE_VALIDATION_SIZE: &str = "train.validation_size";
const NOTE_EXPAND: &str = "train.expand";
const NOTE_ISA: &str = "train.isa";
const NOTE_DATA: &str = "train.data";

/// The data options of a run, which a resumed run takes from its checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataOptions {
    /// `test` or `validation`.
    pub evaluation: String,
    pub validation_size: usize,
    pub expand: bool,
}

/// The notes `train` writes into every checkpoint.
pub fn notes(data: &DataOptions, isa: &str, dir: &Path) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NOTE_EVALUATION.to_string(), data.evaluation.clone()),
        (
            NOTE_VALIDATION_SIZE.to_string(),
            data.validation_size.to_string(),
        ),
        (NOTE_EXPAND.to_string(), data.expand.to_string()),
        (NOTE_ISA.to_string(), isa.to_string()),
        (NOTE_DATA.to_string(), dir.display().to_string()),
    ])
}

/// A checkpoint to resume, with the data options and ISA of the run that wrote it.
pub struct Resumed {
    pub path: PathBuf,
    pub checkpoint: Checkpoint,
    pub data: DataOptions,
    /// The ISA the run trained on so far (the name).
    pub isa: String,
    /// The data directory the run read (as it was given then), if the note is there.
    pub data_dir: Option<PathBuf>,
}

impl Resumed {
    /// Reads `path` and its `train` notes.
    ///
    /// # Errors
    ///
    /// The library's error for a file that is missing or not a checkpoint; a message naming
    /// the file for a checkpoint that `train` did not write.
    pub fn load(path: &Path) -> Result<Resumed, simdnet::Error> {
        let checkpoint = Checkpoint::load(path)?;
        let problem = |what: String| simdnet::Error::Checkpoint {
            path: path.to_path_buf(),
            problem: format!("{what} (was it written by train --checkpoint?)"),
        };
        let note = |key: &str| {
            checkpoint
                .notes
                .get(key)
                .cloned()
                .ok_or_else(|| problem(format!("it has no {key} note")))
        };
        let evaluation = note(NOTE_EVALUATION)?;
        if evaluation != "test" && evaluation != "validation" {
            return Err(problem(format!(
                "its {NOTE_EVALUATION} note is {evaluation:?}, not test or validation"
            )));
        }
        let validation_size = note(NOTE_VALIDATION_SIZE)?.parse::<usize>().map_err(|e| {
            problem(format!(
                "its {NOTE_VALIDATION_SIZE} note is not a count: {e}"
            ))
        })?;
        let expand = note(NOTE_EXPAND)?
            .parse::<bool>()
            .map_err(|e| problem(format!("its {NOTE_EXPAND} note is not true or false: {e}")))?;
        let isa = note(NOTE_ISA)?;
        let data_dir = checkpoint.notes.get(NOTE_DATA).map(PathBuf::from);
        Ok(Resumed {
            path: path.to_path_buf(),
            checkpoint,
            data: DataOptions {
                evaluation,
                validation_size,
                expand,
            },
            isa,
            data_dir,
        })
    }
}

/// Set by the first Ctrl-C; training stops at the end of the mini-batch.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the SIGINT handler: the first Ctrl-C asks training to stop at the end of the
/// current mini-batch (and write the checkpoint); a second one exits at once with status 130
/// (the last complete checkpoint, written atomically, stays as it was).
///
/// # Errors
///
/// The handler could not be installed (then Ctrl-C kills the process as usual).
pub fn install_interrupt_handler() -> Result<(), ctrlc::Error> {
    ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupted: stopping at the end of this mini-batch (Ctrl-C again to quit now)"
        );
    })
}

/// Whether Ctrl-C was pressed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}
