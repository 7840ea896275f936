//! What Prometheus scrapes (issue 18.3): the controller's and an agent's `/metrics`, taken
//! mid-run under the operator, pass Prometheus's own linter (`promtool check metrics`, from
//! Debian's prometheus package, unpacked by `scripts/install-tools.sh --promtool-only`): HELP
//! and TYPE for every family, counters ending in `_total`, base units in names. And
//! `barrage watch NAME` follows that run to its end and exits with its verdict's code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use barrage_system_tests::operator::{Operator, lag_only, text};
use barrage_system_tests::{aws_endpoint, invalid_reasons, kafka, root, run_bounded, unique};

fn spec(name: &str, topic: &str, bootstrap: &str) -> String {
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
      partitions: 1
      replicationFactor: 1
  workload:
    kind: Produce
    records:
      value:
        size: 100
  load:
    steps:
      - constant: {{rate: 100, for: 10s}}
  agents:
    count: 1
  report:
    interval: 1s
  thresholds:
    - \"errors.ratio < 1%\"
"
    )
}

/// promtool, unpacked by the project's script (idempotent); `None` (skip) when it cannot be
/// had, unless `BARRAGE_REQUIRE_SERVICES=1`.
fn promtool() -> Option<PathBuf> {
    let out = run_bounded(
        Command::new("bash")
            .arg(root().join("scripts/install-tools.sh"))
            .arg("--promtool-only"),
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let found = stdout
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("PATH+="))
        .map(|dir| PathBuf::from(dir).join("promtool"))
        .filter(|p| out.status.success() && p.exists());
    if found.is_none() {
        let msg = format!("no promtool: {}", text(&out));
        assert!(
            std::env::var("BARRAGE_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "{msg}"
        );
        eprintln!("skipped: {msg}");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `GET /metrics` of `addr`: the body.
fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{addr}: {answer}");
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    body.to_string()
}

/// `promtool check metrics` of `exposition`: exit code and what it printed.
fn lint(promtool: &PathBuf, exposition: &str) -> (Option<i32>, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), printed.trim().to_string())
}

/// Families (`# TYPE` lines) and samples in an exposition.
fn shape(exposition: &str) -> (usize, usize) {
    let families = exposition
        .lines()
        .filter(|l| l.starts_with("# TYPE "))
        .count();
    let samples = exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    (families, samples)
}

/// The agent's metrics address, from its log line "Serving /metrics and /healthz.".
fn agent_metrics_addr(op: &Operator, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        for entry in std::fs::read_dir(op.dir.join("agents"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let addr = log
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|v| v["fields"]["message"] == "Serving /metrics and /healthz.")
                .and_then(|v| v["fields"]["addr"].as_str().map(String::from));
            if let Some(addr) = addr {
                return addr;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no agent served metrics\n{}",
            op.controller_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_controllers_and_an_agents_metrics_pass_promtool_and_watch_follows_the_run_to_its_verdict() {
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let Some(promtool) = promtool() else { return };
    let mut op = Operator::init("barrage-e2e-metrics", "barrage-metrics", &[]);
    let controller_addr = format!("127.0.0.1:{}", free_port());
    op.start_controller_with(
        "first",
        &[
            ("BARRAGE_METRICS_ADDR", &controller_addr),
            ("BARRAGE_AGENT_METRICS_ADDR", "127.0.0.1:0"),
        ],
    );
    op.wait_holder("first", Duration::from_secs(30));
    let name = unique("e2e-metrics");
    let file = op.dir.join("metrics.yaml");
    std::fs::write(
        &file,
        spec(&name, &unique("barrage-e2e-metrics"), &bootstrap),
    )
    .unwrap();
    let out = op.barrage(
        &["apply", "-f", file.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out));
    // `barrage watch` from the start, in the background.
    let mut watch = Command::new(barrage_system_tests::binary("barrage"));
    watch.args(["watch", &name, "--timeout", "120s"]);
    op.env(&mut watch);
    let watcher = std::thread::spawn(move || run_bounded(&mut watch, Duration::from_secs(150)));

    let agent_addr = agent_metrics_addr(&op, Duration::from_secs(60));
    // Mid-run: the load is on and both have counted something.
    std::thread::sleep(Duration::from_secs(4));
    let mut results = Vec::new();
    for (who, addr) in [("controller", &controller_addr), ("agent", &agent_addr)] {
        let exposition = scrape(addr);
        let (families, samples) = shape(&exposition);
        let (code, printed) = lint(&promtool, &exposition);
        println!(
            "metrics: {who} at {addr}: {families} families, {samples} samples; promtool check metrics exit {code:?}{}",
            if printed.is_empty() {
                String::new()
            } else {
                format!(": {printed}")
            }
        );
        results.push((who, families, code, printed));
    }

    let watched = watcher.join().expect("the watch thread");
    let stdout = String::from_utf8_lossy(&watched.stdout).to_string();
    let stderr = String::from_utf8_lossy(&watched.stderr).to_string();
    let progress = stderr.lines().filter(|l| l.contains(&name)).count();
    let reasons = invalid_reasons(&stdout);
    println!(
        "watch: exit {:?}, {progress} progress lines, last: {:?}; result: {:?}",
        watched.status.code(),
        stderr.lines().last().unwrap_or_default(),
        stdout.lines().take(4).collect::<Vec<_>>()
    );
    for (who, families, code, printed) in results {
        assert!(families >= 5, "{who}: only {families} families");
        assert_eq!(code, Some(0), "{who}: promtool: {printed}");
        assert!(printed.is_empty(), "{who}: promtool: {printed}");
    }
    let verdict_ok = watched.status.code() == Some(0)
        || (watched.status.code() == Some(3) && lag_only(&reasons));
    assert!(verdict_ok, "{}\n{}", text(&watched), op.controller_log());
    assert!(
        stdout.starts_with(&format!("loadtest/{name} ")),
        "watch ends on the record's final phase: {stdout}"
    );
    assert!(progress >= 2, "watch printed progress: {stderr}");
}
