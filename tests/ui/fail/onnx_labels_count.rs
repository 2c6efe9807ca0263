// The labels the ONNX graph carries count as the model's: three classes.
#[apr_lambda::apr_lambda(model = "models/iris_pipeline.onnx", labels = ["a", "b"])]
fn main() {}
