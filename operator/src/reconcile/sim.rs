//! Property test: the pure core against a simulated world.
//!
//! The world is a small model of the store, ECS and the agents: tasks appear in the task list
//! only after a lag, RunTask can fail for some slots, time out (the task exists, the answer is
//! lost) or be throttled, the client token makes a repeated RunTask idempotent, agents report
//! Ready after a delay and Completed at the end of the load, tasks die with exit codes, the
//! controller crashes (its in-memory expectations are lost; or it crashes between persisting the
//! status and executing the commands), loses its lease, loses a conditional write, and the
//! clock jumps. After every step the invariants of the issue are checked:
//! - never two live tasks for one slot of the run;
//! - live tasks (not being reaped) ≤ desired + launches in flight;
//! - observedGeneration monotone;
//! - every live task of the LoadTest attributable to one of its slots, or being reaped;
//! - no run in a non-terminal phase past its timeout, and a requeue before the deadline;
//! - a slot's incarnation never goes back and no slot record is dropped during a run (so an
//!   incarnation number, part of the client token and the agent's keys, is never reused);
//! - RunTask only while Provisioning or Running, at most 10 launches per call;
//!
//! and at the end, with faults off, that every run reaches a terminal phase with no task left.
//!
//! `BARRAGE_PROP_CASES` scales the number of sequences (default 5 000).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use barrage_crds::agent_status::{AgentPhase, AgentStatus};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::spec::LoadStep;
use barrage_crds::status::{Phase, SlotState, Verdict, VerdictResult};
use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use super::testing::{LoadTestFixture, t0};
use super::*;

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Every other launch of the next RunTask fails (`failures[]`).
    Partial,
    /// The next RunTask creates its tasks but the answer is lost.
    Timeout,
    /// The next RunTask is throttled: nothing created.
    Throttle,
}

#[derive(Clone, Debug)]
enum Event {
    Tick(i64),
    ClockJump(i64),
    SetCount(u32),
    ChangeRate,
    TogglePause,
    Stop,
    Delete,
    InvalidEdit,
    Crash,
    CrashBeforeCommands,
    WriteConflict,
    Fault(Fault),
    Lag(i64),
    TaskDies { pick: usize, code: i32 },
    LeaseLoss(u8),
    OrphanAppears { slot: u32, same_run: bool },
    ReportFails,
}

fn event() -> impl Strategy<Value = Event> {
    // Weights: the run-ending edits (stop, delete, invalid spec) are rare enough that most
    // sequences live long enough to meet the other faults.
    prop_oneof![
        36 => (1i64..20).prop_map(Event::Tick),
        6 => (-30i64..2400).prop_map(Event::ClockJump),
        9 => (1u32..6).prop_map(Event::SetCount),
        3 => Just(Event::ChangeRate),
        3 => Just(Event::TogglePause),
        1 => Just(Event::Stop),
        1 => Just(Event::Delete),
        1 => Just(Event::InvalidEdit),
        6 => Just(Event::Crash),
        6 => Just(Event::CrashBeforeCommands),
        3 => Just(Event::WriteConflict),
        9 => prop_oneof![Just(Fault::Partial), Just(Fault::Timeout), Just(Fault::Throttle)]
            .prop_map(Event::Fault),
        6 => (0i64..50).prop_map(Event::Lag),
        12 => (any::<usize>(), prop_oneof![Just(0), Just(1), Just(137), Just(143)])
            .prop_map(|(pick, code)| Event::TaskDies { pick, code }),
        3 => (1u8..5).prop_map(Event::LeaseLoss),
        3 => (0u32..8, any::<bool>()).prop_map(|(slot, same_run)| Event::OrphanAppears { slot, same_run }),
        3 => Just(Event::ReportFails),
    ]
}

#[derive(Clone, Debug)]
struct WTask {
    id: String,
    run: String,
    slot: u32,
    inc: u32,
    live: bool,
    exit_code: i32,
    started_at: DateTime<Utc>,
    visible_at: DateTime<Utc>,
    ready_delay: i64,
}

struct World {
    lt: LoadTest,
    /// The world's time (`now`) moves forward only.
    removed: bool,
    tasks: Vec<WTask>,
    /// The controller's clock minus the world's, in seconds (≤ 0).
    skew: i64,
    tokens: HashMap<String, String>,
    expectations: Vec<Expectation>,
    now: DateTime<Utc>,
    lag: i64,
    fault: Option<Fault>,
    lease_lost: u8,
    crash_before_commands: bool,
    write_conflict: bool,
    report_fails: bool,
    report: Option<ReportObservation>,
    topic_deletes: u32,
    /// The shell's memory of the last DeleteTopic (lost on a crash).
    topic_delete: Option<TopicDeleteResult>,
    /// Times the controller lost its memory.
    crashes: u32,
    next_id: u64,
    stored_generation: Option<i64>,
    reconciles: u64,
    last_requeue: Option<std::time::Duration>,
    /// Side effects carried out so far (one per launch, stop, report, removal).
    effects: u64,
    /// Crash the controller just before side effect number `n` (counted from 0).
    crash_at_effect: Option<u64>,
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

impl World {
    fn new(count: u32) -> World {
        World {
            lt: LoadTest::test()
                .agents(count)
                .load_secs(120)
                .max_restarts(2),
            removed: false,
            tasks: Vec::new(),
            skew: 0,
            tokens: HashMap::new(),
            expectations: Vec::new(),
            now: t0(),
            lag: 3,
            fault: None,
            lease_lost: 0,
            crash_before_commands: false,
            write_conflict: false,
            report_fails: false,
            report: None,
            topic_deletes: 0,
            topic_delete: None,
            crashes: 0,
            next_id: 0,
            stored_generation: None,
            reconciles: 0,
            last_requeue: None,
            effects: 0,
            crash_at_effect: None,
        }
    }

    /// The controller's clock.
    fn clock(&self) -> DateTime<Utc> {
        self.now + secs(self.skew)
    }

    fn edit(&mut self, f: impl FnOnce(&mut LoadTest)) {
        f(&mut self.lt);
        self.lt.metadata.generation = Some(self.lt.metadata.generation.unwrap_or(0) + 1);
    }

    fn apply(&mut self, ev: &Event) {
        match *ev {
            Event::Tick(s) => self.now += secs(s),
            // Forward: the controller was suspended (time passes for everyone). Backward: the
            // controller's clock steps back (the world's time does not).
            Event::ClockJump(s) if s >= 0 => self.now += secs(s),
            Event::ClockJump(s) => self.skew += s,
            Event::SetCount(n) => self.edit(|lt| lt.spec.agents.count = n),
            Event::ChangeRate => self.edit(|lt| {
                if let Some(LoadStep::Constant(c)) = lt.spec.load.steps.first_mut() {
                    c.rate *= 2.0;
                }
            }),
            Event::TogglePause => self.edit(|lt| lt.spec.paused = !lt.spec.paused),
            Event::Stop => self.edit(|lt| lt.spec.stop = true),
            Event::Delete => {
                self.lt
                    .metadata
                    .deletion_timestamp
                    .get_or_insert(self.clock());
            }
            Event::InvalidEdit => self.edit(|lt| lt.api_version = "bogus/v0".into()),
            Event::Crash => self.forget(),
            Event::CrashBeforeCommands => self.crash_before_commands = true,
            Event::WriteConflict => self.write_conflict = true,
            Event::Fault(f) => self.fault = Some(f),
            Event::Lag(l) => self.lag = l,
            Event::TaskDies { pick, code } => {
                let live: Vec<usize> = (0..self.tasks.len())
                    .filter(|&i| self.tasks[i].live)
                    .collect();
                if !live.is_empty() {
                    let t = &mut self.tasks[live[pick % live.len()]];
                    t.live = false;
                    t.exit_code = code;
                }
            }
            Event::LeaseLoss(n) => self.lease_lost = n,
            Event::OrphanAppears { slot, same_run } => {
                let run = match (&self.lt.status, same_run) {
                    (Some(st), true) if st.run_id.is_some() => st.run_id.clone().unwrap(),
                    _ => "demo-0-old".to_string(),
                };
                // Same run: a slot far past any count (a task of an unknown slot).
                let slot = if same_run { slot + 50 } else { slot };
                self.spawn(run, slot, 0, self.now);
            }
            Event::ReportFails => self.report_fails = true,
        }
    }

    fn spawn(&mut self, run: String, slot: u32, inc: u32, visible_at: DateTime<Utc>) -> String {
        self.next_id += 1;
        let id = format!("arn:task/{:05}", self.next_id);
        self.tasks.push(WTask {
            id: id.clone(),
            run,
            slot,
            inc,
            live: true,
            exit_code: 0,
            started_at: self.now,
            visible_at,
            ready_delay: 2 + (self.next_id % 9) as i64,
        });
        id
    }

    fn start_at(&self) -> Option<DateTime<Utc>> {
        self.lt.status.as_ref().and_then(|s| s.start_at)
    }

    /// Agents finish on their own: at the end of the load, or when asked to stop while draining.
    fn advance(&mut self) {
        let Some(start) = self.start_at() else {
            return;
        };
        let end = add(start, self.lt.spec.load.total_duration());
        let run = self
            .lt
            .status
            .as_ref()
            .and_then(|s| s.run_id.clone())
            .unwrap_or_default();
        let phase = self.lt.phase();
        let now = self.now;
        for t in self.tasks.iter_mut().filter(|t| t.live && t.run == run) {
            let ready = now >= t.started_at + secs(t.ready_delay);
            if ready && (now >= end || (phase == Phase::Draining && self.lt.spec.stop)) {
                t.live = false;
                t.exit_code = 0;
            }
        }
    }

    fn agent_statuses(&self) -> Vec<AgentStatus> {
        let start_at = self.start_at();
        self.tasks
            .iter()
            .map(|t| {
                let mut a = AgentStatus::new("demo", t.run.clone(), t.slot, t.inc, self.now);
                a.task_id = Some(t.id.clone());
                a.phase = if !t.live {
                    if t.exit_code == 0 {
                        AgentPhase::Completed
                    } else {
                        AgentPhase::Failed
                    }
                } else if self.now < t.started_at + secs(t.ready_delay) {
                    AgentPhase::Starting
                } else if start_at.is_some_and(|s| self.now >= s) {
                    AgentPhase::Running
                } else {
                    AgentPhase::Ready
                };
                a.counters.sent = 1;
                a
            })
            .collect()
    }

    fn observe(&self) -> Observed {
        let run = self.lt.status.as_ref().and_then(|s| s.run_id.clone());
        Observed {
            tasks: self
                .tasks
                .iter()
                .filter(|t| t.visible_at <= self.now)
                .map(|t| ObservedTask {
                    task_id: t.id.clone(),
                    load_test: "demo".into(),
                    started_by: t.run.clone(),
                    slot: Some(t.slot),
                    incarnation: Some(t.inc),
                    state: if t.live {
                        TaskState::Running
                    } else {
                        TaskState::Exited {
                            ok: t.exit_code == 0,
                            code: Some(t.exit_code),
                            reason: None,
                        }
                    },
                })
                .collect(),
            agents: self.agent_statuses(),
            expectations: self.expectations.clone(),
            report: self.report.clone(),
            topic_created: run.is_some_and(|r| self.tasks.iter().any(|t| t.run == r)),
            topic_delete: self.topic_delete.clone(),
            windows_written: Vec::new(),
            lease_held: self.lease_lost == 0,
        }
    }

    /// The controller restarts: what it held in memory is gone.
    fn forget(&mut self) {
        self.expectations.clear();
        self.topic_delete = None;
        self.crashes += 1;
    }

    /// Counts a side effect; true when the controller crashes right before it: what it had in
    /// memory (launch expectations) is lost and the rest of the plan is never carried out.
    fn crash_before_effect(&mut self) -> bool {
        let n = self.effects;
        self.effects += 1;
        if self.crash_at_effect == Some(n) {
            self.crash_at_effect = None;
            self.forget();
            return true;
        }
        false
    }

    fn execute(&mut self, cmds: &[Command]) -> Result<(), String> {
        for c in cmds {
            if !matches!(c, Command::RunAgents { .. }) && self.crash_before_effect() {
                return Ok(());
            }
            match c {
                Command::RunAgents { run_id, launches } => {
                    if launches.len() > MAX_BATCH as usize {
                        return Err(format!("a RunTask of {} launches", launches.len()));
                    }
                    let fault = self.fault.take();
                    for (i, l) in launches.iter().enumerate() {
                        if self.crash_before_effect() {
                            return Ok(());
                        }
                        let outcome = match (fault, self.tokens.get(&l.client_token)) {
                            (Some(Fault::Throttle), _) => LaunchOutcome::Failed {
                                reason: "ThrottlingException".into(),
                                throttled: true,
                            },
                            (Some(Fault::Partial), None) if i % 2 == 0 => LaunchOutcome::Failed {
                                reason: "RESOURCE:MEMORY".into(),
                                throttled: false,
                            },
                            (_, Some(id)) => LaunchOutcome::Started {
                                task_id: id.clone(),
                            },
                            (f, None) => {
                                let visible = self.now + secs(self.lag);
                                let id = self.spawn(run_id.clone(), l.slot, l.incarnation, visible);
                                self.tokens.insert(l.client_token.clone(), id.clone());
                                if matches!(f, Some(Fault::Timeout)) {
                                    LaunchOutcome::InFlight
                                } else {
                                    LaunchOutcome::Started { task_id: id }
                                }
                            }
                        };
                        self.expectations.retain(|e| {
                            (e.slot, e.incarnation, e.attempt) != (l.slot, l.incarnation, l.attempt)
                        });
                        self.expectations.push(Expectation {
                            slot: l.slot,
                            incarnation: l.incarnation,
                            attempt: l.attempt,
                            at: self.clock(),
                            outcome,
                        });
                    }
                }
                Command::StopTasks { task_ids, .. } => {
                    for t in self.tasks.iter_mut().filter(|t| task_ids.contains(&t.id)) {
                        if t.live {
                            t.live = false;
                            t.exit_code = 143;
                        }
                    }
                }
                Command::WriteReport { run_id, final_ } => {
                    if self.report_fails {
                        self.report_fails = false;
                    } else {
                        self.report = Some(ReportObservation {
                            run_id: run_id.clone(),
                            final_: *final_,
                            verdict: Some(Verdict {
                                result: if *final_ {
                                    VerdictResult::Passed
                                } else {
                                    VerdictResult::Incomplete
                                },
                                reasons: Vec::new(),
                            }),
                            summary: None,
                            locations: None,
                        });
                    }
                }
                // The simulated specs have no report window.
                Command::WriteWindows { .. } => return Err("a window asked for without one".into()),
                Command::DeleteTopic { .. } => {
                    self.topic_deletes += 1;
                    self.topic_delete = Some(TopicDeleteResult::Deleted);
                }
                Command::RemoveRecord => {
                    if !self.lt.phase().is_terminal() {
                        return Err(format!("record removed in {}", self.lt.phase()));
                    }
                    self.removed = true;
                    // The shell's sweep stops whatever the record leaves behind.
                    let listed = self.observe().tasks;
                    if let Some(sweep) = sweep_orphans(&[], &listed) {
                        self.execute(&[sweep])?;
                    }
                }
            }
        }
        Ok(())
    }

    /// One event, then one reconcile; the invariants after it.
    fn step(&mut self, ev: &Event) -> Result<(), String> {
        self.apply(ev);
        self.reconcile()
    }

    fn reconcile(&mut self) -> Result<(), String> {
        self.advance();
        if self.removed {
            // The record is gone: the shell's periodic sweep stops what is left.
            let listed = self.observe().tasks;
            if let Some(sweep) = sweep_orphans(&[], &listed) {
                self.execute(&[sweep])?;
            }
            return Ok(());
        }
        let obs = self.observe();
        let plan = plan(&self.lt, &obs, self.clock());
        self.reconciles += 1;
        if self.lease_lost > 0 {
            self.lease_lost -= 1;
            if !plan.commands.is_empty()
                || plan.status != self.lt.status.clone().unwrap_or_default()
            {
                return Err("acted without the lease".into());
            }
            return Ok(());
        }
        if self.write_conflict {
            // The conditional status write lost: the plan is dropped.
            self.write_conflict = false;
            return Ok(());
        }
        let before = self.stored_generation;
        if plan.status.observed_generation < before {
            return Err(format!(
                "observedGeneration went back from {before:?} to {:?}",
                plan.status.observed_generation
            ));
        }
        if plan.status.observed_generation != self.lt.metadata.generation {
            return Err("observedGeneration is not the generation planned from".into());
        }
        // A slot's incarnation never goes back within a run (a number is never reused).
        if let (Some(old), true) = (
            self.lt.status.as_ref(),
            self.lt.status.as_ref().map(|s| &s.run_id) == Some(&plan.status.run_id),
        ) {
            for r in &plan.status.slots {
                if let Some(o) = old.slots.iter().find(|o| o.slot == r.slot)
                    && r.incarnation < o.incarnation
                {
                    return Err(format!(
                        "slot {} went back to incarnation {}",
                        r.slot, r.incarnation
                    ));
                }
                if old.slots.iter().all(|o| o.slot != r.slot)
                    && !old.slots.is_empty()
                    && r.incarnation > 0
                {
                    return Err(format!(
                        "slot {} appeared at incarnation {}",
                        r.slot, r.incarnation
                    ));
                }
            }
            if old
                .slots
                .iter()
                .any(|o| plan.status.slots.iter().all(|r| r.slot != o.slot))
            {
                return Err("a slot record was dropped during the run".into());
            }
        }
        self.stored_generation = plan.status.observed_generation;
        self.last_requeue = plan.requeue;
        self.lt.status = Some(plan.status.clone());
        if self.crash_before_commands {
            self.crash_before_commands = false;
            self.forget();
        } else {
            self.execute(&plan.commands)?;
        }
        self.check(&plan)
    }

    fn check(&self, plan: &Plan) -> Result<(), String> {
        let st = &plan.status;
        let run = st.run_id.clone().unwrap_or_default();
        let reaped: Vec<&String> = plan
            .commands
            .iter()
            .filter_map(|c| match c {
                Command::StopTasks { task_ids, .. } => Some(task_ids),
                _ => None,
            })
            .flatten()
            .collect();
        // Never two live tasks for one slot of the run (visible or not).
        let mut per_slot: HashMap<u32, u32> = HashMap::new();
        for t in self
            .tasks
            .iter()
            .filter(|t| t.live && t.run == run && t.slot < 50)
        {
            let n = per_slot.entry(t.slot).or_default();
            *n += 1;
            if *n > 1 {
                return Err(format!(
                    "two live tasks for slot {}: {:?}",
                    t.slot, self.tasks
                ));
            }
        }
        // Live (not being reaped) ≤ desired + in flight (launched, not yet listed).
        let active = matches!(
            st.phase,
            Phase::Provisioning | Phase::Running | Phase::Draining
        );
        let desired = if active { st.agents.desired } else { 0 };
        let live = self
            .tasks
            .iter()
            .filter(|t| t.live && !reaped.contains(&&t.id))
            .count();
        let in_flight = self
            .tasks
            .iter()
            .filter(|t| t.live && t.visible_at > self.now)
            .count();
        if live > desired as usize + in_flight {
            return Err(format!(
                "{live} live tasks > {desired} desired + {in_flight} in flight in {}",
                st.phase
            ));
        }
        // Every listed live task is attributable to a slot of the run, or being reaped.
        for t in self
            .tasks
            .iter()
            .filter(|t| t.live && t.visible_at <= self.now && !reaped.contains(&&t.id))
        {
            let attributable = active
                && t.run == run
                && st.slots.iter().any(|r| {
                    r.slot == t.slot
                        && r.incarnation == t.inc
                        && matches!(r.state, SlotState::Launching | SlotState::Running)
                });
            if !attributable {
                return Err(format!("task {t:?} is neither attributable nor reaped"));
            }
        }
        // No run sits in a non-terminal phase past its timeout.
        if !st.phase.is_terminal() {
            let deadline = phase_deadline(&self.lt, st).ok_or("no deadline")?;
            if self.clock() >= deadline {
                return Err(format!("{} past its deadline {deadline}", st.phase));
            }
            // ... and the shell is asked to come back before the deadline passes.
            let until = (deadline - self.clock()).to_std().unwrap_or_default();
            match plan.requeue {
                None => return Err(format!("{} without a requeue", st.phase)),
                Some(r) if r > until.max(MIN_REQUEUE) => {
                    return Err(format!(
                        "{} requeued after {r:?}, past its deadline in {until:?}",
                        st.phase
                    ));
                }
                Some(_) => {}
            }
        }
        // Launches only while the run needs agents.
        let launching = plan
            .commands
            .iter()
            .any(|c| matches!(c, Command::RunAgents { .. }));
        if launching && !matches!(st.phase, Phase::Provisioning | Phase::Running) {
            return Err(format!("RunTask in {}", st.phase));
        }
        // At least once; a second call only when a crash lost the first one's outcome.
        if self.topic_deletes > 1 + self.crashes {
            return Err("the topic was deleted again without a crash".into());
        }
        Ok(())
    }

    /// Removed, or terminal with nothing left to do.
    fn settled(&self) -> bool {
        self.removed || (self.lt.phase().is_terminal() && self.last_requeue.is_none())
    }

    /// Faults off, the lease back, time goes on: the run must end, with no task left.
    fn converge(&mut self) -> Result<(), String> {
        self.fault = None;
        self.lease_lost = 0;
        self.crash_before_commands = false;
        self.write_conflict = false;
        self.report_fails = false;
        for _ in 0..80 {
            if self.settled() {
                break;
            }
            self.now += secs(30);
            self.reconcile()?;
        }
        if !self.settled() {
            return Err(format!(
                "stuck in {} (requeue {:?})",
                self.lt.phase(),
                self.last_requeue
            ));
        }
        self.now += secs(1);
        self.reconcile()?;
        if let Some(t) = self.tasks.iter().find(|t| t.live) {
            return Err(format!("{t:?} outlived the run"));
        }
        Ok(())
    }
}

static SEQUENCES: AtomicU64 = AtomicU64::new(0);
static STEPS: AtomicU64 = AtomicU64::new(0);
static PLANS: AtomicU64 = AtomicU64::new(0);
/// Sequences that reached Running, that replaced an agent, that ended Succeeded / Failed /
/// Cancelled, and that removed the record: the test says how much it explored.
static COVERAGE: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];

fn run_sequence(count: u32, events: &[Event]) -> Result<(), String> {
    let mut w = World::new(count);
    for (i, ev) in events.iter().enumerate() {
        w.step(ev).map_err(|e| format!("step {i} ({ev:?}): {e}"))?;
    }
    w.converge().map_err(|e| format!("converging: {e}"))?;
    let st = w.lt.status.clone().unwrap_or_default();
    let hits = [
        st.start_at.is_some(),
        st.agents.replaced > 0,
        st.phase == Phase::Succeeded,
        st.phase == Phase::Failed,
        st.phase == Phase::Cancelled,
        w.removed,
    ];
    for (c, hit) in COVERAGE.iter().zip(hits) {
        c.fetch_add(u64::from(hit), Ordering::Relaxed);
    }
    SEQUENCES.fetch_add(1, Ordering::Relaxed);
    STEPS.fetch_add(events.len() as u64, Ordering::Relaxed);
    PLANS.fetch_add(w.reconciles, Ordering::Relaxed);
    Ok(())
}

#[test]
fn random_sequences_of_crashes_faults_edits_and_clock_jumps_keep_every_invariant() {
    let cases = std::env::var("BARRAGE_PROP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    // A fixed seed by default, so CI runs are reproducible; BARRAGE_PROP_SEED explores others.
    let seed: u64 = std::env::var("BARRAGE_PROP_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = (1u32..5, proptest::collection::vec(event(), 0..=50));
    let result = runner.run(&strategy, |(count, events)| {
        run_sequence(count, &events).map_err(TestCaseError::fail)
    });
    eprintln!(
        "reconcile property test: {} sequences, {} random steps, {} plans checked (target {cases} sequences of <= 50 steps)",
        SEQUENCES.load(Ordering::Relaxed),
        STEPS.load(Ordering::Relaxed),
        PLANS.load(Ordering::Relaxed),
    );
    let c: Vec<u64> = COVERAGE.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    eprintln!(
        "  reached Running {}, replaced an agent {}, Succeeded {}, Failed {}, Cancelled {}, record removed {}",
        c[0], c[1], c[2], c[3], c[4], c[5]
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(SEQUENCES.load(Ordering::Relaxed) >= u64::from(cases));
}

#[test]
fn the_simulated_world_takes_a_quiet_run_from_pending_to_succeeded() {
    let mut w = World::new(3);
    for _ in 0..40 {
        w.step(&Event::Tick(5)).unwrap();
    }
    assert_eq!(w.lt.phase(), Phase::Succeeded, "{:#?}", w.lt.status);
    assert_eq!(w.tasks.len(), 3, "exactly one task per slot");
    assert!(w.tasks.iter().all(|t| !t.live && t.exit_code == 0));
}

#[test]
fn a_controller_crash_at_every_side_effect_boundary_converges_with_no_duplicate_task() {
    // Two scenarios — a run of 4 agents with one agent death, and a run of 3 deleted midway —
    // each counted for its side effects, then replayed once per boundary with the controller
    // crashing right before that effect (after the status write that planned it).
    type Scenario = fn(&mut World) -> Result<(), String>;
    let death: Scenario = |w| {
        for i in 0..60 {
            let ev = if i == 12 {
                Event::TaskDies { pick: 1, code: 137 }
            } else {
                Event::Tick(5)
            };
            w.step(&ev)?;
        }
        w.converge()
    };
    let delete: Scenario = |w| {
        for i in 0..60 {
            let ev = if i == 15 {
                Event::Delete
            } else {
                Event::Tick(5)
            };
            w.step(&ev)?;
        }
        w.converge()
    };
    let mut total = 0;
    let mut phases = BTreeMap::new();
    for (name, agents, scenario) in [("agent death", 4, death), ("delete mid-run", 3, delete)] {
        let mut reference = World::new(agents);
        scenario(&mut reference).unwrap_or_else(|e| panic!("{name} without crashes: {e}"));
        let boundaries = reference.effects;
        assert!(
            boundaries >= 5,
            "{name}: side effects to crash at ({boundaries})"
        );
        for k in 0..boundaries {
            let mut w = World::new(agents);
            w.crash_at_effect = Some(k);
            scenario(&mut w).unwrap_or_else(|e| panic!("{name}, crash before effect {k}: {e}"));
            assert!(
                w.crash_at_effect.is_none(),
                "{name}: the crash before effect {k} happened"
            );
            // One task per (run, slot, incarnation): a crash never makes the controller launch twice.
            let mut seen = std::collections::BTreeSet::new();
            for t in &w.tasks {
                assert!(
                    seen.insert((t.run.clone(), t.slot, t.inc)),
                    "{name}, crash before effect {k}: a second task for slot {} incarnation {}",
                    t.slot,
                    t.inc
                );
            }
            let end = if w.removed {
                "removed".to_string()
            } else {
                w.lt.phase().to_string()
            };
            *phases.entry(format!("{name}: {end}")).or_insert(0u32) += 1;
        }
        total += boundaries;
    }
    eprintln!(
        "reconcile crash test: {total} side-effect boundaries, a crash before each, all converged with no duplicate task; {phases:?}"
    );
}

#[test]
fn the_invariant_checker_catches_a_duplicate_task() {
    // The checker itself must be able to fail: a second live task for slot 0 of the run.
    let mut w = World::new(1);
    for _ in 0..5 {
        w.step(&Event::Tick(5)).unwrap();
    }
    let run = w.lt.status.as_ref().unwrap().run_id.clone().unwrap();
    w.spawn(run, 0, 0, w.now + secs(30));
    let plan = plan(&w.lt, &w.observe(), w.clock());
    assert!(w.check(&plan).unwrap_err().contains("two live tasks"));
}
