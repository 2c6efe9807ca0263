// The default protocol with labels and feature names from the attribute.
#[apr_lambda::apr_lambda(
    model = "models/kmeans.v2.apr",
    labels = ["west", "centre", "east"],
    feature_names = ["x", "y"],
    max_batch = 100
)]
fn main() {}
