//! How many threads one batch may use: the policy, read once.
//!
//! A large batch is split by rows across threads (see
//! [`Model::predict_batch`](crate::model::Model::predict_batch)). How many
//! threads that may be is decided here, from the environment, in this order:
//!
//! | rule | threads |
//! |---|---|
//! | [`APR_LAMBDA_THREADS`] is a positive integer | that many (at most [`MAX_THREADS`]) |
//! | [`AWS_LAMBDA_MAX_CONCURRENCY`] is above 1 (Lambda Managed Instances) | `available_parallelism / max_concurrency`, at least 1 |
//! | [`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`] is set (Lambda) | `memory_mb / 1769`, at least 1, at most `available_parallelism` |
//! | otherwise (local mode, the CLI, library use) | `available_parallelism` |
//!
//! Lambda allots CPU in proportion to memory: 1 769 MB buys one full vCPU
//! ([`MB_PER_VCPU`]), 10 240 MB six. Below 1 769 MB a function has less than
//! one vCPU of time, and a second thread only adds contention.
//!
//! Under Managed Instances one execution environment runs up to
//! `AWS_LAMBDA_MAX_CONCURRENCY` invocations at once (8 per vCPU by default),
//! so concurrent invocations already fill the cores: a batch may use only its
//! share, `cores / max_concurrency`, which is 1 unless the concurrency was set
//! below the core count. Splitting each batch further would put more runnable
//! threads than cores on the machine at full load, which adds hand-offs and
//! cache contention without adding throughput (measured in `BENCHMARKS.md`,
//! "Batches across threads").
//!
//! The decision is a pure function of its inputs ([`decide`]), so it is tested
//! without touching the process environment; [`configured`] applies it to the
//! real environment once, the first time a batch is large enough to be
//! split, and caches the answer for the life of the process. Nothing here
//! runs at start-up.
//!
//! ```
//! use apr_runtime::threads::{decide, ThreadInputs, ThreadSource};
//!
//! // A 4 096 MB function on a 6-vCPU host: two vCPUs of time.
//! let inputs = ThreadInputs {
//!     function_memory_mb: Some("4096"),
//!     available: 6,
//!     ..ThreadInputs::default()
//! };
//! let decision = decide(&inputs);
//! assert_eq!(decision.threads, 2);
//! assert_eq!(decision.source, ThreadSource::LambdaMemory { memory_mb: 4096 });
//! ```

use std::fmt;
use std::sync::OnceLock;

/// The environment variable that sets the thread count explicitly (a
/// positive integer; anything else is ignored).
pub const APR_LAMBDA_THREADS: &str = "APR_LAMBDA_THREADS";
/// The function's configured memory in MB, set by Lambda.
pub const AWS_LAMBDA_FUNCTION_MEMORY_SIZE: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
/// The invocations one execution environment runs at once, set by Lambda
/// Managed Instances.
pub const AWS_LAMBDA_MAX_CONCURRENCY: &str = "AWS_LAMBDA_MAX_CONCURRENCY";
/// The memory that buys one full vCPU on Lambda, in MB.
pub const MB_PER_VCPU: usize = 1769;
/// The most threads a batch ever uses, whatever is asked for.
pub const MAX_THREADS: usize = 64;

/// What the thread count is decided from: the raw values of the three
/// environment variables (`None` when unset) and the number of CPUs this
/// process may run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadInputs<'a> {
    /// [`APR_LAMBDA_THREADS`].
    pub apr_lambda_threads: Option<&'a str>,
    /// [`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`].
    pub function_memory_mb: Option<&'a str>,
    /// [`AWS_LAMBDA_MAX_CONCURRENCY`].
    pub max_concurrency: Option<&'a str>,
    /// `std::thread::available_parallelism()` (1 when unknown).
    pub available: usize,
}

impl Default for ThreadInputs<'_> {
    /// Nothing set, one CPU.
    fn default() -> Self {
        Self {
            apr_lambda_threads: None,
            function_memory_mb: None,
            max_concurrency: None,
            available: 1,
        }
    }
}

/// Which rule decided the thread count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadSource {
    /// [`APR_LAMBDA_THREADS`] was set.
    Explicit,
    /// Lambda Managed Instances: `available / max_concurrency`.
    ManagedInstances {
        /// The value of [`AWS_LAMBDA_MAX_CONCURRENCY`].
        max_concurrency: usize,
    },
    /// Lambda: the function's CPU share, `memory_mb / 1769`.
    LambdaMemory {
        /// The value of [`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`].
        memory_mb: usize,
    },
    /// Neither: every CPU this process may run on.
    AvailableParallelism,
}

/// The thread count a batch may use, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadDecision {
    /// At least 1, at most [`MAX_THREADS`].
    pub threads: usize,
    /// The rule that gave it.
    pub source: ThreadSource,
}

impl fmt::Display for ThreadDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.threads == 1 { "" } else { "s" };
        write!(f, "{} thread{plural} (", self.threads)?;
        match self.source {
            ThreadSource::Explicit => write!(f, "{APR_LAMBDA_THREADS}"),
            ThreadSource::ManagedInstances { max_concurrency } => write!(
                f,
                "Managed Instances, {AWS_LAMBDA_MAX_CONCURRENCY}={max_concurrency}"
            ),
            ThreadSource::LambdaMemory { memory_mb } => {
                write!(f, "{memory_mb} MB / {MB_PER_VCPU} MB per vCPU")
            }
            ThreadSource::AvailableParallelism => write!(f, "available parallelism"),
        }?;
        f.write_str(")")
    }
}

/// A positive integer, ignoring surrounding white space.
fn positive(value: Option<&str>) -> Option<usize> {
    value?.trim().parse::<usize>().ok().filter(|&n| n > 0)
}

/// The thread-count rules (see the module documentation) applied to
/// `inputs`. Pure: the same inputs always give the same answer.
pub fn decide(inputs: &ThreadInputs<'_>) -> ThreadDecision {
    let available = inputs.available.clamp(1, MAX_THREADS);
    if let Some(n) = positive(inputs.apr_lambda_threads) {
        return ThreadDecision {
            threads: n.min(MAX_THREADS),
            source: ThreadSource::Explicit,
        };
    }
    if let Some(max_concurrency) = positive(inputs.max_concurrency).filter(|&n| n > 1) {
        return ThreadDecision {
            threads: (available / max_concurrency).max(1),
            source: ThreadSource::ManagedInstances { max_concurrency },
        };
    }
    if let Some(memory_mb) = positive(inputs.function_memory_mb) {
        return ThreadDecision {
            threads: (memory_mb / MB_PER_VCPU).clamp(1, available),
            source: ThreadSource::LambdaMemory { memory_mb },
        };
    }
    ThreadDecision {
        threads: available,
        source: ThreadSource::AvailableParallelism,
    }
}

/// [`decide`] applied to this process's environment and
/// `std::thread::available_parallelism()`, read on the first call and cached
/// for the life of the process.
pub fn configured() -> ThreadDecision {
    static CONFIGURED: OnceLock<ThreadDecision> = OnceLock::new();
    *CONFIGURED.get_or_init(|| {
        let var = |name: &str| std::env::var(name).ok();
        let (threads, memory, concurrency) = (
            var(APR_LAMBDA_THREADS),
            var(AWS_LAMBDA_FUNCTION_MEMORY_SIZE),
            var(AWS_LAMBDA_MAX_CONCURRENCY),
        );
        decide(&ThreadInputs {
            apr_lambda_threads: threads.as_deref(),
            function_memory_mb: memory.as_deref(),
            max_concurrency: concurrency.as_deref(),
            available: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    })
}

/// How a model spreads one batch over threads; set with
/// [`Model::with_parallelism`](crate::model::Model::with_parallelism).
///
/// Rows go to threads in contiguous runs, whatever the setting, a thread
/// only for every [`MIN_ROWS_PER_THREAD`] rows and each run at least 10 rows
/// once its ends move to multiples of the gemm's tile rows; every row is
/// computed the same way whichever run it falls in: the answers are
/// bit-identical at any thread count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// Up to [`configured`] threads, for batches large enough to pay for
    /// them (the default).
    #[default]
    Auto,
    /// Up to this many threads, for batches large enough to pay for them.
    UpTo(usize),
    /// This many threads for every batch with rows enough, even where that
    /// is slower (for benchmarks and tests). 0 and 1 both mean one thread.
    Exactly(usize),
}

/// The fewest rows per thread of a split batch. A run's ends then move to
/// multiples of the gemm's tile rows (at most 3 rows each), which leaves
/// every run at least 10 rows: the matrix kernels take the same path for
/// every row of it (they switch to per-row products below 10 rows, and for
/// layers too narrow for their tile at any row count).
pub const MIN_ROWS_PER_THREAD: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    fn with(
        threads: Option<&'static str>,
        memory: Option<&'static str>,
        concurrency: Option<&'static str>,
        available: usize,
    ) -> ThreadDecision {
        decide(&ThreadInputs {
            apr_lambda_threads: threads,
            function_memory_mb: memory,
            max_concurrency: concurrency,
            available,
        })
    }

    #[test]
    fn nothing_set_uses_every_cpu() {
        assert_eq!(
            with(None, None, None, 8),
            ThreadDecision {
                threads: 8,
                source: ThreadSource::AvailableParallelism
            }
        );
        assert_eq!(with(None, None, None, 0).threads, 1);
        assert_eq!(with(None, None, None, 1000).threads, MAX_THREADS);
    }

    #[test]
    fn lambda_memory_buys_whole_vcpus() {
        let memory = |mb: &'static str| with(None, Some(mb), None, 6).threads;
        assert_eq!(memory("128"), 1);
        assert_eq!(memory("1768"), 1);
        assert_eq!(memory("1769"), 1);
        assert_eq!(memory("3537"), 1);
        assert_eq!(memory("3538"), 2);
        assert_eq!(memory("4096"), 2);
        assert_eq!(memory("8192"), 4);
        assert_eq!(memory("10240"), 5);
        // Never more than the CPUs the process may run on.
        assert_eq!(with(None, Some("10240"), None, 2).threads, 2);
        assert_eq!(
            with(None, Some("10240"), None, 6).source,
            ThreadSource::LambdaMemory { memory_mb: 10240 }
        );
    }

    #[test]
    fn the_explicit_setting_wins() {
        for (memory, concurrency) in [(None, None), (Some("128"), None), (None, Some("16"))] {
            assert_eq!(
                with(Some("3"), memory, concurrency, 2),
                ThreadDecision {
                    threads: 3,
                    source: ThreadSource::Explicit
                }
            );
        }
        assert_eq!(with(Some(" 2 "), None, None, 8).threads, 2);
        assert_eq!(with(Some("100000"), None, None, 8).threads, MAX_THREADS);
    }

    #[test]
    fn a_bad_explicit_setting_is_ignored() {
        for bad in ["0", "-1", "two", "", "1.5"] {
            assert_eq!(
                with(Some(bad), Some("4096"), None, 6).source,
                ThreadSource::LambdaMemory { memory_mb: 4096 },
                "{bad:?}"
            );
        }
        assert_eq!(
            with(None, Some("lots"), None, 3).source,
            ThreadSource::AvailableParallelism
        );
    }

    #[test]
    fn managed_instances_share_the_cores_between_invocations() {
        // The default: 8 invocations per vCPU, so one thread per batch.
        assert_eq!(
            with(None, Some("4096"), Some("16"), 2),
            ThreadDecision {
                threads: 1,
                source: ThreadSource::ManagedInstances {
                    max_concurrency: 16
                }
            }
        );
        // Concurrency set below the core count: the spare cores split batches.
        assert_eq!(with(None, Some("8192"), Some("2"), 8).threads, 4);
        assert_eq!(with(None, None, Some("3"), 8).threads, 2);
        // A concurrency of 1 is ordinary Lambda: memory decides.
        assert_eq!(
            with(None, Some("4096"), Some("1"), 6).source,
            ThreadSource::LambdaMemory { memory_mb: 4096 }
        );
    }

    #[test]
    fn the_decision_reads_as_a_sentence() {
        assert_eq!(
            with(None, Some("4096"), None, 6).to_string(),
            "2 threads (4096 MB / 1769 MB per vCPU)"
        );
        assert_eq!(
            with(None, None, Some("16"), 2).to_string(),
            "1 thread (Managed Instances, AWS_LAMBDA_MAX_CONCURRENCY=16)"
        );
    }

    #[test]
    fn configured_is_within_bounds() {
        let threads = configured().threads;
        assert!((1..=MAX_THREADS).contains(&threads));
        assert_eq!(configured(), configured());
    }
}
