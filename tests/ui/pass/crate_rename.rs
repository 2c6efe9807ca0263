// A renamed facade: `crate = "..."` tells the expansion where to find it.
extern crate apr_lambda as renamed;

#[renamed::apr_lambda(model = "models/linear_regression.v2.apr", crate = "renamed")]
fn main() {}
