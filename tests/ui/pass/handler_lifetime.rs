// A lifetime parameter on a handler is fine: the model lives as long as the process.
#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr", features = 3)]
fn predict<'m>(
    row: Vec<f32>,
    model: &'m apr_lambda::Model,
) -> Result<Vec<f32>, apr_lambda::Error> {
    Ok(model.predict_one(&row)?.outputs().to_vec())
}
