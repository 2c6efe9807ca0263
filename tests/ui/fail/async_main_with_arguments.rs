// An `async fn main` with the wrong signature: the macro's error is the only
// one (the body is kept and type-checked, but rustc does not also reject an
// async, argument-taking `main`).
#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr")]
async fn main(args: Vec<String>) {
    let ready = async { args.len() };
    assert_eq!(ready.await, 0);
}
