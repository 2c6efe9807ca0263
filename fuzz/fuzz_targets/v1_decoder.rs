//! Fuzzes the v1 (APRN) decoder and the converter: `v1::decode`, and for
//! every file it accepts, `convert_to_v2`, whose output must parse as v2.
//! Inputs not starting with APRN get a valid magic, header fields and CRC
//! trailer patched in, so the fuzzer reaches the metadata and payload code.
#![no_main]

use apr_runtime::format::{crc32, v1, AprFile};
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    if let Ok(file) = v1::decode(bytes) {
        if let Ok(v2) = v1::convert_to_v2(bytes) {
            let parsed = AprFile::parse(&v2).expect("converted files parse");
            assert_eq!(parsed.model_type(), Some(file.v2_model_type()));
            for tensor in parsed.iter() {
                tensor.to_f32().expect("converted tensors are f32");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // Also the same bytes as the body of a well-formed container, with
    // sizes and trailer made consistent: data = [model_type, compression,
    // flags, metadata_len, size_lo, size_hi, ...metadata and payload], where
    // size is the uncompressed size claimed for a compressed payload.
    if let [model_type, compression, flags, metadata_len, size_lo, size_hi, rest @ ..] = data {
        let metadata_len = usize::from(*metadata_len).min(rest.len());
        let (metadata, payload) = rest.split_at(metadata_len);
        let mut file = Vec::with_capacity(data.len() + 40);
        file.extend_from_slice(b"APRN\x01\x00");
        file.extend_from_slice(&u16::from(model_type % 8).to_le_bytes());
        file.extend_from_slice(&(metadata.len() as u32).to_le_bytes());
        file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let compression = compression % 4;
        let uncompressed = if compression == 0 {
            payload.len() as u32
        } else {
            u32::from(u16::from_le_bytes([*size_lo, *size_hi]))
        };
        file.extend_from_slice(&uncompressed.to_le_bytes());
        file.extend_from_slice(&[compression, flags & 0x02, 0]);
        file.extend_from_slice(&[0; 9]);
        file.extend_from_slice(metadata);
        file.extend_from_slice(payload);
        if flags & 0x02 != 0 {
            file.extend_from_slice(&[0; 96]);
        }
        let crc = crc32(&file);
        file.extend_from_slice(&crc.to_le_bytes());
        check(&file);
    }
});
