//! The numeric bounds every accepted spec is within: the [`limits`], the bounds of each field as
//! SPEC.md documents them ([`BOUNDS`]), the Fargate task sizes, and the cost guards that keep a
//! spec from asking for more than a test should cost.

use super::V;
use crate::loadtest::LoadTest;

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
    /// Largest backlog per agent (`workload.backlog.records` ÷ `agents.count`): a cost guard
    /// (a minute or two of writing for one agent).
    pub const MAX_BACKLOG_PER_AGENT: u64 = 20_000_000;
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
    (
        "spec.workload.backlog.records",
        "Consume only; 1 to 20000000 × agents.count",
    ),
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

/// A fleet-wide `rate` at `path` that would ask one of `agents` (at least 1) for more than
/// [`limits::MAX_RATE_PER_AGENT`] records per second.
pub(super) fn check_rate_per_agent(v: &mut V, path: String, rate: f64, agents: u32) {
    let cap = limits::MAX_RATE_PER_AGENT * f64::from(agents);
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
}

/// The cost guard: agents × vCPU × hours of `load.maxDuration` at most
/// [`limits::MAX_VCPU_HOURS`].
pub(super) fn check_cost(lt: &LoadTest, v: &mut V) {
    let a = &lt.spec.agents;
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
