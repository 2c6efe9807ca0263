// The macro must know the request and answer types.
#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr")]
fn predict<T: serde::de::DeserializeOwned>(
    row: T,
    model: &apr_lambda::Model,
) -> Result<f32, apr_lambda::Error> {
    let _ = (row, model);
    Ok(0.0)
}
