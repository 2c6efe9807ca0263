//! TODO(format): being written.
