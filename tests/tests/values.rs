//! Record values read back by clients that are not Barrage's (kafka-python, and fastavro for
//! Avro; installed by `scripts/install-tools.sh --readers-only`): a `sequence` / `{{seq}}` is
//! unique across the fleet (two agents) and contiguous, `uuid`s are fresh per record, and the
//! value's `timestampMillis` is the record's intended send time, within the schedule's
//! tolerance of the Kafka timestamp the producer stamped when it actually sent it. More
//! records than the 4 096 values a pre-generated pool held, so a repeating pool fails here.

use std::collections::BTreeSet;
use std::time::Duration;

use barrage_system_tests::spec::{Spec, Value};
use barrage_system_tests::{
    barrage, kafka, python_readers, read_back_with_python, root, summary_count, temp_file, unique,
};

/// What a `barrage run` measured of its own sending: the schedule lag's p99 and max, in ms
/// (rounded up), from the summary's `schedule lag:` line.
struct Lag {
    p99_ms: i64,
    max_ms: i64,
}

/// `barrage run` of `text`, which must send every planned record and drop none. Its verdict
/// may be `Failed` (exit 1: the example's latency thresholds) or `Invalid` (exit 3) only for
/// schedule lag: on this machine's two cores the broker's work on new partitions takes the CPU
/// from the sender now and then (lag p99 55–90 ms seen while a run on an existing topic stays
/// under 0.5 ms), so the lag is read from the summary and the records are checked against it.
/// The generator's own cost is measured by `agent/tests/values_bench.rs` (README, "Values made per record").
fn run_sending_every_record(text: &str, name: &str) -> (String, Lag) {
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
    let only_lag = barrage_system_tests::invalid_reasons(&stdout)
        .iter()
        .all(|r| r.contains("schedule lag p99") || r.contains(": observed "));
    assert!(
        matches!(out.status.code(), Some(0 | 1)) || (out.status.code() == Some(3) && only_lag),
        "barrage run failed or was Invalid for more than schedule lag ({:?}):\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        summary_count(&stdout, "records sent"),
        summary_count(&stdout, "records planned"),
        "every planned record sent"
    );
    assert_eq!(summary_count(&stdout, "records dropped"), 0);
    let lag = schedule_lag(&stdout);
    (stdout, lag)
}

/// The p99 and max of the summary's `schedule lag: p50 50µs  p99 78.97ms … max 108.54ms` line.
fn schedule_lag(stdout: &str) -> Lag {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("schedule lag:"))
        .unwrap_or_else(|| panic!("no schedule lag line in:\n{stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let ms = |key: &str| -> i64 {
        let v = words
            .windows(2)
            .find(|w| w[0] == key)
            .map(|w| w[1])
            .unwrap_or_else(|| panic!("no {key} in {line}"));
        let (number, scale) = if let Some(n) = v.strip_suffix("µs") {
            (n, 0.001)
        } else if let Some(n) = v.strip_suffix("ms") {
            (n, 1.0)
        } else if let Some(n) = v.strip_suffix('s') {
            (n, 1000.0)
        } else {
            panic!("not a duration: {v}")
        };
        let n: f64 = number
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {v}"));
        (n * scale).ceil() as i64
    };
    Lag {
        p99_ms: ms("p99"),
        max_ms: ms("max"),
    }
}

/// Checks the read-back records: `id` is exactly `first..first + n`, `user` UUIDs are all
/// distinct, and `at` (ms) is the intended send time: never after the Kafka timestamp the
/// producer stamped at the actual send, and behind it by what the run measured as its schedule
/// lag at its worst (2 ms for truncation to whole ms on both sides).
fn check(records: &[serde_json::Value], lag: &Lag, n: u64, first: i64, fields: (&str, &str, &str)) {
    let (id, user, at) = fields;
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
        "read back {n} records: ids {first}..{}, {} uuids; Kafka timestamp − {at}: min {earliest} ms, p99 {p99} ms, max {latest} ms; the run's schedule lag p99 {} ms, max {} ms (rounded up)",
        first + n as i64,
        users.len(),
        lag.p99_ms,
        lag.max_ms
    );
    assert!(
        earliest >= -1,
        "a record stamped {earliest} ms after it was sent"
    );
    // Bounded by the run's worst measured lag: under load the transactional JSON run's p99
    // here trailed its measured lag p99 by 3–4 ms (107–111 vs 111–114 ms), a gap not yet
    // explained, while no record ever trailed by more than the measured max.
    assert!(
        p99 <= lag.max_ms + 2 && latest <= lag.max_ms + 2,
        "{at} is not the intended send time: Kafka timestamp − {at} p99 {p99} ms, max {latest} ms, beyond the run's schedule lag"
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
    let (stdout, lag) = run_sending_every_record(&text, "values-avro.yaml");
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
    check(&records, &lag, acked, 1, ("id", "customer", "createdAt"));
}

#[test]
fn json_values_read_back_with_kafka_python_are_unique_fleet_wide_and_carry_their_intended_time() {
    let Some(bootstrap) = kafka() else { return };
    let Some(python) = python_readers() else {
        return;
    };
    let topic = unique("barrage-it-values-json");
    // The template of the SASL example, two agents, five records per intended send time.
    let template = r#"{"id": {{seq}}, "user": "{{uuid}}", "score": {{int 0 100}}, "comment": "{{string 10 40}}", "at": {{timestampMillis}}}"#;
    let text = Spec::new("values-json", &topic, &bootstrap)
        .partitions(3)
        .records_per_transaction(5)
        .value(Value::Json(template.to_string()))
        .rate(2000)
        .secs(4)
        .agents(2)
        .interval(10)
        .yaml();
    let (stdout, lag) = run_sending_every_record(&text, "values-json.yaml");
    let acked = summary_count(&stdout, "records acked");
    assert_eq!(acked, 8_000);
    let records = read_back_with_python(&python, &bootstrap, &topic, acked, &["--json"]);
    check(&records, &lag, acked, 0, ("id", "user", "at"));
}
