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
mod msgpack;
mod payload;

use std::io::Read;

use serde_json::{Map, Value};

use super::FormatError;

pub use convert::convert_to_v2;
pub use payload::{ClassWeight, DecisionTree, FitMode, Matrix, TreeNode, V1Model, MAX_TREE_DEPTH};

use payload::PayloadFault;

/// The four magic bytes of a v1 container.
pub const MAGIC: [u8; 4] = *b"APRN";
/// The length of the v1 header.
pub const HEADER_LEN: usize = 32;
/// The length of the Ed25519 signature block of a SIGNED file.
pub const SIGNATURE_LEN: usize = 96;
/// The largest decompressed payload the decoder accepts (1 GiB).
pub const MAX_UNCOMPRESSED_SIZE: u32 = 1 << 30;
/// The aprender release whose struct layouts this decoder reads.
pub const SUPPORTED_APRENDER: &str = "0.72.x";

/// Why a v1 (`APRN`) file was rejected; reaches callers as
/// [`FormatError::V1`](super::FormatError).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum V1Error {
    /// The input is shorter than the 32-byte header.
    #[error(
        "truncated v1 header: the file is {length} bytes, shorter than the 32-byte APRN header"
    )]
    TruncatedHeader {
        /// Length of the input.
        length: usize,
    },

    /// The first four bytes are not `APRN`.
    #[error("bad magic at byte 0: expected \"APRN\" (41 50 52 4e), found {found:02x?}")]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },

    /// The major version at byte 4 is not 1.
    #[error(
        "unsupported v1 container version {major}.{minor} at byte 4: expected major version 1"
    )]
    UnsupportedVersion {
        /// Byte 4.
        major: u8,
        /// Byte 5.
        minor: u8,
    },

    /// The flags mark the payload as encrypted.
    #[error("the v1 header flags ({flags:#04x}, byte 21) mark the payload as encrypted; encrypted models cannot be read, decrypt the model first")]
    Encrypted {
        /// The flags byte.
        flags: u8,
    },

    /// The compression byte is not 0, 1, 2 or 3.
    #[error("unknown v1 compression code {code} at byte 20: expected 0 (none), 1 or 2 (zstd) or 3 (LZ4)")]
    UnknownCompression {
        /// The compression byte.
        code: u8,
    },

    /// The model_type at byte 6 is not one of the five decodable families.
    #[error("v1 model type {name} ({code:#06x}, byte 6) is not supported: only LinearRegression, LogisticRegression, DecisionTree, RandomForest and KMeans payloads can be decoded")]
    UnsupportedModelType {
        /// The model_type code.
        code: u16,
        /// Its aprender name, or "unknown".
        name: &'static str,
    },

    /// uncompressed_size exceeds 1 GiB.
    #[error("the v1 header (byte 16) declares an uncompressed payload of {size} bytes, over the {limit}-byte (1 GiB) limit")]
    PayloadTooLarge {
        /// uncompressed_size from the header.
        size: u32,
        /// The limit.
        limit: u32,
    },

    /// The file length disagrees with the sizes in the header.
    #[error("bad v1 file length {found}: the header describes {expected} bytes (32 header + {metadata_size} metadata + {payload_size} payload{signature} + 4 CRC)", signature = if *signed { " + 96 signature" } else { "" })]
    FileLength {
        /// Length the header implies.
        expected: u64,
        /// Length of the input.
        found: u64,
        /// metadata_size from the header.
        metadata_size: u32,
        /// payload_size from the header.
        payload_size: u32,
        /// Whether the SIGNED flag adds a signature block.
        signed: bool,
    },

    /// The CRC32 trailer does not match.
    #[error("v1 checksum mismatch at byte {offset}: stored {stored:#010x}, computed {computed:#010x} over the {offset} bytes before it")]
    Checksum {
        /// CRC32 in the last 4 bytes.
        stored: u32,
        /// CRC32 of every byte before.
        computed: u32,
        /// Byte offset of the trailer.
        offset: u64,
    },

    /// The metadata is not a MessagePack map with string keys.
    #[error(
        "v1 metadata (byte {}) is not a valid MessagePack map: {reason} at metadata byte {offset}",
        HEADER_LEN
    )]
    Metadata {
        /// Offset inside the metadata block.
        offset: usize,
        /// What was wrong.
        reason: String,
    },

    /// An uncompressed payload whose stored and uncompressed sizes differ.
    #[error("the v1 payload is stored uncompressed but payload_size {payload_size} differs from uncompressed_size {uncompressed_size}")]
    StoredSizeMismatch {
        /// payload_size from the header.
        payload_size: u32,
        /// uncompressed_size from the header.
        uncompressed_size: u32,
    },

    /// The compressed payload could not be decompressed.
    #[error("the {compression}-compressed v1 payload could not be decompressed: {reason}")]
    Decompress {
        /// "zstd" or "LZ4".
        compression: &'static str,
        /// The decompressor's message.
        reason: String,
    },

    /// Decompression produced a different length than uncompressed_size.
    #[error("the {compression} payload decompresses to {found} bytes, but the header (byte 16) declares uncompressed_size {expected}")]
    DecompressedSize {
        /// "zstd" or "LZ4".
        compression: &'static str,
        /// uncompressed_size from the header.
        expected: u64,
        /// Bytes produced (may stop at expected + 1).
        found: u64,
    },

    /// The payload ends before the struct does.
    #[error("the {family} payload is truncated: {field} at payload byte {offset} needs {needed} bytes but {remaining} remain; this file was written by aprender {aprender_version}, and this decoder reads the layouts of aprender {SUPPORTED_APRENDER}")]
    PayloadTruncated {
        /// The model family.
        family: &'static str,
        /// The field being read.
        field: &'static str,
        /// Its offset in the payload.
        offset: usize,
        /// Bytes needed.
        needed: u64,
        /// Bytes remaining.
        remaining: usize,
        /// `aprender_version` from the metadata ("unknown" when absent).
        aprender_version: String,
    },

    /// The payload has bytes left after the struct.
    #[error("the {family} payload has {} bytes left over after decoding {consumed} of {total} bytes; this file was written by aprender {aprender_version}, and this decoder reads the layouts of aprender {SUPPORTED_APRENDER}", total.saturating_sub(*consumed))]
    PayloadTrailing {
        /// The model family.
        family: &'static str,
        /// Bytes the struct used.
        consumed: usize,
        /// Bytes in the payload.
        total: usize,
        /// `aprender_version` from the metadata ("unknown" when absent).
        aprender_version: String,
    },

    /// A payload field holds an impossible value.
    #[error("the {family} payload is invalid at payload byte {offset} ({field}): {reason}; this file was written by aprender {aprender_version}, and this decoder reads the layouts of aprender {SUPPORTED_APRENDER}")]
    PayloadInvalid {
        /// The model family.
        family: &'static str,
        /// The field being read.
        field: &'static str,
        /// Its offset in the payload.
        offset: usize,
        /// What was wrong.
        reason: String,
        /// `aprender_version` from the metadata ("unknown" when absent).
        aprender_version: String,
    },

    /// The model cannot be expressed as a v2 model family.
    #[error("the {family} model cannot be converted to v2: {reason}")]
    NotConvertible {
        /// The model family.
        family: &'static str,
        /// Why.
        reason: String,
    },
}

impl From<V1Error> for FormatError {
    fn from(error: V1Error) -> Self {
        FormatError::V1(error)
    }
}

/// The v1 model_type codes this decoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelTypeCode {
    /// 0x0001.
    LinearRegression,
    /// 0x0002.
    LogisticRegression,
    /// 0x0003.
    DecisionTree,
    /// 0x0004.
    RandomForest,
    /// 0x0006.
    KMeans,
}

impl ModelTypeCode {
    /// The decodable family of a model_type code, if it is one.
    pub fn from_code(code: u16) -> Option<Self> {
        match code {
            0x0001 => Some(Self::LinearRegression),
            0x0002 => Some(Self::LogisticRegression),
            0x0003 => Some(Self::DecisionTree),
            0x0004 => Some(Self::RandomForest),
            0x0006 => Some(Self::KMeans),
            _ => None,
        }
    }

    /// The family name aprender uses for this code.
    pub fn name(self) -> &'static str {
        model_type_name(self.code())
    }

    /// The u16 code.
    pub fn code(self) -> u16 {
        match self {
            Self::LinearRegression => 0x0001,
            Self::LogisticRegression => 0x0002,
            Self::DecisionTree => 0x0003,
            Self::RandomForest => 0x0004,
            Self::KMeans => 0x0006,
        }
    }
}

/// The aprender name of any v1 model_type code ("unknown" for codes not in
/// apr-format.md §2).
pub fn model_type_name(code: u16) -> &'static str {
    match code {
        0x0001 => "LinearRegression",
        0x0002 => "LogisticRegression",
        0x0003 => "DecisionTree",
        0x0004 => "RandomForest",
        0x0005 => "GradientBoosting",
        0x0006 => "KMeans",
        0x0007 => "Pca",
        0x0008 => "NaiveBayes",
        0x0009 => "Knn",
        0x000A => "Svm",
        0x0020 => "NeuralSequential",
        0x0021 => "NeuralCustom",
        0x00FF => "Custom",
        _ => "unknown",
    }
}

/// How the v1 payload is stored (header byte 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// 0: stored as is.
    None,
    /// 1: zstd.
    Zstd,
    /// 2: zstd at a high level (decodes the same).
    ZstdHigh,
    /// 3: an lz4_flex size-prepended block.
    Lz4,
}

impl Compression {
    /// The compression of a header byte, if known.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::None),
            1 => Some(Self::Zstd),
            2 => Some(Self::ZstdHigh),
            3 => Some(Self::Lz4),
            _ => None,
        }
    }

    /// The header byte.
    pub fn code(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Zstd => 1,
            Self::ZstdHigh => 2,
            Self::Lz4 => 3,
        }
    }

    /// A short name: "none", "zstd", "zstd (high)", "LZ4".
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Zstd => "zstd",
            Self::ZstdHigh => "zstd (high)",
            Self::Lz4 => "LZ4",
        }
    }
}

/// The v1 flags byte (header byte 21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct V1Flags(pub u8);

impl V1Flags {
    /// bit 0: the payload is encrypted.
    pub const ENCRYPTED: u8 = 0x01;
    /// bit 1: a 96-byte signature block follows the payload.
    pub const SIGNED: u8 = 0x02;
    /// bit 2: streaming.
    pub const STREAMING: u8 = 0x04;
    /// bit 3: licensed.
    pub const LICENSED: u8 = 0x08;
    /// bit 4: trueno-native.
    pub const TRUENO_NATIVE: u8 = 0x10;
    /// bit 5: quantized.
    pub const QUANTIZED: u8 = 0x20;
    /// bit 6: carries a model card.
    pub const MODEL_CARD: u8 = 0x40;

    const NAMES: [(u8, &'static str); 7] = [
        (Self::ENCRYPTED, "encrypted"),
        (Self::SIGNED, "signed"),
        (Self::STREAMING, "streaming"),
        (Self::LICENSED, "licensed"),
        (Self::TRUENO_NATIVE, "trueno_native"),
        (Self::QUANTIZED, "quantized"),
        (Self::MODEL_CARD, "model_card"),
    ];

    /// Whether every bit of `mask` is set.
    pub fn contains(self, mask: u8) -> bool {
        self.0 & mask == mask
    }

    /// The names of the bits set, lowest first (`"signed"`, `"model_card"`, ...); bit 7 is reported as `"unknown"`.
    pub fn names(self) -> Vec<String> {
        let mut names: Vec<String> = Self::NAMES
            .iter()
            .filter(|(mask, _)| self.contains(*mask))
            .map(|(_, name)| (*name).to_string())
            .collect();
        if self.0 & 0x80 != 0 {
            names.push("unknown".to_string());
        }
        names
    }
}

/// The 32-byte v1 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V1Header {
    /// Byte 4 (always 1).
    pub version_major: u8,
    /// Byte 5.
    pub version_minor: u8,
    /// Bytes 6..8: the aprender model_type code.
    pub model_type: u16,
    /// Bytes 8..12: the MessagePack metadata length.
    pub metadata_size: u32,
    /// Bytes 12..16: the stored payload length.
    pub payload_size: u32,
    /// Bytes 16..20: the bincode length after decompression.
    pub uncompressed_size: u32,
    /// Byte 20.
    pub compression: Compression,
    /// Byte 21.
    pub flags: V1Flags,
    /// Byte 22.
    pub quality_score: u8,
}

impl V1Header {
    /// Reads and checks the header: magic, major version 1, known
    /// compression, not encrypted, uncompressed size within 1 GiB. The model
    /// type is not checked here (see [`decode`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, V1Error> {
        let header: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(V1Error::TruncatedHeader {
                length: bytes.len(),
            })?;
        let [m0, m1, m2, m3, major, minor, t0, t1, s0, s1, s2, s3, p0, p1, p2, p3, u0, u1, u2, u3, compression, flags, quality_score, ..] =
            *header;
        let found = [m0, m1, m2, m3];
        if found != MAGIC {
            return Err(V1Error::BadMagic { found });
        }
        if major != 1 {
            return Err(V1Error::UnsupportedVersion { major, minor });
        }
        if flags & V1Flags::ENCRYPTED != 0 {
            return Err(V1Error::Encrypted { flags });
        }
        let compression = Compression::from_code(compression)
            .ok_or(V1Error::UnknownCompression { code: compression })?;
        let uncompressed_size = u32::from_le_bytes([u0, u1, u2, u3]);
        if uncompressed_size > MAX_UNCOMPRESSED_SIZE {
            return Err(V1Error::PayloadTooLarge {
                size: uncompressed_size,
                limit: MAX_UNCOMPRESSED_SIZE,
            });
        }
        Ok(Self {
            version_major: major,
            version_minor: minor,
            model_type: u16::from_le_bytes([t0, t1]),
            metadata_size: u32::from_le_bytes([s0, s1, s2, s3]),
            payload_size: u32::from_le_bytes([p0, p1, p2, p3]),
            uncompressed_size,
            compression,
            flags: V1Flags(flags),
            quality_score,
        })
    }

    /// The aprender name of [`model_type`](Self::model_type).
    pub fn model_type_name(&self) -> &'static str {
        model_type_name(self.model_type)
    }
}

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
        self.string("model_name")
    }

    /// `description`, when set.
    pub fn description(&self) -> Option<&str> {
        self.string("description")
    }

    /// `created_at` (Unix seconds as a string).
    pub fn created_at(&self) -> Option<&str> {
        self.string("created_at")
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
