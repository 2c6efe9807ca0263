//! Lambda mode: the handler on `lambda_runtime`, one invocation at a time
//! or many at once (Lambda Managed Instances), supervised, with a clean
//! shutdown on SIGTERM, and init errors reported to `/runtime/init/error`.
//!
//! ```text
//! /next ─▶ Guard (in-flight count, UTF-8 check) ─▶ TracingLayer (request span)
//!       ─▶ lambda_runtime (RawEvent) ─▶ LambdaHandler::respond_with_outcome ─▶ /response or /error
//! ```

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{layers::TracingLayer, service_fn, LambdaEvent, LambdaInvocation, Runtime};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::error::{excerpt, ErrorBody, LambdaError};
use super::metrics::{emf_line, log_invocation};
use super::response::InvocationResponse;
use super::service::Serve;

/// The environment variable that puts the binary in Lambda mode.
pub(crate) const RUNTIME_API_VAR: &str = "AWS_LAMBDA_RUNTIME_API";

/// How many invocations Lambda Managed Instances send one environment at
/// once; unset (or 1) on classic Lambda.
pub(crate) const MAX_CONCURRENCY_VAR: &str = "AWS_LAMBDA_MAX_CONCURRENCY";

/// The variables `lambda_runtime` needs besides [`RUNTIME_API_VAR`].
const REQUIRED_VARS: [&str; 3] = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
];

/// Runtime loops that may stop in a row, with no invocation answered in
/// between, before the process gives up.
const MAX_CONSECUTIVE_FAULTS: u32 = 5;

/// Whether the process runs on Lambda (or an emulator of its Runtime API).
pub(crate) fn is_lambda_mode() -> bool {
    std::env::var_os(RUNTIME_API_VAR).is_some()
}

/// `AWS_LAMBDA_MAX_CONCURRENCY` when it is a number above 1, else 1.
pub(crate) fn max_concurrency() -> usize {
    std::env::var(MAX_CONCURRENCY_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .max(1)
}

/// The tokio runtime of the process, built on first use and shared by the
/// macro's async `main` body and the serve loop.
///
/// One invocation at a time (classic Lambda, local mode), it is a
/// current-thread runtime: no worker thread to start at init. With
/// `AWS_LAMBDA_MAX_CONCURRENCY` above 1 in Lambda mode, it is a
/// multi-thread runtime with one worker per CPU (at most one per concurrent
/// invocation), so that `lambda_runtime`'s concurrent workers, each a tokio
/// task, run CPU-bound inference in parallel rather than queueing on one
/// thread.
pub(crate) fn tokio_runtime() -> std::io::Result<Arc<tokio::runtime::Runtime>> {
    static TOKIO: std::sync::OnceLock<Arc<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    if let Some(rt) = TOKIO.get() {
        return Ok(Arc::clone(rt));
    }
    let concurrency = if is_lambda_mode() {
        max_concurrency()
    } else {
        1
    };
    let rt = if concurrency > 1 {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cpus.min(concurrency).max(1))
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
    Ok(Arc::clone(TOKIO.get_or_init(|| Arc::new(rt))))
}

/// Runs `future` to completion on the process's tokio runtime.
pub(crate) fn block_on<F: Future>(future: F) -> std::io::Result<F::Output> {
    Ok(tokio_runtime()?.block_on(future))
}

/// Serves `handler` on the Lambda Runtime API until SIGTERM or an
/// unrecoverable Runtime API failure.
pub(crate) fn serve_lambda(handler: Arc<dyn Serve>) -> Result<(), lambda_runtime::Error> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(
            "serve() runs its own tokio runtime and blocks until the function stops: call it \
             from a synchronous `main`, not from async code"
                .into(),
        );
    }
    if let Err(message) = check_environment() {
        report_init_error("Runtime.InvalidEnvironment", &message);
        return Err(message.into());
    }
    init_subscriber(std::io::stdout);
    block_on(serve_until_shutdown(handler))?
}

/// The variables `lambda_runtime` reads (and panics without).
fn check_environment() -> Result<(), String> {
    for var in REQUIRED_VARS {
        if std::env::var(var).is_err() {
            return Err(format!(
                "{RUNTIME_API_VAR} is set but {var} is not (or is not UTF-8); Lambda sets \
                 AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION and \
                 AWS_LAMBDA_FUNCTION_MEMORY_SIZE (set them when emulating the Runtime API, or \
                 unset {RUNTIME_API_VAR} for local mode)"
            ));
        }
    }
    if std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .is_none()
    {
        return Err("AWS_LAMBDA_FUNCTION_MEMORY_SIZE is not an integer number of MB".into());
    }
    Ok(())
}

/// Installs the log subscriber `lambda_runtime` would (level from
/// `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`, JSON when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`), unless one is installed already, minus
/// one line: `lambda_runtime` logs every handler error as
/// `error!("{:?}")`, and the invocation's own log line already says it.
pub(crate) fn init_subscriber<W>(writer: W)
where
    W: for<'w> lambda_runtime::tracing::subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use lambda_runtime::tracing::subscriber::{
        self as ts,
        filter::{filter_fn, EnvFilter, LevelFilter},
        layer::SubscriberExt as _,
        util::SubscriberInitExt as _,
        Layer as _,
    };
    if tracing::dispatcher::has_been_set() {
        return;
    }
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let env_filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    let not_the_duplicate = filter_fn(|meta| {
        !(meta.target() == "lambda_runtime::layers::panic"
            && *meta.level() == tracing::Level::ERROR
            && meta.fields().len() == 1)
    });
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = ts::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(writer);
    let _ = if json {
        ts::registry()
            .with(env_filter)
            .with(fmt.json().with_filter(not_the_duplicate))
            .try_init()
    } else {
        ts::registry()
            .with(env_filter)
            .with(fmt.with_filter(not_the_duplicate))
            .try_init()
    };
}

/// Invocations in flight, and how many were answered.
#[derive(Default)]
struct ServeState {
    in_flight: AtomicUsize,
    answered: AtomicU64,
    idle: tokio::sync::Notify,
}

impl ServeState {
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }

    /// Resolves once no invocation has been in flight for a short grace
    /// period: an event `lambda_runtime` had already fetched when the signal
    /// came is counted only once its context is built, a moment later.
    async fn drain(&self) {
        loop {
            self.wait_idle().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
        }
    }

    /// Resolves once no invocation is in flight.
    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One invocation in flight; counted down when dropped.
struct InFlight(Arc<ServeState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Serves until SIGTERM: then the invocations in flight are answered (their
/// responses posted) and the function returns; idle, it returns at once.
async fn serve_until_shutdown(handler: Arc<dyn Serve>) -> Result<(), lambda_runtime::Error> {
    let state = Arc::new(ServeState::default());
    let serving = supervise(handler, Arc::clone(&state));
    tokio::pin!(serving);
    let sigterm = match sigterm() {
        Ok(signal) => signal,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; serving without a graceful shutdown");
            return serving.await;
        }
    };
    tokio::select! {
        result = &mut serving => result,
        () = sigterm => {
            let in_flight = state.in_flight.load(Ordering::SeqCst);
            tracing::info!(in_flight, "SIGTERM: answering the invocations in flight, then exiting");
            // Keep driving the runtime so that the answers are posted.
            tokio::select! {
                result = &mut serving => result,
                () = state.drain() => Ok(()),
            }
        }
    }
}

/// Resolves when the process receives SIGTERM (Lambda's shutdown signal).
#[cfg(unix)]
fn sigterm() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut signal = signal(SignalKind::terminate())?;
    Ok(async move {
        signal.recv().await;
    })
}

/// Never resolves: there is no SIGTERM outside Unix.
#[cfg(not(unix))]
fn sigterm() -> std::io::Result<impl Future<Output = ()>> {
    Ok(std::future::pending())
}

/// Runs `lambda_runtime`'s loop (concurrent under Managed Instances), and
/// starts it again when a Runtime API fault stops it.
///
/// `lambda_runtime` 1.5 panics on a `/next` answer without a request-id or
/// deadline header, and stops its loop on a malformed client-context or
/// Cognito-identity header or a non-numeric deadline. None of those
/// invocations can be answered (the request id may be unknown), but the
/// function must not die of them: the loop runs in a task, and a fault is
/// logged (one bounded line) and polling resumes. One invocation at a time,
/// that is at once. Under Managed Instances `lambda_runtime` runs one loop
/// per concurrency slot and a fault ends only its own slot (the others go on
/// serving); the set is started again once every slot has ended. After
/// [`MAX_CONSECUTIVE_FAULTS`] faults with no invocation answered in between
/// (the Runtime API is gone), the function exits with the error.
async fn supervise(
    handler: Arc<dyn Serve>,
    state: Arc<ServeState>,
) -> Result<(), lambda_runtime::Error> {
    let function_name: Arc<str> = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .unwrap_or_default()
        .into();
    let mut faults = 0u32;
    loop {
        let service = {
            let handler = Arc::clone(&handler);
            let function_name = Arc::clone(&function_name);
            service_fn(move |event: LambdaEvent<RawEvent>| {
                let handler = Arc::clone(&handler);
                let function_name = Arc::clone(&function_name);
                async move { invoke(&*handler, event, &function_name).await }
            })
        };
        let runtime = Runtime::new(service)
            .layer(TracingLayer::new())
            .layer(GuardLayer {
                state: Arc::clone(&state),
            });
        let answered_before = state.answered.load(Ordering::SeqCst);
        let fault = match tokio::spawn(runtime.run_concurrent()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(join) if join.is_panic() => {
                let payload = join.into_panic();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                format!("the runtime loop panicked: {message}")
            }
            Err(join) => return Err(join.into()),
        };
        if state.answered.load(Ordering::SeqCst) > answered_before {
            faults = 0;
        }
        faults += 1;
        let fault = excerpt(&fault);
        if faults >= MAX_CONSECUTIVE_FAULTS {
            tracing::error!(error = %fault, faults, "the Lambda Runtime API keeps failing; exiting");
            return Err(format!("the Lambda Runtime API keeps failing: {fault}").into());
        }
        tracing::error!(error = %fault, faults, "a Runtime API fault stopped the runtime loop; polling again");
        tokio::time::sleep(Duration::from_millis(20 * u64::from(faults))).await;
    }
}

/// Answers one invocation: the one request path, its log line, and the
/// cold-start metrics line (printed by the one cold invocation).
async fn invoke(
    serve: &dyn Serve,
    event: LambdaEvent<RawEvent>,
    function_name: &str,
) -> Result<InvocationResponse, LambdaError> {
    let LambdaEvent { payload, context } = event;
    let (result, outcome) = serve.answer(payload.bytes(), context).await;
    log_invocation(&outcome, &result);
    if outcome.cold_start {
        let handler = serve.handler();
        if let Some(metrics) = handler.cold_start_metrics() {
            let model = handler.model();
            println!(
                "{}",
                emf_line(
                    metrics,
                    function_name,
                    model.family().name(),
                    model.kernels().name
                )
            );
        }
    }
    result
}

/// The `/next` body as `lambda_runtime` hands it over: the raw JSON, or why
/// it is not JSON (answered as [`LambdaError::MalformedEvent`], where
/// `lambda_runtime` would answer with its own error type).
pub(crate) struct RawEvent(Result<Box<RawValue>, String>);

impl<'de> Deserialize<'de> for RawEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `lambda_runtime` does not check for trailing input after the
        // payload, so returning `Ok` after an error is sound.
        Ok(RawEvent(
            Box::<RawValue>::deserialize(deserializer)
                .map_err(|e| format!("the event is not valid JSON: {e}")),
        ))
    }
}

impl RawEvent {
    /// The raw event, or why it cannot be read.
    fn bytes(&self) -> Result<&[u8], String> {
        match &self.0 {
            Ok(raw) => {
                let json = raw.get();
                match json.strip_prefix(INVALID_UTF8_MARKER) {
                    Some(len) => Err(format!(
                        "the event is not valid UTF-8 ({} bytes); Lambda events are JSON",
                        len.trim_end_matches('"')
                    )),
                    None => Ok(json.as_bytes()),
                }
            }
            Err(reason) => Err(reason.clone()),
        }
    }
}

/// What [`Guard`] puts in place of a body that is not UTF-8 (followed by
/// its length and a closing quote), which `lambda_runtime` 1.5 would
/// otherwise answer by stopping its loop: a JSON string no event is.
const INVALID_UTF8_MARKER: &str = "\"\\u0000apr-lambda: invalid UTF-8: ";

/// The outermost layer: counts invocations in flight (for the SIGTERM
/// drain) and answered (for the supervisor), and replaces a non-UTF-8 body.
#[derive(Clone)]
struct GuardLayer {
    state: Arc<ServeState>,
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            inner,
            state: Arc::clone(&self.state),
        }
    }
}

#[derive(Clone)]
struct Guard<S> {
    inner: S,
    state: Arc<ServeState>,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), lambda_runtime::Error>> + Send>>;

impl<S> Service<LambdaInvocation> for Guard<S>
where
    S: Service<LambdaInvocation, Response = (), Error = lambda_runtime::Error>,
    S::Future: Send + 'static,
{
    type Response = ();
    type Error = lambda_runtime::Error;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        let in_flight = self.state.begin();
        if std::str::from_utf8(&invocation.body).is_err() {
            let marker = format!("{INVALID_UTF8_MARKER}{}\"", invocation.body.len());
            invocation.body = From::from(marker.into_bytes());
        }
        let future = self.inner.call(invocation);
        let state = Arc::clone(&self.state);
        Box::pin(async move {
            let result = future.await;
            if result.is_ok() {
                state.answered.fetch_add(1, Ordering::SeqCst);
            }
            drop(in_flight);
            result
        })
    }
}

/// Reports an init failure: prints it on stderr and, in Lambda mode, posts
/// it to `/runtime/init/error` so the Lambda service logs and returns it.
pub(crate) fn report_init_error(error_type: &str, message: &str) {
    eprintln!("error: the function could not start: {message}");
    if let Ok(api) = std::env::var(RUNTIME_API_VAR) {
        let body = ErrorBody {
            error_type: error_type.to_owned(),
            error_message: message.to_owned(),
        };
        if let Err(e) = post_init_error(&api, &body) {
            eprintln!("error: could not report the init error to the Runtime API at {api}: {e}");
        }
    }
}

/// `POST /2018-06-01/runtime/init/error` with a minimal HTTP/1.1 client
/// (the function is about to exit, possibly before `lambda_runtime` could
/// be configured at all).
fn post_init_error(api: &str, body: &ErrorBody) -> std::io::Result<()> {
    let without_scheme = api.strip_prefix("http://").unwrap_or(api);
    let (authority, prefix) = match without_scheme.find('/') {
        Some(i) => without_scheme.split_at(i),
        None => (without_scheme, ""),
    };
    let prefix = prefix.trim_end_matches('/');
    let json = serde_json::to_string(body).map_err(std::io::Error::other)?;
    let error_type = if body.error_type.starts_with("Runtime.") {
        body.error_type.clone()
    } else {
        format!("Runtime.{}", body.error_type)
    };
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "POST {prefix}/2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {authority}\r\n\
         Content-Type: application/json\r\nLambda-Runtime-Function-Error-Type: {error_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )?;
    stream.flush()?;
    let mut status = [0u8; 12];
    stream.read_exact(&mut status)?;
    match status.get(9) {
        Some(b'2') => Ok(()),
        _ => Err(std::io::Error::other(format!(
            "the Runtime API answered {}",
            String::from_utf8_lossy(&status)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// Accepts one request on a fresh port; returns the address and a
    /// handle yielding the request line, the headers and the body.
    fn one_request_server(
        status: &'static str,
    ) -> (
        String,
        std::thread::JoinHandle<(String, Vec<String>, String)>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap_or_else(|e| panic!("{e}"));
            let mut reader = std::io::BufReader::new(stream);
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut headers = Vec::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let line = line.trim_end().to_owned();
                if line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                headers.push(line);
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let mut stream = reader.into_inner();
            let _ = write!(stream, "HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
            (
                request_line.trim_end().to_owned(),
                headers,
                String::from_utf8_lossy(&body).into_owned(),
            )
        });
        (addr, handle)
    }

    #[test]
    fn init_errors_are_posted_to_the_runtime_api() {
        let body = ErrorBody {
            error_type: "InvalidMagic".into(),
            error_message: "bad magic".into(),
        };
        // Plain host:port, as on Lambda.
        let (addr, server) = one_request_server("202 Accepted");
        assert!(post_init_error(&addr, &body).is_ok());
        let (line, headers, sent) = server.join().unwrap_or_else(|_| panic!("server"));
        assert_eq!(line, "POST /2018-06-01/runtime/init/error HTTP/1.1");
        assert!(headers
            .iter()
            .any(|h| h == "Lambda-Runtime-Function-Error-Type: Runtime.InvalidMagic"));
        assert_eq!(
            sent,
            r#"{"errorType":"InvalidMagic","errorMessage":"bad magic"}"#
        );

        // With a scheme and a path prefix, as cargo-lambda's emulator has it.
        let (addr, server) = one_request_server("500 Internal Server Error");
        let err = post_init_error(&format!("http://{addr}/.rt/"), &body).err();
        assert!(err.is_some_and(|e| e.to_string().contains("500")));
        let (line, _, _) = server.join().unwrap_or_else(|_| panic!("server"));
        assert_eq!(line, "POST /.rt/2018-06-01/runtime/init/error HTTP/1.1");
    }

    #[test]
    fn serving_inside_a_tokio_runtime_is_an_error_not_a_panic() {
        static LINEAR: &[u8] = include_bytes!("../../tests/fixtures/linear_regression.v2.apr");
        let handler =
            crate::lambda::LambdaHandler::from_bytes(LINEAR).unwrap_or_else(|e| panic!("{e}"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let result = rt.block_on(async { serve_lambda(Arc::new(handler)) });
        let message = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("synchronous `main`"), "{message}");
    }

    #[test]
    fn raw_events_that_are_not_json_are_malformed_events() {
        // As lambda_runtime deserializes it: no check for trailing input.
        let raw_event = |body: &[u8]| {
            RawEvent::deserialize(&mut serde_json::Deserializer::from_slice(body))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert!(raw_event(b"{\"features\":[1]}").bytes().is_ok());
        let event = raw_event(b"not json");
        assert!(event.bytes().is_err_and(|e| e.contains("not valid JSON")));
        let marker = format!("{INVALID_UTF8_MARKER}12\"");
        let event = raw_event(marker.as_bytes());
        assert_eq!(
            event.bytes().err().as_deref(),
            Some("the event is not valid UTF-8 (12 bytes); Lambda events are JSON")
        );
    }
}
