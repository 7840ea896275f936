//! Record values read back by clients that are not Barrage's (kafka-python, and fastavro for
//! Avro; installed by `scripts/install-tools.sh --readers-only`): a `sequence` / `{{seq}}` is
//! unique across the fleet (two agents) and contiguous, `uuid`s are fresh per record, and the
//! value's `timestampMillis` is the record's intended send time, within the schedule's
//! tolerance of the Kafka timestamp the producer stamped when it actually sent it. More
//! records than the 4 096 values a pre-generated pool held, so a repeating pool fails here.

use std::collections::BTreeSet;
use std::time::Duration;

use barrage_system_tests::{
    barrage, kafka, python_readers, read_back_with_python, root, summary_count, temp_file, unique,
};

/// The verdict's bound on schedule lag p99 (a run past it is `Invalid`), in ms.
const LAG_TOLERANCE_MS: i64 = 50;

/// `barrage run` of `text`: it must finish with a verdict that is not `Invalid` (exit 0 or 1),
/// i.e. the generator kept up with the schedule.
fn run_holding_the_rate(text: &str, name: &str) -> String {
    let spec = temp_file(name, text);
    let out_dir = spec.with_file_name("out");
    let out = barrage(
        &[
            "run",
            spec.to_str().expect("utf-8 path"),
            "--out",
            out_dir.to_str().expect("utf-8 path"),
        ],
        Duration::from_secs(180),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "barrage run failed or was Invalid ({:?}):\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Checks the read-back records: `id` is exactly `first..first + n`, `user` UUIDs are all
/// distinct, and `at` (ms) lies within the lag tolerance before the Kafka timestamp.
fn check(records: &[serde_json::Value], n: u64, first: i64, id: &str, user: &str, at: &str) {
    assert_eq!(records.len() as u64, n, "every record read back once");
    let number = |v: &serde_json::Value| -> i64 {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or_else(|| panic!("not a number: {v}"))
    };
    let ids: BTreeSet<i64> = records.iter().map(|r| number(&r["value"][id])).collect();
    let expected: BTreeSet<i64> = (first..first + n as i64).collect();
    assert_eq!(ids.len() as u64, n, "ids are unique across the fleet");
    assert_eq!(
        ids, expected,
        "ids are the fleet-wide send index, without gaps"
    );
    let users: BTreeSet<&str> = records
        .iter()
        .map(|r| r["value"][user].as_str().expect("a uuid string"))
        .collect();
    assert_eq!(users.len() as u64, n, "uuids are fresh per record");
    let mut late: Vec<i64> = records
        .iter()
        .map(|r| number(&r["timestamp"]) - number(&r["value"][at]))
        .collect();
    late.sort_unstable();
    let (earliest, p99, latest) = (late[0], late[late.len() * 99 / 100], late[late.len() - 1]);
    println!(
        "read back {n} records: ids {first}..{}, {} uuids; Kafka timestamp − timestampMillis: min {earliest} ms, p99 {p99} ms, max {latest} ms",
        first + n as i64,
        users.len()
    );
    // The intended time is never after the send (1 ms for truncation to whole ms on both
    // sides), and the send follows it within the schedule's tolerance.
    assert!(
        earliest >= -1,
        "a record stamped {earliest} ms after it was sent"
    );
    assert!(
        p99 <= LAG_TOLERANCE_MS,
        "p99 {p99} ms between intended and actual send"
    );
}

#[test]
fn avro_values_read_back_with_fastavro_are_unique_fleet_wide_and_carry_their_intended_time() {
    let Some(bootstrap) = kafka() else { return };
    let Some(python) = python_readers() else {
        return;
    };
    let topic = unique("barrage-it-values-avro");
    let example = std::fs::read_to_string(root().join("crds/examples/avro-produce.yaml"))
        .expect("the Avro example exists");
    // The example's schema, generators and two agents, at a test-sized load.
    let text = example
        .replace("orders-avro", &topic)
        .replace("127.0.0.1:9092", &bootstrap)
        .replace(
            "      - ramp: {from: 0, to: 20000, over: 1m}\n      - constant: {rate: 20000, for: 5m}",
            "      - constant: {rate: 2500, for: 4s}",
        )
        .replace("cleanup: DeleteIfCreated", "cleanup: Keep");
    assert!(
        text.contains("rate: 2500") && text.contains("count: 2"),
        "the example changed: update this test"
    );
    let stdout = run_holding_the_rate(&text, "values-avro.yaml");
    let acked = summary_count(&stdout, "records acked");
    assert_eq!(acked, 10_000);
    let lt = barrage_crds::loadtest::LoadTest::from_yaml(&text).expect("the spec parses");
    let barrage_crds::spec::ValueSpec::Avro(avro) = &lt.spec.workload.records.value else {
        panic!("the example has Avro values");
    };
    let schema = temp_file("order.avsc", avro.schema.as_deref().expect("inline schema"));
    let schema = schema.to_str().expect("utf-8 path");
    let records = read_back_with_python(
        &python,
        &bootstrap,
        &topic,
        acked,
        &["--avro", schema, "--confluent"],
    );
    check(&records, acked, 1, "id", "customer", "createdAt");
}

#[test]
fn json_values_read_back_with_kafka_python_are_unique_fleet_wide_and_carry_their_intended_time() {
    let Some(bootstrap) = kafka() else { return };
    let Some(python) = python_readers() else {
        return;
    };
    let topic = unique("barrage-it-values-json");
    // The template of the SASL example, two agents, five records per intended send time.
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
    let stdout = run_holding_the_rate(&text, "values-json.yaml");
    let acked = summary_count(&stdout, "records acked");
    assert_eq!(acked, 8_000);
    let records = read_back_with_python(&python, &bootstrap, &topic, acked, &["--json"]);
    check(&records, acked, 0, "id", "user", "at");
}
