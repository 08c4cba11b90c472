//! The book's chapter-3 learning-rate schedule (`SgdConfig::halve_eta_after`): eta halved after
//! n epochs without a new best evaluation accuracy, training stopped when it would reach
//! eta0 / 128, composed with early stopping.

use simdnet::network::{
    Cost, EpochReport, FloatExamples, Init, Monitor, Network, SgdConfig, StopReason,
    TrainingSummary, sgd,
};

/// `count` examples of 6 inputs and 3 classes from a fixed LCG: the class's input is bright.
fn data(count: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32) / (1u64 << 24) as f32
    };
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..count {
        let class = (next() * 3.0) as usize % 3;
        for j in 0..6 {
            x.push(if j / 2 == class { 0.7 } else { 0.0 } + 0.3 * next());
        }
        y.push(class as u8);
    }
    (x, y)
}

fn run(config: &SgdConfig, seed: u64) -> TrainingSummary {
    let (x, y) = data(60, seed);
    let (ex, ey) = data(30, seed + 100);
    let training = FloatExamples::new(&x, &y, 6).unwrap();
    let evaluation = FloatExamples::new(&ex, &ey, 6).unwrap();
    let mut net = Network::new(&[6, 5, 3], Cost::CrossEntropy, Init::Default, seed).unwrap();
    sgd(&mut net, &training, Some(&evaluation), config, &mut ()).unwrap()
}

fn etas(summary: &TrainingSummary) -> Vec<f32> {
    summary.epochs.iter().map(|r: &EpochReport| r.eta).collect()
}

/// A learning rate so small that no weight changes: the evaluation accuracy improves in
/// epoch 1 (from the initial best of 0) and never again.
const FROZEN_ETA: f32 = 1e-20;

/// A seed whose initial network classifies some evaluation examples correctly.
const PLATEAU_SEED: u64 = 1;

fn frozen(
    halve_eta_after: Option<usize>,
    early_stopping: Option<usize>,
    epochs: usize,
) -> SgdConfig {
    SgdConfig {
        epochs,
        mini_batch_size: 7,
        eta: FROZEN_ETA,
        lambda: 0.0,
        halve_eta_after,
        early_stopping,
        monitor: Monitor {
            evaluation_accuracy: true,
            ..Monitor::default()
        },
        ..SgdConfig::default()
    }
}

/// eta0 for one epoch (the improvement), then `n` epochs at each of eta0, eta0/2, ...,
/// eta0/64.
fn plateau_etas(n: usize) -> Vec<f32> {
    let mut want = vec![FROZEN_ETA];
    for k in 0..7 {
        want.extend(std::iter::repeat_n(FROZEN_ETA / (1u32 << k) as f32, n));
    }
    want
}

#[test]
fn plateau_halves_every_n_epochs_and_stops_before_eta0_over_128() {
    for n in [1, 2, 3] {
        let summary = run(&frozen(Some(n), None, 1000), PLATEAU_SEED);
        let acc: Vec<_> = summary
            .epochs
            .iter()
            .map(|r| r.evaluation_accuracy.unwrap().correct)
            .collect();
        assert!(acc[0] > 0, "the plateau needs a first improvement: {acc:?}");
        assert!(acc.iter().all(|&c| c == acc[0]), "{acc:?}");
        assert_eq!(etas(&summary), plateau_etas(n), "n = {n}");
        assert_eq!(summary.epochs.len(), 1 + 7 * n);
        assert_eq!(summary.stop, StopReason::EtaScheduleExhausted);
        assert!(!summary.stopped_early);
        // The last eta is exactly eta0 / 64; eta0 / 128 never ran.
        assert_eq!(summary.epochs.last().unwrap().eta, FROZEN_ETA / 64.0);
    }
}

#[test]
fn composes_with_early_stopping_whichever_fires_first() {
    // Early stopping after 5 stale epochs (epoch 6), before the schedule is done (epoch 15).
    let summary = run(&frozen(Some(2), Some(5), 1000), PLATEAU_SEED);
    assert_eq!(summary.stop, StopReason::EarlyStopping);
    assert!(summary.stopped_early);
    assert_eq!(etas(&summary), plateau_etas(2)[..6].to_vec());

    // The schedule first: early stopping would need 20 stale epochs.
    let summary = run(&frozen(Some(2), Some(20), 1000), PLATEAU_SEED);
    assert_eq!(summary.stop, StopReason::EtaScheduleExhausted);
    assert_eq!(etas(&summary), plateau_etas(2));

    // Both in epoch 15 (14 stale epochs): early stopping is the reason given.
    let summary = run(&frozen(Some(2), Some(14), 1000), PLATEAU_SEED);
    assert_eq!(summary.stop, StopReason::EarlyStopping);
    assert!(summary.stopped_early);
    assert_eq!(summary.epochs.len(), 15);
}

#[test]
fn the_epoch_limit_can_come_first() {
    let summary = run(&frozen(Some(2), None, 10), PLATEAU_SEED);
    assert_eq!(summary.stop, StopReason::AllEpochs);
    assert_eq!(etas(&summary), plateau_etas(2)[..10].to_vec());
    // Exhausted in the last epoch: all epochs ran.
    let summary = run(&frozen(Some(2), None, 15), PLATEAU_SEED);
    assert_eq!(summary.stop, StopReason::AllEpochs);
    assert_eq!(summary.epochs.len(), 15);
    // Off: eta stays, network2's behaviour.
    let summary = run(&frozen(None, None, 12), PLATEAU_SEED);
    assert_eq!(summary.stop, StopReason::AllEpochs);
    assert!(etas(&summary).iter().all(|&e| e == FROZEN_ETA));
}

/// Replays the rule on the reported accuracies of a run that learns: each epoch's eta and the
/// stopping epoch must follow from them.
#[test]
fn learning_run_follows_the_rule() {
    for seed in [1, 2, 3] {
        let config = SgdConfig {
            epochs: 300,
            mini_batch_size: 5,
            eta: 2.0,
            lambda: 0.5,
            halve_eta_after: Some(3),
            monitor: Monitor {
                evaluation_accuracy: true,
                ..Monitor::default()
            },
            ..SgdConfig::default()
        };
        let summary = run(&config, seed);
        let (mut best, mut stale, mut eta, mut halvings) = (0, 0, config.eta, 0);
        for (i, r) in summary.epochs.iter().enumerate() {
            assert_eq!(r.eta, eta, "seed {seed}, epoch {}", r.epoch);
            let correct = r.evaluation_accuracy.unwrap().correct;
            if correct > best {
                best = correct;
                stale = 0;
            } else {
                stale += 1;
            }
            if stale == 3 {
                if halvings == 6 {
                    assert_eq!(i + 1, summary.epochs.len(), "seed {seed}: stops here");
                    assert_eq!(summary.stop, StopReason::EtaScheduleExhausted);
                    break;
                }
                halvings += 1;
                eta /= 2.0;
                stale = 0;
            }
        }
        assert!(halvings >= 1, "seed {seed}: the test should see a halving");
    }
}

#[test]
fn evaluation_is_computed_for_the_schedule_when_not_monitored() {
    let config = SgdConfig {
        monitor: Monitor::default(),
        ..frozen(Some(1), None, 100)
    };
    let summary = run(&config, PLATEAU_SEED);
    assert_eq!(summary.stop, StopReason::EtaScheduleExhausted);
    assert_eq!(summary.epochs.len(), 8);
    assert!(
        summary
            .epochs
            .iter()
            .all(|r| r.evaluation_accuracy.is_none())
    );
}

#[test]
fn bad_schedules_are_errors() {
    let zero = SgdConfig {
        halve_eta_after: Some(0),
        ..SgdConfig::default()
    };
    let err = zero.validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid eta halving: must be at least 1 epoch without improvement"
    );
    let (x, y) = data(10, 1);
    let training = FloatExamples::new(&x, &y, 6).unwrap();
    let mut net = Network::new(&[6, 3], Cost::CrossEntropy, Init::Default, 0).unwrap();
    assert!(sgd(&mut net, &training, None, &zero, &mut ()).is_err());
    let config = SgdConfig {
        halve_eta_after: Some(2),
        ..SgdConfig::default()
    };
    for evaluation in [None, Some(FloatExamples::new(&[], &[], 6).unwrap())] {
        let err = sgd(
            &mut net,
            &training,
            evaluation.as_ref().map(|e| e as _),
            &config,
            &mut (),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("eta halving: it watches the evaluation accuracy"),
            "{err}"
        );
    }
}
