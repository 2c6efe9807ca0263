//! The `apr-lambda` binary (feature `cli`) on the fixtures: inspect (text and
//! JSON), exit codes and one-line errors, convert round trips, predict, and
//! `new` (refusals, a v1 model, and a scaffolded crate built, run and tested).

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
    // A binary that fails before reading stdin (a bad model) may exit
    // before the event is written: a broken pipe is its answer, not an error.
    if let Err(e) = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
    {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
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
        &["new"][..],
        &["new", "dir"][..],
        &["new", "--model", "model.apr"][..],
        &["new", "a", "b", "--model", "model.apr"][..],
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
    for command in ["inspect", "convert", "predict", "new"] {
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

#[test]
fn inspect_shows_labels_and_feature_names_and_predict_answers_with_them() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/model.apr");
    let report = json_stdout(&apr_lambda(&["inspect", "--json", path_str(&model)]));
    assert_eq!(
        report["model"]["labels"],
        serde_json::json!(["setosa", "versicolor", "virginica"])
    );
    assert_eq!(report["model"]["feature_names"][3], "petal_width_cm");
    let text = stdout(&apr_lambda(&["inspect", path_str(&model)]));
    assert!(
        text.contains(r#"labels:      "setosa", "versicolor", "virginica""#),
        "{text}"
    );
    assert!(text.contains(r#"features:    "sepal_length_cm""#), "{text}");
    // Named rows and labels through `predict`, the same path as the Lambda.
    let event = r#"{"features": {"sepal_length_cm": 6.7, "sepal_width_cm": 3.0, "petal_length_cm": 5.2, "petal_width_cm": 2.3}}"#;
    let output = apr_lambda_with_stdin(&["predict", path_str(&model)], event);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json_stdout(&output)["label"], "virginica");
    // A model without them shows neither.
    let plain = fixture("linear_regression.v2.apr");
    let report = json_stdout(&apr_lambda(&["inspect", "--json", path_str(&plain)]));
    assert!(report["model"]["labels"].is_null(), "{report}");
    assert!(!stdout(&apr_lambda(&["inspect", path_str(&plain)])).contains("labels:"));
}

/// The files of a directory, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).expect("under root");
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn default_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/model.apr")
}

#[test]
fn new_refuses_a_non_empty_dir_a_broken_or_missing_model_and_writes_nothing() {
    let dir = scratch("new_refusals");
    let model = default_model();

    // A directory that is not empty: named, and left as it was.
    let full = dir.join("full");
    std::fs::create_dir_all(&full).expect("mkdir");
    std::fs::write(full.join("keep.txt"), "mine").expect("write");
    let output = apr_lambda(&["new", path_str(&full), "--model", path_str(&model)]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(path_str(&full)), "{err}");
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(files_under(&full), ["keep.txt"]);

    // A broken model: the rule the attribute would give at compile time,
    // `<file>: <the runtime's own error>`, and no directory.
    for name in ["bad_header_crc.apr", "bad_magic.apr", "bad_footer_crc.apr"] {
        let target = dir.join(format!("from-{name}"));
        let model = fixture(name);
        let bytes = std::fs::read(&model).expect("fixture");
        let rule = apr_lambda::AprFile::parse(&bytes)
            .err()
            .unwrap_or_else(|| panic!("{name} should not parse"));
        let output = apr_lambda(&["new", path_str(&target), "--model", path_str(&model)]);
        assert_eq!(output.status.code(), Some(1), "{name}");
        assert_eq!(
            stderr(&output),
            format!("apr-lambda: error: {}: {rule}\n", model.display()),
            "{name}"
        );
        assert!(stdout(&output).is_empty(), "{name}");
        assert!(!target.exists(), "{name}");
    }

    // A container that parses but holds no model the runtime serves.
    let target = dir.join("from-a-tensor-bag");
    let mut writer = apr_lambda::runtime::format::AprWriter::new();
    writer.model_type("NoSuchFamily");
    writer
        .add_f32("weight", &[1, 2], &[1.0, 2.0])
        .expect("tensor");
    let bag = dir.join("bag.apr");
    std::fs::write(&bag, writer.to_bytes()).expect("write");
    let output = apr_lambda(&["new", path_str(&target), "--model", path_str(&bag)]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).starts_with(&format!("apr-lambda: error: {}: ", bag.display())),
        "{}",
        stderr(&output)
    );
    assert!(!target.exists());

    // A missing model file, named.
    let target = dir.join("from-nothing");
    let missing = dir.join("no-such-model.apr");
    let output = apr_lambda(&["new", path_str(&target), "--model", path_str(&missing)]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains(path_str(&missing)), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(!target.exists());

    // No --model, or no DIR: usage errors.
    let target = dir.join("no-model");
    let output = apr_lambda(&["new", path_str(&target)]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--model"), "{}", stderr(&output));
    assert!(!target.exists());
    let output = apr_lambda(&["new", "--model", path_str(&model)]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));

    // A directory name that leaves no package name, and a keyword.
    for name in ["123", "fn"] {
        let target = dir.join(name);
        let output = apr_lambda(&["new", path_str(&target), "--model", path_str(&model)]);
        assert_eq!(output.status.code(), Some(1), "{name}");
        assert!(stderr(&output).contains("package name"), "{name}");
        assert!(!target.exists(), "{name}");
    }
}

#[test]
fn new_copies_a_v1_model_unchanged_with_its_feature_count() {
    let dir = scratch("new_v1");
    let target = dir.join("2 Linear Regression.v1");
    let _ = std::fs::remove_dir_all(&target);
    // An empty directory is fine.
    std::fs::create_dir_all(&target).expect("mkdir");
    let model = fixture("linear_regression.v1.apr");
    let output = apr_lambda(&["new", path_str(&target), "--model", path_str(&model)]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        files_under(&target),
        [
            ".gitignore",
            "Cargo.toml",
            "README.md",
            "models/model.apr",
            "src/main.rs",
            "tests/local.rs"
        ]
    );
    assert_eq!(
        std::fs::read(target.join("models/model.apr")).expect("copied model"),
        std::fs::read(&model).expect("fixture"),
    );
    let read = |file: &str| std::fs::read_to_string(target.join(file)).expect(file);

    let main_rs = read("src/main.rs");
    assert!(
        main_rs.contains(
            "#[apr_lambda::apr_lambda(model = \"models/model.apr\", features = 3)]\nfn main() {"
        ),
        "{main_rs}"
    );
    // This model has neither labels nor feature names.
    assert!(!main_rs.contains("labels ="), "{main_rs}");
    assert!(!main_rs.contains("feature_names ="), "{main_rs}");

    // The package is named after the directory; apr-lambda is this version.
    let cargo_toml = read("Cargo.toml");
    assert!(
        cargo_toml.contains("\nname = \"linear-regression-v1\"\n"),
        "{cargo_toml}"
    );
    assert!(
        cargo_toml.contains("\nedition = \"2021\"\n"),
        "{cargo_toml}"
    );
    assert!(
        cargo_toml.contains(&format!(
            "\napr-lambda = \"{}\"\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{cargo_toml}"
    );
    assert!(!cargo_toml.contains("[workspace]"), "{cargo_toml}");
    // The release profile is the workspace's, line for line.
    let workspace =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .expect("the workspace Cargo.toml");
    let profile = |toml: &str| -> Vec<String> {
        toml.lines()
            .skip_while(|line| line.trim() != "[profile.release]")
            .skip(1)
            .take_while(|line| !line.trim_start().starts_with('['))
            .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    assert!(!profile(&workspace).is_empty());
    assert_eq!(profile(&cargo_toml), profile(&workspace));

    let test = read("tests/local.rs");
    assert!(
        test.contains("CARGO_BIN_EXE_linear-regression-v1"),
        "{test}"
    );
    assert!(test.contains("const FEATURES: usize = 3;"), "{test}");
    assert!(
        test.contains("env_remove(\"AWS_LAMBDA_RUNTIME_API\")"),
        "{test}"
    );
    assert_eq!(read(".gitignore"), "/target\n");
    let readme = read("README.md");
    assert!(
        readme.contains(r#"cargo run -- '{"features":[0,0,0]}'"#),
        "{readme}"
    );
    assert!(readme.contains("cargo test"), "{readme}");
    assert!(
        readme.contains("cargo lambda build --release --arm64"),
        "{readme}"
    );
    assert!(
        readme.contains("target/lambda/linear-regression-v1/bootstrap"),
        "{readme}"
    );

    // The directory is no longer empty: a second run is refused.
    let again = apr_lambda(&["new", path_str(&target), "--model", path_str(&model)]);
    assert_eq!(again.status.code(), Some(1));
}

/// Removes a directory when dropped, even when the test fails.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs cargo in `dir` with the shared scaffold target directory.
fn cargo_in(dir: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // The repository's target directory (the parent of CARGO_TARGET_TMPDIR),
    // so the dependencies compile once and are reused by later runs.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("scaffold");
    Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .stdin(Stdio::null())
        .output()
        .expect("cargo runs")
}

#[test]
fn new_scaffolds_a_crate_that_builds_answers_and_passes_its_test() {
    // Outside the repository, so the crate is not taken for a member of its workspace.
    let root = std::env::temp_dir().join(format!(
        "apr-lambda-new-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let _cleanup = RemoveOnDrop(root.clone());
    let crate_dir = root.join("iris-fn");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = apr_lambda(&[
        "new",
        path_str(&crate_dir),
        "--model",
        path_str(&default_model()),
        "--path",
        path_str(repo),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let cargo_toml = std::fs::read_to_string(crate_dir.join("Cargo.toml")).expect("Cargo.toml");
    let canonical = std::fs::canonicalize(repo).expect("canonical repo");
    assert!(
        cargo_toml.contains(&format!(
            "apr-lambda = {{ path = \"{}\" }}",
            path_str(&canonical)
        )),
        "{cargo_toml}"
    );
    let main_rs = std::fs::read_to_string(crate_dir.join("src/main.rs")).expect("main.rs");
    assert!(main_rs.contains("features = 4,"), "{main_rs}");
    // The default model's feature names, from its metadata.
    assert!(
        main_rs.contains(r#"feature_names = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"],"#),
        "{main_rs}"
    );
    // The repository's versions: nothing new to resolve.
    std::fs::copy(repo.join("Cargo.lock"), crate_dir.join("Cargo.lock")).expect("Cargo.lock");

    let build = cargo_in(&crate_dir, &["build"]);
    assert!(build.status.success(), "cargo build: {}", stderr(&build));

    let run = cargo_in(&crate_dir, &["run", "--", r#"{"features":[0,0,0,0]}"#]);
    assert!(run.status.success(), "cargo run: {}", stderr(&run));
    let first = stdout(&run).lines().next().unwrap_or_default().to_owned();
    let answer: Value = serde_json::from_str(&first)
        .unwrap_or_else(|e| panic!("cargo run printed no JSON ({e}): {}", stdout(&run)));
    assert!(answer["prediction"].is_u64(), "{first}");

    let test = cargo_in(&crate_dir, &["test"]);
    assert!(
        test.status.success(),
        "cargo test: {}{}",
        stdout(&test),
        stderr(&test)
    );
    assert!(
        stdout(&test).contains("test answers_an_event_locally ... ok"),
        "{}",
        stdout(&test)
    );

    // A classifier whose metadata names its classes and its (long) features:
    // both become attribute arguments, escaped, and the crate compiles.
    let labels = ["setosa", "say \"hi\"", "back\\slash é\n"];
    let names: Vec<String> = (0..6)
        .map(|i| format!("a_rather_long_feature_name_{i}"))
        .collect();
    let weights: Vec<f32> = (0..18).map(|i| i as f32 * 0.1).collect();
    let mut writer = apr_lambda::runtime::format::AprWriter::new();
    writer
        .model_type("LogisticRegression")
        .labels(&labels)
        .feature_names(&names);
    writer.add_f32("weight", &[3, 6], &weights).expect("weight");
    let model = root.join("labelled.apr");
    std::fs::write(&model, writer.to_bytes()).expect("write the model");
    let crate_dir = root.join("labelled-fn");
    let output = apr_lambda(&[
        "new",
        path_str(&crate_dir),
        "--model",
        path_str(&model),
        "--path",
        path_str(repo),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let main_rs = std::fs::read_to_string(crate_dir.join("src/main.rs")).expect("main.rs");
    assert!(
        main_rs.contains(r#"labels = ["setosa", "say \"hi\"", "back\\slash é\n"],"#),
        "{main_rs}"
    );
    assert!(
        main_rs.contains("    feature_names = [\n        \"a_rather_long_feature_name_0\",\n"),
        "{main_rs}"
    );
    std::fs::copy(repo.join("Cargo.lock"), crate_dir.join("Cargo.lock")).expect("Cargo.lock");
    let run = cargo_in(&crate_dir, &["run", "--", r#"{"features":[0,0,0,0,0,0]}"#]);
    assert!(run.status.success(), "cargo run: {}", stderr(&run));
    let first = stdout(&run).lines().next().unwrap_or_default().to_owned();
    let answer: Value = serde_json::from_str(&first)
        .unwrap_or_else(|e| panic!("cargo run printed no JSON ({e}): {}", stdout(&run)));
    let label = answer["label"]
        .as_str()
        .unwrap_or_else(|| panic!("no label: {first}"));
    assert!(labels.contains(&label), "{first}");
    let test = cargo_in(&crate_dir, &["test"]);
    assert!(
        test.status.success(),
        "cargo test: {}{}",
        stdout(&test),
        stderr(&test)
    );
}
