//! network2's training rule: mini-batch SGD with L2 regularization (`update_mini_batch`), the
//! epoch loop with monitoring and early stopping (`SGD`).

use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rayon::prelude::*;

use super::eval::Evaluation;
use super::examples::Examples;
use super::schedule::{EtaSchedule, StopReason};
use super::{Cost, Fork, Forward, ListedBatch, Network, SPARSE_MAX_DENSITY_PERCENT};
use crate::data::mmap;
use crate::error::{Error, Result};
use crate::gemm::{Gemm, Parallelism};
use crate::isa::Isa;
use crate::kernels::dropout::Dropout;
use crate::kernels::{
    Kernels, ListSegment, ListedRows, Optimizer, ParamStep, SparseRows, UpdateScratch,
};
use crate::matrix::{MatMut, MatRef};
use crate::pair::Pair;

/// Products of fewer flops run on the fused kernels' ISA (AVX2 on an AVX-512 CPU, the same
/// ISA elsewhere): the trainer's products at mini-batch 10 are a few thousand flops, and
/// with them on AVX2 the epochs measured 3-5% faster on an AVX-512 Xeon (for [784,30,10],
/// 0.056 against 0.058 s; [784,100,10], 0.135 against 0.139 s). 1 MFLOP keeps a 100-example
/// product with a 784-input layer (a dense first layer) on AVX-512.
const TRAINER_SMALL_PRODUCT_FLOPS: usize = 1_000_000;

/// Products of at least this many flops are split across the pool during training.
///
/// Lower than the GEMM's default ([`crate::gemm::PARALLEL_MIN_FLOPS`], set for isolated
/// calls): the trainer issues products back to back from a pool thread, so the other threads
/// are awake. Measured on 2 vCPUs (`cargo bench --bench train -- step`): at mini-batch 100 a
/// 2 MFLOP threshold made a step 1.4x ([784, 30, 10]) and 1.6x ([784, 100, 10]) faster than
/// 32 MFLOP, while splitting the 0.5-1.6 MFLOP products of mini-batch 10 did not pay.
const TRAINER_MIN_PARALLEL_FLOPS: usize = 2_000_000;

/// The buffers and the ISA of mini-batch training for one network shape.
///
/// [`Trainer::step`] is network2's `update_mini_batch` over a whole mini-batch at once, with
/// examples as the rows of the batch matrices (`m` examples):
///
/// ```text
/// forward, each layer l:  Z = A_l W_l^T          one GEMM (W_l read through transposed strides)
///                         Z += b_l; A_l+1 = f_l(Z)   one fused pass (sigmoid in network2)
/// output error:           D = a - y  (cross-entropy on sigmoid, log-likelihood on softmax)
///                         or (a - y) f'(z) (quadratic)
/// backward, l = L..1:     D_prev = (D W_l) * f'(Z_l-1)   one GEMM + one fused pass (l > 1),
///                         f' taken from the activations: A (1 - A) for the sigmoid
///                         b_l -= (eta / m) colsum(D)
///                         W_l = (1 - eta lambda / n) W_l - (eta / m) D^T A_l   one GEMM
/// ```
///
/// The weight update is a single GEMM with `beta = 1 - eta lambda / n` and
/// `alpha = -eta / m`: the L2 decay and the gradient step happen in the GEMM's write-back of
/// each weight tile, so each weight matrix is read and written once per step and the
/// gradient never exists as a matrix. The error of the layer below is computed from `W_l`
/// before `W_l` is updated, so every gradient is taken at the old weights, as in network2.
///
/// All buffers are allocated by [`Trainer::new`], including the GEMM packing buffers of
/// every thread of the current rayon pool; a step on that pool allocates nothing. Products are
/// split across the current rayon pool by the GEMM engine when they are large enough, by
/// rows or columns of the result only, so a step gives the same bits for any pool size.
#[derive(Debug)]
pub struct Trainer {
    gemm: Gemm,
    kernels: Kernels,
    forward: Forward,
    labels: Vec<u8>,
    /// Output errors of the current layer and of the layer below, ping-ponged.
    deltas: [Vec<f32>; 2],
    /// The bias gradient of one layer (summed over the batch).
    grad_b: Vec<f32>,
    /// How parameters follow their gradient ([`Trainer::with_optimizer`]).
    optimizer: Optimizer,
    /// The L1 regularization parameter ([`Trainer::with_l1`]).
    lambda1: f32,
    /// Steps taken with Adam (its bias corrections need the count).
    adam_steps: u64,
    /// The weight gradient of one layer (summed over the batch, stored as `W^T`), for the
    /// optimizers and regularizers that cannot fold the update into the GEMM.
    grad_w: Vec<f32>,
    /// Per layer, the optimizer's state arrays for the weights (as `W^T`) and the biases.
    states: Vec<LayerState>,
    /// Inverted dropout on the hidden layers ([`Trainer::with_dropout`]); `None` when off.
    dropout: Option<DropoutState>,
    /// Working memory of the sparse first-layer update, one per half of its inputs.
    update_scratch: [UpdateScratch; 2],
}

/// The dropout rule, the step counter of its masks, and per layer (indexed like the
/// activations, empty for the inputs and the output layer) the activations before dropout
/// and the scaled mask of the last step.
#[derive(Clone, Debug, PartialEq)]
struct DropoutState {
    rule: Dropout,
    step: u64,
    undropped: Vec<Vec<f32>>,
    masks: Vec<Vec<f32>>,
}

/// One layer's optimizer state: up to two arrays shaped like its weights and two like its
/// biases (velocity; or Adam's first and second moments). Empty for plain SGD.
#[derive(Clone, Debug, Default, PartialEq)]
struct LayerState {
    w: [Vec<f32>; 2],
    b: [Vec<f32>; 2],
}

impl Trainer {
    /// Buffers for `net`'s shape and mini-batches of up to `max_batch` examples, on the
    /// selected ISA.
    ///
    /// # Errors
    ///
    /// [`Error::BadOption`] if `max_batch` is 0; [`Error::UnknownIsa`] if `SIMDNET_ISA` is
    /// invalid.
    pub fn new(net: &Network, max_batch: usize) -> Result<Trainer> {
        Trainer::with_isa(net, max_batch, crate::isa::try_selected_isa()?)
    }

    /// As [`Trainer::new`], on a given instruction set.
    ///
    /// # Errors
    ///
    /// As [`Trainer::new`], and [`Error::IsaUnavailable`] if this CPU lacks `isa`.
    pub fn with_isa(net: &Network, max_batch: usize, isa: Isa) -> Result<Trainer> {
        if max_batch == 0 {
            return Err(Error::BadOption {
                option: "mini-batch size",
                problem: "must be at least 1".to_string(),
            });
        }
        let widest = net.sizes[1..].iter().copied().max().unwrap_or(0);
        let gemm = Gemm::try_new()?
            .with_isa(isa)?
            .with_parallelism(Parallelism::Rayon)
            .with_min_parallel_flops(TRAINER_MIN_PARALLEL_FLOPS)
            .with_small_products_on(isa.fused_kernels_isa(), TRAINER_SMALL_PRODUCT_FLOPS)?;
        // Any thread of the pool may run a piece of any product, and a thread grows its
        // packing buffers on its first large enough piece. Sizing them all now keeps that
        // first growth out of the steps, whichever thread happens to steal what.
        rayon::broadcast(|_| {
            for pair in net.sizes.windows(2) {
                let (n_in, n_out) = (pair[0], pair[1]);
                gemm.reserve_thread_buffers(max_batch, n_out, n_in); // forward
                gemm.reserve_thread_buffers(max_batch, n_in, n_out); // error of the layer below
                gemm.reserve_thread_buffers(n_in, n_out, max_batch); // weight update
            }
        });
        Ok(Trainer {
            gemm,
            kernels: Kernels::for_isa(isa.fused_kernels_isa())?,
            forward: Forward::new(net, max_batch),
            labels: vec![0; max_batch],
            deltas: [vec![0.0; widest * max_batch], vec![0.0; widest * max_batch]],
            grad_b: vec![0.0; widest],
            optimizer: Optimizer::Sgd,
            lambda1: 0.0,
            adam_steps: 0,
            grad_w: Vec::new(),
            states: vec![LayerState::default(); net.layers()],
            dropout: None,
            // The first serves all inputs when the update is not split.
            update_scratch: [
                UpdateScratch::new(net.sizes[0], net.sizes[1]),
                UpdateScratch::new(net.sizes[0] - net.sizes[0] / 2, net.sizes[1]),
            ],
        })
    }

    /// Uses `optimizer` instead of network2's plain gradient descent, with its state (the
    /// velocities, or Adam's moments) at zero.
    ///
    /// ```
    /// use simdnet::network::{Cost, Init, Network, Optimizer, Trainer};
    ///
    /// let mut net = Network::new(&[4, 3, 2], Cost::CrossEntropy, Init::Default, 1)?;
    /// let mut trainer = Trainer::new(&net, 2)?
    ///     .with_optimizer(Optimizer::Momentum { mu: 0.9, nesterov: true })?
    ///     .with_l1(0.5)?;
    /// trainer.step(&mut net, &[0.1, 0.2, 0.3, 0.4, 0.0, 0.0, 1.0, 1.0], &[0, 1], 0.1, 5.0, 100)?;
    /// # Ok::<(), simdnet::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::BadOption`] for constants [`Optimizer::validate`] refuses.
    pub fn with_optimizer(mut self, optimizer: Optimizer) -> Result<Trainer> {
        optimizer.validate()?;
        let arrays = optimizer.state_arrays();
        self.states = self.forward.sizes[..]
            .windows(2)
            .map(|pair| {
                let (n_in, n_out) = (pair[0], pair[1]);
                let make = |len: usize, i: usize| {
                    if i < arrays {
                        vec![0.0; len]
                    } else {
                        Vec::new()
                    }
                };
                LayerState {
                    w: [make(n_in * n_out, 0), make(n_in * n_out, 1)],
                    b: [make(n_out, 0), make(n_out, 1)],
                }
            })
            .collect();
        self.optimizer = optimizer;
        self.adam_steps = 0;
        self.size_grad_buffer();
        Ok(self)
    }

    /// Adds L1 regularization: each step also moves every weight by
    /// `-(eta lambda1 / n) sgn(w)` (through the optimizer, like the L2 term), with
    /// `sgn(0) = 0`. Biases are not regularized, as in network2.
    ///
    /// # Errors
    ///
    /// [`Error::BadOption`] unless `lambda1` is a number `>= 0`.
    pub fn with_l1(mut self, lambda1: f32) -> Result<Trainer> {
        if !(lambda1 >= 0.0 && lambda1.is_finite()) {
            return Err(Error::BadOption {
                option: "lambda1",
                problem: format!("{lambda1} is not a number >= 0"),
            });
        }
        self.lambda1 = lambda1;
        self.size_grad_buffer();
        Ok(self)
    }

    /// Adds inverted dropout of rate `p` on every hidden layer, during training only: each
    /// hidden activation is kept with probability `1 - p` and scaled by `1 / (1 - p)`, else
    /// set to 0, after the layer's activation and before the next layer's product; the
    /// same mask multiplies that layer's backpropagated error, whose `f'` is taken from the
    /// activations before dropout. The inputs and the output layer are never dropped, and
    /// evaluation never drops.
    ///
    /// The mask of a unit is [`Dropout::mask`]`(step, layer, row, unit)` of
    /// `Dropout::new(p, seed)`, `step` counting this trainer's steps from 0 (reset here) and
    /// `row` the example's row in the mini-batch: a pure function of those, so the same bits
    /// for any thread count and ISA. `p = 0` turns dropout off (network2; no extra pass).
    ///
    /// # Errors
    ///
    /// [`Error::BadOption`] (option `dropout`) unless `p` is a number in `[0, 1)`.
    pub fn with_dropout(mut self, p: f32, seed: u64) -> Result<Trainer> {
        let rule = Dropout::new(p, seed)?;
        if p == 0.0 {
            self.dropout = None;
            return Ok(self);
        }
        let sizes = &self.forward.sizes;
        let capacity = self.forward.capacity;
        let hidden = |l: usize| {
            if l > 0 && l + 1 < sizes.len() {
                vec![0.0; capacity * sizes[l]]
            } else {
                Vec::new()
            }
        };
        self.dropout = Some(DropoutState {
            rule,
            step: 0,
            undropped: (0..sizes.len()).map(hidden).collect(),
            masks: (0..sizes.len()).map(hidden).collect(),
        });
        Ok(self)
    }

    /// The dropout rule, if dropout is on ([`Trainer::with_dropout`]).
    pub fn dropout(&self) -> Option<Dropout> {
        self.dropout.as_ref().map(|d| d.rule)
    }

    /// The step number the next step's dropout masks use (0 until the first step after
    /// [`Trainer::with_dropout`], then one more per successful step; 0 when dropout is off).
    pub fn dropout_step(&self) -> u64 {
        self.dropout.as_ref().map_or(0, |d| d.step)
    }

    /// The optimizer.
    pub fn optimizer(&self) -> Optimizer {
        self.optimizer
    }

    /// The optimizer's state as a list of arrays, for checkpoints: per layer, its weight
    /// arrays (stored as `W^T`) then its bias arrays, [`Optimizer::state_arrays`] of each.
    pub(crate) fn optimizer_arrays(&self) -> Vec<&[f32]> {
        let k = self.optimizer.state_arrays();
        let mut out = Vec::with_capacity(self.states.len() * 2 * k);
        for s in &self.states {
            out.extend(s.w[..k].iter().map(Vec::as_slice));
            out.extend(s.b[..k].iter().map(Vec::as_slice));
        }
        out
    }

    /// Restores what [`Trainer::optimizer_arrays`], [`Trainer::adam_steps`] and
    /// [`Trainer::dropout_step`] returned (the optimizer, L1 and dropout must already be set
    /// as they were). Returns what does not fit, leaving the trainer unchanged.
    pub(crate) fn restore_state(
        &mut self,
        arrays: &[Vec<f32>],
        adam_steps: u64,
        dropout_step: u64,
    ) -> std::result::Result<(), String> {
        let k = self.optimizer.state_arrays();
        let expected = self.states.len() * 2 * k;
        if arrays.len() != expected {
            return Err(format!(
                "{} optimizer state arrays, where {:?} needs {expected}",
                arrays.len(),
                self.optimizer
            ));
        }
        let mut next = arrays.iter();
        for (l, s) in self.states.iter().enumerate() {
            for dst in s.w[..k].iter().chain(&s.b[..k]) {
                let src = next.next().expect("counted above");
                if src.len() != dst.len() {
                    return Err(format!(
                        "an optimizer state array of layer {} holds {} values, not {}",
                        l + 1,
                        src.len(),
                        dst.len()
                    ));
                }
            }
        }
        let mut next = arrays.iter();
        for s in &mut self.states {
            let LayerState { w, b } = s;
            for dst in w[..k].iter_mut().chain(b[..k].iter_mut()) {
                dst.copy_from_slice(next.next().expect("counted above"));
            }
        }
        self.adam_steps = adam_steps;
        if let Some(d) = &mut self.dropout {
            d.step = dropout_step;
        }
        Ok(())
    }

    /// Successful steps taken with Adam (0 for the other optimizers).
    pub(crate) fn adam_steps(&self) -> u64 {
        self.adam_steps
    }

    /// Whether the weight update needs the gradient as a matrix (anything but network2's
    /// rule, which the GEMM applies in its write-back).
    fn needs_gradient(&self) -> bool {
        self.optimizer != Optimizer::Sgd || self.lambda1 != 0.0
    }

    /// Allocates (or frees) the weight-gradient buffer for the current rule.
    fn size_grad_buffer(&mut self) {
        let largest = self.forward.sizes[..]
            .windows(2)
            .map(|p| p[0] * p[1])
            .max()
            .unwrap_or(0);
        self.grad_w = if self.needs_gradient() {
            vec![0.0; largest]
        } else {
            Vec::new()
        };
    }

    /// The instruction set the trainer was made for: its GEMM's. The fused kernels run
    /// [`Isa::fused_kernels_isa`] of it ([`Trainer::kernels_isa`]).
    pub fn isa(&self) -> Isa {
        self.gemm.isa()
    }

    /// The instruction set of the trainer's fused element-wise and sparse kernels.
    pub fn kernels_isa(&self) -> Isa {
        self.kernels.isa()
    }

    /// The largest mini-batch the buffers hold.
    pub fn max_batch(&self) -> usize {
        self.forward.capacity
    }

    /// network2's `update_mini_batch(mini_batch, eta, lmbda, n)`: one SGD step over the
    /// mini-batch `inputs` (row-major, `labels.len()` examples of `net.inputs()` values),
    /// with L2 decay `1 - eta * lambda / n` (`n` the training-set size) on the weights.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the network is not the shape the trainer was made for,
    /// the batch is empty or larger than [`Trainer::max_batch`], or `inputs` has the wrong
    /// length; [`Error::InvalidView`] for a label that is not an output neuron;
    /// [`Error::BadOption`] for hyperparameters [`SgdConfig::validate`] would reject, or
    /// `n == 0`. On error the network is unchanged.
    pub fn step(
        &mut self,
        net: &mut Network,
        inputs: &[f32],
        labels: &[u8],
        eta: f32,
        lambda: f32,
        n: usize,
    ) -> Result<()> {
        let rows = labels.len();
        self.check_batch(net, rows)?;
        if inputs.len() != rows * net.inputs() {
            return Err(Error::ShapeMismatch {
                op: "Trainer::step (A = inputs as given, B = one input)",
                a_rows: 1,
                a_cols: inputs.len(),
                b_rows: 1,
                b_cols: net.inputs(),
                c_rows: rows,
                c_cols: net.inputs(),
            });
        }
        check_rates(eta, lambda)?;
        if n == 0 {
            return Err(Error::BadOption {
                option: "training-set size",
                problem: "must be at least 1".to_string(),
            });
        }
        self.forward.input_mut(rows).copy_from_slice(inputs);
        self.labels[..rows].copy_from_slice(labels);
        self.step_filled(Fork::Pool, net, None, rows, eta, lambda, n)
    }

    /// Checks that `net` is the shape of the buffers and `rows` fits them.
    fn check_batch(&self, net: &Network, rows: usize) -> Result<()> {
        if net.sizes != self.forward.sizes || rows == 0 || rows > self.forward.capacity {
            return Err(Error::ShapeMismatch {
                op: "Trainer::step (A = the batch, B = the network's first layer, C = the trainer's buffers)",
                a_rows: rows,
                a_cols: net.inputs(),
                b_rows: net.inputs(),
                b_cols: net.sizes[1],
                c_rows: self.forward.capacity,
                c_cols: self.forward.sizes[0],
            });
        }
        Ok(())
    }

    /// The step over the `rows` examples already in the forward pass's input buffer and in
    /// `self.labels`. Every check that can fail runs before the first weight is written
    /// (labels are checked by the output-delta kernel, which runs before any update).
    #[allow(clippy::too_many_arguments)] // the step's operands and where its batch is
    fn step_filled(
        &mut self,
        fork: Fork<'_>,
        net: &mut Network,
        listed: Option<ListedBatch<'_>>,
        rows: usize,
        eta: f32,
        lambda: f32,
        n: usize,
    ) -> Result<()> {
        let general = self.needs_gradient();
        // Adam's step number; the count itself moves only once the step has succeeded.
        let adam_step = self.adam_steps + 1;
        let Trainer {
            gemm,
            kernels,
            forward,
            labels,
            deltas: [current, below],
            grad_b,
            optimizer,
            lambda1,
            adam_steps,
            grad_w,
            states,
            dropout,
            update_scratch,
        } = self;
        let param_step = |l2: f32, l1: f32| ParamStep {
            optimizer: *optimizer,
            eta,
            grad_scale: (1.0 / rows as f64) as f32,
            l2,
            l1,
            t: adam_step,
        };
        let weight_step = param_step(
            (f64::from(lambda) / n as f64) as f32,
            (f64::from(*lambda1) / n as f64) as f32,
        );
        let bias_step = param_step(0.0, 0.0);
        match dropout {
            None => forward.run_filled(fork, net, gemm, kernels, listed, rows)?,
            Some(DropoutState {
                rule,
                step,
                undropped,
                masks,
            }) => {
                // Each hidden layer's activations are dropped before the next product.
                let sizes = &net.sizes;
                forward.run_filled_then(fork, net, gemm, kernels, listed, rows, |l, a| {
                    let len = a.len();
                    kernels.dropout(
                        rule,
                        *step,
                        l,
                        sizes[l],
                        a,
                        &mut undropped[l][..len],
                        &mut masks[l][..len],
                    )
                })?;
            }
        }
        let layers = net.layers();
        let labels = &labels[..rows];
        // network2 computes both factors in float64; each is rounded once to f32 here.
        let step = (f64::from(eta) / rows as f64) as f32;
        let decay = (1.0 - f64::from(eta) * (f64::from(lambda) / n as f64)) as f32;

        let (mut current, mut below) = (current, below);
        let out = net.sizes[layers];
        let a_out = forward.activation(layers, rows);
        let delta_out = &mut current[..rows * out];
        match net.cost {
            // a - y: cross-entropy on sigmoid outputs and log-likelihood on softmax outputs
            // both cancel the activation's derivative.
            Cost::CrossEntropy | Cost::LogLikelihood => {
                kernels.cross_entropy_delta(a_out, labels, delta_out)?
            }
            Cost::Quadratic => {
                kernels.quadratic_delta_with(net.output_activation(), a_out, labels, delta_out)?
            }
        }
        for l in (0..layers).rev() {
            let (n_in, n_out) = (net.sizes[l], net.sizes[l + 1]);
            let delta = &current[..rows * n_out];
            let a_in = forward.activation(l, rows);
            if l > 0 {
                // The error of layer l (below), from the weights before their update:
                // D W, with W the transpose of the stored W^T.
                let delta_below = &mut below[..rows * n_in];
                gemm.run(
                    1.0,
                    MatRef::from_row_major(delta, rows, n_out)?,
                    MatRef::from_row_major(&net.weights[l], n_in, n_out)?.t(),
                    0.0,
                    MatMut::from_row_major(delta_below, rows, n_in)?,
                )?;
                match dropout {
                    // f' from the activations before dropout, times the same mask.
                    Some(d) => kernels.dropout_prime_mul(
                        net.activations[l - 1],
                        delta_below,
                        &d.undropped[l][..rows * n_in],
                        &d.masks[l][..rows * n_in],
                    )?,
                    None => {
                        kernels.activation_prime_mul(net.activations[l - 1], delta_below, a_in)?
                    }
                }
            }
            let grad_b = &mut grad_b[..n_out];
            kernels.column_sums(delta, rows, n_out, grad_b)?;
            if general {
                // The gradient as a matrix, then the optimizer's step on weights and biases.
                let grad_w = &mut grad_w[..n_in * n_out];
                match forward.sparse_input() {
                    Some(sparse) if l == 0 => {
                        grad_w.fill(0.0);
                        super::sparse_update(
                            fork,
                            kernels,
                            sparse,
                            delta,
                            n_out,
                            (1.0, 1.0),
                            grad_w,
                            update_scratch,
                        )?;
                    }
                    _ => gemm.run(
                        1.0,
                        MatRef::from_row_major(a_in, rows, n_in)?.t(),
                        MatRef::from_row_major(delta, rows, n_out)?,
                        0.0,
                        MatMut::from_row_major(grad_w, n_in, n_out)?,
                    )?,
                }
                let LayerState {
                    w: [w1, w2],
                    b: [b1, b2],
                } = &mut states[l];
                kernels.param_update(&weight_step, &mut net.weights[l], grad_w, w1, w2)?;
                kernels.param_update(&bias_step, &mut net.biases[l], grad_b, b1, b2)?;
                std::mem::swap(&mut current, &mut below);
                continue;
            }
            // W^T = decay * W^T - step * A^T D: L2 decay and gradient step in one pass, from
            // the nonzero inputs when the forward pass found the batch sparse.
            match forward.sparse_input() {
                Some(sparse) if l == 0 => {
                    super::sparse_update(
                        fork,
                        kernels,
                        sparse,
                        delta,
                        n_out,
                        (-step, decay),
                        &mut net.weights[0],
                        update_scratch,
                    )?;
                }
                _ => gemm.run(
                    -step,
                    MatRef::from_row_major(a_in, rows, n_in)?.t(),
                    MatRef::from_row_major(delta, rows, n_out)?,
                    decay,
                    MatMut::from_row_major(&mut net.weights[l], n_in, n_out)?,
                )?,
            }
            kernels.sgd_update(&mut net.biases[l], grad_b, step)?;
            std::mem::swap(&mut current, &mut below);
        }
        if let Some(d) = dropout {
            d.step += 1;
        }
        if matches!(optimizer, Optimizer::Adam { .. }) {
            *adam_steps = adam_step;
        }
        Ok(())
    }
}

/// Which of network2's four per-epoch series to compute (its `monitor_*` flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Monitor {
    /// Cost on the evaluation data.
    pub evaluation_cost: bool,
    /// Accuracy on the evaluation data.
    pub evaluation_accuracy: bool,
    /// Cost on the training data.
    pub training_cost: bool,
    /// Accuracy on the training data.
    pub training_accuracy: bool,
}

impl Monitor {
    /// All four series.
    pub fn all() -> Monitor {
        Monitor {
            evaluation_cost: true,
            evaluation_accuracy: true,
            training_cost: true,
            training_accuracy: true,
        }
    }
}

/// The hyperparameters of [`sgd`] (network2's `SGD` arguments).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Examples per mini-batch; the last mini-batch of an epoch holds the remainder.
    pub mini_batch_size: usize,
    /// The learning rate, > 0.
    pub eta: f32,
    /// The L2 regularization parameter, >= 0.
    pub lambda: f32,
    /// Shuffle the training data before each epoch (network2 always does); `false` visits it
    /// in file order every epoch.
    pub shuffle: bool,
    /// Seeds the shuffle.
    pub seed: u64,
    /// Stop after this many epochs without a new best evaluation accuracy (network2's
    /// `early_stopping_n`); `None` trains every epoch.
    pub early_stopping: Option<usize>,
    /// The book's chapter-3 learning-rate schedule: after this many epochs in a row without
    /// a new best evaluation accuracy, halve eta (and count again from 0; a new best also
    /// restarts the count). Training stops when eta would fall to `eta / 128` (1/128 of
    /// `eta`, the initial value): the last epochs run at `eta / 64`, and the schedule ends
    /// training instead of a seventh halving ([`StopReason::EtaScheduleExhausted`]). `None`
    /// (the default, network2) keeps eta constant. Composes with `early_stopping`, which
    /// counts from the last new best only: whichever fires first stops training (early
    /// stopping, if both fire in the same epoch).
    pub halve_eta_after: Option<usize>,
    /// Which series to compute after each epoch.
    pub monitor: Monitor,
    /// How parameters follow the gradient: network2's plain SGD by default, or momentum,
    /// Nesterov momentum, Adam ([`Trainer::with_optimizer`]).
    pub optimizer: Optimizer,
    /// The L1 regularization parameter, >= 0 (0: none, as network2); usable together with
    /// `lambda` ([`Trainer::with_l1`]).
    pub lambda1: f32,
    /// The inverted-dropout rate of the hidden layers, in `[0, 1)` (0: none, as network2),
    /// with masks seeded by `seed` ([`Trainer::with_dropout`]).
    pub dropout: f32,
}

impl Default for SgdConfig {
    /// The book's chapter-3 run: 30 epochs, mini-batches of 10, eta 0.5, lambda 5.0,
    /// evaluation accuracy monitored.
    fn default() -> Self {
        SgdConfig {
            epochs: 30,
            mini_batch_size: 10,
            eta: 0.5,
            lambda: 5.0,
            shuffle: true,
            seed: 0,
            early_stopping: None,
            halve_eta_after: None,
            monitor: Monitor {
                evaluation_accuracy: true,
                ..Monitor::default()
            },
            optimizer: Optimizer::Sgd,
            lambda1: 0.0,
            dropout: 0.0,
        }
    }
}

impl SgdConfig {
    /// Checks the hyperparameters.
    ///
    /// # Errors
    ///
    /// [`Error::BadOption`] naming the first bad one: eta not > 0 or not finite, lambda
    /// not >= 0 or not finite, a mini-batch size of 0, early stopping or eta halving after
    /// 0 epochs,
    /// lambda1 not >= 0 or not finite, a dropout rate outside `[0, 1)`, optimizer constants
    /// [`Optimizer::validate`] refuses.
    pub fn validate(&self) -> Result<()> {
        check_rates(self.eta, self.lambda)?;
        self.optimizer.validate()?;
        if !(self.lambda1 >= 0.0 && self.lambda1.is_finite()) {
            return Err(Error::BadOption {
                option: "lambda1",
                problem: format!(
                    "the L1 parameter must be a finite number >= 0, got {}",
                    self.lambda1
                ),
            });
        }
        Dropout::new(self.dropout, self.seed)?;
        if self.mini_batch_size == 0 {
            return Err(Error::BadOption {
                option: "mini-batch size",
                problem: "must be at least 1".to_string(),
            });
        }
        if self.early_stopping == Some(0) {
            return Err(Error::BadOption {
                option: "early stopping",
                problem: "must be at least 1 epoch without improvement".to_string(),
            });
        }
        if self.halve_eta_after == Some(0) {
            return Err(Error::BadOption {
                option: "eta halving",
                problem: "must be at least 1 epoch without improvement".to_string(),
            });
        }
        Ok(())
    }
}

/// eta > 0 and lambda >= 0, both finite.
fn check_rates(eta: f32, lambda: f32) -> Result<()> {
    if !(eta > 0.0 && eta.is_finite()) {
        return Err(Error::BadOption {
            option: "eta",
            problem: format!("the learning rate must be a finite number > 0, got {eta}"),
        });
    }
    if !(lambda >= 0.0 && lambda.is_finite()) {
        return Err(Error::BadOption {
            option: "lambda",
            problem: format!(
                "the regularization parameter must be a finite number >= 0, got {lambda}"
            ),
        });
    }
    Ok(())
}

/// An accuracy: `correct` out of `total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accuracy {
    /// Examples classified correctly.
    pub correct: usize,
    /// Examples.
    pub total: usize,
}

impl Accuracy {
    /// `correct / total` in `[0, 1]` (0 for no examples).
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

impl From<Evaluation> for Accuracy {
    fn from(e: Evaluation) -> Accuracy {
        Accuracy {
            correct: e.correct,
            total: e.total,
        }
    }
}

/// What one epoch of [`sgd`] did and measured. Series that were not monitored are `None`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport {
    /// The epoch, counted from 1.
    pub epoch: usize,
    /// The learning rate used.
    pub eta: f32,
    /// Seconds spent training (gathering mini-batches and updating), evaluation excluded.
    pub seconds: f64,
    /// network2's `total_cost` on the training data.
    pub training_cost: Option<f64>,
    /// Accuracy on the training data.
    pub training_accuracy: Option<Accuracy>,
    /// network2's `total_cost` on the evaluation data.
    pub evaluation_cost: Option<f64>,
    /// Accuracy on the evaluation data.
    pub evaluation_accuracy: Option<Accuracy>,
}

/// What [`sgd`] returns: the per-epoch series, and how training ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainingSummary {
    /// One report per epoch run.
    pub epochs: Vec<EpochReport>,
    /// Whether early stopping ended training before the last epoch.
    pub stopped_early: bool,
    /// Why training ended: all epochs, early stopping, or the eta schedule.
    pub stop: StopReason,
}

impl TrainingSummary {
    /// The epoch with the highest evaluation accuracy (the first on ties), if it was measured.
    pub fn best_evaluation(&self) -> Option<(usize, Accuracy)> {
        let mut best: Option<(usize, Accuracy)> = None;
        for r in &self.epochs {
            if let Some(acc) = r.evaluation_accuracy
                && best.is_none_or(|(_, b)| acc.correct > b.correct)
            {
                best = Some((r.epoch, acc));
            }
        }
        best
    }
}

/// Receives [`sgd`]'s progress and may ask for checkpoints or stop training; the library
/// itself never prints. Every method has a default that does nothing, and `()` is an
/// observer that ignores everything.
pub trait Observer {
    /// `done` of `total` training examples of epoch `epoch` have been used. Called about a
    /// hundred times per epoch, and once at its end.
    fn progress(&mut self, epoch: usize, done: usize, total: usize) {
        let _ = (epoch, done, total);
    }

    /// Epoch `report.epoch` is over and evaluated.
    fn epoch(&mut self, report: &EpochReport) {
        let _ = report;
    }

    /// Asked after every mini-batch: `true` stops training there (a Ctrl-C). [`sgd`] then
    /// offers a checkpoint of that point (if [`Observer::wants_checkpoints`]) and returns
    /// with [`StopReason::Interrupted`]. Keep it cheap: an atomic load.
    fn interrupted(&mut self) -> bool {
        false
    }

    /// Whether [`Observer::checkpoint`] should be called (building a checkpoint copies the
    /// optimizer's state, so it is only done on request).
    fn wants_checkpoints(&self) -> bool {
        false
    }

    /// The whole state of training at the end of an epoch (after its evaluation and the
    /// early-stopping and schedule rules), or at an interruption: with `net` and the
    /// configuration, everything [`sgd_from`] needs to continue exactly
    /// ([`super::checkpoint::save`] writes it to a file). An error stops training and is
    /// returned by [`sgd`].
    ///
    /// # Errors
    ///
    /// Whatever the observer could not do (a checkpoint that could not be written).
    fn checkpoint(
        &mut self,
        net: &Network,
        config: &SgdConfig,
        state: &TrainingState,
    ) -> Result<()> {
        let _ = (net, config, state);
        Ok(())
    }
}

impl Observer for () {}

/// Where [`sgd`] is in a run, with everything beyond the network and the [`SgdConfig`] that
/// continuing it needs: the position (epochs finished, mini-batches of the next epoch
/// done), the optimizer's state, the counters of early stopping, the eta schedule and
/// dropout, and the per-epoch reports so far. The shuffling generator's state is not stored:
/// it is a pure function of the seed and the number of epochs shuffled, and is replayed.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingState {
    pub(crate) epochs_done: usize,
    pub(crate) batches_done: usize,
    /// Training seconds already spent in the unfinished epoch (0 at an epoch's end).
    pub(crate) partial_seconds: f64,
    pub(crate) training_examples: usize,
    pub(crate) best_correct: usize,
    pub(crate) epochs_without_improvement: usize,
    pub(crate) eta_halvings: u32,
    pub(crate) eta_stale: usize,
    pub(crate) adam_steps: u64,
    pub(crate) dropout_step: u64,
    /// [`Trainer::optimizer_arrays`].
    pub(crate) optimizer_arrays: Vec<Vec<f32>>,
    pub(crate) summary: TrainingSummary,
    /// Set when training ended by itself (all epochs, or a rule fired): nothing is left to
    /// run. An interruption leaves it `false`.
    pub(crate) finished: bool,
}

impl TrainingState {
    /// Epochs finished.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// Mini-batches of epoch `epochs_done() + 1` already trained (0 unless interrupted).
    pub fn batches_done(&self) -> usize {
        self.batches_done
    }

    /// The training-set size the run uses (`n` of the L2 decay).
    pub fn training_examples(&self) -> usize {
        self.training_examples
    }

    /// The reports of the finished epochs, and how training ended so far.
    pub fn summary(&self) -> &TrainingSummary {
        &self.summary
    }

    /// Whether the run is over (every epoch ran, or early stopping or the eta schedule ended
    /// it): resuming it trains nothing more.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Checks that the state can continue `config` on `net` with `training_examples`
    /// examples; `Err` says what does not fit.
    pub(crate) fn check(
        &self,
        net: &Network,
        config: &SgdConfig,
        training_examples: usize,
    ) -> std::result::Result<(), String> {
        if self.training_examples != training_examples {
            return Err(format!(
                "it was made with {} training examples, and the training data now holds {}",
                self.training_examples, training_examples
            ));
        }
        if self.epochs_done > config.epochs {
            return Err(format!(
                "it has {} epochs done of a run of {}",
                self.epochs_done, config.epochs
            ));
        }
        let mb = config.mini_batch_size.min(training_examples.max(1));
        let batches = training_examples.div_ceil(mb);
        if self.batches_done >= batches.max(1) || (self.batches_done > 0 && self.finished) {
            return Err(format!(
                "it is {} mini-batches into an epoch of {batches}",
                self.batches_done
            ));
        }
        if self.summary.epochs.len() != self.epochs_done
            || self
                .summary
                .epochs
                .iter()
                .enumerate()
                .any(|(i, r)| r.epoch != i + 1)
        {
            return Err(format!(
                "its reports do not number epochs 1 to {}",
                self.epochs_done
            ));
        }
        if self.eta_halvings >= super::schedule::HALVINGS_TO_STOP {
            return Err(format!(
                "eta was halved {} times, more than the schedule allows",
                self.eta_halvings
            ));
        }
        if !(self.partial_seconds >= 0.0 && self.partial_seconds.is_finite()) {
            return Err(format!(
                "{} seconds spent in an epoch is not a time",
                self.partial_seconds
            ));
        }
        let k = config.optimizer.state_arrays();
        let expected: Vec<usize> = net
            .sizes
            .windows(2)
            .flat_map(|p| std::iter::repeat_n(p[0] * p[1], k).chain(std::iter::repeat_n(p[1], k)))
            .collect();
        let got: Vec<usize> = self.optimizer_arrays.iter().map(Vec::len).collect();
        if got != expected {
            return Err(format!(
                "its optimizer state has arrays of {got:?} values, where {:?} on this network \
                 needs {expected:?}",
                config.optimizer
            ));
        }
        Ok(())
    }
}

/// network2's `SGD`: trains `net` for `config.epochs` epochs of mini-batch SGD on `training`,
/// evaluating after each epoch on `evaluation` (if given) and `training` as
/// `config.monitor` asks.
///
/// Each epoch shuffles the training examples (a ChaCha8 stream seeded by `config.seed`;
/// the same seed gives the same order on every machine) unless `config.shuffle` is false,
/// splits them into consecutive mini-batches of `config.mini_batch_size` (the last one
/// smaller if the size does not divide), and runs [`Trainer::step`] on each with `n =
/// training.len()`. The result is bitwise the same for any rayon pool size.
///
/// # Errors
///
/// Bad hyperparameters ([`SgdConfig::validate`]), empty training data, early stopping or
/// eta halving without evaluation data, examples that do not fit the network (input size, labels), an
/// invalid `SIMDNET_ISA`, or [`Error::Diverged`] when a weight or bias stops being finite
/// (the network is then left as it was at the end of that epoch, for inspection), or the
/// error of [`Observer::checkpoint`].
pub fn sgd(
    net: &mut Network,
    training: &dyn Examples,
    evaluation: Option<&dyn Examples>,
    config: &SgdConfig,
    observer: &mut (dyn Observer + Send),
) -> Result<TrainingSummary> {
    sgd_from(net, training, evaluation, config, observer, None)
}

/// [`sgd`], continuing from `state` when given: the run picks up where the checkpoint that
/// holds `state`, `net` and `config` was taken, and ends with the network bitwise identical
/// to an uninterrupted run's (on the same ISA; any pool size). The returned summary holds
/// every epoch of the run, the restored ones included.
///
/// # Errors
///
/// As [`sgd`], and [`Error::BadOption`] (option `checkpoint`) when `state` does not fit
/// `net`, `config` or the training data.
pub fn sgd_from(
    net: &mut Network,
    training: &dyn Examples,
    evaluation: Option<&dyn Examples>,
    config: &SgdConfig,
    observer: &mut (dyn Observer + Send),
    state: Option<&TrainingState>,
) -> Result<TrainingSummary> {
    if rayon::current_thread_index().is_some() {
        sgd_on_pool(net, training, evaluation, config, observer, state)
    } else {
        // Called from outside any pool: run on rayon's global pool, so that split products
        // start on a pool thread (a split issued from outside has to inject its work and
        // wake a worker at every product, which costs more than it saves).
        let mut result = None;
        rayon::scope(|_| {
            result = Some(sgd_on_pool(
                net, training, evaluation, config, observer, state,
            ));
        });
        result.expect("rayon::scope runs its closure before returning")
    }
}

/// The counters of one run that live across epochs.
struct RunCounters {
    best_correct: usize,
    epochs_without_improvement: usize,
    schedule: EtaSchedule,
}

/// The state to hand to [`Observer::checkpoint`].
fn snapshot(
    trainer: &Trainer,
    counters: &RunCounters,
    summary: &TrainingSummary,
    position: (usize, usize, f64),
    n: usize,
    finished: bool,
) -> TrainingState {
    let (eta_halvings, eta_stale) = counters.schedule.counters();
    TrainingState {
        epochs_done: position.0,
        batches_done: position.1,
        partial_seconds: position.2,
        training_examples: n,
        best_correct: counters.best_correct,
        epochs_without_improvement: counters.epochs_without_improvement,
        eta_halvings,
        eta_stale,
        adam_steps: trainer.adam_steps(),
        dropout_step: trainer.dropout_step(),
        optimizer_arrays: trainer
            .optimizer_arrays()
            .into_iter()
            .map(<[f32]>::to_vec)
            .collect(),
        summary: summary.clone(),
        finished,
    }
}

/// The nonzero inputs and the labels of every training example, listed once per run: the
/// trainer then takes each mini-batch from the lists ([`Forward::fill_listed`]), with the
/// same bits as gathering and scanning it.
struct ListedExamples {
    rows: ListedRows,
    labels: Vec<u8>,
}

/// Examples listed per scan: 64 MNIST images are 200 KB of `f32` rows, which stay in L2
/// between the gather and the scan.
const LIST_CHUNK: usize = 64;

/// Lists are not made beyond this many entries (1 GiB of indices and values, about 900,000
/// MNIST images); larger sets are gathered batch by batch.
const MAX_LISTED_ENTRIES: usize = 1 << 27;

impl ListedExamples {
    /// The lists of `training`, made in parallel segments on the current pool, or `None`
    /// when a chunk of [`LIST_CHUNK`] examples is too dense for the sparse first layer (then
    /// its batches would mostly be too, and go through the GEMM) or the lists could pass
    /// [`MAX_LISTED_ENTRIES`].
    ///
    /// # Errors
    ///
    /// As [`Examples::gather_range`].
    fn list(training: &dyn Examples, kernels: &Kernels) -> Result<Option<ListedExamples>> {
        let (n, cols) = (training.len(), training.input_size());
        let max_entries = n.saturating_mul(cols) / 100 * SPARSE_MAX_DENSITY_PERCENT;
        if n == 0 || cols == 0 || max_entries > MAX_LISTED_ENTRIES {
            return Ok(None);
        }
        // Two segments per thread, whole chunks each, so that a thread whose segment went
        // fast takes another.
        let segments = (2 * rayon::current_num_threads()).min(n.div_ceil(LIST_CHUNK));
        let per_segment = n.div_ceil(segments).next_multiple_of(LIST_CHUNK);
        let mut labels = vec![0; n];
        let listed: Vec<Result<Option<ListSegment>>> = labels
            .par_chunks_mut(per_segment)
            .enumerate()
            .map(|(s, labels)| {
                let first = s * per_segment;
                let examples = labels.len();
                let chunk = LIST_CHUNK.min(examples);
                let capacity = chunk * cols * SPARSE_MAX_DENSITY_PERCENT / 100;
                let mut dense = vec![0.0; chunk * cols];
                let mut scanned = SparseRows::new(chunk, cols, capacity);
                // Each chunk holds at most `capacity`, so this is room for any segment that
                // lists (n * cols is bounded by the check on MAX_LISTED_ENTRIES above).
                let room = examples.div_ceil(chunk) * capacity;
                let mut segment = ListSegment::with_capacity(cols, room);
                for (c, labels) in labels.chunks_mut(chunk).enumerate() {
                    let start = first + c * chunk;
                    let rows = labels.len();
                    let dense = &mut dense[..rows * cols];
                    training.gather_range(start..start + rows, dense, labels)?;
                    if !scanned.fill(kernels, dense, rows) || !segment.push(&scanned) {
                        return Ok(None);
                    }
                }
                Ok(Some(segment))
            })
            .collect();
        let mut segments = Vec::with_capacity(listed.len());
        for segment in listed {
            match segment? {
                Some(segment) => segments.push(segment),
                None => return Ok(None),
            }
        }
        Ok(ListedRows::new(cols, per_segment, segments).map(|rows| {
            debug_assert_eq!(rows.len(), n);
            ListedExamples { rows, labels }
        }))
    }
}

/// [`sgd_from`], on a pool thread.
fn sgd_on_pool(
    net: &mut Network,
    training: &dyn Examples,
    evaluation: Option<&dyn Examples>,
    config: &SgdConfig,
    observer: &mut (dyn Observer + Send),
    state: Option<&TrainingState>,
) -> Result<TrainingSummary> {
    config.validate()?;
    if training.is_empty() {
        return Err(Error::BadOption {
            option: "training data",
            problem: format!("{} holds no examples", training.source()),
        });
    }
    training.check_input_size(net.inputs())?;
    training.check_labels(net.outputs())?;
    if let Some(eval) = evaluation {
        eval.check_input_size(net.inputs())?;
        eval.check_labels(net.outputs())?;
    }
    if config.early_stopping.is_some() && evaluation.is_none_or(|e| e.is_empty()) {
        return Err(Error::BadOption {
            option: "early stopping",
            problem: "it watches the evaluation accuracy, so it needs evaluation data".to_string(),
        });
    }
    if config.halve_eta_after.is_some() && evaluation.is_none_or(|e| e.is_empty()) {
        return Err(Error::BadOption {
            option: "eta halving",
            problem: "it watches the evaluation accuracy, so it needs evaluation data".to_string(),
        });
    }

    let n = training.len();
    let mb = config.mini_batch_size.min(n);
    let mut trainer = Trainer::new(net, mb)?
        .with_optimizer(config.optimizer)?
        .with_l1(config.lambda1)?
        .with_dropout(config.dropout, config.seed)?;
    let mut order: Vec<usize> = (0..n).collect();
    // A stream of its own, so that the shuffle does not depend on how the network was made.
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5348_5546_464c_4553);
    let batches = n.div_ceil(mb);
    let report_every = batches.div_ceil(100);
    let mut summary = TrainingSummary::default();
    let mut counters = RunCounters {
        best_correct: 0,
        epochs_without_improvement: 0,
        schedule: EtaSchedule::new(config.eta, config.halve_eta_after),
    };
    let (mut first_epoch, mut skip_batches, mut carried_seconds) = (1, 0, 0.0);
    if let Some(state) = state {
        let unusable = |problem: String| Error::BadOption {
            option: "checkpoint",
            problem,
        };
        state.check(net, config, n).map_err(unusable)?;
        trainer
            .restore_state(
                &state.optimizer_arrays,
                state.adam_steps,
                state.dropout_step,
            )
            .map_err(unusable)?;
        counters.best_correct = state.best_correct;
        counters.epochs_without_improvement = state.epochs_without_improvement;
        counters
            .schedule
            .restore(state.eta_halvings, state.eta_stale);
        summary = state.summary.clone();
        if state.finished {
            return Ok(summary);
        }
        summary.stop = StopReason::AllEpochs;
        // The shuffles of the finished epochs, replayed: each epoch shuffles the previous
        // epoch's order, so the generator and the order both come back.
        if config.shuffle {
            for _ in 0..state.epochs_done {
                order.shuffle(&mut rng);
            }
        }
        (first_epoch, skip_batches, carried_seconds) = (
            state.epochs_done + 1,
            state.batches_done,
            state.partial_seconds,
        );
    }

    // Listed once the checkpoint (if any) has been checked and found unfinished: a refused
    // or finished resume does not pay for it.
    let listed = ListedExamples::list(training, &trainer.kernels)?;
    for epoch in first_epoch..=config.epochs {
        let eta = counters.schedule.eta();
        if config.shuffle {
            order.shuffle(&mut rng);
        }
        let started = Instant::now();
        // The epoch's steps; `true` if the observer interrupted them (and has been given its
        // checkpoint).
        let mut steps = |fork: Fork<'_>| -> Result<bool> {
            for (b, batch) in order.chunks(mb).enumerate().skip(skip_batches) {
                let rows = batch.len();
                let next = order.get((b + 1) * mb..((b + 2) * mb).min(n));
                let listed_batch = listed
                    .as_ref()
                    .and_then(|l| trainer.forward.listed_batch(&l.rows, batch, next));
                match (&listed, listed_batch) {
                    (Some(listed), Some(_)) => {
                        for (label, &e) in trainer.labels[..rows].iter_mut().zip(batch) {
                            *label = listed.labels[e];
                        }
                        // Where the lists of the batch after next are; the next batch's lists
                        // (whose places were fetched a step ago) are asked for by the first
                        // layer, each half on its thread.
                        if let Some(after_next) = order.get((b + 2) * mb..((b + 3) * mb).min(n)) {
                            listed.rows.bounds_of(after_next).for_each(mmap::prefetch);
                        }
                    }
                    _ => {
                        let inputs = trainer.forward.input_mut(rows);
                        let labels = &mut trainer.labels[..rows];
                        if config.shuffle {
                            training.gather(batch, inputs, labels)?;
                        } else {
                            let start = b * mb;
                            training.gather_range(start..start + rows, inputs, labels)?;
                        }
                        if let Some(next) = next {
                            training.prefetch(next);
                        }
                    }
                }
                trainer.step_filled(fork, net, listed_batch, rows, eta, config.lambda, n)?;
                if (b + 1) % report_every == 0 && b + 1 < batches {
                    observer.progress(epoch, (b + 1) * mb, n);
                }
                if b + 1 < batches && observer.interrupted() {
                    summary.stop = StopReason::Interrupted;
                    if observer.wants_checkpoints() {
                        let seconds = carried_seconds + started.elapsed().as_secs_f64();
                        let position = (epoch - 1, b + 1, seconds);
                        let state = snapshot(&trainer, &counters, &summary, position, n, false);
                        observer.checkpoint(net, config, &state)?;
                    }
                    return Ok(true);
                }
            }
            Ok(false)
        };
        // With two threads or more, the steps of a listed set split their first layer on a
        // spinning pair: a step is too short for rayon's wake-ups.
        let interrupted = match &listed {
            Some(_) if rayon::current_num_threads() >= 2 => {
                Pair::run(|pair| steps(Fork::Pair(pair)))?
            }
            _ => steps(Fork::Pool)?,
        };
        if interrupted {
            return Ok(summary);
        }
        let seconds = carried_seconds + started.elapsed().as_secs_f64();
        (skip_batches, carried_seconds) = (0, 0.0);
        observer.progress(epoch, n, n);
        if let Some(what) = net.first_non_finite() {
            // Layer l + 1 (counted from 1, as the README does) holds weights[l] and biases[l].
            let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
            let l = (0..net.layers())
                .find(|&l| !finite(&net.weights[l]) || !finite(&net.biases[l]))
                .unwrap_or(0);
            return Err(Error::Diverged {
                epoch,
                layer: l + 1,
                part: if finite(&net.weights[l]) {
                    "bias vector"
                } else {
                    "weight matrix"
                },
                inputs: net.sizes[l],
                neurons: net.sizes[l + 1],
                what,
            });
        }

        let mut report = EpochReport {
            epoch,
            eta,
            seconds,
            training_cost: None,
            training_accuracy: None,
            evaluation_cost: None,
            evaluation_accuracy: None,
        };
        let m = config.monitor;
        if m.training_cost || m.training_accuracy {
            let e = net.evaluate(training, config.lambda)?;
            report.training_cost = m.training_cost.then_some(e.cost);
            report.training_accuracy = m.training_accuracy.then_some(e.into());
        }
        let mut evaluation_correct = None;
        if let Some(eval) = evaluation
            && (m.evaluation_cost
                || m.evaluation_accuracy
                || config.early_stopping.is_some()
                || config.halve_eta_after.is_some())
        {
            let e = net.evaluate(eval, config.lambda)?;
            report.evaluation_cost = m.evaluation_cost.then_some(e.cost);
            report.evaluation_accuracy = m.evaluation_accuracy.then_some(e.into());
            evaluation_correct = Some(e.correct);
        }
        observer.epoch(&report);
        summary.epochs.push(report);

        let mut finished = epoch == config.epochs;
        if let Some(correct) = evaluation_correct {
            // network2: a strictly better accuracy resets the count; anything else adds one.
            let improved = correct > counters.best_correct;
            if improved {
                counters.best_correct = correct;
                counters.epochs_without_improvement = 0;
            } else {
                counters.epochs_without_improvement += 1;
            }
            if config.early_stopping == Some(counters.epochs_without_improvement) {
                summary.stopped_early = epoch < config.epochs;
                if summary.stopped_early {
                    summary.stop = StopReason::EarlyStopping;
                }
                finished = true;
            } else if counters.schedule.after_epoch(improved) {
                if epoch < config.epochs {
                    summary.stop = StopReason::EtaScheduleExhausted;
                }
                finished = true;
            }
        }
        if observer.wants_checkpoints() {
            let state = snapshot(&trainer, &counters, &summary, (epoch, 0, 0.0), n, finished);
            observer.checkpoint(net, config, &state)?;
        }
        if finished {
            break;
        }
        if observer.interrupted() {
            // Between epochs: the checkpoint just offered is the place to resume from.
            summary.stop = StopReason::Interrupted;
            break;
        }
    }
    Ok(summary)
}
