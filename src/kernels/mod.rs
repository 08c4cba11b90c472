//! Fused element-wise kernels for training sigmoid networks, on the same runtime ISA dispatch
//! as the GEMM.
//!
//! The matrices are row-major mini-batches stored in plain slices: `rows` examples of `cols`
//! units, element `(r, c)` at `r * cols + c`. Targets are one-hot vectors implied by
//! `labels: &[u8]` (row `r` has its 1 in column `labels[r]`), never materialized. One pass of
//! each kernel replaces several numpy expressions of network2.py:
//!
//! | kernel | computes | network2.py |
//! |---|---|---|
//! | [`Kernels::bias_sigmoid`] | `z += b; a = sigmoid(z)` | `z = np.dot(w, a)+b; a = sigmoid(z)` |
//! | [`Kernels::sigmoid_prime_mul`] | `delta *= a (1 - a)` | `delta * sigmoid_prime(z)` |
//! | [`Kernels::cross_entropy_delta`] | `delta = a - y` | `CrossEntropyCost.delta` |
//! | [`Kernels::quadratic_delta`] | `delta = (a - y) a (1 - a)` | `QuadraticCost.delta` |
//! | [`Kernels::cross_entropy_cost`] | per-row cost and sum | `CrossEntropyCost.fn` |
//! | [`Kernels::quadratic_cost`] | per-row cost and sum | `QuadraticCost.fn` |
//! | [`Kernels::sgd_l2_update`] | `w = decay w - step grad` | the weight update with L2 |
//! | [`Kernels::sgd_update`] | `b = b - step grad` | the bias update |
//! | [`Kernels::column_sums`] | `out = sum over rows` | `nabla_b` summed over the batch |
//!
//! plus [`Kernels::exp`] and [`Kernels::ln`] over slices. Each is written once, generic over
//! the crate's internal vector type, and compiled per ISA in an entry function that carries
//! the target features; [`reference`](mod@reference) holds plain scalar versions that are
//! the specification the tests hold every ISA to.
//!
//! # Errors
//!
//! Operand lengths are checked once per call, before any work: mismatched lengths give
//! [`Error::ShapeMismatch`] (a slice of `n` values is reported as a `1 x n` matrix when no
//! row structure can be inferred), a label not below the number of columns gives
//! [`Error::InvalidView`] naming the row. Nothing is written when an error is returned.
//!
//! ```
//! use simdnet::kernels::Kernels;
//!
//! let k = Kernels::new();
//! // Two examples of three units: z += b, a = sigmoid(z).
//! let mut z = vec![0.0, 1.0, -1.0, 2.0, 0.0, 30.0];
//! let mut a = vec![0.0; 6];
//! k.bias_sigmoid(&mut z, &mut a, &[0.0, -1.0, 1.0])?;
//! assert_eq!(z, [0.0, 0.0, 0.0, 2.0, -1.0, 31.0]);
//! assert_eq!(a[0], 0.5);
//! assert_eq!(a[5], 1.0);
//!
//! // Cross-entropy output delta a - y for labels 2 and 0.
//! let mut delta = vec![0.0; 6];
//! k.cross_entropy_delta(&a, &[2, 0], &mut delta)?;
//! assert_eq!(delta[2], a[2] - 1.0);
//! assert_eq!(delta[1], a[1]);
//! # Ok::<(), simdnet::Error>(())
//! ```

pub mod dropout;
mod entry;
mod generic;
pub mod reference;
mod sparse;

#[cfg(test)]
mod tests;

use std::marker::PhantomData;
use std::ops::Range;

use crate::error::{Error, Result};
use crate::isa::{Isa, selected_isa, try_selected_isa};
pub(crate) use sparse::{Half, ListSegment, ListedRows, SparseRows, UpdateScratch};
use sparse::{SparseTimesDense, SparseUpdate};

use generic::{
    BiasActivation, BiasSoftmax, ColumnSums, Cost, CostRule, DeltaRule, Exp, Kernel, Ln, Map,
    OutputDelta, ParamUpdate, PrimeMul, Relu, RuleConsts, SgdStep, Sigmoid, Tanh,
};

/// How parameters move against their gradient `g` (which includes the L2 and L1 terms).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Optimizer {
    /// Plain gradient descent, `w -= eta g` (network2).
    #[default]
    Sgd,
    /// Momentum: `v = mu v - eta g; w += v`, with a velocity `v` per parameter (zero at
    /// first) and `mu` in `[0, 1)`. With `nesterov`, the step looks ahead:
    /// `w += v + mu (v - v_old)` (Sutskever et al.'s form of Nesterov's accelerated
    /// gradient, in which the stored parameters are the look-ahead point).
    Momentum {
        /// The momentum coefficient (the book's "friction" is `1 - mu`).
        mu: f32,
        /// Nesterov's look-ahead.
        nesterov: bool,
    },
    /// Adam (Kingma and Ba, 2015): `m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    /// w -= eta m_hat / (sqrt(v_hat) + eps)` with bias-corrected `m_hat`, `v_hat`. The new
    /// `m`, `v` and `w` are flushed to zero (of their sign) when subnormal: see
    /// [`Kernels::param_update`].
    Adam {
        /// Decay of the first moment, in `[0, 1)`; usually 0.9.
        beta1: f32,
        /// Decay of the second moment, in `[0, 1)`; usually 0.999.
        beta2: f32,
        /// Added to the denominator, > 0; usually 1e-8.
        epsilon: f32,
    },
}

impl Optimizer {
    /// Adam with the usual constants: `beta1 = 0.9`, `beta2 = 0.999`, `epsilon = 1e-8`.
    pub const ADAM: Optimizer = Optimizer::Adam {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
    };

    /// How many state arrays shaped like the parameters the rule keeps: 0 (SGD), 1
    /// (momentum: the velocity), 2 (Adam: the two moments).
    pub fn state_arrays(self) -> usize {
        match self {
            Optimizer::Sgd => 0,
            Optimizer::Momentum { .. } => 1,
            Optimizer::Adam { .. } => 2,
        }
    }

    /// Checks the constants.
    ///
    /// # Errors
    ///
    /// [`Error::BadOption`] naming the constant: `mu`, `beta1`, `beta2` outside `[0, 1)`,
    /// `epsilon` not a positive number.
    pub fn validate(self) -> Result<()> {
        let unit = |option: &'static str, x: f32| {
            if (0.0..1.0).contains(&x) {
                Ok(())
            } else {
                Err(Error::BadOption {
                    option,
                    problem: format!("{x} is outside [0, 1)"),
                })
            }
        };
        match self {
            Optimizer::Sgd => Ok(()),
            Optimizer::Momentum { mu, .. } => unit("momentum", mu),
            Optimizer::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                unit("adam beta1", beta1)?;
                unit("adam beta2", beta2)?;
                if epsilon > 0.0 && epsilon.is_finite() {
                    Ok(())
                } else {
                    Err(Error::BadOption {
                        option: "adam epsilon",
                        problem: format!("{epsilon} is not a positive number"),
                    })
                }
            }
        }
    }
}

/// One optimizer step's constants for [`Kernels::param_update`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamStep {
    /// The rule.
    pub optimizer: Optimizer,
    /// The learning rate.
    pub eta: f32,
    /// Multiplies the summed gradient: `1 / m` for a mini-batch of `m` examples.
    pub grad_scale: f32,
    /// The L2 term's coefficient, `lambda / n` (the gradient of `(lambda / 2n) w^2`).
    pub l2: f32,
    /// The L1 term's coefficient, `lambda1 / n` (the gradient of `(lambda1 / n) |w|`, with
    /// `sgn(0) = 0`).
    pub l1: f32,
    /// Adam's step number, from 1 (for its bias corrections); ignored by the others.
    pub t: u64,
}

/// A layer's activation function `a = f(z)`.
///
/// Sigmoid, tanh and ReLU are element-wise and may be used on any layer; softmax normalizes
/// each example's outputs to a probability distribution and belongs on the output layer,
/// trained with the log-likelihood cost (the network checks these pairings).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `1 / (1 + e^-z)`, network2's only activation.
    #[default]
    Sigmoid,
    /// `tanh z`, in `(-1, 1)`.
    Tanh,
    /// `max(z, 0)`; its derivative at 0 is taken as 0.
    Relu,
    /// `e^z_j / sum_k e^z_k` over each example's outputs.
    Softmax,
}

impl Activation {
    /// Every activation, in declaration order.
    pub const ALL: [Activation; 4] = [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::Softmax,
    ];

    /// The name used by the `train` binary and in model files: `sigmoid`, `tanh`, `relu`,
    /// `softmax`.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Softmax => "softmax",
        }
    }

    /// Whether `f` acts on each unit on its own (all but softmax).
    pub fn is_elementwise(self) -> bool {
        self != Activation::Softmax
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;

    /// One of the [`Activation::name`]s.
    fn from_str(s: &str) -> Result<Activation> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| Error::BadOption {
                option: "activation",
                problem: format!(
                    "{s:?} is not an activation: expected sigmoid, tanh, relu or softmax"
                ),
            })
    }
}

/// The error for asking softmax for an element-wise derivative.
fn softmax_not_elementwise(op: &str) -> Error {
    Error::BadOption {
        option: "activation",
        problem: format!(
            "{op}: softmax has no element-wise derivative; it is an output layer trained with \
             the log-likelihood cost, whose output error is a - y"
        ),
    }
}

/// The fused kernels of one instruction set.
///
/// A `Kernels` value proves that its ISA is available on this CPU: it is only made by
/// [`Kernels::new`] / [`Kernels::try_new`] (the [`selected_isa`]) or by
/// [`Kernels::for_isa`], which checks. It is `Copy` and holds no buffers; every method
/// works in place on the caller's slices and never allocates (but for the sparse update's
/// working memory, which grows on a first call that does not fit it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels {
    isa: Isa,
}

impl Default for Kernels {
    fn default() -> Self {
        Kernels::new()
    }
}

impl Kernels {
    /// The kernels of the [`selected_isa`].
    ///
    /// # Panics
    ///
    /// If `SIMDNET_ISA` is invalid; use [`Kernels::try_new`] to get an error instead.
    pub fn new() -> Kernels {
        Kernels {
            isa: selected_isa(),
        }
    }

    /// As [`Kernels::new`], but reports a bad `SIMDNET_ISA` as an error.
    pub fn try_new() -> Result<Kernels> {
        Ok(Kernels {
            isa: try_selected_isa()?,
        })
    }

    /// The kernels of `isa`; [`Error::IsaUnavailable`] if this CPU does not support it.
    pub fn for_isa(isa: Isa) -> Result<Kernels> {
        Ok(Kernels {
            isa: isa.require()?,
        })
    }

    /// The instruction set these kernels run.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Runs a kernel whose operands have been checked, on this value's ISA.
    fn run<K: Kernel>(&self, kernel: K) -> K::Output {
        // SAFETY: (each arm) `self.isa` was checked available when this value was made (by
        // `Isa::require` directly or through `selected_isa`), and the entry's features are
        // that ISA's; every caller below checks the kernel's operand invariants first.
        unsafe {
            match self.isa {
                Isa::Scalar => entry::scalar(kernel),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => entry::avx2(kernel),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => entry::avx512(kernel),
                #[cfg(target_arch = "aarch64")]
                Isa::Neon => entry::neon(kernel),
                #[allow(unreachable_patterns)]
                isa => unreachable!("Kernels for {isa} cannot be built on this target"),
            }
        }
    }

    /// `dst[i] = e^src[i]`, vectorized: at most 1 ulp from the correctly rounded result
    /// (measured over `[-88, 88]`); `+inf` past 88.72, gradual underflow through the
    /// subnormals to 0 below -103.3; NaN stays NaN.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the lengths differ.
    pub fn exp(&self, src: &[f32], dst: &mut [f32]) -> Result<()> {
        check_same("Kernels::exp", src.len(), dst.len())?;
        self.run(Map::<Exp> {
            src,
            dst,
            f: PhantomData,
        });
        Ok(())
    }

    /// `dst[i] = ln src[i]`, vectorized: at most 1 ulp from the correctly rounded result
    /// (measured over all positive f32, subnormals included); `ln(±0) = -inf`, `ln(+inf) =
    /// +inf`, negative arguments and NaN give NaN.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the lengths differ.
    pub fn ln(&self, src: &[f32], dst: &mut [f32]) -> Result<()> {
        check_same("Kernels::ln", src.len(), dst.len())?;
        self.run(Map::<Ln> {
            src,
            dst,
            f: PhantomData,
        });
        Ok(())
    }

    /// Forward step of a sigmoid layer over a mini-batch, in one pass: `z[r][c] += bias[c]`,
    /// then `a[r][c] = sigmoid(z[r][c]) = 1 / (1 + e^-z)`, writing both.
    ///
    /// `z` and `a` are `rows x cols` with `cols = bias.len()`. The sigmoid never overflows:
    /// it is `1` for `z >= 17` or so, `0` below `-103`, exactly `0.5` at 0, and keeps its
    /// relative accuracy for tiny values; NaN stays NaN.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] unless `z.len() == a.len()` is a multiple of `bias.len()`
    /// (zero if `bias` is empty).
    pub fn bias_sigmoid(&self, z: &mut [f32], a: &mut [f32], bias: &[f32]) -> Result<()> {
        let cols = bias.len();
        // (`n.is_multiple_of(0)` holds only for n = 0.)
        if !z.len().is_multiple_of(cols) || a.len() != z.len() {
            return Err(Error::ShapeMismatch {
                op: "Kernels::bias_sigmoid (A = z, B = bias, C = a)",
                a_rows: 1,
                a_cols: z.len(),
                b_rows: 1,
                b_cols: cols,
                c_rows: 1,
                c_cols: a.len(),
            });
        }
        self.run(BiasActivation::<Sigmoid> {
            z,
            a,
            bias,
            f: PhantomData,
        });
        Ok(())
    }

    /// Forward step of a layer with activation `f` over a mini-batch, in one pass:
    /// `z[r][c] += bias[c]`, then `a = f(z)`, writing both ([`Kernels::bias_sigmoid`] for
    /// the sigmoid).
    ///
    /// * tanh: a polynomial below `|z| = 0.4`, `(1 - e^(-2|z|)) / (1 + e^(-2|z|))` above,
    ///   within a few ulp of the exact value everywhere, exactly `±1` from `|z| = 9` or so.
    /// * ReLU: `max(z, 0)`, exact; `-0.0` stays `-0.0`.
    /// * softmax, row by row: `e^(z - max) / sum(e^(z - max))`, the maximum of the row
    ///   subtracted first so that no exponential overflows; each row sums to 1 within a few
    ///   ulp.
    ///
    /// NaN propagates (through the whole row for softmax).
    ///
    /// # Errors
    ///
    /// As [`Kernels::bias_sigmoid`].
    pub fn bias_activation(
        &self,
        f: Activation,
        z: &mut [f32],
        a: &mut [f32],
        bias: &[f32],
    ) -> Result<()> {
        let cols = bias.len();
        if !z.len().is_multiple_of(cols) || a.len() != z.len() {
            return Err(Error::ShapeMismatch {
                op: "Kernels::bias_activation (A = z, B = bias, C = a)",
                a_rows: 1,
                a_cols: z.len(),
                b_rows: 1,
                b_cols: cols,
                c_rows: 1,
                c_cols: a.len(),
            });
        }
        match f {
            Activation::Sigmoid => self.run(BiasActivation::<Sigmoid> {
                z,
                a,
                bias,
                f: PhantomData,
            }),
            Activation::Tanh => self.run(BiasActivation::<Tanh> {
                z,
                a,
                bias,
                f: PhantomData,
            }),
            Activation::Relu => self.run(BiasActivation::<Relu> {
                z,
                a,
                bias,
                f: PhantomData,
            }),
            Activation::Softmax => self.run(BiasSoftmax { z, a, bias }),
        }
        Ok(())
    }

    /// Backward step through a layer with element-wise activation `f`:
    /// `delta[i] *= f'(z[i])`, the derivative taken from the activation's value `a = f(z)`:
    /// `a (1 - a)` (sigmoid), `(1 - a) (1 + a)` (tanh), `1` where `a > 0` else `0` (ReLU).
    ///
    /// Bitwise the same on every ISA.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the lengths differ; [`Error::BadOption`] for softmax,
    /// which has no element-wise derivative.
    pub fn activation_prime_mul(&self, f: Activation, delta: &mut [f32], a: &[f32]) -> Result<()> {
        let op = "Kernels::activation_prime_mul";
        check_same(op, a.len(), delta.len())?;
        match f {
            Activation::Sigmoid => self.run(PrimeMul::<Sigmoid> {
                delta,
                a,
                f: PhantomData,
            }),
            Activation::Tanh => self.run(PrimeMul::<Tanh> {
                delta,
                a,
                f: PhantomData,
            }),
            Activation::Relu => self.run(PrimeMul::<Relu> {
                delta,
                a,
                f: PhantomData,
            }),
            Activation::Softmax => return Err(softmax_not_elementwise(op)),
        }
        Ok(())
    }

    /// Backward step through a sigmoid layer: `delta[i] *= a[i] * (1 - a[i])`, the sigmoid's
    /// derivative taken from its value (network2's `sigmoid_prime(z)`).
    ///
    /// Bitwise the same on every ISA.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the lengths differ.
    pub fn sigmoid_prime_mul(&self, delta: &mut [f32], a: &[f32]) -> Result<()> {
        check_same("Kernels::sigmoid_prime_mul", a.len(), delta.len())?;
        self.run(PrimeMul::<Sigmoid> {
            delta,
            a,
            f: PhantomData,
        });
        Ok(())
    }

    /// The output-layer error of the cross-entropy cost with sigmoid outputs,
    /// `delta = a - y`, where `y` is one-hot: row `r` of the `labels.len() x cols` batch has
    /// its 1 in column `labels[r]`; `cols = a.len() / labels.len()`.
    ///
    /// Bitwise the same on every ISA.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] unless `a.len() == delta.len()` is a multiple of
    /// `labels.len()` (zero if there are no labels); [`Error::InvalidView`] if a label is not
    /// below `cols`.
    pub fn cross_entropy_delta(&self, a: &[f32], labels: &[u8], delta: &mut [f32]) -> Result<()> {
        let cols = check_labeled("Kernels::cross_entropy_delta", a.len(), labels, delta.len())?;
        self.run(OutputDelta {
            rule: DeltaRule::CrossEntropy,
            a,
            labels,
            cols,
            delta,
        });
        Ok(())
    }

    /// The output-layer error of the quadratic cost with sigmoid outputs,
    /// `delta = (a - y) * (a * (1 - a))`, with `y` one-hot as in
    /// [`Kernels::cross_entropy_delta`].
    ///
    /// Bitwise the same on every ISA.
    ///
    /// # Errors
    ///
    /// As [`Kernels::cross_entropy_delta`].
    pub fn quadratic_delta(&self, a: &[f32], labels: &[u8], delta: &mut [f32]) -> Result<()> {
        let cols = check_labeled("Kernels::quadratic_delta", a.len(), labels, delta.len())?;
        self.run(OutputDelta {
            rule: DeltaRule::Quadratic,
            a,
            labels,
            cols,
            delta,
        });
        Ok(())
    }

    /// The output-layer error of the quadratic cost with element-wise output activation `f`:
    /// `delta = (a - y) * f'(z)`, `f'` taken from `a` as in [`Kernels::activation_prime_mul`]
    /// ([`Kernels::quadratic_delta`] for the sigmoid).
    ///
    /// Bitwise the same on every ISA.
    ///
    /// # Errors
    ///
    /// As [`Kernels::cross_entropy_delta`]; [`Error::BadOption`] for softmax.
    pub fn quadratic_delta_with(
        &self,
        f: Activation,
        a: &[f32],
        labels: &[u8],
        delta: &mut [f32],
    ) -> Result<()> {
        let op = "Kernels::quadratic_delta_with";
        match f {
            Activation::Sigmoid => self.quadratic_delta(a, labels, delta),
            Activation::Softmax => Err(softmax_not_elementwise(op)),
            Activation::Tanh | Activation::Relu => {
                // a - y, then times f'(a): the same two roundings as a fused pass.
                self.cross_entropy_delta(a, labels, delta)?;
                self.activation_prime_mul(f, delta, a)
            }
        }
    }

    /// The log-likelihood cost of a softmax output layer for each example of a batch, from
    /// its weighted inputs `z` (`labels.len() x cols`, labels as in
    /// [`Kernels::cross_entropy_delta`]): `row_costs[r] = -ln softmax(z_r)[labels[r]]`.
    /// Returns the sum of `row_costs`.
    ///
    /// Computed as `ln(sum_j e^(z_j - m)) + (m - z_y)` with `m` the row's maximum, so it is
    /// finite for every finite `z`, even where the softmax output itself rounds to 0 (a
    /// confidently wrong example costs its logit gap rather than `-ln 0`). The sum and its
    /// logarithm are f32 (a few ulp); the rest and the totals are f64. A NaN in a row makes
    /// its cost NaN. (With softmax outputs the output error is `a - y`:
    /// [`Kernels::cross_entropy_delta`].)
    ///
    /// # Errors
    ///
    /// As [`Kernels::cross_entropy_cost`].
    pub fn log_likelihood_cost(
        &self,
        z: &[f32],
        labels: &[u8],
        row_costs: &mut [f64],
    ) -> Result<f64> {
        let op = "Kernels::log_likelihood_cost";
        let cols = check_labeled(op, z.len(), labels, z.len())?;
        check_rows(op, labels.len(), row_costs.len())?;
        Ok(self.run(Cost {
            rule: CostRule::LogLikelihood,
            x: z,
            labels,
            cols,
            row_costs,
        }))
    }

    /// network2's `CrossEntropyCost.fn` for each example of a batch, from the output layer's
    /// weighted inputs `z` (`labels.len() x cols`, one-hot targets as in
    /// [`Kernels::cross_entropy_delta`]): `row_costs[r] = np.sum(np.nan_to_num(-y ln a -
    /// (1 - y) ln(1 - a)))` with `a = sigmoid(z)`. Returns the sum of `row_costs`.
    ///
    /// Why `z` and not `a`: in f32, `a` rounds to exactly 1 once `z > 17`, where `ln(1 - a)`
    /// would be `-inf`; network2's f64 `a` only saturates past `z = 36.74`. Each term is
    /// computed instead as `softplus(z)` (`y = 0`) or `softplus(-z)` (`y = 1`), which is
    /// exact for every `z`, and network2's saturation is reproduced where its f64 `a` is
    /// exactly 1 (`z >= 36.7368`) or 0 (`z <= -709.78`): `-log(0)` terms give `f64::MAX`
    /// (nan_to_num of `+inf`), and elements where `0 * log(0)` appears give 0 (nan_to_num of
    /// NaN: e.g. `a = 1, y = 1`). A NaN `z` contributes 0, as in numpy.
    ///
    /// Terms are evaluated in f32 (a few ulp each) and summed in f64, per row and over rows,
    /// so 50,000 examples lose nothing to the summation. network2's `total_cost` divides each
    /// example's cost by `n` before adding it: do the same with `row_costs` to reproduce it
    /// exactly when some example saturates (two `f64::MAX` terms overflow to `+inf` in a sum,
    /// as they would in numpy's `np.sum`).
    ///
    /// # Errors
    ///
    /// As [`Kernels::cross_entropy_delta`], with `row_costs.len()` required to equal
    /// `labels.len()`.
    pub fn cross_entropy_cost(
        &self,
        z: &[f32],
        labels: &[u8],
        row_costs: &mut [f64],
    ) -> Result<f64> {
        let op = "Kernels::cross_entropy_cost";
        let cols = check_labeled(op, z.len(), labels, z.len())?;
        check_rows(op, labels.len(), row_costs.len())?;
        Ok(self.run(Cost {
            rule: CostRule::CrossEntropy,
            x: z,
            labels,
            cols,
            row_costs,
        }))
    }

    /// network2's `QuadraticCost.fn` for each example, `row_costs[r] = 0.5 * ||a_r - y_r||^2`
    /// with one-hot `y` (as in [`Kernels::cross_entropy_delta`]), computed exactly in f64
    /// (up to the final rounding of each sum). Returns the sum of `row_costs`. A NaN in `a`
    /// makes its row's cost NaN, as in network2.
    ///
    /// # Errors
    ///
    /// As [`Kernels::cross_entropy_cost`].
    pub fn quadratic_cost(&self, a: &[f32], labels: &[u8], row_costs: &mut [f64]) -> Result<f64> {
        let op = "Kernels::quadratic_cost";
        let cols = check_labeled(op, a.len(), labels, a.len())?;
        check_rows(op, labels.len(), row_costs.len())?;
        Ok(self.run(Cost {
            rule: CostRule::Quadratic,
            x: a,
            labels,
            cols,
            row_costs,
        }))
    }

    /// The SGD step with L2 weight decay, in one pass: `w = decay * w - step * grad`, with
    /// `decay = 1 - eta * lambda / n` (n the training-set size) and `step = eta / m` (m the
    /// mini-batch size) for network2's rule, `grad` being the gradient summed over the batch.
    ///
    /// Rounded as `(decay * w) - (step * grad)`, bitwise the same on every ISA.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the lengths differ.
    pub fn sgd_l2_update(&self, w: &mut [f32], grad: &[f32], decay: f32, step: f32) -> Result<()> {
        check_same("Kernels::sgd_l2_update", grad.len(), w.len())?;
        self.run(SgdStep {
            w,
            grad,
            decay: Some(decay),
            step,
        });
        Ok(())
    }

    /// The SGD step without decay (network2's bias update): `b = b - step * grad`.
    ///
    /// Rounded as `b - (step * grad)`, bitwise the same on every ISA.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the lengths differ.
    pub fn sgd_update(&self, b: &mut [f32], grad: &[f32], step: f32) -> Result<()> {
        check_same("Kernels::sgd_update", grad.len(), b.len())?;
        self.run(SgdStep {
            w: b,
            grad,
            decay: None,
            step,
        });
        Ok(())
    }

    /// One optimizer step on the parameters `w` from `grad`, their gradient summed over a
    /// mini-batch: with `g = grad * grad_scale + w * l2 + sgn(w) * l1`, the rule of
    /// `step.optimizer` ([`Optimizer`]). `state1` is the velocity (momentum) or the first
    /// moment (Adam), `state2` Adam's second moment; both start at zero and are updated in
    /// place. The regularization terms are part of `g`, so momentum accumulates them and
    /// Adam normalizes them like the data term.
    ///
    /// Each value is computed with `+ - * /` and `sqrt` in a fixed order (no fused
    /// multiply-add): bitwise the same on every ISA.
    ///
    /// Adam stores its new `m`, `v` and `w` with subnormal values flushed to zero (keeping the
    /// sign). Under Adam with L2, the weights out of inputs that are always zero (MNIST's
    /// border pixels) get no data gradient, so `g = l2 w` and Adam's normalized steps drive
    /// them, and their moments, below `f32::MIN_POSITIVE`, where they would stay for many
    /// steps; every multiply on a subnormal costs an Intel core a microcode assist (on the
    /// order of a hundred cycles). Flushing them left the accuracy of the runs measured as it
    /// was and made a 784-100-10 Adam epoch with lambda 5 1.5-2x faster on an Intel Xeon. The
    /// change to a weight is below `1.2e-38`, far under any step Adam takes.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] unless `grad` and the states the rule uses have the length
    /// of `w` (unused states may be empty); [`Error::BadOption`] for invalid constants
    /// ([`Optimizer::validate`]) or an Adam `t` of 0.
    pub fn param_update(
        &self,
        step: &ParamStep,
        w: &mut [f32],
        grad: &[f32],
        state1: &mut [f32],
        state2: &mut [f32],
    ) -> Result<()> {
        let op = "Kernels::param_update";
        check_same(op, w.len(), grad.len())?;
        let states = step.optimizer.state_arrays();
        if states >= 1 {
            check_same(op, w.len(), state1.len())?;
        }
        if states >= 2 {
            check_same(op, w.len(), state2.len())?;
        }
        step.optimizer.validate()?;
        let rule = match step.optimizer {
            Optimizer::Sgd => RuleConsts::Sgd,
            Optimizer::Momentum { mu, nesterov } => RuleConsts::Momentum { mu, nesterov },
            Optimizer::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                if step.t == 0 {
                    return Err(Error::BadOption {
                        option: "adam step",
                        problem: "Adam's steps are numbered from 1".to_string(),
                    });
                }
                // The corrections in f64, rounded once: b^t underflows harmlessly to 0.
                let t = i32::try_from(step.t).unwrap_or(i32::MAX);
                RuleConsts::Adam {
                    b1: beta1,
                    b2: beta2,
                    eps: epsilon,
                    c1: (1.0 / (1.0 - f64::from(beta1).powi(t))) as f32,
                    c2: (1.0 / (1.0 - f64::from(beta2).powi(t)).sqrt()) as f32,
                }
            }
        };
        self.run(ParamUpdate {
            w,
            grad,
            s1: state1,
            s2: state2,
            rule,
            eta: step.eta,
            grad_scale: step.grad_scale,
            l2: step.l2,
            l1: step.l1,
        });
        Ok(())
    }

    /// Column sums of a row-major `rows x cols` matrix (the bias gradient: `delta` summed over
    /// the examples of a batch): `out[c] = m[0][c] + m[1][c] + ...`, added in row order
    /// starting from `+0.0`, so bitwise the same on every ISA and as a sequential loop.
    /// `out` is overwritten.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] unless `m.len() == rows * cols` and `out.len() == cols`.
    pub fn column_sums(&self, m: &[f32], rows: usize, cols: usize, out: &mut [f32]) -> Result<()> {
        if rows.checked_mul(cols) != Some(m.len()) || out.len() != cols {
            return Err(Error::ShapeMismatch {
                op: "Kernels::column_sums (A = the matrix as given, B = its data, C = out)",
                a_rows: rows,
                a_cols: cols,
                b_rows: 1,
                b_cols: m.len(),
                c_rows: 1,
                c_cols: out.len(),
            });
        }
        self.run(ColumnSums { m, rows, cols, out });
        Ok(())
    }

    /// `out = X W^T` for the rows `rows` of a sparse batch `X` (`rows x k`) and `wt` (`W^T`,
    /// row-major `k x n`): see [`sparse`](mod@sparse). `out` (row-major `rows.len() x n`) is
    /// overwritten. Each row's result is the same whatever range it is computed in.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] unless `rows` lies within the batch, `wt.len() == k * n` and
    /// `out.len() == rows.len() * n`.
    pub(crate) fn sparse_times_dense(
        &self,
        x: &SparseRows,
        rows: Range<usize>,
        wt: &[f32],
        n: usize,
        out: &mut [f32],
    ) -> Result<()> {
        if rows.start > rows.end
            || rows.end > x.rows()
            || x.cols().checked_mul(n) != Some(wt.len())
            || rows.len().checked_mul(n) != Some(out.len())
        {
            return Err(Error::ShapeMismatch {
                op: "Kernels::sparse_times_dense (A = the sparse batch, B = wt, C = out)",
                a_rows: x.rows(),
                a_cols: x.cols(),
                b_rows: wt.len().checked_div(n).unwrap_or(0),
                b_cols: n,
                c_rows: out.len().checked_div(n).unwrap_or(0),
                c_cols: n,
            });
        }
        self.run(SparseTimesDense {
            x,
            rows,
            wt,
            n,
            out,
        });
        Ok(())
    }

    /// `W^T = beta W^T + alpha X^T D` on the rows `inputs` of `W^T`, for a sparse batch `X`
    /// (`rows x k`), `d` (row-major `rows x n`) and `wt` (those rows of `W^T`, row-major
    /// `inputs.len() x n`): see [`sparse`](mod@sparse). Each weight gets the same bits
    /// whatever range it is updated in. `scratch` is the kernel's working memory; it grows
    /// here if it does not fit the call (make it with [`UpdateScratch::new`] to keep the
    /// allocation out of the steps).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] unless `inputs` lies within the `k` inputs,
    /// `d.len() == rows * n` and `wt.len() == inputs.len() * n`.
    #[allow(clippy::too_many_arguments)] // the operands of W^T = beta W^T + alpha X^T D
    pub(crate) fn sparse_update(
        &self,
        x: &SparseRows,
        inputs: Range<usize>,
        d: &[f32],
        n: usize,
        alpha: f32,
        beta: f32,
        wt: &mut [f32],
        scratch: &mut UpdateScratch,
    ) -> Result<()> {
        if inputs.start > inputs.end
            || inputs.end > x.cols()
            || x.rows().checked_mul(n) != Some(d.len())
            || inputs.len().checked_mul(n) != Some(wt.len())
        {
            return Err(Error::ShapeMismatch {
                op: "Kernels::sparse_update (A = the sparse batch, transposed, B = d, C = wt)",
                a_rows: x.cols(),
                a_cols: x.rows(),
                b_rows: d.len().checked_div(n).unwrap_or(0),
                b_cols: n,
                c_rows: wt.len().checked_div(n).unwrap_or(0),
                c_cols: n,
            });
        }
        if !scratch.fits(inputs.len(), n) {
            scratch.reserve(inputs.len(), n);
        }
        self.run(SparseUpdate {
            x,
            inputs,
            d,
            n,
            alpha,
            beta,
            wt,
            scratch,
        });
        Ok(())
    }
}

/// An element-wise operation needs equal lengths.
fn check_same(op: &'static str, input: usize, output: usize) -> Result<()> {
    if input == output {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            op,
            a_rows: 1,
            a_cols: input,
            b_rows: 1,
            b_cols: input,
            c_rows: 1,
            c_cols: output,
        })
    }
}

/// A batch with one label per row: checks that `len` (the input) and `out_len` (the output)
/// both hold `labels.len()` whole rows and that every label is a column; returns `cols`.
fn check_labeled(op: &'static str, len: usize, labels: &[u8], out_len: usize) -> Result<usize> {
    let rows = labels.len();
    let cols = len.checked_div(rows).unwrap_or(0);
    if rows * cols != len || out_len != len {
        return Err(Error::ShapeMismatch {
            op,
            a_rows: 1,
            a_cols: len,
            b_rows: rows,
            b_cols: 1,
            c_rows: 1,
            c_cols: out_len,
        });
    }
    if let Some((row, &label)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &label)| usize::from(label) >= cols)
    {
        return Err(Error::InvalidView {
            reason: format!(
                "{op}: label {label} of row {row} is not a column of the {rows} x {cols} batch"
            ),
        });
    }
    Ok(cols)
}

/// Per-row outputs need one slot per label.
fn check_rows(op: &'static str, rows: usize, out_len: usize) -> Result<()> {
    if rows == out_len {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            op,
            a_rows: rows,
            a_cols: 1,
            b_rows: rows,
            b_cols: 1,
            c_rows: out_len,
            c_cols: 1,
        })
    }
}
