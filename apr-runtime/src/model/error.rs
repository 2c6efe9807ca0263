//! What can go wrong building a model from a file, and predicting with it.

use super::names::NamesOrigin;
use crate::format::FormatError;

/// A file that parsed as a container but does not describe a model this
/// runtime can run. Every variant names the tensor, layer, node or metadata
/// key at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The bytes are not a valid APR v2 container.
    /// (The message includes the container error's; it is not repeated as
    /// a `source()`, so that reporters print it once.)
    #[error("the model file is not a valid APR v2 container: {0}")]
    Format(FormatError),

    /// The `model_type` is unknown, or absent and the tensors do not form a
    /// linear model.
    #[error(
        "unsupported model: model_type {}; tensors found: {}",
        describe_model_type(.model_type),
        describe_tensors(.tensors)
    )]
    Unsupported {
        /// The metadata `model_type` (empty when the file has none).
        model_type: String,
        /// The names of every tensor in the file.
        tensors: Vec<String>,
    },

    /// A tensor the family needs is not in the file.
    #[error("a {family} model needs the tensor `{tensor}`, which the file does not contain")]
    MissingTensor {
        /// The family being built (its metadata name).
        family: String,
        /// The missing tensor.
        tensor: String,
    },

    /// A tensor's shape is not the one its role requires.
    #[error("tensor `{tensor}` has shape {found:?}, expected {expected}")]
    ShapeMismatch {
        /// The tensor at fault.
        tensor: String,
        /// The shape its role requires, in words (e.g. `"[3] (one bias per output)"`).
        expected: String,
        /// The shape stored in the file.
        found: Vec<usize>,
    },

    /// A tensor's data could not be decoded or dequantized to `f32`.
    #[error("tensor `{tensor}` could not be converted to f32: {error}")]
    TensorData {
        /// The tensor at fault.
        tensor: String,
        /// Why the conversion failed.
        error: FormatError,
    },

    /// A weight, bias, threshold, leaf or centroid tensor holds NaN or an
    /// infinity (stored so, or produced by dequantization). A model with one
    /// would answer NaN, so it is refused at load.
    #[error(
        "tensor `{tensor}` holds a non-finite value (NaN or an infinity) at index {index}; \
         a model's weights and biases must all be finite"
    )]
    NonFiniteWeight {
        /// The tensor at fault.
        tensor: String,
        /// The position of its first non-finite value, in row-major order
        /// from 0.
        index: usize,
    },

    /// A metadata key the family reads has a value it cannot use.
    #[error("metadata `{key}` is invalid: {reason}")]
    InvalidMetadata {
        /// The metadata key.
        key: String,
        /// What is wrong with its value.
        reason: String,
    },

    /// A `NeuralSequential` layer is malformed or does not chain with its
    /// neighbours or parameters.
    #[error("layer {index} (`{layer}`) is invalid: {reason}")]
    InvalidLayer {
        /// The layer's position in metadata `layers`, from 0.
        index: usize,
        /// The layer string as stored.
        layer: String,
        /// What is wrong.
        reason: String,
    },

    /// A `NeuralSequential` parameter tensor is not used by any layer, or the
    /// parameter names do not run `"0"`, `"1"`, ... without gaps.
    #[error("NeuralSequential parameter tensor `{tensor}` is invalid: {reason}")]
    InvalidParameter {
        /// The parameter tensor.
        tensor: String,
        /// What is wrong.
        reason: String,
    },

    /// A decision-tree node is malformed (bad feature, child or class).
    #[error("{} node {node} is invalid: {reason}", describe_tree(*.tree))]
    InvalidTree {
        /// The tree's index within a random forest, `None` for a single tree.
        tree: Option<usize>,
        /// The node's pre-order index.
        node: usize,
        /// What is wrong.
        reason: String,
    },
    /// The class labels (metadata `labels`, or given) do not match the
    /// model: their count differs from its classes (or clusters), or the
    /// model predicts no class at all.
    #[error(
        "{origin} has {found} label{}, but {}",
        plural(*.found),
        describe_classes(*.classes, .family, *.n_outputs)
    )]
    LabelCount {
        /// Where the labels came from.
        origin: NamesOrigin,
        /// How many labels there are.
        found: usize,
        /// The model's classes (or clusters); `None` for a model that
        /// predicts no class (regression, networks not ending in Softmax).
        classes: Option<usize>,
        /// The model's family (its metadata name).
        family: String,
        /// The model's outputs per row.
        n_outputs: usize,
    },

    /// The feature names (metadata `feature_names`, or given) are not one
    /// per feature.
    #[error(
        "{origin} has {found} feature name{}, but the model takes {expected} feature{}",
        plural(*.found),
        plural(*.expected)
    )]
    FeatureNameCount {
        /// Where the names came from.
        origin: NamesOrigin,
        /// How many names there are.
        found: usize,
        /// The model's features.
        expected: usize,
    },

    /// A feature name appears twice.
    #[error("{origin} names the feature `{name}` twice; feature names must be distinct")]
    DuplicateFeatureName {
        /// Where the names came from.
        origin: NamesOrigin,
        /// The repeated name.
        name: String,
    },
}

/// A row (or batch) that the model cannot predict on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PredictError {
    /// A single row has the wrong number of features.
    #[error("the model expects {expected} features but the row has {found}")]
    FeatureCount {
        /// The model's number of features.
        expected: usize,
        /// The row's length.
        found: usize,
    },

    /// A batch's length is not `n_rows × n_features`.
    #[error(
        "a batch of {n_rows} rows of {n_features} features needs {} values, found {found}",
        describe_batch_len(*.n_rows, *.n_features)
    )]
    BatchShape {
        /// The number of rows the caller announced.
        n_rows: usize,
        /// The model's number of features.
        n_features: usize,
        /// The number of values passed.
        found: usize,
    },

    /// A single row holds NaN or an infinity.
    #[error("feature {index} is not a finite number (NaN or infinite)")]
    NonFinite {
        /// The offending feature's index within the row.
        index: usize,
    },

    /// A batch row holds NaN or an infinity.
    #[error("feature {index} of row {row} is not a finite number (NaN or infinite)")]
    NonFiniteInBatch {
        /// The row, from 0.
        row: usize,
        /// The offending feature's index within that row.
        index: usize,
    },

    /// A tree walk left the validated node array. Load-time validation makes
    /// this unreachable; it exists so a broken invariant is an error, never
    /// a panic.
    #[error("tree walk reached node {node}, which does not exist (the tree was not validated)")]
    TreeWalk {
        /// The node index the walk tried to visit.
        node: usize,
    },

    /// A chunk of a batch split across threads left no result (unreachable:
    /// the split returns only once every chunk has run; an error, never a
    /// panic, if that ever broke).
    #[error("chunk {chunk} of a batch split across threads left no result")]
    Unfinished {
        /// The chunk, from 0.
        chunk: usize,
    },
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn describe_classes(classes: Option<usize>, family: &str, n_outputs: usize) -> String {
    match classes {
        Some(k) => format!("this {family} model has {k} class{}", if k == 1 { "" } else { "es" }),
        None => format!(
            "this {family} model predicts no class ({n_outputs} output{} per row), so it takes no labels",
            plural(n_outputs)
        ),
    }
}

fn describe_model_type(model_type: &str) -> String {
    if model_type.is_empty() {
        "(none)".to_owned()
    } else {
        format!("`{model_type}`")
    }
}

fn describe_tensors(tensors: &[String]) -> String {
    if tensors.is_empty() {
        "(none)".to_owned()
    } else {
        tensors.join(", ")
    }
}

fn describe_tree(tree: Option<usize>) -> String {
    match tree {
        Some(i) => format!("tree {i}"),
        None => "decision tree".to_owned(),
    }
}

fn describe_batch_len(n_rows: usize, n_features: usize) -> String {
    match n_rows.checked_mul(n_features) {
        Some(n) => n.to_string(),
        None => "more than usize::MAX".to_owned(),
    }
}

impl From<FormatError> for ModelError {
    fn from(error: FormatError) -> Self {
        ModelError::Format(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Errors that carry another error print it once: in their message, not
    /// again as a `source()` (reporters walk the chain and print both).
    #[test]
    fn wrapped_errors_print_their_cause_once() {
        use std::error::Error as _;
        let format = || FormatError::MetadataNotObject {
            offset: 64,
            found: "an array",
        };
        let text = format().to_string();
        let wrapped = [
            ModelError::Format(format()),
            ModelError::TensorData {
                tensor: "w".to_owned(),
                error: format(),
            },
        ];
        for err in wrapped {
            assert!(err.to_string().contains(&text), "{err}");
            assert!(err.source().is_none(), "{err}: printed twice");
        }
    }

    #[test]
    fn unsupported_names_the_model_type_and_tensors() {
        let e = ModelError::Unsupported {
            model_type: "dtype-zoo".into(),
            tensors: vec!["values.f16".into(), "values.q4".into()],
        };
        let msg = e.to_string();
        assert!(msg.contains("`dtype-zoo`"), "{msg}");
        assert!(msg.contains("values.f16, values.q4"), "{msg}");
        let none = ModelError::Unsupported {
            model_type: String::new(),
            tensors: vec![],
        };
        assert!(none.to_string().contains("model_type (none)"));
    }

    #[test]
    fn non_finite_weight_names_the_tensor_and_index() {
        let e = ModelError::NonFiniteWeight {
            tensor: "layers.0.weight".into(),
            index: 17,
        };
        assert_eq!(
            e.to_string(),
            "tensor `layers.0.weight` holds a non-finite value (NaN or an infinity) at index 17; \
             a model's weights and biases must all be finite"
        );
    }

    #[test]
    fn predict_errors_name_the_numbers() {
        let e = PredictError::FeatureCount {
            expected: 3,
            found: 5,
        };
        assert_eq!(
            e.to_string(),
            "the model expects 3 features but the row has 5"
        );
        let e = PredictError::NonFiniteInBatch { row: 2, index: 7 };
        assert!(e.to_string().contains("feature 7 of row 2"));
        let e = PredictError::BatchShape {
            n_rows: 2,
            n_features: 3,
            found: 5,
        };
        assert!(e.to_string().contains("needs 6 values, found 5"));
    }
}
