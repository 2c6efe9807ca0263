//! [`V1Error`]: why a v1 (`APRN`) file was rejected, one variant per rule of
//! `apr-format.md` §2.

use super::{HEADER_LEN, SUPPORTED_APRENDER};
use crate::format::FormatError;

/// Why a v1 (`APRN`) file was rejected; reaches callers as
/// [`FormatError::V1`].
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
