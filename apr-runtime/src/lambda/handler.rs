//! [`LambdaHandler`]: the model, parsed once at init, answering events.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::error::LambdaError;
use super::events::{
    decode_event, DecodedEvent, HttpResponse, InvocationResponse, LambdaRequest, LambdaResponse,
    Predictions, RowPrediction, Rows,
};
use crate::format::{AprFile, ParseOptions};
use crate::model::{Model, Output, Scratch};

/// The default limit on rows per batch event.
pub const DEFAULT_MAX_BATCH: usize = 10_000;

/// The magic every `.apr` v2 container starts with.
const V2_MAGIC: [u8; 4] = *b"APR\0";

/// The process start, as stamped by [`mark_process_start`] (the macro's
/// `main` does it first thing) or, failing that, by the first handler built.
static PROCESS_START: OnceLock<Instant> = OnceLock::new();

/// Stamps the process start (first call wins) and returns it.
pub(crate) fn mark_process_start() -> Instant {
    *PROCESS_START.get_or_init(Instant::now)
}

/// The cold-start figures of this process, recorded once, on the first
/// invocation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ColdStartMetrics {
    /// From the process start to the handler being ready to serve (the
    /// function's part of the Lambda init phase), in milliseconds.
    pub init_ms: f64,
    /// Time spent parsing and validating the model, in milliseconds (part of
    /// `init_ms`).
    pub model_parse_ms: f64,
    /// Time the first invocation spent in the handler, in milliseconds.
    pub first_invoke_ms: f64,
    /// From the process start to the first response being ready, in
    /// milliseconds.
    pub first_response_ms: f64,
    /// Size of the model in bytes.
    pub model_bytes: usize,
}

/// A model, parsed and validated at init, that answers prediction events.
///
/// Build it during the Lambda init phase (which runs with unthrottled CPU),
/// then hand it to [`serve`](super::serve). The first invocation it answers
/// is the cold start: its response says `"cold_start": true` and it records
/// [`ColdStartMetrics`].
pub struct LambdaHandler {
    model: Model<'static>,
    max_batch: usize,
    /// One set of buffers, reused by every row of every invocation.
    scratch: Mutex<Scratch>,
    /// The instant the first invocation started; set once.
    init_time: OnceLock<Instant>,
    /// The cold-start figures; set once, by the first invocation.
    cold_start_metrics: OnceLock<ColdStartMetrics>,
    process_start: Instant,
    ready_at: Instant,
    model_parse: Duration,
    model_bytes: usize,
}

impl std::fmt::Debug for LambdaHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaHandler")
            .field("family", &self.model.family().to_string())
            .field("n_features", &self.model.n_features())
            .field("n_outputs", &self.model.n_outputs())
            .field("max_batch", &self.max_batch)
            .field("model_bytes", &self.model_bytes)
            .field("cold_start_metrics", &self.cold_start_metrics.get())
            .finish_non_exhaustive()
    }
}

impl LambdaHandler {
    /// Parses and validates the model in `bytes`, verifying every checksum
    /// (header and footer).
    ///
    /// # Errors
    /// [`LambdaError::EmptyModel`] for no bytes,
    /// [`LambdaError::InvalidMagic`] when the bytes do not start with `APR\0`,
    /// [`LambdaError::Format`] for any other container problem and
    /// [`LambdaError::Model`] when the runtime cannot serve the model.
    ///
    /// ```
    /// # use apr_runtime::lambda::{LambdaError, LambdaHandler};
    /// assert!(matches!(LambdaHandler::from_bytes(b""), Err(LambdaError::EmptyModel)));
    /// assert!(matches!(
    ///     LambdaHandler::from_bytes(b"GGUF and more"),
    ///     Err(LambdaError::InvalidMagic { expected, actual }) if &expected == b"APR\0" && &actual == b"GGUF"
    /// ));
    /// ```
    pub fn from_bytes(bytes: &'static [u8]) -> Result<Self, LambdaError> {
        Self::build(bytes, ParseOptions::default())
    }

    /// Like [`from_bytes`](Self::from_bytes), but skips the footer CRC (a
    /// pass over every byte of the model): for bytes already verified, such
    /// as those `#[apr_lambda]` checked while compiling. The header checksum,
    /// bounds and shapes are still validated.
    ///
    /// # Errors
    /// As [`from_bytes`](Self::from_bytes), except footer checksum mismatches.
    pub fn from_embedded(bytes: &'static [u8]) -> Result<Self, LambdaError> {
        Self::build(
            bytes,
            ParseOptions {
                verify_footer_crc: false,
            },
        )
    }

    fn build(bytes: &'static [u8], options: ParseOptions) -> Result<Self, LambdaError> {
        let process_start = mark_process_start();
        let parse_start = Instant::now();
        let Some(magic) = bytes.get(..4) else {
            return Err(if bytes.is_empty() {
                LambdaError::EmptyModel
            } else {
                let mut actual = [0u8; 4];
                for (dst, src) in actual.iter_mut().zip(bytes) {
                    *dst = *src;
                }
                LambdaError::InvalidMagic {
                    expected: V2_MAGIC,
                    actual,
                }
            });
        };
        if magic != V2_MAGIC {
            let mut actual = [0u8; 4];
            actual.copy_from_slice(magic);
            return Err(LambdaError::InvalidMagic {
                expected: V2_MAGIC,
                actual,
            });
        }
        let file = AprFile::parse_with(bytes, options)?;
        let model = Model::from_file(&file)?;
        let model_parse = parse_start.elapsed();
        let scratch = Mutex::new(model.scratch());
        Ok(LambdaHandler {
            model,
            max_batch: DEFAULT_MAX_BATCH,
            scratch,
            init_time: OnceLock::new(),
            cold_start_metrics: OnceLock::new(),
            process_start,
            ready_at: Instant::now(),
            model_parse,
            model_bytes: bytes.len(),
        })
    }

    /// Sets the most rows a batch event may carry (default
    /// [`DEFAULT_MAX_BATCH`], 10 000); larger batches are answered with
    /// [`LambdaError::BatchTooLarge`]. A limit of 0 is taken as 1.
    #[must_use]
    pub fn with_max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// The model being served.
    pub fn model(&self) -> &Model<'static> {
        &self.model
    }

    /// The batch limit.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// The cold-start figures, once the first invocation has been answered.
    pub fn cold_start_metrics(&self) -> Option<&ColdStartMetrics> {
        self.cold_start_metrics.get()
    }

    /// Time spent parsing and validating the model at init.
    pub fn model_parse_time(&self) -> Duration {
        self.model_parse
    }

    /// Answers one request. The first call of the process is the cold start.
    ///
    /// # Errors
    /// [`LambdaError::FeatureCount`], [`LambdaError::NonFinite`],
    /// [`LambdaError::EmptyBatch`] and [`LambdaError::BatchTooLarge`] for bad
    /// rows (checked before any inference), [`LambdaError::InferenceError`]
    /// if the model fails.
    pub fn handle(&self, req: &LambdaRequest) -> Result<LambdaResponse, LambdaError> {
        let started = Instant::now();
        let cold_start = self.init_time.set(started).is_ok();
        let rows = match req {
            LambdaRequest::Single { features } => RowsRef::Single(features),
            LambdaRequest::Batch { instances } => RowsRef::Nested(instances),
        };
        let response = self.answer(rows, started, cold_start);
        if cold_start {
            self.record_cold_start(started);
        }
        response
    }

    /// Answers one raw event (the Runtime API `/next` body): decodes it,
    /// predicts, and builds the response. `Err` is a Lambda error response;
    /// errors in Function URL events are `Ok` HTTP 4xx/5xx responses.
    pub(crate) fn respond(&self, raw: &[u8]) -> (Result<InvocationResponse, LambdaError>, Outcome) {
        let started = Instant::now();
        let cold_start = self.init_time.set(started).is_ok();
        let decoded = decode_event(raw);
        let (kind, rows) = match &decoded {
            Ok(event) => (event.kind(), event.row_count()),
            Err(_) => ("unknown", 0),
        };
        let result = match decoded {
            Err(err) => Err(err),
            Ok(DecodedEvent::Direct(rows)) => self
                .answer(RowsRef::from_rows(&rows), started, cold_start)
                .map(InvocationResponse::Direct),
            Ok(DecodedEvent::Http(rows)) => {
                let answered = match rows {
                    Ok(rows) => self.answer(RowsRef::from_rows(&rows), started, cold_start),
                    Err(err) => Err(err),
                };
                Ok(InvocationResponse::Http(match answered {
                    Ok(response) => match serde_json::to_string(&response) {
                        Ok(body) => HttpResponse::json(200, body),
                        Err(e) => HttpResponse::from_error(&LambdaError::InferenceError(format!(
                            "the response could not be serialized: {e}"
                        ))),
                    },
                    Err(err) => HttpResponse::from_error(&err),
                }))
            }
        };
        if cold_start {
            self.record_cold_start(started);
        }
        let outcome = Outcome {
            kind,
            rows,
            cold_start,
            latency: started.elapsed(),
        };
        (result, outcome)
    }

    /// Validates every row, then predicts: a single row or a [`LambdaRequest`]
    /// batch row by row in the shared scratch, a decoded batch (contiguous
    /// rows) with one `predict_batch`.
    fn answer(
        &self,
        rows: RowsRef<'_>,
        started: Instant,
        cold_start: bool,
    ) -> Result<LambdaResponse, LambdaError> {
        self.validate(&rows)?;
        let predictions = self.predict(&rows)?;
        Ok(LambdaResponse {
            predictions,
            cold_start,
            latency_ms: millis(started.elapsed()),
        })
    }

    /// Records the cold-start figures once the first invocation (which
    /// started at `started`) is answered.
    fn record_cold_start(&self, started: Instant) {
        let latency = started.elapsed();
        let since_start = started.saturating_duration_since(self.process_start) + latency;
        let _ = self.cold_start_metrics.set(ColdStartMetrics {
            init_ms: millis(self.ready_at.saturating_duration_since(self.process_start)),
            model_parse_ms: millis(self.model_parse),
            first_invoke_ms: millis(latency),
            first_response_ms: millis(since_start),
            model_bytes: self.model_bytes,
        });
    }

    fn validate(&self, rows: &RowsRef<'_>) -> Result<(), LambdaError> {
        let n_rows = rows.len();
        if rows.is_batch() {
            if n_rows == 0 {
                return Err(LambdaError::EmptyBatch);
            }
            if n_rows > self.max_batch {
                return Err(LambdaError::BatchTooLarge {
                    rows: n_rows,
                    max: self.max_batch,
                });
            }
        }
        let expected = self.model.n_features();
        for i in 0..n_rows {
            let row = rows.row(i);
            let instance = rows.is_batch().then_some(i);
            if row.len() != expected {
                return Err(LambdaError::FeatureCount {
                    instance,
                    expected,
                    found: row.len(),
                });
            }
            if let Some(index) = row.iter().position(|v| !v.is_finite()) {
                return Err(LambdaError::NonFinite { instance, index });
            }
        }
        Ok(())
    }

    fn predict(&self, rows: &RowsRef<'_>) -> Result<Predictions, LambdaError> {
        match rows {
            RowsRef::Single(row) => {
                let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
                self.predict_row(row, None, &mut scratch)
                    .map(Predictions::Single)
            }
            // Validated: every row has n_features values, back to back, so
            // the whole batch goes through the matrix-matrix kernels at once.
            RowsRef::Flat { values, row_ends } => {
                let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
                // The shared scratch keeps the batch's layer buffers warm
                // across invocations: no fresh pages to fault in per batch.
                let batch = self
                    .model
                    .predict_batch_with(values, row_ends.len(), &mut scratch)
                    .map_err(|e| LambdaError::from_predict(e, None))?;
                let mut out = Vec::with_capacity(batch.len());
                for i in 0..batch.len() {
                    let output = batch.row(i).ok_or_else(|| {
                        LambdaError::InferenceError(format!(
                            "the batch output has no row {i} of {}",
                            batch.len()
                        ))
                    })?;
                    out.push(row_prediction(&output));
                }
                Ok(Predictions::Batch(out))
            }
            RowsRef::Nested(instances) => {
                let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
                let mut out = Vec::with_capacity(instances.len());
                for (i, row) in instances.iter().enumerate() {
                    out.push(self.predict_row(row, Some(i), &mut scratch)?);
                }
                Ok(Predictions::Batch(out))
            }
        }
    }

    fn predict_row(
        &self,
        row: &[f32],
        instance: Option<usize>,
        scratch: &mut Scratch,
    ) -> Result<RowPrediction, LambdaError> {
        let output = self
            .model
            .predict(row, scratch)
            .map_err(|e| LambdaError::from_predict(e, instance))?;
        Ok(row_prediction(&output))
    }
}

/// The response entry for one model output (the only per-row allocation).
fn row_prediction(output: &Output<'_>) -> RowPrediction {
    RowPrediction {
        prediction: output.prediction(),
        probabilities: output.probabilities.map(<[f32]>::to_vec),
        outputs: output.outputs.to_vec(),
    }
}

/// What one invocation did, for its log line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub(crate) kind: &'static str,
    pub(crate) rows: usize,
    pub(crate) cold_start: bool,
    pub(crate) latency: Duration,
}

/// `d` in milliseconds, rounded to the microsecond.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A view of the rows of a request, whichever way they are stored.
enum RowsRef<'r> {
    Single(&'r [f32]),
    Nested(&'r [Vec<f32>]),
    Flat {
        values: &'r [f32],
        row_ends: &'r [usize],
    },
}

impl<'r> RowsRef<'r> {
    fn from_rows(rows: &'r Rows) -> Self {
        match rows {
            Rows::Single(features) => RowsRef::Single(features),
            Rows::Batch { values, row_ends } => RowsRef::Flat { values, row_ends },
        }
    }

    fn is_batch(&self) -> bool {
        !matches!(self, RowsRef::Single(_))
    }

    fn len(&self) -> usize {
        match self {
            RowsRef::Single(_) => 1,
            RowsRef::Nested(rows) => rows.len(),
            RowsRef::Flat { row_ends, .. } => row_ends.len(),
        }
    }

    /// Row `i`; empty when out of range (callers iterate `0..len()`).
    fn row(&self, i: usize) -> &'r [f32] {
        match self {
            RowsRef::Single(row) => row,
            RowsRef::Nested(rows) => rows.get(i).map_or(&[], Vec::as_slice),
            RowsRef::Flat { values, row_ends } => {
                let start = match i.checked_sub(1) {
                    Some(prev) => row_ends.get(prev).copied().unwrap_or(0),
                    None => 0,
                };
                let end = row_ends.get(i).copied().unwrap_or(start);
                values.get(start..end).unwrap_or(&[])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lambda::events::InvocationResponse;
    use crate::model::Prediction;

    static LINEAR: &[u8] = include_bytes!("../../tests/fixtures/linear_regression.v2.apr");
    static MULTICLASS: &[u8] = include_bytes!("../../tests/fixtures/mlp_multiclass.v2.apr");
    static BAD_FOOTER: &[u8] = include_bytes!("../../tests/fixtures/bad_footer_crc.apr");
    static BAD_HEADER: &[u8] = include_bytes!("../../tests/fixtures/bad_header_crc.apr");
    static BAD_MAGIC: &[u8] = include_bytes!("../../tests/fixtures/bad_magic.apr");
    static TRUNCATED: &[u8] = include_bytes!("../../tests/fixtures/bad_truncated_header.apr");

    fn handler(bytes: &'static [u8]) -> LambdaHandler {
        LambdaHandler::from_bytes(bytes).unwrap_or_else(|e| panic!("{e}"))
    }

    fn single(features: &[f32]) -> LambdaRequest {
        LambdaRequest::Single {
            features: features.to_vec(),
        }
    }

    #[test]
    fn init_errors_name_the_problem() {
        assert!(matches!(
            LambdaHandler::from_bytes(b""),
            Err(LambdaError::EmptyModel)
        ));
        match LambdaHandler::from_bytes(BAD_MAGIC) {
            Err(LambdaError::InvalidMagic { expected, actual }) => {
                assert_eq!(&expected, b"APR\0");
                assert_ne!(&actual, b"APR\0");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            LambdaHandler::from_bytes(b"AP"),
            Err(LambdaError::InvalidMagic {
                actual: [b'A', b'P', 0, 0],
                ..
            })
        ));
        for bytes in [BAD_HEADER, TRUNCATED] {
            let err = LambdaHandler::from_bytes(bytes).err();
            assert!(matches!(err, Some(LambdaError::Format(_))), "{err:?}");
        }
    }

    #[test]
    fn from_bytes_verifies_the_footer_and_from_embedded_skips_it() {
        let err = LambdaHandler::from_bytes(BAD_FOOTER).err();
        assert!(matches!(err, Some(LambdaError::Format(_))), "{err:?}");
        assert!(LambdaHandler::from_embedded(BAD_FOOTER).is_ok());
    }

    #[test]
    fn the_first_invocation_is_the_cold_start() {
        let h = handler(LINEAR);
        assert!(h.cold_start_metrics().is_none());
        let first = h
            .handle(&single(&[1.0, 2.0, 3.0]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(first.cold_start);
        let Predictions::Single(row) = &first.predictions else {
            panic!("{first:?}")
        };
        match row.prediction {
            Prediction::Value(v) => assert!((v - 2.005_765).abs() < 1e-4, "{v}"),
            ref other => panic!("{other:?}"),
        }
        assert!(row.probabilities.is_none());
        let metrics = h.cold_start_metrics().copied();
        assert!(metrics.is_some_and(|m| m.model_bytes == LINEAR.len()));
        let second = h
            .handle(&single(&[0.0, 0.0, 0.0]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!second.cold_start);
        assert_eq!(h.cold_start_metrics().copied(), metrics);
    }

    #[test]
    fn batches_answer_every_row_in_order() {
        let h = handler(MULTICLASS);
        let rows = vec![vec![5.1, 3.5, 1.4, 0.2], vec![6.7, 3.0, 5.2, 2.3]];
        let response = h
            .handle(&LambdaRequest::Batch {
                instances: rows.clone(),
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let Predictions::Batch(batch) = &response.predictions else {
            panic!("{response:?}")
        };
        assert_eq!(batch.len(), 2);
        for (row, answer) in rows.iter().zip(batch) {
            let alone = h.handle(&single(row)).unwrap_or_else(|e| panic!("{e}"));
            let Predictions::Single(expected) = alone.predictions else {
                panic!()
            };
            assert_eq!(answer.prediction, expected.prediction);
            assert!(matches!(answer.prediction, Prediction::Class(_)));
            let p = answer.probabilities.as_deref().unwrap_or_default();
            assert_eq!(p.len(), 3);
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        }
    }

    #[test]
    fn decoded_batches_match_row_by_row_predictions() {
        for bytes in [LINEAR, MULTICLASS] {
            let h = handler(bytes);
            let n = h.model().n_features();
            let rows: Vec<Vec<f32>> = (0..7)
                .map(|r| {
                    (0..n)
                        .map(|i| ((r * 3 + i) % 5) as f32 * 0.7 - 1.0)
                        .collect()
                })
                .collect();
            let event = serde_json::json!({ "instances": rows }).to_string();
            let (response, _) = h.respond(event.as_bytes());
            let Ok(InvocationResponse::Direct(LambdaResponse {
                predictions: Predictions::Batch(batch),
                ..
            })) = response
            else {
                panic!("{response:?}")
            };
            assert_eq!(batch.len(), rows.len());
            for (row, from_batch) in rows.iter().zip(&batch) {
                let alone = h.handle(&single(row)).unwrap_or_else(|e| panic!("{e}"));
                let Predictions::Single(alone) = alone.predictions else {
                    panic!()
                };
                assert_eq!(alone.outputs.len(), from_batch.outputs.len());
                for (a, b) in alone.outputs.iter().zip(&from_batch.outputs) {
                    assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
                }
                if let Prediction::Class(c) = alone.prediction {
                    assert_eq!(from_batch.prediction, Prediction::Class(c));
                }
            }
        }
    }

    #[test]
    fn bad_rows_are_rejected_before_inference() {
        let h = handler(LINEAR).with_max_batch(2);
        let cases: Vec<(LambdaRequest, &str)> = vec![
            (single(&[1.0, 2.0]), "FeatureCount"),
            (single(&[1.0, f32::NAN, 3.0]), "NonFinite"),
            (LambdaRequest::Batch { instances: vec![] }, "EmptyBatch"),
            (
                LambdaRequest::Batch {
                    instances: vec![vec![0.0; 3]; 3],
                },
                "BatchTooLarge",
            ),
            (
                LambdaRequest::Batch {
                    instances: vec![vec![0.0; 3], vec![f32::INFINITY, 0.0, 0.0]],
                },
                "NonFinite",
            ),
        ];
        for (req, error_type) in cases {
            match h.handle(&req) {
                Err(e) => assert_eq!(e.error_type(), error_type, "{e}"),
                Ok(r) => panic!("{req:?} answered {r:?}"),
            }
        }
        let err = h
            .handle(&LambdaRequest::Batch {
                instances: vec![vec![0.0; 3], vec![1.0; 4]],
            })
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("instance 1 has 4 features, but the model takes 3")
        );
    }

    #[test]
    fn raw_events_are_answered_in_all_three_shapes() {
        let h = handler(LINEAR);
        let (r, outcome) = h.respond(br#"{"features":[1,2,3]}"#);
        assert!(outcome.cold_start);
        assert_eq!(outcome.kind, "single");
        let json = serde_json::to_value(r.unwrap_or_else(|e| panic!("{e}"))).unwrap_or_default();
        assert!(json["prediction"].is_number(), "{json}");
        assert_eq!(json["outputs"].as_array().map(Vec::len), Some(1));
        assert_eq!(json["cold_start"], true);
        assert!(json.get("probabilities").is_none());

        let (r, outcome) = h.respond(br#"{"instances":[[1,2,3],[0,0,0]]}"#);
        assert!(!outcome.cold_start);
        assert_eq!(outcome.rows, 2);
        let json = serde_json::to_value(r.unwrap_or_else(|e| panic!("{e}"))).unwrap_or_default();
        assert_eq!(json["predictions"].as_array().map(Vec::len), Some(2));
        assert_eq!(json["cold_start"], false);

        let (r, _) = h.respond(
            br#"{"requestContext":{"http":{"method":"POST"}},"body":"{\"features\":[1,2,3]}","isBase64Encoded":false}"#,
        );
        let Ok(InvocationResponse::Http(http)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(http.status_code, 200);
        let body: serde_json::Value = serde_json::from_str(&http.body).unwrap_or_default();
        assert!(body["prediction"].is_number());

        let (r, _) = h.respond(br#"{"requestContext":{},"body":"{\"features\":[1,2]}"}"#);
        let Ok(InvocationResponse::Http(http)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(http.status_code, 400);
        assert!(http.body.contains("FeatureCount"), "{}", http.body);

        let (r, _) = h.respond(b"{oops");
        assert!(matches!(r, Err(LambdaError::MalformedEvent { .. })));
    }
}
