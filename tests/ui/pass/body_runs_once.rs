// The body runs exactly once, before serving.
use std::sync::atomic::{AtomicUsize, Ordering};

static INIT_CALLS: AtomicUsize = AtomicUsize::new(0);

#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr")]
fn main() {
    assert_eq!(INIT_CALLS.fetch_add(1, Ordering::SeqCst), 0);
}
