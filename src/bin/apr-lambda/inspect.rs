//! `apr-lambda inspect MODEL [--json]`: validate a model file with the
//! runtime's own reader and describe it.

use std::fmt::Write as _;
use std::path::Path;

use apr_runtime::format::v1::{self, V1File};
use apr_runtime::format::{AprFile, DType, FooterStatus};
use apr_runtime::model::Model;
use serde_json::{json, Map, Value};

use crate::{read_file, Failure};

pub(crate) fn run(path: &Path, as_json: bool) -> Result<(), Failure> {
    let bytes = read_file(path)?;
    let report = if crate::is_onnx(path) {
        let v2 = crate::convert_onnx(path, &bytes)?;
        let file =
            AprFile::parse(&v2).map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
        let mut report = v2_report(path, &file);
        if let Value::Object(map) = &mut report {
            map.insert(
                "container".to_owned(),
                json!(format!("ONNX, {} bytes, converted to APR v2", bytes.len())),
            );
        }
        report
    } else if apr_runtime::format::is_v1(&bytes) {
        let file =
            v1::decode(&bytes).map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
        let v2 = file
            .to_v2_bytes()
            .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
        v1_report(path, bytes.len(), &file, &v2)?
    } else {
        let file = AprFile::parse(&bytes)
            .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
        v2_report(path, &file)
    };
    if as_json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::input(format!("cannot print the report: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", render_text(&report));
    }
    Ok(())
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

fn tensors_json(file: &AprFile<'_>) -> Value {
    let data_offset = file.header().data_offset;
    Value::Array(
        file.tensors()
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "dtype": t.dtype.name(),
                    "shape": t.shape,
                    "bytes": t.size,
                    "offset": t.offset,
                    "at_load": at_load(t.dtype, data_offset.saturating_add(t.offset)),
                })
            })
            .collect(),
    )
}

/// What the runtime makes of the file: the family and its shape, or why it
/// cannot serve it (not an error for `inspect`: the container is valid).
fn model_json(file: &AprFile<'_>) -> Value {
    match Model::from_file(file) {
        Ok(model) => {
            let storage = model.weight_storage();
            json!({
                "family": model.family().name(),
                "n_features": model.n_features(),
                "n_outputs": model.n_outputs(),
                "n_classes": model.n_classes(),
                "parameters": storage.parameters,
                "weights_in_place": storage.in_place,
                "weights_realigned": storage.realigned,
                "weights_dequantized": storage.converted,
                "labels": model.labels(),
                "feature_names": model.feature_names(),
            })
        }
        Err(e) => json!({ "error": e.to_string() }),
    }
}

fn v2_report(path: &Path, file: &AprFile<'_>) -> Value {
    let header = file.header();
    let footer = match file.footer() {
        FooterStatus::Verified { crc } => json!({"status": "verified", "crc": hex32(crc)}),
        FooterStatus::Absent => json!({"status": "absent"}),
        FooterStatus::NotChecked => json!({"status": "not checked"}),
    };
    json!({
        "file": path.display().to_string(),
        "bytes": file.bytes().len(),
        "container": "APR v2",
        "version": header.version(),
        "flags": {"bits": format!("{:#06x}", header.flags.0), "names": header.flags.names()},
        "model_type": file.model_type(),
        "metadata": file.metadata().as_map(),
        "tensor_count": header.tensor_count,
        "tensors": tensors_json(file),
        "checksums": {
            "header": {"status": "verified", "crc": hex32(header.header_crc)},
            "footer": footer,
        },
        "model": model_json(file),
    })
}

fn v1_report(path: &Path, len: usize, file: &V1File, v2: &[u8]) -> Result<Value, Failure> {
    let converted = AprFile::parse(v2)
        .map_err(|e| Failure::input(format!("{}: converted file: {e}", path.display())))?;
    let h = &file.header;
    Ok(json!({
        "file": path.display().to_string(),
        "bytes": len,
        "container": "APRN v1 (aprender::format::save)",
        "version": format!("{}.{}", h.version_major, h.version_minor),
        "flags": {"bits": format!("{:#04x}", h.flags.0), "names": h.flags.names()},
        "model_type": file.v2_model_type(),
        "v1_model_type": {"code": format!("{:#06x}", h.model_type), "name": h.model_type_name()},
        "header": {
            "metadata_size": h.metadata_size,
            "payload_size": h.payload_size,
            "uncompressed_size": h.uncompressed_size,
            "compression": h.compression.name(),
            "quality_score": h.quality_score,
        },
        "metadata": file.metadata.as_map(),
        "tensors": tensors_json(&converted),
        "converts_to": "APR v2",
        "checksums": {
            "crc32_trailer": {"status": "verified", "crc": hex32(file.crc32)},
            "signature": if file.signature.is_some() { "present (not verified)" } else { "absent" },
        },
        "model": model_json(&converted),
    }))
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

fn field<'v>(map: &'v Map<String, Value>, key: &str) -> &'v Value {
    map.get(key).unwrap_or(&Value::Null)
}

/// The human-readable form of a report.
fn render_text(report: &Value) -> String {
    let empty = Map::new();
    let map = report.as_object().unwrap_or(&empty);
    let mut out = String::new();
    let get = |key: &str| field(map, key);
    let _ = writeln!(
        out,
        "file:        {} ({} bytes)",
        scalar(get("file")),
        scalar(get("bytes"))
    );
    let _ = writeln!(
        out,
        "container:   {}, version {}",
        scalar(get("container")),
        scalar(get("version"))
    );
    let flags = get("flags");
    let names: Vec<String> = flags["names"]
        .as_array()
        .map(|a| a.iter().map(scalar).collect())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "flags:       {} ({})",
        scalar(&flags["bits"]),
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    );
    let _ = writeln!(out, "model_type:  {}", scalar(get("model_type")));
    if let Some(v1_type) = map.get("v1_model_type") {
        let _ = writeln!(
            out,
            "v1 type:     {} ({}), converts to {}",
            scalar(&v1_type["name"]),
            scalar(&v1_type["code"]),
            scalar(get("converts_to"))
        );
    }
    if let Some(Value::Object(header)) = map.get("header") {
        let _ = writeln!(
            out,
            "payload:     {} bytes stored, {} uncompressed, compression {}; metadata {} bytes; quality score {}",
            scalar(field(header, "payload_size")),
            scalar(field(header, "uncompressed_size")),
            scalar(field(header, "compression")),
            scalar(field(header, "metadata_size")),
            scalar(field(header, "quality_score")),
        );
    }
    let checksums = get("checksums");
    if let Some(trailer) = checksums.get("crc32_trailer") {
        let _ = writeln!(
            out,
            "checksums:   CRC32 trailer {} ({}); signature block {}",
            scalar(&trailer["status"]),
            scalar(&trailer["crc"]),
            scalar(&checksums["signature"])
        );
    } else {
        let footer = &checksums["footer"];
        let footer_text = match footer["crc"].as_str() {
            Some(crc) => format!("footer {} ({crc})", scalar(&footer["status"])),
            None => format!("footer {}", scalar(&footer["status"])),
        };
        let _ = writeln!(
            out,
            "checksums:   header {} ({}); {footer_text}",
            scalar(&checksums["header"]["status"]),
            scalar(&checksums["header"]["crc"]),
        );
    }
    let model = get("model");
    if let Some(error) = model.get("error") {
        let _ = writeln!(out, "model:       not servable: {}", scalar(error));
    } else {
        let _ = writeln!(
            out,
            "model:       {}, {} features -> {} outputs; {} parameters ({} weight tensors used in place, {} copied at load to a 64-byte boundary, {} dequantized at load)",
            scalar(&model["family"]),
            scalar(&model["n_features"]),
            scalar(&model["n_outputs"]),
            scalar(&model["parameters"]),
            scalar(&model["weights_in_place"]),
            scalar(&model["weights_realigned"]),
            scalar(&model["weights_dequantized"]),
        );
        for (key, title) in [
            ("labels", "labels:     "),
            ("feature_names", "features:   "),
        ] {
            if let Some(names) = model[key].as_array() {
                let names: Vec<String> = names.iter().map(Value::to_string).collect();
                let _ = writeln!(out, "{title} {}", names.join(", "));
            }
        }
    }
    let _ = writeln!(out, "metadata:");
    if let Some(metadata) = get("metadata").as_object() {
        for (key, value) in metadata {
            let _ = writeln!(out, "  {key}: {}", scalar(value));
        }
    }
    let tensors = get("tensors").as_array().cloned().unwrap_or_default();
    let title = if map.contains_key("v1_model_type") {
        "tensors after conversion"
    } else {
        "tensors"
    };
    let _ = writeln!(out, "{title} ({}):", tensors.len());
    let width = tensors
        .iter()
        .map(|t| scalar(&t["name"]).len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "  {:width$}  {:6}  {:16}  {:>10}  at load",
        "name", "dtype", "shape", "bytes"
    );
    for t in &tensors {
        let _ = writeln!(
            out,
            "  {:width$}  {:6}  {:16}  {:>10}  {}",
            scalar(&t["name"]),
            scalar(&t["dtype"]),
            t["shape"].to_string(),
            scalar(&t["bytes"]),
            scalar(&t["at_load"]),
        );
    }
    out
}
