//! Fuzzes the Lambda event path: any raw `/next` body (or local-mode line)
//! through `LambdaHandler::respond`, the one request path of every entry
//! point, with feature names (rows as objects) and labels. Nothing may
//! panic, and every error is bounded: a hostile event costs no more than it
//! sends.
#![no_main]

use std::sync::OnceLock;

use apr_runtime::lambda::{InvocationResponse, LambdaHandler};
use apr_runtime::limits::MAX_RESPONSE_BYTES;
use libfuzzer_sys::fuzz_target;

/// The 4-feature, 3-class network of the test fixtures.
static MODEL: &[u8] = include_bytes!("../../apr-runtime/tests/fixtures/mlp_multiclass.v2.apr");

/// The largest error message or HTTP error body any input may produce.
const MAX_ERROR_BYTES: usize = 2_048;

fn handler() -> &'static LambdaHandler {
    static HANDLER: OnceLock<LambdaHandler> = OnceLock::new();
    // Feature names and labels, so that rows sent as objects (and the
    // UnknownFeature / MissingFeature paths) are fuzzed too.
    HANDLER.get_or_init(|| {
        match LambdaHandler::from_bytes(MODEL)
            .and_then(|h| h.with_feature_names(["a", "b", "sepal", "petal_width"]))
            .and_then(|h| h.with_labels(["setosa", "versicolor", "virginica"]))
        {
            Ok(handler) => handler.with_max_batch(64),
            Err(e) => panic!("the fixture must load: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    match handler().respond(data) {
        Err(err) => {
            let message = err.to_string();
            assert!(
                message.len() <= MAX_ERROR_BYTES,
                "{} error of {} bytes for {} input bytes",
                err.error_type(),
                message.len(),
                data.len()
            );
        }
        Ok(InvocationResponse::Http(http)) if http.status_code >= 400 => {
            assert!(http.body.len() <= MAX_ERROR_BYTES, "{}", http.body.len());
        }
        Ok(response) => {
            let json = serde_json::to_vec(&response).unwrap_or_default();
            assert!(json.len() <= MAX_RESPONSE_BYTES, "{}", json.len());
            // NaN would serialize as null: answers are finite or errors.
            assert!(!json.windows(4).any(|w| w == b"null"));
        }
    }
});
