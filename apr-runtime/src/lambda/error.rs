//! [`LambdaError`]: everything that can fail while building the handler or
//! answering one invocation, each with a stable `errorType`.

use crate::format::FormatError;
use crate::model::{ModelError, PredictError};

/// Why the handler could not be built, or why one invocation was answered
/// with an error.
///
/// Every variant becomes a Lambda error response
/// `{"errorType": <variant name>, "errorMessage": <Display>}`: the
/// `errorType` ([`LambdaError::error_type`]) is the variant's name and never
/// changes, so callers can branch on it; the message is a sentence for people.
/// Variants are only ever added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LambdaError {
    /// The embedded model has no bytes at all.
    #[error(
        "the model is empty (0 bytes); expected an .apr v2 container starting with \"APR\\0\""
    )]
    EmptyModel,

    /// The model's first four bytes are not the `.apr` v2 magic.
    #[error(
        "the model does not start with the .apr v2 magic: expected {}, found {}{}",
        describe_magic(expected),
        describe_magic(actual),
        v1_hint(actual)
    )]
    InvalidMagic {
        /// The magic a v2 container starts with: `*b"APR\0"`.
        expected: [u8; 4],
        /// The first four bytes of the model.
        actual: [u8; 4],
    },

    /// The model bytes are not a valid `.apr` v2 container.
    /// (Message only: the container error is in the text, not repeated as
    /// a `source()`.)
    #[error("the model is not a valid .apr container: {0}")]
    Format(FormatError),

    /// The container is valid but does not describe a model this runtime can
    /// run (unknown family, missing tensor, wrong shape, ...).
    /// (Message only, as `Format`.)
    #[error("the model cannot be served: {0}")]
    Model(ModelError),

    /// The event is not JSON, or not one of the accepted shapes.
    #[error("{reason}")]
    MalformedEvent {
        /// What is wrong with it, and where (serde's line and column), as a
        /// sentence starting "the event ..." or "the request body ...".
        reason: String,
    },

    /// A row does not have the model's number of features.
    #[error("{} has {}, but the model takes {expected}", describe_row(*.instance), count_features(*.found))]
    FeatureCount {
        /// The row's index in `instances`, `None` for a single `features` event.
        instance: Option<usize>,
        /// The model's number of features.
        expected: usize,
        /// The number of values the row has.
        found: usize,
    },

    /// A row sent as an object (`{"sepal_length": 5.1, ...}`) names a
    /// feature the model does not have.
    #[error(
        "{} names the feature {name}, which the model does not take; its features are {expected}",
        describe_row(*.instance)
    )]
    UnknownFeature {
        /// The row's index in `instances`, `None` for a single `features` event.
        instance: Option<usize>,
        /// The name as sent, as a short quoted excerpt.
        name: String,
        /// The model's feature names (the first few, when there are many).
        expected: String,
    },

    /// A row sent as an object lacks one of the model's features.
    #[error("{} has no value for the feature `{name}`; every feature must be given", describe_row(*.instance))]
    MissingFeature {
        /// The row's index in `instances`, `None` for a single `features` event.
        instance: Option<usize>,
        /// The first missing feature's name, as the model names it.
        name: String,
    },

    /// A feature is NaN, infinite, or outside the `f32` range.
    #[error(
        "feature {index} of {} is not a finite number (null, NaN, an infinity, or beyond the f32 range of ±3.4e38); this model takes only finite features (tree ensembles take null or NaN as a missing value)",
        describe_row(*.instance)
    )]
    NonFinite {
        /// The row's index in `instances`, `None` for a single `features` event.
        instance: Option<usize>,
        /// The feature's index within the row.
        index: usize,
    },

    /// A batch event with an empty `instances` array.
    #[error("the batch is empty: `instances` must hold at least one row")]
    EmptyBatch,

    /// A batch event with more rows than the configured limit.
    #[error("the batch has {rows} instances, more than the limit of {max} per invocation; split it into smaller batches")]
    BatchTooLarge {
        /// The number of rows sent.
        rows: usize,
        /// The limit ([`LambdaHandler::with_max_batch`](super::LambdaHandler::with_max_batch)).
        max: usize,
    },

    /// The model answered a non-finite value (NaN or an infinity) for a
    /// finite row: the row lies far outside what the model was trained on
    /// (its weights are all finite, checked at load), e.g. features near the
    /// `f32` limit. Never answered as a plausible prediction.
    #[error(
        "output {index} for {} is not a finite number (NaN or an infinity): the features are too far outside the model's range to give a meaningful answer",
        describe_row(*.instance)
    )]
    NonFiniteOutput {
        /// The row's index in `instances`, `None` for a single `features` event.
        instance: Option<usize>,
        /// The index of the first non-finite value in the row's outputs (or
        /// probabilities).
        index: usize,
    },

    /// The answer would exceed Lambda's response payload limit
    /// ([`MAX_RESPONSE_BYTES`](crate::limits::MAX_RESPONSE_BYTES)); for HTTP
    /// events it is an HTTP 413.
    #[error(
        "the answer for {rows} row(s) would take {bytes} bytes, over Lambda's response limit of {} bytes; send at most {max_rows} rows per invocation",
        crate::limits::MAX_RESPONSE_BYTES
    )]
    ResponseTooLarge {
        /// The number of rows in the request.
        rows: usize,
        /// The size the response would have had.
        bytes: usize,
        /// The most rows whose answer would fit, estimated from this one.
        max_rows: usize,
    },

    /// The model failed on a valid row (an internal invariant broke).
    #[error("inference failed: {0}")]
    InferenceError(String),

    /// A typed handler's answer would exceed Lambda's response payload
    /// limit; for HTTP events it is an HTTP 413.
    #[error(
        "the handler's answer would take {bytes} bytes, over Lambda's response limit of {} bytes",
        crate::limits::MAX_RESPONSE_BYTES
    )]
    AnswerTooLarge {
        /// The size the answer would have had.
        bytes: usize,
    },

    /// A typed handler returned an error ([`Error`](super::Error), or any
    /// error type of its own): answered with the error's own `errorType`.
    #[error("{message}")]
    Handler {
        /// The `errorType`: the handler error's type name, or the name it
        /// gave ([`Error::new`](super::Error::new)).
        error_type: String,
        /// The error's message (at most 4 KiB).
        message: String,
        /// The HTTP status for Function URL and API Gateway events.
        status: u16,
    },
}

impl LambdaError {
    /// The stable `errorType` of the Lambda error response: the variant's
    /// name, e.g. `"FeatureCount"`.
    pub fn error_type(&self) -> &str {
        match self {
            LambdaError::EmptyModel => "EmptyModel",
            LambdaError::InvalidMagic { .. } => "InvalidMagic",
            LambdaError::Format(_) => "Format",
            LambdaError::Model(_) => "Model",
            LambdaError::MalformedEvent { .. } => "MalformedEvent",
            LambdaError::FeatureCount { .. } => "FeatureCount",
            LambdaError::UnknownFeature { .. } => "UnknownFeature",
            LambdaError::MissingFeature { .. } => "MissingFeature",
            LambdaError::NonFinite { .. } => "NonFinite",
            LambdaError::EmptyBatch => "EmptyBatch",
            LambdaError::BatchTooLarge { .. } => "BatchTooLarge",
            LambdaError::NonFiniteOutput { .. } => "NonFiniteOutput",
            LambdaError::ResponseTooLarge { .. } => "ResponseTooLarge",
            LambdaError::InferenceError(_) => "InferenceError",
            LambdaError::AnswerTooLarge { .. } => "AnswerTooLarge",
            LambdaError::Handler { error_type, .. } => error_type,
        }
    }

    /// Whether the caller's event is at fault (HTTP 4xx) rather than the
    /// function (HTTP 500).
    pub fn is_client_error(&self) -> bool {
        if let LambdaError::Handler { status, .. } = self {
            return *status < 500;
        }
        matches!(
            self,
            LambdaError::MalformedEvent { .. }
                | LambdaError::FeatureCount { .. }
                | LambdaError::UnknownFeature { .. }
                | LambdaError::MissingFeature { .. }
                | LambdaError::NonFinite { .. }
                | LambdaError::EmptyBatch
                | LambdaError::BatchTooLarge { .. }
                | LambdaError::NonFiniteOutput { .. }
                | LambdaError::ResponseTooLarge { .. }
                | LambdaError::AnswerTooLarge { .. }
        )
    }

    /// The HTTP status this error is answered with for Function URL and API
    /// Gateway events: 413 for [`LambdaError::ResponseTooLarge`], 400 for
    /// the other faults of the request, 500 for the function's.
    pub fn http_status(&self) -> u16 {
        match self {
            LambdaError::ResponseTooLarge { .. } | LambdaError::AnswerTooLarge { .. } => 413,
            LambdaError::Handler { status, .. } => *status,
            e if e.is_client_error() => 400,
            _ => 500,
        }
    }

    /// A [`LambdaError::MalformedEvent`] with `reason`, cut to
    /// [`MAX_REASON_BYTES`] (reasons quote the input only through
    /// [`excerpt`], so this is a last guard).
    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        if reason.len() > MAX_REASON_BYTES {
            // Room for the `…` (3 bytes) within the bound.
            let mut cut = MAX_REASON_BYTES - '…'.len_utf8();
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            reason.push('…');
        }
        LambdaError::MalformedEvent { reason }
    }

    /// The error as the JSON body of a Lambda error response:
    /// `{"errorType": ..., "errorMessage": ...}`.
    pub fn to_error_body(&self) -> ErrorBody {
        ErrorBody {
            error_type: self.error_type().to_owned(),
            error_message: self.to_string(),
        }
    }

    /// The event error a model's prediction error stands for. The shape is
    /// checked before predicting, so only non-finite features remain for
    /// the model to report (it checks them in the pass that finds them).
    pub(crate) fn from_predict(err: PredictError) -> Self {
        match err {
            PredictError::NonFinite { index } => LambdaError::NonFinite {
                instance: None,
                index,
            },
            PredictError::NonFiniteInBatch { row, index } => LambdaError::NonFinite {
                instance: Some(row),
                index,
            },
            other => LambdaError::InferenceError(other.to_string()),
        }
    }
}

impl From<FormatError> for LambdaError {
    fn from(err: FormatError) -> Self {
        LambdaError::Format(err)
    }
}

impl From<ModelError> for LambdaError {
    fn from(err: ModelError) -> Self {
        match err {
            ModelError::Format(format) => LambdaError::Format(format),
            other => LambdaError::Model(other),
        }
    }
}

impl From<LambdaError> for lambda_runtime::Diagnostic {
    fn from(err: LambdaError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.error_type().to_owned(),
            error_message: err.to_string(),
        }
    }
}

/// The body of a Lambda error response, as the Runtime API and local mode
/// print it: `{"errorType": "FeatureCount", "errorMessage": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// The stable error name ([`LambdaError::error_type`]).
    #[serde(rename = "errorType")]
    pub error_type: String,
    /// The readable message.
    #[serde(rename = "errorMessage")]
    pub error_message: String,
}

/// The longest [`LambdaError::MalformedEvent`] reason, in bytes.
pub(crate) const MAX_REASON_BYTES: usize = 512;

/// The most bytes of input an [`excerpt`] shows, escapes included.
const EXCERPT_BYTES: usize = 128;

/// A short, quoted, escaped excerpt of untrusted text for an error message:
/// at most 128 bytes of it, control characters, quotes and backslashes
/// escaped (`\n`, `\u{1}`, ...), then `…` and the text's full length when
/// it was cut. However large the input, the excerpt stays under 160 bytes.
///
/// ```text
/// excerpt("abc")             == "\"abc\""
/// excerpt(&"x".repeat(1000)) == "\"xxx…xxx…\" (1000 bytes)"
/// ```
pub(crate) fn excerpt(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(EXCERPT_BYTES + 32);
    out.push('"');
    let mut cut = false;
    for c in text.chars() {
        let before = out.len();
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
        if out.len() > EXCERPT_BYTES + 1 {
            out.truncate(before);
            cut = true;
            break;
        }
    }
    if cut {
        let _ = write!(out, "…\" ({} bytes)", text.len());
    } else {
        out.push('"');
    }
    out
}

/// The model's feature names for an error message: all of them, quoted,
/// or the first eight and how many more.
pub(crate) fn describe_names(names: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        use std::fmt::Write as _;
        let _ = write!(text, " and {} more", names.len() - SHOWN);
    }
    text
}

fn describe_row(instance: Option<usize>) -> String {
    match instance {
        Some(i) => format!("instance {i}"),
        None => "the `features` row".to_owned(),
    }
}

fn count_features(n: usize) -> String {
    if n == 1 {
        "1 feature".to_owned()
    } else {
        format!("{n} features")
    }
}

fn describe_magic(bytes: &[u8; 4]) -> String {
    let text: String = bytes
        .iter()
        .map(|&b| match b {
            0 => "\\0".to_owned(),
            0x20..=0x7e => char::from(b).to_string(),
            other => format!("\\x{other:02x}"),
        })
        .collect();
    format!(
        "\"{text}\" ({:02x} {:02x} {:02x} {:02x})",
        bytes[0], bytes[1], bytes[2], bytes[3]
    )
}

fn v1_hint(actual: &[u8; 4]) -> &'static str {
    if actual == b"APRN" {
        " (an .apr v1 file: convert it with `apr-lambda convert`, or embed it with #[apr_lambda], which converts at compile time)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Format` and `Model` carry their cause in the message only.
    #[test]
    fn wrapped_errors_print_their_cause_once() {
        use std::error::Error as _;
        let model = LambdaError::from(ModelError::NonFiniteWeight {
            tensor: "w".to_owned(),
            index: 3,
        });
        let format = LambdaError::from(ModelError::Format(FormatError::MetadataNotObject {
            offset: 64,
            found: "an array",
        }));
        for err in [model, format] {
            assert!(err.source().is_none(), "{err}: printed twice");
        }
    }

    #[test]
    fn error_type_is_the_variant_name() {
        let cases: [(LambdaError, &str); 6] = [
            (LambdaError::EmptyModel, "EmptyModel"),
            (LambdaError::EmptyBatch, "EmptyBatch"),
            (
                LambdaError::FeatureCount {
                    instance: None,
                    expected: 4,
                    found: 3,
                },
                "FeatureCount",
            ),
            (
                LambdaError::NonFinite {
                    instance: Some(2),
                    index: 1,
                },
                "NonFinite",
            ),
            (
                LambdaError::BatchTooLarge { rows: 11, max: 10 },
                "BatchTooLarge",
            ),
            (LambdaError::InferenceError("x".into()), "InferenceError"),
        ];
        for (err, name) in cases {
            assert_eq!(err.error_type(), name);
            let diagnostic = lambda_runtime::Diagnostic::from(err);
            assert_eq!(diagnostic.error_type, name);
        }
    }

    #[test]
    fn messages_name_the_problem() {
        let e = LambdaError::FeatureCount {
            instance: Some(3),
            expected: 4,
            found: 2,
        };
        assert_eq!(
            e.to_string(),
            "instance 3 has 2 features, but the model takes 4"
        );
        let e = LambdaError::NonFinite {
            instance: None,
            index: 1,
        };
        assert!(e.to_string().starts_with("feature 1 of the `features` row"));
        let e = LambdaError::InvalidMagic {
            expected: *b"APR\0",
            actual: *b"APRN",
        };
        let msg = e.to_string();
        assert!(msg.contains("\"APR\\0\" (41 50 52 00)"), "{msg}");
        assert!(msg.contains("\"APRN\""), "{msg}");
        assert!(msg.contains("v1"), "{msg}");
    }

    #[test]
    fn error_body_uses_lambda_field_names() {
        let body = LambdaError::EmptyBatch.to_error_body();
        let json = serde_json::to_value(&body).unwrap_or_default();
        assert_eq!(json["errorType"], "EmptyBatch");
        assert!(json["errorMessage"].as_str().is_some());
    }
}
