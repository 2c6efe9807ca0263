//! Helpers of every section: fixtures, JSON arrays, closeness, a
//! deterministic generator, and the imports the sections share.

pub(crate) use apr_runtime::format::{f32_to_f16, AprFile, AprWriter, DType};
pub(crate) use apr_runtime::kernels;
pub(crate) use apr_runtime::model::{Model, ModelError, ModelFamily, PredictError, Prediction};
pub(crate) use serde_json::{json, Value};

pub(crate) use crate::common::{aligned, as_bytes};

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error>>;

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

pub(crate) fn expected(name: &str) -> Value {
    let text = String::from_utf8(fixture(name)).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {name}: {e}"))
}

pub(crate) fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, found {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
        .collect()
}

pub(crate) fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array of rows, found {v}"))
        .iter()
        .map(f32s)
        .collect()
}

pub(crate) fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, found {v}"))
        .iter()
        .map(|x| x.as_u64().unwrap_or(u64::MAX) as usize)
        .collect()
}

/// `|a - b| <= rel * max(|a|, |b|)`, with a floor of `rel * 1e-3` so values
/// that should be zero compare sensibly.
pub(crate) fn assert_close(found: &[f32], want: &[f64], rel: f64, what: &str) {
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

pub(crate) fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// A small deterministic generator (64-bit LCG), values in [-1, 1).
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
    pub(crate) fn uniform(&mut self) -> f32 {
        (self.next_u32() as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    }
    /// Multiples of 1/64 in [-2, 2): exact in F16 and BF16.
    pub(crate) fn dyadic(&mut self) -> f32 {
        (self.next_u32() % 256) as f32 / 64.0 - 2.0
    }
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        self.next_u32() % n
    }
    pub(crate) fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform()).collect()
    }
}

pub(crate) fn build(writer: &AprWriter) -> Vec<u8> {
    writer.to_bytes()
}

pub(crate) fn load_err(bytes: &[u8]) -> ModelError {
    match Model::from_bytes(bytes) {
        Ok(m) => panic!("expected a load error, got a {} model", m.family()),
        Err(e) => e,
    }
}
