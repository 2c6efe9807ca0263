// A `main` returning `Result<(), E>`: `?` works in the body, and `Ok(())`
// goes on serving.
use std::num::ParseIntError;

#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr")]
fn main() -> Result<(), ParseIntError> {
    let workers: u32 = "4".parse()?;
    assert_eq!(workers, 4);
    Ok(())
}
