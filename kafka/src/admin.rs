//! Topic administration and the reachability check: make sure the broker answers, make sure
//! the topic exists (creating it when asked), delete it at the end only if this run created it.
//!
//! The reachability probe runs on a client whose events are polled (rdkafka's `AdminClient`
//! never polls its main queue): so a refused login or a failed TLS handshake (unknown CA,
//! host-name mismatch, expired certificate) is reported with its cause at once instead of a
//! bare timeout, and an MSK IAM token can be handed to it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::OAuthToken;
use rdkafka::error::KafkaError;
use rdkafka::producer::{NoCustomPartitioner, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext};
use tracing::info;

use crate::msk_iam::SecurityContext;

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
    #[error("TLS to Kafka at {bootstrap} failed: {reason} ({hint})")]
    Tls {
        bootstrap: String,
        reason: String,
        hint: &'static str,
    },
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
    #[error("could not delete consumer group {group}: {code:?}")]
    DeleteGroup {
        group: String,
        code: RDKafkaErrorCode,
    },
    #[error("Kafka admin request failed")]
    Kafka(#[from] KafkaError),
    #[error("the admin task failed: {0}")]
    Task(String),
}

/// What deleting a consumer group found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupDeletion {
    /// Deleted now.
    Deleted,
    /// It no longer exists (deleted already, or it never stored anything).
    Gone,
    /// Members are still in it: the last one to leave deletes it.
    InUse,
}

/// Topic administration through one admin client.
pub struct Admin {
    client: Arc<AdminClient<SecurityContext>>,
    config: ClientConfig,
    bootstrap: String,
}

/// Why the cluster refused the probe, as librdkafka reported it.
#[derive(Debug, Clone, PartialEq)]
enum Refusal {
    Authentication(String),
    Tls(String),
}

impl Refusal {
    fn of(code: Option<RDKafkaErrorCode>, reason: &str) -> Option<Refusal> {
        match code {
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => {
                Some(Refusal::Authentication(reason.to_string()))
            }
            Some(RDKafkaErrorCode::SSL) => Some(Refusal::Tls(reason.to_string())),
            _ if reason.contains("SSL handshake failed") => Some(Refusal::Tls(reason.to_string())),
            _ => None,
        }
    }

    fn into_error(self, bootstrap: &str) -> AdminError {
        let bootstrap = bootstrap.to_string();
        match self {
            Refusal::Authentication(reason) => AdminError::Authentication { bootstrap, reason },
            Refusal::Tls(reason) => AdminError::Tls {
                bootstrap,
                hint: tls_hint(&reason),
                reason,
            },
        }
    }
}

/// What to check for a failed TLS handshake, from OpenSSL's words in librdkafka's reason.
fn tls_hint(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("expired") {
        "the broker's certificate has expired: renew it on the broker"
    } else if r.contains("mismatch") || r.contains("hostname") || r.contains("host name") {
        "the broker's certificate does not name the host in bootstrapServers: use a name it has, or set spec.kafka.security.ssl.endpointIdentification: false"
    } else if r.contains("issuer") || r.contains("self-signed") || r.contains("self signed") {
        "the broker's certificate is not signed by a CA this client trusts: set spec.kafka.security.ssl.caLocation to the CA bundle that signed it"
    } else if r.contains("wrong version number") || r.contains("packet length") {
        "the listener does not speak TLS: check spec.kafka.security.protocol and the port"
    } else {
        "check spec.kafka.security.ssl and the broker's TLS listener"
    }
}

/// The probe's context: remembers the last refusal (login or TLS) librdkafka reported, and
/// serves MSK IAM tokens.
#[derive(Default)]
struct ProbeContext {
    refusal: Mutex<Option<Refusal>>,
}

impl ClientContext for ProbeContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn error(&self, error: KafkaError, reason: &str) {
        match Refusal::of(error.rdkafka_error_code(), reason) {
            Some(refusal) => {
                *self.refusal.lock().unwrap_or_else(PoisonError::into_inner) = Some(refusal);
            }
            None => tracing::debug!(%error, reason, "librdkafka error while probing the cluster."),
        }
    }

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        crate::msk_iam::oauth_token()
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
                let refusal = probe
                    .context()
                    .refusal
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if metadata.is_ok() || refusal.is_some() || left <= Duration::from_millis(500) {
                    return Ok::<_, KafkaError>((metadata, refusal));
                }
                // An attempt that failed at once (no broker yet) must not spin.
                std::thread::sleep(Duration::from_millis(100).saturating_sub(attempt.elapsed()));
            }
        })
        .await
        .map_err(|e| AdminError::Task(e.to_string()))??;
        let metadata = match result {
            (Ok(metadata), _) => metadata,
            (Err(_), Some(refusal)) => return Err(self.explain(refusal).await),
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

    /// The error for `refusal`; a TLS one names the check that failed, found by a handshake
    /// of our own with the same trust settings ([`crate::tls`]).
    async fn explain(&self, refusal: Refusal) -> AdminError {
        let Refusal::Tls(reason) = refusal else {
            return refusal.into_error(&self.bootstrap);
        };
        let trust = crate::tls::Trust {
            ca_location: self.config.get("ssl.ca.location").map(String::from),
            verify_host: self
                .config
                .get("ssl.endpoint.identification.algorithm")
                .is_none_or(|a| a.eq_ignore_ascii_case("https")),
        };
        let bootstrap = self.bootstrap.clone();
        let cause = tokio::task::spawn_blocking(move || crate::tls::diagnose(&bootstrap, &trust))
            .await
            .ok()
            .flatten();
        let reason = match cause {
            Some(cause) => format!("{cause} ({reason})"),
            None => reason,
        };
        Refusal::Tls(reason).into_error(&self.bootstrap)
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

    /// Deletes the consumer group `group` (its committed offsets). Callers only do this for
    /// the group a run named after itself. Kafka refuses while members remain: `InUse`.
    pub async fn delete_group(
        &self,
        group: &str,
        timeout: Duration,
    ) -> Result<GroupDeletion, AdminError> {
        let opts = AdminOptions::new().operation_timeout(Some(timeout));
        let mut outcome = GroupDeletion::Gone;
        for r in self.client.delete_groups(&[group], &opts).await? {
            outcome = match r {
                Ok(_) => GroupDeletion::Deleted,
                Err((_, RDKafkaErrorCode::GroupIdNotFound)) => GroupDeletion::Gone,
                Err((_, RDKafkaErrorCode::NonEmptyGroup)) => GroupDeletion::InUse,
                Err((group, code)) => return Err(AdminError::DeleteGroup { group, code }),
            };
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_handshake_and_a_refused_login_are_refusals_other_errors_are_not() {
        let tls = "ssl://h:9093/bootstrap: SSL handshake failed: certificate verify failed";
        assert_eq!(
            Refusal::of(Some(RDKafkaErrorCode::SSL), "x"),
            Some(Refusal::Tls("x".into()))
        );
        assert_eq!(
            Refusal::of(Some(RDKafkaErrorCode::BrokerTransportFailure), tls),
            Some(Refusal::Tls(tls.into()))
        );
        assert_eq!(
            Refusal::of(Some(RDKafkaErrorCode::SaslAuthenticationFailed), "bad"),
            Some(Refusal::Authentication("bad".into()))
        );
        assert_eq!(
            Refusal::of(
                Some(RDKafkaErrorCode::BrokerTransportFailure),
                "Connection refused"
            ),
            None
        );
    }

    #[test]
    fn the_tls_hint_follows_the_check_that_failed() {
        assert!(tls_hint("certificate has expired (…)").contains("expired"));
        assert!(tls_hint("IP address mismatch (…)").contains("endpointIdentification"));
        assert!(tls_hint("Hostname mismatch (…)").contains("endpointIdentification"));
        assert!(tls_hint("self-signed certificate in certificate chain").contains("caLocation"));
        assert!(tls_hint("unable to get local issuer certificate").contains("caLocation"));
        assert!(tls_hint("wrong version number").contains("protocol"));
        assert!(tls_hint("something else").contains("spec.kafka.security.ssl"));
    }
}
