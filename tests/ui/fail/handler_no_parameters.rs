// A handler takes the request and the model, and returns a `Result`.
#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr")]
fn handler() {}
