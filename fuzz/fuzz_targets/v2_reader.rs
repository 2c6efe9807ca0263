//! Fuzzes the v2 reader: `AprFile::parse` (with and without the footer CRC
//! check) and `to_f32` of every tensor it accepts. Nothing may panic.
#![no_main]

use apr_runtime::format::{AprFile, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for verify_footer_crc in [true, false] {
        if let Ok(file) = AprFile::parse_with(data, ParseOptions { verify_footer_crc }) {
            let _ = file.model_type();
            let _ = file.footer();
            for tensor in file.iter() {
                if let Ok(values) = tensor.to_f32() {
                    assert_eq!(values.len(), tensor.numel());
                }
            }
            for info in file.tensors() {
                assert!(file.tensor(&info.name).is_some());
            }
        }
    }
});
