// An async `main` returning a `Result` alias with an early `return`.
#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr")]
async fn main() -> std::io::Result<()> {
    if std::env::var_os("APR_LAMBDA_NEVER_SET_IN_TESTS").is_some() {
        return Err(std::io::Error::other("unreachable in the test"));
    }
    Ok(())
}
