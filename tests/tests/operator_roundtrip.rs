//! RoundTrip under the operator: a controller with the process launcher runs two
//! `barrage-agent` processes against the real broker and the AWS emulator; each agent sends
//! sequence-numbered records and consumes its own back, and uploads its end-to-end histograms
//! and loss / duplicate / reorder counters with its intervals, so the merged report has them.
//!
//! Consume under the operator too: two agents in one consumer group read a topic of known
//! content, and the merged report counts exactly its records with their end-to-end latency.
//!
//! The operator set-up is [`barrage_system_tests::operator::Operator`], shared with
//! `operator_e2e.rs` and `soak.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use barrage_system_tests::operator::{Operator, report_json, text};
use barrage_system_tests::spec::{Spec, Workload};
use barrage_system_tests::{aws_endpoint, kafka, summary_per_partition, unique};

/// Two RoundTrip agents at 200 records/s of 200 bytes for 5 s on their own topic, deleted at
/// the end, that must lose and duplicate nothing.
fn round_trip_spec(name: &str, topic: &str, bootstrap: &str) -> String {
    Spec::new(name, topic, bootstrap)
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
        .yaml()
}

#[test]
fn round_trip_under_the_controller_loses_nothing_and_reports_end_to_end_latency() {
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let op = Operator::start("rt");
    let name = unique("e2e-rt");
    let topic = unique("barrage-e2e-rt");
    let file = op.dir.join("rt.yaml");
    std::fs::write(&file, round_trip_spec(&name, &topic, &bootstrap)).expect("spec file");
    op.apply_wait(&file, Duration::from_secs(150), 0);
    let status = op.wait_terminal(&name, Duration::from_secs(30));
    assert!(
        barrage_system_tests::operator::succeeded_or_lag_only(&status),
        "{status}"
    );
    let run = status["runId"].as_str().expect("a run id").to_string();
    let report = report_json(&op, &name, &run);
    let records = &report["summary"]["records"];
    let acked = records["acked"].as_u64().expect("acked");
    let consumed = records["consumed"].as_u64().expect("consumed");
    let lost = records["lost"].as_u64().expect("lost");
    let duplicated = records["duplicated"].as_u64().expect("duplicated");
    let e2e = &report["summary"]["latency"]["e2e"];
    let per_agent: Vec<String> = report["agents"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| format!("slot {}: {}", x["slot"], x["records"]["consumed"]))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "operator round trip: acked {acked} consumed {consumed} lost {lost} duplicated {duplicated} reordered {}; e2e count {} p50 {} µs p99 {} µs; status e2eP99Us {}; per agent consumed: {}",
        records["reordered"],
        e2e["count"],
        e2e["p50"],
        e2e["p99"],
        status["summary"]["e2eP99Us"],
        per_agent.join(", ")
    );
    assert_eq!(acked, 1_000, "200/s for 5 s across 2 agents");
    assert_eq!((consumed, lost, duplicated), (1_000, 0, 0));
    // Kafka orders records within a partition; records of the three partitions interleaving
    // is not reordering (it counted 33 here before reordering was tracked per partition).
    assert_eq!(records["reordered"].as_u64(), Some(0), "{records}");
    assert_eq!(
        e2e["count"].as_u64(),
        Some(consumed),
        "one end-to-end latency per record consumed back"
    );
    assert!(e2e["p99"].as_u64().unwrap_or(0) > 0);
    assert!(
        status["summary"]["e2eP99Us"].as_u64().is_some(),
        "the status summary carries the e2e p99: {status}"
    );
    assert_eq!(report["agents"].as_array().map(Vec::len), Some(2));

    // `cleanup: DeleteIfCreated` and an agent of this run created the topic: the controller
    // deletes it once every agent is gone.
    assert_eq!(status["topicCreated"], true, "{status}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut exists = topic_exists(&bootstrap, &topic);
    while exists && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        exists = topic_exists(&bootstrap, &topic);
    }
    println!(
        "operator round trip: topic {topic} created by the run; after Succeeded it {}",
        if exists { "still exists" } else { "is deleted" }
    );
    assert!(
        !exists,
        "the topic this run created is deleted: {status}\n{}",
        op.controller_log()
    );
}

/// Whether the broker's metadata lists `topic`.
fn topic_exists(bootstrap: &str, topic: &str) -> bool {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("allow.auto.create.topics", "false")
        .create()
        .expect("a metadata client");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata from the broker");
    metadata.topics().iter().any(|t| t.name() == topic)
}

#[test]
fn consume_under_the_controller_reads_exactly_the_records_in_the_topic() {
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let op = Operator::start("consume");
    let name = unique("e2e-consume");
    let topic = unique("barrage-e2e-consume");
    // 1 200 records first, with `barrage run` (in-process, no operator). The topic must
    // outlive this run: no `cleanup: DeleteIfCreated` here.
    let produce = Spec::new(&name, &topic, &bootstrap)
        .partitions(3)
        .size(200)
        .rate(400)
        .secs(3)
        .yaml();
    let pfile = op.dir.join("produce.yaml");
    std::fs::write(&pfile, produce).expect("spec file");
    let out = op.barrage(
        &[
            "run",
            pfile.to_str().unwrap(),
            "--out",
            op.dir.join("produce-out").to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "produce: {}",
        text(&out)
    );
    let expected = 1_200u64;
    let produced_per_partition = summary_per_partition(&String::from_utf8_lossy(&out.stdout));

    // Then two Consume agents in one group, from the earliest offset.
    let consume = Spec::new(&name, &topic, &bootstrap)
        .kind(Workload::Consume)
        .from_earliest()
        .existing_topic()
        .rate(1)
        .secs(8)
        .agents(2)
        .threshold("errors.count <= 0")
        .yaml();
    let cfile = op.dir.join("consume.yaml");
    std::fs::write(&cfile, consume).expect("spec file");
    op.apply_wait(&cfile, Duration::from_secs(150), 0);
    let status = op.wait_terminal(&name, Duration::from_secs(30));
    assert!(
        barrage_system_tests::operator::succeeded_or_lag_only(&status),
        "{status}"
    );
    let run = status["runId"].as_str().expect("a run id").to_string();
    let report = report_json(&op, &name, &run);
    let records = &report["summary"]["records"];
    let e2e = &report["summary"]["latency"]["e2e"];
    let per_agent: Vec<String> = report["agents"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| format!("slot {}: {}", x["slot"], x["records"]["consumed"]))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "operator consume: in the topic {expected}, consumed {} ({} bytes), errors {}; e2e count {} p50 {} µs; per agent consumed: {}",
        records["consumed"],
        records["bytes"],
        records["errors"],
        e2e["count"],
        e2e["p50"],
        per_agent.join(", ")
    );
    assert_eq!(report["settings"]["workload"], "Consume");
    assert_eq!(records["consumed"].as_u64(), Some(expected));
    assert_eq!(records["bytes"].as_u64(), Some(expected * 200));
    assert_eq!(e2e["count"].as_u64(), Some(expected));
    assert!(report["summary"]["consumedRate"].as_f64().unwrap_or(0.0) > 0.0);
    // Each agent joins the group before it reports Ready and holds its partitions until
    // startAt: the three partitions are split between the two members before anything is read.
    let consumed_per_agent: Vec<u64> = report["agents"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["records"]["consumed"].as_u64())
                .collect()
        })
        .unwrap_or_default();
    println!("operator consume: produced per partition {produced_per_partition:?}");
    assert_eq!(consumed_per_agent.len(), 2, "{}", report["agents"]);
    // The group read the whole topic: at the end no partition it held is behind (the lag the
    // agents sampled, merged by the controller).
    let lag = &report["summary"]["consumerLag"];
    let end = lag["lastByPartition"]
        .as_object()
        .expect("consumerLag.lastByPartition");
    println!("operator consume: consumer lag {lag}");
    assert!(!end.is_empty(), "{lag}");
    assert!(end.values().all(|l| l.as_u64() == Some(0)), "{lag}");
    if produced_per_partition.len() == 3 && produced_per_partition.iter().all(|&n| n > 0) {
        assert!(
            consumed_per_agent.iter().all(|&n| n > 0),
            "both members read part of the topic: {consumed_per_agent:?}"
        );
    }
}

/// The status of `name` once `done` holds for it (bounded).
fn wait_status(
    op: &Operator,
    name: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let status = op.get(name)["status"].clone();
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen within {limit:?}: {status}\n{}",
            op.controller_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_controller_killed_between_the_delete_intent_and_the_delete_deletes_the_topic_after_restart() {
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    // The spec's bootstrap goes through a gate: the agents connect while it is open; closed,
    // the controller's DeleteTopic cannot reach the broker, so its kill lands after the intent
    // and before any deletion, every time.
    let gate = barrage_system_tests::fault::TcpGate::start(&bootstrap);
    let mut op = Operator::start("tkill");
    let name = unique("e2e-tkill");
    let topic = unique("barrage-e2e-tkill");
    let spec = Spec::new(&name, &topic, &gate.addr())
        .partitions(3)
        .delete_if_created()
        .size(200)
        .rate(200)
        .secs(5)
        .agents(2)
        .threshold("errors.count <= 0")
        .yaml();
    assert!(spec.contains("cleanup: DeleteIfCreated") && spec.contains("errors.count"));
    let file = op.dir.join("tkill.yaml");
    std::fs::write(&file, spec).expect("spec file");
    let out = op.barrage(
        &["apply", "-f", file.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out));
    wait_status(&op, &name, Duration::from_secs(90), "Running", |s| {
        s["phase"] == "Running"
    });
    gate.close(true);
    let intent = wait_status(
        &op,
        &name,
        Duration::from_secs(90),
        "the delete intent",
        |s| s["topicDeleted"] == true,
    );
    let killed_at = Instant::now();
    op.stop_controller("first", "KILL");
    let after_kill = topic_exists(&bootstrap, &topic);
    let refused = gate.dropped();
    gate.close(false);
    op.start_controller("second");
    let done = wait_status(&op, &name, Duration::from_secs(90), "topicGone", |s| {
        s["topicGone"] == true
    });
    let deleted_after = killed_at.elapsed();
    let after_restart = topic_exists(&bootstrap, &topic);
    println!(
        "topic clean-up across a kill: phase {} at the intent, topicGone {} at the kill; the killed controller's bootstrap connections dropped {refused}; topic exists after the kill: {after_kill}; after the restart: {after_restart} (topicGone {:.1}s after the kill, {} DeleteTopic calls in all); phase {}",
        intent["phase"],
        intent["topicGone"],
        deleted_after.as_secs_f64(),
        done["topicDeleteAttempts"],
        done["phase"]
    );
    assert_eq!(intent["topicGone"], serde_json::Value::Null, "{intent}");
    assert!(
        refused > 0,
        "the killed controller tried to reach the broker"
    );
    assert!(
        after_kill,
        "the topic is still there when the controller dies"
    );
    assert!(!after_restart, "the restarted controller deleted the topic");
    assert_eq!(done["topicDeleteAttempts"].as_u64(), Some(2), "{done}");
    assert!(
        barrage_system_tests::operator::succeeded_or_lag_only(&done),
        "{done}"
    );
}
