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

/// The run's last interval index (inclusive) for a load of `total_ms` in intervals of
/// `interval_ms`; `None` when either is zero.
pub fn last_interval(interval_ms: u128, total_ms: u128) -> Option<u32> {
    (interval_ms > 0 && total_ms > 0)
        .then(|| u32::try_from(total_ms.div_ceil(interval_ms) - 1).unwrap_or(u32::MAX))
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

/// Where a soak stands, for deciding which window reports are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowClock {
    /// Milliseconds since the run's start (`status.startAt`).
    pub elapsed_ms: u64,
    /// Interval length, milliseconds.
    pub interval_ms: u64,
    /// Intervals per window.
    pub k: u32,
    /// How long after a window's end its report is written even if some intervals are still
    /// missing (they are then listed as gaps).
    pub grace_ms: u64,
    /// The last interval index every agent has uploaded, when known.
    pub uploaded_through: Option<u32>,
    /// The run's last interval index (inclusive), when known: windows past it are not reported
    /// on their own (the cumulative report covers the tail).
    pub last_interval: Option<u32>,
}

impl WindowClock {
    fn end_ms(&self, w: u32) -> u64 {
        u64::from(window_range(w, self.k).end).saturating_mul(self.interval_ms)
    }

    fn in_run(&self, w: u32) -> bool {
        self.last_interval
            .is_none_or(|last| window_range(w, self.k).end.saturating_sub(1) <= last)
    }

    /// Whether window `w` can be reported now: it has ended, and either every agent has
    /// uploaded its last interval or the grace period after its end has passed.
    pub fn is_due(&self, w: u32) -> bool {
        let end = self.end_ms(w);
        if !self.in_run(w) || self.elapsed_ms < end {
            return false;
        }
        let last = window_range(w, self.k).end.saturating_sub(1);
        self.uploaded_through.is_some_and(|u| u >= last)
            || self.elapsed_ms >= end.saturating_add(self.grace_ms)
    }

    /// Milliseconds until window `w` is due at the latest (0 if it is), `None` if it never is.
    pub fn until_due(&self, w: u32) -> Option<u64> {
        if !self.in_run(w) {
            return None;
        }
        let at = self.end_ms(w).saturating_add(self.grace_ms);
        Some(at.saturating_sub(self.elapsed_ms))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn clock(elapsed_ms: u64, uploaded_through: Option<u32>) -> WindowClock {
        WindowClock {
            elapsed_ms,
            interval_ms: 1_000,
            k: 10,
            grace_ms: 5_000,
            uploaded_through,
            last_interval: Some(29),
        }
    }

    #[test]
    fn a_window_is_due_once_every_agent_uploaded_it_or_its_grace_passed() {
        // Window 0 covers intervals 0..10, ending 10 s after the start.
        assert!(!clock(9_999, Some(9)).is_due(0));
        assert!(clock(10_000, Some(9)).is_due(0));
        assert!(!clock(10_000, Some(8)).is_due(0));
        assert!(!clock(14_999, None).is_due(0));
        assert!(clock(15_000, None).is_due(0));
        assert_eq!(clock(12_000, None).until_due(0), Some(3_000));
        assert_eq!(clock(16_000, None).until_due(0), Some(0));
    }

    #[test]
    fn windows_past_the_run_are_never_due() {
        assert!(clock(100_000, Some(99)).is_due(2));
        assert!(!clock(100_000, Some(99)).is_due(3));
        assert_eq!(clock(100_000, None).until_due(3), None);
    }

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
