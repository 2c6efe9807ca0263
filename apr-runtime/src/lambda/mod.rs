//! TODO(lambda): being written.
