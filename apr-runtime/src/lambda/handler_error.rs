//! [`Error`]: what a typed handler returns when it cannot answer, and how
//! any handler error becomes a Lambda error response.

use std::any::Any;
use std::fmt;

use super::error::LambdaError;
use crate::model::PredictError;

/// The error of a typed handler (`#[apr_lambda]` on your own function):
/// any [`std::error::Error`] converts into it with `?`, and it becomes a
/// Lambda error response `{"errorType", "errorMessage"}` (for HTTP events,
/// a response with its status and that body).
///
/// - A [`PredictError`] keeps the event-error names the default protocol
///   uses: `FeatureCount` or `NonFinite`, status 400.
/// - A [`LambdaError`] keeps its `errorType` and status.
/// - Any other error's type name becomes the `errorType` (the last path
///   segment: `ParseIntError` for `std::num::ParseIntError`), its `Display`
///   the message, with status 500.
/// - [`Error::new`] names the type yourself, for a business rule, and
///   [`Error::with_status`] sets the HTTP status (400 for a request your
///   rule refuses).
///
/// ```
/// use apr_runtime::lambda::Error;
///
/// fn check(petal_length: f32) -> Result<(), Error> {
///     if petal_length > 50.0 {
///         return Err(Error::new("ImplausibleFlower", "no iris has petals over 50 cm")
///             .with_status(400));
///     }
///     let _: u8 = "7".parse()?; // any std::error::Error converts
///     Ok(())
/// }
/// let err = check(80.0).unwrap_err();
/// assert_eq!((err.error_type(), err.status()), ("ImplausibleFlower", 400));
/// ```
///
/// Like `anyhow::Error`, it does not implement [`std::error::Error`] itself
/// (that is what lets every error convert into it).
pub struct Error {
    error_type: String,
    message: String,
    status: u16,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The longest `errorMessage` a handler error is answered with, in bytes.
const MAX_MESSAGE_BYTES: usize = 4096;

/// The longest `errorType`, in bytes.
const MAX_TYPE_BYTES: usize = 128;

impl Error {
    /// An error of type `error_type` (the response's `errorType`; keep it a
    /// stable name callers can branch on: at most 128 bytes are kept, and
    /// an empty one is `HandlerError`) with `message`, status 500.
    pub fn new(error_type: impl Into<String>, message: impl fmt::Display) -> Self {
        let mut error_type: String = error_type.into();
        if error_type.is_empty() {
            error_type = "HandlerError".to_owned();
        }
        Error {
            error_type: bounded_to(error_type, MAX_TYPE_BYTES),
            message: message.to_string(),
            status: 500,
            source: None,
        }
    }

    /// The same error answered with HTTP `status` to Function URL and API
    /// Gateway events (values outside 400–599 are taken as 500).
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = if (400..600).contains(&status) {
            status
        } else {
            500
        };
        self
    }

    /// The response's `errorType`.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The response's `errorMessage`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status for Function URL and API Gateway events.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The error this one was converted from, if any.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// The Lambda error this becomes.
    pub(crate) fn into_lambda_error(self) -> LambdaError {
        LambdaError::Handler {
            error_type: self.error_type,
            message: bounded(self.message),
            status: self.status,
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(err: E) -> Self {
        let (error_type, status) = classify(&err);
        Error {
            error_type,
            message: err.to_string(),
            status,
            source: Some(Box::new(err)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

/// The `errorType` and status of an error of type `E`: the stable names for
/// the runtime's own errors, the type's name for any other.
fn classify<E: Any>(err: &E) -> (String, u16) {
    let any: &dyn Any = err;
    if let Some(err) = any.downcast_ref::<LambdaError>() {
        return (err.error_type().to_owned(), err.http_status());
    }
    if let Some(err) = any.downcast_ref::<PredictError>() {
        let err = predict_error(err);
        return (err.error_type().to_owned(), err.http_status());
    }
    (short_type_name::<E>(), 500)
}

/// The event error a [`PredictError`] from `predict_one` stands for.
fn predict_error(err: &PredictError) -> LambdaError {
    match *err {
        PredictError::FeatureCount { expected, found } => LambdaError::FeatureCount {
            instance: None,
            expected,
            found,
        },
        _ => LambdaError::from_predict(err.clone()),
    }
}

/// `Foo` for `my_crate::errors::Foo<alloc::string::String>`; `Error` for a
/// boxed `dyn Error` (whose type says nothing more).
fn short_type_name<E>() -> String {
    let full = std::any::type_name::<E>();
    if full.starts_with("alloc::boxed::Box<dyn ") {
        return "Error".to_owned();
    }
    let path = full.split('<').next().unwrap_or(full);
    let name = path.rsplit("::").next().unwrap_or(path);
    if name.is_empty() {
        "HandlerError".to_owned()
    } else {
        name.to_owned()
    }
}

/// What a handler's `Err(e)` becomes: an [`Error`] as it says, anything
/// else (any `Display` type) by [`classify`].
pub(crate) fn handler_error<E: fmt::Display + 'static>(err: E) -> LambdaError {
    let any: &dyn Any = &err;
    if any.is::<Error>() {
        let boxed: Box<dyn Any> = Box::new(err);
        if let Ok(err) = boxed.downcast::<Error>() {
            return err.into_lambda_error();
        }
        return LambdaError::InferenceError("the handler failed".to_owned());
    }
    let (error_type, status) = classify(&err);
    LambdaError::Handler {
        error_type,
        message: bounded(err.to_string()),
        status,
    }
}

/// `message`, cut to [`MAX_MESSAGE_BYTES`] with an ellipsis.
fn bounded(message: String) -> String {
    bounded_to(message, MAX_MESSAGE_BYTES)
}

/// `message`, cut to `max` bytes (at least 4) with an ellipsis.
fn bounded_to(mut message: String, max: usize) -> String {
    if message.len() > max {
        let mut cut = max.max(4) - '…'.len_utf8();
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Refused;

    impl fmt::Display for Refused {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("refused by a rule")
        }
    }

    impl std::error::Error for Refused {}

    #[test]
    fn any_error_converts_with_its_type_name() {
        let err = Error::from(Refused);
        assert_eq!(err.error_type(), "Refused");
        assert_eq!(err.message(), "refused by a rule");
        assert_eq!(err.status(), 500);
        assert!(err.source().is_some());
        let parse = "x".parse::<u8>().map_err(Error::from);
        assert!(parse.is_err_and(|e| e.error_type() == "ParseIntError"));
    }

    #[test]
    fn predict_errors_keep_the_event_error_names() {
        let err = Error::from(PredictError::FeatureCount {
            expected: 4,
            found: 3,
        });
        assert_eq!((err.error_type(), err.status()), ("FeatureCount", 400));
        assert_eq!(
            err.message(),
            "the model expects 4 features but the row has 3"
        );
        let err = Error::from(PredictError::NonFinite { index: 2 });
        assert_eq!((err.error_type(), err.status()), ("NonFinite", 400));
    }

    #[test]
    fn handler_errors_of_any_display_type_become_lambda_errors() {
        match handler_error(Refused) {
            LambdaError::Handler {
                error_type, status, ..
            } => assert_eq!((error_type.as_str(), status), ("Refused", 500)),
            other => panic!("{other:?}"),
        }
        let mine = Error::new("TooLong", "x".repeat(10_000)).with_status(422);
        match handler_error(mine) {
            LambdaError::Handler {
                error_type,
                message,
                status,
            } => {
                assert_eq!((error_type.as_str(), status), ("TooLong", 422));
                assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
            }
            other => panic!("{other:?}"),
        }
        let s = handler_error(String::from("plain"));
        assert_eq!(s.error_type(), "String");
        let boxed: Box<dyn std::error::Error + Send + Sync> = "x".into();
        assert_eq!(handler_error(boxed).error_type(), "Error");
        assert_eq!(Error::new("", "m").error_type(), "HandlerError");
        assert!(Error::new("T".repeat(1000), "m").error_type().len() <= MAX_TYPE_BYTES);
        assert_eq!(Error::new("A", "b").with_status(200).status(), 500);
    }
}
