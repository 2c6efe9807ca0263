// A v1 (APRN) file: converted to v2 while compiling, the converted bytes embedded.
#[apr_lambda::apr_lambda(model = "models/linear_regression.v1.apr")]
fn main() {}
