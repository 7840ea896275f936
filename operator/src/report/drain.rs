//! How a Consume run drained its backlog (`spec.workload.backlog`): the first interval at whose
//! end the group's lag was zero on every partition it ever reported, and the consume rate up
//! to then. The figures behind `drain.seconds` and `consume.rate`.

use std::collections::BTreeSet;

use serde::Serialize;

use super::merge::{Merged, round3};

/// The drain of a backlog.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Drain {
    /// Records written before the start.
    pub backlog_records: u64,
    /// The lag at or below which it counts as drained.
    pub caught_up: u64,
    /// The first interval that ended with no partition behind; `None` if the run ended first.
    pub drained_interval: Option<u32>,
    /// Seconds from the start to that interval's end (`drain.seconds`), to the report
    /// interval; `None` when it never drained.
    pub seconds: Option<f64>,
    /// Records consumed until then (over the whole run when it never drained).
    pub consumed_records: u64,
    /// `consumedRecords` per second over those intervals (`consume.rate`).
    pub rate: Option<f64>,
}

/// The drain of `backlog` records in `merged`. Partitions report a lag once their consumer
/// has a position, so an interval counts as drained only when it lists every partition any
/// interval listed, their lags adding up to at most `caught_up`.
pub fn drain(merged: &Merged, backlog: u64, caught_up: u64) -> Drain {
    let partitions: BTreeSet<u32> = merged
        .intervals
        .iter()
        .flat_map(|i| i.consumer_lag.keys().copied())
        .collect();
    let drained = merged.intervals.iter().find(|i| {
        let listed = partitions.iter().all(|p| i.consumer_lag.contains_key(p));
        let lag = i
            .consumer_lag
            .values()
            .fold(0u64, |t, l| t.saturating_add(*l));
        !partitions.is_empty() && listed && lag <= caught_up
    });
    let through = drained.map_or(u32::MAX, |i| i.index);
    let consumed = merged
        .intervals
        .iter()
        .filter(|i| i.index <= through)
        .map(|i| i.counters.consumed)
        .sum();
    let length_secs = merged.length_ms as f64 / 1000.0;
    let span_secs = match drained {
        Some(i) => f64::from(i.index + 1) * length_secs,
        None => merged
            .last_interval()
            .map_or(0.0, |l| f64::from(l + 1) * length_secs),
    };
    Drain {
        backlog_records: backlog,
        caught_up,
        drained_interval: drained.map(|i| i.index),
        seconds: drained.map(|_| round3(span_secs)),
        consumed_records: consumed,
        rate: (span_secs > 0.0).then(|| round3(consumed as f64 / span_secs)),
    }
}

/// Figures of the whole run that thresholds judge besides the histograms and counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFigures {
    /// `drain.seconds`.
    pub drain_seconds: Option<f64>,
    /// `consume.rate`: records consumed per second, over the drain with a backlog, over the
    /// load otherwise.
    pub consume_rate: Option<f64>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::report::blob::{AgentInterval, IntervalCounters};
    use crate::report::merge::{MergeOptions, merge_all};

    fn interval(slot: u32, index: u32, consumed: u64, lag: &[(u32, u64)]) -> AgentInterval {
        AgentInterval {
            slot,
            incarnation: 0,
            index,
            start_ms: 1_000_000 + u64::from(index) * 2_000,
            length_ms: 2_000,
            histograms: Default::default(),
            counters: Some(IntervalCounters {
                consumed,
                ..IntervalCounters::default()
            }),
            consumer_lag: lag.iter().copied().collect(),
            partitions: Default::default(),
        }
    }

    #[test]
    fn the_drain_ends_when_every_partition_is_at_zero() {
        // Agent 1 reports partition 1 at zero before it had any position on partition 2: not
        // drained yet. Interval 2 ends with both agents' partitions at zero.
        let blobs = [
            interval(0, 0, 400, &[(0, 600)]),
            interval(1, 0, 100, &[(1, 0)]),
            interval(0, 1, 500, &[(0, 100)]),
            interval(1, 1, 300, &[(1, 0), (2, 200)]),
            interval(0, 2, 100, &[(0, 0)]),
            interval(1, 2, 200, &[(1, 0), (2, 0)]),
            interval(0, 3, 0, &[(0, 0)]),
        ];
        let m = merge_all(&blobs, MergeOptions::default()).unwrap();
        let d = drain(&m, 1_600, 0);
        assert_eq!(d.drained_interval, Some(2));
        assert_eq!(
            drain(&m, 1_600, 300).drained_interval,
            Some(1),
            "300 behind in interval 1"
        );
        assert_eq!(d.seconds, Some(6.0));
        assert_eq!(d.consumed_records, 1_600);
        assert_eq!(d.rate, Some(266.667));
    }

    #[test]
    fn a_backlog_still_behind_at_the_end_has_no_drain_time() {
        let blobs = [
            interval(0, 0, 10, &[(0, 90)]),
            interval(0, 1, 10, &[(0, 80)]),
        ];
        let m = merge_all(&blobs, MergeOptions::default()).unwrap();
        let d = drain(&m, 100, 0);
        assert_eq!(
            drain(&m, 100, 80).drained_interval,
            Some(1),
            "80 behind counts as caught up"
        );
        assert_eq!((d.drained_interval, d.seconds), (None, None));
        assert_eq!((d.consumed_records, d.rate), (20, Some(5.0)));
    }
}
