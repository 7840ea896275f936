//! Fencing covers every write of a deposed leader (issue 12.6): a controller paused past its
//! lease (SIGSTOP) whose status write was already on the wire gets it refused by the store
//! once a standby has taken over — even where the new leader has not written that record yet,
//! so only the lease-epoch check can refuse it.
//!
//! Each controller talks to the AWS emulator through its own [`FaultProxy`], which holds its
//! `TransactWriteItems` (every status write is one) while its lease renewals pass. The held
//! writes are forwarded late, and the outcome is read from the store's side: the emulator's
//! answers to them, and the table's DynamoDB stream (every change it accepted).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use barrage_system_tests::fault::{Exchange, FaultProxy, Hold};
use barrage_system_tests::operator::{Operator, succeeded_or_lag_only, text};
use barrage_system_tests::spec::Spec;
use barrage_system_tests::stream::{Change, changes};
use barrage_system_tests::{aws_endpoint, kafka, unique};

const STATUS_WRITE: &str = "TransactWriteItems";

/// One agent at `rate` records/s for 30 s.
fn spec(name: &str, topic: &str, bootstrap: &str, rate: u32) -> String {
    Spec::new(name, topic, bootstrap).rate(rate).secs(30).yaml()
}

fn apply(op: &Operator, name: &str, body: &str) {
    let file: PathBuf = op.dir.join(format!("{name}.yaml"));
    std::fs::write(&file, body).expect("write the spec");
    let out = op.barrage(
        &["apply", "-f", file.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out));
}

fn signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{signal} {pid}");
}

/// Waits (bounded) until `proxy` has held at least one request.
fn wait_held(op: &Operator, proxy: &FaultProxy, who: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while proxy.held() == 0 {
        assert!(
            Instant::now() < deadline,
            "{who} sent no status write within {limit:?}\n{}",
            op.controller_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes in `log` answered after `since` that the store accepted: status writes, and lease
/// writes (their body names the lease item).
fn accepted_after(log: &[Exchange], since: Instant) -> (usize, usize) {
    let late: Vec<&Exchange> = log
        .iter()
        .filter(|e| e.at > since && e.status == 200)
        .collect();
    let status = late
        .iter()
        .filter(|e| e.target.ends_with(STATUS_WRITE))
        .count();
    let lease = late
        .iter()
        .filter(|e| e.target.ends_with(".PutItem") && e.request.contains("lease#controller"))
        .count();
    (status, lease)
}

/// Status changes of the record `pk` the store accepted at `epoch`.
fn status_changes_at(all: &[Change], pk: &str, epoch: u64) -> usize {
    all.iter()
        .filter(|c| c.pk == pk && c.sk == "status" && c.epoch == Some(epoch))
        .count()
}

/// Changes of `pk`/`sk` after the first one carrying epoch `new` whose epoch is older.
fn stale_after_new_epoch(all: &[Change], pk: &str, sk: &str, new: u64) -> (usize, usize) {
    let of_item: Vec<&Change> = all.iter().filter(|c| c.pk == pk && c.sk == sk).collect();
    let first_new = of_item
        .iter()
        .position(|c| c.epoch == Some(new))
        .unwrap_or(of_item.len());
    let stale = of_item[first_new..]
        .iter()
        .filter(|c| c.epoch.is_some_and(|e| e < new))
        .count();
    (first_new, stale)
}

#[test]
fn a_deposed_leaders_late_status_writes_are_all_refused_by_the_store() {
    let (Some(bootstrap), Some(endpoint)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let first_proxy = FaultProxy::start(&endpoint);
    let second_proxy = FaultProxy::start(&endpoint);
    let mut op = Operator::init("barrage-e2e-fence", "barrage-fence", &[]);
    op.start_controller_with("first", &[("AWS_ENDPOINT_URL", &first_proxy.url())]);
    op.wait_holder("first", Duration::from_secs(30));
    let old_epoch = op.lease_epoch().expect("a lease epoch");
    let name = unique("e2e-fence");
    let topic = unique("barrage-e2e-fence");
    apply(&op, &name, &spec(&name, &topic, &bootstrap, 100));
    op.wait_phase(&name, "Running", Duration::from_secs(90));

    // A live change makes the leader write the record's status; that write is held on the
    // wire, and the leader is paused past its lease (6 s) while it waits.
    first_proxy.hold(Hold::target(STATUS_WRITE));
    apply(&op, &name, &spec(&name, &topic, &bootstrap, 150));
    wait_held(&op, &first_proxy, "first", Duration::from_secs(30));
    let first_pid = op.pid_of("first").expect("first runs");
    signal(first_pid, "STOP");
    let paused_at = Instant::now();
    let pk = format!("lt#{name}");
    let old_at_pause = status_changes_at(&changes(&op.table), &pk, old_epoch);

    // The standby takes over; its own status write of the record is held too, so the
    // record's version has not moved when the old leader's write arrives.
    second_proxy.hold(Hold::target(STATUS_WRITE));
    op.start_controller_with("second", &[("AWS_ENDPOINT_URL", &second_proxy.url())]);
    let takeover = op.wait_holder("second", Duration::from_secs(30));
    let new_epoch = op.lease_epoch().expect("a lease epoch");
    wait_held(&op, &second_proxy, "second", Duration::from_secs(30));
    let late = first_proxy.release();
    let refused = late
        .iter()
        .filter(|e| e.status == 400 && e.answer.contains("TransactionCanceled"))
        .count();
    second_proxy.release();
    signal(first_pid, "CONT");

    let status = op.wait_terminal(&name, Duration::from_secs(120));
    let (status_after, lease_after) = accepted_after(&first_proxy.log(), paused_at);
    let all = changes(&op.table);
    let (first_new, stale) = stale_after_new_epoch(&all, &pk, "status", new_epoch);
    let (_, stale_lease) = stale_after_new_epoch(&all, "lease#controller", "lease", new_epoch);
    let old_writes = status_changes_at(&all, &pk, old_epoch);
    println!(
        "fencing: epoch {old_epoch} -> {new_epoch}, second took the lease {takeover:?} after first was paused ({:?} ago); \
         first's held status writes forwarded after the takeover: {} ({refused} refused by the store, answers {:?}); \
         first's writes accepted after the pause: status {status_after}, lease {lease_after}; \
         stream: {} changes, {old_writes} status changes at epoch {old_epoch} ({old_at_pause} at the pause), {stale} status and {stale_lease} lease changes older than epoch {new_epoch} after its first (status change #{first_new}); phase {}",
        paused_at.elapsed(),
        late.len(),
        late.iter().map(|e| e.status).collect::<Vec<_>>(),
        all.len(),
        status["phase"],
    );
    assert!(!late.is_empty(), "first had a status write on the wire");
    assert!(
        old_writes > 0,
        "first wrote the record's status before the pause"
    );
    assert!(new_epoch > old_epoch, "a takeover grows the epoch");
    assert_eq!(refused, late.len(), "every late write refused: {late:#?}");
    assert_eq!(
        (status_after, lease_after),
        (0, 0),
        "nothing of first's accepted after the pause"
    );
    assert_eq!(
        old_writes, old_at_pause,
        "the store took no status of first's after the pause"
    );
    assert_eq!(
        (stale, stale_lease),
        (0, 0),
        "no older epoch after the new one, store side"
    );
    assert!(
        succeeded_or_lag_only(&status),
        "{status}\n{}",
        op.controller_log()
    );
}
