//! Lambda mode: the handler on `lambda_runtime`, one log line per
//! invocation, the cold-start figures as a CloudWatch Embedded Metric Format
//! line, and init errors reported to `/runtime/init/error`.

use std::cell::RefCell;
use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{layers::TracingLayer, service_fn, LambdaEvent, LambdaInvocation, Runtime};
use serde::de::IgnoredAny;

use super::error::{ErrorBody, LambdaError};
use super::events::InvocationResponse;
use super::handler::{millis, ColdStartMetrics, LambdaHandler, Outcome};

/// The environment variable that puts the binary in Lambda mode.
pub(crate) const RUNTIME_API_VAR: &str = "AWS_LAMBDA_RUNTIME_API";

/// The variables `lambda_runtime` needs besides [`RUNTIME_API_VAR`].
const REQUIRED_VARS: [&str; 3] = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
];

/// Whether the process runs on Lambda (or an emulator of its Runtime API).
pub(crate) fn is_lambda_mode() -> bool {
    std::env::var_os(RUNTIME_API_VAR).is_some()
}

thread_local! {
    /// The current-thread tokio runtime of this thread, built on first use
    /// and shared by the macro's async `main` body and the serve loop.
    static TOKIO: RefCell<Option<Arc<tokio::runtime::Runtime>>> = const { RefCell::new(None) };
}

/// The thread's current-thread tokio runtime.
pub(crate) fn tokio_runtime() -> std::io::Result<Arc<tokio::runtime::Runtime>> {
    TOKIO.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some(rt) = slot.as_ref() {
            return Ok(Arc::clone(rt));
        }
        let rt = Arc::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        );
        *slot = Some(Arc::clone(&rt));
        Ok(rt)
    })
}

/// Runs `future` to completion on the thread's current-thread runtime.
pub(crate) fn block_on<F: Future>(future: F) -> std::io::Result<F::Output> {
    Ok(tokio_runtime()?.block_on(future))
}

/// Serves `handler` on the Lambda Runtime API until the runtime stops.
pub(crate) fn serve_lambda(handler: &LambdaHandler) -> Result<(), lambda_runtime::Error> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(
            "serve() runs its own current-thread tokio runtime and blocks until the \
                    function stops: call it from a synchronous `main`, not from async code"
                .into(),
        );
    }
    if let Some(missing) = REQUIRED_VARS
        .iter()
        .find(|var| std::env::var_os(var).is_none())
    {
        return Err(format!(
            "{RUNTIME_API_VAR} is set but {missing} is not; Lambda sets AWS_LAMBDA_FUNCTION_NAME, \
             AWS_LAMBDA_FUNCTION_VERSION and AWS_LAMBDA_FUNCTION_MEMORY_SIZE (set them when emulating \
             the Runtime API, or unset {RUNTIME_API_VAR} for local mode)"
        )
        .into());
    }
    if std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .is_none()
    {
        return Err("AWS_LAMBDA_FUNCTION_MEMORY_SIZE is not an integer number of MB".into());
    }
    if !tracing::dispatcher::has_been_set() {
        lambda_runtime::tracing::init_default_subscriber();
    }
    let function_name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    let raw_event = RawEventSlot::default();
    let service_slot = raw_event.clone();
    let service = service_fn(move |_: LambdaEvent<IgnoredAny>| {
        let raw = service_slot.take();
        let (result, outcome) = handler.respond(&raw);
        log_invocation(&outcome, &result);
        if outcome.cold_start {
            if let Some(metrics) = handler.cold_start_metrics() {
                println!(
                    "{}",
                    emf_line(
                        metrics,
                        &function_name,
                        &handler.model().family().to_string()
                    )
                );
            }
        }
        std::future::ready(result)
    });
    let runtime = Runtime::new(service)
        .layer(TakeRawEventLayer { slot: raw_event })
        .layer(TracingLayer::new());
    block_on(runtime.run())?
}

/// One structured log line per invocation (JSON when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`), inside `lambda_runtime`'s request span.
fn log_invocation(outcome: &Outcome, result: &Result<InvocationResponse, LambdaError>) {
    let latency_ms = millis(outcome.latency);
    match result {
        Ok(InvocationResponse::Http(http)) if http.status_code >= 400 => tracing::warn!(
            event = outcome.kind,
            rows = outcome.rows,
            cold_start = outcome.cold_start,
            latency_ms,
            status = http.status_code,
            error = http.body.as_str(),
            "invocation answered with an HTTP error"
        ),
        Ok(_) => tracing::info!(
            event = outcome.kind,
            rows = outcome.rows,
            cold_start = outcome.cold_start,
            latency_ms,
            "invocation"
        ),
        Err(err) => tracing::warn!(
            event = outcome.kind,
            rows = outcome.rows,
            cold_start = outcome.cold_start,
            latency_ms,
            error_type = err.error_type(),
            error = %err,
            "invocation failed"
        ),
    }
}

/// The cold-start figures as one CloudWatch Embedded Metric Format line:
/// CloudWatch turns it into metrics (namespace `apr-lambda`, dimension
/// `FunctionName`) with no API call. The model family and the kernel set
/// chosen for this CPU ride along as properties, searchable in the logs.
pub(crate) fn emf_line(metrics: &ColdStartMetrics, function_name: &str, family: &str) -> String {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": "apr-lambda",
                "Dimensions": [["FunctionName"]],
                "Metrics": [
                    {"Name": "InitDuration", "Unit": "Milliseconds"},
                    {"Name": "ModelParseDuration", "Unit": "Milliseconds"},
                    {"Name": "FirstInvokeDuration", "Unit": "Milliseconds"},
                    {"Name": "FirstResponseDuration", "Unit": "Milliseconds"},
                    {"Name": "ModelBytes", "Unit": "Bytes"}
                ]
            }]
        },
        "FunctionName": function_name,
        "ModelFamily": family,
        "Kernels": crate::kernels::kernel_name(),
        "InitDuration": metrics.init_ms,
        "ModelParseDuration": metrics.model_parse_ms,
        "FirstInvokeDuration": metrics.first_invoke_ms,
        "FirstResponseDuration": metrics.first_response_ms,
        "ModelBytes": metrics.model_bytes,
    })
    .to_string()
}

/// The raw body of the invocation being served, handed from
/// [`TakeRawEventLayer`] to the handler.
///
/// `lambda_runtime` deserializes the payload before the handler runs and
/// answers a body that is not JSON with its own error type. To answer every
/// event with our stable `errorType`s, the layer takes the body out of the
/// invocation and leaves `null` (which `IgnoredAny` accepts) in its place;
/// the handler decodes the body itself. Invocations are sequential, so one
/// slot is enough.
#[derive(Clone, Default)]
struct RawEventSlot(Arc<Mutex<Option<Vec<u8>>>>);

impl RawEventSlot {
    fn put(&self, raw: Vec<u8>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(raw);
    }

    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default()
    }
}

struct TakeRawEventLayer {
    slot: RawEventSlot,
}

impl<S> Layer<S> for TakeRawEventLayer {
    type Service = TakeRawEvent<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TakeRawEvent {
            inner,
            slot: self.slot.clone(),
        }
    }
}

struct TakeRawEvent<S> {
    inner: S,
    slot: RawEventSlot,
}

impl<S> Service<LambdaInvocation> for TakeRawEvent<S>
where
    S: Service<LambdaInvocation, Response = (), Error = lambda_runtime::Error>,
{
    type Response = ();
    type Error = lambda_runtime::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        let raw = std::mem::replace(&mut invocation.body, From::from(&b"null"[..]));
        self.slot.put(Vec::from(raw));
        self.inner.call(invocation)
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
/// (the function is about to exit; `lambda_runtime` keeps its own request
/// types private).
fn post_init_error(api: &str, body: &ErrorBody) -> std::io::Result<()> {
    let without_scheme = api.strip_prefix("http://").unwrap_or(api);
    let (authority, prefix) = match without_scheme.find('/') {
        Some(i) => without_scheme.split_at(i),
        None => (without_scheme, ""),
    };
    let prefix = prefix.trim_end_matches('/');
    let json = serde_json::to_string(body).map_err(std::io::Error::other)?;
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "POST {prefix}/2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {authority}\r\n\
         Content-Type: application/json\r\nLambda-Runtime-Function-Error-Type: Runtime.{}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
        body.error_type,
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
        let handler = LambdaHandler::from_bytes(LINEAR).unwrap_or_else(|e| panic!("{e}"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let result = rt.block_on(async { serve_lambda(&handler) });
        let message = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("synchronous `main`"), "{message}");
    }

    #[test]
    fn emf_line_declares_the_metrics_it_carries() {
        let metrics = ColdStartMetrics {
            init_ms: 1.5,
            model_parse_ms: 0.25,
            first_invoke_ms: 0.01,
            first_response_ms: 2.0,
            model_bytes: 1234,
        };
        let line = emf_line(&metrics, "fn", "LogisticRegression");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let declared = &v["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        let names: Vec<&str> = declared
            .as_array()
            .map(|a| a.iter().filter_map(|m| m["Name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(names.len(), 5);
        for name in names {
            assert!(v[name].is_number(), "{name} missing from {line}");
        }
        assert_eq!(v["FunctionName"], "fn");
        assert!(!line.contains('\n'));
    }
}
