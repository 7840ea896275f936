//! `report.json`: schema `barrage.dev/report/v2`; the field reference is the documentation of
//! [`Report`] and the types it holds.
//!
//! Latencies are integer microseconds; rates are records per second; ratios are fractions;
//! every float is rounded to three decimals; maps are ordered; so re-rendering the same blobs
//! gives the same bytes. Every figure is computed from the data or absent (`null`), never a
//! stand-in. Additive changes keep the version; anything else bumps it (`v2`: the run's
//! rates are per second of load, `durationSecs` became `spanSecs` beside `loadSecs`, every
//! histogram has its mean and its true minimum, an agent's empty histogram is `null`).

use barrage_crds::names::HistogramTag;
use std::collections::BTreeMap;

use barrage_crds::status::{Summary, Verdict};
use serde::Serialize;

use super::blob::IntervalCounters;
use super::drain::Drain;
use super::merge::{Gap, Merged, Stats, WindowSummary, round3};
use super::verdict::{Check, ThresholdResult};
use super::{ReportContext, ReportError, Settings};
use barrage_crds::interval::ConsumerLag;

/// The schema identifier of `report.json`.
pub const SCHEMA: &str = "barrage.dev/report/v2";

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
    pub distribution: BTreeMap<HistogramTag, Vec<(f64, u64)>>,
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

/// Totals over the run (or the window, for a window's report).
///
/// Three lengths of time, never mixed up: `loadSecs` is how long the load profile ran (the
/// rates are per second of it); `spanSecs` is what the intervals cover, from `startTime` to
/// `endTime`, the agents' last, flushed interval included; `intervalSecs` is one interval.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryJson {
    /// Start of the report's first interval, RFC 3339 UTC.
    pub start_time: String,
    /// End of the report's last interval (the flushed one after the load included), RFC 3339 UTC.
    pub end_time: String,
    /// Seconds from `startTime` to `endTime`. Longer than the load by the flush interval; no
    /// rate is computed over it.
    pub span_secs: f64,
    /// Seconds of load the report covers: the load profile's duration (`spec.load`), or for a
    /// window's report the part of it inside the window; absent when rendered without the
    /// LoadTest.
    pub load_secs: Option<f64>,
    /// Interval length, seconds.
    pub interval_secs: f64,
    /// Counters summed over every agent and interval.
    pub records: IntervalCounters,
    /// Records the load profile schedules, fleet-wide, when known.
    pub target_records: Option<u64>,
    /// `targetRecords / loadSecs`: the profile's own mean rate (a constant step's rate; half
    /// the peak of a ramp from zero), records per second.
    pub target_rate: Option<f64>,
    /// `records.acked / loadSecs`, records per second.
    pub achieved_rate: Option<f64>,
    /// `records.consumed / loadSecs` (Consume; RoundTrip's records read back), records per
    /// second.
    pub consumed_rate: Option<f64>,
    /// `records.acked / targetRecords`, when known.
    pub achieved_ratio: Option<f64>,
    /// Latency statistics by tag (`e2e`, `lag`, `produce`, `service`), microseconds; after
    /// the warm-up, when there is one (the warm-up's own are in `warmup`).
    pub latency: BTreeMap<HistogramTag, Stats>,
    /// The warm-up (`spec.load.warmup`) inside the report's intervals: its records are in
    /// `records` and every rate, its latency only here. Absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup: Option<WarmupJson>,
    /// Seconds of the load spent paused (`spec.paused`); not in `loadSecs`, and the profile's
    /// records inside them are not in `targetRecords`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_secs: Option<f64>,
    /// The paused spans, seconds from the run's start, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paused: Vec<PausedJson>,
    /// The consumer group's lag (Consume, RoundTrip; absent when none was sampled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_lag: Option<ConsumerLagJson>,
    /// How the group drained the backlog (Consume with `workload.backlog`; absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<Drain>,
    /// Records acknowledged per partition, from the delivery reports (absent when nothing was
    /// produced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<PartitionsJson>,
}

/// Records acknowledged per partition: the skew keyed records show.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionsJson {
    /// The busiest partition's records over the mean of the partitions listed (1 when even).
    pub skew: f64,
    /// Each partition that acknowledged a record, by number.
    pub by_partition: Vec<PartitionJson>,
}

/// One partition's records.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionJson {
    /// Partition number.
    pub partition: u32,
    /// Records acknowledged.
    pub records: u64,
    /// Their value and key bytes.
    pub bytes: u64,
    /// Its share of the records acknowledged.
    pub share: f64,
}

impl PartitionsJson {
    fn build(merged: &Merged) -> Option<PartitionsJson> {
        let total: u64 = merged.partitions.values().map(|c| c.records).sum();
        if total == 0 {
            return None;
        }
        let most = merged
            .partitions
            .values()
            .map(|c| c.records)
            .max()
            .unwrap_or(0);
        let mean = total as f64 / merged.partitions.len() as f64;
        Some(PartitionsJson {
            skew: round3(most as f64 / mean),
            by_partition: merged
                .partitions
                .iter()
                .map(|(p, c)| PartitionJson {
                    partition: *p,
                    records: c.records,
                    bytes: c.bytes,
                    share: round3(c.records as f64 / total as f64),
                })
                .collect(),
        })
    }
}

/// The consumer group's lag over the run, in records: at each interval's end, the sum over
/// partitions of high watermark − position (a partition two agents reported counts with the
/// higher lag). After the warm-up, when there is one.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerLagJson {
    /// The highest interval lag (`consumer_lag.max`).
    pub max: u64,
    /// The 99th percentile of the interval lags, nearest rank (`consumer_lag.p99`).
    pub p99: u64,
    /// Intervals that sampled a lag.
    pub intervals: u32,
    /// The last interval that sampled one.
    pub last_interval: u32,
    /// Its lag by partition: where the consumers stood at the end.
    pub last_by_partition: ConsumerLag,
}

impl ConsumerLagJson {
    fn build(merged: &Merged) -> Option<ConsumerLagJson> {
        let acc = &merged.total;
        let last = merged
            .intervals
            .iter()
            .rev()
            .find(|i| !i.warmup && !i.consumer_lag.is_empty())?;
        Some(ConsumerLagJson {
            max: acc.consumer_lag_at(100.0)?,
            p99: acc.consumer_lag_at(99.0)?,
            intervals: u32::try_from(acc.consumer_lag.len()).unwrap_or(u32::MAX),
            last_interval: last.index,
            last_by_partition: last.consumer_lag.clone(),
        })
    }
}

/// The warm-up's intervals, measured apart.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmupJson {
    /// Seconds of warm-up in the report (`spec.load.warmup`, or its part inside a window).
    pub secs: f64,
    /// Its first interval (inclusive).
    pub first_interval: u32,
    /// Its last interval (inclusive).
    pub last_interval: u32,
    /// Counters over its intervals (already in the summary's `records`).
    pub records: IntervalCounters,
    /// Latency statistics by tag over its intervals, microseconds (not in the summary's
    /// `latency`, the windows', the agents', the thresholds or the schedule-lag check).
    pub latency: BTreeMap<HistogramTag, Stats>,
}

impl WarmupJson {
    /// The warm-up inside intervals `first..end`; `None` when none of it is.
    fn build(merged: &Merged, first: u32, end: u32) -> Option<WarmupJson> {
        let warmup_end = merged.warmup_intervals.min(end);
        (warmup_end > first).then(|| WarmupJson {
            secs: round3(f64::from(warmup_end - first) * merged.length_ms as f64 / 1000.0),
            first_interval: first,
            last_interval: warmup_end - 1,
            records: merged.warmup.counters.clone(),
            latency: merged.warmup.stats(),
        })
    }
}

/// One paused span of the load.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PausedJson {
    /// When the pause took effect, seconds from the run's start.
    pub from_secs: f64,
    /// When the load resumed (or the load's end), seconds from the run's start.
    pub until_secs: f64,
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
    pub latency: BTreeMap<HistogramTag, Stats>,
    /// Part of the warm-up: counted in the summary's records, its latency only in
    /// `summary.warmup` (absent when false).
    #[serde(skip_serializing_if = "is_false")]
    pub warmup: bool,
    /// The consumer group's lag at the interval's end, records summed over partitions (absent
    /// when none was sampled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_lag: Option<u64>,
}

fn is_false(b: &bool) -> bool {
    !*b
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
    /// Intervals of the window that are warm-up (absent when none): in `records`, not in
    /// `latency`; a window that is all warm-up has no latency threshold checks.
    #[serde(skip_serializing_if = "is_zero")]
    pub warmup_intervals: u32,
    /// Counters over the window.
    pub records: IntervalCounters,
    /// Latency statistics by tag over the window (after the warm-up).
    pub latency: BTreeMap<HistogramTag, Stats>,
    /// The highest consumer lag at an interval's end in the window (absent when none was
    /// sampled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_lag_max: Option<u64>,
    /// Whether every window-scoped threshold held in this window.
    pub passed: bool,
    /// Failed thresholds in this window.
    pub failures: Vec<String>,
}

impl WindowJson {
    /// A window with the window-scoped thresholds it failed.
    fn build(w: &WindowSummary, results: &[ThresholdResult]) -> WindowJson {
        let failures: Vec<String> = results
            .iter()
            .flat_map(|r| {
                r.windows
                    .iter()
                    .filter(|c: &&Check| c.window == Some(w.index) && !c.passed)
                    .map(move |c| format!("{}: observed {}", r.threshold, c.observed_display))
            })
            .collect();
        WindowJson {
            index: w.index,
            first_interval: w.first_interval,
            last_interval: w.last_interval,
            intervals_with_data: w.intervals_with_data,
            warmup_intervals: w.warmup_intervals,
            records: w.acc.counters.clone(),
            latency: w.acc.stats(),
            consumer_lag_max: w.acc.consumer_lag_at(100.0),
            passed: failures.is_empty(),
            failures,
        }
    }
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
    /// Produce latency over its intervals after the warm-up; absent when it recorded none
    /// (Consume).
    pub produce: Option<Stats>,
    /// Schedule lag over its intervals after the warm-up; absent when it recorded none.
    pub lag: Option<Stats>,
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

fn is_zero(n: &u32) -> bool {
    *n == 0
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

/// `n` per second of `secs`, rounded; `None` over no time.
fn per_second(n: u64, secs: f64) -> Option<f64> {
    (secs > 0.0).then(|| round3(n as f64 / secs))
}

/// Milliseconds of the load (the first `load_ms` of the run) inside `[from_ms, to_ms)`.
fn load_within(load_ms: u64, from_ms: u64, to_ms: u64) -> u64 {
    to_ms.min(load_ms).saturating_sub(from_ms)
}

impl SummaryJson {
    /// The totals of `merged` over intervals `ctx.first_interval` (default 0) to
    /// `intervals_end` (exclusive), with rates per second of the load inside them.
    fn build(
        merged: &Merged,
        ctx: &ReportContext,
        target: Option<u64>,
        intervals_end: u32,
    ) -> SummaryJson {
        let at = |interval: u32| u64::from(interval).saturating_mul(merged.length_ms);
        let first = ctx.first_interval.unwrap_or(0).min(intervals_end);
        let (from_ms, to_ms) = (at(first), at(intervals_end));
        let load_secs = ctx
            .load_ms
            .map(|load| load_within(load, from_ms, to_ms) as f64 / 1000.0);
        let per_load_sec = |n: u64| load_secs.and_then(|secs| per_second(n, secs));
        let c = &merged.total.counters;
        SummaryJson {
            start_time: rfc3339(merged.run_start_ms.saturating_add(from_ms)),
            end_time: rfc3339(merged.run_start_ms.saturating_add(to_ms)),
            span_secs: round3((to_ms - from_ms) as f64 / 1000.0),
            load_secs: load_secs.map(round3),
            interval_secs: round3(merged.length_ms as f64 / 1000.0),
            records: c.clone(),
            target_records: target,
            target_rate: target.and_then(per_load_sec),
            achieved_rate: per_load_sec(c.acked),
            consumed_rate: per_load_sec(c.consumed),
            achieved_ratio: target
                .filter(|t| *t > 0)
                .map(|t| round3(c.acked as f64 / t as f64 * 1000.0) / 1000.0),
            latency: merged.total.stats(),
            warmup: WarmupJson::build(merged, first, intervals_end),
            paused_secs: (!ctx.paused_ms.is_empty()).then(|| {
                round3(ctx.paused_ms.iter().map(|(f, u)| u - f).sum::<u64>() as f64 / 1000.0)
            }),
            paused: ctx
                .paused_ms
                .iter()
                .map(|&(from, until)| PausedJson {
                    from_secs: round3(from as f64 / 1000.0),
                    until_secs: round3(until as f64 / 1000.0),
                })
                .collect(),
            consumer_lag: ConsumerLagJson::build(merged),
            drain: ctx.drain(merged),
            partitions: PartitionsJson::build(merged),
        }
    }
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
        let summary = SummaryJson::build(merged, ctx, target, intervals_in_run);
        let per_sec = |n: u64, secs: f64| per_second(n, secs).unwrap_or(0.0);
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
                warmup: i.warmup,
                consumer_lag: (!i.consumer_lag.is_empty()).then(|| {
                    i.consumer_lag
                        .values()
                        .fold(0u64, |t, l| t.saturating_add(*l))
                }),
            })
            .collect();
        let windows = merged
            .windows
            .iter()
            .map(|w| WindowJson::build(w, results))
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
        let produce = s.latency.get(&HistogramTag::Produce);
        let produce_us = |f: fn(&Stats) -> u64| produce.map_or(0, f);
        Summary {
            records_sent: s.records.sent,
            records_acked: s.records.acked,
            records_failed: s.records.errors,
            records_dropped: s.records.dropped,
            bytes: s.records.bytes,
            achieved_rate: s.achieved_rate.unwrap_or(0.0),
            target_rate: s.target_rate.unwrap_or(0.0),
            produce_p50_us: produce_us(|p| p.p50),
            produce_p99_us: produce_us(|p| p.p99),
            produce_max_us: produce_us(|p| p.max),
            e2e_p99_us: s.latency.get(&HistogramTag::E2e).map(|e| e.p99),
            lost: s.records.lost,
            duplicated: s.records.duplicated,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use barrage_crds::loadtest::LoadTest;
    use barrage_crds::spec::LoadSpec;

    use super::super::{AgentInterval, build_report, merge::merge_all};
    use super::*;
    use barrage_crds::hlog;

    /// One agent's 1 s intervals from `first` on, `acked[i]` records in the `i`th, each with a
    /// latency.
    fn intervals(first: u32, acked: &[u64]) -> Vec<AgentInterval> {
        (first..)
            .zip(acked)
            .map(|(index, &n)| {
                let mut h = hlog::new_histogram();
                h.record_n(100, n).unwrap();
                AgentInterval {
                    slot: 0,
                    incarnation: 0,
                    index,
                    start_ms: 1_000_000 + u64::from(index) * 1_000,
                    length_ms: 1_000,
                    histograms: BTreeMap::from([(HistogramTag::Produce, h)]),
                    counters: Some(IntervalCounters {
                        sent: n,
                        acked: n,
                        ..IntervalCounters::default()
                    }),
                    consumer_lag: Default::default(),
                    partitions: Default::default(),
                }
            })
            .collect()
    }

    /// The summary of a run of `load` (`spec.load` as JSON) with 1 s intervals.
    fn summary(load: &str, acked: &[u64]) -> SummaryJson {
        let mut lt = LoadTest::example("t", "127.0.0.1:9092", "t");
        lt.spec.load = serde_json::from_str::<LoadSpec>(load).unwrap();
        lt.spec.report.interval = "1s".parse().unwrap();
        summary_with(&ReportContext::for_run(&lt, "r", true), 0, acked)
    }

    fn summary_with(ctx: &ReportContext, first: u32, acked: &[u64]) -> SummaryJson {
        let merged = merge_all(&intervals(first, acked), ctx.merge_options()).unwrap();
        build_report(&merged, ctx).unwrap().report.summary
    }

    /// (loadSecs, spanSecs, targetRecords, targetRate, achievedRate).
    fn figures(s: &SummaryJson) -> (Option<f64>, f64, Option<u64>, Option<f64>, Option<f64>) {
        (
            s.load_secs,
            s.span_secs,
            s.target_records,
            s.target_rate,
            s.achieved_rate,
        )
    }

    #[test]
    fn a_constant_step_reports_its_rate_per_second_of_load_and_the_flushed_span_apart() {
        // The quickstart: 1000/s for 10 s; the last records are acked in the flush interval.
        let mut acked = vec![1_000; 10];
        acked[9] = 990;
        acked.push(10);
        let s = summary(
            r#"{"steps": [{"constant": {"rate": 1000, "for": "10s"}}]}"#,
            &acked,
        );
        assert_eq!(
            figures(&s),
            (Some(10.0), 11.0, Some(10_000), Some(1_000.0), Some(1_000.0))
        );
        assert_eq!(s.achieved_ratio, Some(1.0));
        assert_eq!(s.end_time, rfc3339(1_000_000 + 11_000));
    }

    #[test]
    fn a_paused_span_is_left_out_of_the_load_and_the_target_and_shown() {
        // 1000/s for 10 s, paused from 3 s to 5 s: 8 s of load and 8 000 records asked for.
        let mut lt = LoadTest::example("t", "127.0.0.1:9092", "t");
        lt.spec.load = serde_json::from_str::<LoadSpec>(
            r#"{"steps": [{"constant": {"rate": 1000, "for": "10s"}}]}"#,
        )
        .unwrap();
        lt.spec.report.interval = "1s".parse().unwrap();
        let start = chrono::DateTime::from_timestamp_millis(1_000_000).unwrap();
        let at = |secs: i64| start + chrono::Duration::seconds(secs);
        lt.status = Some(barrage_crds::status::LoadTestStatus {
            start_at: Some(start),
            fleet: Some(barrage_crds::status::FleetAssignment {
                paused_spans: vec![barrage_crds::status::PausedSpan {
                    from: at(3),
                    until: Some(at(5)),
                }],
                ..Default::default()
            }),
            ..Default::default()
        });
        let acked = [1_000, 1_000, 1_000, 0, 0, 1_000, 1_000, 1_000, 1_000, 1_000];
        let s = summary_with(&ReportContext::for_run(&lt, "r", true), 0, &acked);
        assert_eq!(
            figures(&s),
            (Some(8.0), 10.0, Some(8_000), Some(1_000.0), Some(1_000.0))
        );
        assert_eq!(s.achieved_ratio, Some(1.0));
        assert_eq!(s.paused_secs, Some(2.0));
        assert_eq!(
            s.paused
                .iter()
                .map(|p| (p.from_secs, p.until_secs))
                .collect::<Vec<_>>(),
            vec![(3.0, 5.0)]
        );
    }

    #[test]
    fn a_ramp_reports_its_mean_rate_not_its_peak() {
        // 0 → 1000/s over 10 s schedules 5000 records: 500/s on average.
        let s = summary(
            r#"{"steps": [{"ramp": {"from": 0, "to": 1000, "over": "10s"}}]}"#,
            &[500; 10],
        );
        assert_eq!(
            figures(&s),
            (Some(10.0), 10.0, Some(5_000), Some(500.0), Some(500.0))
        );
    }

    #[test]
    fn a_staircase_reports_its_mean_rate_and_what_was_acked_of_it() {
        // Stairs of 100..500/s, 2 s each: 3000 records over 10 s; half of them acked.
        let s = summary(
            r#"{"steps": [{"staircase": {"start": 100, "step": 100, "every": "2s", "until": 500}}]}"#,
            &[150; 11],
        );
        assert_eq!(
            figures(&s),
            (Some(10.0), 11.0, Some(3_000), Some(300.0), Some(165.0))
        );
        assert_eq!(s.achieved_ratio, Some(0.55));
    }

    #[test]
    fn a_window_reports_rates_over_the_load_inside_it() {
        let mut lt = LoadTest::example("t", "127.0.0.1:9092", "t");
        lt.spec.load =
            serde_json::from_str(r#"{"steps": [{"constant": {"rate": 10, "for": "10s"}}]}"#)
                .unwrap();
        lt.spec.report.interval = "1s".parse().unwrap();
        let run = ReportContext::for_run(&lt, "r", true);
        let window = |first: u32, last: u32| ReportContext {
            first_interval: Some(first),
            last_interval: Some(last),
            target_records: None,
            ..run.clone()
        };
        let inside = summary_with(&window(4, 7), 4, &[10; 4]);
        assert_eq!(figures(&inside), (Some(4.0), 4.0, None, None, Some(10.0)));
        assert_eq!(inside.start_time, rfc3339(1_000_000 + 4_000));
        // A window past the load's end: 2 s of load in a 4 s window.
        let past = summary_with(&window(8, 11), 8, &[10, 10, 0, 0]);
        assert_eq!(figures(&past), (Some(2.0), 4.0, None, None, Some(10.0)));
    }

    /// 100/s for 4 s in 1 s intervals, `produce.p99 < 50ms`: interval 0 is slow (74 ms
    /// produce latency, 200 ms schedule lag, as a sender's start-up), the others 7 ms and 1 ms.
    fn slow_start(warmup: Option<&str>) -> super::super::ReportSet {
        let mut lt = LoadTest::example("t", "127.0.0.1:9092", "t");
        lt.spec.load = serde_json::from_str::<LoadSpec>(
            r#"{"steps": [{"constant": {"rate": 100, "for": "4s"}}]}"#,
        )
        .unwrap();
        lt.spec.load.warmup = warmup.map(|w| w.parse().unwrap());
        lt.spec.report.interval = "1s".parse().unwrap();
        lt.spec.thresholds =
            vec![barrage_crds::spec::Threshold::parse("produce.p99 < 50ms").unwrap()];
        let ctx = ReportContext::for_run(&lt, "r", true);
        let blobs: Vec<AgentInterval> = intervals(0, &[100; 4])
            .into_iter()
            .map(|mut i| {
                let (produce, lag) = if i.index == 0 {
                    (74_000, 200_000)
                } else {
                    (7_000, 1_000)
                };
                let (mut p, mut l) = (hlog::new_histogram(), hlog::new_histogram());
                p.record_n(produce, 100).unwrap();
                l.record_n(lag, 100).unwrap();
                i.histograms = BTreeMap::from([(HistogramTag::Produce, p), (HistogramTag::Lag, l)]);
                if let Some(c) = i.counters.as_mut() {
                    c.scheduled = 100;
                }
                i
            })
            .collect();
        let merged = merge_all(&blobs, ctx.merge_options()).unwrap();
        build_report(&merged, &ctx).unwrap()
    }

    #[test]
    fn a_warmup_is_reported_apart_and_left_out_of_the_thresholds_the_lag_check_and_the_percentiles()
    {
        let set = slow_start(Some("1s"));
        let r = &set.report;
        assert_eq!(r.verdict.result, "Passed", "{:?}", r.verdict.reasons);
        let s = &r.summary;
        let w = s.warmup.as_ref().unwrap();
        assert_eq!((w.secs, w.first_interval, w.last_interval), (1.0, 0, 0));
        assert_eq!(w.records.acked, 100);
        assert_eq!(w.latency[&HistogramTag::Produce].p99, 74_047);
        assert_eq!(w.latency[&HistogramTag::Lag].p99, 200_063);
        // Every record counts; the percentiles are the three intervals after the warm-up.
        assert_eq!(s.records.acked, 400);
        assert_eq!(s.achieved_ratio, Some(1.0));
        let p = s.latency[&HistogramTag::Produce];
        assert_eq!((p.count, p.p99), (300, 7_003));
        let observed = r.thresholds[0].run.as_ref().unwrap().observed;
        assert_eq!(observed, Some(7_003.0));
        assert_eq!(set.summary.produce_p99_us, 7_003);
        let marks: Vec<bool> = r.intervals.iter().map(|i| i.warmup).collect();
        assert_eq!(marks, vec![true, false, false, false]);
        assert_eq!(r.agents[0].produce.map(|p| p.count), Some(300));
        // Every output says so.
        assert!(set.json.contains("\"warmup\": {"), "{}", set.json);
        assert!(set.html.contains("warm-up (latency apart)"));
        assert!(set.html.contains("produce (warm-up)"));
        assert!(
            set.junit
                .contains("<property name=\"warmupSecs\" value=\"1\"/>")
        );
        assert!(
            set.hlog
                .contains("#[Barrage-Warmup: intervals 0-0 (1.000 s)")
        );
        assert_eq!(
            set.hlog.matches("Tag=produce,").count(),
            4,
            "every interval's line"
        );
    }

    #[test]
    fn without_a_warmup_the_slow_start_fails_the_threshold_and_invalidates_the_run() {
        let set = slow_start(None);
        let r = &set.report;
        assert_eq!(r.verdict.result, "Invalid", "{:?}", r.verdict.reasons);
        assert!(r.verdict.reasons[0].contains("schedule lag p99"));
        assert!(!r.thresholds[0].passed);
        assert!(r.summary.warmup.is_none());
        assert!(!set.json.contains("\"warmup\": {"));
        assert_eq!(r.summary.latency[&HistogramTag::Produce].count, 400);
    }

    #[test]
    fn without_the_load_profile_there_is_no_rate_rather_than_one_over_the_span() {
        let s = summary_with(&ReportContext::offline(), 0, &[10; 5]);
        assert_eq!(figures(&s), (None, 5.0, None, None, None));
        assert_eq!(s.consumed_rate, None);
    }
}
