//! Test fixtures for the pure core: `LoadTest::test().agents(3).running(...)`-style builders
//! and `Observed::test()` with tasks, agent statuses, expectations and reports.

#![allow(clippy::unwrap_used)]

use barrage_crds::agent_status::{AgentPhase, AgentStatus};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::status::{LoadTestStatus, Phase, SlotState, SlotStatus, Verdict, VerdictResult};
use chrono::{DateTime, Utc};

use super::{
    Expectation, LaunchOutcome, Observed, ObservedTask, Plan, ReportObservation, TaskState,
};

/// 2024-11-25T20:40:00Z, the tests' epoch.
pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_732_567_200, 0).unwrap()
}

/// `t0() + secs`.
pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::TimeDelta::seconds(secs)
}

/// The run id fixtures use.
pub const RUN: &str = "demo-1-run";

/// Builders on LoadTest.
pub trait LoadTestFixture: Sized {
    /// A valid Produce test named `demo`, generation 1, one agent, 100 records/s for 5 s.
    fn test() -> Self;
    /// `spec.agents.count`.
    fn agents(self, n: u32) -> Self;
    /// `spec.agents.maxRestarts`.
    fn max_restarts(self, n: u32) -> Self;
    /// `spec.agents.readyFraction`.
    fn ready_fraction(self, f: f64) -> Self;
    /// `metadata.generation`.
    fn generation(self, g: i64) -> Self;
    /// Sets `spec.stop`.
    fn stopped(self) -> Self;
    /// Sets `spec.paused`.
    fn paused(self) -> Self;
    /// Sets `metadata.deletionTimestamp`.
    fn deleted(self) -> Self;
    /// The load lasts this many seconds (one constant step).
    fn load_secs(self, secs: u64) -> Self;
    /// Status in `phase` since `since`, run id [`RUN`], one record per slot as given.
    fn in_phase(self, phase: Phase, since: DateTime<Utc>) -> Self;
    /// Status Running with `startAt` and every slot `0..count` Running at incarnation 0
    /// with task `task-{slot}`.
    fn running(self, start_at: DateTime<Utc>) -> Self;
    /// Edits the status.
    fn with_status(self, f: impl FnOnce(&mut LoadTestStatus)) -> Self;
    /// The status (default if none).
    fn st(&self) -> LoadTestStatus;
    /// Applies a plan's status, as the shell would after persisting it.
    fn apply(self, plan: &Plan) -> Self;
}

impl LoadTestFixture for LoadTest {
    fn test() -> Self {
        let mut lt = LoadTest::example("demo", "127.0.0.1:9092", "t");
        lt.metadata.generation = Some(1);
        lt.metadata.creation_timestamp = Some(t0());
        lt
    }
    fn agents(mut self, n: u32) -> Self {
        self.spec.agents.count = n;
        self
    }
    fn max_restarts(mut self, n: u32) -> Self {
        self.spec.agents.max_restarts = n;
        self
    }
    fn ready_fraction(mut self, f: f64) -> Self {
        self.spec.agents.ready_fraction = f;
        self
    }
    fn generation(mut self, g: i64) -> Self {
        self.metadata.generation = Some(g);
        self
    }
    fn stopped(mut self) -> Self {
        self.spec.stop = true;
        self
    }
    fn paused(mut self) -> Self {
        self.spec.paused = true;
        self
    }
    fn deleted(mut self) -> Self {
        self.metadata.deletion_timestamp = Some(t0());
        self
    }
    fn load_secs(mut self, secs: u64) -> Self {
        use barrage_crds::duration::HumanDuration;
        use barrage_crds::spec::{ConstantStep, LoadStep};
        self.spec.load.steps = vec![LoadStep::Constant(ConstantStep {
            rate: 100.0,
            duration: HumanDuration::from_secs(secs),
        })];
        self
    }
    fn in_phase(self, phase: Phase, since: DateTime<Utc>) -> Self {
        let gen_ = self.metadata.generation;
        let count = self.spec.agents.count;
        let run_digest = self.spec.run_digest();
        self.with_status(|st| {
            st.phase = phase;
            st.phase_since = Some(since);
            st.run_id = Some(RUN.into());
            st.run_digest = Some(run_digest);
            st.observed_generation = gen_;
            st.launch_window = 1;
            st.agents.desired = count;
        })
    }
    fn running(self, start_at: DateTime<Utc>) -> Self {
        let count = self.spec.agents.count;
        let generation = self.metadata.generation.unwrap_or(0);
        self.in_phase(Phase::Running, start_at).with_status(|st| {
            st.start_at = Some(start_at);
            st.launch_window = 10;
            st.slots = (0..count)
                .map(|s| SlotStatus {
                    slot: s,
                    state: SlotState::Running,
                    attempt: 1,
                    task_id: Some(format!("task-{s}")),
                    launched_at: Some(start_at),
                    seen: true,
                    ..SlotStatus::default()
                })
                .collect();
            st.fleet = Some(barrage_crds::status::FleetAssignment {
                epoch: 1,
                members: (0..count).collect(),
                effective_at: Some(start_at),
                spec_generation: generation,
                paused: false,
                paused_spans: Vec::new(),
            });
        })
    }
    fn with_status(mut self, f: impl FnOnce(&mut LoadTestStatus)) -> Self {
        let mut st = self.status.take().unwrap_or_default();
        f(&mut st);
        self.status = Some(st);
        self
    }
    fn st(&self) -> LoadTestStatus {
        self.status.clone().unwrap_or_default()
    }
    fn apply(mut self, plan: &Plan) -> Self {
        self.status = Some(plan.status.clone());
        self
    }
}

impl Observed {
    /// Nothing seen, lease held.
    pub fn test() -> Observed {
        Observed {
            lease_held: true,
            ..Observed::default()
        }
    }
    /// A task of `run`, slot and incarnation, id `task-{slot}` (incarnation 0) or
    /// `task-{slot}-{inc}`.
    pub fn task(self, run: &str, slot: u32, inc: u32, state: TaskState) -> Observed {
        let id = if inc == 0 {
            format!("task-{slot}")
        } else {
            format!("task-{slot}-{inc}")
        };
        self.task_id(&id, run, slot, inc, state)
    }
    /// A task with an explicit id.
    pub fn task_id(
        mut self,
        id: &str,
        run: &str,
        slot: u32,
        inc: u32,
        state: TaskState,
    ) -> Observed {
        self.tasks.push(ObservedTask {
            task_id: id.into(),
            load_test: "demo".into(),
            started_by: run.into(),
            slot: Some(slot),
            incarnation: Some(inc),
            state,
        });
        self
    }
    /// Running tasks `task-{s}` of [`RUN`] for the given slots, incarnation 0.
    pub fn running_slots(self, slots: impl IntoIterator<Item = u32>) -> Observed {
        slots
            .into_iter()
            .fold(self, |o, s| o.task(RUN, s, 0, TaskState::Running))
    }
    /// Agent status of `run`/slot/inc in `phase`.
    pub fn agent(mut self, run: &str, slot: u32, inc: u32, phase: AgentPhase) -> Observed {
        let mut a = AgentStatus::new("demo", run, slot, inc, t0());
        a.phase = phase;
        a.counters.sent = 10;
        a.counters.acked = 9;
        a.counters.consumed = 4;
        a.last_interval_records = Some(40);
        self.agents.push(a);
        self
    }
    /// Ready agents of [`RUN`] for the given slots, incarnation 0.
    pub fn ready_slots(self, slots: impl IntoIterator<Item = u32>) -> Observed {
        slots
            .into_iter()
            .fold(self, |o, s| o.agent(RUN, s, 0, AgentPhase::Ready))
    }
    /// A launch outcome the shell remembers.
    pub fn expect(mut self, slot: u32, inc: u32, attempt: u32, outcome: LaunchOutcome) -> Observed {
        self.expectations.push(Expectation {
            slot,
            incarnation: inc,
            attempt,
            at: t0(),
            outcome,
        });
        self
    }
    /// A report of [`RUN`] with the verdict.
    pub fn report(mut self, final_: bool, result: VerdictResult) -> Observed {
        self.report = Some(ReportObservation {
            run_id: RUN.into(),
            final_,
            verdict: Some(Verdict {
                result,
                reasons: vec![format!("verdict {result:?}")],
            }),
            summary: None,
            locations: None,
        });
        self
    }
    /// The lease is held by someone else.
    pub fn without_lease(mut self) -> Observed {
        self.lease_held = false;
        self
    }
}

/// An exit with code and reason.
pub fn exited(code: i32, reason: &str) -> TaskState {
    TaskState::Exited {
        ok: code == 0,
        code: Some(code),
        reason: Some(reason.into()),
    }
}
