//! No interval is lost silently: the operator on one machine (process launcher, the real
//! broker, the AWS emulator) with the agents' S3 behind [`FaultProxy`], which refuses interval
//! writes with `503 SlowDown` while switched on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use barrage_system_tests::fault::FaultProxy;
use barrage_system_tests::operator::{Operator, report_json, text, unix_now};
use barrage_system_tests::spec::Spec;
use barrage_system_tests::{aws_endpoint, count_records, kafka, unique};

fn spec(name: &str, topic: &str, bootstrap: &str, agents: u32, rate: u32, secs: u32) -> String {
    Spec::new(name, topic, bootstrap)
        .partitions(3)
        .agents(agents)
        .rate(rate)
        .secs(secs)
        .yaml()
}

/// An operator whose agents (and controller) reach S3 through `proxy`, retrying for `drain`.
fn operator(tag: &str, proxy: &FaultProxy, drain: &str) -> Operator {
    let url = proxy.url();
    Operator::start_with_env(
        &format!("barrage-e2e-{tag}"),
        "barrage-operator",
        "first",
        &[
            ("AWS_ENDPOINT_URL_S3", &url),
            ("BARRAGE_UPLOAD_DRAIN", drain),
        ],
    )
}

/// Applies the spec and waits until its load has run for `secs` seconds.
fn apply_and_wait_load(op: &Operator, name: &str, body: &str, secs: i64) {
    let file = op.dir.join(format!("{name}.yaml"));
    std::fs::write(&file, body).unwrap();
    let out = op.barrage(
        &["apply", "-f", file.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let st = op.get(name)["status"].clone();
        let started = serde_json::from_value::<barrage_crds::status::LoadTestStatus>(st.clone())
            .ok()
            .and_then(|s| s.start_at)
            .is_some_and(|t| unix_now() >= t.timestamp() + secs);
        if started {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never started: {st}\n{}",
            op.controller_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn intervals_refused_for_thirty_seconds_mid_run_are_all_delivered() {
    let (Some(bootstrap), Some(endpoint)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let proxy = FaultProxy::start(&endpoint);
    let op = operator("s3down", &proxy, "60s");
    let name = unique("e2e-s3down");
    let topic = unique("barrage-e2e-s3down");
    apply_and_wait_load(&op, &name, &spec(&name, &topic, &bootstrap, 2, 200, 45), 5);
    proxy.refuse(true);
    std::thread::sleep(Duration::from_secs(30));
    proxy.refuse(false);
    let status = op.wait_terminal(&name, Duration::from_secs(180));
    let run = status["runId"].as_str().expect("run id").to_string();
    let report = report_json(&op, &name, &run);
    let acked = report["summary"]["records"]["acked"].as_u64().unwrap();
    let in_topic = count_records(&bootstrap, &topic, acked, Duration::from_secs(60));
    println!(
        "S3 refused 30 s mid-run: {} interval writes refused; phase {}, verdict {}; report scheduled {} acked {acked}, topic {in_topic}, missing agent intervals {}",
        proxy.refused(),
        status["phase"],
        report["verdict"],
        report["summary"]["records"]["scheduled"],
        report["coverage"]["missingAgentIntervals"]
    );
    assert!(proxy.refused() > 0, "the fault was hit");
    assert_eq!(
        report["coverage"]["missingAgentIntervals"], 0,
        "{}",
        report["gaps"]
    );
    assert_eq!(acked, in_topic, "nothing lost");
    assert_eq!(
        report["summary"]["records"]["scheduled"],
        200 * 45,
        "every interval is in the report"
    );
    assert!(
        barrage_system_tests::operator::is_or_lag_only(&report["verdict"], "Passed"),
        "{}",
        report["verdict"]
    );
}

#[test]
fn intervals_refused_for_the_rest_of_the_run_are_named_in_the_report_with_their_records() {
    let (Some(bootstrap), Some(endpoint)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let proxy = FaultProxy::start(&endpoint);
    let op = operator("s3gone", &proxy, "3s");
    let name = unique("e2e-s3gone");
    let topic = unique("barrage-e2e-s3gone");
    apply_and_wait_load(&op, &name, &spec(&name, &topic, &bootstrap, 1, 200, 12), 5);
    proxy.refuse(true);
    let status = op.wait_terminal(&name, Duration::from_secs(180));
    let run = status["runId"].as_str().expect("run id").to_string();
    let report = report_json(&op, &name, &run);
    let acked = report["summary"]["records"]["acked"].as_u64().unwrap();
    let in_topic = count_records(&bootstrap, &topic, 200 * 12, Duration::from_secs(60));
    let reasons: Vec<String> = report["verdict"]["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    // "agent 0 (incarnation 0) never delivered intervals A–B: N records are missing …"
    let named: u64 = reasons
        .iter()
        .filter(|r| r.contains("never delivered intervals"))
        .filter_map(|r| r.split(": ").nth(1)?.split(' ').next()?.parse::<u64>().ok())
        .sum();
    println!(
        "S3 refused from 5 s on: {} writes refused; phase {}, verdict {}; report acked {acked} + named missing {named} = {} vs topic {in_topic}",
        proxy.refused(),
        status["phase"],
        report["verdict"],
        acked + named
    );
    assert!(
        barrage_system_tests::operator::is_or_lag_only(&report["verdict"], "Incomplete"),
        "{}",
        report["verdict"]
    );
    assert!(named > 0, "the report names what is missing: {reasons:?}");
    assert_eq!(
        acked + named,
        in_topic,
        "the report says exactly what is missing: {reasons:?}"
    );
}
