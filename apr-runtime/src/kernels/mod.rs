//! The arithmetic behind every model: dot products, matrix–vector and
//! matrix–matrix products, squared distances and in-place activations.
//!
//! Dispatch works like `memchr`: each instruction set has one table of plain
//! function pointers ([`Kernels`]), and the best table this CPU can run is
//! chosen once, on first use, and cached ([`active`]). Model code calls the
//! table and never names an instruction set.
//!
//! | table | where | chosen when |
//! |---|---|---|
//! | `"scalar"` | everywhere | nothing better is available; the reference every other table is tested against |
//! | `"avx2+fma"` | x86_64 | `is_x86_feature_detected!` reports both `avx2` and `fma` |
//! | `"neon"` | aarch64 | always (NEON is part of the aarch64 baseline) |
//!
//! Each SIMD algorithm is written once, generic over a small vector trait,
//! in `simd/`; an instruction set's file (`x86_64/avx2.rs`,
//! `aarch64/neon.rs`) is only that trait's implementation, the check that the
//! CPU runs it, and one macro call that stamps out its table (see
//! `simd/mod.rs`, which also holds the one soundness argument).
//!
//! Every kernel checks that its slice lengths agree and panics with a message
//! naming the mismatch when they do not: a mismatch is a bug in the caller
//! (models validate every shape when they load). The SIMD code performs the
//! same checks before it touches memory through a pointer, so it stays sound
//! for any input.
//!
//! ```
//! use apr_runtime::kernels;
//!
//! let k = kernels::active();
//! let w = [1.0, 2.0, 3.0, 4.0]; // 2 x 2, row-major
//! let mut y = [0.0; 2];
//! (k.gemv)(&w, &[1.0, 1.0], Some(&[0.5, -0.5]), &mut y);
//! assert_eq!(y, [3.5, 6.5]);
//! (k.softmax)(&mut y);
//! assert!((y[0] + y[1] - 1.0).abs() < 1e-6);
//! ```
#![allow(unsafe_code)]

use std::sync::OnceLock;

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod aarch64;
mod scalar;
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
mod simd;
#[cfg(target_arch = "x86_64")]
mod x86_64;

/// One complete set of kernels for one instruction set, as plain function
/// pointers.
///
/// Obtain a table with [`active`] (the fastest this CPU runs), [`scalar`] (the
/// reference) or [`available`] (all of them); call a kernel as
/// `(table.gemv)(w, x, bias, y)`.
///
/// Shapes: matrices are row-major `f32` slices. Every kernel panics when the
/// lengths of its arguments disagree with each other.
#[derive(Debug, Clone, Copy)]
pub struct Kernels {
    /// The instruction set: `"scalar"`, `"avx2+fma"` or `"neon"`.
    pub name: &'static str,
    /// The instruction set, as a value to compare.
    pub isa: Isa,
    /// `a · b`. Panics unless `a.len() == b.len()`.
    pub dot: fn(a: &[f32], b: &[f32]) -> f32,
    /// `y = W x + b`, where `W` is `y.len() × x.len()` row-major and `b`, when
    /// given, has `y.len()` entries.
    pub gemv: GemvFn,
    /// `Y = X Wᵀ + b` for many rows at once: `X` is `rows × n_in`, `W` is
    /// `n_out × n_in` (the same layout as [`Kernels::gemv`]), `Y` is
    /// `rows × n_out` and `b`, when given, has `n_out` entries added to every
    /// row. `rows` is `y.len() / n_out`.
    pub gemm: GemmFn,
    /// [`Kernels::gemm`] with `W` also given packed into panels by
    /// [`pack_panels`], so that a caller running many batches against the
    /// same `W` packs it once instead of on every call: the same answer,
    /// to the bit, provided the panels were packed from this same `w`
    /// (below 10 rows, and for a layer too narrow for the tile, `w` is
    /// read, otherwise the panels; nothing compares them). Panics unless
    /// `panels.len() == packed_len(n_in, n_out)`.
    pub gemm_packed: GemmPackedFn,
    /// The rows of [`Kernels::gemm`]'s register tile: a batch cut into runs
    /// of a multiple of this many rows keeps every run's tiles full (a
    /// partial tile costs nearly a full one). `1` for the scalar table.
    pub gemm_tile_rows: usize,
    /// `out[k] = |c_k − x|²`, where the centroids are `out.len() × x.len()`
    /// row-major.
    pub sq_dists: fn(centroids: &[f32], x: &[f32], out: &mut [f32]),
    /// In place: `max(v, 0)`.
    pub relu: fn(v: &mut [f32]),
    /// In place: `1 / (1 + e^−v)`.
    pub sigmoid: fn(v: &mut [f32]),
    /// In place: `tanh(v)`.
    pub tanh: fn(v: &mut [f32]),
    /// In place: GELU, tanh approximation (as aprender computes it):
    /// `0.5 v (1 + tanh(√(2/π) (v + 0.044715 v³)))`.
    pub gelu: fn(v: &mut [f32]),
    /// In place: `v` where `v ≥ 0`, `alpha · v` otherwise.
    pub leaky_relu: fn(v: &mut [f32], alpha: f32),
    /// In place: softmax of one row, `e^(v − max) / Σ e^(v − max)`.
    pub softmax: fn(v: &mut [f32]),
}

/// The signature of [`Kernels::gemv`]: `(w, x, bias, y)`.
pub type GemvFn = fn(w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]);

/// The signature of [`Kernels::gemm`]: `(w, x, bias, y, n_in, n_out)`.
pub type GemmFn =
    fn(w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32], n_in: usize, n_out: usize);

/// The signature of [`Kernels::gemm_packed`]:
/// `(panels, w, x, bias, y, n_in, n_out)`.
pub type GemmPackedFn = fn(
    panels: &[f32],
    w: &[f32],
    x: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    n_in: usize,
    n_out: usize,
);

/// Outputs per panel of a packed weight matrix ([`pack_panels`]): the
/// width of every SIMD gemm's register tile.
pub const PANEL_WIDTH: usize = 16;

/// How many values [`pack_panels`] writes for an `n_out × n_in` matrix:
/// `⌈n_out / 16⌉ × n_in × 16`. Panics on overflow.
pub fn packed_len(n_in: usize, n_out: usize) -> usize {
    let panels = n_out.div_ceil(PANEL_WIDTH);
    shape_product(
        shape_product(panels, n_in, "packed_len"),
        PANEL_WIDTH,
        "packed_len",
    )
}

/// Packs `W` (`n_out × n_in`, row-major) into the panels
/// [`Kernels::gemm_packed`] reads: panel `p` holds, for every `k`, the 16
/// values `W[16p .. 16p + 16][k]` side by side, zero past `n_out`. `out`
/// must hold [`packed_len`] values. Panics when the lengths disagree.
///
/// ```
/// use apr_runtime::kernels::{self, pack_panels, packed_len};
///
/// let (n_in, n_out, rows) = (3, 2, 12);
/// let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let mut panels = vec![0.0; packed_len(n_in, n_out)];
/// pack_panels(&w, n_in, n_out, &mut panels);
/// let x = vec![1.0; rows * n_in];
/// let (mut a, mut b) = (vec![0.0; rows * n_out], vec![0.0; rows * n_out]);
/// let k = kernels::active();
/// (k.gemm)(&w, &x, None, &mut a, n_in, n_out);
/// (k.gemm_packed)(&panels, &w, &x, None, &mut b, n_in, n_out);
/// assert_eq!(a, b);
/// assert_eq!(&a[..2], &[6.0, 15.0]);
/// ```
pub fn pack_panels(w: &[f32], n_in: usize, n_out: usize, out: &mut [f32]) {
    assert_eq!(
        w.len(),
        shape_product(n_out, n_in, "pack_panels"),
        "pack_panels: W has {} values, expected {n_out} x {n_in}",
        w.len()
    );
    assert_packed_shape(out, n_in, n_out);
    out.fill(0.0);
    if n_in == 0 {
        return;
    }
    for (o, row) in w.chunks_exact(n_in).enumerate() {
        let panel = &mut out[(o / PANEL_WIDTH) * n_in * PANEL_WIDTH..];
        for (k, &v) in row.iter().enumerate() {
            panel[k * PANEL_WIDTH + o % PANEL_WIDTH] = v;
        }
    }
}

/// Panics unless `panels` holds [`packed_len`]`(n_in, n_out)` values.
pub(crate) fn assert_packed_shape(panels: &[f32], n_in: usize, n_out: usize) {
    let expected = packed_len(n_in, n_out);
    assert_eq!(
        panels.len(),
        expected,
        "gemm_packed: the panels have {} values, expected {expected} for {n_out} x {n_in}",
        panels.len()
    );
}

/// Below this many rows the SIMD gemms run gemv once per row; from this
/// many they pack W and run register tiles, unless the layer is too narrow
/// for them ([`gemm_runs_rows`]). Measured on AVX2 (best of 7,
/// 64×256 … 1024×1024): per-row gemv wins up to 8 rows, packing wins from 12
/// (by 1.1–1.3×, growing with the row count); NEON uses the same value.
///
/// Within either path a row's arithmetic depends only on that row (the
/// tile size and the row blocks do not change the order of its
/// operations), so a gemm over any run of at least this many rows gives each
/// row the same bits: what lets a batch be split across threads without
/// changing its answers.
pub(crate) const GEMM_MIN_ROWS_FOR_PACKING: usize = 10;

/// Whether the SIMD gemms run gemv once per row rather than register tiles
/// over packed panels: below [`GEMM_MIN_ROWS_FOR_PACKING`] rows, and for a
/// layer so narrow that most of the 16-wide tile would multiply the zero
/// padding of its one panel. Timed over 20 shapes from 4×3 to 1 000×1 and
/// 784×10 (AVX2, Zen 4), a row costs about `0.29 ns × n_in` in the tile and
/// `9 ns + 0.028 ns × n_in × n_out` in gemv called once per row through the
/// table. The rule rounds gemv's slope up to 0.03 to lean to the tile: gemv
/// for one output from 35 inputs, for 8 outputs from 181, for 9 from 451,
/// never from 10 outputs (NEON uses the same rule, unmeasured). Inside the
/// kernel a row's gemv costs less than the fit says (64×1: 6.2 ns against
/// 10.8), so the boundary is conservative; the measured gains (1.5–3.9×)
/// are in `BENCHMARKS.md`.
///
/// The choice depends on the batch only through `rows <
/// GEMM_MIN_ROWS_FOR_PACKING`, so any run of at least that many rows gives
/// each row the same bits.
pub(crate) fn gemm_runs_rows(rows: usize, n_in: usize, n_out: usize) -> bool {
    rows < GEMM_MIN_ROWS_FOR_PACKING || gemv_beats_tiles(n_in, n_out)
}

/// The narrow-layer half of [`gemm_runs_rows`]: gemv wins when
/// `0.29 n_in > 9 + 0.03 n_in n_out` (ns), that is, in hundredths of a
/// nanosecond, `n_in × (29 − 3 n_out) > 900`.
fn gemv_beats_tiles(n_in: usize, n_out: usize) -> bool {
    n_out < 10 && n_in.saturating_mul(29 - 3 * n_out) > 900
}

/// The most rows any table's gemm tile has ([`Kernels::gemm_tile_rows`]).
pub(crate) const MAX_GEMM_TILE_ROWS: usize = 6;

/// `√(2/π)`, the scale inside the GELU tanh approximation.
pub(crate) const GELU_SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// The cubic coefficient inside the GELU tanh approximation.
pub(crate) const GELU_CUBIC: f32 = 0.044_715;

/// The fastest table this CPU can run, chosen on the first call and cached
/// for the life of the process.
pub fn active() -> &'static Kernels {
    static ACTIVE: OnceLock<&'static Kernels> = OnceLock::new();
    ACTIVE.get_or_init(|| available().last().copied().unwrap_or(&scalar::TABLE))
}

/// The portable scalar reference table.
pub fn scalar() -> &'static Kernels {
    &scalar::TABLE
}

/// Every table this CPU can run, slowest first: the scalar reference, then
/// each SIMD table whose instructions the CPU supports. Tests iterate it.
pub fn available() -> Vec<&'static Kernels> {
    let mut tables = vec![&scalar::TABLE];
    #[cfg(target_arch = "x86_64")]
    tables.extend(x86_64::avx2::table());
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    tables.extend(aarch64::neon::table());
    tables
}

/// The name of the [`active`] table: `"scalar"`, `"avx2+fma"` or `"neon"`.
pub fn kernel_name() -> &'static str {
    active().name
}

/// Whether this is an aarch64 build running the NEON kernels (Graviton).
pub fn is_arm64_optimized() -> bool {
    cfg!(target_arch = "aarch64") && has_neon_simd()
}

/// Whether the NEON table is the active one.
pub fn has_neon_simd() -> bool {
    active().isa == Isa::Neon
}

/// The instruction set a kernel table is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, the reference every SIMD table is tested against.
    Scalar,
    /// x86_64 AVX2 with FMA.
    Avx2Fma,
    /// aarch64 NEON (Graviton).
    Neon,
}

fn shape_product(rows: usize, cols: usize, what: &str) -> usize {
    rows.checked_mul(cols)
        .unwrap_or_else(|| panic!("{what}: {rows} x {cols} overflows usize"))
}

/// `y = b` (or zero without a bias): a product with no inputs
/// (`n_in == 0`). The bias, when given, has `y.len()` values.
pub(crate) fn fill_with_bias(y: &mut [f32], bias: Option<&[f32]>) {
    match bias {
        Some(b) => y.copy_from_slice(b),
        None => y.fill(0.0),
    }
}

/// Panics unless `a` and `b` have the same length.
pub(crate) fn assert_dot_shapes(a: &[f32], b: &[f32]) {
    assert_eq!(
        a.len(),
        b.len(),
        "dot: the two vectors differ in length ({} vs {})",
        a.len(),
        b.len()
    );
}

/// Panics unless `W` is `y.len() × x.len()` and the bias (if any) has
/// `y.len()` entries.
pub(crate) fn assert_gemv_shapes(w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &[f32]) {
    let expected = shape_product(y.len(), x.len(), "gemv");
    assert_eq!(
        w.len(),
        expected,
        "gemv: W has {} values, expected {} x {} = {expected}",
        w.len(),
        y.len(),
        x.len()
    );
    if let Some(b) = bias {
        assert_eq!(
            b.len(),
            y.len(),
            "gemv: the bias has {} values, expected {}",
            b.len(),
            y.len()
        );
    }
}

/// Panics unless the gemm shapes agree; returns the number of rows.
pub(crate) fn assert_gemm_shapes(
    w: &[f32],
    x: &[f32],
    bias: Option<&[f32]>,
    y: &[f32],
    n_in: usize,
    n_out: usize,
) -> usize {
    let w_expected = shape_product(n_out, n_in, "gemm");
    assert_eq!(
        w.len(),
        w_expected,
        "gemm: W has {} values, expected {n_out} x {n_in} = {w_expected}",
        w.len()
    );
    if let Some(b) = bias {
        assert_eq!(
            b.len(),
            n_out,
            "gemm: the bias has {} values, expected {n_out}",
            b.len()
        );
    }
    let rows = if n_out == 0 {
        assert!(
            y.is_empty(),
            "gemm: Y has {} values but n_out is 0",
            y.len()
        );
        0
    } else {
        assert!(
            y.len().is_multiple_of(n_out),
            "gemm: Y has {} values, not a multiple of n_out = {n_out}",
            y.len()
        );
        y.len() / n_out
    };
    if n_out != 0 {
        let x_expected = shape_product(rows, n_in, "gemm");
        assert_eq!(
            x.len(),
            x_expected,
            "gemm: X has {} values, expected {rows} rows x {n_in} = {x_expected}",
            x.len()
        );
    }
    rows
}

/// Panics unless the centroids are `out.len() × x.len()`.
pub(crate) fn assert_sq_dists_shapes(centroids: &[f32], x: &[f32], out: &[f32]) {
    let expected = shape_product(out.len(), x.len(), "sq_dists");
    assert_eq!(
        centroids.len(),
        expected,
        "sq_dists: the centroids have {} values, expected {} x {} = {expected}",
        centroids.len(),
        out.len(),
        x.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_is_always_available_and_first() {
        let tables = available();
        assert_eq!(tables.first().map(|t| t.name), Some("scalar"));
        assert_eq!(scalar().name, "scalar");
    }

    #[test]
    #[should_panic(expected = "gemv: W has 3 values")]
    fn gemv_rejects_a_mismatched_matrix() {
        let mut y = [0.0; 2];
        (active().gemv)(&[1.0; 3], &[1.0; 2], None, &mut y);
    }

    #[test]
    #[should_panic(expected = "gemm: X has 3 values")]
    fn gemm_rejects_a_mismatched_input() {
        let mut y = [0.0; 4];
        (active().gemm)(&[1.0; 4], &[1.0; 3], None, &mut y, 2, 2);
    }
}
