//! TODO: reconcile
