//! Where a model's `f32` parameters live: viewed in place in the file's
//! bytes when those are 64-byte aligned, otherwise copied once, at load, into
//! 64-byte aligned storage.
//!
//! Why 64: the SIMD kernels stream weights in 32-byte (AVX2) and 16-byte
//! (NEON) loads; when a weight matrix starts at 16 or 48 mod 64, every other
//! 32-byte load straddles two cache lines, which made the gemv and the
//! single-row MLP 20–23 % slower (`BENCHMARKS.md`, "Unaligned model
//! bytes"). The format aligns every tensor to 64 within the file and the
//! `#[apr_lambda]` macro embeds the file 64-byte aligned, so a deployed model
//! is never copied; a buffer from `std::fs::read` (16 mod 64 from glibc for
//! large allocations) has its parameters copied once, and
//! [`WeightStorage::realigned`](super::WeightStorage::realigned) says so.
//!
//! The aligned storage is a `Vec` of 64-byte, 64-aligned [`Line`]s viewed as
//! `f32` through `bytemuck`: the only `unsafe` is the two marker impls that
//! let `bytemuck` do so.
#![allow(unsafe_code)]

use std::borrow::Cow;
use std::ops::Deref;

use crate::format::{DType, Tensor};

/// The alignment, in bytes, at which parameters are used in place.
pub const WEIGHT_ALIGNMENT: usize = 64;

/// Values per [`Line`].
const LINE_VALUES: usize = WEIGHT_ALIGNMENT / 4;

/// One cache line of `f32`s, aligned to 64 bytes.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; LINE_VALUES]);

const _: () = assert!(std::mem::size_of::<Line>() == WEIGHT_ALIGNMENT);
const _: () = assert!(std::mem::align_of::<Line>() == WEIGHT_ALIGNMENT);

// SAFETY: `Line` is `repr(C)` around `[f32; 16]`, for which all-zero bytes
// are a valid value (0.0 sixteen times).
unsafe impl bytemuck::Zeroable for Line {}
// SAFETY: `Line` is `Copy`, `repr(C)`, has no padding (its size, 64, is
// exactly the array's; checked above) and its only field is `Pod`, so every
// bit pattern is a valid `Line` and it holds no pointers.
unsafe impl bytemuck::Pod for Line {}

/// `f32`s in 64-byte aligned storage.
pub(super) struct AlignedF32 {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedF32 {
    /// A 64-byte aligned copy of `values`.
    fn copy_of(values: &[f32]) -> Self {
        let mut lines = vec![Line([0.0; LINE_VALUES]); values.len().div_ceil(LINE_VALUES)];
        bytemuck::cast_slice_mut::<Line, f32>(&mut lines)[..values.len()].copy_from_slice(values);
        Self {
            lines,
            len: values.len(),
        }
    }

    /// `len` zeros, 64-byte aligned.
    pub(super) fn zeroed(len: usize) -> Self {
        Self {
            lines: vec![Line([0.0; LINE_VALUES]); len.div_ceil(LINE_VALUES)],
            len,
        }
    }

    fn as_slice(&self) -> &[f32] {
        &bytemuck::cast_slice::<Line, f32>(&self.lines)[..self.len]
    }
}

impl Deref for AlignedF32 {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        self.as_slice()
    }
}

impl std::ops::DerefMut for AlignedF32 {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut bytemuck::cast_slice_mut::<Line, f32>(&mut self.lines)[..self.len]
    }
}

/// A parameter tensor's values, always starting on a 64-byte boundary.
pub(super) enum Weights<'a> {
    /// Viewed in place: stored as F32 at a 64-byte aligned address.
    InPlace(&'a [f32]),
    /// Stored as F32, but not 64-byte aligned in memory: copied at load.
    Realigned(AlignedF32),
    /// Stored in another dtype: decoded or dequantized at load.
    Converted(AlignedF32),
}

impl<'a> Weights<'a> {
    /// `values` (as read from `tensor`) held 64-byte aligned: borrowed when
    /// they already are, copied once otherwise.
    pub(super) fn new(tensor: &Tensor<'a>, values: Cow<'a, [f32]>) -> Self {
        match values {
            Cow::Borrowed(v) if is_aligned(v) => Weights::InPlace(v),
            Cow::Borrowed(v) => Weights::Realigned(AlignedF32::copy_of(v)),
            // F32 that could not be viewed at all (not even 4-aligned).
            Cow::Owned(v) if tensor.dtype() == DType::F32 => {
                Weights::Realigned(AlignedF32::copy_of(&v))
            }
            Cow::Owned(v) => Weights::Converted(AlignedF32::copy_of(&v)),
        }
    }
}

impl Deref for Weights<'_> {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match self {
            Weights::InPlace(v) => v,
            Weights::Realigned(v) | Weights::Converted(v) => v.as_slice(),
        }
    }
}

/// Whether `values` start on a [`WEIGHT_ALIGNMENT`] boundary.
fn is_aligned(values: &[f32]) -> bool {
    values.as_ptr().addr().is_multiple_of(WEIGHT_ALIGNMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_aligned_and_equal() {
        for len in [0, 1, 15, 16, 17, 1000] {
            let values: Vec<f32> = (0..len).map(|i| i as f32 * 0.5).collect();
            let copy = AlignedF32::copy_of(&values);
            assert_eq!(copy.as_slice(), values.as_slice());
            assert!(is_aligned(copy.as_slice()));
        }
    }
}
