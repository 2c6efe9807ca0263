//! TODO(kernels): being written.
