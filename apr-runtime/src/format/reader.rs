//! The zero-copy v2 reader: [`AprFile::parse`] validates every rule of
//! `apr-format.md` §1 once, then hands out [`Tensor`] views into the bytes.

use std::borrow::Cow;

use serde_json::Value;

use super::codec::decode_to_f32;
use super::dtype::DType;
use super::error::FormatError;
use super::header::{align64, header_crc, Header, ALIGNMENT, HEADER_LEN, MAGIC};
use super::metadata::{json_type_name, Metadata};

/// The most dimensions a tensor may have.
pub const MAX_DIMS: usize = 8;

/// Smallest possible index entry: name_len, dtype, ndim, offset, size.
const MIN_INDEX_ENTRY: u64 = 2 + 1 + 1 + 8 + 8;

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

/// One entry of the tensor index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TensorInfo {
    /// Unique name; the index is sorted by its raw bytes.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dims, row-major, outermost first (a weight is `[out, in]`).
    pub shape: Vec<usize>,
    /// Offset relative to the data section; a multiple of 64.
    pub offset: u64,
    /// Exact stored byte length, without padding.
    pub size: u64,
}

impl TensorInfo {
    /// Number of elements (the product of the dims; 1 for a scalar).
    ///
    /// Saturates at `usize::MAX`; for entries of a parsed file the product is
    /// known not to overflow.
    pub fn numel(&self) -> usize {
        self.shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .unwrap_or(usize::MAX)
    }
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
fn slice(bytes: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
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

/// Reads index fields between `pos` and `limit`, naming the entry on failure.
struct IndexCursor<'b> {
    bytes: &'b [u8],
    pos: u64,
    limit: u64,
    entry: u64,
}

impl<'b> IndexCursor<'b> {
    fn take(&mut self, len: u64) -> Result<&'b [u8], FormatError> {
        let out_of_bounds = FormatError::IndexOutOfBounds {
            entry: self.entry,
            offset: self.pos,
            needed: len,
            limit: self.limit,
        };
        let end = match self.pos.checked_add(len) {
            Some(end) if end <= self.limit => end,
            _ => return Err(out_of_bounds),
        };
        let taken = slice(self.bytes, self.pos, len).ok_or(out_of_bounds)?;
        self.pos = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, FormatError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let taken = self.take(N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(taken);
        Ok(out)
    }
}

/// The tensor index: bounds, names (UTF-8, sorted, unique), dtype, ndim,
/// element count, size vs dims × dtype, alignment.
fn parse_index(bytes: &[u8], header: &Header) -> Result<Vec<TensorInfo>, FormatError> {
    let mut cursor = IndexCursor {
        bytes,
        pos: header.tensor_index_offset,
        limit: header.data_offset,
        entry: 0,
    };
    let count = u64::from(header.tensor_count);
    let room = header
        .data_offset
        .saturating_sub(header.tensor_index_offset)
        / MIN_INDEX_ENTRY;
    let mut tensors: Vec<TensorInfo> =
        Vec::with_capacity(usize::try_from(count.min(room)).unwrap_or(0));
    for entry in 0..count {
        cursor.entry = entry;
        let name_len = cursor.u16()?;
        let name_offset = cursor.pos;
        let name = std::str::from_utf8(cursor.take(u64::from(name_len))?)
            .map_err(|_| FormatError::TensorNameUtf8 {
                entry,
                offset: name_offset,
            })?
            .to_string();
        if let Some(previous) = tensors.last() {
            match previous.name.as_bytes().cmp(name.as_bytes()) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Err(FormatError::DuplicateTensor { name }),
                std::cmp::Ordering::Greater => {
                    return Err(FormatError::UnsortedIndex {
                        entry,
                        previous: previous.name.clone(),
                        name,
                    })
                }
            }
        }
        let code = cursor.u8()?;
        let Some(dtype) = DType::from_code(code) else {
            return Err(FormatError::UnknownDType { name, code });
        };
        let ndim = usize::from(cursor.u8()?);
        if ndim > MAX_DIMS {
            return Err(FormatError::TooManyDims { name, ndim });
        }
        let mut dims = Vec::with_capacity(ndim);
        for _ in 0..ndim {
            dims.push(cursor.u64()?);
        }
        let offset = cursor.u64()?;
        let size = cursor.u64()?;

        let shape: Option<Vec<usize>> = dims.iter().map(|&d| usize::try_from(d).ok()).collect();
        let expected = shape.as_ref().and_then(|shape| {
            let numel = shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
            dtype.stored_size(numel)
        });
        let (Some(shape), Some(expected)) = (shape, expected) else {
            return Err(FormatError::ElementCountOverflow {
                name,
                dtype,
                shape: dims,
            });
        };
        if expected != size {
            return Err(FormatError::SizeMismatch {
                name,
                dtype,
                shape: dims,
                expected,
                found: size,
            });
        }
        if offset % ALIGNMENT != 0 {
            return Err(FormatError::MisalignedTensor { name, offset });
        }
        tensors.push(TensorInfo {
            name,
            dtype,
            shape,
            offset,
            size,
        });
    }
    Ok(tensors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::header::{Flags, HEADER_CRC_OFFSET};
    use crate::format::AprWriter;

    /// One hand-made index entry (anything may be wrong with it).
    struct RawEntry {
        name: Vec<u8>,
        code: u8,
        dims: Vec<u64>,
        offset: u64,
        size: u64,
    }

    fn entry(name: &str, code: u8, dims: &[u64], offset: u64, size: u64) -> RawEntry {
        RawEntry {
            name: name.as_bytes().to_vec(),
            code,
            dims: dims.to_vec(),
            offset,
            size,
        }
    }

    /// Lays out a file exactly like the writer would, from raw parts, with
    /// valid checksums; `data_len` bytes of data (0x11 filled).
    fn raw_file(json: &[u8], entries: &[RawEntry], data_len: usize) -> Vec<u8> {
        let mut index = Vec::new();
        for e in entries {
            index.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            index.extend_from_slice(&e.name);
            index.push(e.code);
            index.push(e.dims.len() as u8);
            for d in &e.dims {
                index.extend_from_slice(&d.to_le_bytes());
            }
            index.extend_from_slice(&e.offset.to_le_bytes());
            index.extend_from_slice(&e.size.to_le_bytes());
        }
        let index_offset = 64 + (json.len() as u64).div_ceil(64) * 64;
        let data_offset = index_offset + (index.len() as u64).div_ceil(64) * 64;
        let header = Header {
            version_major: 2,
            version_minor: 0,
            flags: Flags(Flags::ROW_MAJOR),
            tensor_count: entries.len() as u32,
            metadata_offset: 64,
            metadata_size: json.len() as u32,
            tensor_index_offset: index_offset,
            data_offset,
            header_crc: 0,
        };
        let mut out = header.encode().to_vec();
        out.extend_from_slice(json);
        out.resize(index_offset as usize, 0);
        out.extend_from_slice(&index);
        out.resize(data_offset as usize, 0);
        out.resize(data_offset as usize + data_len, 0x11);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    const JSON: &[u8] = br#"{"model_type":"LinearRegression"}"#;

    fn valid() -> Vec<u8> {
        raw_file(
            JSON,
            &[
                entry("bias", 0, &[1], 0, 4),
                entry("weight", 0, &[1, 3], 64, 12),
            ],
            128,
        )
    }

    /// Rewrites the header field at `at`, then fixes both checksums.
    fn patch(mut bytes: Vec<u8>, at: usize, new: &[u8]) -> Vec<u8> {
        bytes[at..at + new.len()].copy_from_slice(new);
        refresh_checksums(bytes)
    }

    fn refresh_checksums(mut bytes: Vec<u8>) -> Vec<u8> {
        let mut header = [0u8; 64];
        header.copy_from_slice(&bytes[..64]);
        let crc = header_crc(&header);
        bytes[HEADER_CRC_OFFSET..HEADER_CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
        let body = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    fn parse_err(bytes: &[u8]) -> FormatError {
        match AprFile::parse(bytes) {
            Ok(_) => panic!("accepted a file that breaks a rule"),
            Err(e) => e,
        }
    }

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
    fn index_names_are_sorted_unique_utf8() {
        let unsorted = raw_file(
            JSON,
            &[entry("b", 0, &[1], 0, 4), entry("a", 0, &[1], 64, 4)],
            128,
        );
        assert!(matches!(
            parse_err(&unsorted),
            FormatError::UnsortedIndex { entry: 1, .. }
        ));
        let duplicate = raw_file(
            JSON,
            &[entry("a", 0, &[1], 0, 4), entry("a", 0, &[1], 64, 4)],
            128,
        );
        assert!(
            matches!(parse_err(&duplicate), FormatError::DuplicateTensor { name } if name == "a")
        );
        let mut bad_name = entry("a", 0, &[1], 0, 4);
        bad_name.name = vec![0xc3];
        assert!(matches!(
            parse_err(&raw_file(JSON, &[bad_name], 64)),
            FormatError::TensorNameUtf8 { entry: 0, .. }
        ));
        // Raw-byte order: "Z" (0x5a) sorts before "a" (0x61), "é" after "z".
        let bytes_order = raw_file(
            JSON,
            &[
                entry("Z", 0, &[1], 0, 4),
                entry("a", 0, &[1], 64, 4),
                entry("é", 0, &[1], 128, 4),
            ],
            192,
        );
        let file = AprFile::parse(&bytes_order).expect("valid");
        assert!(file.tensor("é").is_some() && file.tensor("Z").is_some());
    }

    #[test]
    fn index_entries_are_checked() {
        let one = |e: RawEntry, data: usize| parse_err(&raw_file(JSON, &[e], data));
        assert!(matches!(
            one(entry("t", 2, &[1], 0, 4), 64),
            FormatError::UnknownDType { code: 2, .. }
        ));
        assert!(matches!(
            one(entry("t", 0, &[1; 9], 0, 4), 64),
            FormatError::TooManyDims { ndim: 9, .. }
        ));
        assert!(matches!(
            one(entry("t", 0, &[2, 2], 0, 12), 64),
            FormatError::SizeMismatch {
                expected: 16,
                found: 12,
                ..
            }
        ));
        assert!(matches!(
            one(entry("t", 5, &[u64::MAX, 2], 0, 0), 64),
            FormatError::ElementCountOverflow { .. }
        ));
        assert!(matches!(
            one(entry("t", 129, &[u64::MAX / 2], 0, 0), 64),
            FormatError::ElementCountOverflow { .. } | FormatError::SizeMismatch { .. }
        ));
        assert!(matches!(
            one(entry("t", 0, &[1], 4, 4), 64),
            FormatError::MisalignedTensor { offset: 4, .. }
        ));
        assert!(matches!(
            one(entry("t", 0, &[1], 64, 4), 64),
            FormatError::TensorOutOfBounds { offset: 64, .. }
        ));
        assert!(matches!(
            one(entry("t", 0, &[1], u64::MAX - 63, 4), 64),
            FormatError::TensorOutOfBounds { .. }
        ));
        // Zero-dim (scalar) and zero-size tensors are fine.
        let scalar = raw_file(
            JSON,
            &[entry("s", 0, &[], 0, 4), entry("z", 0, &[0], 64, 0)],
            64,
        );
        let file = AprFile::parse(&scalar).expect("valid");
        assert_eq!(file.tensor("s").map(|t| t.numel()), Some(1));
        assert_eq!(
            file.tensor("z")
                .and_then(|t| t.to_f32().ok())
                .map(|v| v.len()),
            Some(0)
        );
    }

    #[test]
    fn index_must_fit_before_the_data() {
        // The zero padding after the last entry reads as an entry named "",
        // which sorts before "weight".
        let too_many = patch(valid(), 8, &5u32.to_le_bytes());
        assert!(matches!(
            parse_err(&too_many),
            FormatError::UnsortedIndex { entry: 2, .. }
        ));
        // One entry of exactly 64 bytes (no padding): a second one cannot fit.
        let name = "n".repeat(36);
        let exact = raw_file(JSON, &[entry(&name, 0, &[1], 0, 4)], 64);
        assert!(AprFile::parse(&exact).is_ok());
        assert!(matches!(
            parse_err(&patch(exact.clone(), 8, &2u32.to_le_bytes())),
            FormatError::IndexOutOfBounds {
                entry: 1,
                needed: 2,
                ..
            }
        ));
        // A huge count must fail fast, without a huge allocation.
        assert!(matches!(
            parse_err(&patch(exact, 8, &u32::MAX.to_le_bytes())),
            FormatError::IndexOutOfBounds { entry: 1, .. }
        ));
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
