//! The one request type, and the decoder from a raw event to it.
//!
//! Three event shapes reach the function:
//!
//! - one row: `{"features": [5.1, 3.5, 1.4, 0.2]}`;
//! - a batch: `{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}`;
//! - either of those as the `body` of a Lambda Function URL or API Gateway
//!   HTTP API (payload 2.0) event, possibly base64 (`isBase64Encoded`),
//!   answered with an HTTP-shaped response.
//!
//! Each decodes straight into a [`LambdaRequest`]: every row back to back in
//! one `Vec<f32>` (no allocation per row), in one pass over the event (two
//! for an HTTP body, whose envelope is parsed first; and once more, on a
//! copy, when the event holds a number beyond the `f64` range). Nothing of
//! the input is copied into an error beyond a short escaped excerpt
//! ([`excerpt`](super::error::excerpt)), so a hostile event costs no more
//! than it sends.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::error::{describe_names, excerpt, LambdaError};
use crate::model::Model;

/// A prediction request: one row (`{"features": [...]}`) or a batch of rows
/// (`{"instances": [[...], ...]}`), the rows stored back to back.
///
/// Every entry point decodes into this one type: the Lambda event decoder,
/// local mode, the CLI's `predict`, and `serde` (it implements
/// [`Deserialize`] from either JSON shape). Feature values are JSON numbers;
/// the strings `"NaN"`, `"Infinity"` and `"-Infinity"` are accepted too, and
/// so are numbers beyond the `f32` range, so that all of them can be
/// rejected as [`LambdaError::NonFinite`] naming the feature. Numbers beyond
/// even the `f64` range (`1e400`) are accepted by
/// [`from_json`](Self::from_json) and the function's own decoder, not through
/// `serde_json::from_str`, where `serde_json` refuses them first.
///
/// ```
/// use apr_runtime::lambda::LambdaRequest;
///
/// let one: LambdaRequest = serde_json::from_str(r#"{"features": [1, 2.5]}"#)?;
/// assert_eq!(one, LambdaRequest::single(vec![1.0, 2.5]));
/// let two = LambdaRequest::from_json(br#"{"instances": [[1, 2], [3, 4]]}"#)?;
/// assert_eq!(two.len(), 2);
/// assert_eq!(two.row(1), Some(&[3.0, 4.0][..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaRequest {
    /// Every row's values, back to back.
    values: Vec<f32>,
    /// Row `i` is `values[row_ends[i - 1]..row_ends[i]]`.
    row_ends: Vec<usize>,
    /// `instances` (a batch) rather than `features` (one row).
    batch: bool,
}

impl LambdaRequest {
    /// One row: what `{"features": [...]}` decodes to.
    pub fn single(features: impl Into<Vec<f32>>) -> Self {
        let values = features.into();
        let row_ends = vec![values.len()];
        LambdaRequest {
            values,
            row_ends,
            batch: false,
        }
    }

    /// A batch: what `{"instances": [[...], ...]}` decodes to.
    pub fn batch<R: AsRef<[f32]>>(rows: impl IntoIterator<Item = R>) -> Self {
        let mut values = Vec::new();
        let mut row_ends = Vec::new();
        for row in rows {
            values.extend_from_slice(row.as_ref());
            row_ends.push(values.len());
        }
        LambdaRequest {
            values,
            row_ends,
            batch: true,
        }
    }

    /// Decodes a direct event, `{"features": [...]}` or
    /// `{"instances": [[...], ...]}` (HTTP events are answered by
    /// [`LambdaHandler::respond`](super::LambdaHandler::respond)).
    ///
    /// # Errors
    /// [`LambdaError::MalformedEvent`], naming what is wrong and where,
    /// quoting at most a short excerpt of the input.
    pub fn from_json(json: &[u8]) -> Result<Self, LambdaError> {
        parse_envelope(json, "the event", None)?.into_request("the event")
    }

    /// [`from_json`](Self::from_json) for `model`: when the model has
    /// feature names ([`Model::feature_names`]), rows may also be objects
    /// keyed by name, `{"features": {"sepal_length": 5.1, ...}}`, decoded
    /// into the model's feature order.
    ///
    /// # Errors
    /// As [`from_json`](Self::from_json), plus
    /// [`LambdaError::UnknownFeature`] and [`LambdaError::MissingFeature`]
    /// for an object row that does not name exactly the model's features.
    pub fn from_json_for(json: &[u8], model: &Model<'_>) -> Result<Self, LambdaError> {
        parse_envelope(json, "the event", Some(model))?.into_request("the event")
    }

    /// Whether this is a batch (`instances`), even of one row.
    pub fn is_batch(&self) -> bool {
        self.batch
    }

    /// The number of rows (1 for a single row).
    pub fn len(&self) -> usize {
        self.row_ends.len()
    }

    /// Whether a batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.row_ends.is_empty()
    }

    /// Row `i`, or `None` when `i >= len()`.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        let end = *self.row_ends.get(i)?;
        let start = match i.checked_sub(1) {
            Some(prev) => *self.row_ends.get(prev)?,
            None => 0,
        };
        self.values.get(start..end)
    }

    /// Every row's values, back to back.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Checks the request's shape against a model taking `n_features`
    /// features and a batch limit of `max_batch` rows: the one validation
    /// every entry point goes through (values are checked for finiteness by
    /// the model itself, which reports the row and feature).
    pub(crate) fn check_shape(
        &self,
        n_features: usize,
        max_batch: usize,
    ) -> Result<(), LambdaError> {
        if self.batch {
            if self.row_ends.is_empty() {
                return Err(LambdaError::EmptyBatch);
            }
            if self.row_ends.len() > max_batch {
                return Err(LambdaError::BatchTooLarge {
                    rows: self.row_ends.len(),
                    max: max_batch,
                });
            }
        }
        let mut start = 0;
        for (i, &end) in self.row_ends.iter().enumerate() {
            let found = end.saturating_sub(start);
            if found != n_features {
                return Err(LambdaError::FeatureCount {
                    instance: self.batch.then_some(i),
                    expected: n_features,
                    found,
                });
            }
            start = end;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for LambdaRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let failure = Cell::new(None);
        let seed = EnvelopeSeed {
            rows: RowContext {
                model: None,
                failure: &failure,
            },
            skip_rows: false,
            marker: std::marker::PhantomData,
        };
        let envelope = seed.deserialize(deserializer)?;
        envelope
            .into_request("the event")
            .map_err(|e| de::Error::custom(e.to_string()))
    }
}

/// A decoded event: direct rows, or an HTTP event whose body holds them.
#[derive(Debug)]
pub(crate) enum Event {
    /// A direct `features` / `instances` event.
    Direct(LambdaRequest),
    /// A Function URL / API Gateway v2 event: its body, decoded, or why the
    /// body is unusable (answered with HTTP 400, not a Lambda error).
    Http(Result<LambdaRequest, LambdaError>),
}

impl Event {
    /// The event's kind for logs: `single`, `batch` or `http`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Event::Direct(r) if r.is_batch() => "batch",
            Event::Direct(_) => "single",
            Event::Http(_) => "http",
        }
    }
}

/// Decodes a raw event (the Runtime API `/next` body, a local-mode line).
/// `model` names the features, when it has names: object rows are then
/// accepted.
pub(crate) fn decode_event(raw: &[u8], model: Option<&Model<'_>>) -> Result<Event, LambdaError> {
    let envelope = parse_envelope(raw, "the event", model)?;
    if envelope.request_context || (envelope.is_some_body() && !envelope.has_rows()) {
        return Ok(Event::Http(
            http_body(envelope, DEFAULT_NO_BODY_HINT).and_then(|body| {
                parse_envelope(&body, "the request body", model)?.into_request("the request body")
            }),
        ));
    }
    envelope.into_request("the event").map(Event::Direct)
}

/// What the default protocol's HTTP requests must carry.
const DEFAULT_NO_BODY_HINT: &str =
    "POST a JSON body such as {\"features\": [...]} or {\"instances\": [[...]]}";

/// The body of an HTTP event (Function URL, API Gateway HTTP API), base64
/// decoded when it is marked so, or why there is no usable body.
/// `no_body_hint` says what to send instead of no body.
pub(crate) fn http_body<'a>(
    envelope: Envelope<'a>,
    no_body_hint: &str,
) -> Result<Cow<'a, [u8]>, LambdaError> {
    let is_base64 = match envelope.is_base64_encoded {
        Field::Absent | Field::Value(None) => false,
        Field::Value(Some(b)) => b,
        Field::WrongType(found) => {
            return Err(malformed(format!(
                "`isBase64Encoded` must be true or false, found {found}"
            )))
        }
    };
    let body = match envelope.body {
        Field::Value(Some(body)) => body,
        Field::Absent | Field::Value(None) => {
            return Err(malformed(format!(
                "the HTTP request has no body; {no_body_hint}"
            )))
        }
        Field::WrongType(found) => {
            return Err(malformed(format!(
                "the HTTP event's `body` must be a string (the request body), found {found}"
            )))
        }
    };
    if is_base64 {
        base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map(Cow::Owned)
            .map_err(|e| {
                malformed(format!(
                    "the request body is marked isBase64Encoded but is not valid base64: {e}"
                ))
            })
    } else {
        Ok(match body {
            Cow::Borrowed(body) => Cow::Borrowed(body.as_bytes()),
            Cow::Owned(body) => Cow::Owned(body.into_bytes()),
        })
    }
}

/// Parses `raw` as an event object. Numbers beyond the `f64` range
/// (`1e400`), which `serde_json` refuses, are valid JSON: on that error the
/// input is copied once with each such number replaced by an `f64` that is
/// still beyond the `f32` range, so it decodes as an infinity and is
/// reported as [`LambdaError::NonFinite`].
pub(crate) fn parse_envelope<'a>(
    raw: &'a [u8],
    what: &str,
    model: Option<&Model<'_>>,
) -> Result<Envelope<'a>, LambdaError> {
    let failure = Cell::new(None);
    let rows = RowContext {
        model,
        failure: &failure,
    };
    // A typed failure (an unknown feature, ...) recorded while decoding
    // wins over serde's message for it.
    let fail = |e: &serde_json::Error| failure.take().unwrap_or_else(|| json_error(e, what));
    match parse_with(raw, rows, false) {
        Ok(envelope) => Ok(envelope),
        Err(e) if is_out_of_range(&e) => {
            let tamed = tame_huge_numbers(raw);
            // The envelope borrows strings from its input; `tamed` is local,
            // so parse again into owned strings.
            match parse_with(&tamed, rows, false) {
                Ok(envelope) => Ok(envelope.into_owned()),
                Err(e) => Err(fail(&e)),
            }
        }
        Err(e) => Err(fail(&e)),
    }
}

/// The HTTP fields of `raw` (`requestContext`, `body`, `isBase64Encoded`),
/// for a typed handler: whatever else the event holds is skipped.
pub(crate) fn parse_http_envelope(raw: &[u8]) -> Result<Envelope<'_>, LambdaError> {
    let failure = Cell::new(None);
    let rows = RowContext {
        model: None,
        failure: &failure,
    };
    parse_with(raw, rows, true).map_err(|e| json_error(&e, "the event"))
}

/// One pass of `serde_json` over `raw` with the envelope's seed.
fn parse_with<'a>(
    raw: &'a [u8],
    rows: RowContext<'_>,
    skip_rows: bool,
) -> Result<Envelope<'a>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    let envelope = EnvelopeSeed {
        rows,
        skip_rows,
        marker: std::marker::PhantomData,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(envelope)
}

/// What row decoding knows of the model (its feature names, for object
/// rows), and where it leaves a typed failure for [`parse_envelope`].
#[derive(Clone, Copy)]
struct RowContext<'c> {
    model: Option<&'c Model<'c>>,
    failure: &'c Cell<Option<LambdaError>>,
}

impl RowContext<'_> {
    /// Records `err` and returns the serde error that stops decoding.
    fn fail<E: de::Error>(self, err: LambdaError) -> E {
        let message = err.to_string();
        self.failure.set(Some(err));
        E::custom(message)
    }
}

fn is_out_of_range(e: &serde_json::Error) -> bool {
    e.is_syntax() && e.to_string().starts_with("number out of range")
}

/// `raw` with every JSON number token outside strings whose value overflows
/// `f64` rewritten, in place and at the same length, as `[-]1e00…0099`
/// (1e99: finite as `f64`, infinite as `f32`). Underflows already parse as 0.
fn tame_huge_numbers(raw: &[u8]) -> Vec<u8> {
    let mut out = raw.to_vec();
    let mut i = 0;
    let n = out.len();
    while i < n {
        match out[i] {
            b'"' => {
                // Skip the string, escapes included.
                i += 1;
                while i < n && out[i] != b'"' {
                    i += if out[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < n && matches!(out[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                let token = &out[start..i];
                let overflows = std::str::from_utf8(token)
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
                    .is_some_and(f64::is_infinite);
                let body = usize::from(token.first() == Some(&b'-'));
                if overflows && token.len() >= body + 4 {
                    let digits = &mut out[start + body..i];
                    let len = digits.len();
                    digits.fill(b'0');
                    digits[0] = b'1';
                    digits[1] = b'e';
                    digits[len - 2] = b'9';
                    digits[len - 1] = b'9';
                }
            }
            _ => i += 1,
        }
    }
    out
}

fn json_error(e: &serde_json::Error, what: &str) -> LambdaError {
    let reason = match e.classify() {
        serde_json::error::Category::Data => format!("{what} has the wrong shape: {e}"),
        _ => format!("{what} is not valid JSON: {e}"),
    };
    malformed(reason)
}

fn malformed(reason: impl Into<String>) -> LambdaError {
    LambdaError::malformed(reason)
}

/// A field of the HTTP envelope, which may be absent or of the wrong type
/// (answered with HTTP 400 naming it, not a Lambda error).
#[derive(Default)]
enum Field<T> {
    #[default]
    Absent,
    Value(Option<T>),
    WrongType(&'static str),
}

/// Every key the function reads from an event, at any level.
#[derive(Default)]
pub(crate) struct Envelope<'a> {
    features: Option<Vec<f32>>,
    instances: Option<(Vec<f32>, Vec<usize>)>,
    body: Field<Cow<'a, str>>,
    is_base64_encoded: Field<bool>,
    pub(crate) request_context: bool,
}

impl Envelope<'_> {
    fn has_rows(&self) -> bool {
        self.features.is_some() || self.instances.is_some()
    }

    fn is_some_body(&self) -> bool {
        !matches!(self.body, Field::Absent)
    }

    fn into_owned(self) -> Envelope<'static> {
        Envelope {
            features: self.features,
            instances: self.instances,
            body: match self.body {
                Field::Absent => Field::Absent,
                Field::Value(v) => Field::Value(v.map(|s| Cow::Owned(s.into_owned()))),
                Field::WrongType(t) => Field::WrongType(t),
            },
            is_base64_encoded: self.is_base64_encoded,
            request_context: self.request_context,
        }
    }

    fn into_request(self, what: &str) -> Result<LambdaRequest, LambdaError> {
        match (self.features, self.instances) {
            (Some(features), None) => Ok(LambdaRequest::single(features)),
            (None, Some((values, row_ends))) => Ok(LambdaRequest {
                values,
                row_ends,
                batch: true,
            }),
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

/// Decodes an [`Envelope`], rows included.
struct EnvelopeSeed<'a, 'c> {
    rows: RowContext<'c>,
    /// Skip `features` and `instances` (a typed handler's event, of which
    /// only the HTTP fields are read here).
    skip_rows: bool,
    marker: std::marker::PhantomData<&'a ()>,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for EnvelopeSeed<'a, '_> {
    type Value = Envelope<'a>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for EnvelopeSeed<'a, '_> {
    type Value = Envelope<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTING_EVENT)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Err(E::custom(format_args!(
            "expected {EXPECTING_EVENT}, found the string {}",
            excerpt(v)
        )))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut envelope = Envelope::default();
        while let Some(key) = map.next_key::<EventKey>()? {
            match key {
                EventKey::Features | EventKey::Instances if self.skip_rows => {
                    map.next_value::<IgnoredAny>()?;
                }
                EventKey::Features => {
                    if envelope.features.is_some() {
                        return Err(de::Error::duplicate_field("features"));
                    }
                    let mut row = Vec::new();
                    map.next_value_seed(AppendRow {
                        values: &mut row,
                        rows: self.rows,
                        instance: None,
                    })?;
                    envelope.features = Some(row);
                }
                EventKey::Instances => {
                    if envelope.instances.is_some() {
                        return Err(de::Error::duplicate_field("instances"));
                    }
                    envelope.instances = Some(map.next_value_seed(FlatRows { rows: self.rows })?);
                }
                EventKey::Body => {
                    envelope.body = match map.next_value::<Loose<BodyStr<'a>>>()? {
                        Loose::Value(v) => Field::Value(v.map(|b| b.0)),
                        Loose::WrongType(t) => Field::WrongType(t),
                    };
                }
                EventKey::IsBase64Encoded => {
                    envelope.is_base64_encoded = match map.next_value::<Loose<bool>>()? {
                        Loose::Value(v) => Field::Value(v),
                        Loose::WrongType(t) => Field::WrongType(t),
                    };
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

/// A value of type `T`, `null`, or anything else (whose JSON kind is kept
/// for the error), read without failing the whole event.
enum Loose<T> {
    Value(Option<T>),
    WrongType(&'static str),
}

/// Values [`Loose`] can hold.
trait LooseValue<'de>: Sized {
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
    fn from_str(_: &str) -> Option<Self> {
        None
    }
    fn from_borrowed_str(s: &'de str) -> Option<Self> {
        Self::from_str(s)
    }
    fn from_string(s: String) -> Option<Self> {
        Self::from_str(&s)
    }
}

impl LooseValue<'_> for bool {
    fn from_bool(b: bool) -> Option<Self> {
        Some(b)
    }
}

/// The request body, borrowed from the event when it has no escapes.
struct BodyStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> LooseValue<'de> for BodyStr<'a> {
    fn from_str(s: &str) -> Option<Self> {
        Some(BodyStr(Cow::Owned(s.to_owned())))
    }
    fn from_borrowed_str(s: &'de str) -> Option<Self> {
        Some(BodyStr(Cow::Borrowed(s)))
    }
    fn from_string(s: String) -> Option<Self> {
        Some(BodyStr(Cow::Owned(s)))
    }
}

impl<'de, T: LooseValue<'de>> Deserialize<'de> for Loose<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LooseVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: LooseValue<'de>> Visitor<'de> for LooseVisitor<T> {
            type Value = Loose<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Loose::Value(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Loose::Value(None))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(
                    T::from_bool(v)
                        .map_or(Loose::WrongType("a boolean"), |v| Loose::Value(Some(v))),
                )
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Loose::WrongType("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Loose::WrongType("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Loose::WrongType("a number"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(T::from_str(v).map_or(Loose::WrongType("a string"), |v| Loose::Value(Some(v))))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(T::from_borrowed_str(v)
                    .map_or(Loose::WrongType("a string"), |v| Loose::Value(Some(v))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(T::from_string(v)
                    .map_or(Loose::WrongType("a string"), |v| Loose::Value(Some(v))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::WrongType("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::WrongType("an object"))
            }
        }
        deserializer.deserialize_any(LooseVisitor(std::marker::PhantomData))
    }
}

/// The JSON kind of a value a visitor did not expect, for error messages;
/// strings are quoted as a bounded excerpt.
fn found_string<E: de::Error>(v: &str, expected: &str) -> E {
    E::custom(format_args!(
        "expected {expected}, found the string {}",
        excerpt(v)
    ))
}

/// Appends one row of feature values to `values`: an array of numbers, or
/// (for a model with feature names) an object keyed by name.
struct AppendRow<'v, 'c> {
    values: &'v mut Vec<f32>,
    rows: RowContext<'c>,
    /// The row's index in `instances`; `None` for `features`.
    instance: Option<usize>,
}

const EXPECTING_ROW: &str = "an array of numbers (one row of features)";

impl<'de> DeserializeSeed<'de> for AppendRow<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        // `deserialize_any`, not `_seq`: serde_json's own type error would
        // quote a whole string value.
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AppendRow<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rows.model.and_then(Model::feature_names) {
            Some(_) => f.write_str(
                "an array of numbers or an object of named numbers (one row of features)",
            ),
            None => f.write_str(EXPECTING_ROW),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        Err(found_string(v, EXPECTING_ROW))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(FeatureValue(v)) = seq.next_element()? {
            self.values.push(v);
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((model, names)) = self
            .rows
            .model
            .and_then(|model| Some((model, model.feature_names()?)))
        else {
            return Err(de::Error::custom(format_args!(
                "{} is an object, but this model has no feature names: send each row as an \
                 array of numbers, in the model's feature order",
                describe_row(self.instance)
            )));
        };
        let start = self.values.len();
        self.values.resize(start + names.len(), 0.0);
        let row = self.values.get_mut(start..).unwrap_or_default();
        let mut seen = vec![false; names.len()];
        while let Some(position) = map.next_key_seed(FeatureKey {
            model,
            rows: self.rows,
            instance: self.instance,
        })? {
            let FeatureValue(value) = map.next_value()?;
            match (seen.get_mut(position), row.get_mut(position)) {
                (Some(seen), Some(slot)) if !*seen => {
                    *seen = true;
                    *slot = value;
                }
                _ => {
                    return Err(de::Error::custom(format_args!(
                        "{} gives the feature `{}` twice",
                        describe_row(self.instance),
                        names.get(position).map_or("?", String::as_str)
                    )))
                }
            }
        }
        match seen.iter().position(|seen| !seen) {
            Some(missing) => Err(self.rows.fail(LambdaError::MissingFeature {
                instance: self.instance,
                name: names.get(missing).cloned().unwrap_or_default(),
            })),
            None => Ok(()),
        }
    }
}

fn describe_row(instance: Option<usize>) -> String {
    match instance {
        Some(i) => format!("instance {i}"),
        None => "the `features` row".to_owned(),
    }
}

/// A key of an object row: the position of the feature it names.
struct FeatureKey<'c> {
    model: &'c Model<'c>,
    rows: RowContext<'c>,
    instance: Option<usize>,
}

impl<'de> DeserializeSeed<'de> for FeatureKey<'_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for FeatureKey<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a feature name")
    }
    fn visit_str<E: de::Error>(self, name: &str) -> Result<usize, E> {
        self.model.feature_index(name).ok_or_else(|| {
            self.rows.fail(LambdaError::UnknownFeature {
                instance: self.instance,
                name: excerpt(name),
                expected: describe_names(self.model.feature_names().unwrap_or_default()),
            })
        })
    }
}

/// Reads `[[...], [...], ...]` into one flat vector and the row ends.
struct FlatRows<'c> {
    rows: RowContext<'c>,
}

const EXPECTING_ROWS: &str = "an array of rows, each an array of numbers";

impl<'de> DeserializeSeed<'de> for FlatRows<'_> {
    type Value = (Vec<f32>, Vec<usize>);
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FlatRows<'_> {
    type Value = (Vec<f32>, Vec<usize>);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTING_ROWS)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Err(found_string(v, EXPECTING_ROWS))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::new();
        let mut row_ends = Vec::new();
        while seq
            .next_element_seed(AppendRow {
                values: &mut values,
                rows: self.rows,
                instance: Some(row_ends.len()),
            })?
            .is_some()
        {
            row_ends.push(values.len());
        }
        Ok((values, row_ends))
    }
}

/// One feature: a JSON number, `null` (missing: NaN), or `"NaN"` /
/// `"Infinity"` / `"-Infinity"`.
/// Numbers beyond the `f32` range become infinities (rejected later as
/// non-finite, with their position).
struct FeatureValue(f32);

impl<'de> Deserialize<'de> for FeatureValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl Visitor<'_> for ValueVisitor {
            type Value = FeatureValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or null")
            }
            #[allow(
                clippy::cast_possible_truncation,
                reason = "`as` saturates to ±infinity beyond the f32 range: rejected later as NonFinite"
            )]
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<FeatureValue, E> {
                Ok(FeatureValue(v as f32))
            }
            #[allow(clippy::cast_precision_loss, reason = "features are f32")]
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FeatureValue, E> {
                Ok(FeatureValue(v as f32))
            }
            #[allow(clippy::cast_precision_loss, reason = "features are f32")]
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FeatureValue, E> {
                Ok(FeatureValue(v as f32))
            }
            /// `null` is a missing value (NaN): tree ensembles send it down
            /// each node's missing-value branch, other models refuse it.
            fn visit_unit<E: de::Error>(self) -> Result<FeatureValue, E> {
                Ok(FeatureValue(f32::NAN))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FeatureValue, E> {
                match v {
                    "NaN" | "nan" => Ok(FeatureValue(f32::NAN)),
                    "Infinity" | "inf" | "+Infinity" => Ok(FeatureValue(f32::INFINITY)),
                    "-Infinity" | "-inf" => Ok(FeatureValue(f32::NEG_INFINITY)),
                    other => Err(found_string(other, "a number")),
                }
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(raw: &str) -> Result<LambdaRequest, LambdaError> {
        match decode_event(raw.as_bytes(), None)? {
            Event::Direct(rows) => Ok(rows),
            Event::Http(_) => panic!("decoded {raw} as an HTTP event"),
        }
    }

    fn http(raw: &str) -> Result<LambdaRequest, LambdaError> {
        match decode_event(raw.as_bytes(), None) {
            Ok(Event::Http(rows)) => rows,
            other => panic!("decoded {raw} as {other:?}"),
        }
    }

    #[test]
    fn single_and_batch_events_decode_flat() {
        assert_eq!(
            direct(r#"{"features":[1,2.5,-3e2]}"#).ok(),
            Some(LambdaRequest::single(vec![1.0, 2.5, -300.0]))
        );
        let batch = direct(r#"{"instances":[[1,2],[3],[]]}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(batch.values(), &[1.0, 2.0, 3.0]);
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.row(1), Some(&[3.0][..]));
        assert_eq!(batch.row(2), Some(&[][..]));
        assert_eq!(batch.row(3), None);
        assert_eq!(
            batch,
            LambdaRequest::batch([&[1.0, 2.0][..], &[3.0][..], &[][..]])
        );
        let empty = direct(r#"{"instances":[]}"#).unwrap_or_else(|e| panic!("{e}"));
        assert!(empty.is_batch() && empty.is_empty());
        // Unknown keys are ignored.
        assert!(direct(r#"{"id":"x","features":[1],"meta":{"a":[1,2]}}"#).is_ok());
    }

    #[test]
    fn out_of_range_and_nan_strings_become_non_finite() {
        let row = direct(r#"{"features":[1e39,"NaN","-Infinity",2,1e400,-1e400,1e-400]}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        let v = row.values();
        assert!(v[0].is_infinite());
        assert!(v[1].is_nan());
        assert_eq!(v[2], f32::NEG_INFINITY);
        assert_eq!(v[3], 2.0);
        assert_eq!(v[4], f32::INFINITY);
        assert_eq!(v[5], f32::NEG_INFINITY);
        assert_eq!(v[6], 0.0);
    }

    #[test]
    fn huge_numbers_inside_strings_are_left_alone() {
        let raw = br#"{"note":"1e400","features":[1e400],"x":"\"1e999"}"#;
        let tamed = tame_huge_numbers(raw);
        assert_eq!(tamed.len(), raw.len());
        let text = String::from_utf8_lossy(&tamed);
        assert!(text.contains(r#""note":"1e400""#), "{text}");
        assert!(text.contains("[1e099]"), "{text}");
        assert!(text.contains(r#""\"1e999""#), "{text}");
        let row = direct(std::str::from_utf8(raw).unwrap_or_default());
        assert!(row.is_ok_and(|r| r.values()[0].is_infinite()));
    }

    #[test]
    fn malformed_events_say_what_is_wrong() {
        let cases = [
            ("{\"features\": [1, 2", "not valid JSON"),
            ("not json", "not valid JSON"),
            ("[1,2,3]", "wrong shape"),
            (r#""a string""#, "found the string"),
            (r#"{"features":[1,"a"]}"#, "expected a number"),
            (r#"{"features":"abc"}"#, "found the string \"abc\""),
            (r#"{"instances":"abc"}"#, "found the string \"abc\""),
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
    fn errors_quote_a_bounded_excerpt_of_huge_strings() {
        for unit in ["\u{1}", "é", "a", "\u{7f}"] {
            let huge = unit.repeat(200_000);
            for raw in [
                serde_json::json!({ "features": huge }).to_string(),
                serde_json::json!({ "features": [1, huge] }).to_string(),
                serde_json::json!({ "instances": [[huge]] }).to_string(),
                serde_json::json!(huge).to_string(),
            ] {
                let err = direct(&raw)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                assert!(
                    err.len() < 600,
                    "{} bytes: {}",
                    err.len(),
                    &err[..600.min(err.len())]
                );
                assert!(err.contains("bytes)"), "{err}");
            }
        }
    }

    #[test]
    fn http_events_decode_their_body() {
        let event = r#"{"version":"2.0","rawPath":"/","requestContext":{"http":{"method":"POST"}},"headers":{"content-type":"application/json"},"body":"{\"features\":[1,2]}","isBase64Encoded":false}"#;
        assert_eq!(
            http(event).ok(),
            Some(LambdaRequest::single(vec![1.0, 2.0]))
        );

        let b64 = base64::engine::general_purpose::STANDARD.encode(r#"{"instances":[[1],[2]]}"#);
        let event = format!(r#"{{"requestContext":{{}},"body":"{b64}","isBase64Encoded":true}}"#);
        assert_eq!(
            http(&event).ok(),
            Some(LambdaRequest::batch([[1.0], [2.0]]))
        );
        // A body without requestContext is still an HTTP event.
        assert!(http(r#"{"body":"{\"features\":[3]}"}"#).is_ok());
        // A huge number in the body too.
        let row = http(r#"{"requestContext":{},"body":"{\"features\":[1e400]}"}"#);
        assert!(row.is_ok_and(|r| r.values()[0].is_infinite()));
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
            (r#"{"requestContext":{},"body":null}"#, "no body"),
            (r#"{"requestContext":{},"body":"{}"}"#, "neither"),
            (r#"{"requestContext":{},"body":12}"#, "found a number"),
            (
                r#"{"requestContext":{},"body":{"features":[1]}}"#,
                "found an object",
            ),
            (r#"{"requestContext":{},"body":[1]}"#, "found an array"),
            (
                r#"{"requestContext":{},"body":"{}","isBase64Encoded":"yes"}"#,
                "`isBase64Encoded` must be true or false, found a string",
            ),
            (
                r#"{"requestContext":{},"body":"{}","isBase64Encoded":1}"#,
                "found a number",
            ),
        ];
        for (raw, needle) in cases {
            match http(raw) {
                Err(e) => assert!(e.to_string().contains(needle), "{raw}: {e}"),
                Ok(rows) => panic!("{raw}: decoded {rows:?}"),
            }
        }
    }

    #[test]
    fn shape_checks_name_the_row() {
        let ok = LambdaRequest::batch([[1.0, 2.0], [3.0, 4.0]]);
        assert!(ok.check_shape(2, 2).is_ok());
        assert!(matches!(
            ok.check_shape(2, 1),
            Err(LambdaError::BatchTooLarge { rows: 2, max: 1 })
        ));
        assert!(matches!(
            ok.check_shape(3, 9),
            Err(LambdaError::FeatureCount {
                instance: Some(0),
                expected: 3,
                found: 2
            })
        ));
        assert!(matches!(
            LambdaRequest::batch(Vec::<Vec<f32>>::new()).check_shape(2, 9),
            Err(LambdaError::EmptyBatch)
        ));
        assert!(matches!(
            LambdaRequest::single(vec![1.0]).check_shape(2, 9),
            Err(LambdaError::FeatureCount { instance: None, .. })
        ));
    }

    #[test]
    fn lambda_request_deserializes_both_shapes() {
        let single: LambdaRequest =
            serde_json::from_str(r#"{"features":[1,"NaN"]}"#).unwrap_or_else(|e| panic!("{e}"));
        assert!(!single.is_batch());
        assert!(single.values()[1].is_nan());
        let batch: LambdaRequest =
            serde_json::from_str(r#"{"instances":[[1],[2,3]]}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(batch, LambdaRequest::batch([&[1.0][..], &[2.0, 3.0][..]]));
    }
}
