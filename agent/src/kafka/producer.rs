//! The rdkafka producer adapter: a threaded producer whose delivery callback records
//! latencies straight into the [`Recorder`], with no future per record.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};

use crate::recorder::Recorder;

/// The engine's clock: nanoseconds since the run's origin, monotonic.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    pub fn new(origin: Instant) -> Self {
        Clock { origin }
    }

    /// The instant that offset 0 stands for.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Nanoseconds since the origin (0 before it).
    pub fn now_ns(&self) -> u64 {
        u64::try_from(
            Instant::now()
                .saturating_duration_since(self.origin)
                .as_nanos(),
        )
        .unwrap_or(u64::MAX)
    }

    /// The instant of offset `ns`.
    pub fn at(&self, ns: u64) -> Instant {
        self.origin + std::time::Duration::from_nanos(ns)
    }
}

/// What the sender remembers about a record until its delivery report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendMeta {
    pub intended_ns: u64,
    pub sent_ns: u64,
    pub bytes: u32,
}

// The delivery opaque is a 64-bit word.
const _: () = assert!(
    usize::BITS == 64,
    "the packed delivery opaque needs a 64-bit target"
);

/// Bits of the packed send time (µs since the origin): 2^42 µs is 50 days, runs last at most 31.
const SENT_BITS: u32 = 42;
/// Bits of the packed lag's mantissa; the remaining 5 bits hold its exponent.
const LAG_MANTISSA_BITS: u32 = 17;

impl SendMeta {
    /// Packs the send and intended times into the delivery opaque itself, so that sending
    /// allocates nothing and the delivery thread has nothing to fetch from the sender's cache
    /// (a boxed copy cost one malloc, one cross-thread free and a cache miss per record).
    ///
    /// The send time is kept in whole µs (42 bits); the schedule lag (send − intended) as a
    /// small float, a 17-bit mantissa and a 5-bit exponent, so its relative error is below
    /// 2^-16 — far under the histograms' three significant digits. The record size is not
    /// packed: the delivery report carries the payload.
    pub fn pack(&self) -> usize {
        let sent_us = (self.sent_ns / 1_000).min((1 << SENT_BITS) - 1);
        let lag_us = self.sent_ns.saturating_sub(self.intended_ns) / 1_000;
        let exp = (u64::BITS - lag_us.leading_zeros()).saturating_sub(LAG_MANTISSA_BITS);
        let mantissa = lag_us >> exp;
        let lag = (u64::from(exp) << LAG_MANTISSA_BITS) | mantissa;
        usize::try_from((lag << SENT_BITS) | sent_us).unwrap_or(usize::MAX)
    }

    /// The times a packed opaque stands for, in ns (whole µs); `bytes` is 0.
    pub fn unpack(opaque: usize) -> SendMeta {
        let word = opaque as u64;
        let sent_us = word & ((1 << SENT_BITS) - 1);
        let lag = word >> SENT_BITS;
        let exp = lag >> LAG_MANTISSA_BITS;
        let mantissa = lag & ((1 << LAG_MANTISSA_BITS) - 1);
        let lag_us = mantissa << exp;
        SendMeta {
            intended_ns: sent_us.saturating_sub(lag_us) * 1_000,
            sent_ns: sent_us * 1_000,
            bytes: 0,
        }
    }
}

/// Producer context: delivery reports go to the recorder.
pub struct DeliveryRecorder {
    pub recorder: Arc<Recorder>,
    /// The run's clock, set when the run starts (nothing is sent before).
    pub clock: Arc<OnceLock<Clock>>,
}

// MSK IAM: librdkafka asks for a token on its own thread; the refresher thread keeps one.
impl ClientContext for DeliveryRecorder {
    barrage_kafka::msk_iam_tokens!();
}

impl ProducerContext for DeliveryRecorder {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let now = self.clock.get().map_or(0, Clock::now_ns);
        match result {
            Ok(message) => {
                let meta = SendMeta::unpack(opaque);
                self.recorder.record_ack(
                    message.partition(),
                    meta.intended_ns,
                    meta.sent_ns,
                    now,
                    message.payload_len() as u64,
                );
            }
            Err((error, _)) => self.recorder.counters().error(&error_kind(error)),
        }
    }
}

/// A short, stable name for an error, used as the key of the errors-by-kind counter.
pub fn error_kind(error: &KafkaError) -> String {
    match error {
        KafkaError::MessageProduction(code) => format!("{code:?}"),
        KafkaError::Transaction(e) => format!("Transaction{:?}", e.code()),
        other => {
            let text = format!("{other:?}");
            text.split(['(', ' ', '{'])
                .next()
                .unwrap_or("Unknown")
                .to_string()
        }
    }
}

/// True for errors that retrying the same record will not fix (size, auth, unknown topic).
pub fn is_permanent(error: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    match error {
        KafkaError::MessageProduction(code) => matches!(
            code,
            C::MessageSizeTooLarge
                | C::InvalidMessageSize
                | C::UnknownTopicOrPartition
                | C::UnknownTopic
                | C::TopicAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::SaslAuthenticationFailed
                | C::Authentication
                | C::InvalidRecord
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn error_kinds_are_short_and_stable() {
        let e = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert_eq!(error_kind(&e), "MessageSizeTooLarge");
        assert!(is_permanent(&e));
        let q = KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull);
        assert!(!is_permanent(&q));
    }

    #[test]
    fn a_packed_opaque_keeps_the_times_to_the_microsecond() {
        let day_ns = 24 * 3600 * 1_000_000_000_u64;
        let cases = [
            (0, 0),
            (5_000, 5_999),
            (1_000_000, 1_000_000),
            (10_000_000, 11_400_000_123),       // a 1.4 s stall
            (3 * day_ns, 3 * day_ns + 250_000), // days into a soak
            (0, 31 * day_ns),                   // the longest run, sent at its very end
            (7, 31 * day_ns + 3_600_000_000_000),
        ];
        for (intended_ns, sent_ns) in cases {
            let meta = SendMeta {
                intended_ns,
                sent_ns,
                bytes: 100,
            };
            let back = SendMeta::unpack(meta.pack());
            assert_eq!(back.sent_ns, sent_ns / 1_000 * 1_000, "{meta:?}");
            let lag = sent_ns - intended_ns;
            let back_lag = back.sent_ns - back.intended_ns;
            let tolerance = 1_000 + lag / 65_536;
            assert!(
                back_lag.abs_diff(lag) <= tolerance,
                "lag {lag} came back as {back_lag} ({meta:?})"
            );
        }
    }

    #[test]
    fn the_clock_counts_from_its_origin() {
        let c = Clock::new(Instant::now() + std::time::Duration::from_secs(60));
        assert_eq!(c.now_ns(), 0, "before the origin the clock reads 0");
        let c = Clock::new(Instant::now());
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(c.now_ns() >= 2_000_000);
    }
}
