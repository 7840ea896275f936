#![allow(clippy::all)]
use barrage_system_tests::spec::Spec;
const RATE: u64 = 200;
const LOAD_SECS: u64 = 4;
fn p(t: &str) -> barrage_crds::loadtest::LoadTest {
    barrage_crds::validate::parse_and_validate(t).unwrap_or_else(|e| panic!("{e}\n{t}"))
}
fn old_desired(
    name: &str,
    topic: &str,
    bootstrap: &str,
    size: u32,
    secs: u32,
    rerun: u64,
) -> String {
    format!(
        "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata:
  name: {name}
spec:
  kafka:
    bootstrapServers: {bootstrap}
  topic:
    name: {topic}
    create:
      partitions: 3
      replicationFactor: 1
  workload:
    kind: Produce
    records:
      value:
        size: {size}
  load:
    steps:
      - constant: {{rate: 100, for: {secs}s}}
  agents:
    count: 2
  report:
    interval: 1s
  rerun: {rerun}
"
    )
}

fn old_warmup(topic: &str, bootstrap: &str) -> String {
    format!(
        "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata:
  name: run-warmup
spec:
  kafka:
    bootstrapServers: {bootstrap}
  topic:
    name: {topic}
    create:
      partitions: 3
      replicationFactor: 1
    cleanup: DeleteIfCreated
  workload:
    kind: Produce
    records:
      value:
        size: 100
  load:
    steps:
      - constant: {{rate: {RATE}, for: {LOAD_SECS}s}}
    warmup: 1s
  agents:
    count: 1
  report:
    interval: 1s
  thresholds:
    - \"produce.p99 < 500ms\"
    - \"errors.ratio < 1%\"
    - \"rate.achieved_ratio >= 0.9\"
"
    )
}

fn old_e2e(
    name: &str,
    topic: &str,
    bootstrap: &str,
    agents: u32,
    rate: u32,
    secs: u32,
    thresholds: &[&str],
) -> String {
    let thresholds: String = thresholds
        .iter()
        .map(|t| format!("    - \"{t}\"\n"))
        .collect();
    format!(
        "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata:
  name: {name}
spec:
  kafka:
    bootstrapServers: {bootstrap}
  topic:
    name: {topic}
    create:
      partitions: 3
      replicationFactor: 1
  workload:
    kind: Produce
    records:
      value:
        size: 100
  load:
    steps:
      - constant: {{rate: {rate}, for: {secs}s}}
  agents:
    count: {agents}
  report:
    interval: 1s
  thresholds:
{thresholds}"
    )
}

fn old_ap(name: &str, topic: &str, bootstrap: &str, i: usize) -> String {
    if i == 0 {
        format!(
            "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: {name}}}
spec:
  kafka: {{bootstrapServers: {bootstrap}}}
  topic:
    name: {topic}
    create: {{partitions: 1, replicationFactor: 1}}
  workload: {{kind: Produce, records: {{value: {{size: 10}}}}}}
  load:
    steps: [{{constant: {{rate: 100, for: 2s}}}}]
  agents: {{count: 3}}
  report: {{interval: 1s}}
"
        )
    } else {
        format!(
            "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: {name}}}
spec:
  kafka: {{bootstrapServers: {bootstrap}}}
  topic:
    name: {topic}
    create: {{partitions: 1, replicationFactor: 1}}
  workload: {{kind: Produce, records: {{value: {{size: 10}}}}}}
  load:
    steps: [{{constant: {{rate: 100, for: 3s}}}}]
  agents: {{count: 1}}
  report: {{interval: 1s}}
"
        )
    }
}
const OLD_LOAD: &str = "
      - constant: {rate: 400, for: 2s}
      - ramp: {from: 400, to: 800, over: 2s}
      - staircase: {start: 200, step: 200, every: 1s, until: 600}";
fn old_report(topic: &str, bootstrap: &str) -> String {
    format!(
        "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata:
  name: run-report
spec:
  kafka:
    bootstrapServers: {bootstrap}
  topic:
    name: {topic}
    create:
      partitions: 3
      replicationFactor: 1
    cleanup: DeleteIfCreated
  workload:
    kind: Produce
    records:
      value:
        size: 100
  load:
    steps:{OLD_LOAD}
  agents:
    count: 2
  report:
    interval: 1s
    window: 2s
  thresholds:
    - \"errors.ratio < 1%\"
"
    )
}

#[test]
fn run_report_parses_equal() {
    use barrage_system_tests::spec::Step;
    let (t, b) = ("topic-n", "127.0.0.1:9092");
    let new = Spec::new("run-report", t, b)
        .partitions(3)
        .delete_if_created()
        .steps([
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
        ])
        .agents(2)
        .window(2)
        .threshold("errors.ratio < 1%")
        .yaml();
    assert_eq!(p(&old_report(t, b)), p(&new));
}
#[test]
fn old_and_new_parse_equal() {
    let (n, t, b) = ("n", "topic-n", "127.0.0.1:9092");
    for (i, (secs, agents)) in [(2, 3), (3, 1)].into_iter().enumerate() {
        assert_eq!(
            p(&old_ap(n, t, b, i)),
            p(&Spec::new(n, t, b).size(10).secs(secs).agents(agents).yaml())
        );
    }
    for (size, secs, rerun) in [(100, 14, 0), (200, 4, 0), (200, 4, 3)] {
        assert_eq!(
            p(&old_desired(n, t, b, size, secs, rerun)),
            p(&Spec::new(n, t, b)
                .partitions(3)
                .size(size)
                .secs(secs)
                .agents(2)
                .rerun(rerun)
                .yaml())
        );
    }
    assert_eq!(
        p(&old_warmup(t, b)),
        p(&Spec::new("run-warmup", t, b)
            .partitions(3)
            .delete_if_created()
            .rate(RATE as u32)
            .secs(LOAD_SECS as u32)
            .warmup(1)
            .agents(1)
            .threshold("produce.p99 < 500ms")
            .threshold("errors.ratio < 1%")
            .threshold("rate.achieved_ratio >= 0.9")
            .yaml())
    );
    let th = ["errors.ratio < 0.1%", "rate.achieved_ratio >= 0.97"];
    let new = |a, r, s, th: &[&str]| {
        th.iter().fold(
            Spec::new(n, t, b).partitions(3).agents(a).rate(r).secs(s),
            |x, t| x.threshold(t),
        )
    };
    assert_eq!(
        p(&old_e2e(n, t, b, 2, 200, 24, &th)),
        p(&new(2, 200, 24, &th).yaml())
    );
    assert_eq!(
        p(&old_e2e(n, t, b, 1, 50, 3, &th[..1])),
        p(&new(1, 50, 3, &th[..1]).yaml())
    );
    let old_kill = old_e2e(n, t, b, 3, 300, 20, &["errors.ratio < 0.1%"]).replace(
        "    records:\n",
        "    records:\n      key:\n        distribution: sequential\n        cardinality: 1000000000\n",
    );
    assert_eq!(
        p(&old_kill),
        p(&new(3, 300, 20, &["errors.ratio < 0.1%"])
            .sequential_keys(1_000_000_000)
            .yaml())
    );
    let old_paused = format!("{}  paused: true\n", old_e2e(n, t, b, 2, 200, 24, &th));
    assert_eq!(p(&old_paused), p(&new(2, 200, 24, &th).paused().yaml()));
    assert!(p(&old_paused).spec.paused);
    println!("all old and new specs parse equal");
}

fn old_rt(name: &str, topic: &str, bootstrap: &str) -> String {
    format!(
        "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata:
  name: {name}
spec:
  kafka:
    bootstrapServers: {bootstrap}
  topic:
    name: {topic}
    create:
      partitions: 3
      replicationFactor: 1
    cleanup: DeleteIfCreated
  workload:
    kind: RoundTrip
    records:
      value:
        size: 200
  load:
    steps:
      - constant: {{rate: 200, for: 5s}}
  agents:
    count: 2
  report:
    interval: 1s
  thresholds:
    - \"records.lost <= 0\"
    - \"records.duplicated <= 0\"
    - \"e2e.p99 < 10s\"
"
    )
}

#[test]
fn operator_roundtrip_parses_equal() {
    use barrage_system_tests::spec::Workload;
    let (name, topic, bootstrap) = (
        "n".to_string(),
        "topic-n".to_string(),
        "127.0.0.1:9092".to_string(),
    );
    let new_rt = Spec::new(&name, &topic, &bootstrap)
        .kind(Workload::RoundTrip)
        .partitions(3)
        .delete_if_created()
        .size(200)
        .rate(200)
        .secs(5)
        .agents(2)
        .threshold("records.lost <= 0")
        .threshold("records.duplicated <= 0")
        .threshold("e2e.p99 < 10s")
        .yaml();
    assert_eq!(p(&old_rt(&name, &topic, &bootstrap)), p(&new_rt));
    let produce = old_rt(&name, &topic, &bootstrap)
        .replace("    cleanup: DeleteIfCreated\n", "")
        .replace("kind: RoundTrip", "kind: Produce")
        .replace("rate: 200, for: 5s", "rate: 400, for: 3s")
        .replace("    count: 2", "    count: 1");
    let produce = produce
        .split("  thresholds:")
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        p(&produce),
        p(&Spec::new(&name, &topic, &bootstrap)
            .partitions(3)
            .size(200)
            .rate(400)
            .secs(3)
            .yaml())
    );
    let consume = format!(
        "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata:
  name: {name}
spec:
  kafka:
    bootstrapServers: {bootstrap}
    consumer:
      autoOffsetReset: earliest
  topic:
    name: {topic}
  workload:
    kind: Consume
  load:
    steps:
      - constant: {{rate: 1, for: 8s}}
  agents:
    count: 2
  report:
    interval: 1s
  thresholds:
    - \"errors.count <= 0\"
"
    );
    assert_eq!(
        p(&consume),
        p(&Spec::new(&name, &topic, &bootstrap)
            .kind(Workload::Consume)
            .from_earliest()
            .existing_topic()
            .rate(1)
            .secs(8)
            .agents(2)
            .threshold("errors.count <= 0")
            .yaml())
    );
    let spec = old_rt(&name, &topic, &bootstrap)
        .replace("kind: RoundTrip", "kind: Produce")
        .replace("    - \"records.lost <= 0\"\n    - \"records.duplicated <= 0\"\n    - \"e2e.p99 < 10s\"\n", "    - \"errors.count <= 0\"\n");
    let new_tk = Spec::new(&name, &topic, &bootstrap)
        .partitions(3)
        .delete_if_created()
        .size(200)
        .rate(200)
        .secs(5)
        .agents(2)
        .threshold("errors.count <= 0")
        .yaml();
    assert_eq!(p(&spec), p(&new_tk));
    assert!(new_tk.contains("cleanup: DeleteIfCreated") && new_tk.contains("errors.count"));
}

#[test]
fn ecs_and_consume_specs_parse_equal() {
    use barrage_system_tests::spec::Workload;
    let (lt, bootstrap, topic) = (
        "n".to_string(),
        "127.0.0.1:9092".to_string(),
        "topic-n".to_string(),
    );
    let name = lt.clone();
    let spec = format!(
        "apiVersion: barrage.dev/v1alpha1\nkind: LoadTest\nmetadata: {{name: {lt}}}\nspec:\n  kafka: {{bootstrapServers: \"{bootstrap}\"}}\n  topic: {{name: {lt}}}\n  workload: {{kind: Produce, records: {{value: {{size: 100}}}}}}\n  load: {{steps: [{{constant: {{rate: 100, for: 10s}}}}]}}\n  agents: {{count: 2}}\n"
    );
    assert_eq!(
        p(&spec),
        p(&Spec::new(&lt, &lt, &bootstrap)
            .existing_topic()
            .agents(2)
            .interval(10)
            .yaml())
    );
    let spec = format!(
        "apiVersion: barrage.dev/v1alpha1\nkind: LoadTest\nmetadata: {{name: {name}}}\nspec:\n  kafka: {{bootstrapServers: \"{bootstrap}\"}}\n  topic: {{name: {name}}}\n  workload: {{kind: Produce, records: {{value: {{size: 100}}}}}}\n  load: {{steps: [{{constant: {{rate: 100, for: 10s}}}}]}}\n  agents: {{count: 2}}\n"
    );
    assert_eq!(
        p(&spec),
        p(&Spec::new(&name, &name, &bootstrap)
            .existing_topic()
            .agents(2)
            .interval(10)
            .yaml())
    );
    let spec = format!(
        r#"apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: consume-test}}
spec:
  kafka:
    bootstrapServers: {bootstrap}
    consumer: {{autoOffsetReset: earliest}}
  topic: {{name: {topic}}}
  workload: {{kind: Consume}}
  load:
    steps: [{{constant: {{rate: 1, for: 8s}}}}]
  agents: {{count: 2}}
  report: {{interval: 1s}}
  thresholds: ["errors.count <= 0"]
"#
    );
    assert_eq!(
        p(&spec),
        p(&Spec::new("consume-test", &topic, &bootstrap)
            .kind(Workload::Consume)
            .from_earliest()
            .existing_topic()
            .rate(1)
            .secs(8)
            .agents(2)
            .threshold("errors.count <= 0")
            .yaml())
    );
}

struct Sasl {
    bootstrap: String,
}
fn old_sasl(
    sasl: &Sasl,
    topic: &str,
    mechanism: &str,
    username: Option<&str>,
    credentials: &str,
) -> String {
    let username = username.map_or(String::new(), |u| format!("\n        username: {u}"));
    format!(
        r#"apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: sasl-test}}
spec:
  kafka:
    bootstrapServers: {bootstrap}
    security:
      protocol: SASL_PLAINTEXT
      sasl:
        mechanism: {mechanism}{username}
        credentials: {credentials}
  topic:
    name: {topic}
    create: {{partitions: 2, replicationFactor: 1}}
  workload:
    kind: Produce
    records:
      value: {{size: 100}}
  load:
    steps: [{{constant: {{rate: 200, for: 2s}}}}]
  report: {{interval: 1s}}
"#,
        bootstrap = sasl.bootstrap,
    )
}

fn old_tls(name: &str, bootstrap: &str, topic: &str, security: &str) -> String {
    format!(
        r#"apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: {name}}}
spec:
  kafka:
    bootstrapServers: {bootstrap}
    security:
{security}
  topic:
    name: {topic}
    create: {{partitions: 2, replicationFactor: 1}}
  workload:
    kind: Produce
    records:
      value: {{size: 100}}
  load:
    steps: [{{constant: {{rate: 200, for: 2s}}}}]
  agents: {{count: 1}}
  report: {{interval: 1s}}
"#
    )
}

fn old_ssl(ca: &str, verify_host: bool) -> String {
    format!(
        "      protocol: SSL\n      ssl: {{caLocation: \"{ca}\", endpointIdentification: {verify_host}}}"
    )
}

#[test]
fn security_specs_parse_equal() {
    use barrage_system_tests::spec::{SaslMechanism, Secret};
    let sasl = Sasl {
        bootstrap: "127.0.0.1:9094".into(),
    };
    let t = "topic-n";
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbC".to_string();
    let new = |m, u: Option<&str>, c| {
        Spec::new("sasl-test", t, &sasl.bootstrap)
            .sasl(m, u, c)
            .partitions(2)
            .rate(200)
            .secs(2)
            .yaml()
    };
    assert_eq!(
        p(&old_sasl(
            &sasl,
            t,
            "SCRAM-SHA-256",
            None,
            &format!("{{secretsManagerArn: \"{arn}\"}}")
        )),
        p(&new(
            SaslMechanism::ScramSha256,
            None,
            Secret::SecretsManagerArn(arn.clone())
        ))
    );
    assert_eq!(
        p(&old_sasl(
            &sasl,
            t,
            "PLAIN",
            Some("alice"),
            &format!("{{ssmParameter: \"/pw\"}}")
        )),
        p(&new(
            SaslMechanism::Plain,
            Some("alice"),
            Secret::SsmParameter("/pw".into())
        ))
    );
    let b = "127.0.0.1:9093";
    let nt = |n| Spec::new(n, t, b).partitions(2).rate(200).secs(2);
    for verify in [true, false] {
        assert_eq!(
            p(&old_tls("tls-ssl", b, t, &old_ssl("/tmp/ca.pem", verify))),
            p(&nt("tls-ssl").ssl("/tmp/ca.pem", verify).yaml())
        );
    }
    let security = format!(
        "      protocol: SASL_SSL\n      ssl: {{caLocation: \"{}\"}}\n      sasl:\n        mechanism: SCRAM-SHA-256\n        credentials: {{secretsManagerArn: \"{arn}\"}}",
        "/tmp/ca.pem"
    );
    assert_eq!(
        p(&old_tls("tls-sasl-ssl", b, t, &security)),
        p(&nt("tls-sasl-ssl")
            .ssl("/tmp/ca.pem", true)
            .sasl(
                SaslMechanism::ScramSha256,
                None,
                Secret::SecretsManagerArn(arn)
            )
            .yaml())
    );
}
fn old_iam_sasl(name: &str, bootstrap: &str, secret: &str) -> String {
    format!(
        r#"apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: {name}}}
spec:
  kafka:
    bootstrapServers: "{bootstrap}"
    security:
      protocol: SASL_PLAINTEXT
      sasl: {{mechanism: SCRAM-SHA-256, credentials: {{secretsManagerArn: "{secret}"}}}}
  topic: {{name: {name}, create: {{partitions: 2, replicationFactor: 1}}, cleanup: DeleteIfCreated}}
  workload: {{kind: Produce, records: {{value: {{size: 100}}}}}}
  load: {{steps: [{{constant: {{rate: 100, for: 5s}}}}]}}
  agents: {{count: 2}}
  report: {{interval: 1s}}
"#
    )
}

#[test]
fn iam_sasl_parses_equal() {
    use barrage_system_tests::spec::{SaslMechanism, Secret};
    let (n, b, s) = (
        "n",
        "127.0.0.1:9094",
        "arn:aws:secretsmanager:us-east-1:1:secret:x",
    );
    assert_eq!(
        p(&old_iam_sasl(n, b, s)),
        p(&Spec::new(n, n, b)
            .sasl(
                SaslMechanism::ScramSha256,
                None,
                Secret::SecretsManagerArn(s.to_string())
            )
            .partitions(2)
            .delete_if_created()
            .secs(5)
            .agents(2)
            .yaml())
    );
}

fn old_rt_spec(
    topic: &str,
    bootstrap: &str,
    extra_topic_configs: &str,
    value: &str,
    acks: &str,
) -> String {
    format!(
        r#"apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: rt-test}}
spec:
  kafka:
    bootstrapServers: {bootstrap}
    producer: {{acks: "{acks}", idempotence: {idem}}}
  topic:
    name: {topic}
    create: {{partitions: 3, replicationFactor: 1{extra_topic_configs}}}
  workload:
    kind: RoundTrip
    records:
      value: {value}
  load:
    steps: [{{constant: {{rate: 500, for: 4s}}}}]
  report: {{interval: 1s}}
"#,
        idem = if acks == "all" { "true" } else { "false" },
    )
}

/// A Produce spec for `barrage run`: `rate` records/s for `secs` s, 3 partitions, with the
/// `records` block as given (indented for `workload.records`).
fn old_produce_spec(
    topic: &str,
    bootstrap: &str,
    records: &str,
    rate: u32,
    secs: u32,
    topic_configs: &str,
) -> String {
    format!(
        r#"apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: tx-test}}
spec:
  kafka:
    bootstrapServers: {bootstrap}
    producer: {{acks: all, idempotence: true}}
  topic:
    name: {topic}
    create: {{partitions: 3, replicationFactor: 1{topic_configs}}}
  workload:
    kind: Produce
    records:
{records}
  load:
    steps: [{{constant: {{rate: {rate}, for: {secs}s}}}}]
  report: {{interval: 1s}}
"#
    )
}

/// Values of 100-1 400 bytes in transactions of 5.
const ABORT_RECORDS: &str = "      value: {uniformSize: {min: 100, max: 1400}}\n      recordsPerTransaction: 5\n      transactional: true";

#[test]
fn engine_and_values_specs_parse_equal() {
    use barrage_system_tests::spec::{Acks, Value, Workload};
    let (topic, bootstrap) = ("topic-n".to_string(), "127.0.0.1:9092".to_string());
    let rt = |value, acks| {
        Spec::new("rt-test", &topic, &bootstrap)
            .kind(Workload::RoundTrip)
            .acks(acks)
            .idempotence(acks == Acks::All)
            .partitions(3)
            .value(value)
            .rate(500)
            .secs(4)
    };
    assert_eq!(
        p(&old_rt_spec(&topic, &bootstrap, "", "{size: 200}", "all")),
        p(&rt(Value::Size(200), Acks::All).yaml())
    );
    let old = old_rt_spec(
        &topic,
        &bootstrap,
        ", configs: {max.message.bytes: \"1000\"}",
        "{uniformSize: {min: 300, max: 1500}}",
        "0",
    )
    .replace("acks: \"0\"", "acks: \"0\", linger: 0ms, batchSize: 1");
    let new = rt(
        Value::UniformSize {
            min: 300,
            max: 1500,
        },
        Acks::None,
    )
    .linger_ms(0)
    .batch_size(1)
    .topic_config("max.message.bytes", "1000")
    .yaml();
    assert_eq!(p(&old), p(&new));
    let ps = |rate, secs| {
        Spec::new("tx-test", &topic, &bootstrap)
            .acks(Acks::All)
            .idempotence(true)
            .partitions(3)
            .rate(rate)
            .secs(secs)
    };
    let records =
        "      value: {size: 100}\n      recordsPerTransaction: 10\n      transactional: true";
    assert_eq!(
        p(&old_produce_spec(&topic, &bootstrap, records, 300, 4, "")),
        p(&ps(300, 4)
            .size(100)
            .records_per_transaction(10)
            .transactional()
            .yaml())
    );
    let ab = |s: Spec| {
        s.value(Value::UniformSize {
            min: 100,
            max: 1400,
        })
        .records_per_transaction(5)
        .transactional()
    };
    let old = old_produce_spec(&topic, &bootstrap, ABORT_RECORDS, 250, 4, "").replace(
        "producer: {acks: all, idempotence: true}",
        "producer: {acks: all, idempotence: true, linger: 0ms, properties: {message.max.bytes: \"1000\"}}",
    );
    assert_eq!(
        p(&old),
        p(&ab(ps(250, 4))
            .linger_ms(0)
            .producer_property("message.max.bytes", "1000")
            .yaml())
    );
    let old = old_produce_spec(
        &topic,
        &bootstrap,
        ABORT_RECORDS,
        250,
        4,
        ", configs: {max.message.bytes: \"1000\"}",
    )
    .replace(
        "producer: {acks: all, idempotence: true}",
        "producer: {acks: all, idempotence: true, linger: 0ms, batchSize: 1}",
    );
    assert_eq!(
        p(&old),
        p(&ab(ps(250, 4))
            .topic_config("max.message.bytes", "1000")
            .linger_ms(0)
            .batch_size(1)
            .yaml())
    );
    assert_eq!(
        p(&old_produce_spec(
            &topic,
            &bootstrap,
            "      value: {size: 150}",
            500,
            3,
            ""
        )),
        p(&ps(500, 3).size(150).yaml())
    );
    let text = format!(
        r#"apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: values-json}}
spec:
  kafka:
    bootstrapServers: {bootstrap}
  topic:
    name: {topic}
    create: {{partitions: 3, replicationFactor: 1}}
  workload:
    kind: Produce
    records:
      recordsPerTransaction: 5
      value:
        json:
          template: '{{"id": {{{{seq}}}}, "user": "{{{{uuid}}}}", "score": {{{{int 0 100}}}}, "comment": "{{{{string 10 40}}}}", "at": {{{{timestampMillis}}}}}}'
  load:
    steps: [{{constant: {{rate: 2000, for: 4s}}}}]
  agents: {{count: 2}}
"#
    );
    let template = r#"{"id": {{seq}}, "user": "{{uuid}}", "score": {{int 0 100}}, "comment": "{{string 10 40}}", "at": {{timestampMillis}}}"#;
    let new = Spec::new("values-json", &topic, &bootstrap)
        .partitions(3)
        .records_per_transaction(5)
        .value(Value::Json(template.to_string()))
        .rate(2000)
        .secs(4)
        .agents(2)
        .interval(10)
        .yaml();
    assert_eq!(p(&text), p(&new));
    println!("{new}");
}
