//! network2's `accuracy` and `total_cost`, computed together in one parallel forward pass.

use rayon::prelude::*;

use super::examples::Examples;
use super::{Cost, Forward, Network, sequential_gemm};
use crate::error::Result;
use crate::kernels::Kernels;

/// Examples per evaluation task. Fixed (not derived from the thread count) so that the
/// per-example costs, and so the total, are the same bits whatever the pool's size.
const EVAL_CHUNK: usize = super::FORWARD_CHUNK;

/// What [`Network::evaluate`] measures over a set of examples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Examples whose most active output neuron is their label (network2's `accuracy`).
    pub correct: usize,
    /// The number of examples.
    pub total: usize,
    /// network2's `total_cost(data, lmbda)`: the mean of the per-example costs plus
    /// `0.5 * (lambda / total) * sum ||w||^2`.
    pub cost: f64,
}

impl Evaluation {
    /// `correct / total`, a fraction in `[0, 1]` (0 for no examples).
    pub fn accuracy(&self) -> f64 {
        super::Accuracy::from(*self).fraction()
    }
}

impl Network {
    /// network2's `accuracy(data)` and `total_cost(data, lmbda)` in one forward pass over
    /// `data`, in parallel on the current rayon pool (tasks of a fixed 500 examples, so the
    /// result is bitwise the same for any number of threads).
    ///
    /// The accuracy counts `argmax(output) == label`, the first maximum winning ties as in
    /// numpy. The cost adds each example's cost divided by `len` in example order, in f64,
    /// exactly as network2's loop, then the L2 term with `lambda / len`.
    ///
    /// # Errors
    ///
    /// If a label is not an output neuron ([`crate::Error::LabelOutOfRange`]), the examples do not
    /// fit the input layer, or `SIMDNET_ISA` is invalid.
    pub fn evaluate<E: Examples + ?Sized>(&self, data: &E, lambda: f32) -> Result<Evaluation> {
        data.check_input_size(self.inputs())?;
        data.check_labels(self.outputs())?;
        let n = data.len();
        let isa = crate::isa::try_selected_isa()?;
        let kernels = Kernels::for_isa(isa.fused_kernels_isa())?;
        let gemm = sequential_gemm(isa)?;
        let mut costs = vec![0.0f64; n];
        let correct: Vec<usize> = costs
            .par_chunks_mut(EVAL_CHUNK)
            .enumerate()
            .map_init(
                || {
                    let rows = EVAL_CHUNK.min(n);
                    (Forward::for_inference(self, rows), vec![0u8; rows])
                },
                |(forward, labels), (chunk, costs)| -> Result<usize> {
                    let rows = costs.len();
                    let start = chunk * EVAL_CHUNK;
                    data.gather_range(
                        start..start + rows,
                        forward.input_mut(rows),
                        &mut labels[..rows],
                    )?;
                    forward.run_filled(super::Fork::Pool, self, &gemm, &kernels, None, rows)?;
                    let labels = &labels[..rows];
                    match self.cost {
                        Cost::CrossEntropy => {
                            kernels.cross_entropy_cost(forward.output_z(rows), labels, costs)?
                        }
                        Cost::LogLikelihood => {
                            kernels.log_likelihood_cost(forward.output_z(rows), labels, costs)?
                        }
                        Cost::Quadratic => kernels.quadratic_cost(
                            forward.activation(self.layers(), rows),
                            labels,
                            costs,
                        )?,
                    };
                    let outputs = forward.activation(self.layers(), rows);
                    Ok(outputs
                        .chunks_exact(self.outputs())
                        .zip(labels)
                        .filter(|&(row, &label)| argmax(row) == usize::from(label))
                        .count())
                },
            )
            .collect::<Result<_>>()?;
        let mut cost = 0.0f64;
        for c in &costs {
            cost += c / n as f64;
        }
        cost += l2_term(self, lambda, n);
        Ok(Evaluation {
            correct: correct.iter().sum(),
            total: n,
            cost,
        })
    }
}

/// network2's `0.5 * (lmbda / len(data)) * sum(np.linalg.norm(w)**2 for w in weights)`.
fn l2_term(net: &Network, lambda: f32, n: usize) -> f64 {
    if lambda == 0.0 || n == 0 {
        return 0.0;
    }
    0.5 * (f64::from(lambda) / n as f64) * net.weight_norm_squared()
}

/// The index of the largest value, the first on ties; a NaN counts as larger than any
/// number (numpy's `argmax` propagates the first NaN).
pub(crate) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate().skip(1) {
        let b = row[best];
        if b.is_nan() {
            break;
        }
        if v > b || v.is_nan() {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::argmax;

    #[test]
    fn argmax_follows_numpy() {
        assert_eq!(argmax(&[0.1, 0.9, 0.9]), 1);
        assert_eq!(argmax(&[0.5]), 0);
        assert_eq!(argmax(&[0.1, f32::NAN, 0.9]), 1);
        assert_eq!(argmax(&[f32::NAN, 1.0]), 0);
        assert_eq!(argmax(&[-1.0, -0.5, -2.0]), 1);
    }
}
