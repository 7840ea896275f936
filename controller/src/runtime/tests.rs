//! The shell against the memory store and blobs and a fake launcher at the port: it drives
//! real plans of the core, so these tests show the wiring (status first, launches remembered,
//! lease respected, malformed records isolated), not the core's decisions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex as StdMutex;

use barrage_crds::agent_status::{AgentPhase, AgentStatus};
use barrage_crds::env::{BlobsUrl, StoreUrl};
use barrage_crds::items::{ATTR_DOC, ATTR_PK, ATTR_SK, Attr, Item, SPEC_SK, load_test_pk};
use barrage_crds::status::Phase;
use barrage_store::memory::{MemoryBlobs, MemoryStore};
use barrage_store::streams::WatchOptions;

use super::*;
use crate::launch::{LaunchResult, ObservedTask, SlotLaunch, TaskState};

/// Starts no process: remembers launches, lists them as running, and (like a real agent)
/// reports each one Ready in the store.
struct FakeLauncher {
    store: Arc<MemoryStore>,
    tasks: StdMutex<Vec<ObservedTask>>,
    calls: StdMutex<Vec<Vec<u32>>>,
}

impl FakeLauncher {
    fn new(store: Arc<MemoryStore>) -> Arc<FakeLauncher> {
        Arc::new(FakeLauncher {
            store,
            tasks: StdMutex::new(Vec::new()),
            calls: StdMutex::new(Vec::new()),
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
            .condition("SpecInvalid")
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
