//! The shell against the memory store and blobs and a fake launcher at the port: it drives
//! real plans of the core, so these tests show the wiring (status first, launches remembered,
//! lease respected, malformed records isolated), not the core's decisions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex as StdMutex;

use async_trait::async_trait;
use barrage_crds::agent_status::{AgentPhase, AgentStatus};
use barrage_crds::env::{BlobsUrl, StoreUrl};
use barrage_crds::items::{ATTR_DOC, ATTR_PK, ATTR_SK, Attr, Item, SPEC_SK, load_test_pk};
use barrage_crds::names::HistogramTag;
use barrage_crds::status::Phase;
use barrage_store::memory::{MemoryBlobs, MemoryStore};
use barrage_store::watch::WatchOptions;

use super::*;
use crate::launch::{LaunchResult, ObservedTask, SlotLaunch, TaskState};

/// Starts no process: remembers launches, lists them as running, and (like a real agent)
/// reports each one Ready in the store.
struct FakeLauncher {
    store: Arc<MemoryStore>,
    tasks: StdMutex<Vec<ObservedTask>>,
    calls: StdMutex<Vec<Vec<u32>>>,
    /// Listing the agents of `boom` panics this many more times.
    panics_left: std::sync::atomic::AtomicU32,
}

impl FakeLauncher {
    fn new(store: Arc<MemoryStore>) -> Arc<FakeLauncher> {
        Arc::new(FakeLauncher {
            store,
            tasks: StdMutex::new(Vec::new()),
            calls: StdMutex::new(Vec::new()),
            panics_left: std::sync::atomic::AtomicU32::new(0),
        })
    }

    fn launched_slots(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .calls
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .copied()
            .collect();
        v.sort_unstable();
        v
    }
}

#[async_trait]
impl Launcher for FakeLauncher {
    async fn run_agents(
        &self,
        load_test: &str,
        run_id: &str,
        launches: &[reconcile::Launch],
        _template: &AgentTemplate,
    ) -> Result<Vec<SlotLaunch>, LaunchError> {
        self.calls
            .lock()
            .unwrap()
            .push(launches.iter().map(|l| l.slot).collect());
        let mut out = Vec::new();
        for l in launches {
            let task_id = format!("fake-{run_id}-{}-{}", l.slot, l.incarnation);
            self.tasks.lock().unwrap().push(ObservedTask {
                task_id: task_id.clone(),
                load_test: load_test.to_string(),
                started_by: run_id.to_string(),
                slot: Some(l.slot),
                incarnation: Some(l.incarnation),
                state: TaskState::Running,
            });
            let mut st = AgentStatus::new(load_test, run_id, l.slot, l.incarnation, Utc::now());
            st.phase = AgentPhase::Ready;
            st.task_id = Some(task_id.clone());
            self.store.put_agent_status(&st).await.unwrap();
            out.push(SlotLaunch {
                launch: l.clone(),
                result: LaunchResult::Started { task_id },
            });
        }
        Ok(out)
    }

    async fn list_agents(&self, load_test: Option<&str>) -> Result<Vec<ObservedTask>, LaunchError> {
        use std::sync::atomic::Ordering::SeqCst;
        if load_test == Some("boom")
            && self
                .panics_left
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            panic!("injected: listing the agents of boom panicked");
        }
        Ok(self
            .tasks
            .lock()
            .unwrap()
            .iter()
            .filter(|t| load_test.is_none_or(|n| t.load_test == n))
            .cloned()
            .collect())
    }

    async fn stop_agent(&self, task_id: &str, reason: &str) -> Result<(), LaunchError> {
        for t in self.tasks.lock().unwrap().iter_mut() {
            if t.task_id == task_id {
                t.state = TaskState::Exited {
                    ok: true,
                    code: Some(0),
                    reason: Some(reason.to_string()),
                };
            }
        }
        Ok(())
    }
}

fn cfg(id: &str) -> ControllerConfig {
    let mut c = ControllerConfig::local(StoreUrl::Memory, BlobsUrl::Memory);
    c.controller_id = id.to_string();
    c.resync = Duration::from_secs(1);
    c.lease_duration = Duration::from_secs(3);
    c
}

struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    metrics: Arc<Metrics>,
}

fn start(id: &str, store: &Arc<MemoryStore>, launcher: Arc<FakeLauncher>) -> Running {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = Arc::new(Metrics::new());
    let controller = Controller::new(
        cfg(id),
        store.clone(),
        Arc::new(MemoryBlobs::new()),
        launcher,
    )
    .with_watch(store.watch(WatchOptions::default()))
    .with_metrics(metrics.clone());
    let task = tokio::spawn(controller.run(async {
        let _ = stopped.await;
    }));
    Running {
        stop,
        task,
        metrics,
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the controller stops within 10 s")
            .expect("no panic");
    }
}

async fn phase_of(store: &MemoryStore, name: &str) -> Option<Phase> {
    store
        .get_load_test(name)
        .await
        .unwrap()
        .and_then(|r| r.status.map(|s| s.phase))
}

async fn wait_for(store: &MemoryStore, name: &str, want: Phase, limit: Duration) -> Phase {
    let deadline = Instant::now() + limit;
    loop {
        let p = phase_of(store, name).await;
        if p == Some(want) || Instant::now() > deadline {
            return p.unwrap_or(Phase::Pending);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn example(name: &str, agents: u32) -> LoadTest {
    let mut lt = LoadTest::example(name, "127.0.0.1:9", "t");
    lt.spec.agents.count = agents;
    lt
}

#[tokio::test]
async fn an_applied_load_test_is_provisioned_each_slot_launched_once_and_started_when_ready() {
    let store = Arc::new(MemoryStore::new());
    let launcher = FakeLauncher::new(store.clone());
    let c = start("c1", &store, launcher.clone());
    store.apply(&example("demo", 3)).await.unwrap();
    let phase = wait_for(&store, "demo", Phase::Running, Duration::from_secs(10)).await;
    assert_eq!(phase, Phase::Running);
    let rec = store.get_load_test("demo").await.unwrap().unwrap();
    let status = rec.status.unwrap();
    assert!(
        status.start_at.is_some(),
        "startAt is set once the agents are Ready"
    );
    assert_eq!(
        launcher.launched_slots(),
        vec![0, 1, 2],
        "every slot launched exactly once"
    );
    assert!(c.metrics.reconciles() > 0);
    assert!(c.metrics.lease_held());
    c.stop().await;
}

#[tokio::test]
async fn a_malformed_record_fails_as_spec_invalid_and_the_others_are_still_served() {
    let store = Arc::new(MemoryStore::new());
    let launcher = FakeLauncher::new(store.clone());
    let c = start("c1", &store, launcher.clone());
    let mut item = Item::new();
    item.insert(ATTR_PK.into(), Attr::S(load_test_pk("broken")));
    item.insert(ATTR_SK.into(), Attr::S(SPEC_SK.into()));
    item.insert(
        ATTR_DOC.into(),
        Attr::S("spec: [this is not a LoadTest".into()),
    );
    store.put_raw_item(item).unwrap();
    let mut invalid = example("invalid", 1);
    invalid.spec.agents.count = 0;
    store.apply(&invalid).await.unwrap();
    store.apply(&example("fine", 1)).await.unwrap();
    assert_eq!(
        wait_for(&store, "broken", Phase::Failed, Duration::from_secs(10)).await,
        Phase::Failed
    );
    assert_eq!(
        wait_for(&store, "invalid", Phase::Failed, Duration::from_secs(10)).await,
        Phase::Failed
    );
    assert_eq!(
        wait_for(&store, "fine", Phase::Running, Duration::from_secs(10)).await,
        Phase::Running
    );
    for name in ["broken", "invalid"] {
        let st = store
            .get_load_test(name)
            .await
            .unwrap()
            .unwrap()
            .status
            .unwrap();
        let cond = st
            .condition(barrage_crds::names::ConditionType::SpecInvalid)
            .expect("a SpecInvalid condition");
        assert_eq!(
            cond.status,
            barrage_crds::status::ConditionStatus::True,
            "{name}"
        );
    }
    c.stop().await;
}

#[tokio::test]
async fn of_two_controllers_only_the_lease_holder_acts_and_the_other_takes_over_after_it_stops() {
    let store = Arc::new(MemoryStore::new());
    let launcher = FakeLauncher::new(store.clone());
    let first = start("first", &store, launcher.clone());
    // Let the first one take the lease before the second starts.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !first.metrics.lease_held() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = start("second", &store, launcher.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(first.metrics.lease_held());
    assert!(!second.metrics.lease_held(), "exactly one controller leads");
    first.stop().await;
    // The first released its lease on the way out: the second leads within one renewal.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !second.metrics.lease_held() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(second.metrics.lease_held(), "the second took over");
    store.apply(&example("after", 2)).await.unwrap();
    assert_eq!(
        wait_for(&store, "after", Phase::Running, Duration::from_secs(10)).await,
        Phase::Running
    );
    assert_eq!(launcher.launched_slots(), vec![0, 1]);
    second.stop().await;
}

#[tokio::test]
async fn a_deleted_load_test_is_cancelled_its_agents_stopped_and_the_record_removed() {
    let store = Arc::new(MemoryStore::new());
    let launcher = FakeLauncher::new(store.clone());
    let c = start("c1", &store, launcher.clone());
    store.apply(&example("gone", 2)).await.unwrap();
    wait_for(&store, "gone", Phase::Running, Duration::from_secs(10)).await;
    store.request_delete("gone").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while store.get_load_test("gone").await.unwrap().is_some() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        store.get_load_test("gone").await.unwrap().is_none(),
        "the record is removed"
    );
    let live = launcher
        .list_agents(Some("gone"))
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.state.is_live())
        .count();
    assert_eq!(live, 0, "every agent was stopped");
    c.stop().await;
}

#[test]
fn backoff_grows_is_capped_and_a_conflict_retries_at_once() {
    let first = backoff_after(Failure::Transient, 0, "a").unwrap();
    let later = backoff_after(Failure::Transient, 6, "a").unwrap();
    let capped = backoff_after(Failure::Throttled, 30, "a").unwrap();
    assert!(first <= Duration::from_millis(500));
    assert!(later > first);
    assert!(capped <= Duration::from_secs(60));
    assert!(backoff_after(Failure::Conflict, 3, "a").unwrap() < Duration::from_millis(100));
    assert_eq!(backoff_after(Failure::SpecInvalid, 0, "a"), None);
}

/// A shell over the memory ports, holding the lease, for calling its steps directly.
async fn shared_with_lease(
    store: &Arc<MemoryStore>,
    blobs: &Arc<MemoryBlobs>,
    topics: Arc<dyn Topics>,
) -> (Arc<Shared>, Lease, watch::Sender<Option<Lease>>) {
    let lease = store
        .acquire_lease("t", Duration::from_secs(60), Utc::now())
        .await
        .unwrap()
        .expect("the lease is free");
    let (tx, rx) = watch::channel(Some(lease.clone()));
    let shared = Arc::new(Shared {
        cfg: cfg("t"),
        store: store.clone(),
        blobs: blobs.clone(),
        launcher: FakeLauncher::new(store.clone()),
        topics,
        metrics: Arc::new(Metrics::new()),
        lease: rx,
        memory: Mutex::new(HashMap::new()),
    });
    (shared, lease, tx)
}

#[tokio::test]
async fn due_soak_windows_are_written_once_with_their_verdict_in_the_status() {
    use barrage_crds::spec::{ConstantStep, LoadStep};
    use barrage_crds::status::VerdictResult;

    use crate::report::{AgentInterval, IntervalCounters, encode_interval_blob};

    let store = Arc::new(MemoryStore::new());
    let blobs = Arc::new(MemoryBlobs::new());
    let mut lt = example("soak", 2);
    lt.spec.load.steps = vec![LoadStep::Constant(ConstantStep {
        rate: 20.0,
        duration: barrage_crds::duration::HumanDuration::from_secs(60),
    })];
    lt.spec.report.interval = barrage_crds::duration::HumanDuration::from_secs(1);
    lt.spec.report.window = Some(barrage_crds::duration::HumanDuration::from_secs(10));
    store.apply(&lt).await.unwrap();
    let topics = Arc::new(FakeTopics::failing(0));
    let (shared, lease, _tx) = shared_with_lease(&store, &blobs, topics).await;
    let start = Utc::now() - chrono::TimeDelta::seconds(25);
    // Ended: the core asks for windows of ended runs too, and nothing else happens.
    let st = LoadTestStatus {
        phase: Phase::Succeeded,
        run_id: Some("r1".into()),
        start_at: Some(start),
        ..LoadTestStatus::default()
    };
    let version = store.get_load_test("soak").await.unwrap().unwrap().version;
    store
        .write_status("soak", &st, version, lease.epoch)
        .await
        .unwrap();
    // 25 intervals of 10 records from each of two agents.
    for slot in 0..2 {
        for index in 0..25 {
            let mut h = barrage_crds::hlog::new_histogram();
            for v in 0..10 {
                h.record(100 + v * 10 + u64::from(slot)).unwrap();
            }
            let blob = AgentInterval {
                slot,
                incarnation: 0,
                index,
                start_ms: u64::try_from(start.timestamp_millis()).unwrap()
                    + u64::from(index) * 1_000,
                length_ms: 1_000,
                histograms: [(HistogramTag::Produce, h)].into(),
                counters: Some(IntervalCounters {
                    sent: 10,
                    acked: 10,
                    scheduled: 10,
                    ..IntervalCounters::default()
                }),
                consumer_lag: Default::default(),
                partitions: Default::default(),
            };
            let key = keys::interval_key("soak", "r1", slot, 0, index);
            let text = encode_interval_blob(&blob).unwrap();
            blobs
                .put(&key, text.into_bytes().into(), "text/plain")
                .await
                .unwrap();
        }
    }

    // Both agents uploaded intervals 0..=24 (their heartbeats say so).
    for slot in 0..2 {
        let mut a = AgentStatus::new("soak", "r1", slot, 0, Utc::now());
        a.phase = AgentPhase::Completed;
        a.intervals_uploaded = 25;
        store.put_agent_status(&a).await.unwrap();
    }

    // Windows 0 and 1 (intervals 0..20) are in; window 2 ends at 30 s. The first reconcile
    // writes them, the next records their verdicts in the status.
    let first = reconcile_inner(&shared, "soak").await.unwrap();
    assert_eq!(
        first,
        Some(Duration::from_millis(100)),
        "the verdicts are recorded next"
    );
    let again = reconcile_inner(&shared, "soak").await.unwrap();
    let again = again.expect("window 2 will be due");
    assert!(
        again <= Duration::from_secs(10) && again > Duration::from_secs(8),
        "window 2 is due 5 s (grace) after it ends at 30 s, about 10 s from now: {again:?}"
    );
    let listed = blobs.list("runs/soak/r1/windows/").await.unwrap();
    let mut expected = Vec::new();
    for w in ["00000", "00001"] {
        for f in ["junit.xml", "merged.hlog", "report.html", "report.json"] {
            expected.push(format!("runs/soak/r1/windows/{w}/{f}"));
        }
    }
    assert_eq!(listed, expected);
    let window1: serde_json::Value = serde_json::from_slice(
        &blobs
            .get("runs/soak/r1/windows/00001/report.json")
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(window1["summary"]["records"]["acked"], 200);

    let rec = store.get_load_test("soak").await.unwrap().unwrap();
    let status = rec.status.unwrap();
    let windows = status.windows.clone().expect("status.windows is set");
    assert_eq!(windows.reported, 2);
    let latest = windows.latest.expect("the latest window");
    assert_eq!(latest.index, 1);
    assert_eq!(latest.records_acked, 200);
    assert_eq!(
        serde_json::to_value(latest.result).unwrap(),
        window1["verdict"]["result"]
    );
    assert_eq!(
        windows.not_passed,
        u32::from(latest.result != VerdictResult::Passed) * 2
    );
    assert_eq!(
        shared.memory().get("soak").map(|m| m.windows_written.len()),
        Some(0),
        "verdicts the status records are not remembered"
    );

    // Nothing more is due: another reconcile writes nothing and leaves the status alone.
    let _ = reconcile_inner(&shared, "soak").await.unwrap();
    assert_eq!(blobs.list("runs/soak/r1/windows/").await.unwrap().len(), 8);
    let after = store.get_load_test("soak").await.unwrap().unwrap();
    assert_eq!(after.version, rec.version);
}

/// The topic port: records each delete and fails the first `fail_first` of them.
struct FakeTopics {
    calls: StdMutex<Vec<String>>,
    fail_first: std::sync::atomic::AtomicU32,
}

impl FakeTopics {
    fn failing(fail_first: u32) -> FakeTopics {
        FakeTopics {
            calls: StdMutex::new(Vec::new()),
            fail_first: std::sync::atomic::AtomicU32::new(fail_first),
        }
    }
}

#[async_trait]
impl Topics for FakeTopics {
    async fn delete(
        &self,
        _kafka: &barrage_crds::spec::KafkaSpec,
        topic: &str,
    ) -> Result<(), crate::topics::TopicError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.calls.lock().unwrap().push(topic.to_string());
        match self
            .fail_first
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
        {
            Ok(_) => Err(crate::topics::TopicError::Other(
                "injected: the broker refused".into(),
            )),
            Err(_) => Ok(()),
        }
    }
}

/// An ended run whose agent created the topic, with `cleanup: DeleteIfCreated`, reconciled
/// `times` times over a topic port that fails its first `fail_first` deletes. Returns the
/// deletes made and the final status.
async fn clean_up_topic(fail_first: u32, times: usize) -> (Vec<String>, LoadTestStatus) {
    let store = Arc::new(MemoryStore::new());
    let blobs = Arc::new(MemoryBlobs::new());
    let mut lt = example("tidy", 1);
    lt.spec.topic.cleanup = barrage_crds::spec::TopicCleanup::DeleteIfCreated;
    store.apply(&lt).await.unwrap();
    let topics = Arc::new(FakeTopics::failing(fail_first));
    let (shared, lease, _tx) = shared_with_lease(&store, &blobs, topics.clone()).await;
    let st = LoadTestStatus {
        phase: Phase::Succeeded,
        run_id: Some("r1".into()),
        ..LoadTestStatus::default()
    };
    let version = store.get_load_test("tidy").await.unwrap().unwrap().version;
    store
        .write_status("tidy", &st, version, lease.epoch)
        .await
        .unwrap();
    let mut agent = AgentStatus::new("tidy", "r1", 0, 0, Utc::now());
    agent.phase = AgentPhase::Completed;
    agent.topic_created = true;
    store.put_agent_status(&agent).await.unwrap();
    for _ in 0..times {
        reconcile_inner(&shared, "tidy").await.unwrap();
    }
    let rec = store.get_load_test("tidy").await.unwrap().unwrap();
    let calls = topics.calls.lock().unwrap().clone();
    (calls, rec.status.unwrap())
}

#[tokio::test]
async fn a_created_topic_is_deleted_through_the_port_again_after_a_failure_and_then_left_alone() {
    let (calls, st) = clean_up_topic(1, 6).await;
    assert_eq!(
        calls,
        ["t", "t"],
        "one failed delete, one that worked, none after"
    );
    assert!(
        st.topic_created && st.topic_deleted && st.topic_gone,
        "{st:?}"
    );
    assert_eq!(st.topic_delete_attempts, 2);
}

#[tokio::test]
async fn a_topic_that_cannot_be_deleted_is_left_in_place_after_five_attempts() {
    let (calls, st) = clean_up_topic(u32::MAX, 8).await;
    assert_eq!(calls.len(), 5, "{calls:?}");
    assert!(!st.topic_gone);
    let message = st.message.unwrap_or_default();
    assert!(
        message.contains("left in place after 5 attempts")
            && message.contains("injected: the broker refused"),
        "{message}"
    );
}

#[tokio::test]
async fn a_reconcile_that_panics_is_counted_and_retried_and_the_others_are_still_served() {
    let store = Arc::new(MemoryStore::new());
    let launcher = FakeLauncher::new(store.clone());
    launcher
        .panics_left
        .store(3, std::sync::atomic::Ordering::SeqCst);
    let c = start("c1", &store, launcher.clone());
    store.apply(&example("boom", 1)).await.unwrap();
    store.apply(&example("fine", 1)).await.unwrap();
    assert_eq!(
        wait_for(&store, "fine", Phase::Running, Duration::from_secs(10)).await,
        Phase::Running
    );
    // Three panics, each requeued with backoff; then the record is reconciled as usual.
    assert_eq!(
        wait_for(&store, "boom", Phase::Running, Duration::from_secs(30)).await,
        Phase::Running,
        "a LoadTest whose reconcile panicked is reconciled again"
    );
    assert_eq!(c.metrics.errors("panic"), 3);
    c.stop().await;
}
