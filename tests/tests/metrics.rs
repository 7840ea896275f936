//! What Prometheus scrapes (issue 18.3): the controller's and an agent's `/metrics`, taken
//! mid-run under the operator, pass Prometheus's own linter (`promtool check metrics`, from
//! Debian's prometheus package, unpacked by `scripts/install-tools.sh --promtool-only`): HELP
//! and TYPE for every family, counters ending in `_total`, base units in names. And
//! `barrage watch NAME` follows that run to its end and exits with its verdict's code.
//!
//! The Grafana dashboard (infra/grafana/barrage.json, issue 16.4) is checked against the same
//! scrapes: every metric its queries name is one Barrage exports, and every query parses
//! (`promtool check rules` of the queries as recording rules); the Prometheus scrape examples
//! (infra/prometheus/*.yml) pass `promtool check config`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use barrage_system_tests::operator::{Operator, lag_only, text};
use barrage_system_tests::spec::Spec;
use barrage_system_tests::{aws_endpoint, invalid_reasons, kafka, root, run_bounded, unique};

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
    let spec =
        Spec::new(&name, &unique("barrage-e2e-metrics"), &bootstrap).threshold("errors.ratio < 1%");
    std::fs::write(&file, spec.yaml()).unwrap();
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
    let mut exported = std::collections::BTreeSet::new();
    for (who, addr) in [("controller", &controller_addr), ("agent", &agent_addr)] {
        let exposition = scrape(addr);
        exported.extend(
            exposition
                .lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .filter_map(|l| l.split_whitespace().next())
                .map(String::from),
        );
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

    let dashboard = check_dashboard(&promtool, &exported);
    let configs = check_scrape_configs(&promtool);

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
    assert!(dashboard.queries >= 10, "{dashboard:?}");
    assert!(
        dashboard.unknown.is_empty(),
        "metrics Barrage does not export: {dashboard:?}"
    );
    assert_eq!(dashboard.rules_check, Some(0), "{dashboard:?}");
    for (file, code, printed) in &configs {
        assert_eq!(*code, Some(0), "{file}: {printed}");
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

/// What the dashboard check found.
#[derive(Debug)]
struct DashboardCheck {
    queries: usize,
    metrics: std::collections::BTreeSet<String>,
    unknown: Vec<String>,
    rules_check: Option<i32>,
    rules_printed: String,
}

/// Every query of infra/grafana/barrage.json: the metric names it uses (each must be in
/// `exported`), and whether promtool parses it (as the expression of a recording rule, with
/// Grafana's variables replaced by values).
fn check_dashboard(
    promtool: &PathBuf,
    exported: &std::collections::BTreeSet<String>,
) -> DashboardCheck {
    let text = std::fs::read_to_string(root().join("infra/grafana/barrage.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut queries: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(String::from))
        .collect();
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(q) = var["query"]["query"].as_str() {
            // label_values(METRIC, LABEL) is Grafana's, not PromQL: keep its metric.
            if let Some(inner) = q.strip_prefix("label_values(") {
                queries.push(inner.split(',').next().unwrap_or_default().to_string());
            }
        }
    }
    let metrics: std::collections::BTreeSet<String> =
        queries.iter().flat_map(|q| metric_names(q)).collect();
    let unknown = metrics
        .iter()
        .filter(|m| !exported.contains(*m))
        .cloned()
        .collect();
    let rules: String = queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let q = q
                .replace("$__rate_interval", "1m")
                .replace("$load_test", ".*");
            format!(
                "      - record: barrage:dashboard_query_{i}\n        expr: {}\n",
                serde_json::to_string(&q).unwrap()
            )
        })
        .collect();
    let file = barrage_system_tests::temp_file(
        "dashboard-rules.yml",
        &format!("groups:\n  - name: dashboard\n    rules:\n{rules}"),
    );
    let out = run_bounded(
        Command::new(promtool).args(["check", "rules"]).arg(&file),
        Duration::from_secs(30),
    );
    let check = DashboardCheck {
        queries: queries.len(),
        metrics,
        unknown,
        rules_check: out.status.code(),
        rules_printed: String::from_utf8_lossy(&out.stdout).trim().to_string(),
    };
    println!(
        "dashboard: {} queries over {} metrics, {} not exported; promtool check rules exit {:?}: {}",
        check.queries,
        check.metrics.len(),
        check.unknown.len(),
        check.rules_check,
        check.rules_printed.lines().last().unwrap_or_default()
    );
    check
}

/// The `barrage_…` metric names in a PromQL query.
fn metric_names(query: &str) -> Vec<String> {
    query
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("barrage_"))
        .map(String::from)
        .collect()
}

/// `promtool check config` of each scrape example: (file, exit code, what it printed).
fn check_scrape_configs(promtool: &PathBuf) -> Vec<(String, Option<i32>, String)> {
    ["local.yml", "ecs.yml"]
        .iter()
        .map(|f| {
            let path = root().join("infra/prometheus").join(f);
            let out = run_bounded(
                Command::new(promtool).args(["check", "config"]).arg(&path),
                Duration::from_secs(30),
            );
            let printed = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            println!(
                "scrape config {f}: promtool check config exit {:?}: {}",
                out.status.code(),
                printed
                    .lines()
                    .find(|l| l.contains("SUCCESS") || l.contains("FAILED"))
                    .unwrap_or_default()
                    .trim()
            );
            (f.to_string(), out.status.code(), printed)
        })
        .collect()
}

#[test]
fn the_ecs_discovery_script_lists_each_running_task_with_an_address_on_the_metrics_port() {
    // boto3 comes with the emulator's Python (scripts/services.sh env: BARRAGE_AWS_PYTHON).
    let Some(python) = std::env::var("BARRAGE_AWS_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
    else {
        assert!(
            std::env::var("BARRAGE_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "BARRAGE_AWS_PYTHON is not set"
        );
        return;
    };
    let out = run_bounded(
        Command::new(python)
            .arg(root().join("tests/python/ecs_targets_fake.py"))
            .arg(root().join("infra/prometheus/ecs_targets.py")),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out));
    let groups: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    println!("ecs discovery on a fake cluster: {groups}");
    let groups = groups.as_array().expect("a list");
    assert_eq!(groups.len(), 2, "the task without an address is left out");
    assert_eq!(groups[0]["targets"][0], "10.0.1.5:9464");
    assert_eq!(groups[0]["labels"]["ecs_task_family"], "barrage-agent");
    assert_eq!(groups[0]["labels"]["ecs_group"], "barrage:lt-a");
    assert_eq!(groups[1]["targets"][0], "10.0.1.9:9464");
    assert_eq!(groups[1]["labels"]["ecs_task_family"], "barrage-controller");
}
