//! The `#[apr_lambda]` attribute. TODO: being written.
