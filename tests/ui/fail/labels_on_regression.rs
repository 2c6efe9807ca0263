// A regression model predicts no class: labels are a mistake.
#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr", labels = ["a", "b"])]
fn main() {}
