//! The agent's side of the operator protocol.
//!
//! An agent started by the controller (an ECS task, or a local process) is told who it is by
//! the environment contract ([`Assignment`]). It then:
//! 1. reads its LoadTest from the [`Store`] and builds its job (payloads warmed up);
//! 2. connects, learns the topic's leaders and reports `Ready` (Produce and RoundTrip warm up
//!    a producer; RoundTrip also positions its reader at the end of every partition; Consume
//!    subscribes its group — see [`crate::consume`]);
//! 3. waits for `status.startAt`, written by the controller once enough agents are ready —
//!    a replacement that starts late joins the running schedule at the current offset;
//! 4. runs the engine, uploading every interval to [`Blobs`] under a write-once key (a retry
//!    can never count twice; what the store refuses is spooled and retried, see
//!    [`crate::spool`]) and heartbeating its counters;
//! 5. follows the fleet assignment (re-splits when agents are added or removed), stops early
//!    when the LoadTest is stopped, cancelled or deleted, or on SIGTERM;
//! 6. flushes, uploads the last interval (retrying the spool) and reports `Completed`, or
//!    `Failed` with a reason — among them intervals never delivered, which it names.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use barrage_crds::agent_status::{AgentCounters, AgentPhase, AgentStatus, UndeliveredIntervals};
use barrage_crds::env::Assignment;
use barrage_crds::interval::{AgentInterval, IntervalCounters, encode_interval_blob};
use barrage_crds::keys;
use barrage_crds::loadtest::LoadTest;
use barrage_crds::spec::WorkloadKind;
use barrage_crds::status::{FleetAssignment, Phase};
use barrage_store::{Blobs, Store};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::consume::{self, Setup};
use crate::engine::{self, Control, INTERVAL_QUEUE, IntervalRecord, Reassign};
use crate::job;
use crate::kafka::producer::Clock;
use crate::metrics::{AgentMetrics, Identity};
use crate::recorder::{CounterSnapshot, Recorder};
use crate::spool::{DeliveryConfig, Outgoing, Progress, Uploader};
use barrage_crds::schedule::Share;
use barrage_kafka::admin::{Admin, AdminError, TopicCreate, TopicOutcome};
use barrage_kafka::config::base_config;

/// How an agent's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentExit {
    /// The share was sent (or the run was stopped) and every interval is uploaded.
    Completed { stopped_early: bool },
}

/// An agent's run with what it measured, for a driver that prints a summary (`barrage run`).
#[derive(Debug, Clone)]
pub struct Finished {
    pub exit: AgentExit,
    /// The engine's outcome; `None` when the agent had no share to send.
    pub outcome: Option<engine::Outcome>,
    /// Intervals delivered to the blob store.
    pub uploaded: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("LoadTest {0} not found in the store")]
    NotFound(String),
    #[error("LoadTest {name} cannot be used: {reason}")]
    Invalid {
        name: String,
        reason: barrage_store::DocError,
    },
    #[error("no startAt within {0:?}: the controller never started the run")]
    NoStart(Duration),
    #[error("the run ended before this agent could start ({0})")]
    RunOver(String),
    #[error(transparent)]
    Store(#[from] barrage_store::StoreError),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error(transparent)]
    Job(#[from] job::JobError),
    #[error("writing the backlog: {0}")]
    Backlog(Box<crate::backlog::BacklogError>),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Credentials(#[from] barrage_kafka::credentials::CredentialsError),
    /// The delivery settings (spool, drain) are not valid.
    #[error(transparent)]
    Delivery(#[from] crate::spool::ConfigError),
    /// The engine task failed (panicked or was cancelled).
    #[error("the engine task failed: {0}")]
    EngineTask(#[from] tokio::task::JoinError),
    /// The uploader task failed (panicked): what it had not delivered is unknown.
    #[error("the interval uploader failed: {0}")]
    Uploader(String),
    /// Intervals the blob store never took, after every retry: the report lacks them.
    #[error(
        "{intervals} intervals ({records} records) were never delivered to the blob store: {ranges:?}"
    )]
    Undelivered {
        intervals: u32,
        records: u64,
        ranges: Vec<UndeliveredIntervals>,
    },
}

/// How often the agent reads its LoadTest's status (startAt, fleet, stop).
const POLL: Duration = Duration::from_millis(500);

/// How far ahead of its clock a replacement joins the running schedule, nanoseconds.
const JOIN_LEAD_NS: u64 = 200_000_000;

/// Longest wait for the broker while connecting (RoundTrip and Consume consumers).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// `RUN-SLOT-INCARNATION`: unique per agent incarnation (a replacement reads back only its
/// own records; its spool folder is its own).
pub fn agent_name(a: &Assignment) -> String {
    format!("{}-{}-{}", a.run_id, a.slot, a.incarnation)
}

/// Runs one agent to its end. `shutdown` resolving (SIGTERM) stops the load early; the agent
/// still flushes, uploads its last interval and reports.
pub async fn run(
    assignment: Assignment,
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<AgentExit, AgentError> {
    let metrics = Arc::new(AgentMetrics::new(Identity::default()));
    let delivery = DeliveryConfig::from_lookup(&agent_name(&assignment), |_| None)?;
    run_observed(assignment, store, blobs, shutdown, metrics, delivery).await
}

/// [`run`], keeping `metrics` (the agent's `/metrics`) up to date.
pub async fn run_observed(
    assignment: Assignment,
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
    shutdown: impl Future<Output = ()> + Send,
    metrics: Arc<AgentMetrics>,
    delivery: DeliveryConfig,
) -> Result<AgentExit, AgentError> {
    run_measured(assignment, store, blobs, shutdown, metrics, delivery)
        .await
        .map(|f| f.exit)
}

/// [`run_observed`], returning what the agent measured as well.
pub async fn run_measured(
    assignment: Assignment,
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
    shutdown: impl Future<Output = ()> + Send,
    metrics: Arc<AgentMetrics>,
    delivery: DeliveryConfig,
) -> Result<Finished, AgentError> {
    let reporter = Reporter::new(&assignment, store.clone(), metrics);
    let result = run_inner(&assignment, &store, &blobs, &reporter, &delivery, shutdown).await;
    match result.as_ref().map(|f| &f.exit) {
        Ok(AgentExit::Completed { stopped_early }) => {
            reporter
                .phase(
                    AgentPhase::Completed,
                    stopped_early.then(|| "stopped early".into()),
                )
                .await;
        }
        Err(e) => {
            reporter
                .phase(AgentPhase::Failed, Some(e.to_string()))
                .await
        }
    }
    result
}

async fn run_inner(
    a: &Assignment,
    store: &Arc<dyn Store>,
    blobs: &Arc<dyn Blobs>,
    reporter: &Reporter,
    delivery: &DeliveryConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<Finished, AgentError> {
    let lt = load(store.as_ref(), &a.load_test).await?;
    let spec = &lt.spec;
    // SASL credentials from the referenced secret (and the MSK IAM token refresher).
    let sasl = barrage_kafka::credentials::prepare_security(&spec.kafka).await?;
    let fleet = lt
        .status
        .as_ref()
        .and_then(|s| s.fleet.clone())
        .unwrap_or_default();
    let of = u32::try_from(fleet.members.len())
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(spec.agents.count.max(1));
    let position = fleet.share_index(a.slot).unwrap_or(a.slot);

    ensure_topic(spec, sasl.as_ref(), reporter).await?;
    let recorder = Arc::new(Recorder::new());
    let interval = spec.report.interval.as_std();
    let prepared = prepare(a, spec, sasl.as_ref(), Share::new(position, of), &recorder).await?;
    reporter.phase(AgentPhase::Ready, None).await;
    info!(
        slot = a.slot,
        incarnation = a.incarnation,
        "Ready; waiting for startAt."
    );

    let ready_limit = spec.timeouts.ready.as_std() + spec.timeouts.provisioning.as_std();
    let (start_at, at_start) = wait_for_start(a, store, reporter, &recorder, ready_limit).await?;
    let origin = instant_of(start_at);
    let clock = Clock::new(origin);
    let control = Control::new();
    // The fleet as it is at the start (it may have changed while this agent prepared).
    let fleet = at_start
        .status
        .as_ref()
        .and_then(|s| s.fleet.clone())
        .unwrap_or(fleet);
    if let Some(nothing) = outside(&fleet, a.slot) {
        return Ok(nothing);
    }
    let mut prepared = prepared;
    let of = join(
        &mut prepared,
        &fleet,
        a.slot,
        start_at,
        &clock,
        (position, of),
    );
    let running_spans = fleet.paused_offsets_ns(start_at);
    let profile = barrage_crds::schedule::profile(&at_start.spec.load).paused(&running_spans);
    reporter
        .metrics
        .running(recorder.clone(), profile, of, origin);

    let (tx, rx) = mpsc::channel::<IntervalRecord>(INTERVAL_QUEUE);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let uploads = spawn_uploader(
        Uploader::new(blobs.clone(), delivery.clone()),
        Intervals {
            a: a.clone(),
            start_at,
            interval,
            consuming: at_start.spec.workload.kind == WorkloadKind::Consume,
        },
        rx,
        stop_rx,
        reporter.clone(),
    );
    let engine_task = tokio::spawn(prepared.run(clock, control.clone(), tx));
    tokio::pin!(shutdown);
    let mut engine_task = engine_task;
    let mut follower = Follower {
        start_at,
        seen_fleet: fleet.epoch,
        load: at_start.spec.load.clone(),
        spans: running_spans,
        clock,
        control,
        last_beat: Instant::now(),
        stopped: false,
    };
    let mut terminated = false;
    reporter.phase(AgentPhase::Running, None).await;
    let outcome = loop {
        tokio::select! {
            done = &mut engine_task => break done,
            _ = &mut shutdown, if !terminated => {
                info!("Stop requested: stopping the load, flushing and uploading.");
                follower.control.stop();
                follower.stopped = true;
                terminated = true;
                let _ = stop_tx.send(true);
            }
            _ = tokio::time::sleep(POLL) => follower.tick(a, store, reporter, &recorder).await,
        }
    };
    let finished = outcome??;
    let delivered = delivered(uploads, shutdown.as_mut(), terminated, &stop_tx).await?;
    finish(
        reporter,
        &recorder,
        finished.outcome,
        delivered,
        follower.stopped,
    )
    .await
}

/// A slot left out of the fleet while it prepared (scaled down, or failed and dropped) has
/// no share: sending with its slot number as position would duplicate a member's. It ends
/// at once, with nothing sent.
fn outside(fleet: &FleetAssignment, slot: u32) -> Option<Finished> {
    if fleet.members.is_empty() || fleet.share_index(slot).is_some() {
        return None;
    }
    info!(
        slot,
        members = ?fleet.members,
        "This slot is not a member of the fleet at the start: nothing to send."
    );
    Some(Finished {
        exit: AgentExit::Completed {
            stopped_early: true,
        },
        outcome: None,
        uploaded: 0,
    })
}

/// The engine, connected and ready to send (or consume) under `share`.
async fn prepare(
    a: &Assignment,
    spec: &barrage_crds::spec::LoadTestSpec,
    sasl: Option<&barrage_kafka::config::SaslCredentials>,
    share: Share,
    recorder: &Arc<Recorder>,
) -> Result<consume::Workload, AgentError> {
    let setup = Setup {
        spec,
        run_id: &a.run_id,
        share,
        // Unique per incarnation: a replacement reads back only its own records.
        agent_id: agent_name(a),
        // Consume: every agent of the run in one group, which splits the partitions.
        group_id: format!("barrage-{}-{}", a.load_test, a.run_id),
        sasl,
        connect_timeout: CONNECT_TIMEOUT,
        // Let the controller stop us gracefully within the ECS stop timeout.
        flush_timeout: Some(Duration::from_secs(20)),
    };
    let workload = consume::prepare(setup, recorder.clone()).await?;
    // The group holds its partitions (paused) meanwhile. A replacement agent does not write
    // its slot's share again.
    if spec.workload.backlog.is_some() && a.incarnation == 0 {
        let (spec, run_id, sasl) = (spec.clone(), a.run_id.clone(), sasl.cloned());
        tokio::task::spawn_blocking(move || {
            crate::backlog::write(&spec, &run_id, share, sasl.as_ref())
        })
        .await?
        .map_err(|e| AgentError::Backlog(Box::new(e)))?;
    }
    Ok(workload)
}

/// Sets the share this agent sends under the fleet assignment at the start, and its pauses;
/// returns the fleet's size. The split is the assignment's, the one the other members
/// follow; a replacement only leaves out what fell due before it joins (a little ahead of
/// now, so that its first send is not already late). `fallback` is the (position, size)
/// prepared with, for a run without an assignment.
fn join(
    prepared: &mut consume::Workload,
    fleet: &FleetAssignment,
    slot: u32,
    start_at: DateTime<Utc>,
    clock: &Clock,
    fallback: (u32, u32),
) -> u32 {
    let of = u32::try_from(fleet.members.len())
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(fallback.1);
    let position = fleet.share_index(slot).unwrap_or(fallback.0);
    let effective_ns = fleet.effective_at.map_or(0, |t| offset_ns(start_at, t));
    // At the start everyone follows the assignment from the first send; a replacement joins
    // ahead of now, and not before its assignment takes effect (until then the survivors send
    // under the one before).
    let join_ns = match clock.now_ns() {
        0 => 0,
        now_ns => (now_ns + JOIN_LEAD_NS).max(effective_ns),
    };
    prepared.pause(&fleet.paused_offsets_ns(start_at));
    let share = Share::under_assignment(prepared.profile(), position, of, effective_ns, join_ns);
    prepared.set_share(share);
    if join_ns > 0 {
        info!(
            offset_ms = join_ns / 1_000_000,
            from_index = share.from_index + u64::from(share.slot),
            "Joining the running schedule."
        );
    }
    of
}

/// The topic, as `barrage run` ensures it: created with the spec's partitions when asked and
/// missing ("already exists" is success: every agent of the fleet asks). RoundTrip's reader
/// and Consume's group need its partitions before the start.
async fn ensure_topic(
    spec: &barrage_crds::spec::LoadTestSpec,
    sasl: Option<&barrage_kafka::config::SaslCredentials>,
    reporter: &Reporter,
) -> Result<(), AgentError> {
    let admin = Admin::new(&base_config(&spec.kafka, sasl))?;
    let create = spec.topic.create.as_ref().map(TopicCreate::from_spec);
    let topic = admin
        .ensure_topic(&spec.topic.name, create.as_ref(), CONNECT_TIMEOUT)
        .await?;
    if topic == TopicOutcome::Created {
        // Told to the controller with the next status write (before Ready), so that it may
        // delete the topic at the end when the spec asks for it.
        reporter.status.lock().await.topic_created = true;
    }
    Ok(())
}

/// Waits for the shared start (`status.startAt`), heartbeating; returns it with the LoadTest
/// as it was then. Fails when the run is over first or no start comes within `ready_limit`.
async fn wait_for_start(
    a: &Assignment,
    store: &Arc<dyn Store>,
    reporter: &Reporter,
    recorder: &Arc<Recorder>,
    ready_limit: Duration,
) -> Result<(DateTime<Utc>, LoadTest), AgentError> {
    let deadline = Instant::now() + ready_limit;
    loop {
        let current = load(store.as_ref(), &a.load_test).await?;
        if let Some(reason) = over(&current) {
            return Err(AgentError::RunOver(reason));
        }
        if let Some(s) = current.status.as_ref().and_then(|s| s.start_at) {
            return Ok((s, current));
        }
        if Instant::now() > deadline {
            return Err(AgentError::NoStart(ready_limit));
        }
        reporter.heartbeat(recorder).await;
        tokio::time::sleep(POLL).await;
    }
}

/// What a running agent follows of the fleet assignment: the load and pauses it runs under.
struct Follower {
    start_at: DateTime<Utc>,
    /// The assignment epoch last followed.
    seen_fleet: u32,
    /// The load profile running.
    load: barrage_crds::spec::LoadSpec,
    /// The paused spans running, as offsets from the start.
    spans: Vec<(u64, u64)>,
    clock: Clock,
    control: Arc<Control>,
    last_beat: Instant,
    /// The load was told to stop (the run is over, or SIGTERM).
    stopped: bool,
}

impl Follower {
    /// One poll: a heartbeat when due, then the LoadTest read again, to stop when the run is
    /// over for this agent or follow a new assignment.
    async fn tick(
        &mut self,
        a: &Assignment,
        store: &Arc<dyn Store>,
        reporter: &Reporter,
        recorder: &Arc<Recorder>,
    ) {
        if self.last_beat.elapsed() >= a.heartbeat {
            reporter.heartbeat(recorder).await;
            self.last_beat = Instant::now();
        }
        match load(store.as_ref(), &a.load_test).await {
            Ok(current) => match over(&current) {
                Some(reason) if !self.stopped => {
                    info!(reason, "The run is over for this agent: stopping.");
                    self.control.stop();
                    self.stopped = true;
                }
                Some(_) => {}
                None => self.follow(&current, a.slot, reporter),
            },
            Err(e) => warn!(error = %e, "Could not read the LoadTest; carrying on."),
        }
    }

    /// Follows a new fleet assignment in `current`, if there is one: a new rate (a spec edit)
    /// or a pause or resume takes effect with it, on the same clock for every agent, and so
    /// does the new split.
    fn follow(&mut self, current: &LoadTest, slot: u32, reporter: &Reporter) {
        let Some(f) = current.status.as_ref().and_then(|s| s.fleet.as_ref()) else {
            return;
        };
        if f.epoch == self.seen_fleet {
            return;
        }
        self.seen_fleet = f.epoch;
        let of = u32::try_from(f.members.len()).unwrap_or(1);
        let spans = f.paused_offsets_ns(self.start_at);
        let profile = barrage_crds::schedule::profile(&current.spec.load).paused(&spans);
        reporter.metrics.follow(profile.clone(), of);
        if current.spec.load != self.load || spans != self.spans {
            self.load = current.spec.load.clone();
            self.spans = spans;
            let at_ns = f
                .effective_at
                .map(|t| offset_ns(self.start_at, t))
                .unwrap_or_else(|| self.clock.now_ns());
            info!(
                generation = f.spec_generation,
                at_ns,
                paused = f.paused,
                "Following a new load profile."
            );
            self.control.replace_profile(profile, at_ns);
        }
        follow_fleet(f, slot, self.start_at, &self.clock, &self.control);
    }
}

/// The last heartbeat with what was delivered; an error when intervals could not be.
async fn finish(
    reporter: &Reporter,
    recorder: &Arc<Recorder>,
    outcome: engine::Outcome,
    delivered: Progress,
    stopped: bool,
) -> Result<Finished, AgentError> {
    reporter.set_delivery(&delivered).await;
    reporter.heartbeat(recorder).await;
    let (lost, lost_records) = delivered.lost();
    info!(
        uploaded = delivered.uploaded,
        undelivered = lost,
        acked = outcome.counters.acked,
        consumed = outcome.counters.consumed,
        lost = outcome.counters.lost,
        duplicated = outcome.counters.duplicated,
        "Finished; intervals uploaded."
    );
    if lost > 0 {
        return Err(AgentError::Undelivered {
            intervals: lost,
            records: lost_records,
            ranges: delivered.undelivered,
        });
    }
    Ok(Finished {
        exit: AgentExit::Completed {
            stopped_early: outcome.stopped_early || stopped,
        },
        uploaded: delivered.uploaded,
        outcome: Some(outcome),
    })
}

/// Waits for the uploader to deliver, or give up on, the last intervals; a SIGTERM meanwhile
/// (unless `terminated` already) turns its drain into one last try.
async fn delivered(
    uploads: tokio::task::JoinHandle<Progress>,
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    mut terminated: bool,
    stop: &tokio::sync::watch::Sender<bool>,
) -> Result<Progress, AgentError> {
    tokio::pin!(uploads);
    loop {
        tokio::select! {
            done = &mut uploads => return done.map_err(|e| AgentError::Uploader(e.to_string())),
            _ = &mut shutdown, if !terminated => {
                terminated = true;
                let _ = stop.send(true);
            }
        }
    }
}

/// Applies a new fleet assignment: a new position and size from `effectiveAt`, or a stop
/// when this slot is no longer a member.
fn follow_fleet(
    f: &FleetAssignment,
    slot: u32,
    start_at: DateTime<Utc>,
    clock: &Clock,
    control: &Control,
) {
    let at_ns = f
        .effective_at
        .map(|t| offset_ns(start_at, t))
        .unwrap_or_else(|| clock.now_ns());
    match f.share_index(slot) {
        Some(position) => {
            let of = u32::try_from(f.members.len()).unwrap_or(1).max(1);
            info!(position, of, at_ns, "Fleet re-split.");
            control.reassign(Reassign {
                at_ns,
                slot: position,
                of,
            });
        }
        None => {
            info!("This slot left the fleet: stopping.");
            control.stop();
        }
    }
}

/// Why this agent should not (or no longer) send, if so.
fn over(lt: &LoadTest) -> Option<String> {
    if lt.spec.stop {
        return Some("spec.stop is true".into());
    }
    if lt.metadata.deletion_timestamp.is_some() {
        return Some("the LoadTest is being deleted".into());
    }
    match lt.status.as_ref().map(|s| s.phase) {
        Some(p @ (Phase::Cancelling | Phase::Cancelled | Phase::Succeeded | Phase::Failed)) => {
            Some(format!("phase {p:?}"))
        }
        _ => None,
    }
}

async fn load(store: &dyn Store, name: &str) -> Result<LoadTest, AgentError> {
    let stored = store
        .get_load_test(name)
        .await?
        .ok_or_else(|| AgentError::NotFound(name.to_string()))?;
    let mut lt = stored.doc.map_err(|reason| AgentError::Invalid {
        name: name.to_string(),
        reason,
    })?;
    if lt.status.is_none() {
        lt.status = stored.status;
    }
    Ok(lt)
}

/// The monotonic instant of a wall-clock time (in the past or the future).
fn instant_of(t: DateTime<Utc>) -> Instant {
    let now_i = Instant::now();
    let delta = t - Utc::now();
    match delta.to_std() {
        Ok(ahead) => now_i + ahead,
        Err(_) => {
            let behind = (-delta).to_std().unwrap_or_default();
            now_i.checked_sub(behind).unwrap_or(now_i)
        }
    }
}

/// Nanoseconds from the run's start to `t` (0 before it), from the two timestamps alone: every
/// agent computes the same offset, so the same first send of a new split, even when `t` falls
/// exactly on a send's due time (reading it through this machine's clocks would jitter).
fn offset_ns(start_at: DateTime<Utc>, t: DateTime<Utc>) -> u64 {
    match (t - start_at).num_nanoseconds() {
        Some(ns) => u64::try_from(ns).unwrap_or(0),
        None if t > start_at => u64::MAX,
        None => 0,
    }
}

/// This interval's counters: the difference between two cumulative snapshots, with `acked`
/// taken from the histogram itself so it equals the histogram's count exactly.
fn delta(prev: &CounterSnapshot, r: &IntervalRecord) -> IntervalCounters {
    let c = &r.counters;
    let d = |a: u64, b: u64| a.saturating_sub(b);
    let mut errors_by_kind = c.errors_by_kind.clone();
    for (k, v) in &prev.errors_by_kind {
        if let Some(e) = errors_by_kind.get_mut(k) {
            *e = e.saturating_sub(*v);
        }
    }
    errors_by_kind.retain(|_, v| *v > 0);
    IntervalCounters {
        scheduled: r.scheduled,
        sent: d(c.sent, prev.sent),
        acked: r.histograms.produce.len(),
        errors: d(c.errors, prev.errors),
        dropped: d(c.dropped, prev.dropped),
        late: d(c.late, prev.late),
        bytes: d(c.bytes, prev.bytes),
        queue_full: d(c.queue_full, prev.queue_full),
        overflow: d(c.overflow, prev.overflow),
        consumed: d(c.consumed, prev.consumed),
        lost: d(c.lost, prev.lost),
        duplicated: d(c.duplicated, prev.duplicated),
        reordered: d(c.reordered, prev.reordered),
        errors_by_kind,
    }
}

/// The interval as the blob the report reads.
fn interval_blob(
    slot: u32,
    incarnation: u32,
    start_at: DateTime<Utc>,
    interval: Duration,
    record: &IntervalRecord,
    counters: IntervalCounters,
) -> AgentInterval {
    let start_ms =
        u64::try_from(start_at.timestamp_millis()).unwrap_or(0) + record.start_ns / 1_000_000;
    // Intervals are aligned on the run's start: the last one may close early, but it still
    // stands for the same nominal span, so every interval of a run has the same length.
    let length_ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let histograms = record
        .histograms
        .tagged()
        .into_iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(tag, h)| (tag, h.clone()))
        .collect();
    AgentInterval {
        slot,
        incarnation,
        index: record.index,
        start_ms,
        length_ms,
        histograms,
        counters: Some(counters),
        consumer_lag: record.consumer_lag.clone(),
        partitions: record.histograms.partition_totals(),
    }
}

/// What turns an interval record into its blob and key.
struct Intervals {
    a: Assignment,
    start_at: DateTime<Utc>,
    interval: Duration,
    consuming: bool,
}

impl Intervals {
    /// The blob of `record` (its counters against the previous snapshot `last`), with the
    /// records it counts; `None` when it cannot be encoded (logged).
    fn outgoing(&self, last: &CounterSnapshot, record: &IntervalRecord) -> Option<Outgoing> {
        let a = &self.a;
        let counters = delta(last, record);
        // Consume measures no produce latency: its records are the ones consumed.
        let records = if self.consuming {
            counters.consumed
        } else {
            counters.acked
        };
        let blob = interval_blob(
            a.slot,
            a.incarnation,
            self.start_at,
            self.interval,
            record,
            counters,
        );
        match encode_interval_blob(&blob) {
            Ok(text) => Some(Outgoing {
                index: record.index,
                key: keys::interval_key(
                    &a.load_test,
                    &a.run_id,
                    a.slot,
                    a.incarnation,
                    record.index,
                ),
                body: text.into(),
                records,
            }),
            Err(e) => {
                error!(interval = record.index, error = %e, "Could not encode an interval.");
                None
            }
        }
    }
}

/// The uploader: every interval the engine closes goes to the store (or the spool), then,
/// after the engine is done, the spool is drained (`stop`: SIGTERM, one last try).
fn spawn_uploader(
    mut uploader: Uploader,
    intervals: Intervals,
    mut rx: mpsc::Receiver<IntervalRecord>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    reporter: Reporter,
) -> tokio::task::JoinHandle<Progress> {
    tokio::spawn(async move {
        let mut last = CounterSnapshot::default();
        loop {
            tokio::select! {
                record = rx.recv() => {
                    let Some(record) = record else { break };
                    let out = intervals.outgoing(&last, &record);
                    last = record.counters.clone();
                    let records = out.as_ref().map_or(0, |o| o.records);
                    if let Some(out) = out {
                        uploader.offer(out).await;
                    }
                    let h = &record.histograms;
                    let latest = if intervals.consuming { &h.e2e } else { &h.produce };
                    reporter.set_last_interval(latest.value_at_quantile(0.99), records).await;
                }
                _ = uploader.retry_due() => uploader.retry().await,
            }
            reporter.set_delivery(uploader.progress()).await;
        }
        uploader
            .drain(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
            .await;
        uploader.finish().await
    })
}

/// Writes this agent's status item: phase changes at once, counters on heartbeats.
#[derive(Clone)]
struct Reporter {
    store: Arc<dyn Store>,
    status: Arc<tokio::sync::Mutex<AgentStatus>>,
    metrics: Arc<AgentMetrics>,
}

impl Reporter {
    fn new(a: &Assignment, store: Arc<dyn Store>, metrics: Arc<AgentMetrics>) -> Self {
        let mut status =
            AgentStatus::new(&a.load_test, &a.run_id, a.slot, a.incarnation, Utc::now());
        status.task_id = std::env::var("ECS_CONTAINER_METADATA_URI_V4")
            .ok()
            .or_else(|| Some(format!("pid-{}", std::process::id())));
        status.metrics_addr = metrics.addr();
        Reporter {
            store,
            status: Arc::new(tokio::sync::Mutex::new(status)),
            metrics,
        }
    }

    async fn write(&self, status: &AgentStatus) {
        if let Err(e) = self.store.put_agent_status(status).await {
            warn!(error = %e, "Could not write the agent status.");
        }
    }

    async fn phase(&self, phase: AgentPhase, reason: Option<String>) {
        self.metrics.set_phase(phase);
        let snapshot = {
            let mut s = self.status.lock().await;
            s.phase = phase;
            s.reason = reason;
            s.heartbeat_at = Utc::now();
            if phase == AgentPhase::Running && s.started_at.is_none() {
                s.started_at = Some(Utc::now());
            }
            s.clone()
        };
        self.write(&snapshot).await;
    }

    async fn heartbeat(&self, recorder: &Recorder) {
        let c = recorder.counters().snapshot();
        let snapshot = {
            let mut s = self.status.lock().await;
            if s.phase == AgentPhase::Ready && c.sent > 0 {
                s.phase = AgentPhase::Running;
                s.started_at = Some(Utc::now());
            }
            s.heartbeat_at = Utc::now();
            s.counters = AgentCounters {
                sent: c.sent,
                acked: c.acked,
                errors: c.errors,
                dropped: c.dropped,
                late: c.late,
                bytes: c.bytes,
                consumed: c.consumed,
                overflow: c.overflow,
                errors_by_kind: c.errors_by_kind.clone(),
            };
            s.saturated = c.queue_full > 0;
            s.clone()
        };
        self.write(&snapshot).await;
    }

    async fn set_last_interval(&self, p99: u64, records: u64) {
        let mut s = self.status.lock().await;
        s.last_interval_p99_us = Some(p99);
        s.last_interval_records = Some(records);
    }

    async fn set_delivery(&self, p: &Progress) {
        self.metrics.set_delivery(p);
        let mut s = self.status.lock().await;
        s.intervals_uploaded = p.uploaded;
        s.intervals_spooled = p.spooled;
        s.undelivered.clone_from(&p.undelivered);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn offsets_from_the_start_are_exact_and_zero_at_or_before_it() {
        let start = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(offset_ns(start, start), 0);
        assert_eq!(offset_ns(start, start - chrono::Duration::seconds(3)), 0);
        let later = start + chrono::Duration::milliseconds(35_000);
        assert_eq!(offset_ns(start, later), 35_000_000_000);
    }
}
