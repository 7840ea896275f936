//! RoundTrip under the operator: a controller with the process launcher runs two
//! `barrage-agent` processes against the real broker and the AWS emulator; each agent sends
//! sequence-numbered records and consumes its own back, and uploads its end-to-end histograms
//! and loss / duplicate / reorder counters with its intervals, so the merged report has them.
//!
//! Consume under the operator too: two agents in one consumer group read a topic of known
//! content, and the merged report counts exactly its records with their end-to-end latency.
//!
//! The operator set-up is a copy of the small part of `operator_e2e.rs` this test needs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use barrage_system_tests::{aws_endpoint, binary, kafka, root, run_bounded, unique};

/// One controller on its own table and bucket.
struct Operator {
    table: String,
    bucket: String,
    dir: PathBuf,
    controllers: Vec<(String, Child)>,
}

impl Operator {
    /// Creates the table and the bucket (`barrage admin init`) and starts a controller.
    fn start(tag: &str) -> Operator {
        let table = unique(&format!("barrage-e2e-{tag}"));
        let bucket = unique(&format!("barrage-e2e-{tag}"));
        let dir = std::env::temp_dir().join(unique("barrage-operator"));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let mut op = Operator {
            table,
            bucket,
            dir,
            controllers: Vec::new(),
        };
        let out = op.barrage(&["admin", "init"], Duration::from_secs(60));
        assert!(out.status.success(), "admin init failed: {}", text(&out));
        op.start_controller("first");
        op
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("BARRAGE_STORE", format!("dynamodb://{}", self.table))
            .env("BARRAGE_BLOBS", format!("s3://{}", self.bucket))
            .env("BARRAGE_AGENT_LOG_DIR", self.dir.join("agents"))
            .env("BARRAGE_AGENT_HEARTBEAT", "1s")
            .env("BARRAGE_LOG_FORMAT", "compact");
    }

    fn start_controller(&mut self, id: &str) {
        let log =
            std::fs::File::create(self.dir.join(format!("controller-{id}.log"))).expect("log");
        let mut cmd = Command::new(binary("barrage"));
        cmd.args([
            "controller",
            "--launcher",
            "process",
            "--metrics-addr",
            "off",
            "--resync",
            "3s",
            "--lease-duration",
            "6s",
            "--id",
            id,
            "--agent-binary",
        ])
        .arg(binary("barrage-agent"))
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
        self.env(&mut cmd);
        self.controllers
            .push((id.to_string(), cmd.spawn().expect("the controller starts")));
    }

    /// Runs `barrage ARGS` against this operator's table and bucket.
    fn barrage(&self, args: &[&str], limit: Duration) -> Output {
        let mut cmd = Command::new(binary("barrage"));
        cmd.args(args);
        self.env(&mut cmd);
        run_bounded(&mut cmd, limit)
    }

    /// The record as `barrage get NAME -o json` prints it.
    fn get(&self, name: &str) -> serde_json::Value {
        let out = self.barrage(&["get", name, "-o", "json"], Duration::from_secs(30));
        assert!(out.status.success(), "get {name}: {}", text(&out));
        serde_json::from_slice(&out.stdout).expect("get -o json prints JSON")
    }

    /// Waits until `name` is in a terminal phase; its status.
    fn wait_terminal(&self, name: &str, limit: Duration) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.get(name);
            let phase = v["status"]["phase"].as_str().unwrap_or("").to_string();
            if ["Succeeded", "Failed", "Cancelled"].contains(&phase.as_str()) {
                return v["status"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "loadtest/{name} still {phase} after {limit:?}\n{}",
                self.controller_log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn controller_log(&self) -> String {
        let mut s = String::new();
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "log") {
                let t = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: Vec<&str> = t.lines().rev().take(40).collect();
                s.push_str(&format!("--- {} (tail)\n", p.display()));
                for l in tail.into_iter().rev() {
                    s.push_str(l);
                    s.push('\n');
                }
            }
        }
        s
    }

    /// Live agent processes of this operator: `(pid, slot, incarnation)`.
    fn agents(&self) -> Vec<(u32, u32, u32)> {
        let marker = format!("BARRAGE_STORE=dynamodb://{}", self.table);
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(env) = std::fs::read(entry.path().join("environ")) else {
                continue;
            };
            let vars: Vec<String> = env
                .split(|b| *b == 0)
                .map(|v| String::from_utf8_lossy(v).to_string())
                .collect();
            if !vars.contains(&marker) {
                continue;
            }
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            if stat.contains(") Z ") {
                continue; // a zombie waiting for the controller to reap it
            }
            let num = |name: &str| {
                vars.iter()
                    .find_map(|v| v.strip_prefix(&format!("{name}=")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(u32::MAX)
            };
            // The controller has the same store in its environment, but no slot.
            if !vars.iter().any(|v| v.starts_with("BARRAGE_SLOT=")) {
                continue;
            }
            found.push((pid, num("BARRAGE_SLOT"), num("BARRAGE_INCARNATION")));
        }
        found
    }

    /// Signals controller `id` (`TERM` or `KILL`) and waits for it to exit (bounded).
    fn stop_controller(&mut self, id: &str, signal: &str) {
        let Some(pos) = self.controllers.iter().position(|(c, _)| c == id) else {
            return;
        };
        let (_, mut child) = self.controllers.remove(pos);
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let ids: Vec<String> = self.controllers.iter().map(|(id, _)| id.clone()).collect();
        for id in ids {
            self.stop_controller(&id, "TERM");
        }
        for (pid, _, _) in self.agents() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("a runtime")
}

/// An object of the emulator's S3.
fn s3_get(bucket: &str, key: &str) -> Option<Vec<u8>> {
    rt().block_on(async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let conf = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build();
        let client = aws_sdk_s3::Client::from_conf(conf);
        let out = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.ok()?.into_bytes().to_vec())
    })
}

fn report_json(op: &Operator, name: &str, run: &str) -> serde_json::Value {
    let key = format!("runs/{name}/{run}/report/report.json");
    let body =
        s3_get(&op.bucket, &key).unwrap_or_else(|| panic!("s3://{}/{key} exists", op.bucket));
    serde_json::from_slice(&body).expect("report.json is JSON")
}

fn round_trip_spec(name: &str, topic: &str, bootstrap: &str) -> String {
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
      partitions: 3
      replicationFactor: 1
    cleanup: DeleteIfCreated
  workload:
    kind: RoundTrip
    records:
      value:
        size: 200
  load:
    steps:
      - constant: {{rate: 200, for: 5s}}
  agents:
    count: 2
  report:
    interval: 1s
  thresholds:
    - \"records.lost <= 0\"
    - \"records.duplicated <= 0\"
    - \"e2e.p99 < 10s\"
"
    )
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
    let out = op.barrage(
        &[
            "apply",
            "-f",
            file.to_str().unwrap(),
            "--wait",
            "--timeout",
            "150s",
        ],
        Duration::from_secs(180),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out),
        op.controller_log()
    );
    let status = op.wait_terminal(&name, Duration::from_secs(30));
    assert_eq!(status["phase"], "Succeeded", "{status}");
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
    // 1 200 records first, with `barrage run` (in-process, no operator).
    let produce = round_trip_spec(&name, &topic, &bootstrap)
        .replace("kind: RoundTrip", "kind: Produce")
        .replace("rate: 200, for: 5s", "rate: 400, for: 3s")
        .replace("    count: 2", "    count: 1");
    let produce = produce
        .split("  thresholds:")
        .next()
        .unwrap_or_default()
        .to_string();
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

    // Then two Consume agents in one group, from the earliest offset.
    let consume = format!(
        "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata:
  name: {name}
spec:
  kafka:
    bootstrapServers: {bootstrap}
    consumer:
      autoOffsetReset: earliest
  topic:
    name: {topic}
  workload:
    kind: Consume
  load:
    steps:
      - constant: {{rate: 1, for: 8s}}
  agents:
    count: 2
  report:
    interval: 1s
  thresholds:
    - \"errors.count <= 0\"
"
    );
    let cfile = op.dir.join("consume.yaml");
    std::fs::write(&cfile, consume).expect("spec file");
    let out = op.barrage(
        &[
            "apply",
            "-f",
            cfile.to_str().unwrap(),
            "--wait",
            "--timeout",
            "150s",
        ],
        Duration::from_secs(180),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out),
        op.controller_log()
    );
    let status = op.wait_terminal(&name, Duration::from_secs(30));
    assert_eq!(status["phase"], "Succeeded", "{status}");
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
}
