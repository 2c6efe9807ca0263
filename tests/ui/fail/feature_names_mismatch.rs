// One distinct name per feature: this model takes 3.
#[apr_lambda::apr_lambda(
    model = "models/linear_regression.v2.apr",
    feature_names = ["rooms", "age"]
)]
fn main() {}
