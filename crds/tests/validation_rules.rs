//! One test per validation rule, each asserting the path and the message.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use barrage_crds::duration::HumanDuration;
use barrage_crds::loadtest::LoadTest;
use barrage_crds::spec::*;
use barrage_crds::validate::{FieldError, ValidationErrors, parse_and_validate, validate};
use serde_json::{Value, json};

fn base() -> LoadTest {
    LoadTest::example("rules", "127.0.0.1:9092", "rules-topic")
}

fn d(s: &str) -> HumanDuration {
    HumanDuration::parse(s).unwrap()
}

/// Validates and returns the errors; the base example must be valid.
fn errors(lt: &LoadTest) -> Vec<FieldError> {
    match validate(lt) {
        Ok(()) => Vec::new(),
        Err(ValidationErrors(e)) => e,
    }
}

/// Asserts exactly one error at `path` whose message contains `msg`.
#[track_caller]
fn expect(lt: &LoadTest, path: &str, msg: &str) {
    let errs = errors(lt);
    let hits: Vec<&FieldError> = errs.iter().filter(|e| e.path == path).collect();
    assert!(
        hits.iter().any(|e| e.message.contains(msg)),
        "expected `{path}: …{msg}…`, got:\n{}",
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Parses and validates a modified JSON document; returns the error lines.
fn doc_errors(f: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut v = base().to_value();
    f(&mut v);
    match parse_and_validate(&serde_json::to_string(&v).unwrap()) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

#[track_caller]
fn expect_doc(f: impl FnOnce(&mut Value), line: &str) {
    let errs = doc_errors(f);
    assert!(
        errs.iter().any(|e| e.contains(line)),
        "expected a line containing `{line}`, got:\n{}",
        errs.join("\n")
    );
}

fn constant(rate: f64, secs: u64) -> LoadStep {
    LoadStep::Constant(ConstantStep {
        rate,
        duration: HumanDuration::from_secs(secs),
    })
}

#[test]
fn the_base_example_is_valid() {
    assert_eq!(errors(&base()), Vec::new());
}

// --- top level and metadata -----------------------------------------------------------------

#[test]
fn api_version_must_be_v1alpha1() {
    let mut lt = base();
    lt.api_version = "barrage.dev/v1".into();
    expect(
        &lt,
        "apiVersion",
        "must be \"barrage.dev/v1alpha1\" (got \"barrage.dev/v1\")",
    );
}

#[test]
fn kind_must_be_loadtest() {
    let mut lt = base();
    lt.kind = "Job".into();
    expect(&lt, "kind", "must be \"LoadTest\" (got \"Job\")");
}

#[test]
fn name_must_not_be_empty() {
    let mut lt = base();
    lt.metadata.name = String::new();
    expect(&lt, "metadata.name", "must not be empty");
}

#[test]
fn name_must_be_at_most_63_characters() {
    let mut lt = base();
    lt.metadata.name = "a".repeat(64);
    expect(
        &lt,
        "metadata.name",
        "must be at most 63 characters (got 64)",
    );
}

#[test]
fn name_must_be_a_dns_label() {
    let mut lt = base();
    lt.metadata.name = "My_Test".into();
    expect(&lt, "metadata.name", "lowercase letters, digits and '-'");
    lt.metadata.name = "-x".into();
    expect(
        &lt,
        "metadata.name",
        "start and end with a letter or digit (got \"-x\")",
    );
}

#[test]
fn labels_are_bounded_and_reserved_prefixes_rejected() {
    let mut lt = base();
    lt.metadata.labels = (0..41)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    expect(
        &lt,
        "metadata.labels",
        "must have at most 40 labels (got 41)",
    );
    let mut lt = base();
    lt.metadata.labels.insert("aws:owner".into(), "x".into());
    expect(&lt, "metadata.labels[\"aws:owner\"]", "are reserved");
    let mut lt = base();
    lt.metadata.labels.insert("team".into(), "x".repeat(257));
    expect(
        &lt,
        "metadata.labels.team",
        "at most 256 characters (got 257)",
    );
}

// --- kafka ----------------------------------------------------------------------------------

#[test]
fn bootstrap_servers_must_not_be_empty() {
    let mut lt = base();
    lt.spec.kafka.bootstrap_servers = " ".into();
    expect(&lt, "spec.kafka.bootstrapServers", "must not be empty");
}

#[test]
fn bootstrap_servers_entries_need_host_and_port() {
    let mut lt = base();
    lt.spec.kafka.bootstrap_servers = "a:9092,b,c:0,:1".into();
    expect(
        &lt,
        "spec.kafka.bootstrapServers",
        "entry 2 \"b\" has no port",
    );
    expect(
        &lt,
        "spec.kafka.bootstrapServers",
        "entry 3 \"c:0\" has an invalid port",
    );
    expect(
        &lt,
        "spec.kafka.bootstrapServers",
        "entry 4 \":1\" has an invalid host",
    );
}

fn sasl(arn: Option<&str>, ssm: Option<&str>) -> SaslSpec {
    SaslSpec {
        mechanism: SaslMechanism::ScramSha512,
        username: Some("u".into()),
        credentials: SecretRef {
            secrets_manager_arn: arn.map(String::from),
            ssm_parameter: ssm.map(String::from),
        },
    }
}

#[test]
fn sasl_is_required_for_sasl_protocols() {
    let mut lt = base();
    lt.spec.kafka.security.protocol = SecurityProtocol::SaslSsl;
    expect(
        &lt,
        "spec.kafka.security.sasl",
        "is required when protocol is SASL_SSL",
    );
}

#[test]
fn sasl_is_rejected_without_a_sasl_protocol() {
    let mut lt = base();
    lt.spec.kafka.security.sasl = Some(sasl(None, Some("/p")));
    expect(
        &lt,
        "spec.kafka.security.sasl",
        "is only used with protocol SASL_PLAINTEXT or SASL_SSL (protocol is PLAINTEXT)",
    );
}

#[test]
fn ssl_is_rejected_without_tls() {
    let mut lt = base();
    lt.spec.kafka.security.ssl = Some(SslSpec::default());
    expect(
        &lt,
        "spec.kafka.security.ssl",
        "is only used with protocol SSL, SASL_SSL or AWS_MSK_IAM",
    );
}

#[test]
fn region_is_only_for_msk_iam_and_must_look_like_a_region() {
    let mut lt = base();
    lt.spec.kafka.security.region = Some("eu-west-1".into());
    expect(
        &lt,
        "spec.kafka.security.region",
        "is only used with protocol AWS_MSK_IAM",
    );
    lt.spec.kafka.security.protocol = SecurityProtocol::AwsMskIam;
    assert_eq!(errors(&lt), Vec::new());
    lt.spec.kafka.security.region = Some("Ireland".into());
    expect(
        &lt,
        "spec.kafka.security.region",
        "must be an AWS region such as eu-west-1 (got \"Ireland\")",
    );
}

#[test]
fn credentials_need_exactly_one_reference() {
    let mut lt = base();
    lt.spec.kafka.security.protocol = SecurityProtocol::SaslSsl;
    lt.spec.kafka.security.sasl = Some(sasl(None, None));
    expect(
        &lt,
        "spec.kafka.security.sasl.credentials",
        "exactly one of secretsManagerArn and ssmParameter must be set (got none)",
    );
    lt.spec.kafka.security.sasl = Some(sasl(
        Some("arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"),
        Some("/p"),
    ));
    expect(&lt, "spec.kafka.security.sasl.credentials", "(got both)");
}

#[test]
fn secrets_manager_arn_must_be_an_arn_and_is_not_echoed() {
    let mut lt = base();
    lt.spec.kafka.security.protocol = SecurityProtocol::SaslSsl;
    lt.spec.kafka.security.sasl = Some(sasl(Some("SuperSecretPassword123!"), None));
    expect(
        &lt,
        "spec.kafka.security.sasl.credentials.secretsManagerArn",
        "must be a Secrets Manager secret ARN",
    );
    let all = validate(&lt).unwrap_err().to_string();
    assert!(
        !all.contains("SuperSecretPassword123!"),
        "a mistaken secret must not be printed: {all}"
    );
}

#[test]
fn ssm_parameter_must_be_a_name_or_arn() {
    let mut lt = base();
    lt.spec.kafka.security.protocol = SecurityProtocol::SaslSsl;
    lt.spec.kafka.security.sasl = Some(sasl(None, Some("not a name!")));
    expect(
        &lt,
        "spec.kafka.security.sasl.credentials.ssmParameter",
        "must be an SSM parameter name",
    );
    lt.spec.kafka.security.sasl = Some(sasl(
        None,
        Some("arn:aws:ssm:eu-west-1:123456789012:parameter/barrage/pw"),
    ));
    assert_eq!(errors(&lt), Vec::new());
}

#[test]
fn inline_password_is_rejected_with_how_to_reference_it() {
    let errs = doc_errors(|v| {
        v["spec"]["kafka"]["security"] = json!({
            "protocol": "SASL_SSL",
            "sasl": {"mechanism": "SCRAM-SHA-512", "username": "u", "password": "hunter2",
                     "credentials": {"ssmParameter": "/barrage/pw"}}
        });
    });
    assert_eq!(
        errs,
        vec!["spec.kafka.security.sasl.password: inline secrets are not accepted; store it in Secrets Manager or SSM and reference it with credentials.secretsManagerArn or credentials.ssmParameter".to_string()]
    );
}

#[test]
fn secret_properties_are_rejected_as_inline_secrets() {
    let mut lt = base();
    lt.spec
        .kafka
        .producer
        .properties
        .insert("ssl.key.password".into(), "x".into());
    expect(
        &lt,
        "spec.kafka.producer.properties[\"ssl.key.password\"]",
        "inline secrets are not accepted",
    );
}

#[test]
fn batch_size_must_be_positive() {
    let mut lt = base();
    lt.spec.kafka.producer.batch_size = 0;
    expect(
        &lt,
        "spec.kafka.producer.batchSize",
        "must be between 1 and 2147483647 (got 0)",
    );
}

#[test]
fn linger_is_at_most_900s() {
    let mut lt = base();
    lt.spec.kafka.producer.linger = d("16m");
    expect(
        &lt,
        "spec.kafka.producer.linger",
        "must be at most 15m (got 16m)",
    );
}

#[test]
fn max_in_flight_must_be_positive() {
    let mut lt = base();
    lt.spec.kafka.producer.max_in_flight = 0;
    expect(
        &lt,
        "spec.kafka.producer.maxInFlight",
        "must be between 1 and 10000000 (got 0)",
    );
}

#[test]
fn idempotence_requires_acks_all() {
    let mut lt = base();
    lt.spec.kafka.producer.acks = Acks::Leader;
    expect(
        &lt,
        "spec.kafka.producer.idempotence",
        "requires acks \"all\" (acks is \"1\")",
    );
    lt.spec.kafka.producer.idempotence = false;
    assert_eq!(errors(&lt), Vec::new());
}

#[test]
fn properties_with_a_typed_field_point_to_it() {
    let mut lt = base();
    lt.spec
        .kafka
        .producer
        .properties
        .insert("linger.ms".into(), "5".into());
    expect(
        &lt,
        "spec.kafka.producer.properties[\"linger.ms\"]",
        "is set with spec.kafka.producer.linger; use that field instead",
    );
}

#[test]
fn security_properties_belong_in_security() {
    let mut lt = base();
    lt.spec
        .kafka
        .producer
        .properties
        .insert("security.protocol".into(), "SSL".into());
    expect(
        &lt,
        "spec.kafka.producer.properties[\"security.protocol\"]",
        "belong in spec.kafka.bootstrapServers and spec.kafka.security",
    );
}

#[test]
fn unknown_properties_are_rejected_with_a_suggestion() {
    let mut lt = base();
    lt.spec
        .kafka
        .producer
        .properties
        .insert("request.timout.ms".into(), "5".into());
    expect(
        &lt,
        "spec.kafka.producer.properties[\"request.timout.ms\"]",
        "is not an allowed producer property (did you mean \"request.timeout.ms\"?)",
    );
}

#[test]
fn property_values_must_not_be_empty() {
    let mut lt = base();
    lt.spec
        .kafka
        .producer
        .properties
        .insert("request.timeout.ms".into(), "".into());
    expect(
        &lt,
        "spec.kafka.producer.properties[\"request.timeout.ms\"]",
        "must not be empty",
    );
}

#[test]
fn consumer_group_and_properties_are_checked() {
    let mut lt = base();
    lt.spec.kafka.consumer.group_id = Some(String::new());
    lt.spec
        .kafka
        .consumer
        .properties
        .insert("group.id".into(), "g".into());
    lt.spec
        .kafka
        .consumer
        .properties
        .insert("linger.ms".into(), "1".into());
    expect(
        &lt,
        "spec.kafka.consumer.groupId",
        "must not be empty when set",
    );
    expect(
        &lt,
        "spec.kafka.consumer.properties[\"group.id\"]",
        "is set with spec.kafka.consumer.groupId",
    );
    expect(
        &lt,
        "spec.kafka.consumer.properties[\"linger.ms\"]",
        "is not an allowed consumer property",
    );
}

#[test]
fn property_values_may_be_numbers_in_yaml() {
    let lt = parse_and_validate(&base().to_yaml().replace(
        "producer:\n",
        "producer:\n      properties:\n        queue.buffering.max.kbytes: 2048\n        socket.nagle.disable: true\n",
    ));
    let lt = lt.unwrap();
    assert_eq!(
        lt.spec.kafka.producer.properties["queue.buffering.max.kbytes"],
        "2048"
    );
    assert_eq!(
        lt.spec.kafka.producer.properties["socket.nagle.disable"],
        "true"
    );
}

// --- topic ----------------------------------------------------------------------------------

#[test]
fn topic_name_follows_kafka_rules() {
    for bad in ["", "..", "a b", &"x".repeat(250)] {
        let mut lt = base();
        lt.spec.topic.name = bad.to_string();
        expect(
            &lt,
            "spec.topic.name",
            "must be 1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-'",
        );
    }
}

fn create(p: i32, rf: i32) -> Option<TopicCreate> {
    Some(TopicCreate {
        partitions: p,
        replication_factor: rf,
        configs: BTreeMap::new(),
    })
}

#[test]
fn partitions_and_replication_factor_are_bounded() {
    let mut lt = base();
    lt.spec.topic.create = create(0, 0);
    expect(
        &lt,
        "spec.topic.create.partitions",
        "must be between 1 and 10000 (got 0)",
    );
    expect(
        &lt,
        "spec.topic.create.replicationFactor",
        "must be between 1 and 32 (got 0)",
    );
}

#[test]
fn min_insync_replicas_cannot_exceed_replication_factor() {
    let mut lt = base();
    lt.spec.topic.create = create(3, 1);
    if let Some(c) = &mut lt.spec.topic.create {
        c.configs.insert("min.insync.replicas".into(), "2".into());
    }
    expect(
        &lt,
        "spec.topic.create.configs[\"min.insync.replicas\"]",
        "must be at most replicationFactor (1) (got 2)",
    );
}

#[test]
fn topic_config_names_are_dotted_lowercase() {
    let mut lt = base();
    lt.spec.topic.create = create(3, 1);
    if let Some(c) = &mut lt.spec.topic.create {
        c.configs.insert("Retention MS".into(), "1".into());
    }
    expect(
        &lt,
        "spec.topic.create.configs[\"Retention MS\"]",
        "lowercase words separated by dots",
    );
}

#[test]
fn delete_if_created_needs_create() {
    let mut lt = base();
    lt.spec.topic.cleanup = TopicCleanup::DeleteIfCreated;
    expect(
        &lt,
        "spec.topic.cleanup",
        "DeleteIfCreated needs spec.topic.create",
    );
    lt.spec.topic.create = create(1, 1);
    assert_eq!(errors(&lt), Vec::new());
}

// --- workload -------------------------------------------------------------------------------

#[test]
fn records_per_transaction_is_bounded() {
    let mut lt = base();
    lt.spec.workload.records.records_per_transaction = 0;
    expect(
        &lt,
        "spec.workload.records.recordsPerTransaction",
        "must be between 1 and 10000 (got 0)",
    );
}

#[test]
fn transactional_is_not_for_consume() {
    let mut lt = base();
    lt.spec.workload.kind = WorkloadKind::Consume;
    lt.spec.workload.records.transactional = true;
    expect(
        &lt,
        "spec.workload.records.transactional",
        "is only used by Produce and RoundTrip workloads",
    );
}

#[test]
fn transactional_needs_idempotence() {
    let mut lt = base();
    lt.spec.workload.records.transactional = true;
    lt.spec.kafka.producer.idempotence = false;
    expect(
        &lt,
        "spec.kafka.producer.idempotence",
        "must be true when spec.workload.records.transactional is true",
    );
}

#[test]
fn value_size_is_at_most_10_mib() {
    let mut lt = base();
    lt.spec.workload.records.value = ValueSpec::Size(10 * 1024 * 1024 + 1);
    expect(
        &lt,
        "spec.workload.records.value.size",
        "must be at most 10485760 bytes (10 MiB) (got 10485761)",
    );
}

#[test]
fn uniform_size_range_is_ordered_and_bounded() {
    let mut lt = base();
    lt.spec.workload.records.value = ValueSpec::UniformSize(SizeRange { min: 10, max: 5 });
    expect(
        &lt,
        "spec.workload.records.value.uniformSize",
        "min must be at most max (got min 10, max 5)",
    );
    lt.spec.workload.records.value = ValueSpec::UniformSize(SizeRange {
        min: 10,
        max: u32::MAX,
    });
    expect(
        &lt,
        "spec.workload.records.value.uniformSize.max",
        "must be at most 10485760 bytes",
    );
}

fn avro(schema: Option<&str>, file: Option<&str>) -> AvroValue {
    AvroValue {
        schema: schema.map(String::from),
        schema_file: file.map(String::from),
        generators: BTreeMap::new(),
        confluent_schema_id: None,
    }
}

#[test]
fn avro_needs_exactly_one_schema_source() {
    let mut lt = base();
    lt.spec.workload.records.value = ValueSpec::Avro(avro(None, None));
    expect(
        &lt,
        "spec.workload.records.value.avro",
        "exactly one of schema and schemaFile must be set (got none)",
    );
    lt.spec.workload.records.value = ValueSpec::Avro(avro(Some("\"long\""), Some("a.avsc")));
    expect(&lt, "spec.workload.records.value.avro", "(got both)");
}

#[test]
fn avro_schema_must_be_json() {
    let mut lt = base();
    lt.spec.workload.records.value = ValueSpec::Avro(avro(Some("{\"type\": "), None));
    expect(
        &lt,
        "spec.workload.records.value.avro.schema",
        "must be an Avro schema in JSON",
    );
    lt.spec.workload.records.value = ValueSpec::Avro(avro(Some("42"), None));
    expect(
        &lt,
        "spec.workload.records.value.avro.schema",
        "a JSON object with a \"type\"",
    );
}

#[test]
fn avro_generators_must_name_schema_fields_and_be_consistent() {
    let mut lt = base();
    let mut a = avro(
        Some(
            r#"{"type":"record","name":"R","fields":[{"name":"id","type":"long"},{"name":"inner","type":{"type":"record","name":"I","fields":[{"name":"x","type":"int"}]}}]}"#,
        ),
        None,
    );
    a.generators.insert(
        "id".into(),
        FieldGenerator::UniformInt(IntRange { min: 5, max: 1 }),
    );
    a.generators
        .insert("inner.x".into(), FieldGenerator::OneOf(vec![]));
    a.generators
        .insert("nope".into(), FieldGenerator::Uuid(Empty {}));
    a.generators.insert(
        "inner".into(),
        FieldGenerator::StringLength(SizeRange { min: 3, max: 2 }),
    );
    lt.spec.workload.records.value = ValueSpec::Avro(a);
    let p = "spec.workload.records.value.avro.generators";
    expect(
        &lt,
        &format!("{p}.id.uniformInt"),
        "min must be at most max (got min 5, max 1)",
    );
    expect(
        &lt,
        &format!("{p}[\"inner.x\"].oneOf"),
        "must list at least one value",
    );
    expect(
        &lt,
        &format!("{p}.nope"),
        "no field \"nope\" in the Avro schema (fields: id, inner, inner.x)",
    );
    expect(
        &lt,
        &format!("{p}.inner.stringLength"),
        "min must be at most max",
    );
}

#[test]
fn avro_generator_names_follow_named_types_unions_and_recursion() {
    let mut lt = base();
    let schema = r#"{"type":"record","name":"Order","namespace":"x","fields":[
        {"name":"customer","type":{"type":"record","name":"Customer","fields":[{"name":"age","type":"int"}]}},
        {"name":"billing","type":["null","Customer"]},
        {"name":"tree","type":{"type":"record","name":"Node","fields":[
            {"name":"left","type":["null","Node"]},{"name":"right","type":["null","Node"]},{"name":"v","type":"long"}]}}
    ]}"#;
    let mut a = avro(Some(schema), None);
    for ok in ["customer.age", "billing.age", "tree.v", "tree.left"] {
        a.generators
            .insert(ok.into(), FieldGenerator::Uuid(Empty {}));
    }
    lt.spec.workload.records.value = ValueSpec::Avro(a.clone());
    assert_eq!(errors(&lt), Vec::new());
    a.generators
        .insert("billing.height".into(), FieldGenerator::Uuid(Empty {}));
    lt.spec.workload.records.value = ValueSpec::Avro(a);
    expect(
        &lt,
        "spec.workload.records.value.avro.generators[\"billing.height\"]",
        "no field \"billing.height\" in the Avro schema",
    );
    // A reference this check cannot resolve leaves generator names to the agent.
    let mut a = avro(
        Some(
            r#"{"type":"record","name":"R","fields":[{"name":"e","type":"com.example.External"}]}"#,
        ),
        None,
    );
    a.generators
        .insert("e.whatever".into(), FieldGenerator::Uuid(Empty {}));
    lt.spec.workload.records.value = ValueSpec::Avro(a);
    assert_eq!(errors(&lt), Vec::new());
}

#[test]
fn json_template_must_be_valid() {
    let mut lt = base();
    let p = "spec.workload.records.value.json.template";
    lt.spec.workload.records.value = ValueSpec::Json(JsonValue {
        template: " ".into(),
    });
    expect(&lt, p, "must not be empty");
    lt.spec.workload.records.value = ValueSpec::Json(JsonValue {
        template: "{\"a\": {{nope}}}".into(),
    });
    expect(&lt, p, "placeholder {{nope}}: is not a placeholder");
    lt.spec.workload.records.value = ValueSpec::Json(JsonValue {
        template: "{\"a\": ".into(),
    });
    expect(&lt, p, "must be JSON once placeholders are filled in");
}

#[test]
fn keys_need_a_cardinality_and_a_sane_exponent() {
    let mut lt = base();
    lt.spec.workload.records.key = KeySpec {
        distribution: KeyDistribution::Uniform,
        cardinality: 0,
        exponent: 1.0,
    };
    expect(
        &lt,
        "spec.workload.records.key.cardinality",
        "must be at least 1 (got 0)",
    );
    lt.spec.workload.records.key = KeySpec {
        distribution: KeyDistribution::Zipf,
        cardinality: 10,
        exponent: -1.0,
    };
    expect(
        &lt,
        "spec.workload.records.key.exponent",
        "must be greater than 0 and at most 10 (got -1)",
    );
    lt.spec.workload.records.key = KeySpec {
        distribution: KeyDistribution::Uniform,
        cardinality: 10,
        exponent: 2.0,
    };
    expect(
        &lt,
        "spec.workload.records.key.exponent",
        "is only used with distribution zipf",
    );
}

#[test]
fn headers_are_bounded_and_barrage_names_reserved() {
    let mut lt = base();
    lt.spec.workload.records.headers = (0..65)
        .map(|i| (format!("h{i}"), "v".to_string()))
        .collect();
    expect(
        &lt,
        "spec.workload.records.headers",
        "must have at most 64 headers (got 65)",
    );
    let mut lt = base();
    lt.spec
        .workload
        .records
        .headers
        .insert("barrage-seq".into(), "1".into());
    expect(&lt, "spec.workload.records.headers.barrage-seq", "reserved");
}

// --- load -----------------------------------------------------------------------------------

#[test]
fn load_needs_steps() {
    let mut lt = base();
    lt.spec.load.steps.clear();
    expect(&lt, "spec.load.steps", "must have at least one step");
    lt.spec.load.steps = vec![constant(1.0, 1); 1001];
    expect(
        &lt,
        "spec.load.steps",
        "must have at most 1000 steps (got 1001)",
    );
}

#[test]
fn constant_rate_must_be_greater_than_zero() {
    let mut lt = base();
    lt.spec.load.steps = vec![constant(10.0, 10), constant(-5.0, 10)];
    let errs = validate(&lt).unwrap_err().to_string();
    assert_eq!(
        errs,
        "spec.load.steps[1].constant.rate: must be greater than 0 (got -5)"
    );
}

#[test]
fn rates_must_be_finite() {
    let mut lt = base();
    lt.spec.load.steps = vec![constant(f64::NAN, 10)];
    expect(
        &lt,
        "spec.load.steps[0].constant.rate",
        "must be a finite number (got NaN)",
    );
}

#[test]
fn step_durations_must_be_positive() {
    let mut lt = base();
    lt.spec.load.steps = vec![constant(10.0, 0)];
    expect(
        &lt,
        "spec.load.steps[0].constant.for",
        "must be greater than 0s (got 0s)",
    );
}

#[test]
fn ramp_rates_are_non_negative_and_not_both_zero() {
    let mut lt = base();
    lt.spec.load.steps = vec![LoadStep::Ramp(RampStep {
        from: -1.0,
        to: 10.0,
        over: d("1m"),
    })];
    expect(
        &lt,
        "spec.load.steps[0].ramp.from",
        "must be at least 0 (got -1)",
    );
    lt.spec.load.steps = vec![LoadStep::Ramp(RampStep {
        from: 0.0,
        to: 0.0,
        over: d("1m"),
    })];
    expect(
        &lt,
        "spec.load.steps[0].ramp",
        "from and to cannot both be 0",
    );
}

#[test]
fn staircase_goes_up_in_positive_steps_and_is_bounded() {
    let mut lt = base();
    lt.spec.load.steps = vec![LoadStep::Staircase(StaircaseStep {
        start: 100.0,
        step: 0.0,
        every: d("1s"),
        until: 50.0,
    })];
    expect(
        &lt,
        "spec.load.steps[0].staircase.step",
        "must be greater than 0 (got 0)",
    );
    expect(
        &lt,
        "spec.load.steps[0].staircase.until",
        "must be greater than start (got until 50, start 100)",
    );
    lt.spec.load.steps = vec![LoadStep::Staircase(StaircaseStep {
        start: 1.0,
        step: 1.0,
        every: d("1s"),
        until: 20_000.0,
    })];
    expect(
        &lt,
        "spec.load.steps[0].staircase",
        "makes 20000 stairs; at most 10000",
    );
}

#[test]
fn rate_per_agent_is_capped() {
    let mut lt = base();
    lt.spec.load.steps = vec![constant(5_000_000.0, 10)];
    lt.spec.agents.count = 2;
    expect(
        &lt,
        "spec.load.steps[0].constant.rate",
        "5000000 records/s over 2 agent(s) is 2500000 per agent; at most 2000000 per agent",
    );
    lt.spec.agents.count = 3;
    assert_eq!(errors(&lt), Vec::new());
}

#[test]
fn duration_is_positive_and_at_most_30_days() {
    let mut lt = base();
    lt.spec.load.duration = Some(d("0s"));
    expect(&lt, "spec.load.duration", "must be greater than 0s");
    lt.spec.load.duration = Some(d("31d"));
    lt.spec.load.max_duration = Some(d("31d"));
    expect(&lt, "spec.load.duration", "must be at most 30d (got 31d)");
    let mut lt = base();
    lt.spec.load.steps = vec![constant(1.0, 20 * 86400), constant(1.0, 11 * 86400)];
    expect(
        &lt,
        "spec.load.steps",
        "add up to 31d; the load may last at most 30d",
    );
}

#[test]
fn max_duration_covers_the_load_and_is_bounded() {
    let mut lt = base();
    lt.spec.load.max_duration = Some(d("1s"));
    expect(
        &lt,
        "spec.load.maxDuration",
        "must be at least the load duration (got 1s, the load lasts 5s)",
    );
    lt.spec.load.max_duration = Some(d("32d"));
    expect(
        &lt,
        "spec.load.maxDuration",
        "must be at most 31d (got 32d)",
    );
}

// --- agents ---------------------------------------------------------------------------------

#[test]
fn agent_count_is_between_1_and_1000() {
    let mut lt = base();
    lt.spec.agents.count = 1001;
    expect(
        &lt,
        "spec.agents.count",
        "must be between 1 and 1000 (got 1001)",
    );
}

#[test]
fn fargate_cpu_and_memory_are_valid_combinations() {
    let mut lt = base();
    lt.spec.agents.cpu = 1000;
    expect(
        &lt,
        "spec.agents.cpu",
        "must be one of 256, 512, 1024, 2048, 4096, 8192, 16384 on FARGATE (got 1000)",
    );
    lt.spec.agents.cpu = 1024;
    lt.spec.agents.memory = 1024;
    expect(
        &lt,
        "spec.agents.memory",
        "1024 MiB is not a Fargate size for cpu 1024 (allowed: 2048 to 8192 in steps of 1024)",
    );
}

#[test]
fn ec2_cpu_memory_bounds_and_no_spot() {
    let mut lt = base();
    lt.spec.agents.launch_type = LaunchType::Ec2;
    lt.spec.agents.cpu = 64;
    lt.spec.agents.memory = 100;
    lt.spec.agents.spot = true;
    expect(
        &lt,
        "spec.agents.cpu",
        "must be between 128 and 196608 on EC2 (got 64)",
    );
    expect(
        &lt,
        "spec.agents.memory",
        "must be between 512 and 1048576 MiB on EC2 (got 100)",
    );
    expect(
        &lt,
        "spec.agents.spot",
        "is only supported with launchType FARGATE",
    );
}

#[test]
fn max_restarts_is_bounded() {
    let mut lt = base();
    lt.spec.agents.max_restarts = 101;
    expect(
        &lt,
        "spec.agents.maxRestarts",
        "must be at most 100 (got 101)",
    );
}

#[test]
fn ready_fraction_is_in_zero_one() {
    let mut lt = base();
    lt.spec.agents.ready_fraction = 0.0;
    expect(
        &lt,
        "spec.agents.readyFraction",
        "must be greater than 0 and at most 1 (got 0)",
    );
    lt.spec.agents.ready_fraction = 1.5;
    expect(&lt, "spec.agents.readyFraction", "(got 1.5)");
}

#[test]
fn estimated_vcpu_hours_are_capped() {
    let mut lt = base();
    lt.spec.agents.count = 100;
    lt.spec.agents.cpu = 4096;
    lt.spec.agents.memory = 8192;
    lt.spec.load.steps = vec![constant(1000.0, 12 * 3600)];
    lt.spec.load.max_duration = Some(d("13h"));
    // 100 agents × 4 vCPU × 13 h = 5200 vCPU-hours > 5000.
    expect(
        &lt,
        "spec.agents",
        "estimated 5200 vCPU-hours (100 agents × 4 vCPU × 13.0 h of maxDuration) exceeds the cost guard of 5000 vCPU-hours",
    );
    lt.spec.load.max_duration = Some(d("12h"));
    assert_eq!(errors(&lt), Vec::new());
}

// --- thresholds -----------------------------------------------------------------------------

fn th(s: &str) -> Threshold {
    Threshold::parse(s).unwrap()
}

#[test]
fn round_trip_metrics_need_a_round_trip_workload() {
    let mut lt = base();
    lt.spec.thresholds = vec![th("e2e.p99 < 1s"), th("records.lost <= 0")];
    expect(
        &lt,
        "spec.thresholds[0]",
        "e2e.p99 is only measured by RoundTrip workloads (workload.kind is Produce)",
    );
    expect(
        &lt,
        "spec.thresholds[1]",
        "records.lost is only measured by RoundTrip workloads",
    );
}

#[test]
fn producer_metrics_are_not_measured_by_consume() {
    let mut lt = base();
    lt.spec.workload.kind = WorkloadKind::Consume;
    lt.spec.thresholds = vec![th("produce.p99 < 1s"), th("errors.count < 1")];
    expect(
        &lt,
        "spec.thresholds[0]",
        "produce.p99 is not measured by Consume workloads",
    );
    assert_eq!(errors(&lt).len(), 1);
}

#[test]
fn consumer_lag_needs_a_workload_that_consumes() {
    let mut lt = base();
    lt.spec.thresholds = vec![th("consumer_lag.max < 10000"), th("consumer_lag.p99 < 10")];
    expect(
        &lt,
        "spec.thresholds[0]",
        "consumer_lag.max is only measured by workloads that consume (Consume, RoundTrip; workload.kind is Produce)",
    );
    expect(
        &lt,
        "spec.thresholds[1]",
        "consumer_lag.p99 is only measured by workloads that consume",
    );
    for kind in [WorkloadKind::Consume, WorkloadKind::RoundTrip] {
        lt.spec.workload.kind = kind;
        assert!(errors(&lt).is_empty(), "{kind:?}: {:?}", errors(&lt));
    }
    let err = Threshold::parse("consumer_lag.max < 5ms").unwrap_err();
    assert_eq!(
        err.to_string(),
        "consumer_lag.max is a count: expected a non-negative integer (got \"5ms\")"
    );
}

#[test]
fn a_backlog_is_for_consume_within_the_cost_guard() {
    let mut lt = base();
    lt.spec.workload.backlog = Some(barrage_crds::spec::BacklogSpec {
        records: 1_000,
        ..Default::default()
    });
    expect(
        &lt,
        "spec.workload.backlog",
        "is only for Consume workloads (workload.kind is Produce)",
    );
    lt.spec.workload.kind = WorkloadKind::Consume;
    expect(
        &lt,
        "spec.kafka.consumer.autoOffsetReset",
        "must be earliest with a backlog: the group's new consumers would start past it (got latest)",
    );
    lt.spec.kafka.consumer.auto_offset_reset = barrage_crds::spec::OffsetReset::Earliest;
    assert!(errors(&lt).is_empty(), "{:?}", errors(&lt));
    lt.spec.agents.count = 2;
    lt.spec.workload.backlog = Some(barrage_crds::spec::BacklogSpec {
        records: 40_000_001,
        ..Default::default()
    });
    expect(
        &lt,
        "spec.workload.backlog.records",
        "must be at most 20000000 records per agent, 40000000 for 2 agent(s): the cost guard (got 40000001 records; raise spec.agents.count or write less)",
    );
    lt.spec.workload.backlog = Some(barrage_crds::spec::BacklogSpec::default());
    expect(
        &lt,
        "spec.workload.backlog",
        "must set records or bytes (got neither)",
    );
    // Bytes of 100-byte values (base()'s): 1 MB and 1 byte is 10 001 records.
    let by_bytes = barrage_crds::spec::BacklogSpec {
        bytes: 1_000_001,
        ..Default::default()
    };
    assert_eq!(
        by_bytes.record_count(&lt.spec.workload.records.value),
        Some(10_001)
    );
    lt.spec.workload.backlog = Some(by_bytes);
    assert!(errors(&lt).is_empty(), "{:?}", errors(&lt));
    lt.spec.workload.records.value =
        barrage_crds::spec::ValueSpec::UniformSize(barrage_crds::spec::SizeRange {
            min: 10,
            max: 20,
        });
    expect(
        &lt,
        "spec.workload.backlog.bytes",
        "needs records.value.size (a fixed size) to count its records; use backlog.records",
    );
}

#[test]
fn drain_figures_need_a_backlog_and_are_judged_over_the_run() {
    let mut lt = base();
    lt.spec.workload.kind = WorkloadKind::Consume;
    lt.spec.thresholds = vec![th("drain.seconds < 120"), th("consume.rate > 50000")];
    expect(
        &lt,
        "spec.thresholds[0]",
        "drain.seconds needs a backlog to drain (spec.workload.backlog)",
    );
    assert_eq!(
        errors(&lt).len(),
        1,
        "consume.rate needs none: {:?}",
        errors(&lt)
    );
    lt.spec.workload.backlog = Some(barrage_crds::spec::BacklogSpec {
        records: 10,
        ..Default::default()
    });
    lt.spec.kafka.consumer.auto_offset_reset = barrage_crds::spec::OffsetReset::Earliest;
    assert!(errors(&lt).is_empty(), "{:?}", errors(&lt));
    let mut windowed = th("consume.rate > 1");
    windowed.scope = ThresholdScope::Window;
    lt.spec.report.window = Some(barrage_crds::duration::HumanDuration::from_secs(10));
    lt.spec.thresholds = vec![windowed];
    expect(
        &lt,
        "spec.thresholds[0]",
        "consume.rate is a figure of the whole run: its scope is run (got window)",
    );
    assert_eq!(
        Threshold::parse("drain.seconds < 2m")
            .unwrap_err()
            .to_string(),
        "drain.seconds is a number: expected a non-negative number such as 120 or 2.5 (got \"2m\")"
    );
}

#[test]
fn window_scope_needs_a_report_window() {
    let mut lt = base();
    let mut t = th("produce.p99 < 1s");
    t.scope = ThresholdScope::Window;
    lt.spec.thresholds = vec![t];
    expect(
        &lt,
        "spec.thresholds[0]",
        "scope window needs spec.report.window",
    );
}

#[test]
fn error_ratio_above_one_can_never_fail() {
    let mut lt = base();
    lt.spec.thresholds = vec![th("errors.ratio < 150%")];
    expect(
        &lt,
        "spec.thresholds[0]",
        "errors.ratio is at most 1 (100%), so 150% can never fail",
    );
}

#[test]
fn thresholds_are_bounded() {
    let mut lt = base();
    lt.spec.thresholds = vec![th("errors.count < 1"); 101];
    expect(
        &lt,
        "spec.thresholds",
        "must have at most 100 thresholds (got 101)",
    );
}

#[test]
fn threshold_text_is_parsed_with_units() {
    let t = th("produce.p99 < 50ms");
    assert_eq!(
        (t.metric, t.op, t.value.value()),
        (Metric::ProduceP99, ThresholdOp::Lt, 50_000.0)
    );
    assert!(t.holds(49_999.0) && !t.holds(50_000.0));
    assert_eq!(th("errors.ratio<=0.1%").value.value(), 0.001);
    assert_eq!(th("errors.ratio < 0.001").value.value(), 0.001);
    assert_eq!(th("lag.p99 < 250us").value.value(), 250.0);
    assert_eq!(th("e2e.max < 1.5s").value.value(), 1_500_000.0);
    assert_eq!(th("records.lost >= 42").value.value(), 42.0);
    assert_eq!(
        th("rate.achieved_ratio > 0.99").to_string(),
        "rate.achieved_ratio > 0.99"
    );
}

#[test]
fn threshold_parse_errors_name_the_element() {
    let cases = [
        (
            "produce.p99 < 50",
            "spec.thresholds[0]: produce.p99 is a latency: the value needs a time unit such as 50ms, 250us or 1.5s (got \"50\")",
        ),
        (
            "errors.ratio < lots",
            "spec.thresholds[0]: errors.ratio is a ratio: expected a non-negative number or percentage such as 0.001 or 0.1% (got \"lots\")",
        ),
        (
            "errors.count < 1.5",
            "spec.thresholds[0]: errors.count is a count: expected a non-negative integer (got \"1.5\")",
        ),
        (
            "produce.p98 < 5ms",
            "spec.thresholds[0]: unknown metric \"produce.p98\"",
        ),
        (
            "produce.p99 = 5ms",
            "spec.thresholds[0]: expected \"<metric> <op> <value>\" such as \"produce.p99 < 50ms\"",
        ),
    ];
    for (text, want) in cases {
        expect_doc(|v| v["spec"]["thresholds"] = json!([text]), want);
    }
}

#[test]
fn threshold_objects_are_accepted_and_checked() {
    let errs = doc_errors(|v| {
        v["spec"]["thresholds"] = json!([
            {"metric": "produce.p99", "op": "<", "value": "50ms", "scope": "run"},
            {"metric": "errors.ratio", "op": "<", "value": 0.001},
            {"metric": "produce.p99", "op": "<", "value": 50},
            {"metric": "produce.p99", "op": "~", "value": "1ms"}
        ]);
    });
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.thresholds[2]: value: produce.p99 is a latency")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.thresholds[3].op: unknown variant `~`")),
        "{errs:?}"
    );
    assert_eq!(errs.len(), 2, "{errs:?}");
}

// --- report and timeouts --------------------------------------------------------------------

#[test]
fn report_interval_is_between_1s_and_1h() {
    let mut lt = base();
    lt.spec.report.interval = d("500ms");
    expect(
        &lt,
        "spec.report.interval",
        "must be between 1s and 1h (got 500ms)",
    );
}

#[test]
fn report_window_is_a_multiple_of_the_interval() {
    let mut lt = base();
    lt.spec.report.window = Some(d("25s"));
    expect(
        &lt,
        "spec.report.window",
        "must be a multiple of report.interval (10s) (got 25s)",
    );
    lt.spec.report.window = Some(d("5s"));
    expect(
        &lt,
        "spec.report.window",
        "must be at least report.interval (10s) (got 5s)",
    );
}

#[test]
fn warmup_is_a_whole_number_of_report_intervals() {
    let mut lt = base();
    lt.spec.load.warmup = Some(d("15s"));
    lt.spec.load.duration = Some(d("60s"));
    expect(
        &lt,
        "spec.load.warmup",
        "must be a multiple of report.interval (10s) (got 15s)",
    );
    lt.spec.load.warmup = Some(d("0s"));
    expect(&lt, "spec.load.warmup", "must be greater than 0s (got 0s)");
    lt.spec.load.warmup = Some(d("20s"));
    assert_eq!(errors(&lt), Vec::new());
}

#[test]
fn warmup_is_shorter_than_the_load() {
    let mut lt = base();
    lt.spec.report.interval = d("1s");
    lt.spec.load.steps = vec![constant(100.0, 4)];
    lt.spec.load.warmup = Some(d("4s"));
    expect(
        &lt,
        "spec.load.warmup",
        "must be shorter than the load (got 4s, the load lasts 4s)",
    );
    lt.spec.load.warmup = Some(d("3s"));
    assert_eq!(errors(&lt), Vec::new());
    assert_eq!(lt.spec.load.warmup_intervals(lt.spec.report.interval), 3);
}

#[test]
fn destination_needs_exactly_one_target() {
    let mut lt = base();
    lt.spec.report.destination = Some(Destination::default());
    expect(
        &lt,
        "spec.report.destination",
        "exactly one of s3 and local must be set (got none)",
    );
    lt.spec.report.destination = Some(Destination {
        s3: Some(S3Dest {
            bucket: "ok-bucket".into(),
            prefix: String::new(),
        }),
        local: Some(LocalDest {
            path: "/tmp/r".into(),
        }),
    });
    expect(&lt, "spec.report.destination", "(got both)");
}

#[test]
fn s3_destination_is_checked() {
    let mut lt = base();
    lt.spec.report.destination = Some(Destination {
        s3: Some(S3Dest {
            bucket: "Bad_Bucket".into(),
            prefix: "/x".into(),
        }),
        local: None,
    });
    expect(
        &lt,
        "spec.report.destination.s3.bucket",
        "must be an S3 bucket name",
    );
    expect(
        &lt,
        "spec.report.destination.s3.prefix",
        "must not start with '/'",
    );
}

#[test]
fn local_destination_needs_a_path() {
    let mut lt = base();
    lt.spec.report.destination = Some(Destination {
        s3: None,
        local: Some(LocalDest { path: "".into() }),
    });
    expect(
        &lt,
        "spec.report.destination.local.path",
        "must not be empty",
    );
}

#[test]
fn timeouts_are_between_1s_and_24h() {
    let mut lt = base();
    lt.spec.timeouts.ready = d("0s");
    lt.spec.timeouts.draining = d("2d");
    expect(
        &lt,
        "spec.timeouts.ready",
        "must be between 1s and 1d (got 0s)",
    );
    expect(
        &lt,
        "spec.timeouts.draining",
        "must be between 1s and 1d (got 2d)",
    );
}

// --- parsing --------------------------------------------------------------------------------

#[test]
fn a_typo_names_the_unknown_field() {
    expect_doc(
        |v| v["spec"]["agents"] = json!({"cuont": 3}),
        "spec.agents.cuont: unknown field (expected one of count, cpu, memory, launchType, spot, maxRestarts, readyFraction)",
    );
}

#[test]
fn a_wrong_type_names_the_field() {
    expect_doc(
        |v| v["spec"]["load"]["steps"][0]["constant"]["rate"] = json!("fast"),
        "spec.load.steps[0].constant.rate: invalid type: string \"fast\", expected f64",
    );
}

#[test]
fn a_missing_field_is_named() {
    expect_doc(
        |v| {
            v["spec"]["topic"].as_object_mut().unwrap().remove("name");
        },
        "spec.topic.name: is required",
    );
}

#[test]
fn a_bad_duration_names_the_field_and_the_format() {
    expect_doc(
        |v| v["spec"]["load"]["steps"][0]["constant"]["for"] = json!("10 minutes"),
        "spec.load.steps[0].constant.for: invalid duration \"10 minutes\": expected a number followed by ms, s, m, h or d",
    );
}

#[test]
fn every_parse_problem_and_rule_is_listed_at_once() {
    let errs = doc_errors(|v| {
        v["metadata"]["name"] = json!("Bad Name");
        v["spec"]["kafka"]["bootstrapServer"] = json!("x:1");
        v["spec"]["workload"]["kind"] = json!("Produc");
        v["spec"]["load"]["steps"] = json!([
            {"constant": {"rate": 10, "for": "1s"}},
            {"constant": {"rate": -5, "for": "1s"}},
            {"ramp": {"from": 0, "to": "fast", "over": "1s"}},
            {"constant": {"rate": 1, "for": "0s"}}
        ]);
        v["spec"]["agents"] = json!({"count": 0});
        v["spec"]["thresholds"] = json!(["produce.p99 < 5", "e2e.p99 < 5ms"]);
    });
    for want in [
        "metadata.name: must consist of lowercase letters",
        "spec.kafka.bootstrapServer: unknown field",
        "spec.workload.kind: unknown variant `Produc`",
        "spec.load.steps[1].constant.rate: must be greater than 0 (got -5)",
        "spec.load.steps[2].ramp.to: invalid type: string \"fast\"",
        "spec.load.steps[3].constant.for: must be greater than 0s (got 0s)",
        "spec.agents.count: must be between 1 and 1000 (got 0)",
        "spec.thresholds[0]: produce.p99 is a latency",
        "spec.thresholds[1]: e2e.p99 is only measured by RoundTrip workloads",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "missing `{want}` in:\n{}",
            errs.join("\n")
        );
    }
}

#[test]
fn syntax_errors_and_non_mappings_are_reported() {
    let e = parse_and_validate("spec: [unclosed")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("spec: not valid YAML"), "{e}");
    let e = parse_and_validate("{\"spec\": ").unwrap_err().to_string();
    assert!(e.contains("not valid JSON"), "{e}");
    let e = parse_and_validate("kind: a\nkind: b\n")
        .unwrap_err()
        .to_string();
    assert_eq!(e, "kind: is written twice in the same mapping");
    let e = parse_and_validate("- 1\n- 2\n").unwrap_err().to_string();
    assert!(e.contains("expected a LoadTest mapping"), "{e}");
    let e = parse_and_validate("").unwrap_err().to_string();
    assert!(e.contains("expected a LoadTest mapping"), "{e}");
}

#[test]
fn json_and_yaml_inputs_are_both_accepted() {
    let lt = base();
    assert_eq!(parse_and_validate(&lt.to_json()).unwrap(), lt);
    assert_eq!(parse_and_validate(&lt.to_yaml()).unwrap(), lt);
}
