//! Serving a model without the `#[apr_lambda]` attribute: build the
//! [`LambdaHandler`] yourself from the model bytes and hand it to [`serve`].
//!
//! The model is the 4-feature, 3-class network of the test fixtures
//! (`mlp_multiclass.v2.apr`), embedded at compile time. Run it locally:
//!
//! ```text
//! cargo run --example serve_manual -- '{"features":[5.1,3.5,1.4,0.2]}'
//! ```
//!
//! or against a Lambda Runtime API by setting `AWS_LAMBDA_RUNTIME_API`.
//! `APR_MAX_BATCH=N` sets the batch limit (default: 10 000, or fewer when the
//! model's answers are large; see `apr_lambda::limits`);
//! `APR_MODEL_PATH=file.apr` serves that file instead of the embedded model.

use std::process::ExitCode;

use apr_lambda::runtime::lambda::{report_init_error, serve, LambdaHandler};

/// The model, embedded at compile time.
static MODEL: &[u8] = include_bytes!("../apr-runtime/tests/fixtures/mlp_multiclass.v2.apr");

fn main() -> ExitCode {
    let bytes: &'static [u8] = match std::env::var_os("APR_MODEL_PATH") {
        None => MODEL,
        Some(path) => match std::fs::read(&path) {
            // Lives as long as the process, like an embedded model.
            Ok(bytes) => Vec::leak(bytes),
            Err(err) => {
                eprintln!("error: cannot read {}: {err}", path.to_string_lossy());
                return ExitCode::FAILURE;
            }
        },
    };
    let handler = match LambdaHandler::from_bytes(bytes) {
        Ok(handler) => handler,
        Err(err) => {
            report_init_error(&err);
            return ExitCode::FAILURE;
        }
    };
    let handler = match std::env::var("APR_MAX_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(max_batch) => handler.with_max_batch(max_batch),
        None => handler,
    };
    match serve(handler) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
