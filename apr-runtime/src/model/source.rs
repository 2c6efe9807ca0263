//! [`TensorSource`]: how a family loader reads tensors and metadata from a
//! container, turning every absence or bad shape into a [`ModelError`] that
//! names the tensor or key.

use std::borrow::Cow;

use serde_json::Value;

use super::weights::Weights;
use super::{first_non_finite, ModelError, ModelFamily};
use crate::format::{AprFile, Tensor};

/// A container seen through the eyes of one family's loader.
pub(super) struct TensorSource<'f, 'a> {
    file: &'f AprFile<'a>,
    family: ModelFamily,
    /// Whether weight values are checked for NaN and infinities.
    verify_finite: bool,
}

impl<'f, 'a> TensorSource<'f, 'a> {
    /// Reads `file` on behalf of `family` (used in error messages),
    /// checking weight values for NaN and infinities when `verify_finite`.
    pub(super) fn new(file: &'f AprFile<'a>, family: ModelFamily, verify_finite: bool) -> Self {
        Self {
            file,
            family,
            verify_finite,
        }
    }

    /// The values of a tensor the model computes with (a weight, bias,
    /// threshold, leaf or centroid tensor): [`finite_f32_values`], or plain
    /// [`f32_values`] when the file's values were verified already (an
    /// embedded model, checked while the crate compiled).
    pub(super) fn finite_f32_values(
        &self,
        tensor: &Tensor<'a>,
    ) -> Result<Cow<'a, [f32]>, ModelError> {
        if self.verify_finite {
            finite_f32_values(tensor)
        } else {
            f32_values(tensor)
        }
    }

    /// A tensor the kernels stream (weights, biases, centroids), with its
    /// values as [`Self::finite_f32_values`] gives them, held 64-byte
    /// aligned: in place when the bytes already are, copied once otherwise.
    pub(super) fn finite_weights(&self, tensor: &Tensor<'a>) -> Result<Weights<'a>, ModelError> {
        Ok(Weights::new(tensor, self.finite_f32_values(tensor)?))
    }

    /// The file being read.
    pub(super) fn file(&self) -> &'f AprFile<'a> {
        self.file
    }

    /// The tensor `name`, if present.
    pub(super) fn get(&self, name: &str) -> Option<Tensor<'a>> {
        self.file.tensor(name)
    }

    /// The tensor `name`, or [`ModelError::MissingTensor`].
    pub(super) fn require(&self, name: &str) -> Result<Tensor<'a>, ModelError> {
        self.get(name).ok_or_else(|| ModelError::MissingTensor {
            family: self.family.to_string(),
            tensor: name.to_owned(),
        })
    }

    /// A non-negative integer metadata value, `None` when the key is absent
    /// (or null).
    pub(super) fn metadata_count(&self, key: &str) -> Result<Option<usize>, ModelError> {
        match self.file.metadata().get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| ModelError::InvalidMetadata {
                    key: key.to_owned(),
                    reason: format!("expected a non-negative integer, found {value}"),
                }),
        }
    }
}

/// The tensor's values as `f32`: borrowed from the file for aligned F32
/// data, decoded or dequantized once otherwise.
pub(super) fn f32_values<'a>(tensor: &Tensor<'a>) -> Result<Cow<'a, [f32]>, ModelError> {
    let values = tensor.to_f32().map_err(|error| ModelError::TensorData {
        tensor: tensor.name().to_owned(),
        error,
    })?;
    if values.len() != tensor.numel() {
        return Err(ModelError::ShapeMismatch {
            tensor: tensor.name().to_owned(),
            expected: format!("{} values once decoded", tensor.numel()),
            found: tensor.shape().to_vec(),
        });
    }
    Ok(values)
}

/// [`f32_values`] of a tensor the model computes with (a weight, bias,
/// threshold, leaf or centroid tensor), which must hold only finite values:
/// the first NaN or infinity, stored or produced by dequantization, is a
/// [`ModelError::NonFiniteWeight`]. One branch-free pass when all are finite.
fn finite_f32_values<'a>(tensor: &Tensor<'a>) -> Result<Cow<'a, [f32]>, ModelError> {
    let values = f32_values(tensor)?;
    match first_non_finite(&values) {
        Some(index) => Err(ModelError::NonFiniteWeight {
            tensor: tensor.name().to_owned(),
            index,
        }),
        None => Ok(values),
    }
}

/// A [`ModelError::ShapeMismatch`] for `tensor`.
pub(super) fn shape_mismatch(tensor: &Tensor<'_>, expected: impl Into<String>) -> ModelError {
    ModelError::ShapeMismatch {
        tensor: tensor.name().to_owned(),
        expected: expected.into(),
        found: tensor.shape().to_vec(),
    }
}

/// The length of a vector tensor: shape `[n]`, or `[1, n]` / `[n, 1]`.
pub(super) fn vector_len(tensor: &Tensor<'_>) -> Option<usize> {
    match *tensor.shape() {
        [n] | [1, n] | [n, 1] => Some(n),
        _ => None,
    }
}

/// Whether the tensor holds exactly one value (shape `[]`, `[1]`, `[1, 1]`, ...).
pub(super) fn is_scalar(tensor: &Tensor<'_>) -> bool {
    tensor.shape().iter().all(|&d| d == 1)
}
