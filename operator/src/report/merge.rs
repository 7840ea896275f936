//! Exact merge of agent interval histograms: per interval, per window, per agent and over the
//! whole run, by HdrHistogram addition (percentiles are never averaged).
//!
//! [`Merger`] takes [`AgentInterval`]s in any order. Memory is bounded by what is still open:
//! an interval's histograms are folded into the run, its window and its agents when
//! [`Merger::close_through`] is called (or at [`Merger::finish`]), and only a small
//! [`IntervalSummary`] (statistics and the encoded merged histograms) is kept. Feeding blobs
//! interval by interval and closing each one keeps memory flat however many agents there are.
//!
//! Warm-up ([`MergeOptions::warmup_intervals`]): the intervals before it count in every
//! counter (their records were really sent), but their latency histograms go to
//! [`Merged::warmup`] instead of the run's total, its windows' and its agents': every latency
//! figure of the run (thresholds, summary percentiles, the schedule-lag check) is measured
//! after the warm-up, and the warm-up's own is kept beside it. Each interval keeps its own
//! histograms either way ([`IntervalSummary::warmup`] marks it).
//!
//! Everything that ends up in a report is kept in ordered maps and sorted vectors, so the same
//! blobs in any order give byte-identical output.

use barrage_crds::interval::{ConsumerLag, PartitionTotals};
use barrage_crds::names::HistogramTag;
use std::collections::{BTreeMap, BTreeSet};

use barrage_crds::hlog::{self, HistogramConfig};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::ReportError;
use super::blob::{AgentInterval, IntervalCounters};
use super::counts::IntervalCounts;
use super::window;

/// Count, extremes, mean and percentiles of one histogram with values, in microseconds.
/// An empty histogram has none ([`Stats::of`] is `None`): no figure stands in for one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Values recorded.
    pub count: u64,
    /// Smallest value recorded (0 when a 0 was recorded).
    pub min: u64,
    /// Mean of the recorded values, rounded to 0.001 µs.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Largest value.
    pub max: u64,
}

/// Rounds to three decimals so reports print the same number on every run.
pub fn round3(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1000.0).round() / 1000.0 + 0.0
    } else {
        0.0
    }
}

impl Stats {
    /// The statistics of `h`; `None` when it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<Stats> {
        if h.is_empty() {
            return None;
        }
        // One pass for the quantiles (in ascending order), one for the mean.
        let mut q = h.value_at_quantiles([0.5, 0.9, 0.99, 0.999, 0.9999]);
        let mut next = || q.next().unwrap_or(0);
        let (p50, p90, p99, p999, p9999) = (next(), next(), next(), next(), next());
        Some(Stats {
            count: h.len(),
            min: h.min(),
            mean: round3(h.mean()),
            p50,
            p90,
            p99,
            p999,
            p9999,
            max: h.max(),
        })
    }
}

/// An empty, auto-resizing histogram sharing `config`'s bucket layout, as small as possible.
pub fn empty_histogram(config: HistogramConfig) -> Result<Histogram<u64>, ReportError> {
    let mut h = Histogram::new_with_bounds(
        config.lowest,
        config.lowest.saturating_mul(2).max(2),
        config.sigfig,
    )
    .map_err(|e| ReportError::Invalid(format!("histogram configuration {config}: {e:?}")))?;
    h.auto(true);
    Ok(h)
}

/// The same values in a histogram whose range ends at its own maximum, so that its encoding
/// depends only on its contents (not on merge order) and decoding it allocates only what the
/// values need (an agent's histogram spans an hour: 184 KiB of counters, mostly empty).
pub fn canonical(h: &Histogram<u64>) -> Result<Histogram<u64>, ReportError> {
    let high = h.max().max(h.low().saturating_mul(2));
    let mut c = Histogram::new_with_bounds(h.low(), high, h.sigfig())
        .map_err(|e| ReportError::Invalid(format!("histogram bounds: {e:?}")))?;
    add_into(&mut c, h)?;
    Ok(c)
}

/// Adds `src` into `dst` value by value, walking `src` only up to its maximum (adding whole
/// histograms walks every counter of the source's range, and an agent's histogram spans an
/// hour at three digits). Exact: the two share a bucket layout, which is checked.
pub fn add_into(dst: &mut Histogram<u64>, src: &Histogram<u64>) -> Result<(), ReportError> {
    let expected = hlog::histogram_config_of(dst);
    let found = hlog::histogram_config_of(src);
    if !expected.is_compatible_with(&found) {
        return Err(ReportError::ConfigMismatch {
            what: "a histogram being merged".into(),
            expected,
            found,
        });
    }
    for v in src.iter_recorded() {
        dst.record_n(v.value_iterated_to(), v.count_at_value())
            .map_err(|e| ReportError::Invalid(format!("merging a histogram: {e:?}")))?;
    }
    Ok(())
}

/// Adds `src` into both `a` and `b` in one walk over `src` (see [`add_into`]).
pub fn add_into_both(
    a: &mut Histogram<u64>,
    b: &mut Histogram<u64>,
    src: &Histogram<u64>,
) -> Result<(), ReportError> {
    let found = hlog::histogram_config_of(src);
    for dst in [&*a, &*b] {
        let expected = hlog::histogram_config_of(dst);
        if !expected.is_compatible_with(&found) {
            return Err(ReportError::ConfigMismatch {
                what: "a histogram being merged".into(),
                expected,
                found,
            });
        }
    }
    for v in src.iter_recorded() {
        let (value, count) = (v.value_iterated_to(), v.count_at_value());
        a.record_n(value, count)
            .and_then(|()| b.record_n(value, count))
            .map_err(|e| ReportError::Invalid(format!("merging a histogram: {e:?}")))?;
    }
    Ok(())
}

/// Histograms by tag and counters, added up.
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    /// Histograms by tag.
    pub histograms: BTreeMap<HistogramTag, Histogram<u64>>,
    /// Counters.
    pub counters: IntervalCounters,
    /// The consumer group's lag (records, summed over partitions) at the end of each interval
    /// that sampled one, in interval order.
    pub consumer_lag: Vec<u64>,
}

impl Accumulator {
    fn add_histogram(
        &mut self,
        config: HistogramConfig,
        tag: &HistogramTag,
        h: &Histogram<u64>,
    ) -> Result<(), ReportError> {
        if h.is_empty() {
            return Ok(());
        }
        let dst = match self.histograms.get_mut(tag) {
            Some(d) => d,
            None => self
                .histograms
                .entry(tag.clone())
                .or_insert(empty_histogram(config)?),
        };
        add_into(dst, h)
    }

    /// Adds another accumulator (histograms by addition, counters summed).
    pub fn add(&mut self, config: HistogramConfig, other: &Accumulator) -> Result<(), ReportError> {
        for (tag, h) in &other.histograms {
            self.add_histogram(config, tag, h)?;
        }
        self.counters.add(&other.counters);
        self.consumer_lag.extend_from_slice(&other.consumer_lag);
        Ok(())
    }

    /// The consumer lag at percentile `p` (0–100, nearest rank; 100 is the maximum) over the
    /// intervals' lags; `None` when no interval sampled one.
    pub fn consumer_lag_at(&self, p: f64) -> Option<u64> {
        let mut lags = self.consumer_lag.clone();
        lags.sort_unstable();
        let n = lags.len();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        lags.get(rank.clamp(1, n) - 1).copied()
    }

    /// Adds one closed interval: its counters, and its histograms unless it is part of the
    /// warm-up (whose latency is kept apart, see the [module documentation](self)).
    fn add_interval(
        &mut self,
        config: HistogramConfig,
        interval: &Accumulator,
        warmup: bool,
    ) -> Result<(), ReportError> {
        if warmup {
            self.counters.add(&interval.counters);
            Ok(())
        } else {
            self.add(config, interval)
        }
    }

    /// Statistics by tag (tags whose histogram is empty are left out).
    pub fn stats(&self) -> BTreeMap<HistogramTag, Stats> {
        self.histograms
            .iter()
            .filter_map(|(t, h)| Some((t.clone(), Stats::of(h)?)))
            .collect()
    }
}

/// One merged interval, kept after its histograms are folded away.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalSummary {
    /// Interval index from the run's start.
    pub index: u32,
    /// Earliest start any agent gave for it, epoch milliseconds.
    pub start_ms: u64,
    /// Length, milliseconds.
    pub length_ms: u64,
    /// Agent incarnations that reported it.
    pub agents: u32,
    /// Counters summed over agents.
    pub counters: IntervalCounters,
    /// Statistics of the merged histograms, by tag.
    pub stats: BTreeMap<HistogramTag, Stats>,
    /// The merged histograms, V2-compressed base64 with their max, by tag (for merged.hlog).
    pub encoded: BTreeMap<HistogramTag, String>,
    /// Part of the warm-up: its latency is in [`Merged::warmup`], not in the run's total.
    pub warmup: bool,
    /// The consumer's lag by partition at the interval's end (the highest any agent reported
    /// for a partition); empty when none was sampled.
    pub consumer_lag: ConsumerLag,
}

/// A merged window (soaks): a fixed range of intervals.
#[derive(Debug, Clone)]
pub struct WindowSummary {
    /// Window index.
    pub index: u32,
    /// First interval index (inclusive).
    pub first_interval: u32,
    /// Last interval index (inclusive).
    pub last_interval: u32,
    /// Intervals of the window that had data.
    pub intervals_with_data: u32,
    /// Intervals of the window that are part of the warm-up (counted, latency left out).
    pub warmup_intervals: u32,
    /// Merged histograms (after the warm-up) and counters (all of the window's).
    pub acc: Accumulator,
}

impl WindowSummary {
    /// Every interval of the window is warm-up: it has no latency to judge.
    pub fn is_warmup_only(&self) -> bool {
        self.warmup_intervals > self.last_interval.saturating_sub(self.first_interval)
    }
}

/// One agent incarnation's totals.
#[derive(Debug, Clone)]
pub struct AgentSummary {
    /// Slot.
    pub slot: u32,
    /// Incarnation.
    pub incarnation: u32,
    /// Interval indices reported, sorted.
    pub intervals: Vec<u32>,
    /// Counters over its intervals.
    pub counters: IntervalCounters,
    /// Its produce latency (merged over its intervals after the warm-up); `None` when it
    /// recorded none.
    pub produce: Option<Stats>,
    /// Its schedule lag (after the warm-up); `None` when it recorded none.
    pub lag: Option<Stats>,
}

/// Why some (agent, interval) has no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum GapCause {
    /// Between an incarnation's first and last interval: the blob was never written or lost.
    Missing,
    /// Between one incarnation's last interval and the next one's first: the agent died and was
    /// replaced.
    Replaced {
        /// The incarnation that stopped.
        previous: u32,
        /// The incarnation that took over.
        next: u32,
    },
    /// Before the slot's first interval: the agent joined late.
    NotStarted,
    /// After the slot's last interval: the agent stopped before the run ended.
    Stopped,
    /// The slot never reported anything.
    NoData,
}

impl GapCause {
    /// A gap the report explains (the slot's replacement) rather than a hole in the data.
    pub fn is_explained(&self) -> bool {
        matches!(self, GapCause::Replaced { .. })
    }

    /// A sentence for people.
    pub fn describe(&self) -> String {
        match self {
            GapCause::Missing => {
                "interval blobs missing between the incarnation's first and last".into()
            }
            GapCause::Replaced { previous, next } => {
                format!("agent replaced: incarnation {previous} stopped, {next} took over")
            }
            GapCause::NotStarted => "agent had not started yet".into(),
            GapCause::Stopped => "agent stopped before the run ended".into(),
            GapCause::NoData => "the slot never reported".into(),
        }
    }
}

/// A range of intervals of one slot with no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gap {
    /// Slot.
    pub slot: u32,
    /// The incarnation concerned, when one is (missing blobs, stop).
    pub incarnation: Option<u32>,
    /// First interval without data (inclusive).
    pub from_interval: u32,
    /// Last interval without data (inclusive).
    pub to_interval: u32,
    /// Why.
    pub cause: GapCause,
}

/// What the merger knows beyond the blobs.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// Keep each closed interval's merged histograms encoded, for `merged.hlog` (default on).
    pub encode_intervals: bool,
    /// Intervals per window (soaks); `None` for no windows.
    pub window_intervals: Option<u32>,
    /// Agents the run asked for (slots `0..n`); slots that never reported become gaps.
    pub expected_agents: Option<u32>,
    /// The first interval index the report covers (default 0; a window's first interval).
    pub first_interval: Option<u32>,
    /// The last interval index the run should have (inclusive); defaults to the last one seen.
    pub last_interval: Option<u32>,
    /// Intervals `0..warmup_intervals` are the warm-up (`spec.load.warmup`; default 0, none):
    /// counted, their latency kept in [`Merged::warmup`].
    pub warmup_intervals: u32,
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions {
            encode_intervals: true,
            window_intervals: None,
            expected_agents: None,
            first_interval: None,
            last_interval: None,
            warmup_intervals: 0,
        }
    }
}

/// Everything merged.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The histograms' bucket layout (lowest, sigfig; highest as the standard one).
    pub config: HistogramConfig,
    /// Interval length, milliseconds.
    pub length_ms: u64,
    /// The run's start: the start of interval 0, epoch milliseconds.
    pub run_start_ms: u64,
    /// Intervals with data, by index.
    pub intervals: Vec<IntervalSummary>,
    /// Windows, by index (empty without windows).
    pub windows: Vec<WindowSummary>,
    /// Agent incarnations, by (slot, incarnation).
    pub agents: Vec<AgentSummary>,
    /// Totals over the run: every interval's counters, the histograms of those after the
    /// warm-up.
    pub total: Accumulator,
    /// The warm-up intervals' histograms and counters (empty without a warm-up).
    pub warmup: Accumulator,
    /// Intervals `0..warmup_intervals` are the warm-up.
    pub warmup_intervals: u32,
    /// Intervals without data, by slot and interval.
    pub gaps: Vec<Gap>,
    /// Records acknowledged by partition over the whole run (warm-up included, like the
    /// summary's records).
    pub partitions: PartitionTotals,
    /// Agent interval blobs merged.
    pub blobs: u64,
    /// Inconsistencies found in the data (they make the run invalid).
    pub problems: Vec<String>,
}

impl Merged {
    /// The last interval index of the run (inclusive).
    pub fn last_interval(&self) -> Option<u32> {
        self.intervals.last().map(|i| i.index)
    }
}

/// Counts by position in the counts array of the run's bucket layout, grown as values arrive:
/// adding a blob's counts is one addition per non-zero bucket. Converted to a histogram once,
/// when its interval closes (or, for an agent, at the end).
#[derive(Debug, Default, Clone)]
struct FlatCounts(Vec<u64>);

impl FlatCounts {
    fn add(&mut self, counts: &[(u32, u64)]) {
        for &(i, c) in counts {
            let i = i as usize;
            if i >= self.0.len() {
                // Exactly as long as the largest index: one per agent and tag stays alive for
                // the whole run, so no doubling slack.
                self.0.reserve_exact(i + 1 - self.0.len());
                self.0.resize(i + 1, 0);
            }
            self.0[i] = self.0[i].saturating_add(c);
        }
    }

    fn to_histogram(&self, config: HistogramConfig) -> Result<Histogram<u64>, ReportError> {
        let mut h = empty_histogram(config)?;
        for (i, &c) in self.0.iter().enumerate().filter(|(_, c)| **c > 0) {
            h.record_n(config.value_at_index(i), c)
                .map_err(|e| ReportError::Invalid(format!("merging a histogram: {e:?}")))?;
        }
        Ok(h)
    }
}

#[derive(Debug, Default)]
struct OpenInterval {
    histograms: BTreeMap<HistogramTag, FlatCounts>,
    counters: IntervalCounters,
    consumer_lag: ConsumerLag,
    start_ms: Option<u64>,
    agents: BTreeSet<(u32, u32)>,
}

#[derive(Debug)]
struct AgentAcc {
    intervals: Vec<u32>,
    counters: IntervalCounters,
    produce: Option<FlatCounts>,
    lag: Option<FlatCounts>,
}

/// Merges agent intervals; see the [module documentation](self).
#[derive(Debug, Default)]
pub struct Merger {
    options: MergeOptions,
    config: Option<HistogramConfig>,
    length_ms: Option<u64>,
    run_start_ms: Option<u64>,
    open: BTreeMap<u32, OpenInterval>,
    closed: BTreeMap<u32, IntervalSummary>,
    windows: BTreeMap<u32, (BTreeSet<u32>, Accumulator)>,
    agents: BTreeMap<(u32, u32), AgentAcc>,
    total: Accumulator,
    warmup: Accumulator,
    partitions: PartitionTotals,
    blobs: u64,
    problems: Vec<String>,
}

impl Merger {
    /// A merger with `options`.
    pub fn new(options: MergeOptions) -> Merger {
        Merger {
            options,
            ..Merger::default()
        }
    }

    /// Adds one agent interval. Fails on a histogram configuration or interval length that
    /// differs from the ones seen before, a duplicate, or an interval already closed.
    pub fn add(&mut self, interval: &AgentInterval) -> Result<(), ReportError> {
        self.add_counts(&IntervalCounts::from_interval(interval))
    }

    /// Adds one agent interval decoded as counts (see [`super::counts`]); the same checks and
    /// the same result as [`Merger::add`] of the decoded interval.
    pub fn add_counts(&mut self, interval: &IntervalCounts) -> Result<(), ReportError> {
        let who = || {
            format!(
                "interval {} of agent {}-{}",
                interval.index, interval.slot, interval.incarnation
            )
        };
        for t in interval.tags() {
            let found = t.config;
            match self.config {
                None => {
                    self.config = Some(HistogramConfig {
                        highest: HistogramConfig::STANDARD.highest,
                        ..found
                    })
                }
                Some(expected) if !expected.is_compatible_with(&found) => {
                    return Err(ReportError::ConfigMismatch {
                        what: format!("{}, histogram {}", who(), t.tag),
                        expected,
                        found,
                    });
                }
                Some(_) => {}
            }
        }
        match self.length_ms {
            None => self.length_ms = Some(interval.length_ms),
            Some(l) if l != interval.length_ms => {
                return Err(ReportError::IntervalMismatch {
                    what: who(),
                    expected_ms: l,
                    found_ms: interval.length_ms,
                });
            }
            Some(_) => {}
        }
        if self.closed.contains_key(&interval.index) {
            return Err(ReportError::Invalid(format!(
                "{} arrived after its interval was closed",
                who()
            )));
        }
        let counters = interval.effective_counters();
        let produced = interval.produced();
        if produced != counters.acked {
            self.problems.push(format!(
                "{}: the produce histogram holds {produced} values but {} records were acked",
                who(),
                counters.acked
            ));
        }
        let start = interval
            .start_ms
            .saturating_sub(u64::from(interval.index).saturating_mul(interval.length_ms));
        self.run_start_ms = Some(self.run_start_ms.map_or(start, |s| s.min(start)));

        let open = self.open.entry(interval.index).or_default();
        if !open.agents.insert((interval.slot, interval.incarnation)) {
            return Err(ReportError::Duplicate {
                slot: interval.slot,
                incarnation: interval.incarnation,
                index: interval.index,
            });
        }
        open.start_ms = Some(
            open.start_ms
                .map_or(interval.start_ms, |s| s.min(interval.start_ms)),
        );
        let agent = self
            .agents
            .entry((interval.slot, interval.incarnation))
            .or_insert_with(|| AgentAcc {
                intervals: Vec::new(),
                counters: IntervalCounters::default(),
                produce: None,
                lag: None,
            });
        agent.intervals.push(interval.index);
        agent.counters.add(&counters);
        open.counters.add(&counters);
        for (partition, counts) in &interval.partitions {
            self.partitions.entry(*partition).or_default().add(counts);
        }
        for (partition, lag) in &interval.consumer_lag {
            let highest = open.consumer_lag.entry(*partition).or_default();
            *highest = (*highest).max(*lag);
        }
        // Add each histogram's counts at their indexes, to the interval and (produce, lag, after
        // the warm-up) to the agent: the bucket layouts are the same (checked above), so this
        // is exact.
        let warmup = interval.index < self.options.warmup_intervals;
        for t in interval.tags().iter().filter(|t| t.total > 0) {
            let interval_dst = match open.histograms.get_mut(&t.tag) {
                Some(d) => d,
                None => open.histograms.entry(t.tag.clone()).or_default(),
            };
            interval_dst.add(&t.counts);
            let per_agent = match &t.tag {
                _ if warmup => None,
                HistogramTag::Produce => Some(&mut agent.produce),
                HistogramTag::Lag => Some(&mut agent.lag),
                _ => None,
            };
            if let Some(slot) = per_agent {
                slot.get_or_insert_with(FlatCounts::default).add(&t.counts);
            }
        }
        self.blobs += 1;
        Ok(())
    }

    /// Folds every open interval with an index ≤ `index` into the run, its window and the
    /// interval summaries, freeing its histograms. Blobs for closed intervals are refused.
    pub fn close_through(&mut self, index: u32) -> Result<(), ReportError> {
        let config = self.config.unwrap_or(HistogramConfig::STANDARD);
        let length_ms = self.length_ms.unwrap_or(0);
        let keep = self.open.split_off(&index.saturating_add(1));
        let done = std::mem::replace(&mut self.open, keep);
        for (i, open) in done {
            let group_lag = (!open.consumer_lag.is_empty()).then(|| {
                open.consumer_lag
                    .values()
                    .fold(0u64, |t, l| t.saturating_add(*l))
            });
            let mut acc = Accumulator {
                histograms: BTreeMap::new(),
                counters: open.counters,
                consumer_lag: group_lag.into_iter().collect(),
            };
            for (tag, flat) in open.histograms {
                acc.histograms.insert(tag, flat.to_histogram(config)?);
            }
            let open_acc = acc;
            let warmup = i < self.options.warmup_intervals;
            if warmup {
                self.warmup.add(config, &open_acc)?;
            }
            self.total.add_interval(config, &open_acc, warmup)?;
            // Intervals past the run's planned end (an agent's last, drained interval) count in
            // the run and the series, but start no window of their own: a window is a span of
            // the planned run.
            let planned = self.options.last_interval.is_none_or(|last| i <= last);
            if let Some(k) = self.options.window_intervals.filter(|k| *k > 0 && planned) {
                let w = self.windows.entry(window::window_of(i, k)).or_default();
                w.0.insert(i);
                w.1.add_interval(config, &open_acc, warmup)?;
            }
            let mut encoded = BTreeMap::new();
            for (tag, h) in open_acc
                .histograms
                .iter()
                .filter(|_| self.options.encode_intervals)
            {
                let c = canonical(h)?;
                let b64 = hlog::encode_v2_compressed(&c).map_err(|source| ReportError::Hlog {
                    what: format!("encoding interval {i} {tag}"),
                    source,
                })?;
                encoded.insert(tag.clone(), b64);
            }
            self.closed.insert(
                i,
                IntervalSummary {
                    index: i,
                    start_ms: open.start_ms.unwrap_or(0),
                    length_ms,
                    agents: u32::try_from(open.agents.len()).unwrap_or(u32::MAX),
                    stats: open_acc.stats(),
                    counters: open_acc.counters,
                    encoded,
                    warmup,
                    consumer_lag: open.consumer_lag,
                },
            );
        }
        Ok(())
    }

    /// Closes everything and returns the merge. Fails if nothing was added.
    pub fn finish(mut self) -> Result<Merged, ReportError> {
        self.close_through(u32::MAX)?;
        let length_ms = self
            .length_ms
            .ok_or_else(|| ReportError::Empty("no agent intervals to merge".into()))?;
        let config = self.config.unwrap_or(HistogramConfig::STANDARD);
        let seen_last = self.closed.keys().next_back().copied().unwrap_or(0);
        // The planned intervals (or the ones seen, when no plan is known).
        let planned_last = self.options.last_interval.unwrap_or(seen_last);

        let mut agents = Vec::with_capacity(self.agents.len());
        for ((slot, incarnation), mut a) in std::mem::take(&mut self.agents) {
            a.intervals.sort_unstable();
            agents.push(AgentSummary {
                slot,
                incarnation,
                intervals: a.intervals,
                counters: a.counters,
                produce: agent_stats(a.produce.as_ref(), config)?,
                lag: agent_stats(a.lag.as_ref(), config)?,
            });
        }
        let first = self.options.first_interval.unwrap_or(0);
        // Gaps are looked for over the planned intervals: an agent that wrote nothing past the
        // planned end is not missing anything.
        let gaps = find_gaps(&agents, first, planned_last, self.options.expected_agents);

        // Windows hold the planned intervals only (see `close_through`), so none ends past them.
        let warmup_end = self.options.warmup_intervals;
        let windows = match self.options.window_intervals.filter(|k| *k > 0) {
            Some(k) => self
                .windows
                .into_iter()
                .map(|(w, (with_data, acc))| {
                    let r = window::window_range(w, k);
                    let last_interval = r.end.saturating_sub(1).min(planned_last);
                    WindowSummary {
                        index: w,
                        first_interval: r.start,
                        last_interval,
                        intervals_with_data: u32::try_from(with_data.len()).unwrap_or(u32::MAX),
                        warmup_intervals: warmup_end
                            .min(last_interval.saturating_add(1))
                            .saturating_sub(r.start),
                        acc,
                    }
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(Merged {
            config,
            length_ms,
            run_start_ms: self.run_start_ms.unwrap_or(0),
            intervals: self.closed.into_values().collect(),
            windows,
            agents,
            total: self.total,
            warmup: self.warmup,
            warmup_intervals: warmup_end,
            gaps,
            partitions: std::mem::take(&mut self.partitions),
            blobs: self.blobs,
            problems: self.problems,
        })
    }
}

/// The statistics of an agent's counts, if it recorded any.
fn agent_stats(
    counts: Option<&FlatCounts>,
    config: HistogramConfig,
) -> Result<Option<Stats>, ReportError> {
    Ok(match counts {
        Some(f) => Stats::of(&f.to_histogram(config)?),
        None => None,
    })
}

/// Merges a set of intervals in one go.
pub fn merge_all<'a>(
    intervals: impl IntoIterator<Item = &'a AgentInterval>,
    options: MergeOptions,
) -> Result<Merged, ReportError> {
    let mut m = Merger::new(options);
    for i in intervals {
        m.add(i)?;
    }
    m.finish()
}

/// Every (slot, interval) in `first..=last` without data, in contiguous ranges with their cause.
pub fn find_gaps(
    agents: &[AgentSummary],
    first: u32,
    last: u32,
    expected_agents: Option<u32>,
) -> Vec<Gap> {
    let mut by_slot: BTreeMap<u32, Vec<&AgentSummary>> = BTreeMap::new();
    for a in agents {
        by_slot.entry(a.slot).or_default().push(a);
    }
    let mut gaps = Vec::new();
    if let Some(n) = expected_agents {
        for slot in 0..n {
            if !by_slot.contains_key(&slot) {
                gaps.push(Gap {
                    slot,
                    incarnation: None,
                    from_interval: first,
                    to_interval: last,
                    cause: GapCause::NoData,
                });
            }
        }
    }
    for (slot, incs) in by_slot {
        // (index, incarnation) of every interval with data, sorted by index.
        let mut covered: Vec<(u32, u32)> = incs
            .iter()
            .flat_map(|a| a.intervals.iter().map(move |i| (*i, a.incarnation)))
            .collect();
        covered.sort_unstable();
        covered.dedup_by_key(|(i, _)| *i);
        let first_seen = covered.first().map_or(first, |c| c.0);
        if first_seen > first {
            gaps.push(Gap {
                slot,
                incarnation: covered.first().map(|c| c.1),
                from_interval: first,
                to_interval: first_seen - 1,
                cause: GapCause::NotStarted,
            });
        }
        for pair in covered.windows(2) {
            let ((a, inc_a), (b, inc_b)) = (pair[0], pair[1]);
            if b > a + 1 {
                let cause = if inc_a == inc_b {
                    GapCause::Missing
                } else {
                    GapCause::Replaced {
                        previous: inc_a,
                        next: inc_b,
                    }
                };
                gaps.push(Gap {
                    slot,
                    incarnation: (inc_a == inc_b).then_some(inc_a),
                    from_interval: a + 1,
                    to_interval: b - 1,
                    cause,
                });
            }
        }
        if let Some(&(end, inc)) = covered.last()
            && end < last
        {
            gaps.push(Gap {
                slot,
                incarnation: Some(inc),
                from_interval: end + 1,
                to_interval: last,
                cause: GapCause::Stopped,
            });
        }
    }
    gaps.sort_by_key(|g| (g.slot, g.from_interval, g.to_interval));
    gaps
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn interval(slot: u32, inc: u32, index: u32, values: &[u64]) -> AgentInterval {
        let mut h = hlog::new_histogram();
        for v in values {
            h.record(*v).unwrap();
        }
        AgentInterval {
            slot,
            incarnation: inc,
            index,
            start_ms: 1_000_000 + u64::from(index) * 10_000,
            length_ms: 10_000,
            histograms: BTreeMap::from([(HistogramTag::Produce, h)]),
            counters: Some(IntervalCounters {
                sent: values.len() as u64,
                acked: values.len() as u64,
                ..IntervalCounters::default()
            }),
            consumer_lag: Default::default(),
            partitions: Default::default(),
        }
    }

    fn lagging(slot: u32, index: u32, lag: &[(u32, u64)]) -> AgentInterval {
        AgentInterval {
            consumer_lag: lag.iter().copied().collect(),
            ..interval(slot, 0, index, &[])
        }
    }

    #[test]
    fn records_per_partition_add_up_over_agents_and_intervals() {
        let counts = |records, bytes| barrage_crds::interval::PartitionCounts { records, bytes };
        let with = |slot, index, parts: &[(u32, u64)]| AgentInterval {
            partitions: parts
                .iter()
                .map(|(p, n)| (*p, counts(*n, *n * 10)))
                .collect(),
            ..interval(slot, 0, index, &[])
        };
        let m = merge_all(
            &[
                with(0, 0, &[(0, 5), (1, 2)]),
                with(1, 0, &[(1, 3)]),
                with(0, 1, &[(2, 1)]),
            ],
            MergeOptions::default(),
        )
        .unwrap();
        assert_eq!(
            m.partitions,
            PartitionTotals::from([(0, counts(5, 50)), (1, counts(5, 50)), (2, counts(1, 10))])
        );
    }

    #[test]
    fn the_group_lag_sums_partitions_taking_the_higher_report_of_one() {
        // Interval 0 is the warm-up; in interval 1 both agents report partition 1 (a
        // rebalance): the higher lag counts. Interval 2 sampled nothing.
        let blobs = [
            lagging(0, 0, &[(0, 900)]),
            lagging(0, 1, &[(0, 50), (1, 7)]),
            lagging(1, 1, &[(1, 30), (2, 5)]),
            lagging(0, 2, &[]),
            lagging(0, 3, &[(0, 0), (1, 2)]),
        ];
        let options = MergeOptions {
            warmup_intervals: 1,
            window_intervals: Some(2),
            ..MergeOptions::default()
        };
        let m = merge_all(&blobs, options).unwrap();
        assert_eq!(
            m.intervals[1].consumer_lag,
            ConsumerLag::from([(0, 50), (1, 30), (2, 5)])
        );
        assert!(m.intervals[2].consumer_lag.is_empty());
        assert_eq!(
            m.total.consumer_lag,
            vec![85, 2],
            "the warm-up's 900 is apart"
        );
        assert_eq!(m.warmup.consumer_lag, vec![900]);
        assert_eq!(m.total.consumer_lag_at(100.0), Some(85));
        assert_eq!(m.windows[0].acc.consumer_lag, vec![85]);
        assert_eq!(m.windows[1].acc.consumer_lag, vec![2]);
    }

    #[test]
    fn merged_percentiles_come_from_added_histograms_not_averaged_ones() {
        // Agent 0 is fast, agent 1 slow: the average of their p99s is far from the true p99.
        let fast = interval(0, 0, 0, &[100; 99]);
        let slow = interval(1, 0, 0, &[10_000; 1]);
        let m = merge_all([&fast, &slow], MergeOptions::default()).unwrap();
        let s = m.total.stats()[&HistogramTag::Produce];
        assert_eq!(s.count, 100);
        assert_eq!(s.p99, 100);
        assert_eq!(s.max, 10_007);
        assert_eq!(m.intervals[0].agents, 2);
    }

    #[test]
    fn every_merged_histogram_has_its_own_mean_min_and_max() {
        // Agent 0 records 100 and 300 in interval 0, agent 1 records 0 and 1000 in interval 1.
        let a = interval(0, 0, 0, &[100, 300]);
        let b = interval(1, 0, 1, &[0, 1_000]);
        let m = merge_all([&a, &b], MergeOptions::default()).unwrap();
        let figures = |s: &Stats| (s.count, s.min, s.mean, s.max);
        let interval_0 = &m.intervals[0].stats[&HistogramTag::Produce];
        let interval_1 = &m.intervals[1].stats[&HistogramTag::Produce];
        assert_eq!(figures(interval_0), (2, 100, 200.0, 300));
        assert_eq!(figures(interval_1), (2, 0, 500.0, 1_000));
        let agent_1 = m.agents[1].produce.as_ref().unwrap();
        assert_eq!(figures(agent_1), (2, 0, 500.0, 1_000));
        let total = &m.total.stats()[&HistogramTag::Produce];
        assert_eq!(figures(total), (4, 0, 350.0, 1_000));
    }

    #[test]
    fn a_histogram_an_agent_never_recorded_has_no_statistics() {
        let m = merge_all([&interval(0, 0, 0, &[5])], MergeOptions::default()).unwrap();
        assert!(m.agents[0].produce.is_some());
        assert_eq!(m.agents[0].lag, None);
        assert_eq!(Stats::of(&hlog::new_histogram()), None);
    }

    #[test]
    fn gaps_name_their_cause() {
        let blobs = [
            interval(0, 0, 0, &[1]),
            interval(0, 0, 2, &[1]),
            interval(0, 1, 5, &[1]),
            interval(1, 0, 1, &[1]),
        ];
        let m = merge_all(
            &blobs,
            MergeOptions {
                expected_agents: Some(3),
                last_interval: Some(6),
                ..MergeOptions::default()
            },
        )
        .unwrap();
        let causes: Vec<_> = m
            .gaps
            .iter()
            .map(|g| (g.slot, g.from_interval, g.to_interval, g.cause))
            .collect();
        assert_eq!(
            causes,
            vec![
                (0, 1, 1, GapCause::Missing),
                (
                    0,
                    3,
                    4,
                    GapCause::Replaced {
                        previous: 0,
                        next: 1
                    }
                ),
                (0, 6, 6, GapCause::Stopped),
                (1, 0, 0, GapCause::NotStarted),
                (1, 2, 6, GapCause::Stopped),
                (2, 0, 6, GapCause::NoData),
            ]
        );
    }

    #[test]
    fn a_duplicate_interval_is_an_error() {
        let a = interval(0, 0, 0, &[1]);
        let err = merge_all([&a, &a], MergeOptions::default()).unwrap_err();
        assert!(matches!(err, ReportError::Duplicate { .. }), "{err}");
    }

    #[test]
    fn mismatched_histogram_configurations_are_an_error() {
        let a = interval(0, 0, 0, &[1]);
        let mut b = interval(1, 0, 0, &[1]);
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 2).unwrap();
        h.record(5).unwrap();
        b.histograms.insert(HistogramTag::Produce, h);
        let err = merge_all([&a, &b], MergeOptions::default()).unwrap_err();
        assert!(matches!(err, ReportError::ConfigMismatch { .. }), "{err}");
    }

    #[test]
    fn mismatched_interval_lengths_are_an_error() {
        let a = interval(0, 0, 0, &[1]);
        let mut b = interval(1, 0, 0, &[1]);
        b.length_ms = 5_000;
        let err = merge_all([&a, &b], MergeOptions::default()).unwrap_err();
        assert!(matches!(err, ReportError::IntervalMismatch { .. }), "{err}");
    }

    #[test]
    fn acked_that_disagrees_with_the_histogram_is_a_problem() {
        let mut a = interval(0, 0, 0, &[1, 2]);
        a.counters.as_mut().unwrap().acked = 3;
        let m = merge_all([&a], MergeOptions::default()).unwrap();
        assert_eq!(m.problems.len(), 1, "{:?}", m.problems);
    }

    #[test]
    fn an_interval_past_the_planned_end_counts_but_opens_no_window_and_no_gap() {
        // Two agents, intervals 0..4 planned; agent 0 also wrote a drained interval 4.
        let mut blobs = Vec::new();
        for slot in 0..2 {
            for i in 0..4 {
                blobs.push(interval(slot, 0, i, &[10, 20]));
            }
        }
        blobs.push(interval(0, 0, 4, &[30]));
        let m = merge_all(
            &blobs,
            MergeOptions {
                window_intervals: Some(2),
                expected_agents: Some(2),
                last_interval: Some(3),
                ..MergeOptions::default()
            },
        )
        .unwrap();
        assert_eq!(m.total.counters.acked, 17);
        assert_eq!(m.intervals.len(), 5);
        let windows: Vec<_> = m
            .windows
            .iter()
            .map(|w| (w.index, w.acc.counters.acked))
            .collect();
        assert_eq!(windows, vec![(0, 8), (1, 8)]);
        assert_eq!(m.gaps, vec![]);
    }

    #[test]
    fn a_window_cut_by_the_planned_end_names_the_last_interval_it_holds() {
        // Intervals 0..=2 planned, 0..=3 written (3 is the drained one); windows of 2.
        let blobs: Vec<_> = (0..4).map(|i| interval(0, 0, i, &[10])).collect();
        let m = merge_all(
            &blobs,
            MergeOptions {
                window_intervals: Some(2),
                last_interval: Some(2),
                ..MergeOptions::default()
            },
        )
        .unwrap();
        let windows: Vec<_> = m
            .windows
            .iter()
            .map(|w| (w.first_interval, w.last_interval, w.acc.counters.acked))
            .collect();
        assert_eq!(windows, vec![(0, 1, 2), (2, 2, 1)]);
    }

    /// Two agents, intervals 0..4 of 10 records each; interval 0's latency is 74 ms, the
    /// others' 7 ms (the quickstart's first second and the rest).
    fn slow_first_interval() -> Vec<AgentInterval> {
        let mut blobs = Vec::new();
        for slot in 0..2 {
            for i in 0..4 {
                let latency = if i == 0 { 74_000 } else { 7_000 };
                blobs.push(interval(slot, 0, i, &[latency; 5]));
            }
        }
        blobs
    }

    fn with_warmup(warmup_intervals: u32, window_intervals: Option<u32>) -> MergeOptions {
        MergeOptions {
            warmup_intervals,
            window_intervals,
            ..MergeOptions::default()
        }
    }

    #[test]
    fn warmup_latency_is_kept_apart_while_its_records_still_count() {
        let m = merge_all(&slow_first_interval(), with_warmup(1, None)).unwrap();
        let run = m.total.stats()[&HistogramTag::Produce];
        assert_eq!((run.count, run.max), (30, 7_003));
        let warmup = m.warmup.stats()[&HistogramTag::Produce];
        assert_eq!((warmup.count, warmup.min), (10, 73_984));
        assert_eq!((m.total.counters.acked, m.warmup.counters.acked), (40, 10));
        // Each interval keeps its own histograms; the warm-up's is marked.
        let marks: Vec<_> = m.intervals.iter().map(|i| (i.index, i.warmup)).collect();
        assert_eq!(marks, vec![(0, true), (1, false), (2, false), (3, false)]);
        assert_eq!(m.intervals[0].stats[&HistogramTag::Produce].count, 10);
        // An agent's latency is measured after the warm-up too; its records are all counted.
        let agent = &m.agents[0];
        assert_eq!(agent.produce.map(|p| (p.count, p.max)), Some((15, 7_003)));
        assert_eq!(agent.counters.acked, 20);
    }

    #[test]
    fn without_a_warmup_the_first_interval_is_in_the_run() {
        let m = merge_all(&slow_first_interval(), MergeOptions::default()).unwrap();
        assert_eq!(m.total.stats()[&HistogramTag::Produce].count, 40);
        assert!(m.warmup.histograms.is_empty());
        assert!(m.intervals.iter().all(|i| !i.warmup));
    }

    #[test]
    fn a_window_counts_its_warmup_records_but_not_their_latency() {
        let m = merge_all(&slow_first_interval(), with_warmup(1, Some(2))).unwrap();
        let windows: Vec<_> = m
            .windows
            .iter()
            .map(|w| {
                let p = w.acc.stats()[&HistogramTag::Produce];
                (
                    w.index,
                    w.warmup_intervals,
                    w.acc.counters.acked,
                    p.count,
                    p.max,
                )
            })
            .collect();
        assert_eq!(windows, vec![(0, 1, 20, 10, 7_003), (1, 0, 20, 20, 7_003)]);
        assert!(!m.windows[0].is_warmup_only());
        let all_warmup = merge_all(&slow_first_interval(), with_warmup(2, Some(2))).unwrap();
        assert!(all_warmup.windows[0].is_warmup_only());
        assert!(all_warmup.windows[0].acc.histograms.is_empty());
        assert!(!all_warmup.windows[1].is_warmup_only());
    }

    #[test]
    fn closed_intervals_refuse_late_blobs_and_windows_add_up() {
        let mut m = Merger::new(MergeOptions {
            window_intervals: Some(2),
            ..MergeOptions::default()
        });
        for i in 0..5 {
            m.add(&interval(0, 0, i, &[10, 20])).unwrap();
            m.close_through(i).unwrap();
        }
        assert!(m.add(&interval(1, 0, 3, &[1])).is_err());
        let merged = m.finish().unwrap();
        let counts: Vec<_> = merged
            .windows
            .iter()
            .map(|w| {
                (
                    w.index,
                    w.first_interval,
                    w.last_interval,
                    w.acc.counters.acked,
                )
            })
            .collect();
        assert_eq!(counts, vec![(0, 0, 1, 4), (1, 2, 3, 4), (2, 4, 4, 2)]);
    }
}
