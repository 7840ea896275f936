//! TODO: spec
