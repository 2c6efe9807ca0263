//! ONNX → `.apr` v2, at compile time (the `onnx` feature; the macro and the
//! CLI use it, a Lambda binary never carries it).
//!
//! [`convert`] decodes the protobuf, then walks the graph's nodes in order,
//! following the one float input through what it becomes: element-wise
//! preprocessing (`Scaler`, `Mul`/`Add`/`Sub` by a constant per feature,
//! no-op `Cast`/`Identity`/`Flatten`), then one model operator
//! (`TreeEnsembleClassifier`, `TreeEnsembleRegressor`, `LinearClassifier`,
//! `LinearRegressor`) or one network (`MatMul`/`Add`, `Gemm` and
//! activations), then the exporters' glue on its outputs (`Cast` and
//! `Identity` of the label, `ZipMap`, `Normalizer` L1 of probabilities,
//! `Reshape`, `ArgMax` and `ArrayFeatureExtractor`). Anything else is an [`OnnxError`] naming the node, the
//! operator and its opset, and what is supported. The result is one
//! `.apr` model: the family, its class labels, and the preprocessing as
//! stages (`docs/onnx.md`).
//!
//! ```no_run
//! let onnx = std::fs::read("model.onnx")?;
//! let apr = apr_runtime::onnx::convert(&onnx)?;
//! let model = apr_runtime::model::Model::from_bytes(&apr.bytes)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod attrs;
mod error;
mod linear;
mod network;
pub mod proto;
mod trees;

use std::collections::HashMap;

use prost::Message;
use serde_json::{json, Value};

use crate::format::schema::{preprocess, provenance};
use crate::format::{AprWriter, DType};
use crate::model::{ElementOp, Model, PREPROCESS_KEY};
use attrs::{Constant, NodeCtx};
pub use error::OnnxError;
use proto::{data_type, ModelProto};

/// The operators the converter reads, for error messages.
const SUPPORTED: &str = "ai.onnx.ml TreeEnsembleClassifier, TreeEnsembleRegressor, \
    LinearClassifier, LinearRegressor, Scaler, Normalizer (L1, after a classifier), ZipMap, \
    ArrayFeatureExtractor (labels of an ArgMax); ai.onnx Constant, MatMul, Gemm, Add (bias), Relu, Sigmoid, \
    Tanh, LeakyRelu, Softmax, LogSoftmax, ArgMax, Concat/Sub ([1 - p, p]), Cast, Identity, \
    Flatten, Reshape (of outputs), Mul/Add/Sub by a constant per feature";

/// The most preprocessing stages a converted model may have.
pub const MAX_STAGES: usize = crate::model::MAX_PREPROCESS_STAGES;

/// The most features a converted model may take.
pub const MAX_FEATURES: usize = 1 << 20;

/// The most bytes an ONNX file may have (the converter holds it decoded,
/// which takes several times its size; the macro embeds at most 16 MiB of
/// converted model anyway).
pub const MAX_ONNX_BYTES: usize = 64 << 20;

/// A converted model.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The `.apr` v2 container.
    pub bytes: Vec<u8>,
    /// The exporter that wrote the ONNX file (`producer_name` and version).
    pub producer: String,
}

/// Converts an ONNX model (`bytes` of a `.onnx` file) to an `.apr` v2
/// container, checking that the result loads.
///
/// # Errors
/// [`OnnxError`] for a file that does not decode, and for any graph the
/// converter does not support, naming the node and operator.
pub fn convert(bytes: &[u8]) -> Result<Converted, OnnxError> {
    if bytes.len() > MAX_ONNX_BYTES {
        return Err(OnnxError::Graph(format!(
            "file is {} bytes, more than the {MAX_ONNX_BYTES} the converter reads",
            bytes.len()
        )));
    }
    let model = ModelProto::decode(bytes).map_err(|e| OnnxError::Decode {
        reason: e.to_string(),
    })?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| OnnxError::Graph("is missing: the file holds no graph".to_owned()))?;
    let opsets: HashMap<&str, i64> = model
        .opset_import
        .iter()
        .map(|o| {
            let domain = if o.domain == "ai.onnx" {
                ""
            } else {
                o.domain.as_str()
            };
            (domain, o.version)
        })
        .collect();
    let mut walk = Walk::new(graph)?;
    for (index, node) in graph.node.iter().enumerate() {
        let domain = if node.domain == "ai.onnx" {
            ""
        } else {
            node.domain.as_str()
        };
        let opset = opsets.get(domain).copied().unwrap_or(0);
        walk.node(&NodeCtx { node, index, opset })?;
    }
    let built = walk.finish(graph)?;
    let producer = format!("{} {}", model.producer_name, model.producer_version)
        .trim()
        .to_owned();
    let bytes = built.write(&producer)?;
    Model::from_bytes(&bytes).map_err(|e| OnnxError::Model(e.to_string()))?;
    Ok(Converted { bytes, producer })
}

/// A model family's tensors and metadata, as a converter of one operator
/// builds them.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    model_type: &'static str,
    metadata: Vec<(String, Value)>,
    tensors: Vec<(String, DType, Vec<usize>, Vec<u8>)>,
    labels: Option<Vec<String>>,
    preprocess: Vec<(ElementOp, Vec<f32>)>,
}

impl Built {
    fn new(model_type: &'static str) -> Self {
        Built {
            model_type,
            metadata: Vec::new(),
            tensors: Vec::new(),
            labels: None,
            preprocess: Vec::new(),
        }
    }

    fn tensor(&mut self, name: &str, dtype: DType, len: usize, bytes: Vec<u8>) {
        self.tensors
            .push((name.to_owned(), dtype, vec![len], bytes));
    }

    fn f32_tensor(&mut self, name: &str, shape: Vec<usize>, values: &[f32]) {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensors
            .push((name.to_owned(), DType::F32, shape, bytes));
    }

    fn write(self, producer: &str) -> Result<Vec<u8>, OnnxError> {
        let mut writer = AprWriter::new();
        writer.model_type(self.model_type);
        for (key, value) in self.metadata {
            writer.metadata(&key, value);
        }
        writer.metadata(
            provenance::SOURCE,
            json!({ "format": "onnx", "producer": producer }),
        );
        if let Some(labels) = &self.labels {
            writer.labels(labels);
        }
        let mut stages = Vec::new();
        for (i, (op, values)) in self.preprocess.iter().enumerate() {
            let name = preprocess::tensor_name(i);
            writer
                .add_f32(&name, &[values.len()], values)
                .map_err(|e| OnnxError::Model(e.to_string()))?;
            let mut stage = serde_json::Map::new();
            stage.insert(preprocess::OP.to_owned(), json!(op.name()));
            stage.insert(preprocess::TENSOR.to_owned(), json!(name));
            stages.push(Value::Object(stage));
        }
        if !stages.is_empty() {
            writer.metadata(PREPROCESS_KEY, Value::Array(stages));
        }
        for (name, dtype, shape, bytes) in self.tensors {
            writer
                .add_tensor(&name, dtype, &shape, bytes)
                .map_err(|e| OnnxError::Model(e.to_string()))?;
        }
        Ok(writer.to_bytes())
    }
}

/// What a value of the graph is, as far as the converter follows it.
#[derive(Debug, Clone, PartialEq)]
enum Sym {
    /// The input rows after this many preprocessing stages.
    Features(usize),
    /// A constant.
    Const(Constant),
    /// The model's predicted labels.
    Label,
    /// The model's probabilities (classifiers) or values (regressors).
    Scores,
    /// The probabilities as ZipMap's sequence of maps.
    ScoreMaps,
    /// The network's output after this many layers.
    Net(usize),
    /// `1 − p` of the network's one-sigmoid output after this many layers.
    OneMinus(usize),
    /// The index of the network's largest output.
    ArgMax,
}

/// The state of the walk over the nodes.
struct Walk {
    values: HashMap<String, Sym>,
    n_features: usize,
    preprocess: Vec<(ElementOp, Vec<f32>)>,
    built: Option<Built>,
    /// The network being built, once a MatMul or Gemm has been seen.
    net: Option<network::Network>,
    /// Labels from an `ArrayFeatureExtractor` over the network's argmax.
    net_labels: Option<Vec<String>>,
    /// The network's layer counts at which an `ArgMax` or a `ZipMap` read
    /// it: each must be the final network's (a class read before the last
    /// layers is not the class the model answers).
    net_taps: Vec<usize>,
    /// Whether the model's probabilities may pass a `Normalizer` (L1)
    /// unchanged (they already sum to 1).
    normalized: bool,
}

impl Walk {
    fn new(graph: &proto::GraphProto) -> Result<Self, OnnxError> {
        if !graph.sparse_initializer.is_empty() {
            return Err(OnnxError::Graph(
                "has sparse initializers, which the converter does not read".to_owned(),
            ));
        }
        let mut values = HashMap::new();
        for t in &graph.initializer {
            if t.data_location == 1 || !t.external_data.is_empty() {
                return Err(OnnxError::ExternalData {
                    tensor: t.name.clone(),
                });
            }
            let c = Constant::from_proto(t)
                .map_err(|r| OnnxError::Graph(format!("initializer `{}`: {r}", t.name)))?;
            values.insert(t.name.clone(), Sym::Const(c));
        }
        let inputs: Vec<_> = graph
            .input
            .iter()
            .filter(|i| !values.contains_key(&i.name))
            .collect();
        let [input] = inputs.as_slice() else {
            return Err(OnnxError::Graph(format!(
                "has {} inputs ({}); apr-lambda converts models with one float input [batch, features]",
                inputs.len(),
                inputs.iter().map(|i| format!("`{}`", i.name)).collect::<Vec<_>>().join(", ")
            )));
        };
        let tensor = input
            .r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .ok_or_else(|| OnnxError::Graph(format!("input `{}` is not a tensor", input.name)))?;
        if tensor.elem_type != data_type::FLOAT {
            return Err(OnnxError::Graph(format!(
                "input `{}` is {}; apr-lambda converts models with a FLOAT input",
                input.name,
                data_type::name(tensor.elem_type)
            )));
        }
        let dims = tensor
            .shape
            .as_ref()
            .map(|s| s.dim.as_slice())
            .unwrap_or_default();
        let n_features = match dims {
            [_, last] => last
                .dim_value
                .and_then(|d| usize::try_from(d).ok())
                .filter(|&d| (1..=MAX_FEATURES).contains(&d)),
            _ => None,
        };
        let n_features = n_features.ok_or_else(|| {
            OnnxError::Graph(format!(
                "input `{}` must be [batch, features] with a fixed feature count of 1 to \
                 {MAX_FEATURES}; found {}",
                input.name,
                describe_dims(dims)
            ))
        })?;
        values.insert(input.name.clone(), Sym::Features(0));
        Ok(Walk {
            values,
            n_features,
            preprocess: Vec::new(),
            built: None,
            net: None,
            net_labels: None,
            net_taps: Vec::new(),
            normalized: false,
        })
    }

    fn sym(&self, ctx: &NodeCtx<'_>, i: usize) -> Result<&Sym, OnnxError> {
        let name = ctx
            .input(i)
            .ok_or_else(|| ctx.err(format!("input {i} is missing")))?;
        self.values.get(name).ok_or_else(|| {
            ctx.err(format!(
                "input `{name}` is not produced by any earlier node"
            ))
        })
    }

    /// The current features, as input `i` of `ctx` must be.
    fn features(&self, ctx: &NodeCtx<'_>, i: usize) -> Result<(), OnnxError> {
        match self.sym(ctx, i)? {
            Sym::Features(stage) if *stage == self.preprocess.len() => Ok(()),
            Sym::Features(_) => Err(ctx.err(
                "reads the features at an earlier stage of preprocessing; apr-lambda converts \
                 graphs that transform the features in one chain",
            )),
            _ => Err(ctx.err("expected the features (the graph input, preprocessed) here")),
        }
    }

    /// The network, as input `i` of `ctx` must be its current output (or
    /// the preprocessed features, which start a network).
    fn net(&mut self, ctx: &NodeCtx<'_>, i: usize) -> Result<&mut network::Network, OnnxError> {
        match self.sym(ctx, i)?.clone() {
            Sym::Features(_) => {
                self.features(ctx, i)?;
                if self.built.is_some() || self.net.as_ref().is_some_and(|n| n.len() > 0) {
                    return Err(
                        ctx.err("starts a second model in the graph; apr-lambda converts one")
                    );
                }
                Ok(self.net.insert(network::Network::new(self.n_features)))
            }
            Sym::Net(len) => match self.net.as_mut() {
                Some(net) if net.len() == len => Ok(net),
                _ => Err(ctx.err(
                    "reads the network's output at an earlier layer; apr-lambda converts networks \
                     that are one chain of layers",
                )),
            },
            _ => Err(ctx.err("expected the network's output (or the features) here")),
        }
    }

    /// Preprocessing must come before the model: a stage after it (a
    /// branch the model never reads) would be applied to the model's input.
    /// At most [`MAX_STAGES`] stages.
    fn before_model(&self, ctx: &NodeCtx<'_>) -> Result<(), OnnxError> {
        if self.built.is_some() || self.net.as_ref().is_some_and(|n| n.len() > 0) {
            return Err(ctx.err(
                "transforms the features after the model has read them; apr-lambda converts \
                 preprocessing that feeds the model",
            ));
        }
        if self.preprocess.len() + 2 > MAX_STAGES {
            return Err(ctx.err(format!("more than {MAX_STAGES} preprocessing stages")));
        }
        Ok(())
    }

    /// Input `i` as a constant.
    fn constant(&self, ctx: &NodeCtx<'_>, i: usize) -> Result<Constant, OnnxError> {
        match self.sym(ctx, i)? {
            Sym::Const(c) => Ok(c.clone()),
            _ => Err(ctx.err(format!("input {i} must be a constant (an initializer)"))),
        }
    }

    fn set_net(&mut self, ctx: &NodeCtx<'_>) {
        let len = self.net.as_ref().map_or(0, network::Network::len);
        self.set(ctx, 0, Sym::Net(len));
    }

    fn set(&mut self, ctx: &NodeCtx<'_>, i: usize, sym: Sym) {
        if let Some(name) = ctx.node.output.get(i).filter(|s| !s.is_empty()) {
            self.values.insert(name.clone(), sym);
        }
    }

    fn node(&mut self, ctx: &NodeCtx<'_>) -> Result<(), OnnxError> {
        let op = ctx.node.op_type.as_str();
        let unsupported = || OnnxError::UnsupportedOperator {
            node: ctx.name(),
            op_type: op.to_owned(),
            domain: ctx.domain().to_owned(),
            opset: ctx.opset,
            supported: SUPPORTED,
        };
        match (ctx.node.domain.as_str(), op) {
            ("" | "ai.onnx", "Constant") => {
                let value = ctx.required("value", ctx.tensor("value")?)?;
                self.set(ctx, 0, Sym::Const(value));
            }
            ("" | "ai.onnx", "Identity") => {
                let sym = self.sym(ctx, 0)?.clone();
                self.set(ctx, 0, sym);
            }
            ("" | "ai.onnx", "Cast") => {
                let to = ctx.required("to", ctx.int("to")?)?;
                let sym = self.sym(ctx, 0)?.clone();
                match (&sym, to) {
                    (Sym::Label, _) => {}
                    (Sym::Features(_) | Sym::Scores | Sym::Net(_), 1) => {}
                    _ => {
                        return Err(ctx.err(format!(
                            "casts to {} here; apr-lambda converts casts of the label and \
                             float-to-float casts",
                            data_type::name(to as i32)
                        )))
                    }
                }
                self.set(ctx, 0, sym);
            }
            ("" | "ai.onnx", "Flatten") => {
                let axis = ctx.int("axis")?.unwrap_or(1);
                self.features(ctx, 0)?;
                if axis != 1 {
                    return Err(
                        ctx.err(format!("axis {axis}: only axis 1 keeps [batch, features]"))
                    );
                }
                self.set(ctx, 0, Sym::Features(self.preprocess.len()));
            }
            ("" | "ai.onnx", "Reshape") => {
                let shape = match self.constant(ctx, 1)?.data {
                    attrs::Data::I64(shape) => shape,
                    _ => return Err(ctx.err("the shape is not an integer constant")),
                };
                let sym = self.sym(ctx, 0)?.clone();
                // Only reshapes that keep one entry (label) or one row
                // (values) per input row: [-1] and [-1, width].
                let width = match &sym {
                    Sym::Net(_) => self.net.as_ref().map(|n| n.width() as i64),
                    _ => None,
                };
                let keeps_rows = match (&sym, shape.as_slice()) {
                    (Sym::Label, [-1]) => true,
                    (Sym::Net(_), [-1, w]) => Some(*w) == width || *w == -1,
                    _ => false,
                };
                if !keeps_rows {
                    return Err(ctx.err(format!(
                        "reshapes to {shape:?}; apr-lambda converts reshapes of the model's outputs \
                         that keep one row per input row ([-1] for labels, [-1, width] for values)"
                    )));
                }
                self.set(ctx, 0, sym);
            }
            ("" | "ai.onnx", "Add")
                if matches!(self.sym(ctx, 0)?, Sym::Net(_))
                    || matches!(self.sym(ctx, 1)?, Sym::Net(_)) =>
            {
                let (net_input, bias) = if matches!(self.sym(ctx, 0)?, Sym::Net(_)) {
                    (0, 1)
                } else {
                    (1, 0)
                };
                let bias = self.constant(ctx, bias)?;
                let net = self.net(ctx, net_input)?;
                if !net.awaits_bias() {
                    return Err(ctx.err("adds to the network's output where no MatMul precedes"));
                }
                net.add_bias(ctx, &bias)?;
                // The bias completes the layer: same length, so the value
                // stays current.
                self.set_net(ctx);
            }
            ("" | "ai.onnx", "Sub") if matches!(self.sym(ctx, 1)?, Sym::Net(_)) => {
                let one = self.constant(ctx, 0)?;
                let net = self.net(ctx, 1)?;
                if one.as_f32().as_deref() != Some(&[1.0][..])
                    || net.width() != 1
                    || !net.ends_with("Sigmoid")
                {
                    return Err(ctx.err(
                        "apr-lambda converts Sub on a network only as 1 - p of a one-unit sigmoid \
                         (the binary classifier's [1 - p, p])",
                    ));
                }
                let len = net.len();
                self.set(ctx, 0, Sym::OneMinus(len));
            }
            ("" | "ai.onnx", "Concat") => {
                let axis = ctx.int("axis")?;
                let len =
                    match (self.sym(ctx, 0)?, self.sym(ctx, 1)?, ctx.node.input.len()) {
                        (Sym::OneMinus(a), Sym::Net(b), 2)
                            if a == b && matches!(axis, Some(1 | -1)) =>
                        {
                            *a
                        }
                        _ => return Err(ctx.err(
                            "apr-lambda converts Concat only as [1 - p, p] of a one-unit sigmoid, \
                             along axis 1",
                        )),
                    };
                let net = self.net(ctx, 1)?;
                debug_assert_eq!(net.len(), len);
                net.complement(ctx)?;
                self.set_net(ctx);
            }
            ("" | "ai.onnx", "MatMul") => {
                let w = self.constant(ctx, 1)?;
                self.net(ctx, 0)?.matmul(ctx, &w)?;
                self.set_net(ctx);
            }
            ("" | "ai.onnx", "Gemm") => {
                let w = self.constant(ctx, 1)?;
                let c = match ctx.input(2) {
                    Some(_) => Some(self.constant(ctx, 2)?),
                    None => None,
                };
                self.net(ctx, 0)?.gemm(ctx, &w, c.as_ref())?;
                self.set_net(ctx);
            }
            (
                "" | "ai.onnx",
                "Relu" | "Sigmoid" | "Tanh" | "LeakyRelu" | "Softmax" | "LogSoftmax",
            ) => {
                let layer = match op {
                    "Relu" => "ReLU".to_owned(),
                    "LeakyRelu" => {
                        let alpha = ctx.float("alpha")?.unwrap_or(0.01);
                        format!("LeakyReLU({alpha:?})")
                    }
                    "Softmax" | "LogSoftmax" => {
                        let default = if ctx.opset >= 13 { -1 } else { 1 };
                        let axis = ctx.int("axis")?.unwrap_or(default);
                        if axis != 1 && axis != -1 {
                            return Err(ctx.err(format!("axis {axis}: apr-lambda converts {op} over each row (axis 1 or -1)")));
                        }
                        op.to_owned()
                    }
                    other => other.to_owned(),
                };
                self.net(ctx, 0)?.activation(ctx, layer)?;
                self.set_net(ctx);
            }
            ("" | "ai.onnx", "ArgMax") => {
                let axis = ctx.int("axis")?.unwrap_or(0);
                let last = ctx.int("select_last_index")?.unwrap_or(0);
                if !matches!(self.sym(ctx, 0)?, Sym::Net(_)) || !matches!(axis, 1 | -1) || last != 0
                {
                    return Err(ctx.err("apr-lambda converts ArgMax only over each row of the network's output (axis 1, first index)"));
                }
                let len = self.net(ctx, 0)?.len();
                self.net_taps.push(len);
                self.set(ctx, 0, Sym::ArgMax);
            }
            ("ai.onnx.ml", "ArrayFeatureExtractor") => {
                let classes = self.constant(ctx, 0)?;
                if *self.sym(ctx, 1)? != Sym::ArgMax {
                    return Err(ctx.err("apr-lambda converts ArrayFeatureExtractor only as the class labels of an ArgMax"));
                }
                let width = self.net.as_ref().map_or(0, network::Network::width);
                if classes.len() != width {
                    return Err(ctx.err(format!(
                        "{} class labels for {width} outputs",
                        classes.len()
                    )));
                }
                self.net_labels = match classes.data {
                    attrs::Data::I64(ints) => {
                        (!ints.iter().enumerate().all(|(i, &c)| c == i as i64))
                            .then(|| ints.iter().map(i64::to_string).collect())
                    }
                    attrs::Data::Str(strings) => Some(strings),
                    _ => return Err(ctx.err("the class labels are neither integers nor strings")),
                };
                self.set(ctx, 0, Sym::Label);
            }
            ("" | "ai.onnx", "Mul" | "Add" | "Sub") => {
                let element = match op {
                    "Mul" => ElementOp::Mul,
                    "Add" => ElementOp::Add,
                    _ => ElementOp::Sub,
                };
                // The features first; Mul and Add also commute.
                let (features, constant) = match (self.sym(ctx, 0)?, self.sym(ctx, 1)?) {
                    (Sym::Features(_), Sym::Const(c)) => (0, c.clone()),
                    (Sym::Const(c), Sym::Features(_)) if element != ElementOp::Sub => {
                        (1, c.clone())
                    }
                    _ => return Err(ctx.err(
                        "apr-lambda converts this operator between the features and a constant \
                             (a per-feature scaler)",
                    )),
                };
                self.features(ctx, features)?;
                self.before_model(ctx)?;
                let values = self.per_feature(ctx, &constant)?;
                self.preprocess.push((element, values));
                self.set(ctx, 0, Sym::Features(self.preprocess.len()));
            }
            ("ai.onnx.ml", "Scaler") => {
                self.features(ctx, 0)?;
                self.before_model(ctx)?;
                let n = self.n_features;
                let broadcast = |name: &str, v: Option<Vec<f32>>| -> Result<Vec<f32>, OnnxError> {
                    match v {
                        None => Err(ctx.err(format!("the required attribute `{name}` is missing"))),
                        Some(v) if v.len() == n => Ok(v),
                        Some(v) if v.len() == 1 => Ok(vec![v[0]; n]),
                        Some(v) => {
                            Err(ctx
                                .err(format!("`{name}` has {} values for {n} features", v.len())))
                        }
                    }
                };
                let offset = broadcast("offset", ctx.floats("offset")?)?;
                let scale = broadcast("scale", ctx.floats("scale")?)?;
                self.preprocess.push((ElementOp::Sub, offset));
                self.preprocess.push((ElementOp::Mul, scale));
                self.set(ctx, 0, Sym::Features(self.preprocess.len()));
            }
            (
                "ai.onnx.ml",
                "TreeEnsembleClassifier"
                | "TreeEnsembleRegressor"
                | "LinearClassifier"
                | "LinearRegressor",
            ) => {
                self.features(ctx, 0)?;
                if self.built.is_some() || self.net.is_some() {
                    return Err(ctx.err("is a second model in the graph; apr-lambda converts one"));
                }
                let n = self.n_features;
                let (built, classifier, normalized) = match op {
                    "TreeEnsembleClassifier" => (trees::convert(ctx, true, n)?, true, false),
                    "TreeEnsembleRegressor" => (trees::convert(ctx, false, n)?, false, false),
                    "LinearClassifier" => (linear::classifier(ctx, n)?, true, true),
                    _ => (linear::regressor(ctx, n)?, false, false),
                };
                self.built = Some(built);
                self.normalized = normalized;
                if classifier {
                    self.set(ctx, 0, Sym::Label);
                    self.set(ctx, 1, Sym::Scores);
                } else {
                    self.set(ctx, 0, Sym::Scores);
                }
            }
            ("ai.onnx.ml", "Normalizer") => {
                let norm = ctx.string("norm")?.unwrap_or_default();
                if *self.sym(ctx, 0)? != Sym::Scores || !self.normalized || norm != "L1" {
                    return Err(ctx.err(format!(
                        "norm `{norm}` here; apr-lambda converts Normalizer only as the L1 \
                         normalisation of a linear classifier's probabilities (which sum to 1 already)"
                    )));
                }
                self.set(ctx, 0, Sym::Scores);
            }
            ("ai.onnx.ml", "ZipMap") => {
                if let Sym::Net(len) = self.sym(ctx, 0)? {
                    let len = *len;
                    self.net_taps.push(len);
                }
                if !matches!(self.sym(ctx, 0)?, Sym::Scores | Sym::Net(_)) {
                    return Err(ctx.err("maps something other than the model's probabilities"));
                }
                self.set(ctx, 0, Sym::ScoreMaps);
            }
            _ => return Err(unsupported()),
        }
        Ok(())
    }

    /// A constant of one value per feature (or one for all).
    fn per_feature(&self, ctx: &NodeCtx<'_>, c: &Constant) -> Result<Vec<f32>, OnnxError> {
        let values = c
            .as_f32()
            .ok_or_else(|| ctx.err("the constant operand is not a float tensor"))?;
        let n = self.n_features;
        let shape_ok = c.dims.iter().rev().skip(1).all(|&d| d == 1);
        match values.len() {
            len if len == n && shape_ok => Ok(values),
            1 => Ok(vec![values[0]; n]),
            len => Err(ctx.err(format!(
                "the constant operand has shape {:?} ({len} values); expected one value per feature ({n})",
                c.dims
            ))),
        }
    }

    fn finish(self, graph: &proto::GraphProto) -> Result<Built, OnnxError> {
        let net_len = self.net.as_ref().map(network::Network::len);
        if let Some(len) = net_len {
            if self.net_taps.iter().any(|&tap| tap != len) {
                return Err(OnnxError::Graph(
                    "reads the network's class or probabilities before its last layer; \
                     apr-lambda answers with the last layer's"
                        .to_owned(),
                ));
            }
            let classes = self
                .net
                .as_ref()
                .is_some_and(network::Network::gives_classes);
            if !self.net_taps.is_empty() && !classes {
                return Err(OnnxError::Graph(
                    "takes a class from a network whose last layer is not Softmax or the \
                     binary [1 - p, p]; apr-lambda answers classes only for those"
                        .to_owned(),
                ));
            }
        }
        let built = match self.net {
            Some(net) => {
                let mut built = net.build()?;
                built.labels = self.net_labels;
                Some(built)
            }
            None => self.built,
        };
        let mut built = built.ok_or_else(|| {
            OnnxError::Graph(format!("holds no model operator; supported: {SUPPORTED}"))
        })?;
        for output in &graph.output {
            match self.values.get(&output.name) {
                Some(Sym::Label | Sym::Scores | Sym::ScoreMaps) => {}
                Some(Sym::Net(len)) if Some(*len) == net_len => {}
                Some(_) | None => {
                    return Err(OnnxError::Graph(format!(
                        "output `{}` is not the model's label, probabilities or values (or \
                         not the final ones)",
                        output.name
                    )))
                }
            }
        }
        built.preprocess = self.preprocess;
        Ok(built)
    }
}

fn describe_dims(dims: &[proto::Dimension]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| match (&d.dim_value, &d.dim_param) {
            (Some(v), _) => v.to_string(),
            (None, Some(p)) => format!("`{p}`"),
            (None, None) => "?".to_owned(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}
