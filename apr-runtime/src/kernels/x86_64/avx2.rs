//! AVX2 + FMA kernels (being written: scalar stand-ins for now).

use crate::kernels::Kernels;

/// The AVX2+FMA table, when this CPU runs it.
pub(in crate::kernels) fn table() -> Option<&'static Kernels> {
    None
}
