//! The `LoadTest` resource: Kubernetes shape (`apiVersion`, `kind`, `metadata`, `spec`, `status`),
//! read from YAML or JSON and written back.
//!
//! Parsing goes through a `serde_json::Value` so that every error names the field path
//! (`spec.load.steps[1].constant.rate: invalid type: ...`). Validation lives in [`crate::validate`].

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;
use crate::spec::{
    AgentsSpec, ConstantStep, KafkaSpec, LoadSpec, LoadStep, LoadTestSpec, RecordsSpec, ReportSpec,
    SecuritySpec, TimeoutsSpec, TopicSpec, ValueSpec, WorkloadKind, WorkloadSpec,
};
use crate::status::{LoadTestStatus, Phase};

/// The API version of this resource.
pub const API_VERSION: &str = "barrage.dev/v1alpha1";
/// The kind of this resource.
pub const KIND: &str = "LoadTest";

/// A load test against a Kafka cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "LoadTest")]
pub struct LoadTest {
    /// Always `barrage.dev/v1alpha1`.
    pub api_version: String,
    /// Always `LoadTest`.
    pub kind: String,
    /// Name, labels and bookkeeping.
    pub metadata: ObjectMeta,
    /// The desired state.
    pub spec: LoadTestSpec,
    /// The observed state, written by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<LoadTestStatus>,
}

/// Object metadata, Kubernetes shape.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// Name: 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit.
    pub name: String,
    /// Labels (copied to agent tasks as tags).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations (free text for people and tools).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Unique id, set by the store on creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Incremented by the store on every spec change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Opaque version of the stored record, for optimistic concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// When the record was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<DateTime<Utc>>,
    /// When deletion was requested; the controller cancels the run and removes its finalizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<DateTime<Utc>>,
    /// Finalizers that must be removed before the record goes away.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

/// A document that could not be read as a LoadTest: the field path and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Field path (`spec.load.steps[1].constant.rate`), or empty for the whole document.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

impl LoadTest {
    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The phase, `Pending` when there is no status yet.
    pub fn phase(&self) -> Phase {
        self.status.as_ref().map_or(Phase::Pending, |s| s.phase)
    }

    /// Reads a LoadTest from YAML (JSON is YAML too). Does not validate: see
    /// [`crate::validate::parse_and_validate`].
    pub fn from_yaml(text: &str) -> Result<LoadTest, ParseError> {
        from_value(yaml_to_value(text)?)
    }

    /// Reads a LoadTest from JSON. Does not validate.
    pub fn from_json(text: &str) -> Result<LoadTest, ParseError> {
        from_value(json_to_value(text)?)
    }

    /// Reads YAML or JSON (JSON when the first non-blank character is `{`). Does not validate.
    pub fn from_text(text: &str) -> Result<LoadTest, ParseError> {
        from_value(text_to_value(text)?)
    }

    /// Writes YAML (maps, never YAML tags, so any YAML reader understands it).
    pub fn to_yaml(&self) -> String {
        let value = self.to_value();
        serde_yaml::to_string(&value).unwrap_or_else(|e| format!("# cannot write YAML: {e}\n"))
    }

    /// Writes pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_value()).unwrap_or_else(|e| format!("\"{e}\""))
    }

    /// The resource as a JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The resource without status, as stored in the `doc` attribute.
    pub fn without_status(&self) -> LoadTest {
        LoadTest {
            status: None,
            ..self.clone()
        }
    }

    /// A minimal valid Produce test for tests: 100-byte values, a constant 100 records/s for 5s,
    /// one agent, other settings at their defaults.
    pub fn example(name: &str, bootstrap: &str, topic: &str) -> LoadTest {
        LoadTest {
            api_version: API_VERSION.to_string(),
            kind: KIND.to_string(),
            metadata: ObjectMeta {
                name: name.to_string(),
                ..ObjectMeta::default()
            },
            spec: LoadTestSpec {
                kafka: KafkaSpec {
                    bootstrap_servers: bootstrap.to_string(),
                    security: SecuritySpec::default(),
                    producer: Default::default(),
                    consumer: Default::default(),
                },
                topic: TopicSpec {
                    name: topic.to_string(),
                    create: None,
                    cleanup: Default::default(),
                },
                workload: WorkloadSpec {
                    kind: WorkloadKind::Produce,
                    records: RecordsSpec {
                        value: ValueSpec::Size(100),
                        ..RecordsSpec::default()
                    },
                    backlog: None,
                },
                load: LoadSpec {
                    steps: vec![LoadStep::Constant(ConstantStep {
                        rate: 100.0,
                        duration: HumanDuration::from_secs(5),
                    })],
                    duration: None,
                    max_duration: None,
                    warmup: None,
                },
                agents: AgentsSpec::default(),
                thresholds: Vec::new(),
                report: ReportSpec::default(),
                timeouts: TimeoutsSpec::default(),
                paused: false,
                stop: false,
                rerun: 0,
            },
            status: None,
        }
    }
}

/// Largest document read (bytes): LoadTests are a few kilobytes; this bounds parse time.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

fn check_size(text: &str) -> Result<(), ParseError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(ParseError {
            path: String::new(),
            message: format!(
                "the document is {} bytes; at most {MAX_DOCUMENT_BYTES} bytes are read",
                text.len()
            ),
        });
    }
    Ok(())
}

/// Parses YAML into a JSON value; a key written twice in one mapping is an error.
pub(crate) fn yaml_to_value(text: &str) -> Result<serde_json::Value, ParseError> {
    check_size(text)?;
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize::<_, StrictValue>(de)
        .map(|v| v.0)
        .map_err(|e| reading_error("YAML", &e))
}

/// Parses JSON into a JSON value; a key written twice in one object is an error.
pub(crate) fn json_to_value(text: &str) -> Result<serde_json::Value, ParseError> {
    check_size(text)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize::<_, StrictValue>(&mut de)
        .map_err(|e| reading_error("JSON", &e))?;
    de.end().map_err(|e| ParseError {
        path: String::new(),
        message: format!("not valid JSON: {e}"),
    })?;
    Ok(value.0)
}

fn reading_error<E: fmt::Display>(format: &str, e: &serde_path_to_error::Error<E>) -> ParseError {
    let path = format_path(e.path());
    let message = e.inner().to_string();
    // serde_yaml puts its own path and the location around custom messages.
    if let Some(at) = message.find(DUPLICATE_KEY)
        && let Some((key, _)) = message[at + DUPLICATE_KEY.len()..].split_once('`')
    {
        return ParseError {
            path: join_key(&path, key),
            message: "is written twice in the same mapping".to_string(),
        };
    }
    ParseError {
        path,
        message: format!("not valid {format}: {message}"),
    }
}

const DUPLICATE_KEY: &str = "duplicate key `";

/// A JSON value read from YAML or JSON that refuses duplicate keys and non-finite numbers
/// (both formats otherwise keep the last duplicate silently).
struct StrictValue(serde_json::Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(serde_json::Value::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(serde_json::Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        serde_json::Number::from_f64(v)
            .map(serde_json::Value::Number)
            .ok_or_else(|| E::custom(format!("numbers must be finite (got {v})")))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(serde_json::Value::String(v.to_string()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(serde_json::Value::String(v))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        StrictValue::deserialize(d).map(|v| v.0)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("{DUPLICATE_KEY}{key}`")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// JSON when the document starts with `{`, YAML otherwise.
pub(crate) fn text_to_value(text: &str) -> Result<serde_json::Value, ParseError> {
    if text.trim_start().starts_with('{') {
        json_to_value(text)
    } else {
        yaml_to_value(text)
    }
}

/// Deserializes a LoadTest, naming the path of the first problem.
pub(crate) fn from_value(value: serde_json::Value) -> Result<LoadTest, ParseError> {
    if !value.is_object() {
        return Err(ParseError {
            path: String::new(),
            message: format!(
                "expected a LoadTest mapping with apiVersion, kind, metadata and spec (got {})",
                kind_of(&value)
            ),
        });
    }
    serde_path_to_error::deserialize::<_, LoadTest>(value).map_err(|e| {
        let path = format_path(e.path());
        let secret = path.starts_with("spec.kafka")
            && e.path().iter().next_back().is_some_and(|seg| match seg {
                serde_path_to_error::Segment::Map { key } => crate::validate::is_secret_key(key),
                _ => false,
            });
        let message = if secret {
            crate::validate::inline_secret_message().to_string()
        } else {
            e.inner().to_string()
        };
        ParseError { path, message }
    })
}

pub(crate) fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// True for keys that can be written after a dot in a path.
pub(crate) fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Appends a key to a path: `a.b`, or `a["x.y"]` for keys that are not identifiers.
pub(crate) fn join_key(path: &str, key: &str) -> String {
    if is_plain_key(key) {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    } else {
        format!("{path}[{key:?}]")
    }
}

/// `spec.load.steps[1].constant.rate`.
pub(crate) fn format_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => out = join_key(&out, key),
            Segment::Enum { variant } => out = join_key(&out, variant),
            Segment::Unknown => out = join_key(&out, "?"),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::spec::Acks;

    #[test]
    fn example_round_trips_through_yaml_and_json() {
        let lt = LoadTest::example("demo", "127.0.0.1:9092", "t");
        assert_eq!(LoadTest::from_yaml(&lt.to_yaml()).unwrap(), lt);
        assert_eq!(LoadTest::from_json(&lt.to_json()).unwrap(), lt);
        assert_eq!(lt.name(), "demo");
        assert_eq!(lt.phase(), Phase::Pending);
        assert_eq!(lt.spec.load.expected_records(), 500);
    }

    #[test]
    fn yaml_output_uses_maps_not_tags() {
        let y = LoadTest::example("demo", "127.0.0.1:9092", "t").to_yaml();
        assert!(!y.contains('!'), "{y}");
        assert!(y.contains("constant:"), "{y}");
        assert!(y.contains("size: 100"), "{y}");
    }

    #[test]
    fn parse_errors_name_the_path() {
        let mut v = LoadTest::example("demo", "127.0.0.1:9092", "t").to_value();
        v["spec"]["load"]["steps"][0]["constant"]["rate"] = serde_json::json!("fast");
        let err = from_value(v).unwrap_err();
        assert_eq!(err.path, "spec.load.steps[0].constant.rate");
        assert!(err.message.contains("invalid type"), "{err}");
    }

    #[test]
    fn an_inline_password_is_explained_even_without_validation() {
        let mut v = LoadTest::example("demo", "127.0.0.1:9092", "t").to_value();
        v["spec"]["kafka"]["security"] = serde_json::json!({"protocol": "SASL_SSL",
            "sasl": {"mechanism": "PLAIN", "password": "x", "credentials": {"ssmParameter": "/p"}}});
        let err = from_value(v).unwrap_err();
        assert_eq!(err.path, "spec.kafka.security.sasl.password");
        assert!(
            err.message.starts_with("inline secrets are not accepted"),
            "{err}"
        );
    }

    #[test]
    fn acks_accepts_strings_and_numbers() {
        for (text, acks) in [
            ("\"all\"", Acks::All),
            ("-1", Acks::All),
            ("1", Acks::Leader),
            ("\"0\"", Acks::None),
        ] {
            assert_eq!(serde_json::from_str::<Acks>(text).unwrap(), acks);
        }
        assert!(serde_json::from_str::<Acks>("2").is_err());
    }

    #[test]
    fn oversized_documents_are_refused_before_parsing() {
        let big = format!("a: \"{}\"", "x".repeat(MAX_DOCUMENT_BYTES));
        let err = LoadTest::from_yaml(&big).unwrap_err();
        assert!(
            err.message.contains("at most 1048576 bytes are read"),
            "{err}"
        );
        assert!(LoadTest::from_json(&big).is_err());
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_path() {
        let y = "apiVersion: x\nspec:\n  load:\n    steps:\n      - constant: {rate: 1, rate: 2}\n";
        let err = LoadTest::from_yaml(y).unwrap_err();
        assert_eq!(err.path, "spec.load.steps[0].constant.rate");
        assert_eq!(err.message, "is written twice in the same mapping");
        let err = LoadTest::from_json(r#"{"kind": "a", "kind": "b"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "kind: is written twice in the same mapping"
        );
        let err = LoadTest::from_json(r#"{"kind": "a"} x"#).unwrap_err();
        assert!(
            err.message
                .starts_with("not valid JSON: trailing characters"),
            "{err}"
        );
        let err = LoadTest::from_yaml("a: .nan\n").unwrap_err();
        assert!(err.message.contains("numbers must be finite"), "{err}");
    }

    #[test]
    fn keys_with_dots_are_quoted_in_paths() {
        assert_eq!(
            join_key("spec.kafka.producer.properties", "linger.ms"),
            "spec.kafka.producer.properties[\"linger.ms\"]"
        );
        assert_eq!(join_key("", "spec"), "spec");
    }
}
