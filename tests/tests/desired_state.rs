//! Desired state written again, from a client that is not Barrage's: boto3 (the emulator's own
//! Python) puts the LoadTest item exactly in the shape docs/DEPLOY.md gives, against the
//! operator on moto and the real broker.
//!
//! The promise: the same desired state put again (while running, after the end, any number of
//! times) changes nothing; a spec changed beyond rate, count, pause and stop supersedes the
//! live run (partial report, then the new generation's run); running again is explicit
//! (`barrage rerun`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use barrage_system_tests::operator::{Operator, report_json, text};
use barrage_system_tests::spec::Spec;
use barrage_system_tests::{aws_endpoint, kafka, root, run_bounded, unique};

/// Puts the item of docs/DEPLOY.md's `put-item-example` with its name and `doc` replaced:
/// the shape (exactly `pk`, `sk`, `doc`, all strings) is checked on the way.
const PUT_AS_DOCUMENTED: &str = r#"
import json, re, sys, boto3
table, name, doc_file, deploy_md = sys.argv[1:5]
text = open(deploy_md).read()
block = re.search(r"<!-- put-item-example -->\s*```json\n(.*?)```", text, re.S).group(1)
item = json.loads(block)
assert sorted(item) == ["doc", "pk", "sk"], sorted(item)
assert all(list(v) == ["S"] for v in item.values()), item
assert item["sk"]["S"] == "spec" and item["pk"]["S"].startswith("lt#")
assert "name: " + item["pk"]["S"][3:] in item["doc"]["S"], "the example's name is its key's"
item["pk"]["S"] = "lt#" + name
item["doc"]["S"] = open(doc_file).read()
boto3.client("dynamodb").put_item(TableName=table, Item=item)
print("put", name)
"#;

/// Prints the status item (`sk = status`) as JSON, or `null`.
const GET_STATUS_ITEM: &str = r#"
import json, sys, boto3
table, name = sys.argv[1:3]
got = boto3.client("dynamodb").get_item(
    TableName=table, Key={"pk": {"S": "lt#" + name}, "sk": {"S": "status"}}, ConsistentRead=True)
print(json.dumps(got.get("Item")))
"#;

fn python(script: &str, args: &[&str]) -> String {
    let python = std::env::var("BARRAGE_AWS_PYTHON").expect(
        "BARRAGE_AWS_PYTHON names the emulator's Python (with boto3): eval \"$(scripts/services.sh env)\"",
    );
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(script).args(args);
    let out = run_bounded(&mut cmd, Duration::from_secs(60));
    assert!(out.status.success(), "boto3 failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn put_as_documented(op: &Operator, name: &str, doc: &str) {
    let file = op.dir.join(format!("{}.yaml", unique("doc")));
    std::fs::write(&file, doc).expect("doc file");
    let deploy_md = root().join("docs/DEPLOY.md");
    python(
        PUT_AS_DOCUMENTED,
        &[
            &op.table,
            name,
            &file.to_string_lossy(),
            &deploy_md.to_string_lossy(),
        ],
    );
}

fn status_item(op: &Operator, name: &str) -> serde_json::Value {
    serde_json::from_str(python(GET_STATUS_ITEM, &[&op.table, name]).trim()).expect("JSON")
}

fn spec(name: &str, topic: &str, bootstrap: &str, size: u32, secs: u32, rerun: u64) -> String {
    Spec::new(name, topic, bootstrap)
        .partitions(3)
        .size(size)
        .secs(secs)
        .agents(2)
        .rerun(rerun)
        .yaml()
}

/// Waits until `pred` holds for the record's status; that status.
fn wait_status(
    op: &Operator,
    name: &str,
    limit: Duration,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let st = op.get(name)["status"].clone();
        if pred(&st) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "never {what}: {st}\n{}",
            op.controller_log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn reasons(st: &serde_json::Value) -> Vec<String> {
    st["transitions"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| format!("{}>{}:{}", t["from"], t["to"], t["reason"]).replace('"', ""))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_same_desired_state_put_again_by_boto3_changes_nothing_and_a_changed_spec_supersedes_the_run()
{
    let (Some(bootstrap), Some(_)) = (kafka(), aws_endpoint()) else {
        return;
    };
    let op = Operator::start("desired");
    let name = unique("e2e-desired");
    let topic = unique("barrage-e2e-desired");
    let first = spec(&name, &topic, &bootstrap, 100, 14, 0);
    put_as_documented(&op, &name, &first);
    let running = wait_status(&op, &name, Duration::from_secs(90), "Running", |st| {
        st["phase"] == "Running" && st["agents"]["running"] == 2
    });
    let run = running["runId"].as_str().expect("run id").to_string();
    let generation = running["observedGeneration"].clone();
    let agents = op.agents();
    assert_eq!(agents.len(), 2, "{agents:?}");

    // The same desired state, five times while running: as YAML and once reformatted as JSON.
    let as_json =
        serde_json::to_string(&serde_yaml::from_str::<serde_json::Value>(&first).expect("yaml"))
            .expect("json");
    for i in 0..5 {
        put_as_documented(&op, &name, if i == 2 { &as_json } else { &first });
        std::thread::sleep(Duration::from_millis(700));
    }
    let after = op.get(&name)["status"].clone();
    let item = status_item(&op, &name);
    assert_eq!(after["runId"], run.as_str(), "no new run: {after}");
    assert_eq!(after["observedGeneration"], generation);
    assert!(
        !reasons(&after).iter().any(|r| r.contains("Superseded")),
        "{after}"
    );
    assert_eq!(
        op.agents(),
        agents,
        "the same agent processes, none stopped"
    );
    assert!(
        item["status"]["S"]
            .as_str()
            .is_some_and(|s| s.contains(&run)),
        "the status item is intact: {item}"
    );

    // A change no live run can take (the value size): the run is superseded.
    put_as_documented(&op, &name, &spec(&name, &topic, &bootstrap, 200, 4, 0));
    let next = wait_status(&op, &name, Duration::from_secs(90), "a new run", |st| {
        st["runId"].as_str().is_some_and(|r| r != run)
    });
    let second = next["runId"].as_str().expect("run id").to_string();
    let partial = report_json(&op, &name, &run);
    // `Incomplete`, or `Invalid` when this machine's two cores also made the sender fall
    // behind (Invalid takes precedence; its reasons come first): nothing else.
    let verdict = &partial["verdict"]["result"];
    let why: Vec<&str> = partial["verdict"]["reasons"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let generator_only = why
        .iter()
        .take_while(|r| r.starts_with("generator "))
        .count();
    assert!(
        verdict == "Incomplete" || (verdict == "Invalid" && generator_only > 0),
        "the superseded run's partial report: {verdict} {why:?}"
    );
    let first = why.get(generator_only).copied().unwrap_or_default();
    assert!(
        first.starts_with("superseded"),
        "the report says why: {why:?}"
    );
    let ended = op.wait_terminal(&name, Duration::from_secs(120));
    assert!(
        barrage_system_tests::operator::succeeded_or_lag_only(&ended),
        "{ended}\n{}",
        op.controller_log()
    );
    assert_eq!(ended["runId"], second.as_str());
    let history = reasons(&ended);
    for want in [
        "Running>Cancelling:Superseded",
        "Cancelling>Pending:Superseded",
        "Pending>Provisioning:Accepted",
    ] {
        assert!(history.iter().any(|r| r == want), "{want} in {history:?}");
    }
    let launched = op.launched().len();

    // After the end, the same desired state again: nothing starts.
    for _ in 0..3 {
        put_as_documented(&op, &name, &spec(&name, &topic, &bootstrap, 200, 4, 0));
    }
    std::thread::sleep(Duration::from_secs(8));
    let still = op.get(&name)["status"].clone();
    assert!(barrage_system_tests::operator::succeeded_or_lag_only(
        &still
    ));
    assert_eq!(still["runId"], second.as_str());
    let launched_after_end = op.launched().len() - launched;
    assert_eq!(launched_after_end, 0, "no agent launched");

    // Running again is explicit.
    let out = op.barrage(
        &["rerun", &name, "--wait", "--timeout", "120s"],
        Duration::from_secs(150),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out),
        op.controller_log()
    );
    let third = op.get(&name)["status"].clone();
    assert!(barrage_system_tests::operator::succeeded_or_lag_only(
        &third
    ));
    assert_ne!(third["runId"], second.as_str());
    assert_eq!(third["rerun"], 1);
    println!(
        "desired state: 5 identical puts mid-run kept run {run} and its {} agents; a changed value size superseded it \
         (partial report verdict {verdict}) by {second}; 3 identical puts after the end launched {} agents; \
         rerun started {}; {launched} agent tasks launched before the rerun",
        agents.len(),
        launched_after_end,
        third["runId"]
    );
}
