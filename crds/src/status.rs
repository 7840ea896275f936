//! `LoadTestStatus`: what the controller observed and decided. Written only by the controller.
//!
//! Unlike the spec, status tolerates unknown fields (a newer controller may add some while an
//! older CLI reads them) and every field has a default.

use crate::names::{ConditionType, TransitionReason};
use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How many transitions `status.transitions` keeps.
pub const MAX_TRANSITIONS: usize = 20;

/// Observed state of a load test.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadTestStatus {
    /// Lifecycle phase.
    pub phase: Phase,
    /// The metadata.generation this status was computed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The digest of the spec at `observedGeneration` ([`crate::spec::LoadTestSpec::digest`]):
    /// a record put again with the same spec is recognised as unchanged, however it was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_spec_digest: Option<String>,
    /// Identifier of the current run (a new one per run of the same LoadTest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// What the current run cannot change while it runs
    /// ([`crate::spec::LoadTestSpec::run_digest`]); a live run whose spec no longer has this
    /// digest is superseded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_digest: Option<String>,
    /// The `spec.rerun` the current run was started for.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub rerun: u64,
    /// True while the current run is being cancelled because a changed spec superseded it; the
    /// new spec's run starts once it is cancelled.
    #[serde(skip_serializing_if = "is_false")]
    pub superseded: bool,
    /// The shared clock time at which every agent starts its schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_at: Option<DateTime<Utc>>,
    /// When the current phase was entered (phase timeouts count from here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_since: Option<DateTime<Utc>>,
    /// Conditions, Kubernetes style (e.g. SpecInvalid, AgentsReady, ThresholdsMet).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Agent counts.
    pub agents: AgentCounts,
    /// Live progress, summed over the agents.
    pub progress: Progress,
    /// Final summary, once the run has been reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// Verdict from the thresholds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Where the reports are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reports: Option<ReportLocations>,
    /// The last phase transitions (at most 20).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
    /// A human-readable message about the current state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// One record per agent slot: which incarnation runs it, its task, its launch attempts.
    /// Launch intents are recorded here *before* RunTask is called, so a controller that
    /// crashes between the two never launches a slot twice.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<SlotStatus>,
    /// How the rate is split across the fleet, and from when. Agents read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetAssignment>,
    /// Launch slow start: the size of the next RunTask batch (1, 2, 4 … 10; 0 reads as 1).
    #[serde(skip_serializing_if = "is_zero")]
    pub launch_window: u32,
    /// True when an agent of this run created the topic (so `cleanup: DeleteIfCreated` deletes it).
    #[serde(skip_serializing_if = "is_false")]
    pub topic_created: bool,
    /// True once the controller decided to delete the topic this run created: recorded before
    /// DeleteTopic is called, so a controller that crashes in between deletes it after restart.
    #[serde(skip_serializing_if = "is_false")]
    pub topic_deleted: bool,
    /// True once DeleteTopic succeeded (or found the topic already gone).
    #[serde(skip_serializing_if = "is_false")]
    pub topic_gone: bool,
    /// DeleteTopic calls made for the topic this run created (each retried a few times).
    #[serde(skip_serializing_if = "is_zero")]
    pub topic_delete_attempts: u32,
    /// Rolling window reports written so far (soaks with `spec.report.window`): a small,
    /// fixed-size summary however many windows the run has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows: Option<WindowsStatus>,
}

/// Rolling window reports of a soak, written while the run continues.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct WindowsStatus {
    /// Windows whose report set was written.
    pub reported: u32,
    /// Of those, windows whose verdict was not `Passed`.
    pub not_passed: u32,
    /// The latest window written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest: Option<WindowVerdict>,
}

/// The verdict of one rolling window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowVerdict {
    /// Window index from the run's start (0-based).
    pub index: u32,
    /// The window's verdict.
    pub result: VerdictResult,
    /// Why, one line per failed threshold or problem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Records acknowledged during the window.
    pub records_acked: u64,
    /// Produce latency p99 over the window, microseconds.
    pub produce_p99_us: u64,
    /// The window's report.json URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What the controller knows about one agent slot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct SlotStatus {
    /// Slot number, 0-based (`BARRAGE_SLOT`).
    pub slot: u32,
    /// Incarnation of the agent in this slot (`BARRAGE_INCARNATION`); +1 on every replacement.
    pub incarnation: u32,
    /// Where the slot is.
    pub state: SlotState,
    /// Launch attempts for this incarnation (part of the RunTask client token).
    pub attempt: u32,
    /// The task running this incarnation, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// How many times this slot was replaced after its agent died.
    pub restarts: u32,
    /// When the last launch of this slot was decided (the launch is in flight until seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launched_at: Option<DateTime<Utc>>,
    /// True once a task of the last launch was seen (or RunTask returned it).
    #[serde(skip_serializing_if = "is_false")]
    pub seen: bool,
    /// In `Backoff`: when to try again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    /// Since when a task that was seen is missing from the task list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_since: Option<DateTime<Utc>>,
    /// Why the last task or launch of this slot ended, e.g. `exit code 137: OutOfMemoryError`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Where an agent slot is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SlotState {
    /// To be launched when the launch window allows.
    #[default]
    Waiting,
    /// RunTask decided; the task is not seen yet.
    Launching,
    /// The task is seen alive.
    Running,
    /// The launch failed; retried at `retryAt`.
    Backoff,
    /// The agent finished its share.
    Completed,
    /// The slot gave up: restarts or launch attempts exhausted.
    Failed,
    /// The slot was removed by a scale-down; its task is stopped.
    Retired,
}

/// How the load is split across the fleet. Agents switch to a new assignment at `effectiveAt`,
/// all on the same clock, so the shares always sum exactly to the total rate: the member at
/// position `k` of `n` sends the records of the global schedule whose index, counted from the
/// first record at or after `effectiveAt`, is `k` modulo `n`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct FleetAssignment {
    /// Incremented on every change.
    pub epoch: u32,
    /// The slots that share the load, in order.
    pub members: Vec<u32>,
    /// When this assignment takes effect.
    pub effective_at: Option<DateTime<Utc>>,
    /// The spec generation (rate, pause) the fleet follows from `effectiveAt`.
    pub spec_generation: i64,
    /// True while the load is paused.
    #[serde(skip_serializing_if = "is_false")]
    pub paused: bool,
    /// Every pause of this run, oldest first; the last one is open (no `until`) while paused.
    /// Agents send nothing inside a span and follow the shared schedule outside them; reports
    /// leave the spans out of the target.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paused_spans: Vec<PausedSpan>,
}

/// A stretch of a run with the load paused, from one fleet assignment's `effectiveAt` to
/// another's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PausedSpan {
    /// When the pause took effect.
    pub from: DateTime<Utc>,
    /// When the load resumed; absent while the pause lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

impl PausedSpan {
    /// The span as offsets from `start_at` in nanoseconds, clamped at 0; an open span ends
    /// at `u64::MAX`.
    pub fn offsets_ns(&self, start_at: DateTime<Utc>) -> (u64, u64) {
        let offset = |t: DateTime<Utc>| match (t - start_at).num_nanoseconds() {
            Some(ns) => u64::try_from(ns).unwrap_or(0),
            None if t > start_at => u64::MAX,
            None => 0,
        };
        (offset(self.from), self.until.map_or(u64::MAX, offset))
    }
}

impl FleetAssignment {
    /// The paused spans as offsets from `start_at` in nanoseconds ([`PausedSpan::offsets_ns`]).
    pub fn paused_offsets_ns(&self, start_at: DateTime<Utc>) -> Vec<(u64, u64)> {
        self.paused_spans
            .iter()
            .map(|span| span.offsets_ns(start_at))
            .collect()
    }

    /// The spans after a change to `paused` effective at `at`: a pause opens a span, a resume
    /// closes the open one; anything else leaves them as they are.
    pub fn spans_after(&self, paused: bool, at: DateTime<Utc>) -> Vec<PausedSpan> {
        let mut spans = self.paused_spans.clone();
        let open = spans.last_mut().filter(|s| s.until.is_none());
        match (paused, open) {
            (true, None) => spans.push(PausedSpan {
                from: at,
                until: None,
            }),
            (false, Some(span)) => span.until = Some(at.max(span.from)),
            _ => {}
        }
        spans
    }

    /// The position of `slot` in the members (its share index), if it is one.
    pub fn share_index(&self, slot: u32) -> Option<u32> {
        self.members
            .iter()
            .position(|&s| s == slot)
            .and_then(|i| u32::try_from(i).ok())
    }
}

impl LoadTestStatus {
    /// The condition of type `type_`, if any.
    pub fn condition(&self, type_: ConditionType) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Records a transition, keeping at most [`MAX_TRANSITIONS`] (oldest dropped).
    pub fn push_transition(&mut self, t: Transition) {
        self.transitions.push(t);
        if self.transitions.len() > MAX_TRANSITIONS {
            let excess = self.transitions.len() - MAX_TRANSITIONS;
            self.transitions.drain(..excess);
        }
    }
}

/// Lifecycle phase:
/// `Pending → Provisioning → Running → Draining → Reporting → Succeeded | Failed`, and `Cancelling → Cancelled`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum Phase {
    /// Accepted, nothing started.
    #[default]
    Pending,
    /// Ensuring the topic and launching agents; waiting for them to be Ready.
    Provisioning,
    /// The load is running.
    Running,
    /// The load ended; agents flush and upload their last intervals.
    Draining,
    /// Merging histograms, writing reports, evaluating thresholds.
    Reporting,
    /// Done; the verdict passed.
    Succeeded,
    /// Done; the spec was invalid, something timed out, or a threshold failed.
    Failed,
    /// Stopping agents after a deletion or cancellation.
    Cancelling,
    /// Cancelled.
    Cancelled,
}

impl Phase {
    /// Every phase.
    pub const ALL: &'static [Phase] = &[
        Phase::Pending,
        Phase::Provisioning,
        Phase::Running,
        Phase::Draining,
        Phase::Reporting,
        Phase::Succeeded,
        Phase::Failed,
        Phase::Cancelling,
        Phase::Cancelled,
    ];

    /// True for Succeeded, Failed and Cancelled.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Cancelled)
    }

    /// The name as serialized.
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Provisioning => "Provisioning",
            Phase::Running => "Running",
            Phase::Draining => "Draining",
            Phase::Reporting => "Reporting",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Cancelling => "Cancelling",
            Phase::Cancelled => "Cancelled",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A condition, Kubernetes shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. SpecInvalid, AgentsReady, ThresholdsMet.
    #[serde(rename = "type")]
    pub type_: ConditionType,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// A CamelCase reason.
    #[serde(default)]
    pub reason: String,
    /// A human-readable message.
    #[serde(default)]
    pub message: String,
    /// When the status last changed.
    pub last_transition_time: DateTime<Utc>,
    /// The metadata.generation the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Condition status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    #[default]
    Unknown,
}

/// Agent counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentCounts {
    /// Agents the spec asks for.
    pub desired: u32,
    /// Agent tasks started (RunTask succeeded).
    pub launched: u32,
    /// Agents that reported Ready.
    pub ready: u32,
    /// Agents running the load.
    pub running: u32,
    /// Agents that failed.
    pub failed: u32,
    /// Agents replaced after dying.
    pub replaced: u32,
}

/// Live progress, summed over agents.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct Progress {
    /// Records sent.
    pub sent: u64,
    /// Records acknowledged.
    pub acked: u64,
    /// Records that failed.
    pub errors: u64,
    /// Records dropped (never sent: the agent could not keep up).
    pub dropped: u64,
    /// Bytes acknowledged (Consume: consumed).
    pub bytes: u64,
    /// Records consumed (Consume), or own records read back (RoundTrip).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub consumed: u64,
    /// Current achieved rate, records per second: records acknowledged (Consume: consumed) in
    /// the live agents' last completed report interval, divided by its length.
    pub current_rate: f64,
    /// Produce p99 of the latest window, microseconds (Consume: end to end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_p99_us: Option<u64>,
}

/// Final summary of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct Summary {
    /// Records sent.
    pub records_sent: u64,
    /// Records acknowledged.
    pub records_acked: u64,
    /// Records that failed.
    pub records_failed: u64,
    /// Records dropped.
    pub records_dropped: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Achieved rate over the load, records per second.
    pub achieved_rate: f64,
    /// Target rate over the load, records per second.
    pub target_rate: f64,
    /// Produce latency p50, microseconds.
    pub produce_p50_us: u64,
    /// Produce latency p99, microseconds.
    pub produce_p99_us: u64,
    /// Produce latency maximum, microseconds.
    pub produce_max_us: u64,
    /// End-to-end latency p99, microseconds (RoundTrip).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e2e_p99_us: Option<u64>,
    /// Records lost (RoundTrip).
    pub lost: u64,
    /// Records duplicated (RoundTrip).
    pub duplicated: u64,
}

/// Verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// Passed, Failed, Invalid or Incomplete.
    pub result: VerdictResult,
    /// Why, one line per threshold or problem.
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// Verdict result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum VerdictResult {
    /// Every threshold held.
    Passed,
    /// A threshold failed.
    Failed,
    /// The measurement cannot be trusted (e.g. agents saturated).
    Invalid,
    /// The run did not complete.
    Incomplete,
}

/// Report URIs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ReportLocations {
    /// report.json URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    /// report.html URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// merged.hlog URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hlog: Option<String>,
    /// junit.xml URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub junit: Option<String>,
}

/// A phase transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// Phase left.
    pub from: Phase,
    /// Phase entered.
    pub to: Phase,
    /// When.
    pub at: DateTime<Utc>,
    /// Why.
    #[serde(default)]
    pub reason: TransitionReason,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn terminal_phases_are_exactly_succeeded_failed_cancelled() {
        let terminal: Vec<Phase> = Phase::ALL
            .iter()
            .copied()
            .filter(Phase::is_terminal)
            .collect();
        assert_eq!(
            terminal,
            vec![Phase::Succeeded, Phase::Failed, Phase::Cancelled]
        );
    }

    #[test]
    fn transitions_keep_the_last_twenty() {
        let mut st = LoadTestStatus::default();
        let at = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
        for i in 0..25 {
            st.push_transition(Transition {
                from: Phase::Pending,
                to: Phase::Running,
                at,
                reason: i.to_string().into(),
            });
        }
        assert_eq!(st.transitions.len(), MAX_TRANSITIONS);
        assert_eq!(st.transitions[0].reason, "5");
        assert_eq!(st.transitions[19].reason, "24");
    }

    #[test]
    fn old_status_records_without_slots_or_fleet_still_parse() {
        let st: LoadTestStatus =
            serde_json::from_str(r#"{"phase":"Running","observedGeneration":3}"#).unwrap();
        assert!(st.slots.is_empty());
        assert!(st.fleet.is_none());
        assert_eq!(st.launch_window, 0);
        let fleet = FleetAssignment {
            members: vec![0, 2, 5],
            ..FleetAssignment::default()
        };
        assert_eq!(fleet.share_index(5), Some(2));
        assert_eq!(fleet.share_index(1), None);
    }

    #[test]
    fn condition_type_serializes_as_type() {
        let c = Condition {
            type_: "SpecInvalid".into(),
            status: ConditionStatus::True,
            reason: "Validation".into(),
            message: "bad".into(),
            last_transition_time: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap(),
            observed_generation: Some(2),
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["type"], "SpecInvalid");
        assert_eq!(v["lastTransitionTime"], "2023-11-14T22:13:20Z");
        let back: Condition = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
    }
}
