//! `apr-lambda inspect MODEL [--json]`: validate a model file with the
//! runtime's own reader and describe it.
//!
//! The description is one [`Report`], built once: `--json` serializes it,
//! the text form is its `Display`.

use std::fmt;
use std::path::Path;

use apr_runtime::format::v1::{self, V1File};
use apr_runtime::format::{AprFile, DType, FooterStatus};
use apr_runtime::model::Model;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{read_file, Failure};

pub(crate) fn run(path: &Path, as_json: bool) -> Result<(), Failure> {
    let report = Report::read(path)?;
    if as_json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::input(format!("cannot print the report: {e}")))?;
        println!("{text}");
    } else {
        print!("{report}");
    }
    Ok(())
}

impl Report {
    /// Reads and validates the model file at `path` (v2, v1 or ONNX) and
    /// describes it.
    fn read(path: &Path) -> Result<Report, Failure> {
        let bytes = read_file(path)?;
        if crate::is_onnx(path) {
            let v2 = crate::convert_onnx(path, &bytes)?;
            let file = AprFile::parse(&v2)
                .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
            let mut report = Report::v2(path, &file);
            report.container = format!("ONNX, {} bytes, converted to APR v2", bytes.len());
            Ok(report)
        } else if apr_runtime::format::is_v1(&bytes) {
            let file = v1::decode(&bytes)
                .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
            let v2 = file
                .to_v2_bytes()
                .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
            Report::v1(path, bytes.len(), &file, &v2)
        } else {
            let file = AprFile::parse(&bytes)
                .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
            Ok(Report::v2(path, &file))
        }
    }
}

fn hex32(value: u32) -> String {
    format!("{value:#010x}")
}

/// How a tensor's values reach the model when the file is embedded by
/// `#[apr_lambda]` (64-byte aligned): an F32 tensor is used in place when it
/// starts `absolute_offset` bytes into the file on a 64-byte boundary, and
/// copied once to one otherwise.
fn at_load(dtype: DType, absolute_offset: u64) -> &'static str {
    match dtype {
        DType::F32 if absolute_offset.is_multiple_of(64) => "used in place",
        DType::F32 => "copied at load to a 64-byte boundary",
        // Tree-ensemble structure (node features, modes, children, flags).
        DType::I32 | DType::I64 | DType::U8 | DType::I8 => "read as integers at load",
        dtype if dtype.is_quantized() => "dequantized to f32 at load",
        _ => "converted to f32 at load",
    }
}

/// What `inspect` says about a file.
///
/// The fields are declared in alphabetical order, and so are those of the
/// structs below: the JSON form lists its keys in that order, as it always
/// has. The fields that only one container has are left out of the JSON
/// when absent.
#[derive(Debug, Serialize)]
struct Report {
    /// The size of the container described: the file, or for ONNX the v2
    /// container it converts to.
    bytes: usize,
    checksums: Checksums,
    /// `"APR v2"`, `"APRN v1 (...)"` or `"ONNX, N bytes, converted to APR v2"`.
    container: String,
    /// v1 only: the container a v1 file converts to.
    #[serde(skip_serializing_if = "Option::is_none")]
    converts_to: Option<&'static str>,
    /// The path as given.
    file: String,
    flags: FlagsReport,
    /// v1 only: the rest of the v1 header.
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<V1HeaderReport>,
    metadata: Map<String, Value>,
    model: ModelReport,
    /// The family named in the metadata (v2), or that a v1 file converts to.
    model_type: Option<String>,
    /// v2 only: the header's tensor count.
    #[serde(skip_serializing_if = "Option::is_none")]
    tensor_count: Option<u32>,
    /// The tensors (of the converted container, for v1).
    tensors: Vec<TensorReport>,
    /// v1 only: the v1 header's model type.
    #[serde(skip_serializing_if = "Option::is_none")]
    v1_model_type: Option<V1ModelType>,
    /// `"2.0"`, `"1.0"`, ...
    version: String,
}

/// The header's flags: the bits, and the names of those set.
#[derive(Debug, Serialize)]
struct FlagsReport {
    bits: String,
    names: Vec<String>,
}

/// The v1 header's model type: its code, and the family it names.
#[derive(Debug, Serialize)]
struct V1ModelType {
    code: String,
    name: &'static str,
}

/// The v1 header's sizes, compression and quality score.
#[derive(Debug, Serialize)]
struct V1HeaderReport {
    compression: &'static str,
    metadata_size: u32,
    payload_size: u32,
    quality_score: u8,
    uncompressed_size: u32,
}

/// One checksum: its status, and the CRC when there is one.
#[derive(Debug, Serialize)]
struct Checksum {
    #[serde(skip_serializing_if = "Option::is_none")]
    crc: Option<String>,
    status: &'static str,
}

/// The container's checksums.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Checksums {
    /// v2: the header CRC (always verified once parsed) and the footer.
    V2 { footer: Checksum, header: Checksum },
    /// v1: the CRC32 trailer, and whether a signature block is present.
    V1 {
        crc32_trailer: Checksum,
        signature: &'static str,
    },
}

/// What the runtime makes of the file: the family and its shape, or why it
/// cannot serve it (not an error for `inspect`: the container is valid).
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ModelReport {
    Servable {
        family: &'static str,
        feature_names: Option<Vec<String>>,
        labels: Option<Vec<String>>,
        n_classes: Option<usize>,
        n_features: usize,
        n_outputs: usize,
        parameters: usize,
        weights_dequantized: usize,
        weights_in_place: usize,
        weights_realigned: usize,
    },
    NotServable {
        error: String,
    },
}

/// One tensor, and how its values reach the model.
#[derive(Debug, Serialize)]
struct TensorReport {
    at_load: &'static str,
    bytes: u64,
    dtype: &'static str,
    name: String,
    offset: u64,
    shape: Vec<usize>,
}

impl Report {
    /// The report on a v2 container.
    fn v2(path: &Path, file: &AprFile<'_>) -> Report {
        let header = file.header();
        let footer = match file.footer() {
            FooterStatus::Verified { crc } => Checksum {
                crc: Some(hex32(crc)),
                status: "verified",
            },
            FooterStatus::Absent => Checksum {
                crc: None,
                status: "absent",
            },
            FooterStatus::NotChecked => Checksum {
                crc: None,
                status: "not checked",
            },
        };
        Report {
            bytes: file.bytes().len(),
            checksums: Checksums::V2 {
                footer,
                header: Checksum {
                    crc: Some(hex32(header.header_crc)),
                    status: "verified",
                },
            },
            container: "APR v2".to_owned(),
            converts_to: None,
            file: path.display().to_string(),
            flags: FlagsReport {
                bits: format!("{:#06x}", header.flags.0),
                names: header
                    .flags
                    .names()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            },
            header: None,
            metadata: file.metadata().as_map().clone(),
            model: ModelReport::of(file),
            model_type: file.model_type().map(str::to_owned),
            tensor_count: Some(header.tensor_count),
            tensors: TensorReport::all(file),
            v1_model_type: None,
            version: header.version(),
        }
    }

    /// The report on a v1 file of `len` bytes, whose tensors and model are
    /// those of `v2`, the container it converts to.
    fn v1(path: &Path, len: usize, file: &V1File, v2: &[u8]) -> Result<Report, Failure> {
        let converted = AprFile::parse(v2)
            .map_err(|e| Failure::input(format!("{}: converted file: {e}", path.display())))?;
        let h = &file.header;
        Ok(Report {
            bytes: len,
            checksums: Checksums::V1 {
                crc32_trailer: Checksum {
                    crc: Some(hex32(file.crc32)),
                    status: "verified",
                },
                signature: if file.signature.is_some() {
                    "present (not verified)"
                } else {
                    "absent"
                },
            },
            container: "APRN v1 (aprender::format::save)".to_owned(),
            converts_to: Some("APR v2"),
            file: path.display().to_string(),
            flags: FlagsReport {
                bits: format!("{:#04x}", h.flags.0),
                names: h.flags.names(),
            },
            header: Some(V1HeaderReport {
                compression: h.compression.name(),
                metadata_size: h.metadata_size,
                payload_size: h.payload_size,
                quality_score: h.quality_score,
                uncompressed_size: h.uncompressed_size,
            }),
            metadata: file.metadata.as_map().clone(),
            model: ModelReport::of(&converted),
            model_type: Some(file.v2_model_type().to_owned()),
            tensor_count: None,
            tensors: TensorReport::all(&converted),
            v1_model_type: Some(V1ModelType {
                code: format!("{:#06x}", h.model_type),
                name: h.model_type_name(),
            }),
            version: format!("{}.{}", h.version_major, h.version_minor),
        })
    }
}

impl ModelReport {
    fn of(file: &AprFile<'_>) -> ModelReport {
        match Model::from_file(file) {
            Ok(model) => {
                let storage = model.weight_storage();
                ModelReport::Servable {
                    family: model.family().name(),
                    feature_names: model.feature_names().map(<[String]>::to_vec),
                    labels: model.labels().map(<[String]>::to_vec),
                    n_classes: model.n_classes(),
                    n_features: model.n_features(),
                    n_outputs: model.n_outputs(),
                    parameters: storage.parameters,
                    weights_dequantized: storage.converted,
                    weights_in_place: storage.in_place,
                    weights_realigned: storage.realigned,
                }
            }
            Err(e) => ModelReport::NotServable {
                error: e.to_string(),
            },
        }
    }
}

impl TensorReport {
    /// The tensors of `file`, in index order.
    fn all(file: &AprFile<'_>) -> Vec<TensorReport> {
        let data_offset = file.header().data_offset;
        file.tensors()
            .iter()
            .map(|t| TensorReport {
                at_load: at_load(t.dtype, data_offset.saturating_add(t.offset)),
                bytes: t.size,
                dtype: t.dtype.name(),
                name: t.name.clone(),
                offset: t.offset,
                shape: t.shape.clone(),
            })
            .collect()
    }
}

/// A metadata value as the text form shows it: a string as it is, `-` for
/// null, anything else as compact JSON.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// Names as the text form lists them: each a JSON string, comma-separated.
fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|name| Value::from(name.as_str()).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The human-readable form of the report.
impl fmt::Display for Report {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(out, "file:        {} ({} bytes)", self.file, self.bytes)?;
        writeln!(
            out,
            "container:   {}, version {}",
            self.container, self.version
        )?;
        writeln!(
            out,
            "flags:       {} ({})",
            self.flags.bits,
            if self.flags.names.is_empty() {
                "none".to_string()
            } else {
                self.flags.names.join(", ")
            }
        )?;
        writeln!(
            out,
            "model_type:  {}",
            self.model_type.as_deref().unwrap_or("-")
        )?;
        if let Some(v1_type) = &self.v1_model_type {
            writeln!(
                out,
                "v1 type:     {} ({}), converts to {}",
                v1_type.name,
                v1_type.code,
                self.converts_to.unwrap_or("-")
            )?;
        }
        if let Some(header) = &self.header {
            writeln!(
                out,
                "payload:     {} bytes stored, {} uncompressed, compression {}; metadata {} bytes; quality score {}",
                header.payload_size,
                header.uncompressed_size,
                header.compression,
                header.metadata_size,
                header.quality_score,
            )?;
        }
        match &self.checksums {
            Checksums::V1 {
                crc32_trailer,
                signature,
            } => writeln!(
                out,
                "checksums:   CRC32 trailer {} ({}); signature block {signature}",
                crc32_trailer.status,
                crc32_trailer.crc.as_deref().unwrap_or("-"),
            )?,
            Checksums::V2 { footer, header } => {
                let footer_text = match &footer.crc {
                    Some(crc) => format!("footer {} ({crc})", footer.status),
                    None => format!("footer {}", footer.status),
                };
                writeln!(
                    out,
                    "checksums:   header {} ({}); {footer_text}",
                    header.status,
                    header.crc.as_deref().unwrap_or("-"),
                )?;
            }
        }
        match &self.model {
            ModelReport::NotServable { error } => {
                writeln!(out, "model:       not servable: {error}")?;
            }
            ModelReport::Servable {
                family,
                feature_names,
                labels,
                n_features,
                n_outputs,
                parameters,
                weights_dequantized,
                weights_in_place,
                weights_realigned,
                ..
            } => {
                writeln!(
                    out,
                    "model:       {family}, {n_features} features -> {n_outputs} outputs; {parameters} parameters ({weights_in_place} weight tensors used in place, {weights_realigned} copied at load to a 64-byte boundary, {weights_dequantized} dequantized at load)",
                )?;
                if let Some(labels) = labels {
                    writeln!(out, "labels:      {}", quoted(labels))?;
                }
                if let Some(names) = feature_names {
                    writeln!(out, "features:    {}", quoted(names))?;
                }
            }
        }
        writeln!(out, "metadata:")?;
        for (key, value) in &self.metadata {
            writeln!(out, "  {key}: {}", scalar(value))?;
        }
        let title = if self.v1_model_type.is_some() {
            "tensors after conversion"
        } else {
            "tensors"
        };
        writeln!(out, "{title} ({}):", self.tensors.len())?;
        let width = self
            .tensors
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            out,
            "  {:width$}  {:6}  {:16}  {:>10}  at load",
            "name", "dtype", "shape", "bytes"
        )?;
        for t in &self.tensors {
            let shape = format!(
                "[{}]",
                t.shape
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            );
            writeln!(
                out,
                "  {:width$}  {:6}  {:16}  {:>10}  {}",
                t.name, t.dtype, shape, t.bytes, t.at_load,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(relative: &str) -> Report {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        match Report::read(&path) {
            Ok(report) => report,
            Err(Failure::Input(message) | Failure::Usage(message)) => panic!("{message}"),
        }
    }

    /// The report's JSON lists every object's keys in alphabetical order,
    /// as when it was a `serde_json::Value` (a sorted map): serialized as
    /// declared, it is the same text as serialized through a `Value`.
    #[test]
    fn the_json_keys_are_in_alphabetical_order() {
        for relative in [
            "apr-runtime/tests/fixtures/mlp_multiclass.v2.apr",
            "apr-runtime/tests/fixtures/logistic_regression.v1.apr",
            "models/model.apr",
            "models/iris_pipeline.onnx",
        ] {
            let report = report(relative);
            let declared = serde_json::to_string(&report).expect("the report serializes");
            let value = serde_json::to_value(&report).expect("the report serializes");
            assert_eq!(declared, value.to_string(), "{relative}");
        }
    }

    #[test]
    fn the_text_form_says_what_the_json_form_does() {
        let v2 = report("models/model.apr");
        let text = v2.to_string();
        assert!(text.starts_with("file:        "), "{text}");
        assert!(text.contains("\nlabels:      \"setosa\", \"versicolor\", \"virginica\"\n"));
        assert!(text.contains("\ntensors (4):\n"));
        assert!(matches!(v2.checksums, Checksums::V2 { .. }));
        let v1 = report("apr-runtime/tests/fixtures/linear_regression.v1.apr");
        let text = v1.to_string();
        assert!(text.contains("\nv1 type:     LinearRegression (0x0001), converts to APR v2\n"));
        assert!(text.contains("\nchecksums:   CRC32 trailer verified (0x"));
        assert!(text.contains("\ntensors after conversion (2):\n"));
    }
}
