//! The JSON Schema of `LoadTest`, generated from the types with schemars: doc comments become
//! descriptions, serde defaults become `default`. Checked in as `crds/loadtest.schema.json`
//! (a test fails when it is stale; regenerate with `BARRAGE_BLESS=1 cargo test -p barrage-crds schema`).

use crate::loadtest::LoadTest;

/// The JSON Schema (draft 2020-12) of a LoadTest document.
pub fn loadtest_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(LoadTest);
    schema.to_value()
}

/// The schema as pretty JSON with a trailing newline; stable from run to run.
pub fn loadtest_schema_json() -> String {
    let mut text = serde_json::to_string_pretty(&loadtest_schema())
        .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()));
    text.push('\n');
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn schema_describes_the_spec_with_descriptions_and_defaults() {
        let s = loadtest_schema();
        assert_eq!(s["title"], "LoadTest");
        let text = loadtest_schema_json();
        assert!(text.ends_with('\n'));
        assert_eq!(text, loadtest_schema_json(), "generation must be stable");
        assert!(text.contains("bootstrapServers"));
        assert!(
            text.contains("\"default\": \"5ms\""),
            "linger default is in the schema"
        );
    }
}
