//! The per-field rules, one function per spec section; each pushes every problem it finds with
//! its field path. The record value, the client properties and the cost guards have their own
//! modules.

use crate::names::HistogramTag;
use std::collections::BTreeMap;

use super::V;
use super::bounds::{check_cost, check_rate_per_agent, fargate_memory, limits};
use super::properties::check_properties;
use super::value::check_value;
use crate::duration::HumanDuration;
use crate::loadtest::{LoadTest, join_key};
use crate::spec::{
    ALLOWED_CONSUMER_PROPERTIES, ALLOWED_PRODUCER_PROPERTIES, Acks, AgentsSpec, ConsumerSpec,
    KeyDistribution, KeySpec, LaunchType, LoadSpec, LoadStep, Metric, MetricKind, ProducerSpec,
    SaslSpec, SecurityProtocol, SecuritySpec, StaircaseStep, ThresholdScope, TopicCleanup,
    WorkloadKind,
};

pub(super) fn check_metadata(lt: &LoadTest, v: &mut V) {
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

pub(super) fn check_kafka(lt: &LoadTest, v: &mut V) {
    let k = &lt.spec.kafka;
    check_bootstrap_servers(&k.bootstrap_servers, v);
    check_security(&k.security, v);
    check_producer(&k.producer, v);
    check_consumer(&k.consumer, v);
}

fn check_bootstrap_servers(servers: &str, v: &mut V) {
    let path = "spec.kafka.bootstrapServers";
    if servers.trim().is_empty() {
        v.err(
            path,
            "must not be empty (a comma-separated list of host:port)",
        );
    } else {
        for (i, entry) in servers.split(',').enumerate() {
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
}

/// The protocol and the settings it needs or forbids, then the SASL settings.
fn check_security(sec: &SecuritySpec, v: &mut V) {
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
        if sec.protocol != SecurityProtocol::AwsMskIam {
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
        check_sasl(sasl, v);
    }
}

/// The SASL user name and where its secret is kept (never the secret itself, never echoed).
fn check_sasl(sasl: &SaslSpec, v: &mut V) {
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

fn check_producer(p: &ProducerSpec, v: &mut V) {
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
}

fn check_consumer(c: &ConsumerSpec, v: &mut V) {
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

pub(super) fn check_topic(lt: &LoadTest, v: &mut V) {
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

/// Where the record fields are.
const RECORDS: &str = "spec.workload.records";

pub(super) fn check_workload(lt: &LoadTest, v: &mut V) {
    let r = &lt.spec.workload.records;
    check_transactions(lt, v);
    check_value(v, &format!("{RECORDS}.value"), &r.value);
    check_key(&r.key, v);
    check_headers(&r.headers, v);
    check_backlog(lt, v);
}

/// A backlog is for Consume, and within the cost guard.
fn check_backlog(lt: &LoadTest, v: &mut V) {
    let Some(b) = &lt.spec.workload.backlog else {
        return;
    };
    let p = "spec.workload.backlog.records";
    let kind = lt.spec.workload.kind;
    if kind != WorkloadKind::Consume {
        v.err(
            "spec.workload.backlog",
            format!("is only for Consume workloads (workload.kind is {kind:?})"),
        );
    }
    if lt.spec.kafka.consumer.auto_offset_reset != crate::spec::OffsetReset::Earliest {
        v.err(
            "spec.kafka.consumer.autoOffsetReset",
            "must be earliest with a backlog: the group's new consumers would start past it (got latest)",
        );
    }
    let agents = u64::from(lt.spec.agents.count.max(1));
    let max = limits::MAX_BACKLOG_PER_AGENT.saturating_mul(agents);
    let value = &lt.spec.workload.records.value;
    match (b.records, b.bytes, b.record_count(value)) {
        (0, 0, _) => v.err(
            "spec.workload.backlog",
            "must set records or bytes (got neither)",
        ),
        (r, by, _) if r > 0 && by > 0 => v.err(
            "spec.workload.backlog",
            "must set records or bytes, not both",
        ),
        (_, _, None) => v.err(
            "spec.workload.backlog.bytes",
            "needs records.value.size (a fixed size) to count its records; use backlog.records",
        ),
        (_, _, Some(n)) if n > max => v.err(
            if b.records > 0 { p } else { "spec.workload.backlog.bytes" },
            format!(
                "must be at most {} records per agent, {max} for {agents} agent(s): the cost guard (got {n} records; raise spec.agents.count or write less)",
                limits::MAX_BACKLOG_PER_AGENT
            ),
        ),
        _ => {}
    }
}

fn check_transactions(lt: &LoadTest, v: &mut V) {
    let w = &lt.spec.workload;
    let r = &w.records;
    if r.records_per_transaction == 0
        || r.records_per_transaction > limits::MAX_RECORDS_PER_TRANSACTION
    {
        v.err(
            format!("{RECORDS}.recordsPerTransaction"),
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
                format!("{RECORDS}.transactional"),
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
}

fn check_key(k: &KeySpec, v: &mut V) {
    if k.distribution != KeyDistribution::None && k.cardinality == 0 {
        v.err(
            format!("{RECORDS}.key.cardinality"),
            "must be at least 1 (got 0)",
        );
    }
    if k.distribution == KeyDistribution::Zipf {
        if !k.exponent.is_finite() || k.exponent <= 0.0 || k.exponent > 10.0 {
            v.err(
                format!("{RECORDS}.key.exponent"),
                format!("must be greater than 0 and at most 10 (got {})", k.exponent),
            );
        }
    } else if k.exponent != crate::spec::defaults::KEY_EXPONENT {
        v.err(
            format!("{RECORDS}.key.exponent"),
            "is only used with distribution zipf",
        );
    }
}

fn check_headers(headers: &BTreeMap<String, String>, v: &mut V) {
    if headers.len() > limits::MAX_HEADERS {
        v.err(
            format!("{RECORDS}.headers"),
            format!(
                "must have at most {} headers (got {})",
                limits::MAX_HEADERS,
                headers.len()
            ),
        );
    }
    for key in headers.keys() {
        let path = join_key(&format!("{RECORDS}.headers"), key);
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

pub(super) fn check_load(lt: &LoadTest, v: &mut V) {
    let load = &lt.spec.load;
    check_steps(load, lt.spec.agents.count.max(1), v);
    check_load_duration(load, v);
    check_max_duration(load, v);
}

/// How many steps, then each step; `agents` (at least 1) bounds the rates.
fn check_steps(load: &LoadSpec, agents: u32, v: &mut V) {
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
    for (i, step) in load.steps.iter().enumerate() {
        let p = format!("spec.load.steps[{i}].{}", step.kind());
        match step {
            LoadStep::Constant(c) => {
                v.rate(&format!("{p}.rate"), c.rate, false);
                check_rate_per_agent(v, format!("{p}.rate"), c.rate, agents);
                v.positive_duration(&format!("{p}.for"), c.duration);
            }
            LoadStep::Ramp(r) => {
                v.rate(&format!("{p}.from"), r.from, true);
                v.rate(&format!("{p}.to"), r.to, true);
                check_rate_per_agent(v, format!("{p}.from"), r.from, agents);
                check_rate_per_agent(v, format!("{p}.to"), r.to, agents);
                if r.from == 0.0 && r.to == 0.0 {
                    v.err(&p, "from and to cannot both be 0");
                }
                v.positive_duration(&format!("{p}.over"), r.over);
            }
            LoadStep::Staircase(s) => check_staircase(v, &p, s, agents),
        }
    }
}

fn check_staircase(v: &mut V, p: &str, s: &StaircaseStep, agents: u32) {
    v.rate(&format!("{p}.start"), s.start, true);
    v.rate(&format!("{p}.step"), s.step, false);
    v.rate(&format!("{p}.until"), s.until, false);
    check_rate_per_agent(v, format!("{p}.until"), s.until, agents);
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
            p,
            format!(
                "makes {stairs} stairs; at most {} (raise step)",
                limits::MAX_STAIRS
            ),
        );
    }
}

/// `load.duration` when set, else the sum of the steps: greater than 0 and at most 30 days.
fn check_load_duration(load: &LoadSpec, v: &mut V) {
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
}

fn check_max_duration(load: &LoadSpec, v: &mut V) {
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

pub(super) fn check_agents(lt: &LoadTest, v: &mut V) {
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
        LaunchType::Fargate => check_fargate_size(a, v),
        LaunchType::Ec2 => check_ec2_size(a, v),
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
    check_cost(lt, v);
}

/// A Fargate task size: one of the CPU sizes, and a memory size that CPU allows.
fn check_fargate_size(a: &AgentsSpec, v: &mut V) {
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

/// An EC2 task size within the bounds; Spot is Fargate's.
fn check_ec2_size(a: &AgentsSpec, v: &mut V) {
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

pub(super) fn check_thresholds(lt: &LoadTest, v: &mut V) {
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
        if t.metric.needs_consumer() && kind == WorkloadKind::Produce {
            v.err(
                &p,
                format!(
                    "{} is only measured by workloads that consume (Consume, RoundTrip; workload.kind is Produce)",
                    t.metric
                ),
            );
        }
        if t.metric == Metric::DrainSeconds && lt.spec.workload.backlog.is_none() {
            v.err(
                &p,
                "drain.seconds needs a backlog to drain (spec.workload.backlog)",
            );
        }
        if t.metric.is_run_only() && t.scope == ThresholdScope::Window {
            v.err(
                &p,
                format!(
                    "{} is a figure of the whole run: its scope is run (got window)",
                    t.metric
                ),
            );
        }
        let needs_producer = matches!(
            t.metric.histogram_tag(),
            Some(HistogramTag::Produce | HistogramTag::Service | HistogramTag::Lag)
        ) || t.metric == Metric::RateAchievedRatio;
        let produces = kind != WorkloadKind::Consume
            || lt
                .spec
                .workload
                .backlog
                .as_ref()
                .is_some_and(|b| b.under_load);
        if needs_producer && !produces {
            v.err(
                &p,
                format!(
                    "{} is not measured by Consume workloads (unless workload.backlog.underLoad)",
                    t.metric
                ),
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
pub(super) fn check_warmup(lt: &LoadTest, v: &mut V) {
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

pub(super) fn check_report(lt: &LoadTest, v: &mut V) {
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

pub(super) fn check_timeouts(lt: &LoadTest, v: &mut V) {
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
