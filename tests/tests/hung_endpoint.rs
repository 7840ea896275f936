//! An AWS endpoint that accepts connections and never answers (issue 12.5): commands that
//! call it end with a clear error within their operation timeout
//! (`BARRAGE_AWS_OPERATION_TIMEOUT`) instead of hanging; a controller whose calls for one
//! record (and whose watch) hang keeps serving the others and renewing its lease; an agent
//! whose uploads hang stops on SIGTERM within its task's stop timeout. Every SDK client of
//! both binaries is built by `barrage_store::aws::sdk_config`, which sets the operation and
//! attempt timeouts; the hanging is done by [`FaultProxy`] holds and a silent socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use barrage_system_tests::fault::{FaultProxy, Hold};
use barrage_system_tests::operator::{Operator, succeeded_or_lag_only, text};
use barrage_system_tests::spec::Spec;
use barrage_system_tests::{aws_endpoint, binary, kafka, run_bounded, unique};

/// Accepts every connection and holds it open, answering nothing.
fn silent_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for socket in listener.incoming().flatten() {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

#[test]
fn commands_against_an_endpoint_that_never_answers_fail_within_the_operation_timeout() {
    let endpoint = silent_endpoint();
    for args in [
        vec!["get"],
        vec!["report", "some-test", "--out", "/tmp/barrage-hung-report"],
    ] {
        let mut cmd = Command::new(binary("barrage"));
        cmd.args(&args)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("BARRAGE_STORE", "dynamodb://hung")
            .env("BARRAGE_BLOBS", "s3://hung")
            .env("BARRAGE_AWS_OPERATION_TIMEOUT", "3s")
            .env("BARRAGE_AWS_ATTEMPT_TIMEOUT", "1s");
        let started = Instant::now();
        // The bound only keeps a hang from stalling the suite; the command must end by itself.
        let out = run_bounded(&mut cmd, Duration::from_secs(90));
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!(
            "hung endpoint: barrage {} exited {:?} after {:.1}s: {}",
            args.join(" "),
            out.status.code(),
            took.as_secs_f64(),
            stderr.lines().last().unwrap_or_default()
        );
        assert_eq!(out.status.code(), Some(3), "a run error: {stderr}");
        assert!(
            stderr.to_ascii_lowercase().contains("timeout")
                || stderr.to_ascii_lowercase().contains("timed out"),
            "the error says it timed out: {stderr}"
        );
    }
}

fn apply(op: &Operator, name: &str, secs: u32, bootstrap: &str) {
    let file = op.dir.join(format!("{name}.yaml"));
    let spec = Spec::new(name, &unique("barrage-e2e-hung"), bootstrap).secs(secs);
    std::fs::write(&file, spec.yaml()).unwrap();
    let out = op.barrage(
        &["apply", "-f", file.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out));
}

fn phase(op: &Operator, name: &str) -> String {
    op.get(name)["status"]["phase"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn terminal(phase: &str) -> bool {
    ["Succeeded", "Failed", "Cancelled"].contains(&phase)
}

/// Samples the lease every 500 ms until `done` (bounded by `limit`): holders seen other than
/// `holder`, and epochs seen.
fn watch_lease_until(
    op: &Operator,
    holder: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
) -> (usize, Vec<u64>) {
    let deadline = Instant::now() + limit;
    let (mut others, mut epochs) = (0, Vec::new());
    while !done() {
        if op.lease_holder().as_deref() != Some(holder) {
            others += 1;
        }
        if let Some(e) = op.lease_epoch().filter(|e| !epochs.contains(e)) {
            epochs.push(e);
        }
        assert!(
            Instant::now() < deadline,
            "not done within {limit:?}\n{}",
            op.controller_log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    (others, epochs)
}

#[test]
fn a_controller_keeps_serving_other_load_tests_and_its_lease_while_one_records_calls_and_the_stream_hang()
 {
    let (Some(bootstrap), Some(endpoint)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let proxy = FaultProxy::start(&endpoint);
    let streams = silent_endpoint();
    let stuck = unique("e2e-stuck");
    let served = unique("e2e-served");
    let mut op = Operator::init("barrage-e2e-hung", "barrage-hung", &[]);
    // Every call naming `stuck`'s record hangs, and so does every call to DynamoDB Streams
    // (the watch): the controller has only its resync (3 s) to find the records.
    proxy.hold(Hold::everything().with_body(&format!("lt#{stuck}")));
    op.start_controller_with(
        "first",
        &[
            ("AWS_ENDPOINT_URL", &proxy.url()),
            ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", &streams),
            ("BARRAGE_AWS_OPERATION_TIMEOUT", "5s"),
            ("BARRAGE_AWS_ATTEMPT_TIMEOUT", "2s"),
        ],
    );
    op.wait_holder("first", Duration::from_secs(30));
    apply(&op, &stuck, 3, &bootstrap);
    apply(&op, &served, 3, &bootstrap);
    let started = Instant::now();
    let (others, epochs) = watch_lease_until(&op, "first", Duration::from_secs(120), || {
        terminal(&phase(&op, &served))
    });
    let served_after = started.elapsed();
    let served_status = op.get(&served)["status"].clone();
    let stuck_meanwhile = phase(&op, &stuck);
    let held = proxy.held();
    proxy.release();
    let (others_after, epochs_after) =
        watch_lease_until(&op, "first", Duration::from_secs(120), || {
            terminal(&phase(&op, &stuck))
        });
    let stuck_status = op.get(&stuck)["status"].clone();
    let log = std::fs::read_to_string(op.dir.join("controller-first.log")).unwrap_or_default();
    let timed_out = |what: &str| {
        log.lines()
            .filter(|l| l.contains(what) && l.contains("timed out"))
            .count()
    };
    let (stuck_timeouts, watch_timeouts) = (timed_out(&stuck), timed_out("DescribeStream"));
    println!(
        "hung calls: {served} {} after {served_after:?} while {stuck}'s {held} calls hung (its phase meanwhile {stuck_meanwhile:?}); \
         after the release {stuck} {}; lease holder other than first in {others}+{others_after} samples, epochs {epochs:?} then {epochs_after:?}; \
         timed-out calls logged: {stuck_timeouts} of {stuck}'s, {watch_timeouts} of the watch's",
        served_status["phase"], stuck_status["phase"]
    );
    assert!(held >= 1, "the stuck record's calls were held");
    assert!(
        stuck_timeouts >= 1,
        "its reconcile timed out and was requeued"
    );
    assert!(watch_timeouts >= 1, "the watch's calls timed out");
    assert!(
        !terminal(&stuck_meanwhile) && stuck_meanwhile != "Running",
        "nothing of {stuck} went through while its calls hung: {stuck_meanwhile}"
    );
    assert!(succeeded_or_lag_only(&served_status), "{served_status}");
    assert!(succeeded_or_lag_only(&stuck_status), "{stuck_status}");
    assert_eq!(
        (others, others_after),
        (0, 0),
        "first held the lease throughout"
    );
    assert_eq!(
        epochs.len(),
        1,
        "one epoch: the lease was renewed, never lost"
    );
    assert_eq!(epochs, epochs_after);
}

/// A container's `StopTimeout` in the task definitions (infra/barrage.yaml): how long ECS
/// waits after SIGTERM before SIGKILL.
fn stop_timeout(container: &str) -> Duration {
    let infra = std::fs::read_to_string(barrage_system_tests::root().join("infra/barrage.yaml"))
        .expect("infra/barrage.yaml");
    let definition = infra
        .split(&format!("- Name: {container}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("the {container} container"));
    let secs = definition
        .lines()
        .find_map(|l| l.trim().strip_prefix("StopTimeout:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("its StopTimeout");
    Duration::from_secs(secs)
}

fn agent_stop_timeout() -> Duration {
    stop_timeout("agent")
}

fn controller_stop_timeout() -> Duration {
    stop_timeout("controller")
}

/// The log of agent `slot`/`incarnation` of `name` (`…NAME-RUN-SLOT-INCARNATION.log`).
fn agent_log(op: &Operator, name: &str, slot: u32, incarnation: u32) -> String {
    let suffix = format!("-{slot}-{incarnation}.log");
    std::fs::read_dir(op.dir.join("agents"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let file = p.file_name().unwrap_or_default().to_string_lossy();
            file.contains(name) && file.ends_with(&suffix)
        })
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

/// Waits until agent process `pid` of `op` is gone (bounded by `limit`); how long it took.
fn wait_gone(op: &Operator, pid: u32, limit: Duration) -> Duration {
    let started = Instant::now();
    while op.agents().iter().any(|(p, _, _)| *p == pid) {
        assert!(
            started.elapsed() < limit,
            "agent {pid} still running {limit:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

#[test]
fn an_agent_whose_uploads_hang_stops_on_sigterm_within_its_stop_timeout() {
    let (Some(bootstrap), Some(endpoint)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let proxy = FaultProxy::start(&endpoint);
    let mut op = Operator::init("barrage-e2e-hungup", "barrage-hungup", &[]);
    // The agents inherit the controller's endpoint; the AWS timeouts are the defaults.
    op.start_controller_with("first", &[("AWS_ENDPOINT_URL", &proxy.url())]);
    let name = unique("e2e-hungup");
    apply(&op, &name, 30, &bootstrap);
    op.wait_phase(&name, "Running", Duration::from_secs(90));
    // Interval uploads (S3 PUTs of `…/agents/…`) hang from now on.
    proxy.hold(Hold::target("/agents/"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.held() == 0 {
        assert!(Instant::now() < deadline, "no interval upload within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let (pid, slot, incarnation) = op.agents().first().copied().expect("an agent runs");
    let held_before = proxy.held();
    let stop_timeout = agent_stop_timeout();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let took = wait_gone(&op, pid, stop_timeout + Duration::from_secs(30));
    let held = proxy.held();
    proxy.release();
    let status = op.wait_terminal(&name, Duration::from_secs(120));
    let log = agent_log(&op, &name, slot, incarnation);
    println!(
        "hung uploads: agent {pid} (slot {slot}, incarnation {incarnation}) exited {:.1}s after SIGTERM (stop timeout {stop_timeout:?}); \
         interval uploads held {held_before} before the SIGTERM, {held} in all; the run then ended {} ({}: {}); agent log tail: {}",
        took.as_secs_f64(),
        status["phase"],
        status["verdict"]["result"],
        status["verdict"]["reasons"],
        log.lines()
            .filter(|l| !l.contains("DEBUG"))
            .rev()
            .take(3)
            .map(|l| l
                .split("\"message\":")
                .nth(1)
                .unwrap_or(l)
                .chars()
                .take(160)
                .collect::<String>())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    assert!(held_before >= 1, "uploads were hanging at the SIGTERM");
    assert!(
        took < stop_timeout,
        "{took:?} is past the stop timeout {stop_timeout:?}"
    );
    assert!(terminal(status["phase"].as_str().unwrap_or("")), "{status}");
    // Nothing lost in silence: the report names what the stopped agent could not deliver.
    let named = status["verdict"]["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str())
        .filter(|r| r.contains("never delivered intervals"))
        .count();
    assert!(named >= 1, "the undelivered intervals are named: {status}");
}

#[test]
fn a_controller_asked_to_stop_while_every_call_hangs_exits_within_its_stop_timeout() {
    let Some(endpoint) = aws_endpoint() else {
        return;
    };
    let proxy = FaultProxy::start(&endpoint);
    let mut op = Operator::init("barrage-e2e-hungstop", "barrage-hungstop", &[]);
    // Default AWS timeouts (30 s per operation): the shutdown must not add them up.
    op.start_controller_with("first", &[("AWS_ENDPOINT_URL", &proxy.url())]);
    op.wait_holder("first", Duration::from_secs(30));
    // Everything hangs: the relist (every 3 s), the lease renewals, and then the release.
    proxy.hold(Hold::everything());
    std::thread::sleep(Duration::from_secs(4));
    let held = proxy.held();
    let took = op.stop_controller("first", "TERM");
    proxy.release();
    let limit = controller_stop_timeout();
    let log = std::fs::read_to_string(op.dir.join("controller-first.log")).unwrap_or_default();
    let last: Vec<&str> = log.lines().rev().take(2).collect();
    println!(
        "hung shutdown: {held} calls hanging at the SIGTERM; exited by itself after {took:?} (the task's StopTimeout {limit:?}); last lines: {last:?}"
    );
    assert!(held >= 1, "calls were hanging");
    let took = took.expect("the controller exits by itself (not SIGKILLed at 60 s)");
    assert!(
        took < limit,
        "{took:?} is past its task's stop timeout {limit:?}"
    );
}
