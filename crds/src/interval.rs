//! One agent incarnation's interval blob: a standard HdrHistogram interval log with two
//! Barrage comment lines.
//!
//! # Format
//! ```text
//! #[Histogram log format version 1.3]
//! #[StartTime: 1732567210.000 (seconds since epoch), 2024-11-25T20:40:10Z]
//! #[BaseTime: 1732567210.000 (seconds since epoch)]
//! #[Barrage-Interval: {"slot":3,"incarnation":0,"index":1,"startMs":1732567210000,"lengthMs":10000}]
//! #[Barrage-Counters: {"sent":10000,"acked":9998,"errors":2,...}]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! Tag=produce,0.000,10.000,12.345,HISTFAAAA...
//! Tag=service,0.000,10.000,3.210,HISTFAAAA...
//! ```
//! - `StartTime` and `BaseTime` are the interval's start; every line starts at `0.000`.
//! - `Barrage-Interval` is a one-line JSON object (keys in this order, no spaces) naming the
//!   agent slot, its incarnation, the interval index counted from the run's `startAt`, and the
//!   interval's start (epoch milliseconds) and length (milliseconds).
//! - `Barrage-Counters` is a one-line JSON object of [`IntervalCounters`]: what happened
//!   **during this interval only** (deltas, not running totals). `acked` must equal the number
//!   of values in the `produce` histogram of the same blob: the report checks it.
//! - `Barrage-ConsumerLag` (Consume and RoundTrip agents only, left out when empty) is a one-line
//!   JSON object from partition number to the consumer's lag on it, in records, sampled at the
//!   interval's end: the partition's high watermark minus the consumer's position. Only the
//!   partitions the agent held (and had a position on) are listed.
//! - `Barrage-Partitions` (producing agents only, left out when empty) is a one-line JSON
//!   object from partition number to `{"records":N,"bytes":B}`: the records acknowledged on
//!   that partition during the interval (from the delivery reports) and their value and key
//!   bytes.
//! - One line per tag, tags in lexicographic order; empty histograms may be left out.
//!
//! HdrHistogram's own tools skip the comment lines, so they read these blobs unchanged.

use crate::names::HistogramTag;
use std::collections::BTreeMap;

use crate::hlog::{self, DecodeLimits, IntervalEntry};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Prefix of the comment line naming the interval.
pub const INTERVAL_COMMENT: &str = "#[Barrage-Interval: ";
/// Prefix of the comment line carrying the interval's counters.
pub const COUNTERS_COMMENT: &str = "#[Barrage-Counters: ";
/// Prefix of the comment line carrying the consumer's lag per partition.
pub const CONSUMER_LAG_COMMENT: &str = "#[Barrage-ConsumerLag: ";

/// Consumer lag in records by partition, sampled at an interval's end.
pub type ConsumerLag = BTreeMap<u32, u64>;

/// Prefix of the comment line carrying the records acknowledged per partition.
pub const PARTITIONS_COMMENT: &str = "#[Barrage-Partitions: ";

/// What was acknowledged on one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PartitionCounts {
    /// Records acknowledged.
    pub records: u64,
    /// Their value and key bytes.
    pub bytes: u64,
}

impl PartitionCounts {
    /// Adds another partition's counts.
    pub fn add(&mut self, other: &PartitionCounts) {
        self.records = self.records.saturating_add(other.records);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// Acknowledged records by partition.
pub type PartitionTotals = BTreeMap<u32, PartitionCounts>;

/// What an agent counted during one interval (deltas for that interval, not running totals).
///
/// Every field defaults to 0 when absent, so older and newer agents can be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IntervalCounters {
    /// Records whose intended send time fell in this interval (what the schedule called for).
    pub scheduled: u64,
    /// Records handed to the Kafka client.
    pub sent: u64,
    /// Records acknowledged; equals the `produce` histogram's count.
    pub acked: u64,
    /// Records that failed permanently.
    pub errors: u64,
    /// Records the agent dropped without sending (e.g. past their deadline).
    pub dropped: u64,
    /// Sends more than 1 ms after their intended time.
    pub late: u64,
    /// Value and key bytes acknowledged (Consume: consumed).
    pub bytes: u64,
    /// Times the client queue was full and the sender had to wait.
    pub queue_full: u64,
    /// Latencies past the histogram cap (recorded at the cap).
    pub overflow: u64,
    /// Consume: records consumed; RoundTrip: own records consumed back.
    pub consumed: u64,
    /// RoundTrip: records produced but never consumed.
    pub lost: u64,
    /// RoundTrip: records consumed more than once.
    pub duplicated: u64,
    /// RoundTrip: records consumed after a later record of the same partition (Kafka orders
    /// records within a partition only).
    pub reordered: u64,
    /// Failed records by error kind (e.g. `MessageSizeTooLarge`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors_by_kind: BTreeMap<String, u64>,
}

impl IntervalCounters {
    /// Adds `other` into `self`, saturating.
    pub fn add(&mut self, other: &IntervalCounters) {
        self.scheduled = self.scheduled.saturating_add(other.scheduled);
        self.sent = self.sent.saturating_add(other.sent);
        self.acked = self.acked.saturating_add(other.acked);
        self.errors = self.errors.saturating_add(other.errors);
        self.dropped = self.dropped.saturating_add(other.dropped);
        self.late = self.late.saturating_add(other.late);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.queue_full = self.queue_full.saturating_add(other.queue_full);
        self.overflow = self.overflow.saturating_add(other.overflow);
        self.consumed = self.consumed.saturating_add(other.consumed);
        self.lost = self.lost.saturating_add(other.lost);
        self.duplicated = self.duplicated.saturating_add(other.duplicated);
        self.reordered = self.reordered.saturating_add(other.reordered);
        for (kind, n) in &other.errors_by_kind {
            let e = self.errors_by_kind.entry(kind.clone()).or_default();
            *e = e.saturating_add(*n);
        }
    }
}

/// Where an interval sits: `Barrage-Interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntervalHeader {
    slot: u32,
    incarnation: u32,
    index: u32,
    start_ms: u64,
    length_ms: u64,
}

/// One interval of one agent incarnation: its histograms by tag and its counters.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentInterval {
    /// The agent's slot (0-based).
    pub slot: u32,
    /// The incarnation in that slot (0 for the first launch, +1 per replacement).
    pub incarnation: u32,
    /// The interval index counted from the run's `startAt`.
    pub index: u32,
    /// Start of the interval, milliseconds since the epoch.
    pub start_ms: u64,
    /// Length of the interval, milliseconds.
    pub length_ms: u64,
    /// Histograms by tag (`produce`, `service`, `lag`, `e2e`), values in microseconds.
    pub histograms: BTreeMap<HistogramTag, Histogram<u64>>,
    /// The agent's counters for this interval; `None` for logs written by other tools, in which
    /// case `acked` and `sent` are taken to be the `produce` histogram's count.
    pub counters: Option<IntervalCounters>,
    /// The consumer's lag by partition at the interval's end (empty when the agent consumes
    /// nothing, or for logs written by other tools).
    pub consumer_lag: ConsumerLag,
    /// Records acknowledged by partition during the interval (empty when the agent produces
    /// nothing, or for logs written by other tools).
    pub partitions: PartitionTotals,
}

impl AgentInterval {
    /// The counters, or the ones implied by the histograms when the blob carried none.
    pub fn effective_counters(&self) -> IntervalCounters {
        match &self.counters {
            Some(c) => c.clone(),
            None => {
                let n = self
                    .histograms
                    .get(&HistogramTag::Produce)
                    .map_or(0, Histogram::len);
                IntervalCounters {
                    sent: n,
                    acked: n,
                    ..IntervalCounters::default()
                }
            }
        }
    }
}

/// A blob that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum IntervalError {
    /// The histogram log inside the blob is invalid.
    #[error("{what}: {source}")]
    Hlog {
        /// Which blob or histogram.
        what: String,
        /// Why.
        #[source]
        source: hlog::HlogError,
    },
    /// The Barrage lines of the blob are missing or invalid.
    #[error("{what}: {message}")]
    Blob {
        /// Which blob.
        what: String,
        /// What is wrong.
        message: String,
    },
}

fn blob_err(what: &str, message: impl Into<String>) -> IntervalError {
    IntervalError::Blob {
        what: what.to_string(),
        message: message.into(),
    }
}

/// Writes an interval blob (see the [module documentation](self) for the exact format).
pub fn encode_interval_blob(interval: &AgentInterval) -> Result<String, IntervalError> {
    let what = format!(
        "interval {} of agent {}-{}",
        interval.index, interval.slot, interval.incarnation
    );
    let length_secs = interval.length_ms as f64 / 1000.0;
    let entries: Vec<IntervalEntry> = interval
        .histograms
        .iter()
        .map(|(tag, h)| IntervalEntry {
            tag: Some(tag.to_string()),
            start_secs: 0.0,
            length_secs,
            histogram: h.clone(),
        })
        .collect();
    let log = hlog::write_log(interval.start_ms as f64 / 1000.0, &entries).map_err(|source| {
        IntervalError::Hlog {
            what: what.clone(),
            source,
        }
    })?;
    let header = IntervalHeader {
        slot: interval.slot,
        incarnation: interval.incarnation,
        index: interval.index,
        start_ms: interval.start_ms,
        length_ms: interval.length_ms,
    };
    let mut comments = format!(
        "{INTERVAL_COMMENT}{}]\n",
        serde_json::to_string(&header).map_err(|e| blob_err(&what, e.to_string()))?
    );
    if let Some(c) = &interval.counters {
        comments.push_str(&format!(
            "{COUNTERS_COMMENT}{}]\n",
            serde_json::to_string(c).map_err(|e| blob_err(&what, e.to_string()))?
        ));
    }
    if !interval.consumer_lag.is_empty() {
        comments.push_str(&format!(
            "{CONSUMER_LAG_COMMENT}{}]\n",
            serde_json::to_string(&interval.consumer_lag)
                .map_err(|e| blob_err(&what, e.to_string()))?
        ));
    }
    if !interval.partitions.is_empty() {
        comments.push_str(&format!(
            "{PARTITIONS_COMMENT}{}]\n",
            serde_json::to_string(&interval.partitions)
                .map_err(|e| blob_err(&what, e.to_string()))?
        ));
    }
    // Put the Barrage comments after the header lines, before the legend.
    let at = log
        .find(hlog::LEGEND)
        .ok_or_else(|| blob_err(&what, "the interval log has no legend line"))?;
    let mut out = String::with_capacity(log.len() + comments.len());
    out.push_str(&log[..at]);
    out.push_str(&comments);
    out.push_str(&log[at..]);
    Ok(out)
}

/// The JSON inside a `#[Prefix: {...}]` comment line.
fn comment_json<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        line.trim()
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(']'))
    })
}

/// The `Barrage-ConsumerLag` line of a blob (empty when it has none); `what` names the blob in
/// the error.
pub fn decode_consumer_lag(text: &str, what: &str) -> Result<ConsumerLag, IntervalError> {
    match comment_json(text, CONSUMER_LAG_COMMENT) {
        Some(json) => serde_json::from_str::<ConsumerLag>(json)
            .map_err(|e| blob_err(what, format!("Barrage-ConsumerLag: {e}"))),
        None => Ok(ConsumerLag::new()),
    }
}

/// The `Barrage-Partitions` line of a blob (empty when it has none); `what` names the blob in
/// the error.
pub fn decode_partitions(text: &str, what: &str) -> Result<PartitionTotals, IntervalError> {
    match comment_json(text, PARTITIONS_COMMENT) {
        Some(json) => serde_json::from_str::<PartitionTotals>(json)
            .map_err(|e| blob_err(what, format!("Barrage-Partitions: {e}"))),
        None => Ok(PartitionTotals::new()),
    }
}

/// Whether `text` carries a `Barrage-Interval` comment (a blob written by a Barrage agent).
pub fn is_interval_blob(text: &str) -> bool {
    comment_json(text, INTERVAL_COMMENT).is_some()
}

/// Reads an interval blob written by [`encode_interval_blob`], decoding every histogram with
/// the hardened limits (standard configuration required).
pub fn decode_interval_blob(text: &str) -> Result<AgentInterval, IntervalError> {
    decode_interval_blob_with(text, &DecodeLimits::default())
}

/// [`decode_interval_blob`] with explicit decode limits.
pub fn decode_interval_blob_with(
    text: &str,
    limits: &DecodeLimits,
) -> Result<AgentInterval, IntervalError> {
    let what = "interval blob";
    let header_json = comment_json(text, INTERVAL_COMMENT)
        .ok_or_else(|| blob_err(what, "no #[Barrage-Interval: …] line"))?;
    let header: IntervalHeader = serde_json::from_str(header_json)
        .map_err(|e| blob_err(what, format!("Barrage-Interval: {e}")))?;
    let what = format!(
        "interval {} of agent {}-{}",
        header.index, header.slot, header.incarnation
    );
    let counters = match comment_json(text, COUNTERS_COMMENT) {
        Some(json) => Some(
            serde_json::from_str::<IntervalCounters>(json)
                .map_err(|e| blob_err(&what, format!("Barrage-Counters: {e}")))?,
        ),
        None => None,
    };
    let consumer_lag = decode_consumer_lag(text, &what)?;
    let partitions = decode_partitions(text, &what)?;
    if header.length_ms == 0 {
        return Err(blob_err(&what, "interval length is 0 ms"));
    }
    let entries = hlog::parse_log(text, limits).map_err(|source| IntervalError::Hlog {
        what: what.clone(),
        source,
    })?;
    let mut histograms: BTreeMap<HistogramTag, Histogram<u64>> = BTreeMap::new();
    for entry in entries {
        let tag = entry.tag.map_or(HistogramTag::Produce, HistogramTag::from);
        match histograms.get_mut(&tag) {
            Some(h) => {
                hlog::merge_into(h, &entry.histogram).map_err(|source| IntervalError::Hlog {
                    what: what.clone(),
                    source,
                })?
            }
            None => {
                histograms.insert(tag, entry.histogram);
            }
        }
    }
    Ok(AgentInterval {
        slot: header.slot,
        incarnation: header.incarnation,
        index: header.index,
        start_ms: header.start_ms,
        length_ms: header.length_ms,
        histograms,
        counters,
        consumer_lag,
        partitions,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> AgentInterval {
        let mut produce = hlog::new_histogram();
        let mut lag = hlog::new_histogram();
        for v in [120, 450, 3_000, 12_000] {
            produce.record(v).unwrap();
            lag.record(v / 100 + 1).unwrap();
        }
        AgentInterval {
            slot: 3,
            incarnation: 1,
            index: 7,
            start_ms: 1_732_567_270_000,
            length_ms: 10_000,
            histograms: BTreeMap::from([
                (HistogramTag::Lag, lag),
                (HistogramTag::Produce, produce),
            ]),
            counters: Some(IntervalCounters {
                scheduled: 5,
                sent: 5,
                acked: 4,
                errors: 1,
                errors_by_kind: BTreeMap::from([("MessageSizeTooLarge".to_string(), 1)]),
                ..IntervalCounters::default()
            }),
            consumer_lag: ConsumerLag::new(),
            partitions: PartitionTotals::new(),
        }
    }

    #[test]
    fn a_blob_round_trips_with_its_counters_and_tags() {
        let blob = encode_interval_blob(&sample()).unwrap();
        assert!(blob.contains("#[Barrage-Interval: {\"slot\":3,\"incarnation\":1,\"index\":7,"));
        assert!(blob.contains("#[Barrage-Counters: {\"scheduled\":5,\"sent\":5,\"acked\":4,"));
        assert_eq!(decode_interval_blob(&blob).unwrap(), sample());
    }

    #[test]
    fn the_consumer_lag_line_round_trips_and_is_left_out_when_empty() {
        let plain = encode_interval_blob(&sample()).unwrap();
        assert!(!plain.contains("Barrage-ConsumerLag"), "{plain}");
        let mut consuming = sample();
        consuming.consumer_lag = ConsumerLag::from([(0, 12), (3, 0)]);
        let blob = encode_interval_blob(&consuming).unwrap();
        assert!(
            blob.contains("#[Barrage-ConsumerLag: {\"0\":12,\"3\":0}]\n"),
            "{blob}"
        );
        assert_eq!(decode_interval_blob(&blob).unwrap(), consuming);
        let broken = blob.replace("\"3\":0", "\"3\":-1");
        let err = decode_interval_blob(&broken).unwrap_err();
        assert!(err.to_string().contains("Barrage-ConsumerLag"), "{err}");
    }

    #[test]
    fn the_partitions_line_round_trips_and_is_left_out_when_empty() {
        assert!(
            !encode_interval_blob(&sample())
                .unwrap()
                .contains("Barrage-Partitions")
        );
        let mut producing = sample();
        producing.partitions = PartitionTotals::from([
            (
                0,
                PartitionCounts {
                    records: 3,
                    bytes: 300,
                },
            ),
            (
                2,
                PartitionCounts {
                    records: 1,
                    bytes: 90,
                },
            ),
        ]);
        let blob = encode_interval_blob(&producing).unwrap();
        assert!(
            blob.contains("#[Barrage-Partitions: {\"0\":{\"records\":3,\"bytes\":300},\"2\":{\"records\":1,\"bytes\":90}}]\n"),
            "{blob}"
        );
        assert_eq!(decode_interval_blob(&blob).unwrap(), producing);
    }

    #[test]
    fn a_blob_is_a_standard_interval_log() {
        let blob = encode_interval_blob(&sample()).unwrap();
        let entries = hlog::parse_log(&blob, &DecodeLimits::default()).unwrap();
        let tags: Vec<_> = entries.iter().map(|e| e.tag.clone().unwrap()).collect();
        assert_eq!(tags, vec!["lag", "produce"]);
        assert_eq!(entries[1].histogram.len(), 4);
    }

    #[test]
    fn a_log_without_the_interval_line_is_refused() {
        let err = decode_interval_blob("#[Histogram log format version 1.3]\n").unwrap_err();
        assert!(err.to_string().contains("Barrage-Interval"), "{err}");
    }

    #[test]
    fn missing_counter_fields_default_to_zero() {
        let c: IntervalCounters = serde_json::from_str("{\"acked\":3}").unwrap();
        assert_eq!(c.acked, 3);
        assert_eq!(c.sent, 0);
    }
}
