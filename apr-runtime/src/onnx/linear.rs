//! `LinearRegressor` and `LinearClassifier` to the `LinearRegression` and
//! `LogisticRegression` families.

use super::attrs::NodeCtx;
use super::trees::class_labels;
use super::{Built, OnnxError};
use crate::format::schema::linear::{BIAS, WEIGHT};
use crate::model::ModelFamily;

/// `coefficients` (`[n_out × n_features]`, row-major) and `intercepts`
/// (`[n_out]`, zeros when absent).
fn affine(
    ctx: &NodeCtx<'_>,
    n_out: usize,
    n_features: usize,
) -> Result<(Vec<f32>, Vec<f32>), OnnxError> {
    let coefficients = ctx.required("coefficients", ctx.floats("coefficients")?)?;
    if Some(coefficients.len()) != n_out.checked_mul(n_features) {
        return Err(ctx.err(format!(
            "has {} coefficients; expected {n_out} × {n_features} features",
            coefficients.len()
        )));
    }
    let intercepts = ctx
        .floats("intercepts")?
        .unwrap_or_else(|| vec![0.0; n_out]);
    if intercepts.len() != n_out {
        return Err(ctx.err(format!(
            "has {} intercepts for {n_out} outputs",
            intercepts.len()
        )));
    }
    Ok((coefficients, intercepts))
}

/// `LinearRegressor`: `y = W x + b`, `targets` outputs, no post-transform.
pub(super) fn regressor(ctx: &NodeCtx<'_>, n_features: usize) -> Result<Built, OnnxError> {
    let targets = ctx.int("targets")?.unwrap_or(1);
    let targets = usize::try_from(targets)
        .ok()
        .filter(|&t| t >= 1)
        .ok_or_else(|| ctx.err(format!("targets {targets} is not a positive count")))?;
    match ctx.string("post_transform")?.as_deref() {
        None | Some("NONE") => {}
        Some(other) => {
            return Err(ctx.err(format!(
                "post_transform `{other}`: apr-lambda converts linear regressors without one"
            )))
        }
    }
    let (w, b) = affine(ctx, targets, n_features)?;
    let mut built = Built::new(ModelFamily::LinearRegression.name());
    built.f32_tensor(WEIGHT, vec![targets, n_features], &w);
    built.f32_tensor(BIAS, vec![targets], &b);
    Ok(built)
}

/// `LinearClassifier`: multinomial (one row per class, `SOFTMAX`) or
/// binary (skl2onnx's two rows `[−w, w]`, `[−b, b]` with `LOGISTIC`, which
/// is the sigmoid of `w x + b`).
pub(super) fn classifier(ctx: &NodeCtx<'_>, n_features: usize) -> Result<Built, OnnxError> {
    let (n_classes, labels) = class_labels(ctx)?;
    let intercepts = ctx.floats("intercepts")?;
    let rows = match &intercepts {
        Some(b) => b.len(),
        None => ctx
            .floats("coefficients")?
            .map_or(0, |c| c.len() / n_features.max(1)),
    };
    let post = ctx
        .string("post_transform")?
        .unwrap_or_else(|| "NONE".to_owned());
    let (w, b) = affine(ctx, rows, n_features)?;
    let mut built = Built::new(ModelFamily::LogisticRegression.name());
    built.labels = labels;
    match (n_classes, rows, post.as_str()) {
        (2, 2, "LOGISTIC") => {
            let (w0, w1) = w.split_at(n_features);
            let symmetric = w0.iter().zip(w1).all(|(a, b)| *a == -*b) && b[0] == -b[1];
            if !symmetric {
                return Err(ctx.err(
                    "a two-class LinearClassifier whose rows are not opposite ([-w, w], [-b, b]): \
                     apr-lambda converts the binary form skl2onnx writes",
                ));
            }
            built.f32_tensor(WEIGHT, vec![1, n_features], w1);
            built.f32_tensor(BIAS, vec![1], &b[1..]);
        }
        (k, rows, "SOFTMAX") if k == rows && k >= 2 => {
            built.f32_tensor(WEIGHT, vec![k, n_features], &w);
            built.f32_tensor(BIAS, vec![k], &b);
        }
        (k, rows, post) => {
            return Err(ctx.err(format!(
                "{k} classes over {rows} coefficient rows with post_transform `{post}`: apr-lambda \
                 converts multinomial (one row per class, SOFTMAX) and binary (two opposite rows, \
                 LOGISTIC) linear classifiers"
            )))
        }
    }
    Ok(built)
}
