//! Tree ensembles with the semantics of ONNX's `TreeEnsembleClassifier` /
//! `TreeEnsembleRegressor` (ai.onnx.ml opsets 1–3) as onnxruntime computes
//! them: gradient-boosted trees (scikit-learn, XGBoost, LightGBM), random
//! forests, extra trees and single decision trees, classifiers and
//! regressors. `docs/model-families.md` gives the tensors and metadata.
//!
//! Each node compares one feature with a threshold (`<=`, `<`, `>=`, `>`,
//! `==`, `!=`) and goes to its true or false child; a NaN feature goes to the
//! true child when the node's missing-value flag is set, else wherever the
//! comparison sends it (false, except for `!=`). Each leaf adds weights to
//! score columns; the ensemble aggregates the trees (sum, average, min or
//! max, in tree order, in `f32`), adds the base values, then applies the
//! post-transform (none, logistic, softmax, softmax-zero, probit).
//!
//! Validation at load makes every walk end inside the arrays: children come
//! after their parent (so a walk visits each node at most once), features
//! are below the model's feature count, leaf weight ranges and score
//! columns are in bounds.

use super::output::{sized, BatchLayout, Output, ProbabilityLayout, RowsOut, Scratch};
use super::source::{shape_mismatch, vector_len, TensorSource};
use super::{ModelError, PredictError};
use crate::format::schema::{self, ensemble as names};
use crate::format::{DType, Tensor};

/// The most nodes, weights, trees or features an ensemble may have (indices
/// are stored as `u32`, modes in the top byte of the feature).
const MAX_INDEX: usize = (1 << 24) - 1;

/// A node's comparison, as `nodes_mode` stores it (`u8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum NodeMode {
    /// `x <= threshold` goes to the true child (`BRANCH_LEQ`).
    Leq = 0,
    /// `x < threshold` (`BRANCH_LT`).
    Lt = 1,
    /// `x >= threshold` (`BRANCH_GTE`).
    Gte = 2,
    /// `x > threshold` (`BRANCH_GT`).
    Gt = 3,
    /// `x == threshold` (`BRANCH_EQ`).
    Eq = 4,
    /// `x != threshold` (`BRANCH_NEQ`).
    Neq = 5,
    /// A leaf (`LEAF`).
    Leaf = 6,
}

impl NodeMode {
    /// The mode stored as `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => NodeMode::Leq,
            1 => NodeMode::Lt,
            2 => NodeMode::Gte,
            3 => NodeMode::Gt,
            4 => NodeMode::Eq,
            5 => NodeMode::Neq,
            6 => NodeMode::Leaf,
            _ => return None,
        })
    }

    /// The mode ONNX names `name` (`"BRANCH_LEQ"`, ..., `"LEAF"`).
    pub fn from_onnx(name: &str) -> Option<Self> {
        Some(match name {
            "BRANCH_LEQ" => NodeMode::Leq,
            "BRANCH_LT" => NodeMode::Lt,
            "BRANCH_GTE" => NodeMode::Gte,
            "BRANCH_GT" => NodeMode::Gt,
            "BRANCH_EQ" => NodeMode::Eq,
            "BRANCH_NEQ" => NodeMode::Neq,
            "LEAF" => NodeMode::Leaf,
            _ => return None,
        })
    }
}

/// How the trees' leaf weights combine, per score column (metadata
/// `aggregate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// The sum over trees (`"SUM"`).
    Sum,
    /// The sum divided by the number of trees (`"AVERAGE"`).
    Average,
    /// The smallest weight any tree gives (`"MIN"`; the base value when
    /// none does).
    Min,
    /// The largest (`"MAX"`; the base value when none does).
    Max,
}

impl Aggregate {
    /// The aggregate named `name` (ONNX spelling).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            _ => return None,
        })
    }

    /// The ONNX spelling.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Sum => "SUM",
            Aggregate::Average => "AVERAGE",
            Aggregate::Min => "MIN",
            Aggregate::Max => "MAX",
        }
    }
}

/// The function applied to the aggregated scores (metadata
/// `post_transform`), as onnxruntime computes it in `f32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostTransform {
    /// The scores as they are (`"NONE"`).
    None,
    /// `1 / (1 + e^-x)` per score (`"LOGISTIC"`).
    Logistic,
    /// Softmax over the scores (`"SOFTMAX"`).
    Softmax,
    /// Softmax in which scores within 1e-7 of zero stay (nearly) zero
    /// (`"SOFTMAX_ZERO"`).
    SoftmaxZero,
    /// The probit function, `√2 · erfinv(2x − 1)` (`"PROBIT"`).
    Probit,
}

impl PostTransform {
    /// The transform named `name` (ONNX spelling).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "NONE" => PostTransform::None,
            "LOGISTIC" => PostTransform::Logistic,
            "SOFTMAX" => PostTransform::Softmax,
            "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
            "PROBIT" => PostTransform::Probit,
            _ => return None,
        })
    }

    /// The ONNX spelling.
    pub fn name(self) -> &'static str {
        match self {
            PostTransform::None => "NONE",
            PostTransform::Logistic => "LOGISTIC",
            PostTransform::Softmax => "SOFTMAX",
            PostTransform::SoftmaxZero => "SOFTMAX_ZERO",
            PostTransform::Probit => "PROBIT",
        }
    }

    /// Applies the transform to `scores` in place.
    pub(super) fn apply(self, scores: &mut [f32]) {
        match self {
            PostTransform::None => {}
            PostTransform::Logistic => scores.iter_mut().for_each(|s| *s = logistic(*s)),
            PostTransform::Softmax => softmax(scores),
            PostTransform::SoftmaxZero => softmax_zero(scores),
            PostTransform::Probit => scores.iter_mut().for_each(|s| *s = probit(*s)),
        }
    }
}

/// onnxruntime's `ComputeLogistic`: symmetric around 0, so that large
/// negative scores do not overflow.
pub(super) fn logistic(x: f32) -> f32 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 {
        1.0 - v
    } else {
        v
    }
}

/// onnxruntime's `ComputeSoftmax`: max subtracted, exponentials summed in
/// order.
fn softmax(scores: &mut [f32]) {
    let max = scores.iter().fold(f32::MIN, |m, &s| m.max(s));
    let mut sum = 0.0f32;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    for s in scores.iter_mut() {
        *s /= sum;
    }
}

/// onnxruntime's `ComputeSoftmaxZero`: scores within 1e-7 of zero are scaled
/// but not counted in the sum.
fn softmax_zero(scores: &mut [f32]) {
    let max = scores.iter().fold(f32::MIN, |m, &s| m.max(s));
    let exp_neg_max = (-max).exp();
    let mut sum = 0.0f32;
    for s in scores.iter_mut() {
        if s.abs() > 1e-7 {
            *s = (*s - max).exp();
            sum += *s;
        } else {
            *s *= exp_neg_max;
        }
    }
    for s in scores.iter_mut() {
        *s /= sum;
    }
}

/// onnxruntime's `ComputeProbit`: `√2 · erfinv(2p − 1)` with its `ErfInv`
/// approximation (Winitzki, a = 0.147).
fn probit(p: f32) -> f32 {
    let x = 2.0 * p - 1.0;
    let sign = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let ln = x.ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * ln;
    let v2 = (1.0 / 0.147) * ln;
    std::f32::consts::SQRT_2 * (sign * (-v + (v * v - v2).sqrt()).sqrt())
}

/// How a two-class classifier with a single score column turns the score
/// `s` into its two probabilities and its class (metadata `binary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryScore {
    /// The score is the probability of class 1: `[1 − s, s]`, class 1 when
    /// `s > 0.5` (`"one_minus"`; onnxruntime's rule when every leaf weight
    /// is non-negative; the post-transform is not applied).
    OneMinus,
    /// The score is a margin: `[T(−s), T(s)]` with `T` the logistic when the
    /// post-transform is `LOGISTIC` (else the identity), class 1 when
    /// `s > 0` (`"margin"`; the rule when some weight is negative).
    Margin,
}

impl BinaryScore {
    /// The rule named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "one_minus" => BinaryScore::OneMinus,
            "margin" => BinaryScore::Margin,
            _ => return None,
        })
    }

    /// The rule's metadata name.
    pub fn name(self) -> &'static str {
        match self {
            BinaryScore::OneMinus => "one_minus",
            BinaryScore::Margin => "margin",
        }
    }
}

/// What the ensemble predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    /// One value per score column.
    Regression,
    /// One probability per class; as many score columns as classes, class
    /// = the first largest score (before the post-transform).
    Classes,
    /// Two classes from one score column.
    Binary(BinaryScore),
}

/// One node: 16 bytes, the mode in the top byte of `feature_mode`. For a
/// leaf, `next` is the range of its weights in `Ensemble::weights`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    feature_mode: u32,
    threshold: f32,
    /// `[true child, false child]`, or `[first weight, end of weights]`.
    next: [u32; 2],
}

/// Marks, in a node's mode byte, that a NaN feature goes to the true child.
const MISSING_TRUE: u32 = 0x80;

impl Node {
    fn mode(self) -> u32 {
        self.feature_mode >> 24
    }

    fn feature(self) -> usize {
        (self.feature_mode & 0x00FF_FFFF) as usize
    }

    fn is_leaf(self) -> bool {
        self.mode() & 0x7F == NodeMode::Leaf as u32
    }

    /// Whether `x` goes to the true child (onnxruntime's comparison).
    #[inline(always)]
    fn goes_true(self, x: f32) -> bool {
        let mode = self.mode();
        let t = self.threshold;
        let compared = match mode & 0x7F {
            0 => x <= t,
            1 => x < t,
            2 => x >= t,
            3 => x > t,
            4 => x == t,
            _ => x != t,
        };
        compared || (mode & MISSING_TRUE != 0 && x.is_nan())
    }
}

/// One leaf weight: `value` added to score column `column`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Weight {
    column: u32,
    value: f32,
}

/// A validated tree ensemble.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ensemble {
    nodes: Vec<Node>,
    roots: Vec<u32>,
    weights: Vec<Weight>,
    base_values: Vec<f32>,
    aggregate: Aggregate,
    post_transform: PostTransform,
    task: Task,
    n_features: usize,
    /// Score columns.
    n_columns: usize,
    /// The sum over trees of the longest walk.
    max_visits: usize,
    /// The branch-free form of the trees, when every split compares with
    /// `<=`, `<`, `>=` or `>` (every exporter's trees do).
    compiled: Option<Compiled>,
}

/// Trees walked this many at a time, interleaved: independent walks keep
/// the core busy while each waits on its loads.
const LANES: usize = 8;

/// One node of the branch-free form: every split is `x > threshold` ⇒
/// `next[1]` (else `next[0]`), a NaN goes to `next[nan side]` (the top bit
/// of `key`, the feature in the others), and a leaf loops to itself.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FastNode {
    key: u32,
    threshold: f32,
    next: [u32; 2],
}

/// The trees in branch-free form (same node indices as [`Ensemble`]'s).
#[derive(Debug, Clone, PartialEq)]
struct Compiled {
    nodes: Vec<FastNode>,
    /// Per group of [`LANES`] trees, in tree order, the most steps (edges)
    /// any of them takes from root to leaf.
    steps: Vec<u32>,
    /// The same trees as complete binary trees of one depth, when they are
    /// shallow enough.
    perfect: Option<Perfect>,
}

/// The deepest trees laid out as complete binary trees: 2^10 leaves each.
const MAX_PERFECT_DEPTH: u32 = 10;

/// Every tree as a complete binary tree of depth `depth` in level order:
/// split `p` has children `2p + 1` (`x <= threshold`) and `2p + 2`; a leaf
/// shallower than `depth` fills every leaf slot below it, under splits that
/// may go either way. No child pointers to load: a step is a load of
/// (feature, threshold), a load of the feature and a compare. The trees
/// are padded with always-left trees to a multiple of [`LANES`], so that
/// every group of trees is walked the same way.
#[derive(Debug, Clone, PartialEq)]
struct Perfect {
    depth: u32,
    /// The real trees (the rest is padding).
    n_trees: usize,
    /// `(key, threshold)` per split, `2^depth − 1` per tree, node-major
    /// within each group of [`LANES`] trees (split `p` of the group's tree
    /// `l` at `p × LANES + l`); `key` as [`FastNode::key`].
    splits: Vec<(u32, f32)>,
    /// The original leaf node per leaf slot, `2^depth` per tree.
    leaves: Vec<u32>,
    /// Per leaf slot, the leaf's one weight, when every leaf has exactly
    /// one weight and the model has one score column (boosted binary
    /// classifiers, single-target regressors): the sum then reads one value
    /// per tree.
    values: Option<Vec<f32>>,
}

impl Perfect {
    /// `None` when a tree is deeper than [`MAX_PERFECT_DEPTH`] or the layout
    /// would hold more than 4 slots per original node.
    fn new(fast: &[FastNode], roots: &[u32], depth: &[usize], n_features: usize) -> Option<Self> {
        if n_features > ROW_WIDTH {
            return None;
        }
        let d = roots.iter().map(|&r| edges(depth, r)).max()? as u32;
        if d > MAX_PERFECT_DEPTH {
            return None;
        }
        let n_splits = (1usize << d) - 1;
        let n_leaves = 1usize << d;
        let padded = roots.len().div_ceil(LANES) * LANES;
        let total = padded.checked_mul(n_splits + n_leaves)?;
        if total > fast.len().saturating_mul(4).max(1 << 16) {
            return None;
        }
        // Padding trees: every split sends everything left (x > +inf is
        // false, NaN included with side 0), to leaf slot 0.
        let mut splits = vec![(0u32, f32::INFINITY); padded * n_splits];
        let mut leaves = vec![0u32; padded * n_leaves];
        for (t, &root) in roots.iter().enumerate() {
            // Node-major within a group of LANES trees: split p of tree t
            // is at group_base + p × LANES + (t mod LANES).
            let (group_base, lane) = ((t / LANES) * LANES * n_splits, t % LANES);
            let tree_leaves = leaves.get_mut(t * n_leaves..(t + 1) * n_leaves)?;
            // (node, level-order position)
            let mut stack = vec![(root, 0usize)];
            while let Some((node, pos)) = stack.pop() {
                let f = *fast.get(node as usize)?;
                let is_leaf = f.next == [node; 2];
                if pos >= n_splits {
                    // The leaf level: a node here is a leaf (depth says so).
                    *tree_leaves.get_mut(pos - n_splits)? = node;
                } else if is_leaf {
                    // Every leaf slot below `pos` is this leaf; the splits
                    // above them keep their filler (any way is right).
                    let mut first = pos;
                    let mut last = pos;
                    while first < n_splits {
                        first = 2 * first + 1;
                        last = 2 * last + 2;
                    }
                    tree_leaves
                        .get_mut(first - n_splits..=last - n_splits)?
                        .fill(node);
                } else {
                    *splits.get_mut(group_base + pos * LANES + lane)? = (f.key, f.threshold);
                    stack.push((f.next[0], 2 * pos + 1));
                    stack.push((f.next[1], 2 * pos + 2));
                }
            }
        }
        Some(Perfect {
            depth: d,
            n_trees: roots.len(),
            splits,
            leaves,
            values: None,
        })
    }

    fn n_splits(&self) -> usize {
        (1usize << self.depth) - 1
    }

    /// The leaf slots (`tree × 2^depth + leaf`) `row` reaches in the
    /// [`LANES`] trees of group `group`. `row` is the features copied into
    /// a [`ROW_WIDTH`] array, so that a feature read needs no bounds check
    /// (keys are below the feature count, itself at most `ROW_WIDTH`).
    /// `NAN` says whether the row may hold NaN (else the missing-value side
    /// is not looked at).
    #[inline(always)]
    fn walk<const NAN: bool>(
        &self,
        group: usize,
        row: &[f32; ROW_WIDTH],
        slots: &mut [u32; LANES],
    ) {
        let n_splits = self.n_splits();
        let splits = self
            .splits
            .get(group * LANES * n_splits..(group + 1) * LANES * n_splits)
            .unwrap_or_default();
        let mut pos = [0u32; LANES];
        if !splits.is_empty() {
            for _ in 0..self.depth {
                for (lane, p) in pos.iter_mut().enumerate() {
                    // In bounds for any input: after j < depth steps a
                    // position is below 2^j − 1 + 2^j ≤ n_splits.
                    let (key, threshold) = splits[*p as usize * LANES + lane];
                    *p = step::<NAN, ROW_WIDTH>(key, threshold, row, 0, *p);
                }
            }
        }
        let base = group * LANES * (n_splits + 1);
        for (lane, (slot, p)) in slots.iter_mut().zip(&pos).enumerate() {
            *slot = (base + lane * (n_splits + 1) + (*p as usize - n_splits)) as u32;
        }
    }

    /// The leaf slots of trees `first..first + T` for each of the [`LANES`]
    /// rows of `block` (row `r` at `r × ROW_WIDTH`), walked together: `T ×
    /// LANES` independent walks. `first + T` must not pass the padded tree
    /// count (a multiple of `LANES`; `T` divides it).
    #[inline(always)]
    fn walk_rows<const NAN: bool, const T: usize>(
        &self,
        first: usize,
        block: &[f32; LANES * ROW_WIDTH],
        slots: &mut [[u32; LANES]; T],
    ) {
        let n_splits = self.n_splits();
        let (group, lane) = (first / LANES, first % LANES);
        let splits = self
            .splits
            .get(group * LANES * n_splits + lane..(group + 1) * LANES * n_splits)
            .unwrap_or_default();
        let mut pos = [[0u32; LANES]; T];
        if !splits.is_empty() {
            for _ in 0..self.depth {
                for (t, tree_pos) in pos.iter_mut().enumerate() {
                    for (r, p) in tree_pos.iter_mut().enumerate() {
                        // In bounds for any input, as in `walk` (tree
                        // `first + t` is in this group: T divides LANES).
                        let (key, threshold) = splits[*p as usize * LANES + t];
                        *p = step::<NAN, { LANES * ROW_WIDTH }>(
                            key,
                            threshold,
                            block,
                            r * ROW_WIDTH,
                            *p,
                        );
                    }
                }
            }
        }
        for (t, (tree_slots, tree_pos)) in slots.iter_mut().zip(&pos).enumerate() {
            let base = (first + t) * (n_splits + 1);
            for (slot, p) in tree_slots.iter_mut().zip(tree_pos) {
                *slot = (base + (*p as usize - n_splits)) as u32;
            }
        }
    }

    /// One row's single-column aggregate over every tree, in tree order.
    fn sum_row(&self, values: &[f32], aggregate: Aggregate, init: f32, row: &[f32]) -> f32 {
        let any_nan = row.iter().fold(false, |any, x| any | x.is_nan());
        let row = padded_row(row);
        let mut acc = init;
        let mut slots = [0u32; LANES];
        for group in 0..self.n_trees.div_ceil(LANES) {
            if any_nan {
                self.walk::<true>(group, &row, &mut slots);
            } else {
                self.walk::<false>(group, &row, &mut slots);
            }
            let n = (self.n_trees - group * LANES).min(LANES);
            for &slot in &slots[..n] {
                acc = combine(
                    aggregate,
                    acc,
                    values.get(slot as usize).copied().unwrap_or(0.0),
                );
            }
        }
        acc
    }

    /// [`Perfect::sum_row`] for `n ≤ LANES` rows of `block` at once, tree by
    /// tree: each tree's splits stay in L1 while the rows walk it. Each
    /// row's sum is still in tree order, bit-identical to `sum_row`.
    #[allow(clippy::too_many_arguments)]
    fn sum_rows(
        &self,
        values: &[f32],
        aggregate: Aggregate,
        init: f32,
        block: &[f32],
        nf: usize,
        n: usize,
        sums: &mut [f32; LANES],
    ) {
        // Each row at a ROW_WIDTH stride; a short block's unused lanes walk
        // zeros (their sums are not used).
        let mut rows = [0.0f32; LANES * ROW_WIDTH];
        for (r, row) in block.chunks_exact(nf.max(1)).take(n.min(LANES)).enumerate() {
            if let Some(dst) = rows.get_mut(r * ROW_WIDTH..r * ROW_WIDTH + row.len()) {
                dst.copy_from_slice(row);
            }
        }
        let any_nan = block.iter().fold(false, |any, x| any | x.is_nan());
        *sums = [init; LANES];
        // Two trees at a time (16 walks in flight); the padding makes the
        // tree count a multiple of LANES, so of 2.
        const T: usize = 2;
        let mut slots = [[0u32; LANES]; T];
        for first in (0..self.n_trees).step_by(T) {
            if any_nan {
                self.walk_rows::<true, T>(first, &rows, &mut slots);
            } else {
                self.walk_rows::<false, T>(first, &rows, &mut slots);
            }
            // Tree order within each row; a padding tree adds nothing.
            for tree_slots in slots.iter().take(self.n_trees - first) {
                for (sum, &slot) in sums.iter_mut().zip(tree_slots) {
                    *sum = combine(
                        aggregate,
                        *sum,
                        values.get(slot as usize).copied().unwrap_or(0.0),
                    );
                }
            }
        }
    }
}

/// The most features the complete-tree walk takes: a row is copied into a
/// `ROW_WIDTH` array, whose reads need no bounds check.
const ROW_WIDTH: usize = 256;

/// `row` in a [`ROW_WIDTH`] array (the rest zeros).
fn padded_row(row: &[f32]) -> [f32; ROW_WIDTH] {
    let mut out = [0.0f32; ROW_WIDTH];
    let n = row.len().min(ROW_WIDTH);
    out[..n].copy_from_slice(&row[..n]);
    out
}

/// One step down a complete tree from position `p`: reads feature `key` of
/// the row at `offset` in `rows` (masked into the array: keys are below
/// [`ROW_WIDTH`]), goes right when it is above `threshold` or is a NaN whose
/// side (the key's top bit) is right.
#[inline(always)]
fn step<const NAN: bool, const N: usize>(
    key: u32,
    threshold: f32,
    rows: &[f32; N],
    offset: usize,
    p: u32,
) -> u32 {
    let x = rows[(offset + (key & (ROW_WIDTH as u32 - 1)) as usize) % N];
    let mut side = u32::from(x > threshold);
    if NAN {
        side |= u32::from(x.is_nan()) & (key >> 31);
    }
    2 * p + 1 + side
}

/// The most steps (edges) a walk takes from `root` to a leaf, given each
/// node's longest walk in nodes (`depth`).
fn edges(depth: &[usize], root: u32) -> usize {
    depth
        .get(root as usize)
        .copied()
        .unwrap_or(1)
        .saturating_sub(1)
}

/// One tree's weight `w` folded into the score `a`.
#[inline(always)]
fn combine(aggregate: Aggregate, a: f32, w: f32) -> f32 {
    match aggregate {
        Aggregate::Sum | Aggregate::Average => a + w,
        Aggregate::Min => a.min(w),
        Aggregate::Max => a.max(w),
    }
}

/// The largest `f32` below `t` (for finite `t`): `x < t` is `x <= next_down(t)`.
fn next_down(t: f32) -> f32 {
    if t == 0.0 {
        -f32::from_bits(1)
    } else if t > 0.0 {
        f32::from_bits(t.to_bits() - 1)
    } else {
        f32::from_bits(t.to_bits() + 1)
    }
}

impl Compiled {
    /// The branch-free form of `nodes`, or `None` when a split compares
    /// with `==` or `!=`.
    fn new(nodes: &[Node], roots: &[u32], depth: &[usize], n_features: usize) -> Option<Self> {
        let mut fast = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            if node.is_leaf() {
                fast.push(FastNode {
                    key: 0,
                    threshold: 0.0,
                    next: [i as u32; 2],
                });
                continue;
            }
            let mode = node.mode();
            let missing = mode & MISSING_TRUE != 0;
            let [yes, no] = node.next;
            let t = node.threshold;
            // (threshold, [child when x <= threshold, child when x > threshold],
            //  side of the true child)
            let (threshold, next, true_side) = match mode & 0x7F {
                0 => (t, [yes, no], 0),            // x <= t
                1 => (next_down(t), [yes, no], 0), // x < t
                2 => (next_down(t), [no, yes], 1), // x >= t
                3 => (t, [no, yes], 1),            // x > t
                _ => return None,
            };
            // A NaN goes to the true child only when the node says so.
            let nan_side: u32 = if missing { true_side } else { 1 - true_side };
            fast.push(FastNode {
                key: node.feature() as u32 | (nan_side << 31),
                threshold,
                next,
            });
        }
        let steps = roots
            .chunks(LANES)
            .map(|group| group.iter().map(|&r| edges(depth, r)).max().unwrap_or(0) as u32)
            .collect();
        let perfect = Perfect::new(&fast, roots, depth, n_features);
        Some(Compiled {
            nodes: fast,
            steps,
            perfect,
        })
    }

    /// Walks the trees `roots` (at most [`LANES`]) for `steps` steps: the
    /// leaves `row` reaches, into `leaves`.
    #[inline]
    fn walk(&self, roots: &[u32], steps: u32, row: &[f32], leaves: &mut [u32; LANES]) {
        *leaves = [roots.first().copied().unwrap_or(0); LANES];
        leaves[..roots.len()].copy_from_slice(roots);
        for _ in 0..steps {
            for lane in leaves.iter_mut() {
                let Some(node) = self.nodes.get(*lane as usize) else {
                    continue;
                };
                let x = row
                    .get((node.key & 0x7FFF_FFFF) as usize)
                    .copied()
                    .unwrap_or(f32::NAN);
                let side = usize::from(x > node.threshold)
                    | ((x.is_nan() as usize) & (node.key >> 31) as usize);
                *lane = node.next[side & 1];
            }
        }
    }
}

/// Reads a `[len]` tensor of `dtype` as integers.
fn integers(tensor: &Tensor<'_>, dtype: DType, len: usize) -> Result<Vec<i64>, ModelError> {
    if vector_len(tensor) != Some(len) || tensor.dtype() != dtype {
        return Err(shape_mismatch(
            tensor,
            format!("[{len}] of {}", dtype.name()),
        ));
    }
    let bytes = tensor.bytes();
    Ok(match dtype {
        DType::U8 => bytes.iter().map(|&b| i64::from(b)).collect(),
        _ => bytes
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
    })
}

impl Ensemble {
    /// Loads the tensors and metadata of `docs/model-families.md`.
    pub(super) fn load(src: &TensorSource<'_, '_>) -> Result<Self, ModelError> {
        let invalid_meta = |key: &str, reason: String| ModelError::InvalidMetadata {
            key: key.to_owned(),
            reason,
        };
        let text = |key: &str| -> Result<Option<String>, ModelError> {
            match src.file().metadata().get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(invalid_meta(
                    key,
                    format!("expected a string, found {other}"),
                )),
            }
        };
        let aggregate = match text(names::AGGREGATE)? {
            None => Aggregate::Sum,
            Some(name) => Aggregate::from_name(&name).ok_or_else(|| {
                invalid_meta(
                    names::AGGREGATE,
                    format!("`{name}` is not SUM, AVERAGE, MIN or MAX"),
                )
            })?,
        };
        let post_transform = match text(names::POST_TRANSFORM)? {
            None => PostTransform::None,
            Some(name) => PostTransform::from_name(&name).ok_or_else(|| {
                invalid_meta(
                    names::POST_TRANSFORM,
                    format!("`{name}` is not NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO or PROBIT"),
                )
            })?,
        };
        let n_features = src
            .metadata_count(schema::N_FEATURES)?
            .ok_or_else(|| invalid_meta(schema::N_FEATURES, "missing".to_owned()))?;
        let n_columns = src
            .metadata_count(names::N_TARGETS)?
            .ok_or_else(|| invalid_meta(names::N_TARGETS, "missing".to_owned()))?;
        if n_columns == 0 || n_columns > MAX_INDEX || n_features > MAX_INDEX {
            return Err(invalid_meta(
                names::N_TARGETS,
                format!("{n_columns} score columns over {n_features} features is out of range"),
            ));
        }
        let task = match (src.metadata_count(schema::N_CLASSES)?, text(names::BINARY)?) {
            (None, None) => Task::Regression,
            (Some(2), Some(rule)) if n_columns == 1 => {
                Task::Binary(BinaryScore::from_name(&rule).ok_or_else(|| {
                    invalid_meta(
                        names::BINARY,
                        format!("`{rule}` is not one_minus or margin"),
                    )
                })?)
            }
            (Some(n), None) if n == n_columns && n >= 2 => Task::Classes,
            (classes, rule) => {
                return Err(invalid_meta(
                    schema::N_CLASSES,
                    format!(
                    "{classes:?} classes with binary rule {rule:?} do not fit {n_columns} score \
                         columns (a classifier has one column per class, or two classes over one \
                         column with a `binary` rule)"
                ),
                ))
            }
        };

        let feature_tensor = src.require(names::NODES_FEATURE)?;
        let n = match vector_len(&feature_tensor) {
            Some(n) if (1..=MAX_INDEX).contains(&n) => n,
            _ => {
                return Err(shape_mismatch(
                    &feature_tensor,
                    format!("[n_nodes] with 1 to {MAX_INDEX} nodes"),
                ))
            }
        };
        let features = integers(&feature_tensor, DType::I32, n)?;
        let modes = integers(&src.require(names::NODES_MODE)?, DType::U8, n)?;
        let trues = integers(&src.require(names::NODES_TRUE)?, DType::I32, n)?;
        let falses = integers(&src.require(names::NODES_FALSE)?, DType::I32, n)?;
        let missing = integers(&src.require(names::NODES_MISSING_TRUE)?, DType::U8, n)?;
        let threshold_tensor = src.require(names::NODES_THRESHOLD)?;
        if vector_len(&threshold_tensor) != Some(n) {
            return Err(shape_mismatch(&threshold_tensor, format!("[{n}]")));
        }
        let thresholds = src.finite_f32_values(&threshold_tensor)?;
        let offsets = integers(&src.require(names::LEAF_OFFSETS)?, DType::I32, n + 1)?;
        let target_tensor = src.require(names::LEAF_TARGETS)?;
        let n_weights = vector_len(&target_tensor)
            .filter(|&w| w <= MAX_INDEX)
            .ok_or_else(|| shape_mismatch(&target_tensor, "[n_weights]"))?;
        let targets = integers(&target_tensor, DType::I32, n_weights)?;
        let weight_tensor = src.require(names::LEAF_WEIGHTS)?;
        if vector_len(&weight_tensor) != Some(n_weights) {
            return Err(shape_mismatch(&weight_tensor, format!("[{n_weights}]")));
        }
        let weight_values = src.finite_f32_values(&weight_tensor)?;
        let roots_tensor = src.require(names::TREE_ROOTS)?;
        let n_trees = vector_len(&roots_tensor)
            .filter(|&t| (1..=n).contains(&t))
            .ok_or_else(|| shape_mismatch(&roots_tensor, "[n_trees], at least one tree"))?;
        let roots = integers(&roots_tensor, DType::I32, n_trees)?;
        let base_values = match src.get(names::BASE_VALUES) {
            None => Vec::new(),
            Some(tensor) => {
                if vector_len(&tensor) != Some(n_columns) {
                    return Err(shape_mismatch(
                        &tensor,
                        format!("[{n_columns}] (one per score column)"),
                    ));
                }
                src.finite_f32_values(&tensor)?.into_owned()
            }
        };

        let weights = targets
            .iter()
            .zip(weight_values.iter())
            .enumerate()
            .map(|(i, (&column, &value))| match usize::try_from(column) {
                Ok(c) if c < n_columns => Ok(Weight {
                    column: c as u32,
                    value,
                }),
                _ => Err(shape_mismatch(
                    &target_tensor,
                    format!("score columns below {n_columns}; entry {i} is {column}"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;

        let invalid = |node: usize, reason: String| ModelError::InvalidTree {
            tree: None,
            node,
            reason,
        };
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let mode = u8::try_from(modes[i])
                .ok()
                .and_then(NodeMode::from_code)
                .ok_or_else(|| invalid(i, format!("mode {} is not a node mode", modes[i])))?;
            let missing_flag = match missing[i] {
                0 => 0,
                1 => MISSING_TRUE,
                other => return Err(invalid(i, format!("missing flag {other} is not 0 or 1"))),
            };
            let node = if mode == NodeMode::Leaf {
                let (start, end) = (offsets[i], offsets[i + 1]);
                if !(0 <= start && start <= end && end <= n_weights as i64) {
                    return Err(invalid(
                        i,
                        format!(
                            "leaf weights {start}..{end} are not a range within 0..{n_weights}"
                        ),
                    ));
                }
                Node {
                    feature_mode: (mode as u32) << 24,
                    threshold: 0.0,
                    next: [start as u32, end as u32],
                }
            } else {
                let feature = usize::try_from(features[i])
                    .ok()
                    .filter(|&f| f < n_features)
                    .ok_or_else(|| {
                        invalid(
                            i,
                            format!(
                                "splits on feature {}, but the model has {n_features} features",
                                features[i]
                            ),
                        )
                    })?;
                if offsets[i] != offsets[i + 1] {
                    return Err(invalid(i, "a split node carries leaf weights".to_owned()));
                }
                let child = |c: i64, side: &str| {
                    usize::try_from(c)
                        .ok()
                        .filter(|&c| c > i && c < n)
                        .map(|c| c as u32)
                        .ok_or_else(|| {
                            invalid(
                                i,
                                format!(
                                    "{side} child {c} is not a later node within 0..{n} \
                                     (children come after their parent)"
                                ),
                            )
                        })
                };
                Node {
                    feature_mode: ((mode as u32 | missing_flag) << 24) | feature as u32,
                    threshold: thresholds[i],
                    next: [child(trues[i], "true")?, child(falses[i], "false")?],
                }
            };
            nodes.push(node);
        }
        let roots = roots
            .iter()
            .enumerate()
            .map(|(t, &r)| {
                usize::try_from(r)
                    .ok()
                    .filter(|&r| r < n)
                    .map(|r| r as u32)
                    .ok_or_else(|| ModelError::InvalidTree {
                        tree: Some(t),
                        node: 0,
                        reason: format!("root {r} is not a node within 0..{n}"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if offsets[0] != 0 || offsets[n] != n_weights as i64 {
            return Err(invalid(
                0,
                format!("leaf_offsets must run from 0 to {n_weights}"),
            ));
        }

        // The longest walk from each node, computed backwards (children
        // come later).
        let mut depth = vec![1usize; n];
        for i in (0..n).rev() {
            let node = nodes[i];
            if !node.is_leaf() {
                let [t, f] = node.next;
                depth[i] = 1 + depth[t as usize].max(depth[f as usize]);
            }
        }
        let max_visits = roots.iter().map(|&r| depth[r as usize]).sum();
        let mut compiled = Compiled::new(&nodes, &roots, &depth, n_features);
        if let Some(p) = compiled
            .as_mut()
            .and_then(|c| c.perfect.as_mut())
            .filter(|_| n_columns == 1)
        {
            let one_weight = |node: u32| -> Option<f32> {
                let [start, end] = nodes.get(node as usize)?.next;
                (end == start + 1).then(|| weights.get(start as usize).map(|w| w.value))?
            };
            // Padding trees' slots add nothing (they are never summed).
            let real = p.n_trees * (p.n_splits() + 1);
            p.values = p
                .leaves
                .iter()
                .enumerate()
                .map(|(slot, &leaf)| {
                    if slot < real {
                        one_weight(leaf)
                    } else {
                        Some(0.0)
                    }
                })
                .collect();
        }
        Ok(Ensemble {
            nodes,
            roots,
            weights,
            base_values,
            aggregate,
            post_transform,
            task,
            n_features,
            n_columns,
            max_visits,
            compiled,
        })
    }

    pub(super) fn n_features(&self) -> usize {
        self.n_features
    }

    /// Outputs per row: the classes of a classifier, the targets of a
    /// regressor.
    pub(super) fn n_outputs(&self) -> usize {
        match self.task {
            Task::Binary(_) => 2,
            _ => self.n_columns,
        }
    }

    /// The number of classes, `None` for a regressor.
    pub(super) fn n_classes(&self) -> Option<usize> {
        match self.task {
            Task::Regression => None,
            _ => Some(self.n_outputs()),
        }
    }

    /// Split thresholds plus leaf weights.
    pub(super) fn parameter_count(&self) -> usize {
        let splits = self.nodes.iter().filter(|n| !n.is_leaf()).count();
        splits.saturating_add(self.weights.len())
    }

    /// Node visits per row in the worst case.
    pub(super) fn max_visits(&self) -> usize {
        self.max_visits
    }

    /// The leaf `row` reaches from `root`.
    #[inline]
    fn leaf(&self, root: u32, row: &[f32]) -> Result<Node, PredictError> {
        let mut index = root as usize;
        // Children come after their parent: at most every node once.
        for _ in 0..self.nodes.len() {
            let Some(&node) = self.nodes.get(index) else {
                break;
            };
            if node.is_leaf() {
                return Ok(node);
            }
            let x = *row
                .get(node.feature())
                .ok_or(PredictError::TreeWalk { node: index })?;
            index = node.next[usize::from(!node.goes_true(x))] as usize;
        }
        Err(PredictError::TreeWalk { node: index })
    }

    /// The aggregated scores of `row` (base values added) into `scores`
    /// (`n_columns` values).
    fn scores(&self, row: &[f32], scores: &mut [f32]) -> Result<(), PredictError> {
        let aggregate = self.aggregate;
        scores.fill(match aggregate {
            Aggregate::Sum | Aggregate::Average => 0.0,
            // ±∞ marks "no tree gave this column a weight" (weights are finite).
            Aggregate::Min => f32::INFINITY,
            Aggregate::Max => f32::NEG_INFINITY,
        });
        // onnxruntime reads only the first weight of a one-target
        // regressor's leaf; a classifier's leaves add every weight.
        let first_only = self.task == Task::Regression && self.n_columns == 1;
        let mut add = |leaf: Node| {
            let [start, end] = leaf.next;
            let weights = self
                .weights
                .get(start as usize..end as usize)
                .unwrap_or_default();
            if first_only {
                if let (Some(w), Some(s)) = (weights.first(), scores.first_mut()) {
                    *s = combine(aggregate, *s, w.value);
                }
            } else {
                for w in weights {
                    if let Some(s) = scores.get_mut(w.column as usize) {
                        *s = combine(aggregate, *s, w.value);
                    }
                }
            }
        };
        if let Some((p, values)) = self.one_column_sums() {
            if let Some(s) = scores.first_mut() {
                *s = p.sum_row(values, aggregate, *s, row);
            }
            self.finish_scores(scores);
            return Ok(());
        }
        if let Some(compiled) = &self.compiled {
            let mut leaves = [0u32; LANES];
            let any_nan = row.iter().fold(false, |any, x| any | x.is_nan());
            // Only the complete-tree walk reads the padded copy.
            let perfect = compiled.perfect.as_ref().map(|p| (p, padded_row(row)));
            for (group, (roots, &steps)) in
                self.roots.chunks(LANES).zip(&compiled.steps).enumerate()
            {
                let n = roots.len();
                match &perfect {
                    Some((p, padded)) => {
                        if any_nan {
                            p.walk::<true>(group, padded, &mut leaves);
                        } else {
                            p.walk::<false>(group, padded, &mut leaves);
                        }
                        for slot in &mut leaves[..n] {
                            *slot = p.leaves.get(*slot as usize).copied().unwrap_or(u32::MAX);
                        }
                    }
                    None => compiled.walk(roots, steps, row, &mut leaves),
                }
                // Tree order: the same sum as one tree at a time.
                for &leaf in &leaves[..n] {
                    match self.nodes.get(leaf as usize) {
                        Some(&node) if node.is_leaf() => add(node),
                        _ => {
                            return Err(PredictError::TreeWalk {
                                node: leaf as usize,
                            })
                        }
                    }
                }
            }
            self.finish_scores(scores);
            return Ok(());
        }
        for &root in &self.roots {
            add(self.leaf(root, row)?);
        }
        self.finish_scores(scores);
        Ok(())
    }

    /// The perfect layout and its leaf values, when one column's sum is all
    /// a row needs.
    fn one_column_sums(&self) -> Option<(&Perfect, &[f32])> {
        let p = self.compiled.as_ref()?.perfect.as_ref()?;
        Some((p, p.values.as_deref()?))
    }

    /// A score before any tree: 0, or ±∞ for MIN / MAX ("no weight yet").
    fn scores_init(&self) -> f32 {
        match self.aggregate {
            Aggregate::Sum | Aggregate::Average => 0.0,
            Aggregate::Min => f32::INFINITY,
            Aggregate::Max => f32::NEG_INFINITY,
        }
    }

    /// Averages and base values.
    fn finish_scores(&self, scores: &mut [f32]) {
        let n_trees = self.roots.len() as f32;
        for (i, s) in scores.iter_mut().enumerate() {
            let base = self.base_values.get(i).copied().unwrap_or(0.0);
            *s = match self.aggregate {
                Aggregate::Sum => *s + base,
                Aggregate::Average => *s / n_trees + base,
                Aggregate::Min | Aggregate::Max => {
                    if s.is_finite() {
                        *s + base
                    } else {
                        base
                    }
                }
            };
        }
    }

    /// Predicts one row into `out` (`n_outputs` values); returns the class.
    fn predict_into(&self, row: &[f32], out: &mut [f32]) -> Result<Option<usize>, PredictError> {
        match self.task {
            Task::Binary(_) => {
                let mut score = [0.0f32];
                self.scores(row, &mut score)?;
                Ok(self.finalize(score[0], out))
            }
            _ => {
                self.scores(row, out)?;
                Ok(self.finalize_columns(out))
            }
        }
    }

    /// The answer from aggregated scores (`n_columns` values, base values
    /// added) in `out`: the post-transform, and the class.
    fn finalize_columns(&self, out: &mut [f32]) -> Option<usize> {
        match self.task {
            Task::Regression => {
                if self.n_columns == 1 {
                    // onnxruntime applies only PROBIT to a single target.
                    if self.post_transform == PostTransform::Probit {
                        PostTransform::Probit.apply(out);
                    }
                } else {
                    self.post_transform.apply(out);
                }
                None
            }
            Task::Classes => {
                let class = super::output::argmax(out);
                self.post_transform.apply(out);
                Some(class)
            }
            Task::Binary(_) => {
                let s = out.first().copied().unwrap_or(0.0);
                self.finalize(s, out)
            }
        }
    }

    /// The answer from one aggregated score `s` (base value added) into
    /// `out` (`n_outputs` values).
    fn finalize(&self, s: f32, out: &mut [f32]) -> Option<usize> {
        let Task::Binary(rule) = self.task else {
            if let Some(first) = out.first_mut() {
                *first = s;
            }
            return self.finalize_columns(out);
        };
        let (class, pair) = match rule {
            BinaryScore::OneMinus => (usize::from(s > 0.5), [1.0 - s, s]),
            BinaryScore::Margin => {
                let pair = if self.post_transform == PostTransform::Logistic {
                    [logistic(-s), logistic(s)]
                } else {
                    [-s, s]
                };
                (usize::from(s > 0.0), pair)
            }
        };
        if let Some(out) = out.get_mut(..2) {
            out.copy_from_slice(&pair);
        }
        Some(class)
    }

    pub(super) fn predict<'s>(
        &self,
        row: &[f32],
        scratch: &'s mut Scratch,
    ) -> Result<Output<'s>, PredictError> {
        let out = sized(&mut scratch.primary, self.n_outputs());
        let class = self.predict_into(row, out)?;
        let out: &'s [f32] = out;
        Ok(Output {
            class,
            outputs: out,
            probabilities: class.map(|_| out),
            label: None,
        })
    }

    pub(super) fn layout(&self) -> BatchLayout {
        let classifier = self.task != Task::Regression;
        BatchLayout {
            n_outputs: self.n_outputs(),
            classes: classifier,
            probabilities: if classifier {
                ProbabilityLayout::SameAsOutputs
            } else {
                ProbabilityLayout::None
            },
        }
    }

    /// The rows of `rows` into `out` (see [`Ensemble::layout`]).
    pub(super) fn predict_rows(&self, rows: &[f32], out: RowsOut<'_>) -> Result<(), PredictError> {
        let width = self.n_outputs().max(1);
        let nf = self.n_features;
        if let Some((p, values)) = self.one_column_sums() {
            // Tree-major over blocks of rows: each tree's splits stay in L1
            // while LANES rows walk it; each row still sums in tree order.
            for (block, outputs) in out.outputs.chunks_mut(width * LANES).enumerate() {
                let start = block * LANES;
                let n = outputs.len() / width;
                let block_rows = rows.get(start * nf..(start + n) * nf).unwrap_or_default();
                let mut sums = [0.0f32; LANES];
                p.sum_rows(
                    values,
                    self.aggregate,
                    self.scores_init(),
                    block_rows,
                    nf,
                    n,
                    &mut sums,
                );
                for (r, row_out) in outputs.chunks_exact_mut(width).enumerate() {
                    let mut score = [sums[r]];
                    self.finish_scores(&mut score);
                    let class = self.finalize(score[0], row_out);
                    // `classes` is empty for a regressor.
                    if let (Some(class), Some(slot)) = (class, out.classes.get_mut(start + r)) {
                        *slot = class;
                    }
                }
            }
            return Ok(());
        }
        for (i, outputs) in out.outputs.chunks_exact_mut(width).enumerate() {
            let row = rows.get(i * nf..(i + 1) * nf).unwrap_or_default();
            let class = self.predict_into(row, outputs)?;
            if let (Some(class), Some(slot)) = (class, out.classes.get_mut(i)) {
                *slot = class;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::ModelFamily;
    use super::*;
    use crate::format::{AprFile, AprWriter};

    /// A deterministic pseudo-random sequence (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Values thresholds and features are drawn from, so that ties happen.
    const GRID: [f32; 7] = [-2.0, -0.5, 0.0, 0.25, 1.0, 1.5, 3.0];

    /// The tensors of an ensemble being generated.
    #[derive(Default)]
    struct Arrays {
        feature: Vec<i32>,
        mode: Vec<u8>,
        threshold: Vec<f32>,
        yes: Vec<i32>,
        no: Vec<i32>,
        missing: Vec<u8>,
        offsets: Vec<i32>,
        targets: Vec<i32>,
        weights: Vec<f32>,
    }

    impl Arrays {
        /// A random subtree in pre-order; returns its root.
        fn grow(
            &mut self,
            rng: &mut Rng,
            depth: u32,
            max_depth: u32,
            modes: &[NodeMode],
            columns: usize,
        ) -> usize {
            let at = self.feature.len();
            self.offsets.push(self.targets.len() as i32);
            if depth == max_depth || (depth > 0 && rng.below(4) == 0) {
                self.feature.push(0);
                self.mode.push(NodeMode::Leaf as u8);
                self.threshold.push(0.0);
                self.yes.push(0);
                self.no.push(0);
                self.missing.push(0);
                for c in 0..columns {
                    if columns == 1 || rng.below(2) == 0 {
                        self.targets.push(c as i32);
                        self.weights
                            .push(GRID[rng.below(7) as usize] * 0.37 + c as f32);
                    }
                }
                return at;
            }
            self.feature.push(rng.below(5) as i32);
            self.mode
                .push(modes[rng.below(modes.len() as u64) as usize] as u8);
            self.threshold.push(GRID[rng.below(7) as usize]);
            self.yes.push(0);
            self.no.push(0);
            self.missing.push(rng.below(2) as u8);
            let yes = self.grow(rng, depth + 1, max_depth, modes, columns);
            let no = self.grow(rng, depth + 1, max_depth, modes, columns);
            self.yes[at] = yes as i32;
            self.no[at] = no as i32;
            at
        }
    }

    /// Random trees over 5 features: `modes` picks each split's mode.
    fn random_ensemble(
        rng: &mut Rng,
        n_trees: usize,
        max_depth: u32,
        modes: &[NodeMode],
        columns: usize,
    ) -> Vec<u8> {
        let mut a = Arrays::default();
        let roots: Vec<i32> = (0..n_trees)
            .map(|_| a.grow(rng, 0, max_depth, modes, columns) as i32)
            .collect();
        a.offsets.push(a.targets.len() as i32);
        let i32s = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut w = AprWriter::new();
        w.model_type(names::TREE_ENSEMBLE);
        w.metadata(schema::N_FEATURES, serde_json::json!(5));
        w.metadata(names::N_TARGETS, serde_json::json!(columns));
        let n = a.feature.len();
        w.add_tensor(names::TREE_ROOTS, DType::I32, &[roots.len()], i32s(&roots))
            .unwrap();
        w.add_tensor(names::NODES_FEATURE, DType::I32, &[n], i32s(&a.feature))
            .unwrap();
        w.add_tensor(names::NODES_MODE, DType::U8, &[n], a.mode)
            .unwrap();
        w.add_f32(names::NODES_THRESHOLD, &[n], &a.threshold)
            .unwrap();
        w.add_tensor(names::NODES_TRUE, DType::I32, &[n], i32s(&a.yes))
            .unwrap();
        w.add_tensor(names::NODES_FALSE, DType::I32, &[n], i32s(&a.no))
            .unwrap();
        w.add_tensor(names::NODES_MISSING_TRUE, DType::U8, &[n], a.missing)
            .unwrap();
        w.add_tensor(names::LEAF_OFFSETS, DType::I32, &[n + 1], i32s(&a.offsets))
            .unwrap();
        w.add_tensor(
            names::LEAF_TARGETS,
            DType::I32,
            &[a.targets.len()],
            i32s(&a.targets),
        )
        .unwrap();
        w.add_f32(names::LEAF_WEIGHTS, &[a.weights.len()], &a.weights)
            .unwrap();
        w.to_bytes()
    }

    fn load(bytes: &[u8]) -> Ensemble {
        let file = AprFile::parse(bytes).unwrap();
        Ensemble::load(&TensorSource::new(&file, ModelFamily::TreeEnsemble, true)).unwrap()
    }

    /// The plain walk: one tree at a time, each node's mode as ONNX says.
    fn reference_scores(e: &Ensemble, row: &[f32]) -> Vec<f32> {
        let mut scores = vec![e.scores_init(); e.n_columns];
        for &root in &e.roots {
            let leaf = e.leaf(root, row).unwrap();
            let [start, end] = leaf.next;
            let weights = &e.weights[start as usize..end as usize];
            if e.task == Task::Regression && e.n_columns == 1 {
                if let Some(w) = weights.first() {
                    scores[0] = combine(e.aggregate, scores[0], w.value);
                }
            } else {
                for w in weights {
                    let s = &mut scores[w.column as usize];
                    *s = combine(e.aggregate, *s, w.value);
                }
            }
        }
        e.finish_scores(&mut scores);
        scores
    }

    fn random_rows(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n * 5)
            .map(|_| match rng.below(9) {
                0 => f32::NAN,
                i => GRID[(i as usize - 1) % 7],
            })
            .collect()
    }

    /// A split with a child that is not later, a feature beyond the input,
    /// an unknown mode or a weight for a missing column: named errors.
    #[test]
    fn malformed_trees_are_named_errors() {
        let build = |feature: i32, mode: u8, yes: i32, target: i32| {
            let i32s = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
            let mut w = AprWriter::new();
            w.model_type(names::TREE_ENSEMBLE);
            w.metadata(schema::N_FEATURES, serde_json::json!(2));
            w.metadata(names::N_TARGETS, serde_json::json!(1));
            w.add_tensor(names::TREE_ROOTS, DType::I32, &[1], i32s(&[0]))
                .unwrap();
            w.add_tensor(
                names::NODES_FEATURE,
                DType::I32,
                &[3],
                i32s(&[feature, 0, 0]),
            )
            .unwrap();
            w.add_tensor(names::NODES_MODE, DType::U8, &[3], vec![mode, 6, 6])
                .unwrap();
            w.add_f32(names::NODES_THRESHOLD, &[3], &[0.5, 0.0, 0.0])
                .unwrap();
            w.add_tensor(names::NODES_TRUE, DType::I32, &[3], i32s(&[yes, 0, 0]))
                .unwrap();
            w.add_tensor(names::NODES_FALSE, DType::I32, &[3], i32s(&[2, 0, 0]))
                .unwrap();
            w.add_tensor(names::NODES_MISSING_TRUE, DType::U8, &[3], vec![0, 0, 0])
                .unwrap();
            w.add_tensor(names::LEAF_OFFSETS, DType::I32, &[4], i32s(&[0, 0, 1, 2]))
                .unwrap();
            w.add_tensor(names::LEAF_TARGETS, DType::I32, &[2], i32s(&[0, target]))
                .unwrap();
            w.add_f32(names::LEAF_WEIGHTS, &[2], &[1.0, 2.0]).unwrap();
            let bytes = w.to_bytes();
            let file = AprFile::parse(&bytes).unwrap();
            Ensemble::load(&TensorSource::new(&file, ModelFamily::TreeEnsemble, true)).map(|_| ())
        };
        assert!(build(1, 0, 1, 0).is_ok());
        let message = |r: Result<(), ModelError>| r.unwrap_err().to_string();
        assert!(message(build(1, 0, 0, 0)).contains("true child 0 is not a later node"));
        assert!(message(build(2, 0, 1, 0)).contains("splits on feature 2, but the model has 2"));
        assert!(message(build(1, 9, 1, 0)).contains("mode 9 is not a node mode"));
        assert!(message(build(1, 0, 1, 1)).contains("score columns below 1"));
    }

    /// Every fast walk (complete trees one row and batched, child pointers)
    /// gives exactly the plain walk's scores, NaN and ties included.
    #[test]
    fn every_walk_matches_the_plain_one_bit_for_bit() {
        use NodeMode::*;
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let cases: [(usize, u32, &[NodeMode], usize, &str); 5] = [
            (37, 6, &[Leq], 1, "perfect"),
            (21, 5, &[Leq, Lt, Gte, Gt], 1, "perfect"),
            (19, 4, &[Leq, Lt, Gte, Gt], 3, "perfect"),
            (9, 13, &[Lt, Gte], 1, "linked"),
            (11, 5, &[Leq, Eq, Neq, Gt], 2, "general"),
        ];
        for (n_trees, depth, modes, columns, path) in cases {
            let e = load(&random_ensemble(&mut rng, n_trees, depth, modes, columns));
            let which = match &e.compiled {
                Some(c) if c.perfect.is_some() => "perfect",
                Some(_) => "linked",
                None => "general",
            };
            assert_eq!(which, path, "{n_trees} trees, depth {depth}, {modes:?}");
            let rows = random_rows(&mut rng, 53);
            for (r, row) in rows.chunks_exact(5).enumerate() {
                let want = reference_scores(&e, row);
                let mut got = vec![0.0; e.n_columns];
                e.scores(row, &mut got).unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{path} row {r}: {row:?}");
            }
            // The batch path (tree by tree over blocks of rows) answers the same.
            let width = e.n_outputs();
            let mut outputs = vec![0.0; 53 * width];
            let mut classes = vec![];
            e.predict_rows(
                &rows,
                RowsOut {
                    outputs: &mut outputs,
                    classes: &mut classes,
                    probabilities: &mut [],
                },
            )
            .unwrap();
            for r in 0..53 {
                let mut one = vec![0.0; width];
                e.predict_into(&rows[r * 5..(r + 1) * 5], &mut one).unwrap();
                assert_eq!(
                    one.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    outputs[r * width..(r + 1) * width]
                        .iter()
                        .map(|x| x.to_bits())
                        .collect::<Vec<_>>(),
                    "{path} batch row {r}"
                );
            }
        }
    }

    #[test]
    fn comparisons_follow_onnxruntime_with_nan() {
        let node = |mode: NodeMode, missing: bool| Node {
            feature_mode: ((mode as u32 | if missing { MISSING_TRUE } else { 0 }) << 24),
            threshold: 1.0,
            next: [1, 2],
        };
        assert!(node(NodeMode::Leq, false).goes_true(1.0));
        assert!(!node(NodeMode::Lt, false).goes_true(1.0));
        assert!(node(NodeMode::Gte, false).goes_true(1.0));
        assert!(!node(NodeMode::Gt, false).goes_true(1.0));
        assert!(node(NodeMode::Eq, false).goes_true(1.0));
        assert!(!node(NodeMode::Neq, false).goes_true(1.0));
        for mode in [
            NodeMode::Leq,
            NodeMode::Lt,
            NodeMode::Gte,
            NodeMode::Gt,
            NodeMode::Eq,
        ] {
            assert!(!node(mode, false).goes_true(f32::NAN), "{mode:?}");
            assert!(node(mode, true).goes_true(f32::NAN), "{mode:?}");
        }
        // NaN != t is true.
        assert!(node(NodeMode::Neq, false).goes_true(f32::NAN));
    }

    #[test]
    fn transforms_match_onnxruntime_formulas() {
        assert_eq!(logistic(0.0), 0.5);
        // onnxruntime computes 1 − σ(|x|) for negative x, which rounds tiny
        // probabilities to 0 in f32: so do we.
        assert_eq!(logistic(-30.0), 0.0);
        assert_eq!(logistic(30.0), 1.0);
        assert!((logistic(-2.0) - 0.119_202_92).abs() < 1e-7);
        let mut s = [1.0f32, 2.0, 3.0];
        softmax(&mut s);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(s[2] > s[1] && s[1] > s[0]);
        let mut z = [0.0f32, 1.0];
        softmax_zero(&mut z);
        assert_eq!(z[0], 0.0);
        assert_eq!(z[1], 1.0);
        assert!(probit(0.5).abs() < 1e-6);
        assert!((probit(0.975) - 1.959964).abs() < 2e-3);
    }
}
