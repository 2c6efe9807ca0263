#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr", features = "3", max_batch = 0)]
fn main() {}
