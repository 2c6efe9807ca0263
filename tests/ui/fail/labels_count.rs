// A k-means model of 3 clusters takes 3 labels.
#[apr_lambda::apr_lambda(model = "models/kmeans.v2.apr", labels = ["small", "large"])]
fn main() {}
