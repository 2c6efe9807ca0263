//! Feed-forward networks (`Gemm`, or `MatMul` then `Add`, and activations)
//! to the `NeuralSequential` family: the MLPs skl2onnx writes for
//! `MLPClassifier` / `MLPRegressor` and `torch.onnx.export` writes for an
//! `nn.Sequential`.

use serde_json::json;

use super::attrs::{Constant, NodeCtx};
use super::{Built, OnnxError};
use crate::format::schema::sequential::LAYERS;
use crate::model::ModelFamily;

/// The most layers a converted network may have.
const MAX_LAYERS: usize = 1024;

/// The most weights a converted network may have (256 MiB of `f32`).
const MAX_PARAMETERS: usize = 1 << 26;

/// One layer being built.
#[derive(Debug, Clone)]
enum Layer {
    /// `y = W x + b`, `W` as `[n_out, n_in]` row-major.
    Linear {
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
        n_in: usize,
        n_out: usize,
    },
    /// An activation, as the family's layer string (`"ReLU"`, ...).
    Activation(String),
}

/// A network under construction, one layer per node.
#[derive(Debug, Clone)]
pub(super) struct Network {
    layers: Vec<Layer>,
    width: usize,
}

impl Network {
    /// An empty network over `n_features` inputs.
    pub(super) fn new(n_features: usize) -> Self {
        Network {
            layers: Vec::new(),
            width: n_features,
        }
    }

    /// The number of layers so far (identifies the network's current value).
    pub(super) fn len(&self) -> usize {
        self.layers.len()
    }

    /// The current output width.
    pub(super) fn width(&self) -> usize {
        self.width
    }

    /// Whether the last layer is a `Linear` that has no bias yet (a
    /// `MatMul` waiting for its `Add`).
    pub(super) fn awaits_bias(&self) -> bool {
        matches!(self.layers.last(), Some(Layer::Linear { bias: None, .. }))
    }

    /// Whether the network answers classes (its last layer is Softmax or
    /// the binary `[1 − p, p]`).
    pub(super) fn gives_classes(&self) -> bool {
        self.ends_with("Softmax") || self.ends_with("Complement")
    }

    /// Whether the last layer is the activation `name`.
    pub(super) fn ends_with(&self, name: &str) -> bool {
        matches!(self.layers.last(), Some(Layer::Activation(a)) if a == name)
    }

    /// `MatMul(x, W)` with `W` a constant `[n_in, n_out]`.
    pub(super) fn matmul(&mut self, ctx: &NodeCtx<'_>, w: &Constant) -> Result<(), OnnxError> {
        let values = w
            .as_f32()
            .ok_or_else(|| ctx.err("the weight is not a float tensor"))?;
        let [n_in, n_out] = w.dims[..] else {
            return Err(ctx.err(format!(
                "the weight has shape {:?}; expected [in, out]",
                w.dims
            )));
        };
        self.check_in(ctx, n_in)?;
        self.check_room(ctx, values.len())?;
        // Stored [n_out, n_in].
        let mut weight = vec![0.0; n_in * n_out];
        for i in 0..n_in {
            for o in 0..n_out {
                weight[o * n_in + i] = values[i * n_out + o];
            }
        }
        self.push_linear(weight, None, n_in, n_out);
        Ok(())
    }

    /// `Add(y, b)` after a `MatMul`: the bias, `[n_out]` or `[1, n_out]`.
    pub(super) fn add_bias(&mut self, ctx: &NodeCtx<'_>, b: &Constant) -> Result<(), OnnxError> {
        let values = b
            .as_f32()
            .ok_or_else(|| ctx.err("the bias is not a float tensor"))?;
        let Some(Layer::Linear { bias, n_out, .. }) = self.layers.last_mut() else {
            return Err(ctx.err("adds a bias where no MatMul precedes"));
        };
        if values.len() != *n_out || b.dims.iter().rev().skip(1).any(|&d| d != 1) {
            return Err(ctx.err(format!(
                "the bias has shape {:?}; expected [{n_out}] or [1, {n_out}]",
                b.dims
            )));
        }
        *bias = Some(values);
        Ok(())
    }

    /// `Gemm(x, W, C)` with `transA = 0`, `alpha = beta = 1`.
    pub(super) fn gemm(
        &mut self,
        ctx: &NodeCtx<'_>,
        w: &Constant,
        c: Option<&Constant>,
    ) -> Result<(), OnnxError> {
        for (name, default) in [("alpha", 1.0), ("beta", 1.0)] {
            let value = ctx.float(name)?.unwrap_or(default);
            if value != 1.0 {
                return Err(ctx.err(format!(
                    "{name} = {value}; apr-lambda converts Gemm with {name} = 1"
                )));
            }
        }
        if ctx.int("transA")?.unwrap_or(0) != 0 {
            return Err(ctx.err("transA = 1; apr-lambda converts Gemm over rows of features"));
        }
        let values = w
            .as_f32()
            .ok_or_else(|| ctx.err("the weight is not a float tensor"))?;
        let [a, b] = w.dims[..] else {
            return Err(ctx.err(format!("the weight has shape {:?}; expected 2-D", w.dims)));
        };
        // onnxruntime reads any non-zero transB as transposed.
        if ctx.int("transB")?.unwrap_or(0) != 0 {
            // Already [n_out, n_in].
            self.check_in(ctx, b)?;
            self.check_room(ctx, values.len())?;
            self.push_linear(values, None, b, a);
        } else {
            self.matmul(ctx, w)?;
        }
        if let Some(c) = c {
            self.add_bias(ctx, c)?;
        }
        Ok(())
    }

    /// An element-wise or row-wise activation.
    pub(super) fn activation(&mut self, ctx: &NodeCtx<'_>, name: String) -> Result<(), OnnxError> {
        self.check_room(ctx, 0)?;
        self.layers.push(Layer::Activation(name));
        Ok(())
    }

    /// Room for one more layer of `params` weights: at most [`MAX_LAYERS`]
    /// layers and [`MAX_PARAMETERS`] weights in all (each MatMul copies its
    /// weight, so a file reusing one large initializer cannot multiply it).
    fn check_room(&self, ctx: &NodeCtx<'_>, params: usize) -> Result<(), OnnxError> {
        let total = self
            .layers
            .iter()
            .map(|l| match l {
                Layer::Linear { weight, .. } => weight.len(),
                Layer::Activation(_) => 0,
            })
            .fold(params, usize::saturating_add);
        if self.layers.len() >= MAX_LAYERS || total > MAX_PARAMETERS {
            return Err(ctx.err(format!(
                "the network grows past {MAX_LAYERS} layers or {MAX_PARAMETERS} weights"
            )));
        }
        Ok(())
    }

    /// `[p] → [1 − p, p]` after a one-unit sigmoid.
    pub(super) fn complement(&mut self, ctx: &NodeCtx<'_>) -> Result<(), OnnxError> {
        if self.width != 1 || !self.ends_with("Sigmoid") {
            return Err(ctx.err("builds [1 - p, p] from something other than one sigmoid unit"));
        }
        self.layers.push(Layer::Activation("Complement".to_owned()));
        self.width = 2;
        Ok(())
    }

    fn check_in(&self, ctx: &NodeCtx<'_>, n_in: usize) -> Result<(), OnnxError> {
        if n_in != self.width {
            return Err(ctx.err(format!(
                "the weight takes {n_in} inputs, but the layer before gives {}",
                self.width
            )));
        }
        Ok(())
    }

    fn push_linear(&mut self, weight: Vec<f32>, bias: Option<Vec<f32>>, n_in: usize, n_out: usize) {
        self.layers.push(Layer::Linear {
            weight,
            bias,
            n_in,
            n_out,
        });
        self.width = n_out;
    }

    /// The `NeuralSequential` model.
    pub(super) fn build(self) -> Result<Built, OnnxError> {
        if !self
            .layers
            .iter()
            .any(|l| matches!(l, Layer::Linear { .. }))
        {
            return Err(OnnxError::Graph(
                "has activations but no MatMul or Gemm".to_owned(),
            ));
        }
        let mut built = Built::new(ModelFamily::NeuralSequential.name());
        let mut names = Vec::new();
        let mut param = 0usize;
        for layer in self.layers {
            match layer {
                Layer::Linear {
                    weight,
                    bias,
                    n_in,
                    n_out,
                } => {
                    names.push(json!(format!("Linear({n_in}->{n_out})")));
                    built.f32_tensor(&param.to_string(), vec![n_out, n_in], &weight);
                    param += 1;
                    if let Some(bias) = bias {
                        built.f32_tensor(&param.to_string(), vec![n_out], &bias);
                        param += 1;
                    }
                }
                Layer::Activation(name) => names.push(json!(name)),
            }
        }
        built.metadata.push((LAYERS.to_owned(), json!(names)));
        Ok(built)
    }
}
