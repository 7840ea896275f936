//! Issue 8, item 5: no secret value can reach container overrides, tags or the task
//! environment. Canary strings are put where a careless launcher might copy from — the spec's
//! credentials and the controller's own environment — and every request the ECS launcher
//! sends (RunTask, ListTasks, DescribeTasks, StopTask) is captured on the wire, through the
//! real AWS SDK, by a local HTTP endpoint. The canaries must appear in none of them.
//!
//! The controller environment cannot be changed safely inside a running test, so the check runs
//! in a child process of this test binary started with the canaries in its environment.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};

use barrage_crds::env::{BlobsUrl, StoreUrl};
use barrage_crds::loadtest::LoadTest;
use barrage_operator::launch::ecs::{EcsConfig, EcsLauncher, sdk_run_task};
use barrage_operator::launch::process::{PASS_THROUGH, ProcessLauncher, pass_through};
use barrage_operator::launch::{AgentTemplate, LaunchError, LaunchResult, Launcher};
use barrage_operator::reconcile::{Launch, client_token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHILD: &str = "BARRAGE_CANARY_CHILD";
const SPEC_ARN_CANARY: &str = "CANARY-spec-arn-7f3a9c";
const SPEC_USER_CANARY: &str = "CANARY-spec-user-19c2e4";
const ENV_AWS_CANARY: &str = "CANARY-env-aws-secret-55d0e1";
const ENV_KAFKA_CANARY: &str = "CANARY-env-kafka-password-a8b3";
const ENV_TOKEN_CANARY: &str = "CANARY-env-session-token-4c61";
const RUN: &str = "canary-1-t0a1b2";

fn canaries() -> [&'static str; 5] {
    [
        SPEC_ARN_CANARY,
        SPEC_USER_CANARY,
        ENV_AWS_CANARY,
        ENV_KAFKA_CANARY,
        ENV_TOKEN_CANARY,
    ]
}

#[test]
fn no_canary_reaches_any_ecs_request_or_agent_environment() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "canary_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("AWS_ACCESS_KEY_ID", "AKIDCANARYTEST")
        .env("AWS_SECRET_ACCESS_KEY", ENV_AWS_CANARY)
        .env("AWS_SESSION_TOKEN", ENV_TOKEN_CANARY)
        .env("KAFKA_PASSWORD", ENV_KAFKA_CANARY)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("canary_child: checked"),
        "the child really ran the check:\n{stdout}"
    );
    for line in stdout
        .lines()
        .filter_map(|l| l.split_once("canary_child: "))
    {
        println!("canary: {}", line.1);
    }
}

/// The requests the fake endpoint saw, as text (request line, headers, body).
type Captured = Arc<Mutex<Vec<String>>>;

fn answer(target: &str, n: usize) -> String {
    let arn = format!("arn:aws:ecs:us-east-1:123456789012:task/barrage/{n:032x}");
    match target.rsplit('.').next().unwrap_or("") {
        "RunTask" => format!(
            r#"{{"tasks":[{{"taskArn":"{arn}","lastStatus":"PROVISIONING"}}],"failures":[]}}"#
        ),
        "ListTasks" => format!(r#"{{"taskArns":["{arn}"]}}"#),
        "DescribeTasks" => format!(
            r#"{{"tasks":[{{"taskArn":"{arn}","lastStatus":"RUNNING","startedBy":"{RUN}","tags":[{{"key":"barrage:load-test","value":"canary"}},{{"key":"barrage:slot","value":"0"}}]}}],"failures":[]}}"#
        ),
        "StopTask" => r#"{"task":{}}"#.to_string(),
        other => panic!("unexpected ECS operation {other}"),
    }
}

async fn serve(listener: tokio::net::TcpListener, captured: Captured) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let captured = captured.clone();
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
                let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
                buf.drain(..head_end + len);
                let target = header("x-amz-target").unwrap_or_default();
                let n = {
                    let mut c = captured.lock().unwrap();
                    c.push(format!("{head}{body}"));
                    c.len()
                };
                let reply = answer(&target, n);
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: r{n}\r\nContent-Length: {}\r\n\r\n{reply}",
                    reply.len()
                );
                if sock.write_all(resp.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn load_test() -> LoadTest {
    LoadTest::from_yaml(&format!(
        r#"
apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata:
  name: canary
  labels:
    team: streaming
spec:
  kafka:
    bootstrapServers: kafka-1.internal.example.com:9096
    security:
      protocol: SASL_SSL
      sasl:
        mechanism: SCRAM-SHA-512
        username: {SPEC_USER_CANARY}
        credentials:
          secretsManagerArn: arn:aws:secretsmanager:eu-west-1:123456789012:secret:{SPEC_ARN_CANARY}
  topic:
    name: canary
  workload:
    kind: Produce
    records:
      value:
        size: 100
  load:
    steps:
      - constant: {{rate: 100, for: 1m}}
  agents:
    count: 12
    spot: true
"#
    ))
    .unwrap()
}

fn launches(n: u32) -> Vec<Launch> {
    (0..n)
        .map(|slot| Launch {
            slot,
            incarnation: 0,
            attempt: 1,
            client_token: client_token(RUN, slot, 0, 1),
        })
        .collect()
}

fn assert_clean(what: &str, text: &str) {
    for c in canaries() {
        assert!(!text.contains(c), "{what} carries the canary {c}:\n{text}");
    }
}

#[tokio::test]
async fn canary_child() {
    if std::env::var(CHILD).as_deref() != Ok("1") {
        return; // Only meaningful with the canaries in the environment (see the test above).
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let captured: Captured = Arc::default();
    tokio::spawn(serve(listener, captured.clone()));

    // The SDK reads its credentials from this environment, canaries included, as a controller
    // would; it signs with them but must never send them.
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .load()
        .await;
    let client = aws_sdk_ecs::Client::new(&conf);
    let config = EcsConfig {
        cluster: "barrage".into(),
        task_definition: "barrage-agent".into(),
        container_name: "agent".into(),
        subnets: vec!["subnet-0abc".into()],
        security_groups: vec!["sg-0abc".into()],
        assign_public_ip: false,
        enable_ecs_managed_tags: true,
        propagate_task_definition_tags: true,
        owner: Some("dynamodb://barrage".into()),
    };
    let launcher = EcsLauncher::new(client.clone(), config);
    let lt = load_test();
    let store = StoreUrl::DynamoDb {
        table: "barrage".into(),
    };
    let blobs = BlobsUrl::S3 {
        bucket: "barrage-blobs".into(),
        prefix: String::new(),
    };
    let template = AgentTemplate::for_load_test(&lt, store.clone(), blobs.clone());
    let ls = launches(lt.spec.agents.count);

    // 1. The requests as built, and the SDK input built from them.
    for l in &ls {
        let req = launcher
            .run_task_request("canary", RUN, l, &template)
            .unwrap();
        assert_clean("the RunTask request", &format!("{req:?}"));
        let input = sdk_run_task(&client, &req).unwrap();
        // The SDK redacts the environment in its Debug output, so this sees the tags and the
        // rest; the environment itself is checked on the wire below.
        let text = format!("{:?}", input.as_input());
        assert_clean("the SDK RunTask input", &text);
        assert!(text.contains("barrage:slot"), "{text}");
    }

    // 2. Everything on the wire.
    let out = launcher
        .run_agents("canary", RUN, &ls, &template)
        .await
        .unwrap();
    assert_eq!(out.len(), 12);
    assert!(
        out.iter()
            .all(|s| matches!(s.result, LaunchResult::Started { .. })),
        "{out:?}"
    );
    let listed = launcher.list_agents(Some("canary")).await.unwrap();
    assert_eq!(listed.len(), 1);
    launcher
        .stop_agent(&listed[0].task_id, "barrage: canary stop")
        .await
        .unwrap();
    let wire = captured.lock().unwrap().clone();
    // 12 RunTask, 2 ListTasks (RUNNING, STOPPED), 1 DescribeTasks, 1 StopTask.
    assert_eq!(wire.len(), 16, "every call was captured");
    let run_tasks: Vec<&String> = wire.iter().filter(|r| r.contains(".RunTask")).collect();
    assert_eq!(run_tasks.len(), 12);
    for r in &wire {
        // The controller's own session token authenticates its own call, in this one header
        // (the secret key only signs and is never sent); every other byte must be clean.
        let without_auth: String = r
            .split("\r\n")
            .filter(|l| !l.to_ascii_lowercase().starts_with("x-amz-security-token:"))
            .collect::<Vec<_>>()
            .join("\r\n");
        assert_clean("a request on the wire", &without_auth);
    }
    for r in &run_tasks {
        assert!(r.contains("\"BARRAGE_SLOT\""), "overrides captured: {r}");
        assert!(r.contains("barrage:slot"), "tags captured: {r}");
        assert!(r.contains("FARGATE_SPOT"), "spot from the spec: {r}");
    }

    // 3. The process launcher's full agent environment.
    let dir = std::env::temp_dir().join(format!("barrage-canary-{}", uuid::Uuid::new_v4()));
    let local = ProcessLauncher::new("/bin/true", pass_through(PASS_THROUGH), &dir).unwrap();
    for l in &ls {
        let env = local.process_env("canary", RUN, l, &template).unwrap();
        assert_clean("the agent process environment", &format!("{env:?}"));
    }
    let _ = std::fs::remove_dir_all(&dir);

    // 4. The guard is live: a secret copied into a tag by mistake stops the launch before any
    // call is made, whether it came from the spec or from the controller's environment.
    let spec_arn =
        format!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:{SPEC_ARN_CANARY}");
    for leaked in [
        spec_arn.as_str(),
        SPEC_USER_CANARY,
        ENV_KAFKA_CANARY,
        ENV_AWS_CANARY,
        ENV_TOKEN_CANARY,
    ] {
        let mut bad = template.clone();
        bad.labels.insert("oops".into(), format!("x-{leaked}-y"));
        let err = launcher
            .run_agents("canary", RUN, &ls, &bad)
            .await
            .unwrap_err();
        assert!(matches!(err, LaunchError::SecretLeak { .. }), "{err}");
        assert_clean("the error message", &err.to_string());
    }
    assert_eq!(
        captured.lock().unwrap().len(),
        16,
        "nothing sent after a refusal"
    );
    println!(
        "canary_child: checked {} requests on the wire and {} built requests; {} canaries absent",
        wire.len(),
        ls.len(),
        canaries().len()
    );
}
