//! A model whose weights hold NaN or an infinity is refused at load, for
//! every family, with the tensor and the index of its FIRST non-finite value
//! named: F32 weights viewed in place, F32 weights copied, and weights
//! decoded or dequantized from other dtypes alike.

mod common;
use apr_runtime::format::{AprWriter, DType};
use apr_runtime::model::{Model, ModelError, ModelFamily};
use common::{aligned, as_bytes};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The three non-finite values, with a name for assertion messages.
const BAD: [(&str, f32); 3] = [
    ("NaN", f32::NAN),
    ("+inf", f32::INFINITY),
    ("-inf", f32::NEG_INFINITY),
];

/// `n` finite values (distinct, small), with `bad` at `at` and, when given,
/// another non-finite value at `also` (after `at`: it must not be the one
/// reported).
fn values(n: usize, at: usize, bad: f32, also: Option<usize>) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|i| (i as f32 - 2.0) * 0.25).collect();
    v[at] = bad;
    if let Some(j) = also {
        v[j] = f32::NAN;
    }
    v
}

/// Loads `writer`'s container twice, viewed in place (aligned) and copied
/// (at an odd offset, so F32 tensors are decoded), and checks that both
/// refuse it with [`ModelError::NonFiniteWeight`] naming `tensor` and `index`.
fn assert_refused(writer: &AprWriter, tensor: &str, index: usize, what: &str) {
    let bytes = writer.to_bytes();
    let words = aligned(&bytes);
    let in_place = as_bytes(&words, bytes.len());
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    for (layout, bytes) in [("in place", in_place), ("copied", &shifted[1..])] {
        match Model::from_bytes(bytes) {
            Ok(model) => panic!("{what} ({layout}): loaded a {} model", model.family()),
            Err(ModelError::NonFiniteWeight {
                tensor: found_tensor,
                index: found_index,
            }) => {
                assert_eq!(
                    (found_tensor.as_str(), found_index),
                    (tensor, index),
                    "{what} ({layout})"
                );
            }
            Err(other) => panic!("{what} ({layout}): wrong error: {other}"),
        }
    }
}

/// A `weight` `[2, 3]` + `bias` `[2]` model of `model_type`.
fn affine(model_type: &str, weight: &[f32], bias: &[f32]) -> AprWriter {
    let mut writer = AprWriter::new();
    writer.model_type(model_type);
    let _ = writer.add_f32("weight", &[2, 3], weight);
    let _ = writer.add_f32("bias", &[2], bias);
    writer
}

#[test]
fn the_finite_versions_of_every_test_model_load() -> TestResult {
    let weight = values(6, 0, 0.5, None);
    let bias = values(2, 0, 0.5, None);
    // The two layouts `assert_refused` loads: F32 viewed in place, and copied.
    let bytes = affine("LinearRegression", &weight, &bias).to_bytes();
    let words = aligned(&bytes);
    let in_place = Model::from_bytes(as_bytes(&words, bytes.len()))?;
    assert_eq!(in_place.weight_storage().in_place, 2);
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    let copied = Model::from_bytes(&shifted[1..])?;
    assert_eq!(copied.weight_storage().realigned, 2);
    for model_type in ["LinearRegression", "LogisticRegression"] {
        Model::from_bytes(&affine(model_type, &weight, &bias).to_bytes())?;
    }
    Model::from_bytes(&mlp(&values(12, 0, 0.5, None), &values(4, 0, 0.5, None)).to_bytes())?;
    Model::from_bytes(&kmeans(&values(6, 0, 0.5, None)).to_bytes())?;
    Model::from_bytes(&tree("DecisionTreeClassifier", &["".to_owned()], None).to_bytes())?;
    // The extremes of the f32 range are finite, and accepted.
    let extremes = [f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-45, -0.0, 0.0];
    let bytes = affine("LinearRegression", &extremes, &[0.0, 0.0]).to_bytes();
    let model = Model::from_bytes(&bytes)?;
    assert_eq!(model.family(), ModelFamily::LinearRegression);
    Ok(())
}

#[test]
fn linear_regression_weight_and_bias() {
    for (name, bad) in BAD {
        let ok_bias = values(2, 0, 1.0, None);
        let writer = affine(
            "LinearRegression",
            &values(6, 4, bad, Some(5)),
            &values(2, 1, bad, None),
        );
        assert_refused(&writer, "weight", 4, &format!("weight {name}"));
        let writer = affine(
            "LinearRegression",
            &values(6, 0, 1.0, None),
            &values(2, 1, bad, None),
        );
        assert_refused(&writer, "bias", 1, &format!("bias {name}"));
        let writer = affine("LinearRegression", &values(6, 0, bad, None), &ok_bias);
        assert_refused(&writer, "weight", 0, &format!("weight[0] {name}"));
        // No model_type: a bare weight + bias is a linear model too.
        let mut writer = AprWriter::new();
        let _ = writer.add_f32("weight", &[1, 3], &values(3, 2, bad, None));
        assert_refused(&writer, "weight", 2, &format!("bare weight {name}"));
    }
}

#[test]
fn logistic_regression_weight_bias_coefficients_and_intercept() {
    for (name, bad) in BAD {
        let writer = affine(
            "LogisticRegression",
            &values(6, 3, bad, Some(4)),
            &values(2, 0, 1.0, None),
        );
        assert_refused(&writer, "weight", 3, &format!("multinomial weight {name}"));
        let writer = affine(
            "LogisticRegression",
            &values(6, 0, 1.0, None),
            &values(2, 0, bad, Some(1)),
        );
        assert_refused(&writer, "bias", 0, &format!("multinomial bias {name}"));

        // Binary, aprender's naming: coefficients + intercept.
        let mut writer = AprWriter::new();
        writer.model_type("LogisticRegression");
        let _ = writer.add_f32("coefficients", &[4], &values(4, 1, bad, None));
        let _ = writer.add_f32("intercept", &[1], &[0.5]);
        assert_refused(&writer, "coefficients", 1, &format!("coefficients {name}"));
        let mut writer = AprWriter::new();
        writer.model_type("LogisticRegression");
        let _ = writer.add_f32("coefficients", &[4], &values(4, 1, 0.5, None));
        let _ = writer.add_f32("intercept", &[1], &[bad]);
        assert_refused(&writer, "intercept", 0, &format!("intercept {name}"));
    }
}

/// `Linear(3->2)`, ReLU, `Linear(2->2)`, Softmax: parameters `"0"` (weight
/// `[2, 3]`), `"1"` (bias `[2]`), `"2"` (weight `[2, 2]`), `"3"` (bias `[2]`).
/// `weights` holds both weights (6 + 4 values), `biases` both biases.
fn mlp(weights: &[f32], biases: &[f32]) -> AprWriter {
    let mut writer = AprWriter::new();
    writer.model_type("NeuralSequential");
    writer.metadata(
        "layers",
        json!(["Linear(3->2)", "ReLU", "Linear(2->2)", "Softmax"]),
    );
    let _ = writer.add_f32("0", &[2, 3], &weights[..6]);
    let _ = writer.add_f32("1", &[2], &biases[..2]);
    let _ = writer.add_f32("2", &[2, 2], &weights[6..10]);
    let _ = writer.add_f32("3", &[2], &biases[2..4]);
    writer
}

#[test]
fn mlp_weights_and_biases_of_every_layer() {
    for (name, bad) in BAD {
        let ok_weights = values(12, 0, 1.0, None);
        let ok_biases = values(4, 0, 1.0, None);
        // The second layer's weight, index 3 of its 4 values.
        let writer = mlp(&values(12, 9, bad, None), &ok_biases);
        assert_refused(&writer, "2", 3, &format!("second weight {name}"));
        // The first layer's weight wins over the second's.
        let writer = mlp(&values(12, 5, bad, Some(7)), &ok_biases);
        assert_refused(&writer, "0", 5, &format!("first weight {name}"));
        // Biases.
        let writer = mlp(&ok_weights, &values(4, 1, bad, None));
        assert_refused(&writer, "1", 1, &format!("first bias {name}"));
        let writer = mlp(&ok_weights, &values(4, 2, bad, Some(3)));
        assert_refused(&writer, "3", 0, &format!("second bias {name}"));
    }
}

fn kmeans(centroids: &[f32]) -> AprWriter {
    let mut writer = AprWriter::new();
    writer.model_type("KMeans");
    let _ = writer.add_f32("centroids", &[3, 2], centroids);
    writer
}

#[test]
fn kmeans_centroids() {
    for (name, bad) in BAD {
        assert_refused(
            &kmeans(&values(6, 3, bad, Some(5))),
            "centroids",
            3,
            &format!("centroid {name}"),
        );
    }
}

/// A one-split tree (`x0 <= 0.5 ? class 0 : class 1`) under each prefix,
/// with `(field, index, value)` overriding one value of one tree's arrays
/// (`field` is the full tensor name).
fn tree(model_type: &str, prefixes: &[String], poison: Option<(&str, usize, f32)>) -> AprWriter {
    let mut writer = AprWriter::new();
    writer.model_type(model_type);
    writer.metadata("n_features", json!(1));
    for prefix in prefixes {
        for (field, mut values) in [
            ("node_features", vec![0.0, -1.0, -1.0]),
            ("node_thresholds", vec![0.5, 0.0, 0.0]),
            ("node_classes", vec![0.0, 0.0, 1.0]),
            ("node_samples", vec![4.0, 2.0, 2.0]),
            ("node_left_child", vec![1.0, -1.0, -1.0]),
            ("node_right_child", vec![2.0, -1.0, -1.0]),
        ] {
            let tensor = format!("{prefix}{field}");
            if let Some((target, index, value)) = poison {
                if target == tensor {
                    values[index] = value;
                }
            }
            let _ = writer.add_f32(&tensor, &[3], &values);
        }
    }
    writer
}

#[test]
fn tree_and_forest_thresholds_and_leaves() {
    let single = ["".to_owned()];
    let forest: Vec<String> = (0..3).map(|i| format!("tree_{i}_")).collect();
    for (name, bad) in BAD {
        // A split's threshold, and a leaf's (unused by the walk, still refused).
        for index in [0, 2] {
            let writer = tree(
                "DecisionTreeClassifier",
                &single,
                Some(("node_thresholds", index, bad)),
            );
            assert_refused(
                &writer,
                "node_thresholds",
                index,
                &format!("threshold {name}"),
            );
        }
        // A leaf's class.
        let writer = tree(
            "DecisionTreeClassifier",
            &single,
            Some(("node_classes", 1, bad)),
        );
        assert_refused(&writer, "node_classes", 1, &format!("leaf class {name}"));
        // The second tree of a forest.
        let writer = tree(
            "RandomForestClassifier",
            &forest,
            Some(("tree_1_node_thresholds", 0, bad)),
        );
        assert_refused(
            &writer,
            "tree_1_node_thresholds",
            0,
            &format!("forest threshold {name}"),
        );
        let writer = tree(
            "RandomForestClassifier",
            &forest,
            Some(("tree_2_node_classes", 2, bad)),
        );
        assert_refused(
            &writer,
            "tree_2_node_classes",
            2,
            &format!("forest leaf class {name}"),
        );
    }
    // Without the poison, the forest loads.
    assert!(Model::from_bytes(&tree("RandomForestClassifier", &forest, None).to_bytes()).is_ok());
}

/// F16 bits of the three non-finite values.
const F16_BAD: [(&str, u16); 3] = [("NaN", 0x7E00), ("+inf", 0x7C00), ("-inf", 0xFC00)];

#[test]
fn decoded_and_dequantized_weights_are_checked_too() {
    for (name, bits) in F16_BAD {
        // F16: the non-finite value is stored as such.
        let mut f16_values: Vec<u16> = (0..6).map(|i| 0x3C00 + i).collect(); // 1.0, 1.0009765625, ...
        f16_values[4] = bits;
        let bytes = f16_values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut writer = AprWriter::new();
        writer.model_type("LinearRegression");
        let _ = writer.add_tensor("weight", DType::F16, &[2, 3], bytes);
        let _ = writer.add_f32("bias", &[2], &[0.0, 0.0]);
        assert_refused(&writer, "weight", 4, &format!("F16 {name}"));
    }
    // F64: a finite f64 beyond the f32 range becomes an infinity when decoded.
    for (name, big) in [("+1e39", 1e39f64), ("-1e300", -1e300), ("NaN", f64::NAN)] {
        let mut f64_values = [0.25f64; 6];
        f64_values[2] = big;
        let bytes = f64_values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut writer = AprWriter::new();
        writer.model_type("KMeans");
        let _ = writer.add_tensor("centroids", DType::F64, &[3, 2], bytes);
        assert_refused(&writer, "centroids", 2, &format!("F64 {name}"));
    }
    // APR-Q8: a NaN or infinite scale makes every dequantized value
    // non-finite (0 × inf is NaN), so the first one is at index 0.
    for (name, scale) in BAD {
        let mut bytes = scale.to_le_bytes().to_vec();
        bytes.extend([1u8, 2, 3, 0xFF, 0, 7]);
        let mut writer = AprWriter::new();
        writer.model_type("NeuralSequential");
        writer.metadata(
            "layers",
            json!(["Linear(3->2)", "ReLU", "Linear(2->2)", "Softmax"]),
        );
        let _ = writer.add_tensor("0", DType::AprQ8, &[2, 3], bytes);
        let _ = writer.add_f32("1", &[2], &[0.0, 0.0]);
        let _ = writer.add_f32("2", &[2, 2], &[1.0, 0.0, 0.0, 1.0]);
        let _ = writer.add_f32("3", &[2], &[0.0, 0.0]);
        assert_refused(&writer, "0", 0, &format!("APR-Q8 scale {name}"));
    }
}

#[test]
fn the_message_names_the_tensor_the_index_and_the_rule() {
    let writer = affine(
        "LinearRegression",
        &values(6, 0, 1.0, None),
        &values(2, 1, f32::NAN, None),
    );
    let message = match Model::from_bytes(&writer.to_bytes()) {
        Ok(_) => panic!("a NaN bias loaded"),
        Err(error) => error.to_string(),
    };
    assert_eq!(
        message,
        "tensor `bias` holds a non-finite value (NaN or an infinity) at index 1; \
         a model's weights and biases must all be finite"
    );
}
