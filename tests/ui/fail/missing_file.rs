#[apr_lambda::apr_lambda(model = "models/does_not_exist.apr")]
fn main() {}
