//! Property tests of the report merge: merging equals the histogram of the union of values,
//! and merging is commutative and associative. 2 000 small cases each in the test suite; a longer
//! run sets `PROPTEST_CASES` (`PROPTEST_CASES=10000 cargo test -p barrage-operator --test report_props`).

#![allow(clippy::unwrap_used)]

use barrage_crds::names::HistogramTag;
use std::collections::BTreeMap;

use barrage_crds::hlog::{DecodeLimits, HistogramConfig};
use barrage_operator::report::blob::{AgentInterval, IntervalCounters};
use barrage_operator::report::counts::decode_parallel;
use barrage_operator::report::merge::{
    Accumulator, MergeOptions, Merger, Stats, empty_histogram, merge_all,
};
use barrage_operator::report::{
    ReportContext, build_report, decode_interval_blob, encode_interval_blob,
};
use hdrhistogram::Histogram;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000)
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
            histograms: BTreeMap::from([(HistogramTag::Produce, histogram(values))]),
            counters: Some(IntervalCounters {
                sent: values.len() as u64,
                acked: values.len() as u64,
                ..IntervalCounters::default()
            }),
            consumer_lag: Default::default(),
            partitions: Default::default(),
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
        histograms: BTreeMap::from([(HistogramTag::Produce, histogram(values))]),
        counters: IntervalCounters {
            acked: values.len() as u64,
            ..IntervalCounters::default()
        },
        consumer_lag: Vec::new(),
    }
}

fn acc_recorded(a: &Accumulator) -> Vec<(u64, u64)> {
    a.histograms
        .get(&HistogramTag::Produce)
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
        let total = merged.total.histograms.get(&HistogramTag::Produce).map(recorded).unwrap_or_default();
        prop_assert_eq!(total, recorded(&union));
        let stats = merged.total.histograms.get(&HistogramTag::Produce).and_then(Stats::of);
        prop_assert_eq!(stats, Stats::of(&union));
        // The sum of histogram counts is the sum of acked, exactly.
        prop_assert_eq!(merged.total.counters.acked, union.len());
        // Per interval, too.
        for i in &merged.intervals {
            let vals: Vec<u64> = b.iter().filter(|x| x.1 == i.index).flat_map(|x| x.2.iter().copied()).collect();
            let count = i.stats.get(&HistogramTag::Produce).map_or(0, |s| s.count);
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
            forward.total.histograms.get(&HistogramTag::Produce).map(recorded),
            backward.total.histograms.get(&HistogramTag::Produce).map(recorded)
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

/// Interval blobs of several tags, agents and incarnations, as agents write them (text).
fn blob_texts() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::btree_map(
        (0u32..3, 0u32..2, 0u32..4),
        (
            proptest::collection::vec(value(), 0..8),
            proptest::collection::vec(value(), 0..4),
            any::<bool>(),
        ),
        1..8,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(
                |((slot, incarnation, index), (produce, lag, with_counters))| {
                    let mut histograms =
                        BTreeMap::from([(HistogramTag::Produce, histogram(&produce))]);
                    if !lag.is_empty() {
                        histograms.insert(HistogramTag::Lag, histogram(&lag));
                        histograms.insert(HistogramTag::Service, histogram(&lag));
                    }
                    let interval = AgentInterval {
                        slot,
                        incarnation,
                        index,
                        start_ms: 1_767_225_600_000 + u64::from(index) * 1_000 + u64::from(slot),
                        length_ms: 1_000,
                        histograms,
                        counters: with_counters.then(|| IntervalCounters {
                            sent: produce.len() as u64 + 1,
                            acked: produce.len() as u64,
                            errors: 1,
                            ..IntervalCounters::default()
                        }),
                        // Consumer lag on a few partitions (two agents can report the same one).
                        consumer_lag: lag
                            .iter()
                            .take(3)
                            .zip(slot..)
                            .map(|(l, p)| (p, *l))
                            .collect(),
                        // Records by partition (agents share partitions).
                        partitions: [(
                            slot % 2,
                            barrage_crds::interval::PartitionCounts {
                                records: produce.len() as u64,
                                bytes: 100 * produce.len() as u64,
                            },
                        )]
                        .into(),
                    };
                    encode_interval_blob(&interval).unwrap()
                },
            )
            .collect()
    })
}

fn report_bytes(merged: &barrage_operator::report::Merged) -> [String; 4] {
    let set = build_report(merged, &ReportContext::offline()).unwrap();
    [set.json, set.html, set.hlog, set.junit]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases() / 20))]

    /// The merge's fast path (blob text decoded straight into bucket counts, on threads) gives
    /// byte for byte the report of decoding every blob into histograms and adding them.
    #[test]
    fn counts_fast_path_gives_the_same_report_bytes(texts in blob_texts(), threads in 1usize..4) {
        let options = MergeOptions { window_intervals: Some(2), expected_agents: Some(3), ..MergeOptions::default() };
        let mut slow = Merger::new(options.clone());
        for t in &texts {
            slow.add(&decode_interval_blob(t).unwrap()).unwrap();
        }
        let slow = slow.finish().unwrap();
        let mut fast = Merger::new(options);
        let (mut decoders, mut decoded) = (Vec::new(), Vec::new());
        decode_parallel(&texts, &DecodeLimits::default(), threads, &mut decoders, &mut decoded).unwrap();
        for d in &decoded[..texts.len()] {
            fast.add_counts(d).unwrap();
        }
        let fast = fast.finish().unwrap();
        prop_assert_eq!(&fast.intervals, &slow.intervals);
        prop_assert_eq!(&fast.gaps, &slow.gaps);
        prop_assert_eq!(&fast.problems, &slow.problems);
        prop_assert_eq!(report_bytes(&fast), report_bytes(&slow));
    }
}
