//! The runtime behind `apr-lambda`: the `.apr` model container, the models,
//! the SIMD kernels and the AWS Lambda handler.
//!
//! Data flows one way:
//!
//! ```text
//! .apr bytes ──(format, zero-copy)──▶ AprFile ──(model)──▶ Model ──(kernels)──▶ Output
//! event JSON ──(lambda: decode, validate)──▶ features ──▶ Model::predict ──▶ response JSON
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod format;
pub mod kernels;
pub mod limits;
pub mod model;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod threads;

#[cfg(feature = "lambda")]
pub mod lambda;
