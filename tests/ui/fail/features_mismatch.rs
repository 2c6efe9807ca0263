// linear_regression.v2.apr takes 3 features.
#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr", features = 4)]
fn main() {}
