//! TODO: hlog
