// A truncated ONNX file does not decode.
#[apr_lambda::apr_lambda(model = "models/truncated.onnx")]
fn main() {}
