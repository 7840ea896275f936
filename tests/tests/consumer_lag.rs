//! Consumer lag (issue 15.3) against the real broker: a Consume run over a backlog it cannot
//! drain, held back by a broker quota Barrage cannot see, reports the group's lag per interval
//! and per partition at the end, and the partitions' lag is what Kafka's own
//! `kafka-consumer-groups` tool reads for the group once the run is over. Also the backlog
//! and its drain (issue 15.2), run-scoped groups (16.3) and records per partition (16.3), each
//! checked with Kafka's own tools or a reader of the topic.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use barrage_system_tests::spec::Spec;
use barrage_system_tests::{barrage_run, kafka, root, run_bounded, temp_file, unique};

/// Records in the backlog, and the bytes per second the quota lets the consumer read: about
/// 22 s of draining, far longer than the Consume run.
const BACKLOG_RATE: u32 = 4_000;
const BACKLOG_SECS: u32 = 3;
const QUOTA_BYTES_PER_SEC: u32 = 20_000;

/// The classpath of the project's Kafka jars (`scripts/services.sh classpath`).
fn kafka_classpath() -> String {
    let out = run_bounded(
        Command::new(root().join("scripts/services.sh")).arg("classpath"),
        Duration::from_secs(300),
    );
    assert!(out.status.success(), "services.sh classpath: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs one of Kafka's command-line tools and returns its stdout.
fn kafka_tool(classpath: &str, class: &str, args: &[&str]) -> String {
    let out = run_bounded(
        Command::new("java")
            .args(["-Xmx256m", "-cp", classpath, class])
            .args(args),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{class} {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The group's lag per partition as `kafka-consumer-groups --describe` prints it (columns
/// GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG …); partitions without a committed
/// offset (`-`) are left out.
fn group_lag(classpath: &str, bootstrap: &str, group: &str) -> BTreeMap<u32, u64> {
    let text = kafka_tool(
        classpath,
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &[
            "--bootstrap-server",
            bootstrap,
            "--describe",
            "--group",
            group,
        ],
    );
    text.lines()
        .filter(|l| l.starts_with(group))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Some((cols.get(2)?.parse().ok()?, cols.get(5)?.parse().ok()?))
        })
        .collect()
}

fn consume_spec(bootstrap: &str, topic: &str, group: &str, client: &str) -> String {
    format!(
        r#"apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: lag-test}}
spec:
  kafka:
    bootstrapServers: {bootstrap}
    consumer:
      autoOffsetReset: earliest
      groupId: {group}
      properties: {{client.id: {client}}}
  topic: {{name: {topic}}}
  workload: {{kind: Consume}}
  load:
    steps: [{{constant: {{rate: 1, for: 6s}}}}]
  report: {{interval: 1s}}
  thresholds: ["consumer_lag.max > 0"]
"#
    )
}

fn read_report(out_dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).expect("report.json"))
        .expect("report.json is JSON")
}

#[test]
fn a_throttled_consumer_reports_the_lag_kafka_sees() {
    let Some(bootstrap) = kafka() else { return };
    let topic = unique("barrage-it-lag");
    let backlog = Spec::new("lag-backlog", &topic, &bootstrap)
        .rate(BACKLOG_RATE)
        .secs(BACKLOG_SECS)
        .partitions(3)
        .yaml();
    let (out, backlog_dir) = barrage_run(
        &temp_file("backlog.yaml", &backlog),
        &[],
        Duration::from_secs(120),
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1 | 3)),
        "the backlog run: {out:?}"
    );
    let backlog = read_report(&backlog_dir)["summary"]["records"]["acked"]
        .as_u64()
        .expect("acked");

    let classpath = kafka_classpath();
    let client = unique("barrage-lag-client");
    let quota = format!("consumer_byte_rate={QUOTA_BYTES_PER_SEC}");
    kafka_tool(
        &classpath,
        "org.apache.kafka.tools.ConfigCommand",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--alter",
            "--add-config",
            &quota,
            "--entity-type",
            "clients",
            "--entity-name",
            &client,
        ],
    );

    let group = unique("barrage-lag-group");
    let spec = temp_file(
        "lag.yaml",
        &consume_spec(&bootstrap, &topic, &group, &client),
    );
    let (out, out_dir) = barrage_run(&spec, &[], Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("  consumer lag      max "), "{stdout}");
    let report = read_report(&out_dir);
    let lag = &report["summary"]["consumerLag"];
    let consumed = report["summary"]["records"]["consumed"]
        .as_u64()
        .expect("consumed");
    println!("consumed {consumed} of {backlog}; consumerLag {lag}");
    assert!(
        consumed > 0 && consumed < backlog,
        "the quota held the consumer back"
    );

    // Where the group stood at the end, read by Kafka's own tool from the committed offsets.
    let kafka_lag = group_lag(&classpath, &bootstrap, &group);
    let reported: BTreeMap<u32, u64> =
        serde_json::from_value(lag["lastByPartition"].clone()).expect("lastByPartition");
    println!("kafka-consumer-groups lag {kafka_lag:?}, reported {reported:?}");
    assert!(!kafka_lag.is_empty(), "the group committed its positions");
    for (partition, records) in &kafka_lag {
        assert_eq!(
            reported.get(partition),
            Some(records),
            "partition {partition}: reported {reported:?}, Kafka {kafka_lag:?}"
        );
    }
    // The lag left is the backlog less what was consumed (partitions Kafka lists).
    let left: u64 = kafka_lag.values().sum();
    assert!(left > 0, "{kafka_lag:?}");
    let max = lag["max"].as_u64().expect("max");
    assert!(max >= left && max <= backlog, "max {max}, left {left}");
    // Nothing was produced meanwhile: every record not consumed is behind, partition by
    // partition, and the lags add up to exactly that.
    assert_eq!(
        reported.values().sum::<u64>(),
        backlog - consumed,
        "{reported:?}"
    );
    assert!(lag["intervals"].as_u64().expect("intervals") >= 3, "{lag}");
    let series: Vec<u64> = report["intervals"]
        .as_array()
        .expect("intervals")
        .iter()
        .filter_map(|i| i["consumerLag"].as_u64())
        .collect();
    assert_eq!(series.iter().max(), Some(&max), "{series:?}");
    // The threshold was judged on the same figure.
    let check = &report["thresholds"][0]["run"];
    assert_eq!(check["observed"].as_f64(), Some(max as f64), "{check}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).expect("report.html");
    assert!(
        html.contains("<h2>Consumer lag</h2>"),
        "the report shows it"
    );
}

fn run_id(out_dir: &Path) -> String {
    read_report(out_dir)["runId"]
        .as_str()
        .expect("runId")
        .to_string()
}

/// Every consumer group the broker lists.
fn groups(classpath: &str, bootstrap: &str) -> Vec<String> {
    kafka_tool(
        classpath,
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &["--bootstrap-server", bootstrap, "--list"],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn no_consumer_group_outlives_its_run() {
    let Some(bootstrap) = kafka() else { return };
    let topic = unique("barrage-it-groups");
    let backlog = Spec::new("groups-backlog", &topic, &bootstrap)
        .rate(500)
        .secs(2)
        .partitions(3)
        .yaml();
    let (out, _) = barrage_run(
        &temp_file("backlog.yaml", &backlog),
        &[],
        Duration::from_secs(120),
    );
    assert!(matches!(out.status.code(), Some(0 | 1 | 3)), "{out:?}");
    // A Consume run of two agents in the group named after the run (no groupId), and a
    // RoundTrip run whose readers place themselves.
    let consume = format!(
        "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: groups-consume}}
spec:
  kafka:
    bootstrapServers: {bootstrap}
    consumer: {{autoOffsetReset: earliest}}
  topic: {{name: {topic}}}
  workload: {{kind: Consume}}
  load: {{steps: [{{constant: {{rate: 1, for: 4s}}}}]}}
  agents: {{count: 2}}
  report: {{interval: 1s}}
"
    );
    let round_trip = format!(
        "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: groups-round-trip}}
spec:
  kafka: {{bootstrapServers: {bootstrap}}}
  topic: {{name: {topic}}}
  workload: {{kind: RoundTrip}}
  load: {{steps: [{{constant: {{rate: 100, for: 2s}}}}]}}
  agents: {{count: 2}}
  report: {{interval: 1s}}
"
    );
    let mut runs = Vec::new();
    for (file, text) in [("consume.yaml", consume), ("round-trip.yaml", round_trip)] {
        let (out, dir) = barrage_run(&temp_file(file, &text), &[], Duration::from_secs(120));
        assert!(
            matches!(out.status.code(), Some(0 | 1 | 3)),
            "{file}: {out:?}"
        );
        let report = read_report(&dir);
        assert!(
            report["summary"]["records"]["consumed"].as_u64() > Some(0),
            "{file}: {}",
            report["summary"]["records"]
        );
        runs.push(run_id(&dir));
    }
    let classpath = kafka_classpath();
    let left: Vec<String> = groups(&classpath, &bootstrap)
        .into_iter()
        .filter(|g| runs.iter().any(|r| g.contains(r.as_str())))
        .collect();
    println!("runs {runs:?}: groups left {left:?}");
    assert!(left.is_empty(), "groups outlived their runs: {left:?}");
}

/// A Consume spec for two agents on a 3-partition topic it creates, `size`-byte values,
/// 1 s intervals: `backlog` and `step` are YAML flow mappings of `workload.backlog` and the
/// load's one step, `thresholds` the items of the list.
fn backlog_spec(
    (name, bootstrap, topic): (&str, &str, &str),
    size: u32,
    backlog: &str,
    step: &str,
    thresholds: &str,
) -> String {
    format!(
        "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: {name}}}
spec:
  kafka:
    bootstrapServers: {bootstrap}
    consumer: {{autoOffsetReset: earliest}}
  topic: {{name: {topic}, create: {{partitions: 3, replicationFactor: 1}}}}
  workload:
    kind: Consume
    records: {{value: {{size: {size}}}}}
    backlog: {backlog}
  load: {{steps: [{{constant: {step}}}]}}
  agents: {{count: 2}}
  report: {{interval: 1s}}
  thresholds: [{thresholds}]
"
    )
}

/// Issue 15.2: a backlog written before the start, drained by a group of two agents.
#[test]
fn a_backlog_is_written_before_the_start_and_its_drain_is_timed() {
    let Some(bootstrap) = kafka() else { return };
    let topic = unique("barrage-it-backlog");
    let backlog: u64 = 30_001;
    let spec = backlog_spec(
        ("backlog-drain", &bootstrap, &topic),
        120,
        &format!("{{records: {backlog}}}"),
        "{rate: 1, for: 8s}",
        &format!("\"drain.seconds < 8\", \"consume.rate > 0\", \"consumer_lag.max <= {backlog}\""),
    );
    let (out, dir) = barrage_run(
        &temp_file("backlog.yaml", &spec),
        &[],
        Duration::from_secs(180),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // From outside: the topic holds exactly the backlog, and the group read all of it.
    let stored =
        barrage_system_tests::count_records(&bootstrap, &topic, backlog, Duration::from_secs(60));
    let report = read_report(&dir);
    let drain = &report["summary"]["drain"];
    println!(
        "stored {stored}; drain {drain}; lag {}",
        report["summary"]["consumerLag"]
    );
    assert_eq!(
        stored, backlog,
        "the agents wrote their shares exactly once"
    );
    assert_eq!(
        report["summary"]["records"]["consumed"].as_u64(),
        Some(backlog)
    );
    assert_eq!(drain["backlogRecords"].as_u64(), Some(backlog));
    assert_eq!(drain["consumedRecords"].as_u64(), Some(backlog), "{drain}");
    let seconds = drain["seconds"].as_f64().expect("it drained");
    let interval = drain["drainedInterval"].as_u64().expect("drainedInterval");
    assert_eq!(seconds, (interval + 1) as f64, "1 s intervals: {drain}");
    let rate = drain["rate"].as_f64().expect("rate");
    assert!((rate - backlog as f64 / seconds).abs() < 0.01, "{drain}");
    // Before the drain the lag was the backlog less what was read; at the end, nothing.
    let series: Vec<u64> = report["intervals"]
        .as_array()
        .expect("intervals")
        .iter()
        .filter_map(|i| i["consumerLag"].as_u64())
        .collect();
    assert_eq!(series.get(interval as usize), Some(&0), "{series:?}");
    assert!(
        stdout.contains("  backlog drain     30,001 records drained in"),
        "{stdout}"
    );
    let observed: Vec<f64> = report["thresholds"]
        .as_array()
        .expect("thresholds")
        .iter()
        .filter_map(|t| t["run"]["observed"].as_f64())
        .collect();
    assert_eq!(observed.first(), Some(&seconds), "{}", report["thresholds"]);
}

/// Issue 15.2, under load: the agents keep producing at the load's rate while the group
/// drains the backlog, and the drain counts once the lag is at most `caughtUp`.
#[test]
fn a_backlog_drains_under_load() {
    let Some(bootstrap) = kafka() else { return };
    let topic = unique("barrage-it-backlog-load");
    let backlog: u64 = 20_000;
    let spec = backlog_spec(
        ("backlog-load", &bootstrap, &topic),
        100,
        &format!("{{records: {backlog}, underLoad: true, caughtUp: 2000}}"),
        "{rate: 1000, for: 6s}",
        "\"drain.seconds < 6\", \"produce.p99 < 2s\", \"consume.rate > 0\"",
    );
    let (out, dir) = barrage_run(
        &temp_file("load.yaml", &spec),
        &[],
        Duration::from_secs(180),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&dir);
    let records = &report["summary"]["records"];
    let acked = records["acked"].as_u64().expect("acked");
    let consumed = records["consumed"].as_u64().expect("consumed");
    let stored = barrage_system_tests::count_records(
        &bootstrap,
        &topic,
        backlog + acked,
        Duration::from_secs(60),
    );
    let drain = &report["summary"]["drain"];
    println!("acked {acked}, consumed {consumed}, stored {stored}; drain {drain}");
    assert_eq!(
        stored,
        backlog + acked,
        "the backlog and every acked record, once"
    );
    assert!(
        acked >= 5_000,
        "the producers wrote at the load's rate meanwhile: {acked}"
    );
    assert!(consumed >= backlog && consumed <= stored, "{records}");
    assert!(drain["seconds"].as_f64().is_some(), "it caught up: {drain}");
    assert_eq!(drain["caughtUp"].as_u64(), Some(2_000));
    assert!(report["summary"]["latency"]["produce"]["count"].as_u64() >= Some(5_000));
    assert_eq!(report["settings"]["backlogUnderLoad"], true);
}

/// Issue 15.2 under the local operator: the controller's agents write the backlog before
/// Ready and the merged report times the drain.
#[test]
fn a_backlog_drains_under_the_controller() {
    let (Some(bootstrap), Some(_)) = (kafka(), barrage_system_tests::aws_endpoint()) else {
        return;
    };
    let op = barrage_system_tests::operator::Operator::start("backlog");
    let name = unique("e2e-backlog");
    let topic = unique("barrage-e2e-backlog");
    let backlog: u64 = 9_001;
    let spec = format!(
        "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: {name}}}
spec:
  kafka:
    bootstrapServers: {bootstrap}
    consumer: {{autoOffsetReset: earliest}}
  topic: {{name: {topic}, create: {{partitions: 3, replicationFactor: 1}}, cleanup: DeleteIfCreated}}
  workload:
    kind: Consume
    backlog: {{records: {backlog}}}
  load: {{steps: [{{constant: {{rate: 1, for: 6s}}}}]}}
  agents: {{count: 2}}
  report: {{interval: 1s}}
  thresholds: [\"drain.seconds < 6\"]
"
    );
    let file = op.dir.join("backlog.yaml");
    std::fs::write(&file, spec).expect("spec file");
    op.apply_wait(&file, Duration::from_secs(150), 0);
    let status = op.wait_terminal(&name, Duration::from_secs(30));
    let run = status["runId"].as_str().expect("a run id").to_string();
    let report = barrage_system_tests::operator::report_json(&op, &name, &run);
    let drain = &report["summary"]["drain"];
    println!(
        "operator backlog: drain {drain}; records {}",
        report["summary"]["records"]
    );
    assert_eq!(
        report["summary"]["records"]["consumed"].as_u64(),
        Some(backlog)
    );
    assert_eq!(drain["backlogRecords"].as_u64(), Some(backlog));
    assert_eq!(drain["consumedRecords"].as_u64(), Some(backlog));
    assert!(drain["seconds"].as_f64().is_some(), "{drain}");
    assert_eq!(status["verdict"]["result"], "Passed", "{status}");
}

/// Issue 16.3: records per partition in the report are what each partition of a fresh topic
/// holds, as Kafka's `GetOffsetShell` reads its end offsets; zipf keys make them uneven.
#[test]
fn records_per_partition_are_what_each_partition_holds() {
    let Some(bootstrap) = kafka() else { return };
    let topic = unique("barrage-it-partitions");
    let spec = format!(
        "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: partitions}}
spec:
  kafka: {{bootstrapServers: {bootstrap}}}
  topic: {{name: {topic}, create: {{partitions: 6, replicationFactor: 1}}}}
  workload:
    kind: Produce
    records:
      value: {{size: 50}}
      key: {{distribution: zipf, cardinality: 50, exponent: 1.5}}
  load: {{steps: [{{constant: {{rate: 1000, for: 3s}}}}]}}
  agents: {{count: 2}}
  report: {{interval: 1s}}
"
    );
    let (out, dir) = barrage_run(
        &temp_file("partitions.yaml", &spec),
        &[],
        Duration::from_secs(120),
    );
    assert!(matches!(out.status.code(), Some(0 | 3)), "{out:?}");
    let report = read_report(&dir);
    let parts = &report["summary"]["partitions"];
    let reported: BTreeMap<u64, u64> = parts["byPartition"]
        .as_array()
        .expect("byPartition")
        .iter()
        .filter_map(|p| Some((p["partition"].as_u64()?, p["records"].as_u64()?)))
        .collect();
    let text = kafka_tool(
        &kafka_classpath(),
        "org.apache.kafka.tools.GetOffsetShell",
        &["--bootstrap-server", &bootstrap, "--topic", &topic],
    );
    // Lines "topic:partition:end-offset"; a fresh topic's end offset is its record count.
    let stored: BTreeMap<u64, u64> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.rsplitn(3, ':');
            let end = f.next()?.parse().ok()?;
            let partition = f.next()?.parse().ok()?;
            Some((partition, end))
        })
        .filter(|(_, end)| *end > 0)
        .collect();
    println!(
        "reported {reported:?}; GetOffsetShell {stored:?}; skew {}",
        parts["skew"]
    );
    assert_eq!(reported, stored);
    let acked = report["summary"]["records"]["acked"]
        .as_u64()
        .expect("acked");
    assert_eq!(reported.values().sum::<u64>(), acked);
    assert!(
        parts["skew"].as_f64() > Some(1.2),
        "zipf keys are uneven: {parts}"
    );
    let bytes: u64 = parts["byPartition"]
        .as_array()
        .expect("byPartition")
        .iter()
        .filter_map(|p| p["bytes"].as_u64())
        .sum();
    assert_eq!(
        bytes,
        report["summary"]["records"]["bytes"]
            .as_u64()
            .expect("bytes")
    );
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(html.contains("<h2>Partitions</h2>"));
}
