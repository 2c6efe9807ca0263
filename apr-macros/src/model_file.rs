//! Reading and validating the model file while the user's crate compiles.
//!
//! One parser: the container is checked by `apr_runtime::format::AprFile::parse`
//! and the model by `apr_runtime::model::Model::from_file`, the same code that
//! loads it at run time. Every failure of the file or the model becomes one
//! `syn::Error` at the `model = "..."` literal, whose message starts with the
//! path as written. A `max_batch = N` whose worst-case response exceeds
//! Lambda's response limit (`apr_runtime::limits`) is an error at `N`.

use std::io::ErrorKind;
use std::path::PathBuf;

use apr_runtime::format::{self, AprFile};
use apr_runtime::limits::{max_batch_that_fits, worst_case_response_bytes, MAX_RESPONSE_BYTES};
use apr_runtime::model::{LoadOptions, Model, ModelError};
use proc_macro2::Span;
use syn::LitStr;

use crate::args::{MaxBatch, NameList};

/// What the attribute asserts about the model, besides the file itself.
#[derive(Clone, Copy, Default)]
pub(crate) struct Checks<'a> {
    /// `features = N`.
    pub(crate) features: Option<usize>,
    /// `max_batch = N`.
    pub(crate) max_batch: Option<MaxBatch>,
    /// `labels = [...]`.
    pub(crate) labels: Option<&'a NameList>,
    /// `feature_names = [...]`.
    pub(crate) feature_names: Option<&'a NameList>,
}

/// A validated model, ready to embed.
pub(crate) enum EmbeddedModel {
    /// A v2 container, embedded as it is with `include_bytes!`.
    V2 {
        /// The absolute path of the file (what `include_bytes!` reads).
        absolute_path: String,
    },
    /// A v1 (APRN) or ONNX file converted to v2 here; the converted bytes
    /// are embedded as a literal and the original is still
    /// `include_bytes!`-ed so that editing it rebuilds the crate.
    Converted {
        /// The absolute path of the original file.
        original_path: String,
        /// The v2 container the converter produced.
        converted: Vec<u8>,
    },
}

/// A rule the file, or an argument about it, breaks.
#[derive(Debug)]
enum Broken {
    /// The file, its container or its model, or `features = N`: reported
    /// at the `model = "..."` literal.
    Model(String),
    /// `max_batch = N` is too large for the model: reported at `N`.
    MaxBatch {
        /// The span of the `N` literal.
        span: Span,
        /// The message, after `max_batch = N is too large for <path>: `.
        reason: String,
        /// `N`.
        value: usize,
    },
    /// `labels` or `feature_names` do not fit the model: reported at the array.
    Names {
        /// The span of the array.
        span: Span,
        /// The whole message.
        message: String,
    },
}

/// Reads, validates and (for v1) converts the file named by `model`.
///
/// `features` is the `features = N` the user asserted, if any, and
/// `max_batch` the `max_batch = N`, which must not exceed the rows whose
/// answers always fit in a Lambda response.
pub(crate) fn load(model: &LitStr, checks: Checks<'_>) -> syn::Result<EmbeddedModel> {
    let written = model.value();
    let fail = |rule: String| syn::Error::new(model.span(), format!("{written}: {rule}"));
    // Every rule broken, combined into one error (a model rule and a
    // `max_batch` rule can both be broken).
    let report = |broken: Vec<Broken>, wrap: &dyn Fn(String) -> String| {
        broken
            .into_iter()
            .map(|broken| match broken {
                Broken::Model(rule) => fail(wrap(rule)),
                Broken::MaxBatch {
                    span,
                    reason,
                    value,
                } => syn::Error::new(
                    span,
                    format!("`max_batch = {value}` is too large for {written}: {reason}"),
                ),
                Broken::Names { span, message } => syn::Error::new(span, message),
            })
            .reduce(|mut all, error| {
                all.combine(error);
                all
            })
            // Never empty: `validate_v2` fails with at least one rule.
            .unwrap_or_else(|| fail("the model is invalid".to_owned()))
    };

    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").ok_or_else(|| {
        fail(
            "CARGO_MANIFEST_DIR is not set, so the relative model path cannot be resolved; \
             build with cargo"
                .to_owned(),
        )
    })?;
    let path = PathBuf::from(manifest_dir).join(&written);
    let absolute_path = path
        .to_str()
        .ok_or_else(|| fail("the resolved path is not valid UTF-8".to_owned()))?
        .to_owned();

    let bytes = read_model_file(&path).map_err(fail)?;

    if is_onnx_path(&written) {
        let converted = convert_onnx(&bytes).map_err(&fail)?;
        validate_v2(&converted, checks).map_err(|broken| {
            report(broken, &|rule| {
                format!("the ONNX model converted, but the converted model is invalid: {rule}")
            })
        })?;
        Ok(EmbeddedModel::Converted {
            original_path: absolute_path,
            converted,
        })
    } else if format::is_v1(&bytes) {
        let converted = convert_v1(&bytes).map_err(&fail)?;
        validate_v2(&converted, checks).map_err(|broken| {
            report(broken, &|rule| {
                format!("the v1 file converted, but the converted container is invalid: {rule}")
            })
        })?;
        Ok(EmbeddedModel::Converted {
            original_path: absolute_path,
            converted,
        })
    } else {
        validate_v2(&bytes, checks).map_err(|broken| report(broken, &|rule| rule))?;
        Ok(EmbeddedModel::V2 { absolute_path })
    }
}

/// The file's bytes, or the rule broken: it must exist, be a file and be readable.
fn read_model_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            return Err("is a directory; `model` must name an .apr file".to_owned())
        }
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::NotFound => {
            return Err(
                "the model file does not exist (the path is relative to the directory \
                 of the crate's Cargo.toml, CARGO_MANIFEST_DIR)"
                    .to_owned(),
            )
        }
        Err(error) => return Err(format!("the model file cannot be read: {error}")),
    }
    std::fs::read(path).map_err(|error| format!("the model file cannot be read: {error}"))
}

/// The largest converted v1 model embedded as a byte-string literal. Literal
/// tokens cost the compiler several times their size, unlike
/// `include_bytes!`, so a larger model must be converted once, ahead of time.
const MAX_CONVERTED_V1_LEN: usize = 16 * 1024 * 1024;

/// Whether `path` names an ONNX file (`.onnx`, any case): ONNX protobuf
/// has no magic number, so the extension decides.
fn is_onnx_path(path: &str) -> bool {
    std::path::Path::new(path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// The ONNX -> v2 conversion, with the converter's error as the rule broken.
fn convert_onnx(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let converted = apr_runtime::onnx::convert(bytes)
        .map_err(|error| format!("cannot convert this ONNX model: {error}"))?
        .bytes;
    if converted.len() > MAX_CONVERTED_V1_LEN {
        return Err(format!(
            "this ONNX model converts to {} bytes, more than the {MAX_CONVERTED_V1_LEN} bytes \
             the macro converts while compiling; convert it once with \
             `apr-lambda convert IN OUT` and point `model` at the .apr file",
            converted.len()
        ));
    }
    Ok(converted)
}

/// The v1 -> v2 conversion, with the converter's error as the rule broken.
fn convert_v1(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let converted = format::v1::convert_to_v2(bytes)
        .map_err(|error| format!("cannot convert this v1 (APRN) file to v2: {error}"))?;
    if converted.len() > MAX_CONVERTED_V1_LEN {
        return Err(format!(
            "this v1 (APRN) file converts to {} bytes, more than the {MAX_CONVERTED_V1_LEN} \
             bytes the macro converts while compiling; convert it once with \
             `apr-lambda convert IN OUT` and point `model` at the v2 file",
            converted.len()
        ));
    }
    Ok(converted)
}

/// Every check a v2 container must pass to be served: the container rules,
/// a model family and shapes the runtime supports, `features` when given,
/// and `max_batch` when given. A file that does not hold a model breaks one
/// rule; a model can break both argument rules.
fn validate_v2(bytes: &[u8], checks: Checks<'_>) -> Result<(), Vec<Broken>> {
    let file = AprFile::parse(bytes).map_err(|error| vec![Broken::Model(error.to_string())])?;
    // Names given in the attribute win: the metadata's are then not read
    // (as at run time). Weights are views into `bytes`: loading again is cheap.
    let options = LoadOptions {
        labels_from_metadata: checks.labels.is_none(),
        feature_names_from_metadata: checks.feature_names.is_none(),
        ..LoadOptions::default()
    };
    let load = || {
        Model::from_file_with(&file, options)
            .map_err(|error| vec![Broken::Model(error.to_string())])
    };
    let mut model = load()?;
    let mut broken = Vec::new();
    if let Some(labels) = checks.labels {
        match load()?.with_labels(labels.names.iter().map(String::as_str)) {
            // The labels count in the response size (`max_batch`).
            Ok(labelled) => model = labelled,
            Err(error) => broken.push(names_error("labels", labels, &error)),
        }
    }
    if let Some(names) = checks.feature_names {
        if let Err(error) = load()?.with_feature_names(names.names.iter().map(String::as_str)) {
            broken.push(names_error("feature_names", names, &error));
        }
    }
    let Checks {
        features,
        max_batch,
        ..
    } = checks;
    if let Some(expected) = features {
        let found = model.n_features();
        if found != expected {
            broken.push(Broken::Model(format!(
                "`features = {expected}` was given, but this {} model takes {found} feature{}",
                model.family(),
                plural(found)
            )));
        }
    }
    if let Some(MaxBatch { value, span }) = max_batch {
        if let Err(reason) = check_max_batch(&model, value) {
            broken.push(Broken::MaxBatch {
                span,
                reason,
                value,
            });
        }
    }
    if broken.is_empty() {
        Ok(())
    } else {
        Err(broken)
    }
}

/// The error at a `labels` or `feature_names` array that does not fit the model.
fn names_error(argument: &str, list: &NameList, error: &ModelError) -> Broken {
    let message = match error {
        ModelError::LabelCount {
            found,
            classes: Some(classes),
            family,
            ..
        } => format!(
            "`labels` has {found} name{}, but this {family} model has {classes} class{}",
            plural(*found),
            if *classes == 1 { "" } else { "es" }
        ),
        ModelError::LabelCount {
            found,
            classes: None,
            family,
            n_outputs,
            ..
        } => format!(
            "`labels` has {found} name{}, but this {family} model predicts no class \
             ({n_outputs} output{} per row, 0 classes): labels go on classifiers and k-means models",
            plural(*found),
            plural(*n_outputs)
        ),
        ModelError::FeatureNameCount {
            found, expected, ..
        } => format!(
            "`feature_names` has {found} name{}, but this model takes {expected} feature{}",
            plural(*found),
            plural(*expected)
        ),
        ModelError::DuplicateFeatureName { name, .. } => {
            format!("`feature_names` names `{name}` twice; feature names must be distinct")
        }
        other => format!("`{argument}` does not fit the model: {other}"),
    };
    Broken::Names {
        span: list.span,
        message,
    }
}

/// `Ok` when the answers to `max_batch` rows of `model` always fit in a
/// Lambda response, whatever values they hold; otherwise why not, and the
/// largest `max_batch` that does.
fn check_max_batch(model: &Model<'_>, max_batch: usize) -> Result<(), String> {
    let fits = max_batch_that_fits(model);
    if max_batch <= fits {
        return Ok(());
    }
    let outputs = model.n_outputs();
    Err(format!(
        "the response to {max_batch} rows of this {} model ({outputs} output{} per row) \
         can take up to {} bytes, more than Lambda's {MAX_RESPONSE_BYTES}-byte response \
         limit; the largest `max_batch` that always fits is {fits}",
        model.family(),
        plural(outputs),
        worst_case_response_bytes(model, max_batch),
    ))
}

/// `"s"` unless `n` is 1.
fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apr_runtime::format::AprWriter;

    /// Loads a fixture of apr-runtime, relative to this crate as a user's path would be.
    fn load_fixture(name: &str, features: Option<usize>) -> syn::Result<EmbeddedModel> {
        let path = format!("../apr-runtime/tests/fixtures/{name}");
        load(
            &LitStr::new(&path, Span::call_site()),
            Checks {
                features,
                ..Checks::default()
            },
        )
    }

    fn error_of(name: &str, features: Option<usize>) -> String {
        match load_fixture(name, features) {
            Ok(_) => panic!("{name} should be rejected"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn a_v2_file_is_embedded_by_absolute_path() {
        match load_fixture("linear_regression.v2.apr", Some(3)) {
            Ok(EmbeddedModel::V2 { absolute_path }) => {
                assert!(std::path::Path::new(&absolute_path).is_absolute());
                assert!(absolute_path.ends_with("linear_regression.v2.apr"));
            }
            _ => panic!("expected an embedded v2 file"),
        }
    }

    #[test]
    fn a_v1_file_is_converted_to_a_valid_v2_container() {
        match load_fixture("linear_regression.v1.apr", Some(3)) {
            Ok(EmbeddedModel::Converted {
                original_path,
                converted,
            }) => {
                assert!(original_path.ends_with("linear_regression.v1.apr"));
                let file = AprFile::parse(&converted).expect("the converted bytes parse");
                assert_eq!(Model::from_file(&file).expect("a model").n_features(), 3);
            }
            _ => panic!("expected a converted v1 file"),
        }
    }

    #[test]
    fn every_error_starts_with_the_path_as_written() {
        let message = error_of("bad_header_crc.apr", None);
        assert!(
            message.starts_with(
                "../apr-runtime/tests/fixtures/bad_header_crc.apr: header checksum mismatch"
            ),
            "{message}"
        );
    }

    #[test]
    fn missing_files_directories_and_empty_files_are_rejected() {
        assert!(error_of("no_such_file.apr", None).contains("does not exist"));
        assert!(error_of("", None).contains("is a directory"));
        assert!(error_of("bad_empty.apr", None).contains("empty"));
    }

    #[test]
    fn a_features_mismatch_names_both_counts() {
        let message = error_of("linear_regression.v2.apr", Some(4));
        assert!(message.contains("`features = 4` was given"), "{message}");
        assert!(message.contains("takes 3 features"), "{message}");
    }

    /// The bytes of a linear regression of 2 features and `n_outputs` outputs.
    fn linear_bytes(n_outputs: usize) -> Vec<u8> {
        let weights: Vec<f32> = (0..2 * n_outputs).map(|i| i as f32 * 0.5).collect();
        let mut writer = AprWriter::new();
        writer.model_type("LinearRegression");
        writer
            .add_f32("weight", &[n_outputs, 2], &weights)
            .expect("a valid weight");
        writer.to_bytes()
    }

    fn checks(features: Option<usize>, max_batch: Option<MaxBatch>) -> Checks<'static> {
        Checks {
            features,
            max_batch,
            ..Checks::default()
        }
    }

    fn max_batch(value: usize) -> Option<MaxBatch> {
        Some(MaxBatch {
            value,
            span: Span::call_site(),
        })
    }

    #[test]
    fn max_batch_is_checked_against_the_response_limit() {
        let bytes = linear_bytes(2000);
        let model = Model::from_bytes(&bytes).expect("a valid model");
        let fits = max_batch_that_fits(&model);
        assert!(fits > 1 && fits < 10_000, "{fits}");
        assert!(check_max_batch(&model, 1).is_ok());
        assert!(check_max_batch(&model, fits).is_ok());
        // One row more than fits is refused; the worst case of `fits` rows is
        // within the limit and that of one more is beyond it.
        assert!(worst_case_response_bytes(&model, fits) <= MAX_RESPONSE_BYTES);
        assert!(worst_case_response_bytes(&model, fits + 1) > MAX_RESPONSE_BYTES);
        let message = check_max_batch(&model, fits + 1).expect_err("too large");
        let worst = worst_case_response_bytes(&model, fits + 1);
        assert_eq!(
            message,
            format!(
                "the response to {} rows of this LinearRegression model (2000 outputs per row) \
                 can take up to {worst} bytes, more than Lambda's 6291556-byte response limit; \
                 the largest `max_batch` that always fits is {fits}",
                fits + 1
            )
        );
        // A small model takes any batch up to the runtime's default.
        let small = linear_bytes(1);
        let small = Model::from_bytes(&small).expect("a valid model");
        assert!(check_max_batch(&small, 10_000).is_ok());
        assert!(check_max_batch(&small, 100_000).is_err());
    }

    #[test]
    fn a_too_large_max_batch_is_reported_with_a_features_mismatch() {
        let bytes = linear_bytes(2000);
        let fits = max_batch_that_fits(&Model::from_bytes(&bytes).expect("a valid model"));
        let broken =
            validate_v2(&bytes, checks(Some(3), max_batch(10_000))).expect_err("both broken");
        let largest = format!("the largest `max_batch` that always fits is {fits}");
        assert!(
            matches!(
                broken.as_slice(),
                [Broken::Model(features), Broken::MaxBatch { value: 10_000, reason, .. }]
                    if features.contains("`features = 3` was given") && reason.ends_with(&largest)
            ),
            "{broken:?}"
        );
        assert!(validate_v2(&bytes, checks(Some(2), max_batch(fits))).is_ok());
        assert!(validate_v2(&bytes, checks(Some(2), None)).is_ok());
    }

    #[test]
    fn the_max_batch_error_names_the_value_and_the_file() {
        let dir = std::env::temp_dir().join(format!("apr-macros-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join("many_outputs.apr");
        let bytes = linear_bytes(2000);
        let fits = max_batch_that_fits(&Model::from_bytes(&bytes).expect("a valid model"));
        std::fs::write(&path, &bytes).expect("write the model");
        let written = path.to_str().expect("a UTF-8 path").to_owned();
        let result = load(
            &LitStr::new(&written, Span::call_site()),
            checks(None, max_batch(10_000)),
        );
        let _ = std::fs::remove_dir_all(&dir);
        let message = match result {
            Ok(_) => panic!("max_batch = 10000 should be refused"),
            Err(error) => error.to_string(),
        };
        assert!(
            message.starts_with(&format!(
                "`max_batch = 10000` is too large for {written}: the response to 10000 rows"
            )),
            "{message}"
        );
        assert!(
            message.ends_with(&format!("that always fits is {fits}")),
            "{message}"
        );
    }

    #[test]
    fn labels_and_feature_names_are_checked_against_the_model() {
        let list = |names: &[&str]| NameList {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            span: Span::call_site(),
        };
        let mut writer = AprWriter::new();
        writer.model_type("LogisticRegression");
        writer
            .add_f32("weight", &[3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
            .expect("a valid weight");
        let classifier = writer.to_bytes();
        let (three, two) = (list(&["a", "b", "c"]), list(&["x", "y"]));
        let ok = Checks {
            labels: Some(&three),
            feature_names: Some(&two),
            ..Checks::default()
        };
        assert!(validate_v2(&classifier, ok).is_ok());
        let wrong = Checks {
            labels: Some(&two),
            feature_names: Some(&three),
            ..Checks::default()
        };
        let broken = validate_v2(&classifier, wrong).expect_err("both counts are wrong");
        let messages: Vec<String> = broken
            .into_iter()
            .map(|b| match b {
                Broken::Names { message, .. } => message,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            messages,
            [
                "`labels` has 2 names, but this LogisticRegression model has 3 classes",
                "`feature_names` has 3 names, but this model takes 2 features"
            ]
        );
        let regression = linear_bytes(1);
        let labels = Checks {
            labels: Some(&three),
            ..Checks::default()
        };
        let broken = validate_v2(&regression, labels).expect_err("a regression has no classes");
        assert!(
            matches!(broken.as_slice(), [Broken::Names { message, .. }]
                if message.starts_with("`labels` has 3 names, but this LinearRegression model predicts no class (1 output per row, 0 classes)")),
            "{broken:?}"
        );
        // Names in the attribute win, even over metadata that does not fit.
        let mut writer = AprWriter::new();
        writer.model_type("LogisticRegression");
        writer
            .add_f32("weight", &[3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
            .expect("a valid weight");
        writer.labels(&["only", "two"]).feature_names(&["p", "p"]);
        let broken_metadata = writer.to_bytes();
        assert!(validate_v2(&broken_metadata, Checks::default()).is_err());
        assert!(validate_v2(&broken_metadata, ok).is_ok());
        let twice = list(&["x", "x"]);
        let names = Checks {
            feature_names: Some(&twice),
            ..Checks::default()
        };
        assert!(validate_v2(&classifier, names).is_err());
    }

    #[test]
    fn a_non_finite_weight_is_a_model_error() {
        let mut writer = AprWriter::new();
        writer.model_type("LinearRegression");
        writer
            .add_f32("weight", &[1, 3], &[0.5, f32::NAN, 1.0])
            .expect("a valid tensor");
        let broken =
            validate_v2(&writer.to_bytes(), checks(None, max_batch(10))).expect_err("a NaN");
        assert!(
            matches!(broken.as_slice(), [Broken::Model(rule)]
                if rule.starts_with("tensor `weight` holds a non-finite value (NaN or an infinity) at index 1")),
            "{broken:?}"
        );
    }
}
