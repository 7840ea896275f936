//! The ECS launcher: one Fargate (or EC2) task per agent.
//!
//! Layers, from the outside in:
//! - [`EcsLauncher`] implements [`Launcher`]: builds one [`RunTaskRequest`] per launch (a pure
//!   function, [`EcsLauncher::run_task_request`], so tests can inspect every byte it would
//!   send), checks it against the [`SecretGuard`], sends at most [`MAX_BATCH`] calls at once,
//!   maps `failures[]` per slot, lists tasks (ListTasks + DescribeTasks in batches of 100 with
//!   tags) and parses them once into [`ObservedTask`]s.
//! - [`EcsApi`]: the four ECS calls in plain types. [`SdkEcs`] implements it with the AWS SDK;
//!   SDK types appear nowhere else. Tests put a fake here to cover AWS behaviour the emulator
//!   (moto 5.2.x) does not have: `clientToken` idempotency, `stopCode`, and StopTask of an
//!   unknown task answering `InvalidParameterException` (moto answers 500).
//!
//! Each task gets its own environment (its slot and incarnation), so each RunTask starts one
//! task (`count = 1`) with that slot's container overrides; a batch of launches is a batch of
//! concurrent calls. Ownership is in the tags (`barrage:load-test`, `barrage:run`,
//! `barrage:slot`, `barrage:incarnation`) and in `startedBy` (the run id, which is at most 36
//! characters); a task without tags is read from its container overrides instead.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::operation::run_task::builders::RunTaskFluentBuilder;
use aws_sdk_ecs::types as sdk;
use barrage_crds::env::{BARRAGE_INCARNATION, BARRAGE_LOADTEST, BARRAGE_RUN_ID, BARRAGE_SLOT};
use barrage_crds::spec::LaunchType;

use super::{
    AgentTemplate, LaunchError, LaunchResult, Launcher, SecretGuard, SlotLaunch, TAG_INCARNATION,
    TAG_LOAD_TEST, TAG_RUN, TAG_SLOT, TAG_STORE, task_tags,
};
use crate::reconcile::{Launch, MAX_BATCH, ObservedTask, TaskState, client_token};

/// Longest `startedBy` ECS accepts.
pub const MAX_STARTED_BY: usize = 36;
/// Longest `clientToken` ECS accepts.
pub const MAX_CLIENT_TOKEN: usize = 64;
/// Most tasks one DescribeTasks call takes.
pub const DESCRIBE_BATCH: usize = 100;
/// Most pages one listing follows (100 tasks a page).
const MAX_LIST_PAGES: usize = 1_000;

/// Where and how agent tasks run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcsConfig {
    /// Cluster name or ARN.
    pub cluster: String,
    /// Agent task definition (family, family:revision or ARN).
    pub task_definition: String,
    /// The agent container's name in the task definition (the overrides target it).
    pub container_name: String,
    /// awsvpc subnets; empty for a task definition without awsvpc networking.
    pub subnets: Vec<String>,
    /// awsvpc security groups.
    pub security_groups: Vec<String>,
    /// Give each task a public IP (needed in public subnets without a NAT gateway).
    pub assign_public_ip: bool,
    /// Ask ECS to add its managed tags (cluster, service) to each task.
    pub enable_ecs_managed_tags: bool,
    /// Copy the task definition's tags to each task.
    pub propagate_task_definition_tags: bool,
    /// The store this controller reconciles (`BARRAGE_STORE`, e.g. `dynamodb://barrage`). Every
    /// task it launches is tagged `barrage:store` with it, and tasks tagged with another store —
    /// another installation sharing the cluster — are neither adopted nor stopped as orphans.
    /// Tasks without the tag count as this controller's. `None`: no tag, every task counts.
    pub owner: Option<String>,
}

/// How a task gets capacity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capacity {
    /// `launchType` (`FARGATE` or `EC2`).
    LaunchType(String),
    /// A capacity provider strategy of one provider (`FARGATE_SPOT`).
    Provider(String),
}

/// awsvpc network configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsVpc {
    /// Subnets.
    pub subnets: Vec<String>,
    /// Security groups (always sent, even empty).
    pub security_groups: Vec<String>,
    /// Assign a public IP.
    pub assign_public_ip: bool,
}

/// Everything one RunTask call sends, in plain types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunTaskRequest {
    /// Cluster.
    pub cluster: String,
    /// Task definition.
    pub task_definition: String,
    /// Launch type or capacity provider.
    pub capacity: Capacity,
    /// Idempotency token (at most 64 characters).
    pub client_token: String,
    /// `startedBy` (at most 36 characters).
    pub started_by: String,
    /// awsvpc configuration, if any.
    pub network: Option<AwsVpc>,
    /// The container the environment goes to.
    pub container_name: String,
    /// The agent environment (exactly the contract).
    pub environment: Vec<(String, String)>,
    /// Task CPU override (units).
    pub cpu: Option<String>,
    /// Task memory override (MiB).
    pub memory: Option<String>,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// `enableECSManagedTags`.
    pub enable_ecs_managed_tags: bool,
    /// `propagateTags = TASK_DEFINITION`.
    pub propagate_task_definition_tags: bool,
}

/// One container of a described task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EcsContainer {
    /// Container name.
    pub name: Option<String>,
    /// Exit code, once stopped.
    pub exit_code: Option<i32>,
    /// Why it stopped.
    pub reason: Option<String>,
}

/// A task as ECS describes it, in plain types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EcsTask {
    /// Task ARN.
    pub arn: String,
    /// `lastStatus`.
    pub last_status: Option<String>,
    /// `stopCode`.
    pub stop_code: Option<String>,
    /// `stoppedReason`.
    pub stopped_reason: Option<String>,
    /// `startedBy`.
    pub started_by: Option<String>,
    /// Tags (with `include=TAGS`).
    pub tags: Vec<(String, String)>,
    /// Containers.
    pub containers: Vec<EcsContainer>,
    /// The environment from the task's container overrides.
    pub override_env: Vec<(String, String)>,
}

/// A `failures[]` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EcsFailure {
    /// The resource, if given.
    pub arn: Option<String>,
    /// Reason, e.g. `RESOURCE:MEMORY`, `Capacity is unavailable at this time`.
    pub reason: Option<String>,
    /// Detail.
    pub detail: Option<String>,
}

/// A RunTask answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunTaskResponse {
    /// Tasks started.
    pub tasks: Vec<EcsTask>,
    /// Failures.
    pub failures: Vec<EcsFailure>,
}

/// What kind of error an ECS call returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallErrorKind {
    /// `ThrottlingException`, `ClientException: Rate exceeded`, ...
    Throttled,
    /// The task is not known (`InvalidParameterException: ... not found`).
    NotFound,
    /// Timeout, connection failure, 5xx.
    Transient,
    /// Anything else.
    Other,
}

/// An ECS call that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcsCallError {
    /// Its kind.
    pub kind: CallErrorKind,
    /// The service's error code, if any.
    pub code: Option<String>,
    /// The message.
    pub message: String,
}

impl EcsCallError {
    fn into_launch_error(self, op: &'static str) -> LaunchError {
        let message = match &self.code {
            Some(code) => format!("{code}: {}", self.message),
            None => self.message,
        };
        match self.kind {
            CallErrorKind::Throttled => LaunchError::Throttled { op, message },
            kind => LaunchError::Api {
                op,
                message,
                transient: kind == CallErrorKind::Transient,
            },
        }
    }
}

/// The four ECS calls the launcher makes, in plain types.
#[async_trait]
pub trait EcsApi: Send + Sync {
    /// RunTask.
    async fn run_task(&self, req: &RunTaskRequest) -> Result<RunTaskResponse, EcsCallError>;
    /// One ListTasks page of `cluster` with this desired status (`RUNNING` or `STOPPED`).
    async fn list_tasks(
        &self,
        cluster: &str,
        desired_status: &str,
        next_token: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), EcsCallError>;
    /// DescribeTasks with `include=[TAGS]` (at most 100 tasks).
    async fn describe_tasks(
        &self,
        cluster: &str,
        tasks: &[String],
    ) -> Result<Vec<EcsTask>, EcsCallError>;
    /// StopTask with a reason.
    async fn stop_task(&self, cluster: &str, task: &str, reason: &str) -> Result<(), EcsCallError>;
}

/// Calls, throttles and errors of one ECS operation.
#[derive(Debug, Default)]
pub struct OpCounters {
    /// Calls made.
    pub calls: AtomicU64,
    /// Calls answered with a throttle.
    pub throttles: AtomicU64,
    /// Calls that failed otherwise.
    pub errors: AtomicU64,
}

impl OpCounters {
    fn record<T>(&self, result: &Result<T, EcsCallError>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(_) => {}
            Err(e) if e.kind == CallErrorKind::Throttled => {
                self.throttles.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `(calls, throttles, errors)`.
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.calls.load(Ordering::Relaxed),
            self.throttles.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

/// AWS call counts of one launcher, for metrics.
#[derive(Debug, Default)]
pub struct EcsStats {
    /// RunTask.
    pub run_task: OpCounters,
    /// ListTasks.
    pub list_tasks: OpCounters,
    /// DescribeTasks.
    pub describe_tasks: OpCounters,
    /// StopTask.
    pub stop_task: OpCounters,
}

impl EcsStats {
    /// `(operation, calls, throttles, errors)` for every operation.
    pub fn snapshot(&self) -> Vec<(&'static str, u64, u64, u64)> {
        [
            ("RunTask", &self.run_task),
            ("ListTasks", &self.list_tasks),
            ("DescribeTasks", &self.describe_tasks),
            ("StopTask", &self.stop_task),
        ]
        .into_iter()
        .map(|(op, c)| {
            let (calls, throttles, errors) = c.get();
            (op, calls, throttles, errors)
        })
        .collect()
    }
}

/// The ECS [`Launcher`].
pub struct EcsLauncher {
    api: Arc<dyn EcsApi>,
    config: EcsConfig,
    guard: SecretGuard,
    stats: Arc<EcsStats>,
    /// Pauses before each resend of a RunTask whose outcome is unknown.
    unknown_outcome_retries: Vec<Duration>,
}

impl std::fmt::Debug for EcsLauncher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcsLauncher")
            .field("config", &self.config)
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

/// Whether `s` is a valid `startedBy`: 1 to 36 letters, digits, `-` and `_`.
pub fn is_valid_started_by(s: &str) -> bool {
    (1..=MAX_STARTED_BY).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether `s` is a valid `clientToken`: 1 to 64 characters in the ASCII range 33..=126.
pub fn is_valid_client_token(s: &str) -> bool {
    (1..=MAX_CLIENT_TOKEN).contains(&s.len()) && s.bytes().all(|b| (33..=126).contains(&b))
}

/// The `startedBy` of a run: the run id when it fits (it always does for run ids made by the
/// reconcile core), else a deterministic shortening; the run itself is also in the tags.
pub fn started_by(run_id: &str) -> String {
    if is_valid_started_by(run_id) {
        return run_id.to_string();
    }
    let clean: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(MAX_STARTED_BY - 17)
        .collect();
    let hash = run_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{clean}-{hash:016x}")
}

/// The client token of a launch: the reconcile core's token when it is valid for ECS, else
/// the core's derivation from run, slot, incarnation and attempt. Either way the same launch
/// always gets the same token.
pub fn launch_client_token(run_id: &str, launch: &Launch) -> String {
    if is_valid_client_token(&launch.client_token) {
        launch.client_token.clone()
    } else {
        client_token(run_id, launch.slot, launch.incarnation, launch.attempt)
    }
}

/// Whether a RunTask `failures[]` reason is worth another try later (capacity, throttling,
/// transient placement problems) rather than a configuration error.
pub fn failure_is_retryable(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    [
        "capacity is unavailable",
        "resource:",
        "rate exceeded",
        "throttl",
        "timeout",
        "agent",
        "insufficient",
        "internal",
    ]
    .iter()
    .any(|p| r.contains(p))
}

fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Parses one described task, once: ownership from the tags (or, where tags are missing, from
/// the container overrides), state from `lastStatus`, `stopCode` and the agent container's
/// exit code. `None` for a task that is not an agent of any LoadTest.
pub fn observe(task: &EcsTask, container_name: &str) -> Option<ObservedTask> {
    let field = |tag: &str, env: &str| {
        lookup(&task.tags, tag)
            .or_else(|| lookup(&task.override_env, env))
            .map(str::to_string)
    };
    let load_test = field(TAG_LOAD_TEST, BARRAGE_LOADTEST)?;
    let run = field(TAG_RUN, BARRAGE_RUN_ID)
        .or_else(|| task.started_by.clone())
        .unwrap_or_default();
    let slot = field(TAG_SLOT, BARRAGE_SLOT).and_then(|s| s.parse().ok());
    let incarnation = field(TAG_INCARNATION, BARRAGE_INCARNATION).and_then(|s| s.parse().ok());
    let container = task
        .containers
        .iter()
        .find(|c| c.name.as_deref() == Some(container_name))
        .or_else(|| task.containers.first());
    let exit_code = container.and_then(|c| c.exit_code);
    let mut state = TaskState::from_ecs(
        task.last_status.as_deref(),
        task.stop_code.as_deref(),
        exit_code,
    );
    if let TaskState::Exited { reason, .. } = &mut state {
        let parts: Vec<&str> = [
            task.stop_code.as_deref(),
            task.stopped_reason.as_deref(),
            container.and_then(|c| c.reason.as_deref()),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
        *reason = (!parts.is_empty()).then(|| parts.join(": "));
    }
    Some(ObservedTask {
        task_id: task.arn.clone(),
        load_test,
        started_by: run,
        slot,
        incarnation,
        state,
    })
}

impl EcsLauncher {
    /// A launcher on the AWS SDK client. The controller's own secret-looking environment
    /// variables join the guard.
    pub fn new(client: aws_sdk_ecs::Client, config: EcsConfig) -> EcsLauncher {
        EcsLauncher::with_api(Arc::new(SdkEcs::new(client)), config)
    }

    /// A launcher on any [`EcsApi`] (tests use a fake).
    pub fn with_api(api: Arc<dyn EcsApi>, config: EcsConfig) -> EcsLauncher {
        EcsLauncher {
            api,
            config,
            guard: SecretGuard::from_process_env(),
            stats: Arc::new(EcsStats::default()),
            unknown_outcome_retries: UNKNOWN_OUTCOME_RETRIES.to_vec(),
        }
    }

    /// Sets the pauses before each resend of a RunTask whose outcome is unknown (default
    /// 200 ms, 800 ms, 2 s: well within ECS's idempotency window for a client token).
    pub fn with_unknown_outcome_retries(mut self, pauses: Vec<Duration>) -> EcsLauncher {
        self.unknown_outcome_retries = pauses;
        self
    }

    /// Adds values that must never be sent.
    pub fn with_guard(mut self, guard: &SecretGuard) -> EcsLauncher {
        self.guard = self.guard.merged(guard);
        self
    }

    /// AWS call counts.
    pub fn stats(&self) -> &EcsStats {
        &self.stats
    }

    /// AWS call counts, shared (for a metrics source that outlives this borrow).
    pub fn stats_handle(&self) -> Arc<EcsStats> {
        self.stats.clone()
    }

    /// The configuration.
    /// Whether `task` is this installation's: untagged, or tagged with this controller's store.
    fn owns(&self, task: &EcsTask) -> bool {
        match (&self.config.owner, lookup(&task.tags, TAG_STORE)) {
            (Some(owner), Some(tagged)) => tagged == owner,
            _ => true,
        }
    }

    pub fn config(&self) -> &EcsConfig {
        &self.config
    }

    /// Builds the RunTask call of one launch, without sending it, and checks that no secret
    /// (of the template or of the controller) is anywhere in it.
    pub fn run_task_request(
        &self,
        load_test: &str,
        run_id: &str,
        launch: &Launch,
        template: &AgentTemplate,
    ) -> Result<RunTaskRequest, LaunchError> {
        let guard = self.guard.merged(&template.secrets);
        let environment = template.agent_env(load_test, run_id, launch, &guard)?;
        let capacity = match (template.launch_type, template.spot) {
            (LaunchType::Fargate, true) => Capacity::Provider("FARGATE_SPOT".to_string()),
            (LaunchType::Fargate, false) => Capacity::LaunchType("FARGATE".to_string()),
            (LaunchType::Ec2, _) => Capacity::LaunchType("EC2".to_string()),
        };
        let network = (!self.config.subnets.is_empty()).then(|| AwsVpc {
            subnets: self.config.subnets.clone(),
            security_groups: self.config.security_groups.clone(),
            assign_public_ip: self.config.assign_public_ip,
        });
        let req = RunTaskRequest {
            cluster: self.config.cluster.clone(),
            task_definition: self.config.task_definition.clone(),
            capacity,
            client_token: launch_client_token(run_id, launch),
            started_by: started_by(run_id),
            network,
            container_name: self.config.container_name.clone(),
            environment,
            cpu: template.cpu.map(|c| c.to_string()),
            memory: template.memory.map(|m| m.to_string()),
            tags: {
                let mut tags = task_tags(load_test, run_id, launch, &template.labels);
                if let Some(owner) = &self.config.owner {
                    tags.push((TAG_STORE.to_string(), owner.clone()));
                }
                tags
            },
            enable_ecs_managed_tags: self.config.enable_ecs_managed_tags,
            propagate_task_definition_tags: self.config.propagate_task_definition_tags,
        };
        guard.check_pairs("the task tags", &req.tags)?;
        guard.check_text("the RunTask request", &format!("{req:?}"))?;
        Ok(req)
    }

    /// One RunTask for one slot. An answer that never came (timeout, dispatch failure, 5xx)
    /// leaves the outcome unknown: the same request, with the same client token, is sent
    /// again (ECS starts at most one task per token), and if it still has no answer the
    /// slot's task is looked for by its tags before the outcome is reported unknown.
    async fn run_one(&self, req: &RunTaskRequest) -> LaunchResult {
        let mut result = self.api.run_task(req).await;
        self.stats.run_task.record(&result);
        for delay in &self.unknown_outcome_retries {
            match &result {
                Err(e) if e.kind == CallErrorKind::Transient => {
                    tokio::time::sleep(*delay).await;
                    result = self.api.run_task(req).await;
                    self.stats.run_task.record(&result);
                }
                _ => break,
            }
        }
        match result {
            Err(e) if e.kind == CallErrorKind::Transient => self.resolve_unknown(req, e).await,
            other => answer(other),
        }
    }

    /// After RunTask never answered: the slot's task if it is listed, else `Unknown`.
    async fn resolve_unknown(&self, req: &RunTaskRequest, e: EcsCallError) -> LaunchResult {
        let wanted = |t: &ObservedTask| {
            let tag = |k: &str| lookup(&req.tags, k).map(str::to_string);
            Some(t.load_test.clone()) == tag(TAG_LOAD_TEST)
                && t.slot.map(|s| s.to_string()) == tag(TAG_SLOT)
                && t.incarnation.map(|i| i.to_string()) == tag(TAG_INCARNATION)
                && t.started_by == req.started_by
        };
        let reason = e.into_launch_error("RunTask").to_string();
        match self.list_agents(lookup(&req.tags, TAG_LOAD_TEST)).await {
            Ok(tasks) => match tasks.iter().find(|t| wanted(t)) {
                Some(t) => LaunchResult::Started {
                    task_id: t.task_id.clone(),
                },
                None => LaunchResult::Unknown { reason },
            },
            Err(list) => LaunchResult::Unknown {
                reason: format!("{reason}; listing the tasks failed too: {list}"),
            },
        }
    }

    async fn list_arns(&self) -> Result<Vec<String>, LaunchError> {
        // RUNNING first: a task stopping between the two listings is still seen once.
        let mut arns = BTreeSet::new();
        for desired in ["RUNNING", "STOPPED"] {
            let mut token = None;
            for _ in 0..MAX_LIST_PAGES {
                let result = self
                    .api
                    .list_tasks(&self.config.cluster, desired, token.take())
                    .await;
                self.stats.list_tasks.record(&result);
                let (page, next) = result.map_err(|e| e.into_launch_error("ListTasks"))?;
                arns.extend(page);
                match next {
                    Some(n) if !n.is_empty() => token = Some(n),
                    _ => break,
                }
            }
        }
        Ok(arns.into_iter().collect())
    }
}

/// Pauses before RunTask is sent again with the same client token after an unknown outcome
/// (well within ECS's idempotency window for a token).
const UNKNOWN_OUTCOME_RETRIES: &[Duration] = &[
    Duration::from_millis(200),
    Duration::from_millis(800),
    Duration::from_secs(2),
];

/// A RunTask answer (or an error that is not an unknown outcome) as the slot's result.
fn answer(result: Result<RunTaskResponse, EcsCallError>) -> LaunchResult {
    match result {
        Ok(resp) => {
            if let Some(task) = resp.tasks.first() {
                return LaunchResult::Started {
                    task_id: task.arn.clone(),
                };
            }
            match resp.failures.first() {
                Some(f) => {
                    let reason = [f.reason.as_deref(), f.detail.as_deref(), f.arn.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(": ");
                    LaunchResult::Failed {
                        retryable: failure_is_retryable(&reason),
                        reason,
                    }
                }
                None => LaunchResult::Failed {
                    reason: "RunTask returned neither a task nor a failure".to_string(),
                    retryable: true,
                },
            }
        }
        Err(e) => {
            let retryable = matches!(e.kind, CallErrorKind::Throttled | CallErrorKind::Transient);
            LaunchResult::Failed {
                reason: e.into_launch_error("RunTask").to_string(),
                retryable,
            }
        }
    }
}

#[async_trait]
impl Launcher for EcsLauncher {
    async fn run_agents(
        &self,
        load_test: &str,
        run_id: &str,
        launches: &[Launch],
        template: &AgentTemplate,
    ) -> Result<Vec<SlotLaunch>, LaunchError> {
        // Every request is built and checked before the first is sent.
        let requests = launches
            .iter()
            .map(|l| self.run_task_request(load_test, run_id, l, template))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(launches.len());
        let batch = usize::try_from(MAX_BATCH).unwrap_or(10).max(1);
        for (reqs, ls) in requests.chunks(batch).zip(launches.chunks(batch)) {
            let results = futures::future::join_all(reqs.iter().map(|r| self.run_one(r))).await;
            for (launch, result) in ls.iter().zip(results) {
                if let LaunchResult::Unknown { reason } = &result {
                    tracing::warn!(
                        load_test,
                        run_id,
                        slot = launch.slot,
                        incarnation = launch.incarnation,
                        "RunTask never answered and no task of the slot is listed yet; the launch stays in flight: {reason}"
                    );
                }
                if let LaunchResult::Failed { reason, retryable } = &result {
                    tracing::warn!(
                        load_test,
                        run_id,
                        slot = launch.slot,
                        incarnation = launch.incarnation,
                        retryable,
                        "RunTask failed for the slot: {reason}"
                    );
                }
                out.push(SlotLaunch {
                    launch: launch.clone(),
                    result,
                });
            }
        }
        Ok(out)
    }

    async fn list_agents(&self, load_test: Option<&str>) -> Result<Vec<ObservedTask>, LaunchError> {
        let arns = self.list_arns().await?;
        let mut seen = BTreeMap::new();
        for chunk in arns.chunks(DESCRIBE_BATCH) {
            let result = self.api.describe_tasks(&self.config.cluster, chunk).await;
            self.stats.describe_tasks.record(&result);
            let tasks = result.map_err(|e| e.into_launch_error("DescribeTasks"))?;
            for task in &tasks {
                if !self.owns(task) {
                    continue;
                }
                let Some(obs) = observe(task, &self.config.container_name) else {
                    continue;
                };
                if load_test.is_none_or(|lt| lt == obs.load_test) {
                    seen.insert(obs.task_id.clone(), obs);
                }
            }
        }
        Ok(seen.into_values().collect())
    }

    async fn stop_agent(&self, task_id: &str, reason: &str) -> Result<(), LaunchError> {
        // ECS shows at most 255 characters of the reason.
        let reason: String = reason.chars().take(255).collect();
        let result = self
            .api
            .stop_task(&self.config.cluster, task_id, &reason)
            .await;
        self.stats.stop_task.record(&result);
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind == CallErrorKind::NotFound => {
                tracing::debug!(task_id, "StopTask: the task is already gone");
                Ok(())
            }
            Err(e) => Err(e.into_launch_error("StopTask")),
        }
    }
}

/// [`EcsApi`] on the AWS SDK. The only place SDK types are used.
#[derive(Clone, Debug)]
pub struct SdkEcs {
    client: aws_sdk_ecs::Client,
}

impl SdkEcs {
    /// Wraps a client.
    pub fn new(client: aws_sdk_ecs::Client) -> SdkEcs {
        SdkEcs { client }
    }
}

fn kv(pairs: &[(String, String)]) -> Vec<sdk::KeyValuePair> {
    pairs
        .iter()
        .map(|(k, v)| sdk::KeyValuePair::builder().name(k).value(v).build())
        .collect()
}

fn build_error(e: impl std::fmt::Display) -> EcsCallError {
    EcsCallError {
        kind: CallErrorKind::Other,
        code: None,
        message: format!("could not build the request: {e}"),
    }
}

/// The SDK call for `req`, not sent: what [`SdkEcs`] sends, exposed so tests can inspect the
/// exact input (`as_input()`).
pub fn sdk_run_task(
    client: &aws_sdk_ecs::Client,
    req: &RunTaskRequest,
) -> Result<RunTaskFluentBuilder, EcsCallError> {
    let mut call = client
        .run_task()
        .cluster(&req.cluster)
        .task_definition(&req.task_definition)
        .count(1)
        .client_token(&req.client_token)
        .started_by(&req.started_by)
        .enable_ecs_managed_tags(req.enable_ecs_managed_tags)
        .overrides(
            sdk::TaskOverride::builder()
                .container_overrides(
                    sdk::ContainerOverride::builder()
                        .name(&req.container_name)
                        .set_environment(Some(kv(&req.environment)))
                        .build(),
                )
                .set_cpu(req.cpu.clone())
                .set_memory(req.memory.clone())
                .build(),
        )
        .set_tags(Some(
            req.tags
                .iter()
                .map(|(k, v)| sdk::Tag::builder().key(k).value(v).build())
                .collect(),
        ));
    if req.propagate_task_definition_tags {
        call = call.propagate_tags(sdk::PropagateTags::TaskDefinition);
    }
    call = match &req.capacity {
        Capacity::LaunchType(t) => call.launch_type(sdk::LaunchType::from(t.as_str())),
        Capacity::Provider(p) => call.capacity_provider_strategy(
            sdk::CapacityProviderStrategyItem::builder()
                .capacity_provider(p)
                .weight(1)
                .build()
                .map_err(build_error)?,
        ),
    };
    if let Some(net) = &req.network {
        call = call.network_configuration(
            sdk::NetworkConfiguration::builder()
                .awsvpc_configuration(
                    sdk::AwsVpcConfiguration::builder()
                        .set_subnets(Some(net.subnets.clone()))
                        // Always present: the emulator refuses a configuration without it.
                        .set_security_groups(Some(net.security_groups.clone()))
                        .assign_public_ip(if net.assign_public_ip {
                            sdk::AssignPublicIp::Enabled
                        } else {
                            sdk::AssignPublicIp::Disabled
                        })
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
        );
    }
    Ok(call)
}

/// Classifies an SDK error: throttles, unknown tasks, transient faults, the rest.
fn classify<E, R>(err: &SdkError<E, R>) -> EcsCallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().map(str::to_string);
    let message = err
        .message()
        .map(str::to_string)
        .unwrap_or_else(|| aws_sdk_ecs::error::DisplayErrorContext(err).to_string());
    let kind = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            CallErrorKind::Transient
        }
        SdkError::ConstructionFailure(_) => CallErrorKind::Other,
        _ => {
            let lower = message.to_ascii_lowercase();
            match code.as_deref() {
                Some(
                    "ThrottlingException"
                    | "Throttling"
                    | "TooManyRequestsException"
                    | "RequestLimitExceeded",
                ) => CallErrorKind::Throttled,
                Some("ClientException") if lower.contains("rate exceeded") => {
                    CallErrorKind::Throttled
                }
                Some("InvalidParameterException") if lower.contains("not found") => {
                    CallErrorKind::NotFound
                }
                Some("ServerException" | "InternalFailure" | "ServiceUnavailable") | None => {
                    CallErrorKind::Transient
                }
                Some(_) => CallErrorKind::Other,
            }
        }
    };
    EcsCallError {
        kind,
        code,
        message,
    }
}

fn plain_task(t: &sdk::Task) -> EcsTask {
    EcsTask {
        arn: t.task_arn().unwrap_or_default().to_string(),
        last_status: t.last_status().map(str::to_string),
        stop_code: t.stop_code().map(|c| c.as_str().to_string()),
        stopped_reason: t.stopped_reason().map(str::to_string),
        started_by: t.started_by().map(str::to_string),
        tags: t
            .tags()
            .iter()
            .filter_map(|tag| Some((tag.key()?.to_string(), tag.value()?.to_string())))
            .collect(),
        containers: t
            .containers()
            .iter()
            .map(|c| EcsContainer {
                name: c.name().map(str::to_string),
                exit_code: c.exit_code(),
                reason: c.reason().map(str::to_string),
            })
            .collect(),
        override_env: t
            .overrides()
            .map(|o| {
                o.container_overrides()
                    .iter()
                    .flat_map(|c| c.environment())
                    .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[async_trait]
impl EcsApi for SdkEcs {
    async fn run_task(&self, req: &RunTaskRequest) -> Result<RunTaskResponse, EcsCallError> {
        let out = sdk_run_task(&self.client, req)?
            .send()
            .await
            .map_err(|e| classify(&e))?;
        Ok(RunTaskResponse {
            tasks: out.tasks().iter().map(plain_task).collect(),
            failures: out
                .failures()
                .iter()
                .map(|f| EcsFailure {
                    arn: f.arn().map(str::to_string),
                    reason: f.reason().map(str::to_string),
                    detail: f.detail().map(str::to_string),
                })
                .collect(),
        })
    }

    async fn list_tasks(
        &self,
        cluster: &str,
        desired_status: &str,
        next_token: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), EcsCallError> {
        let out = self
            .client
            .list_tasks()
            .cluster(cluster)
            .desired_status(sdk::DesiredStatus::from(desired_status))
            .set_next_token(next_token)
            .max_results(100)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        Ok((
            out.task_arns().to_vec(),
            out.next_token().map(str::to_string),
        ))
    }

    async fn describe_tasks(
        &self,
        cluster: &str,
        tasks: &[String],
    ) -> Result<Vec<EcsTask>, EcsCallError> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(tasks.to_vec()))
            .include(sdk::TaskField::Tags)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        // failures[] here are tasks ECS no longer remembers (MISSING): nothing to observe.
        Ok(out.tasks().iter().map(plain_task).collect())
    }

    async fn stop_task(&self, cluster: &str, task: &str, reason: &str) -> Result<(), EcsCallError> {
        self.client
            .stop_task()
            .cluster(cluster)
            .task(task)
            .reason(reason)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_by_is_the_run_id_when_it_fits_and_short_and_stable_otherwise() {
        assert_eq!(started_by("demo-1-sx3k2a"), "demo-1-sx3k2a");
        let long = "a".repeat(60);
        let s = started_by(&long);
        assert!(is_valid_started_by(&s), "{s}");
        assert_eq!(s, started_by(&long), "deterministic");
        assert_ne!(s, started_by(&"a".repeat(61)), "different runs differ");
        let odd = started_by("run.with.dots");
        assert!(is_valid_started_by(&odd), "{odd}");
    }

    #[test]
    fn the_client_token_is_deterministic_and_within_ecs_limits() {
        let run = crate::reconcile::run_id(
            "a-very-long-load-test-name-that-goes-on-and-on-and-on",
            12,
            chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
        );
        for (slot, inc, attempt) in [(0, 0, 1), (9_999, 99, 6), (17, 3, 2)] {
            let launch = Launch {
                slot,
                incarnation: inc,
                attempt,
                client_token: client_token(&run, slot, inc, attempt),
            };
            let t = launch_client_token(&run, &launch);
            assert!(is_valid_client_token(&t), "{t}");
            assert_eq!(t, launch_client_token(&run, &launch));
            assert!(t.ends_with(&format!("-{slot}-{inc}-{attempt}")), "{t}");
        }
        let bad = Launch {
            slot: 1,
            incarnation: 2,
            attempt: 3,
            client_token: "x".repeat(65),
        };
        let t = launch_client_token(&run, &bad);
        assert!(is_valid_client_token(&t), "{t}");
        assert_eq!(t, client_token(&run, 1, 2, 3));
        assert!(!is_valid_client_token("has space"));
        assert!(!is_valid_client_token(""));
    }

    #[test]
    fn failures_that_capacity_or_throttling_explain_are_retryable() {
        assert!(failure_is_retryable("Capacity is unavailable at this time"));
        assert!(failure_is_retryable("RESOURCE:MEMORY"));
        assert!(failure_is_retryable("Rate exceeded"));
        assert!(!failure_is_retryable("MISSING"));
        assert!(!failure_is_retryable("ATTRIBUTE"));
    }

    fn tagged(arn: &str, status: &str) -> EcsTask {
        EcsTask {
            arn: arn.into(),
            last_status: Some(status.into()),
            started_by: Some("demo-1-abc".into()),
            tags: vec![
                (TAG_LOAD_TEST.into(), "demo".into()),
                (TAG_RUN.into(), "demo-1-abc".into()),
                (TAG_SLOT.into(), "4".into()),
                (TAG_INCARNATION.into(), "2".into()),
            ],
            ..EcsTask::default()
        }
    }

    #[test]
    fn ownership_comes_from_tags_then_overrides_and_foreign_tasks_are_skipped() {
        let t = observe(&tagged("arn:1", "RUNNING"), "agent").expect("ours");
        assert_eq!(
            (
                t.load_test.as_str(),
                t.started_by.as_str(),
                t.slot,
                t.incarnation
            ),
            ("demo", "demo-1-abc", Some(4), Some(2))
        );
        assert_eq!(t.state, TaskState::Running);

        let untagged = EcsTask {
            arn: "arn:2".into(),
            last_status: Some("PENDING".into()),
            started_by: Some("demo-1-abc".into()),
            override_env: vec![
                (BARRAGE_LOADTEST.into(), "demo".into()),
                (BARRAGE_SLOT.into(), "5".into()),
                (BARRAGE_INCARNATION.into(), "0".into()),
            ],
            ..EcsTask::default()
        };
        let t = observe(&untagged, "agent").expect("ours by its overrides");
        assert_eq!((t.slot, t.incarnation), (Some(5), Some(0)));
        assert_eq!(t.started_by, "demo-1-abc", "run from startedBy");
        assert_eq!(t.state, TaskState::Starting);

        let foreign = EcsTask {
            arn: "arn:3".into(),
            last_status: Some("RUNNING".into()),
            ..EcsTask::default()
        };
        assert_eq!(observe(&foreign, "agent"), None);
    }

    #[test]
    fn a_stopped_task_reads_its_agent_containers_exit_code_and_the_reasons() {
        let mut t = tagged("arn:1", "STOPPED");
        t.stop_code = Some("EssentialContainerExited".into());
        t.stopped_reason = Some("Essential container in task exited".into());
        t.containers = vec![
            EcsContainer {
                name: Some("sidecar".into()),
                exit_code: Some(0),
                reason: None,
            },
            EcsContainer {
                name: Some("agent".into()),
                exit_code: Some(3),
                reason: Some("boom".into()),
            },
        ];
        let o = observe(&t, "agent").expect("ours");
        assert_eq!(
            o.state,
            TaskState::Exited {
                ok: false,
                code: Some(3),
                reason: Some(
                    "EssentialContainerExited: Essential container in task exited: boom".into()
                )
            }
        );
    }
}
