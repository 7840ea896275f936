//! Topic administration and the reachability check: make sure the broker answers, make sure
//! the topic exists (creating it when asked), delete it at the end only if this run created it.
//!
//! The reachability probe runs on a client whose events are polled (rdkafka's `AdminClient`
//! never polls its main queue): so a refused login is reported as an authentication error
//! instead of a bare timeout, and an MSK IAM token can be handed to it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::OAuthToken;
use rdkafka::error::KafkaError;
use rdkafka::producer::{NoCustomPartitioner, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext};
use tracing::info;

use crate::kafka::msk_iam::SecurityContext;

/// What ensuring the topic did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicOutcome {
    /// This run created the topic (so it may delete it at the end).
    Created,
    /// The topic was already there.
    Existed,
}

/// A topic to create when it does not exist.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicCreate {
    pub partitions: i32,
    pub replication_factor: i32,
    pub configs: Vec<(String, String)>,
}

impl TopicCreate {
    /// What the spec's `topic.create` asks for.
    pub fn from_spec(create: &barrage_crds::spec::TopicCreate) -> Self {
        TopicCreate {
            partitions: create.partitions,
            replication_factor: create.replication_factor,
            configs: create.configs.clone().into_iter().collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot reach Kafka at {bootstrap}: no broker answered within {timeout:?} ({source})")]
    Unreachable {
        bootstrap: String,
        timeout: Duration,
        #[source]
        source: KafkaError,
    },
    #[error(
        "Kafka at {bootstrap} refused the login: {reason} (check spec.kafka.security and the credentials it references)"
    )]
    Authentication { bootstrap: String, reason: String },
    #[error("topic {topic} does not exist and spec.topic.create is not set")]
    TopicMissing { topic: String },
    #[error("could not create topic {topic}: {code:?}")]
    CreateTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("could not delete topic {topic}: {code:?}")]
    DeleteTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("Kafka admin request failed")]
    Kafka(#[from] KafkaError),
    #[error("the admin task failed: {0}")]
    Task(String),
}

/// Topic administration through one admin client.
pub struct Admin {
    client: Arc<AdminClient<SecurityContext>>,
    config: ClientConfig,
    bootstrap: String,
}

/// The probe's context: remembers the last authentication error librdkafka reported, and
/// serves MSK IAM tokens.
#[derive(Default)]
struct ProbeContext {
    auth_error: Mutex<Option<String>>,
}

impl ClientContext for ProbeContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        if matches!(
            code,
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed)
        ) {
            *self
                .auth_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(reason.to_string());
        } else {
            tracing::debug!(%error, reason, "librdkafka error while probing the cluster.");
        }
    }

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        crate::kafka::msk_iam::oauth_token()
    }
}

impl ProducerContext for ProbeContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

impl Admin {
    /// An admin client with the same connection settings as the producer.
    pub fn new(config: &ClientConfig) -> Result<Self, AdminError> {
        let bootstrap = config.get("bootstrap.servers").unwrap_or("").to_string();
        let client = Arc::new(
            config.create_with_context::<_, AdminClient<SecurityContext>>(SecurityContext)?,
        );
        Ok(Admin {
            client,
            config: config.clone(),
            bootstrap,
        })
    }

    /// Waits at most `timeout` for the cluster's metadata: proves a broker answers. Returns
    /// the partition count of `topic` if it exists.
    pub async fn probe(&self, topic: &str, timeout: Duration) -> Result<Option<usize>, AdminError> {
        // All topics, not just this one: asking for one topic by name can make a broker with
        // auto.create.topics.enable create it.
        let config = self.config.clone();
        let result = tokio::task::spawn_blocking(move || {
            // A threaded producer polls its events: errors and token requests are served.
            let probe: ThreadedProducer<ProbeContext, NoCustomPartitioner> =
                config.create_with_context(ProbeContext::default())?;
            // Short attempts until the deadline, so a refused login ends the wait at once.
            let deadline = std::time::Instant::now() + timeout;
            loop {
                let attempt = std::time::Instant::now();
                let left = deadline.saturating_duration_since(attempt);
                let metadata = probe
                    .client()
                    .fetch_metadata(None, left.min(Duration::from_millis(500)));
                let auth_error = probe
                    .context()
                    .auth_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if metadata.is_ok() || auth_error.is_some() || left <= Duration::from_millis(500) {
                    return Ok::<_, KafkaError>((metadata, auth_error));
                }
                // An attempt that failed at once (no broker yet) must not spin.
                std::thread::sleep(Duration::from_millis(100).saturating_sub(attempt.elapsed()));
            }
        })
        .await
        .map_err(|e| AdminError::Task(e.to_string()))??;
        let metadata = match result {
            (Ok(metadata), _) => metadata,
            (Err(_), Some(reason)) => {
                return Err(AdminError::Authentication {
                    bootstrap: self.bootstrap.clone(),
                    reason,
                });
            }
            (Err(source), None) => {
                return Err(AdminError::Unreachable {
                    bootstrap: self.bootstrap.clone(),
                    timeout,
                    source,
                });
            }
        };
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len()))
    }

    /// Makes sure `topic` exists. "Already exists" is success.
    pub async fn ensure_topic(
        &self,
        topic: &str,
        create: Option<&TopicCreate>,
        timeout: Duration,
    ) -> Result<TopicOutcome, AdminError> {
        let existing = self.probe(topic, timeout).await?;
        let Some(create) = create else {
            return match existing {
                Some(_) => Ok(TopicOutcome::Existed),
                None => Err(AdminError::TopicMissing {
                    topic: topic.to_string(),
                }),
            };
        };
        if existing.is_some() {
            return Ok(TopicOutcome::Existed);
        }
        let mut new_topic = NewTopic::new(
            topic,
            create.partitions,
            TopicReplication::Fixed(create.replication_factor),
        );
        for (k, v) in &create.configs {
            new_topic = new_topic.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(timeout));
        let results = self.client.create_topics([&new_topic], &opts).await?;
        for r in results {
            match r {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => return Ok(TopicOutcome::Existed),
                Err((name, code)) => return Err(AdminError::CreateTopic { topic: name, code }),
            }
        }
        info!(topic, partitions = create.partitions, "Created the topic.");
        Ok(TopicOutcome::Created)
    }

    /// Deletes `topic`. Callers only do this for topics this run created.
    pub async fn delete_topic(&self, topic: &str, timeout: Duration) -> Result<(), AdminError> {
        let opts = AdminOptions::new().operation_timeout(Some(timeout));
        for r in self.client.delete_topics(&[topic], &opts).await? {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((name, code)) => return Err(AdminError::DeleteTopic { topic: name, code }),
            }
        }
        info!(topic, "Deleted the topic this run created.");
        Ok(())
    }
}
