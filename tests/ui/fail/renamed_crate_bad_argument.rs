// With `crate = "..."` valid, an error in another argument is the only error:
// the fallback expansion still finds the renamed crate.
extern crate apr_lambda as renamed;

#[renamed::apr_lambda(crate = "renamed", model = "models/linear_regression.v2.apr", features = "3")]
fn main() {}
