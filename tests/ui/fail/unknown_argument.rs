#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr", memory = 128)]
fn main() {}
