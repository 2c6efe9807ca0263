//! What the serving loops (Lambda mode and local mode) answer with: the
//! default handler ([`LambdaHandler`], the `features`/`instances` protocol)
//! or a typed handler (a user's function from a request type `T` to an
//! answer `R`), behind one trait.

use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Instant;

use lambda_runtime::Context;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::LambdaError;
use super::handler::LambdaHandler;
use super::handler_error::handler_error;
use super::metrics::Outcome;
use super::request::{http_body, parse_http_envelope};
use super::response::{HttpResponse, InvocationResponse, JsonText};
use crate::model::Model;

/// The answer to one event, and what the invocation did (for its log line).
pub(crate) type Answered = (Result<InvocationResponse, LambdaError>, Outcome);

/// The future of one answer.
pub(crate) type AnswerFuture<'a> = Pin<Box<dyn Future<Output = Answered> + Send + 'a>>;

/// A function that answers raw events.
pub(crate) trait Serve: Send + Sync + 'static {
    /// The model, its limits and the cold-start record.
    fn handler(&self) -> &LambdaHandler;

    /// Answers one raw event (or one that could not be read, with the
    /// reason) of the invocation `context`.
    fn answer<'a>(&'a self, event: Result<&'a [u8], String>, context: Context) -> AnswerFuture<'a>;

    /// Whether events are decoded as a handler's own request type (for the
    /// local-mode help).
    fn is_typed(&self) -> bool {
        false
    }
}

impl Serve for LambdaHandler {
    fn handler(&self) -> &LambdaHandler {
        self
    }

    fn answer<'a>(&'a self, event: Result<&'a [u8], String>, _: Context) -> AnswerFuture<'a> {
        let answered = match event {
            Ok(raw) => self.respond_with_outcome(raw),
            Err(reason) => self.respond_unreadable(reason),
        };
        Box::pin(std::future::ready(answered))
    }
}

/// A user's handler function, served with the model: each event (or HTTP
/// body) is decoded as `T`, the function is called with the model and the
/// invocation's context, and its `Ok(R)` is the answer (its `Err(E)` an
/// error response, [`handler_error`]).
pub(crate) struct TypedHandler<T, R, E, F> {
    handler: &'static LambdaHandler,
    function: F,
    marker: PhantomData<fn(T) -> Result<R, E>>,
}

impl<T, R, E, F, Fut> TypedHandler<T, R, E, F>
where
    F: Fn(&'static Model<'static>, T, Context) -> Fut,
    Fut: Future<Output = Result<R, E>>,
{
    /// `function`, serving the model of `handler` (which lives as long as
    /// the process: the macro's generated `main` leaks it once).
    pub(crate) fn new(handler: &'static LambdaHandler, function: F) -> Self {
        TypedHandler {
            handler,
            function,
            marker: PhantomData,
        }
    }
}

/// A decoded typed event.
enum TypedEvent<T> {
    /// The event is the request.
    Direct(T),
    /// A Function URL / API Gateway event: its body decoded as the request,
    /// or why it cannot be (an HTTP 400).
    Http(Result<T, LambdaError>),
}

/// Decodes `raw` as `T`, or, when it is an HTTP event (a top-level
/// `requestContext`), its body as `T`.
fn decode_typed<T: DeserializeOwned>(raw: &[u8]) -> Result<TypedEvent<T>, LambdaError> {
    // Only an object with a top-level `requestContext` is an HTTP event;
    // anything else (an array or a string mentioning it, ...) is a request.
    if contains(raw, b"\"requestContext\"") {
        if let Ok(envelope) = parse_http_envelope(raw) {
            if envelope.request_context {
                return Ok(TypedEvent::Http(
                    http_body(envelope, "send the request as the JSON body of a POST")
                        .and_then(|body| decode_as(&body, "the request body")),
                ));
            }
        }
    }
    decode_as(raw, "the event").map(TypedEvent::Direct)
}

/// `bytes` as `T`, or a [`LambdaError::MalformedEvent`] quoting serde's
/// error (bounded).
fn decode_as<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, LambdaError> {
    serde_json::from_slice(bytes).map_err(|e| {
        LambdaError::malformed(format!(
            "{what} does not decode as the handler's request type: {e}"
        ))
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl<T, R, E, F, Fut> Serve for TypedHandler<T, R, E, F>
where
    T: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    E: Display + Send + 'static,
    F: Fn(&'static Model<'static>, T, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
{
    fn handler(&self) -> &LambdaHandler {
        self.handler
    }

    fn answer<'a>(&'a self, event: Result<&'a [u8], String>, context: Context) -> AnswerFuture<'a> {
        Box::pin(async move {
            let started = Instant::now();
            let cold = self.handler.cold();
            let cold_start = cold.begin();
            let decoded = event
                .map_err(LambdaError::malformed)
                .and_then(|raw| decode_typed::<T>(raw));
            let (kind, rows, result) = match decoded {
                Err(err) => ("unknown", 0, Err(err)),
                Ok(TypedEvent::Direct(request)) => {
                    let answer = self.call(request, context).await;
                    (
                        "typed",
                        1,
                        answer.and_then(|r| JsonText::of(&r).map(InvocationResponse::Json)),
                    )
                }
                Ok(TypedEvent::Http(request)) => {
                    let rows = usize::from(request.is_ok());
                    let answer = match request {
                        Ok(request) => self.call(request, context).await,
                        Err(err) => Err(err),
                    };
                    let http = match answer.and_then(|r| JsonText::of(&r)) {
                        Ok(body) => HttpResponse::json(200, body.get().to_owned()),
                        Err(err) => HttpResponse::from_error(&err),
                    };
                    ("http", rows, Ok(InvocationResponse::Http(http)))
                }
            };
            if cold_start {
                cold.record(started);
            }
            let outcome = Outcome {
                kind,
                rows,
                cold_start,
                latency: started.elapsed(),
            };
            (result, outcome)
        })
    }

    fn is_typed(&self) -> bool {
        true
    }
}

impl<T, R, E, F, Fut> TypedHandler<T, R, E, F>
where
    E: Display + 'static,
    F: Fn(&'static Model<'static>, T, Context) -> Fut,
    Fut: Future<Output = Result<R, E>>,
{
    /// Calls the handler. A panic in it is caught and answered as an error
    /// (`HandlerPanic`), so that the invocation is still logged, the cold
    /// start still recorded, and local mode goes on with the next event.
    async fn call(&self, request: T, context: Context) -> Result<R, LambdaError> {
        let call = CatchUnwind(Box::pin((self.function)(
            self.handler.model(),
            request,
            context,
        )));
        match call.await {
            Ok(result) => result.map_err(handler_error),
            Err(payload) => Err(LambdaError::Handler {
                error_type: "HandlerPanic".to_owned(),
                message: format!("the handler panicked: {}", panic_message(&*payload)),
                status: 500,
            }),
        }
    }
}

/// A future whose panics are returned as `Err(payload)`.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Ok(output)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(payload) => std::task::Poll::Ready(Err(payload)),
        }
    }
}

/// A panic's message, when it has one, at most 512 bytes.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    super::error::excerpt(&message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lambda::Error;

    static LINEAR: &[u8] = include_bytes!("../../tests/fixtures/linear_regression.v2.apr");

    #[derive(serde::Deserialize)]
    struct Request {
        x: [f32; 3],
        #[serde(default)]
        repeat: usize,
        #[serde(default)]
        refuse: bool,
    }

    /// A typed handler over the linear fixture: answers `{"y": ..}`, or
    /// `repeat` copies of it, or a business-rule error.
    fn typed() -> impl Serve {
        let handler: &'static LambdaHandler = Box::leak(Box::new(
            LambdaHandler::from_bytes(LINEAR).unwrap_or_else(|e| panic!("{e}")),
        ));
        TypedHandler::new(
            handler,
            |model: &'static Model<'static>, request: Request, context: Context| async move {
                if request.refuse {
                    return Err(Error::new("Refused", "by a rule").with_status(422));
                }
                assert!(request.repeat != 7, "seven is not allowed");
                let y = model.predict_one(&request.x)?.outputs()[0];
                let answer = serde_json::json!({ "y": y, "id": context.request_id });
                Ok(vec![answer; request.repeat.max(1)])
            },
        )
    }

    fn answer(serve: &dyn Serve, event: &str) -> Result<InvocationResponse, LambdaError> {
        let mut context = Context::default();
        context.request_id = "r-1".to_owned();
        super::super::runtime::block_on(serve.answer(Ok(event.as_bytes()), context))
            .unwrap_or_else(|e| panic!("{e}"))
            .0
    }

    fn http(serve: &dyn Serve, body: &str) -> HttpResponse {
        let event = serde_json::json!({ "requestContext": {}, "body": body }).to_string();
        match answer(serve, &event) {
            Ok(InvocationResponse::Http(http)) => http,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_direct_event_is_the_request_and_the_answer_is_the_handlers() {
        let serve = typed();
        match answer(&serve, r#"{"x":[1,2,3],"note":"{\"requestContext\":1}"}"#) {
            Ok(InvocationResponse::Json(json)) => {
                assert!(
                    json.get().starts_with(r#"[{"id":"r-1","y":2.00"#),
                    "{}",
                    json.get()
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requests_that_do_not_decode_are_malformed_events_naming_serde_s_error() {
        let serve = typed();
        let err = answer(&serve, r#"{"x":[1,2]}"#).err();
        assert!(
            matches!(&err, Some(LambdaError::MalformedEvent { reason })
                if reason.starts_with("the event does not decode as the handler's request type: invalid length 2")),
            "{err:?}"
        );
        let huge = format!(r#"{{"x":"{}"}}"#, "a".repeat(100_000));
        let err = answer(&serve, &huge)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.len() <= 512, "{}", err.len());
        let http = http(&serve, r#"{"x":"no"}"#);
        assert_eq!(http.status_code, 400);
        assert!(http.body.contains("MalformedEvent"), "{}", http.body);
    }

    #[test]
    fn http_events_carry_the_request_in_their_body() {
        let serve = typed();
        let ok = http(&serve, r#"{"x":[1,2,3]}"#);
        assert_eq!(ok.status_code, 200);
        assert!(ok.body.starts_with(r#"[{"id":"r-1""#), "{}", ok.body);
        let event = serde_json::json!({
            "requestContext": {}, "isBase64Encoded": true, "body": "eyJ4IjpbMSwyLDNdfQ=="
        });
        assert!(matches!(
            answer(&serve, &event.to_string()),
            Ok(InvocationResponse::Http(HttpResponse {
                status_code: 200,
                ..
            }))
        ));
    }

    #[test]
    fn handler_errors_keep_their_type_and_status() {
        let serve = typed();
        let err = answer(&serve, r#"{"x":[1,2,3],"refuse":true}"#).err();
        assert!(
            matches!(&err, Some(LambdaError::Handler { error_type, status: 422, .. }) if error_type == "Refused"),
            "{err:?}"
        );
        assert_eq!(
            http(&serve, r#"{"x":[1,2,3],"refuse":true}"#).status_code,
            422
        );
        // serde refuses an f32 field beyond the f32 range while decoding.
        let err = answer(&serve, r#"{"x":[1,1e39,3]}"#).err();
        assert!(
            matches!(&err, Some(e) if e.error_type() == "MalformedEvent" && e.to_string().contains("number out of range")),
            "{err:?}"
        );
    }

    #[test]
    fn a_panicking_handler_is_an_error_and_the_next_event_is_served() {
        let serve = typed();
        let err = answer(&serve, r#"{"x":[1,2,3],"repeat":7}"#).err();
        assert!(
            matches!(&err, Some(LambdaError::Handler { error_type, message, status: 500 })
                if error_type == "HandlerPanic" && message.contains("seven is not allowed")),
            "{err:?}"
        );
        assert!(answer(&serve, r#"{"x":[1,2,3]}"#).is_ok());
        // The cold start was recorded by the first (panicking) invocation.
        assert!(serve.handler().cold_start_metrics().is_some());
    }

    #[test]
    fn only_a_top_level_request_context_makes_an_http_event() {
        let serve = typed();
        // Not an object: a request (which then does not decode), not a 400.
        let err = answer(&serve, r#"["requestContext"]"#).err();
        assert!(
            matches!(&err, Some(LambdaError::MalformedEvent { reason })
                if reason.starts_with("the event does not decode as the handler's request type")),
            "{err:?}"
        );
        let event = r#"{"requestContext":{"http":{"method":"GET"}}}"#;
        match answer(&serve, event) {
            Ok(InvocationResponse::Http(http)) => {
                assert_eq!(http.status_code, 400);
                assert!(
                    http.body.contains("send the request as the JSON body"),
                    "{}",
                    http.body
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn answers_over_lambdas_limit_are_refused() {
        let serve = typed();
        let err = answer(&serve, r#"{"x":[1,2,3],"repeat":200000}"#).err();
        assert!(matches!(err, Some(LambdaError::AnswerTooLarge { bytes }) if bytes > 6_291_556));
        let http = http(&serve, r#"{"x":[1,2,3],"repeat":200000}"#);
        assert_eq!(http.status_code, 413);
        assert!(http.body.contains("AnswerTooLarge"), "{}", http.body);
    }
}
