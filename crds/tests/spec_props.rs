//! Property tests: any document either validates or yields errors that name their path; parsing
//! never panics; whatever is accepted round-trips through YAML and JSON.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use barrage_crds::loadtest::LoadTest;
use barrage_crds::schema::field_docs;
use barrage_crds::validate::{ValidationErrors, parse_and_validate};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

/// Field names from the schema, so generated documents hit real fields often.
fn vocabulary() -> Vec<String> {
    let mut words: Vec<String> = field_docs()
        .iter()
        .filter_map(|f| {
            f.path
                .rsplit('.')
                .next()
                .map(|s| s.trim_end_matches("[]").to_string())
        })
        .filter(|w| !w.starts_with('<'))
        .collect();
    words.extend(
        [
            "apiVersion",
            "kind",
            "metadata",
            "spec",
            "password",
            "sasl.password",
            "linger.ms",
        ]
        .map(String::from),
    );
    words.sort();
    words.dedup();
    words
}

fn scalar_words() -> Vec<&'static str> {
    vec![
        "barrage.dev/v1alpha1",
        "LoadTest",
        "Produce",
        "Consume",
        "RoundTrip",
        "10s",
        "250ms",
        "1h30m",
        "-5s",
        "0s",
        "1.5",
        "PLAINTEXT",
        "SASL_SSL",
        "AWS_MSK_IAM",
        "SCRAM-SHA-512",
        "all",
        "1",
        "0",
        "zstd",
        "murmur2_random",
        "zipf",
        "FARGATE",
        "EC2",
        "DeleteIfCreated",
        "produce.p99 < 50ms",
        "errors.ratio < 0.1%",
        "e2e.p99 < 1s",
        "records.lost <= 0",
        "produce.p99 < 50",
        "window",
        "run",
        "127.0.0.1:9092",
        "x",
        "",
        "🦀",
        "{{seq}}",
        "arn:aws:secretsmanager:eu-west-1:1:secret:x",
        "/p",
        "eu-west-1",
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    let words = scalar_words();
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        prop::sample::select(vec![
            0i64,
            1,
            -1,
            5,
            100,
            1024,
            2048,
            1_000_000,
            u32::MAX as i64 + 1
        ])
        .prop_map(Value::from),
        prop::sample::select(words).prop_map(Value::from),
        "[a-zA-Z0-9 ._:%<>=-]{0,12}".prop_map(Value::from),
    ];
    let keys = vocabulary();
    leaf.prop_recursive(5, 48, 6, move |inner| {
        let keys = keys.clone();
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(keys),
                        "[a-z]{1,6}".prop_map(String::from)
                    ],
                    inner
                ),
                0..5
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn examples() -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut docs: Vec<Value> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            LoadTest::from_yaml(&std::fs::read_to_string(p).unwrap())
                .unwrap()
                .to_value()
        })
        .collect();
    docs.push(LoadTest::example("prop", "127.0.0.1:9092", "t").to_value());
    docs.sort_by_key(|v| v.to_string());
    docs
}

/// Every path (as a list of keys/indices) in a document.
fn paths(v: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                prefix.push(Value::from(k.clone()));
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                prefix.push(Value::from(i));
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'a>(v: &'a mut Value, path: &[Value]) -> Option<&'a mut Value> {
    let mut cur = v;
    for seg in path {
        cur = match seg {
            Value::String(k) => cur.get_mut(k.as_str())?,
            Value::Number(n) => cur.get_mut(n.as_u64()? as usize)?,
            _ => return None,
        };
    }
    Some(cur)
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, Value),
    Delete(Index),
    Insert(Index, String, Value),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    let keys = vocabulary();
    prop_oneof![
        (any::<Index>(), arb_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        any::<Index>().prop_map(Mutation::Delete),
        (any::<Index>(), prop::sample::select(keys), arb_value())
            .prop_map(|(i, k, v)| Mutation::Insert(i, k, v)),
    ]
}

fn mutate(doc: &mut Value, m: &Mutation) {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    match m {
        Mutation::Replace(i, v) => {
            let p = i.get(&all).clone();
            if let Some(n) = node_mut(doc, &p) {
                *n = v.clone();
            }
        }
        Mutation::Delete(i) => {
            let p = i.get(&all).clone();
            if let Some((last, parent)) = p.split_last()
                && let Some(n) = node_mut(doc, parent)
            {
                match (n, last) {
                    (Value::Object(o), Value::String(k)) => {
                        o.remove(k);
                    }
                    (Value::Array(a), Value::Number(i)) => {
                        a.remove(i.as_u64().unwrap() as usize);
                    }
                    _ => {}
                }
            }
        }
        Mutation::Insert(i, k, v) => {
            let p = i.get(&all).clone();
            if let Some(Value::Object(o)) = node_mut(doc, &p) {
                o.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The outcome is deterministic, every error of a mapping names its path, and an accepted
/// document round-trips.
fn check(text: &str, doc_is_mapping: bool) -> Result<(), TestCaseError> {
    let first = parse_and_validate(text);
    let again = parse_and_validate(text);
    prop_assert_eq!(&first, &again, "validation must be deterministic");
    match first {
        Ok(lt) => {
            prop_assert_eq!(&LoadTest::from_json(&lt.to_json()).unwrap(), &lt);
            prop_assert_eq!(&LoadTest::from_yaml(&lt.to_yaml()).unwrap(), &lt);
            prop_assert!(parse_and_validate(&lt.to_yaml()).is_ok());
        }
        Err(ValidationErrors(errs)) => {
            prop_assert!(!errs.is_empty());
            for e in &errs {
                prop_assert!(!e.message.is_empty());
                if doc_is_mapping {
                    prop_assert!(!e.path.is_empty(), "error without a path: {}", e);
                }
            }
        }
    }
    // Parsing without validation agrees on what is readable and round-trips too.
    if let Ok(lt) = LoadTest::from_text(text) {
        prop_assert_eq!(&LoadTest::from_json(&lt.to_json()).unwrap(), &lt);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_documents_validate_or_name_their_paths(doc in arb_value()) {
        let is_map = doc.is_object();
        check(&serde_json::to_string(&doc).unwrap(), is_map)?;
        check(&serde_yaml::to_string(&doc).unwrap(), is_map)?;
    }

    #[test]
    fn mutated_examples_validate_or_name_their_paths(
        which in any::<Index>(),
        mutations in prop::collection::vec(arb_mutation(), 1..4),
    ) {
        let docs = examples();
        let mut doc = which.get(&docs).clone();
        for m in &mutations {
            mutate(&mut doc, m);
        }
        let is_map = doc.is_object();
        check(&serde_json::to_string(&doc).unwrap(), is_map)?;
        check(&serde_yaml::to_string(&doc).unwrap(), is_map)?;
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(?s).{0,300}") {
        let _ = parse_and_validate(&text);
        let _ = LoadTest::from_text(&text);
    }

    #[test]
    fn arbitrary_yamlish_text_never_panics(
        lines in prop::collection::vec(
            (0usize..4, prop::sample::select(vocabulary()), prop::sample::select(scalar_words())),
            0..20,
        )
    ) {
        let text: String = lines
            .iter()
            .map(|(indent, k, v)| format!("{}{k}: {v}\n", "  ".repeat(*indent)))
            .collect();
        let _ = parse_and_validate(&text);
    }
}

#[test]
fn deeply_nested_documents_are_rejected_without_overflowing_the_stack() {
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_and_validate(&deep_json).is_err());
    let deep_yaml = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_and_validate(&deep_yaml).is_err());
    let deep_map = "a:\n".to_string()
        + &(1..2000)
            .map(|i| format!("{}a:\n", " ".repeat(i)))
            .collect::<String>();
    assert!(parse_and_validate(&deep_map).is_err());
}

#[test]
fn yaml_alias_bombs_are_rejected() {
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    let start = std::time::Instant::now();
    assert!(parse_and_validate(bomb).is_err());
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}
