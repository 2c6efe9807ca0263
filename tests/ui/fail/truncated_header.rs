#[apr_lambda::apr_lambda(model = "models/bad_truncated_header.apr")]
fn main() {}
