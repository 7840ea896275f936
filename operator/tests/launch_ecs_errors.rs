//! How the SDK adapter classifies ECS errors, through the real AWS SDK against a local HTTP
//! endpoint that answers with scripted ECS error responses (the emulator cannot be made to
//! throttle): throttles are retryable and counted, "task not found" on StopTask is success,
//! 5xx is transient, access denied is final.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use barrage_crds::env::{BlobsUrl, StoreUrl};
use barrage_operator::launch::ecs::{EcsConfig, EcsLauncher};
use barrage_operator::launch::{AgentTemplate, LaunchError, LaunchResult, Launcher};
use barrage_operator::reconcile::{Launch, client_token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Scripted answers: (HTTP status, body), served in order.
type Script = Arc<Mutex<VecDeque<(u16, String)>>>;

async fn serve(listener: tokio::net::TcpListener, script: Script, seen: Arc<Mutex<Vec<String>>>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let script = script.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    let mut chunk = [0u8; 8192];
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case(name)
                            .then(|| v.trim().to_string())
                    })
                };
                let len: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
                while buf.len() < head_end + len {
                    let mut chunk = [0u8; 8192];
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                buf.drain(..head_end + len);
                seen.lock()
                    .unwrap()
                    .push(header("x-amz-target").unwrap_or_default());
                let (status, body) = script
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or((500, "{}".to_string()));
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: r\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if sock.write_all(resp.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

struct Env {
    launcher: EcsLauncher,
    script: Script,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn env() -> Env {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let script: Script = Arc::default();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    tokio::spawn(serve(listener, script.clone(), seen.clone()));
    let conf = aws_sdk_ecs::Config::builder()
        .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
        .region(aws_sdk_ecs::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "AKIDTEST", "test", None, None, "test",
        ))
        // One answer per call: the launcher's own classification is what is tested.
        .retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_ecs::Client::from_conf(conf);
    let launcher = EcsLauncher::new(
        client,
        EcsConfig {
            cluster: "barrage".into(),
            task_definition: "barrage-agent".into(),
            container_name: "agent".into(),
            subnets: vec![],
            security_groups: vec![],
            assign_public_ip: false,
            enable_ecs_managed_tags: false,
            propagate_task_definition_tags: false,
            owner: None,
        },
    );
    Env {
        launcher,
        script,
        seen,
    }
}

fn error(kind: &str, message: &str) -> String {
    format!(r#"{{"__type":"{kind}","message":"{message}"}}"#)
}

fn launches(n: u32) -> Vec<Launch> {
    (0..n)
        .map(|slot| Launch {
            slot,
            incarnation: 0,
            attempt: 1,
            client_token: client_token("err-1-abc", slot, 0, 1),
        })
        .collect()
}

fn template() -> AgentTemplate {
    AgentTemplate::new(
        StoreUrl::DynamoDb {
            table: "barrage".into(),
        },
        BlobsUrl::S3 {
            bucket: "barrage-blobs".into(),
            prefix: String::new(),
        },
    )
}

#[tokio::test]
async fn run_task_throttles_and_failures_come_back_per_slot() {
    let e = env().await;
    e.script.lock().unwrap().extend([
        (
            200,
            r#"{"tasks":[{"taskArn":"arn:aws:ecs:us-east-1:1:task/barrage/a"}],"failures":[]}"#
                .to_string(),
        ),
        (400, error("ThrottlingException", "Rate exceeded")),
        (400, error("ClientException", "Rate exceeded")),
        (
            200,
            r#"{"tasks":[],"failures":[{"reason":"Capacity is unavailable at this time. Please try again later or in a different availability zone"}]}"#
                .to_string(),
        ),
        (400, error("InvalidParameterException", "No Container Instances were found in your cluster.")),
    ]);
    // One slot at a time so the scripted answers meet the slots in order.
    let mut results = Vec::new();
    for l in launches(5) {
        let out = e
            .launcher
            .run_agents("demo", "err-1-abc", &[l], &template())
            .await
            .unwrap();
        results.push(out[0].result.clone());
    }
    assert_eq!(
        results[0],
        LaunchResult::Started {
            task_id: "arn:aws:ecs:us-east-1:1:task/barrage/a".into()
        }
    );
    assert!(
        matches!(&results[1], LaunchResult::Failed { retryable: true, reason } if reason.contains("ThrottlingException")),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(&results[2], LaunchResult::Failed { retryable: true, reason } if reason.contains("Rate exceeded")),
        "{:?}",
        results[2]
    );
    assert!(
        matches!(&results[3], LaunchResult::Failed { retryable: true, reason } if reason.contains("Capacity is unavailable")),
        "{:?}",
        results[3]
    );
    assert!(
        matches!(
            &results[4],
            LaunchResult::Failed {
                retryable: false,
                ..
            }
        ),
        "{:?}",
        results[4]
    );
    assert_eq!(e.launcher.stats().snapshot()[0], ("RunTask", 5, 2, 1));
    assert!(
        e.seen
            .lock()
            .unwrap()
            .iter()
            .all(|t| t.ends_with(".RunTask"))
    );
}

#[tokio::test]
async fn stop_task_not_found_is_success_and_other_errors_keep_their_kind() {
    let e = env().await;
    e.script.lock().unwrap().extend([
        (
            400,
            error(
                "InvalidParameterException",
                "The referenced task was not found.",
            ),
        ),
        (500, error("ServerException", "Service unavailable")),
        (400, error("AccessDeniedException", "not authorized")),
        (400, error("ThrottlingException", "Rate exceeded")),
    ]);
    e.launcher.stop_agent("arn:gone", "x").await.unwrap();
    let transient = e.launcher.stop_agent("arn:1", "x").await.unwrap_err();
    assert!(
        matches!(
            transient,
            LaunchError::Api {
                transient: true,
                ..
            }
        ),
        "{transient}"
    );
    assert!(transient.is_retryable());
    let denied = e.launcher.stop_agent("arn:1", "x").await.unwrap_err();
    assert!(!denied.is_retryable(), "{denied}");
    assert!(
        denied.to_string().contains("AccessDeniedException"),
        "{denied}"
    );
    let throttled = e.launcher.stop_agent("arn:1", "x").await.unwrap_err();
    assert!(
        matches!(throttled, LaunchError::Throttled { op: "StopTask", .. }),
        "{throttled}"
    );
    assert_eq!(e.launcher.stats().snapshot()[3], ("StopTask", 4, 1, 3));
}

#[tokio::test]
async fn a_throttled_listing_is_a_retryable_error() {
    let e = env().await;
    e.script
        .lock()
        .unwrap()
        .push_back((400, error("ThrottlingException", "Rate exceeded")));
    let err = e.launcher.list_agents(None).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(matches!(
        err,
        LaunchError::Throttled {
            op: "ListTasks",
            ..
        }
    ));
    // A listing that works: two pages of RUNNING tasks, none STOPPED, described with tags.
    e.script.lock().unwrap().extend([
        (
            200,
            r#"{"taskArns":["arn:t1"],"nextToken":"p2"}"#.to_string(),
        ),
        (200, r#"{"taskArns":["arn:t2"]}"#.to_string()),
        (200, r#"{"taskArns":[]}"#.to_string()),
        (
            200,
            r#"{"tasks":[
                {"taskArn":"arn:t1","lastStatus":"RUNNING","startedBy":"err-1-abc",
                 "tags":[{"key":"barrage:load-test","value":"demo"},{"key":"barrage:slot","value":"0"},{"key":"barrage:incarnation","value":"1"}]},
                {"taskArn":"arn:t2","lastStatus":"STOPPED","stopCode":"EssentialContainerExited","stoppedReason":"Essential container in task exited",
                 "startedBy":"err-1-abc","containers":[{"name":"agent","exitCode":137}],
                 "tags":[{"key":"barrage:load-test","value":"demo"},{"key":"barrage:slot","value":"1"},{"key":"barrage:incarnation","value":"0"}]}
            ],"failures":[]}"#
                .to_string(),
        ),
    ]);
    let tasks = e.launcher.list_agents(Some("demo")).await.unwrap();
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[0].task_id, "arn:t1");
    assert_eq!(tasks[0].state, barrage_operator::launch::TaskState::Running);
    assert_eq!(tasks[0].incarnation, Some(1));
    assert_eq!(
        tasks[1].state,
        barrage_operator::launch::TaskState::Exited {
            ok: false,
            code: Some(137),
            reason: Some("EssentialContainerExited: Essential container in task exited".into())
        }
    );
    let seen = e.seen.lock().unwrap().clone();
    let ops: Vec<&str> = seen
        .iter()
        .map(|t| t.rsplit('.').next().unwrap_or(""))
        .collect();
    assert_eq!(
        ops,
        vec![
            "ListTasks",
            "ListTasks",
            "ListTasks",
            "ListTasks",
            "DescribeTasks"
        ]
    );
}
