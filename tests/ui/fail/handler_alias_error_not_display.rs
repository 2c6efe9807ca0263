// With a `Result` alias that fixes the error type, an error type that is not
// `Display` is reported at the return type too.
#[derive(Debug)]
struct Refused;

type Result<T> = std::result::Result<T, Refused>;

#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr")]
fn predict(row: Vec<f32>, model: &apr_lambda::Model) -> Result<f32> {
    let _ = (row, model);
    Err(Refused)
}
