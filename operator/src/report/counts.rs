//! Interval blobs decoded as bucket counts, for the merge's fast path.
//!
//! [`decode_interval_blob`](super::decode_interval_blob) builds one full histogram per tag per
//! blob (an agent's histogram spans an hour: 184 KiB of counters, mostly empty) only for the
//! merge to walk it and add it elsewhere. [`BlobDecoder`] reads the same text straight into
//! `(index, count)` pairs with buffers reused from blob to blob, and
//! [`Merger::add_counts`](super::merge::Merger::add_counts) adds them at their indexes. The
//! checks and the errors are those of `decode_interval_blob` (the same hardened decoder reads
//! every histogram); a test decodes random blobs both ways and compares the reports byte for
//! byte.
//!
//! [`decode_parallel`] decodes a batch of blobs on a few threads; the caller adds them in the
//! batch's order, so the merge stays deterministic.

use barrage_crds::hlog::{self, DecodeLimits, DecodeScratch, HistogramConfig, HlogError};
use barrage_crds::names::HistogramTag;
use hdrhistogram::Histogram;
use serde::Deserialize;

use super::ReportError;
use super::blob::{AgentInterval, COUNTERS_COMMENT, INTERVAL_COMMENT, IntervalCounters};
use barrage_crds::interval::{
    ConsumerLag, PartitionTotals, decode_consumer_lag, decode_partitions,
};

/// One tag's histogram of a blob, as non-zero counts.
#[derive(Debug, Clone, Default)]
pub struct TagCounts {
    /// The tag (`produce` for untagged lines).
    pub tag: HistogramTag,
    /// The histogram's configuration (of its first line, when a tag has several).
    pub config: HistogramConfig,
    /// `(index, count)` pairs, indexes in `config`'s counts array.
    pub counts: Vec<(u32, u64)>,
    /// The sum of the counts (the histogram's length).
    pub total: u64,
}

/// One agent interval with its histograms as counts: [`AgentInterval`] without the histograms.
#[derive(Debug, Clone, Default)]
pub struct IntervalCounts {
    /// The agent's slot.
    pub slot: u32,
    /// Its incarnation.
    pub incarnation: u32,
    /// The interval index.
    pub index: u32,
    /// Start, epoch milliseconds.
    pub start_ms: u64,
    /// Length, milliseconds.
    pub length_ms: u64,
    /// The agent's counters, if the blob carried them.
    pub counters: Option<IntervalCounters>,
    /// The consumer's lag by partition at the interval's end (empty when none was sampled).
    pub consumer_lag: ConsumerLag,
    /// Records acknowledged by partition (empty when the agent produced nothing).
    pub partitions: PartitionTotals,
    /// Buffers by tag; the first `used` are this blob's, sorted by tag, tags unique.
    tags: Vec<TagCounts>,
    used: usize,
}

impl IntervalCounts {
    /// This blob's histograms by tag, sorted by tag.
    pub fn tags(&self) -> &[TagCounts] {
        &self.tags[..self.used]
    }

    /// The counters, or the ones implied by the `produce` histogram when the blob had none
    /// (as [`AgentInterval::effective_counters`]).
    pub fn effective_counters(&self) -> IntervalCounters {
        match &self.counters {
            Some(c) => c.clone(),
            None => {
                let n = self.produced();
                IntervalCounters {
                    sent: n,
                    acked: n,
                    ..IntervalCounters::default()
                }
            }
        }
    }

    /// Values in the `produce` histogram.
    pub fn produced(&self) -> u64 {
        self.tags()
            .iter()
            .find(|t| t.tag == HistogramTag::Produce)
            .map_or(0, |t| t.total)
    }

    fn clear(&mut self) {
        self.used = 0;
        self.counters = None;
        self.consumer_lag.clear();
        self.partitions.clear();
    }

    /// Adds a tag's counts, merging with an earlier line of the same tag.
    fn push(
        &mut self,
        tag: &str,
        config: HistogramConfig,
        counts: &[(u32, u64)],
    ) -> Result<(), HlogError> {
        let total = counts.iter().fold(0u64, |t, (_, c)| t.saturating_add(*c));
        if let Some(t) = self.tags[..self.used].iter_mut().find(|t| t.tag == tag) {
            if !t.config.is_compatible_with(&config) {
                return Err(HlogError::ConfigMismatch {
                    expected: t.config,
                    found: config,
                });
            }
            t.counts.extend_from_slice(counts);
            t.total = t.total.saturating_add(total);
            return Ok(());
        }
        if self.used == self.tags.len() {
            self.tags.push(TagCounts::default());
        }
        let t = &mut self.tags[self.used];
        t.tag = HistogramTag::from(tag);
        t.config = config;
        t.counts.clear();
        t.counts.extend_from_slice(counts);
        t.total = total;
        self.used += 1;
        Ok(())
    }

    fn sort_tags(&mut self) {
        self.tags[..self.used].sort_by(|a, b| a.tag.cmp(&b.tag));
    }

    /// The counts of an already decoded interval (its histograms walked once).
    pub fn from_interval(interval: &AgentInterval) -> IntervalCounts {
        let mut out = IntervalCounts {
            slot: interval.slot,
            incarnation: interval.incarnation,
            index: interval.index,
            start_ms: interval.start_ms,
            length_ms: interval.length_ms,
            counters: interval.counters.clone(),
            consumer_lag: interval.consumer_lag.clone(),
            partitions: interval.partitions.clone(),
            tags: Vec::with_capacity(interval.histograms.len()),
            used: 0,
        };
        for (tag, h) in &interval.histograms {
            let config = hlog::histogram_config_of(h);
            out.tags.push(TagCounts {
                tag: tag.clone(),
                config,
                counts: histogram_counts(config, h),
                total: h.len(),
            });
        }
        out.used = out.tags.len();
        out
    }
}

/// The non-zero counts of `h` by index in `config`'s counts array.
pub fn histogram_counts(config: HistogramConfig, h: &Histogram<u64>) -> Vec<(u32, u64)> {
    h.iter_recorded()
        .map(|v| {
            let i = config.index_of(v.value_iterated_to());
            (u32::try_from(i).unwrap_or(u32::MAX), v.count_at_value())
        })
        .collect()
}

/// Where an interval sits: the blob's `Barrage-Interval` line.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    slot: u32,
    incarnation: u32,
    index: u32,
    start_ms: u64,
    length_ms: u64,
}

/// The JSON inside a `#[Prefix: {...}]` comment line.
fn comment_json<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        line.trim()
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(']'))
    })
}

fn blob_err(what: &str, message: impl Into<String>) -> ReportError {
    ReportError::Blob {
        what: what.to_string(),
        message: message.into(),
    }
}

/// Decodes interval blobs into [`IntervalCounts`], reusing its buffers from blob to blob.
#[derive(Debug, Default)]
pub struct BlobDecoder {
    scratch: DecodeScratch,
    line: Vec<(u32, u64)>,
}

impl BlobDecoder {
    /// A decoder with empty buffers.
    pub fn new() -> BlobDecoder {
        BlobDecoder::default()
    }

    /// Decodes `text` (an interval blob) into `out`, with the checks and errors of
    /// [`decode_interval_blob_with`](super::blob::decode_interval_blob_with).
    pub fn decode(
        &mut self,
        text: &str,
        limits: &DecodeLimits,
        out: &mut IntervalCounts,
    ) -> Result<(), ReportError> {
        out.clear();
        let what = "interval blob";
        let header_json = comment_json(text, INTERVAL_COMMENT)
            .ok_or_else(|| blob_err(what, "no #[Barrage-Interval: …] line"))?;
        let header: Header = serde_json::from_str(header_json)
            .map_err(|e| blob_err(what, format!("Barrage-Interval: {e}")))?;
        let what = || {
            format!(
                "interval {} of agent {}-{}",
                header.index, header.slot, header.incarnation
            )
        };
        out.counters = match comment_json(text, COUNTERS_COMMENT) {
            Some(json) => Some(
                serde_json::from_str::<IntervalCounters>(json)
                    .map_err(|e| blob_err(&what(), format!("Barrage-Counters: {e}")))?,
            ),
            None => None,
        };
        out.consumer_lag = decode_consumer_lag(text, &what())?;
        out.partitions = decode_partitions(text, &what())?;
        if header.length_ms == 0 {
            return Err(blob_err(&what(), "interval length is 0 ms"));
        }
        out.slot = header.slot;
        out.incarnation = header.incarnation;
        out.index = header.index;
        out.start_ms = header.start_ms;
        out.length_ms = header.length_ms;
        hlog::visit_log_counts(text, limits, &mut self.scratch, &mut self.line, |entry| {
            out.push(
                entry.tag.unwrap_or(HistogramTag::Produce.as_str()),
                entry.config,
                entry.counts,
            )
        })
        .map_err(|source| ReportError::Hlog {
            what: what(),
            source,
        })?;
        out.sort_tags();
        Ok(())
    }
}

/// Decodes `texts` into `out` (one [`IntervalCounts`] per text, in order, buffers reused) on up
/// to `threads` threads. The first error (in text order) is returned.
pub fn decode_parallel<S: AsRef<str> + Sync>(
    texts: &[S],
    limits: &DecodeLimits,
    threads: usize,
    decoders: &mut Vec<BlobDecoder>,
    out: &mut Vec<IntervalCounts>,
) -> Result<(), ReportError> {
    if out.len() < texts.len() {
        out.resize_with(texts.len(), IntervalCounts::default);
    }
    let out = &mut out[..texts.len()];
    let threads = threads.clamp(1, texts.len().max(1));
    if decoders.len() < threads {
        decoders.resize_with(threads, BlobDecoder::new);
    }
    if threads == 1 {
        let decoder = &mut decoders[0];
        for (text, slot) in texts.iter().zip(out.iter_mut()) {
            decoder.decode(text.as_ref(), limits, slot)?;
        }
        return Ok(());
    }
    let chunk = texts.len().div_ceil(threads);
    let results: Vec<Result<(), ReportError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = texts
            .chunks(chunk)
            .zip(out.chunks_mut(chunk))
            .zip(decoders.iter_mut())
            .map(|((texts, outs), decoder)| {
                scope.spawn(move || {
                    for (text, slot) in texts.iter().zip(outs.iter_mut()) {
                        decoder.decode(text.as_ref(), limits, slot)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(ReportError::Invalid(
                        "a blob decoding thread panicked".into(),
                    ))
                })
            })
            .collect()
    });
    results.into_iter().collect()
}

/// Threads worth decoding on: the machine's parallelism, at most 8.
pub fn decode_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}
