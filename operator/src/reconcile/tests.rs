//! The phase table, row by row, and the slot rules. Plain `#[test]`s: no runtime, no mocks.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use barrage_crds::agent_status::AgentPhase;
use barrage_crds::backoff::Backoff;
use barrage_crds::loadtest::LoadTest;
use barrage_crds::spec::TopicCleanup;
use barrage_crds::status::{ConditionStatus, PausedSpan, Phase, SlotState, VerdictResult};

use super::testing::{LoadTestFixture, RUN, at, exited, t0};
use super::*;

fn launches(plan: &Plan) -> Vec<(u32, u32, u32)> {
    plan.commands
        .iter()
        .filter_map(|c| match c {
            Command::RunAgents { launches, .. } => Some(launches),
            _ => None,
        })
        .flatten()
        .map(|l| (l.slot, l.incarnation, l.attempt))
        .collect()
}

fn stopped(plan: &Plan) -> Vec<String> {
    let mut v: Vec<String> = plan
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::StopTasks { task_ids, .. } => Some(task_ids.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    v.sort();
    v
}

fn slot(plan: &Plan, s: u32) -> &barrage_crds::status::SlotStatus {
    plan.status.slots.iter().find(|r| r.slot == s).unwrap()
}

// ---- Pending ------------------------------------------------------------------------------

#[test]
fn pending_valid_spec_enters_provisioning_and_launches_the_first_slot_alone() {
    let lt = LoadTest::test().agents(3);
    let plan = plan(&lt, &Observed::test(), t0());
    assert_eq!(plan.status.phase, Phase::Provisioning);
    let run = plan.status.run_id.clone().unwrap();
    assert_eq!(run, run_id("demo", 1, t0()));
    assert_eq!(launches(&plan), vec![(0, 0, 1)], "slow start begins at 1");
    assert_eq!(
        plan.commands,
        vec![Command::RunAgents {
            run_id: run.clone(),
            launches: vec![Launch {
                slot: 0,
                incarnation: 0,
                attempt: 1,
                client_token: format!("{run}-0-0-1"),
            }],
        }]
    );
    assert_eq!(plan.status.slots.len(), 3);
    assert_eq!(plan.status.agents.desired, 3);
    assert_eq!(plan.status.observed_generation, Some(1));
    assert_eq!(plan.status.transitions.len(), 1);
    assert_eq!(plan.status.transitions[0].reason, "Accepted");
    assert!(plan.requeue.is_some());
}

#[test]
fn invalid_spec_fails_with_spec_invalid_and_no_requeue() {
    let mut lt = LoadTest::test();
    lt.api_version = "barrage.dev/v0".into();
    let plan = plan(&lt, &Observed::test(), t0());
    assert_eq!(plan.status.phase, Phase::Failed);
    let c = plan.status.condition(ConditionType::SpecInvalid).unwrap();
    assert_eq!(c.status, ConditionStatus::True);
    assert!(c.message.contains("apiVersion"), "{}", c.message);
    assert_eq!(plan.requeue, None, "a spec error is not retried hot");
    assert!(plan.commands.is_empty());
}

#[test]
fn spec_becoming_invalid_while_running_fails_the_run_and_stops_its_agents() {
    let mut lt = LoadTest::test().agents(2).generation(2).running(t0());
    lt.api_version = "nope".into();
    let obs = Observed::test().running_slots([0, 1]);
    let plan = plan(&lt, &obs, at(1));
    assert_eq!(plan.status.phase, Phase::Failed);
    assert_eq!(stopped(&plan), vec!["task-0", "task-1"]);
    assert_eq!(plan.status.observed_generation, Some(2));
}

#[test]
fn unreadable_record_fails_with_spec_invalid_and_no_requeue() {
    let plan = plan_unreadable(None, Some(4), "spec.load: missing field `steps`", t0());
    assert_eq!(plan.status.phase, Phase::Failed);
    assert_eq!(plan.status.observed_generation, Some(4));
    assert_eq!(plan.requeue, None);
    assert!(
        plan.status
            .condition(ConditionType::SpecInvalid)
            .unwrap()
            .message
            .contains("steps")
    );
}

#[test]
fn stop_before_the_start_cancels_without_launching() {
    let lt = LoadTest::test().stopped();
    let plan = plan(&lt, &Observed::test(), t0());
    assert_eq!(plan.status.phase, Phase::Cancelled);
    assert!(launches(&plan).is_empty());
    assert_eq!(
        plan.status.verdict.unwrap().result,
        VerdictResult::Incomplete
    );
}

#[test]
fn lease_not_held_plans_nothing() {
    let lt = LoadTest::test().agents(3);
    let plan = plan(&lt, &Observed::test().without_lease(), t0());
    assert_eq!(plan.status, lt.st());
    assert!(plan.commands.is_empty());
    assert_eq!(plan.requeue, Some(LEASE_RETRY));
}

// ---- Provisioning: launches -----------------------------------------------------------------

#[test]
fn provisioning_launches_in_slow_start_batches_of_1_2_4_8_10() {
    let mut lt = LoadTest::test().agents(30);
    let mut obs = Observed::test();
    let mut sizes = Vec::new();
    for step in 0..8 {
        let now = at(step);
        let p = plan(&lt, &obs, now);
        let batch = launches(&p);
        sizes.push(batch.len());
        for (s, inc, attempt) in batch {
            obs = obs.expect(
                s,
                inc,
                attempt,
                LaunchOutcome::Started {
                    task_id: format!("task-{s}"),
                },
            );
        }
        lt = lt.apply(&p);
    }
    assert_eq!(sizes, vec![1, 2, 4, 8, 10, 5, 0, 0]);
}

#[test]
fn a_batch_waits_until_the_previous_one_is_confirmed() {
    let lt = LoadTest::test().agents(3);
    let p1 = plan(&lt, &Observed::test(), t0());
    let lt = lt.apply(&p1);
    // No answer and no task visible yet: nothing more goes out.
    let p2 = plan(&lt, &Observed::test(), at(2));
    assert!(launches(&p2).is_empty());
    assert_eq!(slot(&p2, 0).state, SlotState::Launching);
}

#[test]
fn launched_task_not_yet_visible_is_not_launched_again_even_after_a_crash() {
    let lt = LoadTest::test();
    let lt = lt.clone().apply(&plan(&lt, &Observed::test(), t0()));
    // The shell crashed: no expectations, and DescribeTasks does not show the task yet.
    for secs in [1, 10, 30, 59] {
        let p = plan(&lt, &Observed::test(), at(secs));
        assert!(launches(&p).is_empty(), "relaunched at +{secs}s");
    }
}

#[test]
fn launch_not_seen_within_the_expectation_timeout_is_retried_with_a_new_client_token() {
    let lt = LoadTest::test();
    let first = plan(&lt, &Observed::test(), t0());
    let lt = lt.apply(&first);
    let p = plan(&lt, &Observed::test(), at(60));
    assert_eq!(launches(&p), vec![(0, 0, 2)]);
    let Command::RunAgents { launches, .. } = &p.commands[0] else {
        panic!("{:?}", p.commands)
    };
    assert!(launches[0].client_token.ends_with("-0-0-2"));
}

#[test]
fn partial_runtask_failure_backs_off_only_the_failed_slot_and_resets_slow_start() {
    let lt = LoadTest::test()
        .agents(3)
        .in_phase(Phase::Provisioning, t0())
        .with_status(|st| {
            st.launch_window = 4;
            st.slots = (0..3)
                .map(|s| barrage_crds::status::SlotStatus {
                    slot: s,
                    state: SlotState::Launching,
                    attempt: 1,
                    launched_at: Some(t0()),
                    ..Default::default()
                })
                .collect();
        });
    let obs = Observed::test()
        .expect(
            0,
            0,
            1,
            LaunchOutcome::Started {
                task_id: "a".into(),
            },
        )
        .expect(
            1,
            0,
            1,
            LaunchOutcome::Failed {
                reason: "RESOURCE:ENI".into(),
                throttled: false,
            },
        )
        .expect(
            2,
            0,
            1,
            LaunchOutcome::Started {
                task_id: "c".into(),
            },
        );
    let p = plan(&lt, &obs, at(1));
    assert_eq!(slot(&p, 0).state, SlotState::Launching);
    assert_eq!(slot(&p, 0).task_id.as_deref(), Some("a"));
    assert_eq!(slot(&p, 1).state, SlotState::Backoff);
    assert_eq!(slot(&p, 1).retry_at, Some(at(3)));
    assert!(slot(&p, 1).last_error.as_deref().unwrap().contains("ENI"));
    assert_eq!(p.status.launch_window, 1);
    assert!(
        launches(&p).is_empty(),
        "the failed slot waits for its backoff"
    );
    let lt = lt.apply(&p);
    let p = plan(&lt, &obs, at(3));
    assert_eq!(launches(&p), vec![(1, 0, 2)]);
}

#[test]
fn a_slot_whose_launches_keep_failing_gives_up_after_the_attempt_limit() {
    let lt = LoadTest::test()
        .agents(2)
        .in_phase(Phase::Provisioning, t0())
        .with_status(|st| {
            st.slots = vec![
                barrage_crds::status::SlotStatus {
                    slot: 0,
                    state: SlotState::Launching,
                    attempt: MAX_LAUNCH_ATTEMPTS,
                    launched_at: Some(t0()),
                    ..Default::default()
                },
                barrage_crds::status::SlotStatus {
                    slot: 1,
                    state: SlotState::Running,
                    attempt: 1,
                    task_id: Some("task-1".into()),
                    seen: true,
                    ..Default::default()
                },
            ];
        });
    let obs = Observed::test().running_slots([1]).expect(
        0,
        0,
        MAX_LAUNCH_ATTEMPTS,
        LaunchOutcome::Failed {
            reason: "Throttling".into(),
            throttled: true,
        },
    );
    let p = plan(&lt, &obs, at(1));
    assert_eq!(slot(&p, 0).state, SlotState::Failed);
    assert!(launches(&p).is_empty());
}

// ---- Provisioning: coordinated start and timeouts ---------------------------------------------

#[test]
fn provisioning_with_enough_ready_agents_sets_start_at_a_little_ahead_and_enters_running() {
    let lt = LoadTest::test().agents(2).running(t0()).with_status(|st| {
        st.phase = Phase::Provisioning;
        st.start_at = None;
        st.fleet = None;
    });
    let obs = Observed::test().running_slots([0, 1]).ready_slots([0, 1]);
    let p = plan(&lt, &obs, at(30));
    assert_eq!(p.status.phase, Phase::Running);
    assert_eq!(p.status.start_at, Some(at(35)));
    let fleet = p.status.fleet.clone().unwrap();
    assert_eq!(fleet.members, vec![0, 1]);
    assert_eq!(fleet.effective_at, Some(at(35)));
    assert_eq!(
        p.status
            .condition(ConditionType::AgentsReady)
            .unwrap()
            .status,
        ConditionStatus::True
    );
    assert_eq!(p.status.agents.ready, 2);
    assert!(p.commands.is_empty(), "{:?}", p.commands);
}

#[test]
fn provisioning_waits_while_fewer_agents_than_the_ready_fraction_are_ready() {
    let base = LoadTest::test().agents(4).running(t0()).with_status(|st| {
        st.phase = Phase::Provisioning;
        st.start_at = None;
        st.fleet = None;
    });
    let obs = Observed::test()
        .running_slots([0, 1, 2, 3])
        .ready_slots([0, 1]);
    let p = plan(&base.clone().ready_fraction(0.75), &obs, at(30));
    assert_eq!(p.status.phase, Phase::Provisioning);
    assert_eq!(p.status.start_at, None);
    let p = plan(&base.ready_fraction(0.5), &obs, at(30));
    assert_eq!(p.status.phase, Phase::Running);
}

#[test]
fn ready_reports_of_a_replaced_incarnation_do_not_count() {
    let lt = LoadTest::test().running(t0()).with_status(|st| {
        st.phase = Phase::Provisioning;
        st.start_at = None;
        st.slots[0].incarnation = 1;
    });
    let obs =
        Observed::test()
            .task(RUN, 0, 1, TaskState::Running)
            .agent(RUN, 0, 0, AgentPhase::Ready);
    let p = plan(&lt, &obs, at(5));
    assert_eq!(p.status.phase, Phase::Provisioning);
}

#[test]
fn provisioning_past_its_timeout_without_every_task_fails_provisioning_timed_out() {
    let lt = LoadTest::test()
        .agents(2)
        .in_phase(Phase::Provisioning, t0());
    let p = plan(&lt, &Observed::test().running_slots([0]), at(600));
    assert_eq!(p.status.phase, Phase::Failed);
    assert_eq!(
        p.status.transitions.last().unwrap().reason,
        "ProvisioningTimedOut"
    );
    assert_eq!(stopped(&p), vec!["task-0"], "a failed run stops its agents");
}

#[test]
fn provisioning_past_the_ready_timeout_fails_ready_timed_out() {
    let lt = LoadTest::test().running(t0()).with_status(|st| {
        st.phase = Phase::Provisioning;
        st.start_at = None;
    });
    let obs = Observed::test().running_slots([0]);
    let p = plan(&lt, &obs, at(899));
    assert_eq!(p.status.phase, Phase::Provisioning);
    assert!(p.requeue.unwrap() <= Duration::from_secs(1));
    let p = plan(&lt, &obs, at(900));
    assert_eq!(p.status.phase, Phase::Failed);
    assert_eq!(p.status.transitions.last().unwrap().reason, "ReadyTimedOut");
}

// ---- Running -------------------------------------------------------------------------------

#[test]
fn stopped_agent_with_nonzero_exit_is_replaced_while_restarts_remain() {
    let lt = LoadTest::test().agents(2).load_secs(600).running(t0());
    let obs = Observed::test()
        .running_slots([0])
        .task(RUN, 1, 0, exited(137, "OutOfMemoryError"));
    let p = plan(&lt, &obs, at(30));
    assert_eq!(p.status.phase, Phase::Running);
    assert_eq!(launches(&p), vec![(1, 1, 1)], "same slot, next incarnation");
    let rec = slot(&p, 1);
    assert_eq!(rec.restarts, 1);
    assert!(rec.last_error.as_deref().unwrap().contains("137"));
    assert_eq!(p.status.agents.replaced, 1);
    assert_eq!(
        p.status.fleet.unwrap().epoch,
        1,
        "a replacement keeps the split"
    );
}

#[test]
fn agent_beyond_max_restarts_fails_its_slot_and_the_others_take_its_share() {
    let lt = LoadTest::test()
        .agents(3)
        .load_secs(600)
        .max_restarts(1)
        .running(t0())
        .with_status(|st| {
            st.slots[2].incarnation = 1;
            st.slots[2].restarts = 1;
            st.slots[2].task_id = Some("task-2-1".into());
        });
    let obs = Observed::test().running_slots([0, 1]).task(
        RUN,
        2,
        1,
        exited(1, "EssentialContainerExited"),
    );
    let p = plan(&lt, &obs, at(30));
    assert_eq!(p.status.phase, Phase::Running);
    assert_eq!(slot(&p, 2).state, SlotState::Failed);
    assert!(launches(&p).is_empty());
    let fleet = p.status.fleet.clone().unwrap();
    assert_eq!(fleet.members, vec![0, 1]);
    assert_eq!(fleet.epoch, 2);
    assert_eq!(fleet.effective_at, Some(at(35)));
    assert_eq!(
        p.status.condition(ConditionType::Degraded).unwrap().status,
        ConditionStatus::True
    );
    assert_eq!(p.status.agents.failed, 1);
}

#[test]
fn every_slot_beyond_max_restarts_fails_the_run() {
    let lt = LoadTest::test()
        .load_secs(600)
        .max_restarts(0)
        .running(t0());
    let obs = Observed::test().task(RUN, 0, 0, exited(1, "boom"));
    let p = plan(&lt, &obs, at(30));
    assert_eq!(p.status.phase, Phase::Failed);
    assert_eq!(p.status.transitions.last().unwrap().reason, "AgentsFailed");
}

#[test]
fn a_task_missing_from_the_list_for_two_minutes_counts_as_dead() {
    let lt = LoadTest::test().load_secs(600).running(t0());
    let p = plan(&lt, &Observed::test(), at(10));
    assert_eq!(slot(&p, 0).missing_since, Some(at(10)));
    assert!(launches(&p).is_empty(), "a stale list is not a death");
    let lt = lt.apply(&p);
    let p = plan(&lt, &Observed::test(), at(130));
    assert_eq!(launches(&p), vec![(0, 1, 1)]);
}

#[test]
fn scaling_up_while_running_launches_new_slots_and_resplits_a_little_ahead() {
    let lt = LoadTest::test()
        .agents(2)
        .load_secs(600)
        .running(t0())
        .agents(4)
        .generation(2);
    let obs = Observed::test().running_slots([0, 1]);
    let p = plan(&lt, &obs, at(100));
    assert_eq!(launches(&p).len(), 2, "window is open after provisioning");
    let fleet = p.status.fleet.clone().unwrap();
    assert_eq!(fleet.members, vec![0, 1, 2, 3]);
    assert_eq!(fleet.epoch, 2);
    assert_eq!(fleet.effective_at, Some(at(105)));
    assert_eq!(fleet.spec_generation, 2);
    assert_eq!(p.status.agents.desired, 4);
    assert_eq!(p.status.observed_generation, Some(2));
}

#[test]
fn scaling_down_while_running_stops_the_highest_slots_and_resplits() {
    let lt = LoadTest::test()
        .agents(3)
        .load_secs(600)
        .running(t0())
        .agents(1)
        .generation(2);
    let obs = Observed::test().running_slots([0, 1, 2]);
    let p = plan(&lt, &obs, at(100));
    assert_eq!(stopped(&p), vec!["task-1", "task-2"]);
    assert_eq!(p.status.fleet.clone().unwrap().members, vec![0]);
    assert_eq!(slot(&p, 1).state, SlotState::Retired);
    // Once the stopped tasks are gone nothing more happens; the records stay so a later
    // scale-up uses fresh incarnations.
    let lt = lt.apply(&p);
    let obs = Observed::test()
        .running_slots([0])
        .task(RUN, 1, 0, exited(0, "stopped"))
        .task(RUN, 2, 0, exited(0, "stopped"));
    let p = plan(&lt, &obs, at(101));
    assert!(p.commands.is_empty(), "{:?}", p.commands);
    let lt = lt.apply(&p).agents(3).generation(3);
    let p = plan(&lt, &obs, at(102));
    assert_eq!(launches(&p), vec![(1, 1, 1), (2, 1, 1)]);
}

#[test]
fn a_slot_scaled_back_up_is_not_relaunched_while_its_old_task_is_alive() {
    let lt = LoadTest::test()
        .agents(2)
        .load_secs(600)
        .running(t0())
        .with_status(|st| st.slots[1].state = SlotState::Retired);
    // Its StopTask has not taken effect yet.
    let obs = Observed::test().running_slots([0, 1]);
    let p = plan(&lt, &obs, at(100));
    assert!(launches(&p).is_empty());
    assert_eq!(
        stopped(&p),
        vec!["task-1"],
        "the old incarnation is stopped"
    );
    assert_eq!(slot(&p, 1).incarnation, 1);
    let lt = lt.apply(&p);
    let obs = Observed::test()
        .running_slots([0])
        .task(RUN, 1, 0, exited(0, "stopped"));
    let p = plan(&lt, &obs, at(101));
    assert_eq!(launches(&p), vec![(1, 1, 1)]);
}

#[test]
fn a_rate_change_or_pause_publishes_a_new_assignment_with_the_same_members() {
    let lt = LoadTest::test()
        .agents(2)
        .load_secs(600)
        .running(t0())
        .paused()
        .generation(3);
    let p = plan(&lt, &Observed::test().running_slots([0, 1]), at(50));
    let fleet = p.status.fleet.unwrap();
    assert!(fleet.paused);
    assert_eq!(fleet.members, vec![0, 1]);
    assert_eq!((fleet.epoch, fleet.spec_generation), (2, 3));
    assert_eq!(fleet.effective_at, Some(at(55)));
}

#[test]
fn a_pause_opens_a_paused_span_and_the_resume_closes_it_at_the_assignments_effective_at() {
    let running = LoadTest::test()
        .agents(2)
        .load_secs(600)
        .running(t0())
        .generation(2);
    let paused = running.clone().paused().generation(3);
    let obs = Observed::test().running_slots([0, 1]);
    let p = plan(&paused, &obs, at(50));
    let fleet = p.status.fleet.clone().unwrap();
    assert_eq!(
        fleet.paused_spans,
        vec![PausedSpan {
            from: at(55),
            until: None
        }]
    );
    // The same pause seen again changes nothing.
    let again = plan(
        &paused.clone().with_status(|st| *st = p.status.clone()),
        &obs,
        at(51),
    );
    assert_eq!(
        again.status.fleet.as_ref().map(|f| f.epoch),
        Some(fleet.epoch)
    );
    // Resumed at 70: the span closes where the new assignment takes effect.
    let mut resumed = running.clone().generation(4);
    resumed.status = Some(p.status.clone());
    let r = plan(&resumed, &obs, at(70));
    let fleet = r.status.fleet.unwrap();
    assert!(!fleet.paused);
    assert_eq!(
        fleet.paused_spans,
        vec![PausedSpan {
            from: at(55),
            until: Some(at(75))
        }]
    );
    assert_eq!(fleet.epoch, 3);
}

#[test]
fn running_at_the_end_of_the_load_enters_draining() {
    let lt = LoadTest::test().load_secs(60).running(t0());
    let obs = Observed::test().running_slots([0]);
    let p = plan(&lt, &obs, at(59));
    assert_eq!(p.status.phase, Phase::Running);
    assert_eq!(p.requeue, Some(Duration::from_secs(1)));
    let p = plan(&lt, &obs, at(60));
    assert_eq!(p.status.phase, Phase::Draining);
    assert!(p.commands.is_empty(), "agents end on their own clock");
}

#[test]
fn stop_requested_while_running_enters_draining() {
    let lt = LoadTest::test().load_secs(600).running(t0()).stopped();
    let p = plan(&lt, &Observed::test().running_slots([0]), at(30));
    assert_eq!(p.status.phase, Phase::Draining);
    assert_eq!(p.status.transitions.last().unwrap().reason, "StopRequested");
}

// ---- Draining, Reporting --------------------------------------------------------------------

#[test]
fn draining_when_every_agent_finished_enters_reporting_and_asks_for_the_final_report() {
    let lt = LoadTest::test()
        .agents(2)
        .running(t0())
        .with_status(|st| st.phase = Phase::Draining);
    let obs = Observed::test()
        .task(RUN, 0, 0, exited(0, "done"))
        .running_slots([1])
        .agent(RUN, 1, 0, AgentPhase::Draining);
    let p = plan(&lt, &obs, at(10));
    assert_eq!(p.status.phase, Phase::Draining, "slot 1 still flushes");
    let obs = Observed::test()
        .task(RUN, 0, 0, exited(0, "done"))
        .running_slots([1])
        .agent(RUN, 1, 0, AgentPhase::Completed);
    let p = plan(&lt, &obs, at(11));
    assert_eq!(p.status.phase, Phase::Reporting);
    assert!(p.commands.contains(&Command::WriteReport {
        run_id: RUN.into(),
        final_: true
    }));
}

#[test]
fn draining_past_its_timeout_enters_reporting_and_stops_the_stragglers() {
    let lt = LoadTest::test()
        .running(t0())
        .with_status(|st| st.phase = Phase::Draining);
    let p = plan(&lt, &Observed::test().running_slots([0]), at(120));
    assert_eq!(p.status.phase, Phase::Reporting);
    assert_eq!(stopped(&p), vec!["task-0"]);
    assert_eq!(
        p.status.condition(ConditionType::TimedOut).unwrap().reason,
        "DrainTimedOut"
    );
}

#[test]
fn reporting_with_a_passed_verdict_succeeds() {
    let lt = LoadTest::test().in_phase(Phase::Reporting, t0());
    let p = plan(
        &lt,
        &Observed::test().report(true, VerdictResult::Passed),
        at(3),
    );
    assert_eq!(p.status.phase, Phase::Succeeded);
    assert_eq!(p.status.verdict.unwrap().result, VerdictResult::Passed);
    assert_eq!(p.requeue, None);
}

#[test]
fn reporting_with_a_failed_verdict_fails() {
    let lt = LoadTest::test().in_phase(Phase::Reporting, t0());
    let p = plan(
        &lt,
        &Observed::test().report(true, VerdictResult::Failed),
        at(3),
    );
    assert_eq!(p.status.phase, Phase::Failed);
    assert_eq!(
        p.status
            .condition(ConditionType::ThresholdsMet)
            .unwrap()
            .status,
        ConditionStatus::False
    );
}

#[test]
fn reporting_ignores_a_partial_report_and_fails_past_its_timeout() {
    let lt = LoadTest::test().in_phase(Phase::Reporting, t0());
    let obs = Observed::test().report(false, VerdictResult::Incomplete);
    let p = plan(&lt, &obs, at(10));
    assert_eq!(p.status.phase, Phase::Reporting);
    let p = plan(&lt, &obs, at(300));
    assert_eq!(p.status.phase, Phase::Failed);
    assert_eq!(
        p.status.transitions.last().unwrap().reason,
        "ReportTimedOut"
    );
}

// ---- Deletion and cancelling ---------------------------------------------------------------

#[test]
fn deletion_while_running_stops_every_task_writes_an_incomplete_report_then_removes_the_record() {
    let lt = LoadTest::test()
        .agents(2)
        .load_secs(600)
        .running(t0())
        .deleted();
    let p = plan(&lt, &Observed::test().running_slots([0, 1]), at(30));
    assert_eq!(p.status.phase, Phase::Cancelling);
    assert_eq!(stopped(&p), vec!["task-0", "task-1"]);
    assert!(
        !p.commands
            .iter()
            .any(|c| matches!(c, Command::WriteReport { .. }))
    );
    let lt = lt.apply(&p);
    let gone = Observed::test()
        .task(RUN, 0, 0, exited(143, "stopped"))
        .task(RUN, 1, 0, exited(143, "stopped"));
    let p = plan(&lt, &gone, at(35));
    assert_eq!(
        p.commands,
        vec![Command::WriteReport {
            run_id: RUN.into(),
            final_: false
        }]
    );
    let lt = lt.apply(&p);
    let p = plan(&lt, &gone.report(false, VerdictResult::Incomplete), at(40));
    assert_eq!(p.status.phase, Phase::Cancelled);
    assert_eq!(p.commands, vec![Command::RemoveRecord]);
    assert_eq!(p.status.verdict.unwrap().result, VerdictResult::Incomplete);
}

#[test]
fn deletion_while_pending_removes_the_record_at_once() {
    let lt = LoadTest::test().deleted();
    let p = plan(&lt, &Observed::test(), t0());
    assert_eq!(p.status.phase, Phase::Cancelled);
    assert_eq!(p.commands, vec![Command::RemoveRecord]);
}

#[test]
fn cancelling_past_its_timeout_is_cancelled_and_the_record_removed() {
    let lt = LoadTest::test().running(t0()).deleted().with_status(|st| {
        st.phase = Phase::Cancelling;
        st.phase_since = Some(at(10));
    });
    let obs = Observed::test().running_slots([0]);
    let p = plan(&lt, &obs, at(310));
    assert_eq!(p.status.phase, Phase::Cancelled);
    assert_eq!(
        p.status.transitions.last().unwrap().reason,
        "CancelTimedOut"
    );
    assert_eq!(stopped(&p), vec!["task-0"]);
    assert!(
        !p.commands.contains(&Command::RemoveRecord),
        "the finalizer waits for the cancel grace once more"
    );
    let lt = lt.apply(&p);
    let p = plan(&lt, &obs, at(610));
    assert!(p.commands.contains(&Command::RemoveRecord));
}

// ---- Adoption, orphans, duplicates ------------------------------------------------------------

#[test]
fn after_a_restart_live_owned_tasks_are_adopted_and_orphans_reaped() {
    // The status says slots were launching; the tasks are there (the crash lost the answers).
    let lt = LoadTest::test()
        .agents(2)
        .in_phase(Phase::Provisioning, t0())
        .with_status(|st| {
            st.slots = (0..2)
                .map(|s| barrage_crds::status::SlotStatus {
                    slot: s,
                    state: SlotState::Launching,
                    attempt: 1,
                    launched_at: Some(t0()),
                    ..Default::default()
                })
                .collect();
        });
    let obs = Observed::test()
        .running_slots([0, 1])
        .task_id("old-run-task", "demo-1-older", 0, 0, TaskState::Running)
        .task_id("stray", RUN, 7, 0, TaskState::Starting)
        .task_id("untagged", RUN, 0, 0, TaskState::Running);
    let mut obs = obs;
    obs.tasks.last_mut().unwrap().slot = None;
    let p = plan(&lt, &obs, at(5));
    assert_eq!(slot(&p, 0).state, SlotState::Running);
    assert_eq!(slot(&p, 1).task_id.as_deref(), Some("task-1"));
    assert_eq!(stopped(&p), vec!["old-run-task", "stray", "untagged"]);
    assert!(launches(&p).is_empty());
}

#[test]
fn two_live_tasks_for_one_slot_keep_the_recorded_one_and_stop_the_other() {
    let lt = LoadTest::test().load_secs(600).running(t0());
    let obs = Observed::test()
        .task_id("a-duplicate", RUN, 0, 0, TaskState::Running)
        .running_slots([0]);
    let p = plan(&lt, &obs, at(5));
    assert_eq!(stopped(&p), vec!["a-duplicate"]);
    assert_eq!(slot(&p, 0).task_id.as_deref(), Some("task-0"));
}

#[test]
fn tasks_of_records_that_no_longer_exist_are_swept() {
    let obs = Observed::test()
        .running_slots([0])
        .task_id("done", RUN, 1, 0, exited(0, "done"));
    let mut tasks = obs.tasks;
    tasks.push(ObservedTask {
        load_test: "gone".into(),
        ..tasks[0].clone()
    });
    tasks.last_mut().unwrap().task_id = "gone-task".into();
    assert_eq!(
        sweep_orphans(&["demo"], &tasks),
        Some(Command::StopTasks {
            task_ids: vec!["gone-task".into()],
            reason: "barrage: orphan task, its LoadTest no longer exists".into()
        })
    );
    assert_eq!(sweep_orphans(&["demo", "gone"], &tasks), None);
}

// ---- Terminal ------------------------------------------------------------------------------

#[test]
fn a_finished_run_deletes_the_topic_it_created_once_when_cleanup_says_so() {
    let mut lt = LoadTest::test().in_phase(Phase::Succeeded, t0());
    lt.spec.topic.cleanup = TopicCleanup::DeleteIfCreated;
    let obs = Observed {
        topic_created: true,
        ..Observed::test()
    };
    let p = plan(&lt, &obs, at(1));
    assert_eq!(p.commands, vec![Command::DeleteTopic { topic: "t".into() }]);
    assert!(
        p.status.topic_deleted,
        "the intent is written before DeleteTopic runs"
    );
    assert!(!p.status.topic_gone);
    let lt = lt.apply(&p);
    let deleted = Observed {
        topic_delete: Some(TopicDeleteResult::Deleted),
        ..obs.clone()
    };
    let p = plan(&lt, &deleted, at(2));
    assert!(p.commands.is_empty());
    assert!(p.status.topic_gone);
    let lt = lt.apply(&p);
    assert!(
        plan(&lt, &obs, at(3)).commands.is_empty(),
        "gone stays gone"
    );
    // Keep, or a topic someone else created: never deleted.
    let mut keep = LoadTest::test().in_phase(Phase::Succeeded, t0());
    keep.spec.topic.cleanup = TopicCleanup::Keep;
    assert!(plan(&keep, &obs, at(1)).commands.is_empty());
    let mut fresh = LoadTest::test().in_phase(Phase::Succeeded, t0());
    fresh.spec.topic.cleanup = TopicCleanup::DeleteIfCreated;
    assert!(plan(&fresh, &Observed::test(), at(1)).commands.is_empty());
}

#[test]
fn a_terminal_run_is_not_restarted_by_a_spec_edit() {
    let lt = LoadTest::test()
        .in_phase(Phase::Succeeded, t0())
        .generation(5)
        .agents(7);
    let p = plan(&lt, &Observed::test(), at(1));
    assert_eq!(p.status.phase, Phase::Succeeded);
    assert_eq!(p.status.observed_generation, Some(5));
    assert!(p.commands.is_empty());
    assert_eq!(p.requeue, None);
}

#[test]
fn observed_generation_never_goes_backwards_on_a_stale_read() {
    let lt = LoadTest::test()
        .load_secs(600)
        .running(t0())
        .with_status(|st| st.observed_generation = Some(9))
        .generation(8);
    let p = plan(&lt, &Observed::test().running_slots([0]), at(1));
    assert_eq!(p.status.observed_generation, Some(9));
}

#[test]
fn the_same_inputs_give_the_same_plan_and_a_settled_plan_is_a_fixed_point() {
    let lt = LoadTest::test().agents(2).load_secs(600).running(t0());
    let obs = Observed::test().running_slots([0, 1]);
    let a = plan(&lt, &obs, at(10));
    assert_eq!(a, plan(&lt, &obs, at(10)));
    let lt2 = lt.apply(&a);
    let b = plan(&lt2, &obs, at(10));
    assert_eq!(a.status, b.status);
    assert!(b.commands.is_empty());
}

#[test]
fn progress_sums_every_incarnation_of_the_run() {
    let lt = LoadTest::test().agents(2).load_secs(600).running(t0());
    let obs = Observed::test()
        .running_slots([0, 1])
        .agent(RUN, 0, 0, AgentPhase::Running)
        .agent(RUN, 1, 0, AgentPhase::Failed)
        .agent(RUN, 1, 1, AgentPhase::Running)
        .agent("other-run", 0, 0, AgentPhase::Running);
    let p = plan(&lt, &obs, at(10));
    assert_eq!(p.status.progress.sent, 30);
    assert_eq!(p.status.progress.acked, 27);
    assert_eq!(p.status.progress.consumed, 12);
    assert_eq!(p.status.agents.running, 2);
    // The current rate: the live agents' last intervals (40 records each; the failed
    // incarnation and the other run do not count) over the report interval.
    let interval = lt.spec.report.interval.as_std().as_secs_f64();
    assert!(interval > 0.0);
    assert!(
        (p.status.progress.current_rate - 80.0 / interval).abs() < 1e-9,
        "{}",
        p.status.progress.current_rate
    );
}

// ---- Pure helpers ----------------------------------------------------------------------------

#[test]
fn run_ids_fit_started_by_and_differ_for_long_names_with_one_prefix() {
    let a = run_id(&"a".repeat(63), 1, t0());
    let b = run_id(&format!("{}b", "a".repeat(62)), 1, t0());
    assert!(a.len() <= 36 && b.len() <= 36, "{a} {b}");
    assert_ne!(a, b);
    assert_eq!(run_id("demo", 3, t0()), "demo-3-snixeo");
    assert!(run_id("ünïcode!", i64::MAX, DateTime::<Utc>::MAX_UTC).len() <= 36);
    let token = client_token(&a, 999, 99, 6);
    assert!(token.len() <= 64, "{token}");
}

#[test]
fn ready_needed_rounds_the_fraction_up_and_needs_at_least_one() {
    assert_eq!(ready_needed(4, 0.75), 3);
    assert_eq!(ready_needed(3, 0.5), 2);
    assert_eq!(ready_needed(10, 0.0), 1);
    assert_eq!(ready_needed(10, 1.0), 10);
    assert_eq!(ready_needed(10, f64::NAN), 10);
    assert_eq!(ready_needed(0, 1.0), 0);
}

#[test]
fn error_policy_is_terminal_for_spec_errors_and_jittered_capped_for_throttles() {
    assert_eq!(error_policy(Failure::SpecInvalid, 0, 1), Retry::Never);
    assert_eq!(error_policy(Failure::Conflict, 3, 1), Retry::Immediately);
    for attempt in 0..40 {
        for seed in 0..50 {
            let Retry::After(d) = error_policy(Failure::Throttled, attempt, seed) else {
                panic!()
            };
            let full = Duration::from_secs(1)
                .saturating_mul(1 << attempt.min(20))
                .min(Duration::from_secs(60));
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }
    let spread: std::collections::BTreeSet<Duration> = (0..20)
        .map(|s| Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).delay(5, s))
        .collect();
    assert!(spread.len() > 10, "jitter spreads retries: {spread:?}");
    assert_eq!(
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).delay(5, 7),
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).delay(5, 7)
    );
}

#[test]
fn slot_backoff_doubles_from_two_seconds_up_to_a_minute() {
    let v: Vec<u64> = (1..=8).map(|a| slots::slot_backoff(a).as_secs()).collect();
    assert_eq!(v, vec![2, 4, 8, 16, 32, 60, 60, 60]);
}

#[test]
fn stop_requested_while_provisioning_cancels_and_stops_the_launched_agents() {
    let lt = LoadTest::test()
        .agents(2)
        .running(t0())
        .stopped()
        .with_status(|st| {
            st.phase = Phase::Provisioning;
            st.start_at = None;
        });
    let p = plan(&lt, &Observed::test().running_slots([0, 1]), at(3));
    assert_eq!(p.status.phase, Phase::Cancelling);
    assert_eq!(stopped(&p), vec!["task-0", "task-1"]);
    // Nothing was measured: once the tasks are gone it is Cancelled without a report.
    let lt = lt.apply(&p);
    let gone = Observed::test()
        .task(RUN, 0, 0, exited(143, "stopped"))
        .task(RUN, 1, 0, exited(143, "stopped"));
    let p = plan(&lt, &gone, at(5));
    assert_eq!(p.status.phase, Phase::Cancelled);
    assert!(p.commands.is_empty(), "{:?}", p.commands);
}

#[test]
fn every_slot_failing_while_provisioning_fails_the_run() {
    let lt = LoadTest::test()
        .agents(2)
        .max_restarts(0)
        .running(t0())
        .with_status(|st| {
            st.phase = Phase::Provisioning;
            st.start_at = None;
        });
    let obs = Observed::test()
        .task(RUN, 0, 0, exited(1, "CannotPullContainerError"))
        .task(RUN, 1, 0, exited(1, "CannotPullContainerError"));
    let p = plan(&lt, &obs, at(20));
    assert_eq!(p.status.phase, Phase::Failed);
    assert_eq!(p.status.transitions.last().unwrap().reason, "AgentsFailed");
    assert_eq!(p.status.agents.failed, 2);
}

#[test]
fn a_slot_failing_while_provisioning_is_left_out_of_the_ready_quorum() {
    let lt = LoadTest::test()
        .agents(2)
        .max_restarts(0)
        .running(t0())
        .with_status(|st| {
            st.phase = Phase::Provisioning;
            st.start_at = None;
        });
    let obs =
        Observed::test()
            .running_slots([0])
            .ready_slots([0])
            .task(RUN, 1, 0, exited(1, "boom"));
    let p = plan(&lt, &obs, at(20));
    assert_eq!(p.status.phase, Phase::Running);
    assert_eq!(p.status.fleet.unwrap().members, vec![0]);
}

#[test]
fn a_task_in_an_unknown_state_counts_as_alive_and_is_never_launched_over() {
    let lt = LoadTest::test().load_secs(600).running(t0());
    let obs = Observed::test().task(RUN, 0, 0, TaskState::Unknown("HIBERNATING".into()));
    let p = plan(&lt, &obs, at(500));
    assert!(launches(&p).is_empty());
    assert!(stopped(&p).is_empty());
    assert_eq!(slot(&p, 0).state, SlotState::Running);
}

#[test]
fn a_throttled_runtask_backs_off_and_the_next_batch_starts_again_at_one() {
    let lt = LoadTest::test().agents(6);
    let mut obs = Observed::test();
    let mut lt = lt.clone().apply(&plan(&lt, &obs, t0()));
    obs = obs.expect(
        0,
        0,
        1,
        LaunchOutcome::Started {
            task_id: "a".into(),
        },
    );
    let p = plan(&lt, &obs, at(1));
    assert_eq!(launches(&p), vec![(1, 0, 1), (2, 0, 1)]);
    lt = lt.apply(&p);
    for s in [1, 2] {
        obs = obs.expect(
            s,
            0,
            1,
            LaunchOutcome::Failed {
                reason: "ThrottlingException".into(),
                throttled: true,
            },
        );
    }
    let p = plan(&lt, &obs, at(2));
    assert_eq!(
        launches(&p),
        vec![(3, 0, 1)],
        "the window fell back to one launch while the throttled slots wait"
    );
    assert_eq!(p.status.launch_window, 2, "and grows again from there");
    assert!(
        slot(&p, 1)
            .last_error
            .as_deref()
            .unwrap()
            .contains("throttled")
    );
}

// ---- Desired state written again, superseded runs, reruns -------------------------------------

/// The spec with a change no live run can take (records per transaction), at generation 2.
fn changed_beyond_live(lt: LoadTest) -> LoadTest {
    let mut lt = lt.generation(2);
    lt.spec.workload.records.records_per_transaction = 5;
    lt
}

#[test]
fn the_same_desired_state_again_plans_nothing_new() {
    let lt = LoadTest::test().agents(2).running(t0());
    let obs = Observed::test().running_slots([0, 1]).ready_slots([0, 1]);
    let first = plan(&lt, &obs, at(2));
    let lt = lt.apply(&first);
    let again = plan(&lt, &obs, at(2));
    assert_eq!(again.status, first.status);
    assert!(launches(&again).is_empty() && stopped(&again).is_empty());
    assert_eq!(again.status.run_id.as_deref(), Some(RUN));
}

#[test]
fn a_rate_count_or_pause_change_re_targets_a_running_run_without_superseding_it() {
    let lt = LoadTest::test().agents(2).load_secs(600).running(t0());
    let mut changed = lt.clone().agents(3).paused().generation(2);
    changed.spec.load.steps = LoadTest::test().load_secs(900).spec.load.steps;
    let p = plan(&changed, &Observed::test().running_slots([0, 1]), at(30));
    assert_eq!(p.status.phase, Phase::Running);
    assert!(!p.status.superseded);
    assert_eq!(p.status.run_id.as_deref(), Some(RUN));
    let fleet = p.status.fleet.as_ref().unwrap();
    assert_eq!(
        (fleet.epoch, fleet.spec_generation, fleet.paused),
        (2, 2, true)
    );
}

#[test]
fn a_spec_change_beyond_rate_count_pause_and_stop_supersedes_a_running_run() {
    let lt = changed_beyond_live(LoadTest::test().agents(2).load_secs(600).running(t0()));
    let p = plan(&lt, &Observed::test().running_slots([0, 1]), at(30));
    assert_eq!(p.status.phase, Phase::Cancelling);
    assert!(p.status.superseded);
    let last = p.status.transitions.last().unwrap();
    assert_eq!(
        (last.from, last.reason.as_str()),
        (Phase::Running, "Superseded")
    );
    assert_eq!(
        stopped(&p),
        vec!["task-0".to_string(), "task-1".to_string()]
    );
    let c = p.status.condition(ConditionType::Superseded).unwrap();
    assert_eq!(c.status, ConditionStatus::True);
}

#[test]
fn a_superseded_run_starts_the_new_generations_run_once_its_partial_report_is_written() {
    let lt = changed_beyond_live(LoadTest::test().agents(2).load_secs(600).running(t0()));
    let lt = lt
        .clone()
        .apply(&plan(&lt, &Observed::test().running_slots([0, 1]), at(30)));
    // Agents gone, no partial report yet: it is asked for, the run waits.
    let p = plan(&lt, &Observed::test(), at(32));
    assert_eq!(p.status.phase, Phase::Cancelling);
    assert!(p.commands.contains(&Command::WriteReport {
        run_id: RUN.into(),
        final_: false
    }));
    // The partial report is written: the new generation's run starts at once.
    let p = plan(
        &lt,
        &Observed::test().report(false, VerdictResult::Incomplete),
        at(33),
    );
    assert_eq!(p.status.phase, Phase::Provisioning);
    assert!(!p.status.superseded);
    let new_run = p.status.run_id.clone().unwrap();
    assert_ne!(new_run, RUN);
    assert!(new_run.starts_with("demo-2-"), "{new_run}");
    assert_eq!(p.status.run_digest, Some(lt.spec.run_digest()));
    let reasons: Vec<(Phase, Phase, &str)> = p
        .status
        .transitions
        .iter()
        .map(|t| (t.from, t.to, t.reason.as_str()))
        .collect();
    assert_eq!(
        reasons[reasons.len() - 3..],
        [
            (Phase::Running, Phase::Cancelling, "Superseded"),
            (Phase::Cancelling, Phase::Pending, "Superseded"),
            (Phase::Pending, Phase::Provisioning, "Accepted"),
        ]
    );
    assert_eq!(
        launches(&p),
        vec![(0, 0, 1)],
        "slow start: one launch first"
    );
}

#[test]
fn a_superseded_run_moves_on_when_its_cancel_timeout_passes() {
    let lt = changed_beyond_live(LoadTest::test().load_secs(600).running(t0()));
    let lt = lt
        .clone()
        .apply(&plan(&lt, &Observed::test().running_slots([0]), at(30)));
    let stuck = Observed::test().running_slots([0]);
    let late = 30 + i64::try_from(lt.spec.timeouts.cancelling.as_std().as_secs()).unwrap() + 1;
    let p = plan(&lt, &stuck, at(late));
    assert_eq!(p.status.phase, Phase::Provisioning);
    assert_ne!(p.status.run_id.as_deref(), Some(RUN));
    assert!(
        stopped(&p).contains(&"task-0".to_string()),
        "the straggler is still stopped"
    );
}

#[test]
fn a_draining_run_is_not_superseded_it_completes_as_it_was() {
    let lt = changed_beyond_live(
        LoadTest::test()
            .running(t0())
            .with_status(|st| st.phase = Phase::Draining),
    );
    let p = plan(&lt, &Observed::test().running_slots([0]), at(10));
    assert_eq!(p.status.phase, Phase::Draining);
    assert!(!p.status.superseded);
}

#[test]
fn a_run_of_the_earlier_layout_without_a_digest_is_never_superseded() {
    let lt = changed_beyond_live(
        LoadTest::test()
            .load_secs(600)
            .running(t0())
            .with_status(|st| st.run_digest = None),
    );
    let p = plan(&lt, &Observed::test().running_slots([0]), at(30));
    assert_eq!(p.status.phase, Phase::Running);
}

#[test]
fn a_spec_edited_after_the_end_is_observed_but_starts_no_run() {
    let lt = changed_beyond_live(LoadTest::test().in_phase(Phase::Succeeded, at(60)));
    let p = plan(&lt, &Observed::test(), at(100));
    assert_eq!(p.status.phase, Phase::Succeeded);
    assert_eq!(p.status.observed_generation, Some(2));
    assert_eq!(p.status.observed_spec_digest, Some(lt.spec.digest()));
    assert!(launches(&p).is_empty());
}

#[test]
fn a_new_rerun_starts_a_finished_run_again_once() {
    let mut lt = LoadTest::test()
        .in_phase(Phase::Succeeded, at(60))
        .generation(2);
    lt.spec.rerun = 1;
    let p = plan(&lt, &Observed::test(), at(100));
    assert_eq!(p.status.phase, Phase::Provisioning);
    assert_eq!(p.status.rerun, 1);
    assert_ne!(p.status.run_id.as_deref(), Some(RUN));
    let reasons: Vec<&str> = p
        .status
        .transitions
        .iter()
        .map(|t| t.reason.as_str())
        .collect();
    assert_eq!(reasons[reasons.len() - 2..], ["Rerun", "Accepted"]);
    // Once that run ends, the same rerun value does not start another.
    let lt = lt.apply(&p).with_status(|st| st.phase = Phase::Succeeded);
    let p = plan(&lt, &Observed::test(), at(200));
    assert_eq!(p.status.phase, Phase::Succeeded);
}

#[test]
fn a_new_rerun_supersedes_a_running_run() {
    let mut lt = LoadTest::test().load_secs(600).running(t0()).generation(2);
    lt.spec.rerun = 1;
    let p = plan(&lt, &Observed::test().running_slots([0]), at(30));
    assert_eq!(p.status.phase, Phase::Cancelling);
    assert!(p.status.superseded);
}

#[test]
fn a_controller_that_crashed_between_intent_and_deletion_deletes_the_topic_after_restart() {
    let mut lt = LoadTest::test()
        .in_phase(Phase::Succeeded, t0())
        .with_status(|st| {
            st.topic_created = true;
            st.topic_deleted = true;
            st.topic_delete_attempts = 1;
        });
    lt.spec.topic.cleanup = TopicCleanup::DeleteIfCreated;
    // A new controller: no memory of the first call's outcome.
    let p = plan(&lt, &Observed::test(), at(60));
    assert_eq!(p.commands, vec![Command::DeleteTopic { topic: "t".into() }]);
    assert_eq!(p.status.topic_delete_attempts, 2);
}

#[test]
fn a_failing_topic_delete_is_retried_up_to_five_calls_then_left_in_place_with_a_message() {
    let mut lt = LoadTest::test()
        .in_phase(Phase::Succeeded, t0())
        .with_status(|st| st.topic_created = true);
    lt.spec.topic.cleanup = TopicCleanup::DeleteIfCreated;
    let failed = Observed {
        topic_delete: Some(TopicDeleteResult::Failed("broker down".into())),
        ..Observed::test()
    };
    let mut calls = 0;
    for i in 0..8 {
        let p = plan(&lt, &failed, at(10 + i));
        calls += p
            .commands
            .iter()
            .filter(|c| matches!(c, Command::DeleteTopic { .. }))
            .count();
        lt = lt.apply(&p);
    }
    assert_eq!(calls, 5);
    let st = lt.st();
    assert!(!st.topic_gone);
    assert!(
        st.message
            .as_deref()
            .is_some_and(|m| m.contains("left in place")),
        "{:?}",
        st.message
    );
}

// ---- Soak windows ---------------------------------------------------------------------------

/// A soak of 60 one-second intervals in windows of 10, Running since t0, `agents` agents.
fn soak(agents: u32) -> LoadTest {
    use barrage_crds::duration::HumanDuration;
    let mut lt = LoadTest::test().agents(agents).load_secs(60);
    lt.spec.report.interval = HumanDuration::from_secs(1);
    lt.spec.report.window = Some(HumanDuration::from_secs(10));
    lt.running(t0())
}

/// Observed with every slot of `agents` Running and `uploaded` intervals uploaded by each.
fn uploading(agents: u32, uploaded: u32) -> Observed {
    let mut obs = Observed::test().running_slots(0..agents);
    for slot in 0..agents {
        obs = obs.agent(RUN, slot, 0, AgentPhase::Running);
    }
    for a in &mut obs.agents {
        a.intervals_uploaded = uploaded;
    }
    obs
}

fn windows_asked(plan: &Plan) -> Vec<u32> {
    plan.commands
        .iter()
        .filter_map(|c| match c {
            Command::WriteWindows { run_id, windows } if run_id == RUN => Some(windows.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn verdict(index: u32, result: VerdictResult) -> barrage_crds::status::WindowVerdict {
    barrage_crds::status::WindowVerdict {
        index,
        result,
        reasons: Vec::new(),
        records_acked: 100,
        produce_p99_us: 900,
        report: None,
    }
}

#[test]
fn windows_every_agent_uploaded_are_asked_for_in_order_and_the_next_one_wakes_the_core() {
    let p = plan(&soak(2), &uploading(2, 25), at(25));
    assert_eq!(windows_asked(&p), [0, 1], "window 2 ends at 30 s");
    assert_eq!(
        p.requeue,
        Some(Duration::from_secs(10)),
        "window 2 is due 5 s (grace) after its end at 30 s"
    );
    let early = plan(&soak(2), &uploading(2, 9), at(12));
    assert_eq!(
        windows_asked(&early),
        Vec::<u32>::new(),
        "interval 9 not uploaded yet"
    );
    let late = plan(&soak(2), &uploading(2, 9), at(15));
    assert_eq!(
        windows_asked(&late),
        [0],
        "its grace passed: written with its gaps"
    );
}

#[test]
fn a_controller_that_was_down_catches_up_four_windows_per_reconcile() {
    let p = plan(&soak(1), &uploading(1, 60), at(61));
    assert_eq!(windows_asked(&p), [0, 1, 2, 3]);
    let after = soak(1).with_status(|st| {
        st.windows = Some(barrage_crds::status::WindowsStatus {
            reported: 4,
            not_passed: 0,
            latest: Some(verdict(3, VerdictResult::Passed)),
        });
    });
    let p = plan(&after, &uploading(1, 60), at(61));
    assert_eq!(
        windows_asked(&p),
        [4, 5],
        "windows past the run are never due"
    );
}

#[test]
fn written_window_verdicts_are_folded_into_the_status_once_and_not_asked_again() {
    let mut obs = uploading(2, 25);
    obs.windows_written = vec![
        verdict(1, VerdictResult::Failed),
        verdict(0, VerdictResult::Passed),
    ];
    let p = plan(&soak(2), &obs, at(25));
    let w = p.status.windows.clone().unwrap();
    assert_eq!((w.reported, w.not_passed), (2, 1));
    assert_eq!(w.latest.map(|l| l.index), Some(1));
    assert_eq!(windows_asked(&p), Vec::<u32>::new());
    // Reported again (a plan whose status write was lost), they are not counted twice.
    let again = plan(&soak(2).apply(&p), &obs, at(26));
    assert_eq!(again.status.windows, p.status.windows);
}

#[test]
fn ended_runs_still_write_their_last_windows_and_runs_without_a_window_never_do() {
    let ended = soak(1).with_status(|st| st.phase = Phase::Succeeded);
    assert_eq!(
        windows_asked(&plan(&ended, &uploading(1, 60), at(70))),
        [0, 1, 2, 3]
    );
    let plain = LoadTest::test().load_secs(60).running(t0());
    assert!(windows_asked(&plan(&plain, &uploading(1, 60), at(70))).is_empty());
}

#[test]
fn uploaded_through_counts_only_first_incarnations_of_live_agents_of_the_run() {
    use barrage_crds::agent_status::AgentStatus;
    let agent = |run: &str, slot, incarnation, phase, n| {
        let mut a = AgentStatus::new("lt", run, slot, incarnation, t0());
        a.phase = phase;
        a.intervals_uploaded = n;
        a
    };
    assert_eq!(uploaded_through(&[], "r1"), None);
    assert_eq!(
        uploaded_through(
            &[
                agent("r1", 0, 0, AgentPhase::Running, 12),
                agent("r1", 1, 0, AgentPhase::Completed, 15),
                agent("r1", 2, 0, AgentPhase::Failed, 1),
                agent("r0", 0, 0, AgentPhase::Running, 2),
            ],
            "r1"
        ),
        Some(11)
    );
    assert_eq!(
        uploaded_through(
            &[
                agent("r1", 0, 0, AgentPhase::Running, 12),
                agent("r1", 1, 1, AgentPhase::Running, 3),
            ],
            "r1"
        ),
        None,
        "a replacement's count does not start at interval 0"
    );
}
