//! Every model family, end to end: aprender's fixtures reproduce aprender's
//! outputs, and models built with `AprWriter` match a straightforward
//! reference computation (in `f64`) on every kernel table this CPU runs.

mod common;
use apr_runtime::format::{f32_to_f16, AprFile, AprWriter, DType};
use apr_runtime::kernels;
use apr_runtime::model::{Model, ModelError, ModelFamily, PredictError, Prediction};
use common::{aligned, as_bytes};
use serde_json::{json, Value};

type TestResult = Result<(), Box<dyn std::error::Error>>;

// ---------------------------------------------------------------------------
// Helpers

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn expected(name: &str) -> Value {
    let text = String::from_utf8(fixture(name)).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {name}: {e}"))
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, found {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
        .collect()
}

fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array of rows, found {v}"))
        .iter()
        .map(f32s)
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, found {v}"))
        .iter()
        .map(|x| x.as_u64().unwrap_or(u64::MAX) as usize)
        .collect()
}

/// `|a - b| <= rel * max(|a|, |b|)`, with a floor of `rel * 1e-3` so values
/// that should be zero compare sensibly.
fn assert_close(found: &[f32], want: &[f64], rel: f64, what: &str) {
    assert_eq!(found.len(), want.len(), "{what}: lengths differ");
    for (i, (&f, &w)) in found.iter().zip(want).enumerate() {
        let scale = (f as f64).abs().max(w.abs()).max(1e-3);
        assert!(
            ((f as f64) - w).abs() <= rel * scale,
            "{what}[{i}]: found {f}, want {w} (relative error {:e})",
            ((f as f64) - w).abs() / scale
        );
    }
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// A small deterministic generator (64-bit LCG), values in [-1, 1).
struct Lcg(u64);

impl Lcg {
    fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
    fn uniform(&mut self) -> f32 {
        (self.next_u32() as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    }
    /// Multiples of 1/64 in [-2, 2): exact in F16 and BF16.
    fn dyadic(&mut self) -> f32 {
        (self.next_u32() % 256) as f32 / 64.0 - 2.0
    }
    fn below(&mut self, n: u32) -> u32 {
        self.next_u32() % n
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform()).collect()
    }
}

fn build(writer: &AprWriter) -> Vec<u8> {
    writer.to_bytes()
}

fn load_err(bytes: &[u8]) -> ModelError {
    match Model::from_bytes(bytes) {
        Ok(m) => panic!("expected a load error, got a {} model", m.family()),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------
// Reference computations (f64)

#[derive(Clone, Copy, Debug)]
enum Act {
    Relu,
    Sigmoid,
    Tanh,
    Gelu,
    Leaky(f32),
    Softmax,
}

impl Act {
    fn name(self) -> String {
        match self {
            Act::Relu => "ReLU".into(),
            Act::Sigmoid => "Sigmoid".into(),
            Act::Tanh => "Tanh".into(),
            Act::Gelu => "GELU".into(),
            Act::Leaky(a) => format!("LeakyReLU({a})"),
            Act::Softmax => "Softmax".into(),
        }
    }

    fn apply(self, v: &mut [f64]) {
        match self {
            Act::Relu => v.iter_mut().for_each(|x| *x = x.max(0.0)),
            Act::Sigmoid => v.iter_mut().for_each(|x| *x = 1.0 / (1.0 + (-*x).exp())),
            Act::Tanh => v.iter_mut().for_each(|x| *x = x.tanh()),
            Act::Gelu => v.iter_mut().for_each(|x| {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                *x = 0.5 * *x * (1.0 + (c * (*x + 0.044715 * x.powi(3))).tanh());
            }),
            Act::Leaky(a) => v
                .iter_mut()
                .for_each(|x| *x = if *x >= 0.0 { *x } else { a as f64 * *x }),
            Act::Softmax => {
                let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                v.iter_mut().for_each(|x| *x = (*x - m).exp());
                let s: f64 = v.iter().sum();
                v.iter_mut().for_each(|x| *x /= s);
            }
        }
    }
}

fn affine(w: &[f32], b: Option<&[f32]>, x: &[f64], n_out: usize) -> Vec<f64> {
    let n_in = x.len();
    (0..n_out)
        .map(|o| {
            let dot: f64 = (0..n_in).map(|i| w[o * n_in + i] as f64 * x[i]).sum();
            dot + b.map_or(0.0, |b| b[o] as f64)
        })
        .collect()
}

enum RefLayer {
    Linear {
        w: Vec<f32>,
        b: Option<Vec<f32>>,
        n_in: usize,
        n_out: usize,
    },
    Act(Act),
}

fn reference_mlp(layers: &[RefLayer], x: &[f32]) -> Vec<f64> {
    let mut v = to_f64(x);
    for layer in layers {
        match layer {
            RefLayer::Linear { w, b, n_out, .. } => v = affine(w, b.as_deref(), &v, *n_out),
            RefLayer::Act(a) => a.apply(&mut v),
        }
    }
    v
}

/// Writes `layers` as a NeuralSequential file, weights in `dtype`.
fn write_mlp(layers: &[RefLayer], dtype: DType) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut writer = AprWriter::new();
    writer.model_type("NeuralSequential");
    let mut names = Vec::new();
    let mut param = 0;
    for layer in layers {
        match layer {
            RefLayer::Linear { w, b, n_in, n_out } => {
                names.push(format!("Linear({n_in}->{n_out})"));
                add_weights(&mut writer, &param.to_string(), dtype, &[*n_out, *n_in], w)?;
                param += 1;
                if let Some(b) = b {
                    writer.add_f32(&param.to_string(), &[*n_out], b)?;
                    param += 1;
                }
            }
            RefLayer::Act(a) => names.push(a.name()),
        }
    }
    writer.metadata("layers", json!(names));
    Ok(build(&writer))
}

/// Adds `values` as `dtype`, encoded here (independently of the reader).
fn add_weights(
    writer: &mut AprWriter,
    name: &str,
    dtype: DType,
    shape: &[usize],
    values: &[f32],
) -> Result<(), Box<dyn std::error::Error>> {
    let bytes: Vec<u8> = match dtype {
        DType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::F16 => values
            .iter()
            .flat_map(|&v| f32_to_f16(v).to_le_bytes())
            .collect(),
        DType::BF16 => values
            .iter()
            .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
            .collect(),
        DType::F64 => values
            .iter()
            .flat_map(|&v| (v as f64).to_le_bytes())
            .collect(),
        DType::AprQ8 => {
            let scale = 1.0f32 / 64.0;
            let mut b = scale.to_le_bytes().to_vec();
            b.extend(values.iter().map(|&v| ((v / scale).round() as i8) as u8));
            b
        }
        DType::AprQ4 => {
            // One scale of 0.25 (exact in f16) per block; values must be
            // multiples of 0.25 in [-2, 1.75].
            let mut b = Vec::new();
            for block in values.chunks(32) {
                b.extend(f32_to_f16(0.25).to_le_bytes());
                let mut nibbles = [0u8; 16];
                for (k, &v) in block.iter().enumerate() {
                    let q = ((v / 0.25).round() as i32 + 8).clamp(0, 15) as u8;
                    nibbles[k / 2] |= if k & 1 == 0 { q } else { q << 4 };
                }
                b.extend(nibbles);
            }
            b
        }
        other => panic!("no test encoder for {other:?}"),
    };
    writer.add_tensor(name, dtype, shape, bytes)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// aprender fixtures (v2)

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

// ---------------------------------------------------------------------------
// aprender fixtures (v1, converted)

#[cfg(feature = "v1")]
mod v1 {
    use super::*;
    use apr_runtime::format::v1::convert_to_v2;

    #[test]
    fn linear_regression_v1_fixture_is_bit_exact() -> TestResult {
        let exp = expected("linear_regression.v1.expected.json");
        let bytes = convert_to_v2(&fixture("linear_regression.v1.apr"))?;
        let inputs = rows(&exp["inputs"]);
        let want = f32s(&exp["outputs"]);
        for table in kernels::available() {
            let model = Model::from_bytes(&bytes)?.with_kernels(table);
            assert_eq!(model.family(), ModelFamily::LinearRegression);
            let mut scratch = model.scratch();
            for (x, &y) in inputs.iter().zip(&want) {
                let out = model.predict(x, &mut scratch)?;
                assert_eq!(
                    out.outputs[0].to_bits(),
                    y.to_bits(),
                    "{}: {x:?}",
                    table.name
                );
            }
            let batch = model.predict_batch(&inputs.concat(), inputs.len())?;
            let got: Vec<u32> = batch.outputs().iter().map(|v| v.to_bits()).collect();
            let want_bits: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want_bits, "{} batch", table.name);
        }
        Ok(())
    }

    #[test]
    fn logistic_regression_v1_fixture_matches_aprender() -> TestResult {
        let exp = expected("logistic_regression.v1.expected.json");
        let bytes = convert_to_v2(&fixture("logistic_regression.v1.apr"))?;
        let inputs = rows(&exp["inputs"]);
        let want_p = f32s(&exp["outputs_proba_class1"]);
        let want_class = usizes(&exp["outputs_class"]);
        for table in kernels::available() {
            let model = Model::from_bytes(&bytes)?.with_kernels(table);
            assert_eq!(model.family(), ModelFamily::LogisticRegression);
            assert_eq!(model.n_classes(), Some(2));
            let mut scratch = model.scratch();
            for ((x, &p), &c) in inputs.iter().zip(&want_p).zip(&want_class) {
                let out = model.predict(x, &mut scratch)?;
                assert_close(out.outputs, &[p as f64], 1e-5, table.name);
                let probs = out.probabilities.unwrap_or_default();
                assert_close(
                    probs,
                    &[1.0 - out.outputs[0] as f64, out.outputs[0] as f64],
                    1e-7,
                    "[1-p, p]",
                );
                assert_eq!(out.class, Some(c), "{}: {x:?}", table.name);
            }
            let batch = model.predict_batch(&inputs.concat(), inputs.len())?;
            assert_close(batch.outputs(), &to_f64(&want_p), 1e-5, table.name);
            assert_eq!(batch.classes(), Some(want_class.as_slice()));
        }
        Ok(())
    }

    #[test]
    fn decision_tree_v1_fixture_matches_aprender() -> TestResult {
        let exp = expected("decision_tree.v1.expected.json");
        let bytes = convert_to_v2(&fixture("decision_tree.v1.apr"))?;
        let inputs = rows(&exp["inputs"]);
        let want = usizes(&exp["outputs_class"]);
        let model = Model::from_bytes(&bytes)?;
        assert_eq!(model.family(), ModelFamily::DecisionTree);
        assert_eq!(model.n_features(), 2);
        let mut scratch = model.scratch();
        for (x, &c) in inputs.iter().zip(&want) {
            let out = model.predict(x, &mut scratch)?;
            assert_eq!(out.class, Some(c), "{x:?}");
            let one_hot: Vec<f32> = (0..model.n_outputs())
                .map(|k| if k == c { 1.0 } else { 0.0 })
                .collect();
            assert_eq!(out.outputs, one_hot.as_slice());
            assert_eq!(out.probabilities, Some(one_hot.as_slice()));
        }
        let batch = model.predict_batch(&inputs.concat(), inputs.len())?;
        assert_eq!(batch.classes(), Some(want.as_slice()));
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Models built with AprWriter vs a reference computation

#[test]
fn multi_output_linear_regression_matches_reference() -> TestResult {
    let mut rng = Lcg(7);
    let (n_in, n_out) = (37, 5);
    let w = rng.vec(n_in * n_out);
    let b = rng.vec(n_out);
    let mut writer = AprWriter::new();
    writer.model_type("LinearRegression");
    writer.add_f32("weight", &[n_out, n_in], &w)?;
    writer.add_f32("bias", &[n_out], &b)?;
    let bytes = build(&writer);
    let x: Vec<Vec<f32>> = (0..9).map(|_| rng.vec(n_in)).collect();
    for table in kernels::available() {
        let model = Model::from_bytes(&bytes)?.with_kernels(table);
        assert_eq!((model.n_features(), model.n_outputs()), (n_in, n_out));
        let mut scratch = model.scratch();
        for row in &x {
            let out = model.predict(row, &mut scratch)?;
            assert_close(
                out.outputs,
                &affine(&w, Some(&b), &to_f64(row), n_out),
                1e-5,
                table.name,
            );
            assert!(matches!(out.prediction(), Prediction::Values(v) if v.len() == n_out));
        }
        let batch = model.predict_batch(&x.concat(), x.len())?;
        assert_eq!(batch.len(), x.len());
        for (i, row) in x.iter().enumerate() {
            let out = batch.row(i).ok_or("missing row")?;
            assert_close(
                out.outputs,
                &affine(&w, Some(&b), &to_f64(row), n_out),
                1e-5,
                "batch",
            );
        }
    }
    Ok(())
}

#[test]
fn linear_model_without_model_type_is_recognised() -> TestResult {
    let mut writer = AprWriter::new();
    writer.add_f32("weight", &[2, 2], &[1.0, 2.0, 3.0, 4.0])?;
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    assert_eq!(model.family(), ModelFamily::LinearRegression);
    let mut scratch = model.scratch();
    let out = model.predict(&[1.0, -1.0], &mut scratch)?;
    assert_eq!(out.outputs, &[-1.0, -1.0]);
    assert_eq!(out.prediction(), Prediction::Values(vec![-1.0, -1.0]));

    let mut writer = AprWriter::new();
    writer.add_f32("weight", &[1, 2], &[1.0, 2.0])?;
    writer.add_f32("bias", &[1], &[0.5])?;
    writer.add_f32("extra", &[1], &[0.5])?;
    let err = load_err(&build(&writer));
    assert!(matches!(err, ModelError::Unsupported { ref model_type, .. } if model_type.is_empty()));
    assert!(err.to_string().contains("bias, extra, weight"), "{err}");
    Ok(())
}

#[test]
fn coefficients_naming_works_for_linear_and_logistic() -> TestResult {
    for family in ["LinearRegression", "LogisticRegression"] {
        let mut writer = AprWriter::new();
        writer.model_type(family);
        writer.add_f32("coefficients", &[3], &[0.5, -1.0, 2.0])?;
        writer.add_f32("intercept", &[1], &[0.25])?;
        let bytes = build(&writer);
        let model = Model::from_bytes(&bytes)?;
        let mut scratch = model.scratch();
        let out = model.predict(&[1.0, 1.0, 1.0], &mut scratch)?;
        let z = 0.5f32 - 1.0 + 2.0 + 0.25;
        if family == "LinearRegression" {
            assert_eq!(out.outputs, &[z]);
        } else {
            let p = 1.0 / (1.0 + (-(z as f64)).exp());
            assert_close(out.outputs, &[p], 1e-6, family);
            assert_eq!(out.class, Some(1));
            assert_eq!(out.prediction(), Prediction::Class(1));
        }
    }
    Ok(())
}

#[test]
fn multinomial_logistic_regression_matches_reference() -> TestResult {
    let mut rng = Lcg(11);
    let (n_in, k) = (6, 4);
    let w: Vec<f32> = rng.vec(n_in * k).iter().map(|v| v * 3.0).collect();
    let b = rng.vec(k);
    let mut writer = AprWriter::new();
    writer.model_type("LogisticRegression");
    writer.add_f32("weight", &[k, n_in], &w)?;
    writer.add_f32("bias", &[k], &b)?;
    let bytes = build(&writer);
    let xs: Vec<Vec<f32>> = (0..20).map(|_| rng.vec(n_in)).collect();
    for table in kernels::available() {
        let model = Model::from_bytes(&bytes)?.with_kernels(table);
        assert_eq!(model.n_classes(), Some(k));
        let mut scratch = model.scratch();
        let mut classes = Vec::new();
        for x in &xs {
            let mut want = affine(&w, Some(&b), &to_f64(x), k);
            Act::Softmax.apply(&mut want);
            let out = model.predict(x, &mut scratch)?;
            assert_close(out.outputs, &want, 1e-5, table.name);
            assert_eq!(out.probabilities, Some(out.outputs));
            let best = (0..k).fold(0, |best, i| if want[i] > want[best] { i } else { best });
            assert_eq!(out.class, Some(best));
            classes.push(best);
        }
        let batch = model.predict_batch(&xs.concat(), xs.len())?;
        assert_eq!(batch.classes(), Some(classes.as_slice()));
        let row = batch.row(3).ok_or("row 3")?;
        assert_eq!(row.probabilities, Some(row.outputs));
    }
    Ok(())
}

#[test]
fn binary_logistic_batch_has_two_probabilities_per_row() -> TestResult {
    let mut writer = AprWriter::new();
    writer.model_type("LogisticRegression");
    writer.add_f32("coefficients", &[2], &[1.0, -1.0])?;
    writer.add_f32("intercept", &[1], &[0.0])?;
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    let batch = model.predict_batch(&[0.0, 0.0, 3.0, 0.0, 0.0, 3.0], 3)?;
    let row0 = batch.row(0).ok_or("row 0")?;
    assert_eq!(row0.outputs, &[0.5]);
    assert_eq!(row0.probabilities, Some(&[0.5, 0.5][..]));
    assert_eq!(row0.class, Some(1), "p = 0.5 goes to class 1 (p >= 0.5)");
    assert_eq!(batch.row(1).and_then(|r| r.class), Some(1));
    assert_eq!(batch.row(2).and_then(|r| r.class), Some(0));
    let p = batch
        .row(1)
        .and_then(|r| r.probabilities)
        .unwrap_or_default();
    assert_close(
        p,
        &[
            1.0 - 1.0 / (1.0 + (-3.0f64).exp()),
            1.0 / (1.0 + (-3.0f64).exp()),
        ],
        1e-6,
        "p",
    );
    Ok(())
}

/// A random pre-order tree over `n_features` features with leaves in
/// `0..n_classes`, as the six node arrays.
struct TreeArrays {
    features: Vec<f32>,
    thresholds: Vec<f32>,
    classes: Vec<f32>,
    left: Vec<f32>,
    right: Vec<f32>,
}

impl TreeArrays {
    fn random(rng: &mut Lcg, depth: u32, n_features: u32, n_classes: u32) -> Self {
        let mut t = TreeArrays {
            features: vec![],
            thresholds: vec![],
            classes: vec![],
            left: vec![],
            right: vec![],
        };
        t.grow(rng, depth, n_features, n_classes);
        t
    }

    fn grow(&mut self, rng: &mut Lcg, depth: u32, n_features: u32, n_classes: u32) -> usize {
        let me = self.features.len();
        let leaf = depth == 0 || (me > 0 && rng.below(4) == 0);
        self.features.push(if leaf {
            -1.0
        } else {
            rng.below(n_features) as f32
        });
        self.thresholds.push(if leaf { 0.0 } else { rng.uniform() });
        self.classes.push(if leaf {
            rng.below(n_classes) as f32
        } else {
            0.0
        });
        self.left.push(-1.0);
        self.right.push(-1.0);
        if !leaf {
            let l = self.grow(rng, depth - 1, n_features, n_classes);
            let r = self.grow(rng, depth - 1, n_features, n_classes);
            self.left[me] = l as f32;
            self.right[me] = r as f32;
        }
        me
    }

    fn classify(&self, x: &[f32]) -> usize {
        let mut i = 0;
        while self.features[i] >= 0.0 {
            let f = self.features[i] as usize;
            i = if x[f] <= self.thresholds[i] {
                self.left[i]
            } else {
                self.right[i]
            } as usize;
        }
        self.classes[i] as usize
    }

    fn write(&self, writer: &mut AprWriter, prefix: &str) -> TestResult {
        let n = self.features.len();
        let samples = vec![1.0; n];
        for (name, values) in [
            ("node_features", &self.features),
            ("node_thresholds", &self.thresholds),
            ("node_classes", &self.classes),
            ("node_samples", &samples),
            ("node_left_child", &self.left),
            ("node_right_child", &self.right),
        ] {
            writer.add_f32(&format!("{prefix}{name}"), &[n], values)?;
        }
        Ok(())
    }
}

#[test]
fn decision_tree_matches_reference_walk() -> TestResult {
    let mut rng = Lcg(3);
    let tree = TreeArrays::random(&mut rng, 6, 5, 4);
    let mut writer = AprWriter::new();
    writer.model_type("DecisionTreeClassifier");
    writer.metadata("n_features", json!(5));
    tree.write(&mut writer, "")?;
    writer.add_f32("max_depth", &[1], &[6.0])?;
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    assert_eq!(model.family(), ModelFamily::DecisionTree);
    assert_eq!(model.n_features(), 5);
    let n_classes = tree
        .classes
        .iter()
        .zip(&tree.features)
        .filter(|(_, &f)| f < 0.0)
        .map(|(&c, _)| c as usize)
        .max()
        .unwrap_or(0)
        + 1;
    assert_eq!(model.n_outputs(), n_classes);
    let mut scratch = model.scratch();
    let xs: Vec<Vec<f32>> = (0..200).map(|_| rng.vec(5)).collect();
    for x in &xs {
        let c = tree.classify(x);
        let out = model.predict(x, &mut scratch)?;
        assert_eq!(out.class, Some(c));
        assert_eq!(out.outputs.iter().sum::<f32>(), 1.0);
        assert_eq!(out.outputs[c], 1.0);
    }
    // A row exactly on a threshold goes left.
    let mut x = vec![0.0; 5];
    let root_feature = tree.features[0] as usize;
    x[root_feature] = tree.thresholds[0];
    assert_eq!(
        model.predict(&x, &mut scratch)?.class,
        Some(tree.classify(&x))
    );
    let batch = model.predict_batch(&xs.concat(), xs.len())?;
    let want: Vec<usize> = xs.iter().map(|x| tree.classify(x)).collect();
    assert_eq!(batch.classes(), Some(want.as_slice()));
    Ok(())
}

#[test]
fn random_forest_matches_reference_vote() -> TestResult {
    let mut rng = Lcg(5);
    let n_trees = 7;
    let trees: Vec<TreeArrays> = (0..n_trees)
        .map(|_| TreeArrays::random(&mut rng, 5, 4, 3))
        .collect();
    let mut writer = AprWriter::new();
    writer.model_type("RandomForestClassifier");
    for (i, t) in trees.iter().enumerate() {
        t.write(&mut writer, &format!("tree_{i}_"))?;
        writer.add_f32(&format!("tree_{i}_max_depth"), &[1], &[5.0])?;
    }
    writer.add_f32("n_estimators", &[1], &[n_trees as f32])?;
    writer.metadata("n_classes", json!(3));
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    assert_eq!(model.family(), ModelFamily::RandomForest);
    assert_eq!(model.n_outputs(), 3);
    let mut scratch = model.scratch();
    let xs: Vec<Vec<f32>> = (0..300).map(|_| rng.vec(4)).collect();
    let mut want_classes = Vec::new();
    let mut want_probs = Vec::new();
    for x in &xs {
        let mut votes = [0usize; 3];
        for t in &trees {
            votes[t.classify(x)] += 1;
        }
        let best = (0..3).fold(0, |b, c| if votes[c] > votes[b] { c } else { b });
        let probs: Vec<f32> = votes.iter().map(|&v| v as f32 / n_trees as f32).collect();
        let out = model.predict(x, &mut scratch)?;
        assert_eq!(out.class, Some(best), "{x:?} votes {votes:?}");
        assert_eq!(out.outputs, probs.as_slice());
        assert_eq!(out.probabilities, Some(probs.as_slice()));
        want_classes.push(best);
        want_probs.extend(probs);
    }
    let batch = model.predict_batch(&xs.concat(), xs.len())?;
    assert_eq!(batch.classes(), Some(want_classes.as_slice()));
    assert_eq!(batch.outputs(), want_probs.as_slice());
    Ok(())
}

#[test]
fn forest_ties_go_to_the_lowest_class() -> TestResult {
    // Two single-leaf trees voting 2 and 1: a tie, class 1 wins.
    let mut writer = AprWriter::new();
    writer.model_type("RandomForestClassifier");
    writer.metadata("n_features", json!(2));
    for (i, class) in [2.0f32, 1.0].iter().enumerate() {
        let p = format!("tree_{i}_");
        for (name, v) in [
            ("node_features", -1.0),
            ("node_thresholds", 0.0),
            ("node_classes", *class),
            ("node_samples", 1.0),
            ("node_left_child", -1.0),
            ("node_right_child", -1.0),
        ] {
            writer.add_f32(&format!("{p}{name}"), &[1], &[v])?;
        }
    }
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    assert_eq!((model.n_features(), model.n_outputs()), (2, 3));
    let mut scratch = model.scratch();
    let out = model.predict(&[0.0, 0.0], &mut scratch)?;
    assert_eq!(out.class, Some(1));
    assert_eq!(out.outputs, &[0.0, 0.5, 0.5]);
    Ok(())
}

#[test]
fn kmeans_ties_go_to_the_lowest_index() -> TestResult {
    let mut writer = AprWriter::new();
    writer.model_type("KMeans");
    writer.add_f32("centroids", &[3, 2], &[1.0, 0.0, -1.0, 0.0, 0.0, 5.0])?;
    writer.add_f32("n_clusters", &[1], &[3.0])?;
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    let mut scratch = model.scratch();
    let out = model.predict(&[0.0, 0.0], &mut scratch)?;
    assert_eq!(out.class, Some(0));
    assert_eq!(out.outputs, &[1.0, 1.0, 25.0]);
    assert_eq!(out.probabilities, None);
    Ok(())
}

fn random_layers(rng: &mut Lcg, dims: &[usize], acts: &[Act], dyadic: bool) -> Vec<RefLayer> {
    let mut layers = Vec::new();
    for (i, pair) in dims.windows(2).enumerate() {
        let (n_in, n_out) = (pair[0], pair[1]);
        let scale = 1.0 / (n_in as f32).sqrt();
        let w: Vec<f32> = (0..n_in * n_out)
            .map(|_| {
                if dyadic {
                    rng.dyadic() / 4.0
                } else {
                    rng.uniform() * scale * 2.0
                }
            })
            .collect();
        let b = (i % 3 != 1).then(|| rng.vec(n_out)); // every third layer has no bias
        layers.push(RefLayer::Linear { w, b, n_in, n_out });
        if let Some(&a) = acts.get(i) {
            layers.push(RefLayer::Act(a));
        }
    }
    layers
}

#[test]
fn deep_mlp_with_every_activation_matches_reference() -> TestResult {
    let mut rng = Lcg(17);
    let dims = [13, 24, 19, 33, 8, 16, 20, 5];
    let acts = [
        Act::Relu,
        Act::Sigmoid,
        Act::Tanh,
        Act::Gelu,
        Act::Leaky(0.1),
        Act::Softmax, // in the middle: row-wise, then on
        Act::Softmax,
    ];
    let layers = random_layers(&mut rng, &dims, &acts, false);
    let bytes = write_mlp(&layers, DType::F32)?;
    // 7 Linear layers, 5 with a bias: 12 parameters, so "10" and "11" sort
    // before "2" in the index.
    let file = AprFile::parse(&bytes)?;
    assert_eq!(file.tensors()[2].name, "10");
    let xs: Vec<Vec<f32>> = (0..17)
        .map(|_| rng.vec(13).iter().map(|v| v * 3.0).collect())
        .collect();
    for table in kernels::available() {
        let model = Model::from_bytes(&bytes)?.with_kernels(table);
        assert_eq!((model.n_features(), model.n_outputs()), (13, 5));
        let mut scratch = model.scratch();
        for x in &xs {
            let out = model.predict(x, &mut scratch)?;
            let want = reference_mlp(&layers, x);
            assert_close(out.outputs, &want, 1e-5, table.name);
            assert!(out.class.is_some());
        }
        let batch = model.predict_batch(&xs.concat(), xs.len())?;
        for (i, x) in xs.iter().enumerate() {
            let row = batch.row(i).ok_or("row")?;
            assert_close(row.outputs, &reference_mlp(&layers, x), 1e-5, "batch");
        }
        let reused = model.predict_batch_with(&xs.concat(), xs.len(), &mut scratch)?;
        assert_eq!(reused, batch);
        let small = model.predict_batch_with(&xs[..2].concat(), 2, &mut scratch)?;
        // Two rows take the kernels' unpacked path: equal up to rounding.
        assert_close(
            small.outputs(),
            &to_f64(&batch.outputs()[..2 * 5]),
            1e-5,
            "2 rows",
        );
    }
    Ok(())
}

#[test]
fn mlp_starting_with_an_activation_and_bare_leaky_relu() -> TestResult {
    let mut writer = AprWriter::new();
    writer.model_type("NeuralSequential");
    writer.metadata("layers", json!(["LeakyReLU", "Linear(2->1)"]));
    writer.add_f32("0", &[1, 2], &[1.0, 1.0])?;
    writer.add_f32("1", &[1], &[0.0])?;
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    let mut scratch = model.scratch();
    let out = model.predict(&[-1.0, 2.0], &mut scratch)?;
    assert_close(out.outputs, &[2.0 - 0.01], 1e-6, "leaky default slope 0.01");
    let batch = model.predict_batch(&[-1.0, 2.0, 3.0, -4.0], 2)?;
    assert_close(batch.outputs(), &[1.99, 2.96], 1e-6, "batch");
    Ok(())
}

#[test]
fn quantized_and_half_precision_weights_match_reference() -> TestResult {
    for dtype in [
        DType::F16,
        DType::BF16,
        DType::F64,
        DType::AprQ8,
        DType::AprQ4,
    ] {
        let mut rng = Lcg(23);
        // Dyadic weights / 4: multiples of 1/256 in [-0.5, 0.5), exact in
        // F16, BF16 and F64; rounded to the Q8 / Q4 grid below.
        let mut layers = random_layers(
            &mut rng,
            &[10, 40, 7, 3],
            &[Act::Tanh, Act::Relu, Act::Softmax],
            true,
        );
        for layer in &mut layers {
            if let RefLayer::Linear { w, .. } = layer {
                for v in w.iter_mut() {
                    *v = match dtype {
                        DType::AprQ8 => (*v * 64.0).round() / 64.0,
                        DType::AprQ4 => ((*v / 0.25).round() * 0.25).clamp(-2.0, 1.75),
                        _ => *v,
                    };
                }
            }
        }
        let bytes = write_mlp(&layers, dtype)?;
        let model = Model::from_bytes(&bytes)?;
        let storage = model.weight_storage();
        assert_eq!(
            storage.converted, 3,
            "{dtype:?}: three weight matrices dequantized"
        );
        let mut scratch = model.scratch();
        for _ in 0..10 {
            let x = rng.vec(10);
            let out = model.predict(&x, &mut scratch)?;
            assert_close(
                out.outputs,
                &reference_mlp(&layers, &x),
                1e-5,
                &format!("{dtype:?}"),
            );
        }
    }
    // Linear regression with F16 coefficients.
    let mut writer = AprWriter::new();
    writer.model_type("LinearRegression");
    add_weights(
        &mut writer,
        "coefficients",
        DType::F16,
        &[3],
        &[0.5, -1.25, 2.0],
    )?;
    writer.add_f32("intercept", &[1], &[1.0])?;
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    let mut scratch = model.scratch();
    assert_eq!(
        model.predict(&[2.0, 2.0, 1.0], &mut scratch)?.outputs,
        &[1.0 - 2.5 + 2.0 + 1.0]
    );
    Ok(())
}

#[test]
fn simd_and_scalar_agree_for_every_family() -> TestResult {
    let files = [
        "linear_regression.v2.apr",
        "kmeans.v2.apr",
        "mlp_xor.v2.apr",
        "mlp_multiclass.v2.apr",
    ];
    let mut rng = Lcg(29);
    for name in files {
        let bytes = fixture(name);
        let scalar = Model::from_bytes(&bytes)?.with_kernels(kernels::scalar());
        let simd = Model::from_bytes(&bytes)?;
        assert_eq!(simd.kernels().name, kernels::kernel_name());
        // Scalar against scalar would compare nothing.
        assert!(
            simd.kernels().isa != kernels::Isa::Scalar
                || std::env::var_os("APR_ALLOW_NO_SIMD").is_some(),
            "no SIMD table on this CPU (APR_ALLOW_NO_SIMD=1 runs the test anyway)"
        );
        let (mut s1, mut s2) = (scalar.scratch(), simd.scratch());
        for _ in 0..50 {
            let x: Vec<f32> = rng
                .vec(scalar.n_features())
                .iter()
                .map(|v| v * 4.0)
                .collect();
            let a = scalar.predict(&x, &mut s1)?;
            let b = simd.predict(&x, &mut s2)?;
            assert_eq!(a.class, b.class, "{name}: {x:?}");
            assert_close(b.outputs, &to_f64(a.outputs), 1e-5, name);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Errors: at load (never a panic) and at predict

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
