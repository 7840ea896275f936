//! crds/SPEC.md is generated from the types and kept fresh; it documents every schema path.
//! Regenerate with `BARRAGE_BLESS=1 cargo test -p barrage-crds spec_reference`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use barrage_crds::schema::{field_docs, spec_reference_markdown};
use barrage_crds::validate::BOUNDS;

fn spec_md() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("SPEC.md")
}

#[test]
fn spec_reference_is_fresh() {
    let fresh = spec_reference_markdown();
    if std::env::var("BARRAGE_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(spec_md(), &fresh).unwrap();
    }
    let on_disk = std::fs::read_to_string(spec_md()).unwrap_or_default();
    assert!(
        on_disk == fresh,
        "crds/SPEC.md is stale; regenerate with BARRAGE_BLESS=1 cargo test -p barrage-crds spec_reference"
    );
}

#[test]
fn spec_reference_documents_every_field_with_a_meaning() {
    let docs = field_docs();
    let md = spec_reference_markdown();
    for f in &docs {
        assert!(
            md.contains(&format!("| `{}` |", f.path)),
            "{} missing from SPEC.md",
            f.path
        );
        assert!(!f.description.is_empty(), "{} has no description", f.path);
    }
    for path in [
        "spec.kafka.bootstrapServers",
        "spec.load.steps[].constant.rate",
        "spec.load.steps[].staircase.until",
        "spec.workload.records.value.avro.generators.<name>.uniformInt.min",
        "spec.agents.readyFraction",
        "status.conditions[].lastTransitionTime",
    ] {
        assert!(docs.iter().any(|f| f.path == path), "{path} not documented");
    }
}

#[test]
fn spec_reference_bounds_name_real_paths() {
    let docs = field_docs();
    for (path, _) in BOUNDS {
        assert!(
            docs.iter().any(|f| f.path == *path),
            "BOUNDS names unknown path {path}"
        );
    }
}
