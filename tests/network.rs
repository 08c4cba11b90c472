//! The network2 model and trainer: gradients against finite differences, one update against
//! an independent float64 fixture, the JSON format, thread-count invariance, and bad input.

mod common;

use simdnet::network::{
    Activation, Cost, EpochReport, Examples, FloatExamples, Init, Monitor, Network, Observer,
    Optimizer, SgdConfig, Trainer, sgd,
};
use simdnet::{Error, Isa};

/// The ISAs this machine can run; fails if CI expects one that is missing.
fn isas() -> Vec<Isa> {
    let available = Isa::available();
    for isa in common::expected_isas() {
        assert!(
            available.contains(&isa),
            "CI expects {isa} but this machine lacks it"
        );
    }
    available
}

/// A deterministic pseudo-random stream (xorshift), independent of the crate's RNG.
struct Stream(u64);

impl Stream {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ---------------------------------------------------------------------------------------
// An independent float64 implementation of network2's forward pass and costs.

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Output activations and weighted inputs of `net` for one input, in f64, weights given
/// explicitly (so finite differences can perturb them).
fn forward64(
    sizes: &[usize],
    acts: &[Activation],
    w: &[Vec<f64>],
    b: &[Vec<f64>],
    x: &[f64],
) -> Vec<f64> {
    let mut a = x.to_vec();
    for l in 0..sizes.len() - 1 {
        let (n_in, n_out) = (sizes[l], sizes[l + 1]);
        let z: Vec<f64> = (0..n_out)
            .map(|j| (0..n_in).map(|k| w[l][j * n_in + k] * a[k]).sum::<f64>() + b[l][j])
            .collect();
        a = match acts[l] {
            Activation::Sigmoid => z.iter().map(|&z| sigmoid(z)).collect(),
            Activation::Tanh => z.iter().map(|&z| z.tanh()).collect(),
            Activation::Relu => z.iter().map(|&z| z.max(0.0)).collect(),
            Activation::Softmax => {
                let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = z.iter().map(|&z| (z - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                e.iter().map(|&e| e / sum).collect()
            }
        };
    }
    a
}

fn nan_to_num(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else if v == f64::INFINITY {
        f64::MAX
    } else {
        v
    }
}

fn cost64(cost: Cost, a: &[f64], label: usize) -> f64 {
    a.iter()
        .enumerate()
        .map(|(j, &aj)| {
            let y = if j == label { 1.0 } else { 0.0 };
            match cost {
                Cost::CrossEntropy => nan_to_num(-y * aj.ln() - (1.0 - y) * (1.0 - aj).ln()),
                Cost::Quadratic => 0.5 * (aj - y) * (aj - y),
                Cost::LogLikelihood => -y * aj.ln(),
            }
        })
        .sum()
}

/// network2's `total_cost(data, lmbda)` in f64.
#[allow(clippy::too_many_arguments)]
fn total_cost64(
    sizes: &[usize],
    acts: &[Activation],
    w: &[Vec<f64>],
    b: &[Vec<f64>],
    cost: Cost,
    inputs: &[f32],
    labels: &[u8],
    lambda: f64,
) -> f64 {
    let n = labels.len() as f64;
    let mut c = 0.0;
    for (x, &y) in inputs.chunks_exact(sizes[0]).zip(labels) {
        let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        c += cost64(cost, &forward64(sizes, acts, w, b, &x), usize::from(y)) / n;
    }
    let norm: f64 = w.iter().flatten().map(|v| v * v).sum();
    c + 0.5 * (lambda / n) * norm
}

fn params64(net: &Network) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let w = (0..net.layers())
        .map(|l| {
            net.weights_row_major(l)
                .iter()
                .map(|&v| f64::from(v))
                .collect()
        })
        .collect();
    let b = (0..net.layers())
        .map(|l| net.biases(l).iter().map(|&v| f64::from(v)).collect())
        .collect();
    (w, b)
}

fn random_batch(s: &mut Stream, rows: usize, inputs: usize, classes: usize) -> (Vec<f32>, Vec<u8>) {
    let x = (0..rows * inputs).map(|_| s.unit() as f32).collect();
    let y = (0..rows)
        .map(|_| (s.next_u64() % classes as u64) as u8)
        .collect();
    (x, y)
}

/// One update with the batch as the whole training set (`n = m`) is `theta' = theta - eta *
/// grad(total_cost over the batch)` for every weight and bias: with network2's rule,
/// `(w - w') / eta = (lambda / n) w + (1/m) sum grad C_x`, which is the gradient of
/// `total_cost(batch, lambda)`. So the trainer's gradient can be read off an update and
/// compared with central differences of an f64 implementation of that cost.
#[test]
fn gradient_matches_finite_differences_for_each_cost_and_isa() {
    let sizes = [6, 5, 4, 3];
    // Every hidden activation with every output activation and cost that go together.
    let outputs = [
        (Activation::Sigmoid, Cost::CrossEntropy),
        (Activation::Sigmoid, Cost::Quadratic),
        (Activation::Tanh, Cost::Quadratic),
        (Activation::Relu, Cost::Quadratic),
        (Activation::Softmax, Cost::LogLikelihood),
    ];
    let hidden = [Activation::Sigmoid, Activation::Tanh, Activation::Relu];
    let combos = hidden
        .iter()
        .flat_map(|&h| outputs.iter().map(move |&(o, c)| ([h, h, o], c)));
    for isa in isas() {
        for (acts, cost) in combos.clone() {
            // Dense inputs take the GEMM path through the first layer; inputs 70% zero (as
            // MNIST's pixels are) take the sparse path.
            for (lambda, zeros) in [(0.0f32, false), (2.0, false), (0.0, true), (2.0, true)] {
                let mut s = Stream(0x1234_5678 ^ lambda.to_bits() as u64);
                let net =
                    Network::with_activations(&sizes, &acts, cost, Init::Default, 11).unwrap();
                let (mut x, y) = random_batch(&mut s, 7, sizes[0], sizes[3]);
                if zeros {
                    x.iter_mut()
                        .for_each(|v| *v = if s.unit() < 0.7 { 0.0 } else { *v });
                }
                let eta = 0.125f32; // a power of 2: (w - w') / eta adds no rounding
                let mut after = net.clone();
                let mut trainer = Trainer::with_isa(&net, 7, isa).unwrap();
                trainer.step(&mut after, &x, &y, eta, lambda, 7).unwrap();

                let (w, b) = params64(&net);
                let before_w: Vec<Vec<f32>> = (0..net.layers())
                    .map(|l| net.weights_row_major(l))
                    .collect();
                let after_w: Vec<Vec<f32>> = (0..net.layers())
                    .map(|l| after.weights_row_major(l))
                    .collect();
                let f = |w: &[Vec<f64>], b: &[Vec<f64>]| {
                    total_cost64(&sizes, &acts, w, b, cost, &x, &y, f64::from(lambda))
                };
                let h = 1e-6;
                let mut worst = 0.0f64;
                for l in 0..net.layers() {
                    for i in 0..w[l].len() {
                        let (mut wp, mut wm) = (w.clone(), w.clone());
                        wp[l][i] += h;
                        wm[l][i] -= h;
                        let numeric = (f(&wp, &b) - f(&wm, &b)) / (2.0 * h);
                        let trained =
                            (f64::from(before_w[l][i]) - f64::from(after_w[l][i])) / f64::from(eta);
                        let err = (numeric - trained).abs() / (numeric.abs() + 1e-3);
                        worst = worst.max(err);
                        assert!(
                            err < 2e-3,
                            "{isa} {acts:?} {cost} lambda {lambda}: dC/dw[{l}][{i}] numeric {numeric:e}, from the update {trained:e}"
                        );
                    }
                    for j in 0..b[l].len() {
                        let (mut bp, mut bm) = (b.clone(), b.clone());
                        bp[l][j] += h;
                        bm[l][j] -= h;
                        let numeric = (f(&w, &bp) - f(&w, &bm)) / (2.0 * h);
                        let trained = (f64::from(net.biases(l)[j]) - f64::from(after.biases(l)[j]))
                            / f64::from(eta);
                        let err = (numeric - trained).abs() / (numeric.abs() + 1e-3);
                        worst = worst.max(err);
                        assert!(
                            err < 2e-3,
                            "{isa} {acts:?} {cost} lambda {lambda}: dC/db[{l}][{j}] numeric {numeric:e}, from the update {trained:e}"
                        );
                    }
                }
                assert!(worst > 0.0, "the check compared nothing");
            }
        }
    }
}

/// `evaluate` is network2's `accuracy` and `total_cost`, checked against the f64 version.
#[test]
fn evaluate_matches_float64_total_cost_and_accuracy() {
    let sizes = [8, 6, 4];
    let mut s = Stream(99);
    for (acts, cost) in [
        ([Activation::Sigmoid; 2], Cost::CrossEntropy),
        ([Activation::Sigmoid; 2], Cost::Quadratic),
        ([Activation::Tanh; 2], Cost::Quadratic),
        ([Activation::Relu, Activation::Softmax], Cost::LogLikelihood),
    ] {
        let net = Network::with_activations(&sizes, &acts, cost, Init::Large, 5).unwrap();
        // 1,234 examples: several evaluation tasks of 500 and a ragged one.
        let (x, y) = random_batch(&mut s, 1234, sizes[0], sizes[2]);
        let data = FloatExamples::new(&x, &y, sizes[0]).unwrap();
        let e = net.evaluate(&data, 3.0).unwrap();
        let (w, b) = params64(&net);
        let expect = total_cost64(&sizes, net.activations(), &w, &b, cost, &x, &y, 3.0);
        assert!(
            (e.cost - expect).abs() <= 1e-5 * expect.abs(),
            "{cost}: cost {} vs f64 {expect}",
            e.cost
        );
        let correct = x
            .chunks_exact(sizes[0])
            .zip(&y)
            .filter(|&(xi, &yi)| {
                let xi: Vec<f64> = xi.iter().map(|&v| f64::from(v)).collect();
                let a = forward64(&sizes, net.activations(), &w, &b, &xi);
                let best = (0..a.len()).fold(0, |m, j| if a[j] > a[m] { j } else { m });
                best == usize::from(yi)
            })
            .count();
        // f32 vs f64 may flip an exact near-tie; allow one example.
        assert!(
            e.correct.abs_diff(correct) <= 1,
            "{cost}: {} correct vs {correct} in f64",
            e.correct
        );
        assert_eq!(e.total, 1234);
    }
}

// ---------------------------------------------------------------------------------------
// The float64 fixture.

#[derive(serde::Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    eta: f64,
    lambda: f64,
    n: usize,
    network: serde_json::Value,
    inputs: Vec<Vec<f64>>,
    labels: Vec<u8>,
    total_cost: f64,
    accuracy: usize,
    outputs: Vec<Vec<f64>>,
    after: serde_json::Value,
}

/// A small fixed network and mini-batch, updated once, against the numbers of an
/// independent pure-Python float64 implementation of network2's rule
/// (`scripts/network2_f64.py`, see `tests/fixtures/README.md`).
#[test]
fn one_update_matches_the_float64_fixture() {
    let text = include_str!("fixtures/network2_parity.json");
    let fixture: Fixture = serde_json::from_str(text).unwrap();
    assert!(fixture.cases.len() >= 4);
    for isa in isas() {
        for case in &fixture.cases {
            let net = Network::from_network2_json(&case.network.to_string()).unwrap();
            let expect = Network::from_network2_json(&case.after.to_string()).unwrap();
            let x: Vec<f32> = case.inputs.iter().flatten().map(|&v| v as f32).collect();
            // The inputs were chosen exactly representable in f32.
            assert!(
                case.inputs
                    .iter()
                    .flatten()
                    .all(|&v| f64::from(v as f32) == v)
            );
            let data = FloatExamples::new(&x, &case.labels, net.inputs()).unwrap();
            let e = net.evaluate(&data, case.lambda as f32).unwrap();
            assert_eq!(e.correct, case.accuracy, "{isa} {}: accuracy", case.name);
            assert!(
                (e.cost - case.total_cost).abs() <= 1e-5 * case.total_cost.abs().max(1.0),
                "{isa} {}: total cost {} vs {}",
                case.name,
                e.cost,
                case.total_cost
            );
            for (i, row) in case.outputs.iter().enumerate() {
                let out = net
                    .feedforward(&x[i * net.inputs()..(i + 1) * net.inputs()])
                    .unwrap();
                for (j, (&got, &want)) in out.iter().zip(row).enumerate() {
                    assert!(
                        (f64::from(got) - want).abs() <= 2e-6,
                        "{isa} {}: output [{i}][{j}] {got} vs {want}",
                        case.name
                    );
                }
            }

            let mut after = net.clone();
            let mut trainer = Trainer::with_isa(&net, case.labels.len(), isa).unwrap();
            trainer
                .step(
                    &mut after,
                    &x,
                    &case.labels,
                    case.eta as f32,
                    case.lambda as f32,
                    case.n,
                )
                .unwrap();
            let mut worst = 0.0f64;
            for l in 0..net.layers() {
                let (got_w, want_w) = (after.weights_row_major(l), expect.weights_row_major(l));
                let pairs = got_w
                    .iter()
                    .zip(&want_w)
                    .chain(after.biases(l).iter().zip(expect.biases(l)));
                for (&got, &want) in pairs {
                    let err =
                        (f64::from(got) - f64::from(want)).abs() / f64::from(want).abs().max(1.0);
                    worst = worst.max(err);
                }
            }
            // f32 arithmetic (a few ulp per operation) against exact f64.
            assert!(
                worst <= 1e-5,
                "{isa} {}: one update differs from float64 by {worst:e}",
                case.name
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// network2's JSON format.

#[test]
fn json_round_trip_is_exact_and_shaped_like_network2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.json");
    let net = Network::new(&[5, 4, 3], Cost::Quadratic, Init::Default, 3).unwrap();
    net.save(&path).unwrap();
    let back = Network::load(&path).unwrap();
    assert_eq!(back, net);
    for l in 0..net.layers() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&back.weights_row_major(l)),
            bits(&net.weights_row_major(l))
        );
    }

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("{\"sizes\": [5, 4, 3], \"weights\": [[["),
        "{text:.60}"
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["cost"], "QuadraticCost");
    assert_eq!(v["weights"][0].as_array().unwrap().len(), 4);
    assert_eq!(v["weights"][0][0].as_array().unwrap().len(), 5);
    assert_eq!(v["biases"][1].as_array().unwrap().len(), 3);
    assert_eq!(v["biases"][1][2].as_array().unwrap().len(), 1);
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn activations_and_log_likelihood_round_trip_through_json() {
    let plain = Network::new(&[3, 2], Cost::CrossEntropy, Init::Default, 1).unwrap();
    assert!(!plain.to_network2_json().contains("activations"));

    let net = Network::with_activations(
        &[5, 4, 4, 3],
        &[Activation::Relu, Activation::Tanh, Activation::Softmax],
        Cost::LogLikelihood,
        Init::Default,
        9,
    )
    .unwrap();
    let text = net.to_network2_json();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["cost"], "LogLikelihoodCost");
    assert_eq!(
        v["activations"],
        serde_json::json!(["relu", "tanh", "softmax"])
    );
    let back = Network::from_network2_json(&text).unwrap();
    assert_eq!(back, net);
    let x = [0.1, 0.0, 0.7, 0.3, 0.9];
    assert_eq!(back.feedforward(&x).unwrap(), net.feedforward(&x).unwrap());
}

#[test]
fn activation_and_cost_pairings_are_checked() {
    let make = |acts: &[Activation], cost| {
        Network::with_activations(&[4, 3, 2], acts, cost, Init::Default, 0)
    };
    use Activation::{Relu, Sigmoid, Softmax, Tanh};
    for (acts, cost, needle) in [
        (
            &[Sigmoid, Softmax][..],
            Cost::CrossEntropy,
            "goes with the log-likelihood",
        ),
        (
            &[Sigmoid, Softmax][..],
            Cost::Quadratic,
            "goes with the log-likelihood",
        ),
        (
            &[Sigmoid, Sigmoid][..],
            Cost::LogLikelihood,
            "needs a softmax output",
        ),
        (
            &[Relu, Tanh][..],
            Cost::CrossEntropy,
            "needs a sigmoid output",
        ),
        (
            &[Softmax, Softmax][..],
            Cost::LogLikelihood,
            "layer 1 is hidden",
        ),
        (&[Relu][..], Cost::Quadratic, "needs 2 activations"),
    ] {
        let err = make(acts, cost).unwrap_err();
        assert!(
            matches!(err, Error::BadOption { .. }) && err.to_string().contains(needle),
            "{acts:?} {cost}: {err}"
        );
    }
    for (acts, cost) in [
        (&[Tanh, Softmax][..], Cost::LogLikelihood),
        (&[Relu, Relu][..], Cost::Quadratic),
        (&[Tanh, Sigmoid][..], Cost::CrossEntropy),
    ] {
        make(acts, cost).unwrap();
    }
    // network2's constructor keeps sigmoids, so log-likelihood is refused there.
    assert!(Network::new(&[4, 2], Cost::LogLikelihood, Init::Default, 0).is_err());
    // set_cost keeps the pairing.
    let mut net = make(&[Relu, Softmax], Cost::LogLikelihood).unwrap();
    assert!(net.set_cost(Cost::CrossEntropy).is_err());
    assert_eq!(net.cost(), Cost::LogLikelihood);
}

#[test]
fn a_file_written_by_network2_loads() {
    // As network2's json.dump writes it (float64 reprs, ints where numpy had them).
    let text = r#"{"sizes": [2, 2, 1], "weights": [[[0.1, -0.2], [0.30000000000000004, 4]], [[1.5, -2.25]]], "biases": [[[0.5], [-0.5]], [[0.0]]], "cost": "CrossEntropyCost"}"#;
    let net = Network::from_network2_json(text).unwrap();
    assert_eq!(net.sizes(), [2, 2, 1]);
    assert_eq!(net.cost(), Cost::CrossEntropy);
    assert_eq!(net.weights_row_major(0), [0.1, -0.2, 0.3, 4.0]);
    assert_eq!(net.biases(0), [0.5, -0.5]);
    let out = net.feedforward(&[1.0, 0.0]).unwrap();
    let h = [
        1.0 / (1.0 + (-0.6f64).exp()),
        1.0 / (1.0 + (-(0.3f64 - 0.5)).exp()),
    ];
    let expect = 1.0 / (1.0 + (-(1.5 * h[0] - 2.25 * h[1])).exp());
    assert!((f64::from(out[0]) - expect).abs() < 1e-6);
}

#[test]
fn malformed_model_files_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"sizes": [2, 1], "weights": [[[0.1, 0.2]]], "biases": [[[0.5]]], "cost": "QuadraticCost"}"#;
    let cases = [
        (
            "truncated",
            r#"{"sizes": [2, 1], "weights": [[[0.1, "#,
            "malformed",
        ),
        ("not json", "hello", "malformed"),
        (
            "no cost",
            r#"{"sizes": [2, 1], "weights": [[[0.1, 0.2]]], "biases": [[[0.5]]]}"#,
            "cost",
        ),
        (
            "bad cost",
            &good.replace("QuadraticCost", "FooCost"),
            "unknown cost",
        ),
        (
            "log-likelihood on sigmoid",
            &good.replace("QuadraticCost", "LogLikelihoodCost"),
            "needs a softmax output layer",
        ),
        (
            "unknown activation",
            &good.replace(r#""cost""#, r#""activations": ["swish"], "cost""#),
            "activations[0] is \"swish\"",
        ),
        (
            "activation count",
            &good.replace(r#""cost""#, r#""activations": ["relu", "tanh"], "cost""#),
            "needs 1 activations",
        ),
        (
            "softmax with quadratic",
            &good.replace(r#""cost""#, r#""activations": ["softmax"], "cost""#),
            "goes with the log-likelihood cost",
        ),
        (
            "one layer",
            r#"{"sizes": [2], "weights": [], "biases": [], "cost": "QuadraticCost"}"#,
            "at least 2 layers",
        ),
        (
            "zero layer",
            r#"{"sizes": [2, 0], "weights": [[]], "biases": [[]], "cost": "QuadraticCost"}"#,
            "0 neurons",
        ),
        (
            "short row",
            &good.replace("[0.1, 0.2]", "[0.1]"),
            "weights[0][0] has 1 values",
        ),
        (
            "extra row",
            &good.replace("[[0.1, 0.2]]", "[[0.1, 0.2], [0.3, 0.4]]"),
            "weights[0] has 2 rows",
        ),
        (
            "wide bias",
            &good.replace("[[0.5]]", "[[0.5, 0.6]]"),
            "one-element list",
        ),
        (
            "missing layer",
            &good.replace("[2, 1]", "[2, 1, 1]"),
            "need 2 weights arrays",
        ),
        (
            "too large",
            &good.replace("0.2", "1e300"),
            "not a finite f32",
        ),
        ("nan", &good.replace("0.2", "NaN"), "malformed"),
        ("string", &good.replace("0.2", "\"0.2\""), "malformed"),
    ];
    for (name, text, needle) in cases {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, text).unwrap();
        let err = Network::load(&path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Model { .. }), "{name}: {err:?}");
        assert!(msg.contains(&*path.to_string_lossy()), "{name}: {msg}");
        assert!(msg.contains(needle), "{name}: {msg:?} lacks {needle:?}");
    }
    let missing = dir.path().join("missing.json");
    let err = Network::load(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { .. }) && err.to_string().contains("missing.json"));
}

#[test]
fn save_into_a_missing_directory_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/net.json");
    let net = Network::new(&[2, 1], Cost::Quadratic, Init::Default, 0).unwrap();
    let err = net.save(&path).unwrap_err();
    assert!(err.to_string().contains("net.json"), "{err}");
}

#[test]
fn save_replaces_an_existing_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.json");
    let big = Network::new(&[50, 40, 10], Cost::CrossEntropy, Init::Default, 1).unwrap();
    let small = Network::new(&[2, 1], Cost::Quadratic, Init::Default, 2).unwrap();
    big.save(&path).unwrap();
    small.save(&path).unwrap();
    assert_eq!(Network::load(&path).unwrap(), small);
}

// ---------------------------------------------------------------------------------------
// Training.

/// Synthetic 4-class data that a small network can learn: the class is the brightest
/// quarter of the input.
fn quadrant_data(s: &mut Stream, rows: usize, inputs: usize) -> (Vec<f32>, Vec<u8>) {
    let mut x = Vec::with_capacity(rows * inputs);
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let class = (s.next_u64() % 4) as usize;
        for i in 0..inputs {
            let bright = i * 4 / inputs == class;
            x.push((s.unit() * 0.5 + if bright { 0.5 } else { 0.0 }) as f32);
        }
        y.push(class as u8);
    }
    (x, y)
}

#[test]
fn sgd_learns_and_reports_every_monitored_series() {
    let mut s = Stream(2024);
    let (x, y) = quadrant_data(&mut s, 600, 16);
    let (vx, vy) = quadrant_data(&mut s, 200, 16);
    let train = FloatExamples::new(&x, &y, 16).unwrap();
    let eval = FloatExamples::new(&vx, &vy, 16).unwrap();
    let mut net = Network::new(&[16, 10, 4], Cost::CrossEntropy, Init::Default, 1).unwrap();
    let config = SgdConfig {
        epochs: 5,
        mini_batch_size: 7, // 600 = 85 * 7 + 5: a ragged last batch
        eta: 0.5,
        lambda: 1.0,
        monitor: Monitor::all(),
        ..SgdConfig::default()
    };
    #[derive(Default)]
    struct Record(Vec<EpochReport>, usize);
    impl Observer for Record {
        fn progress(&mut self, _: usize, done: usize, total: usize) {
            assert!(done <= total);
            self.1 += 1;
        }
        fn epoch(&mut self, report: &EpochReport) {
            self.0.push(*report);
        }
    }
    let mut record = Record::default();
    let summary = sgd(&mut net, &train, Some(&eval), &config, &mut record).unwrap();
    assert_eq!(summary.epochs, record.0);
    assert_eq!(summary.epochs.len(), 5);
    assert!(record.1 >= 5);
    let last = summary.epochs[4];
    let acc = last.evaluation_accuracy.unwrap();
    assert_eq!(acc.total, 200);
    assert!(
        acc.fraction() > 0.9,
        "evaluation accuracy {}",
        acc.fraction()
    );
    assert!(last.training_accuracy.unwrap().fraction() > 0.9);
    let first_cost = summary.epochs[0].training_cost.unwrap();
    assert!(last.training_cost.unwrap() < first_cost);
    assert!(last.evaluation_cost.unwrap().is_finite());
    assert!(
        summary
            .epochs
            .iter()
            .all(|r| r.seconds >= 0.0 && r.epoch >= 1)
    );
    let (best_epoch, best) = summary.best_evaluation().unwrap();
    assert!(best.correct >= acc.correct && (1..=5).contains(&best_epoch));
}

/// With `shuffle: false`, an epoch is `step` over consecutive mini-batches in file order,
/// the last one holding the remainder, with `n` the training-set size.
#[test]
fn unshuffled_epoch_is_consecutive_steps() {
    let mut s = Stream(77);
    let (x, y) = quadrant_data(&mut s, 23, 8);
    let data = FloatExamples::new(&x, &y, 8).unwrap();
    let start = Network::new(&[8, 5, 4], Cost::Quadratic, Init::Default, 4).unwrap();
    let config = SgdConfig {
        epochs: 1,
        mini_batch_size: 5,
        eta: 3.0,
        lambda: 0.5,
        shuffle: false,
        monitor: Monitor::default(),
        ..SgdConfig::default()
    };
    let mut trained = start.clone();
    sgd(&mut trained, &data, None, &config, &mut ()).unwrap();

    let mut manual = start.clone();
    let mut trainer = Trainer::new(&manual, 5).unwrap();
    for b in 0..5 {
        let rows = if b < 4 { 5 } else { 3 };
        let r = b * 5..b * 5 + rows;
        trainer
            .step(&mut manual, &x[r.start * 8..r.end * 8], &y[r], 3.0, 0.5, 23)
            .unwrap();
    }
    assert_eq!(trained, manual);
}

/// The trainer lists the nonzero inputs of a sparse training set once and takes each
/// mini-batch from the lists; a batch too dense for the lists' buffers is gathered instead.
/// Either way an unshuffled epoch is still exactly `step` over consecutive mini-batches, for
/// any pool size (the lists are made in a segment per thread or two). The second shape's
/// steps are large enough for the trainer to run the two halves of the first layer on two
/// threads when it has them; `step` runs both on the calling thread.
#[test]
fn unshuffled_epoch_on_listed_sparse_inputs_is_consecutive_steps() {
    for (inputs, hidden, mb) in [(40, 9, 7), (301, 40, 10)] {
        unshuffled_listed_epoch_is_consecutive_steps(inputs, hidden, mb);
    }
}

fn unshuffled_listed_epoch_is_consecutive_steps(inputs: usize, hidden: usize, mb: usize) {
    let n = 700;
    let mut s = Stream(31);
    let mut x: Vec<f32> = (0..n * inputs)
        .map(|_| if s.unit() < 0.8 { 0.0 } else { s.unit() as f32 })
        .collect();
    // Examples 21..26 are dense: their batch (21..28 at 7, 20..30 at 10) has more than the
    // half of its inputs the trainer's buffer of entries holds, while their chunk of the
    // listing stays sparse enough.
    x[21 * inputs..26 * inputs].fill(0.75);
    let y: Vec<u8> = (0..n).map(|_| (s.next_u64() % 3) as u8).collect();
    let data = FloatExamples::new(&x, &y, inputs).unwrap();
    let start = Network::new(&[inputs, hidden, 3], Cost::CrossEntropy, Init::Default, 8).unwrap();
    let config = SgdConfig {
        epochs: 2,
        mini_batch_size: mb,
        eta: 0.5,
        lambda: 2.0,
        shuffle: false,
        monitor: Monitor::default(),
        ..SgdConfig::default()
    };
    let mut manual = start.clone();
    let mut trainer = Trainer::new(&manual, mb).unwrap();
    for _epoch in 0..2 {
        for b in 0..n / mb {
            let r = b * mb..(b + 1) * mb;
            trainer
                .step(
                    &mut manual,
                    &x[r.start * inputs..r.end * inputs],
                    &y[r],
                    0.5,
                    2.0,
                    n,
                )
                .unwrap();
        }
    }
    for threads in [1, 2, 5] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut trained = start.clone();
        pool.install(|| sgd(&mut trained, &data, None, &config, &mut ()))
            .unwrap();
        assert_eq!(trained, manual, "{threads} threads, {inputs} inputs");
    }
}

fn train_in_pool(threads: usize, net: &Network, x: &[f32], y: &[u8], mb: usize) -> Network {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let data = FloatExamples::new(x, y, net.inputs()).unwrap();
    let mut net = net.clone();
    let config = SgdConfig {
        epochs: 2,
        mini_batch_size: mb,
        eta: 0.1,
        lambda: 5.0,
        seed: 9,
        monitor: Monitor::all(),
        ..SgdConfig::default()
    };
    let summary = pool
        .install(|| sgd(&mut net, &data, Some(&data), &config, &mut ()))
        .unwrap();
    assert_eq!(summary.epochs.len(), 2);
    net
}

/// The trained network is bitwise the same for any pool size, including when the products
/// are large enough for the GEMM engine to split them across threads (mini-batches of 500
/// on [784, 100, 10]: 78 MFLOP per product).
#[test]
fn training_is_bitwise_identical_for_any_thread_count() {
    let mut s = Stream(5);
    // Dense inputs (GEMMs split across the pool), and inputs 80% zero whose sparse first
    // layer's halves run on two threads (on a spinning pair), with a last batch shorter
    // than the others.
    for (sizes, rows, mb, zeros) in [
        ([20, 12, 4], 300, 10, false),
        ([784, 100, 10], 1000, 500, false),
        ([784, 100, 10], 1000, 100, true),
        ([784, 30, 10], 997, 10, true),
    ] {
        let (mut x, y) = random_batch(&mut s, rows, sizes[0], sizes[2]);
        if zeros {
            x.iter_mut()
                .for_each(|v| *v = if s.unit() < 0.8 { 0.0 } else { *v });
        }
        let net = Network::new(&sizes, Cost::CrossEntropy, Init::Default, 8).unwrap();
        let one = train_in_pool(1, &net, &x, &y, mb);
        assert_ne!(one, net);
        for threads in [2, 3] {
            assert_eq!(
                train_in_pool(threads, &net, &x, &y, mb),
                one,
                "{threads} threads"
            );
        }
    }
}

#[test]
fn same_seed_same_network_different_seed_different() {
    let a = Network::new(&[10, 5, 2], Cost::CrossEntropy, Init::Default, 1).unwrap();
    let b = Network::new(&[10, 5, 2], Cost::CrossEntropy, Init::Default, 1).unwrap();
    let c = Network::new(&[10, 5, 2], Cost::CrossEntropy, Init::Default, 2).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

/// Weights are N(0, 1/n_in) with the default initializer and N(0, 1) with the large one;
/// biases N(0, 1) with both.
#[test]
fn initializers_have_network2_variances() {
    let var = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / v.len() as f64;
    let d = Network::new(&[400, 300, 10], Cost::CrossEntropy, Init::Default, 3).unwrap();
    let l = Network::new(&[400, 300, 10], Cost::CrossEntropy, Init::Large, 3).unwrap();
    // 120,000 samples: the variance's standard error is about 0.4%.
    assert!(
        (var(&d.weights_row_major(0)) * 400.0 - 1.0).abs() < 0.03,
        "{}",
        var(&d.weights_row_major(0))
    );
    assert!((var(&d.weights_row_major(1)) * 300.0 - 1.0).abs() < 0.1);
    assert!((var(&l.weights_row_major(0)) - 1.0).abs() < 0.03);
    assert!((var(d.biases(0)) - 1.0).abs() < 0.25);
}

#[test]
fn early_stopping_stops_after_n_epochs_without_improvement() {
    let mut s = Stream(31);
    let (x, y) = quadrant_data(&mut s, 200, 8);
    let data = FloatExamples::new(&x, &y, 8).unwrap();
    let mut net = Network::new(&[8, 6, 4], Cost::CrossEntropy, Init::Default, 2).unwrap();
    let config = SgdConfig {
        epochs: 200,
        mini_batch_size: 10,
        eta: 0.5,
        lambda: 0.0,
        early_stopping: Some(3),
        monitor: Monitor::default(),
        ..SgdConfig::default()
    };
    let summary = sgd(&mut net, &data, Some(&data), &config, &mut ()).unwrap();
    assert!(summary.stopped_early);
    let n = summary.epochs.len();
    assert!(n < 200);
    // Not monitored, so not reported; but the rule ran on the evaluation accuracy.
    assert!(
        summary
            .epochs
            .iter()
            .all(|r| r.evaluation_accuracy.is_none())
    );
}

#[test]
fn early_stopping_without_evaluation_data_is_an_error() {
    let (x, y) = (vec![0.5; 8], vec![0u8; 2]);
    let data = FloatExamples::new(&x, &y, 4).unwrap();
    let mut net = Network::new(&[4, 2], Cost::CrossEntropy, Init::Default, 0).unwrap();
    let config = SgdConfig {
        early_stopping: Some(2),
        ..SgdConfig::default()
    };
    let err = sgd(&mut net, &data, None, &config, &mut ()).unwrap_err();
    assert!(err.to_string().contains("early stopping"), "{err}");
}

#[test]
fn divergence_is_reported_not_returned_as_garbage() {
    let mut s = Stream(3);
    let (x, y) = random_batch(&mut s, 40, 6, 3);
    let data = FloatExamples::new(&x, &y, 6).unwrap();
    let mut net = Network::new(&[6, 4, 3], Cost::Quadratic, Init::Default, 0).unwrap();
    let config = SgdConfig {
        epochs: 3,
        eta: 1e38,
        lambda: 1e6,
        monitor: Monitor::default(),
        ..SgdConfig::default()
    };
    let err = sgd(&mut net, &data, None, &config, &mut ()).unwrap_err();
    assert!(matches!(err, Error::Diverged { epoch: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("diverged"));
}

#[test]
fn bad_hyperparameters_are_rejected_by_name() {
    let (x, y) = (vec![0.5; 8], vec![0u8; 2]);
    let data = FloatExamples::new(&x, &y, 4).unwrap();
    let start = Network::new(&[4, 2], Cost::CrossEntropy, Init::Default, 0).unwrap();
    let base = SgdConfig::default();
    let cases = [
        (SgdConfig { eta: 0.0, ..base }, "eta"),
        (SgdConfig { eta: -1.0, ..base }, "eta"),
        (
            SgdConfig {
                eta: f32::NAN,
                ..base
            },
            "eta",
        ),
        (
            SgdConfig {
                lambda: -0.5,
                ..base
            },
            "lambda",
        ),
        (
            SgdConfig {
                lambda: f32::INFINITY,
                ..base
            },
            "lambda",
        ),
        (
            SgdConfig {
                mini_batch_size: 0,
                ..base
            },
            "mini-batch size",
        ),
    ];
    for (config, name) in cases {
        let mut net = start.clone();
        let err = sgd(&mut net, &data, None, &config, &mut ()).unwrap_err();
        assert!(
            matches!(err, Error::BadOption { option, .. } if option == name),
            "{name}: {err:?}"
        );
        assert_eq!(net, start, "{name}: the network changed");
    }
    for sizes in [&[][..], &[784][..], &[784, 0, 10][..]] {
        let err = Network::new(sizes, Cost::CrossEntropy, Init::Default, 0).unwrap_err();
        assert!(
            matches!(
                err,
                Error::BadOption {
                    option: "sizes",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn data_that_does_not_fit_the_network_is_rejected() {
    let (x, y) = (vec![0.5; 8], vec![0u8, 3]);
    let data = FloatExamples::new(&x, &y, 4).unwrap();
    let mut net = Network::new(&[4, 3, 3], Cost::CrossEntropy, Init::Default, 0).unwrap();
    let err = sgd(&mut net, &data, None, &SgdConfig::default(), &mut ()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LabelOutOfRange {
                label: 3,
                index: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let mut wide = Network::new(&[5, 3, 4], Cost::CrossEntropy, Init::Default, 0).unwrap();
    let err = sgd(&mut wide, &data, None, &SgdConfig::default(), &mut ()).unwrap_err();
    assert!(err.to_string().contains("5 neurons"), "{err}");
    assert!(data.check_input_size(4).is_ok());

    let mut trainer = Trainer::new(&net, 2).unwrap();
    let before = net.clone();
    let err = trainer
        .step(&mut net, &x, &[0, 7], 0.5, 0.0, 2)
        .unwrap_err();
    assert!(err.to_string().contains("label 7"), "{err}");
    assert_eq!(net, before);
    assert!(trainer.step(&mut net, &x, &[0, 1, 2], 0.5, 0.0, 3).is_err());
    assert!(
        trainer
            .step(&mut net, &x[..4], &[0, 1], 0.5, 0.0, 2)
            .is_err()
    );
}

/// A file saved here loads the way network2.py's `load` reads it: checked by the float64
/// reference script (`check-load`), whose feedforward of an all-0.5 input must agree with
/// ours. Skipped with a notice where there is no `python3`.
#[test]
fn a_saved_file_loads_in_the_python_reference() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.json");
    let net = Network::new(&[12, 7, 5], Cost::CrossEntropy, Init::Default, 21).unwrap();
    net.save(&path).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/network2_f64.py");
    let out = match std::process::Command::new("python3")
        .args([script, "check-load"])
        .arg(&path)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "NOTICE: python3 not runnable ({e}); skipping"
            );
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check-load failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = stdout
        .split("output: ")
        .nth(1)
        .expect("an output list")
        .trim();
    let theirs: Vec<f64> = serde_json::from_str(list).unwrap();
    let ours = net.feedforward(&[0.5; 12]).unwrap();
    assert_eq!(theirs.len(), ours.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert!((f64::from(*a) - b).abs() < 1e-6, "{ours:?} vs {theirs:?}");
    }
}

/// `feedforward_batch` over several 500-row chunks (the last partial), with inputs dense,
/// 80% zero (the sparse first layer), and runs of dense and sparse rows that do not line up
/// with the first layer's 32-row blocks (some blocks sparse, some dense, some mixed): within
/// f32 rounding of an f64 forward pass, the same bits for 1 and 2 threads and as
/// `feedforward` row by row within rounding, and wrong buffer lengths rejected. The hidden
/// layer of 110 neurons takes the widest column groups of the sparse product (14 vectors of
/// 8 on AVX2 make two groups).
#[test]
fn feedforward_batch_matches_float64_for_dense_and_sparse_inputs() {
    let sizes = [50, 110, 7];
    let net = Network::new(&sizes, Cost::CrossEntropy, Init::Default, 5).unwrap();
    let (w, b) = params64(&net);
    let rows = 1_234;
    for (mode, zeros) in [(0u64, false), (1, true), (2, true)] {
        let mut s = Stream(77 + mode);
        let (mut x, _) = random_batch(&mut s, rows, sizes[0], sizes[2]);
        if zeros {
            for (r, row) in x.chunks_mut(sizes[0]).enumerate() {
                if mode == 2 && (r / 45) % 2 == 1 {
                    continue; // a dense run
                }
                row.iter_mut()
                    .for_each(|v| *v = if s.unit() < 0.8 { 0.0 } else { *v });
            }
        }
        let run = |threads: usize| {
            let mut out = vec![f32::NAN; rows * sizes[2]];
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| net.feedforward_batch(&x, rows, &mut out))
                .unwrap();
            out
        };
        let out = run(1);
        assert_eq!(
            out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            run(2).iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "zeros {zeros}: 1 and 2 threads differ"
        );
        for r in 0..rows {
            let xr = &x[r * sizes[0]..(r + 1) * sizes[0]];
            let x64: Vec<f64> = xr.iter().map(|&v| f64::from(v)).collect();
            let want = forward64(&sizes, net.activations(), &w, &b, &x64);
            let single = net.feedforward(xr).unwrap();
            for j in 0..sizes[2] {
                let got = out[r * sizes[2] + j];
                assert!(
                    (f64::from(got) - want[j]).abs() < 1e-5,
                    "zeros {zeros} row {r} output {j}: {got} vs {}",
                    want[j]
                );
                assert!((got - single[j]).abs() < 1e-5);
            }
        }
    }
    let mut out = vec![0.0; 7];
    assert!(matches!(
        net.feedforward_batch(&[0.0; 49], 1, &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        net.feedforward_batch(&[0.0; 50], 1, &mut out[..6]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(net.feedforward_batch(&[], 0, &mut []).is_ok());
}

/// The optimizers and L1 through a whole `Trainer::step`, against the plain SGD step on the
/// same batch: momentum's first step (zero velocity) and an SGD step agree, Nesterov's first
/// step is `(1 + mu)` times as long, L1 shifts each weight by `eta lambda1 / n sgn(w)`, and
/// Adam's first step moves every parameter with a clear gradient by about `eta` against it.
#[test]
fn optimizers_and_l1_follow_their_rules_through_a_step() {
    let sizes = [6, 5, 3];
    let (eta, lambda, n) = (0.25f32, 2.0f32, 40usize);
    for isa in isas() {
        for zeros in [false, true] {
            let mut s = Stream(77);
            let net = Network::new(&sizes, Cost::CrossEntropy, Init::Default, 4).unwrap();
            let (mut x, y) = random_batch(&mut s, 8, sizes[0], sizes[2]);
            if zeros {
                x.iter_mut()
                    .for_each(|v| *v = if s.unit() < 0.7 { 0.0 } else { *v });
            }
            let run = |optimizer: Optimizer, lambda1: f32| {
                let mut after = net.clone();
                let mut trainer = Trainer::with_isa(&net, 8, isa)
                    .unwrap()
                    .with_optimizer(optimizer)
                    .unwrap()
                    .with_l1(lambda1)
                    .unwrap();
                trainer.step(&mut after, &x, &y, eta, lambda, n).unwrap();
                after
            };
            let params = |net: &Network| -> Vec<f32> {
                (0..net.layers())
                    .flat_map(|l| {
                        let mut v = net.weights_row_major(l);
                        v.extend_from_slice(net.biases(l));
                        v
                    })
                    .collect()
            };
            let before = params(&net);
            let sgd = params(&run(Optimizer::Sgd, 0.0));
            let close = |a: f32, b: f32, what: &str| {
                assert!(
                    (a - b).abs() <= 2e-6 + 1e-5 * b.abs(),
                    "{isa} {what}: {a} vs {b}"
                );
            };
            let momentum = params(&run(
                Optimizer::Momentum {
                    mu: 0.5,
                    nesterov: false,
                },
                0.0,
            ));
            let nesterov = params(&run(
                Optimizer::Momentum {
                    mu: 0.5,
                    nesterov: true,
                },
                0.0,
            ));
            for i in 0..before.len() {
                let step = sgd[i] - before[i];
                close(momentum[i], sgd[i], "momentum's first step");
                close(nesterov[i] - before[i], 1.5 * step, "Nesterov's first step");
            }
            // L1 (weights only): the SGD step plus -eta lambda1 / n sgn(w).
            let l1 = params(&run(Optimizer::Sgd, 3.0));
            let shift = eta * 3.0 / n as f32;
            let mut i = 0;
            for l in 0..net.layers() {
                for _ in 0..sizes[l] * sizes[l + 1] {
                    let sgn = before[i].signum();
                    close(l1[i], sgd[i] - shift * sgn, "L1 step");
                    i += 1;
                }
                for _ in 0..sizes[l + 1] {
                    close(l1[i], sgd[i], "biases have no L1");
                    i += 1;
                }
            }
            // Adam: m_hat = g and v_hat = g^2 after one step, so each parameter moves by
            // eta g / (|g| + 1e-8): eta, unless the gradient is tiny.
            let adam = params(&run(Optimizer::ADAM, 0.0));
            let mut moved = 0;
            for i in 0..before.len() {
                let g = (before[i] - sgd[i]) / eta;
                if g.abs() > 1e-4 {
                    close(before[i] - adam[i], eta * g.signum(), "Adam's first step");
                    moved += 1;
                }
            }
            assert!(
                moved > before.len() / 2,
                "{isa}: only {moved} parameters checked"
            );
        }
    }
}

/// A step that fails (here on a label that is not an output) changes neither the network nor
/// the optimizer's state: the next good step is Adam's first, as on a fresh trainer.
#[test]
fn a_failed_step_leaves_the_optimizer_state_alone() {
    let net = Network::new(&[4, 3, 2], Cost::CrossEntropy, Init::Default, 2).unwrap();
    let x = [0.1, 0.5, 0.0, 0.9, 0.3, 0.0, 0.7, 0.2];
    let fresh = |net: &Network| {
        Trainer::new(net, 2)
            .unwrap()
            .with_optimizer(Optimizer::ADAM)
            .unwrap()
    };
    let (mut a, mut b) = (net.clone(), net.clone());
    let mut failing = fresh(&net);
    assert!(failing.step(&mut a, &x, &[0, 7], 0.01, 1.0, 10).is_err());
    assert_eq!(a, net, "the failed step changed the network");
    failing.step(&mut a, &x, &[0, 1], 0.01, 1.0, 10).unwrap();
    fresh(&net)
        .step(&mut b, &x, &[0, 1], 0.01, 1.0, 10)
        .unwrap();
    assert_eq!(a, b);
}
