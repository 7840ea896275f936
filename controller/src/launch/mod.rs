//! TODO: launch
