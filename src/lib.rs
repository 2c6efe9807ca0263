//! apr-lambda: turn a trained `.apr` model into a fast AWS Lambda function.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use apr_runtime as runtime;
