//! The ECS launcher over a fake [`EcsApi`] that behaves like AWS where the emulator (moto
//! 5.2.x) does not: `clientToken` idempotency, `stopCode`, StopTask of an unknown task answering
//! `InvalidParameterException` (moto answers 500), paging of ListTasks, throttling. Batching and
//! per-slot failures are checked here too, where they can be counted exactly.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use barrage_crds::env::{BARRAGE_SLOT, BlobsUrl, StoreUrl};
use barrage_operator::launch::ecs::{
    CallErrorKind, Capacity, EcsApi, EcsCallError, EcsConfig, EcsContainer, EcsFailure,
    EcsLauncher, EcsTask, RunTaskRequest, RunTaskResponse,
};
use barrage_operator::launch::{
    AgentTemplate, LaunchError, LaunchResult, Launcher, TAG_INCARNATION, TAG_LOAD_TEST, TAG_RUN,
    TAG_SLOT, TAG_STORE, TaskState,
};
use barrage_operator::reconcile::{Launch, client_token};

const RUN: &str = "demo-1-t0a1b2";

#[derive(Default)]
struct World {
    /// Task ARN -> task.
    tasks: BTreeMap<String, EcsTask>,
    /// clientToken -> task ARN (AWS keeps tokens for a while; moto ignores them).
    tokens: BTreeMap<String, String>,
    requests: Vec<RunTaskRequest>,
    in_flight: usize,
    max_in_flight: usize,
    describe_sizes: Vec<usize>,
    list_calls: usize,
    /// Slot -> scripted answer for RunTask.
    fail_slot: BTreeMap<u32, Result<EcsFailure, EcsCallError>>,
    throttle_stop: bool,
    /// Slot -> how many more RunTask answers are lost after ECS acted on the call (the task
    /// starts, the caller sees a timeout). `usize::MAX`: every answer.
    lose_answer: BTreeMap<u32, usize>,
    /// Slot -> how many more RunTask calls time out before reaching ECS (nothing starts).
    lose_call: BTreeMap<u32, usize>,
    next: u64,
}

fn timed_out() -> EcsCallError {
    EcsCallError {
        kind: CallErrorKind::Transient,
        code: None,
        message: "operation timed out".into(),
    }
}

/// One lost answer (or call) of `slot`, if any are left.
fn take_one(counts: &mut BTreeMap<u32, usize>, slot: u32) -> bool {
    match counts.get_mut(&slot) {
        Some(n) if *n > 0 => {
            *n = n.saturating_sub(usize::from(*n != usize::MAX));
            true
        }
        _ => false,
    }
}

#[derive(Default)]
struct FakeEcs {
    world: Mutex<World>,
}

impl FakeEcs {
    fn w(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap()
    }
}

impl FakeEcs {
    /// What ECS does with a RunTask that reached it: the scripted failure, the task already
    /// started for this client token, or a new task.
    fn start_or_find(
        &self,
        w: &mut World,
        req: &RunTaskRequest,
        slot: u32,
    ) -> Result<RunTaskResponse, EcsCallError> {
        if let Some(answer) = w.fail_slot.get(&slot).cloned() {
            return match answer {
                Ok(failure) => Ok(RunTaskResponse {
                    tasks: vec![],
                    failures: vec![failure],
                }),
                Err(e) => Err(e),
            };
        }
        if let Some(arn) = w.tokens.get(&req.client_token).cloned() {
            let task = w.tasks[&arn].clone();
            return Ok(RunTaskResponse {
                tasks: vec![task],
                failures: vec![],
            });
        }
        w.next += 1;
        let arn = format!("arn:aws:ecs:eu-west-1:123456789012:task/c/{:032x}", w.next);
        let task = EcsTask {
            arn: arn.clone(),
            last_status: Some("PROVISIONING".into()),
            started_by: Some(req.started_by.clone()),
            tags: req.tags.clone(),
            containers: vec![EcsContainer {
                name: Some(req.container_name.clone()),
                ..EcsContainer::default()
            }],
            override_env: req.environment.clone(),
            ..EcsTask::default()
        };
        w.tasks.insert(arn.clone(), task.clone());
        w.tokens.insert(req.client_token.clone(), arn);
        Ok(RunTaskResponse {
            tasks: vec![task],
            failures: vec![],
        })
    }
}

fn env_of<'a>(req: &'a RunTaskRequest, name: &str) -> Option<&'a str> {
    req.environment
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[async_trait]
impl EcsApi for FakeEcs {
    async fn run_task(&self, req: &RunTaskRequest) -> Result<RunTaskResponse, EcsCallError> {
        let slot: u32 = env_of(req, BARRAGE_SLOT).unwrap().parse().unwrap();
        {
            let mut w = self.w();
            w.requests.push(req.clone());
            w.in_flight += 1;
            w.max_in_flight = w.max_in_flight.max(w.in_flight);
        }
        // Long enough that every call of a batch is in flight at once.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut w = self.w();
        w.in_flight -= 1;
        if take_one(&mut w.lose_call, slot) {
            return Err(timed_out());
        }
        let lost = take_one(&mut w.lose_answer, slot);
        let answer = self.start_or_find(&mut w, req, slot);
        if lost {
            return Err(timed_out());
        }
        answer
    }

    async fn list_tasks(
        &self,
        _cluster: &str,
        desired_status: &str,
        next_token: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), EcsCallError> {
        let mut w = self.w();
        w.list_calls += 1;
        let all: Vec<String> = w
            .tasks
            .values()
            .filter(|t| {
                let stopped = t.last_status.as_deref() == Some("STOPPED");
                stopped == (desired_status == "STOPPED")
            })
            .map(|t| t.arn.clone())
            .collect();
        let start: usize = next_token.map_or(0, |t| t.parse().unwrap());
        let end = (start + 100).min(all.len());
        let next = (end < all.len()).then(|| end.to_string());
        Ok((all[start..end].to_vec(), next))
    }

    async fn describe_tasks(
        &self,
        _cluster: &str,
        tasks: &[String],
    ) -> Result<Vec<EcsTask>, EcsCallError> {
        let mut w = self.w();
        w.describe_sizes.push(tasks.len());
        assert!(tasks.len() <= 100, "DescribeTasks takes at most 100 tasks");
        Ok(tasks
            .iter()
            .filter_map(|a| w.tasks.get(a).cloned())
            .collect())
    }

    async fn stop_task(
        &self,
        _cluster: &str,
        task: &str,
        reason: &str,
    ) -> Result<(), EcsCallError> {
        let mut w = self.w();
        if w.throttle_stop {
            return Err(EcsCallError {
                kind: CallErrorKind::Throttled,
                code: Some("ThrottlingException".into()),
                message: "Rate exceeded".into(),
            });
        }
        let Some(t) = w.tasks.get_mut(task) else {
            // What AWS answers for a task it does not know.
            return Err(EcsCallError {
                kind: CallErrorKind::NotFound,
                code: Some("InvalidParameterException".into()),
                message: "The referenced task was not found.".into(),
            });
        };
        if t.last_status.as_deref() != Some("STOPPED") {
            t.last_status = Some("STOPPED".into());
            t.stop_code = Some("UserInitiated".into());
            t.stopped_reason = Some(reason.into());
            t.containers[0].exit_code = Some(0);
        }
        Ok(())
    }
}

fn config() -> EcsConfig {
    EcsConfig {
        cluster: "barrage".into(),
        task_definition: "barrage-agent:3".into(),
        container_name: "agent".into(),
        subnets: vec!["subnet-1".into()],
        security_groups: vec!["sg-1".into()],
        assign_public_ip: false,
        enable_ecs_managed_tags: true,
        propagate_task_definition_tags: true,
        owner: Some("dynamodb://barrage".into()),
    }
}

fn template() -> AgentTemplate {
    AgentTemplate::new(
        StoreUrl::DynamoDb {
            table: "barrage".into(),
        },
        BlobsUrl::S3 {
            bucket: "barrage-blobs".into(),
            prefix: "runs".into(),
        },
    )
}

fn launches(slots: impl IntoIterator<Item = u32>) -> Vec<Launch> {
    launches_of(RUN, slots)
}

fn launches_of(run: &str, slots: impl IntoIterator<Item = u32>) -> Vec<Launch> {
    slots
        .into_iter()
        .map(|slot| Launch {
            slot,
            incarnation: 0,
            attempt: 1,
            client_token: client_token(run, slot, 0, 1),
        })
        .collect()
}

fn launcher() -> (Arc<FakeEcs>, EcsLauncher) {
    let fake = Arc::new(FakeEcs::default());
    let l = EcsLauncher::with_api(fake.clone(), config());
    (fake, l)
}

#[tokio::test]
async fn at_most_ten_runtask_calls_at_once_each_with_its_own_slot() {
    let (fake, l) = launcher();
    let ls = launches(0..25);
    let out = l.run_agents("demo", RUN, &ls, &template()).await.unwrap();
    assert_eq!(out.len(), 25);
    assert!(
        out.iter()
            .all(|s| matches!(s.result, LaunchResult::Started { .. }))
    );
    let w = fake.w();
    assert_eq!(w.requests.len(), 25, "one RunTask (count 1) per slot");
    assert_eq!(w.max_in_flight, 10, "batches of at most ten calls");
    for (slot_launch, req) in out.iter().zip(&w.requests) {
        let slot = slot_launch.launch.slot.to_string();
        assert_eq!(env_of(req, BARRAGE_SLOT), Some(slot.as_str()));
        assert!(req.tags.contains(&(TAG_SLOT.to_string(), slot.clone())));
        assert!(
            req.tags
                .contains(&(TAG_INCARNATION.to_string(), "0".into()))
        );
        assert!(req.tags.contains(&(TAG_RUN.to_string(), RUN.into())));
        assert!(
            req.tags
                .contains(&(TAG_LOAD_TEST.to_string(), "demo".into()))
        );
        assert_eq!(req.started_by, RUN);
        assert_eq!(req.client_token, slot_launch.launch.client_token);
        assert_eq!(req.capacity, Capacity::LaunchType("FARGATE".into()));
    }
    drop(w);
    assert_eq!(l.stats().snapshot()[0], ("RunTask", 25, 0, 0));
}

#[tokio::test]
async fn failures_are_reported_per_slot_and_throttles_are_counted() {
    let (fake, l) = launcher();
    {
        let mut w = fake.w();
        w.fail_slot.insert(
            3,
            Ok(EcsFailure {
                arn: None,
                reason: Some("RESOURCE:MEMORY".into()),
                detail: None,
            }),
        );
        w.fail_slot.insert(
            5,
            Err(EcsCallError {
                kind: CallErrorKind::Throttled,
                code: Some("ThrottlingException".into()),
                message: "Rate exceeded".into(),
            }),
        );
        w.fail_slot.insert(
            6,
            Ok(EcsFailure {
                arn: None,
                reason: Some("MISSING".into()),
                detail: Some("task definition not found".into()),
            }),
        );
    }
    let out = l
        .run_agents("demo", RUN, &launches(0..8), &template())
        .await
        .unwrap();
    let by_slot: BTreeMap<u32, &LaunchResult> =
        out.iter().map(|s| (s.launch.slot, &s.result)).collect();
    assert!(
        matches!(by_slot[&3], LaunchResult::Failed { retryable: true, reason } if reason.contains("RESOURCE:MEMORY"))
    );
    assert!(
        matches!(by_slot[&5], LaunchResult::Failed { retryable: true, reason } if reason.contains("Rate exceeded"))
    );
    assert!(matches!(
        by_slot[&6],
        LaunchResult::Failed {
            retryable: false,
            ..
        }
    ));
    for slot in [0, 1, 2, 4, 7] {
        assert!(
            matches!(by_slot[&slot], LaunchResult::Started { .. }),
            "{slot}"
        );
    }
    let outcome = out.iter().find(|s| s.launch.slot == 5).unwrap().outcome();
    assert!(matches!(
        outcome,
        barrage_operator::reconcile::LaunchOutcome::Failed {
            throttled: true,
            ..
        }
    ));
    assert_eq!(l.stats().snapshot()[0], ("RunTask", 8, 1, 0));
}

#[tokio::test]
async fn a_retried_launch_with_the_same_token_finds_the_same_task() {
    // AWS returns the first call's task for a repeated clientToken; moto ignores the token,
    // which is why this is covered here.
    let (_fake, l) = launcher();
    let ls = launches(0..3);
    let first = l.run_agents("demo", RUN, &ls, &template()).await.unwrap();
    let second = l.run_agents("demo", RUN, &ls, &template()).await.unwrap();
    assert_eq!(first, second);
    let listed = l.list_agents(Some("demo")).await.unwrap();
    assert_eq!(listed.len(), 3, "no duplicate task");
}

#[tokio::test]
async fn listing_pages_and_describes_in_batches_of_100_and_filters_by_load_test() {
    let (fake, l) = launcher();
    l.run_agents("demo", RUN, &launches(0..230), &template())
        .await
        .unwrap();
    let other = "other-1-t0a1b2";
    l.run_agents("other", other, &launches_of(other, 0..20), &template())
        .await
        .unwrap();
    // A task of someone else in the same cluster.
    fake.w().tasks.insert(
        "arn:foreign".into(),
        EcsTask {
            arn: "arn:foreign".into(),
            last_status: Some("RUNNING".into()),
            ..EcsTask::default()
        },
    );
    let demo = l.list_agents(Some("demo")).await.unwrap();
    assert_eq!(demo.len(), 230);
    let mut slots: Vec<u32> = demo.iter().map(|t| t.slot.unwrap()).collect();
    slots.sort();
    assert_eq!(slots, (0..230).collect::<Vec<_>>());
    assert!(
        demo.iter()
            .all(|t| t.started_by == RUN && t.incarnation == Some(0))
    );
    assert!(demo.iter().all(|t| t.state == TaskState::Starting));
    let all = l.list_agents(None).await.unwrap();
    assert_eq!(all.len(), 250, "the foreign task is not ours");
    let w = fake.w();
    assert!(w.describe_sizes.iter().all(|&n| n <= 100));
    // 251 tasks: 3 DescribeTasks calls per listing; RUNNING takes 3 pages, STOPPED 1.
    assert_eq!(w.describe_sizes, vec![100, 100, 51, 100, 100, 51]);
    assert_eq!(w.list_calls, 8);
}

#[tokio::test]
async fn stop_is_idempotent_and_reports_the_exit_like_ecs() {
    let (fake, l) = launcher();
    let out = l
        .run_agents("demo", RUN, &launches(0..2), &template())
        .await
        .unwrap();
    let LaunchResult::Started { task_id } = &out[0].result else {
        panic!("started")
    };
    l.stop_agent(task_id, "barrage: run cancelled")
        .await
        .unwrap();
    l.stop_agent(task_id, "barrage: again").await.unwrap();
    l.stop_agent("arn:aws:ecs:eu-west-1:123456789012:task/c/unknown", "x")
        .await
        .expect("an unknown task counts as stopped");
    let listed = l.list_agents(Some("demo")).await.unwrap();
    let stopped = listed.iter().find(|t| &t.task_id == task_id).unwrap();
    assert_eq!(
        stopped.state,
        TaskState::Exited {
            ok: true,
            code: Some(0),
            reason: Some("UserInitiated: barrage: run cancelled".into())
        }
    );
    fake.w().throttle_stop = true;
    let err = l.stop_agent(task_id, "x").await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(matches!(err, LaunchError::Throttled { .. }));
    let stop = l.stats().snapshot()[3];
    assert_eq!(
        stop,
        ("StopTask", 4, 1, 1),
        "the not-found answer counts as an error call"
    );
}

#[tokio::test]
async fn spot_sizes_and_labels_shape_the_request() {
    let (fake, l) = launcher();
    let mut t = template();
    t.spot = true;
    t.cpu = Some(2048);
    t.memory = Some(4096);
    t.labels.insert("team".into(), "streaming".into());
    l.run_agents("demo", RUN, &launches([0]), &t).await.unwrap();
    let w = fake.w();
    let req = &w.requests[0];
    assert_eq!(req.capacity, Capacity::Provider("FARGATE_SPOT".into()));
    assert_eq!(req.cpu.as_deref(), Some("2048"));
    assert_eq!(req.memory.as_deref(), Some("4096"));
    assert!(req.tags.contains(&("team".into(), "streaming".into())));
    assert!(req.enable_ecs_managed_tags && req.propagate_task_definition_tags);
    let net = req.network.as_ref().unwrap();
    assert_eq!(net.subnets, vec!["subnet-1".to_string()]);
}

/// Two installations (two stores) in one cluster: each controller tags its tasks with its store
/// and neither lists — so neither adopts nor stops as an orphan — the other's tasks.
#[tokio::test]
async fn tasks_of_another_store_in_the_cluster_are_not_ours() {
    let (fake, ours) = launcher();
    ours.run_agents("demo", RUN, &launches(0..3), &template())
        .await
        .unwrap();
    let theirs = EcsLauncher::with_api(
        fake.clone(),
        EcsConfig {
            owner: Some("dynamodb://barrage-staging".into()),
            ..config()
        },
    );
    let other = "nightly-1-t0a1b2";
    theirs
        .run_agents("nightly", other, &launches_of(other, 0..2), &template())
        .await
        .unwrap();
    // A task launched before the tag existed counts as ours (an upgrade keeps its runs).
    fake.w().tasks.insert(
        "arn:untagged".into(),
        EcsTask {
            arn: "arn:untagged".into(),
            last_status: Some("RUNNING".into()),
            tags: vec![
                (TAG_LOAD_TEST.into(), "demo".into()),
                (TAG_RUN.into(), RUN.into()),
                (TAG_SLOT.into(), "9".into()),
                (TAG_INCARNATION.into(), "0".into()),
            ],
            ..EcsTask::default()
        },
    );
    let store_tags: Vec<String> = fake
        .w()
        .requests
        .iter()
        .map(|r| {
            r.tags
                .iter()
                .find(|(k, _)| k == TAG_STORE)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        store_tags,
        [
            "dynamodb://barrage",
            "dynamodb://barrage",
            "dynamodb://barrage",
            "dynamodb://barrage-staging",
            "dynamodb://barrage-staging",
        ]
    );
    let mine: Vec<String> = ours
        .list_agents(None)
        .await
        .unwrap()
        .into_iter()
        .map(|t| format!("{}/{}", t.load_test, t.slot.unwrap()))
        .collect();
    assert_eq!(mine, ["demo/0", "demo/1", "demo/2", "demo/9"]);
    let staging = theirs.list_agents(None).await.unwrap();
    assert_eq!(
        staging.iter().filter(|t| t.load_test == "nightly").count(),
        2,
        "{staging:?}"
    );
    assert!(
        staging
            .iter()
            .all(|t| t.load_test != "demo" || t.slot == Some(9))
    );
}

/// A launcher that resends unanswered RunTasks at once (the pauses are not under test).
fn quick_retries() -> (Arc<FakeEcs>, EcsLauncher) {
    let (fake, l) = launcher();
    (
        fake,
        l.with_unknown_outcome_retries(vec![Duration::ZERO; 3]),
    )
}

/// Live tasks per slot, as ECS holds them.
fn tasks_per_slot(fake: &FakeEcs) -> BTreeMap<String, usize> {
    let mut per = BTreeMap::new();
    for t in fake.w().tasks.values() {
        let slot = t
            .tags
            .iter()
            .find(|(k, _)| k == TAG_SLOT)
            .map(|(_, v)| v.clone())
            .unwrap();
        *per.entry(slot).or_default() += 1;
    }
    per
}

#[tokio::test]
async fn a_runtask_whose_answer_is_lost_100_times_starts_exactly_one_task_per_slot() {
    let (fake, l) = quick_retries();
    for slot in 0..3 {
        fake.w().lose_answer.insert(slot, usize::MAX);
    }
    let ls = launches(0..3);
    // The shell calls again with the same launches (same client tokens) until the slot's task
    // is seen: 25 rounds of 4 calls each lose 100 answers per slot.
    let mut seen = BTreeMap::new();
    for _ in 0..25 {
        let out = l.run_agents("demo", RUN, &ls, &template()).await.unwrap();
        for s in out {
            let LaunchResult::Started { task_id } = s.result else {
                panic!("the task ECS started is found by its tags: {:?}", s.result);
            };
            assert_eq!(
                seen.entry(s.launch.slot).or_insert_with(|| task_id.clone()),
                &task_id,
                "always the same task for the slot"
            );
        }
    }
    let requests = fake.w().requests.clone();
    let per_slot = |slot: u32| {
        requests
            .iter()
            .filter(|r| env_of(r, BARRAGE_SLOT) == Some(slot.to_string().as_str()))
            .collect::<Vec<_>>()
    };
    for slot in 0..3 {
        let calls = per_slot(slot);
        assert_eq!(calls.len(), 100, "100 answers lost for slot {slot}");
        assert!(
            calls
                .iter()
                .all(|r| r.client_token == client_token(RUN, slot, 0, 1)),
            "every retry carries the slot's one client token"
        );
    }
    let tasks = tasks_per_slot(&fake);
    println!("RunTask answers lost: 100 per slot; tasks per slot: {tasks:?}");
    assert_eq!(
        tasks,
        BTreeMap::from([("0".into(), 1), ("1".into(), 1), ("2".into(), 1)])
    );
}

#[tokio::test]
async fn a_runtask_answered_after_two_lost_answers_reports_the_one_task_it_started() {
    let (fake, l) = quick_retries();
    fake.w().lose_answer.insert(0, 2);
    let out = l
        .run_agents("demo", RUN, &launches([0]), &template())
        .await
        .unwrap();
    let LaunchResult::Started { task_id } = &out[0].result else {
        panic!("{:?}", out[0].result);
    };
    assert_eq!(
        fake.w().requests.len(),
        3,
        "two retries with the same token"
    );
    assert_eq!(fake.w().tasks.keys().collect::<Vec<_>>(), vec![task_id]);
}

#[tokio::test]
async fn a_runtask_that_never_reached_ecs_stays_in_flight_instead_of_failing() {
    let (fake, l) = quick_retries();
    fake.w().lose_call.insert(0, usize::MAX);
    let out = l
        .run_agents("demo", RUN, &launches([0]), &template())
        .await
        .unwrap();
    assert!(
        matches!(out[0].result, LaunchResult::Unknown { .. }),
        "{:?}",
        out[0].result
    );
    assert_eq!(
        out[0].outcome(),
        barrage_operator::reconcile::LaunchOutcome::InFlight
    );
    assert!(fake.w().tasks.is_empty());
    assert_eq!(fake.w().requests.len(), 4);
}
