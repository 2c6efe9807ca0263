//! The events the function accepts and the responses it sends (serde).
//!
//! Three event shapes reach the handler:
//!
//! - one row: `{"features": [5.1, 3.5, 1.4, 0.2]}`;
//! - a batch: `{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}`;
//! - either of those as the `body` of a Lambda Function URL or API Gateway
//!   HTTP API (payload 2.0) event, possibly base64 (`isBase64Encoded`),
//!   answered with an HTTP-shaped response (`statusCode`, `headers`, `body`).
//!
//! The serve path decodes an event in a single pass straight into one flat
//! `Vec<f32>` (no allocation per row); [`LambdaRequest`] is the same two
//! bodies as a plain Rust value, for callers of
//! [`LambdaHandler::handle`](super::LambdaHandler::handle).

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::error::{ErrorBody, LambdaError};
use crate::model::Prediction;

/// A prediction request: one row, or a batch of rows.
///
/// Deserializes from `{"features": [...]}` or `{"instances": [[...], ...]}`.
/// Feature values are JSON numbers; the strings `"NaN"`, `"Infinity"` and
/// `"-Infinity"` are accepted too, so that they can be rejected as
/// [`LambdaError::NonFinite`] with the feature's position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LambdaRequest {
    /// `{"features": [f32, ...]}`: one row.
    Single {
        /// The row's feature values, in the model's feature order.
        #[serde(deserialize_with = "deserialize_row")]
        features: Vec<f32>,
    },
    /// `{"instances": [[f32, ...], ...]}`: a batch of rows.
    Batch {
        /// The rows.
        #[serde(deserialize_with = "deserialize_rows")]
        instances: Vec<Vec<f32>>,
    },
}

/// The prediction for one row.
#[derive(Debug, Clone, Serialize)]
pub struct RowPrediction {
    /// The class index for classifiers, k-means and softmax-ended networks;
    /// the value for a single-output model; the output array otherwise (the
    /// rule of `Output::prediction`).
    pub prediction: Prediction,
    /// Class probabilities, for classifiers; omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<Vec<f32>>,
    /// The model's raw output vector.
    pub outputs: Vec<f32>,
}

/// What a request predicted: one row or a batch.
#[derive(Debug, Clone)]
pub enum Predictions {
    /// The answer to a `features` event.
    Single(RowPrediction),
    /// The answers to an `instances` event, in order.
    Batch(Vec<RowPrediction>),
}

/// The answer to a [`LambdaRequest`].
///
/// Serializes as
/// `{"prediction": ..., "probabilities": [...], "outputs": [...], "cold_start": bool, "latency_ms": f64}`
/// for one row, and
/// `{"predictions": [{"prediction", "probabilities", "outputs"}, ...], "cold_start": bool, "latency_ms": f64}`
/// for a batch.
#[derive(Debug, Clone)]
pub struct LambdaResponse {
    /// The predictions.
    pub predictions: Predictions,
    /// Whether this was the first invocation of this process (a cold start).
    pub cold_start: bool,
    /// Time spent in the handler for this invocation, in milliseconds.
    pub latency_ms: f64,
}

impl Serialize for LambdaResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match &self.predictions {
            Predictions::Single(row) => {
                map.serialize_entry("prediction", &row.prediction)?;
                if let Some(probabilities) = &row.probabilities {
                    map.serialize_entry("probabilities", probabilities)?;
                }
                map.serialize_entry("outputs", &row.outputs)?;
            }
            Predictions::Batch(rows) => map.serialize_entry("predictions", rows)?,
        }
        map.serialize_entry("cold_start", &self.cold_start)?;
        map.serialize_entry("latency_ms", &self.latency_ms)?;
        map.end()
    }
}

/// An HTTP-shaped response, for Function URL and API Gateway HTTP API events.
///
/// `{"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "<JSON text>", "isBase64Encoded": false}`;
/// the body is a [`LambdaResponse`] with status 200, or an
/// `{"errorType", "errorMessage"}` object with status 400 (the event is at
/// fault) or 500 (the function is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// The HTTP status code.
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    /// Response headers: `content-type: application/json`.
    pub headers: HttpHeaders,
    /// The JSON response, as text.
    pub body: String,
    /// Always `false`: the body is text.
    #[serde(rename = "isBase64Encoded")]
    pub is_base64_encoded: bool,
}

/// The headers of an [`HttpResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpHeaders {
    /// `application/json`.
    #[serde(rename = "content-type")]
    pub content_type: String,
}

impl HttpResponse {
    /// A response with `status_code` and `body` (JSON text).
    pub(crate) fn json(status_code: u16, body: String) -> Self {
        HttpResponse {
            status_code,
            headers: HttpHeaders {
                content_type: "application/json".to_owned(),
            },
            body,
            is_base64_encoded: false,
        }
    }

    /// The HTTP answer to a failed request.
    pub(crate) fn from_error(err: &LambdaError) -> Self {
        let status = if err.is_client_error() { 400 } else { 500 };
        let body = serde_json::to_string(&err.to_error_body()).unwrap_or_else(|_| {
            // Serializing two strings cannot fail; this arm only keeps the
            // code panic-free.
            String::from(
                "{\"errorType\":\"InferenceError\",\"errorMessage\":\"unserializable error\"}",
            )
        });
        HttpResponse::json(status, body)
    }
}

/// What the function sends back for one invocation (the Runtime API
/// `/response` body).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum InvocationResponse {
    /// The answer to a direct `features`/`instances` event.
    Direct(LambdaResponse),
    /// The answer to a Function URL / API Gateway HTTP API event.
    Http(HttpResponse),
}

impl InvocationResponse {
    /// Whether the response reports a failure (an HTTP status of 400 or more).
    pub fn is_http_error(&self) -> bool {
        matches!(self, InvocationResponse::Http(r) if r.status_code >= 400)
    }
}

// ---------------------------------------------------------------------------
// Decoding, in one pass, into flat rows.

/// The rows of a decoded event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rows {
    /// One `features` row.
    Single(Vec<f32>),
    /// `instances`: all rows back to back in `values`; row `i` ends at
    /// `row_ends[i]`.
    Batch {
        values: Vec<f32>,
        row_ends: Vec<usize>,
    },
}

/// A decoded event: where it came from and its rows (or why it has none).
#[derive(Debug)]
pub(crate) enum DecodedEvent {
    /// A direct `features` / `instances` event.
    Direct(Rows),
    /// A Function URL / API Gateway v2 event: its body, decoded, or why the
    /// body is unusable (answered with HTTP 400, not a Lambda error).
    Http(Result<Rows, LambdaError>),
}

impl DecodedEvent {
    /// The event's kind for logs: `single`, `batch` or `http`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            DecodedEvent::Direct(Rows::Single(_)) => "single",
            DecodedEvent::Direct(Rows::Batch { .. }) => "batch",
            DecodedEvent::Http(_) => "http",
        }
    }

    /// The number of rows the event carries (0 when its body is unusable).
    pub(crate) fn row_count(&self) -> usize {
        match self {
            DecodedEvent::Direct(rows) | DecodedEvent::Http(Ok(rows)) => rows.len(),
            DecodedEvent::Http(Err(_)) => 0,
        }
    }
}

impl Rows {
    /// The number of rows.
    pub(crate) fn len(&self) -> usize {
        match self {
            Rows::Single(_) => 1,
            Rows::Batch { row_ends, .. } => row_ends.len(),
        }
    }
}

/// Decodes a raw event (the Runtime API `/next` body).
pub(crate) fn decode_event(raw: &[u8]) -> Result<DecodedEvent, LambdaError> {
    let envelope: Envelope<'_> = parse_json(raw, "the event")?;
    if envelope.request_context || (envelope.body.is_some() && !envelope.has_rows()) {
        return Ok(DecodedEvent::Http(decode_http_body(&envelope)));
    }
    envelope.into_rows("the event").map(DecodedEvent::Direct)
}

fn decode_http_body(envelope: &Envelope<'_>) -> Result<Rows, LambdaError> {
    let Some(body) = envelope.body.as_deref() else {
        return Err(malformed(
            "the HTTP request has no body; POST a JSON body such as {\"features\": [...]} or {\"instances\": [[...]]}",
        ));
    };
    let decoded;
    let bytes: &[u8] = if envelope.is_base64_encoded {
        decoded = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| {
                malformed(format!(
                    "the request body is marked isBase64Encoded but is not valid base64: {e}"
                ))
            })?;
        &decoded
    } else {
        body.as_bytes()
    };
    let inner: Envelope<'_> = parse_json(bytes, "the request body")?;
    inner.into_rows("the request body")
}

fn parse_json<'de, T: Deserialize<'de>>(raw: &'de [u8], what: &str) -> Result<T, LambdaError> {
    serde_json::from_slice(raw).map_err(|e| {
        let reason = match e.classify() {
            serde_json::error::Category::Data => format!("{what} has the wrong shape: {e}"),
            _ => format!("{what} is not valid JSON: {e}"),
        };
        malformed(reason)
    })
}

fn malformed(reason: impl Into<String>) -> LambdaError {
    LambdaError::MalformedEvent {
        reason: reason.into(),
    }
}

/// Every key the function reads from an event, at any level.
#[derive(Default)]
struct Envelope<'a> {
    features: Option<Vec<f32>>,
    instances: Option<(Vec<f32>, Vec<usize>)>,
    body: Option<Cow<'a, str>>,
    is_base64_encoded: bool,
    request_context: bool,
}

impl Envelope<'_> {
    fn has_rows(&self) -> bool {
        self.features.is_some() || self.instances.is_some()
    }

    fn into_rows(self, what: &str) -> Result<Rows, LambdaError> {
        match (self.features, self.instances) {
            (Some(features), None) => Ok(Rows::Single(features)),
            (None, Some((values, row_ends))) => Ok(Rows::Batch { values, row_ends }),
            (Some(_), Some(_)) => Err(malformed(format!(
                "{what} has both `features` and `instances`; send one row as `features` or a batch as `instances`"
            ))),
            (None, None) => Err(malformed(format!(
                "{what} has neither `features` (one row, e.g. {{\"features\": [1.0, 2.0]}}) nor `instances` (a batch, e.g. {{\"instances\": [[1.0, 2.0]]}})"
            ))),
        }
    }
}

const EXPECTING_EVENT: &str = "a JSON object with `features` (one row) or `instances` (a batch of rows), or a Function URL / API Gateway HTTP API event with a `body`";

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor(std::marker::PhantomData))
    }
}

struct EnvelopeVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for EnvelopeVisitor<'a> {
    type Value = Envelope<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTING_EVENT)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut envelope = Envelope::default();
        while let Some(key) = map.next_key::<EventKey>()? {
            match key {
                EventKey::Features => {
                    if envelope.features.is_some() {
                        return Err(de::Error::duplicate_field("features"));
                    }
                    let mut row = Vec::new();
                    map.next_value_seed(AppendRow { values: &mut row })?;
                    envelope.features = Some(row);
                }
                EventKey::Instances => {
                    if envelope.instances.is_some() {
                        return Err(de::Error::duplicate_field("instances"));
                    }
                    envelope.instances = Some(map.next_value_seed(FlatRows)?);
                }
                EventKey::Body => {
                    envelope.body = map
                        .next_value::<Option<BorrowedOrOwnedStr<'a>>>()?
                        .map(|b| b.0);
                }
                EventKey::IsBase64Encoded => {
                    envelope.is_base64_encoded = map.next_value::<Option<bool>>()?.unwrap_or(false);
                }
                EventKey::RequestContext => {
                    map.next_value::<IgnoredAny>()?;
                    envelope.request_context = true;
                }
                EventKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }
}

enum EventKey {
    Features,
    Instances,
    Body,
    IsBase64Encoded,
    RequestContext,
    Other,
}

impl<'de> Deserialize<'de> for EventKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = EventKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<EventKey, E> {
                Ok(match key {
                    "features" => EventKey::Features,
                    "instances" => EventKey::Instances,
                    "body" => EventKey::Body,
                    "isBase64Encoded" => EventKey::IsBase64Encoded,
                    "requestContext" => EventKey::RequestContext,
                    _ => EventKey::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// A string borrowed from the input when it has no escapes.
struct BorrowedOrOwnedStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedOrOwnedStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for StrVisitor<'a> {
            type Value = BorrowedOrOwnedStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the request body as a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedOrOwnedStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedOrOwnedStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(BorrowedOrOwnedStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor(std::marker::PhantomData))
    }
}

/// Appends one row of feature values to `values`.
struct AppendRow<'v> {
    values: &'v mut Vec<f32>,
}

impl<'de> DeserializeSeed<'de> for AppendRow<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for AppendRow<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of numbers (one row of features)")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(n) = seq.size_hint() {
            self.values.reserve(n);
        }
        while let Some(FeatureValue(v)) = seq.next_element()? {
            self.values.push(v);
        }
        Ok(())
    }
}

/// Reads `[[...], [...], ...]` into one flat vector and the row ends.
struct FlatRows;

impl<'de> DeserializeSeed<'de> for FlatRows {
    type Value = (Vec<f32>, Vec<usize>);
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for FlatRows {
    type Value = (Vec<f32>, Vec<usize>);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of rows, each an array of numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::new();
        let mut row_ends = Vec::new();
        while seq
            .next_element_seed(AppendRow {
                values: &mut values,
            })?
            .is_some()
        {
            row_ends.push(values.len());
        }
        Ok((values, row_ends))
    }
}

/// One feature: a JSON number, or `"NaN"` / `"Infinity"` / `"-Infinity"`.
/// Numbers beyond the `f32` range become infinities (rejected later as
/// non-finite, with their position).
struct FeatureValue(f32);

impl<'de> Deserialize<'de> for FeatureValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl Visitor<'_> for ValueVisitor {
            type Value = FeatureValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<FeatureValue, E> {
                // `as` saturates to ±infinity beyond the f32 range.
                Ok(FeatureValue(v as f32))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FeatureValue, E> {
                Ok(FeatureValue(v as f32))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FeatureValue, E> {
                Ok(FeatureValue(v as f32))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FeatureValue, E> {
                match v {
                    "NaN" | "nan" => Ok(FeatureValue(f32::NAN)),
                    "Infinity" | "inf" | "+Infinity" => Ok(FeatureValue(f32::INFINITY)),
                    "-Infinity" | "-inf" => Ok(FeatureValue(f32::NEG_INFINITY)),
                    other => Err(de::Error::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

fn deserialize_row<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f32>, D::Error> {
    let mut row = Vec::new();
    AppendRow { values: &mut row }.deserialize(deserializer)?;
    Ok(row)
}

fn deserialize_rows<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Vec<f32>>, D::Error> {
    struct RowsVisitor;
    impl<'de> Visitor<'de> for RowsVisitor {
        type Value = Vec<Vec<f32>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of rows, each an array of numbers")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut rows = Vec::new();
            loop {
                let mut row = Vec::new();
                if seq
                    .next_element_seed(AppendRow { values: &mut row })?
                    .is_none()
                {
                    return Ok(rows);
                }
                rows.push(row);
            }
        }
    }
    deserializer.deserialize_seq(RowsVisitor)
}

/// The JSON text of an error response body.
pub(crate) fn error_json(err: &LambdaError) -> String {
    let body: ErrorBody = err.to_error_body();
    serde_json::to_string(&body)
        .unwrap_or_else(|_| String::from("{\"errorType\":\"InferenceError\"}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(raw: &str) -> Result<Rows, LambdaError> {
        match decode_event(raw.as_bytes())? {
            DecodedEvent::Direct(rows) => Ok(rows),
            DecodedEvent::Http(_) => panic!("decoded {raw} as an HTTP event"),
        }
    }

    fn http(raw: &str) -> Result<Rows, LambdaError> {
        match decode_event(raw.as_bytes()) {
            Ok(DecodedEvent::Http(rows)) => rows,
            other => panic!("decoded {raw} as {other:?}"),
        }
    }

    #[test]
    fn single_and_batch_events_decode_flat() {
        assert_eq!(
            direct(r#"{"features":[1,2.5,-3e2]}"#).ok(),
            Some(Rows::Single(vec![1.0, 2.5, -300.0]))
        );
        assert_eq!(
            direct(r#"{"instances":[[1,2],[3],[]]}"#).ok(),
            Some(Rows::Batch {
                values: vec![1.0, 2.0, 3.0],
                row_ends: vec![2, 3, 3]
            })
        );
        assert_eq!(
            direct(r#"{"instances":[]}"#).ok(),
            Some(Rows::Batch {
                values: vec![],
                row_ends: vec![]
            })
        );
        // Unknown keys are ignored.
        assert!(direct(r#"{"id":"x","features":[1],"meta":{"a":[1,2]}}"#).is_ok());
    }

    #[test]
    fn out_of_range_and_nan_strings_become_non_finite() {
        let Ok(Rows::Single(row)) = direct(r#"{"features":[1e39,"NaN","-Infinity",2]}"#) else {
            panic!("expected a single row");
        };
        assert!(row[0].is_infinite());
        assert!(row[1].is_nan());
        assert_eq!(row[2], f32::NEG_INFINITY);
        assert_eq!(row[3], 2.0);
    }

    #[test]
    fn malformed_events_say_what_is_wrong() {
        let cases = [
            ("{\"features\": [1, 2", "not valid JSON"),
            ("not json", "not valid JSON"),
            ("[1,2,3]", "wrong shape"),
            (r#"{"features":[1,"a"]}"#, "expected a number"),
            (r#"{"features":[1],"instances":[[1]]}"#, "both"),
            (r#"{"hello":1}"#, "neither"),
            (r#"{"features":[1],"features":[2]}"#, "duplicate field"),
            (r#"{"instances":[1,2]}"#, "array of numbers"),
        ];
        for (raw, needle) in cases {
            match direct(raw) {
                Err(e @ LambdaError::MalformedEvent { .. }) => {
                    assert!(e.to_string().contains(needle), "{raw}: {e}")
                }
                other => panic!("{raw}: expected MalformedEvent, got {other:?}"),
            }
        }
    }

    #[test]
    fn http_events_decode_their_body() {
        let event = r#"{"version":"2.0","rawPath":"/","requestContext":{"http":{"method":"POST"}},"headers":{"content-type":"application/json"},"body":"{\"features\":[1,2]}","isBase64Encoded":false}"#;
        assert_eq!(http(event).ok(), Some(Rows::Single(vec![1.0, 2.0])));

        let b64 = base64::engine::general_purpose::STANDARD.encode(r#"{"instances":[[1],[2]]}"#);
        let event = format!(r#"{{"requestContext":{{}},"body":"{b64}","isBase64Encoded":true}}"#);
        assert_eq!(
            http(&event).ok(),
            Some(Rows::Batch {
                values: vec![1.0, 2.0],
                row_ends: vec![1, 2]
            })
        );
        // A body without requestContext is still an HTTP event.
        assert!(http(r#"{"body":"{\"features\":[3]}"}"#).is_ok());
    }

    #[test]
    fn bad_http_bodies_are_http_errors() {
        let cases = [
            (
                r#"{"requestContext":{},"body":"{\"features\":"}"#,
                "request body is not valid JSON",
            ),
            (
                r#"{"requestContext":{},"body":"%%%","isBase64Encoded":true}"#,
                "not valid base64",
            ),
            (r#"{"requestContext":{}}"#, "no body"),
            (r#"{"requestContext":{},"body":"{}"}"#, "neither"),
        ];
        for (raw, needle) in cases {
            match http(raw) {
                Err(e) => assert!(e.to_string().contains(needle), "{raw}: {e}"),
                Ok(rows) => panic!("{raw}: decoded {rows:?}"),
            }
        }
    }

    #[test]
    fn lambda_request_deserializes_both_shapes() {
        let single: LambdaRequest =
            serde_json::from_str(r#"{"features":[1,"NaN"]}"#).unwrap_or_else(|e| panic!("{e}"));
        match single {
            LambdaRequest::Single { features } => assert!(features[1].is_nan()),
            other => panic!("{other:?}"),
        }
        let batch: LambdaRequest =
            serde_json::from_str(r#"{"instances":[[1],[2,3]]}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            batch,
            LambdaRequest::Batch {
                instances: vec![vec![1.0], vec![2.0, 3.0]]
            }
        );
    }

    #[test]
    fn http_error_responses_carry_the_error_body() {
        let r = HttpResponse::from_error(&LambdaError::EmptyBatch);
        assert_eq!(r.status_code, 400);
        assert!(r.body.contains("\"errorType\":\"EmptyBatch\""));
        let r = HttpResponse::from_error(&LambdaError::InferenceError("x".into()));
        assert_eq!(r.status_code, 500);
    }
}
