//! Class labels and feature names: read from the model's metadata
//! (`labels`, `feature_names`) or given by the caller (the attribute's
//! `labels = [...]` / `feature_names = [...]`, which win), and validated
//! against the model once, at load.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::error::ModelError;
use crate::format::{schema, Metadata};

/// The metadata key holding class (or cluster) labels: an array of strings
/// (or integers, kept as their decimal text), one per class.
pub const LABELS_KEY: &str = schema::LABELS;

/// Read as the labels when there is no [`LABELS_KEY`]: the key this
/// project's default model (and scikit-learn-minded writers) use.
pub(super) const CLASS_NAMES_KEY: &str = "class_names";

/// The metadata key holding feature names: an array of distinct strings,
/// one per input feature.
pub const FEATURE_NAMES_KEY: &str = schema::FEATURE_NAMES;

/// Where a list of names came from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamesOrigin {
    /// The model file's metadata.
    Metadata,
    /// The caller (for `#[apr_lambda]`, the attribute's argument).
    Given,
}

impl std::fmt::Display for NamesOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NamesOrigin::Metadata => "the model's metadata",
            NamesOrigin::Given => "the given list",
        })
    }
}

/// A model's feature names with their positions, for decoding rows sent
/// as objects (`{"sepal_length": 5.1, ...}`).
#[derive(Debug, Clone)]
pub(super) struct FeatureNames {
    names: Arc<[String]>,
    index: HashMap<String, usize>,
}

impl FeatureNames {
    /// Names for a model of `n_features` inputs: one each, all distinct.
    pub(super) fn new(
        names: Vec<String>,
        n_features: usize,
        origin: NamesOrigin,
    ) -> Result<Self, ModelError> {
        if names.len() != n_features {
            return Err(ModelError::FeatureNameCount {
                origin,
                found: names.len(),
                expected: n_features,
            });
        }
        let mut index = HashMap::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if index.insert(name.clone(), i).is_some() {
                return Err(ModelError::DuplicateFeatureName {
                    origin,
                    name: name.clone(),
                });
            }
        }
        Ok(FeatureNames {
            names: names.into(),
            index,
        })
    }

    pub(super) fn names(&self) -> &[String] {
        &self.names
    }

    pub(super) fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}

/// Checks `labels` against a model with `classes` classes (or clusters;
/// `None` when the model predicts no class).
pub(super) fn check_labels(
    labels: &[String],
    classes: Option<usize>,
    family: &str,
    n_outputs: usize,
    origin: NamesOrigin,
) -> Result<(), ModelError> {
    match classes {
        Some(classes) if classes == labels.len() => Ok(()),
        classes => Err(ModelError::LabelCount {
            origin,
            found: labels.len(),
            classes,
            family: family.to_owned(),
            n_outputs,
        }),
    }
}

/// The names stored under `key` in `metadata`, if any: a JSON array of
/// strings, or of integers (class labels as ONNX stores them), kept as
/// their decimal text.
pub(super) fn from_metadata(
    metadata: &Metadata,
    key: &str,
) -> Result<Option<Vec<String>>, ModelError> {
    let Some(value) = metadata.get(key) else {
        return Ok(None);
    };
    let invalid = |reason: String| ModelError::InvalidMetadata {
        key: key.to_owned(),
        reason,
    };
    let Value::Array(items) = value else {
        return Err(invalid(format!(
            "expected an array of names, found {}",
            crate::format::metadata_json_type_name(value)
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
            other => Err(invalid(format!(
                "item {i} is {}, expected a string",
                crate::format::metadata_json_type_name(other)
            ))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
