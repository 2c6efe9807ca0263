// Name lists are non-empty arrays of string literals.
#[apr_lambda::apr_lambda(model = "models/kmeans.v2.apr", labels = [], feature_names = ["a", 2])]
fn main() {}
