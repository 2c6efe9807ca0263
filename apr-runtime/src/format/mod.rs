//! The `.apr` model container: a zero-copy v2 reader ([`AprFile`]), a v2
//! writer ([`AprWriter`]), the [`DType`]s and their decoding to f32, and
//! [`FormatError`], one variant per rule of the format.
//!
//! The byte layout is `apr-format.md` §1: a 64-byte header (magic `APR\0`,
//! version 2.x, flags, offsets, header CRC), JSON metadata, a tensor index
//! sorted by name, 64-aligned tensor data, and a CRC32 footer that some real
//! files lack.
//!
//! ```
//! use apr_runtime::format::{AprFile, AprWriter, FooterStatus};
//! let mut writer = AprWriter::new();
//! writer.model_type("LinearRegression");
//! writer.add_f32("weight", &[1, 2], &[2.0, 3.0])?;
//! writer.add_f32("bias", &[1], &[0.5])?;
//! let bytes = writer.to_bytes();
//!
//! let file = AprFile::parse(&bytes)?;
//! assert!(matches!(file.footer(), FooterStatus::Verified { .. }));
//! let names: Vec<&str> = file.tensors().iter().map(|t| t.name.as_str()).collect();
//! assert_eq!(names, ["bias", "weight"]);
//! # Ok::<(), apr_runtime::format::FormatError>(())
//! ```

mod codec;
mod dtype;
mod error;
mod header;
mod index;
mod metadata;
mod reader;
pub(crate) mod schema;
mod writer;

#[cfg(test)]
mod testing;

#[cfg(feature = "v1")]
pub mod v1;

pub use codec::f32_to_f16;
pub use dtype::DType;
pub use error::FormatError;
pub use header::{Flags, Header, ALIGNMENT, HEADER_LEN, MAGIC, MAGIC_V1};
pub use index::{TensorInfo, MAX_DIMS};
pub(crate) use metadata::json_type_name as metadata_json_type_name;
pub use metadata::Metadata;
pub use reader::{AprFile, FooterStatus, ParseOptions, Tensor};
pub use writer::AprWriter;

/// The IEEE CRC-32 (zlib's `crc32`) of `bytes`, as stored in `.apr` files.
///
/// ```
/// assert_eq!(apr_runtime::format::crc32(b"123456789"), 0xCBF4_3926);
/// ```
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Whether `bytes` start with the v1 magic `APRN` (an aprender v1 container,
/// which [`AprFile::parse`] rejects: convert it to v2 first).
///
/// ```
/// assert!(apr_runtime::format::is_v1(b"APRN\x01\x00"));
/// assert!(!apr_runtime::format::is_v1(b"APR\0"));
/// ```
pub fn is_v1(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC_V1)
}
