//! # barrage-system-tests — shared helpers for the system tests
//!
//! The tests in `tests/tests/` run against the real services that `scripts/services.sh up`
//! starts: an Apache Kafka broker (KRaft) and moto server on 127.0.0.1. They find them from
//! the environment that `scripts/services.sh env` prints. When the services are missing a
//! test prints why and returns, unless `BARRAGE_REQUIRE_SERVICES=1` (as in CI), where it fails.

pub mod fault;
pub mod iam;
pub mod operator;
pub mod report_walk;
pub mod spec;
pub mod stream;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The Kafka bootstrap address, if the services are up.
pub fn kafka() -> Option<String> {
    required("BARRAGE_KAFKA_BOOTSTRAP", "Kafka broker")
}

/// The AWS emulator's endpoint, if the services are up.
pub fn aws_endpoint() -> Option<String> {
    required("AWS_ENDPOINT_URL", "AWS emulator")
}

fn required(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let msg = format!(
                "no {what}: {var} is not set (run `scripts/services.sh up` and `eval \"$(scripts/services.sh env)\"`)"
            );
            if std::env::var("BARRAGE_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{msg}; BARRAGE_REQUIRE_SERVICES=1 requires the real services");
            }
            eprintln!("skipped: {msg}");
            None
        }
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Path of a workspace binary (`barrage`, `barrage-agent`). `cargo test --workspace` builds
/// them from the current sources before any test runs; running this package's tests alone
/// (`cargo test -p barrage-system-tests`) uses what `cargo build --bins` last built, so build
/// first. A missing binary is built here (with this package's feature set, which is slower).
pub fn binary(name: &str) -> PathBuf {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().and_then(Path::parent).map(Path::to_path_buf))
        .unwrap_or_else(|| root().join("target").join("debug"));
    let path = dir.join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--bins", "-p", "barrage", "-p", "barrage-agent"])
            .current_dir(root())
            .status()
            .expect("cargo build runs");
        assert!(status.success(), "building the binaries failed");
    }
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Runs `barrage ARGS` and returns its output; kills it and fails if it takes longer than
/// `limit` (a hang check, not a performance assertion).
pub fn barrage(args: &[&str], limit: Duration) -> Output {
    run_bounded(Command::new(binary("barrage")).args(args), limit)
}

/// `barrage run SPEC --out DIR EXTRA…` with DIR the folder `out` beside the spec file, bounded
/// by `limit`; the output and DIR (report.json and the rest).
pub fn barrage_run(spec: &Path, extra: &[&str], limit: Duration) -> (Output, PathBuf) {
    let out_dir = spec.with_file_name("out");
    let mut args = vec![
        "run",
        spec.to_str().expect("utf-8 path"),
        "--out",
        out_dir.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    (barrage(&args, limit), out_dir)
}

/// Runs a command, killing it if it outlives `limit`. Output is drained while it runs, so a
/// chatty command cannot block on a full pipe.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    use std::io::Read;
    let mut child = cmd
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait().expect("waiting on the child") {
            Some(status) => break status,
            None if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                let stdout = out.join().unwrap_or_default();
                let stderr = err.join().unwrap_or_default();
                panic!(
                    "{cmd:?} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&stdout),
                    String::from_utf8_lossy(&stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Counts every record of `topic` from the beginning, until `expected` or `limit`.
pub fn count_records(bootstrap: &str, topic: &str, expected: u64, limit: Duration) -> u64 {
    let mut n = 0u64;
    for_each_record(bootstrap, topic, expected, limit, |_| n += 1);
    n
}

/// Every value of `topic` from the beginning, until `expected` or `limit`.
pub fn read_values(bootstrap: &str, topic: &str, expected: u64, limit: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for_each_record(bootstrap, topic, expected, limit, |v| out.push(v.to_vec()));
    out
}

/// Every record key of `topic` read as a decimal number (sequential keys: the fleet-wide send
/// index), until `expected` or `limit`; records without such a key are left out.
pub fn read_numeric_keys(bootstrap: &str, topic: &str, expected: u64, limit: Duration) -> Vec<u64> {
    let mut out = Vec::new();
    for_each_message(bootstrap, topic, expected, limit, |key, _| {
        if let Some(k) = key
            .and_then(|k| std::str::from_utf8(k).ok())
            .and_then(|k| k.parse().ok())
        {
            out.push(k);
        }
    });
    out
}

/// Reads `topic` from the beginning, calling `f` with each value, until `expected` records
/// (plus a second for stragglers and duplicates) or `limit`.
pub fn for_each_record(
    bootstrap: &str,
    topic: &str,
    expected: u64,
    limit: Duration,
    mut f: impl FnMut(&[u8]),
) {
    for_each_message(bootstrap, topic, expected, limit, |_, value| f(value));
}

/// [`for_each_record`], calling `f` with each record's key and value.
pub fn for_each_message(
    bootstrap: &str,
    topic: &str,
    expected: u64,
    limit: Duration,
    mut f: impl FnMut(Option<&[u8]>, &[u8]),
) {
    use rdkafka::message::Message;
    for_each_borrowed(bootstrap, topic, expected, limit, |m| {
        f(m.key(), m.payload().unwrap_or_default())
    });
}

/// Every record timestamp of `topic` (milliseconds since the epoch, the producer's create
/// time), until `expected` or `limit`; records without one are left out.
pub fn read_timestamps(bootstrap: &str, topic: &str, expected: u64, limit: Duration) -> Vec<i64> {
    use rdkafka::message::Message;
    let mut out = Vec::new();
    for_each_borrowed(bootstrap, topic, expected, limit, |m| {
        out.extend(m.timestamp().to_millis());
    });
    out
}

fn for_each_borrowed(
    bootstrap: &str,
    topic: &str,
    expected: u64,
    limit: Duration,
    mut f: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
) {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("barrage-test-count"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + limit;
    let mut n = 0u64;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                n += 1;
                f(&m);
            }
            Some(Err(e)) => eprintln!("consume error: {e}"),
            None if n >= expected => {
                // Nothing more arrived for a poll interval after reaching the expected count:
                // give duplicates a second to show up, then stop.
                std::thread::sleep(Duration::from_secs(1));
                while let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                    f(&m);
                }
                break;
            }
            None => {}
        }
    }
}

/// The reasons printed under an `Invalid` verdict, trimmed: `barrage run` prints
/// `Verdict: Invalid` and its reasons indented by 2, `barrage apply --wait` prints
/// `  verdict Invalid` and its reasons indented by 4. Empty for any other verdict.
pub fn invalid_reasons(stdout: &str) -> Vec<&str> {
    let mut lines = stdout.lines().skip_while(|l| {
        let t = l.trim();
        t != "Verdict: Invalid" && t != "verdict Invalid"
    });
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let indent = " ".repeat(header.len() - header.trim_start().len() + 2);
    lines
        .take_while(|l| l.starts_with(&indent))
        .map(str::trim)
        .collect()
}

/// The number after `label` on a summary line of `barrage run` (`records acked     10,000`).
pub fn summary_count(stdout: &str, label: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(|rest| rest.trim().replace(',', ""))
        .and_then(|n| n.split_whitespace().next().map(str::to_string))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{stdout}"))
}

/// The `records per partition  0:3,324  1:3,240 …` line of a `barrage run` summary, as counts
/// by partition (empty when the line is missing).
pub fn summary_per_partition(stdout: &str) -> Vec<u64> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("records per partition"))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|pair| pair.split_once(':'))
                .filter_map(|(_, n)| n.replace(',', "").parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `key N` pairs of a summary line such as `round trip: consumed 10 lost 0 duplicated 0`.
pub fn summary_field(stdout: &str, line_marker: &str, key: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.contains(line_marker))
        .unwrap_or_else(|| panic!("no `{line_marker}` line in:\n{stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == key)
        .and_then(|w| w[1].replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no `{key} N` in: {line}"))
}

/// Writes `text` to a fresh temporary file and returns its path.
pub fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("barrage-test"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp file");
    path
}

/// The Python of the venv that `scripts/install-tools.sh --readers-only` keeps, with Kafka
/// readers that are not Barrage's (kafka-python, fastavro); installs them when missing
/// (idempotent: a second call costs a few version checks). Skips like a missing service
/// (`None`), unless `BARRAGE_REQUIRE_SERVICES=1`, where a failed install fails the test.
/// Installed once per test process; the script itself lets one install run at a time.
pub fn python_readers() -> Option<PathBuf> {
    static READERS: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    READERS.get_or_init(install_python_readers).clone()
}

fn install_python_readers() -> Option<PathBuf> {
    let out = run_bounded(
        Command::new("bash")
            .arg(root().join("scripts/install-tools.sh"))
            .arg("--readers-only"),
        Duration::from_secs(600),
    );
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let python = last
        .strip_prefix("PATH+=")
        .and_then(|p| p.split(':').next())
        .map(|bin| PathBuf::from(bin).join("python"));
    match python {
        Some(p) if out.status.success() && p.exists() => Some(p),
        _ => {
            let msg = format!(
                "no Python readers: scripts/install-tools.sh --readers-only failed ({:?}): {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
            if std::env::var("BARRAGE_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{msg}");
            }
            eprintln!("skipped: {msg}");
            None
        }
    }
}

/// Every record of `topic` read back by `tests/python/read_back.py` (kafka-python, and
/// fastavro for Avro): `decode` is `["--json"]` or `["--avro", SCHEMA_FILE, "--confluent"]`.
/// One JSON object per record: `partition`, `offset`, `timestamp` (the Kafka timestamp, ms)
/// and the decoded `value`.
pub fn read_back_with_python(
    python: &Path,
    bootstrap: &str,
    topic: &str,
    expected: u64,
    decode: &[&str],
) -> Vec<serde_json::Value> {
    let out = run_bounded(
        Command::new(python)
            .arg(root().join("tests/python/read_back.py"))
            .args([bootstrap, topic, &expected.to_string(), "90"])
            .args(decode),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "read_back.py failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("read_back.py printed {l:?}: {e}"))
        })
        .collect()
}
