//! Integration tests for the v2 reader and writer: aprender's fixtures, the
//! writer round trip (proptest), and mutations that must be rejected without
//! a panic.

use apr_runtime::format::{
    crc32, is_v1, AprFile, AprWriter, DType, FooterStatus, FormatError, ParseOptions,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

const V2_FIXTURES: [&str; 5] = [
    "dtypes.v2.apr",
    "kmeans.v2.apr",
    "linear_regression.v2.apr",
    "mlp_multiclass.v2.apr",
    "mlp_xor.v2.apr",
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn expected_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Parses and decodes every tensor; must never panic, whatever the bytes.
fn parse_and_decode(bytes: &[u8], opts: ParseOptions) -> Result<usize, FormatError> {
    let file = AprFile::parse_with(bytes, opts)?;
    let mut decoded = 0;
    for tensor in file.iter() {
        decoded += tensor.to_f32()?.len();
    }
    Ok(decoded)
}

#[test]
fn every_v2_fixture_reads() {
    for name in V2_FIXTURES {
        let bytes = fixture(name);
        let file = AprFile::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(file.header().version_major, 2, "{name}");
        assert!(
            matches!(file.footer(), FooterStatus::Verified { .. }),
            "{name}"
        );
        assert!(file.model_type().is_some(), "{name}");
        assert_eq!(file.tensors().len(), file.header().tensor_count as usize);
        for tensor in file.iter() {
            let values = tensor
                .to_f32()
                .unwrap_or_else(|e| panic!("{name}/{}: {e}", tensor.name()));
            assert_eq!(values.len(), tensor.numel());
        }
        // The same file without its footer is accepted, and says so.
        let file = AprFile::parse(&bytes[..bytes.len() - 4]).expect("no footer");
        assert_eq!(file.footer(), FooterStatus::Absent);
    }
}

#[test]
fn fixture_tensors_match_their_expected_values() {
    for (apr, json) in [
        ("kmeans.v2.apr", "kmeans.v2.expected.json"),
        (
            "linear_regression.v2.apr",
            "linear_regression.v2.expected.json",
        ),
        ("mlp_multiclass.v2.apr", "mlp_multiclass.v2.expected.json"),
        ("mlp_xor.v2.apr", "mlp_xor.v2.expected.json"),
    ] {
        let bytes = fixture(apr);
        let file = AprFile::parse(&bytes).expect("valid");
        let expected = expected_json(json);
        // Either a list of {name, shape, values} or an object name -> shape.
        let specs: Vec<(String, &Value)> = match expected.get("tensors") {
            Some(Value::Array(list)) => list
                .iter()
                .map(|spec| (spec["name"].as_str().expect("name").to_string(), spec))
                .collect(),
            Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            _ => panic!("{json}: no tensors"),
        };
        let mut checked_values = 0;
        for (name, spec) in specs {
            let name = name.as_str();
            let tensor = file.tensor(name).unwrap_or_else(|| panic!("{apr}: {name}"));
            let shape = spec.as_array().or_else(|| spec.get("shape")?.as_array());
            if let Some(shape) = shape {
                let shape: Vec<usize> = shape
                    .iter()
                    .filter_map(Value::as_u64)
                    .map(|d| d as usize)
                    .collect();
                assert_eq!(tensor.shape(), shape.as_slice(), "{apr}: {name}");
            }
            if let Some(values) = spec.get("values").and_then(Value::as_array) {
                let values: Vec<f32> = values
                    .iter()
                    .filter_map(Value::as_f64)
                    .map(|v| v as f32)
                    .collect();
                assert_eq!(
                    &*tensor.to_f32().expect("decodes"),
                    values.as_slice(),
                    "{apr}: {name}"
                );
                checked_values += 1;
            }
        }
        if apr.starts_with("kmeans") {
            assert_eq!(checked_values, 7, "{apr}: values compared");
        }
    }
}

#[test]
fn dtypes_fixture_dequantizes_like_aprender() {
    let bytes = fixture("dtypes.v2.apr");
    let file = AprFile::parse(&bytes).expect("valid");
    let expected = expected_json("dtypes.v2.expected.json");
    let by_name = expected["dequantized_by_aprender"]
        .as_object()
        .expect("an object");
    assert_eq!(by_name.len(), file.tensors().len());
    for (name, values) in by_name {
        let tensor = file.tensor(name).unwrap_or_else(|| panic!("{name}"));
        let expected: Vec<f32> = values
            .as_array()
            .expect("an array")
            .iter()
            .map(|v| v.as_f64().expect("a number") as f32)
            .collect();
        let decoded = tensor.to_f32().expect("decodes");
        assert_eq!(
            &*decoded,
            expected.as_slice(),
            "{name} ({})",
            tensor.dtype()
        );
    }
    let dtypes: Vec<DType> = file.tensors().iter().map(|t| t.dtype).collect();
    assert_eq!(dtypes, [DType::F16, DType::F32, DType::AprQ4, DType::AprQ8]);
}

#[test]
fn bad_fixtures_are_rejected_with_their_variant() {
    let err = |name: &str| match AprFile::parse(&fixture(name)) {
        Ok(_) => panic!("{name} was accepted"),
        Err(e) => e,
    };
    assert!(matches!(err("bad_empty.apr"), FormatError::Empty));
    assert!(matches!(
        err("bad_magic.apr"),
        FormatError::BadMagic { found } if &found == b"APRX"
    ));
    assert!(matches!(
        err("bad_truncated_header.apr"),
        FormatError::TruncatedHeader { length: 30 }
    ));
    match err("bad_header_crc.apr") {
        FormatError::HeaderChecksum { stored, computed } => assert_ne!(stored, computed),
        other => panic!("bad_header_crc.apr: {other}"),
    }
    match err("bad_footer_crc.apr") {
        FormatError::FooterChecksum {
            stored, computed, ..
        } => assert_ne!(stored, computed),
        other => panic!("bad_footer_crc.apr: {other}"),
    }
    // Every message is one readable line.
    for name in [
        "bad_empty.apr",
        "bad_magic.apr",
        "bad_truncated_header.apr",
        "bad_header_crc.apr",
        "bad_footer_crc.apr",
    ] {
        let message = err(name).to_string();
        assert!(!message.contains('\n') && message.len() > 20, "{message}");
    }
}

#[test]
fn v1_files_are_recognised_and_refused_by_the_v2_reader() {
    for name in [
        "decision_tree.v1.apr",
        "linear_regression.v1.apr",
        "logistic_regression.v1.apr",
    ] {
        let bytes = fixture(name);
        assert!(is_v1(&bytes), "{name}");
        assert!(matches!(
            AprFile::parse(&bytes),
            Err(FormatError::BadMagic { found }) if &found == b"APRN"
        ));
    }
    assert!(!is_v1(&fixture("kmeans.v2.apr")));
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn the_writer_reproduces_aprender_files_exactly() {
    // Re-writing a fixture with our writer, key order aside, gives the same
    // tensors; when the metadata serialises identically, the same bytes.
    let mut same_layout = 0;
    for name in V2_FIXTURES {
        let bytes = fixture(name);
        let file = AprFile::parse(&bytes).expect("valid");
        let mut writer = AprWriter::new();
        for (key, value) in file.metadata().as_map() {
            writer.metadata(key, value.clone());
        }
        for tensor in file.iter() {
            writer
                .add_tensor(
                    tensor.name(),
                    tensor.dtype(),
                    tensor.shape(),
                    tensor.bytes().to_vec(),
                )
                .expect("valid tensor");
        }
        let rewritten = writer.to_bytes();
        let again = AprFile::parse(&rewritten).expect("our output parses");
        assert_eq!(again.metadata(), file.metadata(), "{name}");
        assert_eq!(again.tensors(), file.tensors(), "{name}");
        for (a, b) in again.iter().zip(file.iter()) {
            assert_eq!(a.bytes(), b.bytes(), "{name}: {}", a.name());
        }
        // Same metadata length means the same layout, byte for byte outside the JSON.
        if again.header().metadata_size == file.header().metadata_size {
            let json_end = 64 + file.header().metadata_size as usize;
            assert_eq!(rewritten.len(), bytes.len(), "{name}");
            assert_eq!(
                &rewritten[json_end..bytes.len() - 4],
                &bytes[json_end..bytes.len() - 4],
                "{name}"
            );
            assert_eq!(&rewritten[4..40], &bytes[4..40], "{name}");
            same_layout += 1;
        }
    }
    assert_eq!(same_layout, V2_FIXTURES.len());
}

#[test]
fn every_single_byte_flip_of_every_fixture_is_rejected() {
    for name in V2_FIXTURES {
        let bytes = fixture(name);
        let mut mutated = bytes.clone();
        for at in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                mutated[at] ^= mask;
                assert!(
                    parse_and_decode(&mutated, ParseOptions::default()).is_err(),
                    "{name}: flipping byte {at} with {mask:#04x} was accepted"
                );
                // Without the footer check, anything goes, except a panic.
                let _ = parse_and_decode(
                    &mutated,
                    ParseOptions {
                        verify_footer_crc: false,
                    },
                );
                mutated[at] ^= mask;
            }
        }
    }
}

#[test]
fn every_truncation_of_every_fixture_is_rejected_except_the_missing_footer() {
    for name in V2_FIXTURES {
        let bytes = fixture(name);
        for len in 0..bytes.len() {
            let result = parse_and_decode(&bytes[..len], ParseOptions::default());
            if len == bytes.len() - 4 {
                assert!(result.is_ok(), "{name}: without footer");
            } else {
                assert!(
                    result.is_err(),
                    "{name}: truncated to {len} bytes was accepted"
                );
            }
        }
    }
}

/// Recomputes the header and footer CRCs so mutations reach the deeper rules.
fn with_valid_checksums(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 68 {
        let mut header = bytes[..40].to_vec();
        header.extend_from_slice(&bytes[44..64]);
        bytes[40..44].copy_from_slice(&crc32(&header).to_le_bytes());
        let body = bytes.len() - 4;
        let crc = crc32(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
    }
    bytes
}

fn dtype_strategy() -> impl Strategy<Value = DType> {
    proptest::sample::select(DType::ALL.to_vec())
}

fn json_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-z]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// (name, dtype, shape, stored bytes) with a shape of at most 8 dims.
fn tensor_strategy() -> impl Strategy<Value = (String, DType, Vec<usize>, Vec<u8>)> {
    (
        "\\PC{0,10}",
        dtype_strategy(),
        proptest::collection::vec(0usize..6, 0..=8),
    )
        .prop_flat_map(|(name, dtype, shape)| {
            let numel: usize = shape.iter().product();
            let size = dtype.stored_size(numel).expect("small") as usize;
            (
                Just(name),
                Just(dtype),
                Just(shape),
                proptest::collection::vec(any::<u8>(), size),
            )
        })
}

proptest! {

    #[test]
    fn writer_round_trip(
        model_type in "\\PC{0,12}",
        metadata in proptest::collection::btree_map("\\PC{0,8}", json_strategy(), 0..6),
        tensors in proptest::collection::vec(tensor_strategy(), 0..8),
        f32_values in proptest::collection::vec(any::<f32>(), 0..40),
    ) {
        let mut writer = AprWriter::new();
        writer.model_type(&model_type);
        for (key, value) in &metadata {
            writer.metadata(key, value.clone());
        }
        let mut expected = std::collections::BTreeMap::new();
        for (name, dtype, shape, bytes) in tensors {
            if expected.contains_key(&name) {
                let duplicate = writer.add_tensor(&name, dtype, &shape, bytes);
                prop_assert!(matches!(duplicate, Err(FormatError::DuplicateTensor { .. })), "duplicate accepted");
                continue;
            }
            writer.add_tensor(&name, dtype, &shape, bytes.clone()).expect("valid tensor");
            expected.insert(name, (dtype, shape, bytes));
        }
        let f32_name = "\u{10FFFF}f32".to_string();
        writer.add_f32(&f32_name, &[f32_values.len()], &f32_values).expect("valid");
        let f32_bytes: Vec<u8> = f32_values.iter().flat_map(|v| v.to_le_bytes()).collect();
        expected.insert(f32_name.clone(), (DType::F32, vec![f32_values.len()], f32_bytes));

        let bytes = writer.to_bytes();
        prop_assert_eq!((bytes.len() - 4) % 64, 0);
        let file = AprFile::parse(&bytes).expect("the writer's output parses");
        prop_assert!(matches!(file.footer(), FooterStatus::Verified { .. }), "footer not verified");

        let written: Map<String, Value> = writer.metadata_object();
        prop_assert_eq!(file.metadata().as_map(), &written);
        for (key, value) in &metadata {
            if key != "model_type" {
                prop_assert_eq!(file.metadata().get(key), Some(value));
            }
        }
        let model_type_key_set = metadata.contains_key("model_type");
        if !model_type_key_set {
            prop_assert_eq!(file.model_type(), Some(model_type.as_str()).filter(|t| !t.is_empty()));
        }

        prop_assert_eq!(file.tensors().len(), expected.len());
        for (info, (name, (dtype, shape, stored))) in file.tensors().iter().zip(&expected) {
            prop_assert_eq!(&info.name, name);
            prop_assert_eq!(info.dtype, *dtype);
            prop_assert_eq!(&info.shape, shape);
            prop_assert_eq!(info.offset % 64, 0);
            let tensor = file.tensor(name).expect("binary search finds it");
            prop_assert_eq!(tensor.bytes(), stored.as_slice());
            let decoded = tensor.to_f32().expect("every dtype decodes");
            prop_assert_eq!(decoded.len(), tensor.numel());
        }
        let decoded = file.tensor(&f32_name).expect("present").to_f32().expect("f32");
        let decoded_bits: Vec<u32> = decoded.iter().map(|v| v.to_bits()).collect();
        let input_bits: Vec<u32> = f32_values.iter().map(|v| v.to_bits()).collect();
        prop_assert_eq!(decoded_bits, input_bits);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_and_decode(&bytes, ParseOptions::default());
        let mut with_magic = b"APR\0\x02\x00".to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = parse_and_decode(&with_checksums_for_any_length(with_magic), ParseOptions::default());
    }

    #[test]
    fn mutated_files_with_fixed_checksums_never_panic(
        fixture_index in 0..V2_FIXTURES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        truncate in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = fixture(V2_FIXTURES[fixture_index]);
        for (at, value) in edits {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        if let Some(cut) = truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let bytes = with_valid_checksums(bytes);
        let _ = parse_and_decode(&bytes, ParseOptions::default());
        let _ = parse_and_decode(&bytes, ParseOptions { verify_footer_crc: false });
    }

    #[test]
    fn mutated_headers_with_fixed_checksums_never_panic(
        fixture_index in 0..V2_FIXTURES.len(),
        field in 0usize..5,
        value in any::<u64>(),
    ) {
        // Offsets and counts set to arbitrary (often huge) values.
        let mut bytes = fixture(V2_FIXTURES[fixture_index]);
        let (at, width) = [(8, 4), (12, 8), (20, 4), (24, 8), (32, 8)][field];
        bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
        let bytes = with_valid_checksums(bytes);
        let _ = parse_and_decode(&bytes, ParseOptions::default());
    }
}

/// Header CRC fixed when there is a whole header (any length).
fn with_checksums_for_any_length(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 64 {
        let mut header = bytes[..40].to_vec();
        header.extend_from_slice(&bytes[44..64]);
        bytes[40..44].copy_from_slice(&crc32(&header).to_le_bytes());
    }
    bytes
}

#[test]
fn the_writer_quantizes_like_aprender() {
    let bytes = fixture("dtypes.v2.apr");
    let file = AprFile::parse(&bytes).expect("valid");
    let expected = expected_json("dtypes.v2.expected.json");
    let source: Vec<f32> = expected["source_values"]
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_f64().expect("a number") as f32)
        .collect();
    for tensor in file.iter() {
        let mut writer = AprWriter::new();
        writer
            .add_f32_as("t", tensor.dtype(), tensor.shape(), &source)
            .expect("encodes");
        let ours = writer.to_bytes();
        let ours = AprFile::parse(&ours).expect("valid");
        let ours = ours.tensor("t").expect("present");
        assert_eq!(ours.bytes(), tensor.bytes(), "{}", tensor.name());
    }
    let mut writer = AprWriter::new();
    assert!(matches!(
        writer.add_f32_as("t", DType::Q4K, &[256], &[0.0; 256]),
        Err(FormatError::UnsupportedDType { .. })
    ));
    assert!(matches!(
        writer.add_f32_as("t", DType::F16, &[3], &[0.0; 2]),
        Err(FormatError::SizeMismatch { .. })
    ));
}
