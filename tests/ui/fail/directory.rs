#[apr_lambda::apr_lambda(model = "models/a_directory")]
fn main() {}
