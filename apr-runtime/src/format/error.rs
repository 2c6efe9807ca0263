//! [`FormatError`]: every way a `.apr` container can be rejected, one variant
//! per rule of `apr-format.md` §1, each naming what was expected and what was
//! found.

use super::dtype::DType;

/// Why a `.apr` file (or a tensor handed to [`AprWriter`](super::AprWriter))
/// was rejected.
///
/// One variant per rule; each says what was expected and what was found
/// (byte offsets, tensor names, stored vs computed checksums). Variants are
/// only ever added, never renamed: match on the ones you care about and keep
/// a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The input has no bytes at all.
    #[error(
        "the model file is empty (0 bytes); expected an .apr container starting with \"APR\\0\""
    )]
    Empty,

    /// The first four bytes are not `APR\0`.
    #[error(
        "bad magic at byte 0: expected \"APR\\0\" (41 50 52 00), found {}{}",
        hex4(found),
        magic_hint(found)
    )]
    BadMagic {
        /// The first four bytes of the input (zero-filled when shorter).
        found: [u8; 4],
    },

    /// The input starts like an `.apr` file but is shorter than the 64-byte header.
    #[error("truncated header: the file is {length} bytes, shorter than the 64-byte v2 header")]
    TruncatedHeader {
        /// Length of the input in bytes.
        length: usize,
    },

    /// The major version at byte 4 is not 2.
    #[error("unsupported container version {major}.{minor} at byte 4: expected major version 2")]
    UnsupportedVersion {
        /// Major version found (byte 4).
        major: u8,
        /// Minor version found (byte 5).
        minor: u8,
    },

    /// The header CRC at bytes 40..44 does not match the header bytes.
    #[error("header checksum mismatch at byte 40: stored {stored:#010x}, computed {computed:#010x} over bytes 0..40 and 44..64")]
    HeaderChecksum {
        /// CRC32 stored in the header.
        stored: u32,
        /// CRC32 computed over bytes `0..40` followed by `44..64`.
        computed: u32,
    },

    /// The flags ask for LZ4 or ZSTD compression, which no reader may guess at.
    #[error("the header flags ({flags:#06x}) mark the file as {algorithm}-compressed; compressed v2 containers are not supported")]
    Compressed {
        /// `"LZ4"` or `"ZSTD"`.
        algorithm: &'static str,
        /// The whole flags field.
        flags: u16,
    },

    /// The flags mark the file as encrypted (AES-256-GCM).
    #[error("the header flags ({flags:#06x}) mark the file as encrypted (AES-256-GCM); encrypted containers cannot be served, decrypt the model first")]
    Encrypted {
        /// The whole flags field.
        flags: u16,
    },

    /// The flags mark the file as signed; v2 defines no signature block.
    #[error("the header flags ({flags:#06x}) mark the file as signed (Ed25519), but v2 defines no signature block")]
    Signed {
        /// The whole flags field.
        flags: u16,
    },

    /// The flags mark the file as one shard of a larger model.
    #[error("the header flags ({flags:#06x}) mark the file as sharded; a Lambda embeds one whole model, merge the shards first")]
    Sharded {
        /// The whole flags field.
        flags: u16,
    },

    /// The flags declare a column-major tensor layout.
    #[error("the header flags ({flags:#06x}) declare a column-major layout; only row-major tensors are supported")]
    ColumnMajor {
        /// The whole flags field.
        flags: u16,
    },

    /// A section offset breaks the file order (header, metadata, index, data)
    /// or the 64-byte alignment.
    #[error("bad {section} offset {offset} (header byte {field_offset}): expected {expected}")]
    SectionOffset {
        /// `"metadata"`, `"tensor index"` or `"data"`.
        section: &'static str,
        /// Byte offset of the offending header field.
        field_offset: usize,
        /// The offset found in the header.
        offset: u64,
        /// What the rule requires, in words.
        expected: String,
    },

    /// The metadata region runs past the tensor index or the end of the file.
    #[error("metadata out of bounds: {size} bytes at offset {offset} end at {}, past {limit_name} at byte {limit}", offset.saturating_add(*size))]
    MetadataOutOfBounds {
        /// metadata_offset from the header.
        offset: u64,
        /// metadata_size from the header.
        size: u64,
        /// The byte the metadata must end at or before.
        limit: u64,
        /// What `limit` is (`"the tensor index"`, `"the end of the file"`).
        limit_name: &'static str,
    },

    /// The metadata is not valid UTF-8 JSON.
    #[error("metadata at byte {offset} is not valid UTF-8 JSON: {message}")]
    MetadataJson {
        /// Byte offset of the metadata.
        offset: u64,
        /// The JSON parser's message (with line and column).
        message: String,
    },

    /// The metadata is valid JSON but not an object.
    #[error("metadata at byte {offset} must be a JSON object, found {found}")]
    MetadataNotObject {
        /// Byte offset of the metadata.
        offset: u64,
        /// The JSON type found, as the message words it (`"an array"`, `"a string"`, ...).
        found: &'static str,
    },

    /// The tensor index runs past the data section or the end of the file.
    #[error("tensor index out of bounds: entry {entry} at byte {offset} needs {needed} more bytes, but the index ends at byte {limit}")]
    IndexOutOfBounds {
        /// Zero-based index entry being read.
        entry: u64,
        /// Absolute byte offset of the field being read.
        offset: u64,
        /// Bytes the field needs.
        needed: u64,
        /// Absolute byte offset where the index must end: the header's `data_offset`.
        limit: u64,
    },

    /// A tensor name is not valid UTF-8.
    #[error("tensor index entry {entry}: the name at byte {offset} is not valid UTF-8")]
    TensorNameUtf8 {
        /// Zero-based index entry.
        entry: u64,
        /// Absolute byte offset of the name.
        offset: u64,
    },

    /// The index is not sorted by name (raw bytes).
    #[error(
        "tensor index is not sorted by name: {name:?} (entry {entry}) comes after {previous:?}"
    )]
    UnsortedIndex {
        /// Zero-based index entry of `name`.
        entry: u64,
        /// The name of the entry before.
        previous: String,
        /// The out-of-order name.
        name: String,
    },

    /// Two tensors share a name (in the index, or added twice to a writer).
    #[error("duplicate tensor name {name:?}: tensor names must be unique")]
    DuplicateTensor {
        /// The repeated name.
        name: String,
    },

    /// A dtype code not in the dtype table.
    #[error("tensor {name:?} has unknown dtype code {code}: expected one of 0 (F32), 1 (F16), 30 (BF16), 3 (F64), 4 (I32), 5 (I64), 6 (I8), 7 (U8), 128/8 (APR-Q4), 129/9 (APR-Q8), 12 (Q4_K), 14 (Q6_K)")]
    UnknownDType {
        /// The tensor's name.
        name: String,
        /// The dtype code found.
        code: u8,
    },

    /// More than 8 dimensions.
    #[error("tensor {name:?} has {ndim} dimensions: at most 8 are allowed")]
    TooManyDims {
        /// The tensor's name.
        name: String,
        /// The number of dimensions found.
        ndim: usize,
    },

    /// The element count (product of dims) or the stored size overflows.
    #[error("tensor {name:?} with shape {shape:?} has too many elements: the element count or its {dtype} byte size overflows")]
    ElementCountOverflow {
        /// The tensor's name.
        name: String,
        /// The tensor's dtype.
        dtype: DType,
        /// The dims found.
        shape: Vec<u64>,
    },

    /// The stored size disagrees with dims × dtype.
    #[error(
        "tensor {name:?} ({dtype}, shape {shape:?}) should be {expected} bytes, found {found}"
    )]
    SizeMismatch {
        /// The tensor's name.
        name: String,
        /// The tensor's dtype.
        dtype: DType,
        /// The tensor's shape.
        shape: Vec<u64>,
        /// The byte size dims × dtype requires.
        expected: u64,
        /// The byte size found (in the index, or handed to the writer).
        found: u64,
    },

    /// A tensor offset is not a multiple of 64.
    #[error("tensor {name:?} starts at data offset {offset}, which is not a multiple of 64")]
    MisalignedTensor {
        /// The tensor's name.
        name: String,
        /// Its offset relative to data_offset.
        offset: u64,
    },

    /// A tensor's bytes run past the data section.
    #[error("tensor {name:?} out of bounds: {size} bytes at data offset {offset} end at {}, but the data section is {data_len} bytes", offset.saturating_add(*size))]
    TensorOutOfBounds {
        /// The tensor's name.
        name: String,
        /// Its offset relative to data_offset.
        offset: u64,
        /// Its size in bytes.
        size: u64,
        /// Length of the data section (without the footer).
        data_len: u64,
    },

    /// The file length is neither the full length nor the full length
    /// without the 4-byte footer.
    #[error("bad file length {found}: the header and index describe a file of {expected_with_footer} bytes (or {} without the CRC footer)", expected_with_footer.saturating_sub(4))]
    FileLength {
        /// data_offset + Σ align64(size) + 4.
        expected_with_footer: u64,
        /// Length of the input.
        found: u64,
    },

    /// The footer CRC does not match the bytes before it.
    #[error("footer checksum mismatch at byte {offset}: stored {stored:#010x}, computed {computed:#010x} over the {offset} bytes before it")]
    FooterChecksum {
        /// CRC32 stored in the last 4 bytes.
        stored: u32,
        /// CRC32 computed over every byte before the footer.
        computed: u32,
        /// Byte offset of the footer.
        offset: u64,
    },

    /// A tensor's dtype cannot be decoded to f32.
    #[error("tensor {name:?} has dtype {dtype}, which is not supported for inference")]
    UnsupportedDType {
        /// The tensor's name.
        name: String,
        /// The dtype.
        dtype: DType,
    },

    /// A tensor name cannot be written (longer than 65535 bytes).
    #[error("tensor name of {length} bytes is too long: at most 65535 bytes fit the index")]
    NameTooLong {
        /// The name's length in bytes.
        length: usize,
    },

    /// A v1 (`APRN`) file was rejected by the v1 decoder or converter.
    #[cfg(feature = "v1")]
    #[error(transparent)]
    V1(super::v1::V1Error),
}

fn hex4(bytes: &[u8; 4]) -> String {
    let [a, b, c, d] = *bytes;
    format!("{a:02x} {b:02x} {c:02x} {d:02x}")
}

fn magic_hint(found: &[u8; 4]) -> &'static str {
    if found == b"APRN" {
        " (an APR v1 file: convert it with `apr-lambda convert`)"
    } else {
        ""
    }
}
