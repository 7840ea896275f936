//! The foundation's system tests: `barrage run` against the real broker, the AWS SDK against
//! the emulator, and a clear, bounded error for an unreachable broker.

use std::time::{Duration, Instant};

use barrage_system_tests::{
    aws_endpoint, barrage, count_records, kafka, root, summary_count, temp_file, unique,
};

/// The quickstart, on a topic of its own so the count read back is this run's alone.
fn quickstart_on(topic: &str, bootstrap: &str) -> String {
    let text = std::fs::read_to_string(root().join("crds/examples/quickstart.yaml"))
        .expect("the quickstart example exists");
    text.replace("barrage-quickstart", topic)
        .replace("127.0.0.1:9092", bootstrap)
}

#[test]
fn barrage_run_quickstart_acks_exactly_the_planned_records_and_they_are_in_the_topic() {
    let Some(bootstrap) = kafka() else { return };
    let topic = unique("barrage-it-quickstart");
    let spec = temp_file("quickstart.yaml", &quickstart_on(&topic, &bootstrap));
    let out_dir = spec.with_file_name("out");
    let out = barrage(
        &[
            "run",
            spec.to_str().expect("utf-8 path"),
            "--out",
            out_dir.to_str().expect("utf-8 path"),
        ],
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "barrage run failed:\n{stdout}\n{stderr}"
    );
    // 1000 records/s for 10 s.
    let expected = 10_000;
    assert_eq!(summary_count(&stdout, "records planned"), expected);
    assert_eq!(summary_count(&stdout, "records acked"), expected);
    assert_eq!(summary_count(&stdout, "records failed"), 0);
    let in_topic = count_records(&bootstrap, &topic, expected, Duration::from_secs(60));
    println!(
        "quickstart: planned {expected}, acked {expected}, read back from {topic}: {in_topic}"
    );
    assert_eq!(in_topic, expected, "records read back from the topic");
    // Interval logs are in the output folder.
    let logs = std::fs::read_dir(out_dir.join("agents").join("0000-00"))
        .expect("interval logs folder")
        .count();
    assert!(
        logs >= 10,
        "expected an interval log per second, found {logs}"
    );
}

#[test]
fn an_unreachable_broker_gives_one_clear_error_within_the_bound() {
    // Nothing listens on port 1: the broker is unreachable, wherever the services are.
    let spec = temp_file(
        "unreachable.yaml",
        &quickstart_on(&unique("barrage-it-unreachable"), "127.0.0.1:1"),
    );
    let started = Instant::now();
    let out = barrage(
        &[
            "run",
            spec.to_str().expect("utf-8 path"),
            "--connect-timeout",
            "3s",
        ],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "unreachable broker: exit {:?} after {:.1}s: {}",
        out.status.code(),
        started.elapsed().as_secs_f64(),
        stderr.trim()
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "exit code 3 = run error; stderr:\n{stderr}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line:\n{stderr}");
    assert!(
        errors[0].contains("cannot reach Kafka at 127.0.0.1:1"),
        "the error names the broker: {}",
        errors[0]
    );
    assert!(!stderr.contains("panicked"), "no panic:\n{stderr}");
}

#[test]
fn an_invalid_file_is_rejected_with_every_problem_and_exit_2() {
    let spec = temp_file(
        "invalid.yaml",
        "apiVersion: barrage.dev/v1alpha1\nkind: LoadTest\nmetadata: {name: bad}\nspec:\n  kafka: {bootstrapServers: ''}\n  topic: {name: t}\n  workload: {kind: Produce}\n  load:\n    steps: [{constant: {rate: -5, for: 10s}}]\n  agents: {count: 0}\n",
    );
    let out = barrage(
        &["run", spec.to_str().expect("utf-8 path")],
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("spec.load.steps[0].constant.rate"),
        "{stderr}"
    );
    assert!(stderr.contains("spec.agents.count"), "{stderr}");
    assert!(stderr.contains("spec.kafka.bootstrapServers"), "{stderr}");
}

async fn aws_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .load()
        .await
}

#[tokio::test]
async fn the_aws_sdk_talks_to_the_emulator_dynamodb() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
        ScalarAttributeType,
    };
    let Some(endpoint) = aws_endpoint() else {
        return;
    };
    let db = aws_sdk_dynamodb::Client::new(&aws_config(&endpoint).await);
    let table = unique("barrage-it");
    db.create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("CreateTable");
    db.put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("lt#a".into()))
        .item("version", AttributeValue::N("1".into()))
        .send()
        .await
        .expect("PutItem");
    // A conditional update on the right version succeeds…
    db.update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("lt#a".into()))
        .update_expression("SET version = :next")
        .condition_expression("version = :seen")
        .expression_attribute_values(":seen", AttributeValue::N("1".into()))
        .expression_attribute_values(":next", AttributeValue::N("2".into()))
        .send()
        .await
        .expect("conditional UpdateItem on the current version");
    // …and on a stale version fails with ConditionalCheckFailed.
    let stale = db
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("lt#a".into()))
        .update_expression("SET version = :next")
        .condition_expression("version = :seen")
        .expression_attribute_values(":seen", AttributeValue::N("1".into()))
        .expression_attribute_values(":next", AttributeValue::N("3".into()))
        .send()
        .await;
    let err = stale.expect_err("a stale conditional update must fail");
    assert!(
        err.into_service_error()
            .is_conditional_check_failed_exception(),
        "ConditionalCheckFailed expected"
    );
    let got = db
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("lt#a".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem");
    let version = got
        .item()
        .and_then(|i| i.get("version"))
        .and_then(|v| v.as_n().ok())
        .cloned();
    assert_eq!(version.as_deref(), Some("2"));
    println!("dynamodb: table {table} created, conditional update honoured, version 2 read back");
}

#[tokio::test]
async fn the_aws_sdk_talks_to_the_emulator_s3() {
    let Some(endpoint) = aws_endpoint() else {
        return;
    };
    let conf = aws_sdk_s3::config::Builder::from(&aws_config(&endpoint).await)
        .force_path_style(true)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(conf);
    let bucket = unique("barrage-it");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket");
    for k in ["runs/a/1.hlog", "runs/a/2.hlog", "other/x"] {
        s3.put_object()
            .bucket(&bucket)
            .key(k)
            .body(aws_sdk_s3::primitives::ByteStream::from(
                k.as_bytes().to_vec(),
            ))
            .send()
            .await
            .expect("PutObject");
    }
    let body = s3
        .get_object()
        .bucket(&bucket)
        .key("runs/a/2.hlog")
        .send()
        .await
        .expect("GetObject")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    assert_eq!(&body[..], b"runs/a/2.hlog");
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("runs/")
        .send()
        .await
        .expect("ListObjectsV2");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, vec!["runs/a/1.hlog", "runs/a/2.hlog"]);
    println!("s3: bucket {bucket}, 3 objects put, 1 read back, 2 listed under runs/");
}

#[tokio::test]
async fn the_aws_sdk_talks_to_the_emulator_ecs() {
    use aws_sdk_ecs::types::{
        AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType,
        NetworkConfiguration, NetworkMode,
    };
    let Some(endpoint) = aws_endpoint() else {
        return;
    };
    let conf = aws_config(&endpoint).await;
    let ecs = aws_sdk_ecs::Client::new(&conf);
    let cluster = unique("barrage-it");
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .expect("CreateCluster");
    let family = unique("barrage-agent");
    ecs.register_task_definition()
        .family(&family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("agent")
                .image("barrage-agent:test")
                .memory(512)
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    // moto answers RunTask only for a subnet it knows: the default VPC's.
    let ec2_subnet = default_subnet(&endpoint).await;
    let run = ecs
        .run_task()
        .cluster(&cluster)
        .task_definition(&family)
        .launch_type(LaunchType::Fargate)
        .count(2)
        .started_by("barrage-it")
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .subnets(ec2_subnet)
                        .set_security_groups(Some(vec![]))
                        .assign_public_ip(AssignPublicIp::Disabled)
                        .build()
                        .expect("awsvpc"),
                )
                .build(),
        )
        .send()
        .await
        .expect("RunTask");
    let arns: Vec<String> = run
        .tasks()
        .iter()
        .filter_map(|t| t.task_arn().map(str::to_string))
        .collect();
    assert_eq!(
        arns.len(),
        2,
        "two tasks started, failures: {:?}",
        run.failures()
    );
    let described = ecs
        .describe_tasks()
        .cluster(&cluster)
        .set_tasks(Some(arns.clone()))
        .send()
        .await
        .expect("DescribeTasks");
    assert_eq!(described.tasks().len(), 2);
    assert!(
        described
            .tasks()
            .iter()
            .all(|t| t.started_by() == Some("barrage-it"))
    );
    ecs.stop_task()
        .cluster(&cluster)
        .task(&arns[0])
        .reason("test: stop one agent")
        .send()
        .await
        .expect("StopTask");
    let after = ecs
        .describe_tasks()
        .cluster(&cluster)
        .tasks(&arns[0])
        .send()
        .await
        .expect("DescribeTasks after StopTask");
    let stopped = &after.tasks()[0];
    assert_eq!(stopped.stopped_reason(), Some("test: stop one agent"));
    println!(
        "ecs: cluster {cluster}, 2 tasks run, described, one stopped (last status {:?})",
        stopped.last_status()
    );
}

/// The default VPC's first subnet in the emulator, through its EC2 API (plain query protocol).
async fn default_subnet(endpoint: &str) -> String {
    let url = format!(
        "{endpoint}/?Action=DescribeSubnets&Version=2016-11-15&Filter.1.Name=default-for-az&Filter.1.Value.1=true"
    );
    let body = tokio::task::spawn_blocking(move || http_get(&url))
        .await
        .expect("the request task");
    let start = body
        .find("<subnetId>")
        .expect("a default subnet in the emulator")
        + "<subnetId>".len();
    let end = body[start..].find("</subnetId>").expect("closing tag") + start;
    body[start..end].to_string()
}

/// A minimal HTTP/1.0 GET to the emulator on loopback, signed requests are not needed by it.
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http endpoint");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the emulator");
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\r\n"
    )
    .expect("request");
    let mut body = String::new();
    stream.read_to_string(&mut body).expect("response");
    body
}
