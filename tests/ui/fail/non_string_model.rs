#[apr_lambda::apr_lambda(model = models::linear_regression)]
fn main() {}
