//! The codecs of the dtype table: f32 to and from every [`DType`]'s stored
//! bytes (half and bfloat16 conversions, aprender's quantizers, and the
//! dequantization of APR-Q4/Q8 and GGML Q4_K/Q6_K).

use super::dtype::{DType, APR_Q4_BLOCK, APR_Q4_BLOCK_BYTES, Q4K_BLOCK_BYTES, Q6K_BLOCK_BYTES};

/// Converts an IEEE half (binary16) to f32, exactly.
pub(crate) fn f16_to_f32(half: u16) -> f32 {
    let negative = half & 0x8000 != 0;
    let exponent = u32::from((half >> 10) & 0x1f);
    let mantissa = u32::from(half & 0x03ff);
    let magnitude = match exponent {
        // Zero and subnormals: mantissa × 2^-24, exact in f32.
        0 => mantissa as f32 * (1.0 / 16_777_216.0),
        0x1f => f32::from_bits(0x7f80_0000 | (mantissa << 13)),
        _ => f32::from_bits(((exponent + 127 - 15) << 23) | (mantissa << 13)),
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// Converts an f32 to IEEE half, rounding to nearest even (used by tests and
/// by writers that want to store F16).
pub fn f32_to_f16(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x007f_ffff;
    if exponent == 0xff {
        // Inf or NaN (keep NaN a NaN).
        let nan_bit = if mantissa != 0 { 0x0200 } else { 0 };
        return sign | 0x7c00 | nan_bit;
    }
    let unbiased = exponent - 127;
    if unbiased > 15 {
        return sign | 0x7c00;
    }
    if unbiased >= -14 {
        // Normal half: round the 23-bit mantissa to 10 bits, nearest even.
        let half_exp = (unbiased + 15) as u32;
        let mut out = (half_exp << 10) | (mantissa >> 13);
        let rest = mantissa & 0x1fff;
        if rest > 0x1000 || (rest == 0x1000 && out & 1 == 1) {
            out += 1; // may carry into the exponent, which is still correct (up to inf)
        }
        return sign | out as u16;
    }
    if unbiased < -25 {
        return sign;
    }
    // Subnormal half: value = m × 2^-24, so m = (1.mantissa × 2^23) >> (−unbiased − 1),
    // a shift of 14..=24 for unbiased in −25..=−15.
    let full = mantissa | 0x0080_0000;
    let shift = (-unbiased - 1) as u32;
    let mut out = full >> shift;
    let rest = full & ((1u32 << shift) - 1);
    let halfway = 1u32 << (shift - 1);
    if rest > halfway || (rest == halfway && out & 1 == 1) {
        out += 1; // rounding up to 0x400 gives the smallest normal, as it should
    }
    sign | out as u16
}

/// Converts a bfloat16 to f32 (exact).
pub(crate) fn bf16_to_f32(value: u16) -> f32 {
    f32::from_bits(u32::from(value) << 16)
}

/// Converts an f32 to bfloat16, rounding to nearest even (NaN stays NaN).
pub(crate) fn f32_to_bf16(value: f32) -> u16 {
    let bits = value.to_bits();
    if value.is_nan() {
        return ((bits >> 16) as u16) | 0x0040;
    }
    let rounding = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

/// Encodes f32 values as `dtype` the way aprender's writers do; `None` for
/// Q4_K and Q6_K, which this crate reads but does not write.
///
/// Integers round to nearest and saturate. APR-Q8 uses one scale
/// `max|x| / 127`; APR-Q4 one f16 scale `max|x| / 7` per block of 32, with
/// zero bytes after the last value of a partial block.
pub(crate) fn encode_f32(dtype: DType, values: &[f32]) -> Option<Vec<u8>> {
    let bytes: Vec<u8> = match dtype {
        DType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::F16 => values
            .iter()
            .flat_map(|&v| f32_to_f16(v).to_le_bytes())
            .collect(),
        DType::BF16 => values
            .iter()
            .flat_map(|&v| f32_to_bf16(v).to_le_bytes())
            .collect(),
        DType::F64 => values
            .iter()
            .flat_map(|&v| f64::from(v).to_le_bytes())
            .collect(),
        DType::I32 => values
            .iter()
            .flat_map(|&v| (v.round() as i32).to_le_bytes())
            .collect(),
        DType::I64 => values
            .iter()
            .flat_map(|&v| (v.round() as i64).to_le_bytes())
            .collect(),
        DType::I8 => values.iter().map(|&v| v.round() as i8 as u8).collect(),
        DType::U8 => values.iter().map(|&v| v.round() as u8).collect(),
        DType::AprQ8 => {
            let max_abs = values.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = max_abs / 127.0;
            let mut out = scale.to_le_bytes().to_vec();
            out.extend(values.iter().map(|&v| {
                let q = if scale > 0.0 {
                    (v / scale).round()
                } else {
                    0.0
                };
                q.clamp(-127.0, 127.0) as i8 as u8
            }));
            out
        }
        DType::AprQ4 => {
            let mut out =
                Vec::with_capacity(values.len().div_ceil(APR_Q4_BLOCK) * APR_Q4_BLOCK_BYTES);
            for block in values.chunks(APR_Q4_BLOCK) {
                let max_abs = block.iter().fold(0f32, |m, v| m.max(v.abs()));
                let scale = max_abs / 7.0;
                out.extend_from_slice(&f32_to_f16(scale).to_le_bytes());
                let nibble = |v: f32| {
                    let q = if scale > 0.0 {
                        (v / scale).round()
                    } else {
                        0.0
                    };
                    (q.clamp(-8.0, 7.0) + 8.0) as u8
                };
                let mut packed = [0u8; APR_Q4_BLOCK / 2];
                for (byte, pair) in packed.iter_mut().zip(block.chunks(2)) {
                    let low = pair.first().map_or(0, |&v| nibble(v));
                    let high = pair.get(1).map_or(0, |&v| nibble(v));
                    *byte = low | (high << 4);
                }
                out.extend_from_slice(&packed);
            }
            out
        }
        DType::Q4K | DType::Q6K => return None,
    };
    Some(bytes)
}

/// Decodes `numel` values of `dtype` from `bytes` into f32, or `None` when
/// `bytes` is too short for `numel` values (the reader checks sizes at parse,
/// so this only guards against misuse).
pub(crate) fn decode_to_f32(dtype: DType, bytes: &[u8], numel: usize) -> Option<Vec<f32>> {
    let needed = dtype.stored_size(numel)?;
    if (bytes.len() as u64) < needed {
        return None;
    }
    let mut out = Vec::with_capacity(numel);
    match dtype {
        DType::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        DType::F16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))),
        ),
        DType::BF16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]]))),
        ),
        DType::F64 => {
            out.extend(bytes.chunks_exact(8).map(|c| {
                f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
            }))
        }
        DType::I32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32),
        ),
        DType::I64 => {
            out.extend(bytes.chunks_exact(8).map(|c| {
                i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
            }))
        }
        DType::I8 => out.extend(bytes.iter().map(|&b| f32::from(b as i8))),
        DType::U8 => out.extend(bytes.iter().map(|&b| f32::from(b))),
        DType::AprQ4 => dequantize_apr_q4(bytes, numel, &mut out),
        DType::AprQ8 => dequantize_apr_q8(bytes, numel, &mut out),
        DType::Q4K => dequantize_q4_k(bytes, numel, &mut out),
        DType::Q6K => dequantize_q6_k(bytes, numel, &mut out),
    }
    out.truncate(numel);
    (out.len() == numel).then_some(out)
}

/// APR-Q4: blocks of 32 values, an f16 scale then 16 bytes of nibbles;
/// element k is the low nibble of byte k/2 when k is even, the high nibble
/// when odd; value = (nibble − 8) × scale.
fn dequantize_apr_q4(bytes: &[u8], numel: usize, out: &mut Vec<f32>) {
    for block in bytes.chunks_exact(APR_Q4_BLOCK_BYTES) {
        if out.len() >= numel {
            break;
        }
        let (scale, nibbles) = block.split_at(2);
        let scale = f16_to_f32(u16::from_le_bytes([scale[0], scale[1]]));
        for &byte in nibbles {
            out.push((f32::from(byte & 0x0f) - 8.0) * scale);
            out.push((f32::from(byte >> 4) - 8.0) * scale);
        }
    }
}

/// APR-Q8: one f32 scale for the tensor, then n × i8; value = q × scale.
fn dequantize_apr_q8(bytes: &[u8], numel: usize, out: &mut Vec<f32>) {
    let Some((scale, values)) = bytes.split_first_chunk::<4>() else {
        return;
    };
    let scale = f32::from_le_bytes(*scale);
    out.extend(
        values
            .iter()
            .take(numel)
            .map(|&q| f32::from(q as i8) * scale),
    );
}

/// Scale and min of sub-block `j` (0..8) of a Q4_K super-block, as GGML's
/// `get_scale_min_k4`.
fn q4_k_scale_min(j: usize, scales: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        let scale = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
        let min = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
        (scale, min)
    }
}

/// GGML `dequantize_row_q4_K`.
fn dequantize_q4_k(bytes: &[u8], numel: usize, out: &mut Vec<f32>) {
    for block in bytes.chunks_exact(Q4K_BLOCK_BYTES) {
        if out.len() >= numel {
            break;
        }
        let Some((head, qs)) = block.split_first_chunk::<16>() else {
            return;
        };
        let d = f16_to_f32(u16::from_le_bytes([head[0], head[1]]));
        let dmin = f16_to_f32(u16::from_le_bytes([head[2], head[3]]));
        let mut scales = [0u8; 12];
        scales.copy_from_slice(&head[4..16]);
        // Four groups of 64 values, each from 32 bytes of qs: low nibbles
        // with sub-block scale 2g, then high nibbles with scale 2g+1.
        for (group, q) in qs.chunks_exact(32).enumerate() {
            let (sc1, m1) = q4_k_scale_min(2 * group, &scales);
            let (sc2, m2) = q4_k_scale_min(2 * group + 1, &scales);
            let (d1, min1) = (d * f32::from(sc1), dmin * f32::from(m1));
            let (d2, min2) = (d * f32::from(sc2), dmin * f32::from(m2));
            out.extend(q.iter().map(|&b| d1 * f32::from(b & 0x0f) - min1));
            out.extend(q.iter().map(|&b| d2 * f32::from(b >> 4) - min2));
        }
    }
}

/// GGML `dequantize_row_q6_K`.
fn dequantize_q6_k(bytes: &[u8], numel: usize, out: &mut Vec<f32>) {
    for block in bytes.chunks_exact(Q6K_BLOCK_BYTES) {
        if out.len() >= numel {
            break;
        }
        let (ql, rest) = block.split_at(128);
        let (qh, rest) = rest.split_at(64);
        let (scales, d) = rest.split_at(16);
        let d = f16_to_f32(u16::from_le_bytes([d[0], d[1]]));
        // Two halves of 128 values: 64 bytes of ql, 32 of qh, 8 scales each.
        let halves = ql
            .chunks_exact(64)
            .zip(qh.chunks_exact(32))
            .zip(scales.chunks_exact(8));
        for ((ql, qh), sc) in halves {
            let scale = |k: usize| sc.get(k).map_or(0.0, |&s| d * f32::from(s as i8));
            let mut values = [0f32; 128];
            for (l, ((&low, &high), &bits)) in ql.iter().zip(ql.iter().skip(32)).zip(qh).enumerate()
            {
                let is = l / 16;
                let q1 = i32::from((low & 0x0f) | ((bits & 3) << 4)) - 32;
                let q2 = i32::from((high & 0x0f) | (((bits >> 2) & 3) << 4)) - 32;
                let q3 = i32::from((low >> 4) | (((bits >> 4) & 3) << 4)) - 32;
                let q4 = i32::from((high >> 4) | (((bits >> 6) & 3) << 4)) - 32;
                if let Some(slots) = values.get_mut(l..) {
                    for (offset, (q, k)) in
                        [(0, (q1, 0)), (32, (q2, 2)), (64, (q3, 4)), (96, (q4, 6))]
                    {
                        if let Some(slot) = slots.get_mut(offset) {
                            *slot = scale(is + k) * q as f32;
                        }
                    }
                }
            }
            out.extend_from_slice(&values);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn f16_decodes_special_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn f16_encoding_round_trips_every_half() {
        for half in 0..=u16::MAX {
            let value = f16_to_f32(half);
            if value.is_nan() {
                assert!(f16_to_f32(f32_to_f16(value)).is_nan());
            } else {
                assert_eq!(f32_to_f16(value), half, "half {half:#06x}");
            }
        }
        assert_eq!(f32_to_f16(1e9), 0x7c00);
        assert_eq!(f32_to_f16(1e-9), 0);
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80);
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82);
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert!(bf16_to_f32(f32_to_bf16(f32::NAN)).is_nan());
        assert_eq!(f32_to_bf16(f32::INFINITY), 0x7f80);
    }

    #[test]
    fn encoding_then_decoding_is_close() {
        let values: Vec<f32> = (0..70).map(|i| (i as f32 - 35.0) * 0.37).collect();
        for dtype in DType::ALL {
            let Some(bytes) = encode_f32(dtype, &values) else {
                assert!(matches!(dtype, DType::Q4K | DType::Q6K));
                continue;
            };
            assert_eq!(
                dtype.stored_size(values.len()),
                Some(bytes.len() as u64),
                "{dtype}"
            );
            let decoded = decode_to_f32(dtype, &bytes, values.len())
                .unwrap_or_else(|| panic!("{dtype}: its own encoding does not decode"));
            assert_eq!(decoded.len(), values.len(), "{dtype}");
            let tolerance = match dtype {
                DType::AprQ4 => 12.95 / 7.0,
                DType::AprQ8 => 12.95 / 127.0,
                DType::I32 | DType::I64 | DType::I8 | DType::U8 => 1.0,
                DType::BF16 => 13.0 / 256.0,
                _ => 0.01,
            };
            for (a, b) in values.iter().zip(&decoded) {
                let a = if dtype == DType::U8 { a.max(0.0) } else { *a };
                assert!((a - b).abs() <= tolerance, "{dtype}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn bf16_decodes() {
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc0a0), -5.0);
    }

    #[test]
    fn apr_q4_uses_low_nibble_first() {
        let mut block = vec![0u8; 18];
        block[..2].copy_from_slice(&f32_to_f16(0.5).to_le_bytes());
        block[2] = 0x9f; // element 0: 0xf -> 7 * 0.5, element 1: 0x9 -> 1 * 0.5
        let values = decode_to_f32(DType::AprQ4, &block, 3).unwrap_or_default();
        assert_eq!(values, vec![3.5, 0.5, -4.0]);
    }

    #[test]
    fn apr_q8_scales_every_value() {
        let mut bytes = 0.25f32.to_le_bytes().to_vec();
        bytes.extend([4u8, 0xfc]);
        assert_eq!(
            decode_to_f32(DType::AprQ8, &bytes, 2),
            Some(vec![1.0, -1.0])
        );
    }

    #[test]
    fn q4_k_matches_a_hand_computed_block() {
        let mut block = vec![0u8; 144];
        block[0..2].copy_from_slice(&f32_to_f16(0.5).to_le_bytes()); // d
        block[2..4].copy_from_slice(&f32_to_f16(0.25).to_le_bytes()); // dmin
                                                                      // sub-block 0: scale 2, min 4; sub-block 1: scale 3, min 1.
        block[4] = 2;
        block[5] = 3;
        block[8] = 4;
        block[9] = 1;
        // sub-block 4 (j >= 4 path): scale = (scales[8] & 0xf) | (scales[0] >> 6) << 4
        block[4 + 8] = 0x25; // scale low 5, min low 2
        block[4] |= 0x40; // scale of sub-block 4 gets +16
        block[16] = 0x71; // q[0]: low 1, high 7
        block[16 + 64] = 0x03; // group 2, q[0]: low 3
        let values = decode_to_f32(DType::Q4K, &block, 256).unwrap_or_default();
        assert_eq!(values.len(), 256);
        // sub-block 0: 0.5*2*1 - 0.25*4 = 0
        assert_eq!(values[0], 0.0);
        assert_eq!(values[1], -1.0);
        // sub-block 1: 0.5*3*7 - 0.25*1
        assert_eq!(values[32], 10.25);
        // sub-block 4: scale 21, min 2 | (scales[4]=4 >> 6)=0 -> 2: 0.5*21*3 - 0.25*2
        assert_eq!(values[128], 31.0);
    }

    #[test]
    fn q6_k_matches_a_hand_computed_block() {
        let mut block = vec![0u8; 210];
        block[208..210].copy_from_slice(&f32_to_f16(0.5).to_le_bytes());
        for (i, s) in block[192..208].iter_mut().enumerate() {
            *s = (i as i8 + 1) as u8;
        }
        block[0] = 0x21; // l=0: q1 low 1, q3 high 2
        block[128] = 0b1110_0100; // qh[0] (after 128 bytes of ql): q1 hi 0, q2 hi 1, q3 hi 2, q4 hi 3
        let values = decode_to_f32(DType::Q6K, &block, 256).unwrap_or_default();
        assert_eq!(values.len(), 256);
        assert_eq!(values[0], 0.5 * 1.0 * (1.0 - 32.0));
        assert_eq!(values[32], 0.5 * 3.0 * (16.0 - 32.0));
        assert_eq!(values[64], 0.5 * 5.0 * (2.0 + 32.0 - 32.0));
        assert_eq!(values[96], 0.5 * 7.0 * (48.0 - 32.0));
        assert_eq!(values[16], 0.5 * 2.0 * -32.0);
    }

    #[test]
    fn short_input_is_refused_not_panicked() {
        for dtype in DType::ALL {
            assert_eq!(decode_to_f32(dtype, &[1, 2, 3], 300), None, "{dtype}");
        }
    }
}
