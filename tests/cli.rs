//! The `apr-lambda` binary (feature `cli`) on the fixtures: inspect (text and
//! JSON), exit codes and one-line errors, convert round trips, predict.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("apr-runtime/tests/fixtures")
        .join(name)
}

fn apr_lambda(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apr-lambda"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn apr_lambda_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_apr-lambda"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("the binary exits")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json_stdout(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(output)))
}

/// A scratch directory per test, under the target directory.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(test);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

const VALID: [&str; 8] = [
    "linear_regression.v2.apr",
    "kmeans.v2.apr",
    "mlp_xor.v2.apr",
    "mlp_multiclass.v2.apr",
    "dtypes.v2.apr",
    "linear_regression.v1.apr",
    "logistic_regression.v1.apr",
    "decision_tree.v1.apr",
];

#[test]
fn inspect_accepts_every_valid_fixture() {
    for name in VALID {
        let output = apr_lambda(&["inspect", path_str(&fixture(name))]);
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        let text = stdout(&output);
        assert!(text.contains("model_type:"), "{name}: {text}");
        assert!(text.contains("tensors"), "{name}: {text}");
        assert!(text.contains("verified"), "{name}: {text}");
    }
}

#[test]
fn inspect_json_has_version_model_type_and_tensors() {
    let output = apr_lambda(&["inspect", path_str(&fixture("mlp_xor.v2.apr")), "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json_stdout(&output);
    assert_eq!(report["version"], "2.0");
    assert_eq!(report["model_type"], "NeuralSequential");
    let tensors = report["tensors"].as_array().expect("tensors");
    assert_eq!(tensors.len(), 4);
    assert_eq!(tensors[0]["name"], "0");
    assert_eq!(tensors[0]["dtype"], "F32");
    assert_eq!(tensors[0]["shape"], serde_json::json!([8, 2]));
    assert_eq!(report["checksums"]["footer"]["status"], "verified");

    // v1: the tensors it converts to.
    let output = apr_lambda(&[
        "inspect",
        "--json",
        path_str(&fixture("decision_tree.v1.apr")),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json_stdout(&output);
    assert_eq!(report["version"], "1.0");
    assert_eq!(report["model_type"], "DecisionTreeClassifier");
    assert_eq!(report["metadata"]["aprender_version"], "0.72.3");
    let names: Vec<&str> = report["tensors"]
        .as_array()
        .expect("tensors")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert!(names.contains(&"node_features"), "{names:?}");
    assert!(report["tensors"][0]["shape"].is_array());
}

#[test]
fn inspect_rejects_bad_files_with_exit_1_and_one_line_naming_the_rule() {
    let cases = [
        ("bad_empty.apr", "empty"),
        ("bad_magic.apr", "magic"),
        ("bad_header_crc.apr", "header checksum"),
        ("bad_footer_crc.apr", "footer checksum"),
        ("bad_truncated_header.apr", "truncated header"),
    ];
    for (name, rule) in cases {
        let output = apr_lambda(&["inspect", path_str(&fixture(name))]);
        assert_eq!(output.status.code(), Some(1), "{name}");
        let err = stderr(&output);
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        assert!(err.to_lowercase().contains(rule), "{name}: {err}");
        assert!(stdout(&output).is_empty(), "{name}");
    }
    let output = apr_lambda(&["inspect", "/nonexistent/model.apr"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot read"));
}

#[test]
fn a_corrupted_v1_file_is_rejected() {
    let dir = scratch("corrupt_v1");
    let mut bytes = std::fs::read(fixture("linear_regression.v1.apr")).expect("fixture");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let path = dir.join("corrupt.v1.apr");
    std::fs::write(&path, &bytes).expect("write");
    let output = apr_lambda(&["inspect", path_str(&path)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("checksum"), "{}", stderr(&output));
}

#[test]
fn command_line_errors_exit_2() {
    for args in [
        &[][..],
        &["frobnicate"][..],
        &["inspect"][..],
        &["inspect", "a", "b"][..],
        &["inspect", "a", "--bogus"][..],
        &["convert", "only-one"][..],
        &["predict", "model.apr", "--input"][..],
    ] {
        let output = apr_lambda(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let help = apr_lambda(&["--help"]);
    assert!(help.status.success());
    for command in ["inspect", "convert", "predict"] {
        assert!(stdout(&help).contains(command));
    }
}

#[test]
fn convert_round_trips_v1_and_normalises_v2() {
    let dir = scratch("convert");
    for name in VALID {
        let out = dir.join(format!("{name}.converted.apr"));
        let output = apr_lambda(&["convert", path_str(&fixture(name)), path_str(&out)]);
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        let inspected = apr_lambda(&["inspect", "--json", path_str(&out)]);
        assert!(inspected.status.success(), "{name}: {}", stderr(&inspected));
        let report = json_stdout(&inspected);
        assert_eq!(report["version"], "2.0", "{name}");
        assert_eq!(report["checksums"]["footer"]["status"], "verified");

        // Converting the converted file changes nothing.
        let again = dir.join(format!("{name}.again.apr"));
        let output = apr_lambda(&["convert", path_str(&out), path_str(&again)]);
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        assert_eq!(
            std::fs::read(&out).expect("out"),
            std::fs::read(&again).expect("again"),
            "{name}"
        );
    }
    // The v1 inspect lists exactly the tensors the converted file has.
    let v1_report = json_stdout(&apr_lambda(&[
        "inspect",
        "--json",
        path_str(&fixture("decision_tree.v1.apr")),
    ]));
    let v2_report = json_stdout(&apr_lambda(&[
        "inspect",
        "--json",
        path_str(&dir.join("decision_tree.v1.apr.converted.apr")),
    ]));
    assert_eq!(v1_report["tensors"], v2_report["tensors"]);

    let output = apr_lambda(&[
        "convert",
        path_str(&fixture("bad_magic.apr")),
        path_str(&dir.join("never.apr")),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(!dir.join("never.apr").exists());
}

fn expected(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(name)).expect("expected.json"))
        .expect("expected.json parses")
}

#[test]
fn predict_single_and_batch_match_aprender() {
    // A v1 decision tree, converted in memory: one row, then a batch from a file.
    let want = expected("decision_tree.v1.expected.json");
    let inputs = want["inputs"].as_array().expect("inputs");
    let classes = want["outputs_class"].as_array().expect("classes");
    let model = fixture("decision_tree.v1.apr");
    let event = serde_json::json!({ "features": inputs[2] }).to_string();
    let output = apr_lambda_with_stdin(&["predict", path_str(&model)], &event);
    assert!(output.status.success(), "{}", stderr(&output));
    let single = json_stdout(&output);
    assert_eq!(single["prediction"], classes[2]);
    assert!(single["probabilities"].is_array());
    assert!(single["outputs"].is_array());

    let dir = scratch("predict");
    let event_path = dir.join("batch.json");
    std::fs::write(
        &event_path,
        serde_json::json!({ "instances": inputs }).to_string(),
    )
    .expect("write event");
    let output = apr_lambda(&[
        "predict",
        path_str(&model),
        "--input",
        path_str(&event_path),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let batch = json_stdout(&output);
    let predictions = batch["predictions"].as_array().expect("predictions");
    assert_eq!(predictions.len(), classes.len());
    for (p, c) in predictions.iter().zip(classes) {
        assert_eq!(&p["prediction"], c);
    }

    // A v2 regression: the value.
    let want = expected("linear_regression.v2.expected.json");
    let event = serde_json::json!({ "features": want["inputs"][1] }).to_string();
    let output = apr_lambda_with_stdin(
        &["predict", path_str(&fixture("linear_regression.v2.apr"))],
        &event,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let got = json_stdout(&output)["prediction"].as_f64().expect("value");
    let y = want["outputs"][1].as_f64().expect("expected value");
    assert!((got - y).abs() <= 1e-4 * y.abs().max(1.0), "{got} vs {y}");
}

#[test]
fn predict_rejects_bad_events_and_models() {
    let model = fixture("mlp_xor.v2.apr");
    for event in [
        "",
        "not json",
        r#"{"feature": [1, 2]}"#,
        r#"{"features": [1, 2, 3]}"#,
    ] {
        let output = apr_lambda_with_stdin(&["predict", path_str(&model)], event);
        assert_eq!(output.status.code(), Some(1), "{event}");
        assert_eq!(stderr(&output).trim_end().lines().count(), 1, "{event}");
    }
    let output = apr_lambda_with_stdin(
        &["predict", path_str(&fixture("bad_footer_crc.apr"))],
        r#"{"features": [1, 2]}"#,
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn predict_names_non_finite_answers_and_features() {
    // The default Iris network overflows to NaN on features near the f32
    // limit: an error naming the row, never a class beside null.
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/model.apr");
    for (event, error_type) in [
        (
            r#"{"features": [1e38, 1e38, 1e38, 1e38]}"#,
            "NonFiniteOutput",
        ),
        (
            r#"{"instances": [[1, 1, 1, 1], [3e38, 3e38, 3e38, 3e38]]}"#,
            "NonFiniteOutput",
        ),
        (r#"{"features": [1, 1e400, 1, 1]}"#, "NonFinite"),
    ] {
        let output = apr_lambda_with_stdin(&["predict", path_str(&model)], event);
        assert_eq!(output.status.code(), Some(1), "{event}");
        let message = stderr(&output);
        assert!(message.contains(error_type), "{event}: {message}");
        assert!(!String::from_utf8_lossy(&output.stdout).contains("null"));
    }
}

#[test]
fn the_default_model_is_a_servable_iris_classifier() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/model.apr");
    let report = json_stdout(&apr_lambda(&["inspect", "--json", path_str(&model)]));
    assert_eq!(report["model_type"], "NeuralSequential");
    assert_eq!(report["metadata"]["n_features"], 4);
    assert_eq!(
        report["metadata"]["class_names"],
        serde_json::json!(["setosa", "versicolor", "virginica"])
    );
    let event =
        r#"{"instances": [[5.1, 3.5, 1.4, 0.2], [5.9, 3.0, 4.2, 1.5], [6.7, 3.0, 5.2, 2.3]]}"#;
    let output = apr_lambda_with_stdin(&["predict", path_str(&model)], event);
    assert!(output.status.success(), "{}", stderr(&output));
    let classes: Vec<u64> = json_stdout(&output)["predictions"]
        .as_array()
        .expect("predictions")
        .iter()
        .map(|p| p["prediction"].as_u64().expect("class"))
        .collect();
    assert_eq!(classes, [0, 1, 2]);
}
