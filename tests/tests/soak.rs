//! Soak rehearsal (issue #7 item 5), test-sized: one LoadTest with a 1 s report interval and a
//! 15 s rolling window runs for 90 s through `barrage controller --launcher process` against
//! the real broker and the AWS emulator. While it runs, the test
//! - watches the emulator's S3 for the rolling window reports
//!   (`runs/{name}/{run}/windows/{w:05}/report.json`, `report.html`, `merged.hlog`, `junit.xml`)
//!   and checks that they appear while the run is still `Running`, each with a verdict;
//! - samples the resident memory (`VmRSS`) of the controller and of every agent process every
//!   2 s, prints the series, and checks that it stays flat: the largest sample of the last third
//!   of the run is at most the largest of the first third plus 30 MiB (a generous bound: the
//!   point is that nothing grows with the number of windows or intervals).
//!
//! At the end, the cumulative report's acked count equals the windows' sum plus the intervals
//! after the last full window, and the records acked in the status.
//!
//! The operator harness is [`barrage_system_tests::operator::Operator`], shared with
//! `operator_e2e.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use barrage_system_tests::operator::{Operator, rt, s3, s3_get, text};
use barrage_system_tests::spec::Spec;
use barrage_system_tests::{aws_endpoint, kafka, unique};

const RUN_SECS: u32 = 90;
const WINDOW_SECS: u32 = 15;
const RATE: u32 = 400;
const AGENTS: u32 = 2;

fn s3_list(bucket: &str, prefix: &str) -> Vec<String> {
    rt().block_on(async {
        let client = s3().await;
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let Ok(out) = client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.clone())
                .send()
                .await
            else {
                return keys;
            };
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
            token = out.next_continuation_token().map(String::from);
            if token.is_none() {
                return keys;
            }
        }
    })
}

fn json(bucket: &str, key: &str) -> serde_json::Value {
    let body = s3_get(bucket, key).unwrap_or_else(|| panic!("s3://{bucket}/{key} exists"));
    serde_json::from_slice(&body).expect("JSON")
}

/// `VmRSS` of a process, KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// (max of the first third, max of the last third) of a series, KiB.
fn thirds(series: &[u64]) -> (u64, u64) {
    let n = series.len() / 3;
    let first = series[..n.max(1)].iter().copied().max().unwrap_or(0);
    let last = series[series.len() - n.max(1)..]
        .iter()
        .copied()
        .max()
        .unwrap_or(0);
    (first, last)
}

fn spec(name: &str, topic: &str, bootstrap: &str) -> String {
    Spec::new(name, topic, bootstrap)
        .partitions(3)
        .agents(AGENTS)
        .rate(RATE)
        .secs(RUN_SECS)
        .window(WINDOW_SECS)
        .threshold("errors.ratio < 0.1%")
        .threshold("produce.p99 < 5s")
        .yaml()
}

#[test]
fn a_soak_writes_rolling_window_reports_while_running_and_memory_stays_flat() {
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let op = Operator::start_named("barrage-soak", "barrage-soak", "soak");
    let name = unique("soak");
    let topic = unique("barrage-soak");
    let file = op.dir.join("soak.yaml");
    std::fs::write(&file, spec(&name, &topic, &bootstrap)).expect("spec file");
    let out = op.barrage(
        &["apply", "-f", file.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "apply: {}", text(&out));

    let windows = RUN_SECS / WINDOW_SECS;
    let deadline = Instant::now() + Duration::from_secs(u64::from(RUN_SECS) + 120);
    let mut run = None;
    let mut seen_while_running: Vec<(u32, f64)> = Vec::new();
    let mut status_while_running = None;
    let mut rates_while_running: Vec<f64> = Vec::new();
    let mut controller_rss: Vec<u64> = Vec::new();
    let mut agent_rss: std::collections::BTreeMap<u32, Vec<u64>> = Default::default();
    let started = Instant::now();
    let status = loop {
        assert!(
            Instant::now() < deadline,
            "loadtest/{name} did not finish in time\n{}",
            op.controller_log_lines(60)
        );
        let status = op.get(&name)["status"].clone();
        let phase = status["phase"].as_str().unwrap_or("").to_string();
        if ["Succeeded", "Failed", "Cancelled"].contains(&phase.as_str()) {
            break status;
        }
        if phase == "Running" {
            if let Some(pid) = op.controller_pid().and_then(rss_kib) {
                controller_rss.push(pid);
            }
            for (pid, slot, _) in op.agents() {
                if let Some(kib) = rss_kib(pid) {
                    agent_rss.entry(slot).or_default().push(kib);
                }
            }
            let r = status["runId"].as_str().expect("a run id").to_string();
            let prefix = format!("runs/{name}/{r}/windows/");
            for key in s3_list(&op.bucket, &prefix) {
                let w: Option<u32> = key
                    .strip_prefix(&prefix)
                    .and_then(|rest| rest.strip_suffix("/report.json"))
                    .and_then(|w| w.parse().ok());
                if let Some(w) = w
                    && !seen_while_running.iter().any(|(s, _)| *s == w)
                {
                    seen_while_running.push((w, started.elapsed().as_secs_f64()));
                }
            }
            if let Some(rate) = status["progress"]["currentRate"].as_f64() {
                rates_while_running.push(rate);
            }
            if status["windows"]["reported"].as_u64().unwrap_or(0) > 0 {
                status_while_running = Some(status["windows"].clone());
            }
            run = Some(r);
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let run = run.expect("the run was seen Running");
    // The verdict depends on the machine (a loaded one saturates the generator: Invalid); the
    // rehearsal is about the window reports and memory, so any finished run will do.
    assert!(
        ["Succeeded", "Failed"].contains(&status["phase"].as_str().unwrap_or("")),
        "{status}\n{}",
        op.controller_log_lines(60)
    );

    // The window reports: every full window of the run, each a complete report set.
    let prefix = format!("runs/{name}/{run}/windows/");
    let keys = s3_list(&op.bucket, &prefix);
    let mut window_acked = 0u64;
    let mut lines = Vec::new();
    for w in 0..windows {
        let dir = format!("{prefix}{w:05}/");
        for file in ["report.json", "report.html", "merged.hlog", "junit.xml"] {
            assert!(
                keys.contains(&format!("{dir}{file}")),
                "window {w} has {file}: {keys:?}\n{}",
                op.controller_log_lines(60)
            );
        }
        let report = json(&op.bucket, &format!("{dir}report.json"));
        let verdict = report["verdict"]["result"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            ["Passed", "Failed", "Invalid", "Incomplete"].contains(&verdict.as_str()),
            "window {w} has a verdict: {}",
            report["verdict"]
        );
        let acked = report["summary"]["records"]["acked"].as_u64().unwrap();
        let first = u64::from(w * WINDOW_SECS);
        let intervals: Vec<u64> = report["intervals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["index"].as_u64().unwrap())
            .collect();
        assert!(
            intervals
                .iter()
                .all(|i| (first..first + u64::from(WINDOW_SECS)).contains(i)),
            "window {w} holds only its intervals: {intervals:?}"
        );
        window_acked += acked;
        lines.push(format!(
            "window {w}: {verdict}, {acked} acked, p99 {} us, {} gaps",
            report["summary"]["latency"]["produce"]["p99"],
            report["gaps"].as_array().map_or(0, Vec::len)
        ));
    }

    // The cumulative report: the windows plus the intervals after the last full window.
    let report = json(&op.bucket, &format!("runs/{name}/{run}/report/report.json"));
    let total = report["summary"]["records"]["acked"].as_u64().unwrap();
    let tail: u64 = report["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["index"].as_u64().unwrap() >= u64::from(windows * WINDOW_SECS))
        .map(|i| i["records"]["acked"].as_u64().unwrap())
        .sum();
    let status_acked = status["summary"]["recordsAcked"].as_u64().unwrap();

    println!(
        "soak: {AGENTS} agents at {RATE}/s for {RUN_SECS}s, interval 1s, window {WINDOW_SECS}s; run {}, verdict {}",
        status["phase"], status["verdict"]
    );
    for l in &lines {
        println!("soak: {l}");
    }
    println!(
        "soak: windows seen in S3 while Running (window, seconds after apply): {seen_while_running:?}; status.windows while Running: {}",
        status_while_running
            .as_ref()
            .map_or("none".to_string(), ToString::to_string)
    );
    println!(
        "soak: acked — windows {window_acked} + after the last window {tail} = {}; cumulative report {total}; status {status_acked}; planned {}",
        window_acked + tail,
        u64::from(RATE) * u64::from(RUN_SECS)
    );
    println!(
        "soak: status.progress.currentRate every 2 s while Running: {}",
        rates_while_running
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mib = |s: &[u64]| {
        s.iter()
            .map(|k| format!("{:.1}", *k as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "soak: controller VmRSS MiB every 2 s: {}",
        mib(&controller_rss)
    );
    for (slot, s) in &agent_rss {
        println!("soak: agent {slot} VmRSS MiB every 2 s: {}", mib(s));
    }

    assert!(
        seen_while_running.len() >= 2,
        "at least two window reports appeared while the run was Running: {seen_while_running:?}"
    );
    // The live rate is the agents' last completed intervals: once they run, about the target.
    let mut rates = rates_while_running.clone();
    rates.sort_by(f64::total_cmp);
    let median = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
    let target = f64::from(RATE);
    assert!(
        (0.5 * target..=1.5 * target).contains(&median),
        "status.progress.currentRate while Running should be near {RATE}/s: {rates_while_running:?}"
    );
    let st = status_while_running.expect("status.windows was set while Running");
    assert!(st["latest"]["result"].is_string(), "{st}");
    assert_eq!(
        window_acked + tail,
        total,
        "windows add up to the cumulative report"
    );
    assert_eq!(
        total, status_acked,
        "the cumulative report counts the records acked"
    );
    let final_windows = &status["windows"];
    assert_eq!(
        final_windows["reported"].as_u64(),
        Some(u64::from(windows)),
        "{status}"
    );

    let slack = 30 * 1024;
    for (who, series) in std::iter::once(("controller".to_string(), &controller_rss))
        .chain(agent_rss.iter().map(|(s, v)| (format!("agent {s}"), v)))
    {
        assert!(
            series.len() >= 9,
            "{who}: enough samples ({})",
            series.len()
        );
        let (first, last) = thirds(series);
        println!(
            "soak: {who} VmRSS max first third {:.1} MiB, last third {:.1} MiB",
            first as f64 / 1024.0,
            last as f64 / 1024.0
        );
        assert!(
            last <= first + slack,
            "{who}: memory grew from {first} KiB to {last} KiB"
        );
    }
}
