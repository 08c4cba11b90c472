//! Unit tests of the kernels on every available ISA. Tests whose names start with `miri_` are
//! small enough for Miri, which is where CI executes the AVX-512 kernels on machines without
//! AVX-512 (Miri answers feature detection from `-C target-feature`). Miri perturbs the last
//! bits of f64 `exp`/`ln`, so comparisons with the reference there use tolerances; the purely
//! arithmetic kernels are compared bit for bit.

use super::generic::{Z_SATURATES_TO_ONE, Z_SATURATES_TO_ZERO, nan_to_num};
use super::*;

fn all() -> Vec<Kernels> {
    Isa::available()
        .into_iter()
        .map(|isa| Kernels::for_isa(isa).unwrap())
        .collect()
}

/// Deterministic values in `[-scale, scale]`, with some exact zeros and halves.
fn values(n: usize, seed: u32, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let h = (i as u32 ^ seed)
                .wrapping_mul(2_654_435_761)
                .rotate_left(13);
            match h % 11 {
                0 => 0.0,
                1 => 0.5,
                _ => (h >> 8) as f32 / (1u32 << 24) as f32 * 2.0 * scale - scale,
            }
        })
        .collect()
}

fn close(got: f32, want: f32, rel: f32) -> bool {
    got == want || (got - want).abs() <= rel * want.abs().max(f32::MIN_POSITIVE)
}

#[test]
fn miri_every_kernel_every_isa_small() {
    for k in all() {
        let isa = k.isa();
        // Lengths around every vector width: 0, 1, a partial vector, whole vectors + tails.
        for cols in [1usize, 3, 10, 17] {
            for rows in [0usize, 1, 3] {
                let n = rows * cols;
                let bias = values(cols, 7, 3.0);
                // |z| <= 33 stays below network2's saturation at 36.74 (tested separately).
                let z0 = values(n, 1, 30.0);
                let (mut z, mut a) = (z0.clone(), vec![f32::NAN; n]);
                k.bias_sigmoid(&mut z, &mut a, &bias).unwrap();
                let (mut zr, mut ar) = (z0.clone(), vec![0.0; n]);
                reference::bias_sigmoid(&mut zr, &mut ar, &bias);
                assert_eq!(z, zr, "{isa} z");
                for (g, w) in a.iter().zip(&ar) {
                    assert!(close(*g, *w, 1e-5), "{isa} sigmoid {g} vs {w}");
                }

                let labels: Vec<u8> = (0..rows).map(|r| ((r * 7) % cols) as u8).collect();
                let mut d = vec![f32::NAN; n];
                let mut dr = vec![0.0; n];
                k.cross_entropy_delta(&a, &labels, &mut d).unwrap();
                reference::cross_entropy_delta(&a, &labels, &mut dr);
                assert_eq!(d, dr, "{isa} ce delta");
                k.quadratic_delta(&a, &labels, &mut d).unwrap();
                reference::quadratic_delta(&a, &labels, &mut dr);
                assert_eq!(d, dr, "{isa} quadratic delta");
                k.sigmoid_prime_mul(&mut d, &a).unwrap();
                reference::sigmoid_prime_mul(&mut dr, &a);
                assert_eq!(d, dr, "{isa} sigmoid'");

                let (mut rc, mut rcr) = (vec![f64::NAN; rows], vec![0.0; rows]);
                let total = k.cross_entropy_cost(&z, &labels, &mut rc).unwrap();
                let total_r = reference::cross_entropy_cost(&z, &labels, &mut rcr);
                assert!(
                    (total - total_r).abs() <= 1e-5 * total_r.abs() + 1e-6,
                    "{isa}"
                );
                let total = k.quadratic_cost(&a, &labels, &mut rc).unwrap();
                let total_r = reference::quadratic_cost(&a, &labels, &mut rcr);
                assert_eq!(total, total_r, "{isa} quadratic cost");

                let mut sums = vec![f32::NAN; cols];
                let mut sums_r = vec![0.0; cols];
                k.column_sums(&z, rows, cols, &mut sums).unwrap();
                reference::column_sums(&z, rows, cols, &mut sums_r);
                assert_eq!(sums, sums_r, "{isa} column sums");

                let (mut w, mut wr) = (z.clone(), z.clone());
                k.sgd_l2_update(&mut w, &a, 0.999, 0.05).unwrap();
                reference::sgd_l2_update(&mut wr, &a, 0.999, 0.05);
                assert_eq!(w, wr, "{isa} l2 step");
                k.sgd_update(&mut w, &a, 0.05).unwrap();
                reference::sgd_update(&mut wr, &a, 0.05);
                assert_eq!(w, wr, "{isa} step");
            }
        }
    }
}

#[test]
fn miri_activations_every_isa_small() {
    for k in all() {
        let isa = k.isa();
        for cols in [1usize, 3, 10, 17] {
            for rows in [0usize, 1, 3] {
                let n = rows * cols;
                let bias = values(cols, 5, 2.0);
                let z0 = values(n, 3, 12.0);
                let labels: Vec<u8> = (0..rows).map(|r| ((r * 5) % cols) as u8).collect();
                for f in Activation::ALL {
                    let (mut z, mut a) = (z0.clone(), vec![f32::NAN; n]);
                    k.bias_activation(f, &mut z, &mut a, &bias).unwrap();
                    let (mut zr, mut ar) = (z0.clone(), vec![0.0; n]);
                    reference::bias_activation(f.name(), &mut zr, &mut ar, &bias);
                    assert_eq!(z, zr, "{isa} {f} z");
                    for (g, w) in a.iter().zip(&ar) {
                        assert!(
                            close(*g, *w, 4e-6) || (g - w).abs() <= 1e-7,
                            "{isa} {f}: {g} vs {w}"
                        );
                    }
                    if f == Activation::Softmax {
                        for row in a.chunks_exact(cols) {
                            let sum: f32 = row.iter().sum();
                            assert!((sum - 1.0).abs() <= 1e-5, "{isa} softmax sums to {sum}");
                        }
                        let (mut rc, mut rcr) = (vec![f64::NAN; rows], vec![0.0; rows]);
                        let total = k.log_likelihood_cost(&z, &labels, &mut rc).unwrap();
                        let total_r = reference::log_likelihood_cost(&z, &labels, &mut rcr);
                        for (g, w) in rc.iter().zip(&rcr) {
                            assert!((g - w).abs() <= 1e-5 * w.abs() + 1e-6, "{isa} ll {g} {w}");
                        }
                        assert!((total - total_r).abs() <= 1e-5 * total_r.abs() + 1e-5);
                        let mut d = vec![0.0; n];
                        let err = k.activation_prime_mul(f, &mut d, &a).unwrap_err();
                        assert!(err.to_string().contains("softmax"), "{err}");
                        continue;
                    }
                    let d0 = values(n, 9, 1.5);
                    let (mut d, mut dr) = (d0.clone(), d0.clone());
                    k.activation_prime_mul(f, &mut d, &a).unwrap();
                    reference::activation_prime_mul(f.name(), &mut dr, &a);
                    assert_eq!(d, dr, "{isa} {f}'");

                    let mut dq = vec![f32::NAN; n];
                    k.quadratic_delta_with(f, &a, &labels, &mut dq).unwrap();
                    let mut dqr = vec![0.0; n];
                    reference::cross_entropy_delta(&a, &labels, &mut dqr);
                    reference::activation_prime_mul(f.name(), &mut dqr, &a);
                    assert_eq!(dq, dqr, "{isa} {f} quadratic delta");
                }
            }
        }
    }
}

#[test]
fn miri_activations_special_values() {
    for k in all() {
        let isa = k.isa();
        let z0 = [
            0.0f32,
            -0.0,
            1e-30,
            -1e-30,
            0.39,
            0.41,
            -0.41,
            9.5,
            -9.5,
            100.0,
            -100.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        let (mut z, mut a) = (z0.to_vec(), vec![0.0; z0.len()]);
        k.bias_activation(Activation::Tanh, &mut z, &mut a, &[0.0])
            .unwrap();
        // (-0.0 + a bias of 0.0 is +0.0.)
        assert_eq!(&a[..2], &[0.0, 0.0], "{isa} tanh(0)");
        assert_eq!(a[2], 1e-30, "{isa} tanh keeps tiny values");
        assert_eq!(a[3], -1e-30);
        for i in 4..7 {
            assert!(
                close(a[i], reference::tanh(z0[i]), 3e-7),
                "{isa} tanh({})",
                z0[i]
            );
        }
        assert_eq!(
            &a[7..13],
            &[1.0, -1.0, 1.0, -1.0, 1.0, -1.0],
            "{isa} tanh saturates"
        );
        assert!(a[13].is_nan(), "{isa} tanh(NaN)");

        let (mut z, mut a) = (z0.to_vec(), vec![0.0; z0.len()]);
        k.bias_activation(Activation::Relu, &mut z, &mut a, &[0.0])
            .unwrap();
        assert_eq!(&a[..4], &[0.0, 0.0, 1e-30, 0.0], "{isa} relu");
        assert_eq!(a[10], 0.0);
        assert_eq!(a[11], f32::INFINITY);
        assert_eq!(a[12], 0.0);
        assert!(a[13].is_nan(), "{isa} relu(NaN)");

        // Softmax of huge logits does not overflow; a NaN poisons its row only.
        let mut z = vec![1000.0f32, 999.0, -1000.0, 0.0, f32::NAN, 1.0];
        let mut a = vec![0.0; 6];
        k.bias_activation(Activation::Softmax, &mut z, &mut a, &[0.0, 0.0, 0.0])
            .unwrap();
        let e = (-1.0f64).exp();
        assert!(close(a[0], (1.0 / (1.0 + e)) as f32, 1e-6), "{isa} {a:?}");
        assert!(close(a[1], (e / (1.0 + e)) as f32, 1e-6), "{isa} {a:?}");
        assert_eq!(a[2], 0.0);
        assert!(a[3..].iter().all(|v| v.is_nan()), "{isa} {a:?}");
        // A confidently wrong example costs its logit gap, not -ln(0) = inf.
        let mut rc = [0.0f64];
        let c = k.log_likelihood_cost(&[0.0, 200.0], &[0], &mut rc).unwrap();
        assert!((c - 200.0).abs() < 1e-4, "{isa} {c}");
    }
}

fn step(optimizer: Optimizer, l2: f32, l1: f32, t: u64) -> ParamStep {
    ParamStep {
        optimizer,
        eta: 0.5,
        grad_scale: 0.25,
        l2,
        l1,
        t,
    }
}

const NESTEROV: Optimizer = Optimizer::Momentum {
    mu: 0.75,
    nesterov: true,
};
const MOMENTUM: Optimizer = Optimizer::Momentum {
    mu: 0.75,
    nesterov: false,
};

#[test]
fn miri_param_updates_match_reference_every_isa() {
    for k in all() {
        let isa = k.isa();
        for n in [0usize, 1, 5, 8, 19, 33] {
            let w0 = values(n, 21, 2.0);
            let grad = values(n, 22, 4.0);
            let s1_0 = values(n, 23, 0.5);
            let s2_0: Vec<f32> = values(n, 24, 0.5).iter().map(|v| v * v).collect();
            for optimizer in [Optimizer::Sgd, MOMENTUM, NESTEROV, Optimizer::ADAM] {
                for (l2, l1, t) in [
                    (0.0, 0.0, 1),
                    (0.01, 0.0, 2),
                    (0.0, 0.02, 3),
                    (0.01, 0.02, 40),
                ] {
                    let p = step(optimizer, l2, l1, t);
                    let (mut w, mut s1, mut s2) = (w0.clone(), s1_0.clone(), s2_0.clone());
                    k.param_update(&p, &mut w, &grad, &mut s1, &mut s2).unwrap();
                    let (mut wr, mut s1r, mut s2r) = (w0.clone(), s1_0.clone(), s2_0.clone());
                    reference::param_update(&p, &mut wr, &grad, &mut s1r, &mut s2r);
                    assert_eq!(w, wr, "{isa} {optimizer:?} {l2} {l1} w");
                    assert_eq!(s1, s1r, "{isa} {optimizer:?} state1");
                    assert_eq!(s2, s2r, "{isa} {optimizer:?} state2");
                }
            }
        }
    }
}

/// Adam's new `m`, `v` and `w` never hold subnormals: one that would is zero of its sign,
/// on every ISA, in whole and partial vectors; normal values (down to `f32::MIN_POSITIVE`)
/// are kept. Without the flush, lane 0 keeps `m = 1.08e-38` and `w = 1e-39`.
#[test]
fn miri_adam_flushes_subnormal_results_to_zero() {
    let tiny = f32::MIN_POSITIVE;
    // (w, m, v) before the step; no gradient, no regularization, so g = 0.
    let lanes = [
        (1e-39f32, 1.2e-38f32, 1e-38f32), // 0.9 m and 0.999 v subnormal; w subnormal
        (-1e-39, -1.2e-38, 0.0),          // the same, negative: -0.0
        (0.5, 1e-30, 1e-20),              // all normal
        (tiny, 0.0, 0.0),                 // the smallest normal stays
    ];
    for k in all() {
        let isa = k.isa();
        for n in [4usize, 19] {
            let pick = |f: fn(&(f32, f32, f32)) -> f32| -> Vec<f32> {
                (0..n).map(|i| f(&lanes[i % 4])).collect()
            };
            let (mut w, mut m, mut v) = (pick(|l| l.0), pick(|l| l.1), pick(|l| l.2));
            let (mut wr, mut mr, mut vr) = (w.clone(), m.clone(), v.clone());
            let p = step(Optimizer::ADAM, 0.0, 0.0, 5);
            let grad = vec![0.0f32; n];
            k.param_update(&p, &mut w, &grad, &mut m, &mut v).unwrap();
            reference::param_update(&p, &mut wr, &grad, &mut mr, &mut vr);
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&w), bits(&wr), "{isa} n {n} w");
            assert_eq!(bits(&m), bits(&mr), "{isa} n {n} m");
            assert_eq!(bits(&v), bits(&vr), "{isa} n {n} v");
            for i in 0..n {
                let what = format!("{isa} n {n} lane {i}");
                assert!(!w[i].is_subnormal() && !m[i].is_subnormal() && !v[i].is_subnormal());
                match i % 4 {
                    0 => assert_eq!(bits(&[w[i], m[i], v[i]]), [0, 0, 0], "{what}"),
                    1 => assert_eq!(bits(&[w[i], m[i]]), bits(&[-0.0, -0.0]), "{what}"),
                    2 => assert!(m[i] == 0.9 * 1e-30 && v[i] == 0.999 * 1e-20, "{what}"),
                    _ => assert_eq!(w[i], tiny, "{what}"),
                }
            }
        }
    }
}

/// Each rule on two parameters, against values worked out by hand.
#[test]
fn miri_param_updates_match_hand_computed_values() {
    for k in all() {
        let isa = k.isa();
        // w = [1, -2], summed gradient [2, 4] over 4 examples: mean [0.5, 1].
        // L2 0.1 adds [0.1, -0.2], L1 0.05 adds [0.05, -0.05]: g = [0.65, 0.75].
        let grad = [2.0f32, 4.0];
        let p = |optimizer, t| ParamStep {
            optimizer,
            eta: 0.5,
            grad_scale: 0.25,
            l2: 0.1,
            l1: 0.05,
            t,
        };
        let close2 = |got: &[f32], want: [f64; 2], what: &str| {
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (f64::from(*g) - w).abs() < 1e-6,
                    "{isa} {what}: {got:?} vs {want:?}"
                );
            }
        };

        // SGD: w - 0.5 g = [0.675, -2.375].
        let mut w = [1.0f32, -2.0];
        k.param_update(&p(Optimizer::Sgd, 0), &mut w, &grad, &mut [], &mut [])
            .unwrap();
        close2(&w, [0.675, -2.375], "sgd");

        // Momentum 0.75 from v = [0.2, 0]: v = 0.75 v - 0.5 g = [-0.175, -0.375];
        // w + v = [0.825, -2.375]; Nesterov adds 0.75 (v - v_old) = [-0.28125, -0.28125].
        for (optimizer, want) in [
            (MOMENTUM, [0.825, -2.375]),
            (NESTEROV, [0.825 - 0.281_25, -2.375 - 0.281_25]),
        ] {
            let (mut w, mut v) = ([1.0f32, -2.0], [0.2f32, 0.0]);
            k.param_update(&p(optimizer, 0), &mut w, &grad, &mut v, &mut [])
                .unwrap();
            close2(&v, [-0.175, -0.375], "velocity");
            close2(&w, want, &format!("{optimizer:?}"));
        }

        // Adam, first step from zero moments: m = 0.1 g, v = 0.001 g^2, and the bias
        // corrections make m_hat = g, v_hat = g^2: the step is eta g / (|g| + eps) = 0.5.
        let (mut w, mut m, mut v) = ([1.0f32, -2.0], [0.0f32; 2], [0.0f32; 2]);
        k.param_update(&p(Optimizer::ADAM, 1), &mut w, &grad, &mut m, &mut v)
            .unwrap();
        close2(&m, [0.065, 0.075], "adam m");
        close2(&v, [0.000_422_5, 0.000_562_5], "adam v");
        close2(&w, [0.5, -2.5], "adam w");

        // L1 with sgn(0) = 0: a zero weight with no gradient stays zero.
        let mut w = [0.0f32, -0.0];
        k.param_update(&p(Optimizer::Sgd, 0), &mut w, &[0.0, 0.0], &mut [], &mut [])
            .unwrap();
        assert_eq!(w, [0.0, 0.0], "{isa} sgn(0)");

        // Bad constants and states are refused, leaving w alone.
        let mut w = [1.0f32, -2.0];
        let bad = Optimizer::Momentum {
            mu: 1.0,
            nesterov: false,
        };
        assert!(
            k.param_update(&p(bad, 0), &mut w, &grad, &mut [0.0; 2], &mut [])
                .is_err()
        );
        assert!(
            k.param_update(&p(MOMENTUM, 0), &mut w, &grad, &mut [], &mut [])
                .is_err()
        );
        assert!(
            k.param_update(
                &p(Optimizer::ADAM, 0),
                &mut w,
                &grad,
                &mut [0.0; 2],
                &mut [0.0; 2]
            )
            .is_err()
        );
        assert_eq!(w, [1.0, -2.0]);
    }
}

#[test]
fn miri_exp_ln_special_values() {
    let x = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        88.72,
        88.73,
        89.5,
        1e30,
        f32::INFINITY,
        -87.0,
        -100.0,
        -103.0,
        -104.5,
        -1e30,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MIN_POSITIVE,
        1e-45,
        f32::MAX,
    ];
    for k in all() {
        let isa = k.isa();
        let mut e = vec![0.0; x.len()];
        k.exp(&x, &mut e).unwrap();
        for (&x, &e) in x.iter().zip(&e) {
            let want = reference::exp(x);
            if want.is_nan() {
                assert!(e.is_nan(), "{isa} exp({x}) = {e}");
            } else if want == 0.0 || want.is_infinite() {
                assert_eq!(e, want, "{isa} exp({x})");
            } else {
                // Subnormal results are within an ulp of the subnormal grid.
                let err = (e - want).abs();
                assert!(
                    err <= 3e-7 * want || err <= 1.5e-45,
                    "{isa} exp({x}) = {e}, want {want}"
                );
            }
        }
        assert_eq!(e[0], 1.0);
        assert_eq!(e[1], 1.0);

        let mut l = vec![0.0; x.len()];
        k.ln(&x, &mut l).unwrap();
        for (&x, &l) in x.iter().zip(&l) {
            let want = reference::ln(x);
            if want.is_nan() {
                assert!(l.is_nan(), "{isa} ln({x}) = {l}");
            } else if want.is_infinite() || want == 0.0 {
                assert_eq!(l, want, "{isa} ln({x})");
            } else {
                assert!(close(l, want, 3e-7), "{isa} ln({x}) = {l}, want {want}");
            }
        }
    }
}

#[test]
fn miri_sigmoid_saturates_safely() {
    let z = [
        0.0,
        -0.0,
        20.0,
        100.0,
        1e30,
        f32::INFINITY,
        -20.0,
        -100.0,
        -200.0,
        -1e30,
        f32::NEG_INFINITY,
        f32::NAN,
    ];
    for k in all() {
        let isa = k.isa();
        let (mut zz, mut a) = (z.to_vec(), vec![0.0; z.len()]);
        k.bias_sigmoid(&mut zz, &mut a, &[0.0]).unwrap();
        assert_eq!(&a[..6], &[0.5, 0.5, 1.0, 1.0, 1.0, 1.0], "{isa}");
        // e^-20 and e^-100 keep their relative accuracy; e^-200 underflows.
        assert!(close(a[6], 2.061_153_6e-9, 1e-6), "{isa} {}", a[6]);
        assert!(
            a[7] > 0.0 && (a[7] - reference::sigmoid(-100.0)).abs() <= 1.5e-45,
            "{isa}"
        );
        assert_eq!(&a[8..11], &[0.0, 0.0, 0.0], "{isa}");
        assert!(a[11].is_nan(), "{isa}");
    }
}

#[test]
fn miri_cross_entropy_cost_matches_nan_to_num() {
    let big = f64::MAX;
    // (z, label column, expected cost) for a 1-column batch... with 2 columns so both y = 0
    // and y = 1 appear: row cost = term(z0, y0) + term(z1, y1).
    let cases: [([f32; 2], u8, f64); 6] = [
        // a = 1 exactly (f64) for the labelled unit: -1*log(1) - 0*log(0) = nan -> 0; the
        // other unit with a = 1 and y = 0: -log(0) = inf -> MAX.
        ([40.0, 40.0], 1, big),
        // Both a = 0 exactly: y = 1 gives -log(0) = inf -> MAX; y = 0 gives 0*log(0) -> 0.
        ([-800.0, -800.0], 0, big),
        // a = 1 for y = 1 and a = 0 for y = 0: both nan -> 0, a perfect (saturated) answer.
        ([-800.0, 40.0], 1, 0.0),
        // Two MAX terms overflow in the sum, as numpy's np.sum does.
        ([40.0, -800.0], 1, f64::INFINITY),
        // Not saturated in f64 (z = 30 < 36.74), though a = 1 in f32: finite, = softplus.
        ([30.0, 0.0], 1, 30.0 + 2f64.ln()),
        // NaN contributes 0.
        ([f32::NAN, 0.0], 1, 2f64.ln()),
    ];
    for k in all() {
        for (z, label, want) in cases {
            let mut rc = [0.0];
            let total = k.cross_entropy_cost(&z, &[label], &mut rc).unwrap();
            assert_eq!(total, rc[0]);
            let reference = reference::cross_entropy_cost(&z, &[label], &mut [0.0]);
            if want.is_finite() && want < big && want > 0.0 {
                assert!(
                    (total - want).abs() <= 1e-6 * want,
                    "{} {z:?}: {total}",
                    k.isa()
                );
                assert!((reference - want).abs() <= 1e-12 * want);
            } else {
                assert_eq!(total, want, "{} {z:?}", k.isa());
                assert_eq!(reference, want, "{z:?}");
            }
        }
    }
}

#[test]
fn saturation_thresholds_are_network2s() {
    let one = |z: f32| reference::sigmoid_f64(z) == 1.0;
    let zero = |z: f32| reference::sigmoid_f64(z) == 0.0;
    let down = |z: f32| f32::from_bits(z.to_bits() - 1);
    assert!(one(Z_SATURATES_TO_ONE) && !one(down(Z_SATURATES_TO_ONE)));
    // For negative z, `to_bits() - 1` moves toward zero.
    assert!(zero(Z_SATURATES_TO_ZERO) && !zero(down(Z_SATURATES_TO_ZERO)));
    assert_eq!(nan_to_num(f64::NAN), 0.0);
    assert_eq!(nan_to_num(f64::INFINITY), f64::MAX);
    assert_eq!(nan_to_num(f64::NEG_INFINITY), f64::MIN);
}

#[test]
fn miri_shape_errors_write_nothing() {
    for k in all() {
        let mut z = vec![1.0; 6];
        let mut a = vec![7.0; 6];
        assert!(matches!(
            k.bias_sigmoid(&mut z, &mut a, &[0.0; 4]),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(k.bias_sigmoid(&mut z, &mut a[..5], &[0.0; 3]).is_err());
        assert!(k.bias_sigmoid(&mut z, &mut a, &[]).is_err());
        assert!(k.bias_sigmoid(&mut [], &mut [], &[]).is_ok());
        assert_eq!((z.as_slice(), a.as_slice()), (&[1.0; 6][..], &[7.0; 6][..]));

        let mut d = vec![7.0; 6];
        assert!(matches!(
            k.cross_entropy_delta(&z, &[0, 3], &mut d),
            Err(Error::InvalidView { .. })
        ));
        assert!(k.cross_entropy_delta(&z, &[0, 1, 2, 3], &mut d).is_err());
        assert!(k.quadratic_delta(&z, &[0, 1], &mut d[..3]).is_err());
        assert!(k.quadratic_delta(&z, &[], &mut d).is_err());
        assert_eq!(d, [7.0; 6]);
        assert!(k.cross_entropy_cost(&z, &[0, 1], &mut [0.0]).is_err());
        assert!(k.quadratic_cost(&z, &[0, 1, 1], &mut [0.0; 3]).is_ok());
        assert!(k.sigmoid_prime_mul(&mut d, &z[1..]).is_err());
        assert!(k.sgd_l2_update(&mut d, &z[1..], 1.0, 1.0).is_err());
        assert!(k.sgd_update(&mut d[1..], &z, 1.0).is_err());
        assert!(k.column_sums(&z, 2, 3, &mut d[..2]).is_err());
        assert!(k.column_sums(&z, 3, 3, &mut d[..3]).is_err());
        assert!(k.column_sums(&z, usize::MAX, 2, &mut d[..2]).is_err());
        assert!(k.exp(&z, &mut d[..5]).is_err());
        assert!(k.ln(&z[..5], &mut d).is_err());
        assert_eq!(d, [7.0; 6]);
    }
}

#[test]
fn label_error_names_the_row() {
    let k = Kernels::for_isa(Isa::Scalar).unwrap();
    let err = k
        .cross_entropy_delta(&[0.0; 20], &[1, 4, 10, 3], &mut [0.0; 20])
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("label 10 of row 2"), "{text}");
    assert!(text.contains("4 x 5"), "{text}");
}

// ---------------------------------------------------------------------------------------
// The sparse first-layer products.

/// A `rows x cols` batch in which about `zero_percent`% of the entries are exactly zero and
/// the rest are small integers or halves (so every sum below is exact in f32, whatever the
/// order or fusion of the operations).
fn sparse_batch(rows: usize, cols: usize, zero_percent: u32, seed: u32) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| {
            let h = (i as u32 ^ seed.rotate_left(7))
                .wrapping_mul(2_654_435_761)
                .rotate_left(11);
            if h % 100 < zero_percent {
                0.0
            } else {
                [-2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0][(h >> 8) as usize % 7]
            }
        })
        .collect()
}

/// Small integers, exact in every product and sum the tests make.
fn small_ints(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let h = (i as u32 ^ seed).wrapping_mul(2_246_822_519).rotate_left(9);
            (h % 9) as f32 - 4.0
        })
        .collect()
}

/// `x` (`rows x k`) times `wt` (`k x n`), naively.
fn naive_times(x: &[f32], rows: usize, k: usize, wt: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * n];
    for r in 0..rows {
        for i in 0..k {
            for j in 0..n {
                out[r * n + j] += x[r * k + i] * wt[i * n + j];
            }
        }
    }
    out
}

/// `beta wt + alpha x^T d`, naively (`x`: `rows x k`, `d`: `rows x n`, `wt`: `k x n`).
#[allow(clippy::too_many_arguments)] // the operands of the kernel it checks, one by one
fn naive_update(
    x: &[f32],
    d: &[f32],
    rows: usize,
    k: usize,
    n: usize,
    alpha: f32,
    beta: f32,
    wt: &[f32],
) -> Vec<f32> {
    let mut g = vec![0.0f32; k * n];
    for r in 0..rows {
        for i in 0..k {
            for j in 0..n {
                g[i * n + j] += x[r * k + i] * d[r * n + j];
            }
        }
    }
    wt.iter()
        .zip(&g)
        .map(|(&w, &g)| beta * w + alpha * g)
        .collect()
}

/// Runs both sparse products on every ISA and compares them bit for bit with the naive
/// loops (the values make every sum exact), and the compressed forms with the batch.
fn check_sparse(rows: usize, k: usize, n: usize, zero_percent: u32, seed: u32) {
    let x = sparse_batch(rows, k, zero_percent, seed);
    let wt = small_ints(k * n, seed ^ 1);
    let d = small_ints(rows * n, seed ^ 2);
    // Every ISA's scan finds the same entries as a plain loop.
    let mut sparse = SparseRows::new(rows, k, rows * k);
    for kern in all() {
        assert!(sparse.fill(&kern, &x, rows));
        assert_eq!((sparse.rows(), sparse.cols()), (rows, k));
        for r in 0..rows {
            let want: Vec<(usize, f32)> = (0..k)
                .filter(|&i| x[r * k + i] != 0.0)
                .map(|i| (i, x[r * k + i]))
                .collect();
            assert_eq!(
                sparse.row(r).collect::<Vec<_>>(),
                want,
                "{} row {r}",
                kern.isa()
            );
        }
    }
    let want_out = naive_times(&x, rows, k, &wt, n);
    // One scratch for every call, starting empty: it grows on the first, and each call must
    // leave it fit for the next (whatever the ISA, range or beta).
    let mut scratch = UpdateScratch::default();
    for (alpha, beta) in [(-0.25f32, 0.5f32), (2.0, 1.0)] {
        let want_wt = naive_update(&x, &d, rows, k, n, alpha, beta, &wt);
        for kern in all() {
            let isa = kern.isa();
            let mut out = vec![f32::NAN; rows * n];
            kern.sparse_times_dense(&sparse, 0..rows, &wt, n, &mut out)
                .unwrap();
            assert_eq!(out, want_out, "{isa} forward rows {rows} k {k} n {n}");
            let mut got = wt.clone();
            kern.sparse_update(&sparse, 0..k, &d, n, alpha, beta, &mut got, &mut scratch)
                .unwrap();
            assert_eq!(
                got, want_wt,
                "{isa} update rows {rows} k {k} n {n} beta {beta}"
            );
            // Split as the trainer splits across threads: by rows of X for the product, by
            // inputs (rows of W^T) for the update, at an uneven point; the same bits.
            let (rs, ks) = (rows / 3, k / 3);
            let mut split = vec![f32::NAN; rows * n];
            let (lo, hi) = split.split_at_mut(rs * n);
            kern.sparse_times_dense(&sparse, 0..rs, &wt, n, lo).unwrap();
            kern.sparse_times_dense(&sparse, rs..rows, &wt, n, hi)
                .unwrap();
            assert_eq!(split, want_out, "{isa} forward split at row {rs}");
            let mut split = wt.clone();
            let (lo, hi) = split.split_at_mut(ks * n);
            kern.sparse_update(&sparse, 0..ks, &d, n, alpha, beta, lo, &mut scratch)
                .unwrap();
            kern.sparse_update(&sparse, ks..k, &d, n, alpha, beta, hi, &mut scratch)
                .unwrap();
            assert_eq!(split, want_wt, "{isa} update split at input {ks}");
        }
    }
}

#[test]
fn miri_sparse_products_match_naive_every_isa() {
    // n around every vector width and group split (1..6 vectors of 1, 4, 8, 16 lanes in two
    // chains, 13 vectors in one group, 15 = 8 + 7), on both sides of the update's merging
    // width and batch size (20 rows > 16); all-zero and all-nonzero batches; an empty batch.
    for &(rows, k, n, zeros) in &[
        (3, 7, 30, 60),
        (2, 9, 120, 60),
        (2, 5, 50, 30),
        (2, 5, 13, 50),
        (1, 17, 100, 70),
        (4, 9, 1, 40),
        (3, 6, 33, 0),
        (3, 6, 17, 100),
        (20, 9, 100, 40),
        (0, 5, 8, 50),
        (2, 0, 5, 50),
    ] {
        check_sparse(rows, k, n, zeros, (rows * 31 + k * 7 + n) as u32);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    #[cfg_attr(miri, ignore)]
    fn sparse_products_match_naive(
        rows in 0usize..40, k in 0usize..40, n in 1usize..240, zeros in 0u32..=100, seed in 0u32..1000
    ) {
        check_sparse(rows, k, n, zeros, seed);
    }
}

#[test]
fn sparse_fill_refuses_what_does_not_fit() {
    for kern in all() {
        let x = sparse_batch(4, 10, 50, 3);
        let nonzeros = x.iter().filter(|&&v| v != 0.0).count();
        // Capacity of entries: one short is refused (and leaves an empty batch), exact fits.
        let mut s = SparseRows::new(4, 10, nonzeros - 1);
        assert!(!s.fill(&kern, &x, 4));
        assert_eq!((s.rows(), s.nonzeros()), (0, 0));
        let mut s = SparseRows::new(4, 10, nonzeros);
        assert!(s.fill(&kern, &x, 4));
        assert_eq!(s.nonzeros(), nonzeros);
        // More rows than made for, or a length that is not whole rows.
        assert!(!s.fill(&kern, &sparse_batch(5, 10, 100, 1), 5));
        assert!(!s.fill(&kern, &x[..39], 4));
        // NaN and infinity are entries (they must propagate); -0.0 is not.
        let mut s = SparseRows::new(1, 4, 4);
        assert!(s.fill(&kern, &[f32::NAN, -0.0, f32::INFINITY, 0.0], 1));
        let row: Vec<(usize, f32)> = s.row(0).collect();
        assert_eq!(row.len(), 2);
        assert!(row[0].0 == 0 && row[0].1.is_nan());
        assert_eq!(row[1], (2, f32::INFINITY));
    }
}

#[test]
fn miri_sparse_scan_left_packs_every_lane_pattern() {
    // One row whose 8-lane block m has a nonzero in lane i exactly when bit i of m is set,
    // so every mask of an AVX2 vector is left-packed once (and every pair of masks by
    // AVX-512, every half by NEON); the zeros are +0.0 and -0.0 alternately, and one entry is
    // a NaN, which must be kept with its bits.
    let cols = 256 * 8;
    let x: Vec<f32> = (0..cols)
        .map(|c| {
            let (m, lane) = (c / 8, c % 8);
            if m >> lane & 1 == 0 {
                if c % 2 == 0 { 0.0 } else { -0.0 }
            } else if c == 8 * 0xa5 + 2 {
                f32::from_bits(0x7fc0_1234)
            } else {
                c as f32 + 0.5
            }
        })
        .collect();
    let want: Vec<(usize, u32)> = (0..cols)
        .filter(|&c| x[c] != 0.0 || x[c].is_nan())
        .map(|c| (c, x[c].to_bits()))
        .collect();
    assert_eq!(want.len(), 8 * 128);
    for kern in all() {
        let mut s = SparseRows::new(1, cols, cols);
        assert!(s.fill(&kern, &x, 1), "{}", kern.isa());
        let got: Vec<(usize, u32)> = s.row(0).map(|(c, v)| (c, v.to_bits())).collect();
        assert_eq!(got, want, "{}", kern.isa());
        // Capacity one short of the entries: refused, on whichever vector overflows.
        let mut s = SparseRows::new(1, cols, want.len() - 1);
        assert!(!s.fill(&kern, &x, 1), "{}", kern.isa());
    }
}

#[test]
fn sparse_update_leaves_untouched_rows_alone_at_beta_one() {
    // Input 1 is zero in every row: its weights stay bit for bit at beta = 1 (even a NaN
    // payload or a -0.0), and are exactly beta * w otherwise.
    let scalar = Kernels::for_isa(Isa::Scalar).unwrap();
    let x = [1.0, 0.0, 2.0, 0.5, 0.0, 0.0];
    let mut s = SparseRows::new(2, 3, 6);
    assert!(s.fill(&scalar, &x, 2));
    let d = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
    for kern in all() {
        let wt0: Vec<f32> = (0..15)
            .map(|i| if i == 7 { -0.0 } else { i as f32 * 0.1 })
            .collect();
        let mut wt = wt0.clone();
        kern.sparse_update(
            &s,
            0..3,
            &d,
            5,
            -1.0,
            1.0,
            &mut wt,
            &mut UpdateScratch::default(),
        )
        .unwrap();
        assert_eq!(
            wt[5..10].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            wt0[5..10].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{}",
            kern.isa()
        );
        let mut wt = wt0.clone();
        kern.sparse_update(
            &s,
            0..3,
            &d,
            5,
            -1.0,
            0.75,
            &mut wt,
            &mut UpdateScratch::default(),
        )
        .unwrap();
        for j in 5..10 {
            assert_eq!(wt[j], wt0[j] * 0.75, "{}", kern.isa());
        }
        // Shape errors write nothing.
        let mut wt = wt0.clone();
        assert!(
            kern.sparse_update(
                &s,
                0..3,
                &d[..9],
                5,
                -1.0,
                0.5,
                &mut wt,
                &mut UpdateScratch::default()
            )
            .is_err()
        );
        assert!(
            kern.sparse_update(
                &s,
                0..3,
                &d,
                5,
                -1.0,
                0.5,
                &mut wt[..14],
                &mut UpdateScratch::default()
            )
            .is_err()
        );
        assert_eq!(wt, wt0);
        let mut out = vec![0.0; 9];
        assert!(
            kern.sparse_times_dense(&s, 0..2, &wt0, 5, &mut out)
                .is_err()
        );
    }
}

/// The entries of every row of `s`, with their bits.
fn listed_rows(s: &SparseRows) -> Vec<Vec<(usize, u32)>> {
    (0..s.rows())
        .map(|r| s.row(r).map(|(c, v)| (c, v.to_bits())).collect())
        .collect()
}

#[test]
fn miri_listed_batches_are_the_scanned_batches() {
    // 23 examples of 19 inputs (one partial vector on every ISA), listed in segments of 8
    // (the last holds 7), each segment pushed in chunks of 3: any batch filled from the list
    // is the batch that scanning the same examples gathered densely gives, bit for bit.
    let (n, cols, per_segment) = (23, 19, 8);
    let mut x = sparse_batch(n, cols, 70, 12);
    x[5 * cols + 3] = f32::from_bits(0x7fc0_0042); // a NaN, kept with its payload
    x[6 * cols..7 * cols].fill(0.0); // an example without entries
    x[7 * cols + 1] = -0.0;
    for kern in all() {
        let mut segments = Vec::new();
        for first in (0..n).step_by(per_segment) {
            let examples = per_segment.min(n - first);
            let mut segment = ListSegment::with_capacity(cols, examples * cols);
            for start in (first..first + examples).step_by(3) {
                let rows = 3.min(first + examples - start);
                let mut chunk = SparseRows::new(3, cols, 3 * cols);
                assert!(chunk.fill(&kern, &x[start * cols..(start + rows) * cols], rows));
                assert!(segment.push(&chunk));
            }
            assert_eq!(segment.len(), examples);
            segments.push(segment);
        }
        let list = ListedRows::new(cols, per_segment, segments).unwrap();
        assert_eq!(list.len(), n);
        for examples in [
            vec![0, 1, 2],
            vec![22, 7, 6, 5, 8, 15, 16, 0],
            vec![6],
            vec![3, 3, 21],
        ] {
            let mut listed = SparseRows::new(8, cols, 8 * cols);
            assert!(listed.fill_listed(&list, &examples), "{}", kern.isa());
            let dense: Vec<f32> = examples
                .iter()
                .flat_map(|&e| x[e * cols..(e + 1) * cols].iter().copied())
                .collect();
            let mut scanned = SparseRows::new(8, cols, 8 * cols);
            assert!(scanned.fill(&kern, &dense, examples.len()));
            assert_eq!(listed.rows(), examples.len());
            assert_eq!(listed.nonzeros(), scanned.nonzeros());
            assert_eq!(
                listed_rows(&listed),
                listed_rows(&scanned),
                "{}",
                kern.isa()
            );
            assert_eq!(list.count(&examples), Some(scanned.nonzeros()));
            // Each half of the columns (0..9 and 9..19), from the list and from the scanned
            // batch: the rows' entries in that half, nothing else.
            for half in [Half::Low, Half::High] {
                let columns = half.columns(cols);
                let expected: Vec<Vec<(usize, u32)>> = listed_rows(&scanned)
                    .into_iter()
                    .map(|row| {
                        row.into_iter()
                            .filter(|(c, _)| columns.contains(c))
                            .collect()
                    })
                    .collect();
                let mut from_list = SparseRows::new(8, cols, 8 * cols);
                assert!(from_list.fill_listed_half(&list, &examples, half));
                let mut taken = SparseRows::new(8, cols, 8 * cols);
                assert!(taken.take_half(&scanned, half));
                assert_eq!(listed_rows(&from_list), expected, "{half:?}");
                assert_eq!(listed_rows(&taken), expected, "{half:?}");
                // The prefetch hints of a half: its entries' lists.
                let listed_lengths: usize = list
                    .lists(&examples, Some(half))
                    .map(|(i, v)| {
                        assert_eq!(i.len(), v.len());
                        i.len()
                    })
                    .sum();
                assert_eq!(listed_lengths, from_list.nonzeros());
            }
        }
        // Refused, leaving an empty batch: an example out of the list, more entries than the
        // capacity, more rows than the capacity.
        let mut small = SparseRows::new(2, cols, 2 * cols);
        assert!(!small.fill_listed(&list, &[0, 23]));
        assert_eq!((small.rows(), small.nonzeros()), (0, 0));
        let entries = |e: usize| {
            x[e * cols..(e + 1) * cols]
                .iter()
                .filter(|v| **v != 0.0 || v.is_nan())
                .count()
        };
        let mut tight = SparseRows::new(2, cols, entries(0) + entries(1) - 1);
        assert!(!tight.fill_listed(&list, &[0, 1]));
        assert!(!small.fill_listed(&list, &[0, 1, 2]));
        // Another number of columns.
        let mut other = SparseRows::new(2, cols + 1, 2 * cols);
        assert!(!other.fill_listed(&list, &[0]));
        assert!(!other.fill_listed_half(&list, &[0], Half::High));
        assert!(!tight.fill_listed_half(&list, &[0, 23], Half::Low));
        assert_eq!(list.count(&[0, 23]), None);
    }
}

#[test]
fn list_segments_refuse_what_does_not_fit() {
    let scalar = Kernels::for_isa(Isa::Scalar).unwrap();
    let x = sparse_batch(4, 10, 0, 1); // every entry nonzero
    let mut chunk = SparseRows::new(4, 10, 40);
    assert!(chunk.fill(&scalar, &x, 4));
    // Capacity one short: refused, nothing appended.
    let mut segment = ListSegment::with_capacity(10, 39);
    assert!(!segment.push(&chunk));
    assert_eq!(segment.len(), 0);
    let mut segment = ListSegment::with_capacity(10, 40);
    assert!(segment.push(&chunk));
    assert!(!segment.push(&chunk));
    assert_eq!(segment.len(), 4);
    // Another number of columns.
    let mut wide = ListSegment::with_capacity(11, 80);
    assert!(!wide.push(&chunk));
    // Segments must be full but for the last, and of the list's columns.
    let full = || {
        let mut s = ListSegment::with_capacity(10, 40);
        assert!(s.push(&chunk));
        s
    };
    assert!(ListedRows::new(10, 4, vec![full(), full()]).is_some());
    assert!(ListedRows::new(10, 5, vec![full(), full()]).is_none());
    assert!(ListedRows::new(10, 3, vec![full()]).is_none());
    assert!(ListedRows::new(11, 4, vec![full()]).is_none());
    let list = ListedRows::new(10, 4, vec![full(), ListSegment::with_capacity(10, 0)]).unwrap();
    assert_eq!(list.len(), 4);
    let mut batch = SparseRows::new(4, 10, 40);
    assert!(batch.fill_listed(&list, &[3, 2, 1, 0]));
    assert!(!batch.fill_listed(&list, &[4]));
    // The prefetch hints: the bounds and lists of listed examples only (every example of the
    // chunk has 10 entries).
    let bounds: Vec<&[usize]> = list.bounds_of(&[2, 4, 0]).collect();
    assert_eq!(bounds, [&[20, 30][..], &[0, 10][..]]);
    let lists: Vec<usize> = list
        .lists(&[1, 7, 3], None)
        .map(|(i, v)| i.len() + v.len())
        .collect();
    assert_eq!(lists, [20, 20]);
}
