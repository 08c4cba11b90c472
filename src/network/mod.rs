//! network2.py's sigmoid networks: the model, its costs and initializers, its JSON file
//! format, and its training rule (mini-batch SGD with L2 regularization, monitoring, early
//! stopping), on the crate's GEMM and fused kernels.
//!
//! | network2.py | here |
//! |---|---|
//! | `Network(sizes, cost)` + `default_weight_initializer` | [`Network::new`] with [`Init::Default`] |
//! | `large_weight_initializer` | [`Init::Large`] |
//! | `CrossEntropyCost`, `QuadraticCost` | [`Cost`] |
//! | `feedforward(a)` | [`Network::feedforward`] |
//! | `SGD(...)` | [`sgd`] with an [`SgdConfig`] |
//! | `update_mini_batch(...)` | [`Trainer::step`] |
//! | `accuracy(data)`, `total_cost(data, lmbda)` | [`Network::evaluate`] |
//! | `save(filename)`, `load(filename)` | [`Network::save`], [`Network::load`] |
//!
//! # Layout
//!
//! Layer `l`'s weights are network2's `weights[l]`, a `sizes[l+1] x sizes[l]` matrix `W` (row
//! `j` holds the weights into neuron `j`), its biases a vector of `sizes[l+1]`. `W` is stored
//! column-major, i.e. as `W^T` row-major: row `k` of the buffer holds the weights out of input
//! `k` to every neuron of the layer, contiguous. [`Network::weights`] is a view of `W` through
//! those strides and [`Network::weights_row_major`] a copy in network2's order.
//!
//! Why column-major: a mini-batch is a row-major `m x sizes[0]` matrix, one example per row,
//! and each layer's forward step is `Z = A W^T`. When `A` is mostly zeros, as MNIST's pixels
//! are (about 19% nonzero), the first layer is computed from the nonzero inputs only: each
//! nonzero `a[r][k]` adds `a[r][k]` times row `k` of `W^T` to `z[r]`, a contiguous
//! vector-wide multiply-add, and the weight update touches row `k` once per step. The dense
//! path reads `W^T` as the GEMM's `B` operand directly; see [`Trainer`] for the backward pass.
//!
//! ```
//! use simdnet::network::{Cost, Init, Network};
//!
//! let net = Network::new(&[784, 30, 10], Cost::CrossEntropy, Init::Default, 42)?;
//! let out = net.feedforward(&vec![0.5; 784])?;
//! assert_eq!(out.len(), 10);
//! assert!(out.iter().all(|&a| (0.0..=1.0).contains(&a)));
//! # Ok::<(), simdnet::Error>(())
//! ```

pub mod checkpoint;
mod eval;
mod examples;
mod infer;
mod json;
mod rng;
mod schedule;
mod train;

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use rayon::prelude::*;

use crate::data::mmap;
use crate::gemm::{Gemm, Parallelism};
pub use crate::kernels::{Activation, Optimizer};
use crate::kernels::{Half, Kernels, ListedRows, SparseRows, UpdateScratch};
use crate::matrix::{MatMut, MatRef};
use crate::pair::Pair;

pub use eval::Evaluation;
pub use examples::{Examples, FloatExamples};
pub use schedule::StopReason;
pub use train::{
    Accuracy, EpochReport, Monitor, Observer, SgdConfig, Trainer, TrainingState, TrainingSummary,
    sgd, sgd_from,
};

/// The costs: network2's two, and the log-likelihood of a softmax output layer (the book's
/// chapter 3, and network3.py).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cost {
    /// `CrossEntropyCost`: `C = -sum(y ln a + (1 - y) ln(1 - a))`, output error `a - y`.
    /// Needs a sigmoid output layer.
    CrossEntropy,
    /// `QuadraticCost`: `C = ||a - y||^2 / 2`, output error `(a - y) f'(z)`. Any element-wise
    /// output activation.
    Quadratic,
    /// `C = -ln a_y`, output error `a - y`. Needs a softmax output layer (and a softmax
    /// output layer needs it).
    LogLikelihood,
}

impl Cost {
    /// The class name written in JSON model files: network2's `"CrossEntropyCost"` and
    /// `"QuadraticCost"`, and `"LogLikelihoodCost"` (which network2 cannot load).
    pub fn network2_name(self) -> &'static str {
        match self {
            Cost::CrossEntropy => "CrossEntropyCost",
            Cost::Quadratic => "QuadraticCost",
            Cost::LogLikelihood => "LogLikelihoodCost",
        }
    }

    /// The cost whose network2 class name is `name`.
    pub fn from_network2_name(name: &str) -> Option<Cost> {
        match name {
            "CrossEntropyCost" => Some(Cost::CrossEntropy),
            "QuadraticCost" => Some(Cost::Quadratic),
            "LogLikelihoodCost" => Some(Cost::LogLikelihood),
            _ => None,
        }
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cost::CrossEntropy => "cross-entropy",
            Cost::Quadratic => "quadratic",
            Cost::LogLikelihood => "log-likelihood",
        })
    }
}

impl FromStr for Cost {
    type Err = Error;

    /// `cross-entropy`, `quadratic` or `log-likelihood` (as the `train` binary spells them),
    /// or the class names of [`Cost::network2_name`].
    fn from_str(s: &str) -> Result<Cost> {
        match s {
            "cross-entropy" => Ok(Cost::CrossEntropy),
            "quadratic" => Ok(Cost::Quadratic),
            "log-likelihood" => Ok(Cost::LogLikelihood),
            _ => Cost::from_network2_name(s).ok_or_else(|| Error::BadOption {
                option: "cost",
                problem: format!(
                    "{s:?} is not a cost: expected cross-entropy, quadratic or log-likelihood"
                ),
            }),
        }
    }
}

/// network2's two weight initializers. Biases are N(0, 1) with either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Init {
    /// `default_weight_initializer`: weights N(0, 1/n_in), n_in the number of inputs of the
    /// neuron, so that weighted inputs start with unit variance and neurons do not saturate.
    #[default]
    Default,
    /// `large_weight_initializer`: weights N(0, 1), as in the book's chapter 1.
    Large,
}

impl FromStr for Init {
    type Err = Error;

    /// `default` or `large`.
    fn from_str(s: &str) -> Result<Init> {
        match s {
            "default" => Ok(Init::Default),
            "large" => Ok(Init::Large),
            _ => Err(Error::BadOption {
                option: "init",
                problem: format!("{s:?} is not an initializer: expected default or large"),
            }),
        }
    }
}

/// A fully connected network, as network2.py's `Network`: sigmoid neurons by default, or
/// any [`Activation`] per layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    sizes: Vec<usize>,
    /// `activations[l]`: the activation of layer `l + 1` (the output of weights `l`).
    activations: Vec<Activation>,
    /// `weights[l]`: `W_l^T`, `sizes[l] x sizes[l+1]` row-major (`W_l` column-major).
    weights: Vec<Vec<f32>>,
    /// `biases[l]`: `sizes[l+1]`.
    biases: Vec<Vec<f32>>,
    cost: Cost,
}

impl Network {
    /// A network of the given layer sizes (inputs first), initialized with `init` from a
    /// random generator seeded with `seed`. The same seed gives the same network on every
    /// machine and ISA.
    ///
    /// The normal deviates are drawn layer by layer, biases then weights (row by row), by the
    /// Box-Muller transform on a ChaCha8 stream; network2 draws from numpy's generator, so the
    /// numbers (not their distribution) differ from network2's for the same seed.
    ///
    /// # Errors
    ///
    /// [`Error::BadOption`] (option `sizes`) for fewer than 2 layers or a layer of 0 neurons;
    /// (option `cost`) for [`Cost::LogLikelihood`], which needs a softmax output layer (see
    /// [`Network::with_activations`]).
    pub fn new(sizes: &[usize], cost: Cost, init: Init, seed: u64) -> Result<Network> {
        let layers = sizes.len().saturating_sub(1);
        Network::with_activations(sizes, &vec![Activation::Sigmoid; layers], cost, init, seed)
    }

    /// As [`Network::new`], with `activations[l]` the activation of layer `l + 1` (one per
    /// weight layer). Every hidden layer takes an element-wise activation (sigmoid, tanh,
    /// ReLU); the output layer may also be softmax, which goes with [`Cost::LogLikelihood`]
    /// and only with it. [`Cost::CrossEntropy`] needs a sigmoid output (its `ln(1 - a)`), and
    /// [`Cost::Quadratic`] an element-wise one.
    ///
    /// The weights are drawn exactly as by [`Network::new`] for the same seed, whatever the
    /// activations.
    ///
    /// ```
    /// use simdnet::network::{Activation, Cost, Init, Network};
    ///
    /// let net = Network::with_activations(
    ///     &[784, 100, 10],
    ///     &[Activation::Relu, Activation::Softmax],
    ///     Cost::LogLikelihood,
    ///     Init::Default,
    ///     7,
    /// )?;
    /// let out = net.feedforward(&vec![0.5; 784])?;
    /// assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    ///
    /// // A softmax output without the log-likelihood cost is refused.
    /// let err = Network::with_activations(
    ///     &[784, 10],
    ///     &[Activation::Softmax],
    ///     Cost::CrossEntropy,
    ///     Init::Default,
    ///     7,
    /// );
    /// assert!(err.is_err());
    /// # Ok::<(), simdnet::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::BadOption`]: option `sizes` as in [`Network::new`]; option `activations`
    /// for the wrong number of activations or a softmax hidden layer; option `cost` for a
    /// cost that does not go with the output activation.
    pub fn with_activations(
        sizes: &[usize],
        activations: &[Activation],
        cost: Cost,
        init: Init,
        seed: u64,
    ) -> Result<Network> {
        check_sizes(sizes).map_err(|problem| Error::BadOption {
            option: "sizes",
            problem,
        })?;
        check_activations(sizes.len() - 1, activations).map_err(|problem| Error::BadOption {
            option: "activations",
            problem,
        })?;
        check_pairing(activations, cost).map_err(|problem| Error::BadOption {
            option: "cost",
            problem,
        })?;
        let mut normal = rng::Normal::new(seed);
        let mut weights = Vec::with_capacity(sizes.len() - 1);
        let mut biases = Vec::with_capacity(sizes.len() - 1);
        for pair in sizes.windows(2) {
            let (n_in, n_out) = (pair[0], pair[1]);
            biases.push((0..n_out).map(|_| normal.sample() as f32).collect());
            let scale = match init {
                Init::Default => 1.0 / (n_in as f64).sqrt(),
                Init::Large => 1.0,
            };
            // Drawn in network2's order (row by row of W), stored transposed.
            let w: Vec<f32> = (0..n_in * n_out)
                .map(|_| (normal.sample() * scale) as f32)
                .collect();
            weights.push(transpose(&w, n_out, n_in));
        }
        Ok(Network {
            sizes: sizes.to_vec(),
            activations: activations.to_vec(),
            weights,
            biases,
            cost,
        })
    }

    /// A sigmoid network from its parts: `weights[l]` row-major `sizes[l+1] x sizes[l]`,
    /// `biases[l]` of length `sizes[l+1]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidNetwork`] if the sizes are invalid (as in [`Network::new`]), the
    /// number or the shape of the weights or biases disagrees with them, a value is not
    /// finite, or the cost needs another output activation.
    pub fn from_parts(
        sizes: Vec<usize>,
        weights: Vec<Vec<f32>>,
        biases: Vec<Vec<f32>>,
        cost: Cost,
    ) -> Result<Network> {
        let layers = sizes.len().saturating_sub(1);
        Network::from_parts_with_activations(
            sizes,
            vec![Activation::Sigmoid; layers],
            weights,
            biases,
            cost,
        )
    }

    /// As [`Network::from_parts`], with one activation per weight layer (as
    /// [`Network::with_activations`]).
    ///
    /// # Errors
    ///
    /// As [`Network::from_parts`], and [`Error::InvalidNetwork`] for activations that
    /// [`Network::with_activations`] would refuse.
    pub fn from_parts_with_activations(
        sizes: Vec<usize>,
        activations: Vec<Activation>,
        weights: Vec<Vec<f32>>,
        biases: Vec<Vec<f32>>,
        cost: Cost,
    ) -> Result<Network> {
        let mut net = Network {
            sizes,
            activations,
            weights,
            biases,
            cost,
        };
        // The lengths first (on the parts as given), then the same checks on the stored
        // layout, which also name a non-finite weight by its (row, column) in W.
        net.check_lengths()
            .map_err(|problem| Error::InvalidNetwork { problem })?;
        for (w, pair) in net.weights.iter_mut().zip(net.sizes.windows(2)) {
            *w = transpose(w, pair[1], pair[0]);
        }
        net.check()
            .map_err(|problem| Error::InvalidNetwork { problem })?;
        Ok(net)
    }

    /// Checks the invariants [`Network::from_parts`] promises, describing the first broken.
    fn check(&self) -> std::result::Result<(), String> {
        self.check_lengths()?;
        for (l, pair) in self.sizes.windows(2).enumerate() {
            let n_out = pair[1];
            if let Some(i) = self.weights[l].iter().position(|w| !w.is_finite()) {
                // Stored as W^T: index i is input i / n_out into neuron i % n_out.
                return Err(format!(
                    "weights[{l}][{}][{}] is {}, not a finite number",
                    i % n_out,
                    i / n_out,
                    self.weights[l][i]
                ));
            }
            if let Some(j) = self.biases[l].iter().position(|b| !b.is_finite()) {
                return Err(format!(
                    "biases[{l}][{j}] is {}, not a finite number",
                    self.biases[l][j]
                ));
            }
        }
        Ok(())
    }

    /// Checks the sizes, the activations and cost, and the number and lengths of the weight
    /// and bias arrays.
    fn check_lengths(&self) -> std::result::Result<(), String> {
        check_sizes(&self.sizes)?;
        let layers = self.sizes.len() - 1;
        check_activations(layers, &self.activations)?;
        check_pairing(&self.activations, self.cost)?;
        for (what, count) in [("weight", self.weights.len()), ("bias", self.biases.len())] {
            if count != layers {
                return Err(format!(
                    "{} layer sizes need {layers} {what} arrays, found {count}",
                    self.sizes.len()
                ));
            }
        }
        for (l, pair) in self.sizes.windows(2).enumerate() {
            let (n_in, n_out) = (pair[0], pair[1]);
            if self.weights[l].len() != n_in * n_out {
                return Err(format!(
                    "weights[{l}] must be {n_out} x {n_in} = {} values, found {}",
                    n_in * n_out,
                    self.weights[l].len()
                ));
            }
            if self.biases[l].len() != n_out {
                return Err(format!(
                    "biases[{l}] must have {n_out} values, found {}",
                    self.biases[l].len()
                ));
            }
        }
        Ok(())
    }

    /// The layer sizes, inputs first.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The number of weight layers (`sizes().len() - 1`).
    pub fn layers(&self) -> usize {
        self.weights.len()
    }

    /// The size of the input layer.
    pub fn inputs(&self) -> usize {
        self.sizes[0]
    }

    /// The size of the output layer (the number of classes).
    pub fn outputs(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }

    /// The cost the network is trained with.
    pub fn cost(&self) -> Cost {
        self.cost
    }

    /// Sets the cost (a loaded network may be trained further with another cost).
    ///
    /// # Errors
    ///
    /// [`Error::BadOption`] (option `cost`), leaving the network unchanged, if the cost does
    /// not go with the output activation (see [`Network::with_activations`]).
    pub fn set_cost(&mut self, cost: Cost) -> Result<()> {
        check_pairing(&self.activations, cost).map_err(|problem| Error::BadOption {
            option: "cost",
            problem,
        })?;
        self.cost = cost;
        Ok(())
    }

    /// The activation of each layer after the inputs (`activations()[l]` follows weights
    /// `l`).
    pub fn activations(&self) -> &[Activation] {
        &self.activations
    }

    /// The output layer's activation.
    pub fn output_activation(&self) -> Activation {
        self.activations[self.activations.len() - 1]
    }

    /// Whether every layer is sigmoid, as in network2.
    pub fn is_all_sigmoid(&self) -> bool {
        self.activations.iter().all(|&a| a == Activation::Sigmoid)
    }

    /// Layer `l`'s weights `W`, a `sizes[l+1] x sizes[l]` view (element `(j, k)`: from input
    /// `k` into neuron `j`, network2's `weights[l][j][k]`). The storage is column-major; see
    /// the [module documentation](self#layout).
    ///
    /// # Panics
    ///
    /// If `l >= layers()`.
    pub fn weights(&self, l: usize) -> MatRef<'_> {
        let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
        MatRef::from_col_major(&self.weights[l], n_out, n_in)
            .expect("a layer's weights hold sizes[l+1] * sizes[l] values (checked when made)")
    }

    /// Layer `l`'s weights in network2's order: `sizes[l+1] x sizes[l]` row-major (a copy).
    ///
    /// # Panics
    ///
    /// If `l >= layers()`.
    pub fn weights_row_major(&self, l: usize) -> Vec<f32> {
        transpose(&self.weights[l], self.sizes[l], self.sizes[l + 1])
    }

    /// Layer `l`'s biases, `sizes[l+1]` values.
    ///
    /// # Panics
    ///
    /// If `l >= layers()`.
    pub fn biases(&self, l: usize) -> &[f32] {
        &self.biases[l]
    }

    /// Layer `l`'s weights `W` as a mutable view, shaped as [`Network::weights`].
    ///
    /// # Panics
    ///
    /// If `l >= layers()`.
    pub fn weights_mut(&mut self, l: usize) -> MatMut<'_> {
        let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
        MatMut::from_col_major(&mut self.weights[l], n_out, n_in)
            .expect("a layer's weights hold sizes[l+1] * sizes[l] values (checked when made)")
    }

    /// Layer `l`'s biases, mutable.
    ///
    /// # Panics
    ///
    /// If `l >= layers()`.
    pub fn biases_mut(&mut self, l: usize) -> &mut [f32] {
        &mut self.biases[l]
    }

    /// The squared Frobenius norms of all weight matrices, summed in f64: the
    /// `sum(np.linalg.norm(w)**2 for w in self.weights)` of network2's L2 term.
    pub fn weight_norm_squared(&self) -> f64 {
        self.weights
            .iter()
            .flatten()
            .map(|&w| f64::from(w) * f64::from(w))
            .sum()
    }

    /// The first weight or bias that is not finite, described (`None` if all are).
    pub(crate) fn first_non_finite(&self) -> Option<String> {
        self.check().err()
    }

    /// The network's output for one input (network2's `feedforward`), on the selected ISA.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `input.len() != inputs()`.
    pub fn feedforward(&self, input: &[f32]) -> Result<Vec<f32>> {
        let mut outputs = vec![0.0; self.outputs()];
        self.feedforward_batch(input, 1, &mut outputs)?;
        Ok(outputs)
    }

    /// The outputs for `rows` inputs at once: `inputs` is row-major `rows x inputs()`,
    /// `outputs` row-major `rows x outputs()`.
    ///
    /// The rows are cut into chunks of a fixed 500 (the chunks of [`Network::evaluate`])
    /// run in parallel on the current rayon pool, so the outputs are bitwise the same for any
    /// number of threads. Each chunk is one product per layer, the first computed from the
    /// nonzero inputs when at most half of the chunk's inputs are nonzero (see the
    /// [module documentation](self#layout)).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if a buffer does not have the length its shape needs;
    /// [`Error::UnknownIsa`] if `SIMDNET_ISA` is invalid.
    pub fn feedforward_batch(
        &self,
        inputs: &[f32],
        rows: usize,
        outputs: &mut [f32],
    ) -> Result<()> {
        let (n_in, n_out) = (self.inputs(), self.outputs());
        if rows.checked_mul(n_in) != Some(inputs.len())
            || rows.checked_mul(n_out) != Some(outputs.len())
        {
            return Err(Error::ShapeMismatch {
                op: "Network::feedforward_batch (A = inputs, B = the network, C = outputs)",
                a_rows: rows,
                a_cols: inputs.len().checked_div(rows).unwrap_or(0),
                b_rows: n_in,
                b_cols: n_out,
                c_rows: rows,
                c_cols: outputs.len().checked_div(rows).unwrap_or(0),
            });
        }
        if rows == 0 {
            return Ok(());
        }
        let isa = crate::isa::try_selected_isa()?;
        let kernels = Kernels::for_isa(isa.fused_kernels_isa())?;
        let gemm = sequential_gemm(isa)?;
        let chunk = FORWARD_CHUNK.min(rows);
        outputs
            .par_chunks_mut(chunk * n_out)
            .zip(inputs.par_chunks(chunk * n_in))
            .map_init(
                || Forward::reading_in_place(self, chunk),
                |forward, (out, x)| {
                    let rows = x.len() / n_in;
                    forward.run_on(self, &gemm, &kernels, x, rows)?;
                    out.copy_from_slice(forward.activation(self.layers(), rows));
                    Ok(())
                },
            )
            .collect()
    }
}

/// Rows per task of a parallel forward pass ([`Network::feedforward_batch`] and
/// [`Network::evaluate`]): fixed, so that results do not depend on the number of threads;
/// large enough that a task's products are efficient (500 MNIST images are 1.5 MB of
/// inputs), small enough that 10,000 images make 20 tasks to balance over the cores.
pub(crate) const FORWARD_CHUNK: usize = 500;

/// The transpose of the row-major `rows x cols` matrix `src`, row-major `cols x rows`.
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    debug_assert_eq!(src.len(), rows * cols);
    let mut dst = vec![0.0; src.len()];
    // Blocks of 16 x 16 keep both the rows read and the rows written in L1.
    const BLOCK: usize = 16;
    for i0 in (0..rows).step_by(BLOCK) {
        for j0 in (0..cols).step_by(BLOCK) {
            for i in i0..(i0 + BLOCK).min(rows) {
                for j in j0..(j0 + BLOCK).min(cols) {
                    dst[j * rows + i] = src[i * cols + j];
                }
            }
        }
    }
    dst
}

/// Checks that there is one activation per weight layer and softmax only on the output.
fn check_activations(layers: usize, activations: &[Activation]) -> std::result::Result<(), String> {
    if activations.len() != layers {
        return Err(format!(
            "a network of {} layers needs {layers} activations (one per layer after the \
             inputs), got {}",
            layers + 1,
            activations.len()
        ));
    }
    if let Some(l) = activations[..layers.saturating_sub(1)]
        .iter()
        .position(|&a| a == Activation::Softmax)
    {
        return Err(format!(
            "layer {} is hidden: softmax is only for the output layer (use sigmoid, tanh or relu)",
            l + 1
        ));
    }
    Ok(())
}

/// Checks that the cost suits the output activation.
fn check_pairing(activations: &[Activation], cost: Cost) -> std::result::Result<(), String> {
    let Some(&output) = activations.last() else {
        return Ok(());
    };
    match (cost, output) {
        (Cost::LogLikelihood, Activation::Softmax)
        | (Cost::CrossEntropy, Activation::Sigmoid)
        | (Cost::Quadratic, Activation::Sigmoid | Activation::Tanh | Activation::Relu) => Ok(()),
        (Cost::LogLikelihood, other) => Err(format!(
            "the log-likelihood cost needs a softmax output layer, not {other}"
        )),
        (_, Activation::Softmax) => Err(format!(
            "a softmax output layer goes with the log-likelihood cost, not {cost}"
        )),
        (Cost::CrossEntropy, other) => Err(format!(
            "the cross-entropy cost needs a sigmoid output layer (its ln(1 - a) is undefined \
             for {other} outputs); use the quadratic cost, or softmax with log-likelihood"
        )),
    }
}

/// Checks a list of layer sizes; the problem as text.
fn check_sizes(sizes: &[usize]) -> std::result::Result<(), String> {
    if sizes.len() < 2 {
        return Err(format!(
            "a network needs at least 2 layers (inputs and outputs), got {}",
            sizes.len()
        ));
    }
    if let Some(l) = sizes.iter().position(|&s| s == 0) {
        return Err(format!("layer {l} has 0 neurons"));
    }
    if sizes.iter().any(|&s| s > 1 << 24) {
        return Err("layers are limited to 16,777,216 neurons".to_string());
    }
    if sizes.windows(2).any(|p| {
        p[0].checked_mul(p[1])
            .is_none_or(|n| n > isize::MAX as usize / 8)
    }) {
        return Err("a weight matrix would not fit in memory".to_string());
    }
    Ok(())
}

/// The buffers of a forward pass over up to `capacity` examples: per layer the weighted
/// inputs `z` and the activations `a`, row-major `rows x sizes[l]`. `a[0]` holds the inputs.
#[derive(Debug)]
pub(crate) struct Forward {
    capacity: usize,
    sizes: Vec<usize>,
    /// `zs[l]`: weighted inputs of layer `l + 1`.
    zs: Vec<Vec<f32>>,
    /// `activations[l]`: activations of layer `l` (`l = 0`: the inputs).
    activations: Vec<Vec<f32>>,
    /// With `keeps_sparse_input`: the nonzero inputs of the last batch as scanned from the
    /// input buffer (then split into `halves`). Otherwise the scratch list of one block of
    /// [`SCAN_BLOCK`] rows.
    sparse_input: SparseRows,
    /// With `keeps_sparse_input`: the nonzero inputs of the last batch in the [`Half::Low`]
    /// and [`Half::High`] columns, when it was sparse enough for the first layer to be
    /// computed from them (`input_is_sparse`). Empty otherwise.
    halves: [SparseRows; 2],
    /// The first layer's weighted inputs from the [`Half::High`] entries, added to those of
    /// the low half (trainer only).
    z_high: Vec<f32>,
    input_is_sparse: bool,
    /// Whether the nonzero inputs of the whole batch are kept for the backward pass (the
    /// trainer); otherwise the first layer scans and multiplies [`SCAN_BLOCK`] rows at a
    /// time, so that the entry lists stay in L1 instead of pushing `W^T` out of L2.
    keeps_sparse_input: bool,
}

/// A batch taken from listed examples ([`Forward::listed_batch`]): the first layer copies each
/// half of their entries on the thread that multiplies it, so that a thread's entries stay
/// in its own cache.
#[derive(Clone, Copy)]
pub(crate) struct ListedBatch<'a> {
    pub list: &'a ListedRows,
    pub examples: &'a [usize],
    /// Their entries in all.
    pub entries: usize,
    /// The next batch's examples, whose lists each thread asks the CPU to fetch once its
    /// half of the product is done.
    pub next: Option<&'a [usize]>,
}

impl<'a> ListedBatch<'a> {
    /// The lists of the next batch's examples in `half` of the inputs, if there is a next
    /// batch.
    fn list_next(self, half: Half) -> Option<impl Iterator<Item = (&'a [u32], &'a [f32])>> {
        Some(self.list.lists(self.next?, Some(half)))
    }
}

/// Rows per block of an inference pass's first layer: the nonzero entries of 32 MNIST images
/// (about 38 KB of index and value lists) are written and read back while still in L1.
const SCAN_BLOCK: usize = 32;

/// The first layer is computed from the nonzero inputs when at most this fraction of a
/// batch's inputs is nonzero. Per nonzero input the sparse product does the same vector
/// multiply-adds per output as the dense GEMM does per input, without packing, so it wins
/// up to high densities; half keeps the buffer of entries as large as the dense batch.
/// MNIST batches are about 19% nonzero.
pub(crate) const SPARSE_MAX_DENSITY_PERCENT: usize = 50;

impl Forward {
    /// Buffers for `net`'s shape and batches of up to `capacity` examples.
    pub(crate) fn new(net: &Network, capacity: usize) -> Forward {
        Forward::with_buffers(net, capacity, capacity, true)
    }

    /// Buffers for forward passes that no backward pass follows (evaluation): the first
    /// layer runs in blocks of [`SCAN_BLOCK`] rows, and [`Forward::sparse_input`] is `None`.
    pub(crate) fn for_inference(net: &Network, capacity: usize) -> Forward {
        Forward::with_buffers(net, capacity, capacity, false)
    }

    /// Buffers for [`Forward::run_on`] only, which reads its inputs in place: as
    /// [`Forward::for_inference`], without an input buffer ([`Forward::input_mut`] is empty).
    pub(crate) fn reading_in_place(net: &Network, capacity: usize) -> Forward {
        Forward::with_buffers(net, capacity, 0, false)
    }

    /// Buffers for batches of up to `capacity` examples, with room for `held_inputs` of
    /// them in [`Forward::input_mut`].
    fn with_buffers(
        net: &Network,
        capacity: usize,
        held_inputs: usize,
        keeps_sparse_input: bool,
    ) -> Forward {
        let scanned_rows = if keeps_sparse_input {
            capacity
        } else {
            capacity.min(SCAN_BLOCK)
        };
        // Room for `rows` rows at the densest a batch may be and still be listed.
        let entries_of = |rows: usize| {
            let max_entries = rows * net.sizes[0] * SPARSE_MAX_DENSITY_PERCENT / 100;
            SparseRows::new(rows, net.sizes[0], max_entries)
        };
        let half_rows = if keeps_sparse_input { capacity } else { 0 };
        Forward {
            capacity,
            sizes: net.sizes.clone(),
            zs: net.sizes[1..]
                .iter()
                .map(|&s| vec![0.0; s * capacity])
                .collect(),
            activations: std::iter::once(vec![0.0; net.sizes[0] * held_inputs])
                .chain(net.sizes[1..].iter().map(|&s| vec![0.0; s * capacity]))
                .collect(),
            sparse_input: entries_of(scanned_rows),
            halves: [entries_of(half_rows), entries_of(half_rows)],
            z_high: vec![0.0; net.sizes[1] * half_rows],
            input_is_sparse: false,
            keeps_sparse_input,
        }
    }

    /// The input buffer of a batch of `rows` examples, to be filled before [`Forward::run_filled`].
    pub(crate) fn input_mut(&mut self, rows: usize) -> &mut [f32] {
        &mut self.activations[0][..rows * self.sizes[0]]
    }

    /// The batch of the examples `examples` taken from their listed nonzero inputs, to be
    /// run by [`Forward::run_filled`] as if they had been gathered into
    /// [`Forward::input_mut`] (the same bits), without the dense rows; `None` if the batch
    /// does not fit the buffers of entries (then it is to be gathered), or these buffers are
    /// not kept for a backward pass.
    pub(crate) fn listed_batch<'a>(
        &self,
        list: &'a ListedRows,
        examples: &'a [usize],
        next: Option<&'a [usize]>,
    ) -> Option<ListedBatch<'a>> {
        let entries = list.count(examples)?;
        let fits = self.keeps_sparse_input
            && examples.len() <= self.capacity
            && self.halves.iter().all(|h| entries <= h.capacity());
        fits.then_some(ListedBatch {
            list,
            examples,
            entries,
            next,
        })
    }

    /// The forward pass over `inputs` (`rows x sizes[0]`, row-major), read where they are:
    /// the first layer's product (or the scan for its nonzero inputs) reads them in place,
    /// without a copy into [`Forward::input_mut`].
    pub(crate) fn run_on(
        &mut self,
        net: &Network,
        gemm: &Gemm,
        kernels: &Kernels,
        inputs: &[f32],
        rows: usize,
    ) -> Result<()> {
        if rows > self.capacity || Some(inputs.len()) != rows.checked_mul(self.sizes[0]) {
            return Err(Error::ShapeMismatch {
                op: "network forward pass (A = inputs as given, B = one input)",
                a_rows: 1,
                a_cols: inputs.len(),
                b_rows: 1,
                b_cols: self.sizes[0],
                c_rows: rows,
                c_cols: self.sizes[0],
            });
        }
        let inputs = Some(inputs);
        self.layers(
            Fork::Pool,
            net,
            gemm,
            kernels,
            inputs,
            None,
            rows,
            |_, _| Ok(()),
        )
    }

    /// The forward pass over the `rows` inputs already in [`Forward::input_mut`], or over
    /// the listed batch `listed`: for each layer `Z = A W^T`, then `Z += b; A' =
    /// sigmoid(Z)` in one fused pass. `Z = A W^T` is one GEMM (`W^T` is the stored layout),
    /// except for the first layer of a batch that is at most [`SPARSE_MAX_DENSITY_PERCENT`]
    /// nonzero, which is computed from the nonzero inputs (see [`crate::kernels`]'s sparse
    /// products). For the trainer that product is the sum of two, one per [`Half`] of the
    /// inputs, each run on its own side of `fork`: `Z = Z_low + Z_high` whatever the fork,
    /// so the bits do not depend on the threads.
    pub(crate) fn run_filled(
        &mut self,
        fork: Fork<'_>,
        net: &Network,
        gemm: &Gemm,
        kernels: &Kernels,
        listed: Option<ListedBatch<'_>>,
        rows: usize,
    ) -> Result<()> {
        self.run_filled_then(fork, net, gemm, kernels, listed, rows, |_, _| Ok(()))
    }

    /// [`Forward::run_filled`], calling `hidden(l, a)` on the activations `a` of each hidden
    /// layer `l` (`1..layers`) as soon as they are computed, before the next layer's product
    /// reads them (the trainer's dropout).
    #[allow(clippy::too_many_arguments)] // run_filled's operands and the hook
    pub(crate) fn run_filled_then(
        &mut self,
        fork: Fork<'_>,
        net: &Network,
        gemm: &Gemm,
        kernels: &Kernels,
        listed: Option<ListedBatch<'_>>,
        rows: usize,
        hidden: impl FnMut(usize, &mut [f32]) -> Result<()>,
    ) -> Result<()> {
        self.layers(fork, net, gemm, kernels, None, listed, rows, hidden)
    }

    /// The forward pass over `inputs`, or the listed batch `listed`, or the inputs in
    /// [`Forward::input_mut`] if both are `None`, calling `hidden` as
    /// [`Forward::run_filled_then`] does.
    #[allow(clippy::too_many_arguments)] // the pass's operands, its input and the hook
    fn layers(
        &mut self,
        fork: Fork<'_>,
        net: &Network,
        gemm: &Gemm,
        kernels: &Kernels,
        inputs: Option<&[f32]>,
        listed: Option<ListedBatch<'_>>,
        rows: usize,
        mut hidden: impl FnMut(usize, &mut [f32]) -> Result<()>,
    ) -> Result<()> {
        debug_assert!(rows <= self.capacity && net.sizes == self.sizes);
        let Forward {
            sizes,
            zs,
            activations,
            sparse_input,
            halves,
            z_high,
            input_is_sparse,
            keeps_sparse_input,
            ..
        } = self;
        let (held_inputs, outputs) = activations.split_at_mut(1);
        let listed = listed.filter(|_| inputs.is_none());
        if listed.is_some_and(|b| b.examples.len() != rows) {
            return Err(Error::ShapeMismatch {
                op: "network forward pass (A = the listed batch, C = the batch run)",
                a_rows: listed.map_or(0, |b| b.examples.len()),
                a_cols: sizes[0],
                b_rows: 0,
                b_cols: 0,
                c_rows: rows,
                c_cols: sizes[0],
            });
        }
        let inputs = match inputs {
            Some(inputs) => inputs,
            // Not read when the batch is listed: the buffer does not hold it.
            None => &held_inputs[0][..rows * sizes[0]],
        };
        *input_is_sparse = *keeps_sparse_input
            && (listed.is_some() || {
                let [low, high] = &mut *halves;
                sparse_input.fill(kernels, inputs, rows)
                    && low.take_half(sparse_input, Half::Low)
                    && high.take_half(sparse_input, Half::High)
            });
        for l in 0..net.layers() {
            let (n_in, n_out) = (sizes[l], sizes[l + 1]);
            let (done, rest) = outputs.split_at_mut(l);
            let a_in = match l {
                0 => inputs,
                _ => &done[l - 1][..rows * n_in],
            };
            let a_out = &mut rest[0][..rows * n_out];
            let z = &mut zs[l][..rows * n_out];
            if l == 0 && *input_is_sparse {
                let z_high = &mut z_high[..rows * n_out];
                first_layer_in_halves(fork, kernels, halves, listed, &net.weights[0], z, z_high)?;
            } else if l == 0 && !*keeps_sparse_input {
                first_layer_in_blocks(kernels, gemm, sparse_input, inputs, &net.weights[0], z)?;
            } else {
                gemm.run(
                    1.0,
                    MatRef::from_row_major(a_in, rows, n_in)?,
                    MatRef::from_row_major(&net.weights[l], n_in, n_out)?,
                    0.0,
                    MatMut::from_row_major(z, rows, n_out)?,
                )?;
            }
            kernels.bias_activation(net.activations[l], z, a_out, &net.biases[l])?;
            if l + 1 < net.layers() {
                hidden(l + 1, a_out)?;
            }
        }
        Ok(())
    }

    /// The nonzero inputs of the last batch in each [`Half`] of the inputs, if the first
    /// layer was computed from them.
    pub(crate) fn sparse_input(&self) -> Option<&[SparseRows; 2]> {
        self.input_is_sparse.then_some(&self.halves)
    }

    /// Activations of layer `l` for the last batch of `rows` examples.
    pub(crate) fn activation(&self, l: usize, rows: usize) -> &[f32] {
        &self.activations[l][..rows * self.sizes[l]]
    }

    /// Weighted inputs of the output layer for the last batch of `rows` examples.
    pub(crate) fn output_z(&self, rows: usize) -> &[f32] {
        let last = self.zs.len() - 1;
        &self.zs[last][..rows * self.sizes[last + 1]]
    }
}

/// Sparse products of at least this many multiply-adds (entries times outputs) run their two
/// halves in parallel on the rayon pool ([`Fork::Pool`]: `Trainer::step`, and training with
/// one thread or a set that is not listed). Measured on 2 vCPUs (`cargo bench --bench train
/// -- step`), split by examples then: a mini-batch of 100 MNIST images for 784-100-10 (about
/// 1.5 million) stepped 1.3x faster split; for 784-30-10 (about 450,000) splitting made the
/// step 1.6x slower, the cost of waking a sleeping rayon worker.
const SPARSE_SPLIT_WORK: usize = 1_000_000;

/// Sparse products of at least this many multiply-adds run their two halves in parallel on a
/// [`Pair`] ([`Fork::Pair`]: the epochs of `sgd` on a listed set with two threads or more).
/// A hand-over costs about 0.5 us here (a trivial join measured 524 ns on the 2-vCPU Xeon),
/// so every MNIST step splits: [784,30,10] at mini-batch 10 (about 45,000) trained an epoch
/// in 0.052 s split at 5,000 or 20,000, 0.059 s unsplit at 100,000.
const PAIR_SPLIT_WORK: usize = 20_000;

/// How the two halves of a sparse product run: across the rayon pool when large (an idle
/// rayon worker sleeps, so a split pays only for large products), or on a [`Pair`], whose
/// helper spins.
#[derive(Clone, Copy)]
pub(crate) enum Fork<'a> {
    /// `rayon::join` on the current pool.
    Pool,
    /// [`Pair::join`].
    Pair(&'a Pair),
}

impl Fork<'_> {
    /// Runs `a` and `b`: in parallel when `work` (multiply-adds) is worth it on this fork,
    /// else one after the other here.
    fn join_if<RA: Send, RB: Send>(
        self,
        work: usize,
        a: impl FnOnce() -> RA + Send,
        b: impl FnOnce() -> RB + Send,
    ) -> (RA, RB) {
        match self {
            Fork::Pool if work >= SPARSE_SPLIT_WORK && rayon::current_num_threads() >= 2 => {
                rayon::join(a, b)
            }
            Fork::Pair(pair) if work >= PAIR_SPLIT_WORK => pair.join(a, b),
            _ => (a(), b()),
        }
    }
}

/// `z = x W^T` for the first layer of an inference pass (`x`: `rows x k`, `wt`: `k x n`),
/// [`SCAN_BLOCK`] rows at a time: each block's nonzero inputs are listed into `scratch` and
/// multiplied, or, when the block is too dense for the list, go through the GEMM. Each row's
/// result depends only on the block it is in, which the row's position fixes.
fn first_layer_in_blocks(
    kernels: &Kernels,
    gemm: &Gemm,
    scratch: &mut SparseRows,
    inputs: &[f32],
    wt: &[f32],
    z: &mut [f32],
) -> Result<()> {
    let (k, n) = (
        scratch.cols(),
        wt.len().checked_div(scratch.cols()).unwrap_or(0),
    );
    if k == 0 || n == 0 {
        z.fill(0.0); // a sum of no products
        return Ok(());
    }
    for (b, z) in z.chunks_mut(SCAN_BLOCK * n).enumerate() {
        let rows = z.len() / n;
        let block = b * SCAN_BLOCK * k;
        let x = &inputs[block..block + rows * k];
        if scratch.fill(kernels, x, rows) {
            kernels.sparse_times_dense(scratch, 0..rows, wt, n, z)?;
        } else {
            gemm.run(
                1.0,
                MatRef::from_row_major(x, rows, k)?,
                MatRef::from_row_major(wt, k, n)?,
                0.0,
                MatMut::from_row_major(z, rows, n)?,
            )?;
        }
    }
    Ok(())
}

/// The trainer's sparse first layer: `z = X_low W^T + X_high W^T`, each half of the inputs'
/// entries (and its half of `W^T`) on one side of `fork`; when the batch is `listed`, each
/// side first copies its half of the examples' entries into `halves`, and afterwards asks
/// for its half of the next batch's lists. The sides run the same code whatever thread they
/// are on, and the sum is formed here, so the bits do not depend on the fork.
fn first_layer_in_halves(
    fork: Fork<'_>,
    kernels: &Kernels,
    halves: &mut [SparseRows; 2],
    listed: Option<ListedBatch<'_>>,
    wt: &[f32],
    z: &mut [f32],
    z_high: &mut [f32],
) -> Result<()> {
    let k = halves[0].cols();
    let n = wt.len().checked_div(k).unwrap_or(0);
    let rows = z.len().checked_div(n).unwrap_or(0);
    let [low, high] = halves;
    let side = |half: Half, x: &mut SparseRows, out: &mut [f32]| -> Result<()> {
        if let Some(b) = listed
            && !x.fill_listed_half(b.list, b.examples, half)
        {
            return Err(Error::ShapeMismatch {
                op: "network forward pass (A = the listed batch, B = its buffer of entries)",
                a_rows: b.examples.len(),
                a_cols: b.entries,
                b_rows: 1,
                b_cols: x.capacity(),
                c_rows: rows,
                c_cols: n,
            });
        }
        kernels.sparse_times_dense(x, 0..rows, wt, n, out)?;
        if let Some(next) = listed.and_then(|b| b.list_next(half)) {
            next.for_each(|(index, values)| {
                mmap::prefetch(index);
                mmap::prefetch(values);
            });
        }
        Ok(())
    };
    let work = listed.map_or(low.nonzeros() + high.nonzeros(), |b| b.entries) * n;
    let (a, b) = fork.join_if(
        work,
        || side(Half::Low, low, z),
        || side(Half::High, high, z_high),
    );
    a.and(b)?;
    for (z, h) in z.iter_mut().zip(z_high.iter()) {
        *z += *h;
    }
    Ok(())
}

/// [`Kernels::sparse_update`] of all of `wt` from the entries of both [`Half`]s of the
/// inputs, each half's rows of `W^T` on one side of `fork` (each weight gets the same bits
/// either way), one `scratch` each.
#[allow(clippy::too_many_arguments)] // the update's operands and its working memory
pub(crate) fn sparse_update(
    fork: Fork<'_>,
    kernels: &Kernels,
    [low, high]: &[SparseRows; 2],
    d: &[f32],
    n: usize,
    (alpha, beta): (f32, f32),
    wt: &mut [f32],
    [scratch_lo, scratch_hi]: &mut [UpdateScratch; 2],
) -> Result<()> {
    let k = low.cols();
    let split = Half::split(k);
    if wt.len() < split * n {
        // Too short for k rows of n: the kernel's shape check reports it.
        return kernels.sparse_update(low, 0..k, d, n, alpha, beta, wt, scratch_lo);
    }
    let (wt_lo, wt_hi) = wt.split_at_mut(split * n);
    let (a, b) = fork.join_if(
        (low.nonzeros() + high.nonzeros()) * n,
        || {
            kernels.sparse_update(
                low,
                Half::Low.columns(k),
                d,
                n,
                alpha,
                beta,
                wt_lo,
                scratch_lo,
            )
        },
        || {
            kernels.sparse_update(
                high,
                Half::High.columns(k),
                d,
                n,
                alpha,
                beta,
                wt_hi,
                scratch_hi,
            )
        },
    );
    a.and(b)
}

/// A [`Gemm`] on the selected ISA that does not split work across threads (for work that is
/// already parallel at a coarser grain).
pub(crate) fn sequential_gemm(isa: crate::Isa) -> Result<Gemm> {
    Ok(Gemm::try_new()?
        .with_isa(isa)?
        .with_parallelism(Parallelism::Sequential))
}
