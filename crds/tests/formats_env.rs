//! The agent environment contract: parsing, errors that name the variable and the rule,
//! and the round trip through `to_env`.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use barrage_crds::env::{
    AGENT_ENV, Assignment, BlobsUrl, EnvError, LogFormat, StoreUrl, agent_env_markdown,
};
use proptest::prelude::*;

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

const REQUIRED: &[(&str, &str)] = &[
    ("BARRAGE_LOADTEST", "orders-soak"),
    ("BARRAGE_RUN_ID", "r20241125-2040"),
    ("BARRAGE_SLOT", "3"),
    ("BARRAGE_INCARNATION", "1"),
    ("BARRAGE_STORE", "dynamodb://barrage"),
    ("BARRAGE_BLOBS", "s3://barrage-results/team-a/runs"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut vars: Vec<_> = REQUIRED
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .copied()
        .collect();
    vars.extend_from_slice(extra);
    vars
}

fn problems(vars: &[(&str, &str)]) -> Vec<String> {
    Assignment::from_lookup(lookup(vars))
        .unwrap_err()
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn required_variables_with_defaults_for_the_rest() {
    let a = Assignment::from_lookup(lookup(REQUIRED)).unwrap();
    assert_eq!(
        a,
        Assignment {
            load_test: "orders-soak".into(),
            run_id: "r20241125-2040".into(),
            slot: 3,
            incarnation: 1,
            store: StoreUrl::DynamoDb {
                table: "barrage".into()
            },
            blobs: BlobsUrl::S3 {
                bucket: "barrage-results".into(),
                prefix: "team-a/runs".into()
            },
            metrics_addr: Some("0.0.0.0:9464".into()),
            log_format: LogFormat::Json,
            heartbeat: Duration::from_secs(5),
        }
    );
}

#[test]
fn optional_variables_are_read() {
    let a = Assignment::from_lookup(lookup(&with(&[
        ("BARRAGE_METRICS_ADDR", "off"),
        ("BARRAGE_LOG_FORMAT", "compact"),
        ("BARRAGE_HEARTBEAT", "2500ms"),
        ("BARRAGE_STORE", "dir:///var/lib/barrage/store"),
        ("BARRAGE_BLOBS", "memory:"),
    ])))
    .unwrap();
    assert_eq!(a.metrics_addr, None);
    assert_eq!(a.log_format, LogFormat::Compact);
    assert_eq!(a.heartbeat, Duration::from_millis(2500));
    assert_eq!(
        a.store,
        StoreUrl::Dir {
            path: PathBuf::from("/var/lib/barrage/store")
        }
    );
    assert_eq!(a.blobs, BlobsUrl::Memory);
    let a =
        Assignment::from_lookup(lookup(&with(&[("BARRAGE_METRICS_ADDR", "127.0.0.1:0")]))).unwrap();
    assert_eq!(a.metrics_addr.as_deref(), Some("127.0.0.1:0"));
}

#[test]
fn an_empty_environment_names_every_required_variable() {
    let err = Assignment::from_lookup(|_| None).unwrap_err();
    let names: Vec<&str> = err.problems.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "BARRAGE_LOADTEST",
            "BARRAGE_RUN_ID",
            "BARRAGE_SLOT",
            "BARRAGE_INCARNATION",
            "BARRAGE_STORE",
            "BARRAGE_BLOBS"
        ]
    );
    assert!(err.problems.iter().all(|p| p.value.is_none()));
    let text = err.to_string();
    assert!(text.starts_with("invalid agent environment:\n  BARRAGE_LOADTEST: is required and not set: Name of the LoadTest"), "{text}");
    assert_eq!(text.lines().count(), 7);
}

#[test]
fn an_empty_value_counts_as_unset() {
    assert_eq!(
        problems(&with(&[("BARRAGE_SLOT", "")])),
        [
            "BARRAGE_SLOT: is required and not set: The agent's slot, 0-based, below spec.agents.count (0..=9999): its share of the load and its key prefix."
        ]
    );
    let a = Assignment::from_lookup(lookup(&with(&[("BARRAGE_HEARTBEAT", "")]))).unwrap();
    assert_eq!(a.heartbeat, Duration::from_secs(5));
}

#[test]
fn every_invalid_value_is_reported_with_its_rule() {
    let got = problems(&[
        ("BARRAGE_LOADTEST", "Orders/Soak"),
        ("BARRAGE_RUN_ID", "run#1"),
        ("BARRAGE_SLOT", "-1"),
        ("BARRAGE_INCARNATION", "100"),
        ("BARRAGE_STORE", "postgres://db"),
        ("BARRAGE_BLOBS", "s3://B"),
        ("BARRAGE_METRICS_ADDR", "localhost:9464"),
        ("BARRAGE_LOG_FORMAT", "pretty"),
        ("BARRAGE_HEARTBEAT", "10ms"),
    ]);
    assert_eq!(
        got,
        [
            "BARRAGE_LOADTEST: must be 1 to 253 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or digit (got \"Orders/Soak\")",
            "BARRAGE_RUN_ID: must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_' (got \"run#1\")",
            "BARRAGE_SLOT: must be an integer from 0 to 9999 (got \"-1\")",
            "BARRAGE_INCARNATION: must be an integer from 0 to 99 (got \"100\")",
            "BARRAGE_STORE: expected dynamodb://TABLE, dir:///absolute/path or memory: (got \"postgres://db\")",
            "BARRAGE_BLOBS: s3://BUCKET[/PREFIX]: bucket names are 3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit (got \"s3://B\")",
            "BARRAGE_METRICS_ADDR: must be IP:PORT (e.g. 0.0.0.0:9464) or off (got \"localhost:9464\")",
            "BARRAGE_LOG_FORMAT: must be json, text or compact (got \"pretty\")",
            "BARRAGE_HEARTBEAT: must be a duration from 100ms to 10m (e.g. 5s, 2500ms) (got \"10ms\")",
        ]
    );
}

#[test]
fn heartbeat_bounds_and_syntax() {
    for (text, ok) in [
        ("100ms", true),
        ("10m", true),
        ("5", true),
        ("99ms", false),
        ("10m1s", false),
        ("fast", false),
        ("-5s", false),
    ] {
        let r = Assignment::from_lookup(lookup(&with(&[("BARRAGE_HEARTBEAT", text)])));
        assert_eq!(r.is_ok(), ok, "{text}: {r:?}");
    }
}

#[test]
fn the_parser_reads_exactly_the_documented_variables() {
    let asked = RefCell::new(Vec::new());
    let _ = Assignment::from_lookup(|k| {
        asked.borrow_mut().push(k.to_string());
        None
    });
    let documented: Vec<String> = AGENT_ENV.iter().map(|v| v.name.to_string()).collect();
    assert_eq!(asked.into_inner(), documented);
}

#[test]
fn to_env_writes_exactly_the_documented_variables() {
    let a = Assignment::from_lookup(lookup(REQUIRED)).unwrap();
    let names: Vec<String> = a.to_env().into_iter().map(|(k, _)| k).collect();
    let documented: Vec<String> = AGENT_ENV.iter().map(|v| v.name.to_string()).collect();
    assert_eq!(names, documented);
}

#[test]
fn the_contract_carries_no_secrets_and_documents_everything() {
    for var in AGENT_ENV {
        assert!(var.name.starts_with("BARRAGE_"), "{}", var.name);
        for word in ["SECRET", "PASSWORD", "TOKEN", "KEY", "CREDENTIAL"] {
            assert!(!var.name.contains(word), "{}", var.name);
        }
        assert!(var.meaning.len() > 20, "{} is documented", var.name);
    }
    let required: Vec<&str> = AGENT_ENV
        .iter()
        .filter(|v| v.required)
        .map(|v| v.name)
        .collect();
    assert_eq!(
        required,
        REQUIRED.iter().map(|(k, _)| *k).collect::<Vec<_>>()
    );
    let md = agent_env_markdown();
    assert!(md.starts_with("| Variable | Required | Meaning |\n| --- | --- | --- |\n"));
    assert_eq!(md.lines().count(), AGENT_ENV.len() + 2);
    assert!(md.contains("| `BARRAGE_HEARTBEAT` | no | How often"));
}

#[test]
fn store_urls_parse_and_print_back() {
    for (text, url) in [
        (
            "dynamodb://barrage-prod.v1_x",
            StoreUrl::DynamoDb {
                table: "barrage-prod.v1_x".into(),
            },
        ),
        (
            "dir:///tmp/barrage",
            StoreUrl::Dir {
                path: "/tmp/barrage".into(),
            },
        ),
        ("memory:", StoreUrl::Memory),
    ] {
        assert_eq!(text.parse::<StoreUrl>().unwrap(), url);
        assert_eq!(url.to_string(), text);
        let json = serde_json::to_string(&url).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<StoreUrl>(&json).unwrap(), url);
    }
    for (text, msg) in [
        (
            "dynamodb://ab",
            "dynamodb://TABLE: table names are 3 to 255 characters of a-z, A-Z, 0-9, '_', '-' and '.' (got \"dynamodb://ab\")",
        ),
        (
            "dynamodb://a/b/c",
            "dynamodb://TABLE: table names are 3 to 255 characters of a-z, A-Z, 0-9, '_', '-' and '.' (got \"dynamodb://a/b/c\")",
        ),
        (
            "dir://relative/path",
            "dir: needs an absolute path, written dir:///absolute/path (got \"dir://relative/path\")",
        ),
        (
            "memory",
            "expected dynamodb://TABLE, dir:///absolute/path or memory: (got \"memory\")",
        ),
        (
            "s3://bucket",
            "expected dynamodb://TABLE, dir:///absolute/path or memory: (got \"s3://bucket\")",
        ),
        (
            "",
            "expected dynamodb://TABLE, dir:///absolute/path or memory: (got \"\")",
        ),
    ] {
        assert_eq!(text.parse::<StoreUrl>().unwrap_err().to_string(), msg);
    }
    assert!(serde_json::from_str::<StoreUrl>("\"memory\"").is_err());
}

#[test]
fn blobs_urls_parse_and_print_back() {
    for (text, url, canonical) in [
        (
            "s3://barrage-results",
            BlobsUrl::S3 {
                bucket: "barrage-results".into(),
                prefix: String::new(),
            },
            "s3://barrage-results",
        ),
        (
            "s3://barrage-results/",
            BlobsUrl::S3 {
                bucket: "barrage-results".into(),
                prefix: String::new(),
            },
            "s3://barrage-results",
        ),
        (
            "s3://my.bucket-1/team/a/",
            BlobsUrl::S3 {
                bucket: "my.bucket-1".into(),
                prefix: "team/a".into(),
            },
            "s3://my.bucket-1/team/a",
        ),
        (
            "dir:///srv/barrage blobs",
            BlobsUrl::Dir {
                path: "/srv/barrage blobs".into(),
            },
            "dir:///srv/barrage blobs",
        ),
        ("memory:", BlobsUrl::Memory, "memory:"),
    ] {
        assert_eq!(text.parse::<BlobsUrl>().unwrap(), url, "{text}");
        assert_eq!(url.to_string(), canonical);
        assert_eq!(canonical.parse::<BlobsUrl>().unwrap(), url);
        let json = serde_json::to_string(&url).unwrap();
        assert_eq!(serde_json::from_str::<BlobsUrl>(&json).unwrap(), url);
    }
    for text in [
        "s3://",
        "s3://ab",
        "s3://Upper",
        "s3://-bucket",
        "s3://bucket-",
        "s3://a..b",
        "s3://bucket//x",
        "s3://bucket/a/../b",
        "s3://bucket/./b",
        "dir://x",
        "dynamodb://table",
        "file:///tmp",
    ] {
        let err = text.parse::<BlobsUrl>().unwrap_err();
        assert_eq!(err.url, text);
        assert!(!err.rule.is_empty());
    }
    let s3 = "s3://b-1/p/q".parse::<BlobsUrl>().unwrap();
    assert_eq!(
        s3.object_key("runs/a/r/report/report.json"),
        "p/q/runs/a/r/report/report.json"
    );
    assert_eq!(BlobsUrl::Memory.object_key("runs/x"), "runs/x");
}

#[test]
fn env_error_is_a_std_error() {
    fn takes(_: &dyn std::error::Error) {}
    let err: EnvError = Assignment::from_lookup(|_| None).unwrap_err();
    takes(&err);
}

fn assignments() -> impl Strategy<Value = Assignment> {
    let name = "[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?";
    let run = "[A-Za-z0-9_-]{1,64}";
    let store = prop_oneof![
        "[A-Za-z0-9_.-]{3,40}".prop_map(|table| StoreUrl::DynamoDb { table }),
        "(/[a-zA-Z0-9 ._-]{1,12}){1,4}".prop_map(|p| StoreUrl::Dir { path: p.into() }),
        Just(StoreUrl::Memory),
    ];
    let blobs = prop_oneof![
        (
            "[a-z0-9][a-z0-9-]{1,20}[a-z0-9]",
            "([a-zA-Z0-9_-]{1,8}(/[a-zA-Z0-9_-]{1,8}){0,3})?"
        )
            .prop_map(|(bucket, prefix)| BlobsUrl::S3 { bucket, prefix }),
        "(/[a-zA-Z0-9._-]{1,12}){1,4}".prop_map(|p| BlobsUrl::Dir { path: p.into() }),
        Just(BlobsUrl::Memory),
    ];
    let metrics = prop_oneof![
        Just(None),
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| Some(std::net::SocketAddr::from((ip, port)).to_string())),
    ];
    let log_format = prop_oneof![Just(LogFormat::Json), Just(LogFormat::Compact)];
    (
        (name, run, 0..=9_999_u32, 0..=99_u32),
        (store, blobs, metrics, log_format, 100..=600_000_u64),
    )
        .prop_map(
            |(
                (load_test, run_id, slot, incarnation),
                (store, blobs, metrics_addr, log_format, ms),
            )| {
                Assignment {
                    load_test,
                    run_id,
                    slot,
                    incarnation,
                    store,
                    blobs,
                    metrics_addr,
                    log_format,
                    heartbeat: Duration::from_millis(ms),
                }
            },
        )
}

proptest! {
    #[test]
    fn to_env_then_from_lookup_is_identity(a in assignments()) {
        let env: BTreeMap<String, String> = a.to_env().into_iter().collect();
        let back = Assignment::from_lookup(|k| env.get(k).cloned()).unwrap();
        prop_assert_eq!(back, a);
    }

    #[test]
    fn from_lookup_never_panics(values in prop::collection::vec(prop::option::of(".{0,40}"), 9)) {
        let _ = Assignment::from_lookup(|k| {
            AGENT_ENV.iter().position(|v| v.name == k).and_then(|i| values[i].clone())
        });
    }
}

#[test]
fn text_is_the_human_log_format_and_compact_its_synonym() {
    assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Compact));
    assert_eq!("compact".parse::<LogFormat>(), Ok(LogFormat::Compact));
    assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
    assert!("pretty".parse::<LogFormat>().is_err());
}
