//! The process launcher with stand-in programs: exits are reported the way ECS reports them,
//! the environment is exactly the contract plus the pass-through list, stop is SIGTERM then
//! SIGKILL after the grace period, and kill_agent crashes an agent on purpose.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use barrage_crds::env::{AGENT_ENV, BlobsUrl, StoreUrl};
use barrage_operator::launch::process::ProcessLauncher;
use barrage_operator::launch::{AgentTemplate, LaunchResult, Launcher, TaskState};
use barrage_operator::reconcile::{Launch, client_token};

const RUN: &str = "local-1-t0a1b2";

fn dir() -> PathBuf {
    std::env::temp_dir().join(format!("barrage-launch-{}", uuid::Uuid::new_v4()))
}

fn template(dir: &std::path::Path) -> AgentTemplate {
    AgentTemplate::new(
        StoreUrl::Dir {
            path: dir.join("store"),
        },
        BlobsUrl::Dir {
            path: dir.join("blobs"),
        },
    )
}

fn launch(slot: u32, incarnation: u32) -> Launch {
    Launch {
        slot,
        incarnation,
        attempt: 1,
        client_token: client_token(RUN, slot, incarnation, 1),
    }
}

fn program(binary: &str, args: &[&str], dir: &std::path::Path) -> ProcessLauncher {
    ProcessLauncher::new(binary, vec![], dir.join("logs"))
        .unwrap()
        .with_args(args.iter().map(|s| s.to_string()).collect())
}

async fn start(l: &ProcessLauncher, dir: &std::path::Path, slot: u32) -> String {
    let out = l
        .run_agents("demo", RUN, &[launch(slot, 0)], &template(dir))
        .await
        .unwrap();
    match &out[0].result {
        LaunchResult::Started { task_id } => task_id.clone(),
        other => panic!("not started: {other:?}"),
    }
}

async fn wait_exit(l: &ProcessLauncher, task_id: &str) -> TaskState {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let tasks = l.list_agents(Some("demo")).await.unwrap();
        let t = tasks.iter().find(|t| t.task_id == task_id).unwrap();
        if !t.state.is_live() {
            return t.state.clone();
        }
        assert!(Instant::now() < deadline, "{task_id} never exited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_exit_code_is_reported_like_ecs_reports_it() {
    let d = dir();
    let l = program("/bin/sh", &["-c", "echo started; exit 3"], &d);
    let id = start(&l, &d, 2).await;
    assert_eq!(id, format!("local-{RUN}-2-0"));
    let state = wait_exit(&l, &id).await;
    assert_eq!(
        state,
        TaskState::Exited {
            ok: false,
            code: Some(3),
            reason: Some("EssentialContainerExited".into())
        }
    );
    let listed = l.list_agents(None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].slot,
            listed[0].incarnation,
            listed[0].started_by.as_str()
        ),
        (Some(2), Some(0), RUN)
    );
    let log = std::fs::read_to_string(l.log_path(&id)).unwrap();
    assert_eq!(log, "started\n");

    let ok = program("/bin/sh", &["-c", "exit 0"], &d);
    let id = start(&ok, &d, 0).await;
    assert!(matches!(
        wait_exit(&ok, &id).await,
        TaskState::Exited {
            ok: true,
            code: Some(0),
            ..
        }
    ));
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn the_agent_gets_exactly_the_contract_plus_the_pass_through_list() {
    let d = dir();
    let base = vec![
        (
            "AWS_ENDPOINT_URL".to_string(),
            "http://127.0.0.1:5000".to_string(),
        ),
        ("AWS_REGION".to_string(), "us-east-1".to_string()),
        // A contract variable in the pass-through list is dropped: the assignment sets it.
        ("BARRAGE_SLOT".to_string(), "999".to_string()),
    ];
    let l = ProcessLauncher::new("/usr/bin/env", base, d.join("logs")).unwrap();
    let t = template(&d);
    let out = l
        .run_agents("demo", RUN, &[launch(4, 1)], &t)
        .await
        .unwrap();
    let LaunchResult::Started { task_id } = &out[0].result else {
        panic!("{out:?}")
    };
    assert_eq!(
        wait_exit(&l, task_id).await,
        TaskState::Exited {
            ok: true,
            code: Some(0),
            reason: Some("EssentialContainerExited".into())
        }
    );
    let printed = std::fs::read_to_string(l.log_path(task_id)).unwrap();
    let env: BTreeMap<&str, &str> = printed.lines().filter_map(|l| l.split_once('=')).collect();
    let mut expected: BTreeMap<String, String> = t
        .assignment("demo", RUN, &launch(4, 1))
        .to_env()
        .into_iter()
        .collect();
    // The one local difference: a free loopback port for each agent's metrics.
    expected.insert("BARRAGE_METRICS_ADDR".into(), "127.0.0.1:0".into());
    expected.insert("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:5000".into());
    expected.insert("AWS_REGION".into(), "us-east-1".into());
    let mut names: Vec<&str> = env.keys().copied().collect();
    names.retain(|n| *n != "PATH" && *n != "HOME");
    let expected_names: Vec<&str> = expected.keys().map(String::as_str).collect();
    assert_eq!(names, expected_names, "nothing missing, nothing extra");
    for (k, v) in &expected {
        assert_eq!(env.get(k.as_str()), Some(&v.as_str()), "{k}");
    }
    assert_eq!(env.get("BARRAGE_SLOT"), Some(&"4"));
    assert!(env.contains_key("PATH") && env.contains_key("HOME"));
    assert_eq!(
        AGENT_ENV
            .iter()
            .filter(|v| env.contains_key(v.name))
            .count(),
        AGENT_ENV.len()
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn stop_sends_sigterm_and_is_idempotent() {
    let d = dir();
    let l = program("/bin/sleep", &["60"], &d);
    let id = start(&l, &d, 0).await;
    assert!(l.pid(&id).is_some());
    let listed = l.list_agents(Some("demo")).await.unwrap();
    assert_eq!(listed[0].state, TaskState::Running);
    let t0 = Instant::now();
    l.stop_agent(&id, "barrage: run cancelled").await.unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "SIGTERM ends sleep at once"
    );
    assert_eq!(
        wait_exit(&l, &id).await,
        TaskState::Exited {
            ok: false,
            code: Some(143),
            reason: Some("UserInitiated: barrage: run cancelled".into())
        }
    );
    l.stop_agent(&id, "again").await.unwrap();
    l.stop_agent("local-unknown-0-0", "never started")
        .await
        .unwrap();
    assert_eq!(l.pid(&id), None);
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn an_agent_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let d = dir();
    let l = program(
        "/bin/sh",
        &["-c", "trap '' TERM; while :; do sleep 0.1; done"],
        &d,
    )
    .with_grace(Duration::from_millis(400));
    let id = start(&l, &d, 0).await;
    // Give the shell time to install its trap.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    l.stop_agent(&id, "drain timed out").await.unwrap();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(
        wait_exit(&l, &id).await,
        TaskState::Exited {
            ok: false,
            code: Some(137),
            reason: Some("UserInitiated: drain timed out".into())
        }
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn kill_agent_crashes_it_like_an_oom_kill() {
    let d = dir();
    let l = program("/bin/sleep", &["60"], &d);
    let id = start(&l, &d, 1).await;
    l.kill_agent(&id).unwrap();
    assert_eq!(
        wait_exit(&l, &id).await,
        TaskState::Exited {
            ok: false,
            code: Some(137),
            reason: Some("killed by signal 9".into())
        }
    );
    l.kill_agent(&id).unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_retried_launch_finds_its_process_and_a_replacement_is_a_new_task() {
    let d = dir();
    let l = program("/bin/sleep", &["60"], &d);
    let t = template(&d);
    let first = l
        .run_agents("demo", RUN, &[launch(0, 0)], &t)
        .await
        .unwrap();
    let again = l
        .run_agents("demo", RUN, &[launch(0, 0)], &t)
        .await
        .unwrap();
    assert_eq!(first, again, "same client token, same task");
    let next = l
        .run_agents("demo", RUN, &[launch(0, 1)], &t)
        .await
        .unwrap();
    let ids: Vec<String> = l
        .list_agents(Some("demo"))
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.task_id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(
        matches!(&next[0].result, LaunchResult::Started { task_id } if task_id == &format!("local-{RUN}-0-1"))
    );
    for id in ids {
        l.kill_agent(&id).unwrap();
    }
    assert!(l.list_agents(Some("other")).await.unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_missing_binary_fails_the_slot_not_the_call() {
    let d = dir();
    let l = program("/nonexistent/barrage-agent", &[], &d);
    let out = l
        .run_agents("demo", RUN, &[launch(0, 0)], &template(&d))
        .await
        .unwrap();
    assert!(
        matches!(&out[0].result, LaunchResult::Failed { retryable: false, reason } if reason.contains("could not start the agent")),
        "{out:?}"
    );
    assert!(l.list_agents(None).await.unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_restarted_launcher_adopts_the_agents_of_the_one_before() {
    let d = dir();
    let script = "case $BARRAGE_SLOT in 0) exec sleep 60;; 1) exit 5;; 2) sleep 0.4; exit 0;; esac";
    let first = program("/bin/sh", &["-c", script], &d);
    let t = template(&d);
    let out = first
        .run_agents("demo", RUN, &[launch(0, 0), launch(1, 0)], &t)
        .await
        .unwrap();
    let ids: Vec<String> = out
        .iter()
        .map(|s| match &s.result {
            LaunchResult::Started { task_id } => task_id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        wait_exit(&first, &ids[1]).await,
        TaskState::Exited {
            ok: false,
            code: Some(5),
            reason: Some("EssentialContainerExited".into())
        }
    );
    // Slot 2 ends while no launcher watches it.
    first
        .run_agents("demo", RUN, &[launch(2, 0)], &t)
        .await
        .unwrap();
    let pid0 = first.pid(&ids[0]).unwrap();
    drop(first); // The controller goes away; its agents do not.
    tokio::time::sleep(Duration::from_millis(800)).await;

    let second = program("/bin/sh", &["-c", script], &d);
    let listed: BTreeMap<u32, TaskState> = second
        .list_agents(Some("demo"))
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.slot.unwrap(), t.state))
        .collect();
    assert_eq!(listed[&0], TaskState::Running);
    assert_eq!(second.pid(&ids[0]), Some(pid0));
    assert!(matches!(
        listed[&1],
        TaskState::Exited { code: Some(5), .. }
    ));
    assert_eq!(
        listed[&2],
        TaskState::Exited {
            ok: false,
            code: None,
            reason: Some("exited while no controller watched it; exit status unknown".into())
        }
    );
    // A retried launch still finds its task, and the adopted agent can be stopped.
    let again = second
        .run_agents("demo", RUN, &[launch(0, 0)], &t)
        .await
        .unwrap();
    assert_eq!(again, out[..1].to_vec());
    second.stop_agent(&ids[0], "barrage: orphan").await.unwrap();
    assert_eq!(
        wait_exit(&second, &ids[0]).await,
        TaskState::Exited {
            ok: false,
            code: None,
            reason: Some("UserInitiated: barrage: orphan".into())
        }
    );
    let _ = std::fs::remove_dir_all(&d);
}
