//! Element-wise stages applied to every row before a model's family: the
//! scalers of a scikit-learn pipeline (`StandardScaler`, `RobustScaler`,
//! `MaxAbsScaler` as ONNX `Scaler`, `MinMaxScaler` as `Mul` then `Add`), kept
//! as stages of the one model.
//!
//! Metadata `preprocess` lists the stages in order, each an object
//! `{"op": "sub" | "mul" | "add", "tensor": NAME}` naming an F32 tensor of
//! one value per feature; each stage computes `x[i] ∘ v[i]` in `f32`, as
//! onnxruntime does (`Scaler` is a `sub` then a `mul`).

use serde_json::Value;

use super::source::{shape_mismatch, vector_len, TensorSource};
use super::ModelError;
use crate::format::schema::preprocess as names;

/// The metadata key listing the stages.
pub const PREPROCESS_KEY: &str = names::KEY;

/// The most stages a model may have (each is a pass over every row).
pub const MAX_PREPROCESS_STAGES: usize = 64;

/// One element-wise operation with a per-feature vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementOp {
    /// `x − v` (`"sub"`).
    Sub,
    /// `x · v` (`"mul"`).
    Mul,
    /// `x + v` (`"add"`).
    Add,
}

impl ElementOp {
    /// The operation's metadata name.
    pub fn name(self) -> &'static str {
        match self {
            ElementOp::Sub => "sub",
            ElementOp::Mul => "mul",
            ElementOp::Add => "add",
        }
    }

    /// The operation named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "sub" => ElementOp::Sub,
            "mul" => ElementOp::Mul,
            "add" => ElementOp::Add,
            _ => return None,
        })
    }

    fn apply(self, x: &mut [f32], v: &[f32]) {
        match self {
            ElementOp::Sub => x.iter_mut().zip(v).for_each(|(x, v)| *x -= v),
            ElementOp::Mul => x.iter_mut().zip(v).for_each(|(x, v)| *x *= v),
            ElementOp::Add => x.iter_mut().zip(v).for_each(|(x, v)| *x += v),
        }
    }
}

/// The stages of one model (often none).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Preprocess {
    stages: Vec<(ElementOp, Vec<f32>)>,
}

impl Preprocess {
    /// Reads metadata `preprocess` and its tensors (`n_features` values each).
    pub(super) fn load(src: &TensorSource<'_, '_>, n_features: usize) -> Result<Self, ModelError> {
        let invalid = |reason: String| ModelError::InvalidMetadata {
            key: PREPROCESS_KEY.to_owned(),
            reason,
        };
        let stages = match src.file().metadata().get(PREPROCESS_KEY) {
            None | Some(Value::Null) => return Ok(Self::default()),
            Some(Value::Array(stages)) => stages,
            Some(other) => return Err(invalid(format!("expected an array, found {other}"))),
        };
        if stages.len() > MAX_PREPROCESS_STAGES {
            return Err(invalid(format!(
                "{} stages; at most {MAX_PREPROCESS_STAGES}",
                stages.len()
            )));
        }
        let mut out = Vec::with_capacity(stages.len());
        for (i, stage) in stages.iter().enumerate() {
            let op = stage.get(names::OP).and_then(Value::as_str);
            let tensor = stage.get(names::TENSOR).and_then(Value::as_str);
            let (Some(op), Some(tensor)) = (op, tensor) else {
                return Err(invalid(format!(
                    "stage {i} is not an object with string `op` and `tensor`"
                )));
            };
            let op = ElementOp::from_name(op)
                .ok_or_else(|| invalid(format!("stage {i}: `{op}` is not sub, mul or add")))?;
            let tensor = src.require(tensor)?;
            if vector_len(&tensor) != Some(n_features) {
                return Err(shape_mismatch(
                    &tensor,
                    format!("[{n_features}] (one value per feature)"),
                ));
            }
            out.push((op, src.finite_f32_values(&tensor)?.into_owned()));
        }
        Ok(Self { stages: out })
    }

    /// Whether there is nothing to do.
    pub(super) fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// The stages applied to `rows` (whole rows of `n_features` values) into
    /// `out`, which is resized to match.
    pub(super) fn apply(&self, rows: &[f32], n_features: usize, out: &mut Vec<f32>) {
        out.clear();
        out.extend_from_slice(rows);
        if n_features == 0 {
            return;
        }
        for row in out.chunks_exact_mut(n_features) {
            for (op, values) in &self.stages {
                op.apply(row, values);
            }
        }
    }
}
