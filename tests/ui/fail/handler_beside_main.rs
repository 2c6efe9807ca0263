// The macro generates `main` for a handler: a `main` of the user's clashes.
#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr", features = 3)]
fn predict(row: Vec<f32>, model: &apr_lambda::Model) -> Result<f32, apr_lambda::Error> {
    Ok(model.predict_one(&row)?.outputs()[0])
}

fn main() {}
