//! NEON kernels (`std::arch::aarch64`), four `f32` lanes per vector.
//!
//! NEON is part of the aarch64 baseline (`target_feature = "neon"` is on for
//! every aarch64 Linux target, and this module is compiled only then), so the
//! table needs no run-time check. The unsafe operations are entering the
//! `#[target_feature(enable = "neon")]` functions from the table's plain
//! `fn` entries, and loads and stores through pointers; every load/store
//! states why its index range lies inside its slice, after the kernel checked
//! the slice lengths (the `assert_*_shapes` functions).

use std::arch::aarch64::*;
use std::cell::Cell;

use crate::kernels::{
    assert_dot_shapes, assert_gemm_shapes, assert_gemv_shapes, assert_sq_dists_shapes, Kernels,
    GELU_CUBIC, GELU_SQRT_2_OVER_PI,
};

/// Lanes per vector.
const LANES: usize = 4;

/// The NEON table (aarch64 always has NEON).
pub(in crate::kernels) fn table() -> Option<&'static Kernels> {
    Some(&TABLE)
}

static TABLE: Kernels = Kernels {
    name: "neon",
    isa: crate::kernels::Isa::Neon,
    dot,
    gemv,
    gemm,
    sq_dists,
    relu,
    sigmoid,
    tanh,
    gelu,
    leaky_relu,
    softmax,
};

// ---------------------------------------------------------------------------
// Safe entry points. Each `unsafe` below only enters a
// `#[target_feature(enable = "neon")]` function: this module is compiled only
// when `target_feature = "neon"` is on for the whole build (see `mod.rs`), so
// every CPU this binary can run on executes NEON.

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: NEON is enabled for the whole build (module cfg).
    unsafe { dot_neon(a, b) }
}

fn gemv(w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    // SAFETY: NEON is enabled for the whole build (module cfg).
    unsafe { gemv_neon(w, x, bias, y) }
}

fn gemm(w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32], n_in: usize, n_out: usize) {
    // SAFETY: NEON is enabled for the whole build (module cfg).
    unsafe { gemm_neon(w, x, bias, y, n_in, n_out) }
}

fn sq_dists(centroids: &[f32], x: &[f32], out: &mut [f32]) {
    // SAFETY: NEON is enabled for the whole build (module cfg).
    unsafe { sq_dists_neon(centroids, x, out) }
}

fn relu(v: &mut [f32]) {
    // SAFETY: NEON is enabled for the whole build (module cfg).
    unsafe { relu_neon(v) }
}

fn leaky_relu(v: &mut [f32], alpha: f32) {
    // SAFETY: NEON is enabled for the whole build (module cfg).
    unsafe { leaky_relu_neon(v, alpha) }
}

fn sigmoid(v: &mut [f32]) {
    // SAFETY: NEON is enabled for the whole build (module cfg).
    unsafe { sigmoid_neon(v) }
}

fn tanh(v: &mut [f32]) {
    // SAFETY: NEON is enabled for the whole build (module cfg).
    unsafe { tanh_neon(v) }
}

fn gelu(v: &mut [f32]) {
    // SAFETY: NEON is enabled for the whole build (module cfg).
    unsafe { gelu_neon(v) }
}

fn softmax(v: &mut [f32]) {
    // SAFETY: NEON is enabled for the whole build (module cfg).
    unsafe { softmax_neon(v) }
}

// ---------------------------------------------------------------------------
// Loads, stores and reductions.

/// Loads the first four values of `v`; panics if there are fewer (the check
/// folds away when `v` comes from `chunks_exact`).
#[inline]
#[target_feature(enable = "neon")]
fn load(v: &[f32]) -> float32x4_t {
    let head = &v[..LANES];
    // SAFETY: `head` holds exactly 4 f32; ld1 has no alignment requirement.
    unsafe { vld1q_f32(head.as_ptr()) }
}

/// Stores four values into the start of `v`; panics if it is shorter.
#[inline]
#[target_feature(enable = "neon")]
fn store(v: &mut [f32], x: float32x4_t) {
    let head = &mut v[..LANES];
    // SAFETY: `head` holds exactly 4 f32 we may write; st1 has no alignment
    // requirement.
    unsafe { vst1q_f32(head.as_mut_ptr(), x) }
}

/// Loads four values from `p + i` without a bounds check.
///
/// # Safety
/// `p + i .. p + i + 4` must lie inside one live slice of `f32`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load_at(p: *const f32, i: usize) -> float32x4_t {
    // SAFETY: the caller guarantees the 4 values are in bounds.
    unsafe { vld1q_f32(p.add(i)) }
}

/// Lane `i` of the result is the sum of the lanes of `v[i]`.
#[inline]
#[target_feature(enable = "neon")]
fn hsum4(v: &[float32x4_t; 4]) -> float32x4_t {
    vpaddq_f32(vpaddq_f32(v[0], v[1]), vpaddq_f32(v[2], v[3]))
}

// ---------------------------------------------------------------------------
// dot, gemv, sq_dists

#[target_feature(enable = "neon")]
fn dot_neon(a: &[f32], b: &[f32]) -> f32 {
    assert_dot_shapes(a, b);
    dot_lanes(a, b)
}

/// `a · b` over the common length.
#[target_feature(enable = "neon")]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut a_wide = a.chunks_exact(4 * LANES);
    let mut b_wide = b.chunks_exact(4 * LANES);
    for (p, q) in (&mut a_wide).zip(&mut b_wide) {
        for (j, lane) in acc.iter_mut().enumerate() {
            let at = j * LANES;
            *lane = vfmaq_f32(*lane, load(&p[at..]), load(&q[at..]));
        }
    }
    let mut a_4 = a_wide.remainder().chunks_exact(LANES);
    let mut b_4 = b_wide.remainder().chunks_exact(LANES);
    for (p, q) in (&mut a_4).zip(&mut b_4) {
        acc[0] = vfmaq_f32(acc[0], load(p), load(q));
    }
    let sum = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
    let mut total = vaddvq_f32(sum);
    for (p, q) in a_4.remainder().iter().zip(b_4.remainder()) {
        total += p * q;
    }
    total
}

/// `y = W x + b`, eight rows of `W` at a time (two transposing reductions
/// of four).
#[target_feature(enable = "neon")]
fn gemv_neon(w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    assert_gemv_shapes(w, x, bias, y);
    let n = x.len();
    if n == 0 {
        match bias {
            Some(b) => y.copy_from_slice(b),
            None => y.fill(0.0),
        }
        return;
    }
    const ROWS: usize = 8;
    let main = n - n % LANES;
    let mut y_blocks = y.chunks_exact_mut(ROWS);
    let mut w_blocks = w.chunks_exact(ROWS * n);
    let mut o = 0;
    for (y8, w8) in (&mut y_blocks).zip(&mut w_blocks) {
        let mut acc = [vdupq_n_f32(0.0); ROWS];
        let wp = w8.as_ptr();
        let xp = x.as_ptr();
        let mut i = 0;
        while i < main {
            // SAFETY: i + 4 <= main <= n = x.len().
            let xv = unsafe { load_at(xp, i) };
            for (r, lane) in acc.iter_mut().enumerate() {
                // SAFETY: w8.len() == 8 n (chunks_exact), and
                // r n + i + 4 <= 7 n + main <= 8 n.
                let wv = unsafe { load_at(wp, r * n + i) };
                *lane = vfmaq_f32(*lane, wv, xv);
            }
            i += LANES;
        }
        let mut sums = [
            hsum4(&[acc[0], acc[1], acc[2], acc[3]]),
            hsum4(&[acc[4], acc[5], acc[6], acc[7]]),
        ];
        if main < n {
            let mut tail = [0.0f32; ROWS];
            for (r, t) in tail.iter_mut().enumerate() {
                let row = &w8[r * n + main..(r + 1) * n];
                for (p, q) in row.iter().zip(&x[main..]) {
                    *t += p * q;
                }
            }
            sums[0] = vaddq_f32(sums[0], load(&tail));
            sums[1] = vaddq_f32(sums[1], load(&tail[LANES..]));
        }
        if let Some(b) = bias {
            sums[0] = vaddq_f32(sums[0], load(&b[o..]));
            sums[1] = vaddq_f32(sums[1], load(&b[o + LANES..]));
        }
        store(y8, sums[0]);
        store(&mut y8[LANES..], sums[1]);
        o += ROWS;
    }
    for (out, row) in y_blocks
        .into_remainder()
        .iter_mut()
        .zip(w_blocks.remainder().chunks_exact(n))
    {
        let b = bias.and_then(|b| b.get(o)).copied().unwrap_or(0.0);
        *out = dot_lanes(row, x) + b;
        o += 1;
    }
}

#[target_feature(enable = "neon")]
fn sq_dists_neon(centroids: &[f32], x: &[f32], out: &mut [f32]) {
    assert_sq_dists_shapes(centroids, x, out);
    let n = x.len();
    if n == 0 {
        out.fill(0.0);
        return;
    }
    for (o, c) in out.iter_mut().zip(centroids.chunks_exact(n)) {
        let mut acc = [vdupq_n_f32(0.0); 2];
        let mut c_wide = c.chunks_exact(2 * LANES);
        let mut x_wide = x.chunks_exact(2 * LANES);
        for (p, q) in (&mut c_wide).zip(&mut x_wide) {
            for (j, lane) in acc.iter_mut().enumerate() {
                let at = j * LANES;
                let d = vsubq_f32(load(&p[at..]), load(&q[at..]));
                *lane = vfmaq_f32(*lane, d, d);
            }
        }
        let mut c_4 = c_wide.remainder().chunks_exact(LANES);
        let mut x_4 = x_wide.remainder().chunks_exact(LANES);
        for (p, q) in (&mut c_4).zip(&mut x_4) {
            let d = vsubq_f32(load(p), load(q));
            acc[0] = vfmaq_f32(acc[0], d, d);
        }
        let mut total = vaddvq_f32(vaddq_f32(acc[0], acc[1]));
        for (p, q) in c_4.remainder().iter().zip(x_4.remainder()) {
            let d = p - q;
            total += d * d;
        }
        *o = total;
    }
}

// ---------------------------------------------------------------------------
// gemm: Y = X Wᵀ + b, register-blocked as in the AVX2 table: W packed into
// panels of NR = 16 outputs (four vectors), MR = 6 rows per tile, so 24 of
// the 32 vector registers hold the tile and each k costs 10 loads for 24
// FMAs.

/// Outputs per packed panel (four vectors).
const NR: usize = 4 * LANES;
/// Rows per micro-tile.
const MR: usize = 6;
/// Rows of X per outer block (a multiple of MR).
const ROWS_PER_BLOCK: usize = 8 * MR;
/// Below this many rows, packing W does not pay: run gemv per row
/// ([`crate::kernels::GEMM_MIN_ROWS_FOR_PACKING`]).
const MIN_ROWS_FOR_PACKING: usize = crate::kernels::GEMM_MIN_ROWS_FOR_PACKING;

thread_local! {
    /// The packed-W buffer, reused across calls on the same thread.
    static PACKED_W: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

#[target_feature(enable = "neon")]
fn gemm_neon(w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32], n_in: usize, n_out: usize) {
    let rows = assert_gemm_shapes(w, x, bias, y, n_in, n_out);
    if rows == 0 || n_out == 0 {
        return;
    }
    if n_in == 0 {
        for y_row in y.chunks_exact_mut(n_out) {
            match bias {
                Some(b) => y_row.copy_from_slice(b),
                None => y_row.fill(0.0),
            }
        }
        return;
    }
    if rows < MIN_ROWS_FOR_PACKING {
        for (x_row, y_row) in x.chunks_exact(n_in).zip(y.chunks_exact_mut(n_out)) {
            gemv_neon(w, x_row, bias, y_row);
        }
        return;
    }
    let panels = n_out.div_ceil(NR);
    let mut packed = PACKED_W.with(Cell::take);
    pack_panels(w, n_in, n_out, &mut packed);
    let mut block0 = 0;
    while block0 < rows {
        let block_end = rows.min(block0 + ROWS_PER_BLOCK);
        for p in 0..panels {
            let panel = &packed[p * n_in * NR..(p + 1) * n_in * NR];
            let col0 = p * NR;
            let cols = NR.min(n_out - col0);
            let mut bias_tile = [0.0f32; NR];
            if let Some(b) = bias {
                bias_tile[..cols].copy_from_slice(&b[col0..col0 + cols]);
            }
            let mut row0 = block0;
            while row0 < block_end {
                let mr = MR.min(block_end - row0);
                let x_block = &x[row0 * n_in..(row0 + mr) * n_in];
                let y_block = &mut y[row0 * n_out..(row0 + mr) * n_out];
                let tile = Tile {
                    panel,
                    x_block,
                    n_in,
                    bias: &bias_tile,
                };
                match mr {
                    6 => tile.run::<6>(y_block, n_out, col0, cols),
                    5 => tile.run::<5>(y_block, n_out, col0, cols),
                    4 => tile.run::<4>(y_block, n_out, col0, cols),
                    3 => tile.run::<3>(y_block, n_out, col0, cols),
                    2 => tile.run::<2>(y_block, n_out, col0, cols),
                    _ => tile.run::<1>(y_block, n_out, col0, cols),
                }
                row0 += mr;
            }
        }
        block0 = block_end;
    }
    PACKED_W.with(|cell| cell.set(packed));
}

/// Packs W (`n_out × n_in`, `n_in > 0`) into `⌈n_out / 16⌉` panels of
/// `n_in × 16`, zero past `n_out`. Blocks of 4 rows × 4 columns go through
/// an in-register transpose.
#[target_feature(enable = "neon")]
fn pack_panels(w: &[f32], n_in: usize, n_out: usize, packed: &mut Vec<f32>) {
    let panels = n_out.div_ceil(NR);
    packed.clear();
    packed.resize(panels * n_in * NR, 0.0);
    let k_main = n_in - n_in % LANES;
    for (p, panel) in packed.chunks_exact_mut(n_in * NR).enumerate() {
        for quarter in 0..NR / LANES {
            let o0 = p * NR + quarter * LANES;
            if o0 >= n_out {
                break;
            }
            let rows_here = LANES.min(n_out - o0);
            let col = quarter * LANES;
            let mut k_done = 0;
            if rows_here == LANES {
                let rows: [&[f32]; LANES] =
                    std::array::from_fn(|i| &w[(o0 + i) * n_in..(o0 + i + 1) * n_in]);
                let mut k0 = 0;
                while k0 < k_main {
                    let block: [float32x4_t; LANES] = std::array::from_fn(|i| load(&rows[i][k0..]));
                    for (k, column) in transpose4(&block).iter().enumerate() {
                        store(&mut panel[(k0 + k) * NR + col..], *column);
                    }
                    k0 += LANES;
                }
                k_done = k_main;
            }
            for j in 0..rows_here {
                let row = &w[(o0 + j) * n_in..(o0 + j + 1) * n_in];
                for (k, &v) in row.iter().enumerate().skip(k_done) {
                    panel[k * NR + col + j] = v;
                }
            }
        }
    }
}

/// The 4 × 4 transpose: lane `i` of result `k` is lane `k` of `r[i]`.
#[inline]
#[target_feature(enable = "neon")]
fn transpose4(r: &[float32x4_t; 4]) -> [float32x4_t; 4] {
    let t0 = vreinterpretq_f64_f32(vtrn1q_f32(r[0], r[1]));
    let t1 = vreinterpretq_f64_f32(vtrn2q_f32(r[0], r[1]));
    let t2 = vreinterpretq_f64_f32(vtrn1q_f32(r[2], r[3]));
    let t3 = vreinterpretq_f64_f32(vtrn2q_f32(r[2], r[3]));
    [
        vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)),
        vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)),
        vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)),
        vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)),
    ]
}

/// One MR-row block of X against one packed panel.
struct Tile<'a> {
    /// `n_in × 16` packed values of W.
    panel: &'a [f32],
    /// `mr × n_in` rows of X.
    x_block: &'a [f32],
    n_in: usize,
    /// The panel's 16 bias values (zero past n_out).
    bias: &'a [f32; NR],
}

impl Tile<'_> {
    /// Computes the `M × cols` tile and writes it at column `col0` of the
    /// `M` rows of `y_block` (rows of `n_out`).
    #[inline]
    #[target_feature(enable = "neon")]
    fn run<const M: usize>(&self, y_block: &mut [f32], n_out: usize, col0: usize, cols: usize) {
        let n_in = self.n_in;
        // The bounds every unchecked load below relies on.
        assert!(self.panel.len() >= n_in * NR && self.x_block.len() >= M * n_in);
        let b = [
            load(&self.bias[..]),
            load(&self.bias[LANES..]),
            load(&self.bias[2 * LANES..]),
            load(&self.bias[3 * LANES..]),
        ];
        let mut acc = [b; M];
        let pp = self.panel.as_ptr();
        let xp = self.x_block.as_ptr();
        for k in 0..n_in {
            // SAFETY: k < n_in, so k 16 + 16 <= n_in 16 <= panel.len().
            let wv = unsafe {
                [
                    load_at(pp, k * NR),
                    load_at(pp, k * NR + LANES),
                    load_at(pp, k * NR + 2 * LANES),
                    load_at(pp, k * NR + 3 * LANES),
                ]
            };
            for (r, lane) in acc.iter_mut().enumerate() {
                // SAFETY: r < M and k < n_in, so r n_in + k < M n_in <=
                // x_block.len().
                let xv = unsafe { vld1q_dup_f32(xp.add(r * n_in + k)) };
                for (l, &wj) in lane.iter_mut().zip(&wv) {
                    *l = vfmaq_f32(*l, xv, wj);
                }
            }
        }
        for (lane, y_row) in acc.iter().zip(y_block.chunks_exact_mut(n_out)) {
            let out = &mut y_row[col0..col0 + cols];
            let mut tile = [0.0f32; NR];
            for (j, &v) in lane.iter().enumerate() {
                store(&mut tile[j * LANES..], v);
            }
            out.copy_from_slice(&tile[..cols]);
        }
    }
}

// ---------------------------------------------------------------------------
// Activations.

/// Applies `f` to every vector of `v`; the last partial vector goes through
/// a zero-padded copy.
#[inline]
#[target_feature(enable = "neon")]
fn map_in_place(v: &mut [f32], f: impl Fn(float32x4_t) -> float32x4_t) {
    let mut chunks = v.chunks_exact_mut(LANES);
    for c in &mut chunks {
        let r = f(load(c));
        store(c, r);
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mut buf = [0.0f32; LANES];
        buf[..rest.len()].copy_from_slice(rest);
        let r = f(load(&buf));
        store(&mut buf, r);
        rest.copy_from_slice(&buf[..rest.len()]);
    }
}

#[target_feature(enable = "neon")]
fn relu_neon(v: &mut [f32]) {
    let zero = vdupq_n_f32(0.0);
    // maxnm returns the number when one operand is NaN: NaN -> 0, like
    // f32::max in the scalar table.
    map_in_place(v, |x| vmaxnmq_f32(x, zero));
}

#[target_feature(enable = "neon")]
fn leaky_relu_neon(v: &mut [f32], alpha: f32) {
    let zero = vdupq_n_f32(0.0);
    map_in_place(v, |x| {
        let negative = vcltq_f32(x, zero);
        vbslq_f32(negative, vmulq_n_f32(x, alpha), x)
    });
}

/// `e^x` to about 1 ulp for `x` in `[-87.3, 88]` (Cephes `expf`). Inputs
/// are clamped to that range (so that `2^n` stays a normal number: at 88.38
/// the rounded exponent would reach 128), so the result is always finite and
/// at least about 8e-39 where libm would return a subnormal or 0; NaN gives NaN (fmin/fmax propagate it).
#[inline]
#[target_feature(enable = "neon")]
fn exp(x: float32x4_t) -> float32x4_t {
    let x = vminq_f32(x, vdupq_n_f32(88.0));
    let x = vmaxq_f32(x, vdupq_n_f32(-87.336_55));
    let fx = vrndnq_f32(vmulq_n_f32(x, std::f32::consts::LOG2_E));
    let r = vfmsq_f32(x, fx, vdupq_n_f32(0.693_359_4));
    let r = vfmsq_f32(r, fx, vdupq_n_f32(-2.121_944_4e-4));
    let mut p = vdupq_n_f32(1.987_569_1e-4);
    p = vfmaq_f32(vdupq_n_f32(1.398_2e-3), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.333_452e-3), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.166_579_6e-2), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.166_666_65), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5), p, r);
    let r2 = vmulq_f32(r, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0)), p, r2);
    let n = vcvtq_s32_f32(fx);
    let scale = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(n, vdupq_n_s32(127))));
    vmulq_f32(p, scale)
}

/// `1 / (1 + e^-x)`.
#[inline]
#[target_feature(enable = "neon")]
fn sigmoid_v(x: float32x4_t) -> float32x4_t {
    let one = vdupq_n_f32(1.0);
    vdivq_f32(one, vaddq_f32(one, exp(vnegq_f32(x))))
}

/// `tanh(x)`: an odd polynomial below |x| = 0.625 (Cephes `tanhf`), else
/// `1 - 2 / (e^{2|x|} + 1)` with the sign of x.
#[inline]
#[target_feature(enable = "neon")]
fn tanh_v(x: float32x4_t) -> float32x4_t {
    let ax = vabsq_f32(x);
    let z = vmulq_f32(x, x);
    let mut p = vdupq_n_f32(-5.704_988_7e-3);
    p = vfmaq_f32(vdupq_n_f32(2.063_909e-2), p, z);
    p = vfmaq_f32(vdupq_n_f32(-5.370_374_5e-2), p, z);
    p = vfmaq_f32(vdupq_n_f32(1.333_148_2e-1), p, z);
    p = vfmaq_f32(vdupq_n_f32(-3.333_332_8e-1), p, z);
    let small = vfmaq_f32(x, vmulq_f32(p, z), x);
    // Large |x|: tanh rounds to ±1 in f32 from about 9.01 on.
    let one = vdupq_n_f32(1.0);
    let e = exp(vmulq_n_f32(vminq_f32(ax, vdupq_n_f32(10.0)), 2.0));
    let large = vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.0), vaddq_f32(e, one)));
    // Copy the sign of x onto `large` (bit select on the sign bit).
    let sign_bit = vdupq_n_u32(0x8000_0000);
    let large = vbslq_f32(sign_bit, x, large);
    let is_small = vcltq_f32(ax, vdupq_n_f32(0.625));
    vbslq_f32(is_small, small, large)
}

#[target_feature(enable = "neon")]
fn sigmoid_neon(v: &mut [f32]) {
    map_in_place(v, |x| sigmoid_v(x));
}

#[target_feature(enable = "neon")]
fn tanh_neon(v: &mut [f32]) {
    map_in_place(v, |x| tanh_v(x));
}

#[target_feature(enable = "neon")]
fn gelu_neon(v: &mut [f32]) {
    let half = vdupq_n_f32(0.5);
    let one = vdupq_n_f32(1.0);
    map_in_place(v, |x| {
        let x3 = vmulq_f32(vmulq_f32(x, x), x);
        let inner = vmulq_n_f32(vfmaq_n_f32(x, x3, GELU_CUBIC), GELU_SQRT_2_OVER_PI);
        let t = tanh_v(inner);
        vmulq_f32(vmulq_f32(half, x), vaddq_f32(one, t))
    });
}

#[target_feature(enable = "neon")]
fn softmax_neon(v: &mut [f32]) {
    if v.is_empty() {
        return;
    }
    let mut max_v = vdupq_n_f32(f32::NEG_INFINITY);
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        // maxnm ignores a NaN operand, like f32::max in the scalar table.
        max_v = vmaxnmq_f32(max_v, load(c));
    }
    let max = chunks
        .remainder()
        .iter()
        .copied()
        .fold(vmaxnmvq_f32(max_v), f32::max);
    let m = vdupq_n_f32(max);
    map_in_place(v, |x| exp(vsubq_f32(x, m)));
    let mut sum_v = vdupq_n_f32(0.0);
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        sum_v = vaddq_f32(sum_v, load(c));
    }
    let sum = vaddvq_f32(sum_v) + chunks.remainder().iter().sum::<f32>();
    let s = vdupq_n_f32(sum);
    map_in_place(v, |x| vdivq_f32(x, s));
}
