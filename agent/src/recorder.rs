//! Latency and counter recording.
//!
//! Every acknowledged record lands in two histograms: `produce` measures from the *intended*
//! send time (coordinated-omission free: a stalled sender shows up as latency) and `service`
//! from the actual send. Schedule lag (actual minus intended send time) has its own
//! histogram, and RoundTrip's end-to-end latency two more, the same way: `e2e` from the
//! intended send time and `e2eService` from the actual one. Values are microseconds with three
//! significant digits; histograms auto-resize up to [`CAP_US`], past which a value is
//! recorded at the cap and counted as overflow, so counts always equal records.
//!
//! Histograms are swapped out every interval and the spare set is reset and reused: memory
//! does not grow with the length of the run.

use barrage_crds::interval::{ConsumerLag, PartitionCounts, PartitionTotals};
use barrage_crds::names::HistogramTag;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

pub use barrage_crds::hlog::new_histogram;

/// Largest value kept exactly, in microseconds (one hour). Larger values count as overflow.
pub const CAP_US: u64 = barrage_crds::hlog::HistogramConfig::STANDARD.highest;

/// The metric histograms of one interval.
#[derive(Debug, Clone)]
pub struct Histograms {
    /// Intended send time → ack (coordinated-omission free).
    pub produce: Histogram<u64>,
    /// Actual send time → ack (service time).
    pub service: Histogram<u64>,
    /// Actual send time − intended send time.
    pub lag: Histogram<u64>,
    /// RoundTrip: intended send time → consumed by the same agent (coordinated-omission
    /// free); Consume: the record's timestamp → consumed.
    pub e2e: Histogram<u64>,
    /// RoundTrip: actual send time → consumed by the same agent.
    pub e2e_service: Histogram<u64>,
    /// Records and bytes acknowledged per partition (index = partition).
    pub partitions: Vec<PartitionCounts>,
}

impl Default for Histograms {
    fn default() -> Self {
        Histograms {
            produce: new_histogram(),
            service: new_histogram(),
            lag: new_histogram(),
            e2e: new_histogram(),
            e2e_service: new_histogram(),
            partitions: Vec::new(),
        }
    }
}

impl Histograms {
    /// Clears every histogram, keeping its allocation.
    pub fn reset(&mut self) {
        self.produce.reset();
        self.service.reset();
        self.lag.reset();
        self.e2e.reset();
        self.e2e_service.reset();
        self.partitions
            .iter_mut()
            .for_each(|p| *p = PartitionCounts::default());
    }

    /// The partitions that acknowledged anything, by number.
    pub fn partition_totals(&self) -> PartitionTotals {
        self.partitions
            .iter()
            .enumerate()
            .filter(|(_, c)| c.records > 0)
            .filter_map(|(p, c)| Some((u32::try_from(p).ok()?, *c)))
            .collect()
    }

    /// The histograms with their log tags, in a fixed order.
    pub fn tagged(&self) -> [(HistogramTag, &Histogram<u64>); 5] {
        [
            (HistogramTag::Produce, &self.produce),
            (HistogramTag::Service, &self.service),
            (HistogramTag::Lag, &self.lag),
            (HistogramTag::E2e, &self.e2e),
            (HistogramTag::E2eService, &self.e2e_service),
        ]
    }
}

/// Records a value in microseconds, saturating at the cap. Returns true on overflow.
fn record_us(h: &mut Histogram<u64>, nanos: u64) -> bool {
    let us = (nanos / 1_000).max(1);
    let (value, overflow) = if us > CAP_US {
        (CAP_US, true)
    } else {
        (us, false)
    };
    // With auto-resize on and value <= CAP_US the only failure is allocation failure, which
    // aborts anyway; saturating keeps the count right in every case.
    if h.record(value).is_err() {
        h.saturating_record(value);
    }
    overflow
}

/// Thread-safe counters that live for the whole run (never reset).
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub errors: AtomicU64,
    pub dropped: AtomicU64,
    /// Sends made more than [`LATE_NS`] after their intended time.
    pub late: AtomicU64,
    pub bytes: AtomicU64,
    /// Times the client queue was full and the sender had to wait.
    pub queue_full: AtomicU64,
    /// Latencies past [`CAP_US`].
    pub overflow: AtomicU64,
    /// RoundTrip: records consumed back.
    pub consumed: AtomicU64,
    pub lost: AtomicU64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
    errors_by_kind: Mutex<BTreeMap<String, u64>>,
}

/// A send later than this after its intended time counts as late (1 ms).
pub const LATE_NS: u64 = 1_000_000;

/// A point-in-time copy of [`Counters`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterSnapshot {
    pub sent: u64,
    pub acked: u64,
    pub errors: u64,
    pub dropped: u64,
    pub late: u64,
    pub bytes: u64,
    pub queue_full: u64,
    pub overflow: u64,
    pub consumed: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
}

impl Counters {
    /// Counts one failed record under `kind` (e.g. `MessageSizeTooLarge`).
    pub fn error(&self, kind: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut map = self
            .errors_by_kind
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *map.entry(kind.to_string()).or_default() += 1;
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CounterSnapshot {
            sent: get(&self.sent),
            acked: get(&self.acked),
            errors: get(&self.errors),
            dropped: get(&self.dropped),
            late: get(&self.late),
            bytes: get(&self.bytes),
            queue_full: get(&self.queue_full),
            overflow: get(&self.overflow),
            consumed: get(&self.consumed),
            lost: get(&self.lost),
            duplicated: get(&self.duplicated),
            reordered: get(&self.reordered),
            errors_by_kind: self
                .errors_by_kind
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        }
    }
}

/// A few figures of the last closed interval, kept for live scraping (the agent's
/// `/metrics`); the interval's histograms themselves go to the blob store.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LastInterval {
    /// Intervals closed so far.
    pub closed: u64,
    /// Schedule lag (actual − intended send time), µs: p50, p99 and max.
    pub lag_p50_us: u64,
    pub lag_p99_us: u64,
    pub lag_max_us: u64,
    /// Produce latency (intended send → ack) p99, µs.
    pub produce_p99_us: u64,
    /// Records acknowledged per second over the interval (acks ÷ time since the previous close).
    pub acked_per_sec: f64,
}

/// The histograms being filled for the current interval, shared between the sender (lag),
/// the delivery callback (produce, service) and the consumer (e2e). The sender's histogram has
/// its own lock, so the two hot threads never wait for each other; each takes one lock per
/// record.
#[derive(Debug)]
pub struct Recorder {
    acks: Mutex<AckSide>,
    lag: Mutex<Histogram<u64>>,
    counters: Counters,
    /// The consumer's latest lag sample by partition (Consume and RoundTrip), and whether it
    /// is the last one.
    consumer_lag: Mutex<(ConsumerLag, bool)>,
    /// The last closed interval's figures, and when it closed.
    last: Mutex<(LastInterval, Option<std::time::Instant>)>,
}

/// What the delivery callback and the consumer fill.
#[derive(Debug)]
struct AckSide {
    produce: Histogram<u64>,
    service: Histogram<u64>,
    e2e: Histogram<u64>,
    e2e_service: Histogram<u64>,
    /// Records acknowledged per partition (index = partition), for the run's summary; never
    /// reset.
    partitions: Vec<u64>,
    /// Records and bytes acknowledged per partition in the current interval.
    interval_partitions: Vec<PartitionCounts>,
}

impl Default for Recorder {
    fn default() -> Self {
        let h = Histograms::default();
        Recorder {
            acks: Mutex::new(AckSide {
                produce: h.produce,
                service: h.service,
                e2e: h.e2e,
                e2e_service: h.e2e_service,
                partitions: Vec::new(),
                interval_partitions: h.partitions,
            }),
            lag: Mutex::new(h.lag),
            counters: Counters::default(),
            consumer_lag: Mutex::default(),
            last: Mutex::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Keeps the consumer's latest lag sample (unless the last one was taken).
    pub fn set_consumer_lag(&self, lag: ConsumerLag) {
        let mut kept = lock(&self.consumer_lag);
        if !kept.1 {
            kept.0 = lag;
        }
    }

    /// Keeps the consumer's last lag sample: later ones change nothing.
    pub fn finish_consumer_lag(&self, lag: ConsumerLag) {
        *lock(&self.consumer_lag) = (lag, true);
    }

    /// The consumer's latest lag sample (empty if it consumes nothing).
    pub fn consumer_lag(&self) -> ConsumerLag {
        lock(&self.consumer_lag).0.clone()
    }

    /// A record was acknowledged at `acked_ns`; all times are nanoseconds on one clock.
    pub fn record_ack(
        &self,
        partition: i32,
        intended_ns: u64,
        sent_ns: u64,
        acked_ns: u64,
        bytes: u64,
    ) {
        let mut a = lock(&self.acks);
        let o1 = record_us(&mut a.produce, acked_ns.saturating_sub(intended_ns));
        let o2 = record_us(&mut a.service, acked_ns.saturating_sub(sent_ns));
        if let Ok(p) = usize::try_from(partition) {
            if a.partitions.len() <= p {
                a.partitions.resize(p + 1, 0);
            }
            a.partitions[p] += 1;
            if a.interval_partitions.len() <= p {
                a.interval_partitions
                    .resize(p + 1, PartitionCounts::default());
            }
            let c = &mut a.interval_partitions[p];
            c.records += 1;
            c.bytes += bytes;
        }
        drop(a);
        self.counters.acked.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
        if o1 || o2 {
            self.counters.overflow.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records acknowledged per partition so far (index = partition).
    pub fn per_partition(&self) -> Vec<u64> {
        lock(&self.acks).partitions.clone()
    }

    /// A record was handed to the client `sent_ns - intended_ns` after its intended time.
    pub fn record_send(&self, intended_ns: u64, sent_ns: u64) {
        let lag = sent_ns.saturating_sub(intended_ns);
        let overflow = record_us(&mut lock(&self.lag), lag);
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        if lag > LATE_NS {
            self.counters.late.fetch_add(1, Ordering::Relaxed);
        }
        if overflow {
            self.counters.overflow.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Consume: a record stamped at `sent_ns` (its timestamp) was consumed at `received_ns`.
    pub fn record_e2e(&self, sent_ns: u64, received_ns: u64) {
        let overflow = record_us(
            &mut lock(&self.acks).e2e,
            received_ns.saturating_sub(sent_ns),
        );
        if overflow {
            self.counters.overflow.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// RoundTrip: a record intended at `intended_ns` and sent at `sent_ns` was consumed back
    /// at `received_ns`; all times on the agent's clock.
    pub fn record_round_trip(&self, intended_ns: u64, sent_ns: u64, received_ns: u64) {
        let mut a = lock(&self.acks);
        let o1 = record_us(&mut a.e2e, received_ns.saturating_sub(intended_ns));
        let o2 = record_us(&mut a.e2e_service, received_ns.saturating_sub(sent_ns));
        drop(a);
        if o1 || o2 {
            self.counters.overflow.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Ends the current interval: swaps in `spare` (reset first) and returns what was
    /// recorded since the last swap.
    pub fn swap(&self, mut spare: Histograms) -> Histograms {
        spare.reset();
        let mut a = lock(&self.acks);
        let produce = std::mem::replace(&mut a.produce, spare.produce);
        let service = std::mem::replace(&mut a.service, spare.service);
        let e2e = std::mem::replace(&mut a.e2e, spare.e2e);
        let e2e_service = std::mem::replace(&mut a.e2e_service, spare.e2e_service);
        let partitions = std::mem::replace(&mut a.interval_partitions, spare.partitions);
        drop(a);
        let lag = std::mem::replace(&mut *lock(&self.lag), spare.lag);
        let closed = Histograms {
            produce,
            service,
            lag,
            e2e,
            e2e_service,
            partitions,
        };
        self.note_interval(&closed);
        closed
    }

    /// Keeps a few figures of an interval that just closed (once per interval, off the hot path).
    fn note_interval(&self, h: &Histograms) {
        let now = std::time::Instant::now();
        let mut last = lock(&self.last);
        let seconds = last.1.map(|t| now.duration_since(t).as_secs_f64());
        let lag = &h.lag;
        last.0 = LastInterval {
            closed: last.0.closed + 1,
            lag_p50_us: lag.value_at_quantile(0.5),
            lag_p99_us: lag.value_at_quantile(0.99),
            lag_max_us: lag.max(),
            produce_p99_us: h.produce.value_at_quantile(0.99),
            acked_per_sec: match seconds {
                Some(s) if s > 0.0 => h.produce.len() as f64 / s,
                _ => 0.0,
            },
        };
        last.1 = Some(now);
    }

    /// The last closed interval's figures (all zero before the first close).
    pub fn last_interval(&self) -> LastInterval {
        self.last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_stalled_sender_shows_in_produce_latency_but_not_in_service_time() {
        let r = Recorder::new();
        // 1 000 records meant every millisecond; a 1.4 s stall delays the sends of the first
        // 1 400 ms, which then all go out at once and are acked 2 ms later.
        for i in 0..1_000u64 {
            let intended = i * MS;
            let sent = intended.max(1_400 * MS);
            r.record_send(intended, sent);
            r.record_ack(0, intended, sent, sent + 2 * MS, 100);
        }
        let h = r.swap(Histograms::default());
        assert!(
            h.produce.value_at_quantile(0.999) >= 1_000_000,
            "corrected p99.9 should be >= 1 s"
        );
        assert!(
            h.service.value_at_quantile(0.999) <= 2_100,
            "service time stays ~2 ms"
        );
        assert!(h.lag.max() >= 1_390_000);
        assert_eq!(h.produce.len(), 1_000);
        assert_eq!(r.counters().snapshot().late, 1_000);
    }

    #[test]
    fn values_past_the_cap_are_counted_as_overflow_and_kept_in_the_count() {
        let r = Recorder::new();
        r.record_ack(0, 0, 0, (CAP_US + 5) * 1_000, 1);
        let h = r.swap(Histograms::default());
        assert_eq!(h.produce.len(), 1);
        assert!(h.produce.max() >= CAP_US - CAP_US / 1_000);
        assert_eq!(r.counters().snapshot().overflow, 1);
    }

    #[test]
    fn swapping_starts_an_empty_interval_and_reuses_the_spare() {
        let r = Recorder::new();
        r.record_ack(2, 0, 0, 5 * MS, 10);
        assert_eq!(r.per_partition(), vec![0, 0, 1]);
        let first = r.swap(Histograms::default());
        assert_eq!(first.produce.len(), 1);
        let second = r.swap(first);
        assert_eq!(second.produce.len(), 0);
        // The recycled set was reset before reuse.
        let third = r.swap(Histograms::default());
        assert_eq!(third.produce.len(), 0);
    }

    #[test]
    fn closing_an_interval_keeps_its_lag_and_latency_for_scraping() {
        let r = Recorder::new();
        assert_eq!(r.last_interval(), LastInterval::default());
        for i in 0..100u64 {
            // Sent 1..=100 ms late, acked 5 ms after sending.
            let sent = i * MS + (i + 1) * MS;
            r.record_send(i * MS, sent);
            r.record_ack(0, i * MS, sent, sent + 5 * MS, 10);
        }
        let _ = r.swap(Histograms::default());
        let last = r.last_interval();
        assert_eq!(last.closed, 1);
        assert!((49_000..=51_100).contains(&last.lag_p50_us), "{last:?}");
        assert!((98_000..=100_100).contains(&last.lag_p99_us), "{last:?}");
        assert!((99_000..=100_100).contains(&last.lag_max_us), "{last:?}");
        assert!(last.produce_p99_us >= 100_000, "{last:?}");
        assert_eq!(last.acked_per_sec, 0.0, "no rate before a previous close");
        r.record_ack(0, 0, 0, MS, 1);
        let _ = r.swap(Histograms::default());
        let last = r.last_interval();
        assert_eq!(last.closed, 2);
        assert!(last.acked_per_sec > 0.0, "{last:?}");
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let c = Counters::default();
        c.error("MessageSizeTooLarge");
        c.error("MessageSizeTooLarge");
        c.error("UnknownTopicOrPartition");
        let s = c.snapshot();
        assert_eq!(s.errors, 3);
        assert_eq!(s.errors_by_kind.get("MessageSizeTooLarge"), Some(&2));
    }
}
