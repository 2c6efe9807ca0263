//! Every ONNX fixture (`tests/fixtures/onnx`, written by
//! `scripts/onnx-fixtures.py` with the real exporters) converts, and the
//! converted model predicts what onnxruntime 1.32 predicted on the same
//! rows: classes and labels exactly, probabilities and values within 1e-5
//! relative (plus 1e-6 absolute for values near zero: onnxruntime's MLAS
//! kernels sum in another order and approximate the logistic).

use std::path::{Path, PathBuf};

use apr_runtime::model::Model;
use apr_runtime::onnx::{convert, OnnxError};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/onnx")
}

fn close(ours: f32, theirs: f64) -> bool {
    let (a, b) = (f64::from(ours), theirs);
    (a - b).abs() <= 1e-5 * b.abs() + 1e-6
}

fn row(values: &Value) -> Vec<f32> {
    values
        .as_array()
        .expect("a row is an array")
        .iter()
        .map(|v| v.as_f64().map_or(f32::NAN, |x| x as f32))
        .collect()
}

fn check(name: &str, json: &Value) {
    let onnx = std::fs::read(fixtures().join(format!("{name}.onnx"))).expect("fixture");
    let converted = convert(&onnx).unwrap_or_else(|e| panic!("{name}: {e}"));
    let model = Model::from_bytes(&converted.bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        model.n_features() as u64,
        json["n_features"].as_u64().unwrap(),
        "{name}"
    );
    let inputs = json["inputs"].as_array().unwrap();
    let mut batch = Vec::new();
    for (r, input) in inputs.iter().enumerate() {
        let x = row(input);
        batch.extend_from_slice(&x);
        let out = model
            .predict_one(&x)
            .unwrap_or_else(|e| panic!("{name} row {r}: {e}"));
        if let Some(labels) = json["label"].as_array() {
            let expected = &labels[r];
            let ours = match expected {
                Value::String(_) => Value::from(out.label().expect("a label")),
                _ => match out.label() {
                    Some(label) => Value::from(label.parse::<i64>().expect("an integer label")),
                    None => Value::from(out.class().expect("a class") as i64),
                },
            };
            assert_eq!(&ours, expected, "{name} row {r}: label");
            let probs = out.probabilities().expect("probabilities");
            let theirs = json["probabilities"][r].as_array().unwrap();
            assert_eq!(probs.len(), theirs.len(), "{name} row {r}");
            for (c, (p, q)) in probs.iter().zip(theirs).enumerate() {
                let q = q.as_f64().unwrap();
                assert!(
                    close(*p, q),
                    "{name} row {r} class {c}: ours {p}, onnxruntime {q}"
                );
            }
        } else {
            let theirs = json["values"][r].as_array().unwrap();
            let ours = out.outputs();
            assert_eq!(ours.len(), theirs.len(), "{name} row {r}");
            for (t, (v, w)) in ours.iter().zip(theirs).enumerate() {
                let w = w.as_f64().unwrap();
                assert!(
                    close(*v, w),
                    "{name} row {r} output {t}: ours {v}, onnxruntime {w}"
                );
            }
        }
    }
    // The batch path answers the same: bit for bit for trees (one walk per
    // row either way); linear models and networks go through gemm instead
    // of gemv, which sums in another order.
    let n = inputs.len();
    let answers = model
        .predict_batch(&batch, n)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let f = model.n_features();
    for r in 0..n {
        let one = model.predict_one(&batch[r * f..(r + 1) * f]).unwrap();
        let width = one.outputs().len();
        let rows = &answers.outputs()[r * width..(r + 1) * width];
        assert_eq!(
            answers.row(r).and_then(|o| o.class()),
            one.class(),
            "{name} row {r}: batch class"
        );
        for (a, b) in one.outputs().iter().zip(rows) {
            if model.accepts_missing() {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{name} row {r}: batch and one row differ"
                );
            } else {
                assert!(
                    close(*b, f64::from(*a)),
                    "{name} row {r}: batch {b}, one row {a}"
                );
            }
        }
    }
}

#[test]
fn every_supported_fixture_predicts_like_onnxruntime() {
    let mut checked = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(fixtures()).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_none_or(|e| e != "json") || name.starts_with("bad_") {
            continue;
        }
        let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        check(&name, &json);
        checked.push(name);
    }
    assert!(checked.len() >= 38, "only {checked:?}");
}

#[test]
fn the_benchmark_model_predicts_like_onnxruntime() {
    let json: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("bench/gb_bench_100x6_20f.json")).unwrap(),
    )
    .unwrap();
    let onnx = std::fs::read(fixtures().join("bench/gb_bench_100x6_20f.onnx")).unwrap();
    let converted = convert(&onnx).unwrap();
    check_bytes("gb_bench_100x6_20f", &converted.bytes, &json);
}

fn check_bytes(name: &str, bytes: &[u8], json: &Value) {
    let model = Model::from_bytes(bytes).unwrap();
    for (r, input) in json["inputs"].as_array().unwrap().iter().enumerate() {
        let out = model.predict_one(&row(input)).unwrap();
        assert_eq!(
            out.class().map(|c| c as i64),
            json["label"][r].as_i64(),
            "{name} row {r}"
        );
        for (p, q) in out
            .probabilities()
            .unwrap()
            .iter()
            .zip(json["probabilities"][r].as_array().unwrap())
        {
            assert!(close(*p, q.as_f64().unwrap()), "{name} row {r}: {p} vs {q}");
        }
    }
}

#[test]
fn broken_files_are_clear_errors() {
    let read = |name: &str| std::fs::read(fixtures().join(name)).unwrap();
    let err = convert(&read("bad_truncated.onnx")).unwrap_err();
    assert!(matches!(err, OnnxError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    let err = convert(&read("bad_not_protobuf.onnx")).unwrap_err();
    assert!(
        matches!(err, OnnxError::Decode { .. } | OnnxError::Graph(_)),
        "{err}"
    );
    let err = convert(&read("bad_unsupported_op.onnx"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SVMClassifier") && err.contains("ai.onnx.ml") && err.contains("supported:"),
        "{err}"
    );
    let err = convert(&read("bad_unsupported_topk.onnx"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("TopK") && err.contains("opset"), "{err}");
    // Any prefix of a real file is an error, never a panic.
    let good = read("sk_gb_multi.onnx");
    for len in (0..good.len()).step_by(97) {
        let _ = convert(&good[..len]);
    }
}

/// On Lambda, `null` is a missing value: an XGBoost model sends it down its
/// missing-value branches and answers as onnxruntime did; a linear model
/// refuses it, naming the feature.
#[test]
fn lambda_events_carry_missing_values_as_null() {
    use apr_runtime::lambda::{InvocationResponse, LambdaHandler};
    let load = |name: &str| -> (&'static [u8], Value) {
        let onnx = std::fs::read(fixtures().join(format!("{name}.onnx"))).unwrap();
        let json = serde_json::from_slice(
            &std::fs::read(fixtures().join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        (
            Box::leak(convert(&onnx).unwrap().bytes.into_boxed_slice()),
            json,
        )
    };
    let (bytes, json) = load("xgb_binary");
    let handler = LambdaHandler::from_bytes(bytes).unwrap();
    for r in 0..4 {
        let input = &json["inputs"][r];
        assert!(
            input.as_array().unwrap().iter().any(Value::is_null),
            "row {r} has a missing value"
        );
        let event = serde_json::json!({ "features": input }).to_string();
        let Ok(InvocationResponse::Direct(answer)) = handler.respond(event.as_bytes()) else {
            panic!("row {r}: no direct answer");
        };
        let answer = serde_json::to_value(&answer).unwrap();
        assert_eq!(answer["prediction"], json["label"][r], "row {r}");
    }
    let (bytes, _) = load("sk_linreg");
    let handler = LambdaHandler::from_bytes(bytes).unwrap();
    let n = handler.model().n_features();
    let mut row = vec![Value::from(1.0); n];
    row[1] = Value::Null;
    let event = serde_json::json!({ "features": row }).to_string();
    let err = handler.respond(event.as_bytes()).unwrap_err();
    assert_eq!(err.error_type(), "NonFinite");
    assert!(err.to_string().contains("feature 1"), "{err}");
}

/// Graphs that decode but cannot convert: each error names what is wrong.
#[test]
fn unconvertible_graphs_name_the_problem() {
    use apr_runtime::onnx::proto::{
        data_type, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
        StringStringEntryProto, TensorProto, TensorShapeProto, TensorTypeProto, TypeProto,
        ValueInfoProto,
    };
    use prost::Message;

    let input = |elem_type: i32, dims: Vec<Dimension>| ValueInfoProto {
        name: "input".into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type,
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
    };
    let fixed = |n: i64| Dimension {
        dim_value: Some(n),
        dim_param: None,
    };
    let named = |p: &str| Dimension {
        dim_value: None,
        dim_param: Some(p.into()),
    };
    let model = |graph: GraphProto| {
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            graph: Some(graph),
            ..Default::default()
        }
        .encode_to_vec()
    };
    let mul = |by: &str| NodeProto {
        input: vec!["input".into(), by.into()],
        output: vec!["output".into()],
        name: "scale".into(),
        op_type: "Mul".into(),
        ..Default::default()
    };
    let output = ValueInfoProto {
        name: "output".into(),
        r#type: None,
    };

    // A dynamic feature count.
    let graph = GraphProto {
        input: vec![input(data_type::FLOAT, vec![named("N"), named("F")])],
        output: vec![output.clone()],
        ..Default::default()
    };
    let err = convert(&model(graph)).unwrap_err().to_string();
    assert!(
        err.contains("fixed feature count") && err.contains("`F`"),
        "{err}"
    );

    // A double input.
    let graph = GraphProto {
        input: vec![input(data_type::DOUBLE, vec![named("N"), fixed(3)])],
        output: vec![output.clone()],
        ..Default::default()
    };
    let err = convert(&model(graph)).unwrap_err().to_string();
    assert!(
        err.contains("DOUBLE") && err.contains("FLOAT input"),
        "{err}"
    );

    // An initializer whose data lives in another file.
    let external = TensorProto {
        name: "w".into(),
        dims: vec![3],
        data_type: data_type::FLOAT,
        data_location: 1,
        external_data: vec![StringStringEntryProto {
            key: "location".into(),
            value: "w.bin".into(),
        }],
        ..Default::default()
    };
    let graph = GraphProto {
        node: vec![mul("w")],
        initializer: vec![external],
        input: vec![input(data_type::FLOAT, vec![named("N"), fixed(3)])],
        output: vec![output.clone()],
        ..Default::default()
    };
    let err = convert(&model(graph)).unwrap_err();
    assert!(matches!(err, OnnxError::ExternalData { .. }), "{err}");
    assert!(err.to_string().contains("`w`"), "{err}");

    // Preprocessing alone is not a model.
    let scale = TensorProto {
        name: "w".into(),
        dims: vec![3],
        data_type: data_type::FLOAT,
        float_data: vec![1.0, 2.0, 3.0],
        ..Default::default()
    };
    let graph = GraphProto {
        node: vec![mul("w")],
        initializer: vec![scale.clone()],
        input: vec![input(data_type::FLOAT, vec![named("N"), fixed(3)])],
        output: vec![output.clone()],
        ..Default::default()
    };
    let err = convert(&model(graph)).unwrap_err().to_string();
    assert!(err.contains("holds no model operator"), "{err}");

    // A constant of the wrong width for the features.
    let graph = GraphProto {
        node: vec![mul("w")],
        initializer: vec![scale],
        input: vec![input(data_type::FLOAT, vec![named("N"), fixed(4)])],
        output: vec![output],
        ..Default::default()
    };
    let err = convert(&model(graph)).unwrap_err().to_string();
    assert!(
        err.contains("node `scale`") && err.contains("one value per feature (4)"),
        "{err}"
    );

    // A scaler after the model (a branch the model never reads) is refused,
    // not applied to the model's input.
    use apr_runtime::onnx::proto::{attribute_type, AttributeProto};
    let floats = |name: &str, values: Vec<f32>| AttributeProto {
        name: name.into(),
        r#type: attribute_type::FLOATS,
        floats: values,
        ..Default::default()
    };
    let regressor = NodeProto {
        input: vec!["input".into()],
        output: vec!["variable".into()],
        name: "linear".into(),
        op_type: "LinearRegressor".into(),
        domain: "ai.onnx.ml".into(),
        attribute: vec![
            floats("coefficients", vec![1.0, 2.0, 3.0]),
            floats("intercepts", vec![0.5]),
        ],
    };
    let scale = TensorProto {
        name: "w".into(),
        dims: vec![3],
        data_type: data_type::FLOAT,
        float_data: vec![1.0, 2.0, 3.0],
        ..Default::default()
    };
    let graph = |nodes: Vec<NodeProto>| GraphProto {
        node: nodes,
        initializer: vec![scale.clone()],
        input: vec![input(data_type::FLOAT, vec![named("N"), fixed(3)])],
        output: vec![ValueInfoProto {
            name: "variable".into(),
            r#type: None,
        }],
        ..Default::default()
    };
    let good =
        convert(&model(graph(vec![regressor.clone()]))).expect("a linear regressor converts");
    let m = Model::from_bytes(&good.bytes).unwrap();
    assert_eq!(m.predict_one(&[1.0, 1.0, 1.0]).unwrap().outputs(), &[6.5]);
    let err = convert(&model(graph(vec![regressor, mul("w")])))
        .unwrap_err()
        .to_string();
    assert!(err.contains("after the model has read them"), "{err}");
}
