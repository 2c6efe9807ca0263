//! [`LambdaHandler`]: the model, parsed once at init, answering requests
//! along one path: raw event → [`LambdaRequest`] → one shape check → one
//! predict call → [`LambdaResponse`] → size check.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use super::error::LambdaError;
use super::metrics::{self, ColdStart, ColdStartMetrics, Outcome};
use super::request::{decode_event, Event, LambdaRequest};
use super::response::{
    check_direct_size, HttpResponse, InvocationResponse, LambdaResponse, Predictions, RowPrediction,
};
use crate::format::{AprFile, ParseOptions, MAGIC};
use crate::limits;
use crate::model::{LoadOptions, Model, Scratch};

thread_local! {
    /// Each thread's buffers, reused by every invocation it serves: no lock
    /// between concurrent invocations, no allocation for a single row once
    /// warm. Grows to the largest batch the thread has seen.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch (a fresh one if it is in use, which
/// only a re-entrant call could cause).
fn with_scratch<T>(f: impl FnOnce(&mut Scratch) -> T) -> T {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// A model, parsed and validated at init, that answers prediction events.
///
/// Build it during the Lambda init phase (which runs with unthrottled CPU),
/// then hand it to [`serve`](super::serve). The first invocation it answers
/// is the cold start: its response says `"cold_start": true` and it records
/// [`ColdStartMetrics`]. It is `Send + Sync`: concurrent invocations (Lambda
/// Managed Instances) share it, each thread predicting in its own buffers.
pub struct LambdaHandler {
    /// Shared ([`Model::into_shared`]): large batches split on the worker pool.
    model: Arc<Model<'static>>,
    max_batch: usize,
    /// Whether `max_batch` was set, rather than derived from the model.
    max_batch_set: bool,
    cold: ColdStart,
}

impl std::fmt::Debug for LambdaHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaHandler")
            .field("model", &self.model)
            .field("max_batch", &self.max_batch)
            .field("cold_start_metrics", &self.cold.metrics())
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
    /// [`LambdaError::Model`] when the runtime cannot serve the model
    /// (including weights that are NaN or infinite).
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
        Self::build(bytes, ParseOptions::default(), LoadOptions::default())
    }

    /// Like [`from_bytes`](Self::from_bytes), but skips the two passes over
    /// every byte of the model, the footer CRC and the check that every
    /// weight is finite: for bytes already verified, such as those
    /// `#[apr_lambda]` checked while compiling, so that init time stays flat
    /// in model size. The header checksum, bounds and shapes are still
    /// validated.
    ///
    /// # Errors
    /// As [`from_bytes`](Self::from_bytes), except footer checksum mismatches
    /// and non-finite weights.
    pub fn from_embedded(bytes: &'static [u8]) -> Result<Self, LambdaError> {
        Self::from_embedded_with(bytes, LoadOptions::default())
    }

    /// [`from_embedded`](Self::from_embedded) with `load`'s choices about
    /// the metadata's names (the weights are never checked again).
    pub(crate) fn from_embedded_with(
        bytes: &'static [u8],
        load: LoadOptions,
    ) -> Result<Self, LambdaError> {
        Self::build(
            bytes,
            ParseOptions {
                verify_footer_crc: false,
            },
            LoadOptions {
                verify_finite_weights: false,
                ..load
            },
        )
    }

    fn build(
        bytes: &'static [u8],
        options: ParseOptions,
        load: LoadOptions,
    ) -> Result<Self, LambdaError> {
        let process_start = metrics::process_start();
        let parse_start = Instant::now();
        if bytes.is_empty() {
            return Err(LambdaError::EmptyModel);
        }
        if !bytes.starts_with(&MAGIC) {
            let mut actual = [0u8; 4];
            for (dst, src) in actual.iter_mut().zip(bytes) {
                *dst = *src;
            }
            return Err(LambdaError::InvalidMagic {
                expected: MAGIC,
                actual,
            });
        }
        let file = AprFile::parse_with(bytes, options)?;
        let model = Model::from_file_with(&file, load)?;
        let cold = ColdStart::new(process_start, parse_start.elapsed(), bytes.len());
        Ok(LambdaHandler {
            max_batch: limits::default_max_batch(&model),
            max_batch_set: false,
            model: model.into_shared(),
            cold,
        })
    }

    /// Sets the most rows a batch event may carry; larger batches are
    /// answered with [`LambdaError::BatchTooLarge`]. A limit of 0 is taken
    /// as 1.
    ///
    /// The default is [`limits::default_max_batch`]: 10 000 rows, or fewer
    /// when the model's answers are large, so that a full batch always fits
    /// in Lambda's response limit. Above that, a batch whose answer would
    /// not fit is refused with [`LambdaError::ResponseTooLarge`].
    #[must_use]
    pub fn with_max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self.max_batch_set = true;
        self
    }

    /// Answers each class (or cluster) with its label: `"label"` beside
    /// `"prediction"` in every answer ([`Model::with_labels`]). Without
    /// an explicit [`with_max_batch`](Self::with_max_batch), the batch
    /// limit is computed again, labels included.
    ///
    /// # Errors
    /// [`LambdaError::Model`] with [`ModelError::LabelCount`](crate::model::ModelError::LabelCount)
    /// when the count is not the model's number of classes.
    pub fn with_labels<S: Into<String>>(
        self,
        labels: impl IntoIterator<Item = S>,
    ) -> Result<Self, LambdaError> {
        let mut handler = self.reconfigure(|model| model.with_labels(labels))?;
        if !handler.max_batch_set {
            handler.max_batch = limits::default_max_batch(&handler.model);
        }
        Ok(handler)
    }

    /// Accepts rows sent as objects keyed by these feature names
    /// ([`Model::with_feature_names`]).
    ///
    /// # Errors
    /// [`LambdaError::Model`] when the count is not the model's number of
    /// features, or a name repeats.
    pub fn with_feature_names<S: Into<String>>(
        self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<Self, LambdaError> {
        self.reconfigure(|model| model.with_feature_names(names))
    }

    /// The handler with its model passed through `configure` (taken back
    /// from its `Arc`: the handler never lends the `Arc` out, so it is the
    /// only owner) and shared again.
    fn reconfigure(
        self,
        configure: impl FnOnce(Model<'static>) -> Result<Model<'static>, crate::model::ModelError>,
    ) -> Result<Self, LambdaError> {
        let LambdaHandler {
            model,
            max_batch,
            max_batch_set,
            cold,
        } = self;
        let model = Arc::into_inner(model).ok_or_else(|| {
            LambdaError::InferenceError("the model is shared and cannot be reconfigured".into())
        })?;
        Ok(LambdaHandler {
            model: configure(model)?.into_shared(),
            max_batch,
            max_batch_set,
            cold,
        })
    }

    /// The cold-start record.
    pub(crate) fn cold(&self) -> &ColdStart {
        &self.cold
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
        self.cold.metrics()
    }

    /// Answers one decoded request, as a direct event would be answered.
    /// The first invocation of the handler (through any entry point) is the
    /// cold start.
    ///
    /// # Errors
    /// [`LambdaError::FeatureCount`], [`LambdaError::EmptyBatch`] and
    /// [`LambdaError::BatchTooLarge`] for a request of the wrong shape,
    /// [`LambdaError::NonFinite`] for a NaN or infinite feature,
    /// [`LambdaError::NonFiniteOutput`] when the model answers NaN or an
    /// infinity, [`LambdaError::ResponseTooLarge`] when the answer would not
    /// fit in a Lambda response.
    ///
    /// ```
    /// use apr_runtime::lambda::{LambdaHandler, LambdaRequest};
    /// # let bytes: &'static [u8] = Vec::leak(std::fs::read("tests/fixtures/linear_regression.v2.apr")?);
    /// let handler = LambdaHandler::from_bytes(bytes)?;
    /// let response = handler.handle(&LambdaRequest::single(vec![1.0, 2.0, 3.0]))?;
    /// assert!(response.cold_start);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle(&self, request: &LambdaRequest) -> Result<LambdaResponse, LambdaError> {
        let started = Instant::now();
        let cold_start = self.cold.begin();
        let result = self.answer_direct(request, started, cold_start);
        if cold_start {
            self.cold.record(started);
        }
        result
    }

    /// Answers one raw event (a Runtime API `/next` body, a local-mode
    /// line): decodes it, predicts, and builds the response. `Err` is a
    /// Lambda error response; errors in Function URL / API Gateway events
    /// are `Ok` HTTP 4xx/5xx responses.
    ///
    /// # Errors
    /// As [`handle`](Self::handle), plus [`LambdaError::MalformedEvent`].
    pub fn respond(&self, event: &[u8]) -> Result<InvocationResponse, LambdaError> {
        self.respond_with_outcome(event).0
    }

    /// [`respond`](Self::respond), with what the invocation did, for its
    /// log line and the cold-start record.
    pub(crate) fn respond_with_outcome(
        &self,
        event: &[u8],
    ) -> (Result<InvocationResponse, LambdaError>, Outcome) {
        let started = Instant::now();
        let cold_start = self.cold.begin();
        let (kind, rows, result) = match decode_event(event, Some(&self.model)) {
            Err(err) => ("unknown", 0, Err(err)),
            Ok(event) => {
                let kind = event.kind();
                match event {
                    Event::Direct(request) => (
                        kind,
                        request.len(),
                        self.answer_direct(&request, started, cold_start)
                            .map(InvocationResponse::Direct),
                    ),
                    Event::Http(request) => {
                        let rows = request.as_ref().map_or(0, LambdaRequest::len);
                        let http = match request
                            .and_then(|request| self.answer(&request, started, cold_start))
                        {
                            Ok(response) => HttpResponse::from_response(&response),
                            Err(err) => HttpResponse::from_error(&err),
                        };
                        (kind, rows, Ok(InvocationResponse::Http(http)))
                    }
                }
            }
        };
        if cold_start {
            self.cold.record(started);
        }
        let outcome = Outcome {
            kind,
            rows,
            cold_start,
            latency: started.elapsed(),
        };
        (result, outcome)
    }

    /// The answer to an event that could not even be read as JSON text
    /// (`reason` says why): a [`LambdaError::MalformedEvent`].
    pub(crate) fn respond_unreadable(
        &self,
        reason: String,
    ) -> (Result<InvocationResponse, LambdaError>, Outcome) {
        let started = Instant::now();
        let cold_start = self.cold.begin();
        if cold_start {
            self.cold.record(started);
        }
        let outcome = Outcome {
            kind: "unknown",
            rows: 0,
            cold_start,
            latency: started.elapsed(),
        };
        (Err(LambdaError::malformed(reason)), outcome)
    }

    /// [`answer`](Self::answer), refusing an answer too large for a direct
    /// Lambda response.
    fn answer_direct(
        &self,
        request: &LambdaRequest,
        started: Instant,
        cold_start: bool,
    ) -> Result<LambdaResponse, LambdaError> {
        let response = self.answer(request, started, cold_start)?;
        let worst_case = limits::worst_case_response_bytes(&self.model, request.len());
        check_direct_size(&response, worst_case)?;
        Ok(response)
    }

    /// The one path every request takes: the shape check, one predict call
    /// (a single row through the model's row kernels, a batch through its
    /// batch kernels, whatever the entry point), the response.
    fn answer(
        &self,
        request: &LambdaRequest,
        started: Instant,
        cold_start: bool,
    ) -> Result<LambdaResponse, LambdaError> {
        request.check_shape(self.model.n_features(), self.max_batch)?;
        let predictions = with_scratch(|scratch| {
            if request.is_batch() {
                let batch = self
                    .model
                    .predict_batch_with(request.values(), request.len(), scratch)
                    .map_err(LambdaError::from_predict)?;
                RowPrediction::from_batch(&batch).map(Predictions::Batch)
            } else {
                let output = self
                    .model
                    .predict(request.values(), scratch)
                    .map_err(LambdaError::from_predict)?;
                RowPrediction::from_output(&output, None).map(Predictions::Single)
            }
        })?;
        Ok(LambdaResponse {
            predictions,
            cold_start,
            latency_ms: metrics::millis(started.elapsed()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        LambdaRequest::single(features.to_vec())
    }

    /// The response as the caller sees it: through its JSON text.
    fn json(r: Result<InvocationResponse, LambdaError>) -> serde_json::Value {
        let text = serde_json::to_string(&r.unwrap_or_else(|e| panic!("{e}"))).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_default()
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
    fn only_from_embedded_trusts_the_weights_checked_at_compile_time() {
        let mut writer = crate::format::AprWriter::new();
        writer.model_type("LinearRegression");
        let added = writer
            .add_f32("weight", &[1, 3], &[1.0, f32::NAN, 3.0])
            .and_then(|w| w.add_f32("bias", &[1], &[0.5]));
        assert!(added.is_ok());
        let bytes: &'static [u8] = Vec::leak(writer.to_bytes());
        match LambdaHandler::from_bytes(bytes) {
            Err(LambdaError::Model(crate::model::ModelError::NonFiniteWeight {
                tensor,
                index,
            })) => {
                assert_eq!((tensor.as_str(), index), ("weight", 1));
            }
            other => panic!("{other:?}"),
        }
        // The macro refuses such a model while compiling; at start-up it
        // skips the pass (init stays flat in model size).
        assert!(LambdaHandler::from_embedded(bytes).is_ok());
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
    fn every_entry_point_gives_the_same_numbers() {
        // A batch through `handle` and the same batch as a raw event and as
        // an HTTP body answer identical predictions: one path.
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
            let handled = h
                .handle(&LambdaRequest::batch(&rows))
                .unwrap_or_else(|e| panic!("{e}"));
            let direct = json(h.respond(event.as_bytes()));
            let http_event = serde_json::json!({"requestContext": {}, "body": event}).to_string();
            let http = json(h.respond(http_event.as_bytes()));
            let http_body: serde_json::Value =
                serde_json::from_str(http["body"].as_str().unwrap_or_default()).unwrap_or_default();
            let handled: serde_json::Value =
                serde_json::from_str(&serde_json::to_string(&handled).unwrap_or_default())
                    .unwrap_or_default();
            assert_eq!(handled["predictions"], direct["predictions"]);
            assert_eq!(handled["predictions"], http_body["predictions"]);
            assert_eq!(direct["predictions"].as_array().map(Vec::len), Some(7));
        }
    }

    #[test]
    fn batch_rows_match_single_rows() {
        let h = handler(MULTICLASS);
        let rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]];
        let response = h
            .handle(&LambdaRequest::batch(rows))
            .unwrap_or_else(|e| panic!("{e}"));
        let Predictions::Batch(batch) = &response.predictions else {
            panic!("{response:?}")
        };
        for (row, answer) in rows.iter().zip(batch) {
            let alone = h.handle(&single(row)).unwrap_or_else(|e| panic!("{e}"));
            let Predictions::Single(expected) = alone.predictions else {
                panic!()
            };
            assert_eq!(answer.prediction, expected.prediction);
            for (a, b) in answer.outputs.iter().zip(&expected.outputs) {
                assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn bad_rows_are_rejected_before_inference() {
        let h = handler(LINEAR).with_max_batch(2);
        let cases: Vec<(LambdaRequest, &str)> = vec![
            (single(&[1.0, 2.0]), "FeatureCount"),
            (single(&[1.0, f32::NAN, 3.0]), "NonFinite"),
            (LambdaRequest::batch(Vec::<Vec<f32>>::new()), "EmptyBatch"),
            (LambdaRequest::batch(vec![vec![0.0; 3]; 3]), "BatchTooLarge"),
            (
                LambdaRequest::batch([[0.0; 3], [f32::INFINITY, 0.0, 0.0]]),
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
            .handle(&LambdaRequest::batch([&[0.0; 3][..], &[1.0; 4][..]]))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("instance 1 has 4 features, but the model takes 3")
        );
        let err = h
            .handle(&LambdaRequest::batch([[0.0; 3], [1.0, 2.0, f32::NAN]]))
            .err();
        assert!(matches!(
            err,
            Some(LambdaError::NonFinite {
                instance: Some(1),
                index: 2
            })
        ));
    }

    #[test]
    fn huge_finite_features_are_non_finite_outputs_not_answers() {
        let h = handler(LINEAR);
        let r = h.respond(br#"{"features":[3e38,3e38,3e38]}"#);
        assert!(
            matches!(r, Err(LambdaError::NonFiniteOutput { instance: None, .. })),
            "{r:?}"
        );
        let r = h.respond(br#"{"instances":[[1,1,1],[3e38,3e38,3e38]]}"#);
        assert!(
            matches!(
                r,
                Err(LambdaError::NonFiniteOutput {
                    instance: Some(1),
                    ..
                })
            ),
            "{r:?}"
        );
        // 1e400 is valid JSON: a non-finite feature, named.
        let r = h.respond(br#"{"features":[1,1e400,1]}"#);
        assert!(
            matches!(
                r,
                Err(LambdaError::NonFinite {
                    instance: None,
                    index: 1
                })
            ),
            "{r:?}"
        );
    }

    #[test]
    fn the_default_batch_limit_fits_the_response_limit() {
        let h = handler(MULTICLASS);
        assert_eq!(h.max_batch(), 10_000);
        let rows = vec![[1e30f32, -1e30, 1e-30, 5.0]; 10_000];
        let event = serde_json::json!({ "instances": rows }).to_string();
        for raw in [
            event.clone(),
            serde_json::json!({"requestContext": {}, "body": event}).to_string(),
        ] {
            let r = h.respond(raw.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            assert!(!r.is_http_error());
            let bytes = serde_json::to_vec(&r)
                .map(|v| v.len())
                .unwrap_or(usize::MAX);
            assert!(bytes <= limits::MAX_RESPONSE_BYTES, "{bytes}");
        }
    }

    #[test]
    fn responses_over_the_limit_are_refused() {
        // Far above the default limit: the answer would exceed 6 MB.
        let h = handler(MULTICLASS).with_max_batch(100_000);
        let rows = vec![[0.1f32, 0.2, 0.3, 0.4]; 60_000];
        let event = serde_json::json!({ "instances": rows }).to_string();
        match h.respond(event.as_bytes()) {
            Err(LambdaError::ResponseTooLarge { rows, max_rows, .. }) => {
                assert_eq!(rows, 60_000);
                assert!(max_rows < 60_000 && max_rows > 10_000, "{max_rows}");
            }
            other => panic!("{other:?}"),
        }
        let http = serde_json::json!({"requestContext": {}, "body": event}).to_string();
        let r = json(h.respond(http.as_bytes()));
        assert_eq!(r["statusCode"], 413);
        assert!(r["body"]
            .as_str()
            .is_some_and(|b| b.contains("ResponseTooLarge")));
    }

    #[test]
    fn raw_events_are_answered_in_all_three_shapes() {
        let h = handler(LINEAR);
        let (r, outcome) = h.respond_with_outcome(br#"{"features":[1,2,3]}"#);
        assert!(outcome.cold_start);
        assert_eq!(outcome.kind, "single");
        let v = json(r);
        assert!(v["prediction"].is_number(), "{v}");
        assert_eq!(v["outputs"].as_array().map(Vec::len), Some(1));
        assert_eq!(v["cold_start"], true);
        assert!(v.get("probabilities").is_none());

        let (r, outcome) = h.respond_with_outcome(br#"{"instances":[[1,2,3],[0,0,0]]}"#);
        assert!(!outcome.cold_start);
        assert_eq!(outcome.rows, 2);
        let v = json(r);
        assert_eq!(v["predictions"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["cold_start"], false);

        let r = h.respond(
            br#"{"requestContext":{"http":{"method":"POST"}},"body":"{\"features\":[1,2,3]}","isBase64Encoded":false}"#,
        );
        let Ok(InvocationResponse::Http(http)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(http.status_code, 200);
        let body: serde_json::Value = serde_json::from_str(&http.body).unwrap_or_default();
        assert!(body["prediction"].is_number());

        for (event, status, error_type) in [
            (
                &br#"{"requestContext":{},"body":"{\"features\":[1,2]}"}"#[..],
                400,
                "FeatureCount",
            ),
            (
                br#"{"requestContext":{},"body":"x","isBase64Encoded":"no"}"#,
                400,
                "MalformedEvent",
            ),
            (
                br#"{"requestContext":{},"body":{"features":[1,2,3]}}"#,
                400,
                "MalformedEvent",
            ),
            (br#"{"requestContext":{},"body":7}"#, 400, "MalformedEvent"),
        ] {
            let r = h.respond(event);
            let Ok(InvocationResponse::Http(http)) = r else {
                panic!("{r:?}")
            };
            assert_eq!(http.status_code, status);
            assert!(http.body.contains(error_type), "{}", http.body);
        }

        let r = h.respond(b"{oops");
        assert!(matches!(r, Err(LambdaError::MalformedEvent { .. })));
    }

    #[test]
    fn concurrent_invocations_answer_their_own_rows() {
        let h = handler(MULTICLASS);
        let expected: Vec<serde_json::Value> = (0..16)
            .map(|i| {
                let row = [i as f32 * 0.5, 3.0, 1.0 + i as f32 * 0.2, 0.5];
                serde_json::to_value(h.handle(&single(&row)).map(|r| r.predictions).ok())
                    .unwrap_or_default()
            })
            .collect();
        std::thread::scope(|s| {
            for t in 0..4 {
                let (h, expected) = (&h, &expected);
                s.spawn(move || {
                    for round in 0..200 {
                        let i = (round * 7 + t) % 16;
                        let row = [i as f32 * 0.5, 3.0, 1.0 + i as f32 * 0.2, 0.5];
                        let got = serde_json::to_value(
                            h.handle(&single(&row)).map(|r| r.predictions).ok(),
                        )
                        .unwrap_or_default();
                        assert_eq!(got, expected[i]);
                    }
                });
            }
        });
    }
}
