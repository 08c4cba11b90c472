//! Checkpoints: the whole state of a training run in one file, written atomically, from which
//! [`super::sgd_from`] continues the run bit for bit.
//!
//! # The file
//!
//! ```text
//! offset  bytes  what
//! 0       8      magic "SIMDCKPT"
//! 8       4      format version, u32 little-endian (1)
//! 12      8      H: length of the header, u64 little-endian
//! 20      H      the header: UTF-8 JSON (layer sizes, activations, cost, hyperparameters,
//!                counters, per-epoch reports, the application's notes)
//! 20 + H  4 P    the parameters, f32 little-endian, in this order: per layer its weights
//!                (stored as W^T, input-major) and biases; then per layer the optimizer's
//!                weight arrays and bias arrays (velocity, or Adam's two moments)
//! end - 4 4      CRC-32 (IEEE) of every byte before it, u32 little-endian
//! ```
//!
//! `P` follows from the header, so a file whose length disagrees is refused before anything
//! large is allocated. The header is JSON so that a person can read a checkpoint's
//! hyperparameters and metrics with `head -c`; the parameters are raw so that writing one
//! costs a memory copy, and every `f32` comes back with the same bits. Floats in the header
//! (eta, lambda, costs) are written in their shortest round-trip form and read back exactly.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::train::{Accuracy, EpochReport, Monitor, SgdConfig, TrainingState, TrainingSummary};
use super::{Activation, Cost, Network, Optimizer, StopReason};
use crate::error::{Error, Result};

/// The first 8 bytes of every checkpoint.
pub const MAGIC: &[u8; 8] = b"SIMDCKPT";

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// Magic, version and header length.
const PREFIX: usize = 20;

/// A checkpoint read back: the network, the run's configuration, the state of the run, and
/// the notes the writer stored with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The network at the checkpoint.
    pub network: Network,
    /// The run's hyperparameters.
    pub config: SgdConfig,
    /// Where the run is, and everything else continuing it needs.
    pub state: TrainingState,
    /// Free-form key/value pairs of the application that wrote the checkpoint (the `train`
    /// binary keeps its data options here).
    pub notes: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Reads a checkpoint written by [`save`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be read; [`Error::Checkpoint`] naming the file and
    /// the problem if it is not a complete, intact checkpoint of this format.
    pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| Error::io(path, "read", &e))?;
        Checkpoint::from_bytes(&bytes).map_err(|problem| Error::Checkpoint {
            path: path.to_path_buf(),
            problem,
        })
    }

    /// Decodes a checkpoint from its bytes; the problem as text if they are not one.
    ///
    /// # Errors
    ///
    /// A description of the first problem found: wrong magic or version, a truncated or
    /// padded file, a checksum mismatch, a malformed or inconsistent header, parameters
    /// that are not finite.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Checkpoint, String> {
        decode(bytes)
    }

    /// The checkpoint as bytes ([`encode`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(&self.network, &self.config, &self.state, &self.notes)
    }
}

/// Writes a checkpoint of `net` in the run `config` at `state` to `path`, atomically: the
/// bytes go to a temporary file in the same directory, which is synced and renamed over
/// `path`, so that a crash at any moment leaves either the previous checkpoint or this one.
///
/// # Errors
///
/// [`Error::Io`] naming the file if any step fails (a full disk, a read-only directory);
/// `path` is then untouched and the temporary file removed.
pub fn save(
    path: impl AsRef<Path>,
    net: &Network,
    config: &SgdConfig,
    state: &TrainingState,
    notes: &BTreeMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    crate::atomic::write_file(path, &encode(net, config, state, notes))
        .map_err(|e| Error::io(path, "write", &e))
}

/// The bytes of a checkpoint (the layout is in the module's documentation).
pub fn encode(
    net: &Network,
    config: &SgdConfig,
    state: &TrainingState,
    notes: &BTreeMap<String, String>,
) -> Vec<u8> {
    let header = Header {
        format: FORMAT_NAME.to_string(),
        sizes: net.sizes.clone(),
        activations: net
            .activations
            .iter()
            .map(|a| a.name().to_string())
            .collect(),
        cost: cost_name(net.cost).to_string(),
        config: ConfigRecord::from(config),
        state: StateRecord::from(state),
        notes: notes.clone(),
    };
    let header = serde_json::to_vec(&header).expect("the header has only serializable fields");
    let arrays = net
        .weights
        .iter()
        .zip(&net.biases)
        .flat_map(|(w, b)| [w.as_slice(), b.as_slice()])
        .chain(state.optimizer_arrays.iter().map(Vec::as_slice));
    let values: usize = arrays.clone().map(<[f32]>::len).sum();
    let mut out = Vec::with_capacity(PREFIX + header.len() + 4 * values + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for a in arrays {
        for v in a {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The header's `format` value.
const FORMAT_NAME: &str = "simdnet checkpoint";

fn cost_name(cost: Cost) -> &'static str {
    match cost {
        Cost::LogLikelihood => "LogLikelihoodCost",
        other => other.network2_name(),
    }
}

fn decode(bytes: &[u8]) -> std::result::Result<Checkpoint, String> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(format!(
            "it does not start with {:?} (is it a checkpoint? a network saved with --save is \
             read with --load)",
            String::from_utf8_lossy(MAGIC)
        ));
    }
    if bytes.len() < PREFIX + 4 {
        return Err(format!(
            "truncated: {} bytes, shorter than the smallest checkpoint",
            bytes.len()
        ));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(format!(
            "format version {version}; this build reads version {VERSION}"
        ));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let stored_crc = u32::from_le_bytes(tail.try_into().expect("4 bytes"));
    let header_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let header_end = usize::try_from(header_len)
        .ok()
        .and_then(|h| h.checked_add(PREFIX))
        .filter(|&end| end <= body.len())
        .ok_or_else(|| {
            format!(
                "truncated: the header claims {header_len} bytes, and the file has {} after \
                 the prefix",
                body.len() - PREFIX
            )
        })?;
    let crc = crc32(body);
    if crc != stored_crc {
        return Err(format!(
            "checksum mismatch (stored {stored_crc:08x}, computed {crc:08x}): the file is \
             corrupt or was cut short"
        ));
    }
    let header: Header = serde_json::from_slice(&body[PREFIX..header_end])
        .map_err(|e| format!("the header is not valid: {e}"))?;
    if header.format != FORMAT_NAME {
        return Err(format!(
            "the header's format is {:?}, not {FORMAT_NAME:?}",
            header.format
        ));
    }
    let activations = header
        .activations
        .iter()
        .map(|name| {
            name.parse::<Activation>()
                .map_err(|_| format!("{name:?} is not an activation"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let cost = match header.cost.as_str() {
        "LogLikelihoodCost" => Cost::LogLikelihood,
        name => Cost::from_network2_name(name).ok_or_else(|| format!("{name:?} is not a cost"))?,
    };
    super::check_sizes(&header.sizes)?;
    let config = header.config.to_config()?;
    config
        .validate()
        .map_err(|e| format!("its hyperparameters are invalid: {e}"))?;

    // The lengths of every array, checked against the file before any is allocated.
    let k = config.optimizer.state_arrays();
    let mut lengths = Vec::new();
    let mut optimizer_lengths = Vec::new();
    for pair in header.sizes.windows(2) {
        let w = pair[0]
            .checked_mul(pair[1])
            .ok_or("the layer sizes overflow")?;
        lengths.extend([w, pair[1]]);
        optimizer_lengths.extend(std::iter::repeat_n(w, k).chain(std::iter::repeat_n(pair[1], k)));
    }
    let values = lengths
        .iter()
        .chain(&optimizer_lengths)
        .try_fold(0usize, |acc, &l| acc.checked_add(l))
        .ok_or("the layer sizes overflow")?;
    let payload = &body[header_end..];
    if values.checked_mul(4) != Some(payload.len()) {
        return Err(format!(
            "the header describes {values} parameters ({} bytes), and the file holds {} bytes \
             of them",
            values.saturating_mul(4),
            payload.len()
        ));
    }
    let mut chunks = payload
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("chunks of 4")));
    let mut take = |len: usize| chunks.by_ref().take(len).collect::<Vec<f32>>();
    let mut weights = Vec::new();
    let mut biases = Vec::new();
    for pair in lengths.chunks_exact(2) {
        weights.push(take(pair[0]));
        biases.push(take(pair[1]));
    }
    let optimizer_arrays: Vec<Vec<f32>> = optimizer_lengths.iter().map(|&l| take(l)).collect();
    if let Some((i, v)) = optimizer_arrays
        .iter()
        .flatten()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
    {
        return Err(format!(
            "optimizer state value {i} is {v}, not a finite number"
        ));
    }
    let network = Network {
        sizes: header.sizes,
        activations,
        weights,
        biases,
        cost,
    };
    network.check()?;
    let state = header.state.to_state(optimizer_arrays)?;
    state.check(&network, &config, state.training_examples)?;
    if state.training_examples == 0 {
        return Err("it was made with 0 training examples".to_string());
    }
    Ok(Checkpoint {
        network,
        config,
        state,
        notes: header.notes,
    })
}

/// CRC-32 with the IEEE polynomial (as zlib and PNG), by `flate2`.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    sizes: Vec<usize>,
    activations: Vec<String>,
    cost: String,
    config: ConfigRecord,
    state: StateRecord,
    notes: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigRecord {
    epochs: usize,
    mini_batch_size: usize,
    eta: f32,
    lambda: f32,
    shuffle: bool,
    seed: u64,
    early_stopping: Option<usize>,
    halve_eta_after: Option<usize>,
    monitor: MonitorRecord,
    optimizer: OptimizerRecord,
    lambda1: f32,
    dropout: f32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MonitorRecord {
    evaluation_cost: bool,
    evaluation_accuracy: bool,
    training_cost: bool,
    training_accuracy: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum OptimizerRecord {
    Sgd,
    Momentum {
        mu: f32,
        nesterov: bool,
    },
    Adam {
        beta1: f32,
        beta2: f32,
        epsilon: f32,
    },
}

impl From<&SgdConfig> for ConfigRecord {
    fn from(c: &SgdConfig) -> ConfigRecord {
        ConfigRecord {
            epochs: c.epochs,
            mini_batch_size: c.mini_batch_size,
            eta: c.eta,
            lambda: c.lambda,
            shuffle: c.shuffle,
            seed: c.seed,
            early_stopping: c.early_stopping,
            halve_eta_after: c.halve_eta_after,
            monitor: MonitorRecord {
                evaluation_cost: c.monitor.evaluation_cost,
                evaluation_accuracy: c.monitor.evaluation_accuracy,
                training_cost: c.monitor.training_cost,
                training_accuracy: c.monitor.training_accuracy,
            },
            optimizer: match c.optimizer {
                Optimizer::Sgd => OptimizerRecord::Sgd,
                Optimizer::Momentum { mu, nesterov } => OptimizerRecord::Momentum { mu, nesterov },
                Optimizer::Adam {
                    beta1,
                    beta2,
                    epsilon,
                } => OptimizerRecord::Adam {
                    beta1,
                    beta2,
                    epsilon,
                },
            },
            lambda1: c.lambda1,
            dropout: c.dropout,
        }
    }
}

impl ConfigRecord {
    fn to_config(&self) -> std::result::Result<SgdConfig, String> {
        Ok(SgdConfig {
            epochs: self.epochs,
            mini_batch_size: self.mini_batch_size,
            eta: self.eta,
            lambda: self.lambda,
            shuffle: self.shuffle,
            seed: self.seed,
            early_stopping: self.early_stopping,
            halve_eta_after: self.halve_eta_after,
            monitor: Monitor {
                evaluation_cost: self.monitor.evaluation_cost,
                evaluation_accuracy: self.monitor.evaluation_accuracy,
                training_cost: self.monitor.training_cost,
                training_accuracy: self.monitor.training_accuracy,
            },
            optimizer: match self.optimizer {
                OptimizerRecord::Sgd => Optimizer::Sgd,
                OptimizerRecord::Momentum { mu, nesterov } => Optimizer::Momentum { mu, nesterov },
                OptimizerRecord::Adam {
                    beta1,
                    beta2,
                    epsilon,
                } => Optimizer::Adam {
                    beta1,
                    beta2,
                    epsilon,
                },
            },
            lambda1: self.lambda1,
            dropout: self.dropout,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateRecord {
    epochs_done: usize,
    batches_done: usize,
    partial_seconds: f64,
    training_examples: usize,
    best_correct: usize,
    epochs_without_improvement: usize,
    eta_halvings: u32,
    eta_stale: usize,
    adam_steps: u64,
    dropout_step: u64,
    stopped_early: bool,
    stop: StopRecord,
    finished: bool,
    epochs: Vec<EpochRecord>,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StopRecord {
    AllEpochs,
    EarlyStopping,
    EtaScheduleExhausted,
    Interrupted,
}

/// One epoch's report; accuracies as `[correct, total]`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EpochRecord {
    epoch: usize,
    eta: f32,
    seconds: f64,
    training_cost: Option<f64>,
    training_accuracy: Option<[usize; 2]>,
    evaluation_cost: Option<f64>,
    evaluation_accuracy: Option<[usize; 2]>,
}

impl From<&TrainingState> for StateRecord {
    fn from(s: &TrainingState) -> StateRecord {
        let accuracy = |a: Option<Accuracy>| a.map(|a| [a.correct, a.total]);
        StateRecord {
            epochs_done: s.epochs_done,
            batches_done: s.batches_done,
            partial_seconds: s.partial_seconds,
            training_examples: s.training_examples,
            best_correct: s.best_correct,
            epochs_without_improvement: s.epochs_without_improvement,
            eta_halvings: s.eta_halvings,
            eta_stale: s.eta_stale,
            adam_steps: s.adam_steps,
            dropout_step: s.dropout_step,
            stopped_early: s.summary.stopped_early,
            stop: match s.summary.stop {
                StopReason::AllEpochs => StopRecord::AllEpochs,
                StopReason::EarlyStopping => StopRecord::EarlyStopping,
                StopReason::EtaScheduleExhausted => StopRecord::EtaScheduleExhausted,
                StopReason::Interrupted => StopRecord::Interrupted,
            },
            finished: s.finished,
            epochs: s
                .summary
                .epochs
                .iter()
                .map(|r| EpochRecord {
                    epoch: r.epoch,
                    eta: r.eta,
                    seconds: r.seconds,
                    training_cost: r.training_cost,
                    training_accuracy: accuracy(r.training_accuracy),
                    evaluation_cost: r.evaluation_cost,
                    evaluation_accuracy: accuracy(r.evaluation_accuracy),
                })
                .collect(),
        }
    }
}

impl StateRecord {
    fn to_state(
        &self,
        optimizer_arrays: Vec<Vec<f32>>,
    ) -> std::result::Result<TrainingState, String> {
        let accuracy = |a: Option<[usize; 2]>, epoch: usize| match a {
            Some([correct, total]) if correct > total => Err(format!(
                "epoch {epoch} has an accuracy of {correct} out of {total}"
            )),
            other => Ok(other.map(|[correct, total]| Accuracy { correct, total })),
        };
        let mut epochs = Vec::with_capacity(self.epochs.len());
        for r in &self.epochs {
            epochs.push(EpochReport {
                epoch: r.epoch,
                eta: r.eta,
                seconds: r.seconds,
                training_cost: r.training_cost,
                training_accuracy: accuracy(r.training_accuracy, r.epoch)?,
                evaluation_cost: r.evaluation_cost,
                evaluation_accuracy: accuracy(r.evaluation_accuracy, r.epoch)?,
            });
        }
        Ok(TrainingState {
            epochs_done: self.epochs_done,
            batches_done: self.batches_done,
            partial_seconds: self.partial_seconds,
            training_examples: self.training_examples,
            best_correct: self.best_correct,
            epochs_without_improvement: self.epochs_without_improvement,
            eta_halvings: self.eta_halvings,
            eta_stale: self.eta_stale,
            adam_steps: self.adam_steps,
            dropout_step: self.dropout_step,
            optimizer_arrays,
            summary: TrainingSummary {
                epochs,
                stopped_early: self.stopped_early,
                stop: match self.stop {
                    StopRecord::AllEpochs => StopReason::AllEpochs,
                    StopRecord::EarlyStopping => StopReason::EarlyStopping,
                    StopRecord::EtaScheduleExhausted => StopReason::EtaScheduleExhausted,
                    StopRecord::Interrupted => StopReason::Interrupted,
                },
            },
            finished: self.finished,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{FloatExamples, Init, Observer, sgd};

    /// Keeps the bytes of every checkpoint offered.
    #[derive(Default)]
    struct Recorder(Vec<Vec<u8>>);

    impl Observer for Recorder {
        fn wants_checkpoints(&self) -> bool {
            true
        }

        fn checkpoint(
            &mut self,
            net: &Network,
            config: &SgdConfig,
            state: &TrainingState,
        ) -> Result<()> {
            let notes = BTreeMap::from([("k".to_string(), "v".to_string())]);
            self.0.push(encode(net, config, state, &notes));
            Ok(())
        }
    }

    /// The checkpoints of a short Adam run on 12 examples of 3 inputs.
    fn checkpoints() -> Vec<Vec<u8>> {
        let inputs: Vec<f32> = (0..36).map(|i| (i % 7) as f32 / 7.0).collect();
        let labels: Vec<u8> = (0..12).map(|i| (i % 2) as u8).collect();
        let data = FloatExamples::new(&inputs, &labels, 3).expect("12 examples of 3 inputs");
        let mut net = Network::new(&[3, 4, 2], Cost::CrossEntropy, Init::Default, 7).unwrap();
        let config = SgdConfig {
            epochs: 3,
            mini_batch_size: 5,
            optimizer: Optimizer::ADAM,
            lambda1: 0.5,
            dropout: 0.25,
            ..SgdConfig::default()
        };
        let mut recorder = Recorder::default();
        sgd(&mut net, &data, Some(&data), &config, &mut recorder).unwrap();
        recorder.0
    }

    #[test]
    fn checkpoints_round_trip_bit_for_bit() {
        let all = checkpoints();
        assert_eq!(all.len(), 3);
        for bytes in &all {
            let c = Checkpoint::from_bytes(bytes).unwrap();
            assert_eq!(c.to_bytes(), *bytes);
            assert_eq!(c.notes["k"], "v");
            assert_eq!(c.state.optimizer_arrays.len(), 2 * 2 * 2);
        }
        let last = Checkpoint::from_bytes(&all[2]).unwrap();
        assert!(last.state.finished());
        assert_eq!(last.state.summary().epochs.len(), 3);
        assert!(last.state.adam_steps > 0 && last.state.dropout_step == last.state.adam_steps);
    }

    #[test]
    fn metrics_read_back_with_the_same_bits() {
        // serde_json parses floats exactly only with its `float_roundtrip` feature; without
        // it this value (a cost from CI's scalar run) came back one ulp off.
        let mut c = Checkpoint::from_bytes(&checkpoints()[2]).unwrap();
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut values = vec![2.2871837456768334, 1e-300, 5e-324, f64::MAX];
        values.extend((0..2000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f64::from_bits(x >> 2) // finite, positive, of every magnitude
        }));
        for chunk in values.chunks(2) {
            let mut state = c.state.clone();
            for r in &mut state.summary.epochs {
                r.training_cost = Some(chunk[0]);
                r.evaluation_cost = chunk.get(1).copied();
            }
            c.state = state;
            let again = Checkpoint::from_bytes(&c.to_bytes()).unwrap();
            let bits = |s: &TrainingState| {
                s.summary
                    .epochs
                    .iter()
                    .map(|r| {
                        (
                            r.training_cost.map(f64::to_bits),
                            r.evaluation_cost.map(f64::to_bits),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&again.state), bits(&c.state), "{chunk:?}");
        }
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let bytes = &checkpoints()[1];
        for len in 0..bytes.len() {
            assert!(
                Checkpoint::from_bytes(&bytes[..len]).is_err(),
                "cut at {len}"
            );
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(Checkpoint::from_bytes(&padded).is_err());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(Checkpoint::from_bytes(&bad).is_err(), "byte {i} flipped");
        }
    }

    #[test]
    fn problems_are_named() {
        let bytes = checkpoints()[0].clone();
        let problem = |b: &[u8]| Checkpoint::from_bytes(b).unwrap_err();
        assert!(problem(b"{\"sizes\": [1, 1]}").contains("does not start with"));
        let mut version = bytes.clone();
        version[8] = 9;
        assert!(problem(&version).contains("format version 9"));
        let mut corrupt = bytes.clone();
        let at = corrupt.len() - 10;
        corrupt[at] ^= 1;
        assert!(problem(&corrupt).contains("checksum mismatch"));
        let mut long_header = bytes.clone();
        long_header[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(problem(&long_header).contains("truncated"));
        // A header that parses but does not fit the parameters, with a valid checksum.
        let mut resized = bytes.clone();
        let at = resized
            .windows(7)
            .position(|w| w == b"[3,4,2]")
            .expect("the sizes in the header");
        resized[at + 3] = b'5';
        let body = resized.len() - 4;
        let crc = crc32(&resized[..body]);
        resized[body..].copy_from_slice(&crc.to_le_bytes());
        assert!(
            problem(&resized).contains("parameters"),
            "{}",
            problem(&resized)
        );
    }
}
