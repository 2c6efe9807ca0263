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
//! `NonFinite`, `NonFiniteOutput`, `EmptyBatch`, `BatchTooLarge`,
//! `ResponseTooLarge`, ...); for HTTP events they are status 400, 413 or
//! 500 responses with that error object as the body. Error messages quote
//! at most a short excerpt of the input, so a hostile event costs no more
//! than it sends.
//!
//! A request takes one path whatever its entry point (Lambda, Managed
//! Instances, local mode, the CLI, [`LambdaHandler::handle`]):
//!
//! ```text
//! raw event ─(request)─▶ LambdaRequest ─(one shape check, one predict call)─▶ LambdaResponse ─(response: size check)─▶ JSON
//! ```
//!
//! One file per job: `request.rs` decodes, `handler.rs` predicts,
//! `response.rs` shapes and bounds the answer, `metrics.rs` keeps the clock,
//! the cold-start record and the log lines, `runtime.rs` wires
//! `lambda_runtime` (concurrency, supervision, SIGTERM), `local.rs` is local
//! mode.
//!
//! [`serve`] runs the handler on `lambda_runtime`. With
//! `AWS_LAMBDA_MAX_CONCURRENCY` above 1 (Lambda Managed Instances) it serves
//! that many invocations at once on a multi-thread tokio runtime; otherwise
//! one at a time on a current-thread runtime. It writes one structured log
//! line per invocation and the cold-start figures once, as a CloudWatch
//! Embedded Metric Format line; on SIGTERM it answers the invocations in
//! flight and returns. When `AWS_LAMBDA_RUNTIME_API` is unset it runs in
//! local mode instead: events come from the arguments or from stdin, one
//! JSON object per line.
//!
//! ```no_run
//! use apr_runtime::lambda::{serve, LambdaHandler};
//!
//! fn main() -> Result<(), apr_runtime::lambda::BoxError> {
//!     // Usually `include_bytes!`; any `&'static [u8]` will do.
//!     let model: &'static [u8] = Vec::leak(std::fs::read("models/model.apr")?);
//!     let handler = LambdaHandler::from_bytes(model)?.with_max_batch(1_000);
//!     serve(handler)
//! }
//! ```

mod error;
mod handler;
mod handler_error;
mod local;
mod metrics;
mod request;
mod response;
mod runtime;
mod service;

use std::process::ExitCode;
use std::sync::Arc;

pub use error::{ErrorBody, LambdaError};
pub use handler::LambdaHandler;
pub use handler_error::Error;
pub use lambda_runtime::Context;
pub use metrics::ColdStartMetrics;
pub use request::LambdaRequest;
pub use response::{
    HttpHeaders, HttpResponse, InvocationResponse, JsonText, LambdaResponse, Predictions,
    RowPrediction,
};

/// The error type of [`serve`] (`lambda_runtime`'s boxed error).
pub type BoxError = lambda_runtime::Error;

/// Serves `handler`: on the Lambda Runtime API when `AWS_LAMBDA_RUNTIME_API`
/// is set, in local mode otherwise (see the [module docs](self)).
///
/// It blocks: in Lambda mode it runs `lambda_runtime` on its own tokio
/// runtime until SIGTERM; call it from a synchronous `main` (in Lambda mode,
/// inside a tokio runtime, it returns an error).
///
/// # Errors
/// In Lambda mode, when a required `AWS_LAMBDA_*` variable is missing (also
/// posted to `/runtime/init/error`) or the Runtime API keeps failing. In
/// local mode, when any event was answered with an error, or stdin/stdout
/// fail.
pub fn serve(handler: LambdaHandler) -> Result<(), BoxError> {
    if runtime::is_lambda_mode() {
        return runtime::serve_lambda(Arc::new(handler));
    }
    let summary = serve_local(&handler)?;
    if summary.failed > 0 {
        return Err(format!("{} of {} events failed", summary.failed, summary.events).into());
    }
    Ok(())
}

/// Local mode on the real arguments, stdin and stdout.
fn serve_local(handler: &dyn service::Serve) -> std::io::Result<local::LocalSummary> {
    let mut argv = std::env::args_os();
    let program = argv.next().map_or_else(
        || "bootstrap".to_owned(),
        |p| p.to_string_lossy().into_owned(),
    );
    let args: Vec<std::ffi::OsString> = argv.collect();
    if args.is_empty() && local::stdin_is_terminal() {
        eprintln!(
            "{program}: local mode (AWS_LAMBDA_RUNTIME_API is unset): reading one JSON event per line from stdin; try --help"
        );
    }
    if std::env::var_os("RUST_LOG").is_some() {
        runtime::init_subscriber(std::io::stderr);
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
    runtime::report_init_error(err.error_type(), &err.to_string());
}

/// [`serve`], reporting the outcome as an exit status instead.
fn serve_to_exit_code(handler: Arc<dyn service::Serve>) -> ExitCode {
    if runtime::is_lambda_mode() {
        return match runtime::serve_lambda(handler) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match serve_local(&*handler) {
        Ok(summary) if summary.failed == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime's half of the `#[apr_lambda]` expansion's private contract.
/// The contract (what the generated code calls, and in which order) is
/// described once, on the facade's `apr_lambda::__private`, which re-exports
/// by name the entry points defined here. Not a public API: it changes with
/// the macro.
#[doc(hidden)]
pub mod __private {
    use std::fmt::Display;
    use std::future::Future;
    use std::process::ExitCode;
    use std::sync::Arc;

    use serde::de::DeserializeOwned;
    use serde::Serialize;

    use super::service::TypedHandler;
    use super::{runtime, Context, LambdaError, LambdaHandler};
    use crate::model::Model;

    /// Stamps the process start (the first call wins): the cold-start
    /// figures count from there.
    pub use super::metrics::process_start;

    /// The serving configuration the attribute's arguments build.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Config {
        /// The most rows per batch event (`max_batch = N`); `None` for the
        /// model's default ([`crate::limits::default_max_batch`]).
        pub max_batch: Option<usize>,
        /// `labels = [...]`: the class labels, replacing the metadata's.
        pub labels: Option<&'static [&'static str]>,
        /// `feature_names = [...]`: the feature names, replacing the metadata's.
        pub feature_names: Option<&'static [&'static str]>,
    }

    impl Config {
        /// The defaults: `max_batch` derived from the model, labels and
        /// feature names from its metadata.
        pub const fn new() -> Self {
            Config {
                max_batch: None,
                labels: None,
                feature_names: None,
            }
        }

        /// Sets `max_batch`.
        #[must_use]
        pub const fn max_batch(mut self, n: usize) -> Self {
            self.max_batch = Some(n);
            self
        }

        /// Sets the class labels.
        #[must_use]
        pub const fn labels(mut self, labels: &'static [&'static str]) -> Self {
            self.labels = Some(labels);
            self
        }

        /// Sets the feature names.
        #[must_use]
        pub const fn feature_names(mut self, names: &'static [&'static str]) -> Self {
            self.feature_names = Some(names);
            self
        }

        /// The handler for `bytes`, configured.
        fn handler(self, bytes: &'static [u8]) -> Result<LambdaHandler, LambdaError> {
            // Names given in the attribute win: the metadata's are not read.
            let load = crate::model::LoadOptions {
                labels_from_metadata: self.labels.is_none(),
                feature_names_from_metadata: self.feature_names.is_none(),
                ..crate::model::LoadOptions::default()
            };
            let mut handler = LambdaHandler::from_embedded_with(bytes, load)?;
            if let Some(labels) = self.labels {
                handler = handler.with_labels(labels.iter().copied())?;
            }
            if let Some(names) = self.feature_names {
                handler = handler.with_feature_names(names.iter().copied())?;
            }
            Ok(match self.max_batch {
                Some(n) => handler.with_max_batch(n),
                None => handler,
            })
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
        match config.handler(bytes) {
            Ok(handler) => super::serve_to_exit_code(Arc::new(handler)),
            Err(err) => {
                runtime::report_init_error(err.error_type(), &err.to_string());
                ExitCode::FAILURE
            }
        }
    }

    /// [`run`] for a typed handler: `function` is called with the model,
    /// each event decoded as `T`, and the invocation's context; its `Ok(R)`
    /// is the answer. The handler (model included) lives as long as the
    /// process, so the futures `function` returns may borrow the model.
    pub fn run_handler<T, R, E, F, Fut>(
        bytes: &'static [u8],
        config: Config,
        function: F,
    ) -> ExitCode
    where
        T: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Display + Send + 'static,
        F: Fn(&'static Model<'static>, T, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        match config.handler(bytes) {
            Ok(handler) => {
                let handler: &'static LambdaHandler = Box::leak(Box::new(handler));
                super::serve_to_exit_code(Arc::new(TypedHandler::new(handler, function)))
            }
            Err(err) => {
                runtime::report_init_error(err.error_type(), &err.to_string());
                ExitCode::FAILURE
            }
        }
    }

    /// Runs an async `main` body on the tokio runtime that [`run`] then
    /// serves on (so tasks it spawns keep running).
    pub fn block_on<F: Future>(future: F) -> F::Output {
        match runtime::block_on(future) {
            Ok(output) => output,
            Err(e) => {
                runtime::report_init_error(
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
        runtime::report_init_error("InitError", &format!("the main body failed: {err:?}"));
        ExitCode::FAILURE
    }
}
