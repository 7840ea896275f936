//! # runtime — the one effectful loop
//!
//! Watch, queue, lease, execute plans, requeue:
//! - **Lease**: a task acquires the leader lease and renews it every third of its duration.
//!   The controller acts only while it holds a lease that is not about to expire; a deposed
//!   controller (another holder took over) stops at once, and every write it still makes is
//!   fenced by its epoch. On graceful shutdown the lease is released so another controller
//!   takes over without waiting for it to expire.
//! - **Watch**: change events (DynamoDB Streams, or any channel of [`WatchEvent`]) plus a full
//!   relist every `resync`, feeding a [`WorkQueue`] keyed by LoadTest name that never
//!   reconciles one name twice at once.
//! - **Reconcile** one name: read the record, its run's agent status items and its tasks,
//!   build [`Observed`], call [`reconcile::plan`] (or [`reconcile::plan_unreadable`] for a
//!   record that does not parse), write the status **first** (a conflict means re-read and
//!   re-plan), then carry out the commands through the ports, remembering each launch's
//!   outcome per slot for the next reconcile. Shell errors go through
//!   [`reconcile::error_policy`]: capped, jittered backoff per name.
//!
//! It must not decide anything the core decides: phases, launches, stops and reports are
//! the plan's; this file only observes and executes.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use barrage_crds::keys::{self, ReportFile};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::status::{LoadTestStatus, ReportLocations, WindowVerdict};
use barrage_store::watch::{WatchEvent, WatchHandle};
use barrage_store::{Blobs, Lease, Store, StoreError, StoredLoadTest};
use chrono::Utc;
use futures::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::launch::{AgentTemplate, LaunchError, Launcher};
use crate::metrics::Metrics;
use crate::reconcile::{
    self, Command, EXPECTATION_TIMEOUT, Expectation, Failure, LaunchOutcome, Observed,
    ReportObservation, Retry,
};
use crate::report::ReportContext;
use crate::report::fetch::{render_from_blobs, render_window_from_blobs, window_file_key};
use crate::topics::{KafkaTopics, Topics};

pub mod config;
mod queue;

/// How long a record whose status does not decode is left alone before it is read again.
const UNREADABLE_STATUS_RETRY: Duration = Duration::from_secs(60);

pub use config::{ConfigError, ControllerConfig, LauncherKind};
pub use queue::WorkQueue;

/// Why a reconcile could not finish.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A store call failed.
    #[error("{operation} of loadtest/{name} failed: {source}")]
    Store {
        /// What was being done.
        operation: &'static str,
        /// The LoadTest.
        name: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// A launcher call failed as a whole.
    #[error("{operation} for loadtest/{name} failed: {source}")]
    Launch {
        /// What was being done.
        operation: &'static str,
        /// The LoadTest.
        name: String,
        /// The cause.
        #[source]
        source: LaunchError,
    },
    /// This controller lost the lease while reconciling.
    #[error("the leader lease was lost while reconciling loadtest/{0}")]
    LeaseLost(String),
}

impl RuntimeError {
    /// The error policy's view of this error.
    pub fn failure(&self) -> Failure {
        match self {
            RuntimeError::Store { source, .. } => match source {
                StoreError::Conflict { .. } => Failure::Conflict,
                StoreError::Throttled { .. } => Failure::Throttled,
                _ => Failure::Transient,
            },
            RuntimeError::Launch { source, .. } => match source {
                LaunchError::Throttled { .. } => Failure::Throttled,
                _ => Failure::Transient,
            },
            RuntimeError::LeaseLost(_) => Failure::LeaseLost,
        }
    }

    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self.failure() {
            Failure::SpecInvalid => "spec_invalid",
            Failure::Throttled => "throttled",
            Failure::Conflict => "conflict",
            Failure::Transient => "transient",
            Failure::LeaseLost => "lease_lost",
        }
    }
}

/// The requeue after a failed reconcile: the core's error policy, seeded by the name so two
/// LoadTests failing together do not retry in lockstep.
pub fn backoff_after(failure: Failure, attempt: u32, name: &str) -> Option<Duration> {
    let seed = barrage_crds::digest::fnv1a(name.as_bytes());
    match reconcile::error_policy(failure, attempt, seed) {
        Retry::Never => None,
        Retry::Immediately => Some(Duration::from_millis(50)),
        Retry::After(d) => Some(d),
    }
}

/// The lease is usable while this much of it is left: writes in flight then finish well
/// before another controller may take over (and the epoch fences them anyway).
fn lease_margin(duration: Duration) -> Duration {
    duration / 4
}

/// What the shell remembers of one LoadTest between reconciles (lost on a crash, which the
/// core tolerates).
#[derive(Debug, Default)]
struct Memory {
    run_id: Option<String>,
    expectations: Vec<Expectation>,
    report: Option<ReportObservation>,
    failures: u32,
    /// Verdicts of soak windows written that the status did not record yet.
    windows_written: Vec<WindowVerdict>,
    /// What the last DeleteTopic of this run did.
    topic_delete: Option<reconcile::TopicDeleteResult>,
}

impl Memory {
    /// Follows `run`: what was remembered of another run is dropped.
    fn follow_run(&mut self, run: &Option<String>) {
        if self.run_id != *run {
            self.run_id = run.clone();
            self.expectations.clear();
            self.report = None;
            self.windows_written.clear();
            self.topic_delete = None;
        }
    }

    /// Forgets the window verdicts `status` records (up to `status.windows.latest`).
    fn prune_windows(&mut self, status: &LoadTestStatus) {
        if let Some(latest) = status.windows.as_ref().and_then(|w| w.latest.as_ref()) {
            self.windows_written.retain(|v| v.index > latest.index);
        }
    }
}

/// Everything a reconcile needs, shared by the workers.
struct Shared {
    cfg: ControllerConfig,
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
    launcher: Arc<dyn Launcher>,
    topics: Arc<dyn Topics>,
    metrics: Arc<Metrics>,
    lease: watch::Receiver<Option<Lease>>,
    memory: Mutex<HashMap<String, Memory>>,
}

impl Shared {
    fn memory(&self) -> MutexGuard<'_, HashMap<String, Memory>> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lease if it is held with enough time left.
    fn usable_lease(&self) -> Option<Lease> {
        let lease = self.lease.borrow().clone()?;
        let left = lease.expires_at - Utc::now();
        let margin = chrono::TimeDelta::from_std(lease_margin(self.cfg.lease_duration))
            .unwrap_or(chrono::TimeDelta::zero());
        (left > margin).then_some(lease)
    }

    fn store_err(&self, operation: &'static str, name: &str, source: StoreError) -> RuntimeError {
        let throttled = matches!(source, StoreError::Throttled { .. });
        self.metrics
            .aws_call("dynamodb", operation, throttled, true);
        RuntimeError::Store {
            operation,
            name: name.to_string(),
            source,
        }
    }
}

/// The controller: build it with the ports, optionally add a watch and metrics, then run.
pub struct Controller {
    cfg: ControllerConfig,
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
    launcher: Arc<dyn Launcher>,
    topics: Arc<dyn Topics>,
    events: Option<mpsc::Receiver<WatchEvent>>,
    watch_handle: Option<WatchHandle>,
    metrics: Arc<Metrics>,
}

impl Controller {
    /// A controller over these ports.
    pub fn new(
        cfg: ControllerConfig,
        store: Arc<dyn Store>,
        blobs: Arc<dyn Blobs>,
        launcher: Arc<dyn Launcher>,
    ) -> Controller {
        Controller {
            cfg,
            store,
            blobs,
            launcher,
            topics: Arc::new(KafkaTopics),
            events: None,
            watch_handle: None,
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Change events (DynamoDB Streams through `barrage_store::streams::watch`, or a memory
    /// store's watch). Without them the controller relies on the periodic resync and requeues.
    /// The watch is stopped through `handle` when the controller stops.
    pub fn with_watch(
        mut self,
        (events, handle): (mpsc::Receiver<WatchEvent>, WatchHandle),
    ) -> Controller {
        self.events = Some(events);
        self.watch_handle = Some(handle);
        self
    }

    /// The topic port (default: Kafka's admin API with the spec's settings).
    pub fn with_topics(mut self, topics: Arc<dyn Topics>) -> Controller {
        self.topics = topics;
        self
    }

    /// Metrics to update (shared with the metrics server).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Controller {
        self.metrics = metrics;
        self
    }

    /// Runs until `shutdown` completes, then stops reconciling, waits for reconciles in
    /// progress and releases the lease.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Controller {
            cfg,
            store,
            blobs,
            launcher,
            topics,
            mut events,
            watch_handle,
            metrics,
        } = self;
        let (lease_tx, lease_rx) = watch::channel::<Option<Lease>>(None);
        let (stop_tx, stop_rx) = watch::channel(false);
        let lease_task = tokio::spawn(lease_loop(
            store.clone(),
            cfg.controller_id.clone(),
            cfg.lease_duration,
            lease_tx,
            stop_rx,
            metrics.clone(),
        ));
        let shared = Arc::new(Shared {
            cfg,
            store,
            blobs,
            launcher,
            topics,
            metrics,
            lease: lease_rx.clone(),
            memory: Mutex::new(HashMap::new()),
        });
        info!(
            controller = %shared.cfg.controller_id,
            resync = ?shared.cfg.resync,
            lease = ?shared.cfg.lease_duration,
            "Controller started."
        );
        let mut queue = WorkQueue::new();
        let mut running: JoinSet<(String, Option<Duration>)> = JoinSet::new();
        let mut resync = tokio::time::interval(shared.cfg.resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lease_rx = lease_rx;
        let mut was_held = false;
        tokio::pin!(shutdown);
        loop {
            while running.len() < shared.cfg.workers {
                let Some(name) = queue.pop(Instant::now()) else {
                    break;
                };
                let shared = shared.clone();
                running.spawn(async move {
                    let requeue = match AssertUnwindSafe(reconcile_one(&shared, &name))
                        .catch_unwind()
                        .await
                    {
                        Ok(requeue) => requeue,
                        Err(panic) => panicked(&shared, &name, panic.as_ref()),
                    };
                    (name, requeue)
                });
            }
            // With every worker busy a due key must wait for one to finish (the join branch
            // below); arming the timer for a time already past would spin the loop.
            let wake = (running.len() < shared.cfg.workers)
                .then(|| queue.next_due())
                .flatten()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                () = &mut shutdown => break,
                _ = resync.tick() => relist(&shared, &mut queue).await,
                Some(done) = running.join_next(), if !running.is_empty() => match done {
                    Ok((name, requeue)) => queue.done(&name, requeue.map(|d| Instant::now() + d)),
                    Err(e) => warn!("A reconcile task ended abnormally: {e}"),
                },
                event = recv(&mut events) => match event {
                    Some(WatchEvent::Changed(name)) => queue.add(&name, Instant::now()),
                    Some(WatchEvent::Relist) => relist(&shared, &mut queue).await,
                    None => {
                        warn!("The watch ended; relying on the periodic resync.");
                        events = None;
                    }
                },
                changed = lease_rx.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let held = lease_rx.borrow().is_some();
                    if held && !was_held {
                        info!(controller = %shared.cfg.controller_id, "Leading: reconciling every LoadTest.");
                        relist(&shared, &mut queue).await;
                    } else if !held && was_held {
                        warn!(controller = %shared.cfg.controller_id, "Lost the leader lease: no longer acting.");
                    }
                    was_held = held;
                }
                () = tokio::time::sleep_until(wake) => {}
            }
        }
        info!("Shutting down: finishing reconciles in progress.");
        while running.join_next().await.is_some() {}
        if let Some(handle) = watch_handle {
            handle.shutdown().await;
        }
        let _ = stop_tx.send(true);
        let _ = lease_task.await;
        info!("Controller stopped.");
    }
}

/// Runs the controller with these ports until `shutdown` (no watch: periodic resync only).
pub async fn run(
    cfg: ControllerConfig,
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
    launcher: Arc<dyn Launcher>,
    shutdown: impl Future<Output = ()>,
) {
    Controller::new(cfg, store, blobs, launcher)
        .run(shutdown)
        .await;
}

async fn recv(events: &mut Option<mpsc::Receiver<WatchEvent>>) -> Option<WatchEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Queues every record now, and stops orphan tasks whose record is gone.
async fn relist(shared: &Arc<Shared>, queue: &mut WorkQueue) {
    let records = match shared.store.list_load_tests().await {
        Ok(r) => {
            shared.metrics.aws_call("dynamodb", "Query", false, false);
            r
        }
        Err(e) => {
            shared.metrics.aws_call(
                "dynamodb",
                "Query",
                matches!(e, StoreError::Throttled { .. }),
                true,
            );
            shared.metrics.error("list");
            warn!("Listing LoadTests failed: {e}");
            return;
        }
    };
    let now = Instant::now();
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    for r in &records {
        queue.add(&r.name, now);
    }
    {
        let mut memory = shared.memory();
        memory.retain(|k, _| names.contains(&k.as_str()) || queue.is_active(k));
    }
    if shared.usable_lease().is_none() {
        return;
    }
    match shared.launcher.list_agents(None).await {
        Ok(tasks) => {
            if let Some(Command::StopTasks { task_ids, reason }) =
                reconcile::sweep_orphans(&names, &tasks)
            {
                for id in task_ids {
                    info!(task = %id, "Stopping an orphan agent task.");
                    if let Err(e) = shared.launcher.stop_agent(&id, &reason).await {
                        warn!(task = %id, "Stopping an orphan failed: {e}");
                    }
                }
            }
        }
        Err(e) => warn!("Listing agent tasks failed: {e}"),
    }
}

/// Acquires and renews the lease every third of its duration; releases it on stop.
async fn lease_loop(
    store: Arc<dyn Store>,
    holder: String,
    duration: Duration,
    tx: watch::Sender<Option<Lease>>,
    mut stop: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) {
    let period = (duration / 3).max(Duration::from_millis(100));
    loop {
        match store.acquire_lease(&holder, duration, Utc::now()).await {
            Ok(Some(lease)) => {
                metrics.aws_call("dynamodb", "AcquireLease", false, false);
                let fresh = tx.borrow().as_ref().map(|l| l.epoch) != Some(lease.epoch);
                if fresh {
                    info!(holder = %holder, epoch = lease.epoch, "Acquired the leader lease.");
                }
                metrics.set_lease_held(true);
                tx.send_replace(Some(lease));
            }
            Ok(None) => {
                metrics.aws_call("dynamodb", "AcquireLease", false, false);
                if tx.borrow().is_some() {
                    warn!(holder = %holder, "Another controller holds the lease: deposed.");
                }
                metrics.set_lease_held(false);
                tx.send_replace(None);
            }
            Err(e) => {
                metrics.aws_call(
                    "dynamodb",
                    "AcquireLease",
                    matches!(e, StoreError::Throttled { .. }),
                    true,
                );
                metrics.error("lease");
                warn!("Renewing the leader lease failed: {e}");
                // Keep acting only while the lease we hold is still valid.
                let expired = tx
                    .borrow()
                    .as_ref()
                    .is_some_and(|l| l.expires_at <= Utc::now());
                if expired {
                    metrics.set_lease_held(false);
                    tx.send_replace(None);
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep(period) => {}
        }
    }
    let held = tx.borrow().clone();
    if let Some(lease) = held {
        match store.release_lease(&lease).await {
            Ok(()) => info!(holder = %holder, epoch = lease.epoch, "Released the leader lease."),
            Err(e) => warn!("Releasing the leader lease failed: {e}"),
        }
    }
    metrics.set_lease_held(false);
    tx.send_replace(None);
}

/// Reconciles `name` once; the requeue delay (None: wait for a change).
/// Counts one more failed reconcile of `name`; the failures before it (the backoff attempt).
fn next_failure(shared: &Shared, name: &str) -> u32 {
    let mut memory = shared.memory();
    let m = memory.entry(name.to_string()).or_default();
    let before = m.failures;
    m.failures = m.failures.saturating_add(1);
    before
}

/// A reconcile that panicked: logged, counted (`kind="panic"`) and requeued with the backoff
/// of a transient failure, so the LoadTest is reconciled again and never left marked active.
fn panicked(shared: &Shared, name: &str, panic: &(dyn std::any::Any + Send)) -> Option<Duration> {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    shared.metrics.error("panic");
    let attempt = next_failure(shared, name);
    error!(
        load_test = name,
        attempt, "The reconcile panicked; retrying with backoff: {message}"
    );
    backoff_after(Failure::Transient, attempt, name)
}

async fn reconcile_one(shared: &Arc<Shared>, name: &str) -> Option<Duration> {
    shared.metrics.reconciled();
    match reconcile_inner(shared, name).await {
        Ok(requeue) => {
            if let Some(m) = shared.memory().get_mut(name) {
                m.failures = 0;
            }
            requeue
        }
        Err(e) => {
            shared.metrics.error(e.kind());
            let failure = e.failure();
            let attempt = next_failure(shared, name);
            match failure {
                Failure::Conflict => debug!(load_test = name, "{e}; re-reading."),
                _ => warn!(load_test = name, attempt, "{e}"),
            }
            backoff_after(failure, attempt, name)
        }
    }
}

async fn reconcile_inner(
    shared: &Arc<Shared>,
    name: &str,
) -> Result<Option<Duration>, RuntimeError> {
    let Some(lease) = shared.usable_lease() else {
        return Ok(Some(reconcile::LEASE_RETRY));
    };
    let (lt, version) = match read(shared, name, &lease).await? {
        Read::LoadTest { lt, version } => (lt, version),
        Read::Done(requeue) => return Ok(requeue),
    };
    let before = lt.status.clone().unwrap_or_default();
    let now = Utc::now();
    let observed = observe(shared, name, &before, now).await?;
    let plan = reconcile::plan(&lt, &observed, now);
    let version = persist(shared, name, &before, &plan, version, &lease).await?;
    execute(shared, &lt, &plan, version, &lease).await
}

/// What reading a record gave.
enum Read {
    /// A LoadTest to plan for, its status in `lt.status`, at this record version.
    LoadTest { lt: Box<LoadTest>, version: u64 },
    /// Nothing to plan: the record is gone, or cannot be read (then marked Failed).
    Done(Option<Duration>),
}

/// Reads the record. One that is gone is forgotten; one whose document is not a LoadTest is
/// marked Failed (`SpecInvalid`); one whose status does not decode is left alone.
async fn read(shared: &Shared, name: &str, lease: &Lease) -> Result<Read, RuntimeError> {
    let record = shared
        .store
        .get_load_test(name)
        .await
        .map_err(|e| shared.store_err("GetItem", name, e))?;
    shared.metrics.aws_call("dynamodb", "GetItem", false, false);
    let Some(record) = record else {
        shared.memory().remove(name);
        shared.metrics.set_phase(name, None);
        return Ok(Read::Done(None));
    };
    let StoredLoadTest {
        version,
        generation,
        doc,
        status,
        status_error,
        ..
    } = record;
    if let Some(error) = status_error {
        // Never read as "no status": that would start a finished run again.
        shared.metrics.error("status");
        error!(
            load_test = name,
            "Leaving the record alone: {error}. Fix or remove the status item (sk = status) to go on."
        );
        return Ok(Read::Done(Some(UNREADABLE_STATUS_RETRY)));
    }
    match doc {
        Ok(mut lt) => {
            lt.status = status;
            Ok(Read::LoadTest {
                lt: Box::new(lt),
                version,
            })
        }
        Err(error) => {
            let plan = reconcile::plan_unreadable(
                status.as_ref(),
                Some(generation),
                &error.to_string(),
                Utc::now(),
            );
            if Some(&plan.status) != status.as_ref() {
                warn!(
                    load_test = name,
                    "The record cannot be read as a LoadTest: {error}"
                );
                write_status(shared, name, &plan.status, version, lease).await?;
            }
            shared.metrics.set_phase(name, Some(plan.status.phase));
            Ok(Read::Done(plan.requeue))
        }
    }
}

/// What the core needs to see: the run's agent records, the LoadTest's tasks and what this
/// controller remembers of the run.
async fn observe(
    shared: &Shared,
    name: &str,
    before: &LoadTestStatus,
    now: chrono::DateTime<Utc>,
) -> Result<Observed, RuntimeError> {
    let agents = match &before.run_id {
        Some(run) => {
            let agents = shared
                .store
                .list_agent_status(name, run)
                .await
                .map_err(|e| shared.store_err("Query", name, e))?;
            shared.metrics.aws_call("dynamodb", "Query", false, false);
            agents
        }
        None => Vec::new(),
    };
    let tasks = shared
        .launcher
        .list_agents(Some(name))
        .await
        .map_err(|source| RuntimeError::Launch {
            operation: "listing agents",
            name: name.to_string(),
            source,
        })?;
    let mut memory = shared.memory();
    let m = memory.entry(name.to_string()).or_default();
    m.follow_run(&before.run_id);
    m.prune_windows(before);
    let horizon =
        chrono::TimeDelta::from_std(EXPECTATION_TIMEOUT * 2).unwrap_or(chrono::TimeDelta::zero());
    m.expectations.retain(|e| now - e.at < horizon);
    Ok(Observed {
        tasks,
        topic_created: agents.iter().any(|a| a.topic_created),
        agents,
        expectations: m.expectations.clone(),
        report: m.report.clone(),
        topic_delete: m.topic_delete.clone(),
        windows_written: m.windows_written.clone(),
        lease_held: shared.usable_lease().is_some(),
    })
}

/// Writes the plan's status when it changed (conditionally: record version and lease
/// epoch); returns the record version the commands then work at.
async fn persist(
    shared: &Shared,
    name: &str,
    before: &LoadTestStatus,
    plan: &reconcile::Plan,
    version: u64,
    lease: &Lease,
) -> Result<u64, RuntimeError> {
    let mut version = version;
    if plan.status != *before {
        version = write_status(shared, name, &plan.status, version, lease).await?;
        if plan.status.phase != before.phase {
            info!(
                load_test = name,
                from = before.phase.as_str(),
                to = plan.status.phase.as_str(),
                reason = plan
                    .status
                    .transitions
                    .last()
                    .map(|t| t.reason.as_str())
                    .unwrap_or(""),
                "Phase changed."
            );
        }
    }
    shared.metrics.set_phase(name, Some(plan.status.phase));
    let mut memory = shared.memory();
    let m = memory.entry(name.to_string()).or_default();
    m.follow_run(&plan.status.run_id);
    m.prune_windows(&plan.status);
    Ok(version)
}

/// Carries the plan's commands out in order, stopping if the lease is lost; returns when to
/// reconcile again (the plan's requeue, or sooner as the commands' follow-ups say).
async fn execute(
    shared: &Shared,
    lt: &LoadTest,
    plan: &reconcile::Plan,
    version: u64,
    lease: &Lease,
) -> Result<Option<Duration>, RuntimeError> {
    let name = lt.name();
    let mut requeue = plan.requeue;
    for command in &plan.commands {
        // A deposed controller stops between commands.
        if shared.usable_lease().is_none() {
            return Err(RuntimeError::LeaseLost(name.to_string()));
        }
        let done = match command {
            Command::RunAgents { run_id, launches } => {
                run_agents(shared, lt, run_id, launches).await;
                true
            }
            Command::StopTasks { task_ids, reason } => {
                stop_tasks(shared, name, task_ids, reason).await
            }
            Command::WriteReport { run_id, final_ } => {
                write_report(shared, lt, run_id, *final_).await
            }
            Command::WriteWindows { run_id, windows } => {
                write_windows(shared, lt, &plan.status, run_id, windows).await
            }
            Command::DeleteTopic { topic } => delete_topic(shared, lt, topic).await,
            Command::RemoveRecord => {
                shared
                    .store
                    .remove(name, version, lease.epoch)
                    .await
                    .map_err(|e| shared.store_err("DeleteItem", name, e))?;
                info!(
                    load_test = name,
                    "Removed the record: the finalizer is done."
                );
                shared.memory().remove(name);
                shared.metrics.set_phase(name, None);
                return Ok(None);
            }
        };
        if let Some(after) = command.follow_up(done) {
            requeue = shorter(requeue, after);
        }
    }
    Ok(requeue)
}

/// StopTask on each task; false if any stop failed (it is tried again on a later reconcile).
async fn stop_tasks(shared: &Shared, name: &str, task_ids: &[String], reason: &str) -> bool {
    let mut all = true;
    for id in task_ids {
        info!(load_test = name, task = %id, reason = %reason, "Stopping an agent task.");
        if let Err(e) = shared.launcher.stop_agent(id, reason).await {
            shared.metrics.error("launch");
            warn!(load_test = name, task = %id, "Stopping the task failed: {e}");
            all = false;
        }
    }
    all
}

/// Deletes the topic an agent of this run created (`cleanup: DeleteIfCreated`) through the
/// topic port and remembers the outcome for the core. When it fails the topic is left in
/// place for now, and the failure is logged and counted (`barrage_errors_total{kind="kafka"}`).
async fn delete_topic(shared: &Shared, lt: &LoadTest, topic: &str) -> bool {
    let name = lt.name();
    let result = match shared.topics.delete(&lt.spec.kafka, topic).await {
        Ok(()) => {
            info!(load_test = name, topic = %topic, "Deleted the topic this run created.");
            reconcile::TopicDeleteResult::Deleted
        }
        Err(e) => {
            shared.metrics.error("kafka");
            warn!(
                load_test = name,
                topic = %topic,
                "Could not delete the topic this run created; trying again later: {e}"
            );
            reconcile::TopicDeleteResult::Failed(e.to_string())
        }
    };
    let done = result == reconcile::TopicDeleteResult::Deleted;
    if let Some(m) = shared.memory().get_mut(name) {
        m.topic_delete = Some(result);
    }
    done
}

/// Soaks (`spec.report.window`): writes the report set of each of `windows` of `run_id`, in
/// order, under `runs/{lt}/{run}/windows/{w:05}/`, and remembers each verdict for the core,
/// which records it in `status.windows`. Stops at the first failure; returns whether every
/// window was written. A window is reported on its own once, from the intervals in the store
/// at that moment; a blob that arrives later counts in the cumulative report only.
async fn write_windows(
    shared: &Shared,
    lt: &LoadTest,
    status: &LoadTestStatus,
    run_id: &str,
    windows: &[u32],
) -> bool {
    let name = lt.name();
    let mut ctx = ReportContext::for_run(lt, run_id, false);
    // Every agent incarnation that may have uploaded: windows list only theirs, only the
    // window's intervals (the whole run's listing when the slots are not known).
    ctx.agent_dirs = (!status.slots.is_empty()).then(|| {
        status
            .slots
            .iter()
            .flat_map(|s| (0..=s.incarnation).map(move |i| (s.slot, i)))
            .collect()
    });
    let io = shared.blobs.as_ref();
    for &w in windows {
        let set = match render_window_from_blobs(io, &ctx, w).await {
            Ok(set) => set,
            Err(e) => {
                shared.metrics.error("report");
                warn!(
                    load_test = name,
                    run = run_id,
                    window = w,
                    "Writing a window report failed: {e}"
                );
                return false;
            }
        };
        info!(
            load_test = name,
            run = run_id,
            window = w,
            verdict = ?set.verdict.result,
            acked = set.summary.records_acked,
            "Wrote a window report."
        );
        let verdict = WindowVerdict {
            index: w,
            result: set.verdict.result,
            reasons: set.verdict.reasons,
            records_acked: set.summary.records_acked,
            produce_p99_us: set.summary.produce_p99_us,
            report: Some(
                shared
                    .blobs
                    .uri(&window_file_key(name, run_id, w, ReportFile::Json)),
            ),
        };
        let mut memory = shared.memory();
        let m = memory.entry(name.to_string()).or_default();
        if m.run_id.as_deref() == Some(run_id) {
            m.windows_written.push(verdict);
        }
    }
    true
}

fn shorter(a: Option<Duration>, b: Duration) -> Option<Duration> {
    Some(a.map_or(b, |a| a.min(b)))
}

async fn write_status(
    shared: &Shared,
    name: &str,
    status: &LoadTestStatus,
    version: u64,
    lease: &Lease,
) -> Result<u64, RuntimeError> {
    let result = shared
        .store
        .write_status(name, status, version, lease.epoch)
        .await;
    shared.metrics.aws_call(
        "dynamodb",
        "UpdateItem",
        matches!(result, Err(StoreError::Throttled { .. })),
        result.is_err(),
    );
    result.map_err(|source| RuntimeError::Store {
        operation: "UpdateItem",
        name: name.to_string(),
        source,
    })
}

/// Issues one RunTask (or one batch of processes) and remembers each slot's outcome.
async fn run_agents(shared: &Shared, lt: &LoadTest, run_id: &str, launches: &[reconcile::Launch]) {
    let name = lt.name();
    let at = Utc::now();
    let mut template =
        AgentTemplate::for_load_test(lt, shared.cfg.store.clone(), shared.cfg.blobs.clone());
    template.metrics_addr = shared.cfg.agent_metrics_addr.clone();
    template.heartbeat = shared.cfg.agent_heartbeat;
    let outcomes: Vec<(usize, LaunchOutcome)> = match shared
        .launcher
        .run_agents(name, run_id, launches, &template)
        .await
    {
        Ok(results) => results
            .iter()
            .filter_map(|r| {
                let i = launches.iter().position(|l| *l == r.launch)?;
                Some((i, r.outcome()))
            })
            .collect(),
        Err(e) => {
            shared.metrics.error("launch");
            warn!(
                load_test = name,
                run = run_id,
                "Launching agents failed: {e}"
            );
            let throttled = e.is_retryable();
            (0..launches.len())
                .map(|i| {
                    (
                        i,
                        LaunchOutcome::Failed {
                            reason: e.to_string(),
                            throttled,
                        },
                    )
                })
                .collect()
        }
    };
    let started = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, LaunchOutcome::Started { .. }))
        .count();
    info!(
        load_test = name,
        run = run_id,
        asked = launches.len(),
        started,
        "Launched agent tasks."
    );
    let mut memory = shared.memory();
    let m = memory.entry(name.to_string()).or_default();
    for (i, launch) in launches.iter().enumerate() {
        let outcome = outcomes
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, o)| o.clone())
            .unwrap_or(LaunchOutcome::InFlight);
        m.expectations.retain(|e| {
            !(e.slot == launch.slot
                && e.incarnation == launch.incarnation
                && e.attempt == launch.attempt)
        });
        m.expectations.push(Expectation {
            slot: launch.slot,
            incarnation: launch.incarnation,
            attempt: launch.attempt,
            at,
            outcome,
        });
    }
}

/// Merges the run's histograms and writes the report set; remembers the result for the core.
async fn write_report(shared: &Shared, lt: &LoadTest, run_id: &str, final_: bool) -> bool {
    let name = lt.name();
    let mut ctx = ReportContext::for_run(lt, run_id, final_);
    // What agents could never deliver is named in the report, from their status records.
    match shared.store.list_agent_status(name, run_id).await {
        Ok(agents) => {
            ctx.undelivered = agents
                .iter()
                .flat_map(|a| a.undelivered.iter().map(|u| (a.slot, a.incarnation, *u)))
                .collect();
        }
        Err(e) => {
            warn!(load_test = name, error = %e, "Could not read the agents' status for the report.")
        }
    }
    let io = shared.blobs.as_ref();
    match render_from_blobs(io, &ctx).await {
        Ok(set) => {
            let uri = |f: ReportFile| Some(shared.blobs.uri(&keys::report_key(name, run_id, f)));
            let observation = ReportObservation {
                run_id: run_id.to_string(),
                final_,
                verdict: Some(set.verdict.clone()),
                summary: Some(set.summary.clone()),
                locations: Some(ReportLocations {
                    json: uri(ReportFile::Json),
                    html: uri(ReportFile::Html),
                    hlog: uri(ReportFile::MergedHlog),
                    junit: uri(ReportFile::Junit),
                }),
            };
            info!(
                load_test = name,
                run = run_id,
                verdict = ?set.verdict.result,
                "Wrote the report."
            );
            let mut memory = shared.memory();
            let m = memory.entry(name.to_string()).or_default();
            m.run_id = Some(run_id.to_string());
            m.report = Some(observation);
            true
        }
        Err(e) => {
            shared.metrics.error("report");
            warn!(
                load_test = name,
                run = run_id,
                "Writing the report failed: {e}"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests;
