//! Errors: at load (never a panic) and at predict.

use crate::support::*;

#[test]
fn predict_rejects_wrong_feature_counts_and_non_finite_values() -> TestResult {
    let bytes = fixture("mlp_multiclass.v2.apr");
    let model = Model::from_bytes(&bytes)?;
    let mut scratch = model.scratch();
    let err = model.predict(&[1.0, 2.0], &mut scratch).err();
    assert_eq!(
        err,
        Some(PredictError::FeatureCount {
            expected: 4,
            found: 2
        })
    );
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains('4') && msg.contains('2'), "{msg}");
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let err = model.predict(&[0.0, 0.0, bad, 0.0], &mut scratch).err();
        assert_eq!(err, Some(PredictError::NonFinite { index: 2 }));
    }
    let mut rows = vec![0.0; 12];
    rows[9] = f32::NAN;
    let err = model.predict_batch(&rows, 3).err();
    assert_eq!(
        err,
        Some(PredictError::NonFiniteInBatch { row: 2, index: 1 })
    );
    assert!(err
        .map(|e| e.to_string())
        .unwrap_or_default()
        .contains("feature 1 of row 2"));
    let err = model.predict_batch(&rows[..11], 3).err();
    assert_eq!(
        err,
        Some(PredictError::BatchShape {
            n_rows: 3,
            n_features: 4,
            found: 11
        })
    );
    assert!(matches!(
        model.predict_batch(&rows, usize::MAX),
        Err(PredictError::BatchShape { .. })
    ));
    let empty = model.predict_batch(&[], 0)?;
    assert!(empty.is_empty());
    assert!(empty.row(0).is_none());
    Ok(())
}

#[test]
fn predict_reuses_the_scratch() -> TestResult {
    let bytes = fixture("mlp_multiclass.v2.apr");
    let model = Model::from_bytes(&bytes)?;
    let mut scratch = model.scratch();
    let first = model
        .predict(&[0.5, 0.5, 0.5, 0.5], &mut scratch)?
        .outputs
        .as_ptr();
    for i in 0..100 {
        let x = [i as f32, 0.0, -1.0, 2.0];
        let ptr = model.predict(&x, &mut scratch)?.outputs.as_ptr();
        assert_eq!(
            ptr, first,
            "the result lives in the same scratch buffer every time"
        );
    }
    // A scratch made for another model grows instead of failing.
    let other_bytes = fixture("mlp_xor.v2.apr");
    let other = Model::from_bytes(&other_bytes)?;
    let mut small = other.scratch();
    let out = model.predict(&[0.0; 4], &mut small)?;
    assert_eq!(out.outputs.len(), 3);
    // ... and a larger scratch (holding stale values) serves a smaller model.
    let want = other
        .predict(&[1.0, 0.0], &mut other.scratch())?
        .outputs
        .to_vec();
    let mut big = model.scratch();
    model.predict(&[3.0, -2.0, 1.0, 0.5], &mut big)?;
    let out = other.predict(&[1.0, 0.0], &mut big)?;
    assert_eq!(out.outputs, want.as_slice());
    Ok(())
}

fn linear(weight_shape: &[usize], bias_shape: Option<&[usize]>) -> Vec<u8> {
    let mut writer = AprWriter::new();
    writer.model_type("LinearRegression");
    let n: usize = weight_shape.iter().product();
    let _ = writer.add_f32("weight", weight_shape, &vec![1.0; n]);
    if let Some(shape) = bias_shape {
        let n: usize = shape.iter().product();
        let _ = writer.add_f32("bias", shape, &vec![1.0; n]);
    }
    writer.to_bytes()
}

#[test]
fn linear_shape_errors_are_errors() {
    let err = load_err(&linear(&[2, 3], Some(&[3])));
    assert!(
        matches!(&err, ModelError::ShapeMismatch { tensor, found, .. } if tensor == "bias" && found == &[3])
    );
    assert!(
        err.to_string()
            .contains("tensor `bias` has shape [3], expected [2]"),
        "{err}"
    );
    assert!(matches!(
        load_err(&linear(&[2, 3, 4], None)),
        ModelError::ShapeMismatch { .. }
    ));
    assert!(matches!(
        load_err(&linear(&[0, 3], None)),
        ModelError::ShapeMismatch { .. }
    ));
    assert!(matches!(
        load_err(&linear(&[2, 0], None)),
        ModelError::ShapeMismatch { .. }
    ));

    let mut writer = AprWriter::new();
    writer.model_type("LogisticRegression");
    let _ = writer.add_f32("coefficients", &[2, 2], &[1.0; 4]);
    assert!(matches!(
        load_err(&writer.to_bytes()),
        ModelError::ShapeMismatch { .. }
    ));

    let mut writer = AprWriter::new();
    writer.model_type("LogisticRegression");
    let _ = writer.add_f32("coefficients", &[2], &[1.0; 2]);
    let _ = writer.add_f32("intercept", &[2], &[1.0; 2]);
    let err = load_err(&writer.to_bytes());
    assert!(err.to_string().contains("intercept"), "{err}");

    let mut writer = AprWriter::new();
    writer.model_type("LinearRegression");
    let _ = writer.add_f32("w", &[2], &[1.0; 2]);
    let err = load_err(&writer.to_bytes());
    assert!(
        matches!(&err, ModelError::MissingTensor { tensor, .. } if tensor == "coefficients"),
        "{err}"
    );
    assert!(err.to_string().contains("LinearRegression"), "{err}");
}

fn mlp(layers: Value, params: &[(&str, &[usize])]) -> Vec<u8> {
    let mut writer = AprWriter::new();
    writer.model_type("NeuralSequential");
    writer.metadata("layers", layers);
    for (name, shape) in params {
        let n: usize = shape.iter().product();
        let _ = writer.add_f32(name, shape, &vec![0.5; n]);
    }
    writer.to_bytes()
}

#[test]
fn mlp_shape_errors_are_errors() {
    // Layers that do not chain.
    let err = load_err(&mlp(
        json!(["Linear(2->3)", "ReLU", "Linear(4->1)"]),
        &[("0", &[3, 2]), ("1", &[3]), ("2", &[1, 4]), ("3", &[1])],
    ));
    assert!(
        matches!(err, ModelError::InvalidLayer { index: 2, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("takes 4 inputs but the layer before it produces 3"),
        "{err}"
    );
    // A weight that disagrees with its layer string.
    let err = load_err(&mlp(
        json!(["Linear(2->3)"]),
        &[("0", &[3, 3]), ("1", &[3])],
    ));
    assert!(
        matches!(&err, ModelError::ShapeMismatch { tensor, .. } if tensor == "0"),
        "{err}"
    );
    // A bias of the wrong length.
    let err = load_err(&mlp(
        json!(["Linear(2->3)"]),
        &[("0", &[3, 2]), ("1", &[2])],
    ));
    assert!(
        matches!(&err, ModelError::ShapeMismatch { tensor, .. } if tensor == "1"),
        "{err}"
    );
    // Too few parameters.
    let err = load_err(&mlp(
        json!(["Linear(2->3)", "Linear(3->1)"]),
        &[("0", &[3, 2]), ("1", &[3])],
    ));
    assert!(
        matches!(err, ModelError::InvalidLayer { index: 1, .. }),
        "{err}"
    );
    // Too many parameters.
    let err = load_err(&mlp(
        json!(["Linear(2->3)"]),
        &[("0", &[3, 2]), ("1", &[3]), ("2", &[3])],
    ));
    assert!(
        matches!(&err, ModelError::InvalidParameter { tensor, .. } if tensor == "2"),
        "{err}"
    );
    // A gap in the numbering.
    let err = load_err(&mlp(
        json!(["Linear(2->3)"]),
        &[("0", &[3, 2]), ("2", &[3])],
    ));
    assert!(matches!(err, ModelError::InvalidParameter { .. }), "{err}");
    // Unknown and malformed layer strings.
    for layer in [
        "Conv2d(3)",
        "Linear(2-3)",
        "Linear(0->3)",
        "LeakyReLU(abc)",
        "relu",
    ] {
        let err = load_err(&mlp(json!([layer]), &[("0", &[3, 2]), ("1", &[3])]));
        assert!(
            matches!(&err, ModelError::InvalidLayer { layer: l, .. } if l == layer),
            "{layer}: {err}"
        );
    }
    let err = load_err(&mlp(json!([1, 2]), &[]));
    assert!(matches!(err, ModelError::InvalidLayer { .. }), "{err}");
    // No `layers`, no Linear.
    for layers in [json!(null), json!([]), json!("ReLU"), json!(["ReLU"])] {
        let err = load_err(&mlp(layers.clone(), &[]));
        assert!(
            matches!(&err, ModelError::InvalidMetadata { key, .. } if key == "layers"),
            "{layers}: {err}"
        );
    }
    // Metadata n_inputs that contradicts the layers.
    let mut writer = AprWriter::new();
    writer.model_type("NeuralSequential");
    writer.metadata("layers", json!(["Linear(2->1)"]));
    writer.metadata("n_inputs", json!(3));
    let _ = writer.add_f32("0", &[1, 2], &[1.0; 2]);
    let err = load_err(&writer.to_bytes());
    assert!(
        matches!(&err, ModelError::InvalidMetadata { key, .. } if key == "n_inputs"),
        "{err}"
    );
}

fn tree_file(
    features: &[f32],
    left: &[f32],
    right: &[f32],
    classes: &[f32],
    n_features: Option<usize>,
) -> Vec<u8> {
    let n = features.len();
    let mut writer = AprWriter::new();
    writer.model_type("DecisionTreeClassifier");
    if let Some(n_features) = n_features {
        writer.metadata("n_features", json!(n_features));
    }
    let zeros = vec![0.0; n];
    for (name, values) in [
        ("node_features", features),
        ("node_thresholds", &zeros[..]),
        ("node_classes", classes),
        ("node_samples", &zeros[..]),
        ("node_left_child", left),
        ("node_right_child", right),
    ] {
        let _ = writer.add_f32(name, &[values.len()], values);
    }
    writer.to_bytes()
}

#[test]
fn tree_errors_are_errors() {
    let ok = tree_file(
        &[0.0, -1.0, -1.0],
        &[1.0, -1.0, -1.0],
        &[2.0, -1.0, -1.0],
        &[0.0, 0.0, 1.0],
        None,
    );
    assert!(Model::from_bytes(&ok).is_ok());
    // A child pointing backwards (a cycle).
    let err = load_err(&tree_file(
        &[0.0, 0.0, -1.0],
        &[1.0, 0.0, -1.0],
        &[2.0, 2.0, -1.0],
        &[0.0; 3],
        None,
    ));
    assert!(
        matches!(
            err,
            ModelError::InvalidTree {
                node: 1,
                tree: None,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("must point forward"), "{err}");
    // A child past the end, and a missing child.
    let err = load_err(&tree_file(
        &[0.0, -1.0, -1.0],
        &[1.0, -1.0, -1.0],
        &[3.0, -1.0, -1.0],
        &[0.0; 3],
        None,
    ));
    assert!(
        matches!(err, ModelError::InvalidTree { node: 0, .. }),
        "{err}"
    );
    let err = load_err(&tree_file(
        &[0.0, -1.0, -1.0],
        &[1.0, -1.0, -1.0],
        &[-1.0, -1.0, -1.0],
        &[0.0; 3],
        None,
    ));
    assert!(
        matches!(err, ModelError::InvalidTree { node: 0, .. }),
        "{err}"
    );
    // A feature beyond metadata n_features, a fractional feature, a negative class.
    let err = load_err(&tree_file(
        &[3.0, -1.0, -1.0],
        &[1.0, -1.0, -1.0],
        &[2.0, -1.0, -1.0],
        &[0.0; 3],
        Some(2),
    ));
    assert!(
        err.to_string()
            .contains("feature 3, but the model has 2 features"),
        "{err}"
    );
    let err = load_err(&tree_file(
        &[0.5, -1.0, -1.0],
        &[1.0, -1.0, -1.0],
        &[2.0, -1.0, -1.0],
        &[0.0; 3],
        None,
    ));
    assert!(
        matches!(err, ModelError::InvalidTree { node: 0, .. }),
        "{err}"
    );
    let err = load_err(&tree_file(&[-1.0], &[-1.0], &[-1.0], &[-2.0], None));
    assert!(
        matches!(err, ModelError::InvalidTree { node: 0, .. }),
        "{err}"
    );
    // Arrays of different lengths.
    let err = load_err(&tree_file(
        &[0.0, -1.0, -1.0],
        &[1.0, -1.0],
        &[2.0, -1.0, -1.0],
        &[0.0; 3],
        None,
    ));
    assert!(
        matches!(&err, ModelError::ShapeMismatch { tensor, .. } if tensor == "node_left_child"),
        "{err}"
    );
    // Empty arrays.
    let err = load_err(&tree_file(&[], &[], &[], &[], None));
    assert!(matches!(err, ModelError::ShapeMismatch { .. }), "{err}");
    // n_features from the largest feature index when metadata has none.
    let model = Model::from_bytes(&ok).ok();
    assert_eq!(model.map(|m| m.n_features()), Some(1));
    // A missing array names the tensor.
    let mut writer = AprWriter::new();
    writer.model_type("RandomForestClassifier");
    let err = load_err(&writer.to_bytes());
    assert!(
        matches!(&err, ModelError::MissingTensor { tensor, .. } if tensor == "tree_0_node_features"),
        "{err}"
    );
}

#[test]
fn kmeans_and_unknown_family_errors() {
    let mut writer = AprWriter::new();
    writer.model_type("KMeans");
    let _ = writer.add_f32("centroids", &[6], &[0.0; 6]);
    assert!(matches!(
        load_err(&writer.to_bytes()),
        ModelError::ShapeMismatch { .. }
    ));

    let mut writer = AprWriter::new();
    writer.model_type("GradientBoosting");
    let _ = writer.add_f32("stumps", &[2], &[0.0; 2]);
    let err = load_err(&writer.to_bytes());
    assert!(
        err.to_string().contains("`GradientBoosting`") && err.to_string().contains("stumps"),
        "{err}"
    );

    assert!(matches!(load_err(b"not a model"), ModelError::Format(_)));
    assert!(matches!(
        load_err(&fixture("bad_header_crc.apr")),
        ModelError::Format(_)
    ));
}

/// Thousands of random containers assembled from the tensor names and
/// metadata the families read (random shapes, values and layer strings):
/// loading returns `Ok` or `Err` and never panics, and every model that loads
/// predicts a row and a batch without panicking (the kernels would panic on
/// any shape the loader let through unchecked).
#[test]
fn random_containers_never_panic() -> TestResult {
    let mut rng = Lcg(0xA11CE);
    let families = [
        "LinearRegression",
        "LogisticRegression",
        "DecisionTreeClassifier",
        "RandomForestClassifier",
        "KMeans",
        "NeuralSequential",
        "",
    ];
    let names = [
        "weight",
        "bias",
        "coefficients",
        "intercept",
        "centroids",
        "node_features",
        "node_thresholds",
        "node_classes",
        "node_left_child",
        "node_right_child",
        "tree_0_node_features",
        "tree_0_node_thresholds",
        "tree_0_node_classes",
        "tree_0_node_left_child",
        "tree_0_node_right_child",
        "n_estimators",
        "0",
        "1",
        "2",
        "3",
        "10",
    ];
    let layer_strings = [
        "Linear(2->3)",
        "Linear(3->2)",
        "Linear(2->2)",
        "Linear(3->3)",
        "ReLU",
        "Softmax",
        "GELU",
        "LeakyReLU(0.5)",
        "Linear(x->2)",
    ];
    let mut loaded = 0;
    for _ in 0..3000 {
        let mut writer = AprWriter::new();
        let family = families[rng.below(families.len() as u32) as usize];
        if !family.is_empty() {
            writer.model_type(family);
        }
        if rng.below(3) == 0 {
            writer.metadata("n_features", json!(rng.below(4)));
        }
        if rng.below(4) == 0 {
            writer.metadata("n_classes", json!(rng.below(5)));
        }
        let n_layers = rng.below(4) as usize;
        let layers: Vec<&str> = (0..n_layers)
            .map(|_| layer_strings[rng.below(layer_strings.len() as u32) as usize])
            .collect();
        writer.metadata("layers", json!(layers));
        for _ in 0..rng.below(7) {
            let name = names[rng.below(names.len() as u32) as usize];
            let shape: Vec<usize> = (0..rng.below(3)).map(|_| rng.below(4) as usize).collect();
            let n: usize = shape.iter().product();
            // Small integers in -2..=3: valid node indices, features and
            // classes as often as invalid ones.
            let values: Vec<f32> = (0..n).map(|_| rng.below(6) as f32 - 2.0).collect();
            let _ = writer.add_f32(name, &shape, &values);
        }
        let bytes = writer.to_bytes();
        let Ok(model) = Model::from_bytes(&bytes) else {
            continue;
        };
        loaded += 1;
        let row = vec![0.5; model.n_features()];
        let mut scratch = model.scratch();
        let out = model.predict(&row, &mut scratch)?;
        assert_eq!(out.outputs.len(), model.n_outputs());
        let _ = out.prediction();
        let batch = model.predict_batch(&row.repeat(3), 3)?;
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.outputs().len(), 3 * model.n_outputs());
    }
    assert!(
        loaded > 50,
        "only {loaded} random containers formed a model"
    );
    Ok(())
}
