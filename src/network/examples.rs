//! Where training and evaluation examples come from: an MNIST [`Dataset`] (u8 pixels, in
//! place) or plain `f32` rows in memory.

use std::ops::Range;

use crate::data::{self, Dataset};
use crate::error::{Error, Result};

/// A labelled set of examples that can be gathered into mini-batches.
///
/// Implemented for [`Dataset`] (pixels become `p / 255` as they are gathered) and for
/// [`FloatExamples`] (inputs given as `f32`).
pub trait Examples: Sync {
    /// The number of examples.
    fn len(&self) -> usize;

    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per example (the input layer's size).
    fn input_size(&self) -> usize;

    /// Where the examples come from, for error messages (a file path, or a description).
    fn source(&self) -> String;

    /// Writes examples `indices` into `inputs` (row-major `indices.len() x input_size()`) and
    /// their labels into `labels`.
    ///
    /// # Errors
    ///
    /// If a buffer has the wrong length or an index is out of range.
    fn gather(&self, indices: &[usize], inputs: &mut [f32], labels: &mut [u8]) -> Result<()>;

    /// [`Examples::gather`] for consecutive examples.
    ///
    /// # Errors
    ///
    /// As [`Examples::gather`].
    fn gather_range(
        &self,
        range: Range<usize>,
        inputs: &mut [f32],
        labels: &mut [u8],
    ) -> Result<()>;

    /// A hint that examples `indices` will be gathered soon (see [`data::prefetch`]).
    fn prefetch(&self, indices: &[usize]) {
        let _ = indices;
    }

    /// Checks every label is below `classes`.
    ///
    /// # Errors
    ///
    /// [`Error::LabelOutOfRange`] for the first that is not.
    fn check_labels(&self, classes: usize) -> Result<()>;

    /// Checks the examples have `inputs` values each.
    ///
    /// # Errors
    ///
    /// [`Error::InputSizeMismatch`] (for files) or [`Error::BadOption`] if not.
    fn check_input_size(&self, inputs: usize) -> Result<()>;
}

impl Examples for Dataset {
    fn len(&self) -> usize {
        Dataset::len(self)
    }

    fn input_size(&self) -> usize {
        Dataset::input_size(self)
    }

    fn source(&self) -> String {
        self.images_path().display().to_string()
    }

    fn gather(&self, indices: &[usize], inputs: &mut [f32], labels: &mut [u8]) -> Result<()> {
        data::gather(self, indices, inputs, labels)
    }

    fn gather_range(
        &self,
        range: Range<usize>,
        inputs: &mut [f32],
        labels: &mut [u8],
    ) -> Result<()> {
        data::gather_range(self, range, inputs, labels)
    }

    fn prefetch(&self, indices: &[usize]) {
        data::prefetch(self, indices);
    }

    fn check_labels(&self, classes: usize) -> Result<()> {
        Dataset::check_labels(self, classes)
    }

    fn check_input_size(&self, inputs: usize) -> Result<()> {
        Dataset::check_input_size(self, inputs)
    }
}

/// Examples held in memory as `f32` rows, with `u8` labels.
#[derive(Clone, Copy, Debug)]
pub struct FloatExamples<'a> {
    inputs: &'a [f32],
    labels: &'a [u8],
    input_size: usize,
}

impl<'a> FloatExamples<'a> {
    /// `labels.len()` examples of `input_size` values, row-major in `inputs`.
    ///
    /// # Errors
    ///
    /// [`Error::BadOption`] if `input_size` is 0 or `inputs.len() != labels.len() *
    /// input_size`.
    pub fn new(inputs: &'a [f32], labels: &'a [u8], input_size: usize) -> Result<Self> {
        if input_size == 0 || labels.len().checked_mul(input_size) != Some(inputs.len()) {
            return Err(Error::BadOption {
                option: "examples",
                problem: format!(
                    "{} input values do not make {} examples of {input_size}",
                    inputs.len(),
                    labels.len()
                ),
            });
        }
        Ok(FloatExamples {
            inputs,
            labels,
            input_size,
        })
    }

    fn check_buffers(&self, rows: usize, inputs: &[f32], labels: &[u8]) -> Result<()> {
        if inputs.len() != rows * self.input_size {
            return Err(Error::BatchBufferMismatch {
                buffer: "pixel",
                expected: rows * self.input_size,
                actual: inputs.len(),
            });
        }
        if labels.len() != rows {
            return Err(Error::BatchBufferMismatch {
                buffer: "label",
                expected: rows,
                actual: labels.len(),
            });
        }
        Ok(())
    }

    fn out_of_range(&self, index: usize) -> Error {
        Error::BatchIndexOutOfRange {
            path: self.source().into(),
            index,
            len: self.labels.len(),
        }
    }
}

impl Examples for FloatExamples<'_> {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn input_size(&self) -> usize {
        self.input_size
    }

    fn source(&self) -> String {
        "examples in memory".to_string()
    }

    fn gather(&self, indices: &[usize], inputs: &mut [f32], labels: &mut [u8]) -> Result<()> {
        self.check_buffers(indices.len(), inputs, labels)?;
        if let Some(&i) = indices.iter().find(|&&i| i >= self.labels.len()) {
            return Err(self.out_of_range(i));
        }
        let size = self.input_size;
        for ((row, label), &i) in inputs.chunks_exact_mut(size).zip(labels).zip(indices) {
            row.copy_from_slice(&self.inputs[i * size..(i + 1) * size]);
            *label = self.labels[i];
        }
        Ok(())
    }

    fn gather_range(
        &self,
        range: Range<usize>,
        inputs: &mut [f32],
        labels: &mut [u8],
    ) -> Result<()> {
        if range.start > range.end || range.end > self.labels.len() {
            return Err(self.out_of_range(range.start.max(self.labels.len())));
        }
        self.check_buffers(range.len(), inputs, labels)?;
        let size = self.input_size;
        inputs.copy_from_slice(&self.inputs[range.start * size..range.end * size]);
        labels.copy_from_slice(&self.labels[range]);
        Ok(())
    }

    fn check_labels(&self, classes: usize) -> Result<()> {
        match self.labels.iter().position(|&l| usize::from(l) >= classes) {
            None => Ok(()),
            Some(index) => Err(Error::LabelOutOfRange {
                path: self.source().into(),
                index,
                label: self.labels[index],
                classes,
            }),
        }
    }

    fn check_input_size(&self, inputs: usize) -> Result<()> {
        if inputs == self.input_size {
            Ok(())
        } else {
            Err(Error::BadOption {
                option: "examples",
                problem: format!(
                    "the examples have {} values but the network's input layer has {inputs} neurons",
                    self.input_size
                ),
            })
        }
    }
}
