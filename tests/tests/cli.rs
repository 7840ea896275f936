//! The contract's command-line acceptance: `barrage validate` and `barrage schema`.

use std::time::Duration;

use barrage_system_tests::{barrage, root, temp_file};

#[test]
fn every_example_validates() {
    let dir = root().join("crds/examples");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("crds/examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 6, "the examples are there: {files:?}");
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = barrage(&args, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout.matches(": ok").count(), files.len());
}

#[test]
fn a_file_with_several_mistakes_prints_every_one_with_its_path_and_exits_2() {
    let bad = temp_file(
        "several.yaml",
        r#"apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {name: Bad_Name}
spec:
  kafka:
    bootstrapServers: ""
    security:
      protocol: SASL_SSL
      sasl: {mechanism: SCRAM-SHA-512, username: u, password: hunter2}
  topic: {name: t}
  workload: {kind: Produce, records: {value: {size: 0}}}
  load:
    steps:
      - constant: {rate: 100, for: 10s}
      - constant: {rate: -5, for: 10s}
  agents: {count: 0}
  thresholds: ["produce.p99 < fast"]
"#,
    );
    let out = barrage(
        &["validate", bad.to_str().expect("utf-8")],
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert_eq!(out.status.code(), Some(2));
    for path in [
        "metadata.name",
        "spec.kafka.bootstrapServers",
        "spec.kafka.security.sasl.password",
        "spec.load.steps[1].constant.rate",
        "spec.agents.count",
        "spec.thresholds[0]",
    ] {
        assert!(
            stdout.contains(path),
            "missing a problem at {path}:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("must be greater than 0 (got -5)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("secretsManagerArn"),
        "the inline secret message says how to reference it:\n{stdout}"
    );
}

#[test]
fn barrage_schema_prints_the_checked_in_schema() {
    let out = barrage(&["schema"], Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0));
    let checked_in = std::fs::read_to_string(root().join("crds/loadtest.schema.json"))
        .expect("crds/loadtest.schema.json");
    assert_eq!(String::from_utf8_lossy(&out.stdout), checked_in);
}
