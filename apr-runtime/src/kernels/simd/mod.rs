//! Every SIMD kernel, written once, generic over a small vector trait
//! ([`Simd`]), as `memchr` writes its `arch/generic` code.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the [`Simd`] trait and the [`simd_table!`] macro that stamps out a table |
//! | `reduce.rs` | `dot`, `gemv`, `sq_dists`: sums across a row |
//! | `gemm.rs` | `gemm`: W packed into panels, register tiles (gemv per row for few rows or a narrow layer) |
//! | `map.rs` | the activations and `softmax`, with `exp` and `tanh` |
//!
//! An instruction set plugs in with three things, in its own file
//! (`x86_64/avx2.rs`, `aarch64/neon.rs`): a zero-sized token type that
//! implements [`Simd`] with its intrinsics, the check that says the CPU runs
//! them, and one [`simd_table!`] call that turns the generic algorithms into
//! `#[target_feature]` entry points and a [`Kernels`](super::Kernels) table,
//! with the ISA's tuning (rows per gemv step, accumulators, panel width) as
//! const generics.
//!
//! # Soundness
//!
//! Two facts, each proved once:
//! - **The instructions exist.** A token value is the proof: [`Simd`] is an
//!   `unsafe trait` whose contract is that a value of the token type exists
//!   only on a CPU that runs its instructions. The only place a token is made
//!   without a check is the entry points [`simd_table!`] generates, which are
//!   reachable only through the table, which the ISA hands out only after the
//!   check (or where the build target guarantees the ISA).
//! - **Every pointer access is in bounds.** Each algorithm checks its slice
//!   lengths first (the `assert_*_shapes` functions) and states, at each
//!   unchecked load or store, why its index range lies inside its slice.
//!
//! Everything generic is `#[inline(always)]`, down to the trait methods, so
//! that it is compiled inside the `#[target_feature]` entry point and the
//! intrinsics inline into it.

pub(super) mod gemm;
pub(super) mod map;
pub(super) mod reduce;

/// The most lanes any [`Simd`] implementation has (AVX2's eight): the size
/// of the scratch buffers generic code keeps on the stack.
pub(super) const MAX_LANES: usize = 8;

/// One vector instruction set, as the generic kernels use it: `f32` lanes,
/// loads and stores, arithmetic with fused multiply-add, the few comparisons
/// and bit tricks `exp` and `tanh` need, and the reductions and transposes
/// the matrix kernels need.
///
/// # Safety
///
/// Implementors promise that a value of `Self` exists only on a CPU that
/// runs every instruction the methods use (the type is constructible only
/// through a run-time check, or only where the build target guarantees the
/// instructions), and that `load_ptr` and `store_ptr` touch exactly `LANES`
/// values at the pointer. (`LANES <= MAX_LANES` is checked at compile time
/// where the scratch buffers are sized.)
pub(super) unsafe trait Simd: Copy {
    /// A vector of `LANES` `f32`.
    type V: Copy;
    /// The result of a lane-wise comparison.
    type Mask: Copy;
    /// `f32` lanes per vector.
    const LANES: usize;

    /// Every lane `x`.
    fn splat(self, x: f32) -> Self::V;
    /// Loads `LANES` values from `p`, with no alignment requirement.
    ///
    /// # Safety
    /// `p .. p + LANES` lies inside one live slice of `f32`.
    unsafe fn load_ptr(self, p: *const f32) -> Self::V;
    /// Stores `LANES` values at `p`, with no alignment requirement.
    ///
    /// # Safety
    /// `p .. p + LANES` lies inside one live slice of `f32` we may write.
    unsafe fn store_ptr(self, p: *mut f32, v: Self::V);
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a − b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a × b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a / b`.
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a × b + c`, rounded once.
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `c − a × b`, rounded once.
    fn neg_mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// The smaller of `a` and `b`; NaN where `a` is NaN (`b` is never NaN
    /// at the call sites).
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// The larger of `a` and `b`; NaN where `a` is NaN (`b` is never NaN
    /// at the call sites).
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// The larger of `a` and `b`; `b` where `a` is NaN, like `f32::max`
    /// (`b` is never NaN at the call sites).
    fn max_num(self, a: Self::V, b: Self::V) -> Self::V;
    /// `|a|`.
    fn abs(self, a: Self::V) -> Self::V;
    /// `magnitude`, whose sign bit is clear (it is `≥ +0` or a positive
    /// NaN), with the sign bit of `sign`.
    fn with_sign_of(self, magnitude: Self::V, sign: Self::V) -> Self::V;
    /// `a < b`, lane by lane (false where either is NaN).
    fn lt(self, a: Self::V, b: Self::V) -> Self::Mask;
    /// `if_true` where `mask` is set, `if_false` elsewhere.
    fn select(self, mask: Self::Mask, if_true: Self::V, if_false: Self::V) -> Self::V;
    /// Rounds to the nearest integer, ties to even.
    fn round(self, a: Self::V) -> Self::V;
    /// `2^n` for lanes `n` that hold integers in `[-126, 127]`, built in the
    /// exponent bits.
    fn pow2i(self, n: Self::V) -> Self::V;
    /// The sum of the lanes.
    fn hsum(self, v: Self::V) -> f32;
    /// The sums of the lanes of each of four vectors, each plus the
    /// matching value of `plus` (the gemv's tail and bias, added in the
    /// same vector register rather than one by one).
    fn hsum4_plus(self, v: [Self::V; 4], plus: [f32; 4]) -> [f32; 4];
    /// Transposes `LANES` vectors in place: lane `i` of vector `k` becomes
    /// lane `k` of vector `i`. Panics unless `block.len() == LANES`.
    fn transpose(self, block: &mut [Self::V]);

    /// Every lane zero.
    #[inline(always)]
    fn zero(self) -> Self::V {
        self.splat(0.0)
    }

    /// Loads the first `LANES` values of `v`; panics if there are fewer (the
    /// check folds away when `v` comes from `chunks_exact`).
    #[inline(always)]
    fn load(self, v: &[f32]) -> Self::V {
        let head = &v[..Self::LANES];
        // SAFETY: `head` holds exactly LANES values.
        unsafe { self.load_ptr(head.as_ptr()) }
    }

    /// Stores into the first `LANES` values of `v`; panics if there are fewer.
    #[inline(always)]
    fn store(self, v: &mut [f32], x: Self::V) {
        let head = &mut v[..Self::LANES];
        // SAFETY: `head` holds exactly LANES values we may write.
        unsafe { self.store_ptr(head.as_mut_ptr(), x) }
    }
}

/// Stamps out a [`Kernels`](super::Kernels) table for one instruction set:
/// one `#[target_feature]` function per kernel, each the generic algorithm
/// instantiated for the ISA's token and tuning, behind a plain `fn` the
/// table points at.
///
/// ```text
/// simd_table! {
///     static TABLE for Avx2Fma, enable "avx2,fma", named "avx2+fma",
///     isa Avx2Fma,
///     gemv rows 4 accumulators 2,
///     gemm panel 16 vectors 2 rows 6,
/// }
/// ```
///
/// The token's constructor `$token::assume_present()` must be an `unsafe fn`
/// whose contract is that the CPU runs the ISA; the caller of this macro
/// promises that `$table` is handed out only when that holds.
macro_rules! simd_table {
    (
        static $table:ident for $token:ident, enable $feature:literal, named $name:literal,
        isa $isa:ident,
        gemv rows $gemv_rows:literal accumulators $gemv_accs:literal,
        gemm panel $nr:literal vectors $vpr:literal rows $mr:literal $(,)?
    ) => {
        /// The table and its entry points, private to it: each enters a
        /// `#[target_feature]` function that runs the generic algorithm for
        /// this ISA, and only the table can reach them.
        mod entry {
            use super::$token;
            use $crate::kernels::simd::{gemm, map, reduce, simd_entry};

            /// Reachable only where the caller of `simd_table!` hands it
            /// out: once the CPU is known to run the instructions.
            pub(super) static $table: $crate::kernels::Kernels = $crate::kernels::Kernels {
                name: $name,
                isa: $crate::kernels::Isa::$isa,
                dot,
                gemv,
                gemm,
                gemm_packed,
                gemm_tile_rows: $mr,
                sq_dists,
                relu,
                sigmoid,
                tanh,
                gelu,
                leaky_relu,
                softmax,
            };

            simd_entry!($feature, $token, dot => reduce::dot [a: &[f32], b: &[f32]] -> f32);
            simd_entry!($feature, $token, gemv => reduce::gemv::<$token, $gemv_rows, $gemv_accs>
                [w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]]);
            simd_entry!($feature, $token,
                gemm => gemm::gemm::<$token, $nr, $vpr, $mr, $gemv_rows, $gemv_accs>
                [w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32], n_in: usize, n_out: usize]);
            simd_entry!($feature, $token,
                gemm_packed => gemm::gemm_packed::<$token, $nr, $vpr, $mr, $gemv_rows, $gemv_accs>
                [panels: &[f32], w: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32],
                 n_in: usize, n_out: usize]);
            simd_entry!($feature, $token,
                sq_dists => reduce::sq_dists [centroids: &[f32], x: &[f32], out: &mut [f32]]);
            simd_entry!($feature, $token, relu => map::relu [v: &mut [f32]]);
            simd_entry!($feature, $token, sigmoid => map::sigmoid [v: &mut [f32]]);
            simd_entry!($feature, $token, tanh => map::tanh [v: &mut [f32]]);
            simd_entry!($feature, $token, gelu => map::gelu [v: &mut [f32]]);
            simd_entry!($feature, $token, leaky_relu => map::leaky_relu [v: &mut [f32], alpha: f32]);
            simd_entry!($feature, $token, softmax => map::softmax [v: &mut [f32]]);
        }
    };
}
pub(super) use simd_table;

/// One entry of a [`simd_table!`] table: a plain `fn` that enters a
/// `#[target_feature]` function running the generic algorithm `$generic`
/// with a token of `$token`.
macro_rules! simd_entry {
    (
        $feature:literal, $token:ident,
        $kernel:ident => $generic:path [$($arg:ident: $ty:ty),*] $(-> $ret:ty)?
    ) => {
        #[allow(clippy::too_many_arguments)]
        fn $kernel($($arg: $ty),*) $(-> $ret)? {
            #[allow(clippy::too_many_arguments)]
            #[target_feature(enable = $feature)]
            fn run(token: $token, $($arg: $ty),*) $(-> $ret)? {
                $generic(token, $($arg),*)
            }
            // SAFETY: this function is reachable only through the table
            // `simd_table!` made, which its caller hands out only once the
            // CPU is known to run the instructions: the token's contract and
            // `run`'s target features both hold.
            unsafe { run($token::assume_present(), $($arg),*) }
        }
    };
}
pub(super) use simd_entry;
