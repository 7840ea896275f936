//! Consume's backlog (`spec.workload.backlog`): before the start, each agent writes its share of
//! the records, as fast as the producer takes them, and waits until every one is acknowledged,
//! so the run measures how fast the group drains a known backlog.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use barrage_crds::schedule::Share;
use barrage_crds::spec::LoadTestSpec;
use barrage_kafka::config::{SaslCredentials, producer_config};
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use tracing::info;

use crate::job::{self, JobError};
use crate::keys::KeyGen;
use crate::payload::{PayloadError, RecordAt};

/// How long writing the backlog may take, per million records of an agent's share (and at
/// least a minute): the cost guard allows 20 million per agent.
const LIMIT_PER_MILLION: Duration = Duration::from_secs(60);

/// Why the backlog could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BacklogError {
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("spec.workload.records.value: {0}")]
    Value(#[from] PayloadError),
    #[error("the backlog producer: {0}")]
    Kafka(#[from] KafkaError),
    #[error("{failed} of {records} backlog records failed (the last error: {last})")]
    Failed {
        records: u64,
        failed: u64,
        last: String,
    },
    #[error("the backlog was not acknowledged within {limit:?}: {acked} of {records} records")]
    Timeout {
        records: u64,
        acked: u64,
        limit: Duration,
    },
}

/// This agent's records of a backlog of `total`: the first index and the count, agents'
/// shares differing by at most one and covering `0..total` exactly.
pub fn share_of(total: u64, share: Share) -> (u64, u64) {
    let of = u64::from(share.of.max(1));
    let slot = u64::from(share.slot).min(of - 1);
    let (base, extra) = (total / of, total % of);
    (
        slot * base + slot.min(extra),
        base + u64::from(slot < extra),
    )
}

/// Counts acknowledgements.
#[derive(Default)]
struct Acks {
    acked: AtomicU64,
    failed: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
}

struct BacklogContext(Arc<Acks>);

impl ClientContext for BacklogContext {
    barrage_kafka::msk_iam_tokens!();
}

impl ProducerContext for BacklogContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.acked.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                *self
                    .0
                    .last_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.to_string());
                self.0.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Writes this agent's share of `spec.workload.backlog` to the topic (blocking: call it off
/// the async workers) and returns the records written; `Ok(0)` without a backlog.
pub fn write(
    spec: &LoadTestSpec,
    run_id: &str,
    share: Share,
    sasl: Option<&SaslCredentials>,
) -> Result<u64, BacklogError> {
    let Some(backlog) = &spec.workload.backlog else {
        return Ok(0);
    };
    let total = backlog
        .record_count(&spec.workload.records.value)
        .unwrap_or(backlog.records);
    let (first, count) = share_of(total, share);
    let acks = Arc::new(Acks::default());
    let producer: BaseProducer<BacklogContext> =
        producer_config(&spec.kafka, sasl).create_with_context(BacklogContext(acks.clone()))?;
    let mut values = job::values(spec, run_id)?;
    let mut keys = KeyGen::new(
        job::key_plan(spec),
        job::agent_seed(spec, run_id, share.slot),
    );
    let started = Instant::now();
    let base_millis = chrono::Utc::now().timestamp_millis();
    let topic = spec.topic.name.as_str();
    let headers =
        spec.workload
            .records
            .headers
            .iter()
            .fold(OwnedHeaders::new(), |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                })
            });
    for index in first..first + count {
        let value = values.value(RecordAt::nth(index, base_millis))?;
        let mut record = BaseRecord::to(topic).payload(value);
        if headers.count() > 0 {
            record = record.headers(headers.clone());
        }
        if let Some(key) = keys.next_key(index) {
            record = record.key(key);
        }
        send(&producer, record)?;
    }
    let limit = LIMIT_PER_MILLION.mul_f64((count as f64 / 1e6).max(1.0));
    let left = limit.saturating_sub(started.elapsed());
    // A flush that times out is told apart below by the acknowledgements still missing.
    let _ = producer.flush(left);
    finish(&acks, count, limit)?;
    info!(
        records = count,
        first_index = first,
        secs = started.elapsed().as_secs_f64(),
        "Wrote this agent's share of the backlog."
    );
    Ok(count)
}

/// Hands one record to librdkafka, waiting while its queue is full.
fn send(
    producer: &BaseProducer<BacklogContext>,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> Result<(), BacklogError> {
    loop {
        match producer.send(record) {
            Ok(()) => {
                producer.poll(Duration::ZERO);
                return Ok(());
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

fn finish(acks: &Acks, records: u64, limit: Duration) -> Result<(), BacklogError> {
    let (acked, failed) = (
        acks.acked.load(Ordering::Relaxed),
        acks.failed.load(Ordering::Relaxed),
    );
    if failed > 0 {
        let last = acks
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or_default();
        return Err(BacklogError::Failed {
            records,
            failed,
            last,
        });
    }
    if acked < records {
        return Err(BacklogError::Timeout {
            records,
            acked,
            limit,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shares_cover_the_backlog_exactly_once() {
        for (total, agents) in [(10, 3), (2, 5), (1_000_001, 4), (0, 2), (7, 1)] {
            let mut next = 0;
            for slot in 0..agents {
                let (first, count) = share_of(total, Share::new(slot, agents));
                assert_eq!(first, next, "{total} over {agents}, slot {slot}");
                next += count;
                assert!(count.abs_diff(total / u64::from(agents)) <= 1);
            }
            assert_eq!(next, total, "{total} over {agents}");
        }
    }
}
