//! The bincode payloads of aprender 0.72.x classical models (apr-format.md §2).
//!
//! bincode 1.x default options: integers little-endian and fixed width
//! (`u64`/`usize` as 8 bytes), `bool` as one byte, `Option` as a one-byte tag
//! then the value, `Vec` as a `u64` length then the elements, an enum as a
//! `u32` variant index then its fields. Every length is checked against the
//! bytes that remain before anything is allocated, and decision trees are read
//! with an explicit work list (no recursion), so hostile payloads can neither
//! exhaust memory nor overflow the stack.

use super::ModelTypeCode;

/// The deepest decision tree the decoder accepts (root at depth 1).
pub const MAX_TREE_DEPTH: usize = 1024;

/// A fitted (or unfitted) model decoded from a v1 payload.
#[derive(Debug, Clone, PartialEq)]
pub enum V1Model {
    /// `aprender::linear_model::LinearRegression`.
    LinearRegression {
        /// One coefficient per feature; `None` when the model was never fitted.
        coefficients: Option<Vec<f32>>,
        /// The intercept added to every prediction.
        intercept: f32,
        /// Whether the model was fitted with an intercept.
        fit_intercept: bool,
    },
    /// `aprender::classification::LogisticRegression` (binary).
    LogisticRegression {
        /// One coefficient per feature; `None` when the model was never fitted.
        coefficients: Option<Vec<f32>>,
        /// The intercept of the logit.
        intercept: f32,
        /// Training hyperparameter: learning rate.
        learning_rate: f32,
        /// Training hyperparameter: maximum iterations.
        max_iter: u64,
        /// Training hyperparameter: convergence tolerance.
        tol: f32,
        /// Training hyperparameter: class weighting.
        class_weight: ClassWeight,
        /// Training hyperparameter: L2 penalty.
        l2_penalty: f32,
        /// Training hyperparameter: how batches were formed.
        fit_mode: FitMode,
    },
    /// `aprender::tree::DecisionTreeClassifier`.
    DecisionTree(DecisionTree),
    /// `aprender::tree::RandomForestClassifier`.
    RandomForest {
        /// The fitted trees.
        trees: Vec<DecisionTree>,
        /// The configured number of trees.
        n_estimators: u64,
        /// The configured maximum depth of every tree.
        max_depth: Option<u64>,
        /// The seed the forest was trained with.
        random_state: Option<u64>,
        /// Out-of-bag sample indices per tree (training data; not converted).
        oob_indices: Vec<Vec<u64>>,
        /// The training matrix aprender keeps (training data; not converted).
        x_train: Option<Matrix>,
        /// The training labels aprender keeps (training data; not converted).
        y_train: Option<Vec<u64>>,
    },
    /// `aprender::cluster::KMeans`.
    KMeans {
        /// The configured number of clusters.
        n_clusters: u64,
        /// Training hyperparameter: maximum iterations.
        max_iter: u64,
        /// Training hyperparameter: convergence tolerance.
        tol: f32,
        /// The seed the model was trained with.
        random_state: Option<u64>,
        /// The cluster centres, `n_clusters` × features; `None` when unfitted.
        centroids: Option<Matrix>,
        /// The cluster of every training row (training data; not converted).
        labels: Option<Vec<u64>>,
        /// The final within-cluster sum of squares.
        inertia: f32,
        /// The iterations training ran.
        n_iter: u64,
    },
}

impl V1Model {
    /// The aprender family name of this model ("LinearRegression", ...).
    pub fn family(&self) -> &'static str {
        self.type_code().name()
    }

    /// The v1 model_type code of this model.
    fn type_code(&self) -> ModelTypeCode {
        match self {
            V1Model::LinearRegression { .. } => ModelTypeCode::LinearRegression,
            V1Model::LogisticRegression { .. } => ModelTypeCode::LogisticRegression,
            V1Model::DecisionTree(_) => ModelTypeCode::DecisionTree,
            V1Model::RandomForest { .. } => ModelTypeCode::RandomForest,
            V1Model::KMeans { .. } => ModelTypeCode::KMeans,
        }
    }
}

/// `aprender`'s `ClassWeight` of a logistic regression.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassWeight {
    /// Every class weighs the same.
    Uniform,
    /// Weights inversely proportional to class frequency.
    Balanced,
    /// Weights given by the user, one per class.
    Manual(Vec<f32>),
}

/// `aprender`'s `FitMode` of a logistic regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FitMode {
    /// Full-batch gradient descent.
    Batch,
    /// One row at a time.
    Stochastic,
    /// Mini-batches of the given size.
    MiniBatch(u64),
}

/// A row-major `f32` matrix (`aprender::primitives::Matrix<f32>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// `rows × cols` values, row-major.
    pub data: Vec<f32>,
    /// Number of rows.
    pub rows: u64,
    /// Number of columns.
    pub cols: u64,
}

/// A decision tree, its nodes flattened in pre-order (root first, then the
/// whole left subtree, then the right one).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecisionTree {
    /// The nodes in pre-order; empty when the tree was never fitted.
    pub nodes: Vec<TreeNode>,
    /// The configured maximum depth.
    pub max_depth: Option<u64>,
    /// The number of features the tree was fitted on.
    pub n_features: Option<u64>,
}

impl DecisionTree {
    /// The depth of the tree: 0 when empty, 1 for a single leaf.
    pub fn depth(&self) -> usize {
        let mut depths = vec![0usize; self.nodes.len()];
        let mut deepest = 0;
        for (index, node) in self.nodes.iter().enumerate() {
            let depth = match depths.get(index) {
                Some(0) | None => 1,
                Some(d) => *d,
            };
            deepest = deepest.max(depth);
            if let TreeNode::Split { left, right, .. } = node {
                for child in [*left, *right] {
                    if let Some(slot) = depths.get_mut(child) {
                        *slot = depth + 1;
                    }
                }
            }
        }
        deepest
    }
}

/// One node of a [`DecisionTree`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TreeNode {
    /// An internal node: rows with `x[feature] <= threshold` go left.
    Split {
        /// The feature tested.
        feature: u64,
        /// The threshold.
        threshold: f32,
        /// The Gini impurity at this node.
        impurity: f32,
        /// The training rows that reached this node.
        n_samples: u64,
        /// Index of the left child in [`DecisionTree::nodes`].
        left: usize,
        /// Index of the right child in [`DecisionTree::nodes`].
        right: usize,
    },
    /// A leaf predicting `class`.
    Leaf {
        /// The predicted class.
        class: u64,
        /// The training rows that reached this leaf.
        n_samples: u64,
        /// The Gini impurity at this leaf.
        impurity: f32,
    },
}

/// Why a payload did not decode, before the family and the aprender version
/// are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadFault {
    /// The payload ended in the middle of a field.
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Its byte offset in the payload.
        offset: usize,
        /// Bytes it needs.
        needed: u64,
        /// Bytes that remained.
        remaining: usize,
    },
    /// A field holds a value the layout does not allow.
    Invalid {
        /// The field being read.
        field: &'static str,
        /// Its byte offset in the payload.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
    /// Bytes remained after the whole struct was read.
    Trailing {
        /// Bytes the struct used.
        consumed: usize,
        /// Bytes in the payload.
        total: usize,
    },
}

struct PayloadReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> PayloadReader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], PayloadFault> {
        let truncated = PayloadFault::Truncated {
            field,
            offset: self.pos,
            needed: n as u64,
            remaining: self.remaining(),
        };
        let end = self.pos.checked_add(n).ok_or(truncated.clone())?;
        let slice = self.bytes.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn fixed<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], PayloadFault> {
        let slice = self.take(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, PayloadFault> {
        Ok(self.fixed::<1>(field)?[0])
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, PayloadFault> {
        Ok(u32::from_le_bytes(self.fixed(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, PayloadFault> {
        Ok(u64::from_le_bytes(self.fixed(field)?))
    }

    fn f32(&mut self, field: &'static str) -> Result<f32, PayloadFault> {
        Ok(f32::from_le_bytes(self.fixed(field)?))
    }

    fn invalid(&self, field: &'static str, offset: usize, reason: String) -> PayloadFault {
        PayloadFault::Invalid {
            field,
            offset,
            reason,
        }
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, PayloadFault> {
        let offset = self.pos;
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.invalid(field, offset, format!("bool byte {other} is not 0 or 1"))),
        }
    }

    /// An `Option` tag: `true` for `Some`.
    fn option(&mut self, field: &'static str) -> Result<bool, PayloadFault> {
        let offset = self.pos;
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.invalid(
                field,
                offset,
                format!("Option tag {other} is neither 0 (None) nor 1 (Some)"),
            )),
        }
    }

    /// A `Vec` length whose elements take at least `min_elem` bytes each,
    /// checked against what remains so no hostile length allocates.
    fn len(&mut self, field: &'static str, min_elem: usize) -> Result<usize, PayloadFault> {
        let offset = self.pos;
        let len = self.u64(field)?;
        let fits = usize::try_from(len)
            .ok()
            .and_then(|n| n.checked_mul(min_elem).map(|bytes| (n, bytes)))
            .filter(|(_, bytes)| *bytes <= self.remaining());
        match fits {
            Some((n, _)) => Ok(n),
            None => Err(PayloadFault::Truncated {
                field,
                offset,
                needed: len.saturating_mul(min_elem as u64),
                remaining: self.remaining(),
            }),
        }
    }

    fn option_u64(&mut self, field: &'static str) -> Result<Option<u64>, PayloadFault> {
        if self.option(field)? {
            Ok(Some(self.u64(field)?))
        } else {
            Ok(None)
        }
    }

    fn f32_vec(&mut self, field: &'static str) -> Result<Vec<f32>, PayloadFault> {
        let n = self.len(field, 4)?;
        let bytes = self.take(field, n.saturating_mul(4))?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn u64_vec(&mut self, field: &'static str) -> Result<Vec<u64>, PayloadFault> {
        let n = self.len(field, 8)?;
        let bytes = self.take(field, n.saturating_mul(8))?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }

    /// `Option<Vector<f32>>`: the vector is a struct with one `Vec<f32>`.
    fn option_vector(&mut self, field: &'static str) -> Result<Option<Vec<f32>>, PayloadFault> {
        if self.option(field)? {
            Ok(Some(self.f32_vec(field)?))
        } else {
            Ok(None)
        }
    }

    fn option_matrix(&mut self, field: &'static str) -> Result<Option<Matrix>, PayloadFault> {
        if !self.option(field)? {
            return Ok(None);
        }
        let data = self.f32_vec(field)?;
        let dims_at = self.pos;
        let rows = self.u64(field)?;
        let cols = self.u64(field)?;
        let consistent = rows
            .checked_mul(cols)
            .is_some_and(|n| n == data.len() as u64);
        if !consistent {
            return Err(self.invalid(
                field,
                dims_at,
                format!("a {rows}×{cols} matrix cannot hold {} values", data.len()),
            ));
        }
        Ok(Some(Matrix { data, rows, cols }))
    }

    fn enum_tag(&mut self, field: &'static str, variants: u32) -> Result<u32, PayloadFault> {
        let offset = self.pos;
        let tag = self.u32(field)?;
        if tag >= variants {
            return Err(self.invalid(
                field,
                offset,
                format!("enum variant {tag} does not exist (expected 0..{variants})"),
            ));
        }
        Ok(tag)
    }

    fn decision_tree(&mut self) -> Result<DecisionTree, PayloadFault> {
        let nodes = if self.option("tree")? {
            self.tree_nodes()?
        } else {
            Vec::new()
        };
        let max_depth = self.option_u64("max_depth")?;
        let n_features = self.option_u64("n_features")?;
        Ok(DecisionTree {
            nodes,
            max_depth,
            n_features,
        })
    }

    /// Reads a pre-order `TreeNode` without recursion.
    fn tree_nodes(&mut self) -> Result<Vec<TreeNode>, PayloadFault> {
        const NODE: u32 = 0;
        // A slot waiting for a node: (parent index and whether it is the
        // right child, depth of the node).
        let mut pending: Vec<(Option<(usize, bool)>, usize)> = vec![(None, 1)];
        let mut nodes = Vec::new();
        while let Some((parent, depth)) = pending.pop() {
            let offset = self.pos;
            if depth > MAX_TREE_DEPTH {
                return Err(self.invalid(
                    "tree",
                    offset,
                    format!("the tree is deeper than {MAX_TREE_DEPTH} levels"),
                ));
            }
            let index = nodes.len();
            let node = if self.enum_tag("tree node", 2)? == NODE {
                let feature = self.u64("tree node feature")?;
                let threshold = self.f32("tree node threshold")?;
                let impurity = self.f32("tree node impurity")?;
                let n_samples = self.u64("tree node n_node_samples")?;
                pending.push((Some((index, true)), depth + 1));
                pending.push((Some((index, false)), depth + 1));
                TreeNode::Split {
                    feature,
                    threshold,
                    impurity,
                    n_samples,
                    left: 0,
                    right: 0,
                }
            } else {
                TreeNode::Leaf {
                    class: self.u64("tree leaf class")?,
                    n_samples: self.u64("tree leaf n_samples")?,
                    impurity: self.f32("tree leaf impurity")?,
                }
            };
            nodes.push(node);
            if let Some((parent_index, is_right)) = parent {
                if let Some(TreeNode::Split { left, right, .. }) = nodes.get_mut(parent_index) {
                    if is_right {
                        *right = index;
                    } else {
                        *left = index;
                    }
                }
            }
        }
        Ok(nodes)
    }
}

/// Decodes `payload` (already decompressed) as the aprender 0.72.x struct of
/// `model_type`, requiring that every byte is used.
pub fn decode_payload(model_type: ModelTypeCode, payload: &[u8]) -> Result<V1Model, PayloadFault> {
    let mut r = PayloadReader {
        bytes: payload,
        pos: 0,
    };
    let model = match model_type {
        ModelTypeCode::LinearRegression => V1Model::LinearRegression {
            coefficients: r.option_vector("coefficients")?,
            intercept: r.f32("intercept")?,
            fit_intercept: r.bool("fit_intercept")?,
        },
        ModelTypeCode::LogisticRegression => V1Model::LogisticRegression {
            coefficients: r.option_vector("coefficients")?,
            intercept: r.f32("intercept")?,
            learning_rate: r.f32("learning_rate")?,
            max_iter: r.u64("max_iter")?,
            tol: r.f32("tol")?,
            class_weight: match r.enum_tag("class_weight", 3)? {
                0 => ClassWeight::Uniform,
                1 => ClassWeight::Balanced,
                _ => ClassWeight::Manual(r.f32_vec("class_weight")?),
            },
            l2_penalty: r.f32("l2_penalty")?,
            fit_mode: match r.enum_tag("fit_mode", 3)? {
                0 => FitMode::Batch,
                1 => FitMode::Stochastic,
                _ => FitMode::MiniBatch(r.u64("fit_mode")?),
            },
        },
        ModelTypeCode::DecisionTree => V1Model::DecisionTree(r.decision_tree()?),
        ModelTypeCode::RandomForest => {
            // Each tree takes at least three bytes (three `None` tags).
            let n_trees = r.len("trees", 3)?;
            let mut trees = Vec::with_capacity(n_trees);
            for _ in 0..n_trees {
                trees.push(r.decision_tree()?);
            }
            let n_estimators = r.u64("n_estimators")?;
            let max_depth = r.option_u64("max_depth")?;
            let random_state = r.option_u64("random_state")?;
            let n_oob = r.len("oob_indices", 8)?;
            let mut oob_indices = Vec::with_capacity(n_oob);
            for _ in 0..n_oob {
                oob_indices.push(r.u64_vec("oob_indices")?);
            }
            let x_train = r.option_matrix("x_train")?;
            let y_train = if r.option("y_train")? {
                Some(r.u64_vec("y_train")?)
            } else {
                None
            };
            V1Model::RandomForest {
                trees,
                n_estimators,
                max_depth,
                random_state,
                oob_indices,
                x_train,
                y_train,
            }
        }
        ModelTypeCode::KMeans => V1Model::KMeans {
            n_clusters: r.u64("n_clusters")?,
            max_iter: r.u64("max_iter")?,
            tol: r.f32("tol")?,
            random_state: r.option_u64("random_state")?,
            centroids: r.option_matrix("centroids")?,
            labels: if r.option("labels")? {
                Some(r.u64_vec("labels")?)
            } else {
                None
            },
            inertia: r.f32("inertia")?,
            n_iter: r.u64("n_iter")?,
        },
    };
    if r.pos != payload.len() {
        return Err(PayloadFault::Trailing {
            consumed: r.pos,
            total: payload.len(),
        });
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(out: &mut Vec<u8>, class: u64) {
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&class.to_le_bytes());
        out.extend_from_slice(&5u64.to_le_bytes());
        out.extend_from_slice(&0f32.to_le_bytes());
    }

    fn split_head(out: &mut Vec<u8>, feature: u64, threshold: f32) {
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&feature.to_le_bytes());
        out.extend_from_slice(&threshold.to_le_bytes());
        out.extend_from_slice(&0.5f32.to_le_bytes());
        out.extend_from_slice(&10u64.to_le_bytes());
    }

    #[test]
    fn tree_nodes_link_in_pre_order() {
        // split(f0) -> [split(f1) -> [leaf 0, leaf 1], leaf 2]
        let mut bytes = vec![1u8];
        split_head(&mut bytes, 0, 1.0);
        split_head(&mut bytes, 1, 2.0);
        leaf(&mut bytes, 0);
        leaf(&mut bytes, 1);
        leaf(&mut bytes, 2);
        bytes.extend_from_slice(&[1, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
        let model = decode_payload(ModelTypeCode::DecisionTree, &bytes).unwrap();
        let V1Model::DecisionTree(tree) = model else {
            panic!("not a tree")
        };
        assert_eq!(tree.nodes.len(), 5);
        assert!(matches!(
            tree.nodes[0],
            TreeNode::Split {
                left: 1,
                right: 4,
                ..
            }
        ));
        assert!(matches!(
            tree.nodes[1],
            TreeNode::Split {
                left: 2,
                right: 3,
                ..
            }
        ));
        assert!(matches!(tree.nodes[4], TreeNode::Leaf { class: 2, .. }));
        assert_eq!(tree.depth(), 3);
        assert_eq!(tree.max_depth, Some(3));
        assert_eq!(tree.n_features, None);
    }

    #[test]
    fn a_very_deep_tree_is_refused_without_recursion() {
        let mut bytes = vec![1u8];
        for _ in 0..(MAX_TREE_DEPTH + 10) {
            split_head(&mut bytes, 0, 0.0);
        }
        let fault = decode_payload(ModelTypeCode::DecisionTree, &bytes).unwrap_err();
        assert!(
            matches!(fault, PayloadFault::Invalid { field: "tree", .. }),
            "{fault:?}"
        );
    }

    #[test]
    fn hostile_lengths_do_not_allocate() {
        let mut bytes = vec![1u8];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        let fault = decode_payload(ModelTypeCode::LinearRegression, &bytes).unwrap_err();
        assert!(matches!(fault, PayloadFault::Truncated { .. }), "{fault:?}");
    }

    #[test]
    fn trailing_bytes_are_reported() {
        let mut bytes = vec![0u8];
        bytes.extend_from_slice(&1f32.to_le_bytes());
        bytes.extend_from_slice(&[1, 0xAA]);
        assert_eq!(
            decode_payload(ModelTypeCode::LinearRegression, &bytes),
            Err(PayloadFault::Trailing {
                consumed: 6,
                total: 7
            })
        );
    }
}
