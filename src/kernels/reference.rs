//! Plain scalar versions of the fused kernels: the specification that every ISA's kernels are
//! tested against (`tests/kernels.rs`), written for obviousness rather than speed.
//!
//! * Transcendental functions are computed in f64 (as network2.py does) and rounded once:
//!   the vector kernels must stay within a few ulp of these.
//! * The purely arithmetic kernels are written with exactly the f32 operations, in exactly
//!   the order, that the vector kernels use: those must match bit for bit.
//!
//! The functions panic on inconsistent lengths (they are test oracles, not API).

/// `e^x`, correctly rounded up to f64's own error.
pub fn exp(x: f32) -> f32 {
    f64::from(x).exp() as f32
}

/// `ln x`, correctly rounded up to f64's own error.
pub fn ln(x: f32) -> f32 {
    f64::from(x).ln() as f32
}

/// network2's `sigmoid`, `1 / (1 + e^-z)` in f64, rounded to f32.
pub fn sigmoid(z: f32) -> f32 {
    sigmoid_f64(z) as f32
}

/// network2's `sigmoid` in f64, exactly as numpy computes it.
pub fn sigmoid_f64(z: f32) -> f64 {
    1.0 / (1.0 + (-f64::from(z)).exp())
}

/// `z[r][c] += bias[c]` (one f32 addition), then `a = sigmoid(z)`.
pub fn bias_sigmoid(z: &mut [f32], a: &mut [f32], bias: &[f32]) {
    assert_eq!(z.len(), a.len());
    if bias.is_empty() {
        assert!(z.is_empty());
        return;
    }
    assert_eq!(z.len() % bias.len(), 0);
    for (i, (z, a)) in z.iter_mut().zip(a.iter_mut()).enumerate() {
        *z += bias[i % bias.len()];
        *a = sigmoid(*z);
    }
}

/// `tanh z` in f64, rounded to f32.
pub fn tanh(z: f32) -> f32 {
    f64::from(z).tanh() as f32
}

/// `max(z, 0)`, keeping NaN and `-0.0`.
pub fn relu(z: f32) -> f32 {
    if z < 0.0 { 0.0 } else { z }
}

/// `z[r][c] += bias[c]` (one f32 addition), then `a = f(z)` with `f` the named activation:
/// `"sigmoid"`, `"tanh"`, `"relu"` (element-wise, f64 where transcendental) or `"softmax"`
/// (each row's `e^z / sum e^z` in f64 with the row's maximum subtracted, rounded once).
pub fn bias_activation(f: &str, z: &mut [f32], a: &mut [f32], bias: &[f32]) {
    assert_eq!(z.len(), a.len());
    if bias.is_empty() {
        assert!(z.is_empty());
        return;
    }
    let cols = bias.len();
    assert_eq!(z.len() % cols, 0);
    for (i, z) in z.iter_mut().enumerate() {
        *z += bias[i % cols];
    }
    match f {
        "sigmoid" => z
            .iter()
            .zip(a.iter_mut())
            .for_each(|(&z, a)| *a = sigmoid(z)),
        "tanh" => z.iter().zip(a.iter_mut()).for_each(|(&z, a)| *a = tanh(z)),
        "relu" => z.iter().zip(a.iter_mut()).for_each(|(&z, a)| *a = relu(z)),
        "softmax" => {
            for (zr, ar) in z.chunks_exact(cols).zip(a.chunks_exact_mut(cols)) {
                let max = zr
                    .iter()
                    .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
                let sum: f64 = zr.iter().map(|&v| (f64::from(v) - max).exp()).sum();
                for (a, &v) in ar.iter_mut().zip(zr) {
                    *a = ((f64::from(v) - max).exp() / sum) as f32;
                }
            }
        }
        other => panic!("unknown activation {other:?}"),
    }
}

/// `delta *= f'(a)` from the activation's value: `a * (1 - a)` (`"sigmoid"`),
/// `(1 - a) * (1 + a)` (`"tanh"`), `1` if `a > 0` else `0` (`"relu"`), in the vector
/// kernels' f32 operations.
pub fn activation_prime_mul(f: &str, delta: &mut [f32], a: &[f32]) {
    assert_eq!(delta.len(), a.len());
    for (d, &a) in delta.iter_mut().zip(a) {
        *d *= match f {
            "sigmoid" => a * (1.0 - a),
            "tanh" => (1.0 - a) * (1.0 + a),
            "relu" => {
                if a > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            other => panic!("no element-wise derivative for {other:?}"),
        };
    }
}

/// Per-row `-ln softmax(z)[label]` in f64 (`ln sum e^(z - max) + max - z_y`), written to
/// `row_costs`; returns their sum.
pub fn log_likelihood_cost(z: &[f32], labels: &[u8], row_costs: &mut [f64]) -> f64 {
    assert_eq!(labels.len(), row_costs.len());
    let cols = columns(z.len(), labels);
    let mut total = 0.0;
    for (r, out) in row_costs.iter_mut().enumerate() {
        let row = &z[r * cols..(r + 1) * cols];
        let max = row
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
        *out = sum.ln() + (max - f64::from(row[usize::from(labels[r])]));
        total += *out;
    }
    total
}

/// `delta *= a * (1 - a)`.
pub fn sigmoid_prime_mul(delta: &mut [f32], a: &[f32]) {
    assert_eq!(delta.len(), a.len());
    for (d, &a) in delta.iter_mut().zip(a) {
        *d *= a * (1.0 - a);
    }
}

/// The one-hot target of element `i` of a batch with `cols` columns.
fn target(labels: &[u8], cols: usize, i: usize) -> f32 {
    if usize::from(labels[i / cols]) == i % cols {
        1.0
    } else {
        0.0
    }
}

/// The number of columns of a batch with one label per row.
fn columns(len: usize, labels: &[u8]) -> usize {
    if labels.is_empty() {
        assert_eq!(len, 0);
        return 0;
    }
    assert_eq!(len % labels.len(), 0);
    let cols = len / labels.len();
    assert!(
        labels.iter().all(|&l| usize::from(l) < cols),
        "label out of range"
    );
    cols
}

/// `delta = a - y`.
pub fn cross_entropy_delta(a: &[f32], labels: &[u8], delta: &mut [f32]) {
    assert_eq!(a.len(), delta.len());
    let cols = columns(a.len(), labels);
    for (i, d) in delta.iter_mut().enumerate() {
        *d = a[i] - target(labels, cols, i);
    }
}

/// `delta = (a - y) * (a * (1 - a))`.
pub fn quadratic_delta(a: &[f32], labels: &[u8], delta: &mut [f32]) {
    assert_eq!(a.len(), delta.len());
    let cols = columns(a.len(), labels);
    for (i, d) in delta.iter_mut().enumerate() {
        let a = a[i];
        *d = (a - target(labels, cols, i)) * (a * (1.0 - a));
    }
}

/// numpy's `nan_to_num`: NaN to 0, `±inf` to `±f64::MAX`.
pub fn nan_to_num(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else if x.is_infinite() {
        f64::MAX.copysign(x)
    } else {
        x
    }
}

/// network2's `CrossEntropyCost.fn` term for one output, taken literally in f64:
/// `nan_to_num(-y ln a - (1 - y) ln(1 - a))` with `a = sigmoid(z)` in f64. Near saturation
/// (`|z| > 15` or so) this loses digits to `1 - a`; see [`cross_entropy_term`].
pub fn cross_entropy_term_literal(z: f32, y: f32) -> f64 {
    let a = sigmoid_f64(z);
    let y = f64::from(y);
    nan_to_num(-y * a.ln() - (1.0 - y) * (1.0 - a).ln())
}

/// network2's cross-entropy term for one output as it is meant: identical to
/// [`cross_entropy_term_literal`] where network2's f64 `a` is exactly 0 or 1 (giving
/// `f64::MAX` or 0 through `nan_to_num`), and elsewhere the exact value, `softplus(z)` for
/// `y = 0` and `softplus(-z)` for `y = 1`, in f64.
pub fn cross_entropy_term(z: f32, y: f32) -> f64 {
    let a = sigmoid_f64(z);
    if a == 0.0 || a == 1.0 {
        return cross_entropy_term_literal(z, y);
    }
    let s = if y == 1.0 {
        -f64::from(z)
    } else {
        f64::from(z)
    };
    nan_to_num(s.max(0.0) + (-s.abs()).exp().ln_1p())
}

/// Per-row [`cross_entropy_term`] sums, in column order, written to `row_costs`; returns
/// their sum in row order.
pub fn cross_entropy_cost(z: &[f32], labels: &[u8], row_costs: &mut [f64]) -> f64 {
    assert_eq!(labels.len(), row_costs.len());
    let cols = columns(z.len(), labels);
    let mut total = 0.0;
    for (r, out) in row_costs.iter_mut().enumerate() {
        let mut sum = 0.0;
        for c in 0..cols {
            sum += cross_entropy_term(z[r * cols + c], target(labels, cols, r * cols + c));
        }
        *out = sum;
        total += sum;
    }
    total
}

/// Per-row `0.5 * ||a - y||^2` in f64, written to `row_costs`; returns their sum.
pub fn quadratic_cost(a: &[f32], labels: &[u8], row_costs: &mut [f64]) -> f64 {
    assert_eq!(labels.len(), row_costs.len());
    let cols = columns(a.len(), labels);
    let mut total = 0.0;
    for (r, out) in row_costs.iter_mut().enumerate() {
        let mut sum = 0.0;
        for c in 0..cols {
            let i = r * cols + c;
            let d = f64::from(a[i]) - f64::from(target(labels, cols, i));
            sum += d * d;
        }
        *out = 0.5 * sum;
        total += *out;
    }
    total
}

/// `w = (decay * w) - (step * grad)`.
pub fn sgd_l2_update(w: &mut [f32], grad: &[f32], decay: f32, step: f32) {
    assert_eq!(w.len(), grad.len());
    for (w, &g) in w.iter_mut().zip(grad) {
        *w = decay * *w - step * g;
    }
}

/// `b = b - (step * grad)`.
pub fn sgd_update(b: &mut [f32], grad: &[f32], step: f32) {
    assert_eq!(b.len(), grad.len());
    for (b, &g) in b.iter_mut().zip(grad) {
        *b -= step * g;
    }
}

/// `out[c] = 0.0 + m[0][c] + m[1][c] + ...` in row order.
pub fn column_sums(m: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    assert_eq!(m.len(), rows * cols);
    assert_eq!(out.len(), cols);
    for (c, out) in out.iter_mut().enumerate() {
        let mut sum = 0.0f32;
        for r in 0..rows {
            sum += m[r * cols + c];
        }
        *out = sum;
    }
}

/// [`Kernels::param_update`](super::Kernels::param_update), one value at a time, in the same
/// f32 operations and order (Adam's subnormal results flushed to zero as there).
pub fn param_update(
    step: &super::ParamStep,
    w: &mut [f32],
    grad: &[f32],
    state1: &mut [f32],
    state2: &mut [f32],
) {
    use super::Optimizer;
    assert_eq!(w.len(), grad.len());
    for i in 0..w.len() {
        let x = w[i];
        let sgn = if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            0.0
        };
        let g = grad[i] * step.grad_scale + x * step.l2 + sgn * step.l1;
        match step.optimizer {
            Optimizer::Sgd => w[i] = x - step.eta * g,
            Optimizer::Momentum { mu, nesterov } => {
                let v = mu * state1[i] - step.eta * g;
                w[i] = if nesterov {
                    x + v + mu * (v - state1[i])
                } else {
                    x + v
                };
                state1[i] = v;
            }
            Optimizer::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                let t = i32::try_from(step.t).unwrap();
                let c1 = (1.0 / (1.0 - f64::from(beta1).powi(t))) as f32;
                let c2 = (1.0 / (1.0 - f64::from(beta2).powi(t)).sqrt()) as f32;
                let flush = |x: f32| {
                    if x.is_subnormal() {
                        0.0f32.copysign(x)
                    } else {
                        x
                    }
                };
                let m = flush(beta1 * state1[i] + (1.0 - beta1) * g);
                let v = flush(beta2 * state2[i] + (1.0 - beta2) * (g * g));
                w[i] = flush(x - step.eta * (m * c1) / (v.sqrt() * c2 + epsilon));
                state1[i] = m;
                state2[i] = v;
            }
        }
    }
}
