//! Shared by the end-to-end tests: the Lambda Runtime API emulator, and the
//! function under test as a child process.
pub mod function;
pub mod runtime_api;
