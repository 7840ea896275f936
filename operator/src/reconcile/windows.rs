//! Soak windows (`spec.report.window`): which window reports are due, and the verdicts of the
//! windows the shell wrote folded into `status.windows`. Pure, like the rest of the core.
//!
//! A window is due once it has ended and every agent uploaded its last interval, or once its
//! grace period after its end passed (its gaps are then listed). The core asks for the due
//! windows in order, a few per reconcile, with [`Command::WriteWindows`]; the shell renders
//! them and reports each verdict back in [`Observed::windows_written`](super::Observed) until
//! the status records it.

use std::time::Duration;

use barrage_crds::agent_status::{AgentPhase, AgentStatus};
use barrage_crds::status::{Phase, VerdictResult, WindowVerdict, WindowsStatus};

use super::{Command, Cx, add};
use crate::report::window::{WindowClock, intervals_per_window, last_interval};

/// Windows asked for in one reconcile at most, so a controller that was down catches up
/// gradually.
pub const MAX_WINDOWS_PER_RECONCILE: usize = 4;
/// Shortest wait before looking at the next window again.
const MIN_WINDOW_WAKE: Duration = Duration::from_millis(500);
/// Grace after a window's end before it is written with gaps: two intervals, at least this.
const MIN_GRACE_MS: u64 = 5_000;

impl Cx<'_> {
    /// Folds the windows written into the status, asks for the ones now due and wakes when
    /// the next one will be. Ended runs too: the last window is often due only once the
    /// agents uploaded its last interval, when the run may already be over (windows past the
    /// run are never due).
    pub(super) fn windows(&mut self) {
        if !matches!(
            self.st.phase,
            Phase::Running | Phase::Draining | Phase::Reporting | Phase::Succeeded | Phase::Failed
        ) {
            return;
        }
        let (Some(run_id), Some(clock)) = (self.st.run_id.clone(), self.window_clock()) else {
            return;
        };
        let mut windows = self.st.windows.clone().unwrap_or_default();
        fold(&mut windows, &self.obs.windows_written);
        if !self.obs.windows_written.is_empty() {
            self.st.windows = Some(windows.clone());
        }
        let next = windows
            .latest
            .as_ref()
            .map_or(0, |l| l.index.saturating_add(1));
        let due: Vec<u32> = (next..)
            .take(MAX_WINDOWS_PER_RECONCILE)
            .take_while(|w| clock.is_due(*w))
            .collect();
        let after = next.saturating_add(u32::try_from(due.len()).unwrap_or(u32::MAX));
        if let Some(ms) = clock.until_due(after) {
            let wait = Duration::from_millis(ms).max(MIN_WINDOW_WAKE);
            self.wakes.push(add(self.now, wait));
        }
        if !due.is_empty() {
            self.commands.push(Command::WriteWindows {
                run_id,
                windows: due,
            });
        }
    }

    /// Where the soak stands, or `None` when the run has no window or has not started.
    fn window_clock(&self) -> Option<WindowClock> {
        let report = &self.lt.spec.report;
        let start_at = self.st.start_at?;
        let interval_ms = u64::try_from(report.interval.as_std().as_millis()).ok()?;
        let window_ms = u64::try_from(report.window.as_ref()?.as_std().as_millis()).ok()?;
        let last_interval = last_interval(
            u128::from(interval_ms),
            self.lt.spec.load.total_duration().as_millis(),
        );
        let run_id = self.st.run_id.as_deref()?;
        Some(WindowClock {
            elapsed_ms: u64::try_from((self.now - start_at).num_milliseconds()).unwrap_or(0),
            interval_ms,
            k: intervals_per_window(interval_ms, window_ms)?,
            grace_ms: interval_ms.saturating_mul(2).max(MIN_GRACE_MS),
            uploaded_through: uploaded_through(&self.obs.agents, run_id),
            last_interval,
        })
    }
}

/// Adds the verdicts of windows written after `windows.latest` (in index order) to the counts.
pub fn fold(windows: &mut WindowsStatus, written: &[WindowVerdict]) {
    let mut written: Vec<&WindowVerdict> = written.iter().collect();
    written.sort_by_key(|v| v.index);
    for v in written {
        if windows.latest.as_ref().is_some_and(|l| v.index <= l.index) {
            continue;
        }
        windows.reported = windows.reported.saturating_add(1);
        if v.result != VerdictResult::Passed {
            windows.not_passed = windows.not_passed.saturating_add(1);
        }
        windows.latest = Some(v.clone());
    }
}

/// The last interval index every agent of `run_id` has uploaded, when it can be told from the
/// agents' heartbeats: only first incarnations count from interval 0.
pub fn uploaded_through(agents: &[AgentStatus], run_id: &str) -> Option<u32> {
    let live: Vec<&AgentStatus> = agents
        .iter()
        .filter(|a| {
            a.run_id == run_id
                && matches!(
                    a.phase,
                    AgentPhase::Running | AgentPhase::Draining | AgentPhase::Completed
                )
        })
        .collect();
    if live.is_empty() || live.iter().any(|a| a.incarnation > 0) {
        return None;
    }
    live.iter()
        .map(|a| a.intervals_uploaded)
        .min()
        .and_then(|n| n.checked_sub(1))
}
