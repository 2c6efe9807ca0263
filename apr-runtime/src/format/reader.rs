//! The zero-copy v2 reader: [`AprFile::parse`] validates every rule of
//! `apr-format.md` §1 once, then hands out [`Tensor`] views into the bytes.

use std::borrow::Cow;

use serde_json::Value;

use super::dtype::{decode_to_f32, DType};
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
        let at = self
            .tensors
            .binary_search_by(|t| t.name.as_bytes().cmp(name.as_bytes()))
            .ok()?;
        self.view(self.tensors.get(at)?)
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
    if header.data_offset % ALIGNMENT != 0 {
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
