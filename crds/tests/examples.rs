//! Every file in crds/examples is a valid LoadTest, and round-trips through YAML and JSON.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use barrage_crds::loadtest::LoadTest;
use barrage_crds::validate::parse_and_validate;

fn examples() -> Vec<(PathBuf, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_example_validates() {
    let all = examples();
    let names: Vec<String> = all
        .iter()
        .map(|(p, _)| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for wanted in [
        "quickstart",
        "seed-recipe",
        "avro-produce",
        "round-trip",
        "soak-multi-day",
        "msk-iam",
        "sasl-scram",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "missing example {wanted}"
        );
    }
    for (path, text) in &all {
        if let Err(e) = parse_and_validate(text) {
            panic!("{} is invalid:\n{e}", path.display());
        }
    }
}

#[test]
fn every_example_round_trips_through_yaml_and_json() {
    for (path, text) in examples() {
        let lt = LoadTest::from_yaml(&text).unwrap();
        assert_eq!(
            LoadTest::from_yaml(&lt.to_yaml()).unwrap(),
            lt,
            "{}",
            path.display()
        );
        assert_eq!(
            LoadTest::from_json(&lt.to_json()).unwrap(),
            lt,
            "{}",
            path.display()
        );
        assert!(
            parse_and_validate(&lt.to_json()).is_ok(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn quickstart_is_what_the_readme_says() {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart.yaml"),
    )
    .unwrap();
    let lt = parse_and_validate(&text).unwrap();
    assert_eq!(lt.name(), "quickstart");
    assert_eq!(lt.spec.kafka.bootstrap_servers, "127.0.0.1:9092");
    assert_eq!(lt.spec.topic.name, "barrage-quickstart");
    assert_eq!(lt.spec.load.expected_records(), 10_000);
    assert_eq!(lt.spec.agents.count, 1);
    assert_eq!(lt.spec.report.interval.to_string(), "1s");
}

#[test]
fn seed_recipe_maps_users_per_second_times_records_per_transaction() {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/seed-recipe.yaml"),
    )
    .unwrap();
    let lt = parse_and_validate(&text).unwrap();
    let users_per_sec = 50.0;
    let records_per_transaction = lt.spec.workload.records.records_per_transaction;
    assert_eq!(records_per_transaction, 20);
    assert_eq!(
        lt.spec.load.rate_at(std::time::Duration::from_secs(1)),
        users_per_sec * f64::from(records_per_transaction)
    );
    assert_eq!(lt.spec.load.total_duration().as_secs(), 30 * 60);
    assert_eq!(lt.spec.load.effective_max_duration().as_secs(), 40 * 60);
    assert_eq!(lt.spec.agents.count, 10);
}
