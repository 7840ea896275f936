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
#[derive(Debug, Clone, Copy)]
pub struct SendMeta {
    pub intended_ns: u64,
    pub sent_ns: u64,
    pub bytes: u32,
}

/// Producer context: delivery reports go to the recorder.
pub struct DeliveryRecorder {
    pub recorder: Arc<Recorder>,
    /// The run's clock, set when the run starts (nothing is sent before).
    pub clock: Arc<OnceLock<Clock>>,
}

impl ClientContext for DeliveryRecorder {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    /// MSK IAM: librdkafka asks for a token on its own thread; the refresher thread keeps one.
    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        crate::kafka::msk_iam::oauth_token()
    }
}

impl ProducerContext for DeliveryRecorder {
    type DeliveryOpaque = Box<SendMeta>;

    fn delivery(&self, result: &DeliveryResult<'_>, meta: Self::DeliveryOpaque) {
        let now = self.clock.get().map_or(0, Clock::now_ns);
        match result {
            Ok(message) => self.recorder.record_ack(
                message.partition(),
                meta.intended_ns,
                meta.sent_ns,
                now,
                u64::from(meta.bytes),
            ),
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
    fn the_clock_counts_from_its_origin() {
        let c = Clock::new(Instant::now() + std::time::Duration::from_secs(60));
        assert_eq!(c.now_ns(), 0, "before the origin the clock reads 0");
        let c = Clock::new(Instant::now());
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(c.now_ns() >= 2_000_000);
    }
}
