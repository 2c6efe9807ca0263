//! What the benchmarks (and `tests/parallel.rs`) share: the same
//! deterministic inputs everywhere.

/// Deterministic values in [-1, 1) (xorshift32 from `seed`).
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}
