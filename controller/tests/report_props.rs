//! Property tests of the report merge: merging equals the histogram of the union of values,
//! and merging is commutative and associative. 10 000 small cases each (override with
//! `PROPTEST_CASES`).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use barrage_controller::report::blob::{AgentInterval, IntervalCounters};
use barrage_controller::report::merge::{
    Accumulator, MergeOptions, Stats, empty_histogram, merge_all,
};
use barrage_crds::hlog::{HistogramConfig, TAG_PRODUCE};
use hdrhistogram::Histogram;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

fn histogram(values: &[u64]) -> Histogram<u64> {
    let mut h = empty_histogram(HistogramConfig::STANDARD).unwrap();
    for v in values {
        h.record(*v).unwrap();
    }
    h
}

/// Every recorded (value, count) pair: two histograms are equal as distributions iff these are.
fn recorded(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// Latencies from 1 µs to about 17 s, spread over every magnitude (larger values only
/// make each case slower: they add empty buckets to walk).
fn value() -> impl Strategy<Value = u64> {
    (0u32..=24, any::<u64>()).prop_map(|(bits, r)| (r % (1u64 << bits)).max(1))
}

/// (slot, interval, values) of up to 4 agents × 3 intervals, each interval a handful of values.
fn blobs() -> impl Strategy<Value = Vec<(u32, u32, Vec<u64>)>> {
    proptest::collection::btree_map(
        (0u32..4, 0u32..3),
        proptest::collection::vec(value(), 0..6),
        1..6,
    )
    .prop_map(|m| m.into_iter().map(|((s, i), v)| (s, i, v)).collect())
}

fn to_intervals(blobs: &[(u32, u32, Vec<u64>)]) -> Vec<AgentInterval> {
    blobs
        .iter()
        .map(|(slot, index, values)| AgentInterval {
            slot: *slot,
            incarnation: 0,
            index: *index,
            start_ms: 1_000 + u64::from(*index) * 1_000,
            length_ms: 1_000,
            histograms: BTreeMap::from([(TAG_PRODUCE.to_string(), histogram(values))]),
            counters: Some(IntervalCounters {
                sent: values.len() as u64,
                acked: values.len() as u64,
                ..IntervalCounters::default()
            }),
        })
        .collect()
}

/// Without encoding each interval for merged.hlog (covered by the byte-identity tests).
fn fast() -> MergeOptions {
    MergeOptions {
        encode_intervals: false,
        ..MergeOptions::default()
    }
}

fn acc(values: &[u64]) -> Accumulator {
    Accumulator {
        histograms: BTreeMap::from([(TAG_PRODUCE.to_string(), histogram(values))]),
        counters: IntervalCounters {
            acked: values.len() as u64,
            ..IntervalCounters::default()
        },
    }
}

fn acc_recorded(a: &Accumulator) -> Vec<(u64, u64)> {
    a.histograms
        .get(TAG_PRODUCE)
        .map(recorded)
        .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn merge_equals_the_histogram_of_the_union_of_values(b in blobs()) {
        let merged = merge_all(&to_intervals(&b), fast()).unwrap();
        let all: Vec<u64> = b.iter().flat_map(|(_, _, v)| v.iter().copied()).collect();
        let union = histogram(&all);
        let total = merged.total.histograms.get(TAG_PRODUCE).map(recorded).unwrap_or_default();
        prop_assert_eq!(total, recorded(&union));
        let stats = merged.total.histograms.get(TAG_PRODUCE).map(Stats::with_mean);
        prop_assert_eq!(stats, (!union.is_empty()).then(|| Stats::with_mean(&union)));
        // The sum of histogram counts is the sum of acked, exactly.
        prop_assert_eq!(merged.total.counters.acked, union.len());
        // Per interval, too.
        for i in &merged.intervals {
            let vals: Vec<u64> = b.iter().filter(|x| x.1 == i.index).flat_map(|x| x.2.iter().copied()).collect();
            let count = i.stats.get(TAG_PRODUCE).map_or(0, |s| s.count);
            prop_assert_eq!(count, vals.len() as u64);
            prop_assert_eq!(i.counters.acked, vals.len() as u64);
        }
    }

    #[test]
    fn merge_is_commutative(b in blobs()) {
        let forward = merge_all(&to_intervals(&b), fast()).unwrap();
        let mut reversed = to_intervals(&b);
        reversed.reverse();
        let backward = merge_all(&reversed, fast()).unwrap();
        prop_assert_eq!(&forward.intervals, &backward.intervals);
        prop_assert_eq!(forward.total.stats(), backward.total.stats());
        prop_assert_eq!(
            forward.total.histograms.get(TAG_PRODUCE).map(recorded),
            backward.total.histograms.get(TAG_PRODUCE).map(recorded)
        );
    }

    #[test]
    fn merge_is_associative(
        a in proptest::collection::vec(value(), 0..6),
        b in proptest::collection::vec(value(), 0..6),
        c in proptest::collection::vec(value(), 0..6),
    ) {
        let cfg = HistogramConfig::STANDARD;
        let mut left = acc(&a);
        left.add(cfg, &acc(&b)).unwrap();
        left.add(cfg, &acc(&c)).unwrap();
        let mut bc = acc(&b);
        bc.add(cfg, &acc(&c)).unwrap();
        let mut right = acc(&a);
        right.add(cfg, &bc).unwrap();
        prop_assert_eq!(acc_recorded(&left), acc_recorded(&right));
        prop_assert_eq!(&left.counters, &right.counters);
        prop_assert_eq!(left.stats(), right.stats());
    }
}
