//! Shared by the end-to-end tests: the Lambda Runtime API emulator.
pub mod runtime_api;
