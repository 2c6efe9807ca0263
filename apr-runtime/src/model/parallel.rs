//! Running the chunks of one batch on several threads: a small pool of
//! worker threads, started the first time a batch is split (never at init)
//! and kept for the life of the process.
//!
//! Why a pool and not `std::thread::scope`: on the 2-core VMs these
//! benchmarks run on, spawning and joining one thread took 150–200 µs, about
//! the time a whole 256-row batch of the benchmark MLP takes on one thread;
//! waking a parked worker and hearing back from it takes ~12 µs. Workers also
//! keep their per-thread buffers (the gemm's packed weights, activations)
//! warm from one batch to the next.
//!
//! How [`run`] works: the caller publishes a [`Job`] (`n` chunks, a shared
//! closure) to the pool's queue, once per helper it wants, then claims and
//! runs chunks itself. Every thread claims chunks from the job's atomic
//! counter, so a busy or slow-to-wake pool only means the caller does more of
//! the work itself; it never waits for a chunk nobody has started. `run`
//! returns when every claimed chunk has finished, and re-raises a worker's
//! panic on the caller.
//!
//! The one `unsafe` idea: the shared closure borrows the caller's stack, so
//! the job holds it as a lifetime-erased pointer. It is sound because a
//! thread calls it only for a chunk it has claimed, a chunk can be claimed
//! only while `run` has not returned, and `run` (even when unwinding) does
//! not return until every claimed chunk is finished.
#![allow(unsafe_code)]

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

/// A chunk's work, shared by every thread of the job.
type Task<'t> = dyn Fn(usize) + Sync + 't;

/// The shared closure of a job with its lifetime erased (see the module
/// documentation). Only ever dereferenced by [`Job::call`].
struct ErasedTask(*const Task<'static>);

// SAFETY: the pointee is `Sync` (`Task` requires it), so calling it through
// a shared reference from any thread is what its type allows; the pointer
// itself is plain data. Its validity is [`Job::call`]'s concern.
unsafe impl Send for ErasedTask {}
// SAFETY: as for `Send`: sharing the pointer only shares `&Task`, which is
// `Sync`.
unsafe impl Sync for ErasedTask {}

/// One split batch: `n` chunks, claimed one at a time by whichever thread
/// gets there first.
struct Job {
    task: ErasedTask,
    n: usize,
    /// The next unclaimed chunk; never exceeds `n`.
    next: AtomicUsize,
    /// Chunks finished (run to the end or panicked).
    finished: Mutex<usize>,
    all_finished: Condvar,
    /// The first panic a chunk raised.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held; a poisoned lock still
    // holds consistent data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Job {
    /// Claims the next chunk, or `None` when all are claimed (or the job is
    /// closed).
    fn claim(&self) -> Option<usize> {
        self.next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |i| {
                (i < self.n).then_some(i + 1)
            })
            .ok()
    }

    /// Runs claimed chunk `i` on this thread and marks it finished, catching
    /// a panic for [`run`] to re-raise.
    fn call(&self, i: usize) {
        // SAFETY: `i` was claimed (by `claim`, so `i < n`) and is not yet
        // finished. `run` keeps the closure borrowed until `finished`
        // reaches the number of claimed chunks, which cannot happen before
        // `finish` below, so the pointer is valid for this call.
        let task: &Task<'_> = unsafe { &*self.task.0 };
        self.run_claimed(|| task(i));
    }

    /// Runs `f` for a claimed chunk and marks it finished, catching a panic.
    fn run_claimed(&self, f: impl FnOnce()) {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
            lock(&self.panic).get_or_insert(payload);
        }
        let mut finished = lock(&self.finished);
        *finished += 1;
        if *finished == self.n {
            self.all_finished.notify_all();
        }
    }

    /// Stops further claims and waits until every chunk claimed so far has
    /// finished.
    fn close_and_wait(&self) {
        let claimed = self.next.swap(self.n, Ordering::AcqRel);
        let mut finished = lock(&self.finished);
        while *finished < claimed {
            finished = self
                .all_finished
                .wait(finished)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Closes the job and waits for its claimed chunks when [`run`] leaves, by
/// returning or by unwinding.
struct WaitOnDrop<'j>(&'j Job);

impl Drop for WaitOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close_and_wait();
    }
}

/// The worker threads and the queue of jobs they help with.
struct Pool {
    queue: Mutex<Queue>,
    work: Condvar,
}

struct Queue {
    /// One entry per helper a job asked for.
    jobs: VecDeque<Arc<Job>>,
    /// Worker threads started so far.
    workers: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        queue: Mutex::new(Queue {
            jobs: VecDeque::new(),
            workers: 0,
        }),
        work: Condvar::new(),
    })
}

impl Pool {
    /// Asks `helpers` workers to help with `job`, starting workers until
    /// there are that many. A worker that cannot be started is not an error:
    /// the caller runs the chunks nobody else claims.
    fn publish(&'static self, job: &Arc<Job>, helpers: usize) {
        let mut queue = lock(&self.queue);
        while queue.workers < helpers {
            let spawned = std::thread::Builder::new()
                .name(format!("apr-batch-{}", queue.workers + 1))
                .spawn(move || self.work_forever());
            if spawned.is_err() {
                break;
            }
            queue.workers += 1;
        }
        for _ in 0..helpers.min(queue.workers) {
            queue.jobs.push_back(Arc::clone(job));
        }
        drop(queue);
        if helpers == 1 {
            self.work.notify_one();
        } else {
            self.work.notify_all();
        }
    }

    fn work_forever(&self) {
        loop {
            let job = {
                let mut queue = lock(&self.queue);
                loop {
                    if let Some(job) = queue.jobs.pop_front() {
                        break job;
                    }
                    queue = self
                        .work
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            while let Some(i) = job.claim() {
                job.call(i);
            }
        }
    }
}

/// Runs chunks `0..n`, each exactly once: on this thread through `caller`
/// (which may borrow mutably, e.g. the caller's scratch buffers) and on up to
/// `threads - 1` pool workers through `shared`. Which thread runs which chunk
/// is not fixed, so both closures must compute a chunk the same way. Returns
/// when every chunk has run; a panic in any chunk is re-raised here.
pub(super) fn run(
    n: usize,
    threads: usize,
    caller: &mut dyn FnMut(usize),
    shared: &(dyn Fn(usize) + Sync),
) {
    let helpers = threads.min(n).saturating_sub(1);
    if helpers == 0 {
        (0..n).for_each(caller);
        return;
    }
    let task: *const Task<'_> = shared;
    // SAFETY: only the lifetime changes (same fat-pointer layout). The
    // erased pointer is dereferenced only in `Job::call`, whose proof
    // relies on `WaitOnDrop` below, created before any thread can claim a
    // chunk.
    let task: *const Task<'static> =
        unsafe { std::mem::transmute::<*const Task<'_>, *const Task<'static>>(task) };
    let job = Arc::new(Job {
        task: ErasedTask(task),
        n,
        next: AtomicUsize::new(0),
        finished: Mutex::new(0),
        all_finished: Condvar::new(),
        panic: Mutex::new(None),
    });
    let wait = WaitOnDrop(&job);
    pool().publish(&job, helpers);
    while let Some(i) = job.claim() {
        job.run_claimed(|| caller(i));
    }
    drop(wait);
    let payload = lock(&job.panic).take();
    if let Some(payload) = payload {
        panic::resume_unwind(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn every_chunk_runs_once() {
        for threads in 1..=4 {
            for n in [0, 1, 2, 3, 7, 64] {
                let counts: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
                let mut by_caller = 0;
                run(
                    n,
                    threads,
                    &mut |i| {
                        by_caller += 1;
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    },
                    &|i| {
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    },
                );
                assert!(by_caller <= n);
                for c in &counts {
                    assert_eq!(
                        c.load(Ordering::Relaxed),
                        1,
                        "{threads} threads, {n} chunks"
                    );
                }
            }
        }
    }

    #[test]
    fn a_worker_panic_reaches_the_caller() {
        let result = panic::catch_unwind(|| {
            run(8, 2, &mut |_| {}, &|i| {
                if i == 5 {
                    panic!("chunk five");
                }
            })
        });
        // Chunk 5 ran on the caller (no panic) or on a worker (re-raised):
        // either way the pool keeps working afterwards.
        if let Err(payload) = result {
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"chunk five"));
        }
        let total = AtomicU64::new(0);
        run(
            4,
            2,
            &mut |i| {
                total.fetch_add(i as u64, Ordering::Relaxed);
            },
            &|i| {
                total.fetch_add(i as u64, Ordering::Relaxed);
            },
        );
        assert_eq!(total.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn a_caller_panic_waits_for_the_workers() {
        let data = [1u64; 4];
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            run(4, 2, &mut |_| panic!("caller chunk"), &|i| {
                std::thread::sleep(std::time::Duration::from_millis(2));
                assert_eq!(data[i], 1);
            })
        }));
        assert!(result.is_err());
    }
}
