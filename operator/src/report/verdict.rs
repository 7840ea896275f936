//! Verdicts: thresholds evaluated over the whole run and per window, with the observed value
//! beside each, and the checks that make a run `Invalid` (the generator was the bottleneck) or
//! `Incomplete` (data is missing).
//!
//! Precedence when several apply: `Invalid` > `Failed` > `Incomplete` > `Passed`; every
//! reason is listed whatever the result.
//!
//! With a warm-up, every threshold is judged over what came after it: latency over the
//! histograms the merge keeps ([`Merged::total`]), counts and ratios over the counters of the
//! intervals after it, a rate against the records the load asked for after it. The schedule-lag
//! check is judged after it too; the queue-full and sent checks over every record. A window that
//! is all warm-up has no latency check, and its counts are nothing to judge.

use barrage_crds::names::HistogramTag;
use std::ops::RangeInclusive;

use barrage_crds::interval::IntervalCounters;
use barrage_crds::spec::{Metric, MetricKind, Threshold, ThresholdScope};
use barrage_crds::status::{Verdict, VerdictResult};
use serde::Serialize;

use super::drain::RunFigures;
use super::merge::{Accumulator, Merged};

/// Bounds past which the load generator, not the system under test, was the bottleneck.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidityBounds {
    /// Largest acceptable schedule-lag p99, microseconds (default 50 ms).
    pub max_lag_p99_us: u64,
    /// Largest acceptable share of sends that met a full client queue (default 1 %).
    pub max_queue_full_ratio: f64,
    /// Smallest acceptable sent / target ratio (default 0.95).
    pub min_sent_ratio: f64,
}

impl Default for ValidityBounds {
    fn default() -> Self {
        ValidityBounds {
            max_lag_p99_us: 50_000,
            max_queue_full_ratio: 0.01,
            min_sent_ratio: 0.95,
        }
    }
}

/// The observed value of `metric` over `acc`'s histograms and consumer lags and over
/// `counters`, in the metric's unit (µs, fraction, count); `None` when it was not measured (no
/// such histogram, no lag sampled, or no target for a rate).
pub fn observe(
    metric: Metric,
    acc: &Accumulator,
    c: &IntervalCounters,
    target: Option<u64>,
) -> Option<f64> {
    match metric.kind() {
        MetricKind::Latency => {
            let tag = metric.histogram_tag()?;
            let h = acc.histograms.get(&tag).filter(|h| !h.is_empty())?;
            let p = metric.percentile()?;
            Some(if p >= 100.0 {
                h.max() as f64
            } else {
                h.value_at_quantile(p / 100.0) as f64
            })
        }
        MetricKind::Ratio => match metric {
            Metric::ErrorsRatio => {
                let denominator = c.sent.max(c.acked.saturating_add(c.errors));
                Some(if denominator == 0 {
                    0.0
                } else {
                    c.errors as f64 / denominator as f64
                })
            }
            Metric::RateAchievedRatio => {
                let t = target.filter(|t| *t > 0)?;
                Some(c.acked as f64 / t as f64)
            }
            _ => None,
        },
        MetricKind::Count => match metric {
            Metric::ErrorsCount => Some(c.errors as f64),
            Metric::RecordsLost => Some(c.lost as f64),
            Metric::RecordsDuplicated => Some(c.duplicated as f64),
            Metric::ConsumerLagMax | Metric::ConsumerLagP99 => {
                Some(acc.consumer_lag_at(metric.percentile()?)? as f64)
            }
            _ => None,
        },
        // Figures of the whole run: see [`RunFigures`].
        MetricKind::Number => None,
    }
}

/// A value in a metric's unit, for people: `812µs`, `12.3ms`, `1.52s`, `0.12%`, `42`.
pub fn format_value(kind: MetricKind, value: f64) -> String {
    match kind {
        MetricKind::Latency => format_micros(value),
        MetricKind::Ratio => format!("{:.4} ({:.2}%)", value, value * 100.0),
        MetricKind::Count => format!("{value:.0}"),
        MetricKind::Number => {
            let text = format!("{value:.3}");
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }
}

/// Microseconds for people.
pub fn format_micros(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0}µs")
    } else if us < 1_000_000.0 {
        format!("{:.3}ms", us / 1_000.0)
    } else {
        format!("{:.3}s", us / 1_000_000.0)
    }
}

/// One evaluation of a threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// `run`, or `window N`.
    pub scope: String,
    /// Window index, for window checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
    /// Observed value in the metric's unit; `None` if not measured.
    pub observed: Option<f64>,
    /// Observed value for people.
    pub observed_display: String,
    /// Whether it held (a metric that was not measured does not hold).
    pub passed: bool,
}

/// A threshold with every evaluation of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdResult {
    /// As written, e.g. `produce.p99 < 50ms`.
    pub threshold: String,
    /// Metric name.
    pub metric: String,
    /// Comparison.
    pub op: String,
    /// Limit as written.
    pub limit: String,
    /// Limit in the metric's unit (µs, fraction, count).
    pub limit_value: f64,
    /// `run`, `window` or `both`.
    pub scope: String,
    /// The evaluation over the whole run, if in scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<Check>,
    /// Evaluations per window, if in scope and the run has windows.
    pub windows: Vec<Check>,
    /// Whether every evaluation held.
    pub passed: bool,
}

impl ThresholdResult {
    /// The first failed check, for messages.
    pub fn first_failure(&self) -> Option<&Check> {
        self.run
            .iter()
            .chain(self.windows.iter())
            .find(|c| !c.passed)
    }
}

/// Counters of the intervals in `range` that came after the warm-up.
pub fn counters_after_warmup(merged: &Merged, range: RangeInclusive<u32>) -> IntervalCounters {
    let mut c = IntervalCounters::default();
    for i in merged
        .intervals
        .iter()
        .filter(|i| !i.warmup && range.contains(&i.index))
    {
        c.add(&i.counters);
    }
    c
}

/// What a check looks at: the intervals' histograms and counters, and (for the run's own
/// check) the figures of the whole run.
struct Scope<'a> {
    acc: &'a Accumulator,
    counters: &'a IntervalCounters,
    target: Option<u64>,
    run: Option<&'a RunFigures>,
}

fn check(t: &Threshold, scope: String, window: Option<u32>, over: &Scope<'_>) -> Check {
    let observed = match (t.metric, over.run) {
        (Metric::DrainSeconds, Some(run)) => run.drain_seconds,
        (Metric::ConsumeRate, Some(run)) => run.consume_rate,
        (metric, _) => observe(metric, over.acc, over.counters, over.target),
    }
    .map(super::merge::round3);
    let passed = observed.is_some_and(|o| t.holds(o));
    Check {
        scope,
        window,
        observed,
        observed_display: observed.map_or_else(
            || "not measured".to_string(),
            |o| format_value(t.metric.kind(), o),
        ),
        passed,
    }
}

/// Evaluates `thresholds` over the run after its warm-up (with `target` records asked for after
/// the warm-up, if known) and over every window of `merged` (each window's target is what its
/// agents scheduled after the warm-up).
///
/// A window-scoped threshold of a run without windows is evaluated over the whole run. A window
/// that is all warm-up is not evaluated.
pub fn evaluate_thresholds(
    thresholds: &[Threshold],
    merged: &Merged,
    target: Option<u64>,
) -> Vec<ThresholdResult> {
    evaluate_thresholds_with(thresholds, merged, target, &RunFigures::default())
}

/// [`evaluate_thresholds`] with the figures of the whole run (`drain.seconds`,
/// `consume.rate`), which are judged over the run only.
pub fn evaluate_thresholds_with(
    thresholds: &[Threshold],
    merged: &Merged,
    target: Option<u64>,
    figures: &RunFigures,
) -> Vec<ThresholdResult> {
    let run_counters = if merged.warmup_intervals == 0 {
        merged.total.counters.clone()
    } else {
        counters_after_warmup(merged, 0..=u32::MAX)
    };
    let window_counters: Vec<IntervalCounters> = merged
        .windows
        .iter()
        .map(|w| counters_after_warmup(merged, w.first_interval..=w.last_interval))
        .collect();
    thresholds
        .iter()
        .map(|t| {
            let has_windows = !merged.windows.is_empty() && !t.metric.is_run_only();
            let run_scope = t.scope != ThresholdScope::Window || !has_windows;
            let window_scope = t.scope != ThresholdScope::Run && has_windows;
            let run = run_scope.then(|| {
                let over = Scope {
                    acc: &merged.total,
                    counters: &run_counters,
                    target,
                    run: Some(figures),
                };
                check(t, "run".to_string(), None, &over)
            });
            let windows: Vec<Check> = if window_scope {
                merged
                    .windows
                    .iter()
                    .zip(&window_counters)
                    .filter(|(w, _)| !w.is_warmup_only())
                    .map(|(w, counters)| {
                        let scheduled = counters.scheduled;
                        let over = Scope {
                            acc: &w.acc,
                            counters,
                            target: (scheduled > 0).then_some(scheduled),
                            run: None,
                        };
                        check(t, format!("window {}", w.index), Some(w.index), &over)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let passed = run.as_ref().is_none_or(|c| c.passed) && windows.iter().all(|c| c.passed);
            ThresholdResult {
                threshold: format!("{} {} {}", t.metric, t.op.as_str(), t.value.raw()),
                metric: t.metric.as_str().to_string(),
                op: t.op.as_str().to_string(),
                limit: t.value.raw().to_string(),
                limit_value: t.value.value(),
                scope: match t.scope {
                    ThresholdScope::Run => "run",
                    ThresholdScope::Window => "window",
                    ThresholdScope::Both => "both",
                }
                .to_string(),
                run,
                windows,
                passed,
            }
        })
        .collect()
}

/// Why the measurement cannot be trusted: the generator itself was the bottleneck, or the data
/// is inconsistent. The schedule lag is judged after the warm-up (connection and topic
/// set-up are where a sender lags; the report shows the warm-up's lag apart), the queue-full
/// and sent ratios over every record.
pub fn invalid_reasons(
    merged: &Merged,
    target: Option<u64>,
    bounds: &ValidityBounds,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let c = &merged.total.counters;
    if let Some(lag) = merged
        .total
        .histograms
        .get(&HistogramTag::Lag)
        .filter(|h| !h.is_empty())
    {
        let p99 = lag.value_at_quantile(0.99);
        if p99 > bounds.max_lag_p99_us {
            reasons.push(format!(
                "generator saturated: schedule lag p99 {} is over the {} bound",
                format_micros(p99 as f64),
                format_micros(bounds.max_lag_p99_us as f64)
            ));
        }
    }
    if c.sent > 0 {
        let ratio = c.queue_full as f64 / c.sent as f64;
        if ratio > bounds.max_queue_full_ratio {
            reasons.push(format!(
                "generator saturated: the client queue was full {} times for {} records sent ({:.2}%, bound {:.2}%)",
                c.queue_full,
                c.sent,
                ratio * 100.0,
                bounds.max_queue_full_ratio * 100.0
            ));
        }
    }
    if let Some(t) = target.filter(|t| *t > 0) {
        let ratio = c.sent as f64 / t as f64;
        if ratio < bounds.min_sent_ratio {
            reasons.push(format!(
                "generator fell behind: sent {} of {} scheduled records ({:.2}%, bound {:.2}%)",
                c.sent,
                t,
                ratio * 100.0,
                bounds.min_sent_ratio * 100.0
            ));
        }
    }
    for p in &merged.problems {
        reasons.push(format!("inconsistent data: {p}"));
    }
    reasons
}

/// Why the report does not cover the whole run.
pub fn incomplete_reasons(merged: &Merged, complete: bool) -> Vec<String> {
    let mut reasons = Vec::new();
    if !complete {
        reasons.push("the run did not complete: this report covers part of it".to_string());
    }
    for g in merged.gaps.iter().filter(|g| !g.cause.is_explained()) {
        reasons.push(format!(
            "no data from agent {} for intervals {}–{}: {}",
            g.slot,
            g.from_interval,
            g.to_interval,
            g.cause.describe()
        ));
    }
    reasons
}

/// One reason per range of intervals an agent never delivered, with its records.
pub fn undelivered_reasons(
    undelivered: &[(u32, u32, barrage_crds::agent_status::UndeliveredIntervals)],
) -> Vec<String> {
    undelivered
        .iter()
        .map(|(slot, incarnation, u)| {
            format!(
                "agent {slot} (incarnation {incarnation}) never delivered intervals {}–{}: {} records are missing from this report",
                u.from_interval, u.to_interval, u.records
            )
        })
        .collect()
}

/// The verdict from threshold results and the validity and completeness checks.
pub fn verdict(results: &[ThresholdResult], invalid: &[String], incomplete: &[String]) -> Verdict {
    let mut reasons: Vec<String> = invalid.to_vec();
    for r in results {
        if let Some(f) = r.first_failure() {
            let failed = r
                .run
                .iter()
                .chain(r.windows.iter())
                .filter(|c| !c.passed)
                .count();
            let more = if failed > 1 {
                format!(" ({failed} evaluations failed)")
            } else {
                String::new()
            };
            reasons.push(format!(
                "{}: observed {} over the {}{more}",
                r.threshold, f.observed_display, f.scope
            ));
        }
    }
    reasons.extend(incomplete.iter().cloned());
    let result = if !invalid.is_empty() {
        VerdictResult::Invalid
    } else if results.iter().any(|r| !r.passed) {
        VerdictResult::Failed
    } else if !incomplete.is_empty() {
        VerdictResult::Incomplete
    } else {
        VerdictResult::Passed
    };
    Verdict { result, reasons }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::report::blob::{AgentInterval, IntervalCounters};
    use crate::report::merge::{MergeOptions, merge_all};
    use barrage_crds::hlog;
    use std::collections::BTreeMap;

    fn run(
        latencies: &[u64],
        lag: u64,
        counters: IntervalCounters,
        windows: Option<u32>,
    ) -> Merged {
        let intervals: Vec<AgentInterval> = (0..4)
            .map(|i| {
                let mut p = hlog::new_histogram();
                let mut l = hlog::new_histogram();
                for v in latencies {
                    p.record(v * (u64::from(i) + 1)).unwrap();
                    l.record(lag).unwrap();
                }
                AgentInterval {
                    slot: 0,
                    incarnation: 0,
                    index: i,
                    start_ms: u64::from(i) * 1000,
                    length_ms: 1000,
                    histograms: BTreeMap::from([
                        (HistogramTag::Produce, p),
                        (HistogramTag::Lag, l),
                    ]),
                    counters: Some(IntervalCounters {
                        acked: latencies.len() as u64,
                        ..counters.clone()
                    }),
                    consumer_lag: Default::default(),
                    partitions: Default::default(),
                }
            })
            .collect();
        merge_all(
            &intervals,
            MergeOptions {
                window_intervals: windows,
                ..MergeOptions::default()
            },
        )
        .unwrap()
    }

    fn counters(sent: u64) -> IntervalCounters {
        IntervalCounters {
            scheduled: sent,
            sent,
            ..IntervalCounters::default()
        }
    }

    #[test]
    fn undelivered_intervals_make_the_run_incomplete_and_are_named_with_their_records() {
        let lost = barrage_crds::agent_status::UndeliveredIntervals {
            from_interval: 7,
            to_interval: 9,
            records: 2_700,
        };
        let reasons = undelivered_reasons(&[(1, 0, lost)]);
        assert_eq!(
            reasons,
            vec![
                "agent 1 (incarnation 0) never delivered intervals 7–9: 2700 records are missing from this report"
            ]
        );
        assert_eq!(
            verdict(&[], &[], &reasons).result,
            VerdictResult::Incomplete
        );
    }

    #[test]
    fn a_threshold_that_holds_passes_with_its_observed_value() {
        let m = run(&[1_000, 2_000], 10, counters(2), None);
        let t = [Threshold::parse("produce.p99 < 50ms").unwrap()];
        let r = evaluate_thresholds(&t, &m, Some(8));
        assert!(r[0].passed);
        assert_eq!(r[0].run.as_ref().unwrap().observed, Some(8_003.0));
        let v = verdict(
            &r,
            &invalid_reasons(&m, Some(8), &ValidityBounds::default()),
            &[],
        );
        assert_eq!(v.result, VerdictResult::Passed, "{:?}", v.reasons);
    }

    #[test]
    fn a_window_that_breaks_a_threshold_fails_the_run_and_is_named() {
        // p99 per window: window 0 (intervals 0,1) ≈ 4 ms, window 1 (intervals 2,3) ≈ 8 ms.
        let m = run(&[1_000, 2_000], 10, counters(2), Some(2));
        let t = [Threshold::parse("produce.p99 < 5ms").unwrap()];
        let r = evaluate_thresholds(&t, &m, Some(8));
        assert_eq!(r[0].windows.len(), 2);
        assert!(r[0].windows[0].passed);
        assert!(!r[0].windows[1].passed);
        let v = verdict(&r, &[], &[]);
        assert_eq!(v.result, VerdictResult::Failed);
        assert!(
            v.reasons[0].contains("observed 8.003ms over the run"),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn a_saturated_generator_makes_the_run_invalid_even_when_thresholds_pass() {
        let m = run(&[1_000], 200_000, counters(1), None);
        let t = [Threshold::parse("produce.p99 < 1s").unwrap()];
        let r = evaluate_thresholds(&t, &m, Some(4));
        let invalid = invalid_reasons(&m, Some(4), &ValidityBounds::default());
        assert_eq!(invalid.len(), 1, "{invalid:?}");
        assert!(invalid[0].contains("schedule lag p99"));
        assert_eq!(verdict(&r, &invalid, &[]).result, VerdictResult::Invalid);
    }

    #[test]
    fn queue_full_and_falling_behind_the_schedule_are_invalid() {
        let mut c = counters(10);
        c.queue_full = 5;
        let m = run(&[1_000], 10, c, None);
        let invalid = invalid_reasons(&m, Some(100), &ValidityBounds::default());
        assert_eq!(invalid.len(), 2, "{invalid:?}");
        assert!(invalid[1].contains("sent 40 of 100"));
    }

    #[test]
    fn an_unmeasured_metric_does_not_pass() {
        let m = run(&[1_000], 10, counters(1), None);
        let t = [Threshold::parse("e2e.p99 < 1s").unwrap()];
        let r = evaluate_thresholds(&t, &m, None);
        assert!(!r[0].passed);
        assert_eq!(r[0].run.as_ref().unwrap().observed_display, "not measured");
    }

    #[test]
    fn ratios_and_counts_are_observed_from_counters() {
        let mut c = counters(1000);
        c.errors = 2;
        let m = run(&[1_000], 10, c, None);
        let (h, c) = (&m.total, &m.total.counters);
        assert_eq!(observe(Metric::ErrorsRatio, h, c, None), Some(0.002));
        assert_eq!(observe(Metric::ErrorsCount, h, c, None), Some(8.0));
        assert_eq!(observe(Metric::RateAchievedRatio, h, c, Some(8)), Some(0.5));
        assert_eq!(observe(Metric::RateAchievedRatio, h, c, None), None);
        assert_eq!(observe(Metric::ConsumerLagMax, h, c, None), None);
    }

    #[test]
    fn consumer_lag_is_observed_over_the_intervals_lags() {
        let mut acc = Accumulator {
            consumer_lag: vec![40, 0, 7, 100],
            ..Accumulator::default()
        };
        let c = IntervalCounters::default();
        assert_eq!(observe(Metric::ConsumerLagMax, &acc, &c, None), Some(100.0));
        assert_eq!(observe(Metric::ConsumerLagP99, &acc, &c, None), Some(100.0));
        acc.consumer_lag = (1..=200).collect();
        assert_eq!(observe(Metric::ConsumerLagP99, &acc, &c, None), Some(198.0));
        assert_eq!(acc.consumer_lag_at(50.0), Some(100));
    }

    /// Four intervals of one record each; interval 0 carries `warmup_errors` errors and a
    /// 90 ms latency, the others 1 ms and none.
    fn warmup_run(warmup_errors: u64, windows: Option<u32>, warmup_intervals: u32) -> Merged {
        let intervals: Vec<AgentInterval> = (0..4)
            .map(|i| {
                let mut p = hlog::new_histogram();
                p.record(if i == 0 { 90_000 } else { 1_000 }).unwrap();
                AgentInterval {
                    slot: 0,
                    incarnation: 0,
                    index: i,
                    start_ms: u64::from(i) * 1000,
                    length_ms: 1000,
                    histograms: BTreeMap::from([(HistogramTag::Produce, p)]),
                    counters: Some(IntervalCounters {
                        acked: 1,
                        errors: if i == 0 { warmup_errors } else { 0 },
                        ..counters(1 + if i == 0 { warmup_errors } else { 0 })
                    }),
                    consumer_lag: Default::default(),
                    partitions: Default::default(),
                }
            })
            .collect();
        let options = MergeOptions {
            window_intervals: windows,
            warmup_intervals,
            ..MergeOptions::default()
        };
        merge_all(&intervals, options).unwrap()
    }

    #[test]
    fn a_window_that_is_all_warmup_is_not_judged() {
        // Windows of 2 intervals, the first two intervals warm-up: only window 1 is judged.
        let m = warmup_run(3, Some(2), 2);
        let t = [
            Threshold::parse("produce.p99 < 50ms").unwrap(),
            Threshold::parse("errors.count < 1").unwrap(),
        ];
        let r = evaluate_thresholds(&t, &m, Some(2));
        for r in &r {
            let judged: Vec<_> = r.windows.iter().map(|c| c.window).collect();
            assert_eq!(judged, vec![Some(1)], "{r:?}");
        }
        assert!(r.iter().all(|r| r.passed), "{r:?}");
    }

    #[test]
    fn counts_ratios_and_rates_are_judged_after_the_warmup() {
        let t = [
            Threshold::parse("errors.count < 1").unwrap(),
            Threshold::parse("errors.ratio < 1%").unwrap(),
            Threshold::parse("rate.achieved_ratio >= 1").unwrap(),
            Threshold::parse("produce.max < 50ms").unwrap(),
        ];
        // Without a warm-up, interval 0's 5 errors and 90 ms count: every check but the rate
        // fails (4 acked of a target of 4). 90 ms reads back as the top of its histogram bucket.
        let bucket_top = hlog::new_histogram().highest_equivalent(90_000) as f64;
        let whole = evaluate_thresholds(&t, &warmup_run(5, None, 0), Some(4));
        let observed: Vec<_> = whole
            .iter()
            .map(|r| r.run.as_ref().unwrap().observed)
            .collect();
        assert_eq!(
            observed,
            vec![Some(5.0), Some(0.556), Some(1.0), Some(bucket_top)]
        );
        let passed: Vec<bool> = whole.iter().map(|r| r.passed).collect();
        assert_eq!(passed, vec![false, false, true, false]);
        // With interval 0 the warm-up, the same records are judged over intervals 1..=3: 3
        // acked of the 3 asked for after it, no errors, 1 ms.
        let after = evaluate_thresholds(&t, &warmup_run(5, None, 1), Some(3));
        let observed: Vec<_> = after
            .iter()
            .map(|r| r.run.as_ref().unwrap().observed)
            .collect();
        assert_eq!(
            observed,
            vec![Some(0.0), Some(0.0), Some(1.0), Some(1_000.0)]
        );
        assert!(after.iter().all(|r| r.passed), "{after:?}");
        // Its records still count in the run's totals.
        let m = warmup_run(5, None, 1);
        assert_eq!((m.total.counters.errors, m.total.counters.acked), (5, 4));
    }

    #[test]
    fn a_partial_report_is_incomplete() {
        let m = run(&[1_000], 10, counters(1), None);
        let inc = incomplete_reasons(&m, false);
        assert_eq!(verdict(&[], &[], &inc).result, VerdictResult::Incomplete);
    }
}
