//! # reconcile — the pure core
//!
//! `plan(&LoadTest, &Observed, now) -> Plan { status, commands, requeue }`. No async, no SDK
//! types, no I/O, no clock, no randomness: the same inputs always give the same plan, so every
//! row of the phase table below is a plain `#[test]` and a property test drives the core
//! through thousands of simulated worlds (see `sim.rs`).
//!
//! This module owns *decisions*. It must not talk to AWS, read the environment or sleep; the
//! shell (`runtime.rs`) observes the world, calls [`plan`], and carries the plan out.
//!
//! ## Phase table
//!
//! "Timeout" is measured from `status.phaseSince`, except where said. Every non-terminal phase
//! has one, so no run can hang; every row below is a test in `tests.rs`.
//!
//! | from         | when                                                          | to           | reason / effect |
//! |--------------|---------------------------------------------------------------|--------------|-----------------|
//! | any live     | the spec fails validation                                     | Failed       | `SpecInvalid` condition True; no requeue |
//! | any live     | `metadata.deletionTimestamp` is set                           | Cancelling   | `Deleted` |
//! | Pending      | the spec is valid                                             | Provisioning | `Accepted`; `runId` derived from name, generation and now |
//! | Pending, Provisioning | `spec.stop`                                          | Cancelling   | `StopRequested` |
//! | Provisioning, Running | the spec changed beyond rate, count, pause and stop (`runDigest`) | Cancelling | `Superseded`; `superseded` set |
//! | Cancelling (superseded) | no task is alive and the partial report is written (or the cancel timeout passed) | Pending | `Superseded`; the new generation's run starts next |
//! | terminal     | `spec.rerun` differs from the run's                           | Pending      | `Rerun`: the same spec runs again, on purpose |
//! | Provisioning | ⌈readyFraction × count⌉ agents of live slots report Ready     | Running      | `AgentsReady`; `startAt = now + 5s`; first fleet assignment effective at `startAt` |
//! | Provisioning | `timeouts.provisioning` passed and not every slot has a task  | Failed       | `ProvisioningTimedOut` |
//! | Provisioning | `timeouts.provisioning + timeouts.ready` passed                | Failed       | `ReadyTimedOut` |
//! | Provisioning, Running | every slot exhausted its restarts                    | Failed       | `AgentsFailed` |
//! | Running      | `startAt + load duration` reached (the Running timeout)       | Draining     | `LoadComplete` |
//! | Running      | `spec.stop`                                                   | Draining     | `StopRequested` |
//! | Draining     | every live agent task of the run reports Completed/Failed or has exited | Reporting | `Drained`; `WriteReport { final: true }` |
//! | Draining     | `timeouts.draining` passed, or `startAt + maxDuration`        | Reporting    | `DrainTimedOut`; stragglers stopped |
//! | Reporting    | the final report of this run is written, verdict Passed       | Succeeded    | `ThresholdsMet` |
//! | Reporting    | the final report is written, verdict not Passed               | Failed       | `ThresholdsFailed` / `MeasurementInvalid` / `Incomplete` |
//! | Reporting    | `timeouts.reporting` passed                                   | Failed       | `ReportTimedOut` |
//! | Cancelling   | no task is alive and (nothing was measured or the partial report is written) | Cancelled | verdict Incomplete |
//! | Cancelling   | `timeouts.cancelling` passed                                  | Cancelled    | `CancelTimedOut` |
//! | terminal     | tasks still alive                                             | (stays)      | `StopTasks` every one |
//! | terminal     | no task alive, this run created the topic, `cleanup: DeleteIfCreated` | (stays) | `topicDeleted` (the intent) written, then `DeleteTopic`; again after a restart or a failure until `topicGone` (at most 5 calls) |
//! | terminal     | deletion requested and no task alive (or cancel timeout over) | (stays)      | `RemoveRecord` |
//! | Running … Succeeded, Failed | a soak window ended and every agent uploaded it, or its grace (2 intervals, ≥ 5 s) passed | (stays) | `WriteWindows` (≤ 4, in order); the verdicts the shell reports back go into `status.windows` |
//!
//! Writing the same desired state again changes nothing, whoever writes it (the store reads a
//! spec put by hand at the generation whose digest the status recorded). A changed spec
//! re-targets a live run when only the load profile, the agent count, `paused` or `stop`
//! changed; any other change supersedes it (partial report, then the new generation's run).
//! After the load ended (Draining onwards) the run completes as it was. Terminal runs are
//! final: a spec edited after the end is observed (observedGeneration) but starts no run;
//! running again is explicit: a new `spec.rerun` (what `barrage rerun` writes).
//!
//! ## Slots, launches and the fleet
//! Each agent is a *slot* `0..count` with an *incarnation* (+1 on every replacement), recorded
//! in `status.slots`. While Provisioning and Running:
//! - A launch is decided by writing the slot as `Launching` (attempt, launchedAt) **in the
//!   status**, and the shell persists the status before it calls RunTask. A launch counts as in
//!   flight until its task is seen or [`EXPECTATION_TIMEOUT`] passes; a slot with a launch in
//!   flight, or with any live task, is never launched again. So a controller crash between the
//!   status write and RunTask, a lost RunTask response or a lagging DescribeTasks never makes
//!   two tasks for one slot. The client token `{runId}-{slot}-{incarnation}-{attempt}` makes a
//!   retried RunTask idempotent on top.
//! - Launches go out in batches of at most [`MAX_BATCH`], slow start 1, 2, 4, 8, 10 (the window
//!   is `status.launchWindow`); the next batch waits until the previous one is confirmed, and a
//!   failed launch resets the window to 1.
//! - A failed launch (a RunTask `failures[]` entry for the slot, a throttle) backs that slot off
//!   (2 s, 4 s … capped at 60 s); after [`MAX_LAUNCH_ATTEMPTS`] for one incarnation the slot fails.
//! - A task that exits with an error during Provisioning or Running is replaced while the slot's
//!   `restarts < agents.maxRestarts`: same slot, incarnation + 1; the new agent reads `startAt`
//!   and joins the running schedule at the current offset. An agent that exits cleanly is done.
//! - Past `maxRestarts` the slot is **Failed and dropped from the fleet**: the run goes on
//!   degraded (condition `Degraded`), the remaining members take over its share from a new
//!   assignment a few seconds ahead. When every slot has failed the run fails (`AgentsFailed`).
//! - Live tasks that belong to no slot of this run (another run, a retired or unknown slot, a
//!   duplicate, an older incarnation) are stopped: adoption and reaping after a restart are
//!   the same code as every other reconcile.
//! - Desired-state changes while Running (count, rate, pause) publish a new
//!   [`FleetAssignment`](barrage_crds::status::FleetAssignment), effective [`RESPLIT_LEAD`] ahead,
//!   so every agent switches on the same clock and the shares sum exactly to the total.
//!
//! ## Contract with the shell
//! 1. If `plan.status` differs from the stored status, write it conditionally (record version
//!    and leader epoch). If that write fails, drop the plan: re-read and plan again.
//! 2. Only then execute `plan.commands`, in order. Report every RunTask outcome per slot back
//!    as an [`Expectation`] in the next [`Observed`] (losing them in a crash is safe).
//! 3. Requeue after `plan.requeue` (None: only on the next change), or sooner as each
//!    command's [`Command::follow_up`] says. Shell errors go through [`error_policy`].
//! 4. Report back what the commands did: launch outcomes ([`Observed::expectations`]), the
//!    report written ([`Observed::report`]), the topic deleted ([`Observed::topic_delete`]),
//!    the windows written ([`Observed::windows_written`]).

use std::collections::BTreeMap;
use std::time::Duration;

use barrage_crds::agent_status::{AgentPhase, AgentStatus};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::spec::TopicCleanup;
use barrage_crds::status::{
    Condition, ConditionStatus, FleetAssignment, LoadTestStatus, Phase, ReportLocations, SlotState,
    Summary, Transition, Verdict, VerdictResult, WindowVerdict,
};
use chrono::{DateTime, Utc};

mod policy;
mod slots;
mod windows;

pub use policy::{
    Failure, Retry, THROTTLED_BACKOFF, TRANSIENT_BACKOFF, client_token, error_policy, run_id,
};
pub use windows::{MAX_WINDOWS_PER_RECONCILE, uploaded_through};

#[cfg(test)]
mod sim;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

/// How far ahead of the decision `startAt` is set, so every agent sees it before it passes.
pub const START_LEAD: Duration = Duration::from_secs(5);
/// How far ahead a new fleet assignment takes effect.
pub const RESPLIT_LEAD: Duration = Duration::from_secs(5);
/// How long a decided launch counts as in flight while its task is not seen.
pub const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a task that was seen may be missing from the task list before it counts as dead.
pub const MISSING_TIMEOUT: Duration = Duration::from_secs(120);
/// RunTask launches at most this many tasks per call.
pub const MAX_BATCH: u32 = 10;
/// Launch attempts for one incarnation of a slot before the slot fails.
pub const MAX_LAUNCH_ATTEMPTS: u32 = 6;
/// Requeue while the lease is held by someone else.
pub const LEASE_RETRY: Duration = Duration::from_secs(5);
/// Longest sleep between reconciles of a live run.
pub const RESYNC: Duration = Duration::from_secs(30);
/// Shortest requeue.
pub const MIN_REQUEUE: Duration = Duration::from_secs(1);

/// Condition types this core writes.
pub use barrage_crds::names::{ConditionType, TransitionReason};

/// What an agent task is doing, parsed once at the launcher boundary
/// (ECS `lastStatus`/`stopCode`/exit code, or a local process).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Accepted, provisioning or pending.
    Starting,
    /// Running.
    Running,
    /// On its way out (deactivating, stopping, deprovisioning): still alive.
    Stopping,
    /// Gone. `ok` when the agent exited 0.
    Exited {
        /// The agent exited cleanly.
        ok: bool,
        /// Container exit code, if known.
        code: Option<i32>,
        /// Stop code or reason, if known.
        reason: Option<String>,
    },
    /// A state this version does not know; treated as alive (never relaunched over).
    Unknown(String),
}

impl TaskState {
    /// Everything but `Exited` may still be sending load.
    pub fn is_live(&self) -> bool {
        !matches!(self, TaskState::Exited { .. })
    }
}

/// An agent task the launcher listed for a LoadTest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedTask {
    /// ECS task ARN or local process id.
    pub task_id: String,
    /// The LoadTest the task is tagged with.
    pub load_test: String,
    /// `startedBy`: the run id.
    pub started_by: String,
    /// The slot tag, if it parsed.
    pub slot: Option<u32>,
    /// The incarnation tag, if it parsed.
    pub incarnation: Option<u32>,
    /// What it is doing.
    pub state: TaskState,
}

/// What became of a RunTask the shell issued (kept in the shell's memory; lost on a crash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LaunchOutcome {
    /// Issued, no answer yet (or the call timed out).
    InFlight,
    /// RunTask returned this task.
    Started {
        /// Task ARN or process id.
        task_id: String,
    },
    /// RunTask reported a failure for this slot (or the whole call failed).
    Failed {
        /// ECS failure reason or error message.
        reason: String,
        /// It was a throttle / quota error.
        throttled: bool,
    },
}

/// The outcome of a DeleteTopic the shell ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopicDeleteResult {
    /// The topic is gone (deleted now, or already).
    Deleted,
    /// It failed, after the shell's own retries.
    Failed(String),
}

/// DeleteTopic calls before the topic is left in place (each retried a few times by the shell).
pub const MAX_TOPIC_DELETE_ATTEMPTS: u32 = 5;

/// A launch the shell issued, with its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// Slot launched.
    pub slot: u32,
    /// Incarnation launched.
    pub incarnation: u32,
    /// Attempt launched.
    pub attempt: u32,
    /// When the call was made.
    pub at: DateTime<Utc>,
    /// What happened.
    pub outcome: LaunchOutcome,
}

/// A report the shell found (or wrote) for a run.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportObservation {
    /// Run the report is for.
    pub run_id: String,
    /// True for the final report, false for a partial one (cancelled run).
    pub final_: bool,
    /// Verdict from the thresholds.
    pub verdict: Option<Verdict>,
    /// Summary numbers.
    pub summary: Option<Summary>,
    /// Where the files are.
    pub locations: Option<ReportLocations>,
}

/// Everything the shell saw for one LoadTest. `lease_held` must be true for the core to act.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Agent tasks listed for this LoadTest (any run).
    pub tasks: Vec<ObservedTask>,
    /// Agent status records of this LoadTest (any run, any incarnation).
    pub agents: Vec<AgentStatus>,
    /// Launch outcomes the shell remembers.
    pub expectations: Vec<Expectation>,
    /// The report of the current run, if one is written.
    pub report: Option<ReportObservation>,
    /// An agent of the current run created the topic.
    pub topic_created: bool,
    /// What the last DeleteTopic of this run did, if this controller ran one (lost on a
    /// restart: then the delete is made again, it is idempotent).
    pub topic_delete: Option<TopicDeleteResult>,
    /// Verdicts of soak windows the shell wrote that the status may not record yet (kept by
    /// the shell until `status.windows.latest` reaches them; lost on a restart, when those
    /// windows are written again).
    pub windows_written: Vec<WindowVerdict>,
    /// This controller holds the leader lease.
    pub lease_held: bool,
}

/// One agent launch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Slot (`BARRAGE_SLOT`).
    pub slot: u32,
    /// Incarnation (`BARRAGE_INCARNATION`).
    pub incarnation: u32,
    /// Launch attempt for this incarnation (1-based).
    pub attempt: u32,
    /// RunTask `clientToken`: `{runId}-{slot}-{incarnation}-{attempt}`.
    pub client_token: String,
}

/// A side effect for the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// One RunTask call (at most [`MAX_BATCH`] launches).
    RunAgents {
        /// The run (`startedBy`).
        run_id: String,
        /// The launches.
        launches: Vec<Launch>,
    },
    /// StopTask each of these with the reason.
    StopTasks {
        /// Task ids.
        task_ids: Vec<String>,
        /// Why (shown in ECS).
        reason: String,
    },
    /// Merge the run's histograms and write the report set (idempotent).
    WriteReport {
        /// The run.
        run_id: String,
        /// False for a partial report of a cancelled run (verdict Incomplete).
        final_: bool,
    },
    /// Write the report sets of these soak windows, in order, stopping at the first failure;
    /// each verdict goes back in [`Observed::windows_written`].
    WriteWindows {
        /// The run.
        run_id: String,
        /// Window indices, ascending.
        windows: Vec<u32>,
    },
    /// Delete the topic this run created (`cleanup: DeleteIfCreated`).
    DeleteTopic {
        /// Topic name.
        topic: String,
    },
    /// Remove the LoadTest record (the finalizer is done).
    RemoveRecord,
}

impl Command {
    /// How soon to reconcile again after the shell carried this command out; `done` tells
    /// whether it did all it was asked. `None`: the plan's own requeue stands.
    pub fn follow_up(&self, done: bool) -> Option<Duration> {
        match self {
            // The next batch waits for these to be confirmed.
            Command::RunAgents { .. } => Some(Duration::from_secs(1)),
            Command::StopTasks { .. } => (!done).then_some(Duration::from_secs(2)),
            // The status then records the report, or the write is tried again.
            Command::WriteReport { .. } | Command::WriteWindows { .. } if done => {
                Some(Duration::from_millis(100))
            }
            Command::WriteReport { .. } => Some(Duration::from_secs(5)),
            Command::WriteWindows { .. } => Some(Duration::from_millis(500)),
            Command::DeleteTopic { .. } => Some(Duration::from_secs(1)),
            Command::RemoveRecord => None,
        }
    }
}

/// What to do next.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The status to persist (before the commands run).
    pub status: LoadTestStatus,
    /// Side effects, in order.
    pub commands: Vec<Command>,
    /// Reconcile again after this long; None waits for the next change.
    pub requeue: Option<Duration>,
}

/// Plans one reconcile of `lt` given what the shell observed at `now`.
pub fn plan(lt: &LoadTest, observed: &Observed, now: DateTime<Utc>) -> Plan {
    let before = lt.status.clone().unwrap_or_default();
    if !observed.lease_held {
        return Plan {
            status: before,
            commands: Vec::new(),
            requeue: Some(LEASE_RETRY),
        };
    }
    let mut cx = Cx::new(lt, observed, now, before);
    cx.reconcile();
    cx.finish()
}

/// The plan for a record whose document could not even be read as a LoadTest: Failed with
/// `SpecInvalid`, no requeue.
pub fn plan_unreadable(
    status: Option<&LoadTestStatus>,
    generation: Option<i64>,
    error: &str,
    now: DateTime<Utc>,
) -> Plan {
    let mut st = status.cloned().unwrap_or_default();
    let generation = max_generation(st.observed_generation, generation);
    set_condition(
        &mut st,
        ConditionType::SpecInvalid,
        ConditionStatus::True,
        "Unreadable",
        error,
        now,
        generation,
    );
    if !st.phase.is_terminal() {
        let from = st.phase;
        st.phase = Phase::Failed;
        st.phase_since = Some(now);
        st.message = Some(format!("The record cannot be read: {error}"));
        st.push_transition(Transition {
            from,
            to: Phase::Failed,
            at: now,
            reason: TransitionReason::SpecInvalid,
        });
    }
    st.observed_generation = generation;
    Plan {
        status: st,
        commands: Vec::new(),
        requeue: None,
    }
}

/// Stops live tasks whose LoadTest record no longer exists (the shell lists every task the
/// controller owns and passes the names of the records it knows).
pub fn sweep_orphans(records: &[&str], tasks: &[ObservedTask]) -> Option<Command> {
    let task_ids: Vec<String> = tasks
        .iter()
        .filter(|t| t.state.is_live() && !records.contains(&t.load_test.as_str()))
        .map(|t| t.task_id.clone())
        .collect();
    (!task_ids.is_empty()).then(|| Command::StopTasks {
        task_ids,
        reason: "barrage: orphan task, its LoadTest no longer exists".into(),
    })
}

/// When the current phase must be left at the latest; None for terminal phases.
pub fn phase_deadline(lt: &LoadTest, st: &LoadTestStatus) -> Option<DateTime<Utc>> {
    let since = st.phase_since?;
    let t = &lt.spec.timeouts;
    match st.phase {
        Phase::Pending => Some(since),
        Phase::Provisioning => Some(add(
            since,
            t.provisioning.as_std().saturating_add(t.ready.as_std()),
        )),
        Phase::Running => Some(load_end(lt, st)),
        Phase::Draining => Some(add(since, t.draining.as_std()).min(hard_stop(lt, st))),
        Phase::Reporting => Some(add(since, t.reporting.as_std())),
        Phase::Cancelling => Some(add(since, t.cancelling.as_std())),
        Phase::Succeeded | Phase::Failed | Phase::Cancelled => None,
    }
}

/// `startAt + load duration`.
fn load_end(lt: &LoadTest, st: &LoadTestStatus) -> DateTime<Utc> {
    let start = st
        .start_at
        .or(st.phase_since)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    add(start, lt.spec.load.total_duration())
}

/// `startAt + maxDuration`: nothing of the load runs past this.
fn hard_stop(lt: &LoadTest, st: &LoadTestStatus) -> DateTime<Utc> {
    let start = st
        .start_at
        .or(st.phase_since)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    add(start, lt.spec.load.effective_max_duration())
}

/// `t + d`, saturating.
pub(crate) fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn max_generation(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Sets a condition; `lastTransitionTime` moves only when the status changes.
pub(crate) fn set_condition(
    st: &mut LoadTestStatus,
    type_: ConditionType,
    status: ConditionStatus,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
    generation: Option<i64>,
) {
    if let Some(c) = st.conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status {
            c.last_transition_time = now;
        }
        c.status = status;
        c.reason = reason.to_string();
        c.message = message.to_string();
        c.observed_generation = generation;
    } else {
        st.conditions.push(Condition {
            type_,
            status,
            reason: reason.to_string(),
            message: message.to_string(),
            last_transition_time: now,
            observed_generation: generation,
        });
    }
}

/// One reconcile in progress.
pub(crate) struct Cx<'a> {
    pub(crate) lt: &'a LoadTest,
    pub(crate) obs: &'a Observed,
    pub(crate) now: DateTime<Utc>,
    pub(crate) generation: Option<i64>,
    pub(crate) st: LoadTestStatus,
    /// This LoadTest's tasks only.
    pub(crate) tasks: Vec<&'a ObservedTask>,
    pub(crate) commands: Vec<Command>,
    /// Task id → reason, gathered into StopTasks at the end.
    pub(crate) stops: BTreeMap<String, String>,
    /// Times at which something is due.
    pub(crate) wakes: Vec<DateTime<Utc>>,
    /// Something can be done right away (next launch batch).
    pub(crate) hot: bool,
}

type Step = (Phase, TransitionReason, String);

impl<'a> Cx<'a> {
    fn new(lt: &'a LoadTest, obs: &'a Observed, now: DateTime<Utc>, st: LoadTestStatus) -> Cx<'a> {
        Cx {
            lt,
            obs,
            now,
            generation: max_generation(st.observed_generation, lt.metadata.generation),
            tasks: obs
                .tasks
                .iter()
                .filter(|t| t.load_test == lt.metadata.name)
                .collect(),
            st,
            commands: Vec::new(),
            stops: BTreeMap::new(),
            wakes: Vec::new(),
            hot: false,
        }
    }

    fn reconcile(&mut self) {
        self.rerun();
        if !self.st.phase.is_terminal() {
            match barrage_crds::validate::validate(self.lt) {
                Err(errs) => {
                    let msg = errs.to_string();
                    self.condition(
                        ConditionType::SpecInvalid,
                        ConditionStatus::True,
                        "ValidationFailed",
                        &msg,
                    );
                    self.transition(Phase::Failed, TransitionReason::SpecInvalid, msg);
                }
                Ok(()) => self.condition(
                    ConditionType::SpecInvalid,
                    ConditionStatus::False,
                    "Valid",
                    "The spec passed validation.",
                ),
            }
        }
        if !self.st.phase.is_terminal()
            && self.st.phase != Phase::Cancelling
            && self.lt.metadata.deletion_timestamp.is_some()
        {
            self.transition(
                Phase::Cancelling,
                TransitionReason::Deleted,
                "Deletion requested: stopping every agent.".into(),
            );
        }
        self.supersede();
        if self.st.run_id.is_some() {
            self.absorb();
        }
        // A chain of transitions can happen in one reconcile (e.g. after a clock jump).
        for _ in 0..12 {
            let Some((to, reason, message)) = self.step() else {
                break;
            };
            self.transition(to, reason, message);
        }
        self.act();
        self.windows();
    }

    /// The next transition out of the current phase, if one is due.
    fn step(&mut self) -> Option<Step> {
        match self.st.phase {
            Phase::Pending if self.lt.spec.stop => Some((
                Phase::Cancelling,
                TransitionReason::StopRequested,
                "Stopped before it started.".into(),
            )),
            Phase::Pending => Some((
                Phase::Provisioning,
                TransitionReason::Accepted,
                "Launching agents.".into(),
            )),
            Phase::Provisioning => self.step_provisioning(),
            Phase::Running => self.step_running(),
            Phase::Draining => self.step_draining(),
            Phase::Reporting => self.step_reporting(),
            Phase::Cancelling => self.step_cancelling(),
            Phase::Succeeded | Phase::Failed | Phase::Cancelled => None,
        }
    }

    /// Provisioning: Running once enough agents are Ready, Failed when the tasks or their readiness are late or every slot failed.
    fn step_provisioning(&mut self) -> Option<Step> {
        let spec = &self.lt.spec;
        let now = self.now;
        let since = self.st.phase_since.unwrap_or(now);
        if spec.stop {
            return Some((
                Phase::Cancelling,
                TransitionReason::StopRequested,
                "Stopped before the load started.".into(),
            ));
        }
        if self.all_slots_failed() {
            return Some((
                Phase::Failed,
                TransitionReason::AgentsFailed,
                "Every agent slot exhausted its restarts.".into(),
            ));
        }
        let desired = spec.agents.count;
        let ready = self.ready_count();
        // Failed slots are out of the fleet: the fraction is of the members.
        let members = count(self.members().iter());
        let needed = ready_needed(members, spec.agents.ready_fraction);
        if ready >= needed {
            return Some((
                Phase::Running,
                TransitionReason::AgentsReady,
                format!("{ready} of {desired} agents ready; the load starts at startAt."),
            ));
        }
        let provisioned_by = add(since, spec.timeouts.provisioning.as_std());
        let seen = self.slots_with_task(desired);
        if now >= provisioned_by && seen < desired {
            return Some((
                Phase::Failed,
                TransitionReason::ProvisioningTimedOut,
                format!(
                    "Only {seen} of {desired} agent tasks started within {}.",
                    spec.timeouts.provisioning
                ),
            ));
        }
        if seen < desired {
            self.wakes.push(provisioned_by);
        }
        let ready_by = add(provisioned_by, spec.timeouts.ready.as_std());
        if now >= ready_by {
            return Some((
                Phase::Failed,
                TransitionReason::ReadyTimedOut,
                format!("Only {ready} of {needed} needed agents became Ready in time."),
            ));
        }
        self.wakes.push(ready_by);
        None
    }

    /// Running: Draining when the load ends or is stopped, Failed when every slot failed.
    fn step_running(&mut self) -> Option<Step> {
        let spec = &self.lt.spec;
        let now = self.now;
        if spec.stop {
            return Some((
                Phase::Draining,
                TransitionReason::StopRequested,
                "Stopped early: agents drain and the report covers what was measured.".into(),
            ));
        }
        if self.all_slots_failed() {
            return Some((
                Phase::Failed,
                TransitionReason::AgentsFailed,
                "Every agent slot exhausted its restarts.".into(),
            ));
        }
        let end = load_end(self.lt, &self.st);
        if now >= end {
            return Some((
                Phase::Draining,
                TransitionReason::LoadComplete,
                "The load ended; agents flush their last intervals.".into(),
            ));
        }
        self.wakes.push(end);
        None
    }

    /// Draining: Reporting once every agent finished, or when draining times out.
    fn step_draining(&mut self) -> Option<Step> {
        let now = self.now;
        if self.drained() {
            return Some((
                Phase::Reporting,
                TransitionReason::Drained,
                "Every agent finished; writing the report.".into(),
            ));
        }
        let deadline = phase_deadline(self.lt, &self.st).unwrap_or(now);
        if now >= deadline {
            self.condition(
                ConditionType::TimedOut,
                ConditionStatus::True,
                "DrainTimedOut",
                "Agents did not finish draining in time; the report covers what was uploaded.",
            );
            return Some((
                Phase::Reporting,
                TransitionReason::DrainTimedOut,
                "Draining timed out; stopping the stragglers and writing the report.".into(),
            ));
        }
        self.wakes.push(deadline);
        None
    }

    /// Reporting: the verdict decides the terminal phase once the final report is written; Failed when it is late.
    fn step_reporting(&mut self) -> Option<Step> {
        let spec = &self.lt.spec;
        let now = self.now;
        let since = self.st.phase_since.unwrap_or(now);
        if let Some(report) = self.report(true) {
            let verdict = report.verdict.clone().unwrap_or(Verdict {
                result: VerdictResult::Incomplete,
                reasons: vec!["the report carries no verdict".into()],
            });
            self.st.summary = report.summary.clone().or(self.st.summary.take());
            self.st.reports = report.locations.clone().or(self.st.reports.take());
            let (to, reason, cond) = match verdict.result {
                VerdictResult::Passed => (
                    Phase::Succeeded,
                    TransitionReason::ThresholdsMet,
                    ConditionStatus::True,
                ),
                VerdictResult::Failed => (
                    Phase::Failed,
                    TransitionReason::ThresholdsFailed,
                    ConditionStatus::False,
                ),
                VerdictResult::Invalid => (
                    Phase::Failed,
                    TransitionReason::MeasurementInvalid,
                    ConditionStatus::False,
                ),
                VerdictResult::Incomplete => (
                    Phase::Failed,
                    TransitionReason::Incomplete,
                    ConditionStatus::False,
                ),
            };
            let message = verdict.reasons.join("; ");
            self.condition(
                ConditionType::ThresholdsMet,
                cond,
                reason.as_str(),
                &message,
            );
            self.st.verdict = Some(verdict);
            return Some((to, reason, format!("Report written. {message}")));
        }
        let deadline = add(since, spec.timeouts.reporting.as_std());
        if now >= deadline {
            self.condition(
                ConditionType::TimedOut,
                ConditionStatus::True,
                "ReportTimedOut",
                "The report was not written in time.",
            );
            self.incomplete("the report was not written in time");
            return Some((
                Phase::Failed,
                TransitionReason::ReportTimedOut,
                "The report was not written in time.".into(),
            ));
        }
        self.wakes.push(deadline);
        None
    }

    /// Cancelling: Cancelled (or the next run after a supersede) once every agent stopped and what was measured is reported, or at the timeout.
    fn step_cancelling(&mut self) -> Option<Step> {
        let spec = &self.lt.spec;
        let now = self.now;
        let since = self.st.phase_since.unwrap_or(now);
        let deadline = add(since, spec.timeouts.cancelling.as_std());
        if now >= deadline && self.st.superseded {
            return Some(self.next_run_after_supersede());
        }
        if now >= deadline {
            self.condition(
                ConditionType::TimedOut,
                ConditionStatus::True,
                "CancelTimedOut",
                "Not every agent stopped in time.",
            );
            self.incomplete("cancelled; not every agent stopped in time");
            return Some((
                Phase::Cancelled,
                TransitionReason::CancelTimedOut,
                "Cancelled; not every agent stopped in time.".into(),
            ));
        }
        self.wakes.push(deadline);
        let quiet = !self.tasks.iter().any(|t| t.state.is_live()) && !self.in_flight();
        let measured = self.st.start_at.is_some_and(|s| s <= now);
        if quiet && (!measured || self.report(false).is_some()) && self.st.superseded {
            return Some(self.next_run_after_supersede());
        }
        if quiet && (!measured || self.report(false).is_some()) {
            self.incomplete("the run was cancelled");
            return Some((
                Phase::Cancelled,
                TransitionReason::Cancelled,
                "Every agent stopped.".into(),
            ));
        }
        None
    }

    /// Side effects for the phase the run ends up in.
    fn act(&mut self) {
        match self.st.phase {
            Phase::Pending => {}
            Phase::Provisioning | Phase::Running => {
                self.scale();
                if self.st.phase == Phase::Running {
                    self.update_fleet();
                }
                self.reap(false);
                self.launch();
                self.degraded();
            }
            Phase::Draining => self.reap(false),
            Phase::Reporting => {
                self.reap(true);
                if let Some(run_id) = self.st.run_id.clone() {
                    self.commands.push(Command::WriteReport {
                        run_id,
                        final_: true,
                    });
                }
                self.wakes.push(add(self.now, Duration::from_secs(5)));
            }
            Phase::Cancelling => {
                self.reap(true);
                let quiet = !self.tasks.iter().any(|t| t.state.is_live()) && !self.in_flight();
                let measured = self.st.start_at.is_some_and(|s| s <= self.now);
                if quiet
                    && measured
                    && self.report(false).is_none()
                    && let Some(run_id) = self.st.run_id.clone()
                {
                    self.commands.push(Command::WriteReport {
                        run_id,
                        final_: false,
                    });
                }
                self.wakes.push(add(self.now, Duration::from_secs(5)));
            }
            Phase::Succeeded | Phase::Failed | Phase::Cancelled => self.finalize(),
        }
    }

    /// Terminal phases: stop what is left, clean the topic up, remove the record if asked.
    fn finalize(&mut self) {
        self.reap(true);
        // A launch still in flight may yet produce a task: wait for it to be seen and reaped.
        let live = self.tasks.iter().any(|t| t.state.is_live()) || self.in_flight();
        let since = self.st.phase_since.unwrap_or(self.now);
        let gave_up = self.now >= add(since, self.lt.spec.timeouts.cancelling.as_std());
        if self.obs.topic_created && self.st.run_id.is_some() {
            self.st.topic_created = true;
        }
        if !live
            && self.st.topic_created
            && !self.st.topic_gone
            && self.lt.spec.topic.cleanup == TopicCleanup::DeleteIfCreated
        {
            self.clean_topic_up();
        }
        if self.lt.metadata.deletion_timestamp.is_some() {
            if !live || gave_up {
                self.commands.push(Command::RemoveRecord);
            } else {
                self.wakes
                    .push(add(since, self.lt.spec.timeouts.cancelling.as_std()));
            }
        }
        if live {
            self.wakes.push(add(self.now, Duration::from_secs(10)));
        }
    }

    /// Deletes the topic this run created, at least once: the intent is recorded (status
    /// first), then DeleteTopic runs; its success is recorded when observed. A controller that
    /// crashed in between sees the intent and no outcome, and deletes again (idempotent).
    fn clean_topic_up(&mut self) {
        let st = &mut self.st;
        match &self.obs.topic_delete {
            Some(TopicDeleteResult::Deleted) if st.topic_deleted => {
                st.topic_gone = true;
                return;
            }
            Some(TopicDeleteResult::Failed(why))
                if st.topic_delete_attempts >= MAX_TOPIC_DELETE_ATTEMPTS =>
            {
                st.message = Some(format!(
                    "The topic this run created was left in place after {} attempts: {why}",
                    st.topic_delete_attempts
                ));
                return;
            }
            _ if st.topic_delete_attempts >= MAX_TOPIC_DELETE_ATTEMPTS => return,
            _ => {}
        }
        st.topic_deleted = true;
        st.topic_delete_attempts += 1;
        self.commands.push(Command::DeleteTopic {
            topic: self.lt.spec.topic.name.clone(),
        });
        self.wakes.push(add(self.now, Duration::from_secs(5)));
    }

    /// A live run whose spec changed beyond what re-targets it is cancelled, to be followed
    /// by the new generation's run. Runs of the earlier layout carry no digest: never.
    fn supersede(&mut self) {
        if !matches!(self.st.phase, Phase::Provisioning | Phase::Running)
            || self.lt.metadata.deletion_timestamp.is_some()
        {
            return;
        }
        let Some(digest) = self.st.run_digest.as_deref() else {
            return;
        };
        if digest == self.lt.spec.run_digest() {
            return;
        }
        let generation = self.generation.unwrap_or(0);
        self.st.superseded = true;
        self.condition(
            ConditionType::Superseded,
            ConditionStatus::True,
            "SpecChanged",
            &format!("Generation {generation} changed more than rate, count, pause or stop."),
        );
        self.transition(
            Phase::Cancelling,
            TransitionReason::Superseded,
            format!(
                "Generation {generation} supersedes this run: stopping its agents and writing its partial report."
            ),
        );
    }

    /// The superseded run is over (its partial report written): back to Pending, so the new
    /// generation's run starts in this same reconcile.
    fn next_run_after_supersede(&mut self) -> Step {
        if self.obs.topic_created {
            self.st.topic_created = true;
        }
        let old = self.st.run_id.clone().unwrap_or_default();
        (
            Phase::Pending,
            TransitionReason::Superseded,
            format!("Run {old} was superseded; starting the new generation's run."),
        )
    }

    /// A terminal run whose `spec.rerun` changed runs again: the only way a finished spec
    /// starts over.
    fn rerun(&mut self) {
        if !self.st.phase.is_terminal()
            || self.lt.spec.rerun == self.st.rerun
            || self.lt.metadata.deletion_timestamp.is_some()
        {
            return;
        }
        let rerun = self.lt.spec.rerun;
        if self.st.topic_gone {
            // The last run's topic is gone: this run may create it again, and clean it up.
            self.st.topic_created = false;
            self.st.topic_deleted = false;
            self.st.topic_gone = false;
            self.st.topic_delete_attempts = 0;
        }
        self.transition(
            Phase::Pending,
            TransitionReason::Rerun,
            format!("spec.rerun is now {rerun}: running the spec again."),
        );
    }

    fn transition(&mut self, to: Phase, reason: TransitionReason, message: String) {
        let from = self.st.phase;
        if from == to {
            return;
        }
        self.st.phase = to;
        self.st.phase_since = Some(self.now);
        self.st.message = Some(message);
        self.st.push_transition(Transition {
            from,
            to,
            at: self.now,
            reason: reason.clone(),
        });
        match to {
            Phase::Provisioning => {
                let generation = self.lt.metadata.generation.unwrap_or(0);
                self.st.run_id = Some(run_id(self.lt.name(), generation, self.now));
                self.st.run_digest = Some(self.lt.spec.run_digest());
                self.st.rerun = self.lt.spec.rerun;
                self.st.superseded = false;
                self.st.slots.clear();
                self.st.fleet = None;
                self.st.start_at = None;
                self.st.launch_window = 1;
                self.st.verdict = None;
                self.st.summary = None;
                self.st.reports = None;
            }
            Phase::Running => {
                let start_at = add(self.now, START_LEAD);
                self.st.start_at = Some(start_at);
                let members = self.members();
                self.st.fleet = Some(FleetAssignment {
                    epoch: 1,
                    members,
                    effective_at: Some(start_at),
                    spec_generation: self.lt.metadata.generation.unwrap_or(0),
                    paused: self.lt.spec.paused,
                    paused_spans: FleetAssignment::default()
                        .spans_after(self.lt.spec.paused, start_at),
                });
                self.condition(
                    ConditionType::AgentsReady,
                    ConditionStatus::True,
                    "AgentsReady",
                    "Enough agents reported Ready; startAt is set.",
                );
            }
            Phase::Failed if reason != TransitionReason::SpecInvalid => {
                self.incomplete(&format!("the run failed: {reason}"));
            }
            _ => {}
        }
    }

    fn incomplete(&mut self, why: &str) {
        if self.st.verdict.is_none() {
            self.st.verdict = Some(Verdict {
                result: VerdictResult::Incomplete,
                reasons: vec![why.to_string()],
            });
        }
    }

    fn condition(
        &mut self,
        type_: ConditionType,
        status: ConditionStatus,
        reason: &str,
        message: &str,
    ) {
        set_condition(
            &mut self.st,
            type_,
            status,
            reason,
            message,
            self.now,
            self.generation,
        );
    }

    /// The report of the current run; `final_only` ignores partial reports.
    fn report(&self, final_only: bool) -> Option<&'a ReportObservation> {
        let run = self.st.run_id.as_deref()?;
        self.obs
            .report
            .as_ref()
            .filter(|r| r.run_id == run && (r.final_ || !final_only))
    }

    /// Agents of the current run for live slots whose current incarnation reported Ready (or later).
    fn ready_count(&self) -> u32 {
        let Some(run) = self.st.run_id.as_deref() else {
            return 0;
        };
        let desired = self.lt.spec.agents.count;
        let n = self
            .st
            .slots
            .iter()
            .filter(|r| {
                r.slot < desired && matches!(r.state, SlotState::Launching | SlotState::Running)
            })
            .filter(|r| {
                self.obs.agents.iter().any(|a| {
                    a.run_id == run
                        && a.load_test == self.lt.metadata.name
                        && a.slot == r.slot
                        && a.incarnation == r.incarnation
                        && matches!(
                            a.phase,
                            AgentPhase::Ready | AgentPhase::Running | AgentPhase::Draining
                        )
                })
            })
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// True when no live task of the run is still working: each has exited, or its agent
    /// reported Completed or Failed.
    fn drained(&self) -> bool {
        let Some(run) = self.st.run_id.as_deref() else {
            return true;
        };
        let working = self.tasks.iter().any(|t| {
            t.state.is_live()
                && t.started_by == run
                && self.is_owned(t)
                && !self.obs.agents.iter().any(|a| {
                    a.run_id == run
                        && Some(a.slot) == t.slot
                        && Some(a.incarnation) == t.incarnation
                        && a.phase.is_terminal()
                })
        });
        !working && !self.in_flight()
    }

    fn finish(mut self) -> Plan {
        self.counts();
        if self.generation >= self.st.observed_generation {
            self.st.observed_generation = self.generation;
            self.st.observed_spec_digest = Some(self.lt.spec.digest());
        }
        let mut by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (task, reason) in std::mem::take(&mut self.stops) {
            by_reason.entry(reason).or_default().push(task);
        }
        let mut commands: Vec<Command> = by_reason
            .into_iter()
            .map(|(reason, task_ids)| Command::StopTasks { task_ids, reason })
            .collect();
        commands.append(&mut self.commands);
        let requeue = if self.st.phase.is_terminal() && self.wakes.is_empty() {
            None
        } else if self.hot {
            Some(MIN_REQUEUE)
        } else {
            let next = self.wakes.iter().min().copied();
            let wait = next
                .and_then(|t| (t - self.now).to_std().ok())
                .unwrap_or(Duration::ZERO);
            let cap = if self.st.phase.is_terminal() {
                Duration::from_secs(10)
            } else {
                RESYNC
            };
            Some(wait.clamp(MIN_REQUEUE, cap))
        };
        Plan {
            status: self.st,
            commands,
            requeue,
        }
    }

    /// Agent counts and live progress.
    fn counts(&mut self) {
        if matches!(self.st.phase, Phase::Provisioning | Phase::Running) {
            self.st.agents.desired = self.lt.spec.agents.count;
        }
        let desired = self.st.agents.desired;
        let current = |s: SlotState| matches!(s, SlotState::Launching | SlotState::Running);
        self.st.agents.launched = count(
            self.st
                .slots
                .iter()
                .filter(|r| r.slot < desired && (r.seen || r.task_id.is_some())),
        );
        self.st.agents.failed = count(
            self.st
                .slots
                .iter()
                .filter(|r| r.state == SlotState::Failed),
        );
        self.st.agents.running = count(self.tasks.iter().filter(|t| {
            t.state == TaskState::Running
                && self.is_owned(t)
                && self
                    .slot(t.slot.unwrap_or(u32::MAX))
                    .is_some_and(|r| current(r.state))
        }));
        self.st.agents.ready = if matches!(self.st.phase, Phase::Provisioning | Phase::Running) {
            self.ready_count()
        } else {
            0
        };
        let Some(run) = self.st.run_id.clone() else {
            return;
        };
        let mut p = barrage_crds::status::Progress::default();
        let mut interval_records = 0u64;
        for a in self
            .obs
            .agents
            .iter()
            .filter(|a| a.run_id == run && a.load_test == self.lt.metadata.name)
        {
            p.sent = p.sent.saturating_add(a.counters.sent);
            p.acked = p.acked.saturating_add(a.counters.acked);
            p.errors = p.errors.saturating_add(a.counters.errors);
            p.dropped = p.dropped.saturating_add(a.counters.dropped);
            p.bytes = p.bytes.saturating_add(a.counters.bytes);
            p.consumed = p.consumed.saturating_add(a.counters.consumed);
            if !a.phase.is_terminal() {
                p.window_p99_us = p.window_p99_us.max(a.last_interval_p99_us);
                interval_records =
                    interval_records.saturating_add(a.last_interval_records.unwrap_or(0));
            }
        }
        // Agents' intervals share the run's start, so their last intervals line up.
        let interval = self.lt.spec.report.interval.as_std().as_secs_f64();
        p.current_rate = if interval > 0.0 {
            interval_records as f64 / interval
        } else {
            0.0
        };
        self.st.progress = p;
    }
}

/// Agents that must be Ready before `startAt` is set: ⌈fraction × count⌉, at least 1 (when
/// there are agents), at most count.
pub fn ready_needed(count: u32, fraction: f64) -> u32 {
    if count == 0 {
        return 0;
    }
    let f = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let needed = (f64::from(count) * f - 1e-9).ceil();
    // `needed` is within 0..=count here.
    (needed as u32).clamp(1, count)
}

fn count<T>(it: impl Iterator<Item = T>) -> u32 {
    u32::try_from(it.count()).unwrap_or(u32::MAX)
}
