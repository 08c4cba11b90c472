//! Inference: predicted classes for a batch of inputs, on top of the batched forward pass.
//!
//! The whole path a backend needs is three calls: [`Network::load`] a network2 JSON file,
//! [`Network::feedforward_batch`] for the output activations of many inputs at once, and
//! [`Network::predict_batch`] for their classes. The C ABI (feature `capi`) exposes the same
//! three as `simdnet_network_load`, `simdnet_network_feedforward` and
//! `simdnet_network_predict`.

use super::Network;
use super::eval::argmax;
use crate::error::{Error, Result};

impl Network {
    /// The predicted class of each of `rows` inputs: `inputs` is row-major
    /// `rows x inputs()`, and `classes[i]` receives the index of the most active output
    /// neuron for row `i`, the first one winning ties (numpy's `argmax`, network2's
    /// `accuracy`). One [`Network::feedforward_batch`] over the whole batch, then an argmax
    /// per row.
    ///
    /// ```
    /// use simdnet::network::{Cost, Init, Network};
    ///
    /// // A network saved in network2's JSON format (here made on the spot) ...
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("net.json");
    /// Network::new(&[4, 8, 3], Cost::CrossEntropy, Init::Default, 7)?.save(&path)?;
    ///
    /// // ... is loaded, and run on a batch of two inputs, one per row.
    /// let net = Network::load(&path)?;
    /// let inputs = [0.0, 0.5, 1.0, 0.25, /* row 2 */ 1.0, 0.0, 0.0, 0.75];
    /// let mut outputs = vec![0.0f32; 2 * net.outputs()];
    /// net.feedforward_batch(&inputs, 2, &mut outputs)?;
    ///
    /// let mut classes = [0u32; 2];
    /// net.predict_batch(&inputs, 2, &mut classes)?;
    /// for (row, &class) in outputs.chunks(net.outputs()).zip(&classes) {
    ///     let best = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    ///     assert_eq!(row.iter().position(|&a| a == best), Some(class as usize));
    /// }
    ///
    /// // Wrong lengths are errors, not panics.
    /// assert!(net.predict_batch(&inputs, 2, &mut [0u32; 3]).is_err());
    /// assert!(net.predict_batch(&inputs[..7], 2, &mut classes).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `inputs` does not hold `rows x inputs()` values or
    /// `classes` does not hold `rows`; [`Error::IsaUnavailable`] / [`Error::UnknownIsa`] if
    /// `SIMDNET_ISA` is invalid.
    pub fn predict_batch(&self, inputs: &[f32], rows: usize, classes: &mut [u32]) -> Result<()> {
        let outputs_len = rows.checked_mul(self.outputs());
        if classes.len() != rows || outputs_len.is_none() {
            return Err(Error::ShapeMismatch {
                op: "Network::predict_batch (A = inputs, C = classes)",
                a_rows: rows,
                a_cols: self.inputs(),
                b_rows: self.inputs(),
                b_cols: 1,
                c_rows: classes.len(),
                c_cols: 1,
            });
        }
        if rows == 0 {
            return if inputs.is_empty() {
                Ok(())
            } else {
                self.feedforward_batch(inputs, 0, &mut [])
            };
        }
        let mut outputs = vec![0.0f32; outputs_len.unwrap_or(0)];
        self.feedforward_batch(inputs, rows, &mut outputs)?;
        for (class, row) in classes.iter_mut().zip(outputs.chunks_exact(self.outputs())) {
            // Layers are limited to 2^24 neurons, so an output index fits a u32.
            *class = argmax(row) as u32;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::network::{Cost, Init, Network};

    #[test]
    fn first_maximum_wins_and_rows_are_independent() {
        // Zero weights make every output sigmoid(bias): the biases choose the class, with a
        // tie between outputs 1 and 2.
        let net = Network::from_network2_json(
            r#"{"sizes": [2, 4], "weights": [[[0, 0], [0, 0], [0, 0], [0, 0]]],
                "biases": [[[0.5], [2.0], [2.0], [-1.0]]], "cost": "QuadraticCost"}"#,
        )
        .unwrap();
        let mut classes = [7u32; 3];
        net.predict_batch(&[0.0, 1.0, 2.0, 3.0, -1.0, 0.5], 3, &mut classes)
            .unwrap();
        assert_eq!(classes, [1, 1, 1]);
    }

    #[test]
    fn matches_feedforward_argmax_and_checks_lengths() {
        let net = Network::new(&[5, 6, 4], Cost::CrossEntropy, Init::Large, 3).unwrap();
        let rows = 9;
        let inputs: Vec<f32> = (0..rows * 5)
            .map(|i| ((i * 7) % 11) as f32 / 11.0)
            .collect();
        let mut classes = vec![0u32; rows];
        net.predict_batch(&inputs, rows, &mut classes).unwrap();
        for r in 0..rows {
            let out = net.feedforward(&inputs[r * 5..r * 5 + 5]).unwrap();
            let best = out.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(
                classes[r] as usize,
                out.iter().position(|&a| a == best).unwrap()
            );
        }
        assert!(net.predict_batch(&inputs, rows, &mut classes[1..]).is_err());
        assert!(net.predict_batch(&inputs[1..], rows, &mut classes).is_err());
        assert!(net.predict_batch(&[], 0, &mut []).is_ok());
        assert!(net.predict_batch(&inputs, 0, &mut []).is_err());
    }
}
