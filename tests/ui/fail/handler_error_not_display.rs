// A handler's error type must implement `Display`: its message is the error
// response's `errorMessage`. The error points at the return type.
struct Refused;

#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr")]
fn predict(row: Vec<f32>, model: &apr_lambda::Model) -> Result<f32, Refused> {
    let _ = (row, model);
    Err(Refused)
}
