// A sync handler returning its own error type (its name becomes the errorType).
#[derive(Debug)]
struct TooFar(f32);

impl std::fmt::Display for TooFar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is too far", self.0)
    }
}

#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr", features = 3)]
fn price(row: [f32; 3], model: &apr_lambda::Model) -> Result<serde_json::Value, TooFar> {
    if row[2] > 100.0 {
        return Err(TooFar(row[2]));
    }
    let out = model.predict_one(&row).map_err(|_| TooFar(f32::NAN))?;
    Ok(serde_json::json!({ "price": out.outputs()[0] }))
}
