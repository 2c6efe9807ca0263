//! AVX2 + FMA (`std::arch::x86_64`): eight `f32` lanes per vector.
//!
//! This file is the [`Simd`] implementation, the CPU check and the table;
//! the algorithms are the generic ones in `kernels/simd/`.

use std::arch::x86_64::*;

use crate::kernels::simd::{simd_table, Simd};
use crate::kernels::Kernels;

/// The AVX2+FMA table, when this CPU runs it.
pub(in crate::kernels) fn table() -> Option<&'static Kernels> {
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Some(&entry::TABLE)
    } else {
        None
    }
}

simd_table! {
    static TABLE for Avx2Fma, enable "avx2,fma", named "avx2+fma",
    isa Avx2Fma,
    gemv rows 4 accumulators 2,
    gemm panel 16 vectors 2 rows 6,
}

/// Proof that this CPU runs AVX2 and FMA: made only by
/// [`Avx2Fma::assume_present`], which the entry points call once [`table`]
/// has checked.
#[derive(Clone, Copy)]
pub(in crate::kernels) struct Avx2Fma(());

impl Avx2Fma {
    /// The token.
    ///
    /// # Safety
    /// The CPU runs `avx2` and `fma`.
    #[inline(always)]
    unsafe fn assume_present() -> Self {
        Self(())
    }
}

/// Every `unsafe` block below calls intrinsics that need `avx2` and `fma`,
/// and `self` exists only on a CPU that has both (the token's contract);
/// the pointer accesses rely on the callers' contracts, stated on the trait.
// SAFETY: `Avx2Fma` is made only by `assume_present`, whose callers (the
// table's entry points) run only after `table` checked the CPU; loadu/storeu
// touch exactly 8 values.
unsafe impl Simd for Avx2Fma {
    type V = __m256;
    type Mask = __m256;
    const LANES: usize = 8;

    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_set1_ps(x) }
    }

    #[inline(always)]
    unsafe fn load_ptr(self, p: *const f32) -> __m256 {
        // SAFETY: 8 readable values at `p` (caller); loadu needs no alignment.
        unsafe { _mm256_loadu_ps(p) }
    }

    #[inline(always)]
    unsafe fn store_ptr(self, p: *mut f32, v: __m256) {
        // SAFETY: 8 writable values at `p` (caller); storeu needs no alignment.
        unsafe { _mm256_storeu_ps(p, v) }
    }

    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_add_ps(a, b) }
    }

    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_sub_ps(a, b) }
    }

    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_mul_ps(a, b) }
    }

    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_div_ps(a, b) }
    }

    #[inline(always)]
    fn mul_add(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }

    #[inline(always)]
    fn neg_mul_add(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_fnmadd_ps(a, b, c) }
    }

    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        // minps returns its second operand when either is NaN: `a`.
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_min_ps(b, a) }
    }

    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        // maxps returns its second operand when either is NaN: `a`.
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_max_ps(b, a) }
    }

    #[inline(always)]
    fn max_num(self, a: __m256, b: __m256) -> __m256 {
        // maxps returns its second operand when either is NaN: `b`.
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_max_ps(a, b) }
    }

    #[inline(always)]
    fn abs(self, a: __m256) -> __m256 {
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), a) }
    }

    #[inline(always)]
    fn with_sign_of(self, magnitude: __m256, sign: __m256) -> __m256 {
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_or_ps(magnitude, _mm256_and_ps(_mm256_set1_ps(-0.0), sign)) }
    }

    #[inline(always)]
    fn lt(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(a, b) }
    }

    #[inline(always)]
    fn select(self, mask: __m256, if_true: __m256, if_false: __m256) -> __m256 {
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_blendv_ps(if_false, if_true, mask) }
    }

    #[inline(always)]
    fn round(self, a: __m256) -> __m256 {
        // SAFETY: avx2 and fma are present (token).
        unsafe { _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a) }
    }

    #[inline(always)]
    fn pow2i(self, n: __m256) -> __m256 {
        // SAFETY: avx2 and fma are present (token).
        unsafe {
            let biased = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased))
        }
    }

    #[inline(always)]
    fn hsum(self, v: __m256) -> f32 {
        // SAFETY: avx2 and fma are present (token).
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_shuffle_ps::<0x55>(s, s));
            _mm_cvtss_f32(s)
        }
    }

    #[inline(always)]
    fn hsum4_plus(self, v: [__m256; 4], plus: [f32; 4]) -> [f32; 4] {
        let mut out = [0.0f32; 4];
        // SAFETY: avx2 and fma are present (token); `plus` holds the 4
        // values loadu reads and `out` the 4 values storeu writes.
        unsafe {
            let h = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
            let sums = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
            _mm_storeu_ps(
                out.as_mut_ptr(),
                _mm_add_ps(sums, _mm_loadu_ps(plus.as_ptr())),
            );
        }
        out
    }

    #[inline(always)]
    fn transpose(self, block: &mut [__m256]) {
        let r: &mut [__m256; 8] = block.try_into().expect("transpose: a block of 8 vectors");
        // SAFETY: avx2 and fma are present (token).
        unsafe {
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            *r = [
                _mm256_permute2f128_ps::<0x20>(s0, s4),
                _mm256_permute2f128_ps::<0x20>(s1, s5),
                _mm256_permute2f128_ps::<0x20>(s2, s6),
                _mm256_permute2f128_ps::<0x20>(s3, s7),
                _mm256_permute2f128_ps::<0x31>(s0, s4),
                _mm256_permute2f128_ps::<0x31>(s1, s5),
                _mm256_permute2f128_ps::<0x31>(s2, s6),
                _mm256_permute2f128_ps::<0x31>(s3, s7),
            ];
        }
    }
}
