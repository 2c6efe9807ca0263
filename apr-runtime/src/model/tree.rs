//! Decision trees and random forests stored as pre-order `f32` node arrays.
//!
//! A tree is six arrays of equal length, one entry per node in pre-order:
//! `node_features` (−1 marks a leaf), `node_thresholds`, `node_classes`,
//! `node_samples`, `node_left_child`, `node_right_child` (−1 = none). A row
//! goes left when `x[feature] <= threshold`. A forest stores tree `i` under
//! the prefix `tree_{i}_` and votes: the majority class wins, a tie goes to
//! the lowest class, and the probabilities are votes / trees.
//!
//! Validation at load makes every walk terminate inside the arrays: each
//! split's children must come after it in pre-order (which rules out
//! cycles) and lie inside the array, each feature must be below the model's
//! feature count, each class and feature must be an exact non-negative
//! integer. Every value of the five arrays read must be finite (a NaN or
//! infinite threshold is [`ModelError::NonFiniteWeight`], like any other).

use super::output::{argmax, sized, BatchLayout, Output, ProbabilityLayout, RowsOut, Scratch};
use super::source::{f32_values, shape_mismatch, vector_len, TensorSource};
use super::{ModelError, PredictError};
use crate::format::schema::{self, tree as names};

/// The largest integer an `f32` node field may hold (every integer up to
/// 2^24 is exact in `f32`).
const MAX_EXACT_INTEGER: f32 = 16_777_216.0;

/// The most classes a tree model may declare (leaf classes are exact `f32`
/// integers, so none can exceed 2^24).
const MAX_CLASSES: usize = 1 << 24;

#[derive(Debug, Clone, Copy, PartialEq)]
enum TreeNode {
    Split {
        feature: usize,
        threshold: f32,
        left: usize,
        right: usize,
    },
    Leaf {
        class: usize,
    },
}

/// One validated tree.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DecisionTree {
    nodes: Vec<TreeNode>,
}

impl DecisionTree {
    /// The class of the leaf `row` reaches.
    fn classify(&self, row: &[f32]) -> Result<usize, PredictError> {
        let mut index = 0;
        // Children always point forward, so a walk visits at most every node once.
        for _ in 0..self.nodes.len() {
            match self.nodes.get(index) {
                Some(TreeNode::Leaf { class }) => return Ok(*class),
                Some(TreeNode::Split {
                    feature,
                    threshold,
                    left,
                    right,
                }) => {
                    let value = row
                        .get(*feature)
                        .ok_or(PredictError::TreeWalk { node: index })?;
                    index = if *value <= *threshold { *left } else { *right };
                }
                None => break,
            }
        }
        Err(PredictError::TreeWalk { node: index })
    }

    fn max_feature(&self) -> Option<usize> {
        self.nodes
            .iter()
            .filter_map(|n| match n {
                TreeNode::Split { feature, .. } => Some(*feature),
                TreeNode::Leaf { .. } => None,
            })
            .max()
    }

    /// The most nodes a walk visits (1 for a lone leaf). Children come
    /// after their parent in pre-order, so one forward pass finds every
    /// node's depth.
    fn depth(&self) -> usize {
        let mut depths = vec![0usize; self.nodes.len()];
        if let Some(root) = depths.first_mut() {
            *root = 1;
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let here = depths.get(i).copied().unwrap_or(0);
            if let TreeNode::Split { left, right, .. } = node {
                for child in [left, right] {
                    if let Some(d) = depths.get_mut(*child) {
                        *d = (*d).max(here + 1);
                    }
                }
            }
        }
        depths.into_iter().max().unwrap_or(0)
    }

    fn max_class(&self) -> Option<usize> {
        self.nodes
            .iter()
            .filter_map(|n| match n {
                TreeNode::Leaf { class } => Some(*class),
                TreeNode::Split { .. } => None,
            })
            .max()
    }
}

/// An exact integer in `-1..=2^24` stored as `f32`.
fn exact_integer(v: f32) -> Option<i64> {
    // `as` is exact here: v is integral and within ±2^24.
    (v.is_finite() && v.fract() == 0.0 && (-1.0..=MAX_EXACT_INTEGER).contains(&v))
        .then_some(v as i64)
}

/// Reads and validates the tree whose arrays are named `{prefix}node_*`.
/// `tree` is the index within a forest (for error messages).
fn load_tree(
    src: &TensorSource<'_, '_>,
    prefix: &str,
    tree: Option<usize>,
    n_features: Option<usize>,
) -> Result<DecisionTree, ModelError> {
    let features_tensor = src.require(&format!("{prefix}{}", names::NODE_FEATURES))?;
    let n = match vector_len(&features_tensor) {
        Some(n) if n > 0 => n,
        _ => {
            return Err(shape_mismatch(
                &features_tensor,
                "[n_nodes] with at least one node",
            ))
        }
    };
    let read = |field: &str| -> Result<Vec<f32>, ModelError> {
        let tensor = src.require(&format!("{prefix}{field}"))?;
        if vector_len(&tensor) != Some(n) {
            return Err(shape_mismatch(
                &tensor,
                format!(
                    "[{n}] (one entry per node, like {prefix}{})",
                    names::NODE_FEATURES
                ),
            ));
        }
        Ok(src.finite_f32_values(&tensor)?.into_owned())
    };
    let features = src.finite_f32_values(&features_tensor)?;
    let thresholds = read(names::NODE_THRESHOLDS)?;
    let classes = read(names::NODE_CLASSES)?;
    let lefts = read(names::NODE_LEFT_CHILD)?;
    let rights = read(names::NODE_RIGHT_CHILD)?;

    let invalid = |node: usize, reason: String| ModelError::InvalidTree { tree, node, reason };
    let mut nodes = Vec::with_capacity(n);
    for (i, ((((&f, &t), &c), &l), &r)) in features
        .iter()
        .zip(&thresholds)
        .zip(&classes)
        .zip(&lefts)
        .zip(&rights)
        .enumerate()
    {
        let feature = exact_integer(f)
            .ok_or_else(|| invalid(i, format!("feature {f} is not -1 or a feature index")))?;
        if feature < 0 {
            let class = exact_integer(c)
                .and_then(|c| usize::try_from(c).ok())
                .ok_or_else(|| invalid(i, format!("leaf class {c} is not a class index")))?;
            nodes.push(TreeNode::Leaf { class });
            continue;
        }
        let feature = usize::try_from(feature)
            .map_err(|_| invalid(i, format!("feature {f} is not a feature index")))?;
        if let Some(n_features) = n_features {
            if feature >= n_features {
                return Err(invalid(
                    i,
                    format!("splits on feature {feature}, but the model has {n_features} features"),
                ));
            }
        }
        let child = |v: f32, side: &str| -> Result<usize, ModelError> {
            exact_integer(v)
                .and_then(|v| usize::try_from(v).ok())
                .filter(|&c| c > i && c < n)
                .ok_or_else(|| {
                    invalid(
                        i,
                        format!(
                            "{side} child {v} is not a later node (children must point forward in pre-order, within 0..{n})"
                        ),
                    )
                })
        };
        nodes.push(TreeNode::Split {
            feature,
            threshold: t,
            left: child(l, "left")?,
            right: child(r, "right")?,
        });
    }
    Ok(DecisionTree { nodes })
}

/// One tree or a forest of them; a single tree is a forest of one (its
/// votes / trees is the one-hot of its leaf class).
pub(super) struct TreeEnsemble {
    trees: Vec<DecisionTree>,
    /// The sum of the trees' depths.
    max_visits: usize,
    n_classes: usize,
    n_features: usize,
}

impl TreeEnsemble {
    /// A `DecisionTreeClassifier`: arrays `node_*`.
    pub(super) fn load_tree(src: &TensorSource<'_, '_>) -> Result<Self, ModelError> {
        let n_features = src.metadata_count(schema::N_FEATURES)?;
        let tree = load_tree(src, "", None, n_features)?;
        Self::new(
            vec![tree],
            n_features,
            src.metadata_count(schema::N_CLASSES)?,
        )
    }

    /// A `RandomForestClassifier`: arrays `tree_{i}_node_*`, `i` in
    /// `0..n_estimators` (the `n_estimators` tensor when present, else as
    /// many consecutive trees as the file holds).
    pub(super) fn load_forest(src: &TensorSource<'_, '_>) -> Result<Self, ModelError> {
        let n_features = src.metadata_count(schema::N_FEATURES)?;
        let n_trees = match src.get(names::N_ESTIMATORS) {
            Some(tensor) => {
                let values = f32_values(&tensor)?;
                match (values.as_ref(), tensor.numel()) {
                    ([v], 1) => exact_integer(*v)
                        .and_then(|v| usize::try_from(v).ok())
                        .filter(|&v| v > 0)
                        .ok_or_else(|| {
                            shape_mismatch(&tensor, format!("a positive tree count, found {v}"))
                        })?,
                    _ => return Err(shape_mismatch(&tensor, "[1] (the number of trees)")),
                }
            }
            None => (0usize..)
                .take_while(|&i| {
                    let prefix = names::forest_prefix(i);
                    src.get(&format!("{prefix}{}", names::NODE_FEATURES))
                        .is_some()
                })
                .count()
                .max(1),
        };
        let trees = (0..n_trees)
            .map(|i| load_tree(src, &names::forest_prefix(i), Some(i), n_features))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(trees, n_features, src.metadata_count(schema::N_CLASSES)?)
    }

    /// `n_classes` is metadata `n_classes` when present (it must cover every
    /// leaf class), else the largest leaf class + 1.
    fn new(
        trees: Vec<DecisionTree>,
        n_features: Option<usize>,
        declared_classes: Option<usize>,
    ) -> Result<Self, ModelError> {
        let seen_classes = trees
            .iter()
            .filter_map(DecisionTree::max_class)
            .max()
            .map_or(1, |c| c.saturating_add(1));
        let n_classes = match declared_classes {
            None => seen_classes,
            Some(n) if n > MAX_CLASSES => {
                return Err(ModelError::InvalidMetadata {
                    key: schema::N_CLASSES.to_owned(),
                    reason: format!(
                        "{n} is more than the {MAX_CLASSES} classes a tree can address"
                    ),
                })
            }
            Some(n) if n >= seen_classes => n,
            Some(n) => {
                return Err(ModelError::InvalidMetadata {
                    key: schema::N_CLASSES.to_owned(),
                    reason: format!(
                        "it says {n} but a leaf predicts class {}",
                        seen_classes.saturating_sub(1)
                    ),
                })
            }
        };
        let n_features = match n_features {
            Some(n) => n,
            None => trees
                .iter()
                .filter_map(DecisionTree::max_feature)
                .max()
                .map_or(0, |f| f.saturating_add(1)),
        };
        Ok(Self {
            max_visits: trees.iter().map(DecisionTree::depth).sum(),
            trees,
            n_classes,
            n_features,
        })
    }

    pub(super) fn n_features(&self) -> usize {
        self.n_features
    }

    pub(super) fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Votes / trees into `probs` (`n_classes` values); returns the winner.
    fn vote(&self, row: &[f32], probs: &mut [f32]) -> Result<usize, PredictError> {
        probs.fill(0.0);
        for tree in &self.trees {
            let class = tree.classify(row)?;
            if let Some(votes) = probs.get_mut(class) {
                *votes += 1.0;
            }
        }
        let winner = argmax(probs);
        // Counts are exact in f32 up to 2^24 trees.
        let n_trees = self.trees.len() as f32;
        for p in probs.iter_mut() {
            *p /= n_trees;
        }
        Ok(winner)
    }

    pub(super) fn predict<'s>(
        &self,
        row: &[f32],
        scratch: &'s mut Scratch,
    ) -> Result<Output<'s>, PredictError> {
        let probs = sized(&mut scratch.primary, self.n_classes);
        let class = self.vote(row, probs)?;
        let probs: &'s [f32] = probs;
        Ok(Output {
            class: Some(class),
            outputs: probs,
            probabilities: Some(probs),
            label: None,
        })
    }

    pub(super) fn layout(&self) -> BatchLayout {
        BatchLayout {
            n_outputs: self.n_classes,
            classes: true,
            probabilities: ProbabilityLayout::SameAsOutputs,
        }
    }

    /// The rows of `rows` into `out` (see [`TreeEnsemble::layout`]); stops
    /// at the first row a broken tree cannot classify.
    pub(super) fn predict_rows(&self, rows: &[f32], out: RowsOut<'_>) -> Result<(), PredictError> {
        let outputs = out.outputs.chunks_exact_mut(self.n_classes.max(1));
        if self.n_features > 0 {
            for ((row, probs), class) in rows
                .chunks_exact(self.n_features)
                .zip(outputs)
                .zip(out.classes.iter_mut())
            {
                *class = self.vote(row, probs)?;
            }
        } else {
            for (probs, class) in outputs.zip(out.classes.iter_mut()) {
                *class = self.vote(&[], probs)?;
            }
        }
        Ok(())
    }

    /// Node visits per row in the worst case: the sum of the trees' depths.
    pub(super) fn max_visits(&self) -> usize {
        self.max_visits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_integers_only() {
        assert_eq!(exact_integer(-1.0), Some(-1));
        assert_eq!(exact_integer(0.0), Some(0));
        assert_eq!(exact_integer(16_777_216.0), Some(16_777_216));
        assert_eq!(exact_integer(1.5), None);
        assert_eq!(exact_integer(-2.0), None);
        assert_eq!(exact_integer(f32::NAN), None);
        assert_eq!(exact_integer(f32::INFINITY), None);
        assert_eq!(exact_integer(3.0e7), None);
    }

    #[test]
    fn walk_goes_left_on_equal_and_reports_a_broken_tree() {
        // x0 <= 0.5 ? class 0 : class 1
        let tree = DecisionTree {
            nodes: vec![
                TreeNode::Split {
                    feature: 0,
                    threshold: 0.5,
                    left: 1,
                    right: 2,
                },
                TreeNode::Leaf { class: 0 },
                TreeNode::Leaf { class: 1 },
            ],
        };
        assert_eq!(tree.classify(&[0.5]), Ok(0));
        assert_eq!(tree.classify(&[0.6]), Ok(1));
        // Unvalidated trees fail with an error, never a panic or a hang.
        let broken = DecisionTree {
            nodes: vec![TreeNode::Split {
                feature: 0,
                threshold: 0.5,
                left: 0,
                right: 7,
            }],
        };
        assert_eq!(
            broken.classify(&[0.0]),
            Err(PredictError::TreeWalk { node: 0 })
        );
        assert_eq!(
            broken.classify(&[1.0]),
            Err(PredictError::TreeWalk { node: 7 })
        );
        assert!(broken.classify(&[]).is_err());
    }
}
