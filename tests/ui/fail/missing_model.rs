#[apr_lambda::apr_lambda(features = 3)]
fn main() {}
