//! The AWS Lambda handler (feature `lambda`, on by default).
//!
//! [`LambdaHandler`] parses and validates the model once, at init (Lambda's
//! init phase runs with unthrottled CPU), then answers events:
//!
//! | event | response |
//! |---|---|
//! | `{"features": [5.1, 3.5, 1.4, 0.2]}` | `{"prediction": 0, "probabilities": [...], "outputs": [...], "cold_start": true, "latency_ms": 0.01}` |
//! | `{"instances": [[...], [...]]}` | `{"predictions": [{"prediction", "probabilities", "outputs"}, ...], "cold_start": false, "latency_ms": 0.02}` |
//! | a Function URL / API Gateway HTTP API (2.0) event whose `body` is one of those | `{"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "<one of those responses>"}` |
//!
//! `prediction` is the class index for classifiers, k-means and
//! softmax-ended networks, the value for one output, and the output array
//! otherwise. Failures are Lambda error responses whose `errorType` is the
//! [`LambdaError`] variant name (`MalformedEvent`, `FeatureCount`,
//! `NonFinite`, `EmptyBatch`, `BatchTooLarge`, ...); for HTTP events they are
//! status 400 (or 500) responses with that error object as the body.
//!
//! [`serve`] runs the handler on `lambda_runtime` with a current-thread tokio
//! runtime, writing one structured log line per invocation and the
//! cold-start figures once as a CloudWatch Embedded Metric Format line. When
//! `AWS_LAMBDA_RUNTIME_API` is unset it runs in local mode instead: events
//! come from the arguments or from stdin, one JSON object per line.
//!
//! ```no_run
//! use apr_runtime::lambda::{serve, LambdaHandler};
//!
//! fn main() -> Result<(), apr_runtime::lambda::Error> {
//!     // Usually `include_bytes!`; any `&'static [u8]` will do.
//!     let model: &'static [u8] = Vec::leak(std::fs::read("models/model.apr")?);
//!     let handler = LambdaHandler::from_bytes(model)?.with_max_batch(1_000);
//!     serve(handler)
//! }
//! ```

mod error;
mod events;
mod handler;
mod local;
mod serve;

use std::process::ExitCode;

pub use error::{ErrorBody, LambdaError};
pub use events::{
    HttpHeaders, HttpResponse, InvocationResponse, LambdaRequest, LambdaResponse, Predictions,
    RowPrediction,
};
pub use handler::{ColdStartMetrics, LambdaHandler, DEFAULT_MAX_BATCH};

/// The error type of [`serve`] (`lambda_runtime`'s boxed error).
pub type Error = lambda_runtime::Error;

/// Serves `handler`: on the Lambda Runtime API when `AWS_LAMBDA_RUNTIME_API`
/// is set, in local mode otherwise (see the [module docs](self)).
///
/// It blocks: in Lambda mode it runs `lambda_runtime` on its own
/// current-thread tokio runtime until the runtime stops; call it from a
/// synchronous `main` (inside a tokio runtime it returns an error).
///
/// # Errors
/// In Lambda mode, when the Runtime API fails or a required
/// `AWS_LAMBDA_*` variable is missing. In local mode, when any event was
/// answered with an error, or stdin/stdout fail.
pub fn serve(handler: LambdaHandler) -> Result<(), Error> {
    if serve::is_lambda_mode() {
        return serve::serve_lambda(&handler);
    }
    let summary = serve_local(&handler)?;
    if summary.failed > 0 {
        return Err(format!("{} of {} events failed", summary.failed, summary.events).into());
    }
    Ok(())
}

/// Local mode on the real arguments, stdin and stdout.
fn serve_local(handler: &LambdaHandler) -> std::io::Result<local::LocalSummary> {
    let mut argv = std::env::args();
    let program = argv.next().unwrap_or_else(|| "bootstrap".to_owned());
    let args: Vec<String> = argv.collect();
    if args.is_empty() && local::stdin_is_terminal() {
        eprintln!(
            "{program}: local mode (AWS_LAMBDA_RUNTIME_API is unset): reading one JSON event per line from stdin; try --help"
        );
    }
    if std::env::var_os("RUST_LOG").is_some() && !tracing::dispatcher::has_been_set() {
        lambda_runtime::tracing::init_default_subscriber_with_writer(std::io::stderr);
    }
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    local::run_local(
        handler,
        &program,
        &args,
        &mut stdin.lock(),
        &mut stdout.lock(),
    )
}

/// Reports a handler that could not be built: prints the error on stderr
/// and, in Lambda mode, posts it to the Runtime API's `/runtime/init/error`
/// (so Lambda logs it and fails the init with its `errorType`).
///
/// ```no_run
/// use apr_runtime::lambda::{report_init_error, serve, LambdaHandler};
/// # static MODEL: &[u8] = b"";
/// match LambdaHandler::from_bytes(MODEL) {
///     Ok(handler) => { let _ = serve(handler); }
///     Err(err) => report_init_error(&err),
/// }
/// ```
pub fn report_init_error(err: &LambdaError) {
    serve::report_init_error(err.error_type(), &err.to_string());
}

/// [`serve`], reporting the outcome as an exit status instead.
fn serve_to_exit_code(handler: &LambdaHandler) -> ExitCode {
    if serve::is_lambda_mode() {
        return match serve::serve_lambda(handler) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match serve_local(handler) {
        Ok(summary) if summary.failed == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the `#[apr_lambda]` expansion calls (through the facade's
/// `::apr_lambda::__private`). Not a public API: it changes with the macro.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;
    use std::process::ExitCode;
    use std::time::Instant;

    pub use super::handler::DEFAULT_MAX_BATCH;
    use super::{serve, LambdaHandler};

    /// Stamps the process start (the first call wins); the generated `main`
    /// calls it first thing, so the cold-start figures start there.
    pub fn process_start() -> Instant {
        super::handler::mark_process_start()
    }

    /// The serving configuration the attribute's arguments build.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Config {
        /// The most rows per batch event (`max_batch = N`).
        pub max_batch: usize,
    }

    impl Config {
        /// The defaults: `max_batch` = [`DEFAULT_MAX_BATCH`].
        pub const fn new() -> Self {
            Config {
                max_batch: DEFAULT_MAX_BATCH,
            }
        }

        /// Sets `max_batch`.
        #[must_use]
        pub const fn max_batch(mut self, n: usize) -> Self {
            self.max_batch = n;
            self
        }
    }

    impl Default for Config {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Builds the handler from the embedded (compile-time verified) model
    /// bytes and serves it: Lambda mode or local mode. An init error is
    /// printed and, in Lambda mode, reported to `/runtime/init/error`.
    pub fn run(bytes: &'static [u8], config: Config) -> ExitCode {
        process_start();
        match LambdaHandler::from_embedded(bytes) {
            Ok(handler) => super::serve_to_exit_code(&handler.with_max_batch(config.max_batch)),
            Err(err) => {
                serve::report_init_error(err.error_type(), &err.to_string());
                ExitCode::FAILURE
            }
        }
    }

    /// Runs an async `main` body on the current-thread tokio runtime that
    /// [`run`] then serves on (so tasks it spawns keep running).
    pub fn block_on<F: Future>(future: F) -> F::Output {
        match serve::block_on(future) {
            Ok(output) => output,
            Err(e) => {
                serve::report_init_error(
                    "Runtime",
                    &format!("the tokio runtime could not be built: {e}"),
                );
                std::process::exit(1)
            }
        }
    }

    /// Reports a `main` body that returned `Err` as an init error (printed,
    /// and posted to `/runtime/init/error` in Lambda mode); returns the
    /// failure exit status.
    pub fn body_failed<E: std::fmt::Debug>(err: E) -> ExitCode {
        serve::report_init_error("InitError", &format!("the main body failed: {err:?}"));
        ExitCode::FAILURE
    }
}
