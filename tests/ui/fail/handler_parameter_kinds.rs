// The request is taken by value; the model and the context by shared reference.
#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr")]
fn predict(
    row: &str,
    model: apr_lambda::Model,
    context: &mut apr_lambda::Context,
) -> Result<f32, apr_lambda::Error> {
    let _ = (row, model, context);
    Ok(0.0)
}
