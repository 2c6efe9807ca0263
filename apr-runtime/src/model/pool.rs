//! Batches of a shared model ([`super::Model::into_shared`]) split across a
//! pool of parked worker threads: no `unsafe`, nothing started at init.
//!
//! The scoped threads of [`super::parallel`] cost a spawn and a join per
//! batch (65–70 µs measured on a 2-vCPU VM), and each new thread starts
//! with cold buffers. Here a worker is started by the first split batch that
//! needs it, polls for the next batch for a while ([`SPIN`]) and then parks
//! on its channel, keeping its buffers warm. A pool worker outlives any borrow, so what it
//! runs owns its data: the caller hands it an `Arc` of a [`Task`] (which
//! holds an `Arc` of the model and a copy of the rows) rather than
//! closures that borrow the caller's stack.
//!
//! Every thread, the caller included, claims chunks from one counter, so a
//! worker that is busy (with another invocation's batch, under Lambda
//! Managed Instances) or slow to wake only means the caller does more of the
//! work; the caller returns once every chunk has finished, whoever ran it,
//! and re-raises the first panic of any chunk with its own payload. A worker
//! survives a panicking chunk.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::Scratch;

/// The work of one batch: chunk `i`, computed in the given scratch. It owns
/// everything it reads and leaves its results where the caller finds them.
pub(super) type Task = Arc<dyn Fn(usize, &mut Scratch) + Send + Sync>;

/// One batch in flight: its chunks, who claimed them, and how many are done.
struct Batch {
    chunks: usize,
    next: AtomicUsize,
    /// How many chunks have finished: what the caller polls, without
    /// taking the lock the finishing worker needs.
    finished_chunks: AtomicUsize,
    task: Task,
    progress: Mutex<Progress>,
    finished: Condvar,
}

#[derive(Default)]
struct Progress {
    done: usize,
    panic: Option<Box<dyn Any + Send>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Batch {
    /// Claims and runs chunks until none is left. A chunk's panic is caught
    /// (kept for the caller) so that the count of finished chunks is exact.
    fn work(&self, scratch: &mut Scratch) {
        while let Ok(i) = self
            .next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |i| {
                (i < self.chunks).then_some(i + 1)
            })
        {
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| (self.task)(i, scratch)));
            let mut progress = lock(&self.progress);
            progress.done += 1;
            self.finished_chunks.store(progress.done, Ordering::Release);
            if let Err(payload) = outcome {
                progress.panic.get_or_insert(payload);
            }
            if progress.done == self.chunks {
                self.finished.notify_all();
            }
        }
    }
}

/// The parked workers: one channel each, started on first use.
static WORKERS: Mutex<Vec<Sender<Arc<Batch>>>> = Mutex::new(Vec::new());

/// Hands `batch` to worker `index`, starting workers up to it if needed.
/// Returns `false` when no worker could take it (a thread could not be
/// started): the caller then runs those chunks itself.
fn hand_over(index: usize, batch: &Arc<Batch>) -> bool {
    let mut workers = lock(&WORKERS);
    while workers.len() <= index {
        let (sender, receiver) = mpsc::channel::<Arc<Batch>>();
        let started = std::thread::Builder::new()
            .name(format!("apr-batch-{}", workers.len() + 1))
            .spawn(move || {
                // Kept from batch to batch: no re-allocation, warm pages.
                let mut scratch = Scratch::default();
                while let Some(batch) = next_batch(&receiver) {
                    batch.work(&mut scratch);
                }
            });
        if started.is_err() {
            return false;
        }
        workers.push(sender);
    }
    workers
        .get(index)
        .is_some_and(|worker| worker.send(Arc::clone(batch)).is_ok())
}

/// How long a worker keeps polling for the next batch before it parks.
/// Waking a parked thread costs tens of microseconds on a VM (an IPI to an
/// idle vCPU), which a 256-row MLP batch (about 230 µs per thread on two)
/// cannot hide; a worker still polling when the next batch arrives starts
/// at once. Bounded, so an idle function's worker sleeps almost at once.
const SPIN: Duration = Duration::from_micros(200);

/// The next batch for this worker: polled for up to [`SPIN`], then waited
/// for. `None` once the pool's sender is gone.
fn next_batch(receiver: &Receiver<Arc<Batch>>) -> Option<Arc<Batch>> {
    let start = Instant::now();
    while start.elapsed() < SPIN {
        match receiver.try_recv() {
            Ok(batch) => return Some(batch),
            Err(TryRecvError::Disconnected) => return None,
            // A yield, not a pause: with more threads than cores the
            // caller it waits for gets the core.
            Err(TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
    receiver.recv().ok()
}

/// Runs chunks `0..chunks` of `task`, each exactly once, on this thread (in
/// `scratch`) and on up to `helpers` pool workers; returns when all have
/// finished, re-raising the first panic.
pub(super) fn run(chunks: usize, helpers: usize, task: Task, scratch: &mut Scratch) {
    let batch = Arc::new(Batch {
        chunks,
        next: AtomicUsize::new(0),
        finished_chunks: AtomicUsize::new(0),
        task,
        progress: Mutex::new(Progress::default()),
        finished: Condvar::new(),
    });
    for index in 0..helpers.min(chunks.saturating_sub(1)) {
        if !hand_over(index, &batch) {
            break;
        }
    }
    batch.work(scratch);
    // The last chunks are in a worker's hands: poll for a while before
    // sleeping, for the same reason the workers do ([`SPIN`]).
    let start = Instant::now();
    while start.elapsed() < SPIN && batch.finished_chunks.load(Ordering::Acquire) < chunks {
        // A yield, not a pause: with more threads than cores (an explicit
        // APR_LAMBDA_THREADS) the thread being waited for gets the core.
        std::thread::yield_now();
    }
    let mut progress = lock(&batch.progress);
    while progress.done < chunks {
        progress = batch
            .finished
            .wait(progress)
            .unwrap_or_else(PoisonError::into_inner);
    }
    if let Some(payload) = progress.panic.take() {
        drop(progress);
        panic::resume_unwind(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn counting(n: usize) -> (Task, Arc<Vec<AtomicU64>>) {
        let counts: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
        let seen = Arc::clone(&counts);
        let task: Task = Arc::new(move |i, _| {
            if let Some(c) = seen.get(i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        });
        (task, counts)
    }

    #[test]
    fn every_chunk_runs_once() {
        for helpers in 0..=3 {
            for n in [0, 1, 2, 3, 7, 64] {
                let (task, counts) = counting(n);
                run(n, helpers, task, &mut Scratch::default());
                assert!(
                    counts.iter().all(|c| c.load(Ordering::Relaxed) == 1),
                    "{helpers} helpers, {n} chunks"
                );
            }
        }
    }

    #[test]
    fn concurrent_callers_share_the_workers() {
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let (task, counts) = counting(8);
                        run(8, 2, task, &mut Scratch::default());
                        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
                    }
                });
            }
        });
    }

    #[test]
    fn a_chunk_panic_reaches_the_caller_and_the_workers_survive() {
        let task: Task = Arc::new(|i, _| {
            if i == 3 {
                panic!("chunk three");
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        });
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            run(8, 2, task, &mut Scratch::default())
        }));
        let payload = result.err().unwrap_or_else(|| Box::new("no panic"));
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"chunk three"));
        let (task, counts) = counting(16);
        run(16, 2, task, &mut Scratch::default());
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    }
}
