//! The one response type, its JSON forms, and Lambda's size limit on them.

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::error::{ErrorBody, LambdaError};
use crate::limits::MAX_RESPONSE_BYTES;
use crate::model::{BatchOutput, Output, Prediction};

/// The prediction for one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowPrediction {
    /// The class index for classifiers, k-means and softmax-ended networks;
    /// the value for a single-output model; the output array otherwise (the
    /// rule of [`Output::prediction`]).
    pub prediction: Prediction,
    /// The predicted class's label, when the model has labels; omitted
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Class probabilities, for classifiers; omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<Vec<f32>>,
    /// The model's raw output vector.
    pub outputs: Vec<f32>,
}

impl RowPrediction {
    /// The answer for one model output, or [`LambdaError::NonFiniteOutput`]
    /// when any output or probability is NaN or infinite (the row was too
    /// far outside the model's range; a plausible class must not hide that).
    pub(crate) fn from_output(
        output: &Output<'_>,
        instance: Option<usize>,
    ) -> Result<Self, LambdaError> {
        let bad = output
            .outputs
            .iter()
            .position(|v| !v.is_finite())
            .or_else(|| {
                output
                    .probabilities
                    .and_then(|p| p.iter().position(|v| !v.is_finite()))
            });
        if let Some(index) = bad {
            return Err(LambdaError::NonFiniteOutput { instance, index });
        }
        Ok(RowPrediction {
            prediction: output.prediction(),
            label: output.label.map(str::to_owned),
            probabilities: output.probabilities.map(<[f32]>::to_vec),
            outputs: output.outputs.to_vec(),
        })
    }

    /// Every row of a batch, in order.
    pub(crate) fn from_batch(batch: &BatchOutput) -> Result<Vec<Self>, LambdaError> {
        let mut rows = Vec::with_capacity(batch.len());
        for (i, output) in batch.rows().enumerate() {
            rows.push(Self::from_output(&output, Some(i))?);
        }
        Ok(rows)
    }
}

/// What a request predicted: one row or a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    /// The answer to a `features` event.
    Single(RowPrediction),
    /// The answers to an `instances` event, in order.
    Batch(Vec<RowPrediction>),
}

impl Predictions {
    /// The number of rows answered.
    pub fn len(&self) -> usize {
        match self {
            Predictions::Single(_) => 1,
            Predictions::Batch(rows) => rows.len(),
        }
    }

    /// Whether no row was answered (never, for a response the handler built).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Serialize for Predictions {
    /// `{"prediction", "probabilities", "outputs"}` for one row,
    /// `{"predictions": [...]}` for a batch: the response without its
    /// timing fields (what the CLI's `predict` prints).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.serialize_entries(&mut map)?;
        map.end()
    }
}

impl Predictions {
    fn serialize_entries<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        match self {
            Predictions::Single(row) => {
                map.serialize_entry("prediction", &row.prediction)?;
                if let Some(label) = &row.label {
                    map.serialize_entry("label", label)?;
                }
                if let Some(probabilities) = &row.probabilities {
                    map.serialize_entry("probabilities", probabilities)?;
                }
                map.serialize_entry("outputs", &row.outputs)
            }
            Predictions::Batch(rows) => map.serialize_entry("predictions", rows),
        }
    }
}

/// The answer to a [`LambdaRequest`](super::LambdaRequest).
///
/// Serializes as
/// `{"prediction": ..., "probabilities": [...], "outputs": [...], "cold_start": bool, "latency_ms": f64}`
/// for one row, and
/// `{"predictions": [{"prediction", "probabilities", "outputs"}, ...], "cold_start": bool, "latency_ms": f64}`
/// for a batch.
#[derive(Debug, Clone, PartialEq)]
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
        self.predictions.serialize_entries(&mut map)?;
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
/// fault), 413 (the answer would exceed Lambda's response limit) or 500
/// (the function is at fault).
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
        HttpResponse::json(err.http_status(), error_json(err))
    }

    /// The HTTP answer to a successful request: status 200 with the
    /// response as the body, or 413 when that would exceed Lambda's limit.
    pub(crate) fn from_response(response: &LambdaResponse) -> Self {
        let body = match serde_json::to_string(response) {
            Ok(body) => body,
            Err(e) => {
                return Self::from_error(&LambdaError::InferenceError(format!(
                    "the response could not be serialized: {e}"
                )))
            }
        };
        let ok = HttpResponse::json(200, body);
        let bytes = serialized_len(&ok);
        if bytes <= MAX_RESPONSE_BYTES {
            return ok;
        }
        Self::from_error(&too_large(response.predictions.len(), bytes))
    }
}

/// What the function sends back for one invocation (the Runtime API
/// `/response` body).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum InvocationResponse {
    /// The answer to a direct `features`/`instances` event.
    Direct(LambdaResponse),
    /// The answer to a Function URL / API Gateway HTTP API event.
    Http(HttpResponse),
    /// A typed handler's answer to a direct event, as JSON text.
    Json(JsonText),
}

/// A typed handler's answer, serialized once (to check its size), and sent
/// as it is.
#[derive(Debug, Clone)]
pub struct JsonText(Box<serde_json::value::RawValue>);

impl JsonText {
    /// The JSON text of `value`, or [`LambdaError::AnswerTooLarge`] when it
    /// exceeds Lambda's response limit (measured as the larger of its two
    /// forms: direct, or escaped as the body of an HTTP response).
    pub(crate) fn of<T: Serialize + ?Sized>(value: &T) -> Result<Self, LambdaError> {
        let text = serde_json::to_string(value).map_err(|e| {
            LambdaError::InferenceError(format!(
                "the handler's answer could not be serialized as JSON: {e}"
            ))
        })?;
        // As an HTTP body: escaped, inside the envelope.
        let bytes = serialized_len(&text).saturating_add(HTTP_ENVELOPE_BYTES);
        if bytes > MAX_RESPONSE_BYTES {
            return Err(LambdaError::AnswerTooLarge { bytes });
        }
        serde_json::value::RawValue::from_string(text)
            .map(JsonText)
            .map_err(|e| LambdaError::InferenceError(format!("invalid answer JSON: {e}")))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl InvocationResponse {
    /// Whether the response reports a failure (an HTTP status of 400 or more).
    pub fn is_http_error(&self) -> bool {
        matches!(self, InvocationResponse::Http(r) if r.status_code >= 400)
    }
}

/// Checks that a direct response fits in Lambda's limit. `worst_case` is
/// the most bytes it could take ([`crate::limits`]): when that fits, as it
/// does for every batch within the default `max_batch`, nothing is measured;
/// otherwise the response is measured (serialized into a counter).
pub(crate) fn check_direct_size(
    response: &LambdaResponse,
    worst_case: usize,
) -> Result<(), LambdaError> {
    if worst_case <= MAX_RESPONSE_BYTES {
        return Ok(());
    }
    let bytes = serialized_len(response);
    if bytes <= MAX_RESPONSE_BYTES {
        Ok(())
    } else {
        Err(too_large(response.predictions.len(), bytes))
    }
}

fn too_large(rows: usize, bytes: usize) -> LambdaError {
    let per_row = bytes.div_ceil(rows.max(1)).max(1);
    LambdaError::ResponseTooLarge {
        rows,
        bytes,
        max_rows: (MAX_RESPONSE_BYTES / per_row).saturating_sub(1).max(1),
    }
}

/// The length of `value`'s JSON, without building it.
fn serialized_len<T: Serialize>(value: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        // Serializing our own types cannot fail; count it as too large.
        Err(_) => usize::MAX,
    }
}

/// The most bytes the HTTP envelope around a body takes.
const HTTP_ENVELOPE_BYTES: usize = 128;

/// The JSON text of an error response body.
pub(crate) fn error_json(err: &LambdaError) -> String {
    let body: ErrorBody = err.to_error_body();
    serde_json::to_string(&body)
        .unwrap_or_else(|_| String::from("{\"errorType\":\"InferenceError\"}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: usize, v: f32) -> RowPrediction {
        RowPrediction {
            prediction: Prediction::Class(n.saturating_sub(1)),
            label: None,
            probabilities: Some(vec![v; n]),
            outputs: vec![v; n],
        }
    }

    #[test]
    fn http_error_responses_carry_the_error_body() {
        let r = HttpResponse::from_error(&LambdaError::EmptyBatch);
        assert_eq!(r.status_code, 400);
        assert!(r.body.contains("\"errorType\":\"EmptyBatch\""));
        let r = HttpResponse::from_error(&LambdaError::InferenceError("x".into()));
        assert_eq!(r.status_code, 500);
        let r = HttpResponse::from_error(&too_large(10, 10_000_000));
        assert_eq!(r.status_code, 413);
        assert!(r.body.contains("ResponseTooLarge"), "{}", r.body);
    }

    #[test]
    fn non_finite_outputs_are_errors_naming_the_row() {
        let outputs = [0.5, f32::NAN];
        let out = Output {
            class: Some(0),
            outputs: &outputs,
            probabilities: Some(&outputs),
            label: None,
        };
        assert!(matches!(
            RowPrediction::from_output(&out, Some(7)),
            Err(LambdaError::NonFiniteOutput {
                instance: Some(7),
                index: 1
            })
        ));
        let probabilities = [f32::INFINITY, 0.0];
        let out = Output {
            class: Some(0),
            outputs: &[0.5, 0.5],
            probabilities: Some(&probabilities),
            label: None,
        };
        assert!(RowPrediction::from_output(&out, None).is_err());
    }

    #[test]
    fn the_worst_case_bound_holds_for_the_longest_values() {
        // Rows made of the longest f32s must stay within the budget, direct
        // and escaped in an HTTP body.
        for n in [1usize, 3, 10, 257] {
            let worst = crate::limits::worst_case_row_bytes(n, Some(n));
            let rows: Vec<RowPrediction> = (0..50).map(|_| row(n, -1.175_494_4e-38)).collect();
            let response = LambdaResponse {
                predictions: Predictions::Batch(rows),
                cold_start: false,
                latency_ms: 123_456.789,
            };
            let direct = serialized_len(&response);
            let http = serialized_len(&HttpResponse::from_response(&response));
            assert!(direct <= 50 * worst + 128, "{n}: {direct} > 50 × {worst}");
            assert!(http <= 50 * worst + 256, "{n}: {http} > 50 × {worst}");
        }
    }

    #[test]
    fn too_large_responses_are_refused_with_a_row_budget() {
        let rows: Vec<RowPrediction> = (0..40_000).map(|_| row(10, 0.123_456_78)).collect();
        let response = LambdaResponse {
            predictions: Predictions::Batch(rows),
            cold_start: false,
            latency_ms: 1.0,
        };
        let bytes = serialized_len(&response);
        assert!(bytes > MAX_RESPONSE_BYTES, "{bytes}");
        match check_direct_size(&response, usize::MAX) {
            Err(LambdaError::ResponseTooLarge {
                rows,
                bytes: b,
                max_rows,
            }) => {
                assert_eq!((rows, b), (40_000, bytes));
                assert!(max_rows < 40_000 && max_rows * (bytes / rows) < MAX_RESPONSE_BYTES);
            }
            other => panic!("{other:?}"),
        }
        // Within the worst case, nothing is measured.
        assert!(check_direct_size(&response, 100).is_ok());
        let http = HttpResponse::from_response(&response);
        assert_eq!(http.status_code, 413);
        assert!(http.body.len() < 1_000);
    }
}
