//! Inverted dropout on the hidden layers: the kernel against its scalar reference on every
//! ISA, the masks' reproducibility and statistics, the trainer's gradient with a fixed mask
//! against finite differences, evaluation without dropout, thread-count invariance, and the
//! `train --dropout` flag.

mod common;

use std::fs;
use std::process::{Command, Output};

use simdnet::data::mnist::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use simdnet::kernels::Kernels;
use simdnet::kernels::dropout::{Dropout, reference};
use simdnet::network::{
    Activation, Cost, FloatExamples, Init, Monitor, Network, SgdConfig, Trainer, sgd,
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

/// A deterministic pseudo-random stream (xorshift), independent of the crate's hash.
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

fn random_batch(s: &mut Stream, rows: usize, inputs: usize, classes: usize) -> (Vec<f32>, Vec<u8>) {
    let x = (0..rows * inputs).map(|_| s.unit() as f32).collect();
    let y = (0..rows)
        .map(|_| (s.next_u64() % classes as u64) as u8)
        .collect();
    (x, y)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

// ---------------------------------------------------------------------------------------
// (1) The kernel against the scalar reference, bit for bit, on every ISA.

#[test]
fn kernel_matches_reference_bit_for_bit_on_every_isa() {
    let mut s = Stream(31);
    for p in [0.0f32, 0.1, 0.5, 0.9] {
        let d = Dropout::new(p, 1234).unwrap();
        for (rows, cols) in [(1, 1), (3, 7), (5, 16), (4, 33), (10, 100)] {
            let a0: Vec<f32> = (0..rows * cols)
                .map(|_| (s.unit() * 4.0 - 2.0) as f32)
                .collect();
            let (mut a_ref, mut u_ref, mut m_ref) =
                (a0.clone(), vec![0.0; a0.len()], vec![0.0; a0.len()]);
            reference::dropout(&d, 17, 2, cols, &mut a_ref, &mut u_ref, &mut m_ref);
            // The reference is the public mask function, element by element.
            for (i, &m) in m_ref.iter().enumerate() {
                assert_eq!(m.to_bits(), d.mask(17, 2, i / cols, i % cols).to_bits());
            }
            for isa in isas() {
                let k = Kernels::for_isa(isa).unwrap();
                let (mut a, mut u, mut m) = (a0.clone(), vec![0.0; a0.len()], vec![0.0; a0.len()]);
                k.dropout(&d, 17, 2, cols, &mut a, &mut u, &mut m).unwrap();
                let what = format!("{isa} p {p} {rows}x{cols}");
                assert_eq!(bits(&m), bits(&m_ref), "{what}: the mask");
                assert_eq!(bits(&a), bits(&a_ref), "{what}: the activations");
                assert_eq!(bits(&u), bits(&a0), "{what}: the undropped copy");
                for f in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
                    let delta0: Vec<f32> = (0..a0.len())
                        .map(|_| (s.unit() * 2.0 - 1.0) as f32)
                        .collect();
                    let (mut got, mut want) = (delta0.clone(), delta0);
                    k.dropout_prime_mul(f, &mut got, &u, &m).unwrap();
                    reference::dropout_prime_mul(f.name(), &mut want, &u_ref, &m_ref);
                    assert_eq!(bits(&got), bits(&want), "{what}: {f} backward");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// (2) The masks: reproducible, varying with every counter, the right keep fraction, the
// exact scale.

fn mask_row(d: &Dropout, step: u64, layer: usize, row: usize, n: usize) -> Vec<f32> {
    (0..n).map(|u| d.mask(step, layer, row, u)).collect()
}

#[test]
fn masks_are_reproducible_and_vary_with_every_counter() {
    let d = Dropout::new(0.5, 7).unwrap();
    let base = mask_row(&d, 3, 1, 4, 1000);
    assert_eq!(
        base,
        mask_row(&Dropout::new(0.5, 7).unwrap(), 3, 1, 4, 1000)
    );
    let others = [
        mask_row(&Dropout::new(0.5, 8).unwrap(), 3, 1, 4, 1000),
        mask_row(&d, 4, 1, 4, 1000),
        mask_row(&d, 3, 2, 4, 1000),
        mask_row(&d, 3, 1, 5, 1000),
    ];
    for (i, other) in others.iter().enumerate() {
        let differ = base.iter().zip(other).filter(|(a, b)| a != b).count();
        // Independent halves differ in about 500 of 1000 places.
        assert!(
            (350..650).contains(&differ),
            "variant {i}: {differ} of 1000 differ"
        );
    }
}

#[test]
fn keep_fraction_is_close_to_one_minus_p() {
    // Deterministic: a fixed seed and a fixed count of 2^20 units over 4 steps, 2 layers,
    // 128 rows of 1024 units. The standard deviation of the fraction is at most 0.0005; the
    // bound is 10 of them.
    for p in [0.1f32, 0.25, 0.5, 0.8] {
        let d = Dropout::new(p, 2024).unwrap();
        let mut kept = 0usize;
        let mut total = 0usize;
        for step in 0..4 {
            for layer in 1..3 {
                for row in 0..128 {
                    for unit in 0..1024 {
                        kept += usize::from(d.keep(step, layer, row, unit));
                        total += 1;
                    }
                }
            }
        }
        let fraction = kept as f64 / total as f64;
        assert!(
            (fraction - (1.0 - f64::from(p))).abs() < 0.005,
            "p {p}: kept {fraction}"
        );
    }
    let all = Dropout::new(0.0, 1).unwrap();
    assert!((0..10_000).all(|u| all.mask(0, 1, 0, u) == 1.0));
}

#[test]
fn kept_values_are_scaled_exactly_and_dropped_values_are_zero() {
    let mut s = Stream(5);
    for p in [0.2f32, 0.5, 0.7] {
        let d = Dropout::new(p, 3).unwrap();
        assert_eq!(d.scale(), (1.0 / (1.0 - f64::from(p))) as f32);
        let (rows, cols) = (20, 50);
        let a0: Vec<f32> = (0..rows * cols).map(|_| s.unit() as f32 + 0.1).collect();
        for isa in isas() {
            let k = Kernels::for_isa(isa).unwrap();
            let (mut a, mut u, mut m) = (a0.clone(), vec![0.0; a0.len()], vec![0.0; a0.len()]);
            k.dropout(&d, 0, 1, cols, &mut a, &mut u, &mut m).unwrap();
            let mut dropped = 0;
            for i in 0..a.len() {
                if d.keep(0, 1, i / cols, i % cols) {
                    assert_eq!(a[i], a0[i] * d.scale(), "{isa} p {p} [{i}]");
                    assert_eq!(m[i], d.scale());
                } else {
                    assert_eq!(a[i], 0.0, "{isa} p {p} [{i}]");
                    assert_eq!(m[i], 0.0);
                    dropped += 1;
                }
            }
            assert!(dropped > 0 && dropped < a.len());
        }
    }
}

#[test]
fn bad_rates_are_refused_naming_the_option() {
    let net = Network::new(&[4, 3, 2], Cost::CrossEntropy, Init::Default, 1).unwrap();
    for p in [1.0f32, 1.5, -0.1, f32::NAN, f32::INFINITY] {
        for err in [
            Dropout::new(p, 0).unwrap_err(),
            Trainer::new(&net, 2)
                .unwrap()
                .with_dropout(p, 0)
                .unwrap_err(),
            SgdConfig {
                dropout: p,
                ..SgdConfig::default()
            }
            .validate()
            .unwrap_err(),
        ] {
            match err {
                Error::BadOption { option, .. } => assert_eq!(option, "dropout", "p {p}"),
                other => panic!("p {p}: {other:?}"),
            }
        }
    }
    for p in [0.0f32, 0.5, 0.999] {
        assert!(Trainer::new(&net, 2).unwrap().with_dropout(p, 0).is_ok());
    }
}

// ---------------------------------------------------------------------------------------
// (3) The gradient with dropout on, against finite differences of the f64 network with the
// same fixed mask.

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The output of the f64 network for example `row`, each hidden layer's activations
/// multiplied by the trainer's mask of step `step`.
#[allow(clippy::too_many_arguments)]
fn forward64(
    sizes: &[usize],
    acts: &[Activation],
    w: &[Vec<f64>],
    b: &[Vec<f64>],
    x: &[f64],
    mask: Option<(&Dropout, u64, usize)>,
) -> Vec<f64> {
    let layers = sizes.len() - 1;
    let mut a = x.to_vec();
    for l in 0..layers {
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
        if let Some((d, step, row)) = mask
            && l + 1 < layers
        {
            for (j, v) in a.iter_mut().enumerate() {
                *v *= f64::from(d.mask(step, l + 1, row, j));
            }
        }
    }
    a
}

fn cost64(cost: Cost, a: &[f64], label: usize) -> f64 {
    a.iter()
        .enumerate()
        .map(|(j, &aj)| {
            let y = if j == label { 1.0 } else { 0.0 };
            match cost {
                Cost::CrossEntropy => -y * aj.ln() - (1.0 - y) * (1.0 - aj).ln(),
                Cost::Quadratic => 0.5 * (aj - y) * (aj - y),
                Cost::LogLikelihood => -y * aj.ln(),
            }
        })
        .sum()
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

/// With `n = m` and `lambda = 0`, `(theta - theta') / eta` is the gradient of the batch's
/// mean cost; with dropout, of the network with the step's masks applied. Checked on two
/// consecutive steps (masks of step 0, then of step 1), dense and sparse inputs, every
/// hidden activation, every ISA.
#[test]
fn gradient_with_dropout_matches_finite_differences_of_the_masked_network() {
    let sizes = [6, 5, 4, 3];
    let (rows, p, seed) = (7, 0.4f32, 99);
    let d = Dropout::new(p, seed).unwrap();
    for isa in isas() {
        for hidden in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
            for (out, cost) in [
                (Activation::Sigmoid, Cost::CrossEntropy),
                (Activation::Softmax, Cost::LogLikelihood),
            ] {
                for zeros in [false, true] {
                    let acts = [hidden, hidden, out];
                    let mut s = Stream(0xabcd ^ u64::from(zeros));
                    let mut net =
                        Network::with_activations(&sizes, &acts, cost, Init::Default, 11).unwrap();
                    let mut trainer = Trainer::with_isa(&net, rows, isa)
                        .unwrap()
                        .with_dropout(p, seed)
                        .unwrap();
                    assert_eq!(trainer.dropout(), Some(d));
                    for step in 0..2u64 {
                        assert_eq!(trainer.dropout_step(), step);
                        let (mut x, y) = random_batch(&mut s, rows, sizes[0], sizes[3]);
                        if zeros {
                            x.iter_mut()
                                .for_each(|v| *v = if s.unit() < 0.7 { 0.0 } else { *v });
                        }
                        let eta = 0.125f32;
                        let mut after = net.clone();
                        trainer.step(&mut after, &x, &y, eta, 0.0, rows).unwrap();
                        let (w, b) = params64(&net);
                        let f = |w: &[Vec<f64>], b: &[Vec<f64>]| {
                            let mut c = 0.0;
                            for (r, (xr, &yr)) in x.chunks_exact(sizes[0]).zip(&y).enumerate() {
                                let xr: Vec<f64> = xr.iter().map(|&v| f64::from(v)).collect();
                                let a = forward64(&sizes, &acts, w, b, &xr, Some((&d, step, r)));
                                c += cost64(cost, &a, usize::from(yr)) / rows as f64;
                            }
                            c
                        };
                        let h = 1e-6;
                        let what = format!("{isa} {acts:?} sparse {zeros} step {step}");
                        let mut compared = 0;
                        for l in 0..net.layers() {
                            let (before_w, after_w) =
                                (net.weights_row_major(l), after.weights_row_major(l));
                            for i in 0..w[l].len() {
                                let (mut wp, mut wm) = (w.clone(), w.clone());
                                wp[l][i] += h;
                                wm[l][i] -= h;
                                let numeric = (f(&wp, &b) - f(&wm, &b)) / (2.0 * h);
                                let trained = (f64::from(before_w[i]) - f64::from(after_w[i]))
                                    / f64::from(eta);
                                let err = (numeric - trained).abs() / (numeric.abs() + 1e-3);
                                assert!(
                                    err < 2e-3,
                                    "{what}: dC/dw[{l}][{i}] numeric {numeric:e}, trained {trained:e}"
                                );
                                compared += usize::from(numeric != 0.0);
                            }
                            for j in 0..b[l].len() {
                                let (mut bp, mut bm) = (b.clone(), b.clone());
                                bp[l][j] += h;
                                bm[l][j] -= h;
                                let numeric = (f(&w, &bp) - f(&w, &bm)) / (2.0 * h);
                                let trained = (f64::from(net.biases(l)[j])
                                    - f64::from(after.biases(l)[j]))
                                    / f64::from(eta);
                                let err = (numeric - trained).abs() / (numeric.abs() + 1e-3);
                                assert!(
                                    err < 2e-3,
                                    "{what}: dC/db[{l}][{j}] numeric {numeric:e}, trained {trained:e}"
                                );
                            }
                        }
                        assert!(compared > 0, "{what}: compared nothing");
                        // The masked gradient is not the unmasked one: dropout took effect.
                        let unmasked = {
                            let mut c = 0.0;
                            for (xr, &yr) in x.chunks_exact(sizes[0]).zip(&y) {
                                let xr: Vec<f64> = xr.iter().map(|&v| f64::from(v)).collect();
                                let a = forward64(&sizes, &acts, &w, &b, &xr, None);
                                c += cost64(cost, &a, usize::from(yr)) / rows as f64;
                            }
                            c
                        };
                        assert_ne!(unmasked, f(&w, &b), "{what}");
                        net = after;
                    }
                }
            }
        }
    }
}

/// p = 0 is network2: bitwise the same steps as a trainer without dropout.
#[test]
fn rate_zero_changes_nothing() {
    let mut s = Stream(8);
    let net = Network::new(&[10, 8, 6, 3], Cost::CrossEntropy, Init::Default, 2).unwrap();
    let (x, y) = random_batch(&mut s, 40, 10, 3);
    let (mut a, mut b) = (net.clone(), net.clone());
    let mut plain = Trainer::new(&net, 10).unwrap();
    let mut zero = Trainer::new(&net, 10)
        .unwrap()
        .with_dropout(0.0, 5)
        .unwrap();
    assert_eq!(zero.dropout(), None);
    for i in 0..4 {
        let r = i * 10..i * 10 + 10;
        plain
            .step(
                &mut a,
                &x[r.start * 10..r.end * 10],
                &y[r.clone()],
                0.5,
                1.0,
                40,
            )
            .unwrap();
        zero.step(&mut b, &x[r.start * 10..r.end * 10], &y[r], 0.5, 1.0, 40)
            .unwrap();
    }
    assert_eq!(a, b);
    // And p > 0 does change the result.
    let mut c = net.clone();
    let mut on = Trainer::new(&net, 10)
        .unwrap()
        .with_dropout(0.5, 5)
        .unwrap();
    on.step(&mut c, &x[..100], &y[..10], 0.5, 1.0, 40).unwrap();
    let mut a1 = net.clone();
    Trainer::new(&net, 10)
        .unwrap()
        .step(&mut a1, &x[..100], &y[..10], 0.5, 1.0, 40)
        .unwrap();
    assert_ne!(c, a1);
}

// ---------------------------------------------------------------------------------------
// (4) Evaluation never drops.

#[test]
fn evaluation_and_feedforward_are_unaffected_by_dropout() {
    let mut s = Stream(77);
    let sizes = [8, 12, 4];
    let (x, y) = random_batch(&mut s, 300, sizes[0], sizes[2]);
    let data = FloatExamples::new(&x, &y, sizes[0]).unwrap();
    let mut net = Network::new(&sizes, Cost::CrossEntropy, Init::Default, 3).unwrap();
    let config = SgdConfig {
        epochs: 2,
        mini_batch_size: 10,
        eta: 0.5,
        lambda: 1.0,
        dropout: 0.5,
        monitor: Monitor::all(),
        ..SgdConfig::default()
    };
    let summary = sgd(&mut net, &data, Some(&data), &config, &mut ()).unwrap();
    let last = summary.epochs.last().unwrap();
    // The epoch's reports are evaluations of the trained network, which drop nothing: the
    // same as evaluating it again, and as the f64 network without masks.
    let e = net.evaluate(&data, 1.0).unwrap();
    assert_eq!(last.evaluation_cost, Some(e.cost));
    assert_eq!(last.evaluation_accuracy.unwrap().correct, e.correct);
    assert_eq!(last.training_cost, Some(e.cost));
    let (w, b) = params64(&net);
    for (xr, _) in x.chunks_exact(sizes[0]).zip(&y).take(50) {
        let got = net.feedforward(xr).unwrap();
        let xr64: Vec<f64> = xr.iter().map(|&v| f64::from(v)).collect();
        let want = forward64(&sizes, net.activations(), &w, &b, &xr64, None);
        for (g, w) in got.iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() < 1e-5, "{g} vs {w}");
        }
        assert_eq!(bits(&got), bits(&net.feedforward(xr).unwrap()));
    }
}

// ---------------------------------------------------------------------------------------
// (5) Thread-count invariance.

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
        dropout: 0.3,
        ..SgdConfig::default()
    };
    pool.install(|| sgd(&mut net, &data, Some(&data), &config, &mut ()))
        .unwrap();
    net
}

#[test]
fn dropout_training_is_bitwise_identical_for_any_thread_count() {
    let mut s = Stream(12);
    // Small products, and products large enough to be split across the pool (mini-batches
    // of 500 on [784, 100, 10]), dense and sparse.
    for (sizes, rows, mb, zeros) in [
        (vec![20, 12, 8, 4], 300, 10, false),
        (vec![784, 100, 10], 1000, 500, false),
        (vec![784, 100, 10], 1000, 100, true),
    ] {
        let (mut x, y) = random_batch(&mut s, rows, sizes[0], *sizes.last().unwrap());
        if zeros {
            x.iter_mut()
                .for_each(|v| *v = if s.unit() < 0.8 { 0.0 } else { *v });
        }
        let net = Network::new(&sizes, Cost::CrossEntropy, Init::Default, 8).unwrap();
        let one = train_in_pool(1, &net, &x, &y, mb);
        assert_ne!(one, net);
        assert_eq!(train_in_pool(2, &net, &x, &y, mb), one, "{sizes:?}");
    }
}

// ---------------------------------------------------------------------------------------
// (6) The `train --dropout` flag.

/// A temporary MNIST directory of 120 training and 30 test 4x4 images (the labelled quadrant
/// bright).
fn fixture() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("mnist");
    fs::create_dir(&data).unwrap();
    let mut s = Stream(3);
    let mut images = |count: usize| {
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..count {
            let label = (s.next_u64() % 4) as usize;
            for r in 0..4 {
                for c in 0..4 {
                    let bright = (r / 2) * 2 + c / 2 == label;
                    let noise = (s.next_u64() % 96) as u8;
                    pixels.push(if bright { 160 + noise } else { noise });
                }
            }
            labels.push(label as u8);
        }
        (pixels, labels)
    };
    let (tp, tl) = images(120);
    let (ep, el) = images(30);
    fs::write(data.join(TRAIN_IMAGES), common::idx(8, &[120, 4, 4], &tp)).unwrap();
    fs::write(data.join(TRAIN_LABELS), common::idx(8, &[120], &tl)).unwrap();
    fs::write(data.join(TEST_IMAGES), common::idx(8, &[30, 4, 4], &ep)).unwrap();
    fs::write(data.join(TEST_LABELS), common::idx(8, &[30], &el)).unwrap();
    root
}

fn train(root: &tempfile::TempDir, extra: &[&str]) -> Output {
    let exe = env!("CARGO_BIN_EXE_train");
    let mut cmd = match std::env::var("SIMDNET_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut cmd = Command::new(words.next().unwrap());
            cmd.args(words).arg(exe);
            cmd
        }
        _ => Command::new(exe),
    };
    cmd.args([
        "--data",
        "mnist",
        "--validation-size",
        "20",
        "--mini-batch-size",
        "5",
        "--sizes",
        "16,8,4",
        "--epochs",
        "2",
    ])
    .args(extra)
    .current_dir(root.path())
    .env_remove("MNIST_DIR")
    .env_remove("RAYON_NUM_THREADS")
    .output()
    .unwrap()
}

#[test]
fn cli_dropout_trains_and_is_shown_bad_rates_are_usage_errors() {
    let root = fixture();
    let out = train(&root, &["--dropout", "0.5", "--save", "net.json"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Dropout:     0.5"), "{stdout}");
    // Off by default, and then not shown.
    let plain = train(&root, &[]);
    assert!(plain.status.success());
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("Dropout"));
    // Reproducible for a seed and thread count independent.
    let again = train(
        &root,
        &["--dropout", "0.5", "--save", "again.json", "--threads", "1"],
    );
    assert!(again.status.success());
    assert_eq!(
        fs::read(root.path().join("net.json")).unwrap(),
        fs::read(root.path().join("again.json")).unwrap()
    );
    for bad in ["1", "-0.1", "1.5", "NaN"] {
        let out = train(&root, &["--dropout", bad]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--dropout {bad}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains("dropout"),
            "--dropout {bad}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let help = train(&root, &["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("--dropout <P>"));
}
