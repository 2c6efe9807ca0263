//! End to end, Lambda Managed Instances: the `iris` example with
//! `AWS_LAMBDA_MAX_CONCURRENCY=4` serves many invocations at once, against
//! the Runtime API emulator (tests/support), and answers each exactly as
//! the same binary answers it one invocation at a time.

mod support;

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{json, Value};
use support::function::{
    base64_encode, default_example, url_event, Function, FunctionBinary, TIMEOUT,
};
use support::runtime_api::{Answer, Delivery};

/// Client threads sending invocations at once.
const CLIENTS: usize = 8;

/// Invocations in the concurrent run.
const INVOCATIONS: usize = 2_000;

/// Invocations before the first RSS sample (warm-up).
const WARM_UP: usize = 400;

/// Row `seed` of 4 features, in iris's range.
fn features(seed: usize) -> Vec<f64> {
    (0..4)
        .map(|j| ((seed * 31 + j * 17) % 70) as f64 / 10.0 + 0.1)
        .collect()
}

fn rows(first: usize, n: usize) -> Vec<Vec<f64>> {
    (first..first + n).map(features).collect()
}

/// Invocation `i` of the mix. The first of every 16 (so the first event of
/// each client thread) are good events, whose answers say whether they
/// were the cold start; then single rows, batches of 2 to 64 rows,
/// Function URL events, and events of every error kind.
fn event(i: usize) -> Vec<u8> {
    let batch_len = 2 + (i * 7) % 63;
    let event = match i % 16 {
        0 | 3 | 6 | 9 => json!({ "features": features(i) }),
        1 | 5 | 7 => json!({ "instances": rows(i, batch_len) }),
        2 => url_event(&json!({ "features": features(i) }).to_string(), false),
        4 => url_event(
            &base64_encode(
                json!({ "instances": rows(i, batch_len) })
                    .to_string()
                    .as_bytes(),
            ),
            true,
        ),
        8 => json!({ "features": [1.0, 2.0, 3.0] }),
        10 => {
            let mut batch: Vec<Value> = rows(i, batch_len).into_iter().map(Value::from).collect();
            batch[batch_len / 2] = json!([1.0, "NaN", 3.0, 4.0]);
            json!({ "instances": batch })
        }
        11 => return format!(r#"{{"features": [1, 2, {i}"#).into_bytes(),
        12 => {
            let mut batch: Vec<Value> = rows(i, batch_len).into_iter().map(Value::from).collect();
            batch[batch_len - 1] = json!([1e38, 1e38, 1e38, 1e38]);
            json!({ "instances": batch })
        }
        13 => json!({ "instances": [] }),
        14 => return [b"{\"features\":[1,2,3,".as_slice(), &[0xff, 0xfe], b"]}"].concat(),
        _ => url_event(&json!({ "features": [1.0, 2.0] }).to_string(), false),
    };
    event.to_string().into_bytes()
}

/// An answer without its timing fields (`latency_ms`, `cold_start`, also
/// inside an HTTP body), as `(is_error, json)`; and whether it said
/// `"cold_start": true`.
fn normalize(answer: &Answer) -> ((bool, Value), bool) {
    let mut v = answer.json();
    let mut cold = false;
    let mut strip = |v: &mut Value| {
        if let Some(map) = v.as_object_mut() {
            cold |= map.remove("cold_start") == Some(Value::Bool(true));
            map.remove("latency_ms");
        }
    };
    strip(&mut v);
    if let Some(body) = v.get("body").and_then(Value::as_str) {
        let mut inner: Value = serde_json::from_str(body).expect("an HTTP body of JSON");
        strip(&mut inner);
        v["body"] = inner;
    }
    ((answer.is_error(), v), cold)
}

/// Sends `events[range]` from [`CLIENTS`] threads at once (thread `t` sends
/// every `CLIENTS`th event, one at a time); the request ids and answers.
fn run_concurrently(
    f: &Function,
    events: &[Vec<u8>],
    range: std::ops::Range<usize>,
) -> Vec<(usize, String, Answer)> {
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|t| {
                let range = range.clone();
                scope.spawn(move || {
                    range
                        .skip(t)
                        .step_by(CLIENTS)
                        .map(|i| {
                            let (id, answer) = f.invoke_with(&events[i], Delivery::default());
                            (i, id, answer)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().expect("a client thread"))
            .collect()
    })
}

/// Threads of process `pid` (Linux).
fn threads(pid: u32) -> Option<usize> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn managed_instances_answer_every_event_once_as_one_at_a_time() {
    check_managed_instances(&default_example(), INVOCATIONS, WARM_UP);
}

/// The same check against any iris build, e.g. the arm64 `bootstrap` under
/// qemu (`APR_E2E_BOOTSTRAP`, `APR_E2E_RUNNER`, as for `e2e::external_bootstrap`),
/// with fewer invocations since qemu is slow.
#[test]
#[ignore = "needs APR_E2E_BOOTSTRAP=/path/to/bootstrap (scripts/test.sh sets it)"]
fn external_bootstrap_managed_instances() {
    let path = std::env::var_os("APR_E2E_BOOTSTRAP")
        .expect("APR_E2E_BOOTSTRAP=/path/to/bootstrap names the binary to test");
    let binary = FunctionBinary {
        path: std::path::PathBuf::from(path),
        runner: std::env::var("APR_E2E_RUNNER")
            .ok()
            .filter(|r| !r.is_empty()),
    };
    check_managed_instances(&binary, 480, 160);
}

/// `invocations` events (the first `warm_up` before the first RSS sample)
/// one at a time, then from [`CLIENTS`] threads with
/// `AWS_LAMBDA_MAX_CONCURRENCY=4`: the same answers, exactly one cold start.
fn check_managed_instances(binary: &FunctionBinary, invocations: usize, warm_up: usize) {
    let events: Vec<Vec<u8>> = (0..invocations).map(event).collect();

    // The reference: the same binary, one invocation at a time.
    let started = Instant::now();
    let (reference, reference_threads) = {
        let f = Function::start(binary, &[]);
        let answers: Vec<(bool, Value)> = events
            .iter()
            .map(|e| normalize(&f.invoke_with(e, Delivery::default()).1).0)
            .collect();
        (answers, threads(f.child.id()).expect("Threads"))
    };
    let one_at_a_time = started.elapsed();
    let errors = reference.iter().filter(|(is_error, _)| *is_error).count();
    let http_errors = reference
        .iter()
        .filter(|(_, v)| v["statusCode"].as_u64().is_some_and(|s| s >= 400))
        .count();
    assert!(
        errors >= invocations / 4 && http_errors >= invocations / 16,
        "the mix should hold errors of both kinds: {errors} Lambda errors, {http_errors} HTTP errors"
    );

    let mut f = Function::start(binary, &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")]);
    assert!(
        f.api.wait_waiting_polls(4, TIMEOUT),
        "4 /next polls should wait at once; at most {} did",
        f.api.max_waiting_polls()
    );
    let started = Instant::now();
    let mut answers = run_concurrently(&f, &events, 0..warm_up);
    let rss_before = f.rss_kb().expect("VmRSS");
    answers.extend(run_concurrently(&f, &events, warm_up..invocations));
    let rss_after = f.rss_kb().expect("VmRSS");
    let concurrently = started.elapsed();
    let max_waiting = f.api.max_waiting_polls();
    let worker_threads = threads(f.child.id()).expect("Threads");
    println!(
        "{invocations} invocations ({errors} Lambda errors, {http_errors} HTTP errors): one at a time {one_at_a_time:?}; {CLIENTS} clients, concurrency 4: {concurrently:?}, at most {max_waiting} polls waiting at once, {worker_threads} threads (one at a time: {reference_threads}); RSS {rss_before} -> {rss_after} kB"
    );

    // A multi-thread tokio runtime (one worker per CPU, at most 4), where
    // one at a time runs on the main thread alone.
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(
        worker_threads > reference_threads && worker_threads > cpus.min(4),
        "{worker_threads} threads with concurrency 4, {reference_threads} without"
    );

    // Every event answered, exactly once, as one at a time.
    assert_eq!(answers.len(), invocations);
    assert_eq!(f.api.irregular(), Vec::new(), "(id, delivered, answered)");
    let mut cold = Vec::new();
    for (i, id, answer) in &answers {
        let (normalized, was_cold) = normalize(answer);
        assert_eq!(
            normalized,
            reference[*i],
            "event {i} ({id}): {}",
            String::from_utf8_lossy(&events[*i][..events[*i].len().min(200)])
        );
        if was_cold {
            cold.push(id.clone());
        }
    }
    assert_eq!(cold.len(), 1, "cold starts: {cold:?}");

    // One log line per invocation, and one cold-start EMF line.
    let ids: HashMap<&str, usize> = answers.iter().map(|(i, id, _)| (id.as_str(), *i)).collect();
    let deadline = Instant::now() + TIMEOUT;
    let (logged, emf) = loop {
        let lines = f.stdout_lines();
        let emf = lines
            .iter()
            .filter(|l| l.contains("CloudWatchMetrics"))
            .count();
        let mut logged: HashMap<String, usize> = HashMap::new();
        for line in &lines {
            if let Ok(log) = serde_json::from_str::<Value>(line) {
                if let Some(id) = log["span"]["requestId"].as_str() {
                    *logged.entry(id.to_owned()).or_insert(0) += 1;
                }
            }
        }
        if logged.len() >= invocations || Instant::now() >= deadline {
            break (logged, emf);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(emf, 1, "cold-start EMF lines");
    assert_eq!(logged.len(), invocations, "request ids in the logs");
    for (id, count) in &logged {
        assert!(ids.contains_key(id.as_str()), "a log line for {id}");
        assert_eq!(*count, 1, "log lines for {id}");
    }

    let growth = rss_after.saturating_sub(rss_before);
    assert!(
        growth <= 4_096,
        "RSS grew by {growth} kB ({rss_before} -> {rss_after} kB)"
    );
    assert!(f.is_alive(), "the function exited");
}
