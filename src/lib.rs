//! apr-lambda: turn a trained `.apr` model into a fast AWS Lambda function.
//!
//! ```no_run
//! #[apr_lambda::apr_lambda(model = "models/linear_regression.apr", features = 3)]
//! fn main() {
//!     // One-time init (logging, ...): runs once, before the first event.
//! }
//! ```
//!
//! The attribute ([`apr_lambda`]) validates the model while the crate
//! compiles, embeds it 64-byte aligned and expands to a `main` that serves
//! it: on AWS Lambda, or, when `AWS_LAMBDA_RUNTIME_API` is not set, in local
//! mode (`cargo run -- '{"features":[1.0,2.0,3.0]}'`).
//!
//! Or put it on your own handler, with your own request and answer types
//! (the macro then generates `main`, and serves the function in every mode):
//!
//! ```no_run
//! # use serde::{Deserialize, Serialize};
//! #[derive(Deserialize)]
//! struct House { rooms: f32, age: f32, distance: f32 }
//!
//! #[derive(Serialize)]
//! struct Price { price: f32 }
//!
//! #[apr_lambda::apr_lambda(model = "models/linear_regression.apr", features = 3)]
//! fn price(house: House, model: &apr_lambda::Model) -> Result<Price, apr_lambda::Error> {
//!     let out = model.predict_one(&[house.rooms, house.age, house.distance])?;
//!     Ok(Price { price: out.outputs()[0] })
//! }
//! ```
//!
//! The runtime is re-exported for code that goes further than the
//! attribute: [`Model`] to predict in-process, [`LambdaHandler`] and
//! [`serve`] to build and serve a handler by hand, [`AprFile`] to read a
//! container, and the whole runtime crate as [`runtime`].
//!
//! ```
//! use apr_lambda::runtime::model::Model;
//! use apr_lambda::AprFile;
//!
//! let bytes = std::fs::read("models/linear_regression.apr")?;
//! let model = Model::from_file(&AprFile::parse(&bytes)?)?;
//! let mut scratch = model.scratch();
//! let output = model.predict(&[1.0, 2.0, 3.0], &mut scratch)?;
//! assert_eq!(output.outputs.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use apr_macros::apr_lambda;
pub use apr_runtime as runtime;

pub use apr_runtime::format::{AprFile, FormatError};
/// What the function runs on: `is_arm64_optimized()` on Graviton with the
/// NEON kernels, `has_neon_simd()` whenever the NEON table is active,
/// `kernel_name()` the active table's name (`"scalar"`, `"avx2+fma"`,
/// `"neon"`).
pub use apr_runtime::kernels::{has_neon_simd, is_arm64_optimized, kernel_name, Isa};
pub use apr_runtime::lambda::{
    serve, ColdStartMetrics, Context, Error, InvocationResponse, LambdaError, LambdaHandler,
    LambdaRequest, LambdaResponse, Predictions, RowPrediction,
};
pub use apr_runtime::limits;
pub use apr_runtime::model::{
    ModelError, ModelFamily, Output, OwnedOutput, PredictError, Prediction,
};

/// A model that lives as long as the process, as `#[apr_lambda]` embeds it
/// and hands it to a handler (`model: &apr_lambda::Model`). To load a model
/// from bytes that do not live that long, use the runtime's
/// [`Model<'a>`](apr_runtime::model::Model) (`apr_lambda::runtime::model::Model`).
pub type Model = apr_runtime::model::Model<'static>;

/// The private contract between the [`apr_lambda`] attribute's expansion
/// and this crate, described here (the attribute's documentation only
/// sketches the expansion for users): everything the generated code calls,
/// and nothing more. Not a public API: it changes with the macro, in any
/// release.
///
/// The expansion reaches it by absolute path, `::apr_lambda::__private`
/// (`<path>::__private` with `crate = "<path>"`), so the user's crate needs
/// no imports and none of its names can clash. A generated `main`:
///
/// 1. calls [`process_start`](__private::process_start) first thing: the
///    cold-start clock starts there;
/// 2. on `fn main`, runs the user's body once, as a nested function (driven
///    by [`block_on`](__private::block_on) when it is `async`), and hands
///    what it returns to [`init_outcome`](__private::init_outcome): `()` or
///    `Ok(())` goes on, `Err(e)` (any `E: Debug`) is reported and its exit
///    status returned without serving; then it returns
///    [`run`](__private::run) of the embedded bytes and the
///    [`Config`](__private::Config) the attribute's arguments build;
/// 3. beside a handler, returns [`run_handler`](__private::run_handler) of
///    the bytes, the `Config` and a closure that calls the handler. Its
///    answer and error type arguments are written as the handler's return
///    type names them (`_` where it does not), so that an unsatisfied bound
///    is reported there.
///
/// ```text
/// fn main() -> ::std::process::ExitCode {                    // on `fn main`
///     <a 64-byte aligned static holding the model bytes>
///     fn __apr_lambda_main() -> RET { BODY }                   // `async fn` when main is async
///     ::apr_lambda::__private::process_start();
///     if let Err(code) = ::apr_lambda::__private::init_outcome(
///         __apr_lambda_main(),                                 // `__private::block_on(..)` when async
///     ) {
///         return code;
///     }
///     ::apr_lambda::__private::run(BYTES, CONFIG)
/// }
///
/// fn main() -> ::std::process::ExitCode {                    // beside a handler `NAME`
///     <a 64-byte aligned static holding the model bytes>
///     ::apr_lambda::__private::process_start();
///     ::apr_lambda::__private::run_handler::<_, R, E, _, _>(BYTES, CONFIG,
///         |model, request, context| async move { NAME(request, model, &context).await })
/// }
/// ```
///
/// The handler's call has no `.await` when it is sync, and no `&context`
/// when it takes no context. `CONFIG` is `__private::Config::new()`
/// followed by `.max_batch(N)`, `.labels(&[..])` and `.feature_names(&[..])`
/// for the arguments given. `BYTES` is `&__APR_MODEL.0`, or `&[]` when the
/// model failed validation (the expansion then carries the compile error).
///
/// The serving entry points are the runtime's
/// (`apr_runtime::lambda::__private`), re-exported here by name; the calls
/// are written by `apr-macros/src/expand.rs`, which must stay in step.
#[doc(hidden)]
pub mod __private {
    use apr_runtime::lambda::__private::body_failed;
    pub use apr_runtime::lambda::__private::{block_on, process_start, run, run_handler, Config};

    use std::process::ExitCode;

    /// What a `#[apr_lambda]` `main` body may return: `()` or `Result<(), E>`
    /// with `E: Debug`.
    pub trait InitOutcome {
        /// `Ok` to go on serving; `Err(exit status)` once a failed init is reported.
        fn into_exit(self) -> Result<(), ExitCode>;
    }

    impl InitOutcome for () {
        fn into_exit(self) -> Result<(), ExitCode> {
            Ok(())
        }
    }

    impl<E: std::fmt::Debug> InitOutcome for Result<(), E> {
        fn into_exit(self) -> Result<(), ExitCode> {
            // Printed (and posted to the Runtime API's init error in Lambda
            // mode) by the runtime; the process then exits without serving.
            self.map_err(body_failed)
        }
    }

    /// The user's `main` body has run and returned `outcome`: `Ok` to go on
    /// serving, `Err` with the exit status to return when it failed.
    pub fn init_outcome<T: InitOutcome>(outcome: T) -> Result<(), ExitCode> {
        outcome.into_exit()
    }
}

#[cfg(test)]
mod tests {
    use super::__private::init_outcome;

    #[test]
    fn a_unit_body_goes_on_serving() {
        assert!(init_outcome(()).is_ok());
    }

    #[test]
    fn an_ok_body_goes_on_serving() {
        assert!(init_outcome(Ok::<(), String>(())).is_ok());
    }

    #[test]
    fn an_err_body_stops_with_a_failure_status() {
        let outcome = init_outcome(Err::<(), _>("no config"));
        assert_eq!(outcome, Err(std::process::ExitCode::FAILURE));
    }
}
