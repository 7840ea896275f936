//! The CloudFormation stack deployed, and the controller run on what it gives (issue 18.2,
//! first part): infra/barrage.yaml is created in the AWS emulator's CloudFormation
//! (tests/python/deploy_stack.py, with two changes for moto's gaps that it documents), the
//! controller runs here with the ECS launcher and exactly the environment the stack's
//! controller task definition sets (only the endpoint and the metrics address differ), a
//! LoadTest is applied, and each RunTask it makes is read back from the emulator's ECS and
//! checked against the stack: the agent task definition and container, the stack's subnets
//! and security group, and an environment (task definition plus overrides) that the agent's
//! own contract parser accepts for this run and slot, pointing at the stack's table and bucket.
//! (No agent runs: the emulator starts no containers.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use barrage_crds::env::Assignment;
use barrage_system_tests::fault::FaultProxy;
use barrage_system_tests::operator::{rt, text};
use barrage_system_tests::spec::Spec;
use barrage_system_tests::{aws_endpoint, binary, root, run_bounded, unique};

/// What the deploy script printed.
struct Stack {
    status: String,
    resources: usize,
    outputs: BTreeMap<String, String>,
}

fn deploy(name: &str) -> Stack {
    let python =
        std::env::var("BARRAGE_AWS_PYTHON").expect("BARRAGE_AWS_PYTHON (scripts/services.sh env)");
    let out = run_bounded(
        Command::new(python)
            .arg(root().join("tests/python/deploy_stack.py"))
            .arg(root().join("infra/barrage.yaml"))
            .arg(name),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "deploy: {}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    Stack {
        status: v["status"].as_str().unwrap_or("").to_string(),
        resources: v["resources"].as_object().map_or(0, |r| r.len()),
        outputs: v["outputs"]
            .as_object()
            .expect("outputs")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect(),
    }
}

/// The environment of the first container of task definition `arn`.
fn task_definition_env(ecs: &aws_sdk_ecs::Client, arn: &str) -> BTreeMap<String, String> {
    rt().block_on(async {
        let td = ecs
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .expect("DescribeTaskDefinition");
        let container = &td
            .task_definition()
            .expect("a task definition")
            .container_definitions()[0];
        container
            .environment()
            .iter()
            .map(|kv| {
                (
                    kv.name().unwrap_or("").to_string(),
                    kv.value().unwrap_or("").to_string(),
                )
            })
            .collect()
    })
}

fn ecs_client() -> aws_sdk_ecs::Client {
    rt().block_on(async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        aws_sdk_ecs::Client::new(&sdk)
    })
}

/// The controller, with the environment of the stack's controller task definition.
fn start_controller(
    env: &BTreeMap<String, String>,
    endpoint: &str,
    log: &std::path::Path,
) -> Child {
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = Command::new(binary("barrage"));
    cmd.args(["controller", "--resync", "3s", "--lease-duration", "6s"])
        .envs(env)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("BARRAGE_METRICS_ADDR", "off")
        .env("BARRAGE_LOG_FORMAT", "compact")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    cmd.spawn().expect("the controller starts")
}

/// The tasks the controller started for `run_prefix` (startedBy), described, once `n` exist.
fn wait_tasks(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    n: usize,
    limit: Duration,
) -> Vec<aws_sdk_ecs::types::Task> {
    let deadline = Instant::now() + limit;
    loop {
        let tasks = rt().block_on(async {
            let arns = ecs
                .list_tasks()
                .cluster(cluster)
                .send()
                .await
                .expect("ListTasks")
                .task_arns()
                .to_vec();
            if arns.is_empty() {
                return Vec::new();
            }
            ecs.describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(arns))
                .send()
                .await
                .expect("DescribeTasks")
                .tasks()
                .to_vec()
        });
        let agents: Vec<_> = tasks
            .into_iter()
            .filter(|t| t.started_by().is_some_and(|s| !s.is_empty()))
            .collect();
        if agents.len() >= n || Instant::now() > deadline {
            return agents;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_stack_deploys_and_the_controller_on_its_environment_launches_agents_as_it_defines_them() {
    let (Some(endpoint), Some(bootstrap)) = (aws_endpoint(), barrage_system_tests::kafka()) else {
        return;
    };
    let name = unique("barrage-stack").replace('_', "-");
    let stack = deploy(&name);
    println!(
        "stack: {name} {} with {} resources, {} outputs",
        stack.status,
        stack.resources,
        stack.outputs.len()
    );
    assert_eq!(stack.status, "CREATE_COMPLETE");
    let out = |k: &str| {
        stack
            .outputs
            .get(k)
            .cloned()
            .unwrap_or_else(|| panic!("output {k}"))
    };
    let ecs = ecs_client();
    let controller_td = rt().block_on(async {
        ecs.list_task_definitions()
            .family_prefix(format!("{name}-controller"))
            .send()
            .await
            .expect("ListTaskDefinitions")
            .task_definition_arns()
            .first()
            .cloned()
            .expect("the controller's task definition")
    });
    let controller_env = task_definition_env(&ecs, &controller_td);
    let agent_static = task_definition_env(&ecs, &out("AgentTaskDefinition"));
    println!("stack: controller environment {controller_env:?}");
    println!("stack: agent task definition environment {agent_static:?}");

    let dir = std::env::temp_dir().join(unique("barrage-stack"));
    std::fs::create_dir_all(&dir).unwrap();
    // The controller's calls go through a proxy that logs them: the RunTask requests as sent.
    let proxy = FaultProxy::start(&endpoint);
    let mut controller =
        start_controller(&controller_env, &proxy.url(), &dir.join("controller.log"));
    let lt = unique("e2e-stack");
    let spec = Spec::new(&lt, &lt, &bootstrap)
        .existing_topic()
        .agents(2)
        .interval(10)
        .yaml();
    let file = dir.join("lt.yaml");
    std::fs::write(&file, spec).unwrap();
    let mut apply = Command::new(binary("barrage"));
    apply
        .args(["apply", "-f", file.to_str().unwrap()])
        .env("BARRAGE_STORE", &controller_env["BARRAGE_STORE"])
        .env("BARRAGE_BLOBS", &controller_env["BARRAGE_BLOBS"]);
    let applied = run_bounded(&mut apply, Duration::from_secs(30));
    let tasks = wait_tasks(&ecs, &out("ClusterArn"), 2, Duration::from_secs(60));
    let _ = controller.kill();
    let _ = controller.wait();
    let log = std::fs::read_to_string(dir.join("controller.log")).unwrap_or_default();
    assert!(applied.status.success(), "{}", text(&applied));
    assert_eq!(tasks.len(), 2, "two agent tasks\n{log}");

    let subnets: Vec<String> = out("Subnets").split(',').map(String::from).collect();
    let mut slots = Vec::new();
    for task in &tasks {
        assert_eq!(
            task.task_definition_arn(),
            Some(out("AgentTaskDefinition").as_str())
        );
        let overrides = &task.overrides().expect("overrides").container_overrides()[0];
        assert_eq!(overrides.name(), Some(out("AgentContainerName").as_str()));
        let mut env = agent_static.clone();
        env.extend(overrides.environment().iter().map(|kv| {
            (
                kv.name().unwrap_or("").to_string(),
                kv.value().unwrap_or("").to_string(),
            )
        }));
        let assignment = Assignment::from_lookup(|k| env.get(k).cloned())
            .unwrap_or_else(|e| panic!("the agent would not start: {e}\n{env:?}"));
        assert_eq!(assignment.load_test, lt);
        assert_eq!(
            env["BARRAGE_STORE"], controller_env["BARRAGE_STORE"],
            "the same table"
        );
        assert_eq!(
            env["BARRAGE_BLOBS"], controller_env["BARRAGE_BLOBS"],
            "the same bucket"
        );
        assert_eq!(
            env["BARRAGE_STORE"],
            format!("dynamodb://{}", out("TableName"))
        );
        assert_eq!(env["BARRAGE_BLOBS"], format!("s3://{}", out("BucketName")));
        slots.push(assignment.slot);
        println!(
            "stack: task {} slot {} incarnation {} startedBy {:?} launchType {:?}",
            task.task_arn().unwrap_or(""),
            assignment.slot,
            assignment.incarnation,
            task.started_by(),
            task.launch_type()
        );
    }
    slots.sort_unstable();
    assert_eq!(slots, vec![0, 1], "one task per slot");
    // The requests as sent (the emulator keeps no network configuration of a task).
    let run_tasks: Vec<serde_json::Value> = proxy
        .log()
        .iter()
        .filter(|e| e.target.ends_with(".RunTask") && e.status == 200)
        .map(|e| serde_json::from_str(&e.request).expect("a JSON request"))
        .collect();
    assert_eq!(run_tasks.len(), 2, "one RunTask per slot");
    for req in &run_tasks {
        let vpc = &req["networkConfiguration"]["awsvpcConfiguration"];
        println!(
            "stack: RunTask taskDefinition {} cluster {} subnets {} securityGroups {} assignPublicIp {} launchType {} capacityProviderStrategy {} clientToken {}",
            req["taskDefinition"],
            req["cluster"],
            vpc["subnets"],
            vpc["securityGroups"],
            vpc["assignPublicIp"],
            req["launchType"],
            req["capacityProviderStrategy"],
            req["clientToken"]
        );
        assert_eq!(req["taskDefinition"], out("AgentTaskDefinition"));
        assert_eq!(vpc["subnets"], serde_json::json!(subnets));
        assert_eq!(
            vpc["securityGroups"],
            serde_json::json!([out("SecurityGroup")])
        );
        assert_eq!(vpc["assignPublicIp"], out("AssignPublicIp"));
        assert!(
            req["clientToken"].as_str().is_some_and(|t| !t.is_empty()),
            "idempotent RunTask"
        );
    }
}
