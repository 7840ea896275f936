//! TODO
/// What the watch saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The LoadTest (or one of its agents' status) changed.
    Changed(String),
    /// Changes may have been missed: list everything again.
    Relist,
}
