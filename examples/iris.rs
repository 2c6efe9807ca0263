//! The default: an Iris classifier served as an AWS Lambda function.
//!
//! Try it locally (no AWS needed: without `AWS_LAMBDA_RUNTIME_API` the
//! binary answers the events given as arguments, or JSON lines on stdin):
//!
//! ```sh
//! cargo run --example iris -- '{"features":[5.1,3.5,1.4,0.2]}'
//! cargo run --example iris -- '{"instances":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}'
//! cargo run --example iris -- '{"features":{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}}'
//! cargo run --example iris -- --help
//! ```
//!
//! Deploy it: `cargo lambda build --release --arm64 --example iris` (see the
//! README). The same binary serves on Lambda: nothing else to write.

// Copy this into your own `src/main.rs`, with `apr-lambda` as a dependency
// and your model next to `Cargo.toml` (or start with `apr-lambda new`):
//
// - `model` is relative to the crate's Cargo.toml (CARGO_MANIFEST_DIR). The
//   file is read and fully validated while the crate compiles (container
//   checksums, tensor index, model family, shapes): a bad model is a compile
//   error here, never a failed cold start.
// - `features = 4` makes the compiler check that the model takes 4 inputs
//   (sepal length, sepal width, petal length, petal width, in cm).
// - `labels` names the classes: every answer carries `"label"` beside
//   `"prediction"` (a count that does not match the model's 3 classes is a
//   compile error).
// - `feature_names` lets events send a row as an object keyed by name,
//   `{"features": {"sepal_length": 5.1, ...}}`, as well as an array.
// - `max_batch` caps the rows of one `{"instances": [...]}` event.
#[apr_lambda::apr_lambda(
    model = "models/model.apr",
    features = 4,
    labels = ["setosa", "versicolor", "virginica"],
    feature_names = ["sepal_length", "sepal_width", "petal_length", "petal_width"],
    max_batch = 1000
)]
fn main() {
    // The body runs once per process, before the first event: the place for
    // one-time setup such as logging. Lambda bills nothing for the wait
    // before the first event, and init runs with the full CPU.
}
