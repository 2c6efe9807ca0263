//! [`DType`]: the dtype table of `apr-format.md` §1 — every element type,
//! its index code (old codes included), its name and its stored size. The
//! encoding and decoding of the values are in [`codec`](super::codec).

use std::fmt;

/// Element type of a tensor (the dtype table of `apr-format.md` §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE f32, 4 bytes per element (code 0).
    F32,
    /// IEEE half, 2 bytes per element (code 1).
    F16,
    /// bfloat16, 2 bytes per element (code 30).
    BF16,
    /// IEEE f64, 8 bytes per element (code 3).
    F64,
    /// i32, 4 bytes per element (code 4).
    I32,
    /// i64, 8 bytes per element (code 5).
    I64,
    /// i8, 1 byte per element (code 6).
    I8,
    /// u8, 1 byte per element (code 7).
    U8,
    /// Aprender 4-bit blocks: 32 values per 18-byte block, f16 scale then
    /// 16 bytes of nibbles (code 128; old files: 8).
    AprQ4,
    /// Aprender 8-bit: one f32 scale for the tensor, then one i8 per value
    /// (code 129; old files: 9).
    AprQ8,
    /// GGML Q4_K: 144-byte super-blocks of 256 values (code 12).
    Q4K,
    /// GGML Q6_K: 210-byte super-blocks of 256 values (code 14).
    Q6K,
}

/// Values per APR-Q4 block.
pub(super) const APR_Q4_BLOCK: usize = 32;
/// Bytes per APR-Q4 block: an f16 scale and 16 bytes of nibbles.
pub(super) const APR_Q4_BLOCK_BYTES: usize = 18;
/// Values per GGML k-quant super-block.
pub(super) const QK_K: usize = 256;
/// Bytes per Q4_K super-block: d, dmin (f16), 12 scale bytes, 128 nibble bytes.
pub(super) const Q4K_BLOCK_BYTES: usize = 144;
/// Bytes per Q6_K super-block: 128 low bytes, 64 high bytes, 16 scales, d (f16).
pub(super) const Q6K_BLOCK_BYTES: usize = 210;

impl DType {
    /// Every dtype, in code order of the dtype table.
    pub const ALL: [DType; 12] = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::F64,
        DType::I32,
        DType::I64,
        DType::I8,
        DType::U8,
        DType::AprQ4,
        DType::AprQ8,
        DType::Q4K,
        DType::Q6K,
    ];

    /// The code written in the tensor index (the current code: 128/129 for
    /// APR-Q4/APR-Q8).
    pub fn code(self) -> u8 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::BF16 => 30,
            DType::F64 => 3,
            DType::I32 => 4,
            DType::I64 => 5,
            DType::I8 => 6,
            DType::U8 => 7,
            DType::AprQ4 => 128,
            DType::AprQ8 => 129,
            DType::Q4K => 12,
            DType::Q6K => 14,
        }
    }

    /// The dtype for an index code, accepting the old codes 8 (APR-Q4) and
    /// 9 (APR-Q8); `None` for a code not in the table.
    pub fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            0 => DType::F32,
            1 => DType::F16,
            30 => DType::BF16,
            3 => DType::F64,
            4 => DType::I32,
            5 => DType::I64,
            6 => DType::I8,
            7 => DType::U8,
            128 | 8 => DType::AprQ4,
            129 | 9 => DType::AprQ8,
            12 => DType::Q4K,
            14 => DType::Q6K,
            _ => return None,
        })
    }

    /// The name used in inspection output (`"F32"`, `"APR-Q4"`, `"Q4_K"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::F64 => "F64",
            DType::I32 => "I32",
            DType::I64 => "I64",
            DType::I8 => "I8",
            DType::U8 => "U8",
            DType::AprQ4 => "APR-Q4",
            DType::AprQ8 => "APR-Q8",
            DType::Q4K => "Q4_K",
            DType::Q6K => "Q6_K",
        }
    }

    /// Whether this is a quantized (block or scaled) format.
    pub fn is_quantized(self) -> bool {
        matches!(self, DType::AprQ4 | DType::AprQ8 | DType::Q4K | DType::Q6K)
    }

    /// The exact stored byte size of `numel` elements (without padding), or
    /// `None` when it overflows `u64`.
    ///
    /// Block formats round up to whole blocks: APR-Q4 is `ceil(n/32) × 18`,
    /// Q4_K `ceil(n/256) × 144`, Q6_K `ceil(n/256) × 210`; APR-Q8 is `4 + n`.
    pub fn stored_size(self, numel: usize) -> Option<u64> {
        let n = u64::try_from(numel).ok()?;
        let blocks = |per: u64, bytes: u64| n.div_ceil(per).checked_mul(bytes);
        match self {
            DType::F32 | DType::I32 => n.checked_mul(4),
            DType::F16 | DType::BF16 => n.checked_mul(2),
            DType::F64 | DType::I64 => n.checked_mul(8),
            DType::I8 | DType::U8 => Some(n),
            DType::AprQ4 => blocks(APR_Q4_BLOCK as u64, APR_Q4_BLOCK_BYTES as u64),
            DType::AprQ8 => n.checked_add(4),
            DType::Q4K => blocks(QK_K as u64, Q4K_BLOCK_BYTES as u64),
            DType::Q6K => blocks(QK_K as u64, Q6K_BLOCK_BYTES as u64),
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for DType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn codes_round_trip_and_old_codes_are_accepted() {
        for dtype in DType::ALL {
            assert_eq!(DType::from_code(dtype.code()), Some(dtype));
        }
        assert_eq!(DType::from_code(8), Some(DType::AprQ4));
        assert_eq!(DType::from_code(9), Some(DType::AprQ8));
        for code in [2u8, 10, 11, 13, 15, 31, 127, 130, 255] {
            assert_eq!(DType::from_code(code), None, "code {code}");
        }
    }

    #[test]
    fn stored_sizes_follow_the_dtype_table() {
        assert_eq!(DType::F32.stored_size(10), Some(40));
        assert_eq!(DType::BF16.stored_size(3), Some(6));
        assert_eq!(DType::F64.stored_size(3), Some(24));
        assert_eq!(DType::AprQ4.stored_size(40), Some(36));
        assert_eq!(DType::AprQ4.stored_size(0), Some(0));
        assert_eq!(DType::AprQ8.stored_size(40), Some(44));
        assert_eq!(DType::Q4K.stored_size(256), Some(144));
        assert_eq!(DType::Q6K.stored_size(512), Some(420));
        assert_eq!(DType::F64.stored_size(usize::MAX), None);
    }
}
