//! The v1 (APRN) decoder and the v1 → v2 converter, on aprender's own files
//! (tests/fixtures/*.v1.apr) and on files built here by a small encoder.

use std::path::PathBuf;

use apr_runtime::format::v1::{self, Compression, DecisionTree, TreeNode, V1Error, V1Model};
use apr_runtime::format::{AprFile, FormatError};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn expected(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("expected.json parses")
}

fn v1_fixture_names() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("fixtures dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".v1.apr"))
        .collect();
    names.sort();
    names
}

fn rows(value: &Value) -> Vec<Vec<f32>> {
    value
        .as_array()
        .expect("inputs array")
        .iter()
        .map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|x| x.as_f64().expect("number") as f32)
                .collect()
        })
        .collect()
}

fn tree_class(tree: &DecisionTree, x: &[f32]) -> u64 {
    let mut index = 0;
    loop {
        match tree.nodes[index] {
            TreeNode::Split {
                feature,
                threshold,
                left,
                right,
                ..
            } => {
                index = if x[feature as usize] <= threshold {
                    left
                } else {
                    right
                }
            }
            TreeNode::Leaf { class, .. } => return class,
        }
    }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

// ---------------------------------------------------------------------------
// aprender's own files

#[test]
fn every_v1_fixture_decodes_converts_and_the_result_parses() {
    let names = v1_fixture_names();
    assert!(names.len() >= 3, "v1 fixtures missing: {names:?}");
    for name in names {
        let bytes = fixture(&name);
        let file = v1::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(file.metadata.aprender_version(), Some("0.72.3"), "{name}");
        assert_eq!(file.header.version_major, 1);
        let v2 = v1::convert_to_v2(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let parsed = AprFile::parse(&v2).unwrap_or_else(|e| panic!("{name} converted: {e}"));
        assert_eq!(parsed.model_type(), Some(file.v2_model_type()), "{name}");
        assert_eq!(
            parsed.metadata().get("aprender_version"),
            Some(&Value::from("0.72.3"))
        );
        assert_eq!(
            parsed.metadata().get("name").and_then(Value::as_str),
            file.metadata.model_name(),
            "{name}: model_name travels as name"
        );
        assert_eq!(file.to_v2_bytes().expect("to_v2_bytes"), v2);
        // Normalising the converted file changes nothing (metadata floats
        // included).
        assert_eq!(v1::convert_to_v2(&v2).expect("normalises"), v2, "{name}");
        for tensor in parsed.iter() {
            tensor.to_f32().expect("converted tensors are f32");
        }
    }
}

#[test]
fn linear_regression_fixture_matches_aprender_params_and_outputs() {
    let file = v1::decode(&fixture("linear_regression.v1.apr")).expect("decodes");
    let want = expected("linear_regression.v1.expected.json");
    let V1Model::LinearRegression {
        coefficients: Some(coefficients),
        intercept,
        fit_intercept,
    } = &file.model
    else {
        panic!("not a fitted linear regression: {:?}", file.model)
    };
    let want_coef: Vec<f32> = want["params"]["coefficients"]
        .as_array()
        .expect("coefficients")
        .iter()
        .map(|v| v.as_f64().expect("f") as f32)
        .collect();
    assert_eq!(coefficients, &want_coef);
    assert_eq!(
        *intercept,
        want["params"]["intercept"].as_f64().expect("intercept") as f32
    );
    assert!(*fit_intercept);
    assert_eq!(file.metadata.model_name(), Some("linreg-3f"));
    assert_eq!(file.header.compression, Compression::None);

    let v2 = v1::convert_to_v2(&fixture("linear_regression.v1.apr")).expect("converts");
    let parsed = AprFile::parse(&v2).expect("parses");
    let coef = parsed.tensor("coefficients").expect("coefficients");
    assert_eq!(coef.shape(), &[3]);
    assert_eq!(&*coef.to_f32().expect("f32"), &want_coef[..]);
    let b = parsed
        .tensor("intercept")
        .expect("intercept")
        .to_f32()
        .expect("f32")[0];
    for (x, y) in rows(&want["inputs"])
        .iter()
        .zip(want["outputs"].as_array().expect("outputs"))
    {
        let got = dot(&coef.to_f32().expect("f32"), x) + b;
        let y = y.as_f64().expect("y") as f32;
        assert!((got - y).abs() <= 1e-5 * y.abs().max(1.0), "{got} vs {y}");
    }
    assert_eq!(parsed.metadata().get("n_features"), Some(&Value::from(3)));
}

#[test]
fn logistic_regression_fixture_reproduces_aprender_probabilities() {
    let file = v1::decode(&fixture("logistic_regression.v1.apr")).expect("decodes");
    let want = expected("logistic_regression.v1.expected.json");
    let V1Model::LogisticRegression {
        coefficients: Some(coefficients),
        intercept,
        max_iter,
        ..
    } = &file.model
    else {
        panic!("not a fitted logistic regression: {:?}", file.model)
    };
    assert_eq!(*max_iter, 500);
    let probas = want["outputs_proba_class1"].as_array().expect("probas");
    let classes = want["outputs_class"].as_array().expect("classes");
    for ((x, p), c) in rows(&want["inputs"]).iter().zip(probas).zip(classes) {
        let got = sigmoid(dot(coefficients, x) + intercept);
        let p = p.as_f64().expect("p") as f32;
        assert!((got - p).abs() <= 1e-5 * p.abs().max(1e-3), "{got} vs {p}");
        assert_eq!(u64::from(got >= 0.5), c.as_u64().expect("class"));
    }
}

#[test]
fn decision_tree_fixture_reproduces_aprender_classes_before_and_after_conversion() {
    let bytes = fixture("decision_tree.v1.apr");
    let file = v1::decode(&bytes).expect("decodes");
    let want = expected("decision_tree.v1.expected.json");
    let V1Model::DecisionTree(tree) = &file.model else {
        panic!("not a tree: {:?}", file.model)
    };
    assert_eq!(tree.max_depth, Some(3));
    assert_eq!(tree.n_features, Some(2));
    let inputs = rows(&want["inputs"]);
    let classes: Vec<u64> = want["outputs_class"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| c.as_u64().expect("class"))
        .collect();
    for (x, c) in inputs.iter().zip(&classes) {
        assert_eq!(tree_class(tree, x), *c);
    }

    // The converted arrays walk to the same leaves.
    let v2 = v1::convert_to_v2(&bytes).expect("converts");
    let parsed = AprFile::parse(&v2).expect("parses");
    let get = |name: &str| {
        parsed
            .tensor(name)
            .unwrap_or_else(|| panic!("missing {name}"))
            .to_f32()
            .expect("f32")
            .into_owned()
    };
    let (features, thresholds, node_classes, left, right) = (
        get("node_features"),
        get("node_thresholds"),
        get("node_classes"),
        get("node_left_child"),
        get("node_right_child"),
    );
    assert_eq!(get("max_depth"), vec![3.0]);
    assert_eq!(get("node_samples").len(), features.len());
    for (x, c) in inputs.iter().zip(&classes) {
        let mut i = 0usize;
        while features[i] >= 0.0 {
            i = if x[features[i] as usize] <= thresholds[i] {
                left[i] as usize
            } else {
                right[i] as usize
            };
        }
        assert_eq!(left[i], -1.0);
        assert_eq!(node_classes[i] as u64, *c);
    }
}

// ---------------------------------------------------------------------------
// A small encoder for v1 files built here

fn msgpack_str(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 32);
    out.push(0xa0 | s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// MessagePack metadata: a map of string keys to strings.
fn metadata(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut out = vec![0x80 | entries.len() as u8];
    for (k, v) in entries {
        msgpack_str(&mut out, k);
        msgpack_str(&mut out, v);
    }
    out
}

struct V1Builder {
    model_type: u16,
    metadata: Vec<u8>,
    payload: Vec<u8>,
    compression: u8,
    flags: u8,
    uncompressed_size: Option<u32>,
}

impl V1Builder {
    fn new(model_type: u16, payload: Vec<u8>) -> Self {
        Self {
            model_type,
            metadata: metadata(&[
                ("created_at", "1795724928"),
                ("aprender_version", "0.72.3"),
                ("model_name", "built-in-test"),
            ]),
            payload,
            compression: 0,
            flags: 0,
            uncompressed_size: None,
        }
    }

    fn build(&self) -> Vec<u8> {
        let stored = match self.compression {
            0 => self.payload.clone(),
            1 | 2 => ruzstd::encoding::compress_to_vec(
                &self.payload[..],
                ruzstd::encoding::CompressionLevel::Fastest,
            ),
            3 => lz4_flex::block::compress_prepend_size(&self.payload),
            _ => self.payload.clone(),
        };
        let mut out = Vec::new();
        out.extend_from_slice(b"APRN");
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&self.model_type.to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u32).to_le_bytes());
        out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
        let uncompressed = self.uncompressed_size.unwrap_or(self.payload.len() as u32);
        out.extend_from_slice(&uncompressed.to_le_bytes());
        out.extend_from_slice(&[self.compression, self.flags, 0]);
        out.extend_from_slice(&[0; 9]);
        out.extend_from_slice(&self.metadata);
        out.extend_from_slice(&stored);
        if self.flags & 0x02 != 0 {
            out.extend_from_slice(&[0x5a; 96]);
        }
        let crc = apr_runtime::format::crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }
}

/// bincode 1.x writers for the payload structs.
#[derive(Default)]
struct Bincode(Vec<u8>);

impl Bincode {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn f32(&mut self, v: f32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn f32s(&mut self, v: &[f32]) -> &mut Self {
        self.u64(v.len() as u64);
        for x in v {
            self.f32(*x);
        }
        self
    }
    fn u64s(&mut self, v: &[u64]) -> &mut Self {
        self.u64(v.len() as u64);
        for x in v {
            self.u64(*x);
        }
        self
    }
    fn some_u64(&mut self, v: u64) -> &mut Self {
        self.u8(1).u64(v)
    }
    fn leaf(&mut self, class: u64) -> &mut Self {
        self.u32(1).u64(class).u64(4).f32(0.0)
    }
    fn split(&mut self, feature: u64, threshold: f32) -> &mut Self {
        self.u32(0).u64(feature).f32(threshold).f32(0.5).u64(8)
    }
    /// A DecisionTreeClassifier: x[feature] <= threshold → class lo, else hi.
    fn stump(&mut self, feature: u64, threshold: f32, lo: u64, hi: u64) -> &mut Self {
        self.u8(1).split(feature, threshold).leaf(lo).leaf(hi);
        self.some_u64(1).some_u64(2)
    }
}

fn linear_payload() -> Vec<u8> {
    let mut b = Bincode::default();
    b.u8(1).f32s(&[1.0, -2.0, 0.5]).f32(3.0).u8(1);
    b.0
}

fn forest_payload() -> Vec<u8> {
    let mut b = Bincode::default();
    b.u64(3);
    b.stump(0, 0.5, 0, 1)
        .stump(1, 1.5, 1, 2)
        .stump(0, 2.0, 0, 2);
    b.u64(3).some_u64(2).some_u64(42);
    // oob_indices
    b.u64(2).u64s(&[0, 1]).u64s(&[2]);
    // x_train: 3x2 matrix, y_train
    b.u8(1).f32s(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).u64(3).u64(2);
    b.u8(1).u64s(&[0, 1, 2]);
    b.0
}

fn kmeans_payload() -> Vec<u8> {
    let mut b = Bincode::default();
    b.u64(2).u64(300).f32(1e-4).some_u64(7);
    b.u8(1).f32s(&[0.0, 0.0, 5.0, 5.0]).u64(2).u64(2);
    b.u8(1).u64s(&[0, 0, 1, 1, 1]);
    b.f32(1.25).u64(4);
    b.0
}

#[test]
fn random_forest_decodes_and_converts_without_training_data() {
    let bytes = V1Builder::new(0x0004, forest_payload()).build();
    let file = v1::decode(&bytes).expect("decodes");
    let V1Model::RandomForest {
        trees,
        n_estimators,
        x_train,
        y_train,
        oob_indices,
        random_state,
        ..
    } = &file.model
    else {
        panic!("not a forest: {:?}", file.model)
    };
    assert_eq!(trees.len(), 3);
    assert_eq!(*n_estimators, 3);
    assert_eq!(*random_state, Some(42));
    assert_eq!(oob_indices, &vec![vec![0, 1], vec![2]]);
    assert_eq!(x_train.as_ref().map(|m| (m.rows, m.cols)), Some((3, 2)));
    assert_eq!(y_train.as_deref(), Some(&[0, 1, 2][..]));

    let v2 = v1::convert_to_v2(&bytes).expect("converts");
    let parsed = AprFile::parse(&v2).expect("parses");
    assert_eq!(parsed.model_type(), Some("RandomForestClassifier"));
    let names: Vec<&str> = parsed.tensors().iter().map(|t| t.name.as_str()).collect();
    for i in 0..3 {
        for field in [
            "node_features",
            "node_thresholds",
            "node_classes",
            "node_samples",
            "node_left_child",
            "node_right_child",
            "max_depth",
        ] {
            assert!(
                names.contains(&format!("tree_{i}_{field}").as_str()),
                "{names:?}"
            );
        }
    }
    assert!(!names
        .iter()
        .any(|n| n.contains("train") || n.contains("oob")));
    assert_eq!(names.len(), 3 * 7 + 1);
    let n = parsed
        .tensor("n_estimators")
        .expect("n_estimators")
        .to_f32()
        .expect("f32");
    assert_eq!(&*n, &[3.0]);
    let features = parsed
        .tensor("tree_1_node_features")
        .expect("features")
        .to_f32()
        .expect("f32")
        .into_owned();
    assert_eq!(features, vec![1.0, -1.0, -1.0]);
    let classes = parsed
        .tensor("tree_2_node_classes")
        .expect("c")
        .to_f32()
        .expect("f32")
        .into_owned();
    assert_eq!(classes, vec![0.0, 0.0, 2.0]);
    assert_eq!(parsed.metadata().get("n_features"), Some(&Value::from(2)));
    assert_eq!(parsed.metadata().get("n_classes"), Some(&Value::from(3)));
}

#[test]
fn kmeans_decodes_and_converts_without_labels() {
    let bytes = V1Builder::new(0x0006, kmeans_payload()).build();
    let file = v1::decode(&bytes).expect("decodes");
    let V1Model::KMeans {
        n_clusters,
        centroids,
        labels,
        inertia,
        n_iter,
        ..
    } = &file.model
    else {
        panic!("not k-means: {:?}", file.model)
    };
    assert_eq!((*n_clusters, *n_iter, *inertia), (2, 4, 1.25));
    assert_eq!(labels.as_ref().map(Vec::len), Some(5));
    assert_eq!(centroids.as_ref().map(|c| c.data.len()), Some(4));

    let v2 = v1::convert_to_v2(&bytes).expect("converts");
    let parsed = AprFile::parse(&v2).expect("parses");
    assert_eq!(parsed.model_type(), Some("KMeans"));
    let c = parsed.tensor("centroids").expect("centroids");
    assert_eq!(c.shape(), &[2, 2]);
    assert_eq!(&*c.to_f32().expect("f32"), &[0.0, 0.0, 5.0, 5.0]);
    assert!(parsed.tensors().iter().all(|t| !t.name.contains("label")));
}

#[test]
fn zstd_and_lz4_payloads_decode_to_the_same_model() {
    let plain = v1::decode(&V1Builder::new(0x0004, forest_payload()).build()).expect("plain");
    for (code, compression) in [
        (1, Compression::Zstd),
        (2, Compression::ZstdHigh),
        (3, Compression::Lz4),
    ] {
        let mut builder = V1Builder::new(0x0004, forest_payload());
        builder.compression = code;
        let bytes = builder.build();
        let file = v1::decode(&bytes).unwrap_or_else(|e| panic!("{compression:?}: {e}"));
        assert_eq!(file.header.compression, compression);
        assert_eq!(file.model, plain.model, "{compression:?}");
        assert_eq!(
            v1::convert_to_v2(&bytes).expect("converts"),
            plain.to_v2_bytes().expect("converts")
        );
    }
}

#[test]
fn a_signed_file_keeps_its_signature_block() {
    let mut builder = V1Builder::new(0x0001, linear_payload());
    builder.flags = 0x02;
    let file = v1::decode(&builder.build()).expect("decodes");
    assert_eq!(file.signature, Some([0x5a; 96]));
}

fn v1_error(result: Result<impl std::fmt::Debug, FormatError>) -> V1Error {
    match result {
        Err(FormatError::V1(e)) => e,
        other => panic!("expected a v1 error, got {other:?}"),
    }
}

#[test]
fn trailing_payload_bytes_are_an_error_naming_the_aprender_version() {
    let mut payload = linear_payload();
    payload.extend_from_slice(&[0, 0, 0, 0]);
    let mut builder = V1Builder::new(0x0001, payload);
    builder.metadata = metadata(&[("aprender_version", "0.27.0")]);
    let error = v1_error(v1::decode(&builder.build()));
    assert!(
        matches!(error, V1Error::PayloadTrailing { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("0.27.0"), "{message}");
    assert!(message.contains("4 bytes left over"), "{message}");
    // The converter reports the same.
    assert!(v1::convert_to_v2(&builder.build())
        .unwrap_err()
        .to_string()
        .contains("0.27.0"));
}

#[test]
fn truncated_payloads_are_an_error_naming_the_aprender_version() {
    for compression in [0, 1, 3] {
        let mut payload = kmeans_payload();
        payload.truncate(payload.len() - 3);
        let mut builder = V1Builder::new(0x0006, payload);
        builder.compression = compression;
        let error = v1_error(v1::decode(&builder.build()));
        assert!(
            matches!(error, V1Error::PayloadTruncated { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("aprender 0.72.3"), "{error}");
    }
}

#[test]
fn layout_errors_are_reported() {
    let good = V1Builder::new(0x0001, linear_payload()).build();

    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    assert!(matches!(
        v1_error(v1::decode(&bad_crc)),
        V1Error::Checksum { .. }
    ));

    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(
        v1_error(v1::decode(&longer)),
        V1Error::FileLength { .. }
    ));
    assert!(matches!(
        v1_error(v1::decode(&good[..good.len() - 1])),
        V1Error::FileLength { .. }
    ));
    assert!(matches!(
        v1_error(v1::decode(&good[..10])),
        V1Error::TruncatedHeader { length: 10 }
    ));

    let mut encrypted = V1Builder::new(0x0001, linear_payload());
    encrypted.flags = 0x01;
    assert!(matches!(
        v1_error(v1::decode(&encrypted.build())),
        V1Error::Encrypted { .. }
    ));

    let mut huge = V1Builder::new(0x0001, linear_payload());
    huge.uncompressed_size = Some((1 << 30) + 1);
    assert!(matches!(
        v1_error(v1::decode(&huge.build())),
        V1Error::PayloadTooLarge { .. }
    ));

    let mut lying_zstd = V1Builder::new(0x0001, linear_payload());
    lying_zstd.compression = 1;
    lying_zstd.uncompressed_size = Some(100);
    assert!(matches!(
        v1_error(v1::decode(&lying_zstd.build())),
        V1Error::DecompressedSize { .. }
    ));

    // Bytes after the zstd frame inside the stored payload.
    let mut zstd = V1Builder::new(0x0001, linear_payload());
    zstd.compression = 1;
    let mut bytes = zstd.build();
    let stored_end = bytes.len() - 4;
    bytes.insert(stored_end, 0xEE);
    let stored_size = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) + 1;
    bytes[12..16].copy_from_slice(&stored_size.to_le_bytes());
    bytes.truncate(bytes.len() - 4);
    let crc = apr_runtime::format::crc32(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let error = v1_error(v1::decode(&bytes));
    assert!(
        error.to_string().contains("follow the zstd frame"),
        "{error}"
    );

    let gradient_boosting = V1Builder::new(0x0005, vec![]).build();
    let error = v1_error(v1::decode(&gradient_boosting));
    assert!(error.to_string().contains("GradientBoosting"), "{error}");

    let mut unknown_compression = V1Builder::new(0x0001, linear_payload());
    unknown_compression.compression = 9;
    assert!(matches!(
        v1_error(v1::decode(&unknown_compression.build())),
        V1Error::UnknownCompression { code: 9 }
    ));
}

#[test]
fn an_unfitted_model_decodes_but_does_not_convert() {
    let mut b = Bincode::default();
    b.u8(0).f32(0.0).u8(1);
    let bytes = V1Builder::new(0x0001, b.0).build();
    v1::decode(&bytes).expect("decodes");
    let error = v1_error(v1::convert_to_v2(&bytes));
    assert!(matches!(error, V1Error::NotConvertible { .. }), "{error:?}");
}

#[test]
fn v2_input_is_rewritten_normalised() {
    for name in [
        "linear_regression.v2.apr",
        "mlp_xor.v2.apr",
        "kmeans.v2.apr",
    ] {
        let bytes = fixture(name);
        let original = AprFile::parse(&bytes).expect("parses");
        let v2 = v1::convert_to_v2(&bytes).expect("converts");
        let parsed = AprFile::parse(&v2).expect("re-parses");
        assert_eq!(parsed.model_type(), original.model_type());
        assert_eq!(parsed.tensors().len(), original.tensors().len());
        for (a, b) in parsed.iter().zip(original.iter()) {
            assert_eq!(
                (a.name(), a.dtype(), a.shape()),
                (b.name(), b.dtype(), b.shape())
            );
            assert_eq!(a.bytes(), b.bytes());
        }
        assert_eq!(parsed.metadata().as_map(), original.metadata().as_map());
        // Normalising twice changes nothing.
        assert_eq!(v1::convert_to_v2(&v2).expect("again"), v2);
    }
    assert!(v1::convert_to_v2(b"not a model").is_err());
    assert!(v1::convert_to_v2(&[]).is_err());
}
