// nan_weight.apr is a valid container whose linear model has a NaN weight.
#[apr_lambda::apr_lambda(model = "models/nan_weight.apr")]
fn main() {}
