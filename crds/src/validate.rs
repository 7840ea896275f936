//! Total validation: every accepted spec is within documented bounds, and every rejection lists
//! *all* problems, each with its field path and rule (`spec.load.steps[1].constant.rate: must be
//! greater than 0 (got -5)`). Nothing here panics, whatever the input.
//!
//! [`parse_and_validate`] also collects *several* parse errors: after each serde error it
//! repairs the document (drops the offending node, or fills a missing one with a placeholder
//! whose own errors are not reported) and tries again, then validates the repaired document and
//! reports the problems outside the repaired places.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::duration::HumanDuration;
use crate::loadtest::{self, LoadTest, join_key};
use crate::spec::{
    ALLOWED_CONSUMER_PROPERTIES, ALLOWED_PRODUCER_PROPERTIES, Acks, AvroValue, FieldGenerator,
    KeyDistribution, LaunchType, LoadStep, Metric, MetricKind, ThresholdScope, TopicCleanup,
    ValueSpec, WorkloadKind,
};

/// Bounds every accepted spec is within.
pub mod limits {
    use std::time::Duration;

    /// Most agents in one test.
    pub const MAX_AGENTS: u32 = 1000;
    /// Highest rate one agent is asked for (records per second).
    pub const MAX_RATE_PER_AGENT: f64 = 2_000_000.0;
    /// Longest load (`load.duration`, or the sum of the steps).
    pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);
    /// Longest `load.maxDuration` (the load plus draining).
    pub const MAX_MAX_DURATION: Duration = Duration::from_secs(31 * 24 * 3600);
    /// Largest record value (bytes).
    pub const MAX_RECORD_SIZE: u32 = 10 * 1024 * 1024;
    /// Estimated vCPU-hours cap (agents × cpu/1024 × maxDuration in hours): a cost guard.
    pub const MAX_VCPU_HOURS: f64 = 5000.0;
    /// Most load steps.
    pub const MAX_STEPS: usize = 1000;
    /// Most stairs in one staircase step.
    pub const MAX_STAIRS: u64 = 10_000;
    /// Most thresholds.
    pub const MAX_THRESHOLDS: usize = 100;
    /// Most headers per record.
    pub const MAX_HEADERS: usize = 64;
    /// Most labels (they become ECS tags, 50 at most, some of which Barrage uses).
    pub const MAX_LABELS: usize = 40;
    /// Most partitions when creating a topic.
    pub const MAX_PARTITIONS: i32 = 10_000;
    /// Largest replication factor when creating a topic.
    pub const MAX_REPLICATION_FACTOR: i32 = 32;
    /// Largest records per transaction.
    pub const MAX_RECORDS_PER_TRANSACTION: u32 = 10_000;
    /// Largest records in flight per agent.
    pub const MAX_IN_FLIGHT: u32 = 10_000_000;
    /// Largest producer batch size (librdkafka `batch.size` maximum).
    pub const MAX_BATCH_SIZE: u32 = 2_147_483_647;
    /// Longest producer linger (librdkafka `linger.ms` maximum).
    pub const MAX_LINGER: Duration = Duration::from_secs(900);
    /// Most restarts per agent slot.
    pub const MAX_RESTARTS: u32 = 100;
    /// Shortest report interval.
    pub const MIN_REPORT_INTERVAL: Duration = Duration::from_secs(1);
    /// Longest report interval.
    pub const MAX_REPORT_INTERVAL: Duration = Duration::from_secs(3600);
    /// Shortest phase timeout.
    pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
    /// Longest phase timeout.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
    /// Fargate CPU sizes.
    pub const FARGATE_CPU: &[u32] = &[256, 512, 1024, 2048, 4096, 8192, 16384];
    /// Smallest EC2 task CPU units.
    pub const MIN_EC2_CPU: u32 = 128;
    /// Largest EC2 task CPU units.
    pub const MAX_EC2_CPU: u32 = 196_608;
    /// Smallest task memory (MiB).
    pub const MIN_MEMORY: u32 = 512;
    /// Largest EC2 task memory (MiB).
    pub const MAX_EC2_MEMORY: u32 = 1_048_576;
    /// Longest property value.
    pub const MAX_PROPERTY_VALUE_LEN: usize = 1024;
}

/// The bounds of each field, as documented in crds/SPEC.md (a test checks every path exists).
pub const BOUNDS: &[(&str, &str)] = &[
    ("apiVersion", "`barrage.dev/v1alpha1`"),
    ("kind", "`LoadTest`"),
    (
        "metadata.name",
        "1–63 of a-z 0-9 -, starts and ends alphanumeric",
    ),
    (
        "metadata.labels",
        "at most 40; keys 1–128 chars, not aws: or barrage.dev/; values ≤ 256 chars",
    ),
    (
        "spec.kafka.bootstrapServers",
        "comma-separated host:port, port 1–65535",
    ),
    (
        "spec.kafka.security.sasl",
        "required for SASL_PLAINTEXT and SASL_SSL, forbidden otherwise",
    ),
    (
        "spec.kafka.security.ssl",
        "only with SSL, SASL_SSL, AWS_MSK_IAM",
    ),
    (
        "spec.kafka.security.region",
        "only with AWS_MSK_IAM; an AWS region",
    ),
    (
        "spec.kafka.security.sasl.credentials",
        "exactly one of secretsManagerArn, ssmParameter",
    ),
    (
        "spec.kafka.security.sasl.credentials.secretsManagerArn",
        "arn:aws…:secretsmanager:REGION:ACCOUNT:secret:NAME",
    ),
    (
        "spec.kafka.security.sasl.credentials.ssmParameter",
        "parameter name (a-z A-Z 0-9 _ . - /) or ARN",
    ),
    ("spec.kafka.producer.batchSize", "1–2147483647"),
    ("spec.kafka.producer.linger", "at most 15m"),
    (
        "spec.kafka.producer.idempotence",
        "requires acks all; required by transactional",
    ),
    ("spec.kafka.producer.maxInFlight", "1–10000000"),
    (
        "spec.kafka.producer.properties",
        "allow-listed keys only, values 1–1024 chars",
    ),
    ("spec.kafka.consumer.groupId", "1–255 chars"),
    (
        "spec.kafka.consumer.properties",
        "allow-listed keys only, values 1–1024 chars",
    ),
    ("spec.topic.name", "1–249 of a-z A-Z 0-9 . _ -, not . or .."),
    ("spec.topic.create.partitions", "1–10000"),
    ("spec.topic.create.replicationFactor", "1–32"),
    (
        "spec.topic.create.configs",
        "dotted lowercase names; min.insync.replicas ≤ replicationFactor",
    ),
    ("spec.topic.cleanup", "DeleteIfCreated needs create"),
    ("spec.workload.records.recordsPerTransaction", "1–10000"),
    ("spec.workload.records.transactional", "not with Consume"),
    ("spec.workload.records.value.size", "0–10485760"),
    (
        "spec.workload.records.value.uniformSize",
        "min ≤ max ≤ 10485760",
    ),
    (
        "spec.workload.records.value.avro",
        "exactly one of schema, schemaFile",
    ),
    (
        "spec.workload.records.value.avro.schema",
        "JSON; generator names must be fields of a record schema",
    ),
    (
        "spec.workload.records.value.json.template",
        "non-empty; JSON once placeholders are filled",
    ),
    (
        "spec.workload.records.key.cardinality",
        "≥ 1 when keys are used",
    ),
    (
        "spec.workload.records.key.exponent",
        "zipf only; > 0 and ≤ 10",
    ),
    (
        "spec.workload.records.headers",
        "at most 64; names not starting with barrage. or barrage-",
    ),
    (
        "spec.load.steps",
        "1–1000 steps; sum ≤ 30d when duration is absent",
    ),
    (
        "spec.load.steps[].constant.rate",
        "> 0; ≤ 2000000 × agents.count",
    ),
    ("spec.load.steps[].constant.for", "> 0"),
    (
        "spec.load.steps[].ramp.from",
        "≥ 0; ≤ 2000000 × agents.count",
    ),
    (
        "spec.load.steps[].ramp.to",
        "≥ 0; ≤ 2000000 × agents.count; not both 0",
    ),
    ("spec.load.steps[].ramp.over", "> 0"),
    ("spec.load.steps[].staircase.start", "≥ 0"),
    (
        "spec.load.steps[].staircase.step",
        "> 0; at most 10000 stairs",
    ),
    (
        "spec.load.steps[].staircase.until",
        "> start; ≤ 2000000 × agents.count",
    ),
    ("spec.load.steps[].staircase.every", "> 0"),
    ("spec.load.duration", "> 0, ≤ 30d"),
    ("spec.load.maxDuration", "≥ the load duration, ≤ 31d"),
    (
        "spec.load.warmup",
        "> 0; a multiple of report.interval; shorter than the load",
    ),
    (
        "spec.agents",
        "agents × cpu/1024 × maxDuration hours ≤ 5000 vCPU-hours",
    ),
    ("spec.agents.count", "1–1000"),
    (
        "spec.agents.cpu",
        "FARGATE: 256, 512, 1024, 2048, 4096, 8192, 16384; EC2: 128–196608",
    ),
    (
        "spec.agents.memory",
        "FARGATE: valid for cpu (see Limits); EC2: 512–1048576",
    ),
    ("spec.agents.spot", "FARGATE only"),
    ("spec.agents.maxRestarts", "0–100"),
    ("spec.agents.readyFraction", "> 0, ≤ 1"),
    (
        "spec.thresholds",
        "at most 100; e2e.* and records.* need RoundTrip; scope window needs report.window",
    ),
    ("spec.report.interval", "1s–1h"),
    ("spec.report.window", "a multiple of interval, ≤ 30d"),
    ("spec.report.destination", "exactly one of s3, local"),
    ("spec.report.destination.s3.bucket", "an S3 bucket name"),
    (
        "spec.report.destination.s3.prefix",
        "no leading /, ≤ 512 chars",
    ),
    ("spec.timeouts.provisioning", "1s–1d"),
    ("spec.timeouts.ready", "1s–1d"),
    ("spec.timeouts.draining", "1s–1d"),
    ("spec.timeouts.reporting", "1s–1d"),
    ("spec.timeouts.cancelling", "1s–1d"),
];

/// One problem: the field path and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Field path, e.g. `spec.load.steps[1].constant.rate`.
    pub path: String,
    /// The rule that failed, e.g. `must be greater than 0 (got -5)`.
    pub message: String,
}

impl FieldError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl From<loadtest::ParseError> for FieldError {
    fn from(e: loadtest::ParseError) -> Self {
        FieldError {
            path: e.path,
            message: e.message,
        }
    }
}

/// Every problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// The problems.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// True when some problem is at exactly `path`.
    pub fn has_path(&self, path: &str) -> bool {
        self.0.iter().any(|e| e.path == path)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// The message for an inline secret.
pub fn inline_secret_message() -> &'static str {
    "inline secrets are not accepted; store it in Secrets Manager or SSM and reference it with credentials.secretsManagerArn or credentials.ssmParameter"
}

// ---------------------------------------------------------------------------------------------
// Validation of a typed LoadTest
// ---------------------------------------------------------------------------------------------

struct V {
    errs: Vec<FieldError>,
}

impl V {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errs.push(FieldError::new(path, message));
    }

    fn rate(&mut self, path: &str, v: f64, allow_zero: bool) {
        if !v.is_finite() {
            self.err(path, format!("must be a finite number (got {v})"));
        } else if allow_zero && v < 0.0 {
            self.err(path, format!("must be at least 0 (got {v})"));
        } else if !allow_zero && v <= 0.0 {
            self.err(path, format!("must be greater than 0 (got {v})"));
        }
    }

    fn positive_duration(&mut self, path: &str, d: HumanDuration) {
        if d.is_zero() {
            self.err(path, format!("must be greater than 0s (got {d})"));
        }
    }

    fn duration_between(&mut self, path: &str, d: HumanDuration, min: Duration, max: Duration) {
        if d.as_std() < min || d.as_std() > max {
            self.err(
                path,
                format!(
                    "must be between {} and {} (got {d})",
                    HumanDuration::from(min),
                    HumanDuration::from(max)
                ),
            );
        }
    }

    fn non_empty_opt(&mut self, path: &str, v: &Option<String>) {
        if let Some(s) = v
            && s.trim().is_empty()
        {
            self.err(path, "must not be empty when set");
        }
    }
}

/// Checks every rule; lists all problems.
pub fn validate(lt: &LoadTest) -> Result<(), ValidationErrors> {
    let mut v = V { errs: Vec::new() };
    check(lt, &mut v);
    if v.errs.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(v.errs))
    }
}

fn check(lt: &LoadTest, v: &mut V) {
    if lt.api_version != loadtest::API_VERSION {
        v.err(
            "apiVersion",
            format!(
                "must be {:?} (got {:?})",
                loadtest::API_VERSION,
                lt.api_version
            ),
        );
    }
    if lt.kind != loadtest::KIND {
        v.err(
            "kind",
            format!("must be {:?} (got {:?})", loadtest::KIND, lt.kind),
        );
    }
    check_metadata(lt, v);
    check_kafka(lt, v);
    check_topic(lt, v);
    check_workload(lt, v);
    check_load(lt, v);
    check_agents(lt, v);
    check_thresholds(lt, v);
    check_report(lt, v);
    check_warmup(lt, v);
    check_timeouts(lt, v);
}

fn check_metadata(lt: &LoadTest, v: &mut V) {
    let name = &lt.metadata.name;
    if name.is_empty() {
        v.err("metadata.name", "must not be empty");
    } else if name.chars().count() > 63 {
        v.err(
            "metadata.name",
            format!(
                "must be at most 63 characters (got {})",
                name.chars().count()
            ),
        );
    } else if !is_dns_label(name) {
        v.err(
            "metadata.name",
            format!(
                "must consist of lowercase letters, digits and '-', and start and end with a letter or digit (got {name:?})"
            ),
        );
    }
    let labels = &lt.metadata.labels;
    if labels.len() > limits::MAX_LABELS {
        v.err(
            "metadata.labels",
            format!(
                "must have at most {} labels (got {})",
                limits::MAX_LABELS,
                labels.len()
            ),
        );
    }
    for (k, val) in labels {
        let path = join_key("metadata.labels", k);
        if k.is_empty() || k.chars().count() > 128 {
            v.err(&path, "label keys must be 1 to 128 characters");
        } else if k.starts_with("aws:") || k.starts_with("barrage.dev/") {
            v.err(
                &path,
                "label keys starting with aws: or barrage.dev/ are reserved",
            );
        }
        if val.chars().count() > 256 {
            v.err(
                &path,
                format!(
                    "label values must be at most 256 characters (got {})",
                    val.chars().count()
                ),
            );
        }
    }
}

fn is_dns_label(s: &str) -> bool {
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    ok_chars && !s.starts_with('-') && !s.ends_with('-')
}

fn check_kafka(lt: &LoadTest, v: &mut V) {
    let k = &lt.spec.kafka;
    let path = "spec.kafka.bootstrapServers";
    if k.bootstrap_servers.trim().is_empty() {
        v.err(
            path,
            "must not be empty (a comma-separated list of host:port)",
        );
    } else {
        for (i, entry) in k.bootstrap_servers.split(',').enumerate() {
            if let Err(why) = check_host_port(entry.trim()) {
                v.err(
                    path,
                    format!(
                        "entry {} {:?} {why}; expected a comma-separated list of host:port",
                        i + 1,
                        entry.trim()
                    ),
                );
            }
        }
    }

    let sec = &k.security;
    let proto = sec.protocol.as_str();
    if sec.protocol.needs_sasl() && sec.sasl.is_none() {
        v.err(
            "spec.kafka.security.sasl",
            format!("is required when protocol is {proto}"),
        );
    }
    if !sec.protocol.needs_sasl() && sec.sasl.is_some() {
        v.err(
            "spec.kafka.security.sasl",
            format!("is only used with protocol SASL_PLAINTEXT or SASL_SSL (protocol is {proto})"),
        );
    }
    if !sec.protocol.uses_tls() && sec.ssl.is_some() {
        v.err(
            "spec.kafka.security.ssl",
            format!(
                "is only used with protocol SSL, SASL_SSL or AWS_MSK_IAM (protocol is {proto})"
            ),
        );
    }
    if let Some(region) = &sec.region {
        if sec.protocol != crate::spec::SecurityProtocol::AwsMskIam {
            v.err(
                "spec.kafka.security.region",
                format!("is only used with protocol AWS_MSK_IAM (protocol is {proto})"),
            );
        } else if !is_aws_region(region) {
            v.err(
                "spec.kafka.security.region",
                format!("must be an AWS region such as eu-west-1 (got {region:?})"),
            );
        }
    }
    if let Some(ssl) = &sec.ssl {
        v.non_empty_opt("spec.kafka.security.ssl.caLocation", &ssl.ca_location);
    }
    if let Some(sasl) = &sec.sasl {
        v.non_empty_opt("spec.kafka.security.sasl.username", &sasl.username);
        let c = &sasl.credentials;
        let cpath = "spec.kafka.security.sasl.credentials";
        match (&c.secrets_manager_arn, &c.ssm_parameter) {
            (None, None) => v.err(
                cpath,
                "exactly one of secretsManagerArn and ssmParameter must be set (got none)",
            ),
            (Some(_), Some(_)) => v.err(
                cpath,
                "exactly one of secretsManagerArn and ssmParameter must be set (got both)",
            ),
            _ => {}
        }
        if let Some(arn) = &c.secrets_manager_arn
            && !is_secrets_manager_arn(arn)
        {
            v.err(
                format!("{cpath}.secretsManagerArn"),
                format!(
                    "must be a Secrets Manager secret ARN such as arn:aws:secretsmanager:eu-west-1:123456789012:secret:NAME (got {})",
                    redact(arn)
                ),
            );
        }
        if let Some(p) = &c.ssm_parameter
            && !is_ssm_parameter(p)
        {
            v.err(
                format!("{cpath}.ssmParameter"),
                format!(
                    "must be an SSM parameter name such as /barrage/kafka/password or its ARN (got {})",
                    redact(p)
                ),
            );
        }
    }

    let p = &k.producer;
    if p.batch_size == 0 || p.batch_size > limits::MAX_BATCH_SIZE {
        v.err(
            "spec.kafka.producer.batchSize",
            format!(
                "must be between 1 and {} (got {})",
                limits::MAX_BATCH_SIZE,
                p.batch_size
            ),
        );
    }
    if p.linger.as_std() > limits::MAX_LINGER {
        v.err(
            "spec.kafka.producer.linger",
            format!(
                "must be at most {} (got {})",
                HumanDuration::from(limits::MAX_LINGER),
                p.linger
            ),
        );
    }
    if p.max_in_flight == 0 || p.max_in_flight > limits::MAX_IN_FLIGHT {
        v.err(
            "spec.kafka.producer.maxInFlight",
            format!(
                "must be between 1 and {} (got {})",
                limits::MAX_IN_FLIGHT,
                p.max_in_flight
            ),
        );
    }
    if p.idempotence && p.acks != Acks::All {
        v.err(
            "spec.kafka.producer.idempotence",
            format!(
                "requires acks \"all\" (acks is {:?}); set idempotence: false or acks: all",
                p.acks.as_str()
            ),
        );
    }
    check_properties(
        v,
        "spec.kafka.producer.properties",
        &p.properties,
        ALLOWED_PRODUCER_PROPERTIES,
        "producer",
    );
    let c = &k.consumer;
    if let Some(g) = &c.group_id {
        if g.trim().is_empty() {
            v.err("spec.kafka.consumer.groupId", "must not be empty when set");
        } else if g.chars().count() > 255 {
            v.err(
                "spec.kafka.consumer.groupId",
                format!("must be at most 255 characters (got {})", g.chars().count()),
            );
        }
    }
    check_properties(
        v,
        "spec.kafka.consumer.properties",
        &c.properties,
        ALLOWED_CONSUMER_PROPERTIES,
        "consumer",
    );
}

fn check_host_port(entry: &str) -> Result<(), &'static str> {
    let Some((host, port)) = entry.rsplit_once(':') else {
        return Err("has no port");
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    {
        return Err("has an invalid host");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err("has an invalid port (1 to 65535)"),
    }
}

fn is_aws_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn is_secrets_manager_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(7, ':').collect();
    parts.len() == 7
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "secretsmanager"
        && !parts[3].is_empty()
        && !parts[4].is_empty()
        && parts[5] == "secret"
        && !parts[6].is_empty()
}

fn is_ssm_parameter(s: &str) -> bool {
    if s.starts_with("arn:") {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        return parts.len() == 6
            && parts[1].starts_with("aws")
            && parts[2] == "ssm"
            && parts[5].starts_with("parameter/")
            && parts[5].len() > "parameter/".len();
    }
    !s.is_empty()
        && s.len() <= 2048
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
}

/// Shows the shape of a value that might be a secret without printing it.
fn redact(s: &str) -> String {
    let n = s.chars().count();
    if n <= 12 {
        format!("{n} characters")
    } else {
        let head: String = s.chars().take(8).collect();
        format!("\"{head}…\", {n} characters")
    }
}

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

fn check_properties(
    v: &mut V,
    base: &str,
    props: &std::collections::BTreeMap<String, String>,
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

fn check_topic(lt: &LoadTest, v: &mut V) {
    let t = &lt.spec.topic;
    let n = &t.name;
    let ok = !n.is_empty()
        && n.len() <= 249
        && n != "."
        && n != ".."
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        v.err(
            "spec.topic.name",
            format!(
                "must be 1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-', and not \".\" or \"..\" (got {n:?})"
            ),
        );
    }
    if let Some(c) = &t.create {
        if c.partitions < 1 || c.partitions > limits::MAX_PARTITIONS {
            v.err(
                "spec.topic.create.partitions",
                format!(
                    "must be between 1 and {} (got {})",
                    limits::MAX_PARTITIONS,
                    c.partitions
                ),
            );
        }
        if c.replication_factor < 1 || c.replication_factor > limits::MAX_REPLICATION_FACTOR {
            v.err(
                "spec.topic.create.replicationFactor",
                format!(
                    "must be between 1 and {} (got {})",
                    limits::MAX_REPLICATION_FACTOR,
                    c.replication_factor
                ),
            );
        }
        for (key, value) in &c.configs {
            let path = join_key("spec.topic.create.configs", key);
            if key.is_empty()
                || !key
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '.')
            {
                v.err(
                    &path,
                    "topic config names are lowercase words separated by dots, e.g. retention.ms",
                );
            } else if value.trim().is_empty() {
                v.err(&path, "must not be empty");
            }
            if key == "min.insync.replicas"
                && let Ok(m) = value.trim().parse::<i64>()
                && c.replication_factor >= 1
                && m > i64::from(c.replication_factor)
            {
                v.err(
                    &path,
                    format!(
                        "must be at most replicationFactor ({}) (got {m}): no write could ever succeed",
                        c.replication_factor
                    ),
                );
            }
        }
    }
    if t.cleanup == TopicCleanup::DeleteIfCreated && t.create.is_none() {
        v.err(
            "spec.topic.cleanup",
            "DeleteIfCreated needs spec.topic.create: without it this run never creates the topic, so nothing would be deleted",
        );
    }
}

fn check_workload(lt: &LoadTest, v: &mut V) {
    let w = &lt.spec.workload;
    let r = &w.records;
    let base = "spec.workload.records";
    if r.records_per_transaction == 0
        || r.records_per_transaction > limits::MAX_RECORDS_PER_TRANSACTION
    {
        v.err(
            format!("{base}.recordsPerTransaction"),
            format!(
                "must be between 1 and {} (got {})",
                limits::MAX_RECORDS_PER_TRANSACTION,
                r.records_per_transaction
            ),
        );
    }
    if r.transactional {
        if w.kind == WorkloadKind::Consume {
            v.err(
                format!("{base}.transactional"),
                "is only used by Produce and RoundTrip workloads",
            );
        }
        if !lt.spec.kafka.producer.idempotence {
            v.err(
                "spec.kafka.producer.idempotence",
                "must be true when spec.workload.records.transactional is true",
            );
        }
    }
    let max = limits::MAX_RECORD_SIZE;
    match &r.value {
        ValueSpec::Size(s) => {
            if *s > max {
                v.err(
                    format!("{base}.value.size"),
                    format!("must be at most {max} bytes (10 MiB) (got {s})"),
                );
            }
        }
        ValueSpec::UniformSize(range) => {
            let p = format!("{base}.value.uniformSize");
            if range.min > range.max {
                v.err(
                    &p,
                    format!(
                        "min must be at most max (got min {}, max {})",
                        range.min, range.max
                    ),
                );
            }
            if range.max > max {
                v.err(
                    format!("{p}.max"),
                    format!("must be at most {max} bytes (10 MiB) (got {})", range.max),
                );
            }
        }
        ValueSpec::Avro(avro) => check_avro(v, &format!("{base}.value.avro"), avro),
        ValueSpec::Json(json) => {
            let p = format!("{base}.value.json.template");
            if json.template.trim().is_empty() {
                v.err(&p, "must not be empty");
            } else if json.template.len() > max as usize {
                v.err(
                    &p,
                    format!(
                        "must be at most {max} bytes (10 MiB) (got {})",
                        json.template.len()
                    ),
                );
            } else if let Err(e) = check_json_template(&json.template) {
                v.err(&p, e);
            }
        }
    }

    let k = &r.key;
    if k.distribution != KeyDistribution::None && k.cardinality == 0 {
        v.err(
            format!("{base}.key.cardinality"),
            "must be at least 1 (got 0)",
        );
    }
    if k.distribution == KeyDistribution::Zipf {
        if !k.exponent.is_finite() || k.exponent <= 0.0 || k.exponent > 10.0 {
            v.err(
                format!("{base}.key.exponent"),
                format!("must be greater than 0 and at most 10 (got {})", k.exponent),
            );
        }
    } else if k.exponent != crate::spec::defaults::KEY_EXPONENT {
        v.err(
            format!("{base}.key.exponent"),
            "is only used with distribution zipf",
        );
    }

    if r.headers.len() > limits::MAX_HEADERS {
        v.err(
            format!("{base}.headers"),
            format!(
                "must have at most {} headers (got {})",
                limits::MAX_HEADERS,
                r.headers.len()
            ),
        );
    }
    for key in r.headers.keys() {
        let path = join_key(&format!("{base}.headers"), key);
        if key.trim().is_empty() {
            v.err(path, "header names must not be empty");
        } else if key.starts_with("barrage.") || key.starts_with("barrage-") {
            v.err(
                path,
                "header names starting with barrage. or barrage- are reserved for Barrage's own headers",
            );
        }
    }
}

fn check_avro(v: &mut V, p: &str, avro: &AvroValue) {
    match (&avro.schema, &avro.schema_file) {
        (None, None) => v.err(
            p,
            "exactly one of schema and schemaFile must be set (got none)",
        ),
        (Some(_), Some(_)) => v.err(
            p,
            "exactly one of schema and schemaFile must be set (got both)",
        ),
        _ => {}
    }
    if let Some(f) = &avro.schema_file
        && f.trim().is_empty()
    {
        v.err(format!("{p}.schemaFile"), "must not be empty when set");
    }
    let mut field_names: Option<BTreeSet<String>> = None;
    if let Some(text) = &avro.schema {
        match serde_json::from_str::<Value>(text) {
            Err(e) => v.err(
                format!("{p}.schema"),
                format!("must be an Avro schema in JSON: {e}"),
            ),
            Ok(schema) => match &schema {
                Value::Object(o) if o.get("type").is_some_and(Value::is_string) => {
                    if o.get("type").and_then(Value::as_str) == Some("record") {
                        let mut named = BTreeMap::new();
                        avro_named_records(&schema, &mut named, 0);
                        let mut names = BTreeSet::new();
                        if collect_avro_fields(&schema, "", &named, &mut Vec::new(), &mut names)
                            .is_ok()
                        {
                            field_names = Some(names);
                        }
                    }
                }
                Value::String(_) | Value::Array(_) => {}
                _ => v.err(
                    format!("{p}.schema"),
                    "must be an Avro schema: a JSON object with a \"type\", a type name, or a union list",
                ),
            },
        }
    }
    for (name, g) in &avro.generators {
        let gp = join_key(&format!("{p}.generators"), name);
        if name.trim().is_empty() {
            v.err(&gp, "field names must not be empty");
            continue;
        }
        if let Some(names) = &field_names
            && !names.contains(name)
        {
            let known: Vec<&str> = names.iter().map(String::as_str).collect();
            v.err(
                &gp,
                format!(
                    "no field {name:?} in the Avro schema (fields: {})",
                    known.join(", ")
                ),
            );
        }
        match g {
            FieldGenerator::UniformInt(r) if r.min > r.max => v.err(
                format!("{gp}.uniformInt"),
                format!("min must be at most max (got min {}, max {})", r.min, r.max),
            ),
            FieldGenerator::StringLength(r) => {
                if r.min > r.max {
                    v.err(
                        format!("{gp}.stringLength"),
                        format!("min must be at most max (got min {}, max {})", r.min, r.max),
                    );
                }
                if r.max > limits::MAX_RECORD_SIZE {
                    v.err(
                        format!("{gp}.stringLength.max"),
                        format!(
                            "must be at most {} (got {})",
                            limits::MAX_RECORD_SIZE,
                            r.max
                        ),
                    );
                }
            }
            FieldGenerator::OneOf(list) if list.is_empty() => {
                v.err(format!("{gp}.oneOf"), "must list at least one value");
            }
            _ => {}
        }
    }
}

/// Most field paths collected from one Avro schema.
const MAX_AVRO_PATHS: usize = 10_000;

const AVRO_PRIMITIVES: &[&str] = &[
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// Every named record of an Avro schema, by name and by full name.
fn avro_named_records<'a>(v: &'a Value, out: &mut BTreeMap<String, &'a Value>, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(o) => {
            if o.get("type").and_then(Value::as_str) == Some("record")
                && let Some(name) = o.get("name").and_then(Value::as_str)
            {
                out.insert(name.to_string(), v);
                if let Some(ns) = o.get("namespace").and_then(Value::as_str) {
                    out.insert(format!("{ns}.{name}"), v);
                }
                if let Some(short) = name.rsplit('.').next() {
                    out.entry(short.to_string()).or_insert(v);
                }
            }
            for child in o.values() {
                avro_named_records(child, out, depth + 1);
            }
        }
        Value::Array(a) => {
            for child in a {
                avro_named_records(child, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Dotted names of the fields of an Avro record schema: nested records, through unions and
/// named references, as the agent resolves generator names. `Err(())` when a type reference
/// cannot be resolved here (then generator names are left to the agent to check).
fn collect_avro_fields(
    schema: &Value,
    prefix: &str,
    named: &BTreeMap<String, &Value>,
    stack: &mut Vec<String>,
    out: &mut BTreeSet<String>,
) -> Result<(), ()> {
    if stack.len() > 32 || out.len() > MAX_AVRO_PATHS {
        return Ok(());
    }
    let Some(fields) = schema.get("fields").and_then(Value::as_array) else {
        return Ok(());
    };
    let record_name = schema
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    stack.push(record_name);
    for f in fields {
        let Some(name) = f.get("name").and_then(Value::as_str) else {
            continue;
        };
        let full = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        out.insert(full.clone());
        let candidates: Vec<&Value> = match f.get("type") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(t) => vec![t],
            None => vec![],
        };
        for t in candidates {
            let record = match t {
                Value::String(n) if AVRO_PRIMITIVES.contains(&n.as_str()) => None,
                Value::String(n) => match named.get(n.as_str()) {
                    Some(r) => Some(*r),
                    None => {
                        stack.pop();
                        return Err(());
                    }
                },
                Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("record") => {
                    Some(t)
                }
                _ => None,
            };
            if let Some(r) = record {
                let rname = r.get("name").and_then(Value::as_str).unwrap_or_default();
                // A recursive type is entered once per path.
                if !stack.iter().any(|s| s == rname)
                    && collect_avro_fields(r, &full, named, stack, out).is_err()
                {
                    stack.pop();
                    return Err(());
                }
            }
        }
    }
    stack.pop();
    Ok(())
}

/// The placeholders a JSON template may use (the agent's `payload::json` renders them).
pub const JSON_TEMPLATE_PLACEHOLDERS: &[&str] = &[
    "{{seq}}",
    "{{seq START}}",
    "{{uuid}}",
    "{{timestampMillis}}",
    "{{int MIN MAX}}",
    "{{uniformInt MIN MAX}}",
    "{{string LEN}}",
    "{{string MIN MAX}}",
    "{{oneOf A B ...}}",
    "{{bool}}",
];

/// Checks one placeholder's words.
fn check_placeholder(words: &[&str]) -> Result<(), String> {
    let int = |w: &str, what: &str| -> Result<i64, String> {
        w.parse()
            .map_err(|_| format!("{what} must be an integer (got {w:?})"))
    };
    let len = |w: &str, what: &str| -> Result<u32, String> {
        match w.parse::<u32>() {
            Ok(n) if n <= limits::MAX_RECORD_SIZE => Ok(n),
            Ok(n) => Err(format!(
                "{what} must be at most {} (got {n})",
                limits::MAX_RECORD_SIZE
            )),
            Err(_) => Err(format!("{what} must be a length, 0 or more (got {w:?})")),
        }
    };
    match words {
        ["seq"] | ["uuid"] | ["timestampMillis"] | ["bool"] => Ok(()),
        ["seq", s] => int(s, "START").map(|_| ()),
        ["int" | "uniformInt", a, b] => {
            let (min, max) = (int(a, "MIN")?, int(b, "MAX")?);
            if min > max {
                return Err(format!(
                    "min must be at most max (got min {min}, max {max})"
                ));
            }
            Ok(())
        }
        ["string", n] => len(n, "LEN").map(|_| ()),
        ["string", a, b] => {
            let (min, max) = (len(a, "MIN")?, len(b, "MAX")?);
            if min > max {
                return Err(format!(
                    "min must be at most max (got min {min}, max {max})"
                ));
            }
            Ok(())
        }
        ["oneOf"] => Err("must list at least one word".to_string()),
        ["oneOf", ..] => Ok(()),
        _ => Err(format!(
            "unknown placeholder; expected one of {}",
            JSON_TEMPLATE_PLACEHOLDERS.join(", ")
        )),
    }
}

/// Checks a JSON template: placeholders are known and well formed, and the text is JSON once
/// every placeholder is replaced by a value (`0`).
pub fn check_json_template(template: &str) -> Result<(), String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("has an unclosed {{ placeholder".to_string());
        };
        let inner = after[..end].trim();
        let words: Vec<&str> = inner.split_whitespace().collect();
        check_placeholder(&words).map_err(|e| format!("placeholder {{{{{inner}}}}}: {e}"))?;
        out.push('0');
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    serde_json::from_str::<Value>(&out)
        .map(|_| ())
        .map_err(|e| format!("must be JSON once placeholders are filled in: {e}"))
}

fn check_load(lt: &LoadTest, v: &mut V) {
    let load = &lt.spec.load;
    let agents = lt.spec.agents.count.max(1);
    let cap = limits::MAX_RATE_PER_AGENT * f64::from(agents);
    if load.steps.is_empty() {
        v.err("spec.load.steps", "must have at least one step");
    }
    if load.steps.len() > limits::MAX_STEPS {
        v.err(
            "spec.load.steps",
            format!(
                "must have at most {} steps (got {})",
                limits::MAX_STEPS,
                load.steps.len()
            ),
        );
    }
    let per_agent = |v: &mut V, path: String, rate: f64| {
        if rate.is_finite() && rate > cap {
            v.err(
                path,
                format!(
                    "{rate} records/s over {agents} agent(s) is {} per agent; at most {} per agent (raise spec.agents.count)",
                    rate / f64::from(agents),
                    limits::MAX_RATE_PER_AGENT
                ),
            );
        }
    };
    for (i, step) in load.steps.iter().enumerate() {
        let p = format!("spec.load.steps[{i}].{}", step.kind());
        match step {
            LoadStep::Constant(c) => {
                v.rate(&format!("{p}.rate"), c.rate, false);
                per_agent(v, format!("{p}.rate"), c.rate);
                v.positive_duration(&format!("{p}.for"), c.duration);
            }
            LoadStep::Ramp(r) => {
                v.rate(&format!("{p}.from"), r.from, true);
                v.rate(&format!("{p}.to"), r.to, true);
                per_agent(v, format!("{p}.from"), r.from);
                per_agent(v, format!("{p}.to"), r.to);
                if r.from == 0.0 && r.to == 0.0 {
                    v.err(&p, "from and to cannot both be 0");
                }
                v.positive_duration(&format!("{p}.over"), r.over);
            }
            LoadStep::Staircase(s) => {
                v.rate(&format!("{p}.start"), s.start, true);
                v.rate(&format!("{p}.step"), s.step, false);
                v.rate(&format!("{p}.until"), s.until, false);
                per_agent(v, format!("{p}.until"), s.until);
                if s.until.is_finite() && s.start.is_finite() && s.until <= s.start {
                    v.err(
                        format!("{p}.until"),
                        format!(
                            "must be greater than start (got until {}, start {})",
                            s.until, s.start
                        ),
                    );
                }
                v.positive_duration(&format!("{p}.every"), s.every);
                let stairs = s.stairs();
                if stairs > limits::MAX_STAIRS {
                    v.err(
                        &p,
                        format!(
                            "makes {stairs} stairs; at most {} (raise step)",
                            limits::MAX_STAIRS
                        ),
                    );
                }
            }
        }
    }
    if let Some(d) = load.duration {
        v.positive_duration("spec.load.duration", d);
        if d.as_std() > limits::MAX_DURATION {
            v.err(
                "spec.load.duration",
                format!(
                    "must be at most {} (got {d})",
                    HumanDuration::from(limits::MAX_DURATION)
                ),
            );
        }
    } else if load.steps_duration() > limits::MAX_DURATION {
        v.err(
            "spec.load.steps",
            format!(
                "add up to {}; the load may last at most {}",
                HumanDuration::from(load.steps_duration()),
                HumanDuration::from(limits::MAX_DURATION)
            ),
        );
    }
    if let Some(m) = load.max_duration {
        let total = load.total_duration();
        if m.as_std() < total {
            v.err(
                "spec.load.maxDuration",
                format!(
                    "must be at least the load duration (got {m}, the load lasts {})",
                    HumanDuration::from(total)
                ),
            );
        }
        if m.as_std() > limits::MAX_MAX_DURATION {
            v.err(
                "spec.load.maxDuration",
                format!(
                    "must be at most {} (got {m})",
                    HumanDuration::from(limits::MAX_MAX_DURATION)
                ),
            );
        }
    }
}

fn check_agents(lt: &LoadTest, v: &mut V) {
    let a = &lt.spec.agents;
    if a.count == 0 || a.count > limits::MAX_AGENTS {
        v.err(
            "spec.agents.count",
            format!(
                "must be between 1 and {} (got {})",
                limits::MAX_AGENTS,
                a.count
            ),
        );
    }
    match a.launch_type {
        LaunchType::Fargate => {
            if !limits::FARGATE_CPU.contains(&a.cpu) {
                let sizes: Vec<String> = limits::FARGATE_CPU.iter().map(u32::to_string).collect();
                v.err(
                    "spec.agents.cpu",
                    format!(
                        "must be one of {} on FARGATE (got {})",
                        sizes.join(", "),
                        a.cpu
                    ),
                );
            } else if let Some((lo, hi, step)) = fargate_memory(a.cpu)
                && (a.memory < lo || a.memory > hi || !(a.memory - lo).is_multiple_of(step))
            {
                v.err(
                    "spec.agents.memory",
                    format!(
                        "{} MiB is not a Fargate size for cpu {} (allowed: {lo} to {hi} in steps of {step})",
                        a.memory, a.cpu
                    ),
                );
            }
        }
        LaunchType::Ec2 => {
            if a.cpu < limits::MIN_EC2_CPU || a.cpu > limits::MAX_EC2_CPU {
                v.err(
                    "spec.agents.cpu",
                    format!(
                        "must be between {} and {} on EC2 (got {})",
                        limits::MIN_EC2_CPU,
                        limits::MAX_EC2_CPU,
                        a.cpu
                    ),
                );
            }
            if a.memory < limits::MIN_MEMORY || a.memory > limits::MAX_EC2_MEMORY {
                v.err(
                    "spec.agents.memory",
                    format!(
                        "must be between {} and {} MiB on EC2 (got {})",
                        limits::MIN_MEMORY,
                        limits::MAX_EC2_MEMORY,
                        a.memory
                    ),
                );
            }
            if a.spot {
                v.err(
                    "spec.agents.spot",
                    "is only supported with launchType FARGATE (Fargate Spot)",
                );
            }
        }
    }
    if a.max_restarts > limits::MAX_RESTARTS {
        v.err(
            "spec.agents.maxRestarts",
            format!(
                "must be at most {} (got {})",
                limits::MAX_RESTARTS,
                a.max_restarts
            ),
        );
    }
    if !a.ready_fraction.is_finite() || a.ready_fraction <= 0.0 || a.ready_fraction > 1.0 {
        v.err(
            "spec.agents.readyFraction",
            format!(
                "must be greater than 0 and at most 1 (got {})",
                a.ready_fraction
            ),
        );
    }
    let vcpu = f64::from(a.cpu) / 1024.0;
    let hours = lt.spec.load.effective_max_duration().as_secs_f64() / 3600.0;
    let cost = f64::from(a.count) * vcpu * hours;
    if cost > limits::MAX_VCPU_HOURS {
        v.err(
            "spec.agents",
            format!(
                "estimated {cost:.0} vCPU-hours ({} agents × {vcpu} vCPU × {hours:.1} h of maxDuration) exceeds the cost guard of {} vCPU-hours; lower agents.count, agents.cpu or load.maxDuration",
                a.count,
                limits::MAX_VCPU_HOURS
            ),
        );
    }
}

/// Fargate memory range (MiB) and step for a CPU size.
pub fn fargate_memory(cpu: u32) -> Option<(u32, u32, u32)> {
    match cpu {
        256 => Some((512, 2048, 512)),
        512 => Some((1024, 4096, 1024)),
        1024 => Some((2048, 8192, 1024)),
        2048 => Some((4096, 16384, 1024)),
        4096 => Some((8192, 30720, 1024)),
        8192 => Some((16384, 61440, 4096)),
        16384 => Some((32768, 122_880, 8192)),
        _ => None,
    }
}

fn check_thresholds(lt: &LoadTest, v: &mut V) {
    let ths = &lt.spec.thresholds;
    if ths.len() > limits::MAX_THRESHOLDS {
        v.err(
            "spec.thresholds",
            format!(
                "must have at most {} thresholds (got {})",
                limits::MAX_THRESHOLDS,
                ths.len()
            ),
        );
    }
    let kind = lt.spec.workload.kind;
    for (i, t) in ths.iter().enumerate() {
        let p = format!("spec.thresholds[{i}]");
        if t.metric.needs_round_trip() && kind != WorkloadKind::RoundTrip {
            v.err(
                &p,
                format!(
                    "{} is only measured by RoundTrip workloads (workload.kind is {kind:?})",
                    t.metric
                ),
            );
        }
        let needs_producer = matches!(
            t.metric.histogram_tag(),
            Some("produce" | "service" | "lag")
        ) || t.metric == Metric::RateAchievedRatio;
        if needs_producer && kind == WorkloadKind::Consume {
            v.err(
                &p,
                format!("{} is not measured by Consume workloads", t.metric),
            );
        }
        if t.scope == ThresholdScope::Window && lt.spec.report.window.is_none() {
            v.err(
                &p,
                "scope window needs spec.report.window (the rolling window to evaluate)",
            );
        }
        if t.metric == Metric::ErrorsRatio
            && t.metric.kind() == MetricKind::Ratio
            && t.value.value() > 1.0
        {
            v.err(
                &p,
                format!(
                    "errors.ratio is at most 1 (100%), so {} can never fail",
                    t.value
                ),
            );
        }
    }
}

/// The warm-up is a whole number of report intervals (intervals are what the report merges)
/// and leaves some of the load to measure.
fn check_warmup(lt: &LoadTest, v: &mut V) {
    let Some(w) = lt.spec.load.warmup else {
        return;
    };
    let p = "spec.load.warmup";
    v.positive_duration(p, w);
    let interval = lt.spec.report.interval;
    if interval.as_nanos_u64() > 0 && !w.as_nanos_u64().is_multiple_of(interval.as_nanos_u64()) {
        v.err(
            p,
            format!("must be a multiple of report.interval ({interval}) (got {w})"),
        );
    }
    let total = lt.spec.load.total_duration();
    if w.as_std() >= total {
        v.err(
            p,
            format!(
                "must be shorter than the load (got {w}, the load lasts {})",
                HumanDuration::from(total)
            ),
        );
    }
}

fn check_report(lt: &LoadTest, v: &mut V) {
    let r = &lt.spec.report;
    v.duration_between(
        "spec.report.interval",
        r.interval,
        limits::MIN_REPORT_INTERVAL,
        limits::MAX_REPORT_INTERVAL,
    );
    if let Some(w) = r.window {
        let interval = r.interval.as_nanos_u64();
        if w.as_std() < r.interval.as_std() {
            v.err(
                "spec.report.window",
                format!(
                    "must be at least report.interval ({}) (got {w})",
                    r.interval
                ),
            );
        } else if interval > 0 && !w.as_nanos_u64().is_multiple_of(interval) {
            v.err(
                "spec.report.window",
                format!(
                    "must be a multiple of report.interval ({}) (got {w})",
                    r.interval
                ),
            );
        }
        if w.as_std() > limits::MAX_DURATION {
            v.err(
                "spec.report.window",
                format!(
                    "must be at most {} (got {w})",
                    HumanDuration::from(limits::MAX_DURATION)
                ),
            );
        }
    }
    if let Some(d) = &r.destination {
        let p = "spec.report.destination";
        match (&d.s3, &d.local) {
            (None, None) => v.err(p, "exactly one of s3 and local must be set (got none)"),
            (Some(_), Some(_)) => v.err(p, "exactly one of s3 and local must be set (got both)"),
            _ => {}
        }
        if let Some(s3) = &d.s3 {
            if !is_bucket_name(&s3.bucket) {
                v.err(
                    format!("{p}.s3.bucket"),
                    format!(
                        "must be an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit (got {:?})",
                        s3.bucket
                    ),
                );
            }
            if s3.prefix.starts_with('/') {
                v.err(format!("{p}.s3.prefix"), "must not start with '/'");
            }
            if s3.prefix.len() > 512 {
                v.err(
                    format!("{p}.s3.prefix"),
                    format!("must be at most 512 characters (got {})", s3.prefix.len()),
                );
            }
        }
        if let Some(local) = &d.local
            && local.path.trim().is_empty()
        {
            v.err(format!("{p}.local.path"), "must not be empty");
        }
    }
}

fn is_bucket_name(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !s.contains("..")
}

fn check_timeouts(lt: &LoadTest, v: &mut V) {
    let t = &lt.spec.timeouts;
    for (name, d) in [
        ("provisioning", t.provisioning),
        ("ready", t.ready),
        ("draining", t.draining),
        ("reporting", t.reporting),
        ("cancelling", t.cancelling),
    ] {
        v.duration_between(
            &format!("spec.timeouts.{name}"),
            d,
            limits::MIN_TIMEOUT,
            limits::MAX_TIMEOUT,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing with every problem listed
// ---------------------------------------------------------------------------------------------

/// A path segment in a JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn format_segs(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => out = join_key(&out, k),
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Parses a path written by `format_segs` / `join_key` back into segments.
fn parse_segs(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix("[\"") {
            // A quoted key: find the closing quote that is not escaped.
            let mut end = None;
            let mut escaped = false;
            for (i, c) in r.char_indices() {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    end = Some(i);
                    break;
                }
            }
            let Some(end) = end else {
                break;
            };
            segs.push(Seg::Key(
                r[..end].replace("\\\"", "\"").replace("\\\\", "\\"),
            ));
            rest = r[end + 1..].strip_prefix(']').unwrap_or(&r[end + 1..]);
            continue;
        }
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap_or(r.len());
            match r[..end].parse::<usize>() {
                Ok(i) => segs.push(Seg::Index(i)),
                Err(_) => segs.push(Seg::Key(r[..end].to_string())),
            }
            rest = r.get(end + 1..).unwrap_or("");
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        segs.push(Seg::Key(rest[..end].to_string()));
        rest = &rest[end..];
    }
    segs
}

fn segs_of(path: &serde_path_to_error::Path) -> Vec<Seg> {
    use serde_path_to_error::Segment;
    path.iter()
        .map(|s| match s {
            Segment::Seq { index } => Seg::Index(*index),
            Segment::Map { key } => Seg::Key(key.clone()),
            Segment::Enum { variant } => Seg::Key(variant.clone()),
            Segment::Unknown => Seg::Key("?".to_string()),
        })
        .collect()
}

fn get_mut<'a>(root: &'a mut Value, segs: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = root;
    for s in segs {
        cur = match (s, cur) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Removes the node at `segs`; true when something was removed.
fn remove_at(root: &mut Value, segs: &[Seg]) -> bool {
    let Some((last, parent)) = segs.split_last() else {
        return false;
    };
    match (last, get_mut(root, parent)) {
        (Seg::Key(k), Some(Value::Object(m))) => m.remove(k).is_some(),
        (Seg::Index(i), Some(Value::Array(a))) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

fn insert_at(root: &mut Value, segs: &[Seg], value: Value) -> bool {
    let Some((Seg::Key(k), parent)) = segs.split_last() else {
        return false;
    };
    match get_mut(root, parent) {
        Some(Value::Object(m)) => {
            m.insert(k.clone(), value);
            true
        }
        _ => false,
    }
}

/// Maps paths of the repaired document back to the original one (array elements removed).
#[derive(Default)]
struct Repairs {
    /// (array path, index) of every removed element, in order.
    removed_elements: Vec<(Vec<Seg>, usize)>,
    /// Original-document paths that were repaired: problems at or under them are consequences.
    silenced: Vec<Vec<Seg>>,
}

impl Repairs {
    fn to_original(&self, segs: &[Seg]) -> Vec<Seg> {
        let mut p = segs.to_vec();
        for (array, index) in self.removed_elements.iter().rev() {
            if p.len() > array.len()
                && p[..array.len()] == array[..]
                && let Seg::Index(j) = &mut p[array.len()]
                && *j >= *index
            {
                *j += 1;
            }
        }
        p
    }

    fn is_silenced(&self, original: &[Seg]) -> bool {
        self.silenced
            .iter()
            .any(|s| original.len() >= s.len() && original[..s.len()] == s[..])
    }
}

/// Most re-parses while collecting errors.
const MAX_ROUNDS: usize = 200;
/// Most problems reported.
const MAX_ERRORS: usize = 100;

/// Placeholders tried for a missing required field (their own problems are not reported).
fn placeholders() -> [Value; 5] {
    [
        Value::String("placeholder".to_string()),
        Value::from(1),
        Value::Object(serde_json::Map::new()),
        Value::Array(Vec::new()),
        Value::Bool(false),
    ]
}

/// Finds inline secrets under `spec.kafka`, reports them and removes them from the document.
fn strip_inline_secrets(doc: &mut Value, errs: &mut Vec<FieldError>) {
    fn walk(v: &mut Value, path: &mut Vec<Seg>, errs: &mut Vec<FieldError>, depth: usize) {
        if depth > 64 {
            return;
        }
        match v {
            Value::Object(m) => {
                let secret_keys: Vec<String> =
                    m.keys().filter(|k| is_secret_key(k)).cloned().collect();
                for k in secret_keys {
                    m.remove(&k);
                    path.push(Seg::Key(k));
                    errs.push(FieldError::new(format_segs(path), inline_secret_message()));
                    path.pop();
                }
                for (k, child) in m.iter_mut() {
                    path.push(Seg::Key(k.clone()));
                    walk(child, path, errs, depth + 1);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter_mut().enumerate() {
                    path.push(Seg::Index(i));
                    walk(child, path, errs, depth + 1);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    if let Some(kafka) = doc.get_mut("spec").and_then(|s| s.get_mut("kafka")) {
        let mut path = vec![Seg::Key("spec".into()), Seg::Key("kafka".into())];
        walk(kafka, &mut path, errs, 0);
    }
}

/// Rewrites serde's messages into `path: rule` form.
fn humanize(segs: &[Seg], message: &str) -> (Vec<Seg>, String) {
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some(field) = rest.strip_suffix('`')
    {
        let mut p = segs.to_vec();
        p.push(Seg::Key(field.to_string()));
        return (p, "is required".to_string());
    }
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((_, expected)) = rest.split_once("`, ")
    {
        return (
            segs.to_vec(),
            format!("unknown field ({})", expected.replace('`', "")),
        );
    }
    (segs.to_vec(), message.to_string())
}

/// The first variant listed in serde's "unknown variant `x`, expected one of `A`, `B`" message.
fn first_expected_variant(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown variant `")?;
    let (_, expected) = rest.split_once("`, expected ")?;
    let expected = expected.strip_prefix("one of ").unwrap_or(expected);
    let name = expected.strip_prefix('`')?;
    let end = name.find('`')?;
    Some(&name[..end])
}

/// Replaces an unknown enum variant by a known one: a string node, or the single key of a
/// `{variant: content}` map. True when something was replaced.
fn replace_variant(doc: &mut Value, segs: &[Seg], variant: &str) -> bool {
    match get_mut(doc, segs) {
        Some(node @ Value::String(_)) => {
            if node.as_str() == Some(variant) {
                return false;
            }
            *node = Value::String(variant.to_string());
            true
        }
        Some(Value::Object(m)) if m.len() == 1 => {
            let Some(key) = m.keys().next().cloned() else {
                return false;
            };
            if key == variant {
                return false;
            }
            let content = m.remove(&key).unwrap_or(Value::Null);
            m.insert(variant.to_string(), content);
            true
        }
        _ => false,
    }
}

/// Deserializes `doc`, repairing and retrying to collect every parse problem. Returns the
/// LoadTest of the repaired document (when one could be made) and the problems.
fn parse_collecting(mut doc: Value) -> (Option<LoadTest>, Vec<FieldError>, Repairs) {
    let mut errs = Vec::new();
    let mut repairs = Repairs::default();
    strip_inline_secrets(&mut doc, &mut errs);
    if !doc.is_object() {
        errs.push(FieldError::new(
            "",
            format!(
                "expected a LoadTest mapping with apiVersion, kind, metadata and spec (got {})",
                loadtest::kind_of(&doc)
            ),
        ));
        return (None, errs, repairs);
    }
    let mut attempts: Vec<(Vec<Seg>, usize)> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let e = match serde_path_to_error::deserialize::<_, LoadTest>(&doc) {
            Ok(lt) => return (Some(lt), errs, repairs),
            Err(e) => e,
        };
        let raw_segs = segs_of(e.path());
        let (segs, message) = humanize(&raw_segs, &e.inner().to_string());
        let original = repairs.to_original(&segs);
        if !repairs.is_silenced(&original) && errs.len() < MAX_ERRORS {
            errs.push(FieldError::new(format_segs(&original), message.clone()));
        }
        let missing = message == "is required" && segs.len() == raw_segs.len() + 1;
        if missing {
            let tried = match attempts.iter_mut().find(|(p, _)| *p == segs) {
                Some((_, n)) => n,
                None => {
                    attempts.push((segs.clone(), 0));
                    match attempts.last_mut() {
                        Some((_, n)) => n,
                        None => break,
                    }
                }
            };
            let Some(candidate) = placeholders().into_iter().nth(*tried) else {
                break;
            };
            *tried += 1;
            if !insert_at(&mut doc, &segs, candidate) {
                break;
            }
            repairs.silenced.push(original);
        } else if let Some(variant) = first_expected_variant(&message)
            && replace_variant(&mut doc, &raw_segs, variant)
        {
            repairs.silenced.push(original);
        } else {
            if raw_segs.is_empty() || !remove_at(&mut doc, &raw_segs) {
                break;
            }
            if let Some((Seg::Index(i), array)) = raw_segs.split_last() {
                repairs.removed_elements.push((array.to_vec(), *i));
            }
            repairs.silenced.push(original);
        }
    }
    (None, errs, repairs)
}

/// Parses YAML or JSON and validates it, listing every problem: parse errors (unknown fields,
/// wrong types, missing fields) with their paths, then the validation rules. Never panics.
pub fn parse_and_validate(text: &str) -> Result<LoadTest, ValidationErrors> {
    let doc = loadtest::text_to_value(text).map_err(|e| ValidationErrors(vec![e.into()]))?;
    validate_value(doc)
}

/// Like [`parse_and_validate`], for a document already parsed into a JSON value.
pub fn validate_value(doc: Value) -> Result<LoadTest, ValidationErrors> {
    let (lt, mut errs, repairs) = parse_collecting(doc);
    if let Some(lt) = &lt
        && let Err(ValidationErrors(more)) = validate(lt)
    {
        for e in more {
            let original = repairs.to_original(&parse_segs(&e.path));
            if repairs.is_silenced(&original) {
                continue;
            }
            if errs.len() < MAX_ERRORS {
                errs.push(FieldError::new(format_segs(&original), e.message));
            }
        }
    }
    match lt {
        Some(lt) if errs.is_empty() => Ok(lt),
        _ => {
            if errs.is_empty() {
                errs.push(FieldError::new(
                    "",
                    "the document could not be read as a LoadTest",
                ));
            }
            Err(ValidationErrors(errs))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_through_text() {
        let segs = vec![
            Seg::Key("spec".into()),
            Seg::Key("kafka".into()),
            Seg::Key("properties".into()),
            Seg::Key("linger.ms".into()),
            Seg::Index(3),
            Seg::Key("a\"b".into()),
        ];
        assert_eq!(parse_segs(&format_segs(&segs)), segs);
    }

    #[test]
    fn removed_elements_map_back_to_original_indices() {
        let mut r = Repairs::default();
        let arr = vec![Seg::Key("t".into())];
        r.removed_elements.push((arr.clone(), 1));
        r.removed_elements.push((arr.clone(), 1));
        // After removing original [1] then original [2], current [1] is original [3].
        assert_eq!(
            r.to_original(&[Seg::Key("t".into()), Seg::Index(1)]),
            vec![Seg::Key("t".into()), Seg::Index(3)]
        );
        assert_eq!(
            r.to_original(&[Seg::Key("t".into()), Seg::Index(0)]),
            vec![Seg::Key("t".into()), Seg::Index(0)]
        );
    }

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
    fn json_templates_are_checked() {
        assert!(
            check_json_template(r#"{"id": {{seq}}, "u": "{{uuid}}", "n": {{int 1 9}}}"#).is_ok()
        );
        assert!(
            check_json_template(r#"{"s": "{{string 1 10}}", "t": {{timestampMillis}}}"#).is_ok()
        );
        assert!(
            check_json_template(r#"{"id": {{sequence}}}"#)
                .unwrap_err()
                .contains("placeholder {{sequence}}: unknown placeholder")
        );
        assert!(
            check_json_template(
                r#"{"a": {{seq 5}}, "b": {{uniformInt -1 1}}, "c": "{{string 8}}", "d": {{oneOf x 1 true}}, "e": {{bool}}, "f": {{uuid}}}"#
            )
            .is_ok()
        );
        assert!(
            check_json_template(r#"{"a": {{oneOf}}}"#)
                .unwrap_err()
                .contains("must list at least one word")
        );
        assert!(
            check_json_template(r#"{"a": "{{string 99999999}}"}"#)
                .unwrap_err()
                .contains("LEN must be at most 10485760")
        );
        assert!(check_json_template(r#"{"id": {{int 9 1}}}"#).is_err());
        assert!(
            check_json_template(r#"{"id": {{seq}"#)
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(
            check_json_template(r#"{"id": "#)
                .unwrap_err()
                .contains("must be JSON")
        );
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
