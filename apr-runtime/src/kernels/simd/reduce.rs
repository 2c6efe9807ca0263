//! Sums across a row: `dot`, `gemv` and `sq_dists`.

use super::Simd;
use crate::kernels::{
    assert_dot_shapes, assert_gemv_shapes, assert_sq_dists_shapes, fill_with_bias,
};

/// `a · b`.
#[inline(always)]
pub(in crate::kernels) fn dot<S: Simd>(s: S, a: &[f32], b: &[f32]) -> f32 {
    assert_dot_shapes(a, b);
    dot_common(s, a, b)
}

/// `a · b` over the common length: four accumulators of `LANES`, then one,
/// then the scalar tail.
#[inline(always)]
fn dot_common<S: Simd>(s: S, a: &[f32], b: &[f32]) -> f32 {
    let lanes = S::LANES;
    let mut acc = [s.zero(); 4];
    let mut a_wide = a.chunks_exact(4 * lanes);
    let mut b_wide = b.chunks_exact(4 * lanes);
    for (p, q) in (&mut a_wide).zip(&mut b_wide) {
        for (j, lane) in acc.iter_mut().enumerate() {
            let at = j * lanes;
            *lane = s.mul_add(s.load(&p[at..]), s.load(&q[at..]), *lane);
        }
    }
    let mut a_one = a_wide.remainder().chunks_exact(lanes);
    let mut b_one = b_wide.remainder().chunks_exact(lanes);
    for (p, q) in (&mut a_one).zip(&mut b_one) {
        acc[0] = s.mul_add(s.load(p), s.load(q), acc[0]);
    }
    let sum = s.add(s.add(acc[0], acc[1]), s.add(acc[2], acc[3]));
    let mut total = s.hsum(sum);
    for (p, q) in a_one.remainder().iter().zip(b_one.remainder()) {
        total += p * q;
    }
    total
}

/// `y = W x + b`, `ROWS` rows of `W` per step with `ACCS` accumulators each
/// (so `ACCS × LANES` columns per step), then one transposing reduction per
/// four rows.
///
/// Tuning: AVX2 runs 4 rows × 2 accumulators (as fast as 8 × 1 at 64×256,
/// 5–15 % faster at 256×256 and 1024×1024: fewer concurrent streams from
/// L2/L3); NEON, with 32 registers, 8 rows × 1.
#[inline(always)]
pub(in crate::kernels) fn gemv<S: Simd, const ROWS: usize, const ACCS: usize>(
    s: S,
    w: &[f32],
    x: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    assert_gemv_shapes(w, x, bias, y);
    gemv_checked::<S, ROWS, ACCS>(s, w, x, bias, y);
}

/// [`gemv`] once the shapes are known to agree: `w.len() == y.len() *
/// x.len()` and the bias, if any, has `y.len()` values.
#[inline(always)]
pub(super) fn gemv_checked<S: Simd, const ROWS: usize, const ACCS: usize>(
    s: S,
    w: &[f32],
    x: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    const { assert!(ROWS > 0 && ROWS.is_multiple_of(4) && ACCS > 0) };
    let lanes = S::LANES;
    let n = x.len();
    if n == 0 {
        fill_with_bias(y, bias);
        return;
    }
    let step = ACCS * lanes;
    let main_wide = n - n % step;
    let main = n - n % lanes;
    let mut y_blocks = y.chunks_exact_mut(ROWS);
    let mut w_blocks = w.chunks_exact(ROWS * n);
    let mut o = 0;
    let xp = x.as_ptr();
    for (y_rows, w_rows) in (&mut y_blocks).zip(&mut w_blocks) {
        let mut acc = [[s.zero(); ACCS]; ROWS];
        let wp = w_rows.as_ptr();
        let mut i = 0;
        while i < main_wide {
            let mut xv = [s.zero(); ACCS];
            for (a, v) in xv.iter_mut().enumerate() {
                // SAFETY: i + ACCS LANES <= main_wide <= n = x.len().
                *v = unsafe { s.load_ptr(xp.add(i + a * lanes)) };
            }
            for (r, row_acc) in acc.iter_mut().enumerate() {
                for (a, lane) in row_acc.iter_mut().enumerate() {
                    // SAFETY: w_rows.len() == ROWS n (chunks_exact) and
                    // r n + i + ACCS LANES <= (ROWS - 1) n + main_wide <= ROWS n.
                    let wv = unsafe { s.load_ptr(wp.add(r * n + i + a * lanes)) };
                    *lane = s.mul_add(wv, xv[a], *lane);
                }
            }
            i += step;
        }
        while i < main {
            // SAFETY: i + LANES <= main <= n = x.len().
            let xv = unsafe { s.load_ptr(xp.add(i)) };
            for (r, row_acc) in acc.iter_mut().enumerate() {
                // SAFETY: r n + i + LANES <= (ROWS - 1) n + main <= ROWS n =
                // w_rows.len().
                let wv = unsafe { s.load_ptr(wp.add(r * n + i)) };
                row_acc[0] = s.mul_add(wv, xv, row_acc[0]);
            }
            i += lanes;
        }
        // What the vectors did not cover: the columns past `main`, then the
        // bias, added to each row's vector sum.
        let mut extra = [0.0f32; ROWS];
        if main < n {
            for (r, t) in extra.iter_mut().enumerate() {
                let row = &w_rows[r * n + main..(r + 1) * n];
                for (p, q) in row.iter().zip(&x[main..]) {
                    *t += p * q;
                }
            }
        }
        if let Some(b) = bias {
            for (t, bv) in extra.iter_mut().zip(&b[o..o + ROWS]) {
                *t += bv;
            }
        }
        for ((acc4, y4), extra4) in acc
            .chunks_exact(4)
            .zip(y_rows.chunks_exact_mut(4))
            .zip(extra.chunks_exact(4))
        {
            let mut v = [s.zero(); 4];
            for (vr, row_acc) in v.iter_mut().zip(acc4) {
                *vr = row_acc[0];
                for &a in &row_acc[1..] {
                    *vr = s.add(*vr, a);
                }
            }
            let plus = [extra4[0], extra4[1], extra4[2], extra4[3]];
            y4.copy_from_slice(&s.hsum4_plus(v, plus));
        }
        o += ROWS;
    }
    for (out, row) in y_blocks
        .into_remainder()
        .iter_mut()
        .zip(w_blocks.remainder().chunks_exact(n))
    {
        let b = bias.and_then(|b| b.get(o)).copied().unwrap_or(0.0);
        *out = dot_common(s, row, x) + b;
        o += 1;
    }
}

/// `out[k] = |c_k − x|²`, two accumulators of `LANES` per centroid.
#[inline(always)]
pub(in crate::kernels) fn sq_dists<S: Simd>(s: S, centroids: &[f32], x: &[f32], out: &mut [f32]) {
    assert_sq_dists_shapes(centroids, x, out);
    let lanes = S::LANES;
    let n = x.len();
    if n == 0 {
        out.fill(0.0);
        return;
    }
    for (o, c) in out.iter_mut().zip(centroids.chunks_exact(n)) {
        let mut acc = [s.zero(); 2];
        let mut c_wide = c.chunks_exact(2 * lanes);
        let mut x_wide = x.chunks_exact(2 * lanes);
        for (p, q) in (&mut c_wide).zip(&mut x_wide) {
            for (j, lane) in acc.iter_mut().enumerate() {
                let at = j * lanes;
                let d = s.sub(s.load(&p[at..]), s.load(&q[at..]));
                *lane = s.mul_add(d, d, *lane);
            }
        }
        let mut c_one = c_wide.remainder().chunks_exact(lanes);
        let mut x_one = x_wide.remainder().chunks_exact(lanes);
        for (p, q) in (&mut c_one).zip(&mut x_one) {
            let d = s.sub(s.load(p), s.load(q));
            acc[0] = s.mul_add(d, d, acc[0]);
        }
        let mut total = s.hsum(s.add(acc[0], acc[1]));
        for (p, q) in c_one.remainder().iter().zip(x_one.remainder()) {
            let d = p - q;
            total += d * d;
        }
        *o = total;
    }
}
