//! The `#[apr_lambda]` examples as a user runs them, in local mode: the
//! expansion serves the embedded model, runs `main`'s body exactly once
//! before serving, and does not serve when a `Result` body fails.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// `cargo build --example NAME`; the binary's path.
fn example(name: &str) -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name])
        .current_dir(root)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --example {name} failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(root).join("target"));
    target.join("debug").join("examples").join(name)
}

/// Runs `binary` in local mode with `args` and `stdin`.
fn run_local(binary: &PathBuf, args: &[&str], stdin: &str, envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(binary);
    command
        .args(args)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start the example");
    child
        .stdin
        .take()
        .expect("a piped stdin")
        .write_all(stdin.as_bytes())
        .expect("write the events");
    child.wait_with_output().expect("the example exits")
}

/// The JSON responses printed on stdout, one per line.
fn responses(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON response"))
        .collect()
}

#[test]
fn iris_classifies_and_names_the_classes() {
    let iris = example("iris");
    let events = "{\"features\":[5.1,3.5,1.4,0.2]}\n{\"features\":[6.7,3.0,5.2,2.3]}\n";
    let output = run_local(&iris, &[], events, &[]);
    assert!(output.status.success(), "{output:?}");
    let answers = responses(&output);
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0]["prediction"], 0, "setosa");
    assert_eq!(answers[1]["prediction"], 2, "virginica");
    assert_eq!(answers[0]["cold_start"], true);
    assert_eq!(answers[1]["cold_start"], false);
    // `labels = [...]` in the attribute: every answer names its class.
    assert_eq!(answers[0]["label"], "setosa");
    assert_eq!(answers[1]["label"], "virginica");
}

#[test]
fn regression_serves_the_embedded_linear_model() {
    let regression = example("regression");
    let output = run_local(&regression, &["{\"features\":[1.0,2.0,3.0]}"], "", &[]);
    assert!(output.status.success(), "{output:?}");
    let answers = responses(&output);
    // linear_regression.v2.expected.json: [1, 2, 3] -> 2.005765
    let prediction = answers[0]["prediction"].as_f64().expect("a value");
    assert!((prediction - 2.005_765).abs() < 1e-4, "{prediction}");
}

#[test]
fn a_failing_result_body_exits_nonzero_without_serving() {
    let regression = example("regression");
    let output = run_local(
        &regression,
        &["{\"features\":[1.0,2.0,3.0]}"],
        "",
        &[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots")],
    );
    assert!(!output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty(), "no event may be answered");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("InvalidDigit"), "{stderr}");
}

#[test]
fn max_batch_reaches_the_handler() {
    // examples/iris.rs sets `max_batch = 1000`.
    let iris = example("iris");
    let rows = |n: usize| {
        let row = "[5.1,3.5,1.4,0.2]";
        format!("{{\"instances\":[{}]}}", vec![row; n].join(","))
    };
    let output = run_local(&iris, &[&rows(1000)], "", &[]);
    assert!(output.status.success(), "1000 rows are allowed: {output:?}");
    let output = run_local(&iris, &[&rows(1001)], "", &[]);
    assert!(!output.status.success(), "1001 rows are too many");
    let answers = responses(&output);
    assert_eq!(answers[0]["errorType"], "BatchTooLarge", "{}", answers[0]);
}
