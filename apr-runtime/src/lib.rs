//! The runtime behind `apr-lambda`: the `.apr` model container, the models,
//! the SIMD kernels and the AWS Lambda handler.
//!
//! Data flows one way:
//!
//! ```text
//! .apr bytes ──(format, zero-copy)──▶ AprFile ──(model)──▶ Model ──(kernels)──▶ Output
//! event JSON ──(lambda: decode, validate)──▶ features ──▶ Model::predict ──▶ response JSON
//! ```
//!
//! Where each step lives, from the attribute to the response (one job per
//! file):
//!
//! | step | files |
//! |---|---|
//! | `#[apr_lambda(model = "…")]` (crate `apr-macros`) | `args.rs` the attribute, `model_file.rs` reads and checks the file (converting `.onnx` with [`onnx`]), `signature.rs` the handler's shape, `expand.rs` the generated `main` |
//! | the file's bytes ([`format`](mod@format)) | `header.rs` the header, `index.rs` the tensor index, `reader.rs` the container ([`format::AprFile`]), `dtype.rs` the dtype table, `codec.rs` decoding values, `metadata.rs`, `schema.rs` the families' names, `v1/` old files converted |
//! | the model ([`model`]) | `mod.rs` loading and predicting, one file per family (`linear.rs`, `sequential.rs`, `tree.rs`, `ensemble.rs`, `kmeans.rs`), `preprocess.rs`, `weights.rs` parameters in place or aligned, `parallel.rs` and `pool.rs` batches over threads |
//! | the arithmetic ([`kernels`]) | `mod.rs` the table and dispatch, `scalar.rs` the reference, `simd/` every SIMD algorithm once, `x86_64/avx2.rs` and `aarch64/neon.rs` the instruction sets |
//! | the invocation ([`lambda`]) | `request.rs` event → request, `handler.rs` request → prediction, `response.rs` the response and its size limit, `service.rs` what the loops answer, `runtime.rs` on Lambda, `local.rs` locally, `metrics.rs` cold start and logs |
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
