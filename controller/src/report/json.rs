//! `report.json`: schema `barrage.dev/report/v1`; the field reference is the documentation of
//! [`Report`] and the types it holds.
//!
//! Latencies are integer microseconds; rates are records per second; ratios are fractions;
//! every float is rounded to three decimals; maps are ordered; so re-rendering the same blobs
//! gives the same bytes. Additive changes keep `v1`; anything else bumps the version.

use std::collections::BTreeMap;

use barrage_crds::hlog;
use barrage_crds::status::{Summary, Verdict};
use serde::Serialize;

use super::blob::IntervalCounters;
use super::merge::{Gap, Merged, Stats, round3};
use super::verdict::{Check, ThresholdResult};
use super::{ReportContext, ReportError, Settings};

/// The schema identifier of `report.json`.
pub const SCHEMA: &str = "barrage.dev/report/v1";

/// The whole report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The LoadTest's name, when known.
    pub load_test: Option<String>,
    /// The run id, when known.
    pub run_id: Option<String>,
    /// `Passed`, `Failed`, `Invalid` or `Incomplete`, with reasons.
    pub verdict: VerdictJson,
    /// Totals over the run.
    pub summary: SummaryJson,
    /// Settings that decide what was measured (absent when rendered from bare files).
    pub settings: Option<Settings>,
    /// Every threshold with its observed values.
    pub thresholds: Vec<ThresholdResult>,
    /// One entry per interval with data, in order.
    pub intervals: Vec<IntervalJson>,
    /// One entry per soak window (empty without windows).
    pub windows: Vec<WindowJson>,
    /// One entry per agent incarnation, by slot then incarnation.
    pub agents: Vec<AgentJson>,
    /// Agent intervals without data, with their cause.
    pub gaps: Vec<Gap>,
    /// What the report was merged from.
    pub coverage: Coverage,
    /// Percentile distributions by tag: `[percentile, microseconds]` points spaced evenly on
    /// a `1/(1-q)` log axis, ending at the maximum.
    pub distribution: BTreeMap<String, Vec<(f64, u64)>>,
}

/// The verdict.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerdictJson {
    /// `Passed`, `Failed`, `Invalid` or `Incomplete`.
    pub result: String,
    /// One line per failed threshold or problem.
    pub reasons: Vec<String>,
}

/// Totals over the run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryJson {
    /// Start of interval 0, RFC 3339 UTC.
    pub start_time: String,
    /// End of the last interval, RFC 3339 UTC.
    pub end_time: String,
    /// Seconds from start to end.
    pub duration_secs: f64,
    /// Interval length, seconds.
    pub interval_secs: f64,
    /// Counters summed over every agent and interval.
    pub records: IntervalCounters,
    /// Records the load profile asked for, when known.
    pub target_records: Option<u64>,
    /// Acked records per second over the duration.
    pub achieved_rate: f64,
    /// Consumed records per second over the duration (Consume; RoundTrip's records read back).
    pub consumed_rate: f64,
    /// Target records per second over the duration, when known.
    pub target_rate: Option<f64>,
    /// Acked / target, when known.
    pub achieved_ratio: Option<f64>,
    /// Latency statistics by tag (`e2e`, `lag`, `produce`, `service`), microseconds.
    pub latency: BTreeMap<String, Stats>,
}

/// One interval.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntervalJson {
    /// Index from the run's start.
    pub index: u32,
    /// Seconds from the run's start to this interval's start.
    pub offset_secs: f64,
    /// Agent incarnations that reported it.
    pub agents: u32,
    /// Counters summed over agents.
    pub records: IntervalCounters,
    /// Acked records per second.
    pub rate: f64,
    /// Sent records per second.
    pub sent_rate: f64,
    /// Latency statistics by tag, microseconds.
    pub latency: BTreeMap<String, Stats>,
}

/// One soak window.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowJson {
    /// Window index.
    pub index: u32,
    /// First interval (inclusive).
    pub first_interval: u32,
    /// Last interval (inclusive).
    pub last_interval: u32,
    /// Intervals of the window with data.
    pub intervals_with_data: u32,
    /// Counters over the window.
    pub records: IntervalCounters,
    /// Latency statistics by tag over the window.
    pub latency: BTreeMap<String, Stats>,
    /// Whether every window-scoped threshold held in this window.
    pub passed: bool,
    /// Failed thresholds in this window.
    pub failures: Vec<String>,
}

/// One agent incarnation.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentJson {
    /// Slot.
    pub slot: u32,
    /// Incarnation.
    pub incarnation: u32,
    /// Intervals reported.
    pub intervals: u32,
    /// First interval reported.
    pub first_interval: u32,
    /// Last interval reported.
    pub last_interval: u32,
    /// Counters.
    pub records: IntervalCounters,
    /// Produce latency over its intervals.
    pub produce: Stats,
    /// Schedule lag over its intervals.
    pub lag: Stats,
}

/// What the report was merged from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// Agent interval blobs merged.
    pub blobs: u64,
    /// Distinct agent slots.
    pub slots: u32,
    /// Agent incarnations.
    pub incarnations: u32,
    /// Intervals in the run (0 to the last one).
    pub intervals: u32,
    /// Slot-intervals without data (sum over gaps).
    pub missing_agent_intervals: u64,
    /// Histogram bucket layout.
    pub histogram: String,
}

fn rfc3339(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Quantiles at evenly spaced points of `1/(1-q)` on a log axis (ten per decade), up to the
/// resolution the count allows, then the maximum.
pub fn distribution(h: &hdrhistogram::Histogram<u64>) -> Vec<(f64, u64)> {
    let mut points = Vec::new();
    if h.is_empty() {
        return points;
    }
    let limit = h.len() as f64;
    let quantiles: Vec<f64> = (0..=70)
        .map(|k| 10f64.powf(f64::from(k) / 10.0))
        .take_while(|x| *x <= limit)
        .map(|x| 1.0 - 1.0 / x)
        .collect();
    for (q, v) in quantiles
        .iter()
        .zip(h.value_at_quantiles(quantiles.iter().copied()))
    {
        points.push((round3(q * 100.0 * 1000.0) / 1000.0, v));
    }
    points.push((100.0, h.max()));
    points
}

impl Report {
    /// Assembles the report from a merge and its evaluated thresholds.
    pub fn build(
        merged: &Merged,
        ctx: &ReportContext,
        results: &[ThresholdResult],
        verdict: &Verdict,
        target: Option<u64>,
    ) -> Report {
        let length_secs = merged.length_ms as f64 / 1000.0;
        let intervals_in_run = merged.last_interval().map_or(0, |l| l + 1);
        let intervals_in_run = ctx.last_interval.map_or(intervals_in_run, |l| {
            intervals_in_run.max(l.saturating_add(1))
        });
        let duration_secs = round3(f64::from(intervals_in_run) * length_secs);
        let c = &merged.total.counters;
        let per_sec = |n: u64, secs: f64| {
            if secs > 0.0 {
                round3(n as f64 / secs)
            } else {
                0.0
            }
        };
        let summary = SummaryJson {
            start_time: rfc3339(merged.run_start_ms),
            end_time: rfc3339(
                merged
                    .run_start_ms
                    .saturating_add(u64::from(intervals_in_run).saturating_mul(merged.length_ms)),
            ),
            duration_secs,
            interval_secs: round3(length_secs),
            records: c.clone(),
            target_records: target,
            achieved_rate: per_sec(c.acked, duration_secs),
            consumed_rate: per_sec(c.consumed, duration_secs),
            target_rate: target.map(|t| per_sec(t, duration_secs)),
            achieved_ratio: target
                .filter(|t| *t > 0)
                .map(|t| round3(c.acked as f64 / t as f64 * 1000.0) / 1000.0),
            latency: merged.total.stats_with_mean(),
        };
        let intervals = merged
            .intervals
            .iter()
            .map(|i| IntervalJson {
                index: i.index,
                offset_secs: round3(f64::from(i.index) * length_secs),
                agents: i.agents,
                records: i.counters.clone(),
                rate: per_sec(i.counters.acked, length_secs),
                sent_rate: per_sec(i.counters.sent, length_secs),
                latency: i.stats.clone(),
            })
            .collect();
        let windows = merged
            .windows
            .iter()
            .map(|w| {
                let failures: Vec<String> = results
                    .iter()
                    .flat_map(|r| {
                        r.windows
                            .iter()
                            .filter(|c: &&Check| c.window == Some(w.index) && !c.passed)
                            .map(move |c| {
                                format!("{}: observed {}", r.threshold, c.observed_display)
                            })
                    })
                    .collect();
                WindowJson {
                    index: w.index,
                    first_interval: w.first_interval,
                    last_interval: w.last_interval,
                    intervals_with_data: w.intervals_with_data,
                    records: w.acc.counters.clone(),
                    latency: w.acc.stats_with_mean(),
                    passed: failures.is_empty(),
                    failures,
                }
            })
            .collect();
        let agents = merged
            .agents
            .iter()
            .map(|a| AgentJson {
                slot: a.slot,
                incarnation: a.incarnation,
                intervals: u32::try_from(a.intervals.len()).unwrap_or(u32::MAX),
                first_interval: a.intervals.first().copied().unwrap_or(0),
                last_interval: a.intervals.last().copied().unwrap_or(0),
                records: a.counters.clone(),
                produce: a.produce,
                lag: a.lag,
            })
            .collect();
        let slots: std::collections::BTreeSet<u32> = merged.agents.iter().map(|a| a.slot).collect();
        let coverage = Coverage {
            blobs: merged.blobs,
            slots: u32::try_from(slots.len()).unwrap_or(u32::MAX),
            incarnations: u32::try_from(merged.agents.len()).unwrap_or(u32::MAX),
            intervals: intervals_in_run,
            missing_agent_intervals: merged
                .gaps
                .iter()
                .filter(|g| !g.cause.is_explained())
                .map(|g| u64::from(g.to_interval - g.from_interval) + 1)
                .sum(),
            histogram: merged.config.to_string(),
        };
        let distribution = merged
            .total
            .histograms
            .iter()
            .map(|(tag, h)| (tag.clone(), distribution(h)))
            .collect();
        Report {
            schema: SCHEMA.to_string(),
            load_test: ctx.load_test.clone(),
            run_id: ctx.run_id.clone(),
            verdict: VerdictJson {
                result: format!("{:?}", verdict.result),
                reasons: verdict.reasons.clone(),
            },
            summary,
            settings: ctx.settings.clone(),
            thresholds: results.to_vec(),
            intervals,
            windows,
            agents,
            gaps: merged.gaps.clone(),
            coverage,
            distribution,
        }
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Result<String, ReportError> {
        let mut s = serde_json::to_string_pretty(self)
            .map_err(|e| ReportError::Invalid(format!("serializing report.json: {e}")))?;
        s.push('\n');
        Ok(s)
    }

    /// The summary the LoadTest's status carries.
    pub fn status_summary(&self) -> Summary {
        let s = &self.summary;
        let produce = s
            .latency
            .get(hlog::TAG_PRODUCE)
            .copied()
            .unwrap_or_default();
        Summary {
            records_sent: s.records.sent,
            records_acked: s.records.acked,
            records_failed: s.records.errors,
            records_dropped: s.records.dropped,
            bytes: s.records.bytes,
            achieved_rate: s.achieved_rate,
            target_rate: s.target_rate.unwrap_or(0.0),
            produce_p50_us: produce.p50,
            produce_p99_us: produce.p99,
            produce_max_us: produce.max,
            e2e_p99_us: s.latency.get(hlog::TAG_E2E).map(|e| e.p99),
            lost: s.records.lost,
            duplicated: s.records.duplicated,
        }
    }
}
