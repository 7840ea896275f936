//! The ECS launcher against the AWS emulator (moto server): RunTask with overrides, tags and
//! startedBy; ListTasks + DescribeTasks parsed into task states; StopTask with a reason.
//!
//! Needs `AWS_ENDPOINT_URL` (`eval "$(scripts/services.sh env)"`); without it the tests print
//! "skipped", or fail when `BARRAGE_REQUIRE_SERVICES=1`.
//!
//! moto 5.2.x differs from AWS here, and the fake in `launch_ecs_fake.rs` covers the AWS side:
//! it ignores `clientToken`; it starts tasks RUNNING and moves each one state further on every
//! DescribeTasks (RUNNING → DEACTIVATING → STOPPING → DEPROVISIONING → STOPPED); it has no
//! `stopCode`; StopTask of an unknown task is a 500. The transition setting is global to the
//! emulator, so these tests do not pin it: they follow the progression instead.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{Read, Write};

use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode};
use barrage_crds::env::{BARRAGE_INCARNATION, BARRAGE_SLOT, BlobsUrl, StoreUrl};
use barrage_operator::launch::ecs::{EcsConfig, EcsLauncher};
use barrage_operator::launch::{
    AgentTemplate, LaunchResult, Launcher, TAG_INCARNATION, TAG_LOAD_TEST, TAG_RUN, TAG_SLOT,
    TaskState,
};
use barrage_operator::reconcile::{Launch, client_token};

fn endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let msg = "no AWS emulator: AWS_ENDPOINT_URL is not set (run `scripts/services.sh up` and `eval \"$(scripts/services.sh env)\"`)";
            if std::env::var("BARRAGE_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{msg}; BARRAGE_REQUIRE_SERVICES=1 requires the real services");
            }
            println!("skipped: {msg}");
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// The default VPC's first subnet, through the emulator's EC2 query API (no EC2 SDK here).
fn default_subnet(endpoint: &str) -> String {
    let rest = endpoint.strip_prefix("http://").expect("an http endpoint");
    let host = rest.trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the emulator");
    write!(
        stream,
        "GET /?Action=DescribeSubnets&Version=2016-11-15&Filter.1.Name=default-for-az&Filter.1.Value.1=true HTTP/1.0\r\nHost: {host}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\r\n"
    )
    .expect("request");
    let mut body = String::new();
    stream.read_to_string(&mut body).expect("response");
    let start = body.find("<subnetId>").expect("a default subnet") + "<subnetId>".len();
    let end = body[start..].find("</subnetId>").expect("closing tag") + start;
    body[start..end].to_string()
}

struct Setup {
    client: aws_sdk_ecs::Client,
    config: EcsConfig,
}

async fn setup(endpoint: &str) -> Setup {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .load()
        .await;
    let client = aws_sdk_ecs::Client::new(&conf);
    let cluster = unique("barrage-launch");
    client
        .create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .expect("CreateCluster");
    let family = unique("barrage-agent");
    client
        .register_task_definition()
        .family(&family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("1024")
        .memory("2048")
        .container_definitions(
            ContainerDefinition::builder()
                .name("agent")
                .image("barrage-agent:test")
                .memory(2048)
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let subnet = tokio::task::spawn_blocking({
        let e = endpoint.to_string();
        move || default_subnet(&e)
    })
    .await
    .expect("subnet lookup");
    Setup {
        client,
        config: EcsConfig {
            cluster,
            task_definition: family,
            container_name: "agent".into(),
            subnets: vec![subnet],
            security_groups: vec![],
            assign_public_ip: false,
            enable_ecs_managed_tags: false,
            propagate_task_definition_tags: false,
            owner: Some("dynamodb://barrage-it".into()),
        },
    }
}

fn template() -> AgentTemplate {
    let mut t = AgentTemplate::new(
        StoreUrl::DynamoDb {
            table: "barrage".into(),
        },
        BlobsUrl::S3 {
            bucket: "barrage-blobs".into(),
            prefix: String::new(),
        },
    );
    t.cpu = Some(1024);
    t.memory = Some(2048);
    t
}

fn launches(run: &str, slots: impl IntoIterator<Item = u32>, incarnation: u32) -> Vec<Launch> {
    slots
        .into_iter()
        .map(|slot| Launch {
            slot,
            incarnation,
            attempt: 1,
            client_token: client_token(run, slot, incarnation, 1),
        })
        .collect()
}

fn started(out: &[barrage_operator::launch::SlotLaunch]) -> Vec<String> {
    out.iter()
        .map(|s| match &s.result {
            LaunchResult::Started { task_id } => task_id.clone(),
            other => panic!("slot {} not started: {other:?}", s.launch.slot),
        })
        .collect()
}

#[tokio::test]
async fn run_task_sends_overrides_tags_and_started_by_and_the_listing_reads_them_back() {
    let Some(endpoint) = endpoint() else { return };
    let s = setup(&endpoint).await;
    let launcher = EcsLauncher::new(s.client.clone(), s.config.clone());
    let run = unique("moto-1");
    let out = launcher
        .run_agents("demo", &run, &launches(&run, 0..3, 2), &template())
        .await
        .unwrap();
    let ids = started(&out);
    assert_eq!(ids.len(), 3);

    // What the emulator stored, read with the SDK directly.
    let described = s
        .client
        .describe_tasks()
        .cluster(&s.config.cluster)
        .set_tasks(Some(ids.clone()))
        .include(aws_sdk_ecs::types::TaskField::Tags)
        .send()
        .await
        .expect("DescribeTasks");
    assert_eq!(described.tasks().len(), 3);
    for task in described.tasks() {
        assert_eq!(task.started_by(), Some(run.as_str()));
        let tags: Vec<(&str, &str)> = task
            .tags()
            .iter()
            .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
            .collect();
        let slot = tags
            .iter()
            .find(|(k, _)| *k == TAG_SLOT)
            .map(|(_, v)| v.to_string())
            .expect("slot tag");
        assert!(tags.contains(&(TAG_LOAD_TEST, "demo")), "{tags:?}");
        assert!(tags.contains(&(TAG_RUN, run.as_str())), "{tags:?}");
        assert!(tags.contains(&(TAG_INCARNATION, "2")), "{tags:?}");
        let overrides = task.overrides().expect("overrides");
        assert_eq!(overrides.cpu(), Some("1024"));
        let env: Vec<(&str, &str)> = overrides.container_overrides()[0]
            .environment()
            .iter()
            .map(|kv| (kv.name().unwrap_or(""), kv.value().unwrap_or("")))
            .collect();
        assert!(env.contains(&(BARRAGE_SLOT, slot.as_str())), "{env:?}");
        assert!(env.contains(&(BARRAGE_INCARNATION, "2")), "{env:?}");
    }

    // The launcher's own listing: ownership from the tags, one state per task.
    let listed = launcher.list_agents(Some("demo")).await.unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let mut slots: Vec<u32> = listed.iter().map(|t| t.slot.expect("slot")).collect();
    slots.sort();
    assert_eq!(slots, vec![0, 1, 2]);
    for t in &listed {
        assert_eq!(t.started_by, run);
        assert_eq!(t.incarnation, Some(2));
        assert!(ids.contains(&t.task_id));
        assert!(t.state.is_live(), "{:?}", t.state);
    }
    assert!(
        launcher
            .list_agents(Some("not-this-one"))
            .await
            .unwrap()
            .is_empty(),
        "filtered by load test"
    );
    let stats = launcher.stats().snapshot();
    assert_eq!(stats[0].1, 3, "three RunTask calls");
    println!("moto ecs stats: {stats:?}");
}

#[tokio::test]
async fn the_emulators_task_progression_parses_into_running_stopping_and_exited() {
    let Some(endpoint) = endpoint() else { return };
    let s = setup(&endpoint).await;
    let launcher = EcsLauncher::new(s.client.clone(), s.config.clone());
    let run = unique("moto-2");
    let ids = started(
        &launcher
            .run_agents("progress", &run, &launches(&run, [0], 0), &template())
            .await
            .unwrap(),
    );
    // Every DescribeTasks moves a moto task one state on; each must parse.
    let mut seen = Vec::new();
    for _ in 0..8 {
        let listed = launcher.list_agents(Some("progress")).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].task_id, ids[0]);
        seen.push(listed[0].state.clone());
        if !listed[0].state.is_live() {
            break;
        }
    }
    assert!(
        seen.iter().all(|s| matches!(
            s,
            TaskState::Running | TaskState::Stopping | TaskState::Exited { .. }
        )),
        "{seen:?}"
    );
    assert!(seen.contains(&TaskState::Stopping), "{seen:?}");
    let last = seen.last().unwrap();
    assert!(
        matches!(
            last,
            TaskState::Exited {
                code: Some(0),
                ok: true,
                ..
            }
        ),
        "moto's containers exit 0: {seen:?}"
    );
    println!("moto task states seen: {seen:?}");
}

#[tokio::test]
async fn stop_task_records_the_reason_and_the_task_reads_as_exited() {
    let Some(endpoint) = endpoint() else { return };
    let s = setup(&endpoint).await;
    let launcher = EcsLauncher::new(s.client.clone(), s.config.clone());
    let run = unique("moto-3");
    let mut t = template();
    t.spot = true;
    let ids = started(
        &launcher
            .run_agents("stopper", &run, &launches(&run, 0..2, 0), &t)
            .await
            .unwrap(),
    );
    launcher
        .stop_agent(&ids[0], "barrage: run cancelled")
        .await
        .unwrap();
    // Stopping a stopped task again is a success (ECS and moto agree on this one).
    launcher
        .stop_agent(&ids[0], "barrage: run cancelled")
        .await
        .unwrap();
    let listed = launcher.list_agents(Some("stopper")).await.unwrap();
    let stopped = listed.iter().find(|t| t.task_id == ids[0]).expect("listed");
    match &stopped.state {
        TaskState::Exited { reason, .. } => {
            assert_eq!(reason.as_deref(), Some("barrage: run cancelled"))
        }
        other => panic!("not exited: {other:?}"),
    }
    let raw = s
        .client
        .describe_tasks()
        .cluster(&s.config.cluster)
        .tasks(&ids[0])
        .send()
        .await
        .expect("DescribeTasks");
    assert_eq!(
        raw.tasks()[0].stopped_reason(),
        Some("barrage: run cancelled")
    );
    assert_eq!(
        raw.tasks()[0].capacity_provider_name(),
        Some("FARGATE_SPOT"),
        "spot went through the capacity provider strategy"
    );
    let (_, calls, throttles, errors) = launcher.stats().snapshot()[3];
    assert_eq!((calls, throttles, errors), (2, 0, 0));
}
