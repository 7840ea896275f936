//! The client properties a spec may pass to librdkafka (`spec.kafka.producer.properties`,
//! `spec.kafka.consumer.properties`): allow-listed keys only; secrets, connection settings and
//! keys that have a typed field are refused, and a misspelt key gets a suggestion.

use std::collections::BTreeMap;

use super::{V, inline_secret_message, limits};
use crate::loadtest::join_key;

/// True for keys that hold secrets (`password`, `sasl.password`, `ssl.key.password`, `…secret`).
pub(crate) fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let last = k.rsplit(['.', '_', '-']).next().unwrap_or(&k);
    matches!(last, "password" | "secret" | "passwd" | "pass")
        || k.contains("password")
        || k == "sasl.oauthbearer.client.secret"
        || k == "sasl.jaas.config"
}

fn typed_field_for(key: &str, kind: &str) -> Option<&'static str> {
    match (kind, key) {
        ("producer", "acks" | "request.required.acks") => Some("spec.kafka.producer.acks"),
        ("producer", "linger.ms" | "queue.buffering.max.ms") => Some("spec.kafka.producer.linger"),
        ("producer", "batch.size") => Some("spec.kafka.producer.batchSize"),
        ("producer", "compression.type" | "compression.codec") => {
            Some("spec.kafka.producer.compression")
        }
        ("producer", "enable.idempotence") => Some("spec.kafka.producer.idempotence"),
        ("producer", "partitioner") => Some("spec.kafka.producer.partitioner"),
        ("producer", "transactional.id") => Some("spec.workload.records.transactional"),
        ("consumer", "group.id") => Some("spec.kafka.consumer.groupId"),
        ("consumer", "auto.offset.reset") => Some("spec.kafka.consumer.autoOffsetReset"),
        _ => None,
    }
}

pub(super) fn check_properties(
    v: &mut V,
    base: &str,
    props: &BTreeMap<String, String>,
    allowed: &[&str],
    kind: &str,
) {
    for (key, value) in props {
        let path = join_key(base, key);
        if is_secret_key(key) {
            v.err(path, inline_secret_message());
            continue;
        }
        if let Some(field) = typed_field_for(key, kind) {
            v.err(path, format!("is set with {field}; use that field instead"));
            continue;
        }
        if key == "bootstrap.servers"
            || key == "metadata.broker.list"
            || key == "security.protocol"
            || key.starts_with("sasl.")
            || key.starts_with("ssl.")
            || key.starts_with("ssl_")
        {
            v.err(
                path,
                "connection and security settings belong in spec.kafka.bootstrapServers and spec.kafka.security",
            );
            continue;
        }
        if !allowed.contains(&key.as_str()) {
            let hint = closest(key, allowed)
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            v.err(
                path,
                format!(
                    "is not an allowed {kind} property{hint}; allowed: {}",
                    allowed.join(", ")
                ),
            );
            continue;
        }
        if value.trim().is_empty() {
            v.err(path, "must not be empty");
        } else if value.len() > limits::MAX_PROPERTY_VALUE_LEN {
            v.err(
                path,
                format!(
                    "must be at most {} characters (got {})",
                    limits::MAX_PROPERTY_VALUE_LEN,
                    value.len()
                ),
            );
        } else if value.chars().any(char::is_control) {
            v.err(path, "must not contain control characters");
        }
    }
}

/// The allowed name closest to `key` (edit distance at most 2).
fn closest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(key, a), *a))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(256).collect();
    let b: Vec<char> = b.chars().take(256).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::spec::ALLOWED_PRODUCER_PROPERTIES;

    #[test]
    fn secret_keys_are_recognised() {
        for k in [
            "password",
            "sasl.password",
            "ssl.key.password",
            "Password",
            "sasl.jaas.config",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["secretsManagerArn", "ssmParameter", "username", "linger.ms"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }
    #[test]
    fn edit_distance_suggests_close_names() {
        assert_eq!(
            closest("request.timout.ms", ALLOWED_PRODUCER_PROPERTIES),
            Some("request.timeout.ms")
        );
        assert_eq!(
            closest("totally.different", ALLOWED_PRODUCER_PROPERTIES),
            None
        );
    }
}
