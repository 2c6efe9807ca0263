//! Observability: the process clock, the cold-start record, the CloudWatch
//! Embedded Metric Format line, and the one log line per invocation.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::error::LambdaError;
use super::response::InvocationResponse;

/// The process start, stamped only by [`process_start`].
static PROCESS_START: OnceLock<Instant> = OnceLock::new();

/// The process start: stamped by the first call, returned by every call.
///
/// The one place the cold-start clock is stamped. The `#[apr_lambda]` main
/// calls it first thing (as `__private::process_start`); a handler built
/// without the macro reads it as it is built, so the clock then starts with
/// the first handler.
pub fn process_start() -> Instant {
    *PROCESS_START.get_or_init(Instant::now)
}

/// `d` in milliseconds, rounded to the microsecond.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The cold-start figures of this process, recorded once, by the first
/// invocation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ColdStartMetrics {
    /// From the process start to the handler being ready to serve (the
    /// function's part of the Lambda init phase), in milliseconds.
    pub init_ms: f64,
    /// Time spent parsing and validating the model, in milliseconds (part of
    /// `init_ms`).
    pub model_parse_ms: f64,
    /// Time the first invocation spent in the handler, in milliseconds.
    pub first_invoke_ms: f64,
    /// From the process start to the first response being ready, in
    /// milliseconds.
    pub first_response_ms: f64,
    /// Size of the model in bytes.
    pub model_bytes: usize,
}

/// The init figures of a handler, and its cold-start record: exactly one
/// invocation (the first to [`begin`](ColdStart::begin), whatever the
/// concurrency) is the cold start, and it alone records the metrics.
#[derive(Debug)]
pub(crate) struct ColdStart {
    process_start: Instant,
    ready_at: Instant,
    model_parse: Duration,
    model_bytes: usize,
    first_invocation: OnceLock<()>,
    metrics: OnceLock<ColdStartMetrics>,
}

impl ColdStart {
    pub(crate) fn new(process_start: Instant, model_parse: Duration, model_bytes: usize) -> Self {
        ColdStart {
            process_start,
            ready_at: Instant::now(),
            model_parse,
            model_bytes,
            first_invocation: OnceLock::new(),
            metrics: OnceLock::new(),
        }
    }

    /// Called as an invocation starts: `true` for exactly one invocation.
    pub(crate) fn begin(&self) -> bool {
        self.first_invocation.set(()).is_ok()
    }

    /// Records the figures once the cold invocation (which started at
    /// `started`) is answered.
    pub(crate) fn record(&self, started: Instant) -> Option<&ColdStartMetrics> {
        let latency = started.elapsed();
        let since_start = started.saturating_duration_since(self.process_start) + latency;
        let _ = self.metrics.set(ColdStartMetrics {
            init_ms: millis(self.ready_at.saturating_duration_since(self.process_start)),
            model_parse_ms: millis(self.model_parse),
            first_invoke_ms: millis(latency),
            first_response_ms: millis(since_start),
            model_bytes: self.model_bytes,
        });
        self.metrics.get()
    }

    /// The figures, once recorded.
    pub(crate) fn metrics(&self) -> Option<&ColdStartMetrics> {
        self.metrics.get()
    }
}

/// What one invocation did, for its log line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    /// `single`, `batch`, `http`, or `unknown` for an undecodable event.
    pub(crate) kind: &'static str,
    /// Rows in the request (0 when it could not be decoded).
    pub(crate) rows: usize,
    /// Whether this was the cold start.
    pub(crate) cold_start: bool,
    /// Time in the handler.
    pub(crate) latency: Duration,
}

/// The invocation's one structured log line (JSON when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`); inside `lambda_runtime`'s request span,
/// which carries the request id, the X-Ray trace id and the tenant id.
/// Error messages are bounded, so the line is too.
pub(crate) fn log_invocation(outcome: &Outcome, result: &Result<InvocationResponse, LambdaError>) {
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
/// the model computes with ride along as properties, searchable in the logs.
pub(crate) fn emf_line(
    metrics: &ColdStartMetrics,
    function_name: &str,
    family: &str,
    kernels: &str,
) -> String {
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
        "Kernels": kernels,
        "InitDuration": metrics.init_ms,
        "ModelParseDuration": metrics.model_parse_ms,
        "FirstInvokeDuration": metrics.first_invoke_ms,
        "FirstResponseDuration": metrics.first_response_ms,
        "ModelBytes": metrics.model_bytes,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_declares_the_metrics_it_carries() {
        let metrics = ColdStartMetrics {
            init_ms: 1.5,
            model_parse_ms: 0.25,
            first_invoke_ms: 0.01,
            first_response_ms: 2.0,
            model_bytes: 1234,
        };
        let line = emf_line(&metrics, "fn", "LogisticRegression", "avx2");
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
        assert_eq!(v["Kernels"], "avx2");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn exactly_one_invocation_is_the_cold_start_across_threads() {
        let cold = ColdStart::new(Instant::now(), Duration::ZERO, 1);
        let winners: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| usize::from(cold.begin())))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        assert_eq!(winners, 1);
        assert!(cold.metrics().is_none());
        assert!(cold.record(Instant::now()).is_some());
    }
}
