// An operator the converter does not know is named with its node and opset.
#[apr_lambda::apr_lambda(model = "models/unsupported_op.onnx")]
fn main() {}
