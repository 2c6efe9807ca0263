// Another v1 family, with the features check applied to the converted model.
#[apr_lambda::apr_lambda(model = "models/logistic_regression.v1.apr", features = 2)]
fn main() {}
