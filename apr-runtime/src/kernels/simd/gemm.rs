//! `gemm`: `Y = X Wᵀ + b`, register-blocked.
//!
//! From 10 rows, and unless the layer is too narrow for the tile
//! ([`gemm_runs_rows`], which then runs gemv per row), W is packed (once per
//! call by [`gemm`], or once for good by the caller of [`gemm_packed`]) into
//! panels of `NR` outputs: panel `p` holds,
//! for every `k`, the `NR` values `W[NR p .. NR p + NR][k]` side by side (zero
//! past `n_out`). A micro-kernel then keeps an `MR × NR` tile of Y in
//! `MR × VPR` registers (`VPR = NR / LANES`), and per `k` broadcasts one X
//! value per row and issues `MR × VPR` fused multiply-adds against the
//! panel's `VPR` vectors. The panel (`NR × n_in` floats) stays in L1 while
//! the row blocks stream past it.
//!
//! Tuning: both AVX2 and NEON use `NR = 16`, `MR = 6`: on AVX2 that is two
//! vectors per row, 12 FMAs per 8 loads (enough to keep both FMA pipes
//! busy); on NEON four vectors per row, 24 of the 32 registers for the tile
//! and 10 loads per 24 FMAs.

use std::cell::Cell;

use super::{reduce, Simd, MAX_LANES};
use crate::kernels::{
    assert_gemm_shapes, assert_packed_shape, fill_with_bias, gemm_runs_rows, packed_len,
    MAX_GEMM_TILE_ROWS, PANEL_WIDTH,
};

thread_local! {
    /// The packed-W buffer, reused across calls on the same thread.
    static PACKED_W: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// `Y = X Wᵀ + b` (see [`Kernels::gemm`](crate::kernels::Kernels::gemm)):
/// `NR` outputs per panel in `VPR` vectors, `MR` rows per tile; below
/// [`GEMM_MIN_ROWS_FOR_PACKING`](crate::kernels::GEMM_MIN_ROWS_FOR_PACKING)
/// rows, and for narrow layers ([`gemm_runs_rows`]), [`reduce::gemv`] per
/// row with `GEMV_ROWS` and `GEMV_ACCS`.
#[inline(always)]
pub(in crate::kernels) fn gemm<
    S: Simd,
    const NR: usize,
    const VPR: usize,
    const MR: usize,
    const GEMV_ROWS: usize,
    const GEMV_ACCS: usize,
>(
    s: S,
    w: &[f32],
    x: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    n_in: usize,
    n_out: usize,
) {
    let rows = assert_gemm_shapes(w, x, bias, y, n_in, n_out);
    let shape = Shape { rows, n_in, n_out };
    gemm_checked::<S, NR, VPR, MR, GEMV_ROWS, GEMV_ACCS>(s, None, w, x, bias, y, shape);
}

/// [`gemm`] with W also given packed into panels by
/// [`crate::kernels::pack_panels`] (the same layout [`gemm`] packs into
/// per call), so the arithmetic and the bits are the same.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(in crate::kernels) fn gemm_packed<
    S: Simd,
    const NR: usize,
    const VPR: usize,
    const MR: usize,
    const GEMV_ROWS: usize,
    const GEMV_ACCS: usize,
>(
    s: S,
    panels: &[f32],
    w: &[f32],
    x: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    n_in: usize,
    n_out: usize,
) {
    let rows = assert_gemm_shapes(w, x, bias, y, n_in, n_out);
    assert_packed_shape(panels, n_in, n_out);
    let shape = Shape { rows, n_in, n_out };
    gemm_checked::<S, NR, VPR, MR, GEMV_ROWS, GEMV_ACCS>(s, Some(panels), w, x, bias, y, shape);
}

/// The dimensions of a gemm whose slices [`assert_gemm_shapes`] (and, for
/// given panels, [`assert_packed_shape`]) checked.
#[derive(Clone, Copy)]
struct Shape {
    rows: usize,
    n_in: usize,
    n_out: usize,
}

/// [`gemm`] and [`gemm_packed`] once their shapes are checked: row by row,
/// or tiles over `panels` when given, else over W packed here.
#[inline(always)]
fn gemm_checked<
    S: Simd,
    const NR: usize,
    const VPR: usize,
    const MR: usize,
    const GEMV_ROWS: usize,
    const GEMV_ACCS: usize,
>(
    s: S,
    panels: Option<&[f32]>,
    w: &[f32],
    x: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    Shape { rows, n_in, n_out }: Shape,
) {
    const { assert!(NR == VPR * S::LANES && NR == PANEL_WIDTH && MR >= 1 && MR <= MAX_GEMM_TILE_ROWS) };
    if rows == 0 || n_out == 0 {
        return;
    }
    if n_in == 0 {
        for y_row in y.chunks_exact_mut(n_out) {
            fill_with_bias(y_row, bias);
        }
        return;
    }
    if gemm_runs_rows(rows, n_in, n_out) {
        for (x_row, y_row) in x.chunks_exact(n_in).zip(y.chunks_exact_mut(n_out)) {
            // W is n_out x n_in, x_row has n_in values, y_row n_out and the
            // bias (checked) n_out: gemv's shapes hold.
            reduce::gemv_checked::<S, GEMV_ROWS, GEMV_ACCS>(s, w, x_row, bias, y_row);
        }
        return;
    }
    if let Some(panels) = panels {
        tiles::<S, NR, VPR, MR>(s, panels, x, bias, y, rows, n_in, n_out);
        return;
    }
    let len = packed_len(n_in, n_out);
    let mut buffer = PACKED_W.with(Cell::take);
    // Panels start on a cache line: a buffer this size comes from mmap at
    // 16 mod 64, where every other 32-byte panel load would straddle two
    // lines.
    buffer.resize(len + PANEL_ALIGN_SLACK, 0.0);
    let start = buffer.as_ptr().align_offset(64).min(PANEL_ALIGN_SLACK);
    let packed = &mut buffer[start..start + len];
    pack_panels::<S, NR>(s, w, n_in, n_out, packed);
    tiles::<S, NR, VPR, MR>(s, packed, x, bias, y, rows, n_in, n_out);
    PACKED_W.with(|cell| cell.set(buffer));
}

/// Runs the register tiles of `Y = X Wᵀ + b` over W already packed into
/// panels (`rows ≥ 1`, `n_in ≥ 1`, `n_out ≥ 1`, shapes checked).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn tiles<S: Simd, const NR: usize, const VPR: usize, const MR: usize>(
    s: S,
    packed: &[f32],
    x: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    rows: usize,
    n_in: usize,
    n_out: usize,
) {
    let panels = n_out.div_ceil(NR);
    // Row blocks outermost keep each block of X in L1/L2 while every panel
    // of W passes over it.
    let rows_per_block = 8 * MR;
    let mut block0 = 0;
    while block0 < rows {
        let block_end = rows.min(block0 + rows_per_block);
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
                let tile = Tile {
                    panel,
                    x_block: &x[row0 * n_in..(row0 + mr) * n_in],
                    n_in,
                    bias: &bias_tile,
                };
                let y_block = &mut y[row0 * n_out..(row0 + mr) * n_out];
                match mr {
                    1 => tile.run::<S, VPR, 1>(s, y_block, n_out, col0, cols),
                    2 => tile.run::<S, VPR, 2>(s, y_block, n_out, col0, cols),
                    3 => tile.run::<S, VPR, 3>(s, y_block, n_out, col0, cols),
                    4 => tile.run::<S, VPR, 4>(s, y_block, n_out, col0, cols),
                    5 => tile.run::<S, VPR, 5>(s, y_block, n_out, col0, cols),
                    _ => tile.run::<S, VPR, MR>(s, y_block, n_out, col0, cols),
                }
                row0 += mr;
            }
        }
        block0 = block_end;
    }
}

/// Extra values in the per-call pack buffer, so that the panels can start on
/// a 64-byte boundary inside it.
const PANEL_ALIGN_SLACK: usize = 64 / 4 - 1;

/// Packs W (`n_out × n_in`, `n_in > 0`) into `⌈n_out / NR⌉` panels of
/// `n_in × NR`, zero past `n_out`: the layout of
/// [`crate::kernels::pack_panels`], written faster. Blocks of `LANES` rows × `LANES` columns
/// go through an in-register transpose (on AVX2 about 4× faster than
/// element by element, which cost ~9 % of a 256 × 256 × 256 gemm).
#[inline(always)]
fn pack_panels<S: Simd, const NR: usize>(
    s: S,
    w: &[f32],
    n_in: usize,
    n_out: usize,
    packed: &mut [f32],
) {
    const { assert!(S::LANES <= MAX_LANES) };
    let lanes = S::LANES;
    packed.fill(0.0);
    let k_main = n_in - n_in % lanes;
    let mut scratch = [s.zero(); MAX_LANES];
    let block = &mut scratch[..lanes];
    for (p, panel) in packed.chunks_exact_mut(n_in * NR).enumerate() {
        for part in 0..NR / lanes {
            let o0 = p * NR + part * lanes;
            if o0 >= n_out {
                break;
            }
            let rows_here = lanes.min(n_out - o0);
            let col = part * lanes;
            let mut k_done = 0;
            if rows_here == lanes {
                let rows = &w[o0 * n_in..(o0 + lanes) * n_in];
                let mut k0 = 0;
                while k0 < k_main {
                    for (i, v) in block.iter_mut().enumerate() {
                        *v = s.load(&rows[i * n_in + k0..]);
                    }
                    s.transpose(block);
                    for (k, column) in block.iter().enumerate() {
                        s.store(&mut panel[(k0 + k) * NR + col..], *column);
                    }
                    k0 += lanes;
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

/// One block of up to `MR` rows of X against one packed panel.
struct Tile<'a, const NR: usize> {
    /// `n_in × NR` packed values of W.
    panel: &'a [f32],
    /// `rows × n_in` values of X.
    x_block: &'a [f32],
    n_in: usize,
    /// The panel's `NR` bias values (zero past `n_out`).
    bias: &'a [f32; NR],
}

impl<const NR: usize> Tile<'_, NR> {
    /// Computes the `M × cols` tile and writes it at column `col0` of the
    /// `M` rows of `y_block` (rows of `n_out`).
    #[inline(always)]
    fn run<S: Simd, const VPR: usize, const M: usize>(
        &self,
        s: S,
        y_block: &mut [f32],
        n_out: usize,
        col0: usize,
        cols: usize,
    ) {
        const { assert!(VPR * S::LANES == NR && M >= 1) };
        let lanes = S::LANES;
        let n_in = self.n_in;
        // The bounds every unchecked load below relies on.
        assert!(self.panel.len() >= n_in * NR && self.x_block.len() >= M * n_in);
        // The bias seeds the accumulators. Read it through an opaque
        // pointer: otherwise, once every tile is inlined into one loop, the
        // compiler hoists the (invariant) bias vectors out of it and keeps
        // them in registers across the k loop, where a 6-row AVX2 tile needs
        // 15 of the 16 registers, and spills an accumulator (measured: 17 %
        // slower 256-row gemm).
        let bias: &[f32; NR] = std::hint::black_box(self.bias);
        let mut b = [s.zero(); VPR];
        for (j, v) in b.iter_mut().enumerate() {
            *v = s.load(&bias[j * lanes..]);
        }
        let mut acc = [b; M];
        let pp = self.panel.as_ptr();
        let xp = self.x_block.as_ptr();
        for k in 0..n_in {
            let mut wv = [s.zero(); VPR];
            for (j, v) in wv.iter_mut().enumerate() {
                // SAFETY: k < n_in and j < VPR, so k NR + (j + 1) LANES <=
                // k NR + NR <= n_in NR <= panel.len().
                *v = unsafe { s.load_ptr(pp.add(k * NR + j * lanes)) };
            }
            for (r, row_acc) in acc.iter_mut().enumerate() {
                // SAFETY: r < M and k < n_in, so r n_in + k < M n_in <=
                // x_block.len().
                let xv = s.splat(unsafe { *xp.add(r * n_in + k) });
                for (l, &wj) in row_acc.iter_mut().zip(&wv) {
                    *l = s.mul_add(xv, wj, *l);
                }
            }
        }
        for (row_acc, y_row) in acc.iter().zip(y_block.chunks_exact_mut(n_out)) {
            let out = &mut y_row[col0..col0 + cols];
            if cols == NR {
                for (j, &v) in row_acc.iter().enumerate() {
                    s.store(&mut out[j * lanes..], v);
                }
            } else {
                let mut tile = [0.0f32; NR];
                for (j, &v) in row_acc.iter().enumerate() {
                    s.store(&mut tile[j * lanes..], v);
                }
                out.copy_from_slice(&tile[..cols]);
            }
        }
    }
}
