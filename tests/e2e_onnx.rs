//! End to end: `examples/iris_onnx.rs`, a scikit-learn pipeline converted
//! from ONNX while the example compiled, as a child process on the local
//! Runtime API emulator: it answers what onnxruntime answered for the same
//! rows (`tests/fixtures/onnx/sk_pipeline_iris.json`), with string labels,
//! through direct and Function URL events, and names bad events.

mod support;

use serde_json::{json, Value};
use support::function::{assert_error, example, http_answer, ok_body, url_event, Function};

fn reference() -> Value {
    let path = support::function::workspace().join("tests/fixtures/onnx/sk_pipeline_iris.json");
    serde_json::from_slice(&std::fs::read(path).expect("the fixture")).expect("json")
}

#[test]
fn an_onnx_pipeline_answers_like_onnxruntime() {
    let reference = reference();
    let f = Function::start(&example("iris_onnx"), &[]);
    let inputs = reference["inputs"].as_array().expect("inputs");
    for (r, input) in inputs.iter().enumerate() {
        let body = ok_body(&f.invoke(&json!({ "features": input })));
        assert_eq!(body["label"], reference["label"][r], "row {r}: {body}");
        let ours = body["probabilities"].as_array().expect("probabilities");
        let theirs = reference["probabilities"][r]
            .as_array()
            .expect("probabilities");
        for (p, q) in ours.iter().zip(theirs) {
            let (p, q) = (p.as_f64().unwrap(), q.as_f64().unwrap());
            assert!(
                (p - q).abs() <= 1e-5 * q.abs() + 1e-6,
                "row {r}: {p} vs {q}"
            );
        }
    }
    // A batch, with one row given by name.
    let named = json!({
        "sepal_length": inputs[1][0], "sepal_width": inputs[1][1],
        "petal_length": inputs[1][2], "petal_width": inputs[1][3],
    });
    let body = ok_body(&f.invoke(&json!({ "instances": [inputs[0], named] })));
    assert_eq!(
        body["predictions"][0]["label"], reference["label"][0],
        "{body}"
    );
    assert_eq!(
        body["predictions"][1]["label"], reference["label"][1],
        "{body}"
    );
    // Through a Function URL.
    let event = url_event(&json!({ "features": inputs[2] }).to_string(), false);
    let (status, answer) = http_answer(&f.invoke(&event));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["label"], reference["label"][2], "{answer}");
    // A missing value is not a number a scaler and a linear model take.
    let mut row = inputs[0].as_array().unwrap().clone();
    row[2] = Value::Null;
    assert_error(
        &f.invoke(&json!({ "features": row })),
        "NonFinite",
        "feature 2",
    );
    // And it keeps serving.
    let body = ok_body(&f.invoke(&json!({ "features": inputs[3] })));
    assert_eq!(body["label"], reference["label"][3], "{body}");
}
