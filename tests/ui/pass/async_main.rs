// An async `main`: the body is driven to completion before serving.
#[apr_lambda::apr_lambda(model = "models/kmeans.v2.apr")]
async fn main() {
    let ready = async { 42 };
    assert_eq!(ready.await, 42);
}
