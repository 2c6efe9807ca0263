//! The `apr-lambda` command-line tool. TODO: being written.
fn main() {}
