//! The operator end to end on one machine: the real Kafka broker, the AWS emulator (moto
//! server) standing in for DynamoDB and S3, and `barrage-agent` processes standing in for ECS
//! tasks through `barrage controller --launcher process`.
//!
//! Every test gets its own table, bucket and controller (so they run side by side), bounds
//! every wait, and stops what it started: the controller (SIGTERM, then SIGKILL) and any
//! agent process of its table still alive (found through `/proc/*/environ`); the harness is
//! [`barrage_system_tests::operator::Operator`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use barrage_system_tests::operator::{Operator, report_json, rt, s3_get, text, unix_now};
use barrage_system_tests::spec::Spec;
use barrage_system_tests::{
    aws_endpoint, count_records, kafka, read_numeric_keys, read_timestamps, unique,
};

/// A LoadTest of `agents` agents at `rate` records/s for `secs` seconds on its own topic.
fn spec(
    name: &str,
    topic: &str,
    bootstrap: &str,
    agents: u32,
    rate: u32,
    secs: u32,
    thresholds: &[&str],
) -> String {
    builder(name, topic, bootstrap, agents, rate, secs, thresholds).yaml()
}

/// [`spec`]'s builder, for the tests that add to it.
fn builder(
    name: &str,
    topic: &str,
    bootstrap: &str,
    agents: u32,
    rate: u32,
    secs: u32,
    thresholds: &[&str],
) -> Spec {
    thresholds.iter().fold(
        Spec::new(name, topic, bootstrap)
            .partitions(3)
            .agents(agents)
            .rate(rate)
            .secs(secs),
        |spec, t| spec.threshold(t),
    )
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("spec file");
    p
}

/// A raw `PutItem` of a LoadTest record, as CI without the CLI would write it.
fn put_raw(table: &str, name: &str, doc: &str) {
    rt().block_on(async {
        use aws_sdk_dynamodb::types::AttributeValue;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        client
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(format!("lt#{name}")))
            .item("sk", AttributeValue::S("spec".into()))
            .item("doc", AttributeValue::S(doc.into()))
            .send()
            .await
            .expect("PutItem");
    });
}

fn per_slot(launched: &[(u32, u32)]) -> String {
    let mut slots: std::collections::BTreeMap<u32, u32> = Default::default();
    for (slot, _) in launched {
        *slots.entry(*slot).or_default() += 1;
    }
    slots
        .iter()
        .map(|(s, n)| format!("slot {s}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn apply_wait_succeeds_and_the_merged_report_counts_exactly_the_records_in_the_topic() {
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let op = Operator::start("ok");
    let name = unique("e2e-ok");
    let topic = unique("barrage-e2e-ok");
    let file = write(
        &op.dir,
        "ok.yaml",
        &spec(
            &name,
            &topic,
            &bootstrap,
            3,
            300,
            5,
            &["errors.ratio < 0.1%", "produce.p99 < 2s"],
        ),
    );
    let out = op.apply_wait(&file, Duration::from_secs(150), 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Or Failed with exit 3, which apply_wait lets through only for a schedule-lag-only Invalid.
    assert!(
        stdout.contains(&format!("loadtest/{name} Succeeded"))
            || (stdout.contains(&format!("loadtest/{name} Failed"))
                && out.status.code() == Some(3)),
        "{stdout}"
    );

    let status = op.get(&name)["status"].clone();
    assert!(barrage_system_tests::operator::succeeded_or_lag_only(
        &status
    ));
    let run = status["runId"].as_str().expect("a run id").to_string();
    let report = report_json(&op, &name, &run);
    let records = &report["summary"]["records"];
    let in_report = records["acked"].as_u64().expect("acked in report.json");
    let produced = records["sent"].as_u64().expect("sent in report.json");
    let expected = 300 * 5;
    let consumed = count_records(&bootstrap, &topic, expected, Duration::from_secs(60));
    let launched = op.launched();
    println!(
        "operator e2e: records planned {expected}, scheduled {}, produced {produced}, consumed back from {topic} {consumed}, in the merged report {in_report}; tasks launched per slot: {}; per agent: {}",
        records["scheduled"],
        per_slot(&launched),
        report["agents"]
    );
    assert_eq!(
        in_report, consumed,
        "the merged report counts exactly what is in the topic"
    );
    assert_eq!(consumed, expected, "every planned record is in the topic");
    assert_eq!(launched, vec![(0, 0), (1, 0), (2, 0)], "one task per slot");
    assert!(s3_get(&op.bucket, &format!("runs/{name}/{run}/report/merged.hlog")).is_some());
}

#[test]
fn failing_thresholds_end_failed_with_exit_1_and_junit_names_the_threshold() {
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let op = Operator::start("thr");
    let name = unique("e2e-thr");
    let topic = unique("barrage-e2e-thr");
    // No broker answers a produce in a microsecond: this threshold cannot hold.
    let file = write(
        &op.dir,
        "thr.yaml",
        &spec(
            &name,
            &topic,
            &bootstrap,
            2,
            100,
            3,
            &["errors.ratio < 0.1%", "produce.p50 < 1us"],
        ),
    );
    op.apply_wait(&file, Duration::from_secs(150), 1);
    let status = op.get(&name)["status"].clone();
    assert_eq!(status["phase"], "Failed");
    let report_dir = op.dir.join("report");
    let out = op.barrage(
        &["report", &name, "--out", report_dir.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "report exits by the verdict: {}",
        text(&out)
    );
    let junit =
        std::fs::read_to_string(report_dir.join("junit.xml")).expect("junit.xml downloaded");
    let failures: Vec<&str> = junit.lines().filter(|l| l.contains("<failure")).collect();
    println!("thresholds e2e: phase Failed, exit 1, junit failures: {failures:?}");
    assert_eq!(failures.len(), 1, "{junit}");
    assert!(failures[0].contains("produce.p50"), "{junit}");
}

#[test]
fn a_raw_put_item_runs_like_apply_and_a_malformed_item_fails_spec_invalid_while_others_are_served()
{
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let op = Operator::start("raw");
    let broken = unique("e2e-broken");
    put_raw(
        &op.table,
        &broken,
        "apiVersion: barrage.dev/v1alpha1\nkind: LoadTest\nspec: [not, a, spec",
    );
    let name = unique("e2e-raw");
    let topic = unique("barrage-e2e-raw");
    put_raw(
        &op.table,
        &name,
        &spec(
            &name,
            &topic,
            &bootstrap,
            2,
            200,
            3,
            &["errors.ratio < 0.1%"],
        ),
    );

    let bad = op.wait_terminal(&broken, Duration::from_secs(60));
    assert_eq!(bad["phase"], "Failed");
    let cond = bad["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "SpecInvalid"))
        .cloned()
        .expect("a SpecInvalid condition");
    assert_eq!(cond["status"], "True", "{cond}");

    let good = op.wait_terminal(&name, Duration::from_secs(150));
    assert!(
        barrage_system_tests::operator::succeeded_or_lag_only(&good),
        "{good}\n{}",
        op.controller_log()
    );
    let run = good["runId"].as_str().expect("run id").to_string();
    let in_report = report_json(&op, &name, &run)["summary"]["records"]["acked"]
        .as_u64()
        .expect("acked");
    let consumed = count_records(&bootstrap, &topic, 600, Duration::from_secs(60));
    println!(
        "raw PutItem e2e: malformed record Failed/SpecInvalid ({}); raw record Succeeded, consumed {consumed}, in report {in_report}",
        cond["reason"]
    );
    assert_eq!(in_report, consumed);
    assert_eq!(consumed, 600);
}

/// Waits until the load of `name` has run for `secs` seconds since its `startAt`.
fn wait_load_for(op: &Operator, name: &str, secs: i64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let st = op.get(name)["status"].clone();
        let started = serde_json::from_value::<barrage_crds::status::LoadTestStatus>(st.clone())
            .ok()
            .and_then(|s| s.start_at)
            .is_some_and(|t| unix_now() >= t.timestamp() + secs);
        if st["phase"] == "Running" && started {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not {secs}s into the load: {st}\n{}",
            op.controller_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGKILLs the live agent of `slot`, as a crash would; its pid.
fn kill_slot(op: &Operator, slot: u32) -> u32 {
    let (pid, _, _) = op
        .agents()
        .into_iter()
        .find(|(_, s, _)| *s == slot)
        .unwrap_or_else(|| panic!("the agent of slot {slot} runs"));
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    pid
}

/// The first fleet index the replacement of `slot` (incarnation 1) sent, from the
/// `from_index` of its "Joining the running schedule." log line.
fn joined_at(op: &Operator, slot: u32) -> u64 {
    let log = std::fs::read_dir(op.dir.join("agents"))
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(&format!("-{slot}-1.log"))
        })
        .and_then(|e| std::fs::read_to_string(e.path()).ok())
        .unwrap_or_default();
    log.lines()
        .filter(|l| l.contains("Joining the running schedule."))
        .find_map(|l| {
            let rest = &l[l.find("from_index")? + "from_index".len()..];
            let digits: String = rest
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("slot {slot}'s replacement logged where it joined:\n{log}"))
}

#[test]
fn sigkilled_agents_are_replaced_with_their_own_share_and_only_the_outage_is_missing() {
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let op = Operator::start("kill");
    let name = unique("e2e-kill");
    let topic = unique("barrage-e2e-kill");
    // Sequential keys that never wrap: each record's key is its fleet-wide send index.
    let body = builder(
        &name,
        &topic,
        &bootstrap,
        3,
        300,
        20,
        &["errors.ratio < 0.1%"],
    )
    .sequential_keys(1_000_000_000)
    .yaml();
    let file = write(&op.dir, "kill.yaml", &body);
    let out = op.barrage(
        &["apply", "-f", file.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out));
    // Two crashes at different points of the schedule, of different slots.
    wait_load_for(&op, &name, 3, Duration::from_secs(90));
    let first = kill_slot(&op, 1);
    wait_load_for(&op, &name, 11, Duration::from_secs(30));
    let second = kill_slot(&op, 2);
    let status = op.wait_terminal(&name, Duration::from_secs(150));
    let launched = op.launched();
    let run = status["runId"].as_str().expect("a run id").to_string();
    let report = report_json(&op, &name, &run);
    let summary = report["summary"].clone();
    let target = summary["targetRecords"].as_u64().expect("target records");
    let scheduled = summary["records"]["scheduled"].as_u64().expect("scheduled");
    let in_report = summary["records"]["acked"].as_u64().expect("acked");
    let mut keys = read_numeric_keys(&bootstrap, &topic, in_report, Duration::from_secs(60));
    keys.sort_unstable();
    let read = keys.len() as u64;
    keys.dedup();
    let twice = read - keys.len() as u64;
    let missing: Vec<u64> = (0..target)
        .filter(|k| keys.binary_search(k).is_err())
        .collect();
    // What the report says is missing: the sends nobody was scheduled for. Of those, the
    // killed agents' last, never uploaded, intervals are in the topic but not in the report.
    let unattended = target - scheduled;
    let unreported = (keys.len() as u64).saturating_sub(in_report);
    println!(
        "agent kill e2e: killed pids {first} (slot 1, 3 s) and {second} (slot 2, 11 s); phase {}; tasks launched per slot: {}; target {target}, scheduled {scheduled} (report: {unattended} unattended), in report {in_report}; topic: {read} read, {twice} twice, {} missing, {unreported} not in the report",
        status["phase"],
        per_slot(&launched),
        missing.len()
    );
    assert_eq!(twice, 0, "no fleet index sent twice");
    assert!(
        missing.iter().all(|k| k % 3 != 0),
        "only the killed slots' shares miss sends: {missing:?}"
    );
    for slot in [1u64, 2] {
        let joined = joined_at(&op, slot as u32);
        assert_eq!(
            joined % 3,
            slot,
            "slot {slot}'s replacement took its own residue class"
        );
        assert!(
            missing.iter().all(|k| k % 3 != slot || *k < joined),
            "nothing of slot {slot} missing after its replacement joined at {joined}: {missing:?}"
        );
    }
    // The outage of slot r, as the report sees it: its sends from the end of the killed
    // incarnation's last reported interval (1 s intervals, 300/s) to where the replacement
    // joined. The report's shortfall of scheduled records is exactly these.
    let agents = report["agents"].as_array().cloned().unwrap_or_default();
    let outage: u64 = [1u64, 2]
        .iter()
        .map(|&slot| {
            let last = agents
                .iter()
                .find(|a| a["slot"] == slot && a["incarnation"] == 0)
                .and_then(|a| a["lastInterval"].as_u64())
                .expect("the killed incarnation reported");
            let from = 300 * (last + 1);
            (from..joined_at(&op, slot as u32))
                .filter(|j| j % 3 == slot)
                .count() as u64
        })
        .sum();
    assert_eq!(unattended, outage, "the report counts exactly the outages");
    assert!(
        launched.contains(&(1, 1)) && launched.contains(&(2, 1)),
        "{launched:?}"
    );
    assert_eq!(
        launched.iter().filter(|(s, _)| *s == 0).count(),
        1,
        "the surviving slot kept its single task: {launched:?}"
    );
    assert!(
        status["agents"]["replaced"].as_u64().unwrap_or(0) >= 2,
        "{status}"
    );
    assert!(
        barrage_system_tests::operator::succeeded_or_lag_only(&status),
        "{status}\n{}",
        op.controller_log()
    );
}

#[test]
fn of_two_controllers_one_leads_and_the_other_takes_over_when_it_stops() {
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let mut op = Operator::start("lease");
    op.wait_holder("first", Duration::from_secs(30));
    op.start_controller("second");
    // Two lease periods: the first keeps renewing, the second never gets it.
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        assert_eq!(
            op.lease_holder().as_deref(),
            Some("first"),
            "exactly one leads"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // A crash: no release, the second waits for the lease to expire (6 s, renewed every 2 s).
    op.stop_controller("first", "KILL");
    let takeover = op.wait_holder("second", Duration::from_secs(20));
    println!("lease e2e: first SIGKILLed, second took over after {takeover:?} (lease 6s)");
    assert!(takeover <= Duration::from_secs(6 + 2 + 2), "{takeover:?}");
    // The new leader serves.
    let name = unique("e2e-lease");
    let topic = unique("barrage-e2e-lease");
    let file = write(
        &op.dir,
        "lease.yaml",
        &spec(
            &name,
            &topic,
            &bootstrap,
            1,
            100,
            2,
            &["errors.ratio < 0.1%"],
        ),
    );
    op.apply_wait(&file, Duration::from_secs(120), 0);
    // A graceful stop releases the lease at once.
    op.stop_controller("second", "TERM");
    assert_eq!(op.lease_holder(), None, "released on graceful shutdown");
}

#[test]
fn a_controller_killed_mid_run_is_replaced_and_the_run_completes_with_one_agent_per_slot() {
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let mut op = Operator::start("ctl");
    let name = unique("e2e-ctl");
    let topic = unique("barrage-e2e-ctl");
    let file = write(
        &op.dir,
        "ctl.yaml",
        &spec(
            &name,
            &topic,
            &bootstrap,
            3,
            300,
            12,
            &["errors.ratio < 0.1%"],
        ),
    );
    let out = op.barrage(
        &["apply", "-f", file.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(90);
    while op.get(&name)["status"]["phase"] != "Running" {
        assert!(
            Instant::now() < deadline,
            "never Running\n{}",
            op.controller_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    op.stop_controller("first", "KILL");
    let killed_at = Instant::now();
    op.start_controller("second");
    let mut most_per_slot = 0usize;
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        let agents = op.agents();
        for slot in 0..3 {
            most_per_slot = most_per_slot.max(agents.iter().filter(|(_, s, _)| *s == slot).count());
        }
        let st = op.get(&name)["status"].clone();
        if ["Succeeded", "Failed", "Cancelled"].contains(&st["phase"].as_str().unwrap_or("")) {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "not finished: {st}\n{}",
            op.controller_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let finished_after = killed_at.elapsed();
    let launched = op.launched();
    let run = status["runId"].as_str().expect("run id").to_string();
    let records = report_json(&op, &name, &run)["summary"]["records"].clone();
    let in_report = records["acked"].as_u64().unwrap_or(0);
    let consumed = count_records(&bootstrap, &topic, in_report, Duration::from_secs(30));
    println!(
        "controller kill e2e: the new controller finished the run {finished_after:?} after the kill; phase {}; most live agents seen per slot {most_per_slot}; tasks launched per slot: {}; planned 3600, scheduled {}, consumed {consumed}, in report {in_report}; fleet {}",
        status["phase"],
        per_slot(&launched),
        records["scheduled"],
        status["fleet"]
    );
    assert!(in_report > 0);
    assert!(most_per_slot <= 1, "a slot had two live agents at once");
    assert!(
        barrage_system_tests::operator::succeeded_or_lag_only(&status),
        "{status}\n{}",
        op.controller_log()
    );
    assert_eq!(in_report, consumed);
}

/// Waits until `name` is Running with its load started at least `secs` seconds ago.
fn wait_running_for(op: &Operator, name: &str, secs: i64, limit: Duration) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let st = op.get(name)["status"].clone();
        let started = serde_json::from_value::<barrage_crds::status::LoadTestStatus>(st.clone())
            .ok()
            .and_then(|s| s.start_at)
            .is_some_and(|t| unix_now() >= t.timestamp() + secs);
        if st["phase"] == "Running" && started {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "never Running: {st}\n{}",
            op.controller_log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn delete_mid_run_cancels_stops_every_agent_and_leaves_a_partial_report_marked_incomplete() {
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let op = Operator::start("del");
    let name = unique("e2e-del");
    let topic = unique("barrage-e2e-del");
    let file = write(
        &op.dir,
        "del.yaml",
        &spec(
            &name,
            &topic,
            &bootstrap,
            2,
            200,
            60,
            &["errors.ratio < 0.1%"],
        ),
    );
    let out = op.barrage(
        &["apply", "-f", file.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out));
    let st = wait_running_for(&op, &name, 3, Duration::from_secs(90));
    let run = st["runId"].as_str().expect("run id").to_string();
    assert_eq!(op.agents().len(), 2, "both agents run before the delete");
    let started = Instant::now();
    let out = op.barrage(
        &["delete", &name, "--wait", "--timeout", "120s"],
        Duration::from_secs(150),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out),
        op.controller_log()
    );
    let took = started.elapsed();
    let out = op.barrage(&["get", &name], Duration::from_secs(30));
    assert_eq!(
        out.status.code(),
        Some(2),
        "the record is gone: {}",
        text(&out)
    );
    let live = op.agents();
    let report = report_json(&op, &name, &run);
    let reasons: Vec<String> = report["verdict"]["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "delete e2e: deleted after {took:?}; live agents after {}; partial report: acked {} of {} planned, verdict {}, reasons {reasons:?}",
        live.len(),
        report["summary"]["records"]["acked"],
        200 * 60,
        report["verdict"]["result"]
    );
    assert!(live.is_empty(), "every agent stopped: {live:?}");
    assert!(
        reasons.iter().any(|r| r.contains("did not complete")),
        "the partial report says it is incomplete: {reasons:?}"
    );
    assert!(report["summary"]["records"]["acked"].as_u64().unwrap_or(0) > 0);
}

/// CI raises the rate and adds an agent mid-run: the controller publishes a new fleet (epoch 2,
/// effective a few seconds ahead) and launches the new slot; the achieved rate follows. The
/// printed per-interval rates also show the window before `effectiveAt` (about 350/s with a
/// 200/s target then): the new agent sends its new share from the moment it starts.
#[test]
fn a_second_apply_mid_run_re_splits_the_shares_and_the_achieved_rate_follows() {
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let op = Operator::start("split");
    let name = unique("e2e-split");
    let topic = unique("barrage-e2e-split");
    let first = write(
        &op.dir,
        "split-1.yaml",
        &spec(
            &name,
            &topic,
            &bootstrap,
            2,
            200,
            24,
            &["errors.ratio < 0.1%"],
        ),
    );
    let out = op.barrage(
        &["apply", "-f", first.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out));
    wait_running_for(&op, &name, 4, Duration::from_secs(90));
    // CI raises the rate and adds an agent while the run goes on.
    let second = write(
        &op.dir,
        "split-2.yaml",
        &spec(
            &name,
            &topic,
            &bootstrap,
            3,
            450,
            24,
            &["errors.ratio < 0.1%"],
        ),
    );
    let out = op.barrage(
        &["apply", "-f", second.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("configured (generation 2)"),
        "{}",
        text(&out)
    );
    let status = op.wait_terminal(&name, Duration::from_secs(150));
    let launched = op.launched();
    let run = status["runId"].as_str().expect("run id").to_string();
    let report = report_json(&op, &name, &run);
    let rates: Vec<f64> = report["intervals"]
        .as_array()
        .map(|iv| iv.iter().filter_map(|i| i["rate"].as_f64()).collect())
        .unwrap_or_default();
    let in_report = report["summary"]["records"]["acked"].as_u64().unwrap_or(0);
    let consumed = count_records(&bootstrap, &topic, in_report, Duration::from_secs(30));
    let early: f64 = rates.iter().skip(1).take(2).sum::<f64>() / 2.0;
    let late: Vec<f64> = rates.iter().rev().skip(2).take(5).copied().collect();
    let late_avg = late.iter().sum::<f64>() / late.len().max(1) as f64;
    println!(
        "re-split e2e: phase {}, fleet {}, tasks launched per slot: {}; rate per interval {rates:?}; early {early:.0}/s, late {late_avg:.0}/s; consumed {consumed}, in report {in_report}",
        status["phase"],
        status["fleet"],
        per_slot(&launched)
    );
    assert!(
        barrage_system_tests::operator::succeeded_or_lag_only(&status),
        "{status}\n{}",
        op.controller_log()
    );
    assert_eq!(status["observedGeneration"], 2);
    assert_eq!(
        status["fleet"]["members"].as_array().map(Vec::len),
        Some(3),
        "{status}"
    );
    assert!(launched.contains(&(2, 0)), "slot 2 joined: {launched:?}");
    assert!((early - 200.0).abs() < 30.0, "early rate {early}");
    assert!((late_avg - 450.0).abs() < 45.0, "late rate {late_avg}");
    assert_eq!(in_report, consumed);
}

/// Polls the record until `ok` holds for its status, within `limit`.
fn wait_status(
    op: &Operator,
    name: &str,
    limit: Duration,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let st = op.get(name)["status"].clone();
        if ok(&st) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {st}\n{}",
            op.controller_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn millis_of(v: &serde_json::Value) -> i64 {
    v.as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| panic!("a timestamp: {v}"))
}

/// CI pauses a running run and resumes it about 5 s later. Read back from the topic, the
/// records' create times leave a gap over the paused span and the rate after it is the
/// target again; the report leaves the span out of the load and the target (nothing dropped,
/// no shortfall) and shows it.
#[test]
fn a_pause_mid_run_sends_nothing_in_its_span_and_the_load_resumes_at_the_shared_rate() {
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let op = Operator::start("pause");
    let name = unique("e2e-pause");
    let topic = unique("barrage-e2e-pause");
    let thresholds = ["errors.ratio < 0.1%", "rate.achieved_ratio >= 0.97"];
    let running = builder(&name, &topic, &bootstrap, 2, 200, 24, &thresholds);
    let paused = running.clone().paused().yaml();
    let running = running.yaml();
    let apply = |file: &str, body: &str| {
        let path = write(&op.dir, file, body);
        let out = op.barrage(
            &["apply", "-f", path.to_str().unwrap()],
            Duration::from_secs(30),
        );
        assert!(out.status.success(), "{}", text(&out));
    };
    apply("pause-1.yaml", &running);
    wait_running_for(&op, &name, 4, Duration::from_secs(90));
    apply("pause-2.yaml", &paused);
    let st = wait_status(&op, &name, Duration::from_secs(30), "never paused", |st| {
        st["fleet"]["paused"] == true
    });
    // Resume when the pause takes effect: the resume's own lead makes the span about 5 s.
    let from_ms = millis_of(&st["fleet"]["pausedSpans"][0]["from"]);
    let wait_ms = from_ms - chrono::Utc::now().timestamp_millis();
    std::thread::sleep(Duration::from_millis(
        u64::try_from(wait_ms).unwrap_or(0).min(10_000),
    ));
    apply("pause-3.yaml", &running);
    let status = op.wait_terminal(&name, Duration::from_secs(150));
    let span = &status["fleet"]["pausedSpans"][0];
    let (from_ms, until_ms) = (millis_of(&span["from"]), millis_of(&span["until"]));
    let run = status["runId"].as_str().expect("run id").to_string();
    let report = report_json(&op, &name, &run);
    let summary = &report["summary"];
    let in_report = summary["records"]["acked"].as_u64().unwrap_or(0);
    let stamps = read_timestamps(&bootstrap, &topic, in_report, Duration::from_secs(30));
    let count = |lo: i64, hi: i64| stamps.iter().filter(|&&t| lo <= t && t < hi).count();
    let inside = count(from_ms + 200, until_ms - 200);
    let before = count(from_ms - 4_000, from_ms - 1_000) as f64 / 3.0;
    let after = count(until_ms + 1_000, until_ms + 5_000) as f64 / 4.0;
    println!(
        "pause e2e: phase {}, paused span {} ms, records inside it {inside}, rate before {before:.0}/s, after {after:.0}/s; \
         read back {}, in report {in_report}; report loadSecs {}, pausedSecs {}, targetRecords {}, dropped {}, verdict {}",
        status["phase"],
        until_ms - from_ms,
        stamps.len(),
        summary["loadSecs"],
        summary["pausedSecs"],
        summary["targetRecords"],
        summary["records"]["dropped"],
        report["verdict"]
    );
    assert!(
        barrage_system_tests::operator::succeeded_or_lag_only(&status),
        "{status}\n{}",
        op.controller_log()
    );
    assert!(
        (4_500..=8_000).contains(&(until_ms - from_ms)),
        "span {span}"
    );
    assert_eq!(inside, 0, "records sent while paused");
    assert!(
        (before - 200.0).abs() < 30.0,
        "rate before the pause {before}"
    );
    assert!(
        (after - 200.0).abs() < 30.0,
        "rate after the resume {after}"
    );
    assert_eq!(
        stamps.len() as u64,
        in_report,
        "the topic holds what the report counts"
    );
    assert_eq!(summary["records"]["dropped"], 0);
    let paused_secs = summary["pausedSecs"].as_f64().unwrap_or(0.0);
    assert!(
        (paused_secs - (until_ms - from_ms) as f64 / 1000.0).abs() < 0.01,
        "{summary}"
    );
    let target = summary["targetRecords"].as_u64().unwrap_or(0) as f64;
    assert!(
        (target - 200.0 * (24.0 - paused_secs)).abs() <= 2.0,
        "{summary}"
    );
    assert!(
        barrage_system_tests::operator::is_or_lag_only(&report["verdict"], "Passed"),
        "{}",
        report["verdict"]
    );
}
