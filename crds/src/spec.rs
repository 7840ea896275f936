//! `LoadTestSpec`: what load, at which cluster, from how many agents, for how long, and what must hold.
//!
//! Every struct rejects unknown fields (a typo must not silently change a test) and uses camelCase
//! names. Every default lives in [`defaults`] and in the `Default` impls below, nowhere else.
//! The doc comments on fields become the descriptions in the generated JSON Schema.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;
use crate::names::HistogramTag;

/// Every default value of the spec, in one place.
pub mod defaults {
    use crate::duration::HumanDuration;

    /// Default fixed value size in bytes.
    pub const VALUE_SIZE: u32 = 100;
    /// Default producer linger.
    pub const LINGER: HumanDuration = HumanDuration::from_millis(5);
    /// Default producer batch size in bytes.
    pub const BATCH_SIZE: u32 = 65_536;
    /// Default records in flight per agent.
    pub const MAX_IN_FLIGHT: u32 = 100_000;
    /// Default key cardinality.
    pub const KEY_CARDINALITY: u64 = 1000;
    /// Default zipf exponent.
    pub const KEY_EXPONENT: f64 = 1.0;
    /// Default records per transaction.
    pub const RECORDS_PER_TRANSACTION: u32 = 1;
    /// Default agent count.
    pub const AGENT_COUNT: u32 = 1;
    /// Default agent CPU units (1024 = 1 vCPU).
    pub const AGENT_CPU: u32 = 1024;
    /// Default agent memory in MiB.
    pub const AGENT_MEMORY: u32 = 2048;
    /// Default agent restarts per slot.
    pub const AGENT_MAX_RESTARTS: u32 = 3;
    /// Default fraction of agents Ready before the start.
    pub const AGENT_READY_FRACTION: f64 = 1.0;
    /// Default report interval.
    pub const REPORT_INTERVAL: HumanDuration = HumanDuration::from_secs(10);
    /// Grace added to the load duration when `maxDuration` is not set.
    pub const MAX_DURATION_GRACE: HumanDuration = HumanDuration::from_secs(300);
    /// Default provisioning timeout.
    pub const TIMEOUT_PROVISIONING: HumanDuration = HumanDuration::from_secs(600);
    /// Default ready timeout.
    pub const TIMEOUT_READY: HumanDuration = HumanDuration::from_secs(300);
    /// Default draining timeout.
    pub const TIMEOUT_DRAINING: HumanDuration = HumanDuration::from_secs(120);
    /// Default reporting timeout.
    pub const TIMEOUT_REPORTING: HumanDuration = HumanDuration::from_secs(300);
    /// Default cancelling timeout.
    pub const TIMEOUT_CANCELLING: HumanDuration = HumanDuration::from_secs(300);
}

/// Producer properties accepted in `spec.kafka.producer.properties` (librdkafka names).
///
/// Security settings (`security.protocol`, `sasl.*`, `ssl.*`), `bootstrap.servers` and the keys
/// that have a typed field are deliberately absent.
pub const ALLOWED_PRODUCER_PROPERTIES: &[&str] = &[
    "batch.num.messages",
    "client.id",
    "connections.max.idle.ms",
    "delivery.timeout.ms",
    "enable.gapless.guarantee",
    "max.in.flight.requests.per.connection",
    "message.copy.max.bytes",
    "message.max.bytes",
    "message.send.max.retries",
    "message.timeout.ms",
    "metadata.max.age.ms",
    "queue.buffering.backpressure.threshold",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.messages",
    "receive.message.max.bytes",
    "reconnect.backoff.max.ms",
    "reconnect.backoff.ms",
    "request.timeout.ms",
    "retries",
    "retry.backoff.max.ms",
    "retry.backoff.ms",
    "socket.connection.setup.timeout.ms",
    "socket.keepalive.enable",
    "socket.nagle.disable",
    "socket.receive.buffer.bytes",
    "socket.send.buffer.bytes",
    "socket.timeout.ms",
    "sticky.partitioning.linger.ms",
    "topic.metadata.refresh.interval.ms",
    "transaction.timeout.ms",
];

/// Consumer properties accepted in `spec.kafka.consumer.properties` (librdkafka names).
pub const ALLOWED_CONSUMER_PROPERTIES: &[&str] = &[
    "auto.commit.interval.ms",
    "check.crcs",
    "client.id",
    "connections.max.idle.ms",
    "enable.auto.commit",
    "enable.partition.eof",
    "fetch.error.backoff.ms",
    "fetch.max.bytes",
    "fetch.message.max.bytes",
    "fetch.min.bytes",
    "fetch.queue.backoff.ms",
    "fetch.wait.max.ms",
    "heartbeat.interval.ms",
    "isolation.level",
    "max.partition.fetch.bytes",
    "max.poll.interval.ms",
    "metadata.max.age.ms",
    "partition.assignment.strategy",
    "queued.max.messages.kbytes",
    "queued.min.messages",
    "receive.message.max.bytes",
    "reconnect.backoff.max.ms",
    "reconnect.backoff.ms",
    "session.timeout.ms",
    "socket.connection.setup.timeout.ms",
    "socket.keepalive.enable",
    "socket.nagle.disable",
    "socket.receive.buffer.bytes",
    "socket.send.buffer.bytes",
    "socket.timeout.ms",
    "topic.metadata.refresh.interval.ms",
];

/// The desired state of a load test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadTestSpec {
    /// The Kafka cluster to load: bootstrap servers, security, producer and consumer settings.
    pub kafka: KafkaSpec,
    /// The topic to write to and read from: an existing one, or one this run creates.
    pub topic: TopicSpec,
    /// What each agent does (Produce, Consume or RoundTrip) and what records look like.
    pub workload: WorkloadSpec,
    /// The load profile: total records per second across the fleet, as a list of steps.
    pub load: LoadSpec,
    /// How many agents run the load and how big each one is.
    #[serde(default)]
    pub agents: AgentsSpec,
    /// What must hold for the run to pass, e.g. `produce.p99 < 50ms`; evaluated over the whole run and per window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
    /// How often agents report, the rolling window for soaks, and where reports go.
    #[serde(default)]
    pub report: ReportSpec,
    /// Timeouts of the non-terminal phases: nothing sits forever.
    #[serde(default)]
    pub timeouts: TimeoutsSpec,
    /// When true, agents keep their connections and heartbeats but send nothing, from a few seconds after the change (`status.fleet.effectiveAt`, the same instant for every agent); set back to false, the load resumes on the shared schedule at the rate the profile has then. The run's length does not change; paused time is not counted as dropped or as a shortfall, and reports show the paused spans (`status.fleet.pausedSpans`). Consume workloads keep reading.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    /// When true, the run stops early: agents drain and the report is written with what was measured.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stop: bool,
    /// Run the same spec again: any new value (e.g. CI's build number, or what `barrage rerun` writes) starts a new run; while a run is live it is superseded. Writing the same spec again never starts a run (default 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rerun: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl LoadTestSpec {
    /// The digest of the whole spec: equal specs, however they were written (YAML or JSON,
    /// defaults spelled out or not), have equal digests. The controller records the digest of
    /// the spec it observed, so a record put again by hand is known to be the same.
    pub fn digest(&self) -> String {
        crate::digest::of_json(self)
    }

    /// The digest of what a run cannot change while it runs. A live run takes a new load
    /// profile, agent count, `paused` and `stop` (the agents re-split on a shared clock), and
    /// what only the controller uses: `agents.readyFraction` and `agents.maxRestarts`,
    /// `thresholds` and `timeouts`. Anything else (the cluster, topic, workload, records,
    /// agent size, report settings, `rerun`) changes what the agents do: a live run whose spec
    /// changes this digest is superseded by a new run.
    pub fn run_digest(&self) -> String {
        let mut fixed = self.clone();
        fixed.load = LoadSpec {
            steps: Vec::new(),
            duration: None,
            max_duration: None,
            warmup: None,
        };
        fixed.agents.count = 0;
        fixed.agents.ready_fraction = 0.0;
        fixed.agents.max_restarts = 0;
        fixed.thresholds = Vec::new();
        fixed.timeouts = TimeoutsSpec::default();
        fixed.paused = false;
        fixed.stop = false;
        crate::digest::of_json(&fixed)
    }
}

fn default_true() -> bool {
    true
}

// ---------------------------------------------------------------------------------------------
// Kafka
// ---------------------------------------------------------------------------------------------

/// Connection to the Kafka cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaSpec {
    /// Comma-separated `host:port` list of brokers, e.g. `b-1.example:9098,b-2.example:9098`.
    pub bootstrap_servers: String,
    /// Security protocol and credentials (references only, never inline secrets).
    #[serde(default)]
    pub security: SecuritySpec,
    /// Producer settings (Produce and RoundTrip).
    #[serde(default)]
    pub producer: ProducerSpec,
    /// Consumer settings (Consume and RoundTrip).
    #[serde(default)]
    pub consumer: ConsumerSpec,
}

/// Security protocol and credentials.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecuritySpec {
    /// Security protocol: PLAINTEXT (default), SSL, SASL_PLAINTEXT, SASL_SSL or AWS_MSK_IAM.
    #[serde(default)]
    pub protocol: SecurityProtocol,
    /// SASL mechanism and credentials reference; required for SASL_PLAINTEXT and SASL_SSL, forbidden otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<SaslSpec>,
    /// TLS settings for SSL, SASL_SSL and AWS_MSK_IAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl: Option<SslSpec>,
    /// AWS region used to sign MSK IAM authentication (AWS_MSK_IAM only); defaults to the agent's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// Kafka security protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    #[default]
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    /// TLS without SASL.
    #[serde(rename = "SSL")]
    Ssl,
    /// SASL without TLS.
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext,
    /// SASL over TLS.
    #[serde(rename = "SASL_SSL")]
    SaslSsl,
    /// Amazon MSK IAM authentication (SASL OAUTHBEARER over TLS, signed with the task role).
    #[serde(rename = "AWS_MSK_IAM")]
    AwsMskIam,
}

impl SecurityProtocol {
    /// The name as written in the spec.
    pub fn as_str(&self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
            SecurityProtocol::AwsMskIam => "AWS_MSK_IAM",
        }
    }

    /// True for the protocols that need `sasl`.
    pub fn needs_sasl(&self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// True for the protocols that use TLS.
    pub fn uses_tls(&self) -> bool {
        matches!(
            self,
            SecurityProtocol::Ssl | SecurityProtocol::SaslSsl | SecurityProtocol::AwsMskIam
        )
    }
}

/// SASL mechanism and the reference to its credentials.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SaslSpec {
    /// SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    pub mechanism: SaslMechanism,
    /// User name; when absent the referenced secret must hold JSON `{"username": ..., "password": ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Where the password is stored: exactly one of a Secrets Manager ARN or an SSM parameter.
    pub credentials: SecretRef,
}

/// SASL mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SaslMechanism {
    /// SASL/PLAIN.
    #[serde(rename = "PLAIN")]
    Plain,
    /// SASL/SCRAM-SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// SASL/SCRAM-SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The librdkafka `sasl.mechanism` value.
    pub fn as_str(&self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A reference to a secret. Exactly one field must be set; secrets are never written inline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    /// ARN of an AWS Secrets Manager secret, e.g. `arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka-load-AbCdEf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager_arn: Option<String>,
    /// Name (e.g. `/barrage/kafka/password`) or ARN of an SSM SecureString parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssm_parameter: Option<String>,
}

/// TLS settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SslSpec {
    /// Path of a PEM CA bundle inside the agent image; the system trust store when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_location: Option<String>,
    /// Verify the broker host name against its certificate (default true).
    #[serde(default = "default_true")]
    pub endpoint_identification: bool,
}

impl Default for SslSpec {
    fn default() -> Self {
        SslSpec {
            ca_location: None,
            endpoint_identification: true,
        }
    }
}

/// Producer settings. The typed fields are the knobs that decide what is measured; anything else
/// goes through the allow-listed `properties`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ProducerSpec {
    /// Acknowledgements: "0", "1" or "all" (default "all").
    pub acks: Acks,
    /// How long the producer waits to fill a batch (librdkafka `linger.ms`, default 5ms).
    pub linger: HumanDuration,
    /// Maximum batch size in bytes (librdkafka `batch.size`, default 65536).
    pub batch_size: u32,
    /// Compression codec: none (default), gzip, snappy, lz4 or zstd.
    pub compression: Compression,
    /// Idempotent producer (librdkafka `enable.idempotence`, default true; requires acks=all).
    pub idempotence: bool,
    /// Partitioner (librdkafka names): consistent_random (default), murmur2_random (Java-compatible
    /// for keyed records), murmur2 (Java-compatible), random, consistent.
    pub partitioner: Partitioner,
    /// Maximum records in flight per agent before the scheduler waits (default 100000).
    pub max_in_flight: u32,
    /// Other librdkafka producer properties, from an allow-list (ALLOWED_PRODUCER_PROPERTIES in SPEC.md).
    #[serde(
        deserialize_with = "de_scalar_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "scalar_map_schema")]
    pub properties: BTreeMap<String, String>,
}

impl Default for ProducerSpec {
    fn default() -> Self {
        ProducerSpec {
            acks: Acks::All,
            linger: defaults::LINGER,
            batch_size: defaults::BATCH_SIZE,
            compression: Compression::None,
            idempotence: true,
            partitioner: Partitioner::ConsistentRandom,
            max_in_flight: defaults::MAX_IN_FLIGHT,
            properties: BTreeMap::new(),
        }
    }
}

/// Producer acknowledgements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum Acks {
    /// No acknowledgement.
    #[serde(rename = "0")]
    None,
    /// The leader acknowledges.
    #[serde(rename = "1")]
    Leader,
    /// All in-sync replicas acknowledge.
    #[default]
    #[serde(rename = "all")]
    All,
}

impl Acks {
    /// The librdkafka `acks` value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

impl JsonSchema for Acks {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Acks".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Producer acknowledgements: \"0\" (none), \"1\" (the leader) or \"all\" (all in-sync replicas); the numbers 0, 1 and -1 are accepted too.",
            "enum": ["0", "1", "all", 0, 1, -1]
        })
    }
}

impl<'de> Deserialize<'de> for Acks {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Acks;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"0\", \"1\" or \"all\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Acks, E> {
                match v {
                    "0" => Ok(Acks::None),
                    "1" => Ok(Acks::Leader),
                    "all" | "-1" => Ok(Acks::All),
                    other => Err(E::custom(format!(
                        "unknown acks {other:?}: expected \"0\", \"1\" or \"all\""
                    ))),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Acks, E> {
                match v {
                    0 => Ok(Acks::None),
                    1 => Ok(Acks::Leader),
                    -1 => Ok(Acks::All),
                    other => Err(E::custom(format!(
                        "unknown acks {other}: expected \"0\", \"1\" or \"all\""
                    ))),
                }
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Acks, E> {
                match v {
                    0 => Ok(Acks::None),
                    1 => Ok(Acks::Leader),
                    other => Err(E::custom(format!(
                        "unknown acks {other}: expected \"0\", \"1\" or \"all\""
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Compression codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The librdkafka `compression.type` value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Partitioner, with librdkafka's names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Partitioner {
    /// CRC32 of the key; random for records without a key (librdkafka default).
    #[default]
    #[serde(rename = "consistent_random")]
    ConsistentRandom,
    /// Java-compatible murmur2 of the key; random for records without a key.
    #[serde(rename = "murmur2_random")]
    Murmur2Random,
    /// Java-compatible murmur2 of the key; records without a key go to one partition.
    #[serde(rename = "murmur2")]
    Murmur2,
    /// Random partition.
    #[serde(rename = "random")]
    Random,
    /// CRC32 of the key; records without a key go to one partition.
    #[serde(rename = "consistent")]
    Consistent,
}

impl Partitioner {
    /// The librdkafka `partitioner` value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Partitioner::ConsistentRandom => "consistent_random",
            Partitioner::Murmur2Random => "murmur2_random",
            Partitioner::Murmur2 => "murmur2",
            Partitioner::Random => "random",
            Partitioner::Consistent => "consistent",
        }
    }
}

/// Consumer settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ConsumerSpec {
    /// Consumer group id of Consume; default `barrage-{name}-{runId}` (one group per run, shared by its agents, deleted when its last agent leaves at the end; a group named here is kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Where a new group starts: earliest or latest (default latest).
    pub auto_offset_reset: OffsetReset,
    /// Other librdkafka consumer properties, from an allow-list (ALLOWED_CONSUMER_PROPERTIES in SPEC.md).
    #[serde(
        deserialize_with = "de_scalar_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "scalar_map_schema")]
    pub properties: BTreeMap<String, String>,
}

/// Where a consumer group without committed offsets starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OffsetReset {
    /// The oldest retained record.
    Earliest,
    /// Only records written after the consumer joins.
    #[default]
    Latest,
}

// ---------------------------------------------------------------------------------------------
// Topic
// ---------------------------------------------------------------------------------------------

/// The topic under load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicSpec {
    /// Topic name (1 to 249 characters of `a-z A-Z 0-9 . _ -`).
    pub name: String,
    /// Create the topic when it does not exist; without it the topic must already exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<TopicCreate>,
    /// What to do with the topic at the end: Keep (default) or DeleteIfCreated (delete only if this run created it).
    #[serde(default)]
    pub cleanup: TopicCleanup,
}

/// How to create the topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicCreate {
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i32,
    /// Topic configs, e.g. `retention.ms: 3600000`, `min.insync.replicas: 2`.
    #[serde(
        default,
        deserialize_with = "de_scalar_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "scalar_map_schema")]
    pub configs: BTreeMap<String, String>,
}

/// Topic cleanup policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum TopicCleanup {
    /// Leave the topic as it is.
    #[default]
    Keep,
    /// Delete the topic at the end, only if this run created it.
    DeleteIfCreated,
}

// ---------------------------------------------------------------------------------------------
// Workload
// ---------------------------------------------------------------------------------------------

/// What agents do and what records look like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Produce (the seed's WriteKafka), Consume, or RoundTrip (produce and consume, end-to-end latency).
    pub kind: WorkloadKind,
    /// Record values, keys, headers and transactions.
    #[serde(default)]
    pub records: RecordsSpec,
    /// Consume only: records the agents write before the start, while the group's consumers
    /// hold their partitions, so the run measures how fast the group drains them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<BacklogSpec>,
}

/// A backlog for a Consume run to drain: `records`, or `bytes` of fixed-size values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BacklogSpec {
    /// Records written before the start, split evenly over the agents (values, keys and headers
    /// as `records` says, no transactions); every one is acknowledged before an agent reports
    /// Ready. The report's `summary.drain` says when the group's lag first reached
    /// `caughtUp`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub records: u64,
    /// Instead of `records`: the bytes of values to write, with `records.value.size` (a fixed
    /// size): that many records, rounded up.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes: u64,
    /// While the group drains, the agents also produce at the load's rate (`spec.load`), as a
    /// Produce run would: the drain under load. Default false: Consume is not paced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub under_load: bool,
    /// The group's lag (records, over all partitions) at or below which the backlog counts as
    /// drained (default 0; under load, what the producers add in an interval is a fair value).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub caught_up: u64,
}

/// Workload kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum WorkloadKind {
    /// Write records at the scheduled rate.
    Produce,
    /// Read records from the topic for the duration: every agent of the run joins one consumer
    /// group, which splits the partitions; the load rates do not pace consumption (only the
    /// duration is used). Measures records and bytes consumed, errors by kind, and end-to-end
    /// latency from each record's timestamp (producer clock) to its receipt.
    Consume,
    /// Write records and read them back: end-to-end latency, loss and duplication.
    RoundTrip,
}

/// Shape of the records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RecordsSpec {
    /// Record value: `{size: N}`, `{uniformSize: {min, max}}`, `{avro: {...}}` or `{json: {template}}` (default `{size: 100}`).
    pub value: ValueSpec,
    /// Record key distribution (default: no key).
    pub key: KeySpec,
    /// Static headers added to every record.
    #[serde(
        deserialize_with = "de_scalar_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "scalar_map_schema")]
    pub headers: BTreeMap<String, String>,
    /// Records sent together per scheduled event (the seed's records per transaction; default 1).
    /// The load rate counts records, so events happen at rate / recordsPerTransaction.
    pub records_per_transaction: u32,
    /// Wrap each group of recordsPerTransaction records in a real Kafka transaction.
    #[serde(skip_serializing_if = "is_false")]
    pub transactional: bool,
    /// Seed of the record generators: the same records (uuids, random fields, values) in every run; when absent, derived from the run id, so each run has its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Default for RecordsSpec {
    fn default() -> Self {
        RecordsSpec {
            value: ValueSpec::default(),
            key: KeySpec::default(),
            headers: BTreeMap::new(),
            records_per_transaction: defaults::RECORDS_PER_TRANSACTION,
            transactional: false,
            seed: None,
        }
    }
}

/// Record value generator: exactly one of the variants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ValueSpec {
    /// Fixed-size random bytes.
    Size(u32),
    /// Random bytes with a size drawn uniformly in [min, max].
    UniformSize(SizeRange),
    /// Avro binary records from a schema with optional per-field generators.
    Avro(AvroValue),
    /// JSON text from a template.
    Json(JsonValue),
}

impl Default for ValueSpec {
    fn default() -> Self {
        ValueSpec::Size(defaults::VALUE_SIZE)
    }
}

/// An inclusive range of sizes or lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SizeRange {
    /// Smallest value (inclusive).
    pub min: u32,
    /// Largest value (inclusive).
    pub max: u32,
}

/// Avro values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AvroValue {
    /// The Avro schema as inline JSON text (exactly one of schema and schemaFile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Path of an `.avsc` file, relative to the LoadTest file (the CLI inlines it when applying).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_file: Option<String>,
    /// Generators for named fields (dotted paths for nested records); other fields get random values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub generators: BTreeMap<String, FieldGenerator>,
    /// When set, values are framed for the Confluent Schema Registry (magic byte 0 and this schema id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confluent_schema_id: Option<u32>,
}

/// A generator for one Avro field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum FieldGenerator {
    /// Increasing integers from `start`.
    Sequence(SequenceGen),
    /// Integers drawn uniformly in [min, max].
    UniformInt(IntRange),
    /// One of the listed values, chosen uniformly.
    OneOf(Vec<serde_json::Value>),
    /// Always this value.
    Constant(serde_json::Value),
    /// A random UUID string.
    Uuid(Empty),
    /// The send time in milliseconds since the epoch.
    TimestampMillis(Empty),
    /// A random alphanumeric string with a length drawn uniformly in [min, max].
    StringLength(SizeRange),
}

/// Sequence generator settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SequenceGen {
    /// First value (default 0).
    #[serde(default)]
    pub start: i64,
}

/// An inclusive integer range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntRange {
    /// Smallest value (inclusive).
    pub min: i64,
    /// Largest value (inclusive).
    pub max: i64,
}

/// An empty settings object (`{}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// JSON values from a template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JsonValue {
    /// JSON text with placeholders: `{{seq}}`, `{{seq START}}`, `{{uuid}}`, `{{timestampMillis}}`,
    /// `{{int MIN MAX}}` (or `uniformInt`), `{{string LEN}}`, `{{string MIN MAX}}`, `{{oneOf A B ...}}`, `{{bool}}`.
    /// Outside a JSON string a placeholder is one whole JSON value; inside one it inserts escaped text.
    pub template: String,
}

/// Record keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KeySpec {
    /// none (default: records have no key), uniform, sequential or zipf.
    pub distribution: KeyDistribution,
    /// Number of distinct keys (default 1000).
    pub cardinality: u64,
    /// Zipf exponent (zipf only, default 1.0).
    pub exponent: f64,
}

impl Default for KeySpec {
    fn default() -> Self {
        KeySpec {
            distribution: KeyDistribution::None,
            cardinality: defaults::KEY_CARDINALITY,
            exponent: defaults::KEY_EXPONENT,
        }
    }
}

/// How keys are drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyDistribution {
    /// Records have no key.
    #[default]
    None,
    /// Keys drawn uniformly from `cardinality` keys.
    Uniform,
    /// Keys 0, 1, 2, … wrapping at `cardinality`.
    Sequential,
    /// Keys drawn from a Zipf distribution over `cardinality` keys with `exponent`.
    Zipf,
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

/// The load profile (open model): total records per second across the fleet, as steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadSpec {
    /// Steps played in order: `constant: {rate, for}`, `ramp: {from, to, over}`, `staircase: {start, step, every, until}`.
    pub steps: Vec<LoadStep>,
    /// Length of the load; default the sum of the steps. If longer, the last step's final rate holds; if shorter, the load is cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<HumanDuration>,
    /// Hard stop for the Running and Draining phases (default duration + 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<HumanDuration>,
    /// The first part of the load whose latency is measured apart (default none): its sends happen as scheduled and count in every record total, but its latency histograms are kept in the report's `summary.warmup`, out of the summary's percentiles, the windows' and agents' latencies and the schedule-lag validity check, and every threshold is judged over what came after it (latency over its histograms, counts and ratios over its counters, `rate.achieved_ratio` against the records asked for after it; a window that is all warm-up is not judged). A whole number of `report.interval`s, shorter than the load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<HumanDuration>,
}

/// One step of the load profile. Rates are total records per second across the fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum LoadStep {
    /// A constant rate for a while.
    Constant(ConstantStep),
    /// A linear ramp from one rate to another.
    Ramp(RampStep),
    /// A staircase: start, then + step every period, up to until (the last stair also lasts one period).
    Staircase(StaircaseStep),
}

/// A constant rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConstantStep {
    /// Records per second across the fleet.
    pub rate: f64,
    /// How long.
    #[serde(rename = "for")]
    pub duration: HumanDuration,
}

/// A linear ramp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RampStep {
    /// Rate at the start of the ramp (records per second).
    pub from: f64,
    /// Rate at the end of the ramp (records per second).
    pub to: f64,
    /// How long the ramp lasts.
    pub over: HumanDuration,
}

/// A staircase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaircaseStep {
    /// Rate of the first stair (records per second).
    pub start: f64,
    /// Increase per stair (records per second).
    pub step: f64,
    /// How long each stair lasts.
    pub every: HumanDuration,
    /// Rate of the last stair; a stair that would pass it is clamped to it.
    pub until: f64,
}

/// Stairs counted at most (validation rejects more).
const STAIRS_CAP: u64 = 1_000_000;

impl StaircaseStep {
    /// Number of stairs, including the clamped last one (1 when the parameters are invalid).
    pub fn stairs(&self) -> u64 {
        if !(self.start.is_finite() && self.step.is_finite() && self.until.is_finite())
            || self.step <= 0.0
            || self.until <= self.start
        {
            return 1;
        }
        let n = ((self.until - self.start) / self.step - 1e-9).ceil();
        if n >= STAIRS_CAP as f64 {
            STAIRS_CAP
        } else {
            // n is a non-negative integer below the cap here.
            n as u64 + 1
        }
    }

    /// Rate of stair `i` (0-based).
    pub fn stair_rate(&self, i: u64) -> f64 {
        if i == 0 || self.stairs() <= 1 {
            return self.start;
        }
        (self.start + i as f64 * self.step).min(self.until)
    }
}

impl LoadStep {
    /// How long the step lasts.
    pub fn duration(&self) -> Duration {
        match self {
            LoadStep::Constant(c) => c.duration.as_std(),
            LoadStep::Ramp(r) => r.over.as_std(),
            LoadStep::Staircase(s) => {
                let n = u32::try_from(s.stairs()).unwrap_or(u32::MAX);
                s.every.as_std().checked_mul(n).unwrap_or(Duration::MAX)
            }
        }
    }

    /// Rate at `t` into the step (clamped to the step).
    pub fn rate_at(&self, t: Duration) -> f64 {
        match self {
            LoadStep::Constant(c) => c.rate,
            LoadStep::Ramp(r) => {
                let over = r.over.as_secs_f64();
                if over <= 0.0 {
                    return r.to;
                }
                let f = (t.as_secs_f64() / over).clamp(0.0, 1.0);
                r.from + (r.to - r.from) * f
            }
            LoadStep::Staircase(s) => {
                let every = s.every.as_nanos_u64();
                if every == 0 {
                    return s.start;
                }
                let i = u64::try_from(t.as_nanos() / u128::from(every)).unwrap_or(u64::MAX);
                s.stair_rate(i.min(s.stairs().saturating_sub(1)))
            }
        }
    }

    /// Rate at the end of the step.
    pub fn final_rate(&self) -> f64 {
        match self {
            LoadStep::Constant(c) => c.rate,
            LoadStep::Ramp(r) => r.to,
            LoadStep::Staircase(s) => s.stair_rate(s.stairs().saturating_sub(1)),
        }
    }

    /// Highest rate reached during the step.
    pub fn peak_rate(&self) -> f64 {
        match self {
            LoadStep::Constant(c) => c.rate,
            LoadStep::Ramp(r) => r.from.max(r.to),
            LoadStep::Staircase(s) => s.start.max(s.final_rate_value()),
        }
    }

    /// Records sent during the first `t` of the step (the integral of the rate, not rounded).
    pub fn records_until(&self, t: Duration) -> f64 {
        let t = t.min(self.duration());
        let secs = t.as_secs_f64();
        match self {
            LoadStep::Constant(c) => c.rate * secs,
            LoadStep::Ramp(r) => {
                let end = self.rate_at(t);
                (r.from + end) / 2.0 * secs
            }
            LoadStep::Staircase(s) => {
                let every = s.every.as_secs_f64();
                if every <= 0.0 {
                    return 0.0;
                }
                let every_ns = u128::from(s.every.as_nanos_u64().max(1));
                let full = u64::try_from(t.as_nanos() / every_ns).unwrap_or(u64::MAX);
                let full = full.min(s.stairs());
                let mut total = 0.0;
                for i in 0..full {
                    total += s.stair_rate(i) * every;
                }
                let rest = secs - full as f64 * every;
                if full < s.stairs() && rest > 0.0 {
                    total += s.stair_rate(full) * rest;
                }
                total
            }
        }
    }

    /// The step's name as written in YAML.
    pub fn kind(&self) -> &'static str {
        match self {
            LoadStep::Constant(_) => "constant",
            LoadStep::Ramp(_) => "ramp",
            LoadStep::Staircase(_) => "staircase",
        }
    }
}

impl StaircaseStep {
    fn final_rate_value(&self) -> f64 {
        self.stair_rate(self.stairs().saturating_sub(1))
    }
}

impl LoadSpec {
    /// Sum of the step durations.
    pub fn steps_duration(&self) -> Duration {
        self.steps
            .iter()
            .fold(Duration::ZERO, |acc, s| acc.saturating_add(s.duration()))
    }

    /// Length of the load: `duration`, or the sum of the steps.
    pub fn total_duration(&self) -> Duration {
        match self.duration {
            Some(d) => d.as_std(),
            None => self.steps_duration(),
        }
    }

    /// Report intervals of `interval` the warm-up spans (`warmup / interval`, rounded down:
    /// validation makes it exact); 0 without a warm-up.
    pub fn warmup_intervals(&self, interval: HumanDuration) -> u32 {
        let interval = interval.as_nanos_u64();
        match self.warmup {
            Some(w) if interval > 0 => {
                u32::try_from(w.as_nanos_u64() / interval).unwrap_or(u32::MAX)
            }
            _ => 0,
        }
    }

    /// Hard stop: `maxDuration`, or the load duration plus 5 minutes.
    pub fn effective_max_duration(&self) -> Duration {
        match self.max_duration {
            Some(d) => d.as_std(),
            None => self
                .total_duration()
                .saturating_add(defaults::MAX_DURATION_GRACE.as_std()),
        }
    }

    /// Target total rate (records per second, whole fleet) at `offset` from the start.
    /// Zero at or after the end of the load.
    pub fn rate_at(&self, offset: Duration) -> f64 {
        if offset >= self.total_duration() {
            return 0.0;
        }
        let mut start = Duration::ZERO;
        for step in &self.steps {
            let d = step.duration();
            let end = start.saturating_add(d);
            if offset < end {
                return step.rate_at(offset - start);
            }
            start = end;
        }
        self.steps.last().map_or(0.0, LoadStep::final_rate)
    }

    /// Highest target rate over the whole load.
    pub fn peak_rate(&self) -> f64 {
        let total = self.total_duration();
        let mut start = Duration::ZERO;
        let mut peak: f64 = 0.0;
        for step in &self.steps {
            if start >= total {
                break;
            }
            let d = step.duration();
            peak = if start.saturating_add(d) <= total {
                peak.max(step.peak_rate())
            } else {
                // The load is cut inside this step: rates are monotonic within a step.
                peak.max(step.rate_at(Duration::ZERO))
                    .max(step.rate_at(total - start))
            };
            start = start.saturating_add(d);
        }
        peak
    }

    /// Records the whole fleet is scheduled to send: the integral of the rate over the load,
    /// rounded down (with a 1e-6 record tolerance for floating-point error).
    pub fn expected_records(&self) -> u64 {
        let total = self.total_duration();
        let mut start = Duration::ZERO;
        let mut records = 0.0;
        for step in &self.steps {
            if start >= total {
                break;
            }
            records += step.records_until(total - start);
            start = start.saturating_add(step.duration());
        }
        if total > start {
            let tail = self.steps.last().map_or(0.0, LoadStep::final_rate);
            records += tail * (total - start).as_secs_f64();
        }
        if records.is_nan() || records <= 0.0 {
            return 0;
        }
        let floored = (records + 1e-6).floor();
        if floored >= u64::MAX as f64 {
            u64::MAX
        } else {
            floored as u64
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------------------------

/// The agent fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AgentsSpec {
    /// Number of agents (ECS tasks); each sends an equal share of the rate (default 1).
    pub count: u32,
    /// CPU units per agent, 1024 = 1 vCPU (default 1024; Fargate: 256, 512, 1024, 2048, 4096, 8192, 16384).
    pub cpu: u32,
    /// Memory per agent in MiB (default 2048; must be a valid Fargate combination with cpu on FARGATE).
    pub memory: u32,
    /// FARGATE (default) or EC2.
    pub launch_type: LaunchType,
    /// Use Spot capacity (cheaper; agents may be interrupted and are then replaced).
    #[serde(skip_serializing_if = "is_false")]
    pub spot: bool,
    /// How many times one agent slot may be replaced after dying (default 3).
    pub max_restarts: u32,
    /// Fraction of agents that must be Ready before the start time is set (default 1.0).
    pub ready_fraction: f64,
}

impl Default for AgentsSpec {
    fn default() -> Self {
        AgentsSpec {
            count: defaults::AGENT_COUNT,
            cpu: defaults::AGENT_CPU,
            memory: defaults::AGENT_MEMORY,
            launch_type: LaunchType::Fargate,
            spot: false,
            max_restarts: defaults::AGENT_MAX_RESTARTS,
            ready_fraction: defaults::AGENT_READY_FRACTION,
        }
    }
}

/// ECS launch type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum LaunchType {
    /// AWS Fargate.
    #[default]
    #[serde(rename = "FARGATE")]
    Fargate,
    /// EC2 container instances.
    #[serde(rename = "EC2")]
    Ec2,
}

// ---------------------------------------------------------------------------------------------
// Thresholds
// ---------------------------------------------------------------------------------------------

/// A metric a threshold can test.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Metric {
    /// Produce latency p50, from the intended send time (coordinated-omission free).
    #[serde(rename = "produce.p50")]
    ProduceP50,
    /// Produce latency p90, from the intended send time.
    #[serde(rename = "produce.p90")]
    ProduceP90,
    /// Produce latency p99, from the intended send time.
    #[serde(rename = "produce.p99")]
    ProduceP99,
    /// Produce latency p99.9, from the intended send time.
    #[serde(rename = "produce.p999")]
    ProduceP999,
    /// Produce latency maximum, from the intended send time.
    #[serde(rename = "produce.max")]
    ProduceMax,
    /// Service latency p50, from the actual send time.
    #[serde(rename = "service.p50")]
    ServiceP50,
    /// Service latency p99, from the actual send time.
    #[serde(rename = "service.p99")]
    ServiceP99,
    /// Service latency p99.9, from the actual send time.
    #[serde(rename = "service.p999")]
    ServiceP999,
    /// Service latency maximum, from the actual send time.
    #[serde(rename = "service.max")]
    ServiceMax,
    /// End-to-end latency p50 (RoundTrip).
    #[serde(rename = "e2e.p50")]
    E2eP50,
    /// End-to-end latency p99 (RoundTrip).
    #[serde(rename = "e2e.p99")]
    E2eP99,
    /// End-to-end latency p99.9 (RoundTrip).
    #[serde(rename = "e2e.p999")]
    E2eP999,
    /// End-to-end latency maximum (RoundTrip).
    #[serde(rename = "e2e.max")]
    E2eMax,
    /// Failed records / records sent.
    #[serde(rename = "errors.ratio")]
    ErrorsRatio,
    /// Failed records.
    #[serde(rename = "errors.count")]
    ErrorsCount,
    /// Achieved rate / target rate.
    #[serde(rename = "rate.achieved_ratio")]
    RateAchievedRatio,
    /// Records produced but never consumed (RoundTrip).
    #[serde(rename = "records.lost")]
    RecordsLost,
    /// Records consumed more than once (RoundTrip).
    #[serde(rename = "records.duplicated")]
    RecordsDuplicated,
    /// Schedule lag p99: how late sends left compared with their intended time.
    #[serde(rename = "lag.p99")]
    LagP99,
    /// Consumer lag maximum, records (Consume, RoundTrip): the highest at an interval's end.
    #[serde(rename = "consumer_lag.max")]
    ConsumerLagMax,
    /// Consumer lag p99, records (Consume, RoundTrip), over the intervals' lags.
    #[serde(rename = "consumer_lag.p99")]
    ConsumerLagP99,
    /// Seconds from the start until the group's lag first reached zero (Consume with a backlog), to the report interval.
    #[serde(rename = "drain.seconds")]
    DrainSeconds,
    /// Records consumed per second: over the drain with a backlog, over the load otherwise.
    #[serde(rename = "consume.rate")]
    ConsumeRate,
}

/// What kind of value a metric has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A latency; threshold values need a time unit and are compared in microseconds.
    Latency,
    /// A ratio; `0.1%` or `0.001`.
    Ratio,
    /// A count; a non-negative integer.
    Count,
    /// A plain number (seconds, records per second); non-negative, decimals allowed.
    Number,
}

impl Metric {
    /// Every metric.
    pub const ALL: &'static [Metric] = &[
        Metric::ProduceP50,
        Metric::ProduceP90,
        Metric::ProduceP99,
        Metric::ProduceP999,
        Metric::ProduceMax,
        Metric::ServiceP50,
        Metric::ServiceP99,
        Metric::ServiceP999,
        Metric::ServiceMax,
        Metric::E2eP50,
        Metric::E2eP99,
        Metric::E2eP999,
        Metric::E2eMax,
        Metric::ErrorsRatio,
        Metric::ErrorsCount,
        Metric::RateAchievedRatio,
        Metric::RecordsLost,
        Metric::RecordsDuplicated,
        Metric::LagP99,
        Metric::ConsumerLagMax,
        Metric::ConsumerLagP99,
        Metric::DrainSeconds,
        Metric::ConsumeRate,
    ];

    /// The name as written in thresholds.
    pub fn as_str(&self) -> &'static str {
        match self {
            Metric::ProduceP50 => "produce.p50",
            Metric::ProduceP90 => "produce.p90",
            Metric::ProduceP99 => "produce.p99",
            Metric::ProduceP999 => "produce.p999",
            Metric::ProduceMax => "produce.max",
            Metric::ServiceP50 => "service.p50",
            Metric::ServiceP99 => "service.p99",
            Metric::ServiceP999 => "service.p999",
            Metric::ServiceMax => "service.max",
            Metric::E2eP50 => "e2e.p50",
            Metric::E2eP99 => "e2e.p99",
            Metric::E2eP999 => "e2e.p999",
            Metric::E2eMax => "e2e.max",
            Metric::ErrorsRatio => "errors.ratio",
            Metric::ErrorsCount => "errors.count",
            Metric::RateAchievedRatio => "rate.achieved_ratio",
            Metric::RecordsLost => "records.lost",
            Metric::RecordsDuplicated => "records.duplicated",
            Metric::LagP99 => "lag.p99",
            Metric::ConsumerLagMax => "consumer_lag.max",
            Metric::ConsumerLagP99 => "consumer_lag.p99",
            Metric::DrainSeconds => "drain.seconds",
            Metric::ConsumeRate => "consume.rate",
        }
    }

    /// Looks a metric up by name.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.iter().copied().find(|m| m.as_str() == name)
    }

    /// The kind of value.
    pub fn kind(&self) -> MetricKind {
        match self {
            Metric::ErrorsRatio | Metric::RateAchievedRatio => MetricKind::Ratio,
            Metric::ErrorsCount
            | Metric::RecordsLost
            | Metric::RecordsDuplicated
            | Metric::ConsumerLagMax
            | Metric::ConsumerLagP99 => MetricKind::Count,
            Metric::DrainSeconds | Metric::ConsumeRate => MetricKind::Number,
            _ => MetricKind::Latency,
        }
    }

    /// The percentile (0–100) for latency and consumer-lag metrics; 100 for `max`.
    pub fn percentile(&self) -> Option<f64> {
        match self {
            Metric::ProduceP50 | Metric::ServiceP50 | Metric::E2eP50 => Some(50.0),
            Metric::ProduceP90 => Some(90.0),
            Metric::ProduceP99
            | Metric::ServiceP99
            | Metric::E2eP99
            | Metric::LagP99
            | Metric::ConsumerLagP99 => Some(99.0),
            Metric::ProduceP999 | Metric::ServiceP999 | Metric::E2eP999 => Some(99.9),
            Metric::ProduceMax | Metric::ServiceMax | Metric::E2eMax | Metric::ConsumerLagMax => {
                Some(100.0)
            }
            _ => None,
        }
    }

    /// The histogram tag the metric is computed from (`produce`, `service`, `e2e`, `lag`).
    pub fn histogram_tag(&self) -> Option<HistogramTag> {
        let name = self.as_str();
        if self.kind() != MetricKind::Latency {
            return None;
        }
        name.split('.').next().map(HistogramTag::from)
    }

    /// True for metrics only workloads that consume (Consume, RoundTrip) measure.
    pub fn needs_consumer(&self) -> bool {
        matches!(
            self,
            Metric::ConsumerLagMax | Metric::ConsumerLagP99 | Metric::ConsumeRate
        )
    }

    /// True for figures of the whole run, judged over the run only (never per window).
    pub fn is_run_only(&self) -> bool {
        matches!(self, Metric::DrainSeconds | Metric::ConsumeRate)
    }

    /// True for metrics only a RoundTrip workload measures.
    pub fn needs_round_trip(&self) -> bool {
        matches!(
            self,
            Metric::E2eP50
                | Metric::E2eP99
                | Metric::E2eP999
                | Metric::E2eMax
                | Metric::RecordsLost
                | Metric::RecordsDuplicated
        )
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ThresholdOp {
    /// Observed value strictly below the threshold.
    #[serde(rename = "<")]
    Lt,
    /// Observed value at most the threshold.
    #[serde(rename = "<=")]
    Le,
    /// Observed value strictly above the threshold.
    #[serde(rename = ">")]
    Gt,
    /// Observed value at least the threshold.
    #[serde(rename = ">=")]
    Ge,
}

impl ThresholdOp {
    /// The operator as written.
    pub fn as_str(&self) -> &'static str {
        match self {
            ThresholdOp::Lt => "<",
            ThresholdOp::Le => "<=",
            ThresholdOp::Gt => ">",
            ThresholdOp::Ge => ">=",
        }
    }

    /// Applies the comparison `observed OP limit`.
    pub fn holds(&self, observed: f64, limit: f64) -> bool {
        match self {
            ThresholdOp::Lt => observed < limit,
            ThresholdOp::Le => observed <= limit,
            ThresholdOp::Gt => observed > limit,
            ThresholdOp::Ge => observed >= limit,
        }
    }
}

/// Where a threshold is evaluated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdScope {
    /// Over the whole run only.
    Run,
    /// Over every report window only (needs report.window).
    Window,
    /// Over the whole run and every window (default).
    #[default]
    Both,
}

/// A threshold value: the text as written and its number in the metric's unit
/// (microseconds for latencies, a fraction for ratios, a count for counts).
#[derive(Clone, Debug, PartialEq)]
pub struct ThresholdValue {
    raw: String,
    value: f64,
}

/// Why a threshold's text does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdError {
    /// Not of the form `<metric> <op> <value>`.
    #[error(
        "expected \"<metric> <op> <value>\" such as \"produce.p99 < 50ms\" or \"errors.ratio < 0.1%\" (got {0:?})"
    )]
    Usage(String),
    /// The metric is not one Barrage reports.
    #[error("unknown metric {0:?} (expected one of {names})", names = metric_names())]
    UnknownMetric(String),
    /// The value does not suit the metric's kind.
    #[error("{metric} is {}: {} (got {text:?})", kind_rule(.kind).0, kind_rule(.kind).1)]
    Value {
        /// The metric's name.
        metric: String,
        /// The metric's kind, which decides the value's form.
        kind: MetricKind,
        /// The value as written (trimmed).
        text: String,
    },
}

fn metric_names() -> String {
    let names: Vec<&str> = Metric::ALL.iter().map(Metric::as_str).collect();
    names.join(", ")
}

/// The article-and-noun and the rule for a kind's values.
fn kind_rule(kind: &MetricKind) -> (&'static str, &'static str) {
    match kind {
        MetricKind::Latency => (
            "a latency",
            "the value needs a time unit such as 50ms, 250us or 1.5s",
        ),
        MetricKind::Ratio => (
            "a ratio",
            "expected a non-negative number or percentage such as 0.001 or 0.1%",
        ),
        MetricKind::Count => ("a count", "expected a non-negative integer"),
        MetricKind::Number => (
            "a number",
            "expected a non-negative number such as 120 or 2.5",
        ),
    }
}

impl BacklogSpec {
    /// The records to write: `records`, or `bytes` over the fixed value size (rounded up);
    /// `None` for `bytes` without a fixed size (validation refuses it).
    pub fn record_count(&self, value: &ValueSpec) -> Option<u64> {
        match (self.records, value) {
            (0, ValueSpec::Size(size)) if *size > 0 => Some(self.bytes.div_ceil(u64::from(*size))),
            (0, _) if self.bytes > 0 => None,
            (records, _) => Some(records),
        }
    }
}

impl ThresholdValue {
    /// Parses `raw` for a metric of `kind`.
    pub fn parse(
        kind: MetricKind,
        metric: &str,
        raw: &str,
    ) -> Result<ThresholdValue, ThresholdError> {
        let text = raw.trim();
        let value = match kind {
            MetricKind::Latency => parse_latency_us(text),
            MetricKind::Ratio => parse_ratio(text),
            MetricKind::Count => text.parse::<u64>().ok().map(|v| v as f64),
            MetricKind::Number => text
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0),
        };
        match value {
            Some(value) => Ok(ThresholdValue {
                raw: text.to_string(),
                value,
            }),
            None => Err(ThresholdError::Value {
                metric: metric.to_string(),
                kind,
                text: text.to_string(),
            }),
        }
    }

    /// The text as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The value in the metric's unit: microseconds, a fraction, or a count.
    pub fn value(&self) -> f64 {
        self.value
    }
}

/// A latency with a time unit, in microseconds.
fn parse_latency_us(text: &str) -> Option<f64> {
    let has_unit = text.chars().any(|c| c.is_ascii_alphabetic() || c == 'µ');
    if !has_unit {
        return None;
    }
    let d = HumanDuration::parse(text).ok()?;
    Some(d.as_nanos_u64() as f64 / 1000.0)
}

/// A non-negative fraction, or a percentage with `%`.
fn parse_ratio(text: &str) -> Option<f64> {
    let (num, scale) = match text.strip_suffix('%') {
        Some(n) => (n.trim(), 0.01),
        None => (text, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && !num.is_empty() => Some(v * scale),
        _ => None,
    }
}

impl fmt::Display for ThresholdValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// A condition that must hold for the run to pass.
///
/// Written as a string `"produce.p99 < 50ms"` or as an object
/// `{metric: produce.p99, op: "<", value: 50ms, scope: window}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// The metric.
    pub metric: Metric,
    /// The comparison.
    pub op: ThresholdOp,
    /// The limit.
    pub value: ThresholdValue,
    /// Where it is evaluated (default both).
    pub scope: ThresholdScope,
}

impl Threshold {
    /// Parses `"produce.p99 < 50ms"`.
    pub fn parse(text: &str) -> Result<Threshold, ThresholdError> {
        let usage = || ThresholdError::Usage(text.to_string());
        let pos = text.find(['<', '>']).ok_or_else(usage)?;
        let metric_name = text[..pos].trim();
        let rest = &text[pos..];
        let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
            (ThresholdOp::Le, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (ThresholdOp::Ge, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (ThresholdOp::Lt, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (ThresholdOp::Gt, v)
        } else {
            return Err(usage());
        };
        if metric_name.is_empty() || value.trim().is_empty() {
            return Err(usage());
        }
        let metric = Metric::from_name(metric_name)
            .ok_or_else(|| ThresholdError::UnknownMetric(metric_name.to_string()))?;
        let value = ThresholdValue::parse(metric.kind(), metric.as_str(), value)?;
        Ok(Threshold {
            metric,
            op,
            value,
            scope: ThresholdScope::Both,
        })
    }

    /// True when `observed` (in the metric's unit) satisfies the threshold.
    pub fn holds(&self, observed: f64) -> bool {
        self.op.holds(observed, self.value.value())
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.metric, self.op.as_str(), self.value)?;
        if self.scope != ThresholdScope::Both {
            let scope = match self.scope {
                ThresholdScope::Run => "run",
                ThresholdScope::Window => "window",
                ThresholdScope::Both => "both",
            };
            write!(f, " (scope {scope})")?;
        }
        Ok(())
    }
}

/// Object form of a threshold, as written.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ThresholdObject {
    /// The metric, e.g. produce.p99, errors.ratio.
    metric: Metric,
    /// The comparison: <, <=, > or >=.
    op: ThresholdOp,
    /// The limit with its unit: 50ms, 250us, 0.1%, 0.001, 42.
    #[schemars(schema_with = "scalar_schema")]
    value: ScalarText,
    /// run, window or both (default).
    #[serde(default)]
    scope: ThresholdScope,
}

/// A scalar written as a string or number, kept as text.
#[derive(Serialize)]
#[serde(transparent)]
struct ScalarText(String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor).map(ScalarText)
    }
}

struct ScalarVisitor;

impl serde::de::Visitor<'_> for ScalarVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
}

impl Serialize for Threshold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.scope == ThresholdScope::Both {
            s.collect_str(self)
        } else {
            ThresholdObject {
                metric: self.metric,
                op: self.op,
                value: ScalarText(self.value.raw.clone()),
                scope: self.scope,
            }
            .serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Threshold;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a threshold such as \"produce.p99 < 50ms\" or {metric, op, value, scope}",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Threshold, E> {
                Threshold::parse(v).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Threshold, A::Error> {
                let obj = ThresholdObject::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                let value =
                    ThresholdValue::parse(obj.metric.kind(), obj.metric.as_str(), &obj.value.0)
                        .map_err(|e| serde::de::Error::custom(format!("value: {e}")))?;
                Ok(Threshold {
                    metric: obj.metric,
                    op: obj.op,
                    value,
                    scope: obj.scope,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Threshold {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Threshold".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let object = generator.subschema_for::<ThresholdObject>();
        let metrics: Vec<&str> = Metric::ALL.iter().map(Metric::as_str).collect();
        schemars::json_schema!({
            "description": format!(
                "A threshold: \"<metric> <op> <value>\" such as \"produce.p99 < 50ms\" or \"errors.ratio < 0.1%\", or an object. Metrics: {}. Latencies need a time unit; ratios accept % or plain numbers; counts are integers.",
                metrics.join(", ")
            ),
            "anyOf": [
                { "type": "string", "pattern": "^\\s*[a-z0-9_.]+\\s*(<|<=|>|>=)\\s*\\S.*$" },
                object
            ]
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Report and timeouts
// ---------------------------------------------------------------------------------------------

/// Reporting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ReportSpec {
    /// How often agents write interval histograms and heartbeat counters (default 10s).
    pub interval: HumanDuration,
    /// Rolling window for soak tests: a report and a verdict per window (a multiple of interval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<HumanDuration>,
    /// Where reports go; the controller's configured bucket or folder when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
}

impl Default for ReportSpec {
    fn default() -> Self {
        ReportSpec {
            interval: defaults::REPORT_INTERVAL,
            window: None,
            destination: None,
        }
    }
}

/// Report destination: exactly one of s3 and local.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// An S3 bucket and key prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Dest>,
    /// A local folder (barrage run, or the process launcher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalDest>,
}

/// An S3 location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3Dest {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix (no leading slash), e.g. `loadtests/`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

/// A local folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalDest {
    /// Folder path.
    pub path: String,
}

/// Timeouts of the non-terminal phases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TimeoutsSpec {
    /// Longest time from Provisioning to all agents launched (default 10m).
    pub provisioning: HumanDuration,
    /// Longest wait for enough agents to report Ready (default 5m).
    pub ready: HumanDuration,
    /// Longest Draining phase after the load ends (default 2m).
    pub draining: HumanDuration,
    /// Longest Reporting phase (default 5m).
    pub reporting: HumanDuration,
    /// Longest Cancelling phase (default 5m).
    pub cancelling: HumanDuration,
}

impl Default for TimeoutsSpec {
    fn default() -> Self {
        TimeoutsSpec {
            provisioning: defaults::TIMEOUT_PROVISIONING,
            ready: defaults::TIMEOUT_READY,
            draining: defaults::TIMEOUT_DRAINING,
            reporting: defaults::TIMEOUT_REPORTING,
            cancelling: defaults::TIMEOUT_CANCELLING,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Deserializes a map whose values may be written as strings, numbers or booleans.
fn de_scalar_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map: BTreeMap<String, ScalarText> = BTreeMap::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
}

fn scalar_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": ["string", "number", "boolean"] })
}

fn scalar_map_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": { "type": ["string", "number", "boolean"] }
    })
}
