//! The learning-rate schedule of the book's chapter 3 (`SgdConfig::halve_eta_after`), and why
//! [`super::sgd`] stopped.

/// How many halvings take eta down to `eta0 / 128`, where the schedule stops.
pub(crate) const HALVINGS_TO_STOP: u32 = 7;

/// Why [`super::sgd`] ended training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// Every epoch of `SgdConfig::epochs` ran (also when a rule fired after the last one).
    #[default]
    AllEpochs,
    /// Early stopping (`SgdConfig::early_stopping`) fired before the last epoch: that many
    /// epochs in a row without a new best evaluation accuracy.
    EarlyStopping,
    /// The learning-rate schedule (`SgdConfig::halve_eta_after`) fired before the last epoch
    /// with eta already at `eta0 / 64`: halving it again would reach `eta0 / 128`.
    EtaScheduleExhausted,
    /// [`super::Observer::interrupted`] asked to stop (a Ctrl-C): the run is not over, and
    /// the checkpoint offered at that point continues it ([`super::sgd_from`]).
    Interrupted,
}

/// The state of the halving schedule within one [`super::sgd`] run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EtaSchedule {
    /// Halve after this many epochs without improvement (`None`: eta stays `eta0`).
    after: Option<usize>,
    eta0: f32,
    halvings: u32,
    /// Epochs without a new best evaluation accuracy since the last new best or halving.
    stale: usize,
}

impl EtaSchedule {
    pub(crate) fn new(eta0: f32, after: Option<usize>) -> EtaSchedule {
        EtaSchedule {
            after,
            eta0,
            halvings: 0,
            stale: 0,
        }
    }

    /// The counters a checkpoint keeps: halvings so far, and epochs without improvement
    /// since the last new best or halving.
    pub(crate) fn counters(&self) -> (u32, usize) {
        (self.halvings, self.stale)
    }

    /// Sets the counters back to what [`EtaSchedule::counters`] returned.
    pub(crate) fn restore(&mut self, halvings: u32, stale: usize) {
        (self.halvings, self.stale) = (halvings, stale);
    }

    /// The learning rate of the next epoch: `eta0 / 2^halvings`, exact (a division by a
    /// power of two).
    pub(crate) fn eta(&self) -> f32 {
        self.eta0 / (1u32 << self.halvings) as f32
    }

    /// Counts an epoch whose evaluation accuracy was (`improved`) or was not a new best.
    /// Returns `true` when the schedule is exhausted: the epoch was the `after`-th without
    /// improvement at `eta0 / 64`, so the next halving would reach `eta0 / 128`.
    pub(crate) fn after_epoch(&mut self, improved: bool) -> bool {
        let Some(after) = self.after else {
            return false;
        };
        if improved {
            self.stale = 0;
            return false;
        }
        self.stale += 1;
        if self.stale < after {
            return false;
        }
        if self.halvings + 1 >= HALVINGS_TO_STOP {
            return true;
        }
        self.halvings += 1;
        self.stale = 0;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_after_n_stale_epochs_and_stops_at_one_128th() {
        let mut s = EtaSchedule::new(1.0, Some(2));
        let mut etas = Vec::new();
        let mut stopped = false;
        for epoch in 0..100 {
            etas.push(s.eta());
            // An improvement in the first epoch only.
            if s.after_epoch(epoch == 0) {
                stopped = true;
                break;
            }
        }
        assert!(stopped);
        // 1 improving epoch, then 2 epochs at each of 1, 1/2, ..., 1/64.
        let mut want = vec![1.0f32];
        for k in 0..7 {
            want.extend([1.0 / (1u32 << k) as f32; 2]);
        }
        assert_eq!(etas, want);
    }

    #[test]
    fn improvement_restarts_the_count_and_none_never_stops() {
        let mut s = EtaSchedule::new(0.5, Some(3));
        for improved in [false, false, true, false, false] {
            assert!(!s.after_epoch(improved));
        }
        assert_eq!(s.eta(), 0.5);
        assert!(!s.after_epoch(false));
        assert_eq!(s.eta(), 0.25);
        let mut off = EtaSchedule::new(0.5, None);
        for _ in 0..1000 {
            assert!(!off.after_epoch(false));
        }
        assert_eq!(off.eta(), 0.5);
    }
}
