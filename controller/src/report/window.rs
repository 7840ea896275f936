//! Soak windows as pure functions over interval indices.
//!
//! A window is `k` consecutive intervals: window `w` covers intervals `w*k .. (w+1)*k`. Window
//! reports are written while the run continues, once a window is complete; the merger keeps
//! only the open windows' histograms, so memory stays flat however long the run.

use std::ops::Range;

/// Intervals per window: `window / interval`, rounded down, at least 1. `None` when either
/// length is zero.
pub fn intervals_per_window(interval_ms: u64, window_ms: u64) -> Option<u32> {
    if interval_ms == 0 || window_ms == 0 {
        return None;
    }
    Some(u32::try_from((window_ms / interval_ms).max(1)).unwrap_or(u32::MAX))
}

/// The window interval `index` belongs to.
pub fn window_of(index: u32, k: u32) -> u32 {
    index / k.max(1)
}

/// The interval indices of window `w` (end exclusive, saturating at `u32::MAX`).
pub fn window_range(w: u32, k: u32) -> Range<u32> {
    let k = k.max(1);
    let start = w.saturating_mul(k);
    start..start.saturating_add(k)
}

/// Windows whose every interval is at or before `last_closed`: they can be reported.
pub fn complete_windows(last_closed: u32, k: u32) -> Range<u32> {
    let k = k.max(1);
    0..(last_closed.saturating_add(1)) / k
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn windows_partition_the_intervals() {
        for k in 1..7 {
            for i in 0..50 {
                assert!(window_range(window_of(i, k), k).contains(&i));
            }
        }
    }

    #[test]
    fn hourly_windows_of_ten_second_intervals_hold_360_intervals() {
        assert_eq!(intervals_per_window(10_000, 3_600_000), Some(360));
        assert_eq!(window_range(2, 360), 720..1080);
        assert_eq!(intervals_per_window(0, 10), None);
    }

    #[test]
    fn a_window_is_complete_once_its_last_interval_is_closed() {
        assert_eq!(complete_windows(358, 360), 0..0);
        assert_eq!(complete_windows(359, 360), 0..1);
        assert_eq!(complete_windows(720, 360), 0..2);
    }
}
