// A handler's answer type must implement `serde::Serialize`: it is the
// response. The error points at the return type.
struct Price {
    value: f32,
}

#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr", features = 3)]
async fn price(row: Vec<f32>, model: &apr_lambda::Model) -> Result<Price, apr_lambda::Error> {
    let value = model.predict_one(&row)?.outputs()[0];
    Ok(Price { value })
}
