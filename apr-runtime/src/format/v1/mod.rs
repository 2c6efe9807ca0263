//! The APR v1 container (magic `APRN`) that `aprender::format::save` writes,
//! and the converter to v2 (apr-format.md §2 and §3).
//!
//! ```text
//! [32-byte header][MessagePack metadata][payload][96-byte signature if SIGNED][CRC32 of all before]
//! ```
//!
//! [`decode`] checks the whole layout (lengths, CRC32 trailer, 1 GiB limit),
//! decompresses zstd and LZ4 payloads and decodes the bincode structs of the
//! five classical families of aprender 0.72.x. [`convert_to_v2`] writes the
//! model as a v2 container with [`AprWriter`](super::AprWriter), dropping the
//! training data v1 payloads carry.
//!
//! ```no_run
//! # fn main() -> Result<(), apr_runtime::format::FormatError> {
//! let bytes = std::fs::read("model.v1.apr").map_err(|_| apr_runtime::format::FormatError::Empty)?;
//! let file = apr_runtime::format::v1::decode(&bytes)?;
//! println!("{} from aprender {:?}", file.model.family(), file.metadata.aprender_version());
//! let v2 = apr_runtime::format::v1::convert_to_v2(&bytes)?;
//! # let _ = v2; Ok(()) }
//! ```

mod convert;
mod error;
mod header;
mod msgpack;
mod payload;

use std::io::Read;

use serde_json::{Map, Value};

use super::FormatError;

pub use convert::convert_to_v2;
pub use error::V1Error;
pub use header::{
    model_type_name, Compression, ModelTypeCode, V1Flags, V1Header, HEADER_LEN, MAGIC,
    MAX_UNCOMPRESSED_SIZE,
};
pub use payload::{ClassWeight, DecisionTree, FitMode, Matrix, TreeNode, V1Model, MAX_TREE_DEPTH};

use payload::PayloadFault;

/// The length of the Ed25519 signature block of a SIGNED file.
pub const SIGNATURE_LEN: usize = 96;
/// The aprender release whose struct layouts this decoder reads.
pub const SUPPORTED_APRENDER: &str = "0.72.x";

/// The MessagePack metadata of a v1 file, every entry kept as JSON.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
#[serde(transparent)]
pub struct V1Metadata(Map<String, Value>);

impl V1Metadata {
    /// The entry `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Every entry, in key order.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    fn string(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// `aprender_version`, e.g. "0.72.3".
    pub fn aprender_version(&self) -> Option<&str> {
        self.string("aprender_version")
    }

    /// `model_name`, when set.
    pub fn model_name(&self) -> Option<&str> {
        self.string(crate::format::schema::provenance::V1_MODEL_NAME)
    }
}

/// A decoded v1 file.
#[derive(Debug, Clone, PartialEq)]
pub struct V1File {
    /// The 32-byte header.
    pub header: V1Header,
    /// The MessagePack metadata.
    pub metadata: V1Metadata,
    /// The decoded model.
    pub model: V1Model,
    /// The 96-byte signature block when the SIGNED flag is set (not verified:
    /// no public key travels with the file).
    pub signature: Option<[u8; SIGNATURE_LEN]>,
    /// The CRC32 trailer (verified).
    pub crc32: u32,
}

impl V1File {
    /// The v2 model_type the model converts to ("LinearRegression",
    /// "LogisticRegression", "DecisionTreeClassifier",
    /// "RandomForestClassifier" or "KMeans").
    pub fn v2_model_type(&self) -> &'static str {
        convert::v2_model_type(&self.model)
    }

    /// The v2 container of this model (what [`convert_to_v2`] writes).
    pub fn to_v2_bytes(&self) -> Result<Vec<u8>, FormatError> {
        Ok(convert::v1_to_writer(self)?.to_bytes())
    }
}

/// Decodes a whole v1 file: header, layout length, CRC32 trailer, metadata,
/// payload (decompressed) and the aprender 0.72.x struct.
pub fn decode(bytes: &[u8]) -> Result<V1File, FormatError> {
    decode_v1(bytes).map_err(FormatError::from)
}

fn decode_v1(bytes: &[u8]) -> Result<V1File, V1Error> {
    let header = V1Header::parse(bytes)?;
    let signed = header.flags.contains(V1Flags::SIGNED);
    let metadata_end = HEADER_LEN as u64 + u64::from(header.metadata_size);
    let payload_end = metadata_end + u64::from(header.payload_size);
    let signature_end = payload_end + if signed { SIGNATURE_LEN as u64 } else { 0 };
    let expected = signature_end + 4;
    let found = bytes.len() as u64;
    if found != expected {
        return Err(V1Error::FileLength {
            expected,
            found,
            metadata_size: header.metadata_size,
            payload_size: header.payload_size,
            signed,
        });
    }
    // Every offset below is within `bytes` (length checked above), and the
    // conversions cannot fail because each is at most `bytes.len()`.
    let offset = |at: u64| usize::try_from(at).unwrap_or(usize::MAX);
    let (body, trailer) = bytes.split_at(offset(signature_end));
    let stored = trailer
        .try_into()
        .map(u32::from_le_bytes)
        .unwrap_or_default();
    let computed = super::crc32(body);
    if stored != computed {
        return Err(V1Error::Checksum {
            stored,
            computed,
            offset: signature_end,
        });
    }
    let section = |from: u64, to: u64| body.get(offset(from)..offset(to)).unwrap_or_default();
    let metadata_bytes = section(HEADER_LEN as u64, metadata_end);
    let stored_payload = section(metadata_end, payload_end);
    let signature = if signed {
        section(payload_end, signature_end).try_into().ok()
    } else {
        None
    };

    let metadata =
        V1Metadata(
            msgpack::decode_map(metadata_bytes).map_err(|fault| V1Error::Metadata {
                offset: fault.offset,
                reason: fault.reason,
            })?,
        );
    let family =
        ModelTypeCode::from_code(header.model_type).ok_or(V1Error::UnsupportedModelType {
            code: header.model_type,
            name: header.model_type_name(),
        })?;
    let payload = decompress(&header, stored_payload)?;
    let model = payload::decode_payload(family, &payload)
        .map_err(|fault| payload_error(family, &metadata, fault))?;
    Ok(V1File {
        header,
        metadata,
        model,
        signature,
        crc32: stored,
    })
}

fn payload_error(family: ModelTypeCode, metadata: &V1Metadata, fault: PayloadFault) -> V1Error {
    let family = family.name();
    let aprender_version = metadata.aprender_version().unwrap_or("unknown").to_string();
    match fault {
        PayloadFault::Truncated {
            field,
            offset,
            needed,
            remaining,
        } => V1Error::PayloadTruncated {
            family,
            field,
            offset,
            needed,
            remaining,
            aprender_version,
        },
        PayloadFault::Invalid {
            field,
            offset,
            reason,
        } => V1Error::PayloadInvalid {
            family,
            field,
            offset,
            reason,
            aprender_version,
        },
        PayloadFault::Trailing { consumed, total } => V1Error::PayloadTrailing {
            family,
            consumed,
            total,
            aprender_version,
        },
    }
}

/// Returns the bincode bytes of the payload, exactly `uncompressed_size` long.
fn decompress<'a>(
    header: &V1Header,
    stored: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, V1Error> {
    let expected = header.uncompressed_size;
    match header.compression {
        Compression::None => {
            if header.payload_size != expected {
                return Err(V1Error::StoredSizeMismatch {
                    payload_size: header.payload_size,
                    uncompressed_size: expected,
                });
            }
            Ok(std::borrow::Cow::Borrowed(stored))
        }
        Compression::Zstd | Compression::ZstdHigh => {
            let failed = |reason: String| V1Error::Decompress {
                compression: "zstd",
                reason,
            };
            let mut input = stored;
            let decoder = ruzstd::decoding::StreamingDecoder::new(&mut input)
                .map_err(|e| failed(e.to_string()))?;
            // Read at most one byte more than declared, so a bomb stops early
            // and a longer stream is still detected.
            let mut out = Vec::new();
            decoder
                .take(u64::from(expected) + 1)
                .read_to_end(&mut out)
                .map_err(|e| failed(e.to_string()))?;
            if out.len() as u64 != u64::from(expected) {
                return Err(V1Error::DecompressedSize {
                    compression: "zstd",
                    expected: u64::from(expected),
                    found: out.len() as u64,
                });
            }
            if !input.is_empty() {
                return Err(failed(format!(
                    "{} bytes of the stored payload follow the zstd frame",
                    input.len()
                )));
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        Compression::Lz4 => {
            let failed = |reason: String| V1Error::Decompress {
                compression: "LZ4",
                reason,
            };
            let (prepended, block) =
                lz4_flex::block::uncompressed_size(stored).map_err(|e| failed(e.to_string()))?;
            if prepended as u64 != u64::from(expected) {
                return Err(V1Error::DecompressedSize {
                    compression: "LZ4",
                    expected: u64::from(expected),
                    found: prepended as u64,
                });
            }
            // An LZ4 block expands at most ~255×: refuse sizes no block of
            // this length can produce before allocating for them.
            if (expected as u64) > (block.len() as u64).saturating_mul(255).saturating_add(16) {
                return Err(failed(format!(
                    "a {}-byte block cannot expand to the declared {expected} bytes",
                    block.len()
                )));
            }
            let mut out = vec![0u8; prepended];
            let written = lz4_flex::block::decompress_into(block, &mut out)
                .map_err(|e| failed(e.to_string()))?;
            if written != prepended {
                return Err(V1Error::DecompressedSize {
                    compression: "LZ4",
                    expected: u64::from(expected),
                    found: written as u64,
                });
            }
            Ok(std::borrow::Cow::Owned(out))
        }
    }
}
