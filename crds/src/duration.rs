//! TODO: duration
