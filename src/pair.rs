//! Two threads that split work too fine for rayon's fork: a mini-batch step's sparse products
//! take tens of microseconds, and a rayon worker that found nothing to do goes to sleep
//! within that time, so every `rayon::join` of the step paid a futex wake-up (measured: about
//! 1.6 context switches per join, and a mini-batch-100 epoch of 784-30-10 1.5x slower split
//! than not).
//!
//! A [`Pair`] keeps a second thread spinning for the length of a closure ([`Pair::run`]):
//! the caller posts a job ([`Pair::join`]), runs its own half, then either finds the job taken
//! by the helper and waits for it, or takes it back and runs it itself. The helper is a rayon
//! job, so it may never start (a pool of one thread, or a pool busy elsewhere); then the
//! caller runs every job itself, in the same order, with the same results. Whoever runs a
//! job, the job is the same code on the same data, so results never depend on which thread
//! ran what. Between jobs the helper also runs pending pieces of the pool's work
//! (`rayon::yield_now`): a large GEMM that the owner splits across the pool would otherwise
//! find no other thread free and run all on the owner.
//!
//! The only `unsafe` here is the hand-over of a borrowed closure to the helper: the caller
//! never leaves [`Pair::join`] (not even by unwinding) before the job is finished or taken
//! back unrun, so the borrow outlives every use of it.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread::{self, ThreadId};

/// No job is posted.
const IDLE: u8 = 0;
/// A job is posted and nobody has taken it.
const POSTED: u8 = 1;
/// The helper is running the posted job.
const RUNNING: u8 = 2;
/// The helper finished the posted job.
const DONE: u8 = 3;
/// The owner left [`Pair::run`]'s closure: the helper returns.
const CLOSED: u8 = 4;

/// Idle looks of a waiting helper between polite yields of its core: at about 0.1 us a look
/// (the state, and the pool for pending work), about 100 microseconds, longer than a step's
/// gap between two jobs.
const SPINS_BEFORE_YIELD: u32 = 1 << 10;

/// A job as the helper sees it: a borrowed closure with its lifetime erased.
type ErasedJob = *const (dyn Fn() + Sync + 'static);

/// The owner's side and the helper's side of a two-thread fork; see the module documentation.
pub(crate) struct Pair {
    state: AtomicU8,
    /// The posted job; written by the owner only while no job is posted, read by the helper
    /// only after it took a posted job.
    job: UnsafeCell<Option<ErasedJob>>,
    /// A panic of a job on the helper, re-raised on the owner.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// The thread of [`Pair::run`]'s closure, which is never the helper.
    owner: ThreadId,
}

// SAFETY: the fields shared across threads are the atomic state, the mutex, and `job`, whose
// accesses the state orders: the owner writes it only in IDLE (no helper reads it then), and
// the helper reads it only after its CAS from POSTED (Acquire, after the owner's Release
// store of POSTED that followed the write). The job itself is `Sync`, so calling it from the
// helper while the owner holds it is allowed.
unsafe impl Sync for Pair {}

impl Pair {
    /// Runs `work` with a [`Pair`] whose helper is the other half of a `rayon::join` on the
    /// current pool: with two or more threads the helper usually starts at once; if it does
    /// not, `work` still completes, running its jobs itself.
    pub(crate) fn run<R: Send>(work: impl FnOnce(&Pair) -> R + Send) -> R {
        let pair = Pair::for_this_thread();
        let (result, ()) = rayon::join(
            || {
                let _close = CloseOnDrop(&pair);
                work(&pair)
            },
            || pair.serve(),
        );
        result
    }

    /// [`Pair::run`] with a helper on a thread of its own (`helper`), or with none: the
    /// hand-over without rayon, whose epoch-based collector Miri cannot check.
    #[cfg(test)]
    fn run_with<R: Send>(helper: bool, work: impl FnOnce(&Pair) -> R + Send) -> R {
        let pair = Pair::for_this_thread();
        thread::scope(|s| {
            if helper {
                s.spawn(|| pair.serve());
            }
            let _close = CloseOnDrop(&pair);
            work(&pair)
        })
    }

    /// A pair owned by the calling thread, with no job posted.
    fn for_this_thread() -> Pair {
        Pair {
            state: AtomicU8::new(IDLE),
            job: UnsafeCell::new(None),
            panic: Mutex::new(None),
            owner: thread::current().id(),
        }
    }

    /// Runs `a` here and `b` on the helper if it takes it, else here after `a`; returns both
    /// results. A panic in either is re-raised here once both are finished or `b` is taken
    /// back.
    pub(crate) fn join<RA, RB: Send>(
        &self,
        a: impl FnOnce() -> RA,
        b: impl FnOnce() -> RB + Send,
    ) -> (RA, RB) {
        debug_assert_eq!(
            thread::current().id(),
            self.owner,
            "join from the owner only"
        );
        let b = Mutex::new(Some(b));
        let b_result = Mutex::new(None);
        let job = || {
            let f = b.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(f) = f {
                let r = f();
                *b_result.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            }
        };
        let job: &(dyn Fn() + Sync) = &job;
        // SAFETY: only the lifetime is erased (same fat-pointer layout). The helper calls the
        // job only between its CAS from POSTED and its store of DONE, and `Claim` (below,
        // also on unwinding) does not return until the state has left RUNNING: no call of
        // the job outlives this frame, which owns everything the job borrows.
        let erased: ErasedJob = unsafe { std::mem::transmute(job as *const (dyn Fn() + Sync)) };
        // SAFETY: the state is IDLE (every join leaves it so, and only the owner posts), so the
        // helper does not read `job` now; the Release store below publishes the write.
        unsafe { *self.job.get() = Some(erased) };
        self.state.store(POSTED, Ordering::Release);
        let claim = Claim(self);
        let a_result = a();
        let ran_here = claim.finish();
        if ran_here {
            job();
        }
        let b_result = b_result
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .expect("the job ran here or on the helper");
        (a_result, b_result)
    }

    /// The helper's loop: takes and runs posted jobs until the owner closes the pair.
    fn serve(&self) {
        if thread::current().id() == self.owner {
            // rayon ran the helper half on the owner's thread (nobody stole it, or the owner
            // picked it up while waiting): the owner's work is over or will run its own jobs.
            return;
        }
        let mut spins = 0u32;
        loop {
            match self.state.load(Ordering::Acquire) {
                POSTED => {
                    if self
                        .state
                        .compare_exchange(POSTED, RUNNING, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        // SAFETY: the CAS from POSTED (Acquire) follows the owner's write of
                        // the job and its Release store of POSTED; the owner does not touch
                        // the slot or leave `join` until the state leaves RUNNING.
                        let job = unsafe { (*self.job.get()).expect("a posted job") };
                        // SAFETY: the job's borrows live until the owner sees DONE (see join).
                        let outcome = panic::catch_unwind(AssertUnwindSafe(|| unsafe { (*job)() }));
                        if let Err(payload) = outcome {
                            *self.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(payload);
                        }
                        self.state.store(DONE, Ordering::Release);
                    }
                    spins = 0;
                }
                CLOSED => return,
                // Between jobs, one piece of the pool's pending work, if any: the owner's
                // steps may split a large GEMM across the pool, whose pieces would otherwise
                // wait for this thread, busy here, and all run on the owner's.
                _ if rayon::yield_now() == Some(rayon::Yield::Executed) => spins = 0,
                _ => {
                    spins += 1;
                    if spins >= SPINS_BEFORE_YIELD {
                        spins = 0;
                        thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
        }
    }
}

/// The owner's hold on a posted job: [`Claim::finish`] (or dropping it, when the owner's half
/// unwinds) either takes the job back unrun or waits until the helper has finished it.
struct Claim<'a>(&'a Pair);

impl Claim<'_> {
    /// `true` if the job was taken back and is to be run by the caller; `false` if the
    /// helper ran it. Re-raises a panic of the job on the helper.
    fn finish(self) -> bool {
        let pair = self.0;
        std::mem::forget(self);
        let ran_there = pair.settle();
        if let Some(payload) = pair.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
            panic::resume_unwind(payload);
        }
        !ran_there
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        // Unwinding from the owner's half: the job must not run on after this frame.
        self.0.settle();
    }
}

impl Pair {
    /// Takes the posted job back (`false`) or waits for the helper to finish it (`true`);
    /// leaves the state IDLE.
    fn settle(&self) -> bool {
        let ran_there =
            match self
                .state
                .compare_exchange(POSTED, IDLE, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => false,
                Err(_) => {
                    while self.state.load(Ordering::Acquire) != DONE {
                        std::hint::spin_loop();
                    }
                    true
                }
            };
        self.state.store(IDLE, Ordering::Relaxed);
        ran_there
    }
}

/// Closes the pair when the owner's closure returns or unwinds, so that the helper returns.
struct CloseOnDrop<'a>(&'a Pair);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        // No job is posted here: every join settles its job before returning.
        self.0.state.store(CLOSED, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// Joins per test: enough for the helper to take some jobs and the owner others.
    const ROUNDS: u64 = if cfg!(miri) { 20 } else { 2000 };

    /// Every job runs once, on one side or the other, and both results come back.
    fn sums(pair: &Pair) -> u64 {
        let mut total = 0u64;
        for i in 0..ROUNDS {
            let (a, b) = pair.join(|| i * 2, || i * 3 + 1);
            total += a + b;
        }
        total
    }

    fn expected_sums() -> u64 {
        (0..ROUNDS).map(|i| 5 * i + 1).sum()
    }

    /// Two halves that write disjoint parts of one borrowed buffer.
    fn halves(pair: &Pair) {
        let mut data = vec![0u32; 100];
        let rounds = ROUNDS.min(50) as u32;
        for round in 1..=rounds {
            let (lo, hi) = data.split_at_mut(50);
            pair.join(
                || lo.iter_mut().for_each(|x| *x += round),
                || hi.iter_mut().for_each(|x| *x += 2 * round),
            );
        }
        let sum: u32 = (1..=rounds).sum();
        assert!(data[..50].iter().all(|&x| x == sum));
        assert!(data[50..].iter().all(|&x| x == 2 * sum));
    }

    #[test]
    fn miri_jobs_run_once_with_a_helper_thread_or_without() {
        for helper in [true, false] {
            assert_eq!(Pair::run_with(helper, sums), expected_sums(), "{helper}");
            Pair::run_with(helper, halves);
        }
    }

    #[test]
    fn miri_a_panic_on_either_side_reaches_the_owner_after_both_settle() {
        for helper in [true, false] {
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                Pair::run_with(helper, |pair| {
                    pair.join(|| (), || panic!("helper side"));
                })
            }));
            assert!(caught.is_err(), "{helper}");
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                Pair::run_with(helper, |pair| {
                    let v: Vec<u8> = (1..=64).collect();
                    pair.join(
                        || panic!("owner side"),
                        || v.iter().map(|&x| u32::from(x)).sum::<u32>(),
                    );
                })
            }));
            assert!(caught.is_err(), "{helper}");
        }
    }

    /// While it waits for jobs, the helper runs pieces of the pool's work that the owner
    /// splits (a large GEMM of a step), instead of leaving them all to the owner.
    #[test]
    fn the_waiting_helper_takes_pool_work() {
        use rayon::prelude::*;
        use std::time::{Duration, Instant};
        pool(2).install(|| {
            Pair::run(|pair| {
                let owner = thread::current().id();
                // Wait (boundedly) until the helper has started and taken a job.
                let started = Instant::now();
                while pair.join(|| (), || thread::current().id()).1 == owner {
                    assert!(started.elapsed() < Duration::from_secs(10), "no helper");
                    thread::sleep(Duration::from_micros(100));
                }
                let threads: Vec<ThreadId> = (0..64)
                    .into_par_iter()
                    .with_max_len(1)
                    .map(|_| {
                        thread::sleep(Duration::from_millis(1));
                        thread::current().id()
                    })
                    .collect();
                assert!(threads.iter().any(|&t| t != owner), "all on the owner");
            })
        });
    }

    #[test]
    fn on_a_rayon_pool_of_any_size() {
        for threads in [1, 2, 3] {
            let total = pool(threads).install(|| Pair::run(sums));
            assert_eq!(total, expected_sums(), "{threads} threads");
            pool(threads).install(|| Pair::run(halves));
        }
    }
}
