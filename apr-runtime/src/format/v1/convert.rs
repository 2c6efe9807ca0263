//! v1 → v2: writes a decoded v1 model as the v2 model families of
//! apr-format.md §3 (training data dropped), and re-writes v2 input
//! normalised.

use serde_json::json;

use super::{decode, DecisionTree, TreeNode, V1Error, V1File, V1Model};
use crate::format::schema::{self, kmeans, linear, provenance, tree};
use crate::format::{AprFile, AprWriter, FormatError};

/// The largest integer every f32 holds exactly (2^24).
const F32_EXACT_LIMIT: u64 = 1 << 24;

/// Converts `bytes` to a v2 container: a v1 (`APRN`) file is decoded and
/// written as its v2 model family; a v2 file is parsed (every rule checked)
/// and re-written normalised (canonical layout, footer present). Anything
/// else is the v2 parser's error (bad magic, ...).
pub fn convert_to_v2(bytes: &[u8]) -> Result<Vec<u8>, FormatError> {
    if bytes.starts_with(&super::MAGIC) {
        let file = decode(bytes)?;
        Ok(v1_to_writer(&file)?.to_bytes())
    } else {
        let file = AprFile::parse(bytes)?;
        let mut writer = AprWriter::new();
        for (key, value) in file.metadata().as_map() {
            if key != schema::MODEL_TYPE {
                writer.metadata(key, value.clone());
            }
        }
        if let Some(model_type) = file.model_type() {
            writer.model_type(model_type);
        }
        for tensor in file.iter() {
            writer.add_tensor(
                tensor.name(),
                tensor.dtype(),
                tensor.shape(),
                tensor.bytes().to_vec(),
            )?;
        }
        Ok(writer.to_bytes())
    }
}

/// The v2 model_type (§3 family name) a v1 model converts to.
pub(super) fn v2_model_type(model: &V1Model) -> &'static str {
    match model {
        V1Model::LinearRegression { .. } => linear::LINEAR_REGRESSION,
        V1Model::LogisticRegression { .. } => linear::LOGISTIC_REGRESSION,
        V1Model::DecisionTree(_) => tree::DECISION_TREE,
        V1Model::RandomForest { .. } => tree::RANDOM_FOREST,
        V1Model::KMeans { .. } => kmeans::KMEANS,
    }
}

/// A v2 writer holding the converted model of `file`.
pub(super) fn v1_to_writer(file: &V1File) -> Result<AprWriter, FormatError> {
    let model = &file.model;
    let family = model.family();
    let mut writer = AprWriter::new();
    // Every v1 metadata entry travels, `model_name` under the v2 key `name`.
    for (key, value) in file.metadata.as_map() {
        match key.as_str() {
            schema::MODEL_TYPE => {}
            provenance::V1_MODEL_NAME => {
                writer.metadata(provenance::NAME, value.clone());
            }
            _ => {
                writer.metadata(key, value.clone());
            }
        }
    }
    writer.metadata(
        provenance::SOURCE,
        json!("converted from an APR v1 (APRN) file"),
    );
    writer.metadata(provenance::V1_MODEL_TYPE, json!(family));
    writer.model_type(v2_model_type(model));

    let not_fitted = || V1Error::NotConvertible {
        family,
        reason: "the model was saved before it was fitted (it has no parameters)".to_string(),
    };
    match model {
        V1Model::LinearRegression {
            coefficients,
            intercept,
            fit_intercept,
        } => {
            let coefficients = coefficients.as_deref().ok_or_else(not_fitted)?;
            writer.metadata(schema::N_FEATURES, json!(coefficients.len()));
            writer.metadata(linear::FIT_INTERCEPT, json!(fit_intercept));
            writer.add_f32(linear::COEFFICIENTS, &[coefficients.len()], coefficients)?;
            writer.add_f32(linear::INTERCEPT, &[1], &[*intercept])?;
        }
        V1Model::LogisticRegression {
            coefficients,
            intercept,
            ..
        } => {
            let coefficients = coefficients.as_deref().ok_or_else(not_fitted)?;
            writer.metadata(schema::N_FEATURES, json!(coefficients.len()));
            writer.metadata(schema::N_CLASSES, json!(2));
            writer.add_f32(linear::COEFFICIENTS, &[coefficients.len()], coefficients)?;
            writer.add_f32(linear::INTERCEPT, &[1], &[*intercept])?;
        }
        V1Model::DecisionTree(tree) => {
            if tree.nodes.is_empty() {
                return Err(not_fitted().into());
            }
            if let Some(n) = tree.n_features {
                writer.metadata(schema::N_FEATURES, json!(n));
            }
            writer.metadata(schema::N_CLASSES, json!(n_classes([tree])));
            add_tree(&mut writer, family, "", tree, tree.max_depth)?;
        }
        V1Model::RandomForest {
            trees, max_depth, ..
        } => {
            if trees.is_empty() || trees.iter().any(|t| t.nodes.is_empty()) {
                return Err(not_fitted().into());
            }
            if let Some(n) = trees.iter().find_map(|t| t.n_features) {
                writer.metadata(schema::N_FEATURES, json!(n));
            }
            writer.metadata(schema::N_CLASSES, json!(n_classes(trees)));
            for (i, tree) in trees.iter().enumerate() {
                add_tree(
                    &mut writer,
                    family,
                    &tree::forest_prefix(i),
                    tree,
                    tree.max_depth.or(*max_depth),
                )?;
            }
            let n = exact_f32(family, tree::N_ESTIMATORS, trees.len() as u64)?;
            writer.add_f32(tree::N_ESTIMATORS, &[1], &[n])?;
        }
        V1Model::KMeans {
            centroids,
            inertia,
            n_iter,
            ..
        } => {
            let centroids = centroids.as_ref().ok_or_else(not_fitted)?;
            let rows = usize::try_from(centroids.rows).map_err(|_| not_fitted())?;
            let cols = usize::try_from(centroids.cols).map_err(|_| not_fitted())?;
            if rows == 0 || cols == 0 {
                return Err(not_fitted().into());
            }
            writer.metadata(schema::N_FEATURES, json!(cols));
            writer.metadata(kmeans::N_CLUSTERS, json!(rows));
            writer.metadata(kmeans::N_ITER, json!(n_iter));
            writer.add_f32(kmeans::CENTROIDS, &[rows, cols], &centroids.data)?;
            let k = exact_f32(family, kmeans::N_CLUSTERS, rows as u64)?;
            writer.add_f32(kmeans::N_CLUSTERS, &[1], &[k])?;
            writer.add_f32(kmeans::INERTIA, &[1], &[*inertia])?;
        }
    }
    Ok(writer)
}

/// One more than the largest leaf class over `trees` (0 without leaves).
fn n_classes<'t>(trees: impl IntoIterator<Item = &'t DecisionTree>) -> u64 {
    trees
        .into_iter()
        .flat_map(|t| t.nodes.iter())
        .filter_map(|node| match node {
            TreeNode::Leaf { class, .. } => Some(class.saturating_add(1)),
            TreeNode::Split { .. } => None,
        })
        .max()
        .unwrap_or(0)
}

fn exact_f32(family: &'static str, what: &str, value: u64) -> Result<f32, V1Error> {
    if value > F32_EXACT_LIMIT {
        return Err(V1Error::NotConvertible {
            family,
            reason: format!(
                "{what} {value} is larger than 2^24 and cannot be stored exactly in an f32 tensor"
            ),
        });
    }
    Ok(value as f32)
}

/// Writes `prefix` + `node_features`, `node_thresholds`, `node_classes`,
/// `node_samples`, `node_left_child`, `node_right_child` (pre-order, f32;
/// feature −1 marks a leaf, child −1 means none, class 0 on split nodes) and
/// `prefix` + `max_depth` (the configured depth, else the tree's own).
fn add_tree(
    writer: &mut AprWriter,
    family: &'static str,
    prefix: &str,
    tree: &DecisionTree,
    max_depth: Option<u64>,
) -> Result<(), FormatError> {
    let n = tree.nodes.len();
    let mut features = Vec::with_capacity(n);
    let mut thresholds = Vec::with_capacity(n);
    let mut classes = Vec::with_capacity(n);
    let mut samples = Vec::with_capacity(n);
    let mut left_children = Vec::with_capacity(n);
    let mut right_children = Vec::with_capacity(n);
    for node in &tree.nodes {
        match *node {
            TreeNode::Split {
                feature,
                threshold,
                n_samples,
                left,
                right,
                ..
            } => {
                features.push(exact_f32(family, "a split feature index", feature)?);
                thresholds.push(threshold);
                classes.push(0.0);
                samples.push(n_samples as f32);
                left_children.push(exact_f32(family, "a node index", left as u64)?);
                right_children.push(exact_f32(family, "a node index", right as u64)?);
            }
            TreeNode::Leaf {
                class, n_samples, ..
            } => {
                features.push(-1.0);
                thresholds.push(0.0);
                classes.push(exact_f32(family, "a leaf class", class)?);
                samples.push(n_samples as f32);
                left_children.push(-1.0);
                right_children.push(-1.0);
            }
        }
    }
    let arrays: [(&str, &[f32]); 6] = [
        (tree::NODE_FEATURES, &features),
        (tree::NODE_THRESHOLDS, &thresholds),
        (tree::NODE_CLASSES, &classes),
        (tree::NODE_SAMPLES, &samples),
        (tree::NODE_LEFT_CHILD, &left_children),
        (tree::NODE_RIGHT_CHILD, &right_children),
    ];
    for (name, values) in arrays {
        writer.add_f32(&format!("{prefix}{name}"), &[n], values)?;
    }
    let depth = max_depth.unwrap_or(tree.depth() as u64);
    let depth = exact_f32(family, tree::MAX_DEPTH, depth.min(F32_EXACT_LIMIT))?;
    writer.add_f32(&format!("{prefix}{}", tree::MAX_DEPTH), &[1], &[depth])?;
    Ok(())
}
