//! TODO: items
