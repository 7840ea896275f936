//! Deterministic sample runs for tests, the merge benchmark and the browser check: agents
//! with realistic latency shapes (a log-normal-ish body, rare slow outliers, a slow patch in
//! the middle of the run), a ramp-up, and one replaced agent.

use barrage_crds::names::HistogramTag;
use std::collections::BTreeMap;

use barrage_crds::hlog;

use super::blob::{AgentInterval, IntervalCounters};

/// A small deterministic pseudo-random generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The shape of a sample run.
#[derive(Debug, Clone, Copy)]
pub struct SampleRun {
    /// Agent slots.
    pub agents: u32,
    /// Intervals.
    pub intervals: u32,
    /// Records per agent per interval at full rate.
    pub records: u64,
    /// Interval length, ms.
    pub length_ms: u64,
    /// Seed.
    pub seed: u64,
    /// Replace slot 0 halfway through (incarnation 1 takes over after a one-interval gap).
    pub replace_one: bool,
}

impl Default for SampleRun {
    fn default() -> Self {
        SampleRun {
            agents: 3,
            intervals: 30,
            records: 2_000,
            length_ms: 10_000,
            seed: 7,
            replace_one: true,
        }
    }
}

/// Start of the sample runs: 2026-01-01T00:00:00Z.
pub const SAMPLE_START_MS: u64 = 1_767_225_600_000;

/// One agent interval of a sample run.
pub fn sample_interval(run: &SampleRun, slot: u32, incarnation: u32, index: u32) -> AgentInterval {
    let mut rng = Rng::new(
        run.seed ^ (u64::from(slot) << 40) ^ (u64::from(incarnation) << 32) ^ u64::from(index),
    );
    let ramp = 4u32;
    let n = if index < ramp {
        run.records * u64::from(index + 1) / u64::from(ramp + 1)
    } else {
        run.records
    };
    let slow_patch = index >= run.intervals / 2 && index < run.intervals / 2 + 3;
    let mut produce = hlog::new_histogram();
    let mut service = hlog::new_histogram();
    let mut lag = hlog::new_histogram();
    let slot_bias = 1.0 + f64::from(slot % 4) * 0.15;
    for _ in 0..n {
        // Body: ~1.5 ms median with a long right tail.
        let u = rng.unit().max(1e-12);
        let body = 1_500.0 * slot_bias * (-u.ln()).powf(0.6) + 200.0;
        let outlier = if rng.unit() < 0.002 {
            20_000.0 * rng.unit()
        } else {
            0.0
        };
        let patch = if slow_patch {
            4_000.0 * rng.unit()
        } else {
            0.0
        };
        let s = (body + outlier + patch) as u64;
        let l = (rng.unit().powi(8) * 2_000.0) as u64 + 1;
        // Recording within the standard range cannot fail; saturate to keep the count right.
        service.saturating_record(s.max(1));
        produce.saturating_record((s + l).max(1));
        lag.saturating_record(l);
    }
    AgentInterval {
        slot,
        incarnation,
        index,
        start_ms: SAMPLE_START_MS + u64::from(index) * run.length_ms,
        length_ms: run.length_ms,
        histograms: BTreeMap::from([
            (HistogramTag::Lag, lag),
            (HistogramTag::Produce, produce),
            (HistogramTag::Service, service),
        ]),
        counters: Some(IntervalCounters {
            scheduled: n,
            sent: n,
            acked: n,
            bytes: n * 100,
            late: n / 500,
            ..IntervalCounters::default()
        }),
        consumer_lag: Default::default(),
        partitions: Default::default(),
    }
}

/// Every (slot, incarnation, index) of a sample run, in key order.
pub fn sample_coordinates(run: &SampleRun) -> Vec<(u32, u32, u32)> {
    let mut out = Vec::new();
    let half = run.intervals / 2;
    for slot in 0..run.agents {
        for index in 0..run.intervals {
            if run.replace_one && slot == 0 && run.intervals > 4 {
                if index < half {
                    out.push((slot, 0, index));
                } else if index > half {
                    out.push((slot, 1, index));
                }
            } else {
                out.push((slot, 0, index));
            }
        }
    }
    out.sort_unstable();
    out
}

/// A whole sample run.
pub fn sample_run(run: &SampleRun) -> Vec<AgentInterval> {
    sample_coordinates(run)
        .into_iter()
        .map(|(s, i, x)| sample_interval(run, s, i, x))
        .collect()
}
