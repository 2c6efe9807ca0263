//! Hand-made v2 files for the parser's unit tests: raw index entries and
//! headers laid out exactly like the writer would, so each test can break one
//! rule at a time.

use super::error::FormatError;
use super::header::{header_crc, Flags, Header, HEADER_CRC_OFFSET};
use super::reader::AprFile;

/// One hand-made index entry (anything may be wrong with it).
pub(super) struct RawEntry {
    pub(super) name: Vec<u8>,
    pub(super) code: u8,
    pub(super) dims: Vec<u64>,
    pub(super) offset: u64,
    pub(super) size: u64,
}

pub(super) fn entry(name: &str, code: u8, dims: &[u64], offset: u64, size: u64) -> RawEntry {
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
pub(super) fn raw_file(json: &[u8], entries: &[RawEntry], data_len: usize) -> Vec<u8> {
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

pub(super) const JSON: &[u8] = br#"{"model_type":"LinearRegression"}"#;

pub(super) fn valid() -> Vec<u8> {
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
pub(super) fn patch(mut bytes: Vec<u8>, at: usize, new: &[u8]) -> Vec<u8> {
    bytes[at..at + new.len()].copy_from_slice(new);
    refresh_checksums(bytes)
}

pub(super) fn refresh_checksums(mut bytes: Vec<u8>) -> Vec<u8> {
    let mut header = [0u8; 64];
    header.copy_from_slice(&bytes[..64]);
    let crc = header_crc(&header);
    bytes[HEADER_CRC_OFFSET..HEADER_CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
    let body = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

pub(super) fn parse_err(bytes: &[u8]) -> FormatError {
    match AprFile::parse(bytes) {
        Ok(_) => panic!("accepted a file that breaks a rule"),
        Err(e) => e,
    }
}
