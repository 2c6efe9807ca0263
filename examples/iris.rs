//! The default: an Iris classifier served as an AWS Lambda function.
//!
//! Try it locally (no AWS needed: without `AWS_LAMBDA_RUNTIME_API` the
//! binary answers the events given as arguments, or JSON lines on stdin):
//!
//! ```sh
//! cargo run --example iris -- '{"features":[5.1,3.5,1.4,0.2]}'
//! cargo run --example iris -- '{"instances":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}'
//! cargo run --example iris -- --help
//! ```
//!
//! Deploy it: `cargo lambda build --release --arm64 --example iris` (see the
//! README). The same binary serves on Lambda: nothing else to write.

// Copy this into your own `src/main.rs`, with `apr-lambda` as a dependency
// and your model next to `Cargo.toml`:
//
// - `model` is relative to the crate's Cargo.toml (CARGO_MANIFEST_DIR). The
//   file is read and fully validated while the crate compiles (container
//   checksums, tensor index, model family, shapes): a bad model is a compile
//   error here, never a failed cold start.
// - `features = 4` makes the compiler check that the model takes 4 inputs
//   (sepal length, sepal width, petal length, petal width, in cm).
// - `max_batch` caps the rows of one `{"instances": [...]}` event.
#[apr_lambda::apr_lambda(model = "models/model.apr", features = 4, max_batch = 1000)]
fn main() {
    // The body runs once per process, before the first event: the place for
    // one-time setup such as logging. Lambda bills nothing for the wait
    // before the first event, and init runs with the full CPU.
    //
    // Example: print the class names once, to stderr (stdout carries the
    // responses in local mode).
    eprintln!("iris: classes 0 = setosa, 1 = versicolor, 2 = virginica");
}
