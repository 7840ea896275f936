//! The checked-in JSON Schema is the one the types generate.
//! Regenerate with `BARRAGE_BLESS=1 cargo test -p barrage-crds schema`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use barrage_crds::schema::{loadtest_schema, loadtest_schema_json};

fn checked_in() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("loadtest.schema.json")
}

#[test]
fn schema_file_is_fresh() {
    let fresh = loadtest_schema_json();
    if std::env::var("BARRAGE_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(checked_in(), &fresh).unwrap();
    }
    let on_disk = std::fs::read_to_string(checked_in()).unwrap_or_default();
    assert!(
        on_disk == fresh,
        "crds/loadtest.schema.json is stale; regenerate with BARRAGE_BLESS=1 cargo test -p barrage-crds schema"
    );
}

/// Every object property in the schema has a description (doc comments flow into it).
#[test]
fn schema_every_property_is_described() {
    fn walk(v: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
        if let Some(props) = v.get("properties").and_then(|p| p.as_object()) {
            // A one-property object is an enum variant (`{size: 100}`): its own description counts.
            let variant_described = props.len() == 1 && v.get("description").is_some();
            for (k, p) in props {
                let here = format!("{path}.{k}");
                let described = p.get("description").is_some() || variant_described;
                if !described {
                    missing.push(here.clone());
                }
                walk(p, &here, missing);
            }
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            if let Some(items) = v.get(key).and_then(|d| d.as_array()) {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}/{key}[{i}]"), missing);
                }
            }
        }
        for key in ["$defs", "definitions"] {
            if let Some(defs) = v.get(key).and_then(|d| d.as_object()) {
                for (k, d) in defs {
                    walk(d, &format!("#{k}"), missing);
                }
            }
        }
    }
    let mut missing = Vec::new();
    walk(&loadtest_schema(), "", &mut missing);
    assert!(
        missing.is_empty(),
        "properties without description: {missing:?}"
    );
}

#[test]
fn schema_rejects_unknown_fields_in_the_spec() {
    let s = loadtest_schema();
    assert_eq!(s["additionalProperties"], serde_json::json!(false));
    assert_eq!(
        s["$defs"]["LoadTestSpec"]["additionalProperties"],
        serde_json::json!(false)
    );
    let required = s["$defs"]["LoadTestSpec"]["required"].as_array().unwrap();
    for field in ["kafka", "topic", "workload", "load"] {
        assert!(
            required.iter().any(|r| r == field),
            "{field} must be required"
        );
    }
}
