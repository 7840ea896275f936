//! Consuming: the RoundTrip reader (each agent reads every partition and keeps only its own
//! records, so end-to-end latency is measured on one clock) and the sequence tracker that
//! counts loss, duplicates and reordering with bounded memory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::statistics::Statistics;

use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaErrorCode;

use crate::engine::headers;
use crate::kafka::producer::Clock;
use crate::recorder::Recorder;

/// Sequence numbers seen in a sliding window of this many (2 MiB of bits).
pub const WINDOW: u64 = 1 << 24;

/// Partitions tracked one by one for reordering; higher partition numbers share the last
/// entry (memory stays bounded whatever the broker says).
const MAX_TRACKED_PARTITIONS: usize = 1 << 16;

/// Tracks which sequence numbers of one agent came back. Memory is fixed: a ring of
/// [`WINDOW`] bits past the low watermark; a number arriving below the watermark (more than
/// [`WINDOW`] records late) cannot be told from a duplicate and is counted as one.
///
/// A record is *reordered* when it arrives after a higher sequence number of the same
/// partition: Kafka orders records within a partition only, so records of different
/// partitions interleaving is not counted.
#[derive(Debug, Clone)]
pub struct SeqTracker {
    low: u64,
    bits: Vec<u64>,
    /// The highest sequence number seen, by partition.
    max_seen: Vec<Option<u64>>,
    pub unique: u64,
    pub duplicated: u64,
    pub reordered: u64,
}

impl Default for SeqTracker {
    fn default() -> Self {
        Self::with_window(WINDOW)
    }
}

impl SeqTracker {
    /// A tracker with a window of `window` sequence numbers (a multiple of 64).
    pub fn with_window(window: u64) -> Self {
        let words = usize::try_from(window.max(64) / 64).unwrap_or(1 << 18);
        SeqTracker {
            low: 0,
            bits: vec![0; words],
            max_seen: Vec::new(),
            unique: 0,
            duplicated: 0,
            reordered: 0,
        }
    }

    fn window(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    fn slot(&self, seq: u64) -> (usize, u64) {
        let pos = seq % self.window();
        ((pos / 64) as usize, 1u64 << (pos % 64))
    }

    /// Records that `seq` arrived from `partition` and says what it was.
    pub fn see(&mut self, seq: u64, partition: i32) -> Seen {
        if seq < self.low {
            self.duplicated += 1;
            return Seen::Duplicate;
        }
        let window = self.window();
        if seq >= self.low + window {
            // Slide: forget positions that fall out of the window.
            let new_low = seq + 1 - window;
            let clear_to = new_low.min(self.low + window);
            for s in self.low..clear_to {
                let (w, b) = self.slot(s);
                self.bits[w] &= !b;
            }
            if new_low >= self.low + window {
                self.bits.iter_mut().for_each(|w| *w = 0);
            }
            self.low = new_low;
        }
        let (w, b) = self.slot(seq);
        if self.bits[w] & b != 0 {
            self.duplicated += 1;
            return Seen::Duplicate;
        }
        self.bits[w] |= b;
        self.unique += 1;
        let p = usize::try_from(partition)
            .unwrap_or(0)
            .min(MAX_TRACKED_PARTITIONS - 1);
        if self.max_seen.len() <= p {
            self.max_seen.resize(p + 1, None);
        }
        match self.max_seen[p] {
            Some(max) if seq < max => {
                self.reordered += 1;
                Seen::Reordered
            }
            _ => {
                self.max_seen[p] = Some(seq);
                Seen::New
            }
        }
    }

    /// Records acknowledged by the broker that never came back.
    pub fn lost(&self, acked: u64) -> u64 {
        acked.saturating_sub(self.unique)
    }
}

/// What one arrival was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First time, in order.
    New,
    /// First time, after a later sequence number.
    Reordered,
    /// Seen before.
    Duplicate,
}

/// A consumer that reads every partition of `topic` from its end, for RoundTrip.
///
/// Right after the topic is created its partitions may not have a leader yet (the broker
/// answers `NotLeaderForPartition` or `LeaderNotAvailable`, or the metadata lists no
/// partitions): those answers are retried every 100 ms until `timeout` has passed.
pub fn round_trip_consumer(
    config: &ClientConfig,
    topic: &str,
    recorder: Arc<Recorder>,
    timeout: Duration,
) -> Result<BaseConsumer<LagContext>, KafkaError> {
    let mut config = config.clone();
    sample_lag(&mut config);
    // The reader places itself (at the end of every partition) and stores nothing: with no
    // commit, no consumer group is left on the broker after the run.
    config.set("enable.auto.commit", "false");
    let consumer: BaseConsumer<LagContext> =
        config.create_with_context(LagContext::new(recorder, topic))?;
    let deadline = Instant::now() + timeout;
    let tpl = loop {
        match end_offsets(&consumer, topic, timeout) {
            Err(e) if is_not_settled(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => break other?,
        }
    };
    consumer.assign(&tpl)?;
    Ok(consumer)
}

/// Every partition of `topic` at its high watermark.
fn end_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    timeout: Duration,
) -> Result<TopicPartitionList, KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            let (_, high) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
            tpl.add_partition_offset(topic, p.id(), Offset::Offset(high))?;
        }
    }
    if tpl.count() == 0 {
        // Assigning nothing would read nothing and count every record as lost.
        return Err(KafkaError::MetadataFetch(
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ));
    }
    Ok(tpl)
}

/// A new topic whose partitions have no leader yet: worth asking again.
fn is_not_settled(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownPartition
        )
    )
}

/// Reads until `stop` is set, recording end-to-end latency of this agent's records: `e2e` from
/// their intended send time, `e2eService` from the actual one.
/// `consumed` counts distinct records; repeats go to `duplicated`.
pub fn read_own_records(
    consumer: &BaseConsumer<LagContext>,
    agent: &str,
    recorder: &Arc<Recorder>,
    clock: Clock,
    stop: &AtomicBool,
    tracker: &mut SeqTracker,
) {
    let counters = recorder.counters();
    while !stop.load(Ordering::Relaxed) {
        let Some(result) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let Ok(message) = result else {
            continue;
        };
        let now = clock.now_ns();
        let Some(hs) = message.headers() else {
            continue;
        };
        let mut mine = false;
        let mut seq = None;
        let mut sent = None;
        let mut intended = None;
        for h in hs.iter() {
            match (h.key, h.value) {
                (headers::AGENT, Some(v)) => mine = v == agent.as_bytes(),
                (headers::SEQ, Some(v)) => seq = v.try_into().ok().map(u64::from_be_bytes),
                (headers::SENT_NS, Some(v)) => sent = v.try_into().ok().map(u64::from_be_bytes),
                (headers::INTENDED_NS, Some(v)) => {
                    intended = v.try_into().ok().map(u64::from_be_bytes);
                }
                _ => {}
            }
        }
        if !mine {
            continue;
        }
        let (Some(seq), Some(sent), Some(intended)) = (seq, sent, intended) else {
            continue;
        };
        recorder.record_round_trip(intended, sent, now);
        match tracker.see(seq, message.partition()) {
            Seen::New => {
                counters.consumed.fetch_add(1, Ordering::Relaxed);
            }
            Seen::Reordered => {
                counters.consumed.fetch_add(1, Ordering::Relaxed);
                counters.reordered.fetch_add(1, Ordering::Relaxed);
            }
            Seen::Duplicate => {
                counters.duplicated.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    consumer.context().finish(consumer);
}

/// How often librdkafka reports its statistics, from which a consumer's lag is read.
pub const LAG_SAMPLE_MS: &str = "500";

/// Asks librdkafka for statistics every [`LAG_SAMPLE_MS`], unless the spec's properties set
/// their own interval.
pub fn sample_lag(config: &mut ClientConfig) {
    if config.get("statistics.interval.ms").is_none() {
        config.set("statistics.interval.ms", LAG_SAMPLE_MS);
    }
}

/// A consumer's client context: MSK IAM tokens like [`SecurityContext`], and librdkafka's
/// statistics read as the consumer's lag on `topic`, kept in the recorder (each closing
/// interval carries the latest sample).
///
/// [`SecurityContext`]: barrage_kafka::msk_iam::SecurityContext
pub struct LagContext {
    recorder: Arc<Recorder>,
    topic: String,
    /// The high watermark of each partition as last fetched, for [`LagContext::finish`].
    highs: Mutex<BTreeMap<u32, i64>>,
}

impl LagContext {
    pub fn new(recorder: Arc<Recorder>, topic: &str) -> LagContext {
        LagContext {
            recorder,
            topic: topic.to_string(),
            highs: Mutex::default(),
        }
    }

    /// Takes the last sample, exact for the consumer's position: for every partition it holds
    /// and has a position on, the last fetched high watermark minus the position now (other
    /// partitions keep their last sample). Later statistics (while the consumer leaves its
    /// group) change nothing. Local calls only: nothing is asked of the broker.
    pub fn finish<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        let mut lag = self.recorder.consumer_lag();
        let highs = self.highs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Ok(positions) = consumer.position() {
            for e in positions
                .elements()
                .iter()
                .filter(|e| e.topic() == self.topic)
            {
                let (Offset::Offset(position), Ok(partition)) =
                    (e.offset(), u32::try_from(e.partition()))
                else {
                    continue;
                };
                if let Some(high) = highs.get(&partition) {
                    lag.insert(partition, records_behind(*high, position));
                }
            }
        }
        self.recorder.finish_consumer_lag(lag);
    }
}

impl ClientContext for LagContext {
    barrage_kafka::msk_iam_tokens!();

    fn stats(&self, statistics: Statistics) {
        let offsets = partition_offsets(&statistics, &self.topic);
        *self.highs.lock().unwrap_or_else(PoisonError::into_inner) =
            offsets.iter().map(|o| (o.partition, o.high)).collect();
        self.recorder.set_consumer_lag(
            offsets
                .iter()
                .map(|o| (o.partition, records_behind(o.high, o.position)))
                .collect(),
        );
    }
}

impl ConsumerContext for LagContext {}

/// Where a consumer stands on one partition, from librdkafka's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartitionOffsets {
    partition: u32,
    /// The high watermark as last fetched.
    high: i64,
    /// The offset after the last record handed to the application; before the first one, the
    /// committed offset, else the next offset to fetch less what is prefetched.
    position: i64,
}

/// The offsets of every partition of `topic` the client holds; partitions with no known
/// watermark or position are left out.
fn partition_offsets(stats: &Statistics, topic: &str) -> Vec<PartitionOffsets> {
    let Some(t) = stats.topics.get(topic) else {
        return Vec::new();
    };
    t.partitions
        .values()
        .filter(|p| p.desired && !p.unknown && p.hi_offset >= 0)
        .filter_map(|p| {
            let position = [
                p.app_offset,
                p.committed_offset,
                p.next_offset.saturating_sub(p.fetchq_cnt),
            ]
            .into_iter()
            .find(|o| *o >= 0)?;
            Some(PartitionOffsets {
                partition: u32::try_from(p.partition).ok()?,
                high: p.hi_offset,
                position,
            })
        })
        .collect()
}

fn records_behind(high: i64, position: i64) -> u64 {
    u64::try_from(high.saturating_sub(position)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_without_a_leader_yet_is_asked_again_and_other_errors_are_not() {
        let meta = |c| KafkaError::MetadataFetch(c);
        assert!(is_not_settled(&meta(
            RDKafkaErrorCode::NotLeaderForPartition
        )));
        assert!(is_not_settled(&meta(RDKafkaErrorCode::LeaderNotAvailable)));
        assert!(is_not_settled(&meta(
            RDKafkaErrorCode::UnknownTopicOrPartition
        )));
        assert!(!is_not_settled(&meta(
            RDKafkaErrorCode::TopicAuthorizationFailed
        )));
        assert!(!is_not_settled(&meta(
            RDKafkaErrorCode::BrokerTransportFailure
        )));
    }

    #[test]
    fn in_order_arrivals_are_all_unique() {
        let mut t = SeqTracker::with_window(128);
        (0..1_000).for_each(|s| {
            t.see(s, 0);
        });
        assert_eq!((t.unique, t.duplicated, t.reordered), (1_000, 0, 0));
        assert_eq!(t.lost(1_000), 0);
    }

    #[test]
    fn gaps_count_as_lost_and_repeats_as_duplicates() {
        let mut t = SeqTracker::with_window(128);
        for s in (0..100).filter(|s| s % 10 != 3) {
            t.see(s, 0);
        }
        t.see(5, 0);
        t.see(5, 0);
        assert_eq!(t.unique, 90);
        assert_eq!(t.duplicated, 2);
        assert_eq!(t.lost(100), 10);
    }

    #[test]
    fn late_arrivals_inside_the_window_count_as_reordered_not_lost() {
        let mut t = SeqTracker::with_window(128);
        t.see(0, 0);
        t.see(2, 0);
        t.see(1, 0);
        assert_eq!((t.unique, t.reordered, t.duplicated), (3, 1, 0));
    }

    #[test]
    fn only_order_within_a_partition_counts() {
        let mut t = SeqTracker::with_window(128);
        // Records of two partitions interleave: 1 and 3 on partition 1 arrive after 4.
        for (seq, partition) in [(0, 0), (2, 0), (4, 0), (1, 1), (3, 1)] {
            t.see(seq, partition);
        }
        assert_eq!((t.unique, t.reordered), (5, 0));
        // Within partition 0, 5 after 6 is out of order.
        t.see(6, 0);
        t.see(5, 0);
        assert_eq!((t.unique, t.reordered), (7, 1));
        // Partition 1 goes on from its own highest number.
        t.see(7, 1);
        t.see(8, 0);
        assert_eq!((t.unique, t.reordered), (9, 1));
        // A number seen before, from any partition, is a duplicate.
        t.see(3, 0);
        assert_eq!((t.unique, t.reordered, t.duplicated), (9, 1, 1));
        // A partition number past the tracked range shares the last entry, with bounded memory.
        t.see(20, i32::MAX);
        assert_eq!(t.max_seen.len(), MAX_TRACKED_PARTITIONS);
    }

    #[test]
    fn the_window_slides_with_fixed_memory() {
        let mut t = SeqTracker::with_window(64);
        (0..10_000).for_each(|s| {
            t.see(s, 0);
        });
        assert_eq!(t.unique, 10_000);
        assert_eq!(t.bits.len(), 1);
        // Far below the window: indistinguishable from a duplicate.
        t.see(3, 0);
        assert_eq!(t.duplicated, 1);
        // A jump far ahead clears the whole window.
        t.see(1_000_000, 0);
        t.see(999_990, 0);
        assert_eq!(t.unique, 10_002);
    }
}
