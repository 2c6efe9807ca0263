//! Placeholder while the trainer is written.
fn main() {}
