//! The 32-byte v1 header ([`V1Header`]) and the codes it holds: the aprender
//! model_type ([`ModelTypeCode`], [`model_type_name`]), the payload's
//! [`Compression`] and the [`V1Flags`].

use super::V1Error;
use crate::format::schema::{kmeans, linear, sequential, tree};

/// The four magic bytes of a v1 container.
pub const MAGIC: [u8; 4] = *b"APRN";
/// The length of the v1 header.
pub const HEADER_LEN: usize = 32;
/// The largest decompressed payload the decoder accepts (1 GiB).
pub const MAX_UNCOMPRESSED_SIZE: u32 = 1 << 30;

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
        0x0001 => linear::LINEAR_REGRESSION,
        0x0002 => linear::LOGISTIC_REGRESSION,
        0x0003 => tree::DECISION_TREE_APRENDER,
        0x0004 => tree::RANDOM_FOREST_APRENDER,
        0x0005 => "GradientBoosting",
        0x0006 => kmeans::KMEANS,
        0x0007 => "Pca",
        0x0008 => "NaiveBayes",
        0x0009 => "Knn",
        0x000A => "Svm",
        0x0020 => sequential::NEURAL_SEQUENTIAL,
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
    /// type is not checked here (see [`decode`](super::decode)).
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
