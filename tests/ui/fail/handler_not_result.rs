// A handler returns `Result<R, E>`.
#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr")]
fn predict(row: Vec<f32>, model: &apr_lambda::Model) -> f32 {
    let _ = model;
    row[0]
}
