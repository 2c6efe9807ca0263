// A handler takes the request and the model (and optionally the context).
#[derive(serde::Deserialize)]
struct Row {
    x: f32,
}

#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr")]
fn predict(row: Row) -> Result<f32, apr_lambda::Error> {
    Ok(row.x)
}
