//! LoadTest documents for the system tests, built instead of written out as YAML in each test.

pub use barrage_crds::spec::{Acks, SaslMechanism};

/// `records.value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `size: N` random bytes.
    Size(u32),
    /// Random bytes of a size drawn in [min, max].
    UniformSize { min: u32, max: u32 },
    /// JSON text from a template (`json.template`).
    Json(String),
}

impl Value {
    /// The value as the `value:` line of `records`.
    fn yaml(&self) -> String {
        match self {
            Value::Size(n) => format!("      value: {{size: {n}}}\n"),
            Value::UniformSize { min, max } => {
                format!("      value: {{uniformSize: {{min: {min}, max: {max}}}}}\n")
            }
            Value::Json(template) => format!(
                "      value:\n        json:\n          template: '{}'\n",
                template.replace('\'', "''")
            ),
        }
    }
}

/// `kafka.producer`: only what is set is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Producer {
    acks: Option<Acks>,
    idempotence: Option<bool>,
    linger_ms: Option<u32>,
    batch_size: Option<u32>,
    properties: Vec<(String, String)>,
}

impl Producer {
    fn yaml(&self) -> String {
        let mut fields = Vec::new();
        if let Some(acks) = self.acks {
            fields.push(format!("acks: \"{}\"", acks.as_str()));
        }
        if let Some(idempotence) = self.idempotence {
            fields.push(format!("idempotence: {idempotence}"));
        }
        if let Some(ms) = self.linger_ms {
            fields.push(format!("linger: {ms}ms"));
        }
        if let Some(bytes) = self.batch_size {
            fields.push(format!("batchSize: {bytes}"));
        }
        if !self.properties.is_empty() {
            fields.push(format!("properties: {}", flow_map(&self.properties)));
        }
        if fields.is_empty() {
            String::new()
        } else {
            format!("    producer: {{{}}}\n", fields.join(", "))
        }
    }
}

/// `{k: "v", …}`.
fn flow_map(entries: &[(String, String)]) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{k}: \"{v}\""))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// Where a SASL password is kept (`sasl.credentials`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    SecretsManagerArn(String),
    SsmParameter(String),
}

/// `kafka.security.sasl`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sasl {
    mechanism: SaslMechanism,
    username: Option<String>,
    credentials: Secret,
}

/// `kafka.security.ssl`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ssl {
    ca: String,
    endpoint_identification: bool,
}

/// The `kafka.security` block (empty for PLAINTEXT): the protocol follows from TLS and SASL.
fn security_yaml(ssl: Option<&Ssl>, sasl: Option<&Sasl>) -> String {
    let protocol = match (ssl, sasl) {
        (None, None) => return String::new(),
        (Some(_), None) => "SSL",
        (None, Some(_)) => "SASL_PLAINTEXT",
        (Some(_), Some(_)) => "SASL_SSL",
    };
    let mut out = format!("    security:\n      protocol: {protocol}\n");
    if let Some(ssl) = ssl {
        out.push_str(&format!(
            "      ssl: {{caLocation: \"{}\", endpointIdentification: {}}}\n",
            ssl.ca, ssl.endpoint_identification
        ));
    }
    if let Some(sasl) = sasl {
        out.push_str(&format!(
            "      sasl:\n        mechanism: {}\n",
            sasl.mechanism.as_str()
        ));
        if let Some(u) = &sasl.username {
            out.push_str(&format!("        username: {u}\n"));
        }
        let credentials = match &sasl.credentials {
            Secret::SecretsManagerArn(arn) => format!("secretsManagerArn: \"{arn}\""),
            Secret::SsmParameter(name) => format!("ssmParameter: \"{name}\""),
        };
        out.push_str(&format!("        credentials: {{{credentials}}}\n"));
    }
    out
}

/// `workload.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Produce,
    Consume,
    RoundTrip,
}

impl Workload {
    fn as_str(self) -> &'static str {
        match self {
            Workload::Produce => "Produce",
            Workload::Consume => "Consume",
            Workload::RoundTrip => "RoundTrip",
        }
    }
}

/// One step of `load.steps`; rates in records/s, times in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    Constant {
        rate: u32,
        secs: u32,
    },
    Ramp {
        from: u32,
        to: u32,
        secs: u32,
    },
    Staircase {
        start: u32,
        step: u32,
        every_secs: u32,
        until: u32,
    },
}

impl Step {
    /// The step as a `load.steps` item.
    fn yaml(&self) -> String {
        match self {
            Step::Constant { rate, secs } => {
                format!("      - constant: {{rate: {rate}, for: {secs}s}}\n")
            }
            Step::Ramp { from, to, secs } => {
                format!("      - ramp: {{from: {from}, to: {to}, over: {secs}s}}\n")
            }
            Step::Staircase {
                start,
                step,
                every_secs,
                until,
            } => format!(
                "      - staircase: {{start: {start}, step: {step}, every: {every_secs}s, until: {until}}}\n"
            ),
        }
    }
}

/// A LoadTest: by default a Produce workload on its own topic (created with `partitions`,
/// replication 1), of `agents` agents at `rate` records/s of 100-byte values for `secs` seconds,
/// 1 s report interval, PLAINTEXT; each method sets one part of the spec (crds/SPEC.md).
#[derive(Debug, Clone)]
pub struct Spec {
    name: String,
    topic: String,
    bootstrap: String,
    partitions: u32,
    rate: u32,
    secs: u32,
    agents: u32,
    value: Value,
    /// `records.recordsPerTransaction` (1 unless set).
    records_per_transaction: u32,
    /// `records.transactional: true`.
    transactional: bool,
    producer: Producer,
    /// `topic.create.configs`.
    topic_configs: Vec<(String, String)>,
    /// `report.interval`, seconds.
    interval: u32,
    /// `report.window`, seconds.
    window: Option<u32>,
    /// `topic.cleanup: DeleteIfCreated`.
    delete_if_created: bool,
    thresholds: Vec<String>,
    kind: Workload,
    ssl: Option<Ssl>,
    sasl: Option<Sasl>,
    /// No `topic.create`: the topic must exist.
    existing_topic: bool,
    /// `consumer.autoOffsetReset: earliest`.
    from_earliest: bool,
    /// `load.steps` when set; else one constant step of `rate` for `secs`.
    steps: Vec<Step>,
    /// `load.warmup`, seconds.
    warmup: Option<u32>,
    /// `records.key: {distribution: sequential, cardinality}`.
    sequential_keys: Option<u64>,
    /// `spec.paused: true`.
    paused: bool,
    /// `spec.rerun`.
    rerun: u64,
}

impl Spec {
    /// Produce, 1 agent, 100 records/s of 100 bytes for 10 s, 1 partition, no thresholds.
    pub fn new(name: &str, topic: &str, bootstrap: &str) -> Spec {
        Spec {
            name: name.to_string(),
            topic: topic.to_string(),
            bootstrap: bootstrap.to_string(),
            partitions: 1,
            rate: 100,
            secs: 10,
            agents: 1,
            value: Value::Size(100),
            records_per_transaction: 1,
            transactional: false,
            producer: Producer::default(),
            topic_configs: Vec::new(),
            interval: 1,
            window: None,
            delete_if_created: false,
            thresholds: Vec::new(),
            kind: Workload::Produce,
            ssl: None,
            sasl: None,
            existing_topic: false,
            from_earliest: false,
            steps: Vec::new(),
            warmup: None,
            sequential_keys: None,
            paused: false,
            rerun: 0,
        }
    }

    /// Agents report every `secs` seconds (`report.interval`; 1 unless set).
    pub fn interval(mut self, secs: u32) -> Spec {
        self.interval = secs;
        self
    }

    /// Rolling window reports of `secs` seconds (`report.window`).
    pub fn window(mut self, secs: u32) -> Spec {
        self.window = Some(secs);
        self
    }

    /// Deletes the topic at the end when the run created it (`topic.cleanup`).
    pub fn delete_if_created(mut self) -> Spec {
        self.delete_if_created = true;
        self
    }

    pub fn rate(mut self, rate: u32) -> Spec {
        self.rate = rate;
        self
    }

    pub fn secs(mut self, secs: u32) -> Spec {
        self.secs = secs;
        self
    }

    pub fn agents(mut self, agents: u32) -> Spec {
        self.agents = agents;
        self
    }

    pub fn partitions(mut self, partitions: u32) -> Spec {
        self.partitions = partitions;
        self
    }

    /// Values of `size` bytes (`value: {size}`; 100 unless set).
    pub fn size(self, size: u32) -> Spec {
        self.value(Value::Size(size))
    }

    pub fn value(mut self, value: Value) -> Spec {
        self.value = value;
        self
    }

    /// Sends `n` records per scheduled event (`records.recordsPerTransaction`).
    pub fn records_per_transaction(mut self, n: u32) -> Spec {
        self.records_per_transaction = n;
        self
    }

    /// Wraps each group of `records_per_transaction` records in a Kafka transaction.
    pub fn transactional(mut self) -> Spec {
        self.transactional = true;
        self
    }

    pub fn acks(mut self, acks: Acks) -> Spec {
        self.producer.acks = Some(acks);
        self
    }

    pub fn idempotence(mut self, on: bool) -> Spec {
        self.producer.idempotence = Some(on);
        self
    }

    /// `producer.linger`, milliseconds.
    pub fn linger_ms(mut self, ms: u32) -> Spec {
        self.producer.linger_ms = Some(ms);
        self
    }

    /// `producer.batchSize`, bytes.
    pub fn batch_size(mut self, bytes: u32) -> Spec {
        self.producer.batch_size = Some(bytes);
        self
    }

    /// An allow-listed librdkafka producer property (`producer.properties`).
    pub fn producer_property(mut self, key: &str, value: &str) -> Spec {
        self.producer
            .properties
            .push((key.to_string(), value.to_string()));
        self
    }

    /// A config of the created topic (`topic.create.configs`).
    pub fn topic_config(mut self, key: &str, value: &str) -> Spec {
        self.topic_configs
            .push((key.to_string(), value.to_string()));
        self
    }

    /// The workload (`workload.kind`); Produce unless set.
    pub fn kind(mut self, kind: Workload) -> Spec {
        self.kind = kind;
        self
    }

    /// TLS to the brokers with the CA bundle `ca`, checking their host names when
    /// `endpoint_identification` (`security.ssl`; SSL, or SASL_SSL with [`Self::sasl`]).
    pub fn ssl(mut self, ca: &str, endpoint_identification: bool) -> Spec {
        self.ssl = Some(Ssl {
            ca: ca.to_string(),
            endpoint_identification,
        });
        self
    }

    /// SASL login with `mechanism`, the password in `credentials` and the user name given or,
    /// when `None`, in the secret (`security.sasl`; SASL_PLAINTEXT, or SASL_SSL with [`Self::ssl`]).
    pub fn sasl(
        mut self,
        mechanism: SaslMechanism,
        username: Option<&str>,
        credentials: Secret,
    ) -> Spec {
        self.sasl = Some(Sasl {
            mechanism,
            username: username.map(str::to_string),
            credentials,
        });
        self
    }

    /// Uses the topic as it is, without `topic.create` (it must exist).
    pub fn existing_topic(mut self) -> Spec {
        self.existing_topic = true;
        self
    }

    /// A new consumer group starts at the oldest record (`consumer.autoOffsetReset: earliest`).
    pub fn from_earliest(mut self) -> Spec {
        self.from_earliest = true;
        self
    }

    /// The load profile as these steps, instead of one constant step of `rate` for `secs`.
    pub fn steps(mut self, steps: impl IntoIterator<Item = Step>) -> Spec {
        self.steps = steps.into_iter().collect();
        self
    }

    /// Measures the first `secs` seconds of the load apart (`load.warmup`).
    pub fn warmup(mut self, secs: u32) -> Spec {
        self.warmup = Some(secs);
        self
    }

    /// Keys 0, 1, 2, … wrapping at `cardinality` (`records.key`).
    pub fn sequential_keys(mut self, cardinality: u64) -> Spec {
        self.sequential_keys = Some(cardinality);
        self
    }

    /// Agents keep their connections but send nothing (`paused: true`).
    pub fn paused(mut self) -> Spec {
        self.paused = true;
        self
    }

    /// `rerun: n`: a new value starts a new run of the same spec.
    pub fn rerun(mut self, rerun: u64) -> Spec {
        self.rerun = rerun;
        self
    }

    /// Adds a threshold, e.g. `errors.ratio < 1%`.
    pub fn threshold(mut self, threshold: &str) -> Spec {
        self.thresholds.push(threshold.to_string());
        self
    }

    /// The document, as YAML.
    pub fn yaml(&self) -> String {
        format!(
            "apiVersion: barrage.dev/v1alpha1\nkind: LoadTest\nmetadata:\n  name: {name}\nspec:\n\
             {kafka}{topic}{workload}{load}  agents:\n    count: {agents}\n{rest}",
            name = self.name,
            kafka = self.kafka_yaml(),
            topic = self.topic_yaml(),
            workload = self.workload_yaml(),
            load = self.load_yaml(),
            agents = self.agents,
            rest = self.report_yaml(),
        )
    }

    /// `spec.kafka`.
    fn kafka_yaml(&self) -> String {
        let consumer = if self.from_earliest {
            "    consumer:\n      autoOffsetReset: earliest\n"
        } else {
            ""
        };
        format!(
            "  kafka:\n    bootstrapServers: {}\n{}{}{consumer}",
            self.bootstrap,
            security_yaml(self.ssl.as_ref(), self.sasl.as_ref()),
            self.producer.yaml(),
        )
    }

    /// `spec.topic`.
    fn topic_yaml(&self) -> String {
        let create = if self.existing_topic {
            String::new()
        } else {
            let configs = if self.topic_configs.is_empty() {
                String::new()
            } else {
                format!("      configs: {}\n", flow_map(&self.topic_configs))
            };
            format!(
                "    create:\n      partitions: {}\n      replicationFactor: 1\n{configs}",
                self.partitions
            )
        };
        let cleanup = if self.delete_if_created {
            "    cleanup: DeleteIfCreated\n"
        } else {
            ""
        };
        format!("  topic:\n    name: {}\n{create}{cleanup}", self.topic)
    }

    /// `spec.workload`.
    fn workload_yaml(&self) -> String {
        let key = self
            .sequential_keys
            .map(|n| {
                format!("      key:\n        distribution: sequential\n        cardinality: {n}\n")
            })
            .unwrap_or_default();
        format!(
            "  workload:\n    kind: {}\n    records:\n{key}{}{}",
            self.kind.as_str(),
            self.value.yaml(),
            transactions_yaml(self.records_per_transaction, self.transactional),
        )
    }

    /// `spec.load`.
    fn load_yaml(&self) -> String {
        let steps: String = if self.steps.is_empty() {
            Step::Constant {
                rate: self.rate,
                secs: self.secs,
            }
            .yaml()
        } else {
            self.steps.iter().map(Step::yaml).collect()
        };
        let warmup = self
            .warmup
            .map(|w| format!("    warmup: {w}s\n"))
            .unwrap_or_default();
        format!("  load:\n    steps:\n{steps}{warmup}")
    }

    /// `spec.report`, `thresholds`, `paused` and `rerun`.
    fn report_yaml(&self) -> String {
        let window = self
            .window
            .map(|w| format!("    window: {w}s\n"))
            .unwrap_or_default();
        let thresholds: String = if self.thresholds.is_empty() {
            String::new()
        } else {
            let items: String = self
                .thresholds
                .iter()
                .map(|t| format!("    - \"{t}\"\n"))
                .collect();
            format!("  thresholds:\n{items}")
        };
        let paused = if self.paused { "  paused: true\n" } else { "" };
        let rerun = if self.rerun == 0 {
            String::new()
        } else {
            format!("  rerun: {}\n", self.rerun)
        };
        format!(
            "  report:\n    interval: {}s\n{window}{thresholds}{paused}{rerun}",
            self.interval
        )
    }
}

/// The `recordsPerTransaction` and `transactional` lines of `records`, when not the defaults.
fn transactions_yaml(records_per_transaction: u32, transactional: bool) -> String {
    let mut out = String::new();
    if records_per_transaction != 1 {
        out.push_str(&format!(
            "      recordsPerTransaction: {records_per_transaction}\n"
        ));
    }
    if transactional {
        out.push_str("      transactional: true\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use barrage_crds::loadtest::LoadTest;
    use barrage_crds::spec::{
        KeyDistribution, OffsetReset, SecurityProtocol, SizeRange, TopicCleanup, ValueSpec,
        WorkloadKind,
    };

    fn parsed(spec: &Spec) -> LoadTest {
        let yaml = spec.yaml();
        barrage_crds::validate::parse_and_validate(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    fn spec() -> Spec {
        Spec::new("t", "topic-t", "127.0.0.1:9092")
    }

    #[test]
    fn the_document_parses_as_the_load_test_it_describes() {
        let lt = parsed(
            &spec()
                .rate(150)
                .secs(3)
                .agents(2)
                .partitions(3)
                .threshold("errors.ratio < 1%")
                .window(2)
                .delete_if_created()
                .size(50)
                .warmup(1)
                .sequential_keys(1_000)
                .paused()
                .rerun(2),
        );
        assert_eq!(lt.spec.agents.count, 2);
        assert_eq!(lt.spec.load.expected_records(), 450);
        assert_eq!(lt.spec.thresholds.len(), 1);
        assert_eq!(lt.spec.topic.name, "topic-t");
        assert_eq!(lt.spec.report.window.map(|w| w.as_std().as_secs()), Some(2));
        assert_eq!(lt.spec.topic.cleanup, TopicCleanup::DeleteIfCreated);
        assert_eq!(lt.spec.workload.records.value, ValueSpec::Size(50));
        assert_eq!(lt.spec.load.warmup.map(|w| w.as_std().as_secs()), Some(1));
        let key = &lt.spec.workload.records.key;
        assert_eq!(key.distribution, KeyDistribution::Sequential);
        assert_eq!(key.cardinality, 1_000);
        assert!(lt.spec.paused);
        assert_eq!(lt.spec.rerun, 2);
        assert_eq!(lt.spec.report.interval.as_std().as_secs(), 1);
        let lt = parsed(&spec().interval(10));
        assert_eq!(lt.spec.report.interval.as_std().as_secs(), 10);
    }

    #[test]
    fn producer_settings_topic_configs_and_records_are_written_as_set() {
        let lt = parsed(
            &spec()
                .acks(Acks::None)
                .idempotence(false)
                .linger_ms(0)
                .batch_size(1)
                .producer_property("message.max.bytes", "1000")
                .topic_config("max.message.bytes", "1000")
                .value(Value::UniformSize { min: 10, max: 20 })
                .records_per_transaction(5),
        );
        let producer = &lt.spec.kafka.producer;
        assert_eq!(producer.acks, Acks::None);
        assert!(!producer.idempotence);
        assert_eq!(producer.batch_size, 1);
        assert_eq!(producer.linger.as_std().as_millis(), 0);
        assert_eq!(producer.properties["message.max.bytes"], "1000");
        let create = lt.spec.topic.create.expect("create");
        assert_eq!(create.configs["max.message.bytes"], "1000");
        let records = &lt.spec.workload.records;
        assert_eq!(records.records_per_transaction, 5);
        assert!(!records.transactional);
        assert_eq!(
            records.value,
            ValueSpec::UniformSize(SizeRange { min: 10, max: 20 })
        );
        let lt = parsed(&spec().records_per_transaction(10).transactional());
        assert!(lt.spec.workload.records.transactional);
        let template = r#"{"id": {{seq}}, "it's": "{{uuid}}"}"#;
        let lt = parsed(&spec().value(Value::Json(template.to_string())));
        let ValueSpec::Json(json) = &lt.spec.workload.records.value else {
            panic!("a JSON value");
        };
        assert_eq!(json.template, template);
    }

    #[test]
    fn ssl_and_sasl_together_are_sasl_ssl_with_both_blocks() {
        let lt = parsed(&spec().ssl("/ca.pem", false).sasl(
            SaslMechanism::ScramSha256,
            Some("u"),
            Secret::SsmParameter("/barrage/pw".into()),
        ));
        let security = &lt.spec.kafka.security;
        assert_eq!(security.protocol, SecurityProtocol::SaslSsl);
        let ssl = security.ssl.as_ref().expect("ssl");
        assert_eq!(ssl.ca_location.as_deref(), Some("/ca.pem"));
        assert!(!ssl.endpoint_identification);
        let sasl = security.sasl.as_ref().expect("sasl");
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha256);
        assert_eq!(sasl.username.as_deref(), Some("u"));
        assert_eq!(
            sasl.credentials.ssm_parameter.as_deref(),
            Some("/barrage/pw")
        );
        let alone = |s: Spec| parsed(&s).spec.kafka.security.protocol;
        assert_eq!(alone(spec().ssl("/ca.pem", true)), SecurityProtocol::Ssl);
        let arn = Secret::SecretsManagerArn("arn:aws:secretsmanager:us-east-1:1:secret:x".into());
        assert_eq!(
            alone(spec().sasl(SaslMechanism::Plain, None, arn)),
            SecurityProtocol::SaslPlaintext
        );
        assert_eq!(alone(spec()), SecurityProtocol::Plaintext);
    }

    #[test]
    fn a_consume_of_an_existing_topic_from_the_earliest_offset() {
        let lt = parsed(
            &spec()
                .kind(Workload::Consume)
                .existing_topic()
                .from_earliest(),
        );
        assert_eq!(lt.spec.workload.kind, WorkloadKind::Consume);
        assert_eq!(lt.spec.topic.create, None);
        assert_eq!(
            lt.spec.kafka.consumer.auto_offset_reset,
            OffsetReset::Earliest
        );
        let lt = parsed(&spec().kind(Workload::RoundTrip));
        assert_eq!(lt.spec.workload.kind, WorkloadKind::RoundTrip);
    }

    #[test]
    fn steps_replace_the_one_constant_step() {
        let lt = parsed(&spec().rate(1).secs(1).steps([
            Step::Constant { rate: 400, secs: 2 },
            Step::Ramp {
                from: 400,
                to: 800,
                secs: 2,
            },
            Step::Staircase {
                start: 200,
                step: 200,
                every_secs: 1,
                until: 600,
            },
        ]));
        assert_eq!(lt.spec.load.steps.len(), 3);
        assert_eq!(lt.spec.load.expected_records(), 3_200);
    }
}
