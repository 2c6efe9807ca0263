//! [`OnnxError`]: why an ONNX file does not convert, naming the node, its
//! operator and what is supported instead.

/// An ONNX file the converter cannot turn into an `.apr` model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The bytes are not an ONNX protobuf (truncated, or another format).
    #[error("not a readable ONNX model (protobuf decoding failed: {reason}); is the file truncated or not ONNX?")]
    Decode {
        /// The protobuf decoder's message.
        reason: String,
    },

    /// The file decodes but holds no graph, or the graph is not one model
    /// from one float input.
    #[error("the ONNX graph {0}")]
    Graph(String),

    /// A node's operator is not one the converter knows.
    #[error(
        "node `{node}` uses operator {domain}:{op_type} (opset {opset}), which apr-lambda does not \
         convert; supported: {supported}"
    )]
    UnsupportedOperator {
        /// The node's name (or `#index` when it has none).
        node: String,
        /// The operator.
        op_type: String,
        /// Its domain (`ai.onnx` for the default domain).
        domain: String,
        /// The opset version the model imports for that domain.
        opset: i64,
        /// What the converter does support.
        supported: &'static str,
    },

    /// A known operator used in a way the converter does not support, or
    /// with attributes or inputs that are invalid.
    #[error("node `{node}` ({domain}:{op_type}): {reason}")]
    Node {
        /// The node's name (or `#index`).
        node: String,
        /// The operator.
        op_type: String,
        /// Its domain.
        domain: String,
        /// What is wrong.
        reason: String,
    },

    /// A tensor keeps its data outside the file.
    #[error(
        "tensor `{tensor}` keeps its data in an external file; save the model with the data \
         inside (onnx.save_model(model, path, save_as_external_data=False))"
    )]
    ExternalData {
        /// The tensor's name.
        tensor: String,
    },

    /// The converted model does not build (a bug in the converter, or a
    /// graph whose values the runtime refuses, e.g. NaN weights).
    #[error("the converted model is invalid: {0}")]
    Model(String),
}
