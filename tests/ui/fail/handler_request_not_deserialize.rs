// The request type must implement `serde::Deserialize`.
struct Row {
    x: f32,
}

#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr")]
fn predict(row: Row, model: &apr_lambda::Model) -> Result<f32, apr_lambda::Error> {
    let _ = model;
    Ok(row.x)
}
