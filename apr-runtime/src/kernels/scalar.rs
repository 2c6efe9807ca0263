//! The portable reference kernels: plain loops, one accumulator, in index
//! order. Every SIMD table is tested against these.

use super::{
    assert_dot_shapes, assert_gemm_shapes, assert_gemv_shapes, assert_packed_shape,
    assert_sq_dists_shapes, Kernels, GELU_CUBIC, GELU_SQRT_2_OVER_PI,
};

/// The scalar table.
pub(super) static TABLE: Kernels = Kernels {
    name: "scalar",
    isa: super::Isa::Scalar,
    dot,
    gemv,
    gemm,
    gemm_packed,
    gemm_tile_rows: 1,
    sq_dists,
    relu,
    sigmoid,
    tanh,
    gelu,
    leaky_relu,
    softmax,
};

fn dot_unchecked_lengths(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for (&p, &q) in a.iter().zip(b) {
        acc += p * q;
    }
    acc
}

pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_dot_shapes(a, b);
    dot_unchecked_lengths(a, b)
}

pub(super) fn gemv(w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    assert_gemv_shapes(w, x, bias, y);
    gemv_rows(w, x, bias, y);
}

/// `y = W x + b` once the shapes are known to agree.
fn gemv_rows(w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let n_in = x.len();
    if n_in == 0 {
        super::fill_with_bias(y, bias);
        return;
    }
    for (o, (out, row)) in y.iter_mut().zip(w.chunks_exact(n_in)).enumerate() {
        let b = bias.and_then(|b| b.get(o)).copied().unwrap_or(0.0);
        *out = dot_unchecked_lengths(row, x) + b;
    }
}

pub(super) fn gemm(
    w: &[f32],
    x: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    n_in: usize,
    n_out: usize,
) {
    let rows = assert_gemm_shapes(w, x, bias, y, n_in, n_out);
    for r in 0..rows {
        let x_row = &x[r * n_in..(r + 1) * n_in];
        let y_row = &mut y[r * n_out..(r + 1) * n_out];
        gemv_rows(w, x_row, bias, y_row);
    }
}

/// The reference ignores the panels (after checking their length): plain
/// [`gemm`] is what every packed gemm is tested against.
pub(super) fn gemm_packed(
    panels: &[f32],
    w: &[f32],
    x: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    n_in: usize,
    n_out: usize,
) {
    assert_packed_shape(panels, n_in, n_out);
    gemm(w, x, bias, y, n_in, n_out);
}

pub(super) fn sq_dists(centroids: &[f32], x: &[f32], out: &mut [f32]) {
    assert_sq_dists_shapes(centroids, x, out);
    let n = x.len();
    if n == 0 {
        out.fill(0.0);
        return;
    }
    for (o, c) in out.iter_mut().zip(centroids.chunks_exact(n)) {
        let mut acc = 0.0f32;
        for (&p, &q) in c.iter().zip(x) {
            let d = p - q;
            acc += d * d;
        }
        *o = acc;
    }
}

pub(super) fn relu(v: &mut [f32]) {
    for e in v {
        *e = e.max(0.0);
    }
}

/// `1 / (1 + e^-x)`.
pub(super) fn sigmoid_one(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

pub(super) fn sigmoid(v: &mut [f32]) {
    for e in v {
        *e = sigmoid_one(*e);
    }
}

pub(super) fn tanh(v: &mut [f32]) {
    for e in v {
        *e = e.tanh();
    }
}

/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, the tanh approximation
/// aprender uses.
pub(super) fn gelu_one(x: f32) -> f32 {
    let inner = GELU_SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x);
    0.5 * x * (1.0 + inner.tanh())
}

pub(super) fn gelu(v: &mut [f32]) {
    for e in v {
        *e = gelu_one(*e);
    }
}

pub(super) fn leaky_relu(v: &mut [f32], alpha: f32) {
    for e in v {
        if *e < 0.0 {
            *e *= alpha;
        }
    }
}

pub(super) fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for e in v.iter_mut() {
        *e = (*e - max).exp();
        sum += *e;
    }
    for e in v.iter_mut() {
        *e /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemv_adds_bias_after_the_product() {
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let x = [1.0, 0.5, -1.0];
        let mut y = [0.0; 2];
        gemv(&w, &x, Some(&[10.0, 20.0]), &mut y);
        assert_eq!(y, [10.0 + 1.0 + 1.0 - 3.0, 20.0 + 4.0 + 2.5 - 6.0]);
    }

    #[test]
    fn gemm_is_gemv_per_row() {
        let w = [1.0, 2.0, 3.0, 4.0];
        let x = [1.0, 1.0, 2.0, -1.0, 0.0, 3.0];
        let mut y = [0.0; 6];
        gemm(&w, &x, None, &mut y, 2, 2);
        assert_eq!(y, [3.0, 7.0, 0.0, 2.0, 6.0, 12.0]);
    }

    #[test]
    fn softmax_sums_to_one_and_survives_large_inputs() {
        let mut v = [1000.0, 1000.0, 999.0];
        softmax(&mut v);
        let sum: f32 = v.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6);
        assert!(v[0] == v[1] && v[1] > v[2]);
    }

    #[test]
    fn activations_match_their_definitions() {
        let mut v = [-2.0, 0.0, 3.0];
        relu(&mut v);
        assert_eq!(v, [0.0, 0.0, 3.0]);
        let mut v = [-2.0, 0.0, 3.0];
        leaky_relu(&mut v, 0.1);
        assert_eq!(v, [-0.2, 0.0, 3.0]);
        let mut v = [0.0];
        sigmoid(&mut v);
        assert_eq!(v, [0.5]);
        let mut v = [1.0];
        gelu(&mut v);
        assert!((v[0] - 0.841_192).abs() < 1e-5);
    }

    #[test]
    fn sq_dists_measure_each_centroid() {
        let c = [0.0, 0.0, 1.0, 1.0];
        let mut out = [0.0; 2];
        sq_dists(&c, &[1.0, 2.0], &mut out);
        assert_eq!(out, [5.0, 1.0]);
    }
}
