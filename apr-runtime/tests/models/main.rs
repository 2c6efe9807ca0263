//! Every model family, end to end: aprender's fixtures reproduce aprender's
//! outputs, and models built with `AprWriter` match a straightforward
//! reference computation (in `f64`) on every kernel table this CPU runs.
//!
//! One module per part: the shared helpers ([`support`]), the reference
//! computations ([`reference`]), aprender's v2 and v1 fixtures, the models
//! built with `AprWriter`, and the errors.

#[path = "../common/mod.rs"]
mod common;

mod built;
mod errors;
#[cfg(feature = "v1")]
mod fixtures_v1;
mod fixtures_v2;
mod reference;
mod support;
