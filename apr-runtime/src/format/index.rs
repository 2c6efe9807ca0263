//! The tensor index of a v2 file (`apr-format.md` §1): one entry per tensor
//! ([`TensorInfo`]), and the parser that checks every entry against the
//! rules (bounds, sorted unique UTF-8 names, dtype, dims, size, alignment).

use super::dtype::DType;
use super::error::FormatError;
use super::header::{Header, ALIGNMENT};
use super::reader::slice;

/// The most dimensions a tensor may have.
pub const MAX_DIMS: usize = 8;

/// Smallest possible index entry: name_len, dtype, ndim, offset, size.
const MIN_INDEX_ENTRY: u64 = 2 + 1 + 1 + 8 + 8;

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
pub(super) fn parse_index(bytes: &[u8], header: &Header) -> Result<Vec<TensorInfo>, FormatError> {
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
    use crate::format::testing::*;
    use crate::format::{AprFile, FormatError};

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
}
