//! Log format of the two long-running binaries: JSON (one object per line) when stderr is not
//! a terminal — as under ECS, a log file or a pipe — and text when asked with `--log-format
//! text` or `BARRAGE_LOG_FORMAT=text`. Needs no service: the controller runs on the in-memory
//! store, and the agent is pointed at a LoadTest that does not exist (it logs, then exits 1).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use barrage_system_tests::{binary, root, run_bounded, unique};

/// Lines that parse as a JSON object with a level and fields, as tracing's JSON format writes.
fn json_line(line: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    (v.get("level").is_some() && v.get("fields").is_some()).then_some(v)
}

fn message(v: &serde_json::Value) -> &str {
    v["fields"]["message"].as_str().unwrap_or("")
}

/// Starts `barrage controller` on the memory store with stderr on a pipe, waits for its
/// "Controller started." line, stops it with SIGTERM and returns every stderr line.
fn controller_stderr(extra: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let agent = binary("barrage-agent");
    let agents = std::env::temp_dir().join(unique("barrage-logs-agents"));
    let mut cmd = Command::new(binary("barrage"));
    cmd.args([
        "controller",
        "--launcher",
        "process",
        "--store",
        "memory:",
        "--blobs",
        "memory:",
        "--metrics-addr",
        "off",
        "--agent-binary",
    ])
    .arg(&agent)
    .args(extra)
    .env_remove("BARRAGE_LOG_FORMAT")
    .env_remove("RUST_LOG")
    // Its own agent folder: the process launcher adopts (and reaps) what it finds there.
    .env("BARRAGE_AGENT_LOG_DIR", &agents)
    .envs(env.iter().copied())
    .current_dir(root())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("barrage controller starts");
    let stderr = child.stderr.take().expect("a stderr pipe");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let started = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                // Leading means the controller is in its loop, listening for SIGTERM.
                let done = line.contains("Leading: reconciling every LoadTest.");
                lines.push(line);
                if done {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let waited = run_wait(&mut child, Duration::from_secs(20));
    let _ = reader.join();
    lines.extend(rx.try_iter());
    let _ = std::fs::remove_dir_all(&agents);
    assert!(
        started,
        "the controller said it leads:\n{}",
        lines.join("\n")
    );
    assert!(
        waited,
        "the controller stops on SIGTERM:\n{}",
        lines.join("\n")
    );
    lines
}

fn run_wait(child: &mut std::process::Child, limit: Duration) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

#[test]
fn the_controller_logs_json_lines_when_stderr_is_a_pipe() {
    let lines = controller_stderr(&[], &[]);
    println!(
        "barrage controller, stderr on a pipe:\n{}",
        lines.join("\n")
    );
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| json_line(l).unwrap_or_else(|| panic!("not a JSON log line: {l}")))
        .collect();
    assert!(
        parsed.iter().any(|v| message(v) == "Controller started."),
        "{lines:?}"
    );
    assert!(
        parsed.iter().any(|v| message(v) == "Controller stopped."),
        "a graceful stop is logged too: {lines:?}"
    );
}

#[test]
fn the_controller_logs_text_when_asked_by_flag_or_variable() {
    for (extra, env) in [
        (&["--log-format", "text"][..], &[][..]),
        (&[][..], &[("BARRAGE_LOG_FORMAT", "text")][..]),
    ] {
        let lines = controller_stderr(extra, env);
        assert!(
            lines.iter().all(|l| json_line(l).is_none()),
            "text lines only: {lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("Controller started.")),
            "{lines:?}"
        );
    }
}

fn agent(env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(binary("barrage-agent"));
    cmd.env_remove("BARRAGE_LOG_FORMAT")
        .env_remove("RUST_LOG")
        .envs([
            ("BARRAGE_LOADTEST", "no-such-load-test"),
            ("BARRAGE_RUN_ID", "r1"),
            ("BARRAGE_SLOT", "0"),
            ("BARRAGE_INCARNATION", "0"),
            ("BARRAGE_STORE", "memory:"),
            ("BARRAGE_BLOBS", "memory:"),
            ("BARRAGE_METRICS_ADDR", "127.0.0.1:0"),
        ])
        .envs(env.iter().copied());
    run_bounded(&mut cmd, Duration::from_secs(30))
}

#[test]
fn the_agent_logs_json_lines_when_stderr_is_a_pipe_and_names_its_metrics_port() {
    let out = agent(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("barrage-agent, stderr on a pipe:\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "the LoadTest does not exist");
    let parsed: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| json_line(l).unwrap_or_else(|| panic!("not a JSON log line: {l}")))
        .collect();
    let serving = parsed
        .iter()
        .find(|v| message(v) == "Serving /metrics and /healthz.")
        .unwrap_or_else(|| panic!("the metrics address is logged:\n{stderr}"));
    let addr = serving["fields"]["addr"].as_str().unwrap_or("");
    let port: u16 = addr
        .strip_prefix("127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    assert!(port > 0, "port 0 became a real port: {addr}");
    assert!(
        parsed
            .iter()
            .any(|v| v["level"] == "ERROR" && message(v) == "Agent failed."),
        "{stderr}"
    );
}

#[test]
fn the_agent_logs_text_when_asked() {
    let out = agent(&[("BARRAGE_LOG_FORMAT", "text")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().all(|l| json_line(l).is_none()), "{stderr}");
    assert!(stderr.contains("Agent failed."), "{stderr}");
    let mut cmd = Command::new(binary("barrage-agent"));
    cmd.args(["--log-format", "json"])
        .env("BARRAGE_LOG_FORMAT", "text")
        .envs([
            ("BARRAGE_LOADTEST", "no-such-load-test"),
            ("BARRAGE_RUN_ID", "r1"),
            ("BARRAGE_SLOT", "0"),
            ("BARRAGE_INCARNATION", "0"),
            ("BARRAGE_STORE", "memory:"),
            ("BARRAGE_BLOBS", "memory:"),
            ("BARRAGE_METRICS_ADDR", "off"),
        ]);
    let out = run_bounded(&mut cmd, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .filter(|l| !l.is_empty())
            .all(|l| json_line(l).is_some()),
        "the flag wins over the variable:\n{stderr}"
    );
}
