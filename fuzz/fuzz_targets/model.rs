//! The network2 JSON model loader on arbitrary text.
//!
//! The input bytes are read as UTF-8, invalid sequences replaced (so every input is tried),
//! and given to [`Network::from_network2_json`]. It must never panic. On `Ok`:
//!
//! * the shapes agree: at least 2 layers, none empty, `weights(l)` is
//!   `sizes[l+1] x sizes[l]`, `biases(l)` has `sizes[l+1]` values, every value finite;
//! * the network runs: [`Network::feedforward`] on a dense input and on a sparse one (which
//!   takes the sparse first-layer path) gives `outputs()` values; for a network2 network (all
//!   sigmoid) they are in `[0, 1]` (or NaN, when f32 overflows), each within an error bound of
//!   a float64 forward pass over the same weights; `predict_batch` agrees with
//!   `feedforward_batch` on the same two rows; a wrong input length is an error;
//! * it round-trips: saving it with [`Network::to_network2_json`] and loading that gives a
//!   network with bitwise the same weights and biases, the same sizes and cost, and the same
//!   JSON again.
//!
//! Any disagreement panics, which libFuzzer reports as a crash.

#![no_main]

use libfuzzer_sys::fuzz_target;
use simdnet::network::{Activation, Network};

/// Inputs of the f64 forward pass with an error bound: activations and, per neuron, a bound
/// on `|f32 activation - f64 activation|`.
struct Reference {
    activations: Vec<f64>,
    bounds: Vec<f64>,
}

/// The float64 forward pass of `net` on `input`, with a bound on the error of an f32 pass.
///
/// Per layer, with `n` inputs, `z32 = sum w a + b` rounded in f32 differs from the f64 value
/// computed from the same (exact) f32 activations by at most `(n + 2) eps32 (sum |w a| + |b|)`
/// (any summation order), plus `sum |w| err_a` from the activations' own errors; the
/// logistic function is 1/4-Lipschitz, and the vectorized one adds a few ulp (`1e-6`).
fn reference(net: &Network, input: &[f32]) -> Reference {
    let eps = f64::from(f32::EPSILON);
    let mut a: Vec<f64> = input.iter().map(|&x| f64::from(x)).collect();
    let mut err = vec![0.0f64; a.len()];
    for l in 0..net.layers() {
        let (n_in, n_out) = (net.sizes()[l], net.sizes()[l + 1]);
        let w = net.weights_row_major(l);
        let b = net.biases(l);
        let mut next = Vec::with_capacity(n_out);
        let mut next_err = Vec::with_capacity(n_out);
        for j in 0..n_out {
            let row = &w[j * n_in..(j + 1) * n_in];
            let mut z = f64::from(b[j]);
            let mut magnitude = f64::from(b[j]).abs();
            let mut propagated = 0.0;
            for k in 0..n_in {
                let wk = f64::from(row[k]);
                z += wk * a[k];
                magnitude += (wk * a[k]).abs();
                propagated += wk.abs() * err[k];
            }
            let z_err = propagated + (n_in as f64 + 2.0) * eps * magnitude;
            next.push(1.0 / (1.0 + (-z).exp()));
            next_err.push(0.25 * z_err + 1e-6);
        }
        a = next;
        err = next_err;
    }
    Reference {
        activations: a,
        bounds: err,
    }
}

/// Runs `net` on `input` and checks the outputs against the f64 reference when
/// `all_sigmoid`.
fn check_feedforward(net: &Network, input: &[f32], all_sigmoid: bool) -> Vec<f32> {
    let out = net
        .feedforward(input)
        .expect("an input of the right length");
    assert_eq!(out.len(), net.outputs());
    if !all_sigmoid {
        if net.output_activation() == Activation::Softmax && out.iter().all(|o| o.is_finite()) {
            // The normalizing sum is an f32 sum of the exponentials: allow its rounding.
            let sum: f64 = out.iter().map(|&o| f64::from(o)).sum();
            assert!((sum - 1.0).abs() <= 1e-3, "softmax outputs sum to {sum}");
            assert!(out.iter().all(|o| (0.0..=1.0).contains(o)), "{out:?}");
        }
        return out;
    }
    let reference = reference(net, input);
    for (j, &o) in out.iter().enumerate() {
        assert!(o.is_nan() || (0.0..=1.0).contains(&o), "output {j} = {o}");
        let (want, bound) = (reference.activations[j], reference.bounds[j]);
        // A bound of 1 or more (or an f64 overflow) allows anything, NaN included.
        if bound.is_finite() && bound < 1.0 && want.is_finite() {
            assert!(
                (f64::from(o) - want).abs() <= bound,
                "output {j}: {o} vs f64 {want}, bound {bound:e}"
            );
        }
    }
    out
}

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let net = match Network::from_network2_json(&text) {
        Ok(net) => net,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };

    // Shapes.
    let sizes = net.sizes().to_vec();
    assert!(
        sizes.len() >= 2 && sizes.iter().all(|&s| s > 0),
        "{sizes:?}"
    );
    assert_eq!(net.layers(), sizes.len() - 1);
    assert_eq!(
        (net.inputs(), net.outputs()),
        (sizes[0], sizes[sizes.len() - 1])
    );
    for l in 0..net.layers() {
        let w = net.weights(l);
        assert_eq!((w.rows(), w.cols()), (sizes[l + 1], sizes[l]));
        let row_major = net.weights_row_major(l);
        assert_eq!(row_major.len(), sizes[l] * sizes[l + 1]);
        assert!(row_major.iter().all(|v| v.is_finite()));
        assert_eq!(net.biases(l).len(), sizes[l + 1]);
        assert!(net.biases(l).iter().all(|v| v.is_finite()));
    }

    // The reference pass is network2's, all sigmoid; networks with other activations are
    // only run (outputs finite or NaN, right length, softmax rows summing to 1), not compared.
    let json = net.to_network2_json();
    let all_sigmoid = net.is_all_sigmoid();
    assert_eq!(all_sigmoid, !json.contains("\"activations\""));

    // The network runs, on a dense input and on a sparse one.
    let n = net.inputs();
    let dense: Vec<f32> = (0..n).map(|i| ((i % 7) as f32 + 1.0) / 8.0).collect();
    let sparse: Vec<f32> = (0..n)
        .map(|i| if i % 5 == 2 { 0.75 } else { 0.0 })
        .collect();
    check_feedforward(&net, &dense, all_sigmoid);
    check_feedforward(&net, &sparse, all_sigmoid);
    assert!(net.feedforward(&dense[..n - 1]).is_err());

    let mut both = dense.clone();
    both.extend_from_slice(&sparse);
    let mut outputs = vec![f32::NAN; 2 * net.outputs()];
    net.feedforward_batch(&both, 2, &mut outputs)
        .expect("a batch of the right shape");
    let mut classes = [u32::MAX; 2];
    net.predict_batch(&both, 2, &mut classes)
        .expect("a batch of the right shape");
    for (row, &class) in outputs.chunks_exact(net.outputs()).zip(&classes) {
        let class = class as usize;
        assert!(class < net.outputs());
        if row.iter().all(|v| !v.is_nan()) {
            let best = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(row.iter().position(|&v| v == best), Some(class));
        }
    }

    // The round trip.
    let again = Network::from_network2_json(&json)
        .unwrap_or_else(|e| panic!("the saved network does not load: {e}\n{json}"));
    assert_eq!(again.sizes(), net.sizes());
    assert_eq!(again.cost(), net.cost());
    for l in 0..net.layers() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&again.weights_row_major(l)),
            bits(&net.weights_row_major(l)),
            "weights[{l}]"
        );
        assert_eq!(bits(again.biases(l)), bits(net.biases(l)), "biases[{l}]");
    }
    assert_eq!(again, net);
    assert_eq!(again.to_network2_json(), json);
});
