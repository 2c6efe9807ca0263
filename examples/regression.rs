//! Linear regression served as an AWS Lambda function, with a fallible
//! one-time init.
//!
//! ```sh
//! cargo run --example regression -- '{"features":[1.0,2.0,3.0]}'
//! # {"prediction":2.0057...,"outputs":[2.0057...],"cold_start":true,"latency_ms":...}
//! echo '{"instances":[[0,0,0],[2,-1,0.5]]}' | cargo run --example regression
//! ```
//!
//! `models/linear_regression.apr` is a three-input linear model, y = w·x + b,
//! saved by aprender. A v1 file (`aprender::format::save`) works too: the
//! macro converts it to v2 while compiling.

// `main` may return `Result<(), E>` (any `E: Debug`): `?` works in the body,
// and an `Err` stops the process before it serves (on Lambda it is reported
// as an init error, so a misconfigured function fails loudly at deploy time
// instead of on every request). `async fn main()` works too: the body is
// driven on the runtime's current-thread executor.
#[apr_lambda::apr_lambda(model = "models/linear_regression.apr", features = 3)]
fn main() -> Result<(), std::num::ParseIntError> {
    // One-time init: on Lambda, log the memory size (and so the CPU share)
    // the function was given. Locally the variable is unset.
    if let Ok(memory) = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
        let megabytes: u32 = memory.parse()?;
        eprintln!("regression: {megabytes} MB");
    }
    Ok(())
}
