//! The model families' schema, in one place: every `model_type` name, tensor
//! name and metadata key that a family is written with (the v1 converter,
//! the ONNX converter, [`AprWriter`](super::AprWriter)) and read by (the
//! loaders of [`crate::model`]). `docs/model-families.md` describes them.
//!
//! Keys shared by every family are at the top; each family's own names are
//! in its module. Some names are only written by a converter behind a
//! feature (`v1`, `onnx`); without that feature nothing in the crate uses
//! them, which their `allow(dead_code)` says.

/// Metadata: the family name, one of the `model_type` constants of the
/// family modules.
pub(crate) const MODEL_TYPE: &str = "model_type";
/// Metadata: the number of input features.
pub(crate) const N_FEATURES: &str = "n_features";
/// Metadata: the number of classes of a classifier.
pub(crate) const N_CLASSES: &str = "n_classes";
/// Metadata: the class labels (an array of strings).
pub(crate) const LABELS: &str = "labels";
/// Metadata: the feature names (an array of strings).
pub(crate) const FEATURE_NAMES: &str = "feature_names";

/// Element-wise stages applied to the features before the model
/// (metadata key [`preprocess::KEY`]), each naming its constant tensor.
pub(crate) mod preprocess {
    /// Metadata: the list of stages.
    pub(crate) const KEY: &str = "preprocess";
    /// A stage's operation (`"sub"`, `"mul"` or `"add"`).
    pub(crate) const OP: &str = "op";
    /// A stage's constant tensor.
    pub(crate) const TENSOR: &str = "tensor";

    /// The tensor the ONNX converter writes for stage `i`.
    #[cfg_attr(not(feature = "onnx"), allow(dead_code))]
    pub(crate) fn tensor_name(i: usize) -> String {
        format!("preprocess_{i}")
    }
}

/// Where a converted file came from (metadata written by the converters).
pub(crate) mod provenance {
    /// Metadata: what the file was converted from.
    #[cfg_attr(not(any(feature = "v1", feature = "onnx")), allow(dead_code))]
    pub(crate) const SOURCE: &str = "source";
    /// Metadata: the model's name (v1's `model_name`).
    #[cfg_attr(not(feature = "v1"), allow(dead_code))]
    pub(crate) const NAME: &str = "name";
    /// Metadata: the aprender family of a converted v1 model.
    #[cfg_attr(not(feature = "v1"), allow(dead_code))]
    pub(crate) const V1_MODEL_TYPE: &str = "v1_model_type";
    /// The v1 metadata key that becomes [`NAME`].
    #[cfg_attr(not(feature = "v1"), allow(dead_code))]
    pub(crate) const V1_MODEL_NAME: &str = "model_name";
}

/// Linear and logistic regression: `weight` (+ `bias`), or `coefficients`
/// (+ `intercept`).
pub(crate) mod linear {
    /// `model_type` of linear regression.
    pub(crate) const LINEAR_REGRESSION: &str = "LinearRegression";
    /// `model_type` of logistic regression.
    pub(crate) const LOGISTIC_REGRESSION: &str = "LogisticRegression";
    /// Tensor: the `[n_out, n_in]` (or `[n_in]`) weight matrix.
    pub(crate) const WEIGHT: &str = "weight";
    /// Tensor: the `[n_out]` bias.
    pub(crate) const BIAS: &str = "bias";
    /// Tensor: the `[n_features]` coefficients (aprender's naming).
    pub(crate) const COEFFICIENTS: &str = "coefficients";
    /// Tensor: the `[1]` intercept (aprender's naming).
    pub(crate) const INTERCEPT: &str = "intercept";
    /// Metadata: whether the model was fitted with an intercept.
    #[cfg_attr(not(feature = "v1"), allow(dead_code))]
    pub(crate) const FIT_INTERCEPT: &str = "fit_intercept";
}

/// Decision trees and random forests: per tree, pre-order node arrays (f32)
/// named with a prefix (`""` for a lone tree, [`forest_prefix`](tree::forest_prefix) in a forest).
pub(crate) mod tree {
    /// `model_type` of a decision tree.
    pub(crate) const DECISION_TREE: &str = "DecisionTreeClassifier";
    /// aprender's name of a decision tree, also accepted as `model_type`.
    pub(crate) const DECISION_TREE_APRENDER: &str = "DecisionTree";
    /// `model_type` of a random forest.
    pub(crate) const RANDOM_FOREST: &str = "RandomForestClassifier";
    /// aprender's name of a random forest, also accepted as `model_type`.
    pub(crate) const RANDOM_FOREST_APRENDER: &str = "RandomForest";
    /// Tensor: each node's feature (−1 on a leaf).
    pub(crate) const NODE_FEATURES: &str = "node_features";
    /// Tensor: each node's threshold.
    pub(crate) const NODE_THRESHOLDS: &str = "node_thresholds";
    /// Tensor: each leaf's class (0 on a split).
    pub(crate) const NODE_CLASSES: &str = "node_classes";
    /// Tensor: the training rows that reached each node (not read).
    #[cfg_attr(not(feature = "v1"), allow(dead_code))]
    pub(crate) const NODE_SAMPLES: &str = "node_samples";
    /// Tensor: each node's left child (−1 for none).
    pub(crate) const NODE_LEFT_CHILD: &str = "node_left_child";
    /// Tensor: each node's right child (−1 for none).
    pub(crate) const NODE_RIGHT_CHILD: &str = "node_right_child";
    /// Tensor: the tree's `[1]` maximum depth (not read).
    #[cfg_attr(not(feature = "v1"), allow(dead_code))]
    pub(crate) const MAX_DEPTH: &str = "max_depth";
    /// Tensor: a forest's `[1]` number of trees.
    pub(crate) const N_ESTIMATORS: &str = "n_estimators";

    /// The prefix of tree `i`'s arrays in a forest (`tree_{i}_`).
    pub(crate) fn forest_prefix(i: usize) -> String {
        format!("tree_{i}_")
    }
}

/// k-means: the centroids (the other entries are informational).
pub(crate) mod kmeans {
    /// `model_type` of k-means.
    pub(crate) const KMEANS: &str = "KMeans";
    /// Tensor: the `[k, d]` centroids.
    pub(crate) const CENTROIDS: &str = "centroids";
    /// Tensor `[1]` and metadata: the number of clusters (not read).
    #[cfg_attr(not(feature = "v1"), allow(dead_code))]
    pub(crate) const N_CLUSTERS: &str = "n_clusters";
    /// Tensor: the `[1]` final inertia (not read).
    #[cfg_attr(not(feature = "v1"), allow(dead_code))]
    pub(crate) const INERTIA: &str = "inertia";
    /// Metadata: the iterations training ran (not read).
    #[cfg_attr(not(feature = "v1"), allow(dead_code))]
    pub(crate) const N_ITER: &str = "n_iter";
}

/// A stack of layers: metadata `layers`, parameter tensors `"0"`, `"1"`, ...
pub(crate) mod sequential {
    /// `model_type` of a layer stack.
    pub(crate) const NEURAL_SEQUENTIAL: &str = "NeuralSequential";
    /// Also accepted as `model_type`.
    pub(crate) const SEQUENTIAL: &str = "Sequential";
    /// Metadata: the layers, as strings (`"Linear(4->8)"`, `"ReLU"`, ...).
    pub(crate) const LAYERS: &str = "layers";
    /// Metadata: the input width (checked against the layers when present).
    pub(crate) const N_INPUTS: &str = "n_inputs";
    /// Metadata: the output width (checked against the layers when present).
    pub(crate) const N_OUTPUTS: &str = "n_outputs";
}

/// ONNX-style tree ensembles: flat node and leaf arrays for every tree.
pub(crate) mod ensemble {
    /// `model_type` of a tree ensemble.
    pub(crate) const TREE_ENSEMBLE: &str = "TreeEnsemble";
    /// Metadata: the number of output columns.
    pub(crate) const N_TARGETS: &str = "n_targets";
    /// Metadata: how leaf weights combine (`SUM`, `AVERAGE`, `MIN`, `MAX`).
    pub(crate) const AGGREGATE: &str = "aggregate";
    /// Metadata: the transform of the scores (`NONE`, `LOGISTIC`, ...).
    pub(crate) const POST_TRANSFORM: &str = "post_transform";
    /// Metadata: how a one-column binary classifier scores its classes.
    pub(crate) const BINARY: &str = "binary";
    /// Tensor (I32): each tree's root node.
    pub(crate) const TREE_ROOTS: &str = "tree_roots";
    /// Tensor (I32): each node's feature.
    pub(crate) const NODES_FEATURE: &str = "nodes_feature";
    /// Tensor (U8): each node's mode.
    pub(crate) const NODES_MODE: &str = "nodes_mode";
    /// Tensor (F32): each node's threshold.
    pub(crate) const NODES_THRESHOLD: &str = "nodes_threshold";
    /// Tensor (I32): each node's child when the test holds.
    pub(crate) const NODES_TRUE: &str = "nodes_true";
    /// Tensor (I32): each node's child when it does not.
    pub(crate) const NODES_FALSE: &str = "nodes_false";
    /// Tensor (U8): whether a missing value takes the true branch.
    pub(crate) const NODES_MISSING_TRUE: &str = "nodes_missing_true";
    /// Tensor (I32): where each node's leaf entries start (one more than nodes).
    pub(crate) const LEAF_OFFSETS: &str = "leaf_offsets";
    /// Tensor (I32): each leaf entry's output column.
    pub(crate) const LEAF_TARGETS: &str = "leaf_targets";
    /// Tensor (F32): each leaf entry's weight.
    pub(crate) const LEAF_WEIGHTS: &str = "leaf_weights";
    /// Tensor (F32, optional): the per-column base values.
    pub(crate) const BASE_VALUES: &str = "base_values";
}
