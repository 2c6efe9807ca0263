//! End to end: a typed handler (`examples/iris_typed.rs`) and labels and
//! named features with the default protocol (`examples/iris.rs`), as child
//! processes on the local Runtime API emulator, through Function URL events,
//! and in local mode.

mod support;

use std::io::Write;
use std::process::Stdio;

use serde_json::{json, Value};
use support::function::{
    assert_error, base64_encode, example, http_answer, ok_body, url_event, Function,
};
use support::runtime_api::Delivery;

const SETOSA: [f64; 4] = [5.1, 3.5, 1.4, 0.2];
const VIRGINICA: [f64; 4] = [6.7, 3.0, 5.2, 2.3];

fn flower(values: [f64; 4]) -> Value {
    json!({
        "sepal_length": values[0],
        "sepal_width": values[1],
        "petal_length": values[2],
        "petal_width": values[3],
    })
}

fn local(
    binary: &support::function::FunctionBinary,
    args: &[&str],
    stdin: &str,
) -> (bool, Vec<Value>) {
    let mut child = binary
        .command()
        .args(args)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the function in local mode");
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("local mode finishes");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out.status.success(), lines)
}

#[test]
fn a_typed_handler_answers_on_the_runtime_api() {
    let f = Function::start(&example("iris_typed"), &[]);
    let (id, answer) = f.invoke_with(flower(SETOSA).to_string().as_bytes(), Delivery::default());
    let body = ok_body(&answer);
    assert_eq!(body["species"], "setosa", "{body}");
    assert_eq!(body["rule"], "model");
    assert_eq!(
        body["request_id"],
        id.as_str(),
        "the handler sees its context"
    );
    assert!(
        body["confidence"].as_f64().is_some_and(|c| c > 0.99),
        "{body}"
    );
    assert!(
        body.get("cold_start").is_none(),
        "the answer is the handler's own: {body}"
    );

    let body = ok_body(&f.invoke(&flower(VIRGINICA)));
    assert_eq!(body["species"], "virginica", "{body}");

    // A request that does not decode as the handler's type: named, bounded.
    assert_error(
        &f.invoke(&json!({ "sepal_length": 5.1 })),
        "MalformedEvent",
        "missing field `sepal_width`",
    );
    let huge = json!({ "sepal_length": "x".repeat(100_000) });
    let answer = f.invoke(&huge);
    assert_error(
        &answer,
        "MalformedEvent",
        "does not decode as the handler's request type",
    );
    assert!(
        answer.json().to_string().len() < 1_000,
        "bounded: {}",
        answer.json()
    );
    assert_error(
        &f.invoke_raw(b"{not json"),
        "MalformedEvent",
        "not valid JSON",
    );

    // The handler's own error: its type and message, the function lives on.
    let mut long = flower(SETOSA);
    long["petal_length"] = json!(80.0);
    assert_error(
        &f.invoke(&long),
        "ImplausibleFlower",
        "80 cm is not an iris",
    );
    assert_eq!(ok_body(&f.invoke(&flower(SETOSA)))["species"], "setosa");

    // Exactly one cold start, with the model's metrics line.
    let emf = f
        .stdout_lines()
        .into_iter()
        .filter(|l| l.contains("\"_aws\""))
        .count();
    assert_eq!(emf, 1);
}

#[test]
fn a_typed_handler_answers_function_url_events() {
    let f = Function::start(&example("iris_typed"), &[]);
    let body = flower(VIRGINICA).to_string();
    for event in [
        url_event(&body, false),
        url_event(&base64_encode(body.as_bytes()), true),
    ] {
        let (status, answer) = http_answer(&f.invoke(&event));
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["species"], "virginica", "{answer}");
    }
    let (status, answer) = http_answer(&f.invoke(&url_event(r#"{"sepal_length":1}"#, false)));
    assert_eq!(status, 400);
    assert_eq!(answer["errorType"], "MalformedEvent", "{answer}");
    let mut long = flower(SETOSA);
    long["petal_length"] = json!(99.0);
    let (status, answer) = http_answer(&f.invoke(&url_event(&long.to_string(), false)));
    assert_eq!(status, 422, "the handler's own status");
    assert_eq!(answer["errorType"], "ImplausibleFlower", "{answer}");
}

#[test]
fn a_typed_handler_serves_concurrent_invocations() {
    let f = Function::start(
        &example("iris_typed"),
        &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")],
    );
    let ids: Vec<(String, &str)> = (0..200)
        .map(|i| {
            let (values, species) = if i % 2 == 0 {
                (SETOSA, "setosa")
            } else {
                (VIRGINICA, "virginica")
            };
            (
                f.api.enqueue(flower(values).to_string().as_bytes()),
                species,
            )
        })
        .collect();
    for (id, species) in ids {
        let answer = f
            .api
            .wait_answer(&id, support::function::TIMEOUT)
            .unwrap_or_else(|| panic!("no answer to {id}"));
        let body = ok_body(&answer);
        assert_eq!(body["species"], species, "{body}");
        assert_eq!(
            body["request_id"],
            id.as_str(),
            "each invocation its own context"
        );
    }
}

#[test]
fn a_typed_handler_answers_in_local_mode() {
    let binary = example("iris_typed");
    let setosa = flower(SETOSA).to_string();
    let (ok, lines) = local(&binary, &[&setosa], "");
    assert!(ok);
    assert_eq!(lines[0]["species"], "setosa");
    assert_eq!(lines[0]["request_id"], "local-1");
    let stdin = format!("{}\n{{\"sepal_length\":1}}\n", flower(VIRGINICA));
    let (ok, lines) = local(&binary, &[], &stdin);
    assert!(!ok, "a failed event fails the run");
    assert_eq!(lines[0]["species"], "virginica");
    assert_eq!(lines[1]["errorType"], "MalformedEvent");
    let help = binary
        .command()
        .arg("--help")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .expect("--help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("request type of the function's handler"),
        "{help}"
    );
}

#[test]
fn labels_and_feature_names_with_the_default_protocol() {
    let f = Function::start(&example("iris"), &[]);
    let by_name = ok_body(&f.invoke(&json!({ "features": flower(SETOSA) })));
    let by_position = ok_body(&f.invoke(&json!({ "features": SETOSA })));
    assert_eq!(by_name["label"], "setosa", "{by_name}");
    assert_eq!(by_name["prediction"], 0);
    assert_eq!(by_name["outputs"], by_position["outputs"]);
    assert_eq!(by_position["label"], "setosa");

    // Names in any order, objects and arrays mixed in one batch.
    let reordered = json!({
        "petal_width": VIRGINICA[3], "petal_length": VIRGINICA[2],
        "sepal_width": VIRGINICA[1], "sepal_length": VIRGINICA[0],
    });
    let batch = ok_body(&f.invoke(&json!({ "instances": [reordered, SETOSA] })));
    let labels: Vec<&str> = batch["predictions"]
        .as_array()
        .expect("predictions")
        .iter()
        .map(|p| p["label"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(labels, ["virginica", "setosa"]);

    let mut missing = flower(SETOSA);
    missing.as_object_mut().map(|m| m.remove("petal_width"));
    assert_error(
        &f.invoke(&json!({ "instances": [SETOSA, missing] })),
        "MissingFeature",
        "instance 1 has no value for the feature `petal_width`",
    );
    let mut unknown = flower(SETOSA);
    unknown["petal_colour"] = json!(1.0);
    assert_error(
        &f.invoke(&json!({ "features": unknown })),
        "UnknownFeature",
        "\"petal_colour\", which the model does not take; its features are `sepal_length`",
    );
    let hostile = json!({ "features": { "x".repeat(50_000): 1.0 } });
    let answer = f.invoke(&hostile);
    assert_error(&answer, "UnknownFeature", "(50000 bytes)");
    assert!(answer.json().to_string().len() < 1_000, "bounded");
    let mut nan = flower(SETOSA);
    nan["sepal_width"] = json!("NaN");
    assert_error(
        &f.invoke(&json!({ "features": nan })),
        "NonFinite",
        "feature 1",
    );

    // Through a Function URL: 400 with the same error type.
    let body = json!({ "features": { "sepal_length": 1.0 } }).to_string();
    let (status, answer) = http_answer(&f.invoke(&url_event(&body, false)));
    assert_eq!(status, 400);
    assert_eq!(answer["errorType"], "MissingFeature", "{answer}");
    let body = json!({ "features": flower(VIRGINICA) }).to_string();
    let (status, answer) = http_answer(&f.invoke(&url_event(&body, false)));
    assert_eq!((status, answer["label"].as_str()), (200, Some("virginica")));
}

#[test]
fn a_model_without_feature_names_refuses_object_rows() {
    let binary = example("regression");
    let (ok, lines) = local(&binary, &[r#"{"features":{"a":1}}"#], "");
    assert!(!ok);
    assert_eq!(lines[0]["errorType"], "MalformedEvent");
    let message = lines[0]["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("this model has no feature names"),
        "{message}"
    );
}
