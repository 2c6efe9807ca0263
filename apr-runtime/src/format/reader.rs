//! The zero-copy v2 reader: [`AprFile::parse`] validates every rule of
//! `apr-format.md` §1 once (the tensor index through [`index`](super::index)),
//! then hands out [`Tensor`] views into the bytes.

use std::borrow::Cow;

use serde_json::Value;

use super::codec::decode_to_f32;
use super::dtype::DType;
use super::error::FormatError;
use super::header::{align64, header_crc, Header, ALIGNMENT, HEADER_LEN, MAGIC};
use super::index::{parse_index, TensorInfo};
use super::metadata::{json_type_name, Metadata};

/// Options for [`AprFile::parse_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Verify the footer CRC when the file has one (default `true`). The
    /// Lambda skips it at init because the macro verified it at compile time.
    pub verify_footer_crc: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            verify_footer_crc: true,
        }
    }
}

/// What happened to the 4-byte footer CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FooterStatus {
    /// The footer was present and matched.
    Verified {
        /// The CRC32 of every byte before the footer.
        crc: u32,
    },
    /// The file has no footer (it is exactly 4 bytes shorter than the full length).
    Absent,
    /// The footer is present but was not checked ([`ParseOptions::verify_footer_crc`] was off).
    NotChecked,
}

/// A tensor of a parsed file: its index entry and a view of its bytes.
#[derive(Debug, Clone)]
pub struct Tensor<'a> {
    info: TensorInfo,
    bytes: &'a [u8],
}

impl<'a> Tensor<'a> {
    /// The index entry.
    pub fn info(&self) -> &TensorInfo {
        &self.info
    }

    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.info.dtype
    }

    /// The dims, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.info.shape
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.info.numel()
    }

    /// The stored bytes (exactly `info().size` bytes, without padding).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The values as f32: borrowed in place for F32 tensors whose bytes are
    /// 4-aligned (on little-endian targets), decoded or dequantized into a
    /// new vector otherwise.
    pub fn to_f32(&self) -> Result<Cow<'a, [f32]>, FormatError> {
        let numel = self.numel();
        #[cfg(target_endian = "little")]
        if self.info.dtype == DType::F32 {
            if let Ok(values) = bytemuck::try_cast_slice::<u8, f32>(self.bytes) {
                if values.len() == numel {
                    return Ok(Cow::Borrowed(values));
                }
            }
        }
        decode_to_f32(self.info.dtype, self.bytes, numel)
            .map(Cow::Owned)
            .ok_or_else(|| FormatError::SizeMismatch {
                name: self.info.name.clone(),
                dtype: self.info.dtype,
                shape: self.info.shape.iter().map(|&d| d as u64).collect(),
                expected: self.info.dtype.stored_size(numel).unwrap_or(u64::MAX),
                found: self.bytes.len() as u64,
            })
    }
}

/// A validated v2 container, borrowing the bytes it was parsed from.
#[derive(Debug, Clone)]
pub struct AprFile<'a> {
    bytes: &'a [u8],
    header: Header,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    data: &'a [u8],
    footer: FooterStatus,
}

impl<'a> AprFile<'a> {
    /// Parses and validates `bytes` (every rule of `apr-format.md` §1),
    /// verifying the footer CRC when the file has one.
    ///
    /// ```
    /// use apr_runtime::format::{AprFile, AprWriter};
    /// let mut writer = AprWriter::new();
    /// writer.model_type("LinearRegression");
    /// writer.add_f32("weight", &[1, 2], &[0.5, -1.0])?;
    /// let bytes = writer.to_bytes();
    /// let file = AprFile::parse(&bytes)?;
    /// assert_eq!(file.model_type(), Some("LinearRegression"));
    /// let weight = file.tensor("weight").expect("written above");
    /// assert_eq!(&*weight.to_f32()?, &[0.5, -1.0]);
    /// # Ok::<(), apr_runtime::format::FormatError>(())
    /// ```
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FormatError> {
        Self::parse_with(bytes, ParseOptions::default())
    }

    /// [`AprFile::parse`] with options (e.g. skipping the footer CRC).
    pub fn parse_with(bytes: &'a [u8], opts: ParseOptions) -> Result<Self, FormatError> {
        let header_bytes = check_magic_and_length(bytes)?;
        let header = Header::decode(header_bytes);
        if header.version_major != 2 {
            return Err(FormatError::UnsupportedVersion {
                major: header.version_major,
                minor: header.version_minor,
            });
        }
        let computed = header_crc(header_bytes);
        if computed != header.header_crc {
            return Err(FormatError::HeaderChecksum {
                stored: header.header_crc,
                computed,
            });
        }
        header.flags.check_supported()?;

        let file_len = bytes.len() as u64;
        check_sections(&header, file_len)?;
        let metadata = parse_metadata(bytes, &header)?;
        let tensors = parse_index(bytes, &header)?;

        // Total length = data_offset + Σ align64(size) + 4 (the footer).
        let data_len = tensors
            .iter()
            .try_fold(0u64, |acc, t| acc.checked_add(align64(t.size)?));
        let expected_with_footer = data_len
            .and_then(|len| len.checked_add(header.data_offset))
            .and_then(|len| len.checked_add(4));
        let (Some(data_len), Some(expected_with_footer)) = (data_len, expected_with_footer) else {
            return Err(FormatError::FileLength {
                expected_with_footer: u64::MAX,
                found: file_len,
            });
        };
        let has_footer = if file_len == expected_with_footer {
            true
        } else if file_len == expected_with_footer - 4 {
            false
        } else {
            return Err(FormatError::FileLength {
                expected_with_footer,
                found: file_len,
            });
        };

        for tensor in &tensors {
            let in_bounds = tensor
                .offset
                .checked_add(tensor.size)
                .is_some_and(|end| end <= data_len);
            if !in_bounds {
                return Err(FormatError::TensorOutOfBounds {
                    name: tensor.name.clone(),
                    offset: tensor.offset,
                    size: tensor.size,
                    data_len,
                });
            }
        }
        let data = slice(bytes, header.data_offset, data_len).ok_or(FormatError::FileLength {
            expected_with_footer,
            found: file_len,
        })?;

        let footer = if !has_footer {
            FooterStatus::Absent
        } else if !opts.verify_footer_crc {
            FooterStatus::NotChecked
        } else {
            let body_len = expected_with_footer - 4;
            let (body, stored) = usize::try_from(body_len)
                .ok()
                .and_then(|at| bytes.split_at_checked(at))
                .and_then(|(body, footer)| Some((body, footer.first_chunk::<4>()?)))
                .ok_or(FormatError::FileLength {
                    expected_with_footer,
                    found: file_len,
                })?;
            let stored = u32::from_le_bytes(*stored);
            let computed = crc32fast::hash(body);
            if stored != computed {
                return Err(FormatError::FooterChecksum {
                    stored,
                    computed,
                    offset: body_len,
                });
            }
            FooterStatus::Verified { crc: computed }
        };

        Ok(AprFile {
            bytes,
            header,
            metadata,
            tensors,
            data,
            footer,
        })
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The JSON metadata (unknown keys kept).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Metadata `model_type`; `None` when absent or empty.
    pub fn model_type(&self) -> Option<&str> {
        self.metadata.model_type()
    }

    /// The index entries, sorted by name.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor called `name` (binary search), if present.
    pub fn tensor(&self, name: &str) -> Option<Tensor<'a>> {
        self.view(self.tensor_info(name)?)
    }

    /// The index entry called `name` (binary search, no copy), if present.
    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        let at = self
            .tensors
            .binary_search_by(|t| t.name.as_bytes().cmp(name.as_bytes()))
            .ok()?;
        self.tensors.get(at)
    }

    /// Every tensor, in index (name) order.
    pub fn iter(&self) -> impl Iterator<Item = Tensor<'a>> + '_ {
        self.tensors.iter().filter_map(|info| self.view(info))
    }

    /// What happened to the footer CRC.
    pub fn footer(&self) -> FooterStatus {
        self.footer
    }

    /// The whole input.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    fn view(&self, info: &TensorInfo) -> Option<Tensor<'a>> {
        let data: &'a [u8] = self.data;
        Some(Tensor {
            info: info.clone(),
            bytes: slice(data, info.offset, info.size)?,
        })
    }
}

/// `bytes[offset..offset + len]` with every conversion checked.
pub(super) fn slice(bytes: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    bytes.get(start..end)
}

/// Empty, magic, and the 64-byte header length.
fn check_magic_and_length(bytes: &[u8]) -> Result<&[u8; HEADER_LEN], FormatError> {
    if bytes.is_empty() {
        return Err(FormatError::Empty);
    }
    let mut found = [0u8; 4];
    for (dst, src) in found.iter_mut().zip(bytes) {
        *dst = *src;
    }
    let magic_len = bytes.len().min(4);
    if bytes.get(..magic_len) != MAGIC.get(..magic_len) {
        return Err(FormatError::BadMagic { found });
    }
    bytes
        .first_chunk::<HEADER_LEN>()
        .ok_or(FormatError::TruncatedHeader {
            length: bytes.len(),
        })
}

/// Section order: header, metadata, index, data; data 64-aligned and inside the file.
fn check_sections(header: &Header, file_len: u64) -> Result<(), FormatError> {
    if header.metadata_offset < HEADER_LEN as u64 {
        return Err(FormatError::SectionOffset {
            section: "metadata",
            field_offset: 12,
            offset: header.metadata_offset,
            expected: format!("at least {HEADER_LEN} (the end of the header)"),
        });
    }
    let metadata_end = header
        .metadata_offset
        .checked_add(u64::from(header.metadata_size));
    let (limit, limit_name) = if header.tensor_index_offset <= file_len {
        (header.tensor_index_offset, "the tensor index")
    } else {
        (file_len, "the end of the file")
    };
    if metadata_end.is_none_or(|end| end > limit) {
        return Err(FormatError::MetadataOutOfBounds {
            offset: header.metadata_offset,
            size: u64::from(header.metadata_size),
            limit,
            limit_name,
        });
    }
    if header.tensor_index_offset > file_len {
        return Err(FormatError::SectionOffset {
            section: "tensor index",
            field_offset: 24,
            offset: header.tensor_index_offset,
            expected: format!("at most the file length {file_len}"),
        });
    }
    if header.data_offset < header.tensor_index_offset {
        return Err(FormatError::SectionOffset {
            section: "data",
            field_offset: 32,
            offset: header.data_offset,
            expected: format!(
                "at least the tensor index offset {}",
                header.tensor_index_offset
            ),
        });
    }
    if !header.data_offset.is_multiple_of(ALIGNMENT) {
        return Err(FormatError::SectionOffset {
            section: "data",
            field_offset: 32,
            offset: header.data_offset,
            expected: "a multiple of 64".to_string(),
        });
    }
    if header.data_offset > file_len {
        return Err(FormatError::SectionOffset {
            section: "data",
            field_offset: 32,
            offset: header.data_offset,
            expected: format!("at most the file length {file_len}"),
        });
    }
    Ok(())
}

/// The JSON object at metadata_offset (already bounds-checked).
fn parse_metadata(bytes: &[u8], header: &Header) -> Result<Metadata, FormatError> {
    let offset = header.metadata_offset;
    let json = slice(bytes, offset, u64::from(header.metadata_size)).ok_or(
        FormatError::MetadataOutOfBounds {
            offset,
            size: u64::from(header.metadata_size),
            limit: bytes.len() as u64,
            limit_name: "the end of the file",
        },
    )?;
    let value: Value = serde_json::from_slice(json).map_err(|e| FormatError::MetadataJson {
        offset,
        message: e.to_string(),
    })?;
    match value {
        Value::Object(map) => Ok(Metadata::new(map)),
        other => Err(FormatError::MetadataNotObject {
            offset,
            found: json_type_name(&other),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::header::Flags;
    use crate::format::testing::*;
    use crate::format::AprWriter;

    #[test]
    fn a_valid_hand_made_file_reads() {
        let bytes = valid();
        let file = AprFile::parse(&bytes).expect("valid");
        assert_eq!(file.header().tensor_count, 2);
        assert_eq!(file.model_type(), Some("LinearRegression"));
        let weight = file.tensor("weight").expect("present");
        assert_eq!(weight.shape(), &[1, 3]);
        assert_eq!(weight.bytes(), &[0x11; 12]);
        assert!(file.tensor("missing").is_none());
        assert_eq!(file.tensor_info("bias").map(|t| t.size), Some(4));
        assert!(file.tensor_info("").is_none());
        assert_eq!(file.iter().count(), 2);
        assert!(matches!(file.footer(), FooterStatus::Verified { .. }));
    }

    #[test]
    fn magic_and_header_length() {
        assert!(matches!(parse_err(&[]), FormatError::Empty));
        assert!(matches!(
            parse_err(b"AP"),
            FormatError::TruncatedHeader { length: 2 }
        ));
        assert!(matches!(
            parse_err(b"XY"),
            FormatError::BadMagic {
                found: [b'X', b'Y', 0, 0]
            }
        ));
        assert!(matches!(
            parse_err(b"APRN\x01\x00rest"),
            FormatError::BadMagic { found } if &found == b"APRN"
        ));
        assert!(parse_err(b"APRN").to_string().contains("v1"));
        let bytes = valid();
        assert!(matches!(
            parse_err(&bytes[..63]),
            FormatError::TruncatedHeader { length: 63 }
        ));
    }

    #[test]
    fn version_major_must_be_2_any_minor() {
        assert!(matches!(
            parse_err(&patch(valid(), 4, &[3, 0])),
            FormatError::UnsupportedVersion { major: 3, minor: 0 }
        ));
        assert!(matches!(
            parse_err(&patch(valid(), 4, &[1, 0])),
            FormatError::UnsupportedVersion { major: 1, .. }
        ));
        let minor = patch(valid(), 5, &[9]);
        assert_eq!(
            AprFile::parse(&minor).map(|f| f.header().version()).ok(),
            Some("2.9".into())
        );
    }

    #[test]
    fn header_crc_is_checked() {
        let mut bytes = valid();
        bytes[8] ^= 1;
        match parse_err(&bytes) {
            FormatError::HeaderChecksum { stored, computed } => assert_ne!(stored, computed),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn rejected_flags() {
        for (mask, check) in [
            (Flags::LZ4, "LZ4"),
            (Flags::ZSTD, "ZSTD"),
            (Flags::ENCRYPTED, "encrypted"),
            (Flags::SIGNED, "signed"),
            (Flags::SHARDED, "sharded"),
            (Flags::COLUMN_MAJOR, "column-major"),
        ] {
            let err = parse_err(&patch(valid(), 6, &(mask | Flags::ROW_MAJOR).to_le_bytes()));
            assert!(err.to_string().contains(check), "{err}");
        }
        // Informational flags and a missing row-major flag are fine.
        let quiet = patch(
            valid(),
            6,
            &(Flags::QUANTIZED | Flags::HAS_VOCAB).to_le_bytes(),
        );
        assert!(AprFile::parse(&quiet).is_ok());
        assert!(AprFile::parse(&patch(valid(), 6, &[0, 0])).is_ok());
    }

    #[test]
    fn section_offsets() {
        assert!(matches!(
            parse_err(&patch(valid(), 12, &0u64.to_le_bytes())),
            FormatError::SectionOffset {
                section: "metadata",
                ..
            }
        ));
        assert!(matches!(
            parse_err(&patch(valid(), 20, &u32::MAX.to_le_bytes())),
            FormatError::MetadataOutOfBounds { .. }
        ));
        assert!(matches!(
            parse_err(&patch(valid(), 12, &(u64::MAX - 2).to_le_bytes())),
            FormatError::MetadataOutOfBounds { .. }
        ));
        assert!(matches!(
            parse_err(&patch(valid(), 24, &u64::MAX.to_le_bytes())),
            FormatError::SectionOffset {
                section: "tensor index",
                ..
            }
        ));
        assert!(matches!(
            parse_err(&patch(valid(), 32, &64u64.to_le_bytes())),
            FormatError::SectionOffset {
                section: "data",
                ..
            }
        ));
        assert!(matches!(
            parse_err(&patch(valid(), 32, &(256u64 + 8).to_le_bytes())),
            FormatError::SectionOffset {
                section: "data",
                ..
            }
        ));
        assert!(matches!(
            parse_err(&patch(valid(), 32, &(u64::MAX - 63).to_le_bytes())),
            FormatError::SectionOffset {
                section: "data",
                ..
            }
        ));
    }

    #[test]
    fn metadata_must_be_a_json_object() {
        let bad_json = raw_file(b"{\"model_type\":", &[], 0);
        assert!(matches!(
            parse_err(&bad_json),
            FormatError::MetadataJson { offset: 64, .. }
        ));
        let not_utf8 = raw_file(b"{\"a\":\"\xff\"}", &[], 0);
        assert!(matches!(
            parse_err(&not_utf8),
            FormatError::MetadataJson { .. }
        ));
        let array = raw_file(b"[1,2]", &[], 0);
        assert!(matches!(
            parse_err(&array),
            FormatError::MetadataNotObject {
                found: "an array",
                ..
            }
        ));
        let padded = raw_file(b"{}\0\0", &[], 0);
        assert!(matches!(
            parse_err(&padded),
            FormatError::MetadataJson { .. }
        ));
    }

    #[test]
    fn metadata_keeps_unknown_keys_and_the_last_duplicate() {
        let bytes = raw_file(
            br#"{"model_type":"","custom":{"x":[1]},"k":1,"k":2}"#,
            &[],
            0,
        );
        let file = AprFile::parse(&bytes).expect("valid");
        assert_eq!(file.model_type(), None);
        assert_eq!(file.metadata().get("k"), Some(&Value::from(2)));
        assert_eq!(
            file.metadata().get("custom"),
            Some(&serde_json::json!({"x": [1]}))
        );
        let empty = raw_file(b"{}", &[], 0);
        assert!(AprFile::parse(&empty).is_ok_and(|f| f.model_type().is_none()));
    }

    #[test]
    fn file_length_rules() {
        let bytes = valid();
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(parse_err(&longer), FormatError::FileLength { .. }));
        for cut in [1, 2, 3, 5, 64] {
            let short = &bytes[..bytes.len() - cut];
            assert!(
                matches!(parse_err(short), FormatError::FileLength { .. }),
                "cut {cut}"
            );
        }
        let no_footer = &bytes[..bytes.len() - 4];
        let file = AprFile::parse(no_footer).expect("accepted without footer");
        assert_eq!(file.footer(), FooterStatus::Absent);
        assert!(file.tensor("weight").is_some());
    }

    #[test]
    fn footer_crc_is_verified_unless_disabled() {
        let mut bytes = valid();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x80;
        assert!(matches!(
            parse_err(&bytes),
            FormatError::FooterChecksum { .. }
        ));
        let unchecked = AprFile::parse_with(
            &bytes,
            ParseOptions {
                verify_footer_crc: false,
            },
        );
        assert_eq!(
            unchecked.map(|f| f.footer()).ok(),
            Some(FooterStatus::NotChecked)
        );
        let mut data_flip = valid();
        data_flip[last - 10] ^= 1;
        assert!(matches!(
            parse_err(&data_flip),
            FormatError::FooterChecksum { .. }
        ));
    }

    #[test]
    fn f32_is_borrowed_when_aligned_and_copied_otherwise() {
        let mut writer = AprWriter::new();
        writer
            .add_f32("w", &[2, 2], &[1.0, -2.0, 3.5, f32::MIN])
            .expect("valid");
        let bytes = writer.to_bytes();
        // 4-aligned backing store.
        let mut words = vec![0u32; bytes.len().div_ceil(4) + 1];
        let aligned: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        aligned[..bytes.len()].copy_from_slice(&bytes);
        let file = AprFile::parse(&aligned[..bytes.len()]).expect("valid");
        let values = file.tensor("w").expect("present").to_f32().expect("f32");
        assert!(matches!(values, Cow::Borrowed(_)));
        assert_eq!(&*values, &[1.0, -2.0, 3.5, f32::MIN]);
        // Shift by one byte: the data is no longer 4-aligned.
        aligned.copy_within(..bytes.len(), 1);
        let file = AprFile::parse(&aligned[1..=bytes.len()]).expect("valid");
        let values = file.tensor("w").expect("present").to_f32().expect("f32");
        assert!(matches!(values, Cow::Owned(_)));
        assert_eq!(&*values, &[1.0, -2.0, 3.5, f32::MIN]);
    }
}
