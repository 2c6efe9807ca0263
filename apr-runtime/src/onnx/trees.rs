//! `TreeEnsembleClassifier` / `TreeEnsembleRegressor` (ai.onnx.ml opsets
//! 1–3) to the `TreeEnsemble` family, reproducing onnxruntime's reading of
//! the attributes: a tree starts wherever `nodes_treeids` changes and its
//! first listed node is its root; child ids are node ids of the same tree;
//! each leaf's weights keep their attribute order.

use std::collections::HashMap;

use serde_json::json;

use super::attrs::NodeCtx;
use super::{Built, OnnxError};
use crate::format::schema::{self, ensemble as names};
use crate::format::DType;
use crate::model::{Aggregate, BinaryScore, NodeMode, PostTransform};

/// The most nodes a converted ensemble may have, counting subtrees that
/// several parents share (copied once per parent).
const MAX_NODES: usize = (1 << 24) - 1;

/// Converts one tree-ensemble node; `classifier` for
/// `TreeEnsembleClassifier`.
pub(super) fn convert(
    ctx: &NodeCtx<'_>,
    classifier: bool,
    n_features: usize,
) -> Result<Built, OnnxError> {
    let req = |name: &str| -> Result<&[i64], OnnxError> { ctx.required(name, ctx.ints(name)?) };
    let tree_ids = req("nodes_treeids")?;
    let node_ids = req("nodes_nodeids")?;
    let feature_ids = req("nodes_featureids")?;
    let true_ids = req("nodes_truenodeids")?;
    let false_ids = req("nodes_falsenodeids")?;
    let modes = ctx.required("nodes_modes", ctx.strings("nodes_modes")?)?;
    let values = ctx.required("nodes_values", ctx.floats("nodes_values")?)?;
    let missing = ctx
        .ints("nodes_missing_value_tracks_true")?
        .unwrap_or_default();
    let n = tree_ids.len();
    if n == 0 || n > MAX_NODES {
        return Err(ctx.err(format!("has {n} nodes; expected 1 to {MAX_NODES}")));
    }
    for (name, len) in [
        ("nodes_nodeids", node_ids.len()),
        ("nodes_featureids", feature_ids.len()),
        ("nodes_truenodeids", true_ids.len()),
        ("nodes_falsenodeids", false_ids.len()),
        ("nodes_modes", modes.len()),
        ("nodes_values", values.len()),
    ] {
        if len != n {
            return Err(ctx.err(format!("`{name}` has {len} entries, `nodes_treeids` {n}")));
        }
    }
    if !missing.is_empty() && missing.len() != n {
        return Err(ctx.err(format!(
            "`nodes_missing_value_tracks_true` has {} entries, `nodes_treeids` {n}",
            missing.len()
        )));
    }
    let post_transform = match ctx.string("post_transform")? {
        None => PostTransform::None,
        Some(name) => PostTransform::from_name(&name)
            .ok_or_else(|| ctx.err(format!("post_transform `{name}` is not a known transform")))?,
    };
    let aggregate = match ctx.string("aggregate_function")? {
        None => Aggregate::Sum,
        Some(name) => Aggregate::from_name(&name).ok_or_else(|| {
            ctx.err(format!(
                "aggregate_function `{name}` is not SUM, AVERAGE, MIN or MAX"
            ))
        })?,
    };
    if classifier && aggregate != Aggregate::Sum {
        return Err(ctx.err("a classifier has no aggregate_function"));
    }
    let base_values = ctx.floats("base_values")?.unwrap_or_default();

    // Trees: runs of equal tree ids; (tree, node id) -> attribute index.
    let mut runs: Vec<(i64, usize)> = Vec::new();
    let mut index: HashMap<(i64, i64), usize> = HashMap::with_capacity(n);
    for i in 0..n {
        if runs.last().map(|r| r.0) != Some(tree_ids[i]) {
            runs.push((tree_ids[i], i));
        }
        if index.insert((tree_ids[i], node_ids[i]), i).is_some() {
            return Err(ctx.err(format!(
                "tree {} lists node {} twice",
                tree_ids[i], node_ids[i]
            )));
        }
    }
    let tree_of_run: HashMap<i64, usize> =
        runs.iter().enumerate().map(|(r, &(t, _))| (t, r)).collect();
    if tree_of_run.len() != runs.len() {
        return Err(ctx.err("a tree's nodes are not listed together"));
    }

    // Leaf weights, per (tree, node), in attribute order.
    let prefix = if classifier { "class" } else { "target" };
    let w_trees = req(&format!("{prefix}_treeids"))?;
    let w_nodes = req(&format!("{prefix}_nodeids"))?;
    let w_ids = req(&format!("{prefix}_ids"))?;
    let w_values = ctx.required(
        &format!("{prefix}_weights"),
        ctx.floats(&format!("{prefix}_weights"))?,
    )?;
    let n_weights = w_trees.len();
    if [w_nodes.len(), w_ids.len(), w_values.len()] != [n_weights; 3] {
        return Err(ctx.err(format!("the `{prefix}_*` attributes differ in length")));
    }
    let mut leaf_weights: HashMap<usize, Vec<(i64, f32)>> = HashMap::new();
    for w in 0..n_weights {
        let Some(&node) = index.get(&(w_trees[w], w_nodes[w])) else {
            return Err(ctx.err(format!(
                "weight {w} is for node {} of tree {}, which does not exist",
                w_nodes[w], w_trees[w]
            )));
        };
        leaf_weights
            .entry(node)
            .or_default()
            .push((w_ids[w], w_values[w]));
    }

    // What the score columns are.
    let labels: Option<Vec<String>>;
    let mut meta = vec![
        (names::AGGREGATE.to_owned(), json!(aggregate.name())),
        (
            names::POST_TRANSFORM.to_owned(),
            json!(post_transform.name()),
        ),
    ];
    let (n_columns, column_of): (usize, Box<dyn Fn(i64) -> Option<usize>>);
    let mut base = base_values.clone();
    if classifier {
        let (count, names) = class_labels(ctx)?;
        labels = names;
        let mut ids: Vec<i64> = w_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        if count < 2 {
            return Err(ctx.err(format!(
                "has {count} class labels; a classifier needs at least 2"
            )));
        }
        meta.push((schema::N_CLASSES.to_owned(), json!(count)));
        if ids.is_empty() {
            return Err(ctx.err("has no leaf weights"));
        }
        if count == 2 && ids.len() == 1 {
            if post_transform == PostTransform::Probit {
                return Err(ctx.err(
                    "a two-class ensemble with one score column and post_transform PROBIT \
                     (onnxruntime answers it with one column, not two probabilities)",
                ));
            }
            // onnxruntime's binary case: one score column.
            if ids != [0] {
                return Err(ctx.err(format!(
                    "a two-class ensemble whose only class id is {}: onnxruntime's answer for it is \
                     not a probability; apr-lambda converts the single-column form with class id 0",
                    ids[0]
                )));
            }
            if base.len() > 1 {
                return Err(ctx.err(
                    "a two-class ensemble with one score column and two base values (onnxruntime \
                     reads them in a way no exporter relies on); expected 0 or 1 base value",
                ));
            }
            let all_positive = w_values.iter().all(|&w| w >= 0.0);
            let rule = if all_positive {
                BinaryScore::OneMinus
            } else {
                BinaryScore::Margin
            };
            meta.push((names::BINARY.to_owned(), json!(rule.name())));
            n_columns = 1;
            column_of = Box::new(|id| (id == 0).then_some(0));
        } else if count == 2 {
            return Err(ctx.err(
                "a two-class ensemble with weights for both classes: onnxruntime answers it with \
                 a sign rule, not an argmax; apr-lambda converts the single-column form (class id 0 \
                 holds class 1's score) that skl2onnx, XGBoost and LightGBM write",
            ));
        } else {
            if base.is_empty() && ids.len() < count {
                // onnxruntime's argmax skips a class no tree scored; without
                // base values such a class would be scored 0 here.
                return Err(ctx.err(format!(
                    "{count} classes but leaf weights for only {} of them and no base values \
                     (onnxruntime would skip the others when picking the class)",
                    ids.len()
                )));
            }
            n_columns = count;
            column_of = Box::new(move |id| usize::try_from(id).ok().filter(|&c| c < count));
        }
        if !base.is_empty() && base.len() != n_columns {
            return Err(ctx.err(format!(
                "has {} base values for {n_columns} score columns",
                base.len()
            )));
        }
    } else {
        labels = None;
        let targets = ctx.int("n_targets")?.unwrap_or(1);
        let targets = usize::try_from(targets)
            .ok()
            .filter(|&t| (1..=MAX_NODES).contains(&t))
            .ok_or_else(|| ctx.err(format!("n_targets {targets} is out of range")))?;
        n_columns = targets;
        column_of = Box::new(move |id| usize::try_from(id).ok().filter(|&c| c < targets));
        // onnxruntime uses base values only when there is one per target.
        if base.len() != targets {
            base.clear();
        }
    }
    meta.push((names::N_TARGETS.to_owned(), json!(n_columns)));
    meta.push((schema::N_FEATURES.to_owned(), json!(n_features)));

    // Depth-first, pre-order: children always after their parent. A node
    // two parents share is copied for the second.
    let budget = n.saturating_mul(4).saturating_add(1024).min(MAX_NODES);
    let mut out = Emitted::default();
    let mut roots = Vec::with_capacity(runs.len());
    for &(tree, first) in &runs {
        roots.push(out.len());
        let mut stack = vec![(first, 0usize, None::<(usize, bool)>)];
        while let Some((i, depth, parent)) = stack.pop() {
            if depth > n {
                return Err(ctx.err(format!("tree {tree} has a cycle")));
            }
            let at = out.len();
            if at >= budget {
                return Err(ctx.err(format!(
                    "more than {budget} nodes once shared subtrees are copied"
                )));
            }
            if let Some((p, is_true)) = parent {
                out.children[p][usize::from(!is_true)] = at as i32;
            }
            let mode = NodeMode::from_onnx(&modes[i])
                .ok_or_else(|| ctx.err(format!("node mode `{}` is not supported (BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, BRANCH_GT, BRANCH_EQ, BRANCH_NEQ, LEAF)", modes[i])))?;
            let missing_true = missing.get(i).copied() == Some(1);
            out.modes.push(mode as u8);
            out.missing.push(u8::from(missing_true));
            out.children.push([0, 0]);
            out.offsets.push(out.targets.len() as i32);
            if mode == NodeMode::Leaf {
                out.features.push(0);
                out.thresholds.push(0.0);
                let weights = leaf_weights.get(&i).map(Vec::as_slice).unwrap_or_default();
                if weights.is_empty() {
                    return Err(ctx.err(format!(
                        "leaf {} of tree {tree} has no weight (onnxruntime refuses such a model)",
                        node_ids[i]
                    )));
                }
                if out.targets.len() + weights.len() > MAX_NODES {
                    return Err(ctx.err(format!(
                        "more than {MAX_NODES} leaf weights once shared subtrees are copied"
                    )));
                }
                for &(id, w) in weights {
                    let column = column_of(id).ok_or_else(|| {
                        ctx.err(format!(
                            "a leaf of tree {tree} weighs class or target {id}, out of range"
                        ))
                    })?;
                    out.targets.push(column as i32);
                    out.weights.push(w);
                }
            } else {
                let feature = usize::try_from(feature_ids[i])
                    .ok()
                    .filter(|&f| f < n_features)
                    .ok_or_else(|| {
                        ctx.err(format!(
                            "node {} of tree {tree} splits on feature {}, but the input has {n_features}",
                            node_ids[i], feature_ids[i]
                        ))
                    })?;
                out.features.push(feature as i32);
                out.thresholds.push(values[i]);
                let child = |id: i64| {
                    index.get(&(tree, id)).copied().ok_or_else(|| {
                        ctx.err(format!(
                            "node {} of tree {tree} points to node {id}, which does not exist",
                            node_ids[i]
                        ))
                    })
                };
                let (t, f) = (child(true_ids[i])?, child(false_ids[i])?);
                // Popped in reverse: the true child comes first.
                stack.push((f, depth + 1, Some((at, false))));
                stack.push((t, depth + 1, Some((at, true))));
            }
        }
    }
    out.offsets.push(out.targets.len() as i32);

    let mut built = Built::new(crate::model::ModelFamily::TreeEnsemble.name());
    built.metadata = meta;
    built.labels = labels;
    let i32s = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let n_out = out.len();
    let roots: Vec<i32> = roots.iter().map(|&r| r as i32).collect();
    let (trues, falses): (Vec<i32>, Vec<i32>) = out.children.iter().map(|c| (c[0], c[1])).unzip();
    built.tensor(names::TREE_ROOTS, DType::I32, roots.len(), i32s(&roots));
    built.tensor(names::NODES_FEATURE, DType::I32, n_out, i32s(&out.features));
    built.tensor(names::NODES_MODE, DType::U8, n_out, out.modes.clone());
    built.tensor(
        names::NODES_THRESHOLD,
        DType::F32,
        n_out,
        f32s(&out.thresholds),
    );
    built.tensor(names::NODES_TRUE, DType::I32, n_out, i32s(&trues));
    built.tensor(names::NODES_FALSE, DType::I32, n_out, i32s(&falses));
    built.tensor(
        names::NODES_MISSING_TRUE,
        DType::U8,
        n_out,
        out.missing.clone(),
    );
    built.tensor(
        names::LEAF_OFFSETS,
        DType::I32,
        n_out + 1,
        i32s(&out.offsets),
    );
    built.tensor(
        names::LEAF_TARGETS,
        DType::I32,
        out.targets.len(),
        i32s(&out.targets),
    );
    built.tensor(
        names::LEAF_WEIGHTS,
        DType::F32,
        out.weights.len(),
        f32s(&out.weights),
    );
    if !base.is_empty() {
        built.tensor(names::BASE_VALUES, DType::F32, base.len(), f32s(&base));
    }
    Ok(built)
}

/// The nodes as written, in pre-order.
#[derive(Default)]
struct Emitted {
    features: Vec<i32>,
    modes: Vec<u8>,
    thresholds: Vec<f32>,
    children: Vec<[i32; 2]>,
    missing: Vec<u8>,
    offsets: Vec<i32>,
    targets: Vec<i32>,
    weights: Vec<f32>,
}

impl Emitted {
    fn len(&self) -> usize {
        self.modes.len()
    }
}

/// The class count and, unless the classes are the integers `0..k`, their
/// labels (`classlabels_int64s` as decimal strings, or
/// `classlabels_strings`). Used by every classifier operator.
pub(super) fn class_labels(ctx: &NodeCtx<'_>) -> Result<(usize, Option<Vec<String>>), OnnxError> {
    let ints = match ctx.ints("classlabels_int64s")? {
        Some(v) => Some(v),
        None => ctx.ints("classlabels_ints")?,
    };
    let strings = ctx.strings("classlabels_strings")?;
    match (ints, strings) {
        (Some(ints), None) => {
            let identity = ints.iter().enumerate().all(|(i, &c)| c == i as i64);
            Ok((
                ints.len(),
                (!identity).then(|| ints.iter().map(i64::to_string).collect()),
            ))
        }
        (None, Some(strings)) => Ok((strings.len(), Some(strings))),
        (Some(_), Some(_)) => Err(ctx.err("has both integer and string class labels")),
        (None, None) => {
            Err(ctx.err("has no class labels (classlabels_int64s or classlabels_strings)"))
        }
    }
}
