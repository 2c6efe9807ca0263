//! Lane-wise activations and `softmax`, with the vector `exp` and `tanh`
//! they are built on.
//!
//! Each activation is a small [`Lanewise`] type rather than a closure: a
//! closure would be its own function, compiled without the entry point's
//! target features, and could keep the intrinsics from inlining.

use super::{Simd, MAX_LANES};
use crate::kernels::{GELU_CUBIC, GELU_SQRT_2_OVER_PI};

/// A function applied to every lane.
trait Lanewise<S: Simd> {
    /// The function on one vector.
    fn apply(&self, s: S, x: S::V) -> S::V;
}

/// Applies `f` to every vector of `v`; the last partial vector goes through
/// a zero-padded copy.
#[inline(always)]
fn map_in_place<S: Simd, F: Lanewise<S>>(s: S, v: &mut [f32], f: &F) {
    const { assert!(S::LANES <= MAX_LANES) };
    let mut chunks = v.chunks_exact_mut(S::LANES);
    for c in &mut chunks {
        let r = f.apply(s, s.load(c));
        s.store(c, r);
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mut buf = [0.0f32; MAX_LANES];
        buf[..rest.len()].copy_from_slice(rest);
        let r = f.apply(s, s.load(&buf));
        s.store(&mut buf, r);
        rest.copy_from_slice(&buf[..rest.len()]);
    }
}

/// `e^x` to about 1 ulp for `x` in `[-87.3, 88]` (Cephes `expf`). Inputs
/// are clamped to that range (so that `2^n` stays a normal number: at 88.38
/// the rounded exponent would reach 128), so the result is always finite and
/// at least about 8e-39 where libm would return a subnormal or 0; NaN gives
/// NaN (the clamps keep it).
#[inline(always)]
fn exp<S: Simd>(s: S, x: S::V) -> S::V {
    let x = s.min(x, s.splat(88.0));
    let x = s.max(x, s.splat(-87.336_55));
    let fx = s.round(s.mul(x, s.splat(std::f32::consts::LOG2_E)));
    // x − fx ln 2, with ln 2 split in two for precision.
    let r = s.neg_mul_add(fx, s.splat(0.693_359_4), x);
    let r = s.neg_mul_add(fx, s.splat(-2.121_944_4e-4), r);
    let mut p = s.splat(1.987_569_1e-4);
    for c in [1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
        p = s.mul_add(p, r, s.splat(c));
    }
    let r2 = s.mul(r, r);
    let p = s.mul_add(p, r2, s.add(r, s.splat(1.0)));
    s.mul(p, s.pow2i(fx))
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
fn sigmoid_v<S: Simd>(s: S, x: S::V) -> S::V {
    let one = s.splat(1.0);
    let e = exp(s, s.sub(s.zero(), x));
    s.div(one, s.add(one, e))
}

/// `tanh(x)`: an odd polynomial below |x| = 0.625 (Cephes `tanhf`), else
/// `1 − 2 / (e^{2|x|} + 1)` with the sign of x.
#[inline(always)]
fn tanh_v<S: Simd>(s: S, x: S::V) -> S::V {
    let ax = s.abs(x);
    // Small |x|.
    let z = s.mul(x, x);
    let mut p = s.splat(-5.704_988_7e-3);
    for c in [
        2.063_909e-2,
        -5.370_374_5e-2,
        1.333_148_2e-1,
        -3.333_332_8e-1,
    ] {
        p = s.mul_add(p, z, s.splat(c));
    }
    let small = s.mul_add(s.mul(p, z), x, x);
    // Large |x|: tanh rounds to ±1 in f32 from about 9.01 on.
    let one = s.splat(1.0);
    let two = s.splat(2.0);
    let e = exp(s, s.mul(two, s.min(ax, s.splat(10.0))));
    let large = s.sub(one, s.div(two, s.add(e, one)));
    // `large` is ≥ 0: 2 / (e + 1) ≤ 1 for e ≥ 1.
    let large = s.with_sign_of(large, x);
    s.select(s.lt(ax, s.splat(0.625)), small, large)
}

/// `max(x, 0)`; NaN becomes 0, like `f32::max` in the scalar table.
struct Relu;
impl<S: Simd> Lanewise<S> for Relu {
    #[inline(always)]
    fn apply(&self, s: S, x: S::V) -> S::V {
        s.max_num(x, s.zero())
    }
}

/// `x` where `x ≥ 0` (or NaN), `alpha x` elsewhere.
struct LeakyRelu(f32);
impl<S: Simd> Lanewise<S> for LeakyRelu {
    #[inline(always)]
    fn apply(&self, s: S, x: S::V) -> S::V {
        let negative = s.lt(x, s.zero());
        s.select(negative, s.mul(x, s.splat(self.0)), x)
    }
}

/// `1 / (1 + e^-x)`.
struct Sigmoid;
impl<S: Simd> Lanewise<S> for Sigmoid {
    #[inline(always)]
    fn apply(&self, s: S, x: S::V) -> S::V {
        sigmoid_v(s, x)
    }
}

/// `tanh(x)`.
struct Tanh;
impl<S: Simd> Lanewise<S> for Tanh {
    #[inline(always)]
    fn apply(&self, s: S, x: S::V) -> S::V {
        tanh_v(s, x)
    }
}

/// GELU, tanh approximation.
struct Gelu;
impl<S: Simd> Lanewise<S> for Gelu {
    #[inline(always)]
    fn apply(&self, s: S, x: S::V) -> S::V {
        let x3 = s.mul(s.mul(x, x), x);
        let inner = s.mul(
            s.splat(GELU_SQRT_2_OVER_PI),
            s.mul_add(s.splat(GELU_CUBIC), x3, x),
        );
        let t = tanh_v(s, inner);
        s.mul(s.mul(s.splat(0.5), x), s.add(s.splat(1.0), t))
    }
}

/// `e^(x − max)`, softmax's numerator.
struct ExpBelow(f32);
impl<S: Simd> Lanewise<S> for ExpBelow {
    #[inline(always)]
    fn apply(&self, s: S, x: S::V) -> S::V {
        exp(s, s.sub(x, s.splat(self.0)))
    }
}

/// `x / sum`, softmax's normalisation.
struct DivideBy(f32);
impl<S: Simd> Lanewise<S> for DivideBy {
    #[inline(always)]
    fn apply(&self, s: S, x: S::V) -> S::V {
        s.div(x, s.splat(self.0))
    }
}

/// In place: `max(v, 0)`.
#[inline(always)]
pub(in crate::kernels) fn relu<S: Simd>(s: S, v: &mut [f32]) {
    map_in_place(s, v, &Relu);
}

/// In place: `v` where `v ≥ 0`, `alpha · v` otherwise.
#[inline(always)]
pub(in crate::kernels) fn leaky_relu<S: Simd>(s: S, v: &mut [f32], alpha: f32) {
    map_in_place(s, v, &LeakyRelu(alpha));
}

/// In place: `1 / (1 + e^−v)`.
#[inline(always)]
pub(in crate::kernels) fn sigmoid<S: Simd>(s: S, v: &mut [f32]) {
    map_in_place(s, v, &Sigmoid);
}

/// In place: `tanh(v)`.
#[inline(always)]
pub(in crate::kernels) fn tanh<S: Simd>(s: S, v: &mut [f32]) {
    map_in_place(s, v, &Tanh);
}

/// In place: GELU, tanh approximation.
#[inline(always)]
pub(in crate::kernels) fn gelu<S: Simd>(s: S, v: &mut [f32]) {
    map_in_place(s, v, &Gelu);
}

/// In place: softmax of one row, `e^(v − max) / Σ e^(v − max)`; NaN inputs
/// are ignored by the max, like `f32::max` in the scalar table.
#[inline(always)]
pub(in crate::kernels) fn softmax<S: Simd>(s: S, v: &mut [f32]) {
    const { assert!(S::LANES <= MAX_LANES) };
    if v.is_empty() {
        return;
    }
    let mut max_v = s.splat(f32::NEG_INFINITY);
    let mut chunks = v.chunks_exact(S::LANES);
    for c in &mut chunks {
        max_v = s.max_num(s.load(c), max_v);
    }
    let mut lanes = [0.0f32; MAX_LANES];
    s.store(&mut lanes, max_v);
    let max = lanes[..S::LANES]
        .iter()
        .chain(chunks.remainder())
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    map_in_place(s, v, &ExpBelow(max));
    let mut sum_v = s.zero();
    let mut chunks = v.chunks_exact(S::LANES);
    for c in &mut chunks {
        sum_v = s.add(sum_v, s.load(c));
    }
    let sum = s.hsum(sum_v) + chunks.remainder().iter().sum::<f32>();
    map_in_place(s, v, &DivideBy(sum));
}
