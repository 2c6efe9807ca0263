//! NEON (`std::arch::aarch64`): four `f32` lanes per vector.
//!
//! This file is the [`Simd`] implementation and the table; the algorithms
//! are the generic ones in `kernels/simd/`. NEON is part of the aarch64
//! baseline (`target_feature = "neon"` is on for every aarch64 Linux target,
//! and this module is compiled only then), so the table needs no run-time
//! check. Rust still asks for `unsafe` around each intrinsic (the methods
//! carry no `#[target_feature]` of their own): the token is the proof.

use std::arch::aarch64::*;

use crate::kernels::simd::{simd_table, Simd};
use crate::kernels::Kernels;

/// The NEON table (aarch64 always has NEON).
pub(in crate::kernels) fn table() -> Option<&'static Kernels> {
    Some(&entry::TABLE)
}

simd_table! {
    static TABLE for Neon, enable "neon", named "neon",
    isa Neon,
    gemv rows 8 accumulators 1,
    gemm panel 16 vectors 4 rows 6,
}

/// Proof that this CPU runs NEON: always true where this module compiles.
#[derive(Clone, Copy)]
pub(in crate::kernels) struct Neon(());

impl Neon {
    /// The token.
    ///
    /// # Safety
    /// The CPU runs NEON (always, where this module compiles; `unsafe` to
    /// keep the constructor's contract the same on every ISA).
    #[inline(always)]
    unsafe fn assume_present() -> Self {
        Self(())
    }
}

// SAFETY: NEON is enabled for the whole build (module cfg), so every value
// of `Neon` runs on a CPU with NEON; ld1/st1 touch exactly 4 values.
unsafe impl Simd for Neon {
    type V = float32x4_t;
    type Mask = uint32x4_t;
    const LANES: usize = 4;

    #[inline(always)]
    fn splat(self, x: f32) -> float32x4_t {
        // SAFETY: NEON is present (token).
        unsafe { vdupq_n_f32(x) }
    }

    #[inline(always)]
    unsafe fn load_ptr(self, p: *const f32) -> float32x4_t {
        // SAFETY: 4 readable values at `p` (caller); ld1 needs no alignment.
        unsafe { vld1q_f32(p) }
    }

    #[inline(always)]
    unsafe fn store_ptr(self, p: *mut f32, v: float32x4_t) {
        // SAFETY: 4 writable values at `p` (caller); st1 needs no alignment.
        unsafe { vst1q_f32(p, v) }
    }

    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is present (token).
        unsafe { vaddq_f32(a, b) }
    }

    #[inline(always)]
    fn sub(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is present (token).
        unsafe { vsubq_f32(a, b) }
    }

    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is present (token).
        unsafe { vmulq_f32(a, b) }
    }

    #[inline(always)]
    fn div(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is present (token).
        unsafe { vdivq_f32(a, b) }
    }

    #[inline(always)]
    fn mul_add(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is present (token).
        unsafe { vfmaq_f32(c, a, b) }
    }

    #[inline(always)]
    fn neg_mul_add(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is present (token).
        unsafe { vfmsq_f32(c, a, b) }
    }

    #[inline(always)]
    fn min(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // fmin propagates NaN.
        // SAFETY: NEON is present (token).
        unsafe { vminq_f32(a, b) }
    }

    #[inline(always)]
    fn max(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // fmax propagates NaN.
        // SAFETY: NEON is present (token).
        unsafe { vmaxq_f32(a, b) }
    }

    #[inline(always)]
    fn max_num(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // fmaxnm returns the number when one operand is NaN.
        // SAFETY: NEON is present (token).
        unsafe { vmaxnmq_f32(a, b) }
    }

    #[inline(always)]
    fn abs(self, a: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is present (token).
        unsafe { vabsq_f32(a) }
    }

    #[inline(always)]
    fn with_sign_of(self, magnitude: float32x4_t, sign: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is present (token).
        unsafe { vbslq_f32(vdupq_n_u32(0x8000_0000), sign, magnitude) }
    }

    #[inline(always)]
    fn lt(self, a: float32x4_t, b: float32x4_t) -> uint32x4_t {
        // SAFETY: NEON is present (token).
        unsafe { vcltq_f32(a, b) }
    }

    #[inline(always)]
    fn select(self, mask: uint32x4_t, if_true: float32x4_t, if_false: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is present (token).
        unsafe { vbslq_f32(mask, if_true, if_false) }
    }

    #[inline(always)]
    fn round(self, a: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is present (token).
        unsafe { vrndnq_f32(a) }
    }

    #[inline(always)]
    fn pow2i(self, n: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is present (token).
        unsafe {
            let biased = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
            vreinterpretq_f32_s32(vshlq_n_s32::<23>(biased))
        }
    }

    #[inline(always)]
    fn hsum(self, v: float32x4_t) -> f32 {
        // SAFETY: NEON is present (token).
        unsafe { vaddvq_f32(v) }
    }

    #[inline(always)]
    fn hsum4_plus(self, v: [float32x4_t; 4], plus: [f32; 4]) -> [f32; 4] {
        let mut out = [0.0f32; 4];
        // SAFETY: NEON is present (token); `plus` holds the 4 values ld1
        // reads and `out` the 4 values st1 writes.
        unsafe {
            let sums = vpaddq_f32(vpaddq_f32(v[0], v[1]), vpaddq_f32(v[2], v[3]));
            vst1q_f32(out.as_mut_ptr(), vaddq_f32(sums, vld1q_f32(plus.as_ptr())));
        }
        out
    }

    #[inline(always)]
    fn transpose(self, block: &mut [float32x4_t]) {
        let r: &mut [float32x4_t; 4] = block.try_into().expect("transpose: a block of 4 vectors");
        // SAFETY: NEON is present (token).
        unsafe {
            let t0 = vreinterpretq_f64_f32(vtrn1q_f32(r[0], r[1]));
            let t1 = vreinterpretq_f64_f32(vtrn2q_f32(r[0], r[1]));
            let t2 = vreinterpretq_f64_f32(vtrn1q_f32(r[2], r[3]));
            let t3 = vreinterpretq_f64_f32(vtrn2q_f32(r[2], r[3]));
            *r = [
                vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)),
                vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)),
                vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)),
                vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)),
            ];
        }
    }
}
