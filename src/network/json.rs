//! network2.py's JSON model format, read and written.
//!
//! network2's `save` writes `{"sizes": [...], "weights": [...], "biases": [...], "cost":
//! "CrossEntropyCost"}` with `json.dump`: each weight matrix as a list of rows, each bias
//! column as a list of one-element lists (numpy's `tolist()` of an `n x 1` array). Its
//! `load` rebuilds the arrays with `np.array` and finds the cost class by name. This module
//! writes exactly that shape, with the separators `json.dump` uses, so either program reads
//! the other's files.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Activation, Cost, Network};
use crate::error::{Error, Result};

/// The file as network2 writes it, borrowed from a [`Network`].
#[derive(Serialize)]
struct Network2Out<'a> {
    sizes: &'a [usize],
    weights: Vec<Vec<&'a [f32]>>,
    biases: Vec<Vec<[f32; 1]>>,
    cost: &'static str,
    /// Written only when some layer is not sigmoid, so that a network2 network's file is
    /// exactly network2's.
    #[serde(skip_serializing_if = "Option::is_none")]
    activations: Option<Vec<&'static str>>,
}

/// The file as read. Keys other than these five are ignored, as network2's `load` does.
#[derive(Deserialize)]
struct Network2In {
    sizes: Vec<usize>,
    weights: Vec<Vec<Vec<f64>>>,
    biases: Vec<Vec<Vec<f64>>>,
    cost: String,
    /// One name per layer after the inputs; absent in network2's files (all sigmoid).
    activations: Option<Vec<String>>,
}

/// Python's `json.dump` style: `", "` between items, `": "` after keys, no newlines.
struct PythonStyle;

impl serde_json::ser::Formatter for PythonStyle {
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        item_separator(writer, first)
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        item_separator(writer, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }
}

/// `json.dump`'s `", "` before every item of an array or object but the first.
fn item_separator<W: ?Sized + Write>(writer: &mut W, first: bool) -> io::Result<()> {
    if first {
        Ok(())
    } else {
        writer.write_all(b", ")
    }
}

impl Network {
    /// The network in network2's JSON format.
    ///
    /// A network with other activations than the sigmoid, or with the log-likelihood cost,
    /// adds the key `"activations"` (one name per layer after the inputs, e.g. `["relu",
    /// "softmax"]`) and writes the cost as `"LogLikelihoodCost"`; this crate reads them back,
    /// network2.py cannot (it has neither).
    ///
    /// Each `f32` is written as the shortest decimal that reads back as the same `f32`
    /// (network2, reading it as a float64, gets a value within half an f32 ulp of it), so a
    /// save/load round trip here is exact.
    pub fn to_network2_json(&self) -> String {
        // network2's order: W row by row (the storage is W^T).
        let row_major: Vec<Vec<f32>> = (0..self.layers())
            .map(|l| self.weights_row_major(l))
            .collect();
        let out = Network2Out {
            sizes: &self.sizes,
            weights: row_major
                .iter()
                .zip(self.sizes.windows(2))
                .map(|(w, pair)| w.chunks_exact(pair[0]).collect())
                .collect(),
            biases: self
                .biases
                .iter()
                .map(|b| b.iter().map(|&v| [v]).collect())
                .collect(),
            cost: self.cost.network2_name(),
            activations: (!self.is_all_sigmoid())
                .then(|| self.activations.iter().map(|a| a.name()).collect()),
        };
        let mut bytes = Vec::with_capacity(16 * self.weights.iter().map(Vec::len).sum::<usize>());
        let mut ser = serde_json::Serializer::with_formatter(&mut bytes, PythonStyle);
        out.serialize(&mut ser)
            .expect("serializing numbers and strings into memory cannot fail");
        String::from_utf8(bytes).expect("serde_json writes UTF-8")
    }

    /// A network from network2's JSON format (as [`Network::load`], from text).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidNetwork`] describing the problem: malformed JSON (with its line and
    /// column), a missing key, an unknown cost, shapes that disagree with `sizes`, a number
    /// that is not finite as an `f32`.
    pub fn from_network2_json(json: &str) -> Result<Network> {
        parse(json).map_err(|problem| Error::InvalidNetwork { problem })
    }

    /// Reads a network saved by network2.py's `save` (or by [`Network::save`]).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be read; [`Error::Model`] naming the file and the
    /// problem (as [`Network::from_network2_json`]) if it is not a usable network.
    pub fn load(path: impl AsRef<Path>) -> Result<Network> {
        let path = path.as_ref();
        let text = fs::read(path).map_err(|e| Error::io(path, "read", &e))?;
        let text = String::from_utf8(text).map_err(|e| Error::Model {
            path: path.to_path_buf(),
            problem: format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        })?;
        parse(&text).map_err(|problem| Error::Model {
            path: path.to_path_buf(),
            problem,
        })
    }

    /// Writes the network to `path` in network2's JSON format, atomically: the JSON goes to
    /// a temporary file in the same directory, is flushed to disk, and then renamed over
    /// `path`, so `path` holds either its old content or the whole new network, never part
    /// of one.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the file if any step fails; the temporary file is removed and
    /// `path` is untouched.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        crate::atomic::write_file(path, self.to_network2_json().as_bytes())
            .map_err(|e| Error::io(path, "write", &e))
    }
}

/// Parses and checks network2's format; the problem as text.
fn parse(json: &str) -> std::result::Result<Network, String> {
    let file: Network2In =
        serde_json::from_str(json).map_err(|e| format!("malformed network2 JSON: {e}"))?;
    let cost = Cost::from_network2_name(&file.cost).ok_or_else(|| {
        format!(
            "unknown cost {:?}: expected CrossEntropyCost, QuadraticCost or LogLikelihoodCost",
            file.cost
        )
    })?;
    super::check_sizes(&file.sizes).map_err(|p| format!("sizes {:?}: {p}", file.sizes))?;
    let layers = file.sizes.len() - 1;
    let activations = match &file.activations {
        None => vec![Activation::Sigmoid; layers],
        Some(names) => names
            .iter()
            .enumerate()
            .map(|(l, name)| {
                Activation::ALL
                    .into_iter()
                    .find(|a| a.name() == name)
                    .ok_or_else(|| {
                        format!(
                            "activations[{l}] is {name:?}: expected sigmoid, tanh, relu or softmax"
                        )
                    })
            })
            .collect::<std::result::Result<_, _>>()?,
    };
    super::check_activations(layers, &activations).map_err(|p| format!("activations: {p}"))?;
    super::check_pairing(&activations, cost).map_err(|p| format!("cost {:?}: {p}", file.cost))?;
    for (key, count) in [
        ("weights", file.weights.len()),
        ("biases", file.biases.len()),
    ] {
        if count != layers {
            return Err(format!(
                "sizes {:?} need {layers} {key} arrays, found {count}",
                file.sizes
            ));
        }
    }
    let mut weights = Vec::with_capacity(layers);
    let mut biases = Vec::with_capacity(layers);
    for (l, pair) in file.sizes.windows(2).enumerate() {
        let (n_in, n_out) = (pair[0], pair[1]);
        let w = &file.weights[l];
        if w.len() != n_out {
            return Err(format!(
                "weights[{l}] has {} rows, but sizes[{}] = {n_out}",
                w.len(),
                l + 1
            ));
        }
        if let Some((j, row)) = w.iter().enumerate().find(|(_, row)| row.len() != n_in) {
            return Err(format!(
                "weights[{l}][{j}] has {} values, but sizes[{l}] = {n_in}",
                row.len()
            ));
        }
        // Only once every row is known to hold n_in values, so that the file has them all:
        // `sizes` alone (a few bytes) could otherwise ask for terabytes here.
        let mut flat = Vec::with_capacity(n_in * n_out);
        for (j, row) in w.iter().enumerate() {
            for (k, &v) in row.iter().enumerate() {
                flat.push(to_f32(v).ok_or_else(|| {
                    format!("weights[{l}][{j}][{k}] = {v} is not a finite f32 value")
                })?);
            }
        }
        let b = &file.biases[l];
        if b.len() != n_out {
            return Err(format!(
                "biases[{l}] has {} rows, but sizes[{}] = {n_out}",
                b.len(),
                l + 1
            ));
        }
        let mut column = Vec::with_capacity(n_out);
        for (j, row) in b.iter().enumerate() {
            let [v] = row[..] else {
                return Err(format!(
                    "biases[{l}][{j}] must be a one-element list [b] (a column), found {} values",
                    row.len()
                ));
            };
            column.push(
                to_f32(v).ok_or_else(|| {
                    format!("biases[{l}][{j}][0] = {v} is not a finite f32 value")
                })?,
            );
        }
        weights.push(super::transpose(&flat, n_out, n_in));
        biases.push(column);
    }
    Ok(Network {
        sizes: file.sizes,
        activations,
        weights,
        biases,
        cost,
    })
}

/// `v` rounded to the nearest `f32`, if that is finite.
fn to_f32(v: f64) -> Option<f32> {
    let x = v as f32;
    x.is_finite().then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `model` fuzz target: `sizes` of 2^24 inputs and 2^15 outputs, with 2^15
    /// empty rows of weights (100 KB of JSON), made the loader ask for 2^39 f32 (2 TB) before
    /// it looked at a row, which aborts the process. The short row must be reported instead.
    #[test]
    fn huge_sizes_with_short_rows_are_an_error_not_an_allocation() {
        let (n_in, n_out) = (1usize << 24, 1usize << 15);
        let rows = vec!["[]"; n_out].join(",");
        let biases = vec!["[0.5]"; n_out].join(",");
        let json = format!(
            r#"{{"sizes": [{n_in}, {n_out}], "weights": [[{rows}]], "biases": [[{biases}]], "cost": "QuadraticCost"}}"#
        );
        let problem = parse(&json).unwrap_err();
        assert_eq!(
            problem,
            format!("weights[0][0] has 0 values, but sizes[0] = {n_in}")
        );
    }
}
