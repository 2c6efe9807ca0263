//! Integration tests for the v2 reader and writer against aprender's fixtures.

use apr_runtime::format::{AprFile, FooterStatus, FormatError};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

#[test]
fn every_v2_fixture_reads() {
    for name in [
        "dtypes.v2.apr",
        "kmeans.v2.apr",
        "linear_regression.v2.apr",
        "mlp_multiclass.v2.apr",
        "mlp_xor.v2.apr",
    ] {
        let bytes = fixture(name);
        let file = AprFile::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            matches!(file.footer(), FooterStatus::Verified { .. }),
            "{name}"
        );
        for tensor in file.iter() {
            let values = tensor
                .to_f32()
                .unwrap_or_else(|e| panic!("{name}/{}: {e}", tensor.name()));
            assert_eq!(values.len(), tensor.numel());
        }
    }
}

#[test]
fn bad_fixtures_are_rejected_with_their_variant() {
    let err = |name: &str| match AprFile::parse(&fixture(name)) {
        Ok(_) => panic!("{name} was accepted"),
        Err(e) => e,
    };
    assert!(matches!(err("bad_empty.apr"), FormatError::Empty));
    assert!(matches!(
        err("bad_magic.apr"),
        FormatError::BadMagic { found } if &found == b"APRX"
    ));
    assert!(matches!(
        err("bad_truncated_header.apr"),
        FormatError::TruncatedHeader { length: 30 }
    ));
    assert!(matches!(
        err("bad_header_crc.apr"),
        FormatError::HeaderChecksum { .. }
    ));
    assert!(matches!(
        err("bad_footer_crc.apr"),
        FormatError::FooterChecksum { .. }
    ));
}
