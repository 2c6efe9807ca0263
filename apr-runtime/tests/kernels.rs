//! Every kernel table this CPU runs, compared with the scalar reference over
//! random shapes (lengths that are not multiples of any vector width
//! included).
//!
//! 256 cases per property by default; set `PROPTEST_CASES` for more.
//!
//! Tolerances: sums (dot, gemv, gemm) may round differently because SIMD
//! adds in a different order, so they are compared against `1e-5` times the
//! sum of the magnitudes of their terms (the natural scale of summation
//! error) plus `1e-6`; squared distances (all terms positive) and
//! activations are compared at `1e-5` relative plus `1e-6` absolute (the
//! absolute part covers results that are zero up to rounding, e.g. GELU of a
//! large negative input or `exp` far below the normal range).

use apr_runtime::kernels::{self, Kernels};
use proptest::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

const REL: f32 = 1e-5;
const ABS: f32 = 1e-6;

/// The SIMD tables this CPU runs. Empty fails the test that asks, so that
/// a SIMD-against-scalar test never passes by comparing nothing; on a CPU
/// without AVX2+FMA or NEON, set `APR_ALLOW_NO_SIMD=1` to run the rest.
fn simd_tables() -> Vec<&'static Kernels> {
    let tables: Vec<_> = kernels::available()
        .into_iter()
        .filter(|t| t.name != "scalar")
        .collect();
    assert!(
        !tables.is_empty() || std::env::var_os("APR_ALLOW_NO_SIMD").is_some(),
        "no SIMD kernel table on this CPU: the SIMD tests would compare nothing \
         (APR_ALLOW_NO_SIMD=1 runs them anyway)"
    );
    tables
}

#[test]
fn a_simd_table_is_under_test() {
    let names: Vec<&str> = simd_tables().iter().map(|t| t.name).collect();
    if std::env::var_os("APR_ALLOW_NO_SIMD").is_none() {
        assert!(
            names.iter().any(|n| ["avx2+fma", "neon"].contains(n)),
            "{names:?}"
        );
    }
}

fn close(got: f32, want: f32, scale: f32) -> bool {
    if got == want || (got.is_nan() && want.is_nan()) {
        return true;
    }
    (got - want).abs() <= REL * scale + ABS
}

fn check_close(what: &str, table: &str, got: &[f32], want: &[f32], scale: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        assert!(
            close(g, w, s),
            "{what} ({table}) differs at {i}: got {g}, scalar {w} (scale {s})"
        );
    }
}

fn vec_in(len: std::ops::Range<usize>, lo: f32, hi: f32) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(lo..hi, len)
}

/// `(rows, n_in, n_out, w, x, bias)` for gemm; gemv uses rows = 1.
type MatrixCase = (usize, usize, usize, Vec<f32>, Vec<f32>, Option<Vec<f32>>);

fn matrix_case(max_rows: usize) -> impl Strategy<Value = MatrixCase> {
    (1..=max_rows, 0usize..70, 0usize..40).prop_flat_map(|(rows, n_in, n_out)| {
        (
            Just(rows),
            Just(n_in),
            Just(n_out),
            vec_in(n_out * n_in..n_out * n_in + 1, -1.0, 1.0),
            vec_in(rows * n_in..rows * n_in + 1, -4.0, 4.0),
            prop::option::of(vec_in(n_out..n_out + 1, -2.0, 2.0)),
        )
    })
}

/// Σ_k |w_ok x_k| + |b_o| for every output: the scale of each sum.
fn gemv_scale(w: &[f32], x: &[f32], bias: Option<&[f32]>, n_out: usize) -> Vec<f32> {
    let n = x.len();
    (0..n_out)
        .map(|o| {
            let row = &w[o * n..(o + 1) * n];
            let terms: f32 = row.iter().zip(x).map(|(p, q)| (p * q).abs()).sum();
            terms + bias.map_or(0.0, |b| b[o].abs())
        })
        .collect()
}

proptest! {
    #[test]
    fn dot_matches_scalar(
        (a, b) in (0usize..300).prop_flat_map(|n| (vec_in(n..n + 1, -4.0, 4.0), vec_in(n..n + 1, -4.0, 4.0)))
    ) {
        let want = (kernels::scalar().dot)(&a, &b);
        let scale: f32 = a.iter().zip(&b).map(|(p, q)| (p * q).abs()).sum();
        for t in simd_tables() {
            let got = (t.dot)(&a, &b);
            check_close("dot", t.name, &[got], &[want], &[scale]);
        }
    }

    #[test]
    fn gemv_matches_scalar((_, n_in, n_out, w, x, bias) in matrix_case(1)) {
        let _ = n_in;
        let mut want = vec![0.0; n_out];
        (kernels::scalar().gemv)(&w, &x, bias.as_deref(), &mut want);
        let scale = gemv_scale(&w, &x, bias.as_deref(), n_out);
        for t in simd_tables() {
            let mut got = vec![f32::NAN; n_out];
            (t.gemv)(&w, &x, bias.as_deref(), &mut got);
            check_close("gemv", t.name, &got, &want, &scale);
        }
    }

    #[test]
    fn gemm_matches_scalar_and_gemv((rows, n_in, n_out, w, x, bias) in matrix_case(20)) {
        let mut want = vec![0.0; rows * n_out];
        (kernels::scalar().gemm)(&w, &x, bias.as_deref(), &mut want, n_in, n_out);
        let mut scale = Vec::with_capacity(rows * n_out);
        for r in 0..rows {
            let x_row = &x[r * n_in..(r + 1) * n_in];
            scale.extend(gemv_scale(&w, x_row, bias.as_deref(), n_out));
            // The scalar gemm is the scalar gemv, row by row.
            let mut row_want = vec![0.0; n_out];
            (kernels::scalar().gemv)(&w, x_row, bias.as_deref(), &mut row_want);
            prop_assert_eq!(&row_want[..], &want[r * n_out..(r + 1) * n_out]);
        }
        for t in kernels::available() {
            let mut got = vec![f32::NAN; rows * n_out];
            (t.gemm)(&w, &x, bias.as_deref(), &mut got, n_in, n_out);
            check_close("gemm", t.name, &got, &want, &scale);
        }
    }

    /// W packed once (`pack_panels`) and W packed per call give the same
    /// bits, in every table, whatever the tile edges.
    #[test]
    fn gemm_packed_is_gemm_to_the_bit((rows, n_in, n_out, w, x, bias) in matrix_case(40)) {
        let mut panels = vec![f32::NAN; kernels::packed_len(n_in, n_out)];
        kernels::pack_panels(&w, n_in, n_out, &mut panels);
        for t in kernels::available() {
            let mut want = vec![f32::NAN; rows * n_out];
            (t.gemm)(&w, &x, bias.as_deref(), &mut want, n_in, n_out);
            let mut got = vec![f32::NAN; rows * n_out];
            (t.gemm_packed)(&panels, &w, &x, bias.as_deref(), &mut got, n_in, n_out);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got), bits(&want), "{}", t.name);
        }
    }

    #[test]
    fn sq_dists_match_scalar(
        (k, c, x) in (0usize..12, 0usize..70).prop_flat_map(|(k, n)| {
            (Just(k), vec_in(k * n..k * n + 1, -5.0, 5.0), vec_in(n..n + 1, -5.0, 5.0))
        })
    ) {
        let mut want = vec![0.0; k];
        (kernels::scalar().sq_dists)(&c, &x, &mut want);
        for t in simd_tables() {
            let mut got = vec![f32::NAN; k];
            (t.sq_dists)(&c, &x, &mut got);
            check_close("sq_dists", t.name, &got, &want, &want);
        }
    }

    #[test]
    fn activations_match_scalar(
        v in prop_oneof![vec_in(0..70, -10.0, 10.0), vec_in(0..70, -100.0, 100.0), vec_in(0..20, -1e-3, 1e-3)],
        alpha in 0.0f32..0.5,
    ) {
        type Apply = fn(&Kernels, &mut [f32], f32);
        let cases: [(&str, Apply); 6] = [
            ("relu", |t, v, _| (t.relu)(v)),
            ("sigmoid", |t, v, _| (t.sigmoid)(v)),
            ("tanh", |t, v, _| (t.tanh)(v)),
            ("gelu", |t, v, _| (t.gelu)(v)),
            ("leaky_relu", |t, v, a| (t.leaky_relu)(v, a)),
            ("softmax", |t, v, _| (t.softmax)(v)),
        ];
        for (what, apply) in cases {
            let mut want = v.clone();
            apply(kernels::scalar(), &mut want, alpha);
            let scale: Vec<f32> = want.iter().map(|w| w.abs()).collect();
            for t in simd_tables() {
                let mut got = v.clone();
                apply(t, &mut got, alpha);
                check_close(what, t.name, &got, &want, &scale);
            }
        }
    }
}

#[test]
fn activations_agree_on_special_values() {
    let specials = [
        0.0,
        -0.0,
        1e-30,
        -1e-30,
        0.625,
        -0.625,
        9.0,
        -9.0,
        88.0,
        -88.0,
        89.0,
        -89.0,
        1e30,
        -1e30,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ];
    for t in simd_tables() {
        for (what, f_simd, f_ref) in [
            ("relu", t.relu, kernels::scalar().relu),
            ("sigmoid", t.sigmoid, kernels::scalar().sigmoid),
            ("tanh", t.tanh, kernels::scalar().tanh),
            ("gelu", t.gelu, kernels::scalar().gelu),
        ] {
            let mut got = specials;
            let mut want = specials;
            f_simd(&mut got);
            f_ref(&mut want);
            let scale: Vec<f32> = want.iter().map(|w| w.abs()).collect();
            check_close(what, t.name, &got, &want, &scale);
        }
    }
}

#[test]
fn softmax_of_one_row_sums_to_one_in_every_table() {
    for t in kernels::available() {
        for n in [1usize, 7, 8, 9, 31, 100] {
            let mut v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 30.0).collect();
            (t.softmax)(&mut v);
            let sum: f32 = v.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "{}: n = {n}, sum {sum}", t.name);
        }
        let mut empty: [f32; 0] = [];
        (t.softmax)(&mut empty);
    }
}

#[test]
fn the_best_table_for_this_cpu_is_active() {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            assert_eq!(kernels::kernel_name(), "avx2+fma");
        } else {
            assert_eq!(kernels::kernel_name(), "scalar");
        }
        assert!(!kernels::is_arm64_optimized());
        assert!(!kernels::has_neon_simd());
    }
    #[cfg(target_arch = "aarch64")]
    {
        assert_eq!(kernels::kernel_name(), "neon");
        assert!(kernels::is_arm64_optimized());
        assert!(kernels::has_neon_simd());
    }
    assert!(std::ptr::eq(kernels::active(), kernels::active()));
    assert_eq!(kernels::scalar().name, "scalar");
}

#[test]
fn every_table_rejects_mismatched_shapes_before_touching_memory() {
    for t in kernels::available() {
        let rejected = |f: &dyn Fn()| catch_unwind(AssertUnwindSafe(f)).is_err();
        assert!(rejected(&|| {
            (t.dot)(&[1.0; 9], &[1.0; 8]);
        }));
        assert!(rejected(&|| {
            let mut y = [0.0; 9];
            (t.gemv)(&[1.0; 8 * 9 - 1], &[1.0; 8], None, &mut y);
        }));
        assert!(rejected(&|| {
            let mut y = [0.0; 9];
            (t.gemv)(&[1.0; 8 * 9], &[1.0; 8], Some(&[0.0; 8]), &mut y);
        }));
        assert!(rejected(&|| {
            let mut y = [0.0; 6 * 16];
            (t.gemm)(&[1.0; 16 * 8], &[1.0; 6 * 8 - 1], None, &mut y, 8, 16);
        }));
        assert!(rejected(&|| {
            let mut y = [0.0; 6 * 16 + 1];
            (t.gemm)(&[1.0; 16 * 8], &[1.0; 6 * 8], None, &mut y, 8, 16);
        }));
        assert!(rejected(&|| {
            let mut y = [0.0; 12];
            (t.gemm)(&[1.0; 16 * 8], &[1.0; 6 * 8], None, &mut y, 8, 0);
        }));
        assert!(rejected(&|| {
            let mut y = [0.0; 12 * 16];
            let panels = [0.0; 16 * 8 - 1];
            (t.gemm_packed)(&panels, &[1.0; 16 * 8], &[1.0; 12 * 8], None, &mut y, 8, 16);
        }));
        assert!(rejected(&|| {
            let mut out = [0.0; 3];
            (t.sq_dists)(&[1.0; 3 * 8 - 1], &[1.0; 8], &mut out);
        }));
    }
}

#[test]
fn degenerate_shapes_are_handled() {
    for t in kernels::available() {
        assert_eq!((t.dot)(&[], &[]), 0.0);
        let mut y = [7.0; 3];
        (t.gemv)(&[], &[], Some(&[1.0, 2.0, 3.0]), &mut y);
        assert_eq!(y, [1.0, 2.0, 3.0]);
        let mut y = [7.0; 6];
        (t.gemm)(&[], &[], None, &mut y, 0, 3);
        assert_eq!(y, [0.0; 6]);
        let mut y: [f32; 0] = [];
        (t.gemm)(&[], &[], None, &mut y, 5, 0);
        let mut out = [7.0; 2];
        (t.sq_dists)(&[], &[], &mut out);
        assert_eq!(out, [0.0; 2]);
    }
}

#[test]
fn gemm_covers_every_tile_edge() {
    // Rows around the 6-row tile (every tail 1..=5 once packing starts at
    // 10 rows), outputs around the 16-wide panel.
    let reference = kernels::scalar();
    for t in simd_tables() {
        for rows in [1usize, 3, 6, 9, 10, 11, 12, 13, 14, 15, 16, 17, 64] {
            for n_out in [1usize, 8, 15, 16, 17, 33] {
                for n_in in [1usize, 7, 8, 9, 64] {
                    let w: Vec<f32> = (0..n_out * n_in)
                        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0)
                        .collect();
                    let x: Vec<f32> = (0..rows * n_in)
                        .map(|i| ((i * 5 % 11) as f32 - 5.0) / 4.0)
                        .collect();
                    let b: Vec<f32> = (0..n_out).map(|i| i as f32 * 0.25).collect();
                    let mut want = vec![0.0; rows * n_out];
                    let mut got = vec![f32::NAN; rows * n_out];
                    (reference.gemm)(&w, &x, Some(&b), &mut want, n_in, n_out);
                    (t.gemm)(&w, &x, Some(&b), &mut got, n_in, n_out);
                    let scale: Vec<f32> = want.iter().map(|v| v.abs() + n_in as f32).collect();
                    check_close("gemm", t.name, &got, &want, &scale);
                }
            }
        }
    }
}

/// A layer too narrow for the 16-wide tile (few outputs, many inputs) runs
/// gemv row by row at any batch size: each row gets exactly the bits of
/// gemv on that row, and so of a one-row call. Just past the rule's
/// boundary (and from 10 outputs) a batch of 64 rows keeps the tile, whose
/// bits differ from gemv's in some row.
#[test]
fn narrow_layers_run_gemv_per_row_at_any_batch_size() {
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    let narrow = [
        (35usize, 1usize),
        (1000, 1),
        (512, 4),
        (200, 3),
        (181, 8),
        (451, 9),
    ];
    let tiled = [(34usize, 1usize), (180, 8), (450, 9), (1000, 10)];
    for t in simd_tables() {
        for (n_in, n_out) in narrow.into_iter().chain(tiled) {
            for rows in [1usize, 9, 10, 13, 64] {
                // Values whose products and sums round, so that another
                // order of the same sums shows in the bits.
                let w: Vec<f32> = (0..n_out * n_in)
                    .map(|i| ((i as f32 * 0.618_034).fract() - 0.5) * 1.7)
                    .collect();
                let x: Vec<f32> = (0..rows * n_in)
                    .map(|i| ((i as f32 * 0.414_213_6).fract() - 0.5) * 3.1)
                    .collect();
                let b: Vec<f32> = (0..n_out).map(|i| i as f32 * 0.25).collect();
                let mut panels = vec![f32::NAN; kernels::packed_len(n_in, n_out)];
                kernels::pack_panels(&w, n_in, n_out, &mut panels);
                let mut want = vec![f32::NAN; rows * n_out];
                for (x_row, y_row) in x.chunks_exact(n_in).zip(want.chunks_exact_mut(n_out)) {
                    (t.gemv)(&w, x_row, Some(&b), y_row);
                }
                let mut got = vec![f32::NAN; rows * n_out];
                (t.gemm)(&w, &x, Some(&b), &mut got, n_in, n_out);
                let mut got_packed = vec![f32::NAN; rows * n_out];
                (t.gemm_packed)(&panels, &w, &x, Some(&b), &mut got_packed, n_in, n_out);
                let what = format!("{} {n_in}x{n_out}, {rows} rows", t.name);
                assert_eq!(bits(&got_packed), bits(&got), "gemm_packed is gemm: {what}");
                if rows < 10 || narrow.contains(&(n_in, n_out)) {
                    assert_eq!(bits(&got), bits(&want), "gemv per row: {what}");
                } else if rows == 64 {
                    assert_ne!(bits(&got), bits(&want), "the tile: {what}");
                }
            }
        }
    }
}

/// Each table says which instruction set it is written for. (What the ISA
/// helpers answer on this CPU is checked, from the CPU's own features, by
/// `the_best_table_for_this_cpu_is_active`.)
#[test]
fn tables_know_their_instruction_set() {
    use apr_runtime::kernels::Isa;
    for t in kernels::available() {
        let expected = match t.name {
            "scalar" => Isa::Scalar,
            "avx2+fma" => Isa::Avx2Fma,
            "neon" => Isa::Neon,
            other => panic!("unknown table {other}"),
        };
        assert_eq!(t.isa, expected);
    }
    assert_eq!(kernels::scalar().isa, Isa::Scalar);
}
