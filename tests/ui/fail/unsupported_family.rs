// A valid container holding a PCA, which the runtime does not serve.
#[apr_lambda::apr_lambda(model = "models/unsupported_family.apr")]
fn main() {}
