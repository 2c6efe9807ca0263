// `max_batch` limits the default protocol's batches; a handler has none.
#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr", max_batch = 100)]
fn predict(row: Vec<f32>, model: &apr_lambda::Model) -> Result<f32, apr_lambda::Error> {
    Ok(model.predict_one(&row)?.outputs()[0])
}
