//! A scikit-learn pipeline served from ONNX: `StandardScaler` then
//! `LogisticRegression` on the Iris data, exported with skl2onnx
//! (`models/iris_pipeline.onnx`, made by `scripts/onnx-fixtures.py`). The
//! attribute converts the graph to `.apr` while the crate compiles: the
//! scaler becomes a preprocessing stage, the class names in the graph
//! become the labels, and the binary carries no ONNX code.
//!
//! ```sh
//! cargo run --example iris_onnx -- '{"features":[5.1,3.5,1.4,0.2]}'
//! cargo run --example iris_onnx -- '{"features":{"sepal_length":6.7,"sepal_width":3.0,"petal_length":5.2,"petal_width":2.3}}'
//! ```
//!
//! Deploy it: `cargo lambda build --release --arm64 --example iris_onnx`
//! (see `docs/onnx.md` for the whole path from `pip install` to Lambda).

// - `features = 4` is checked against the graph's input, [batch, 4].
// - The labels ("setosa", "versicolor", "virginica") come from the graph's
//   `classlabels_strings`; `feature_names` lets events send named fields.
#[apr_lambda::apr_lambda(
    model = "models/iris_pipeline.onnx",
    features = 4,
    feature_names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
)]
fn main() {}
