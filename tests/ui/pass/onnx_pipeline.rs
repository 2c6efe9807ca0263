// A scikit-learn pipeline (StandardScaler + LogisticRegression, string
// labels) exported with skl2onnx: converted to .apr v2 while compiling.
#[apr_lambda::apr_lambda(model = "models/iris_pipeline.onnx", features = 4)]
fn main() {}
