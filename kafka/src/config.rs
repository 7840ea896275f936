//! The one pure function from a spec to librdkafka settings (vector's `to_rdkafka`).
//!
//! Typed knobs first, then the allow-listed `properties` (validation in `barrage-crds` has
//! already rejected anything outside the allow-list), then security. Secrets are resolved
//! before this point and passed in; they are never read from the spec.

use barrage_crds::spec::{KafkaSpec, OffsetReset, SaslMechanism, SecurityProtocol};
use rdkafka::ClientConfig;

/// Credentials fetched from the referenced secret (Secrets Manager or SSM).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SaslCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Settings shared by every client: connection and security.
pub fn base_config(kafka: &KafkaSpec, sasl: Option<&SaslCredentials>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.bootstrap_servers);
    // Fail fast and visibly on a cluster that does not answer, rather than retrying forever.
    c.set("socket.connection.setup.timeout.ms", "10000");
    c.set("log.connection.close", "false");
    let security = &kafka.security;
    match security.protocol {
        SecurityProtocol::AwsMskIam => {
            c.set("security.protocol", "SASL_SSL");
            c.set("sasl.mechanisms", "OAUTHBEARER");
        }
        other => {
            c.set("security.protocol", other.as_str());
        }
    }
    if let Some(s) = &security.sasl {
        c.set("sasl.mechanisms", s.mechanism.as_str());
        if let Some(creds) = sasl {
            c.set("sasl.username", &creds.username);
            c.set("sasl.password", &creds.password);
        } else if let Some(user) = &s.username {
            c.set("sasl.username", user);
        }
        if s.mechanism == SaslMechanism::Plain && !security.protocol.uses_tls() {
            tracing::warn!("SASL PLAIN without TLS sends the password in clear text.");
        }
    }
    if let Some(ssl) = &security.ssl {
        if let Some(ca) = &ssl.ca_location {
            c.set("ssl.ca.location", ca);
        }
        c.set(
            "ssl.endpoint.identification.algorithm",
            if ssl.endpoint_identification {
                "https"
            } else {
                "none"
            },
        );
    }
    c
}

/// Producer settings: base, typed knobs, then the allow-listed properties.
pub fn producer_config(kafka: &KafkaSpec, sasl: Option<&SaslCredentials>) -> ClientConfig {
    let mut c = base_config(kafka, sasl);
    let p = &kafka.producer;
    c.set("acks", p.acks.as_str());
    c.set("linger.ms", format_ms(p.linger.as_std()));
    c.set("batch.size", p.batch_size.to_string());
    c.set("compression.type", p.compression.as_str());
    c.set("enable.idempotence", p.idempotence.to_string());
    c.set("partitioner", p.partitioner.as_str());
    // Room for the in-flight bound; the engine enforces the bound itself.
    let queue = p.max_in_flight.max(1000).saturating_mul(2).min(10_000_000);
    c.set("queue.buffering.max.messages", queue.to_string());
    for (k, v) in &p.properties {
        c.set(k, v);
    }
    c
}

/// Consumer settings: base, typed knobs, then the allow-listed properties.
pub fn consumer_config(
    kafka: &KafkaSpec,
    sasl: Option<&SaslCredentials>,
    group_id: &str,
) -> ClientConfig {
    let mut c = base_config(kafka, sasl);
    let cs = &kafka.consumer;
    c.set("group.id", cs.group_id.as_deref().unwrap_or(group_id));
    c.set(
        "auto.offset.reset",
        match cs.auto_offset_reset {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
        },
    );
    c.set("enable.auto.commit", "true");
    c.set("enable.partition.eof", "false");
    for (k, v) in &cs.properties {
        c.set(k, v);
    }
    c
}

/// librdkafka takes fractional milliseconds for linger.
fn format_ms(d: std::time::Duration) -> String {
    let micros = d.as_micros();
    if micros.is_multiple_of(1000) {
        (micros / 1000).to_string()
    } else {
        format!("{}.{:03}", micros / 1000, micros % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barrage_crds::loadtest::LoadTest;

    fn kafka() -> KafkaSpec {
        LoadTest::example("t", "127.0.0.1:9092", "topic").spec.kafka
    }

    #[test]
    fn typed_knobs_become_librdkafka_settings() {
        let c = producer_config(&kafka(), None);
        assert_eq!(c.get("bootstrap.servers"), Some("127.0.0.1:9092"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("linger.ms"), Some("5"));
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("security.protocol"), Some("PLAINTEXT"));
    }

    #[test]
    fn allow_listed_properties_override_defaults() {
        let mut k = kafka();
        k.producer
            .properties
            .insert("queue.buffering.max.kbytes".into(), "2048".into());
        let c = producer_config(&k, None);
        assert_eq!(c.get("queue.buffering.max.kbytes"), Some("2048"));
    }

    #[test]
    fn resolved_sasl_credentials_are_set_and_redacted_in_debug() {
        let mut k = kafka();
        k.security.protocol = SecurityProtocol::SaslSsl;
        k.security.sasl = Some(barrage_crds::spec::SaslSpec {
            mechanism: SaslMechanism::ScramSha512,
            username: Some("svc".into()),
            credentials: barrage_crds::spec::SecretRef {
                secrets_manager_arn: Some("arn:aws:secretsmanager:us-east-1:1:secret:x".into()),
                ssm_parameter: None,
            },
        });
        let creds = SaslCredentials {
            username: "svc".into(),
            password: "canary-secret".into(),
        };
        let c = producer_config(&k, Some(&creds));
        assert_eq!(c.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("sasl.password"), Some("canary-secret"));
        assert!(!format!("{creds:?}").contains("canary-secret"));
    }

    #[test]
    fn msk_iam_is_oauthbearer_over_tls_with_no_static_credentials() {
        let mut k = kafka();
        k.security.protocol = SecurityProtocol::AwsMskIam;
        k.security.region = Some("eu-west-1".into());
        let c = consumer_config(&k, None, "g");
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(c.get("sasl.mechanisms"), Some("OAUTHBEARER"));
        assert_eq!(c.get("sasl.username"), None);
        assert_eq!(c.get("sasl.password"), None);
    }

    #[test]
    fn fractional_linger_is_kept() {
        assert_eq!(format_ms(std::time::Duration::from_micros(2500)), "2.500");
        assert_eq!(format_ms(std::time::Duration::from_millis(20)), "20");
    }
}
