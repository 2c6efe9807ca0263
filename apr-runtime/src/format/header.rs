//! The 64-byte v2 [`Header`] and its [`Flags`].

use std::fmt;

use super::error::FormatError;

/// The v2 magic, `APR\0`.
pub const MAGIC: [u8; 4] = *b"APR\0";
/// The v1 magic, `APRN`.
pub const MAGIC_V1: [u8; 4] = *b"APRN";
/// Size of the v2 header in bytes.
pub const HEADER_LEN: usize = 64;
/// The alignment of every section and tensor.
pub const ALIGNMENT: u64 = 64;

/// Byte offset of the header CRC field.
pub(crate) const HEADER_CRC_OFFSET: usize = 40;

/// Header flags (u16 at byte 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u16);

impl Flags {
    /// LZ4 compressed (rejected).
    pub const LZ4: u16 = 0x0001;
    /// ZSTD compressed (rejected).
    pub const ZSTD: u16 = 0x0002;
    /// Encrypted with AES-256-GCM (rejected).
    pub const ENCRYPTED: u16 = 0x0004;
    /// Signed with Ed25519 (rejected: v2 defines no signature block).
    pub const SIGNED: u16 = 0x0008;
    /// One shard of a larger model (rejected).
    pub const SHARDED: u16 = 0x0010;
    /// Holds quantized tensors (informational).
    pub const QUANTIZED: u16 = 0x0020;
    /// Carries a filterbank (informational).
    pub const HAS_FILTERBANK: u16 = 0x0040;
    /// Carries a model card (informational).
    pub const HAS_MODEL_CARD: u16 = 0x0080;
    /// Laid out for streaming (informational).
    pub const STREAMING: u16 = 0x0100;
    /// Carries a vocabulary (informational).
    pub const HAS_VOCAB: u16 = 0x0200;
    /// Row-major tensors; set by all current writers, absent means row-major too.
    pub const ROW_MAJOR: u16 = 0x0400;
    /// Column-major tensors (rejected).
    pub const COLUMN_MAJOR: u16 = 0x0800;

    const NAMED: [(u16, &'static str); 12] = [
        (Self::LZ4, "lz4"),
        (Self::ZSTD, "zstd"),
        (Self::ENCRYPTED, "encrypted"),
        (Self::SIGNED, "signed"),
        (Self::SHARDED, "sharded"),
        (Self::QUANTIZED, "quantized"),
        (Self::HAS_FILTERBANK, "filterbank"),
        (Self::HAS_MODEL_CARD, "model_card"),
        (Self::STREAMING, "streaming"),
        (Self::HAS_VOCAB, "vocab"),
        (Self::ROW_MAJOR, "row_major"),
        (Self::COLUMN_MAJOR, "column_major"),
    ];

    /// Whether every bit of `mask` is set.
    pub fn contains(self, mask: u16) -> bool {
        self.0 & mask == mask
    }

    /// The names of the set flags, lowest bit first (`"row_major"`,
    /// `"quantized"`, ...); bits 12–15 are reported as `"unknown"`.
    pub fn names(self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Self::NAMED
            .iter()
            .filter(|(mask, _)| self.contains(*mask))
            .map(|(_, name)| *name)
            .collect();
        if self.0 & 0xf000 != 0 {
            names.push("unknown");
        }
        names
    }

    /// Rejects the flags a runtime must not guess at: compression,
    /// encryption, signing, sharding and column-major layout.
    pub fn check_supported(self) -> Result<(), FormatError> {
        let flags = self.0;
        if self.contains(Self::LZ4) {
            return Err(FormatError::Compressed {
                algorithm: "LZ4",
                flags,
            });
        }
        if self.contains(Self::ZSTD) {
            return Err(FormatError::Compressed {
                algorithm: "ZSTD",
                flags,
            });
        }
        if self.contains(Self::ENCRYPTED) {
            return Err(FormatError::Encrypted { flags });
        }
        if self.contains(Self::SIGNED) {
            return Err(FormatError::Signed { flags });
        }
        if self.contains(Self::SHARDED) {
            return Err(FormatError::Sharded { flags });
        }
        if self.contains(Self::COLUMN_MAJOR) {
            return Err(FormatError::ColumnMajor { flags });
        }
        Ok(())
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)?;
        let names = self.names();
        if !names.is_empty() {
            write!(f, " ({})", names.join(", "))?;
        }
        Ok(())
    }
}

/// The decoded 64-byte v2 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Byte 4: `2`.
    pub version_major: u8,
    /// Byte 5: `0` in current files (any minor is accepted).
    pub version_minor: u8,
    /// Bytes 6..8.
    pub flags: Flags,
    /// Bytes 8..12: number of index entries.
    pub tensor_count: u32,
    /// Bytes 12..20: where the JSON metadata starts (64 in real files).
    pub metadata_offset: u64,
    /// Bytes 20..24: JSON length in bytes, without padding.
    pub metadata_size: u32,
    /// Bytes 24..32: where the tensor index starts.
    pub tensor_index_offset: u64,
    /// Bytes 32..40: where the tensor data starts (tensor offsets are relative to it).
    pub data_offset: u64,
    /// Bytes 40..44: CRC32 over bytes `0..40` followed by `44..64`.
    pub header_crc: u32,
}

impl Header {
    /// Decodes the header fields (no validation beyond what the types hold).
    pub(crate) fn decode(bytes: &[u8; HEADER_LEN]) -> Header {
        let u32_at = |at: usize| {
            let mut b = [0u8; 4];
            if let Some(src) = bytes.get(at..at + 4) {
                b.copy_from_slice(src);
            }
            u32::from_le_bytes(b)
        };
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            if let Some(src) = bytes.get(at..at + 8) {
                b.copy_from_slice(src);
            }
            u64::from_le_bytes(b)
        };
        Header {
            version_major: bytes[4],
            version_minor: bytes[5],
            flags: Flags(u16::from_le_bytes([bytes[6], bytes[7]])),
            tensor_count: u32_at(8),
            metadata_offset: u64_at(12),
            metadata_size: u32_at(20),
            tensor_index_offset: u64_at(24),
            data_offset: u64_at(32),
            header_crc: u32_at(HEADER_CRC_OFFSET),
        }
    }

    /// Encodes the header, computing and storing its CRC.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = self.version_major;
        out[5] = self.version_minor;
        out[6..8].copy_from_slice(&self.flags.0.to_le_bytes());
        out[8..12].copy_from_slice(&self.tensor_count.to_le_bytes());
        out[12..20].copy_from_slice(&self.metadata_offset.to_le_bytes());
        out[20..24].copy_from_slice(&self.metadata_size.to_le_bytes());
        out[24..32].copy_from_slice(&self.tensor_index_offset.to_le_bytes());
        out[32..40].copy_from_slice(&self.data_offset.to_le_bytes());
        let crc = header_crc(&out);
        out[40..44].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// The version as `"major.minor"`.
    pub fn version(&self) -> String {
        format!("{}.{}", self.version_major, self.version_minor)
    }
}

/// CRC32 over header bytes `0..40` followed by `44..64`.
pub(crate) fn header_crc(header: &[u8; HEADER_LEN]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[..HEADER_CRC_OFFSET]);
    hasher.update(&header[HEADER_CRC_OFFSET + 4..]);
    hasher.finalize()
}

/// Rounds `value` up to a multiple of 64, `None` on overflow.
pub(crate) fn align64(value: u64) -> Option<u64> {
    value
        .checked_add(ALIGNMENT - 1)
        .map(|v| v / ALIGNMENT * ALIGNMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names_list_set_bits() {
        assert_eq!(
            Flags(Flags::ROW_MAJOR | Flags::QUANTIZED).names(),
            vec!["quantized", "row_major"]
        );
        assert_eq!(Flags(0x8000).names(), vec!["unknown"]);
        assert_eq!(Flags(0x0400).to_string(), "0x0400 (row_major)");
    }

    #[test]
    fn every_rejected_flag_has_its_variant() {
        assert!(matches!(
            Flags(Flags::LZ4).check_supported(),
            Err(FormatError::Compressed {
                algorithm: "LZ4",
                ..
            })
        ));
        assert!(matches!(
            Flags(Flags::ZSTD).check_supported(),
            Err(FormatError::Compressed {
                algorithm: "ZSTD",
                ..
            })
        ));
        assert!(matches!(
            Flags(Flags::ENCRYPTED).check_supported(),
            Err(FormatError::Encrypted { .. })
        ));
        assert!(matches!(
            Flags(Flags::SIGNED).check_supported(),
            Err(FormatError::Signed { .. })
        ));
        assert!(matches!(
            Flags(Flags::SHARDED).check_supported(),
            Err(FormatError::Sharded { .. })
        ));
        assert!(matches!(
            Flags(Flags::COLUMN_MAJOR).check_supported(),
            Err(FormatError::ColumnMajor { .. })
        ));
        let informational = Flags::QUANTIZED
            | Flags::HAS_FILTERBANK
            | Flags::HAS_MODEL_CARD
            | Flags::STREAMING
            | Flags::HAS_VOCAB
            | Flags::ROW_MAJOR;
        assert!(Flags(informational).check_supported().is_ok());
    }

    #[test]
    fn header_encodes_and_decodes() {
        let header = Header {
            version_major: 2,
            version_minor: 0,
            flags: Flags(Flags::ROW_MAJOR),
            tensor_count: 3,
            metadata_offset: 64,
            metadata_size: 100,
            tensor_index_offset: 192,
            data_offset: 256,
            header_crc: 0,
        };
        let bytes = header.encode();
        let decoded = Header::decode(&bytes);
        assert_eq!(decoded.header_crc, header_crc(&bytes));
        assert_eq!(
            Header {
                header_crc: 0,
                ..decoded
            },
            header
        );
    }

    #[test]
    fn align64_rounds_up() {
        assert_eq!(align64(0), Some(0));
        assert_eq!(align64(1), Some(64));
        assert_eq!(align64(64), Some(64));
        assert_eq!(align64(u64::MAX), None);
    }
}
