//! TODO: loadtest
