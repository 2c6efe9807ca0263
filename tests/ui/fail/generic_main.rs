#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr")]
fn main<T>() {}
