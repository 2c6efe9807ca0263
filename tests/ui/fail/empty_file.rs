#[apr_lambda::apr_lambda(model = "models/bad_empty.apr")]
fn main() {}
