//! AWS Lambda's payload limits, and the batch sizes they allow a model.
//!
//! A synchronous invocation's response may be at most
//! [`MAX_RESPONSE_BYTES`]; Lambda rejects a larger one and the caller sees a
//! generic failure (a 502 through a Function URL). The handler never posts
//! one: it answers `ResponseTooLarge` (HTTP 413 for HTTP events) instead.
//! To make that error one that a default configuration never meets, the
//! default `max_batch` is derived from the model: [`default_max_batch`] rows
//! always fit, whatever values they hold, direct or through a Function URL
//! (for any model whose one row fits; a model with hundreds of thousands of
//! outputs per row may not even fit one, and gets `ResponseTooLarge`).
//!
//! The budget is computed here, outside the `lambda` feature, so that the
//! `#[apr_lambda]` attribute can check an explicit `max_batch` while the
//! crate compiles.

use crate::model::Model;

/// The largest response payload Lambda accepts from a function, as the
/// service enforces it: 6 291 556 bytes (documented as "6 MB"; the figure
/// is the one Lambda's own error message quotes).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;

/// The largest request payload of a synchronous invocation (6 MB).
pub const MAX_REQUEST_BYTES: usize = 6_291_456;

/// The batch limit when the model allows it: at most this many rows per
/// event, even when many more would fit in a response.
pub const DEFAULT_MAX_BATCH: usize = 10_000;

/// The most bytes `serde_json` writes for one finite `f32` (`ryu`'s
/// shortest form, e.g. `-1.1754944e-38`), with a margin.
const MAX_F32_BYTES: usize = 16;

/// The most bytes the latency and cold-start fields of a response take
/// (`,"cold_start":false,"latency_ms":` and an `f64`).
const RESPONSE_TAIL_BYTES: usize = 64;

/// The most bytes the HTTP envelope around a Function URL response body
/// takes (`{"statusCode":413,"headers":{"content-type":"application/json"},"body":"`...`","isBase64Encoded":false}`).
const HTTP_ENVELOPE_BYTES: usize = 128;

/// The worst-case JSON size of one row's answer, as an element of a batch
/// response (`{"prediction":…,"probabilities":[…],"outputs":[…]}` and its
/// separating comma), for a model with `n_outputs` outputs of which
/// `classes` are classes (`None` for regression), once escaped inside the
/// `body` string of an HTTP response (each `"` becomes `\"`), which is the
/// larger of the two forms.
pub fn worst_case_row_bytes(n_outputs: usize, classes: Option<usize>) -> usize {
    let floats = |n: usize| n.saturating_mul(MAX_F32_BYTES + 1).saturating_add(2);
    // "prediction": a class index, one value, or the array of outputs.
    let prediction = match classes {
        Some(k) => decimal_digits(k),
        None if n_outputs == 1 => MAX_F32_BYTES,
        None => floats(n_outputs),
    };
    let keys_and_punctuation = r#"{"prediction":,"probabilities":,"outputs":},"#.len();
    let quotes = 6; // the three keys' quotes, each escaped once more in HTTP bodies
    let probabilities = if classes.is_some() {
        floats(n_outputs.max(2))
    } else {
        0
    };
    keys_and_punctuation
        .saturating_add(quotes)
        .saturating_add(prediction)
        .saturating_add(probabilities)
        .saturating_add(floats(n_outputs))
}

/// The worst-case size of a whole batch response of `rows` rows.
pub fn worst_case_response_bytes(model: &Model<'_>, rows: usize) -> usize {
    let envelope = r#"{"predictions":[]"#.len() + RESPONSE_TAIL_BYTES + HTTP_ENVELOPE_BYTES;
    rows.saturating_mul(row_bytes(model))
        .saturating_add(envelope)
}

/// The most rows whose answers always fit in [`MAX_RESPONSE_BYTES`],
/// whatever their values, direct or as the body of an HTTP response.
/// At least 1.
pub fn max_batch_that_fits(model: &Model<'_>) -> usize {
    let envelope = worst_case_response_bytes(model, 0);
    (MAX_RESPONSE_BYTES.saturating_sub(envelope) / row_bytes(model).max(1)).max(1)
}

/// The batch limit a handler uses when none is configured: the smaller of
/// [`DEFAULT_MAX_BATCH`] and [`max_batch_that_fits`].
pub fn default_max_batch(model: &Model<'_>) -> usize {
    DEFAULT_MAX_BATCH.min(max_batch_that_fits(model))
}

fn row_bytes(model: &Model<'_>) -> usize {
    worst_case_row_bytes(model.n_outputs(), model.n_classes())
        .saturating_add(model.labels().map_or(0, worst_case_label_bytes))
}

/// The worst-case size of a row's `,"label":"…"`, with the longest label:
/// a control character is escaped as `\u00XX` (6 bytes per byte), and
/// escaped once more inside an HTTP body (7).
fn worst_case_label_bytes(labels: &[String]) -> usize {
    let longest = labels.iter().map(String::len).max().unwrap_or(0);
    r#","label":"""#.len().saturating_add(4).saturating_add(longest.saturating_mul(7))
}

/// The number of decimal digits of the largest class index below `k`.
fn decimal_digits(k: usize) -> usize {
    let mut largest = k.saturating_sub(1);
    let mut digits = 1;
    while largest >= 10 {
        largest /= 10;
        digits += 1;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_f32_needs_more_than_the_budgeted_bytes() {
        // Every exponent, with mantissas that need all nine digits.
        let mut longest = 0;
        for bits in (0u32..=u32::MAX).step_by(65_521) {
            let v = f32::from_bits(bits);
            if v.is_finite() {
                let text = serde_json::to_string(&v).unwrap_or_default();
                longest = longest.max(text.len());
            }
        }
        for v in [
            f32::MIN,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            -1.175_494_4e-38,
        ] {
            longest = longest.max(serde_json::to_string(&v).unwrap_or_default().len());
        }
        assert!(longest <= MAX_F32_BYTES, "{longest}");
        assert!(longest >= 14, "the sweep should meet long forms: {longest}");
    }

    #[test]
    fn digits() {
        assert_eq!(decimal_digits(0), 1);
        assert_eq!(decimal_digits(10), 1);
        assert_eq!(decimal_digits(11), 2);
        assert_eq!(decimal_digits(1000), 3);
    }

    #[test]
    fn more_outputs_mean_fewer_rows() {
        let small = worst_case_row_bytes(3, Some(3));
        let large = worst_case_row_bytes(300, Some(300));
        assert!(small < large);
        assert!(worst_case_row_bytes(1, None) < small);
    }
}
