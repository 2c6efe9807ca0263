#[apr_lambda::apr_lambda(model = "models/bad_magic.apr")]
fn main() {}
