//! End to end, hostile and edge-case input: the `iris` example (a 4-feature,
//! 3-class softmax network) and `serve_manual` as child processes against
//! the Runtime API emulator (tests/support).
//!
//! - near-6 MB events whose payload is one huge string get a small
//!   `MalformedEvent`, one short log line, and the function keeps serving;
//! - features near or beyond the `f32` range: never a `null` in an answer;
//! - HTTP events whose fields have the wrong type are HTTP 400s;
//! - answers over Lambda's response limit are refused, full default
//!   batches fit;
//! - Runtime API faults (missing or malformed headers, a bare 500) do not
//!   stop the function; the log line carries the request, trace and tenant
//!   ids;
//! - SIGTERM: idle, the function exits 0; in flight, it answers first;
//! - local mode with bytes that are not UTF-8;
//! - RSS stays flat under near-limit events, good and bad.

mod support;

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::function::{
    assert_error, assert_prediction, base64_encode, default_example, example, http_answer, ok_body,
    row, url_event, workspace, Function, Stream, TIMEOUT,
};
use support::runtime_api::{Answer, Delivery, TRACE_ID};

/// Lambda's request limit (6 MiB); every hostile event is just under it.
const MAX_REQUEST_BYTES: usize = 6_291_456;

/// Lambda's response limit.
const MAX_RESPONSE_BYTES: usize = 6_291_556;

/// The most bytes an error answer to a hostile event may take.
const MAX_ERROR_BYTES: usize = 2_048;

/// The most log bytes one failed invocation may write.
const MAX_LOG_BYTES: usize = 4_096;

/// The iris network's inputs.
const IRIS_FEATURES: usize = 4;

/// The body of an answer, whichever kind.
fn body_len(answer: &Answer) -> usize {
    match answer {
        Answer::Response(body) | Answer::Error { body, .. } => body.len(),
    }
}

/// Where the huge string sits in a hostile event.
#[derive(Debug, Clone, Copy)]
enum Placement {
    /// `{"features": "<huge>"}`
    Features,
    /// `{"instances": [[1, 2, 3, "<huge>"]]}`
    InstanceElement,
    /// A Function URL event whose body is `{"features": "<huge>"}`.
    HttpBody,
    /// The same, base64-encoded.
    HttpBase64Body,
    /// A Function URL event whose whole body is the huge string.
    HttpRawBody,
}

impl Placement {
    const ALL: [Placement; 5] = [
        Placement::Features,
        Placement::InstanceElement,
        Placement::HttpBody,
        Placement::HttpBase64Body,
        Placement::HttpRawBody,
    ];

    fn is_http(self) -> bool {
        matches!(
            self,
            Placement::HttpBody | Placement::HttpBase64Body | Placement::HttpRawBody
        )
    }

    /// The event with `n` copies of `unit` (JSON text: placed as is inside
    /// a JSON string of the event or of the HTTP body).
    fn event(self, unit: &str, n: usize) -> Vec<u8> {
        let huge = unit.repeat(n);
        match self {
            Placement::Features => format!(r#"{{"features":"{huge}"}}"#).into_bytes(),
            Placement::InstanceElement => {
                format!(r#"{{"instances":[[1,2,3,"{huge}"]]}}"#).into_bytes()
            }
            Placement::HttpBody => {
                let inner = format!(r#"{{"features":"{huge}"}}"#);
                url_event(&inner, false).to_string().into_bytes()
            }
            Placement::HttpBase64Body => {
                let inner = format!(r#"{{"features":"{huge}"}}"#);
                url_event(&base64_encode(inner.as_bytes()), true)
                    .to_string()
                    .into_bytes()
            }
            Placement::HttpRawBody => url_event(&huge, false).to_string().into_bytes(),
        }
    }

    /// The event with as many copies of `unit` as fit just under
    /// [`MAX_REQUEST_BYTES`].
    fn near_limit_event(self, unit: &str) -> Vec<u8> {
        // The size is linear in n (up to base64 padding).
        let (a, b) = (3_000, 6_000);
        let size_a = self.event(unit, a).len() as f64;
        let size_b = self.event(unit, b).len() as f64;
        let per_unit = (size_b - size_a) / (b - a) as f64;
        let overhead = size_a - per_unit * a as f64;
        let n = ((MAX_REQUEST_BYTES as f64 - 64.0 - overhead) / per_unit) as usize;
        let event = self.event(unit, n);
        assert!(
            event.len() < MAX_REQUEST_BYTES && event.len() > MAX_REQUEST_BYTES - 1_024,
            "{self:?} {unit:?}: {} bytes",
            event.len()
        );
        event
    }
}

/// What the huge strings are made of, as JSON string content.
const UNITS: [(&str, &str); 5] = [
    ("escaped control characters", "\\u0001"),
    ("raw control characters", "\u{1}"),
    ("é", "é"),
    ("中", "中"),
    ("letters", "abcdefghij"),
];

/// Invokes `event` (whose answer `check` judges) and then a good event;
/// asserts the failed invocation wrote exactly one log line naming its
/// request id, and at most [`MAX_LOG_BYTES`] in all (stdout and stderr).
fn invoke_and_check_log(f: &Function, event: &[u8], what: &str, check: impl FnOnce(&Answer)) {
    let before = f.output_len();
    let (id, answer) = f.invoke_with(event, Delivery::default());
    check(&answer);
    let good = json!({ "features": row(IRIS_FEATURES, 1) }).to_string();
    let (good_id, after) = f.invoke_with(good.as_bytes(), Delivery::default());
    assert_prediction(&ok_body(&after));
    let lines = f.output_until(before, &good_id);
    let its_lines: Vec<&(Stream, String)> = lines
        .iter()
        .filter(|(_, l)| !l.contains(&good_id))
        .collect();
    let naming = its_lines.iter().filter(|(_, l)| l.contains(&id)).count();
    let bytes: usize = its_lines.iter().map(|(_, l)| l.len() + 1).sum();
    let shown = || {
        its_lines
            .iter()
            .map(|(s, l)| format!("{s:?}: {}", &l[..l.len().min(300)]))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        naming,
        1,
        "{what}: one log line should name {id}:\n{}",
        shown()
    );
    assert!(
        bytes <= MAX_LOG_BYTES,
        "{what}: {bytes} bytes of logs for one invocation:\n{}",
        shown()
    );
    let line = &its_lines
        .iter()
        .find(|(_, l)| l.contains(&id))
        .expect("the line")
        .1;
    let log: Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(log["span"]["requestId"], id.as_str(), "{log}");
    assert!(log["fields"]["error"].is_string(), "{what}: {log}");
}

#[test]
fn near_6mb_hostile_strings_get_small_errors_and_short_logs() {
    let binary = default_example();
    let mut f = Function::start(&binary, &[]);
    assert_prediction(&ok_body(
        &f.invoke(&json!({ "features": row(IRIS_FEATURES, 0) })),
    ));
    let started = Instant::now();
    for placement in Placement::ALL {
        for (name, unit) in UNITS {
            let what = format!("{placement:?} made of {name}");
            let event = placement.near_limit_event(unit);
            invoke_and_check_log(&f, &event, &what, |answer| {
                assert!(
                    body_len(answer) < MAX_ERROR_BYTES,
                    "{what}: a {} byte answer: {}",
                    body_len(answer),
                    String::from_utf8_lossy(&match answer {
                        Answer::Response(b) | Answer::Error { body: b, .. } => b.clone(),
                    })
                );
                if placement.is_http() {
                    let (status, body) = http_answer(answer);
                    assert_eq!(status, 400, "{what}: {body}");
                    assert_eq!(body["errorType"], "MalformedEvent", "{what}: {body}");
                } else {
                    assert_error(answer, "MalformedEvent", "the event");
                }
            });
        }
    }
    // Other ways to fill 6 MB: one number token of 6 million digits (valid
    // JSON, beyond the f64 range), and nesting past serde_json's limit.
    let digits = format!(
        r#"{{"features":[1{},1,1,1]}}"#,
        "0".repeat(MAX_REQUEST_BYTES - 100)
    );
    invoke_and_check_log(&f, digits.as_bytes(), "6 MB number", |answer| {
        assert!(body_len(answer) < MAX_ERROR_BYTES);
        assert_error(answer, "NonFinite", "feature 0");
    });
    let nested = format!(r#"{{"features":{}}}"#, "[".repeat(MAX_REQUEST_BYTES - 100));
    invoke_and_check_log(&f, nested.as_bytes(), "6 MB of brackets", |answer| {
        assert!(body_len(answer) < MAX_ERROR_BYTES);
        assert_error(answer, "MalformedEvent", "the event");
    });
    let peak = f.peak_rss_kb().expect("VmHWM of the child");
    println!(
        "{} near-6 MB hostile events in {:?}; RSS {:?} kB, peak {peak} kB",
        Placement::ALL.len() * UNITS.len() + 2,
        started.elapsed(),
        f.rss_kb(),
    );
    // A 6 MB event costs a few copies of itself at most: the smallest
    // Lambda (128 MB) has room to spare.
    assert!(peak <= 64 * 1024, "peak RSS {peak} kB");
    // Nothing on stderr but the example's own init line (a late line would
    // have escaped the per-invocation count), and the function still runs.
    let stderr: Vec<String> = f
        .output_lines()
        .into_iter()
        .filter(|(s, l)| *s == Stream::Stderr && !l.starts_with("iris: "))
        .map(|(_, l)| l)
        .collect();
    assert!(stderr.is_empty(), "stderr: {stderr:?}");
    assert!(f.is_alive());
}

/// Every number of a prediction entry is a number (a NaN or an infinity
/// would serialize as `null`).
fn assert_all_finite(entry: &Value, what: &str) {
    for key in ["outputs", "probabilities"] {
        if let Some(values) = entry.get(key) {
            for v in values.as_array().expect("array") {
                assert!(
                    v.as_f64().is_some_and(f64::is_finite),
                    "{what}: {key} {entry}"
                );
            }
        }
    }
    assert!(entry["prediction"].is_number(), "{what}: {entry}");
}

#[test]
fn features_near_the_f32_limit_never_answer_null() {
    let binary = default_example();
    let f = Function::start(&binary, &[]);
    let mut overflowing = Vec::new();
    for v in [1e38, -1e38, 3e38, -3e38, 3.4e38] {
        for features in [vec![v; 4], vec![v, 1.0, 1.0, 1.0], vec![1.0, 1.0, 1.0, v]] {
            let what = format!("{features:?}");
            let direct = f.invoke(&json!({ "features": features }));
            let body = json!({ "features": features }).to_string();
            let (status, http_body) = http_answer(&f.invoke(&url_event(&body, false)));
            match &direct {
                Answer::Response(_) => {
                    assert_all_finite(&direct.json(), &what);
                    assert_eq!(status, 200, "{what}: {http_body}");
                    assert_all_finite(&http_body, &what);
                }
                Answer::Error { .. } => {
                    assert_error(&direct, "NonFiniteOutput", "the `features` row");
                    assert_eq!(status, 400, "{what}: {http_body}");
                    assert_eq!(http_body["errorType"], "NonFiniteOutput", "{http_body}");
                    overflowing.push(features);
                }
            }
        }
    }
    println!("iris answers NonFiniteOutput for {overflowing:?}; finite outputs for the rest");
    // For iris, [1e38; 4] used to answer probabilities [null, null, null].
    assert!(
        overflowing.contains(&vec![1e38; 4]),
        "expected NonFiniteOutput for [1e38; 4]: {overflowing:?}"
    );
    // In a batch, the error names the row.
    for bad in &overflowing {
        let event = json!({ "instances": [row(4, 0), row(4, 1), bad, row(4, 2)] });
        assert_error(&f.invoke(&event), "NonFiniteOutput", "for instance 2 ");
    }
}

#[test]
fn features_beyond_f64_are_non_finite_naming_the_feature() {
    let binary = default_example();
    let f = Function::start(&binary, &[]);
    let cases: [(&str, &str); 4] = [
        (
            r#"{"features":[1e400,1,1,1]}"#,
            "feature 0 of the `features` row",
        ),
        (
            r#"{"features":[1,1,1,-1e400]}"#,
            "feature 3 of the `features` row",
        ),
        (
            r#"{"features":[1,1e39,1,1]}"#,
            "feature 1 of the `features` row",
        ),
        (
            r#"{"instances":[[1,1,1,1],[1,-1e400,1,1]]}"#,
            "feature 1 of instance 1",
        ),
    ];
    for (event, needle) in cases {
        assert_error(&f.invoke_raw(event.as_bytes()), "NonFinite", needle);
        for base64 in [false, true] {
            let body = if base64 {
                base64_encode(event.as_bytes())
            } else {
                event.to_owned()
            };
            let (status, body) = http_answer(&f.invoke(&url_event(&body, base64)));
            assert_eq!(status, 400, "{event}: {body}");
            assert_eq!(body["errorType"], "NonFinite", "{event}: {body}");
            let message = body["errorMessage"].as_str().unwrap_or_default();
            assert!(message.contains(needle), "{event}: {message}");
        }
        assert_prediction(&ok_body(&f.invoke(&json!({ "features": row(4, 0) }))));
    }
}

#[test]
fn http_events_with_fields_of_the_wrong_type_are_http_400s() {
    let binary = default_example();
    let f = Function::start(&binary, &[]);
    let good_body = json!({ "features": row(4, 0) }).to_string();
    let context = json!({ "http": { "method": "POST" } });
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "version": "2.0", "requestContext": context, "body": good_body, "isBase64Encoded": "yes" }),
            "`isBase64Encoded` must be true or false, found a string",
        ),
        (
            json!({ "version": "2.0", "requestContext": context, "body": good_body, "isBase64Encoded": 1 }),
            "`isBase64Encoded` must be true or false, found a number",
        ),
        (
            json!({ "version": "2.0", "requestContext": context, "body": 12, "isBase64Encoded": false }),
            "`body` must be a string (the request body), found a number",
        ),
        (
            json!({ "version": "2.0", "requestContext": context, "body": { "features": row(4, 0) } }),
            "`body` must be a string (the request body), found an object",
        ),
        (
            json!({ "version": "2.0", "requestContext": context, "body": [1, 2] }),
            "found an array",
        ),
        (
            json!({ "version": "2.0", "requestContext": context, "body": true }),
            "found a boolean",
        ),
        (
            json!({ "version": "2.0", "requestContext": context, "body": null }),
            "has no body",
        ),
        (
            json!({ "version": "2.0", "requestContext": context }),
            "has no body",
        ),
    ];
    for (event, needle) in cases {
        let answer = f.invoke(&event);
        assert!(
            !answer.is_error(),
            "{event}: a Lambda error instead of an HTTP 400: {}",
            answer.json()
        );
        let (status, body) = http_answer(&answer);
        assert_eq!(status, 400, "{event}: {body}");
        assert_eq!(body["errorType"], "MalformedEvent", "{event}: {body}");
        let message = body["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{event}: {message}");
        let (status, body) = http_answer(&f.invoke(&url_event(&good_body, false)));
        assert_eq!(status, 200, "{body}");
        assert_prediction(&body);
    }
}

/// `rows` rows of 4 features whose answers take many digits.
fn long_rows(rows: usize) -> Vec<Vec<f64>> {
    (0..rows)
        .map(|i| {
            let x = i as f64;
            vec![
                4.3 + (x * 0.37) % 3.6,
                2.0 + (x * 0.13) % 2.4,
                1.0 + (x * 0.71) % 5.9,
                0.1 + (x * 0.29) % 2.4,
            ]
        })
        .collect()
}

#[test]
fn answers_over_the_lambda_response_limit_are_refused() {
    let binary = example("serve_manual");
    let f = Function::start(&binary, &[("APR_MAX_BATCH", "100000")]);
    let rows = 60_000;
    let batch = json!({ "instances": long_rows(rows) }).to_string();
    let answer = f.invoke_raw(batch.as_bytes());
    assert!(
        body_len(&answer) < MAX_ERROR_BYTES,
        "{} bytes",
        body_len(&answer)
    );
    assert_error(&answer, "ResponseTooLarge", "60000 row(s)");
    let message = answer.json()["errorMessage"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("6291556"), "{message}");
    println!("{message}");

    let answer = f.invoke(&url_event(&batch, false));
    assert!(
        body_len(&answer) < MAX_ERROR_BYTES,
        "{} bytes",
        body_len(&answer)
    );
    let (status, body) = http_answer(&answer);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["errorType"], "ResponseTooLarge", "{body}");

    // The function keeps serving, batches that fit included.
    let fits = json!({ "instances": long_rows(1_000) });
    let answer = ok_body(&f.invoke(&fits));
    assert_eq!(answer["predictions"].as_array().map(Vec::len), Some(1_000));
}

#[test]
fn a_full_default_batch_fits_in_a_lambda_response() {
    // serve_manual's model has iris's shape (4 features, 3 classes) and
    // the default batch limit, derived from the model.
    let fixture = workspace().join("apr-runtime/tests/fixtures/mlp_multiclass.v2.apr");
    let bytes = std::fs::read(fixture).expect("read the fixture");
    let model = apr_lambda::runtime::model::Model::from_bytes(&bytes).expect("the fixture loads");
    let limit = apr_lambda::limits::default_max_batch(&model);
    assert_eq!(limit, 10_000);
    let binary = example("serve_manual");
    assert_eq!(binary.max_batch(), limit);
    let f = Function::start(&binary, &[]);
    let batch = json!({ "instances": long_rows(limit) }).to_string();
    let answer = f.invoke_raw(batch.as_bytes());
    let Answer::Response(body) = &answer else {
        panic!("a full batch failed: {}", answer.json());
    };
    assert!(body.len() <= MAX_RESPONSE_BYTES, "{} bytes", body.len());
    let v = answer.json();
    let predictions = v["predictions"].as_array().expect("predictions");
    assert_eq!(predictions.len(), limit);
    predictions.iter().for_each(assert_prediction);
    let http = f.invoke(&url_event(&batch, false));
    assert!(body_len(&http) <= MAX_RESPONSE_BYTES);
    let (status, body) = http_answer(&http);
    assert_eq!(status, 200);
    assert_eq!(body["predictions"].as_array().map(Vec::len), Some(limit));
    println!(
        "{limit} rows: {} bytes direct, {} bytes through a Function URL (limit {MAX_RESPONSE_BYTES})",
        v.to_string().len(),
        body_len(&http)
    );
    assert_error(
        &f.invoke(&json!({ "instances": long_rows(limit + 1) })),
        "BatchTooLarge",
        "limit of 10000",
    );

    // iris: a full batch at its own limit (`max_batch` in examples/iris.rs).
    let iris = default_example();
    let iris_limit = iris.max_batch();
    let f = Function::start(&iris, &[]);
    let answer = ok_body(&f.invoke(&json!({ "instances": long_rows(iris_limit) })));
    assert_eq!(
        answer["predictions"].as_array().map(Vec::len),
        Some(iris_limit)
    );
    assert_error(
        &f.invoke(&json!({ "instances": long_rows(iris_limit + 1) })),
        "BatchTooLarge",
        &format!("limit of {iris_limit}"),
    );
}

/// A fault and how it is injected into the `/next` answer.
fn faults() -> Vec<(&'static str, Delivery)> {
    vec![
        (
            "no request id",
            Delivery::default().omit("lambda-runtime-aws-request-id"),
        ),
        (
            "no deadline",
            Delivery::default().omit("lambda-runtime-deadline-ms"),
        ),
        (
            "a non-numeric deadline",
            Delivery::default().header("lambda-runtime-deadline-ms", "soon"),
        ),
        (
            "a malformed client context",
            Delivery::default().header("lambda-runtime-client-context", "not base64/json"),
        ),
        (
            "a malformed Cognito identity",
            Delivery::default().header("lambda-runtime-cognito-identity", "not base64/json"),
        ),
        ("a bare 500", Delivery::default().bare_status(500)),
        ("a bare 404", Delivery::default().bare_status(404)),
    ]
}

/// Each fault, then a good event that must be answered by the same process.
fn check_faults(f: &mut Function) {
    let good = json!({ "features": row(4, 0) }).to_string();
    assert_prediction(&ok_body(&f.invoke_raw(good.as_bytes())));
    for (fault, delivery) in faults() {
        let id = f.api.enqueue_with(good.as_bytes(), delivery);
        let (_, answer) = f.invoke_with(good.as_bytes(), Delivery::default());
        assert_prediction(&ok_body(&answer));
        assert!(f.is_alive(), "{fault}: the function exited");
        println!(
            "{fault}: the faulty invocation was answered {} time(s); the next one was",
            f.api.answered(&id)
        );
    }
}

#[test]
fn runtime_api_faults_do_not_stop_the_function() {
    let binary = default_example();
    let mut f = Function::start(&binary, &[]);
    check_faults(&mut f);
    // Under Managed Instances (4 polling workers): more faults than workers.
    let mut f = Function::start(&binary, &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")]);
    check_faults(&mut f);
    check_faults(&mut f);
}

#[test]
fn a_runtime_api_that_keeps_failing_stops_the_function() {
    let binary = default_example();
    let mut f = Function::start(&binary, &[]);
    assert_prediction(&ok_body(&f.invoke(&json!({ "features": row(4, 0) }))));
    for _ in 0..5 {
        f.api
            .enqueue_with(b"{}", Delivery::default().bare_status(500));
    }
    let status = f
        .wait_exit(TIMEOUT)
        .expect("the function should give up after 5 faults in a row");
    assert!(!status.success(), "{status:?}");
    assert_eq!(status.code(), Some(1), "{status:?}");
    let output = f.output_lines();
    assert!(
        output.iter().any(|(_, l)| l.contains("keeps failing")),
        "{output:?}"
    );
}

#[test]
fn log_lines_carry_the_request_trace_and_tenant_ids() {
    let binary = default_example();
    let f = Function::start(&binary, &[]);
    let events: [(&[u8], &str); 3] = [
        (br#"{"features":[5.1,3.5,1.4,0.2]}"#, "invocation"),
        (br#"{"features":[5.1,3.5,1.4]}"#, "invocation failed"),
        (
            br#"{"version":"2.0","requestContext":{"http":{"method":"POST"}},"body":"{}","isBase64Encoded":false}"#,
            "invocation answered with an HTTP error",
        ),
    ];
    for (i, (event, message)) in events.into_iter().enumerate() {
        let tenant = format!("tenant-{i}");
        let before = f.output_len();
        let (id, _) = f.invoke_with(event, Delivery::default().tenant(&tenant));
        let lines = f.output_until(before, &id);
        let line = &lines
            .iter()
            .find(|(_, l)| l.contains(&id))
            .expect("the line")
            .1;
        let log: Value = serde_json::from_str(line).expect("a JSON log line");
        assert_eq!(log["fields"]["message"], message, "{log}");
        assert_eq!(log["span"]["requestId"], id.as_str(), "{log}");
        assert_eq!(log["span"]["xrayTraceId"], TRACE_ID, "{log}");
        assert_eq!(log["span"]["tenantId"], tenant.as_str(), "{log}");
    }
    // Without the header, no tenant id.
    let before = f.output_len();
    let (id, _) = f.invoke_with(br#"{"features":[1,2,3,4]}"#, Delivery::default());
    let lines = f.output_until(before, &id);
    let line = &lines
        .iter()
        .find(|(_, l)| l.contains(&id))
        .expect("the line")
        .1;
    let log: Value = serde_json::from_str(line).expect("JSON");
    assert_eq!(log["span"]["requestId"], id.as_str(), "{log}");
    assert!(log["span"].get("tenantId").is_none(), "{log}");
}

#[test]
fn sigterm_when_idle_exits_zero() {
    let binary = default_example();
    let mut f = Function::start(&binary, &[]);
    assert_prediction(&ok_body(&f.invoke(&json!({ "features": row(4, 0) }))));
    assert!(
        f.api.wait_waiting_polls(1, TIMEOUT),
        "the function polls again"
    );
    let sent = Instant::now();
    f.sigterm();
    let status = f
        .wait_exit(Duration::from_secs(5))
        .expect("no exit within 5 s of SIGTERM");
    println!("exited {:?} after SIGTERM", sent.elapsed());
    assert!(status.success(), "{status:?}");
}

/// SIGTERM while `ids` are answered but their acknowledgements held: the
/// function still runs while they are held, exits 0 once they are let go.
fn sigterm_in_flight(f: &mut Function, ids: &[String]) {
    for id in ids {
        let answer = f.api.wait_answer(id, TIMEOUT).expect("the answer");
        assert_prediction(&ok_body(&answer));
    }
    f.sigterm();
    // An exit now would leave the invocations unfinished. (How long to
    // watch only bounds what is detected: a function that does not wait
    // exits within milliseconds.)
    let early = f.wait_exit(Duration::from_millis(500));
    assert!(
        early.is_none(),
        "the function exited ({early:?}) with {} invocation(s) in flight",
        ids.len()
    );
    for id in ids {
        f.api.release(id);
    }
    let status = f.wait_exit(TIMEOUT).expect("no exit after SIGTERM");
    assert!(ids.iter().all(|id| f.api.acked(id)));
    assert!(status.success(), "{status:?}");
}

#[test]
fn sigterm_in_flight_answers_then_exits_zero() {
    let binary = default_example();
    let event = json!({ "features": row(4, 0) }).to_string();
    let hold = Delivery::default().hold_ack();

    let mut f = Function::start(&binary, &[]);
    assert_prediction(&ok_body(&f.invoke_raw(event.as_bytes())));
    let id = f.api.enqueue_with(event.as_bytes(), hold.clone());
    sigterm_in_flight(&mut f, &[id]);

    // The emulator's ack delay: SIGTERM lands during it.
    let mut f = Function::start(&binary, &[]);
    assert_prediction(&ok_body(&f.invoke_raw(event.as_bytes())));
    let delay = Delivery::default().ack_delay(Duration::from_millis(500));
    let id = f.api.enqueue_with(event.as_bytes(), delay);
    assert!(f.api.wait_answer(&id, TIMEOUT).is_some());
    f.sigterm();
    let status = f.wait_exit(TIMEOUT).expect("no exit after SIGTERM");
    assert!(
        f.api.acked(&id),
        "exited before the answer was acknowledged"
    );
    assert!(status.success(), "{status:?}");

    // Managed Instances: three invocations in flight at once.
    let mut f = Function::start(&binary, &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")]);
    assert_prediction(&ok_body(&f.invoke_raw(event.as_bytes())));
    let ids: Vec<String> = (0..3)
        .map(|_| f.api.enqueue_with(event.as_bytes(), hold.clone()))
        .collect();
    sigterm_in_flight(&mut f, &ids);
}

#[test]
fn local_mode_answers_bytes_that_are_not_utf8() {
    let binary = default_example();
    let good = json!({ "features": row(4, 1) }).to_string();

    let mut child = binary
        .command()
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start in local mode");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(good.as_bytes()).expect("write");
        stdin
            .write_all(b"\n{\"features\":[1,2,\xff\xfe,4]}\n\xc3\x28\n")
            .expect("write");
        stdin.write_all(good.as_bytes()).expect("write");
        stdin.write_all(b"\n").expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON line per event"))
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_prediction(&lines[0]);
    for bad in &lines[1..3] {
        assert_eq!(bad["errorType"], "MalformedEvent", "{bad}");
        let message = bad["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains("UTF-8"), "{message}");
    }
    assert_prediction(&lines[3]);

    // An argument that is not UTF-8: an error line, no panic.
    let out = binary
        .command()
        .arg(&good)
        .arg(OsStr::from_bytes(b"{\"features\":[\xff]}"))
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .expect("run in local mode");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON line per event"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_prediction(&lines[0]);
    assert_eq!(lines[1]["errorType"], "MalformedEvent", "{}", lines[1]);
}

/// The median of `samples`.
fn median(samples: &[u64]) -> u64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

/// Memory stays flat under near-limit events, good and bad.
///
/// The function runs with `MALLOC_MMAP_THRESHOLD_=131072`: every buffer of
/// 128 KB or more is then its own mapping, returned to the system when
/// freed, so the RSS measures what the function keeps. With glibc's default
/// (a threshold that rises to the largest buffer freed), freed 6 MB
/// buffers stay in the heap, and the idle RSS wanders between about 12 and
/// 34 MB with the allocator's state (bounded, see the peak checked by
/// `near_6mb_hostile_strings_get_small_errors_and_short_logs`).
#[test]
fn near_limit_events_do_not_grow_memory() {
    // serve_manual: the iris shape with the default batch limit (10 000),
    // so that good events come near the limits too.
    let binary = example("serve_manual");
    let f = Function::start(&binary, &[("MALLOC_MMAP_THRESHOLD_", "131072")]);
    let big_batch = json!({ "instances": long_rows(9_000) })
        .to_string()
        .into_bytes();
    let bad: Vec<(Placement, Vec<u8>)> = [
        Placement::Features,
        Placement::InstanceElement,
        Placement::HttpBody,
    ]
    .into_iter()
    .map(|p| (p, p.near_limit_event("\\u0001")))
    .collect();
    let url_batch = url_event(&json!({ "instances": long_rows(2_000) }).to_string(), false)
        .to_string()
        .into_bytes();
    let single = json!({ "features": row(4, 3) }).to_string().into_bytes();
    // Groups of five: a batch of 9 000 rows, a near-6 MB bad event, a
    // single row, a Function URL batch of 2 000 rows, a single row; then
    // the RSS, the function idle.
    let group = |g: usize| -> u64 {
        let answer = f.invoke_raw(&big_batch);
        let Answer::Response(body) = &answer else {
            panic!("the batch failed: {}", answer.json());
        };
        // Cheaper than parsing: one "outputs" per row.
        let rows = body.windows(9).filter(|w| w == b"\"outputs\"").count();
        assert_eq!(rows, 9_000);

        let (placement, event) = &bad[g % bad.len()];
        let answer = f.invoke_raw(event);
        assert!(
            body_len(&answer) < MAX_ERROR_BYTES,
            "{placement:?}: {} bytes",
            body_len(&answer)
        );
        if placement.is_http() {
            assert_eq!(http_answer(&answer).1["errorType"], "MalformedEvent");
        } else {
            assert_error(&answer, "MalformedEvent", "the event");
        }

        assert_prediction(&ok_body(&f.invoke_raw(&single)));
        let answer = f.invoke_raw(&url_batch);
        let Answer::Response(body) = &answer else {
            panic!("the batch failed: {}", answer.json());
        };
        assert!(body.starts_with(br#"{"statusCode":200"#));
        assert_prediction(&ok_body(&f.invoke_raw(&single)));
        f.rss_kb().expect("VmRSS of the child")
    };
    let started = Instant::now();
    // Warm up: allocator pools and thresholds, the largest buffers.
    let warm: Vec<u64> = (0..6).map(group).collect();
    let first: Vec<u64> = (6..14).map(group).collect();
    let last: Vec<u64> = (14..30).map(group).collect();
    let (before, after) = (median(&first), median(&last[last.len() / 2..]));
    let growth = after.saturating_sub(before);
    let highest = last.iter().copied().max().unwrap_or(0);
    println!(
        "RSS (kB) after each group of 5 near-limit invocations, {:?} in all: warm-up {warm:?}, then {first:?}, then {last:?}; median {before} -> {after} kB, growth {growth} kB",
        started.elapsed()
    );
    assert!(
        growth <= 2_048,
        "RSS grew by {growth} kB over 120 near-limit invocations ({before} -> {after} kB)"
    );
    assert!(
        highest <= before + 4_096,
        "RSS reached {highest} kB (from {before} kB)"
    );
}
