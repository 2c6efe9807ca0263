//! The floor for the cold-start benchmark: a minimal `lambda_runtime`
//! function that echoes its event, built like the apr-lambda functions
//! (current-thread tokio runtime, `lambda_runtime`'s default tracing
//! subscriber, the workspace release profile).
//!
//! ```text
//! cargo lambda watch --example echo   # or AWS_LAMBDA_RUNTIME_API=... ./echo
//! ```

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(lambda_runtime::run(service_fn(echo)))
}
