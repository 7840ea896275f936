//! The `Topics` port: deleting the topic a run created (`cleanup: DeleteIfCreated`), with the
//! adapter over Kafka's admin API. Tests give the runtime a fake.

use std::time::Duration;

use async_trait::async_trait;
use backon::Retryable;
use barrage_crds::backoff::Backoff;
use barrage_crds::spec::KafkaSpec;
use barrage_kafka::admin::{Admin, AdminError};
use barrage_kafka::config::base_config;
use barrage_kafka::credentials::{CredentialsError, prepare_security};
use tracing::warn;

/// Why a topic could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The credentials `spec.kafka.security` references could not be had.
    #[error("preparing the Kafka credentials: {0}")]
    Credentials(#[from] CredentialsError),
    /// The admin client failed or the cluster refused.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// A fake's scripted failure, or an adapter's own.
    #[error("{0}")]
    Other(String),
}

/// Deletes topics of the cluster a LoadTest names.
#[async_trait]
pub trait Topics: Send + Sync {
    /// Deletes `topic` on the cluster of `kafka`; a topic that is already gone counts as
    /// deleted.
    async fn delete(&self, kafka: &KafkaSpec, topic: &str) -> Result<(), TopicError>;
}

/// Kafka's admin API, with the spec's connection settings and credentials: up to four
/// attempts of 10 s each, a jittered backoff of 0.5–4 s between them, each retry logged.
#[derive(Debug, Default, Clone, Copy)]
pub struct KafkaTopics;

/// 500 ms doubling to 4 s, jittered.
const TOPIC_DELETE_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
/// Retries after the first attempt.
const TOPIC_DELETE_RETRIES: u32 = 3;
/// Each attempt's own timeout.
const TOPIC_DELETE_TIMEOUT: Duration = Duration::from_secs(10);

#[async_trait]
impl Topics for KafkaTopics {
    async fn delete(&self, kafka: &KafkaSpec, topic: &str) -> Result<(), TopicError> {
        let sasl = prepare_security(kafka).await?;
        let admin = Admin::new(&base_config(kafka, sasl.as_ref()))?;
        let attempt = || async { admin.delete_topic(topic, TOPIC_DELETE_TIMEOUT).await };
        attempt
            .retry(
                TOPIC_DELETE_BACKOFF
                    .delays(TOPIC_DELETE_RETRIES, barrage_store::aws::jitter_seed()),
            )
            .notify(|e: &AdminError, after: Duration| {
                warn!(
                    topic,
                    retry_in_ms = after.as_millis(),
                    "Deleting the topic failed; retrying: {e}"
                );
            })
            .await?;
        Ok(())
    }
}
