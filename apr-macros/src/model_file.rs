//! Reading and validating the model file while the user's crate compiles.
//!
//! One parser: the container is checked by `apr_runtime::format::AprFile::parse`
//! and the model by `apr_runtime::model::Model::from_file`, the same code that
//! loads it at run time. Every failure becomes one `syn::Error` at the
//! `model = "..."` literal, whose message starts with the path as written.

use std::io::ErrorKind;
use std::path::PathBuf;

use apr_runtime::format::{self, AprFile};
use apr_runtime::model::Model;
use syn::LitStr;

/// A validated model, ready to embed.
pub(crate) enum EmbeddedModel {
    /// A v2 container, embedded as it is with `include_bytes!`.
    V2 {
        /// The absolute path of the file (what `include_bytes!` reads).
        absolute_path: String,
    },
    /// A v1 (APRN) file converted to v2 here; the converted bytes are embedded
    /// as a literal and the original is still `include_bytes!`-ed so that
    /// editing it rebuilds the crate.
    ConvertedV1 {
        /// The absolute path of the original v1 file.
        original_path: String,
        /// The v2 container the converter produced.
        converted: Vec<u8>,
    },
}

/// Reads, validates and (for v1) converts the file named by `model`.
///
/// `features` is the `features = N` the user asserted, if any.
pub(crate) fn load(model: &LitStr, features: Option<usize>) -> syn::Result<EmbeddedModel> {
    let written = model.value();
    let fail = |rule: String| syn::Error::new(model.span(), format!("{written}: {rule}"));

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

    if format::is_v1(&bytes) {
        let converted = convert_v1(&bytes).map_err(&fail)?;
        validate_v2(&converted, features).map_err(|rule| {
            fail(format!(
                "the v1 file converted, but the converted container is invalid: {rule}"
            ))
        })?;
        Ok(EmbeddedModel::ConvertedV1 {
            original_path: absolute_path,
            converted,
        })
    } else {
        validate_v2(&bytes, features).map_err(fail)?;
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
/// a model family and shapes the runtime supports, and `features` when given.
fn validate_v2(bytes: &[u8], features: Option<usize>) -> Result<(), String> {
    let file = AprFile::parse(bytes).map_err(|error| error.to_string())?;
    let model = Model::from_file(&file).map_err(|error| error.to_string())?;
    if let Some(expected) = features {
        let found = model.n_features();
        if found != expected {
            return Err(format!(
                "`features = {expected}` was given, but this {} model takes {found} feature{}",
                model.family(),
                if found == 1 { "" } else { "s" }
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    /// Loads a fixture of apr-runtime, relative to this crate as a user's path would be.
    fn load_fixture(name: &str, features: Option<usize>) -> syn::Result<EmbeddedModel> {
        let path = format!("../apr-runtime/tests/fixtures/{name}");
        load(&LitStr::new(&path, Span::call_site()), features)
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
            Ok(EmbeddedModel::ConvertedV1 {
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
}
