//! End to end: a function binary as a child process, served by a Lambda
//! Runtime API emulator on 127.0.0.1 (tests/support/runtime_api.rs).
//!
//! The binary is the macro-built default example (`examples/iris.rs`);
//! `cargo build --example` builds it on first use. `APR_E2E_BOOTSTRAP=/path/to/bootstrap` (with
//! `APR_E2E_RUNNER=qemu-aarch64-static` for a foreign binary) runs the same
//! checks against any other build in the `external_bootstrap` test;
//! `APR_E2E_MODEL=models/model.apr` adds known answers computed in-process
//! from the model it embeds, and `APR_E2E_EXPECT_KERNELS=neon` checks the
//! kernel set it reports in its cold-start metrics line.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use support::function::{
    assert_error, assert_prediction, assert_same_prediction, base64_encode, default_example,
    example, http_answer, ok_body, row, url_event, workspace, Function, FunctionBinary, TIMEOUT,
};
use support::runtime_api::RuntimeApi;

/// Good single and batch events; `cold_start` only on the first.
fn check_good_events(f: &Function, n: usize) {
    let first = ok_body(&f.invoke(&json!({ "features": row(n, 1) })));
    assert_prediction(&first);
    assert_eq!(first["cold_start"], true, "{first}");
    assert!(first["latency_ms"].is_number());

    let rows: Vec<Vec<f64>> = (0..5).map(|s| row(n, s)).collect();
    let batch = ok_body(&f.invoke(&json!({ "instances": rows })));
    assert_eq!(batch["cold_start"], false, "{batch}");
    let predictions = batch["predictions"].as_array().expect("predictions");
    assert_eq!(predictions.len(), 5);
    for (i, entry) in predictions.iter().enumerate() {
        assert_prediction(entry);
        // Every batch row answers as it would alone.
        let alone = ok_body(&f.invoke(&json!({ "features": rows[i] })));
        assert_eq!(alone["cold_start"], false);
        assert_same_prediction(&alone["prediction"], &entry["prediction"]);
    }
    assert_same_prediction(&batch["predictions"][1]["prediction"], &first["prediction"]);
}

/// Each bad event gets an error naming the problem; a good event follows.
fn check_bad_events(f: &Function, n: usize) {
    let good = json!({ "features": row(n, 3) });
    let mut too_short = row(n, 0);
    too_short.pop();
    let mut nan_row: Vec<Value> = row(n, 0).into_iter().map(Value::from).collect();
    nan_row[n - 1] = json!("NaN");
    let overflow = format!(
        r#"{{"features":[{}1e39]}}"#,
        "1.0,".repeat(n.saturating_sub(1))
    );
    let oversized = json!({ "instances": vec![row(n, 0); 10_001] });

    let cases: Vec<(Vec<u8>, &str, String)> = vec![
        (
            b"{\"features\": [1.0, 2.0".to_vec(),
            "MalformedEvent",
            "not valid JSON".into(),
        ),
        (
            b"[1, 2, 3]".to_vec(),
            "MalformedEvent",
            "wrong shape".into(),
        ),
        (
            br#"{"feature": [1]}"#.to_vec(),
            "MalformedEvent",
            "neither".into(),
        ),
        (
            br#"{"features": [1, "x"]}"#.to_vec(),
            "MalformedEvent",
            "expected a number".into(),
        ),
        (
            json!({ "features": too_short }).to_string().into_bytes(),
            "FeatureCount",
            format!("but the model takes {n}"),
        ),
        (
            overflow.into_bytes(),
            "NonFinite",
            format!("feature {}", n - 1),
        ),
        (
            json!({ "features": nan_row }).to_string().into_bytes(),
            "NonFinite",
            format!("feature {}", n - 1),
        ),
        (
            br#"{"instances": []}"#.to_vec(),
            "EmptyBatch",
            "empty".into(),
        ),
        (
            oversized.to_string().into_bytes(),
            "BatchTooLarge",
            "10001 instances".into(),
        ),
        (
            json!({ "instances": [row(n, 0), row(n + 1, 0)] })
                .to_string()
                .into_bytes(),
            "FeatureCount",
            "instance 1".into(),
        ),
    ];
    for (event, error_type, needle) in cases {
        assert_error(&f.invoke_raw(&event), error_type, &needle);
        let after = ok_body(&f.invoke(&good));
        assert_prediction(&after);
        assert_eq!(after["cold_start"], false);
    }

    // Function URL / API Gateway HTTP API (2.0) events.
    let good_body = good.to_string();
    let (status, body) = http_answer(&f.invoke(&url_event(&good_body, false)));
    assert_eq!(status, 200, "{body}");
    assert_prediction(&body);
    let encoded = base64_encode(good_body.as_bytes());
    let (status, body) = http_answer(&f.invoke(&url_event(&encoded, true)));
    assert_eq!(status, 200, "{body}");
    assert_prediction(&body);

    for (bad_body, base64, error_type, needle) in [
        (
            "{\"features\": [1,",
            false,
            "MalformedEvent",
            "request body is not valid JSON",
        ),
        ("not base64!", true, "MalformedEvent", "not valid base64"),
        (
            r#"{"features": [1]}"#,
            false,
            "FeatureCount",
            "has 1 feature,",
        ),
        (r#"{"instances": []}"#, false, "EmptyBatch", "empty"),
    ] {
        let (status, body) = http_answer(&f.invoke(&url_event(bad_body, base64)));
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errorType"], error_type, "{body}");
        let message = body["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{message}");
        assert_prediction(&ok_body(&f.invoke(&good)));
    }
}

/// The log lines on stdout: one per invocation, plus the EMF line once.
/// Returns the EMF line.
fn check_logs(f: &Function, invocations: usize) -> Value {
    // The child writes asynchronously; give the reader thread a moment.
    let mut lines = f.stdout_lines();
    for _ in 0..50 {
        if lines.len() > invocations {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        lines = f.stdout_lines();
    }
    let emf: Vec<&String> = lines.iter().filter(|l| l.contains("\"_aws\"")).collect();
    assert_eq!(emf.len(), 1, "one EMF line expected:\n{}", lines.join("\n"));
    let metrics: Value = serde_json::from_str(emf[0]).expect("EMF line is JSON");
    for name in ["InitDuration", "ModelParseDuration", "FirstInvokeDuration"] {
        assert!(metrics[name].is_number(), "{name} missing: {metrics}");
    }
    let invocation_logs: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["event"].is_string())
        .collect();
    for log in &invocation_logs {
        // Inside lambda_runtime's span, so the request id is on the line.
        let request_id = log["span"]["requestId"].as_str().unwrap_or_default();
        assert!(!request_id.is_empty(), "no request id: {log}");
        assert!(log["fields"]["latency_ms"].is_number(), "{log}");
    }
    assert_eq!(
        invocation_logs.len(),
        invocations,
        "one JSON log line per invocation:\n{}",
        lines.join("\n")
    );
    metrics
}

/// Known answers: the function's predictions equal the model's own, computed
/// in this process from the `.apr` file the function embeds (1e-5 relative:
/// another machine's kernels may add in another order). Returns the number
/// of invocations made.
fn check_known_answers(f: &Function, model_path: &Path) -> usize {
    let bytes = std::fs::read(model_path).expect("read the embedded model");
    let model =
        apr_lambda::runtime::model::Model::from_bytes(&bytes).expect("the embedded model loads");
    let mut scratch = model.scratch();
    let n = model.n_features();
    let rows: Vec<Vec<f64>> = (0..6).map(|s| row(n, s)).collect();
    for features in &rows {
        let row32: Vec<f32> = features.iter().map(|&v| v as f32).collect();
        let expected = model.predict(&row32, &mut scratch).expect("predict");
        let answer = ok_body(&f.invoke(&json!({ "features": features })));
        let expected_json = serde_json::to_value(expected.prediction()).expect("serialize");
        assert_same_prediction(&answer["prediction"], &expected_json);
        let outputs: Vec<Value> = expected.outputs.iter().map(|&v| json!(v)).collect();
        assert_same_prediction(&answer["outputs"], &Value::Array(outputs));
    }
    rows.len()
}

#[test]
fn good_events_are_answered_and_only_the_first_is_cold() {
    let binary = default_example();
    let n = binary.n_features();
    let f = Function::start(&binary, &[]);
    check_good_events(&f, n);
    let known = check_known_answers(&f, &workspace().join("models/model.apr"));
    // 1 + 1 batch + 5 singles, then the known answers.
    let metrics = check_logs(&f, 7 + known);
    // The function chose the same kernels this process chooses.
    assert_eq!(
        metrics["Kernels"],
        apr_lambda::runtime::kernels::kernel_name(),
        "{metrics}"
    );
}

#[test]
fn bad_events_are_named_errors_and_the_function_keeps_serving() {
    let binary = default_example();
    let n = binary.n_features();
    let f = Function::start(&binary, &[]);
    assert_prediction(&ok_body(&f.invoke(&json!({ "features": row(n, 0) }))));
    check_bad_events(&f, n);
}

#[test]
fn a_smaller_batch_limit_is_enforced() {
    let binary = example("serve_manual");
    let f = Function::start(&binary, &[("APR_MAX_BATCH", "3")]);
    let ok = f.invoke(&json!({ "instances": vec![row(4, 0); 3] }));
    assert_eq!(
        ok_body(&ok)["predictions"].as_array().map(Vec::len),
        Some(3)
    );
    let too_many = f.invoke(&json!({ "instances": vec![row(4, 0); 4] }));
    assert_error(&too_many, "BatchTooLarge", "limit of 3");
}

#[test]
fn a_bad_model_is_reported_to_init_error() {
    let binary = example("serve_manual");
    let fixtures = workspace().join("apr-runtime/tests/fixtures");
    for (file, error_type) in [
        ("bad_magic.apr", "InvalidMagic"),
        ("bad_empty.apr", "EmptyModel"),
        ("bad_header_crc.apr", "Format"),
        ("bad_footer_crc.apr", "Format"),
    ] {
        let path = fixtures.join(file);
        let mut f = Function::start(
            &binary,
            &[("APR_MODEL_PATH", path.to_str().expect("utf-8"))],
        );
        let init = f
            .api
            .wait_init_error(TIMEOUT)
            .unwrap_or_else(|| panic!("{file}: no /init/error"));
        assert_eq!(
            init.body["errorType"], error_type,
            "{file}: {:?}",
            init.body
        );
        assert!(init.body["errorMessage"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        let status = f.child.wait().expect("wait");
        assert!(
            !status.success(),
            "{file}: the process must exit with failure"
        );
        assert_eq!(
            f.api.polls(),
            0,
            "{file}: no /next poll after a failed init"
        );
    }
}

#[test]
fn ten_thousand_invocations_do_not_grow_memory() {
    let binary = default_example();
    let n = binary.n_features();
    let f = Function::start(&binary, &[]);
    let single = json!({ "features": row(n, 2) }).to_string().into_bytes();
    let batch = json!({ "instances": (0..16).map(|s| row(n, s)).collect::<Vec<_>>() })
        .to_string()
        .into_bytes();
    let bad = json!({ "features": row(n + 1, 0) })
        .to_string()
        .into_bytes();
    let http = json!({
        "version": "2.0",
        "requestContext": { "http": { "method": "POST" } },
        "body": json!({ "features": row(n, 4) }).to_string(),
        "isBase64Encoded": false
    })
    .to_string()
    .into_bytes();
    let run = |count: usize| {
        for i in 0..count {
            let event = match i % 10 {
                0 => &batch,
                5 => &bad,
                7 => &http,
                _ => &single,
            };
            let answer = f.invoke_raw(event);
            assert_eq!(answer.is_error(), i % 10 == 5, "invocation {i}");
        }
    };
    // Warm up: allocator pools, connection pool, lazily sized buffers.
    run(1_000);
    let before = f.rss_kb().expect("VmRSS of the child");
    run(10_000);
    let after = f.rss_kb().expect("VmRSS of the child");
    let growth = after.saturating_sub(before);
    println!(
        "RSS over 10 000 invocations (per 10: 7 single rows, 1 batch of 16, 1 Function URL event, 1 error): before {before} kB, after {after} kB, growth {growth} kB"
    );
    assert!(
        growth <= 512,
        "RSS grew by {growth} kB over 10 000 invocations ({before} -> {after} kB)"
    );
}

/// The same checks against any bootstrap: `APR_E2E_BOOTSTRAP=/path`
/// (and `APR_E2E_RUNNER=qemu-aarch64-static` for an arm64 build).
/// Ignored unless asked for (`-- --ignored external_bootstrap`), so that it
/// never passes without having run anything.
#[test]
#[ignore = "needs APR_E2E_BOOTSTRAP=/path/to/bootstrap (scripts/test.sh sets it)"]
fn external_bootstrap() {
    let path = std::env::var_os("APR_E2E_BOOTSTRAP")
        .expect("APR_E2E_BOOTSTRAP=/path/to/bootstrap names the binary to test");
    let binary = FunctionBinary {
        path: PathBuf::from(path),
        runner: std::env::var("APR_E2E_RUNNER")
            .ok()
            .filter(|r| !r.is_empty()),
    };
    let n = binary.n_features();
    println!(
        "external_bootstrap: {} ({n} features)",
        binary.path.display()
    );
    let f = Function::start(&binary, &[]);
    check_good_events(&f, n);
    check_bad_events(&f, n);
    // APR_E2E_MODEL: the .apr file the bootstrap embeds, for known answers.
    let known = std::env::var_os("APR_E2E_MODEL")
        .map_or(0, |model| check_known_answers(&f, Path::new(&model)));
    let metrics = check_logs(&f, 7 + 10 * 2 + 2 + 4 * 2 + known);
    // APR_E2E_EXPECT_KERNELS: the kernel set the bootstrap must have chosen
    // (`neon` for an arm64 build under qemu).
    if let Ok(expected) = std::env::var("APR_E2E_EXPECT_KERNELS") {
        assert_eq!(metrics["Kernels"], expected.as_str(), "{metrics}");
    }
    println!("external_bootstrap: cold start {metrics}");
}

#[test]
fn local_mode_answers_arguments_and_stdin_then_exits() {
    use std::io::Write;

    let binary = default_example();
    let n = binary.n_features();
    let good = json!({ "features": row(n, 1) }).to_string();
    let batch = json!({ "instances": [row(n, 1), row(n, 2)] }).to_string();

    // Arguments: one response line each, status 0 when all succeed.
    let out = binary
        .command()
        .args([&good, &batch])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .expect("run in local mode");
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON response per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["cold_start"], true);
    assert_eq!(lines[1]["predictions"].as_array().map(Vec::len), Some(2));

    // Stdin: JSON lines; a failure makes the status 1 but the rest is answered.
    let mut child = binary
        .command()
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start in local mode");
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{good}\n\nnot json\n{batch}").expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON line per event"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["errorType"], "MalformedEvent");
    assert!(lines[2]["predictions"].is_array());

    // --help explains both modes.
    let out = binary
        .command()
        .arg("--help")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .expect("--help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("AWS_LAMBDA_RUNTIME_API"), "{help}");
    assert!(
        help.contains("Local mode") && help.contains("Lambda mode"),
        "{help}"
    );
}

#[test]
fn a_partial_lambda_environment_is_an_error_not_a_panic() {
    const NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";
    const VERSION: &str = "AWS_LAMBDA_FUNCTION_VERSION";
    const MEMORY: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
    let binary = default_example();
    /// What is wrong, the variables unset, those overridden, the one named.
    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 5] = [
        ("none of the three", &[NAME, VERSION, MEMORY], &[], NAME),
        ("no function name", &[NAME], &[], NAME),
        ("no function version", &[VERSION], &[], VERSION),
        ("no memory size", &[MEMORY], &[], MEMORY),
        ("a memory size of abc", &[], &[(MEMORY, "abc")], MEMORY),
    ];
    for (what, unset, set, named) in cases {
        let api = RuntimeApi::start();
        let mut command = binary.command();
        command
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env(NAME, "apr-e2e")
            .env(VERSION, "$LATEST")
            .env(MEMORY, "128")
            .stdin(Stdio::null());
        for var in unset {
            command.env_remove(var);
        }
        for (var, value) in set {
            command.env(var, value);
        }
        let out = command.output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: {out:?}");
        // An exit status, not a signal; not the 101 of a panic.
        assert_eq!(out.status.code(), Some(1), "{what}: {out:?}");
        assert!(stderr.contains(named), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        // The Runtime API heard why (the process posts before it exits).
        let init = api
            .wait_init_error(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{what}: no /init/error"));
        let error_type = init.body["errorType"].as_str().unwrap_or_default();
        assert!(
            error_type.starts_with("Runtime."),
            "{what}: {:?}",
            init.body
        );
        assert_eq!(
            init.error_type_header.as_deref(),
            Some(error_type),
            "{what}"
        );
        let message = init.body["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{what}: {message}");
        assert_eq!(api.polls(), 0, "{what}: no /next poll");
    }
}
