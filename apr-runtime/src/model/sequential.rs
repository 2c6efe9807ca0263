//! `NeuralSequential`: a stack of layers listed in metadata `layers`, with
//! parameters stored as tensors `"0"`, `"1"`, ... (aprender's
//! `nn::serialize::state_dict`: each `Linear` contributes its weight
//! `[out, in]` then its bias `[out]`; activations have none).
//!
//! The index sorts names as bytes (`"10"` before `"2"`), so parameters are
//! taken by numeric value, never by index position.

use serde_json::Value;

use super::linear::Dense;
use super::output::{argmax, sized, BatchLayout, Output, ProbabilityLayout, RowsOut, Scratch};
use super::source::{shape_mismatch, TensorSource};
use super::ModelError;
use crate::format::schema::sequential as names;
use crate::format::Tensor;
use crate::kernels::Kernels;

/// aprender's `LeakyReLU::new()` slope, used for a bare `"LeakyReLU"`.
const DEFAULT_LEAKY_RELU_ALPHA: f32 = 0.01;

/// One layer of the stack.
pub(super) enum Layer<'a> {
    Linear(Dense<'a>),
    Relu,
    Sigmoid,
    Tanh,
    Gelu,
    LeakyRelu(f32),
    Softmax,
    /// `x − max − ln Σ e^(x − max)` per row (torch's `LogSoftmax`).
    LogSoftmax,
    /// `[p] → [1 − p, p]`: the two class probabilities of a binary
    /// classifier whose last layer is one sigmoid unit (scikit-learn's
    /// binary `MLPClassifier`). Only last, after a layer of width 1.
    Complement,
}

impl Layer<'_> {
    /// Applies an activation in place to `rows` rows of `width` values
    /// (softmax works row by row, the others element-wise). `Linear` is
    /// handled by the caller.
    fn activate(&self, k: &Kernels, values: &mut [f32], width: usize) {
        match self {
            Layer::Linear(_) => {}
            Layer::Relu => (k.relu)(values),
            Layer::Sigmoid => (k.sigmoid)(values),
            Layer::Tanh => (k.tanh)(values),
            Layer::Gelu => (k.gelu)(values),
            Layer::LeakyRelu(alpha) => (k.leaky_relu)(values, *alpha),
            Layer::Softmax => {
                for row in values.chunks_exact_mut(width.max(1)) {
                    (k.softmax)(row);
                }
            }
            Layer::LogSoftmax => {
                for row in values.chunks_exact_mut(width.max(1)) {
                    log_softmax(row);
                }
            }
            // Width-changing: done by `forward`.
            Layer::Complement => {}
        }
    }
}

/// A layer string before its parameters are attached.
enum LayerSpec {
    Linear { n_in: usize, n_out: usize },
    Activation(Layer<'static>),
}

fn parse_layer(index: usize, text: &str) -> Result<LayerSpec, ModelError> {
    let invalid = |reason: String| ModelError::InvalidLayer {
        index,
        layer: text.to_owned(),
        reason,
    };
    let activation = match text {
        "ReLU" => Some(Layer::Relu),
        "Sigmoid" => Some(Layer::Sigmoid),
        "Tanh" => Some(Layer::Tanh),
        "GELU" => Some(Layer::Gelu),
        "Softmax" => Some(Layer::Softmax),
        "LogSoftmax" => Some(Layer::LogSoftmax),
        "Complement" => Some(Layer::Complement),
        "LeakyReLU" => Some(Layer::LeakyRelu(DEFAULT_LEAKY_RELU_ALPHA)),
        _ => None,
    };
    if let Some(layer) = activation {
        return Ok(LayerSpec::Activation(layer));
    }
    if let Some(alpha) = text
        .strip_prefix("LeakyReLU(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        return match alpha.trim().parse::<f32>() {
            Ok(alpha) if alpha.is_finite() => Ok(LayerSpec::Activation(Layer::LeakyRelu(alpha))),
            _ => Err(invalid(format!(
                "the slope `{alpha}` is not a finite number"
            ))),
        };
    }
    if let Some(dims) = text
        .strip_prefix("Linear(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        let parsed = dims.split_once("->").and_then(|(a, b)| {
            Some((
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            ))
        });
        return match parsed {
            Some((n_in, n_out)) if n_in > 0 && n_out > 0 => Ok(LayerSpec::Linear { n_in, n_out }),
            _ => Err(invalid(
                "expected `Linear(IN->OUT)` with IN and OUT positive integers".to_owned(),
            )),
        };
    }
    Err(invalid(
        "unknown layer; expected Linear(IN->OUT), ReLU, Sigmoid, Tanh, Softmax, LogSoftmax, GELU, LeakyReLU(ALPHA) or Complement"
            .to_owned(),
    ))
}

/// The parameter tensors `"0"`, `"1"`, ... in numeric order. Names that are
/// not canonical decimal integers are not parameters and are ignored.
fn parameters<'a>(src: &TensorSource<'_, 'a>) -> Result<Vec<Tensor<'a>>, ModelError> {
    let mut numbered: Vec<(usize, &str)> = src
        .file()
        .tensors()
        .iter()
        .filter_map(|info| {
            let name = info.name.as_str();
            let n = name
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| name.parse::<usize>().ok())
                .flatten()?;
            (n.to_string() == name).then_some((n, name))
        })
        .collect();
    numbered.sort_unstable();
    numbered
        .iter()
        .enumerate()
        .map(|(position, &(n, name))| {
            if n != position {
                return Err(ModelError::InvalidParameter {
                    tensor: name.to_owned(),
                    reason: format!("parameter `{position}` is missing (parameters must run 0, 1, 2, ... without gaps)"),
                });
            }
            src.require(name)
        })
        .collect()
}

/// A validated stack of layers.
pub(super) struct Sequential<'a> {
    layers: Vec<Layer<'a>>,
    n_in: usize,
    n_out: usize,
    /// The widest activation, input included.
    max_width: usize,
    ends_in_softmax: bool,
}

impl<'a> Sequential<'a> {
    pub(super) fn load(src: &TensorSource<'_, 'a>) -> Result<Self, ModelError> {
        let missing_layers = || {
            ModelError::InvalidMetadata {
            key: names::LAYERS.to_owned(),
            reason: "a NeuralSequential model lists its layers there as an array of strings such as \"Linear(4->8)\" and \"ReLU\"".to_owned(),
        }
        };
        let specs = match src.file().metadata().get(names::LAYERS) {
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(text) => Ok((text.as_str(), parse_layer(i, text)?)),
                    other => Err(ModelError::InvalidLayer {
                        index: i,
                        layer: other.to_string(),
                        reason: "a layer must be a string".to_owned(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(missing_layers()),
        };

        let params = parameters(src)?;
        let mut next_param = params.iter();
        let mut pending = next_param.next();
        let mut layers = Vec::with_capacity(specs.len());
        let mut width: Option<usize> = None;
        let mut n_in: Option<usize> = None;
        let mut max_width = 0;
        for (index, (text, spec)) in specs.into_iter().enumerate() {
            let invalid = |reason: String| ModelError::InvalidLayer {
                index,
                layer: text.to_owned(),
                reason,
            };
            if matches!(layers.last(), Some(Layer::Complement)) {
                return Err(invalid(
                    "it follows Complement, which must be the last layer".to_owned(),
                ));
            }
            match spec {
                LayerSpec::Activation(Layer::Complement) => {
                    if width != Some(1) {
                        return Err(invalid(format!(
                            "Complement turns one probability into two, but the layer before it \
                             produces {}",
                            width.map_or("the input".to_owned(), |w| w.to_string())
                        )));
                    }
                    layers.push(Layer::Complement);
                    width = Some(2);
                    max_width = max_width.max(2);
                }
                LayerSpec::Activation(layer) => layers.push(layer),
                LayerSpec::Linear {
                    n_in: layer_in,
                    n_out,
                } => {
                    if let Some(w) = width {
                        if w != layer_in {
                            return Err(invalid(format!(
                                "it takes {layer_in} inputs but the layer before it produces {w}"
                            )));
                        }
                    }
                    let weight = pending.ok_or_else(|| {
                        invalid("its weight tensor is missing (ran out of parameters \"0\", \"1\", ...)".to_owned())
                    })?;
                    if weight.shape() != [n_out, layer_in] {
                        return Err(shape_mismatch(
                            weight,
                            format!(
                                "[{n_out}, {layer_in}] (the weight of layer {index}, `{text}`)"
                            ),
                        ));
                    }
                    pending = next_param.next();
                    let bias = match pending {
                        Some(bias) if bias.shape().len() == 1 => {
                            if bias.shape() != [n_out] {
                                return Err(shape_mismatch(
                                    bias,
                                    format!("[{n_out}] (the bias of layer {index}, `{text}`)"),
                                ));
                            }
                            pending = next_param.next();
                            Some(bias)
                        }
                        _ => None,
                    };
                    // Shapes first, then values: the weight's, then the bias's.
                    let weight_values = src.finite_weights(weight)?;
                    let bias = bias.map(|t| src.finite_weights(t)).transpose()?;
                    layers.push(Layer::Linear(Dense::new(
                        weight_values,
                        bias,
                        layer_in,
                        n_out,
                    )));
                    n_in.get_or_insert(layer_in);
                    max_width = max_width.max(layer_in).max(n_out);
                    width = Some(n_out);
                }
            }
        }
        if let Some(unused) = pending {
            return Err(ModelError::InvalidParameter {
                tensor: unused.name().to_owned(),
                reason: "no layer uses it (more parameters than the Linear layers in metadata `layers` take)".to_owned(),
            });
        }
        let (Some(n_in), Some(n_out)) = (n_in, width) else {
            return Err(ModelError::InvalidMetadata {
                key: names::LAYERS.to_owned(),
                reason: "it has no Linear layer, so the input width is unknown".to_owned(),
            });
        };
        for (key, declared) in [(names::N_INPUTS, n_in), (names::N_OUTPUTS, n_out)] {
            if let Some(found) = src.metadata_count(key)? {
                if found != declared {
                    return Err(ModelError::InvalidMetadata {
                        key: key.to_owned(),
                        reason: format!("it says {found} but the layers give {declared}"),
                    });
                }
            }
        }
        let ends_in_softmax = matches!(layers.last(), Some(Layer::Softmax | Layer::Complement));
        Ok(Self {
            layers,
            n_in,
            n_out,
            max_width,
            ends_in_softmax,
        })
    }

    pub(super) fn n_in(&self) -> usize {
        self.n_in
    }

    pub(super) fn n_out(&self) -> usize {
        self.n_out
    }

    /// Whether the last layer is Softmax (the network predicts a class).
    pub(super) fn ends_in_softmax(&self) -> bool {
        self.ends_in_softmax
    }

    pub(super) fn max_width(&self) -> usize {
        self.max_width
    }

    /// The `Linear` layers, for storage accounting.
    pub(super) fn dense_layers(&self) -> impl Iterator<Item = &Dense<'a>> {
        self.layers.iter().filter_map(|l| match l {
            Layer::Linear(d) => Some(d),
            _ => None,
        })
    }

    pub(super) fn predict<'s>(
        &self,
        k: &Kernels,
        row: &[f32],
        scratch: &'s mut Scratch,
    ) -> Output<'s> {
        let Scratch {
            primary, secondary, ..
        } = scratch;
        let result = forward(&self.layers, k, row, 1, primary, secondary);
        self.output(result.select(primary, secondary))
    }

    fn output<'s>(&self, result: &'s [f32]) -> Output<'s> {
        if self.ends_in_softmax {
            Output {
                class: Some(argmax(result)),
                outputs: result,
                probabilities: Some(result),
                label: None,
            }
        } else {
            Output {
                class: None,
                outputs: result,
                probabilities: None,
                label: None,
            }
        }
    }

    pub(super) fn layout(&self) -> BatchLayout {
        BatchLayout {
            n_outputs: self.n_out,
            classes: self.ends_in_softmax,
            probabilities: if self.ends_in_softmax {
                ProbabilityLayout::SameAsOutputs
            } else {
                ProbabilityLayout::None
            },
        }
    }

    /// Multiply-adds per row, over every `Linear` layer.
    pub(super) fn multiply_adds(&self) -> usize {
        self.dense_layers()
            .map(Dense::multiply_adds)
            .fold(0, usize::saturating_add)
    }

    /// `n_rows` rows of `rows` into `out` (see [`Sequential::layout`]), the
    /// hidden activations in `scratch`.
    pub(super) fn predict_rows(
        &self,
        k: &Kernels,
        rows: &[f32],
        n_rows: usize,
        out: RowsOut<'_>,
        scratch: &mut Scratch,
    ) {
        let Scratch {
            primary, secondary, ..
        } = scratch;
        let result = forward(&self.layers, k, rows, n_rows, primary, secondary);
        let result = result.select(primary, secondary);
        let len = out.outputs.len().min(result.len());
        out.outputs[..len].copy_from_slice(&result[..len]);
        if self.ends_in_softmax {
            for (row, class) in out
                .outputs
                .chunks_exact(self.n_out.max(1))
                .zip(out.classes.iter_mut())
            {
                *class = argmax(row);
            }
        }
    }
}

/// One of the two activation buffers.
#[derive(Clone, Copy, PartialEq)]
enum Buffer {
    Primary,
    Secondary,
}

/// Where [`forward`] left its result: the buffer, and how many of its
/// leading values are the result (`n_rows × n_out`; the buffers only ever
/// grow, so they may hold stale values after that).
#[derive(Clone, Copy)]
struct Activations {
    buffer: Buffer,
    len: usize,
}

impl Activations {
    fn select<'v>(self, primary: &'v [f32], secondary: &'v [f32]) -> &'v [f32] {
        let buffer = match self.buffer {
            Buffer::Primary => primary,
            Buffer::Secondary => secondary,
        };
        prefix(buffer, self.len)
    }
}

/// `x − max − ln Σ e^(x − max)` in place, as onnxruntime's `LogSoftmax`.
fn log_softmax(row: &mut [f32]) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
    let log_sum = sum.ln();
    for v in row.iter_mut() {
        *v = *v - max - log_sum;
    }
}

/// The first `len` values of `values` (all of them if there are fewer).
fn prefix(values: &[f32], len: usize) -> &[f32] {
    values.split_at(len.min(values.len())).0
}

/// Runs `n_rows` rows (`input`, `n_rows × n_in`) through `layers`,
/// ping-ponging between the two buffers. One row uses gemv, several gemm.
fn forward(
    layers: &[Layer<'_>],
    k: &Kernels,
    input: &[f32],
    n_rows: usize,
    primary: &mut Vec<f32>,
    secondary: &mut Vec<f32>,
) -> Activations {
    // `None`: still the caller's input.
    let mut at: Option<Activations> = None;
    let mut width = input.len().checked_div(n_rows).unwrap_or(0);
    for layer in layers {
        if let Layer::Complement = layer {
            // [p] -> [1 - p, p], into the other buffer.
            let (x, y, buffer): (&[f32], &mut Vec<f32>, Buffer) = match at {
                None => (input, &mut *primary, Buffer::Primary),
                Some(a) if a.buffer == Buffer::Primary => {
                    (prefix(primary, a.len), &mut *secondary, Buffer::Secondary)
                }
                Some(a) => (prefix(secondary, a.len), &mut *primary, Buffer::Primary),
            };
            let len = n_rows.saturating_mul(2);
            let y = sized(y, len);
            for (pair, &p) in y.chunks_exact_mut(2).zip(x) {
                pair.copy_from_slice(&[1.0 - p, p]);
            }
            at = Some(Activations { buffer, len });
            width = 2;
        } else if let Layer::Linear(dense) = layer {
            let (x, y, buffer): (&[f32], &mut Vec<f32>, Buffer) = match at {
                None => (input, &mut *primary, Buffer::Primary),
                Some(
                    a @ Activations {
                        buffer: Buffer::Primary,
                        ..
                    },
                ) => (prefix(primary, a.len), &mut *secondary, Buffer::Secondary),
                Some(
                    a @ Activations {
                        buffer: Buffer::Secondary,
                        ..
                    },
                ) => (prefix(secondary, a.len), &mut *primary, Buffer::Primary),
            };
            let len = n_rows.saturating_mul(dense.n_out);
            let y = sized(y, len);
            if n_rows == 1 {
                dense.forward_row(k, x, y);
            } else {
                dense.forward_rows(k, x, y);
            }
            at = Some(Activations { buffer, len });
            width = dense.n_out;
        } else {
            let current = match at {
                Some(current) => current,
                None => {
                    primary.clear();
                    primary.extend_from_slice(input);
                    Activations {
                        buffer: Buffer::Primary,
                        len: input.len(),
                    }
                }
            };
            at = Some(current);
            let values = match current.buffer {
                Buffer::Primary => primary.as_mut_slice(),
                Buffer::Secondary => secondary.as_mut_slice(),
            };
            let len = current.len.min(values.len());
            layer.activate(k, values.split_at_mut(len).0, width);
        }
    }
    at.unwrap_or_else(|| {
        primary.clear();
        primary.extend_from_slice(input);
        Activations {
            buffer: Buffer::Primary,
            len: input.len(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<LayerSpec> {
        parse_layer(0, text).ok()
    }

    #[test]
    fn parses_every_layer_string() {
        assert!(matches!(
            parse("Linear(4->32)"),
            Some(LayerSpec::Linear { n_in: 4, n_out: 32 })
        ));
        assert!(matches!(
            parse("Linear( 4 -> 3 )"),
            Some(LayerSpec::Linear { n_in: 4, n_out: 3 })
        ));
        for (text, want) in [
            ("ReLU", "relu"),
            ("Sigmoid", "sigmoid"),
            ("Tanh", "tanh"),
            ("GELU", "gelu"),
            ("Softmax", "softmax"),
        ] {
            let got = match parse(text) {
                Some(LayerSpec::Activation(Layer::Relu)) => "relu",
                Some(LayerSpec::Activation(Layer::Sigmoid)) => "sigmoid",
                Some(LayerSpec::Activation(Layer::Tanh)) => "tanh",
                Some(LayerSpec::Activation(Layer::Gelu)) => "gelu",
                Some(LayerSpec::Activation(Layer::Softmax)) => "softmax",
                _ => "other",
            };
            assert_eq!(got, want, "{text}");
        }
        assert!(matches!(
            parse("LeakyReLU(0.2)"),
            Some(LayerSpec::Activation(Layer::LeakyRelu(a))) if a == 0.2
        ));
        assert!(matches!(
            parse("LeakyReLU"),
            Some(LayerSpec::Activation(Layer::LeakyRelu(a))) if a == DEFAULT_LEAKY_RELU_ALPHA
        ));
    }

    #[test]
    fn rejects_malformed_layer_strings() {
        for text in [
            "Linear(4->)",
            "Linear(->4)",
            "Linear(4-4)",
            "Linear(4->0)",
            "Linear(-1->2)",
            "Linear(4->3",
            "LeakyReLU(nan)",
            "LeakyReLU(inf)",
            "Dropout(0.5)",
            "relu",
            "",
        ] {
            let err = parse_layer(3, text).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.starts_with("layer 3 (`")),
                "{text}: {err:?}"
            );
        }
    }
}
