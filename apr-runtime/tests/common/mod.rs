//! What the integration tests share: model bytes placed on a 64-byte
//! boundary, as `#[apr_lambda]` embeds them, so F32 tensors are viewed in
//! place.

/// Storage for `bytes` with room to place them on a 64-byte boundary (see
/// [`as_bytes`]).
pub fn aligned(bytes: &[u8]) -> Vec<u64> {
    let mut words = vec![0u64; bytes.len().div_ceil(8) + 8];
    let at = bytemuck::cast_slice::<u64, u8>(&words)
        .as_ptr()
        .align_offset(64);
    bytemuck::cast_slice_mut::<u64, u8>(&mut words)[at..at + bytes.len()].copy_from_slice(bytes);
    words
}

/// The `len` bytes [`aligned`] placed on a 64-byte boundary.
pub fn as_bytes(words: &[u64], len: usize) -> &[u8] {
    let bytes = bytemuck::cast_slice::<u64, u8>(words);
    let at = bytes.as_ptr().align_offset(64);
    &bytes[at..at + len]
}
