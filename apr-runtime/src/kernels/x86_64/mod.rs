//! Kernels for x86_64.

pub(super) mod avx2;
