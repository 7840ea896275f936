//! Agent slots: folding observed tasks and launch outcomes into `status.slots`, scaling,
//! replacing dead agents, reaping tasks that belong to no slot, launching in slow-start
//! batches, and the fleet assignment. Pure, like the rest of the core.

use std::collections::BTreeSet;
use std::time::Duration;

use barrage_crds::backoff::Backoff;
use barrage_crds::names::ConditionType;
use barrage_crds::status::{ConditionStatus, FleetAssignment, Phase, SlotState, SlotStatus};
use chrono::{DateTime, Utc};

use super::{
    Command, Cx, EXPECTATION_TIMEOUT, Launch, LaunchOutcome, MAX_BATCH, MAX_LAUNCH_ATTEMPTS,
    MISSING_TIMEOUT, ObservedTask, RESPLIT_LEAD, TaskState, add, client_token,
};

/// Backoff of a slot's relaunches: 2 s, 4 s, 8 s … capped at 60 s, exactly (the plan is
/// deterministic).
pub const SLOT_BACKOFF: Backoff =
    Backoff::new(Duration::from_secs(2), Duration::from_secs(60)).without_jitter();

/// Backoff of a slot's next launch after launch `attempt` (1 for the first) failed.
pub fn slot_backoff(attempt: u32) -> Duration {
    SLOT_BACKOFF.nominal(attempt.saturating_sub(1))
}

/// True while the last launch of `rec` may still produce a task nobody has seen.
fn launch_in_flight(rec: &SlotStatus, now: DateTime<Utc>) -> bool {
    !rec.seen
        && rec
            .launched_at
            .is_some_and(|t| now < add(t, EXPECTATION_TIMEOUT))
}

fn describe_exit(state: &TaskState) -> String {
    match state {
        TaskState::Exited { code, reason, .. } => match (code, reason) {
            (Some(c), Some(r)) => format!("exit code {c}: {r}"),
            (Some(c), None) => format!("exit code {c}"),
            (None, Some(r)) => r.clone(),
            (None, None) => "exited".into(),
        },
        other => format!("{other:?}"),
    }
}

impl<'a> Cx<'a> {
    pub(crate) fn slot(&self, slot: u32) -> Option<&SlotStatus> {
        self.st.slots.iter().find(|r| r.slot == slot)
    }

    /// Tasks of the current run for this slot and incarnation that are alive, the recorded
    /// task first, then by task id (so duplicates resolve the same way every time).
    fn live_for(&self, rec: &SlotStatus) -> Vec<&'a ObservedTask> {
        let Some(run) = self.st.run_id.as_deref() else {
            return Vec::new();
        };
        let mut v: Vec<&'a ObservedTask> = self
            .tasks
            .iter()
            .copied()
            .filter(|t| {
                t.state.is_live()
                    && t.started_by == run
                    && t.slot == Some(rec.slot)
                    && t.incarnation == Some(rec.incarnation)
            })
            .collect();
        v.sort_by(|a, b| {
            let a_rec = rec.task_id.as_deref() == Some(a.task_id.as_str());
            let b_rec = rec.task_id.as_deref() == Some(b.task_id.as_str());
            b_rec.cmp(&a_rec).then_with(|| a.task_id.cmp(&b.task_id))
        });
        v
    }

    /// An exited task of this incarnation (the recorded one if the record knows it).
    fn exited_for(&self, rec: &SlotStatus) -> Option<&'a ObservedTask> {
        let run = self.st.run_id.as_deref()?;
        self.tasks.iter().copied().find(|t| {
            !t.state.is_live()
                && t.started_by == run
                && t.slot == Some(rec.slot)
                && t.incarnation == Some(rec.incarnation)
                && rec.task_id.as_ref().is_none_or(|id| *id == t.task_id)
        })
    }

    /// True when `t` is the one task its slot's record accounts for.
    pub(crate) fn is_owned(&self, t: &ObservedTask) -> bool {
        if !matches!(
            self.st.phase,
            Phase::Provisioning | Phase::Running | Phase::Draining
        ) || self.st.run_id.as_deref() != Some(t.started_by.as_str())
        {
            return false;
        }
        let (Some(slot), Some(inc)) = (t.slot, t.incarnation) else {
            return false;
        };
        let Some(rec) = self.slot(slot) else {
            return false;
        };
        if rec.incarnation != inc || !matches!(rec.state, SlotState::Launching | SlotState::Running)
        {
            return false;
        }
        self.live_for(rec)
            .first()
            .is_some_and(|first| first.task_id == t.task_id)
    }

    /// True while some slot's last launch may still produce an unseen task.
    pub(crate) fn in_flight(&self) -> bool {
        self.st.slots.iter().any(|r| launch_in_flight(r, self.now))
    }

    /// Folds what the launcher listed and what RunTask answered into the slot records:
    /// adoption, launch failures, expectation timeouts, deaths and replacements.
    pub(crate) fn absorb(&mut self) {
        let now = self.now;
        let phase = self.st.phase;
        let max_restarts = self.lt.spec.agents.max_restarts;
        let mut reset_window = false;
        for i in 0..self.st.slots.len() {
            let rec = self.st.slots[i].clone();
            if matches!(
                rec.state,
                SlotState::Completed | SlotState::Failed | SlotState::Retired
            ) {
                continue;
            }
            let mut rec = rec;
            let live = self.live_for(&rec).first().copied();
            if let Some(t) = live {
                // Seen alive: adopt it (after a restart this is the adoption of live tasks).
                rec.state = SlotState::Running;
                rec.task_id = Some(t.task_id.clone());
                rec.seen = true;
                rec.missing_since = None;
                rec.retry_at = None;
            } else if let Some(t) = self
                .exited_for(&rec)
                .filter(|_| matches!(rec.state, SlotState::Launching | SlotState::Running))
            {
                rec.seen = true;
                rec.task_id = Some(t.task_id.clone());
                let ok = matches!(t.state, TaskState::Exited { ok: true, .. });
                self.death(&mut rec, ok, describe_exit(&t.state), phase, max_restarts);
            } else {
                match rec.state {
                    SlotState::Launching => {
                        let outcome = self
                            .obs
                            .expectations
                            .iter()
                            .find(|e| {
                                e.slot == rec.slot
                                    && e.incarnation == rec.incarnation
                                    && e.attempt == rec.attempt
                            })
                            .map(|e| &e.outcome);
                        let due = rec.launched_at.map_or(now, |t| add(t, EXPECTATION_TIMEOUT));
                        match outcome {
                            Some(LaunchOutcome::Failed { reason, throttled }) => {
                                reset_window = true;
                                rec.launched_at = None;
                                let why = if *throttled {
                                    format!("RunTask throttled: {reason}")
                                } else {
                                    format!("RunTask failed: {reason}")
                                };
                                self.launch_failed(&mut rec, why);
                            }
                            _ if now >= due => {
                                reset_window = true;
                                let why = format!(
                                    "the task was not seen within {}s of its launch",
                                    EXPECTATION_TIMEOUT.as_secs()
                                );
                                self.launch_failed(&mut rec, why);
                                if rec.state == SlotState::Backoff {
                                    // Nothing failed for sure: try again at once.
                                    rec.retry_at = Some(now);
                                }
                            }
                            Some(LaunchOutcome::Started { task_id }) => {
                                rec.task_id = Some(task_id.clone());
                                self.wakes.push(due);
                            }
                            _ => self.wakes.push(due),
                        }
                    }
                    SlotState::Running => {
                        let since = *rec.missing_since.get_or_insert(now);
                        let due = add(since, MISSING_TIMEOUT);
                        if now >= due {
                            rec.missing_since = None;
                            let why = format!(
                                "the task disappeared from the task list for {}s",
                                MISSING_TIMEOUT.as_secs()
                            );
                            self.death(&mut rec, false, why, phase, max_restarts);
                        } else {
                            self.wakes.push(due);
                        }
                    }
                    _ => {}
                }
            }
            self.st.slots[i] = rec;
        }
        if reset_window {
            self.st.launch_window = 1;
        }
    }

    fn launch_failed(&mut self, rec: &mut SlotStatus, why: String) {
        if rec.attempt >= MAX_LAUNCH_ATTEMPTS {
            rec.state = SlotState::Failed;
            rec.last_error = Some(format!(
                "gave up after {} launch attempts: {why}",
                rec.attempt
            ));
        } else {
            rec.state = SlotState::Backoff;
            rec.retry_at = Some(add(self.now, slot_backoff(rec.attempt)));
            rec.last_error = Some(why);
        }
        rec.task_id = None;
    }

    /// The task of `rec` ended. A clean exit completes the slot; an error during Provisioning
    /// or Running replaces it while restarts remain, and fails it after.
    fn death(
        &mut self,
        rec: &mut SlotStatus,
        ok: bool,
        why: String,
        phase: Phase,
        max_restarts: u32,
    ) {
        rec.missing_since = None;
        if ok {
            rec.state = SlotState::Completed;
            return;
        }
        rec.last_error = Some(why);
        if matches!(phase, Phase::Provisioning | Phase::Running) && rec.restarts < max_restarts {
            rec.incarnation = rec.incarnation.saturating_add(1);
            rec.restarts += 1;
            rec.attempt = 0;
            rec.state = SlotState::Waiting;
            rec.task_id = None;
            rec.retry_at = None;
            self.st.agents.replaced = self.st.agents.replaced.saturating_add(1);
        } else {
            rec.state = SlotState::Failed;
        }
    }

    /// True when there are slots and every one of `0..count` failed.
    pub(crate) fn all_slots_failed(&self) -> bool {
        let desired = self.lt.spec.agents.count;
        desired > 0
            && (0..desired).all(|s| self.slot(s).is_some_and(|r| r.state == SlotState::Failed))
    }

    /// Slots in `0..desired` whose current task was seen (or returned by RunTask).
    pub(crate) fn slots_with_task(&self, desired: u32) -> u32 {
        super::count(self.st.slots.iter().filter(|r| {
            r.slot < desired
                && ((r.state == SlotState::Running)
                    || (r.state == SlotState::Launching && r.task_id.is_some())
                    || r.state == SlotState::Completed)
        }))
    }

    /// The slots that share the load: `0..count` minus failed ones.
    pub(crate) fn members(&self) -> Vec<u32> {
        (0..self.lt.spec.agents.count)
            .filter(|&s| self.slot(s).is_none_or(|r| r.state != SlotState::Failed))
            .collect()
    }

    /// Makes the records match `0..count`: new slots wait for a launch, slots past the count
    /// retire (their tasks are reaped), retired slots that come back get a new incarnation.
    pub(crate) fn scale(&mut self) {
        let desired = self.lt.spec.agents.count;
        for s in 0..desired {
            match self.st.slots.iter_mut().find(|r| r.slot == s) {
                None => self.st.slots.push(SlotStatus {
                    slot: s,
                    ..SlotStatus::default()
                }),
                Some(r) if r.state == SlotState::Retired => {
                    // Back in the fleet: a new incarnation (its old task is being stopped).
                    r.state = SlotState::Waiting;
                    r.incarnation = r.incarnation.saturating_add(1);
                    r.attempt = 0;
                    r.task_id = None;
                    r.retry_at = None;
                    r.missing_since = None;
                }
                Some(_) => {}
            }
        }
        for r in self.st.slots.iter_mut().filter(|r| r.slot >= desired) {
            if r.state != SlotState::Retired {
                r.state = SlotState::Retired;
                r.retry_at = None;
            }
        }
        // Retired records stay for the rest of the run (at most one per slot number ever
        // used): an incarnation number is never reused, so an old task can never be taken
        // for a new one.
        self.st.slots.sort_by_key(|r| r.slot);
    }

    /// Slot numbers with any live task of the current run.
    fn live_slots(&self) -> BTreeSet<u32> {
        let run = self.st.run_id.as_deref().unwrap_or_default();
        self.tasks
            .iter()
            .filter(|t| t.state.is_live() && t.started_by == run)
            .filter_map(|t| t.slot)
            .collect()
    }

    /// Stops every live task that no slot accounts for (`all`: every live task).
    pub(crate) fn reap(&mut self, all: bool) {
        let run = self.st.run_id.clone().unwrap_or_default();
        let mut stops = Vec::new();
        for t in self.tasks.iter().filter(|t| t.state.is_live()) {
            if !all && self.is_owned(t) {
                continue;
            }
            let reason = if all {
                format!("barrage: run {run} is {}", self.st.phase)
            } else if t.started_by != run {
                format!("barrage: orphan of run {}", t.started_by)
            } else {
                match t.slot.and_then(|s| self.slot(s)) {
                    None => "barrage: no such agent slot".to_string(),
                    Some(r) if r.state == SlotState::Retired => {
                        "barrage: agent slot removed by a scale-down".to_string()
                    }
                    Some(r) if r.state == SlotState::Failed => {
                        "barrage: agent slot failed".to_string()
                    }
                    Some(r) if Some(r.incarnation) != t.incarnation => {
                        "barrage: superseded agent incarnation".to_string()
                    }
                    Some(_) => "barrage: duplicate agent task for one slot".to_string(),
                }
            };
            stops.push((t.task_id.clone(), reason));
        }
        self.stops.extend(stops);
    }

    /// Launches waiting slots, one slow-start batch per reconcile.
    pub(crate) fn launch(&mut self) {
        let now = self.now;
        let Some(run) = self.st.run_id.clone() else {
            return;
        };
        let desired = self.lt.spec.agents.count;
        // The previous batch must be confirmed (seen, or answered by RunTask) first.
        let unconfirmed: Vec<DateTime<Utc>> = self
            .st
            .slots
            .iter()
            .filter(|r| r.state == SlotState::Launching && r.task_id.is_none())
            .filter(|r| launch_in_flight(r, now))
            .filter_map(|r| r.launched_at)
            .collect();
        if let Some(first) = unconfirmed.iter().min() {
            self.wakes.push(add(*first, EXPECTATION_TIMEOUT));
            return;
        }
        let live_slots = self.live_slots();
        let window = self.st.launch_window.clamp(1, MAX_BATCH) as usize;
        let mut launches = Vec::new();
        let mut more = false;
        let mut wakes = Vec::new();
        for rec in self.st.slots.iter_mut().filter(|r| r.slot < desired) {
            let ready = match rec.state {
                SlotState::Waiting => true,
                SlotState::Backoff => match rec.retry_at {
                    Some(t) if t > now => {
                        wakes.push(t);
                        false
                    }
                    _ => true,
                },
                _ => false,
            };
            if !ready {
                continue;
            }
            if launch_in_flight(rec, now) {
                wakes.extend(rec.launched_at.map(|t| add(t, EXPECTATION_TIMEOUT)));
                continue;
            }
            if live_slots.contains(&rec.slot) {
                // An older task of this slot is still alive (being stopped): wait for it.
                wakes.push(add(now, Duration::from_secs(5)));
                continue;
            }
            if launches.len() >= window {
                more = true;
                continue;
            }
            rec.state = SlotState::Launching;
            rec.attempt = rec.attempt.saturating_add(1);
            rec.launched_at = Some(now);
            rec.seen = false;
            rec.task_id = None;
            rec.retry_at = None;
            rec.missing_since = None;
            launches.push(Launch {
                slot: rec.slot,
                incarnation: rec.incarnation,
                attempt: rec.attempt,
                client_token: client_token(&run, rec.slot, rec.incarnation, rec.attempt),
            });
        }
        self.wakes.extend(wakes);
        if !launches.is_empty() {
            self.st.launch_window = (self.st.launch_window.clamp(1, MAX_BATCH) * 2).min(MAX_BATCH);
            self.wakes.push(add(now, EXPECTATION_TIMEOUT));
            self.commands.push(Command::RunAgents {
                run_id: run,
                launches,
            });
            self.hot |= more;
        }
    }

    /// Publishes a new fleet assignment when the members, the pause or the spec changed.
    pub(crate) fn update_fleet(&mut self) {
        let members = self.members();
        let generation = self.lt.metadata.generation.unwrap_or(0);
        let paused = self.lt.spec.paused;
        let start_at = self.st.start_at.unwrap_or(self.now);
        match &mut self.st.fleet {
            Some(f)
                if f.members == members
                    && f.paused == paused
                    && f.spec_generation == generation => {}
            fleet => {
                let epoch = fleet.as_ref().map_or(0, |f| f.epoch).saturating_add(1);
                let effective_at = add(self.now, RESPLIT_LEAD).max(start_at);
                let paused_spans = fleet
                    .as_ref()
                    .map_or_else(FleetAssignment::default, Clone::clone)
                    .spans_after(paused, effective_at);
                *fleet = Some(FleetAssignment {
                    epoch,
                    members,
                    effective_at: Some(effective_at),
                    spec_generation: generation,
                    paused,
                    paused_spans,
                });
            }
        }
    }

    /// The `Degraded` condition: some slot exhausted its restarts.
    pub(crate) fn degraded(&mut self) {
        let failed: Vec<String> = self
            .st
            .slots
            .iter()
            .filter(|r| r.state == SlotState::Failed)
            .map(|r| r.slot.to_string())
            .collect();
        if failed.is_empty() {
            if self.st.condition(ConditionType::Degraded).is_some() {
                self.condition(
                    ConditionType::Degraded,
                    ConditionStatus::False,
                    "AllSlotsHealthy",
                    "Every agent slot is running or launching.",
                );
            }
        } else {
            let msg = format!(
                "Agent slots {} failed; the other agents carry their share.",
                failed.join(", ")
            );
            self.condition(
                ConditionType::Degraded,
                ConditionStatus::True,
                "AgentsFailed",
                &msg,
            );
        }
    }
}
