//! Running the chunks of one batch on several threads, with
//! `std::thread::scope`: no `unsafe`, nothing started at init, nothing left
//! running between batches.
//!
//! [`run`] spawns up to `threads - 1` scoped helper threads, each handed
//! one of the caller's [`Scratch`] buffers (kept by the caller from batch to
//! batch, so activations are not re-allocated each time); every thread,
//! the caller included, claims chunks from one atomic counter, so a helper
//! that is slow to start only means the caller does more of the work. The
//! scope joins every helper before `run` returns, and re-raises the first
//! panic (with its own payload) on the caller.
//!
//! A spawned thread costs tens of microseconds (150–200 µs was measured on a
//! loaded 2-core VM), so the model splits a batch only when each thread gets
//! far more work than that ([`super::Model::batch_threads`]).

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Scratch;

/// Runs chunks `0..n`, each exactly once: on this thread through `caller`
/// (which may borrow mutably, e.g. the caller's scratch buffers) and on up to
/// `helpers.len()` scoped threads through `shared`, each with one of
/// `helpers` as its scratch. Which thread runs which chunk is not fixed, so
/// both closures must compute a chunk the same way. Returns when every
/// chunk has run; a panic in any chunk is re-raised here.
pub(super) fn run(
    n: usize,
    helpers: &mut [Scratch],
    caller: &mut dyn FnMut(usize),
    shared: &(dyn Fn(usize, &mut Scratch) + Sync),
) {
    let n_helpers = helpers.len().min(n.saturating_sub(1));
    if n_helpers == 0 {
        (0..n).for_each(caller);
        return;
    }
    let next = AtomicUsize::new(0);
    let claim = || {
        next.fetch_update(Ordering::AcqRel, Ordering::Acquire, |i| {
            (i < n).then_some(i + 1)
        })
        .ok()
    };
    let panicked = std::thread::scope(|scope| {
        let running: Vec<_> = helpers
            .iter_mut()
            .take(n_helpers)
            .map(|scratch| {
                let claim = &claim;
                scope.spawn(move || {
                    while let Some(i) = claim() {
                        shared(i, scratch);
                    }
                })
            })
            .collect();
        let mut panicked = panic::catch_unwind(AssertUnwindSafe(|| {
            while let Some(i) = claim() {
                caller(i);
            }
        }))
        .err();
        // Join every helper (so the scope itself never panics), keeping
        // the first panic with its own payload.
        for helper in running {
            if let Err(payload) = helper.join() {
                panicked.get_or_insert(payload);
            }
        }
        panicked
    });
    if let Some(payload) = panicked {
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
                let mut helpers = vec![Scratch::default(); threads - 1];
                run(
                    n,
                    &mut helpers,
                    &mut |i| {
                        by_caller += 1;
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    },
                    &|i, _| {
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
            run(8, &mut [Scratch::default()], &mut |_| {}, &|i, _| {
                if i == 5 {
                    panic!("chunk five");
                }
            })
        });
        // Chunk 5 ran on the caller (no panic) or on a helper (re-raised):
        // either way the next batch runs normally.
        if let Err(payload) = result {
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"chunk five"));
        }
        let total = AtomicU64::new(0);
        run(
            4,
            &mut [Scratch::default()],
            &mut |i| {
                total.fetch_add(i as u64, Ordering::Relaxed);
            },
            &|i, _| {
                total.fetch_add(i as u64, Ordering::Relaxed);
            },
        );
        assert_eq!(total.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn a_helper_panic_reaches_the_caller_with_its_payload() {
        use std::sync::atomic::AtomicBool;
        let helper_ran = AtomicBool::new(false);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            run(
                8,
                &mut [Scratch::default()],
                &mut |_| {
                    // Leave chunks to the helper until it has taken one.
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                    while !helper_ran.load(Ordering::Acquire)
                        && std::time::Instant::now() < deadline
                    {
                        std::thread::yield_now();
                    }
                },
                &|_, _| {
                    helper_ran.store(true, Ordering::Release);
                    panic!("helper chunk");
                },
            )
        }));
        assert!(helper_ran.load(Ordering::Acquire));
        let payload = result.err().unwrap_or_else(|| Box::new("no panic"));
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"helper chunk"));
    }

    #[test]
    fn a_caller_panic_waits_for_the_workers() {
        let data = [1u64; 4];
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            run(
                4,
                &mut [Scratch::default()],
                &mut |_| panic!("caller chunk"),
                &|i, _| {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    assert_eq!(data[i], 1);
                },
            )
        }));
        assert!(result.is_err());
    }
}
