//! The operator harness of the system tests: a `barrage controller --launcher process` on its
//! own DynamoDB table and S3 bucket of the AWS emulator, running `barrage-agent` processes
//! against the real broker in place of ECS tasks.
//!
//! Every [`Operator`] gets its own table, bucket and temporary folder (so tests run side by
//! side), bounds every wait, and stops what it started: the controllers (SIGTERM, then
//! SIGKILL) and any agent process of its table still alive (found through `/proc/*/environ`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{binary, root, run_bounded, unique};

/// One controller (or several, one after the other or side by side) on its own table and
/// bucket. Dropping it stops every controller it started (SIGTERM, then SIGKILL) and kills
/// any agent process of its table still alive.
pub struct Operator {
    /// The DynamoDB table (`BARRAGE_STORE=dynamodb://TABLE`).
    pub table: String,
    /// The S3 bucket (`BARRAGE_BLOBS=s3://BUCKET`).
    pub bucket: String,
    /// A temporary folder: controller logs (`controller-ID.log`) and agent logs (`agents/`).
    pub dir: PathBuf,
    /// More variables for every command and controller (and so its agents).
    extra_env: Vec<(String, String)>,
    controllers: Vec<(String, Child)>,
}

impl Operator {
    /// Creates the table and the bucket `barrage-e2e-TAG-…` (`barrage admin init`) and starts
    /// controller `first`.
    pub fn start(tag: &str) -> Operator {
        Operator::start_named(&format!("barrage-e2e-{tag}"), "barrage-operator", "first")
    }

    /// Creates the table and the bucket `PREFIX-…` (`barrage admin init`), the temporary
    /// folder `DIR_PREFIX-…`, and starts controller `controller`.
    pub fn start_named(prefix: &str, dir_prefix: &str, controller: &str) -> Operator {
        Operator::start_with_env(prefix, dir_prefix, controller, &[])
    }

    /// [`Operator::start_named`], with `extra` variables for every command and controller
    /// (the process launcher passes some on to the agents, such as `AWS_ENDPOINT_URL_S3`).
    pub fn start_with_env(
        prefix: &str,
        dir_prefix: &str,
        controller: &str,
        extra: &[(&str, &str)],
    ) -> Operator {
        let mut op = Operator::init(prefix, dir_prefix, extra);
        op.start_controller(controller);
        op
    }

    /// The table, bucket and folder of [`Operator::start_with_env`], with no controller yet.
    pub fn init(prefix: &str, dir_prefix: &str, extra: &[(&str, &str)]) -> Operator {
        let table = unique(prefix);
        let bucket = unique(prefix);
        let dir = std::env::temp_dir().join(unique(dir_prefix));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let op = Operator {
            table,
            bucket,
            dir,
            extra_env: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            controllers: Vec::new(),
        };
        let out = op.barrage(&["admin", "init"], Duration::from_secs(60));
        assert!(out.status.success(), "admin init failed: {}", text(&out));
        op
    }

    /// The environment every `barrage` command of this operator gets.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("BARRAGE_STORE", format!("dynamodb://{}", self.table))
            .env("BARRAGE_BLOBS", format!("s3://{}", self.bucket))
            .env("BARRAGE_AGENT_LOG_DIR", self.dir.join("agents"))
            .env("BARRAGE_AGENT_HEARTBEAT", "1s")
            .env("BARRAGE_LOG_FORMAT", "compact")
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)));
    }

    /// Starts controller `id` (process launcher), logging to `DIR/controller-ID.log`.
    pub fn start_controller(&mut self, id: &str) {
        self.start_controller_with(id, &[]);
    }

    /// [`Operator::start_controller`] with more variables for this controller (and so its
    /// agents) only, e.g. its own `AWS_ENDPOINT_URL` through a [`crate::fault::FaultProxy`].
    /// Its metrics are off unless `extra` has `BARRAGE_METRICS_ADDR`.
    pub fn start_controller_with(&mut self, id: &str, extra: &[(&str, &str)]) {
        let metrics = extra
            .iter()
            .find(|(k, _)| *k == "BARRAGE_METRICS_ADDR")
            .map_or("off", |(_, v)| *v);
        let log =
            std::fs::File::create(self.dir.join(format!("controller-{id}.log"))).expect("log");
        let mut cmd = Command::new(binary("barrage"));
        cmd.args([
            "controller",
            "--launcher",
            "process",
            "--metrics-addr",
            metrics,
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
        cmd.envs(extra.iter().copied());
        self.controllers
            .push((id.to_string(), cmd.spawn().expect("the controller starts")));
    }

    /// Runs `barrage ARGS` against this operator's table and bucket.
    pub fn barrage(&self, args: &[&str], limit: Duration) -> Output {
        let mut cmd = Command::new(binary("barrage"));
        cmd.args(args);
        self.env(&mut cmd);
        run_bounded(&mut cmd, limit)
    }

    /// `barrage apply -f FILE --wait --timeout T` (bounded at `T` + 30 s); asserts that it
    /// exits with `code` (0: Succeeded, 1: thresholds failed), with the controller log if not.
    /// For 0, a verdict `Invalid` whose only reasons are schedule lag (exit 3) also passes: on
    /// this machine's two cores a run that creates its topic can lose the sender's CPU to the
    /// broker (see [`lag_only`]); these tests check the operator, not the generator.
    pub fn apply_wait(&self, file: &Path, timeout: Duration, code: i32) -> Output {
        let file = file.to_string_lossy();
        let timeout_arg = format!("{}s", timeout.as_secs());
        let out = self.barrage(
            &["apply", "-f", &file, "--wait", "--timeout", &timeout_arg],
            timeout + Duration::from_secs(30),
        );
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let reasons = crate::invalid_reasons(&stdout);
        let lagged = code == 0 && out.status.code() == Some(3) && lag_only(&reasons);
        if lagged {
            println!("apply --wait: verdict Invalid for schedule lag only: {reasons:?}");
        }
        assert!(
            out.status.code() == Some(code) || lagged,
            "exit {:?}, expected {code}\n{}\n{}",
            out.status.code(),
            text(&out),
            self.controller_log()
        );
        out
    }

    /// The record as `barrage get NAME -o json` prints it.
    pub fn get(&self, name: &str) -> serde_json::Value {
        let out = self.barrage(&["get", name, "-o", "json"], Duration::from_secs(30));
        assert!(out.status.success(), "get {name}: {}", text(&out));
        serde_json::from_slice(&out.stdout).expect("get -o json prints JSON")
    }

    /// Waits until `name` is in `phase` (bounded by `limit`), with the controller log if not.
    pub fn wait_phase(&self, name: &str, phase: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.get(name)["status"]["phase"] != phase {
            assert!(
                Instant::now() < deadline,
                "loadtest/{name} not {phase} within {limit:?}\n{}",
                self.controller_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until `name` is in a terminal phase; its status.
    pub fn wait_terminal(&self, name: &str, limit: Duration) -> serde_json::Value {
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

    /// The last 40 lines of every controller log.
    pub fn controller_log(&self) -> String {
        self.controller_log_lines(40)
    }

    /// The last `lines` lines of every controller log, each under a `--- PATH (tail)` header.
    pub fn controller_log_lines(&self, lines: usize) -> String {
        let mut s = String::new();
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "log") {
                let t = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: Vec<&str> = t.lines().rev().take(lines).collect();
                s.push_str(&format!("--- {} (tail)\n", p.display()));
                for l in tail.into_iter().rev() {
                    s.push_str(l);
                    s.push('\n');
                }
            }
        }
        s
    }

    /// Live agent processes of this operator: `(pid, slot, incarnation)`, by pid.
    pub fn agents(&self) -> Vec<(u32, u32, u32)> {
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
        found.sort_unstable();
        found
    }

    /// The process id of controller `id`, if this operator started it and has not stopped it.
    pub fn pid_of(&self, id: &str) -> Option<u32> {
        self.controllers
            .iter()
            .find(|(c, _)| c == id)
            .map(|(_, child)| child.id())
    }

    /// The process id of the first controller still running, if any.
    pub fn controller_pid(&self) -> Option<u32> {
        self.controllers.first().map(|(_, c)| c.id())
    }

    /// Agent log files (one per task): `(slot, incarnation)` of every task launched.
    pub fn launched(&self) -> Vec<(u32, u32)> {
        let mut v: Vec<(u32, u32)> = std::fs::read_dir(self.dir.join("agents"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let stem = name.strip_suffix(".log")?;
                let mut parts = stem.rsplit('-');
                let inc = parts.next()?.parse().ok()?;
                let slot = parts.next()?.parse().ok()?;
                Some((slot, inc))
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Signals controller `id` (`TERM` or `KILL`) and waits for it to exit (bounded: SIGKILL
    /// after 60 s); how long it took to exit by itself, `None` if it had to be killed.
    pub fn stop_controller(&mut self, id: &str, signal: &str) -> Option<Duration> {
        let pos = self.controllers.iter().position(|(c, _)| c == id)?;
        let (_, mut child) = self.controllers.remove(pos);
        let started = Instant::now();
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The leader lease's epoch (fencing token), read from the table, expired or not.
    pub fn lease_epoch(&self) -> Option<u64> {
        rt().block_on(async {
            use aws_sdk_dynamodb::types::AttributeValue;
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .load()
                .await;
            let out = aws_sdk_dynamodb::Client::new(&sdk)
                .get_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S("lease#controller".into()))
                .key("sk", AttributeValue::S("lease".into()))
                .consistent_read(true)
                .send()
                .await
                .ok()?;
            out.item?.get("epoch")?.as_n().ok()?.parse().ok()
        })
    }

    /// The leader lease's holder, read from the table.
    pub fn lease_holder(&self) -> Option<String> {
        rt().block_on(async {
            use aws_sdk_dynamodb::types::AttributeValue;
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .load()
                .await;
            let client = aws_sdk_dynamodb::Client::new(&sdk);
            let out = client
                .get_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S("lease#controller".into()))
                .key("sk", AttributeValue::S("lease".into()))
                .consistent_read(true)
                .send()
                .await
                .ok()?;
            let item = out.item?;
            let expires: i64 = item.get("expires_at_ms")?.as_n().ok()?.parse().ok()?;
            if expires <= unix_now() * 1000 {
                return None;
            }
            item.get("holder")?.as_s().ok().cloned()
        })
    }

    /// Waits until `id` holds the lease; how long that took.
    pub fn wait_holder(&self, id: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.lease_holder().as_deref() == Some(id) {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{id} did not take the lease within {limit:?} (holder {:?})\n{}",
            self.lease_holder(),
            self.controller_log()
        );
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

/// True when `reasons` (a verdict's) are not empty and all are the schedule-lag bound: the
/// sender lost the CPU, nothing the operator did.
pub fn lag_only<S: AsRef<str>>(reasons: &[S]) -> bool {
    !reasons.is_empty()
        && reasons
            .iter()
            .all(|r| r.as_ref().starts_with("generator saturated: schedule lag"))
}

/// A run's status is `Succeeded`, or `Failed` only because its verdict is `Invalid` for
/// schedule lag alone ([`is_or_lag_only`]): the operator did its part.
pub fn succeeded_or_lag_only(status: &serde_json::Value) -> bool {
    status["phase"] == "Succeeded"
        || (status["phase"] == "Failed" && is_or_lag_only(&status["verdict"], "Passed"))
}

/// A report's verdict is `expected`, or `Invalid` (which takes precedence) whose invalid
/// reasons, listed first, are schedule lag only ([`lag_only`]) and whose other reasons are
/// what `expected` needs: none for `Passed`, at least one for `Incomplete`.
pub fn is_or_lag_only(verdict: &serde_json::Value, expected: &str) -> bool {
    let reasons: Vec<&str> = verdict["reasons"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let lag = reasons
        .iter()
        .take_while(|r| r.starts_with("generator saturated: schedule lag"))
        .count();
    let rest = &reasons[lag..];
    let rest_fits = if expected == "Passed" {
        rest.is_empty()
    } else {
        !rest.is_empty() && rest.iter().all(|r| !r.starts_with("generator "))
    };
    verdict["result"] == expected || (verdict["result"] == "Invalid" && lag > 0 && rest_fits)
}

/// Exit code, stdout and stderr of a finished command, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fresh Tokio runtime for one blocking call into the AWS SDK.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("a runtime")
}

/// An S3 client of the emulator (path-style addressing).
pub async fn s3() -> aws_sdk_s3::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// An object of the emulator's S3.
pub fn s3_get(bucket: &str, key: &str) -> Option<Vec<u8>> {
    rt().block_on(async {
        let out = s3()
            .await
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.ok()?.into_bytes().to_vec())
    })
}

/// The cumulative `report.json` of run `run` of LoadTest `name`.
pub fn report_json(op: &Operator, name: &str, run: &str) -> serde_json::Value {
    let key = format!("runs/{name}/{run}/report/report.json");
    let body =
        s3_get(&op.bucket, &key).unwrap_or_else(|| panic!("s3://{}/{key} exists", op.bucket));
    serde_json::from_slice(&body).expect("report.json is JSON")
}

/// Seconds since the epoch by the system clock.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
