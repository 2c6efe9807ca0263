//! aprender's v2 fixtures reproduce aprender's outputs, in place or
//! realigned.

use crate::reference::*;
use crate::support::*;

#[test]
fn linear_regression_v2_fixture_is_bit_exact() -> TestResult {
    let exp = expected("linear_regression.v2.expected.json");
    let bytes = fixture("linear_regression.v2.apr");
    let inputs = rows(&exp["inputs"]);
    let want = f32s(&exp["outputs"]);
    for table in kernels::available() {
        let model = Model::from_bytes(&bytes)?.with_kernels(table);
        assert_eq!(model.family(), ModelFamily::LinearRegression);
        assert_eq!((model.n_features(), model.n_outputs()), (3, 1));
        let mut scratch = model.scratch();
        for (x, &y) in inputs.iter().zip(&want) {
            let out = model.predict(x, &mut scratch)?;
            assert_eq!(out.class, None);
            assert_eq!(out.probabilities, None);
            assert_eq!(
                out.outputs[0].to_bits(),
                y.to_bits(),
                "{}: {x:?} gave {}, aprender {y}",
                table.name,
                out.outputs[0]
            );
            assert_eq!(out.prediction(), Prediction::Value(y));
        }
        let flat: Vec<f32> = inputs.concat();
        let batch = model.predict_batch(&flat, inputs.len())?;
        let got: Vec<u32> = batch.outputs().iter().map(|v| v.to_bits()).collect();
        let want_bits: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want_bits, "{} batch", table.name);
    }
    Ok(())
}

#[test]
fn kmeans_v2_fixture_matches_aprender() -> TestResult {
    let exp = expected("kmeans.v2.expected.json");
    let bytes = fixture("kmeans.v2.apr");
    let inputs = rows(&exp["inputs"]);
    let want = usizes(&exp["outputs_cluster"]);
    let centroids = exp["tensors"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "centroids"))
        .map(|t| f32s(&t["values"]))
        .unwrap_or_default();
    for table in kernels::available() {
        let model = Model::from_bytes(&bytes)?.with_kernels(table);
        assert_eq!(model.family(), ModelFamily::KMeans);
        assert_eq!((model.n_features(), model.n_outputs()), (2, 3));
        let mut scratch = model.scratch();
        for (x, &c) in inputs.iter().zip(&want) {
            let out = model.predict(x, &mut scratch)?;
            assert_eq!(out.class, Some(c), "{}: {x:?}", table.name);
            assert_eq!(out.prediction(), Prediction::Class(c));
            let dists: Vec<f64> = centroids
                .chunks(2)
                .map(|cen| {
                    cen.iter()
                        .zip(x)
                        .map(|(&a, &b)| ((a - b) as f64).powi(2))
                        .sum()
                })
                .collect();
            assert_close(out.outputs, &dists, 1e-6, "squared distances");
        }
        let batch = model.predict_batch(&inputs.concat(), inputs.len())?;
        assert_eq!(batch.classes(), Some(want.as_slice()));
    }
    Ok(())
}

#[test]
fn mlp_xor_fixture_matches_aprender() -> TestResult {
    let exp = expected("mlp_xor.v2.expected.json");
    let bytes = fixture("mlp_xor.v2.apr");
    let inputs = rows(&exp["inputs"]);
    let want = f32s(&exp["outputs"]);
    for table in kernels::available() {
        let model = Model::from_bytes(&bytes)?.with_kernels(table);
        assert_eq!(model.family(), ModelFamily::NeuralSequential);
        assert_eq!((model.n_features(), model.n_outputs()), (2, 1));
        let mut scratch = model.scratch();
        for (x, &y) in inputs.iter().zip(&want) {
            let out = model.predict(x, &mut scratch)?;
            assert_eq!(out.class, None, "a Sigmoid-ended network predicts a value");
            assert_close(out.outputs, &[y as f64], 1e-5, table.name);
        }
        let batch = model.predict_batch(&inputs.concat(), inputs.len())?;
        assert_close(batch.outputs(), &to_f64(&want), 1e-5, table.name);
    }
    Ok(())
}

#[test]
fn mlp_multiclass_fixture_matches_aprender() -> TestResult {
    let exp = expected("mlp_multiclass.v2.expected.json");
    let bytes = fixture("mlp_multiclass.v2.apr");
    let inputs = rows(&exp["inputs"]);
    let want = rows(&exp["outputs"]);
    let want_class = usizes(&exp["outputs_argmax"]);
    for table in kernels::available() {
        let model = Model::from_bytes(&bytes)?.with_kernels(table);
        assert_eq!((model.n_features(), model.n_outputs()), (4, 3));
        assert_eq!(model.n_classes(), Some(3));
        let mut scratch = model.scratch();
        for ((x, y), &c) in inputs.iter().zip(&want).zip(&want_class) {
            let out = model.predict(x, &mut scratch)?;
            assert_close(out.outputs, &to_f64(y), 1e-5, table.name);
            assert_eq!(out.probabilities, Some(out.outputs));
            assert_eq!(out.class, Some(c), "{}: {x:?}", table.name);
        }
        let batch = model.predict_batch(&inputs.concat(), inputs.len())?;
        assert_close(batch.outputs(), &to_f64(&want.concat()), 1e-5, table.name);
        assert_eq!(batch.classes(), Some(want_class.as_slice()));
        // The same batch with the hidden activations in the (reused) scratch,
        // then single rows in that scratch again.
        for _ in 0..2 {
            let reused = model.predict_batch_with(&inputs.concat(), inputs.len(), &mut scratch)?;
            assert_eq!(reused, batch);
        }
        let out = model.predict(&inputs[3], &mut scratch)?;
        assert_close(
            out.outputs,
            &to_f64(&want[3]),
            1e-5,
            "single row after a batch",
        );
    }
    Ok(())
}

#[test]
fn dtypes_fixture_is_not_a_model_and_says_what_it_found() {
    let err = load_err(&fixture("dtypes.v2.apr"));
    let msg = err.to_string();
    assert!(matches!(err, ModelError::Unsupported { .. }), "{err:?}");
    assert!(msg.contains("`dtype-zoo`"), "{msg}");
    for t in ["values.f16", "values.f32", "values.q4", "values.q8"] {
        assert!(msg.contains(t), "{msg}");
    }
}

/// The dtype fixture's tensors, re-wrapped (same bytes, same dtype) as the
/// weight row of a linear model: each one-hot input must read back aprender's
/// dequantized value exactly, and a dense input must match the reference dot.
#[test]
fn dtypes_fixture_weights_dequantize_like_aprender() -> TestResult {
    let exp = expected("dtypes.v2.expected.json");
    let bytes = fixture("dtypes.v2.apr");
    let file = AprFile::parse(&bytes)?;
    for tensor in file.iter() {
        let name = tensor.name().to_owned();
        let want = f32s(&exp["dequantized_by_aprender"][&name]);
        let n = tensor.numel();
        assert_eq!(want.len(), n, "{name}");
        let mut writer = AprWriter::new();
        writer.model_type("LinearRegression");
        writer.add_tensor("weight", tensor.dtype(), &[1, n], tensor.bytes().to_vec())?;
        let model_bytes = build(&writer);
        let model = Model::from_bytes(&model_bytes)?;
        let storage = model.weight_storage();
        assert_eq!(storage.parameters, n);
        if tensor.dtype() != DType::F32 {
            assert_eq!(storage.converted, 1, "{name} is dequantized at load");
        }
        let mut scratch = model.scratch();
        let mut x = vec![0.0; n];
        for (i, &w) in want.iter().enumerate() {
            x.fill(0.0);
            x[i] = 1.0;
            let out = model.predict(&x, &mut scratch)?;
            assert_eq!(out.outputs[0].to_bits(), w.to_bits(), "{name}[{i}]");
        }
        let dense: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect();
        let out = model.predict(&dense, &mut scratch)?;
        let reference = affine(&want, None, &to_f64(&dense), 1);
        assert_close(out.outputs, &reference, 1e-6, &name);
    }
    Ok(())
}

#[test]
fn fixture_weights_are_used_in_place_when_aligned() -> TestResult {
    let bytes = fixture("mlp_multiclass.v2.apr");
    let words = aligned(&bytes);
    let model = Model::from_bytes(as_bytes(&words, bytes.len()))?;
    let storage = model.weight_storage();
    assert_eq!(
        (storage.in_place, storage.realigned, storage.converted),
        (6, 0, 0)
    );
    assert_eq!(storage.parameters, 32 * 4 + 32 + 16 * 32 + 16 + 3 * 16 + 3);
    Ok(())
}

#[test]
fn unaligned_bytes_are_realigned_once_with_the_same_answers() -> TestResult {
    let bytes = fixture("mlp_multiclass.v2.apr");
    let words = aligned(&bytes);
    let in_place = Model::from_bytes(as_bytes(&words, bytes.len()))?;
    let mut scratch = in_place.scratch();
    let x = [0.3, -1.2, 0.7, 2.0];
    let want = in_place.predict(&x, &mut scratch)?.outputs.to_vec();
    for shift in [4, 16, 32, 48] {
        // `bytes` at `shift` mod 64 (F32 still 4-aligned, so viewable).
        let mut storage = vec![0u64; bytes.len().div_ceil(8) + 16];
        let base = bytemuck::cast_slice::<u64, u8>(&storage)
            .as_ptr()
            .align_offset(64);
        let at = base + shift;
        bytemuck::cast_slice_mut::<u64, u8>(&mut storage)[at..at + bytes.len()]
            .copy_from_slice(&bytes);
        let shifted = &bytemuck::cast_slice::<u64, u8>(&storage)[at..at + bytes.len()];
        let model = Model::from_bytes(shifted)?;
        let storage = model.weight_storage();
        assert_eq!(
            (storage.in_place, storage.realigned, storage.converted),
            (0, 6, 0),
            "{shift} mod 64"
        );
        let mut scratch = model.scratch();
        let got = model.predict(&x, &mut scratch)?.outputs.to_vec();
        assert_eq!(got, want, "{shift} mod 64");
    }
    Ok(())
}
