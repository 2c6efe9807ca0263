//! AVX2 + FMA kernels (`std::arch::x86_64`), eight `f32` lanes per vector.
//!
//! Soundness rests on two facts, checked in one place each:
//! - the AVX2/FMA instructions exist: [`table`] hands out [`TABLE`] only after
//!   `is_x86_feature_detected!` reported both `avx2` and `fma`, and the
//!   `#[target_feature]` functions here are reachable only through `TABLE`;
//! - every pointer access is in bounds: each public kernel checks the slice
//!   lengths first (the `assert_*_shapes` functions), and every load/store
//!   below states why its index range lies inside its slice.

use std::arch::x86_64::*;
use std::cell::Cell;

use crate::kernels::{
    assert_dot_shapes, assert_gemm_shapes, assert_gemv_shapes, assert_sq_dists_shapes, Kernels,
};

/// Lanes per vector.
const LANES: usize = 8;

/// The AVX2+FMA table, when this CPU runs it.
pub(in crate::kernels) fn table() -> Option<&'static Kernels> {
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Some(&TABLE)
    } else {
        None
    }
}

/// Only reachable through [`table`], which checks the CPU first.
static TABLE: Kernels = Kernels {
    name: "avx2+fma",
    isa: crate::kernels::Isa::Avx2Fma,
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
// Safe entry points: check shapes, then enter the AVX2 code.

fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_dot_shapes(a, b);
    // SAFETY: this function is only reachable through TABLE, which `table()`
    // hands out only when the CPU reports avx2 and fma.
    unsafe { dot_avx2(a, b) }
}

fn gemv(w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    assert_gemv_shapes(w, x, bias, y);
    // SAFETY: reachable only through TABLE (avx2 and fma detected); the
    // shapes were checked just above.
    unsafe { gemv_avx2(w, x, bias, y) }
}

fn gemm(w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32], n_in: usize, n_out: usize) {
    let rows = assert_gemm_shapes(w, x, bias, y, n_in, n_out);
    // SAFETY: reachable only through TABLE (avx2 and fma detected); the
    // shapes were checked just above.
    unsafe { gemm_avx2(w, x, bias, y, rows, n_in, n_out) }
}

fn sq_dists(centroids: &[f32], x: &[f32], out: &mut [f32]) {
    assert_sq_dists_shapes(centroids, x, out);
    // SAFETY: reachable only through TABLE (avx2 and fma detected); the
    // shapes were checked just above.
    unsafe { sq_dists_avx2(centroids, x, out) }
}

fn relu(v: &mut [f32]) {
    // SAFETY: reachable only through TABLE (avx2 and fma detected).
    unsafe { relu_avx2(v) }
}

fn leaky_relu(v: &mut [f32], alpha: f32) {
    // SAFETY: reachable only through TABLE (avx2 and fma detected).
    unsafe { leaky_relu_avx2(v, alpha) }
}

fn sigmoid(v: &mut [f32]) {
    // SAFETY: reachable only through TABLE (avx2 and fma detected).
    unsafe { sigmoid_avx2(v) }
}

fn tanh(v: &mut [f32]) {
    // SAFETY: reachable only through TABLE (avx2 and fma detected).
    unsafe { tanh_avx2(v) }
}

fn gelu(v: &mut [f32]) {
    // SAFETY: reachable only through TABLE (avx2 and fma detected).
    unsafe { gelu_avx2(v) }
}

fn softmax(v: &mut [f32]) {
    // SAFETY: reachable only through TABLE (avx2 and fma detected).
    unsafe { softmax_avx2(v) }
}

// ---------------------------------------------------------------------------
// Loads, stores and reductions.

/// Loads the first eight values of `v`; panics if there are fewer (the
/// check folds away when `v` comes from `chunks_exact(8)`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load(v: &[f32]) -> __m256 {
    let head = &v[..LANES];
    // SAFETY: `head` holds exactly 8 f32; loadu has no alignment requirement.
    unsafe { _mm256_loadu_ps(head.as_ptr()) }
}

/// Stores eight values into the start of `v`; panics if it is shorter.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store(v: &mut [f32], x: __m256) {
    let head = &mut v[..LANES];
    // SAFETY: `head` holds exactly 8 f32 we may write; storeu has no
    // alignment requirement.
    unsafe { _mm256_storeu_ps(head.as_mut_ptr(), x) }
}

/// Loads eight values from `p + i` without a bounds check.
///
/// # Safety
/// `p + i .. p + i + 8` must lie inside one live slice of `f32`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load_at(p: *const f32, i: usize) -> __m256 {
    // SAFETY: the caller guarantees the 8 values are in bounds.
    unsafe { _mm256_loadu_ps(p.add(i)) }
}

/// The sum of the eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps::<1>(v);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0x55>(s, s));
    _mm_cvtss_f32(s)
}

// ---------------------------------------------------------------------------
// dot, gemv, sq_dists

#[target_feature(enable = "avx2,fma")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut a_wide = a.chunks_exact(4 * LANES);
    let mut b_wide = b.chunks_exact(4 * LANES);
    for (p, q) in (&mut a_wide).zip(&mut b_wide) {
        for (j, lane) in acc.iter_mut().enumerate() {
            let at = j * LANES;
            *lane = _mm256_fmadd_ps(load(&p[at..]), load(&q[at..]), *lane);
        }
    }
    let mut a_8 = a_wide.remainder().chunks_exact(LANES);
    let mut b_8 = b_wide.remainder().chunks_exact(LANES);
    for (p, q) in (&mut a_8).zip(&mut b_8) {
        acc[0] = _mm256_fmadd_ps(load(p), load(q), acc[0]);
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut total = hsum(sum);
    for (p, q) in a_8.remainder().iter().zip(b_8.remainder()) {
        total += p * q;
    }
    total
}

/// `y = W x + b`, four rows of `W` and sixteen columns per step (two
/// accumulators per row), one four-way transposing reduction per block.
/// Measured against eight rows × one accumulator: as fast at 64×256, 5–15 %
/// faster at 256×256 and 1024×1024 (fewer concurrent streams from L2/L3).
///
/// # Safety
/// The CPU supports avx2 and fma, and the shapes passed `assert_gemv_shapes`.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_avx2(w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    const ROWS: usize = 4;
    let n = x.len();
    if n == 0 {
        match bias {
            Some(b) => y.copy_from_slice(b),
            None => y.fill(0.0),
        }
        return;
    }
    let main16 = n - n % (2 * LANES);
    let main = n - n % LANES;
    let mut y_blocks = y.chunks_exact_mut(ROWS);
    let mut w_blocks = w.chunks_exact(ROWS * n);
    let mut o = 0;
    let xp = x.as_ptr();
    for (y4, w4) in (&mut y_blocks).zip(&mut w_blocks) {
        let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
        let wp = w4.as_ptr();
        let mut i = 0;
        while i < main16 {
            // SAFETY: i + 16 <= main16 <= n = x.len().
            let (x0, x1) = unsafe { (load_at(xp, i), load_at(xp, i + LANES)) };
            for (r, lane) in acc.iter_mut().enumerate() {
                // SAFETY: w4.len() == 4 n, and r n + i + 16 <= 3 n + main16 <= 4 n.
                let (w0, w1) = unsafe { (load_at(wp, r * n + i), load_at(wp, r * n + i + LANES)) };
                lane[0] = _mm256_fmadd_ps(w0, x0, lane[0]);
                lane[1] = _mm256_fmadd_ps(w1, x1, lane[1]);
            }
            i += 2 * LANES;
        }
        if i < main {
            // SAFETY: i + 8 <= main <= n.
            let x0 = unsafe { load_at(xp, i) };
            for (r, lane) in acc.iter_mut().enumerate() {
                // SAFETY: r n + i + 8 <= 3 n + main <= 4 n = w4.len().
                let w0 = unsafe { load_at(wp, r * n + i) };
                lane[0] = _mm256_fmadd_ps(w0, x0, lane[0]);
            }
        }
        let v: [__m256; ROWS] = std::array::from_fn(|r| _mm256_add_ps(acc[r][0], acc[r][1]));
        let h = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
        let mut sums = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
        let mut extra = [0.0f32; ROWS];
        if main < n {
            for (r, t) in extra.iter_mut().enumerate() {
                let row = &w4[r * n + main..(r + 1) * n];
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
        // SAFETY: `extra` holds exactly 4 f32.
        sums = _mm_add_ps(sums, unsafe { _mm_loadu_ps(extra.as_ptr()) });
        let out = &mut y4[..ROWS];
        // SAFETY: `out` holds exactly 4 f32 we may write.
        unsafe { _mm_storeu_ps(out.as_mut_ptr(), sums) };
        o += ROWS;
    }
    for (out, row) in y_blocks
        .into_remainder()
        .iter_mut()
        .zip(w_blocks.remainder().chunks_exact(n))
    {
        let b = bias.and_then(|b| b.get(o)).copied().unwrap_or(0.0);
        *out = dot_avx2(row, x) + b;
        o += 1;
    }
}

/// # Safety
/// The CPU supports avx2 and fma, and the shapes passed
/// `assert_sq_dists_shapes`.
#[target_feature(enable = "avx2,fma")]
unsafe fn sq_dists_avx2(centroids: &[f32], x: &[f32], out: &mut [f32]) {
    let n = x.len();
    if n == 0 {
        out.fill(0.0);
        return;
    }
    for (o, c) in out.iter_mut().zip(centroids.chunks_exact(n)) {
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut c_wide = c.chunks_exact(2 * LANES);
        let mut x_wide = x.chunks_exact(2 * LANES);
        for (p, q) in (&mut c_wide).zip(&mut x_wide) {
            for (j, lane) in acc.iter_mut().enumerate() {
                let at = j * LANES;
                let d = _mm256_sub_ps(load(&p[at..]), load(&q[at..]));
                *lane = _mm256_fmadd_ps(d, d, *lane);
            }
        }
        let mut c_8 = c_wide.remainder().chunks_exact(LANES);
        let mut x_8 = x_wide.remainder().chunks_exact(LANES);
        for (p, q) in (&mut c_8).zip(&mut x_8) {
            let d = _mm256_sub_ps(load(p), load(q));
            acc[0] = _mm256_fmadd_ps(d, d, acc[0]);
        }
        let mut total = hsum(_mm256_add_ps(acc[0], acc[1]));
        for (p, q) in c_8.remainder().iter().zip(x_8.remainder()) {
            let d = p - q;
            total += d * d;
        }
        *o = total;
    }
}

// ---------------------------------------------------------------------------
// gemm: Y = X Wᵀ + b, register-blocked.
//
// W is packed once per call into panels of NR = 16 outputs: panel p holds,
// for every k, the 16 values W[16p .. 16p + 16][k] side by side (zero past
// n_out). A micro-kernel then keeps an MR × 16 tile of Y in 2 MR registers,
// and per k broadcasts one X value per row and issues 2 MR FMAs against the
// two panel vectors: 12 FMAs per 8 loads at MR = 6, enough to keep both FMA
// pipes busy. The panel (16 n_in floats) stays in L1 while the row blocks
// stream past it.

/// Outputs per packed panel (two vectors).
const NR: usize = 2 * LANES;
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

/// # Safety
/// The CPU supports avx2 and fma, and the shapes passed `assert_gemm_shapes`
/// (which returned `rows`).
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2(
    w: &[f32],
    x: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    rows: usize,
    n_in: usize,
    n_out: usize,
) {
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
            // SAFETY: same CPU; W is n_out x n_in, x_row has n_in values,
            // y_row n_out and the bias (checked) n_out: gemv's shapes hold.
            unsafe { gemv_avx2(w, x_row, bias, y_row) };
        }
        return;
    }
    let panels = n_out.div_ceil(NR);
    let mut packed = PACKED_W.with(Cell::take);
    pack_panels(w, n_in, n_out, &mut packed);
    // Row blocks outermost keep each block of X in L1/L2 while every panel
    // of W passes over it.
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
/// `n_in × 16`, zero past `n_out`. Blocks of 8 rows × 8 columns go through
/// an in-register transpose (about 4× faster than element by element, which
/// cost ~9 % of a 256 × 256 × 256 gemm).
#[target_feature(enable = "avx2,fma")]
fn pack_panels(w: &[f32], n_in: usize, n_out: usize, packed: &mut Vec<f32>) {
    let panels = n_out.div_ceil(NR);
    packed.clear();
    packed.resize(panels * n_in * NR, 0.0);
    let k_main = n_in - n_in % LANES;
    for (p, panel) in packed.chunks_exact_mut(n_in * NR).enumerate() {
        for half in 0..NR / LANES {
            let o0 = p * NR + half * LANES;
            if o0 >= n_out {
                break;
            }
            let rows_here = LANES.min(n_out - o0);
            let col = half * LANES;
            let mut k_done = 0;
            if rows_here == LANES {
                let rows: [&[f32]; LANES] =
                    std::array::from_fn(|i| &w[(o0 + i) * n_in..(o0 + i + 1) * n_in]);
                let mut k0 = 0;
                while k0 < k_main {
                    let block: [__m256; LANES] = std::array::from_fn(|i| load(&rows[i][k0..]));
                    for (k, column) in transpose8(&block).iter().enumerate() {
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

/// The 8 × 8 transpose: lane `i` of result `k` is lane `k` of `r[i]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn transpose8(r: &[__m256; 8]) -> [__m256; 8] {
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
    [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
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
    #[target_feature(enable = "avx2,fma")]
    fn run<const M: usize>(&self, y_block: &mut [f32], n_out: usize, col0: usize, cols: usize) {
        let n_in = self.n_in;
        // The bounds every unchecked load below relies on.
        assert!(self.panel.len() >= n_in * NR && self.x_block.len() >= M * n_in);
        let b0 = load(&self.bias[..]);
        let b1 = load(&self.bias[LANES..]);
        let mut acc = [[b0, b1]; M];
        let pp = self.panel.as_ptr();
        let xp = self.x_block.as_ptr();
        for k in 0..n_in {
            // SAFETY: k < n_in, so k 16 + 16 <= n_in 16 <= panel.len().
            let (w0, w1) = unsafe { (load_at(pp, k * NR), load_at(pp, k * NR + LANES)) };
            for (r, lane) in acc.iter_mut().enumerate() {
                // SAFETY: r < M and k < n_in, so r n_in + k < M n_in <=
                // x_block.len().
                let xv = _mm256_set1_ps(unsafe { *xp.add(r * n_in + k) });
                lane[0] = _mm256_fmadd_ps(xv, w0, lane[0]);
                lane[1] = _mm256_fmadd_ps(xv, w1, lane[1]);
            }
        }
        for (lane, y_row) in acc.iter().zip(y_block.chunks_exact_mut(n_out)) {
            let out = &mut y_row[col0..col0 + cols];
            if cols == NR {
                store(out, lane[0]);
                store(&mut out[LANES..], lane[1]);
            } else {
                let mut tile = [0.0f32; NR];
                store(&mut tile, lane[0]);
                store(&mut tile[LANES..], lane[1]);
                out.copy_from_slice(&tile[..cols]);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Activations.

/// Applies `f` to every vector of `v`; the last partial vector goes through
/// a zero-padded copy.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn map_in_place(v: &mut [f32], f: impl Fn(__m256) -> __m256) {
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

#[target_feature(enable = "avx2,fma")]
fn relu_avx2(v: &mut [f32]) {
    let zero = _mm256_setzero_ps();
    // max_ps returns its second operand when the first is NaN: NaN -> 0,
    // like f32::max in the scalar table.
    map_in_place(v, |x| _mm256_max_ps(x, zero));
}

#[target_feature(enable = "avx2,fma")]
fn leaky_relu_avx2(v: &mut [f32], alpha: f32) {
    let zero = _mm256_setzero_ps();
    let a = _mm256_set1_ps(alpha);
    map_in_place(v, |x| {
        let negative = _mm256_cmp_ps::<_CMP_LT_OQ>(x, zero);
        _mm256_blendv_ps(x, _mm256_mul_ps(x, a), negative)
    });
}

/// `e^x` to about 1 ulp for `x` in `[-87.3, 88]` (Cephes `expf`). Inputs
/// are clamped to that range (so that `2^n` stays a normal number: at 88.38
/// the rounded exponent would reach 128), so the result is always finite and
/// at least about 8e-39 where libm would return a subnormal or 0; NaN gives NaN.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp(x: __m256) -> __m256 {
    // min/max return their second operand when either is NaN: NaN stays NaN.
    let x = _mm256_min_ps(_mm256_set1_ps(88.0), x);
    let x = _mm256_max_ps(_mm256_set1_ps(-87.336_55), x);
    let fx = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.987_569_1e-4);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.398_2e-3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.333_452e-3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166_579_6e-2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.166_666_65));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5));
    let r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0)));
    let n = _mm256_cvtps_epi32(fx);
    let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
        n,
        _mm256_set1_epi32(127),
    )));
    _mm256_mul_ps(p, scale)
}

/// `1 / (1 + e^-x)`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sigmoid_v(x: __m256) -> __m256 {
    let one = _mm256_set1_ps(1.0);
    let e = exp(_mm256_sub_ps(_mm256_setzero_ps(), x));
    _mm256_div_ps(one, _mm256_add_ps(one, e))
}

/// `tanh(x)`: an odd polynomial below |x| = 0.625 (Cephes `tanhf`), else
/// `1 - 2 / (e^{2|x|} + 1)` with the sign of x.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn tanh_v(x: __m256) -> __m256 {
    let sign_mask = _mm256_set1_ps(-0.0);
    let sign = _mm256_and_ps(x, sign_mask);
    let ax = _mm256_andnot_ps(sign_mask, x);
    // Small |x|.
    let z = _mm256_mul_ps(x, x);
    let mut p = _mm256_set1_ps(-5.704_988_7e-3);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.063_909e-2));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.370_374_5e-2));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.333_148_2e-1));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.333_332_8e-1));
    let small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    // Large |x|: tanh rounds to ±1 in f32 from about 9.01 on.
    let one = _mm256_set1_ps(1.0);
    let two = _mm256_set1_ps(2.0);
    let e = exp(_mm256_mul_ps(two, _mm256_min_ps(_mm256_set1_ps(10.0), ax)));
    let large = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)));
    let large = _mm256_or_ps(large, sign);
    let is_small = _mm256_cmp_ps::<_CMP_LT_OQ>(ax, _mm256_set1_ps(0.625));
    _mm256_blendv_ps(large, small, is_small)
}

#[target_feature(enable = "avx2,fma")]
fn sigmoid_avx2(v: &mut [f32]) {
    map_in_place(v, |x| sigmoid_v(x));
}

#[target_feature(enable = "avx2,fma")]
fn tanh_avx2(v: &mut [f32]) {
    map_in_place(v, |x| tanh_v(x));
}

#[target_feature(enable = "avx2,fma")]
fn gelu_avx2(v: &mut [f32]) {
    let half = _mm256_set1_ps(0.5);
    let one = _mm256_set1_ps(1.0);
    let c = _mm256_set1_ps(crate::kernels::GELU_SQRT_2_OVER_PI);
    let cubic = _mm256_set1_ps(crate::kernels::GELU_CUBIC);
    map_in_place(v, |x| {
        let x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
        let inner = _mm256_mul_ps(c, _mm256_fmadd_ps(cubic, x3, x));
        let t = tanh_v(inner);
        _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, t))
    });
}

#[target_feature(enable = "avx2,fma")]
fn softmax_avx2(v: &mut [f32]) {
    if v.is_empty() {
        return;
    }
    let mut max_v = _mm256_set1_ps(f32::NEG_INFINITY);
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        max_v = _mm256_max_ps(load(c), max_v);
    }
    let mut lanes = [0.0f32; LANES];
    store(&mut lanes, max_v);
    let max = lanes
        .iter()
        .chain(chunks.remainder())
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    let m = _mm256_set1_ps(max);
    map_in_place(v, |x| exp(_mm256_sub_ps(x, m)));
    let mut sum_v = _mm256_setzero_ps();
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        sum_v = _mm256_add_ps(sum_v, load(c));
    }
    let sum = hsum(sum_v) + chunks.remainder().iter().sum::<f32>();
    let s = _mm256_set1_ps(sum);
    map_in_place(v, |x| _mm256_div_ps(x, s));
}
