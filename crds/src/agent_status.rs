//! What an agent reports about itself: [`AgentStatus`], written as JSON in its status record
//! (see [`crate::items`]) on every heartbeat, read by the controller.
//!
//! Fields are camelCase. Readers ignore fields they do not know and fill missing counters with
//! zero, so an agent and a controller of neighbouring versions understand each other.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where an agent is in its life.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum AgentPhase {
    /// Started; connecting to Kafka and the stores.
    #[default]
    Starting,
    /// Connected and waiting for the run's `startAt`.
    Ready,
    /// Sending (or consuming) load.
    Running,
    /// The load ended or a stop was asked; flushing and uploading the last interval.
    Draining,
    /// Finished cleanly; every interval uploaded.
    Completed,
    /// Stopped on an error; `reason` says which.
    Failed,
}

impl AgentPhase {
    /// Every phase, in lifecycle order.
    pub const ALL: [AgentPhase; 6] = [
        AgentPhase::Starting,
        AgentPhase::Ready,
        AgentPhase::Running,
        AgentPhase::Draining,
        AgentPhase::Completed,
        AgentPhase::Failed,
    ];

    /// Whether the agent has stopped for good (`Completed` or `Failed`).
    pub fn is_terminal(self) -> bool {
        matches!(self, AgentPhase::Completed | AgentPhase::Failed)
    }

    /// The phase's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentPhase::Starting => "Starting",
            AgentPhase::Ready => "Ready",
            AgentPhase::Running => "Running",
            AgentPhase::Draining => "Draining",
            AgentPhase::Completed => "Completed",
            AgentPhase::Failed => "Failed",
        }
    }
}

impl fmt::Display for AgentPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An agent's running totals since it started (this incarnation only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentCounters {
    /// Records handed to the Kafka client.
    pub sent: u64,
    /// Records acknowledged by the broker.
    pub acked: u64,
    /// Records that failed (delivery errors); see `errors_by_kind`.
    pub errors: u64,
    /// Records the schedule called for but that were never sent (the agent could not keep up
    /// or the run ended first); never hidden.
    pub dropped: u64,
    /// Records sent later than their intended time by more than the lateness tolerance.
    pub late: u64,
    /// Payload bytes acknowledged (keys and values); Consume: bytes consumed.
    pub bytes: u64,
    /// Records consumed (Consume), or own records read back (RoundTrip).
    pub consumed: u64,
    /// Latencies above the histograms' highest trackable value (one hour), counted here
    /// instead of being recorded.
    pub overflow: u64,
    /// `errors` by kind (e.g. `MsgTimedOut`, `QueueFull`, `MsgSizeTooLarge`,
    /// `UnknownTopicOrPartition`).
    pub errors_by_kind: BTreeMap<String, u64>,
}

/// The status record of one agent incarnation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// The LoadTest's name.
    pub load_test: String,
    /// The run id.
    pub run_id: String,
    /// The agent's slot, 0-based.
    pub slot: u32,
    /// Launches of this slot before this one (0 for the first).
    pub incarnation: u32,
    /// The ECS task ARN or the local process id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Where the agent is in its life.
    pub phase: AgentPhase,
    /// Why the agent is in this phase (always set when `Failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the agent last wrote this record.
    pub heartbeat_at: DateTime<Utc>,
    /// When the agent started sending (entered `Running`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// Running totals.
    #[serde(default)]
    pub counters: AgentCounters,
    /// Interval blobs uploaded so far.
    #[serde(default)]
    pub intervals_uploaded: u32,
    /// The p99 produce latency of the last completed interval, in microseconds (Consume: the
    /// end-to-end p99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_interval_p99_us: Option<u64>,
    /// Records acknowledged in the last completed interval (Consume: records consumed); the
    /// controller sums them over the live agents into `status.progress.currentRate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_interval_records: Option<u64>,
    /// Whether the agent itself is the bottleneck (schedule lag, queue full, CPU): its results
    /// understate what the cluster could do.
    #[serde(default)]
    pub saturated: bool,
    /// Where the agent serves `/metrics` and `/healthz` (the bound `IP:PORT`, so a port-0
    /// listener can be found), when it serves them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<String>,
    /// This agent created the run's topic (it did not exist before): the controller may then
    /// delete it at the end when the spec's cleanup is `DeleteIfCreated`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub topic_created: bool,
    /// Intervals waiting in the agent's local spool for the blob store to take them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub intervals_spooled: u32,
    /// Intervals the agent could not deliver to the blob store at all, in contiguous ranges
    /// with their records: the report is missing exactly these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undelivered: Vec<UndeliveredIntervals>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A contiguous range of one agent's intervals that never reached the blob store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UndeliveredIntervals {
    /// First interval index (inclusive).
    pub from_interval: u32,
    /// Last interval index (inclusive).
    pub to_interval: u32,
    /// Records the agent counted in them (acknowledged; Consume: consumed).
    pub records: u64,
}

impl UndeliveredIntervals {
    /// Adds interval `index` with `records` to `ranges`, kept sorted and merged where
    /// contiguous.
    pub fn add(ranges: &mut Vec<UndeliveredIntervals>, index: u32, records: u64) {
        ranges.push(UndeliveredIntervals {
            from_interval: index,
            to_interval: index,
            records,
        });
        ranges.sort_by_key(|r| r.from_interval);
        let mut merged: Vec<UndeliveredIntervals> = Vec::with_capacity(ranges.len());
        for r in ranges.drain(..) {
            match merged.last_mut() {
                Some(last) if last.to_interval.checked_add(1) == Some(r.from_interval) => {
                    last.to_interval = r.to_interval;
                    last.records += r.records;
                }
                _ => merged.push(r),
            }
        }
        *ranges = merged;
    }
}

impl AgentStatus {
    /// A fresh `Starting` status with zero counters, heartbeat at `now`.
    pub fn new(
        load_test: impl Into<String>,
        run_id: impl Into<String>,
        slot: u32,
        incarnation: u32,
        now: DateTime<Utc>,
    ) -> AgentStatus {
        AgentStatus {
            load_test: load_test.into(),
            run_id: run_id.into(),
            slot,
            incarnation,
            task_id: None,
            phase: AgentPhase::Starting,
            reason: None,
            heartbeat_at: now,
            started_at: None,
            counters: AgentCounters::default(),
            intervals_uploaded: 0,
            last_interval_p99_us: None,
            last_interval_records: None,
            saturated: false,
            topic_created: false,
            metrics_addr: None,
            intervals_spooled: 0,
            undelivered: Vec::new(),
        }
    }

    /// Whether the agent is alive: not in a terminal phase, and its last heartbeat is no older
    /// than `heartbeat_timeout` at `now`. A heartbeat from the future (clock skew) counts as
    /// fresh.
    pub fn is_live(&self, now: DateTime<Utc>, heartbeat_timeout: Duration) -> bool {
        if self.phase.is_terminal() {
            return false;
        }
        match (now - self.heartbeat_at).to_std() {
            Ok(age) => age <= heartbeat_timeout,
            // Negative age: the heartbeat is ahead of our clock.
            Err(_) => true,
        }
    }

    /// The status as the JSON stored in its record.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string map keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a status record's JSON.
    pub fn from_json(text: &str) -> Result<AgentStatus, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_732_567_200 + secs, 0).unwrap_or_default()
    }

    #[test]
    fn undelivered_intervals_merge_into_contiguous_ranges_with_their_records() {
        let mut ranges = Vec::new();
        for (index, records) in [(3, 10), (4, 20), (5, 30), (9, 5)] {
            UndeliveredIntervals::add(&mut ranges, index, records);
        }
        let range = |from_interval, to_interval, records| UndeliveredIntervals {
            from_interval,
            to_interval,
            records,
        };
        assert_eq!(ranges, vec![range(3, 5, 60), range(9, 9, 5)]);
        // Out of order (a spooled interval given up after a later skipped one): still merged.
        UndeliveredIntervals::add(&mut ranges, 7, 1);
        UndeliveredIntervals::add(&mut ranges, 6, 2);
        UndeliveredIntervals::add(&mut ranges, 8, 0);
        assert_eq!(ranges, vec![range(3, 9, 68)]);
    }

    #[test]
    fn liveness_follows_the_heartbeat_and_the_phase() {
        let mut s = AgentStatus::new("lt", "r1", 0, 0, at(0));
        let timeout = Duration::from_secs(15);
        assert!(s.is_live(at(15), timeout));
        assert!(!s.is_live(at(16), timeout));
        assert!(s.is_live(at(-30), timeout), "clock skew counts as fresh");
        s.phase = AgentPhase::Completed;
        assert!(!s.is_live(at(1), timeout));
        s.phase = AgentPhase::Draining;
        assert!(s.is_live(at(1), timeout));
    }
}
