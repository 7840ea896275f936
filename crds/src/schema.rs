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

// ---------------------------------------------------------------------------------------------
// The field reference (crds/SPEC.md), generated from the schema
// ---------------------------------------------------------------------------------------------

/// One documented field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDoc {
    /// Path such as `spec.load.steps[].constant.rate` (`[]` for list items, `<name>` for map keys).
    pub path: String,
    /// Type in words.
    pub type_: String,
    /// Default as JSON, when there is one.
    pub default: Option<String>,
    /// Whether the field must be written.
    pub required: bool,
    /// The doc comment.
    pub description: String,
}

/// Every field of a LoadTest document, in schema order, from the generated schema.
pub fn field_docs() -> Vec<FieldDoc> {
    let root = loadtest_schema();
    let mut out = Vec::new();
    walk_object(&root, &root, "", &mut out, 0);
    out
}

fn resolve<'a>(root: &'a serde_json::Value, node: &'a serde_json::Value) -> &'a serde_json::Value {
    let node = non_null(node);
    match node.get("$ref").and_then(|r| r.as_str()) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs").and_then(|d| d.get(name)))
            .unwrap_or(node),
        None => node,
    }
}

/// `Option<T>` is `anyOf: [T, {type: null}]`: the T.
fn non_null(node: &serde_json::Value) -> &serde_json::Value {
    match node.get("anyOf").and_then(|a| a.as_array()) {
        Some(items) if items.len() == 2 => {
            let is_null =
                |v: &serde_json::Value| v.get("type").and_then(|t| t.as_str()) == Some("null");
            match (is_null(&items[0]), is_null(&items[1])) {
                (false, true) => &items[0],
                (true, false) => &items[1],
                _ => node,
            }
        }
        _ => node,
    }
}

fn ref_name(node: &serde_json::Value) -> Option<&str> {
    non_null(node)
        .get("$ref")
        .and_then(|r| r.as_str())
        .and_then(|r| r.strip_prefix("#/$defs/"))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Variants of an externally tagged enum: `(name, content schema, description)`.
fn tagged_variants(node: &serde_json::Value) -> Option<Vec<(String, &serde_json::Value, String)>> {
    let items = node.get("oneOf")?.as_array()?;
    let mut out = Vec::new();
    for item in items {
        let props = item.get("properties")?.as_object()?;
        if props.len() != 1 {
            return None;
        }
        let (name, content) = props.iter().next()?;
        let desc = item
            .get("description")
            .and_then(|d| d.as_str())
            .unwrap_or("");
        out.push((name.clone(), content, one_line(desc)));
    }
    Some(out)
}

fn const_values(node: &serde_json::Value) -> Option<Vec<String>> {
    let items = node.get("oneOf").or_else(|| node.get("enum"))?.as_array()?;
    items
        .iter()
        .map(|i| {
            let c = i.get("const").unwrap_or(i);
            match c {
                serde_json::Value::String(s) => Some(format!("`{s}`")),
                serde_json::Value::Number(n) => Some(format!("`{n}`")),
                _ => None,
            }
        })
        .collect()
}

fn type_words(root: &serde_json::Value, node: &serde_json::Value) -> String {
    if let Some(name) = ref_name(node) {
        match name {
            "HumanDuration" => return "duration".to_string(),
            "Threshold" => return "threshold (string or object)".to_string(),
            _ => {}
        }
    }
    let r = resolve(root, node);
    if let Some(mut values) = const_values(r) {
        let mut seen = std::collections::BTreeSet::new();
        values.retain(|v| seen.insert(v.clone()));
        return format!("one of {}", values.join(", "));
    }
    if let Some(variants) = tagged_variants(r) {
        let names: Vec<String> = variants.iter().map(|(n, _, _)| format!("`{n}`")).collect();
        return format!("exactly one of {}", names.join(", "));
    }
    let types: Vec<String> = match r.get("type") {
        Some(serde_json::Value::String(t)) => vec![t.clone()],
        Some(serde_json::Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str())
            .filter(|t| *t != "null")
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    };
    if types.is_empty() {
        return "any".to_string();
    }
    if types.len() > 1 {
        return types.join(" or ");
    }
    match types[0].as_str() {
        "array" => match r.get("items") {
            Some(items) if items.is_object() => format!("list of {}", type_words(root, items)),
            _ => "list".to_string(),
        },
        "object" => match r.get("additionalProperties") {
            Some(ap) if ap.is_object() => format!("map of name to {}", type_words(root, ap)),
            _ => "object".to_string(),
        },
        "integer" => match r.get("format").and_then(|f| f.as_str()) {
            Some(f) => format!("integer ({f})"),
            None => "integer".to_string(),
        },
        "number" => "number".to_string(),
        "string" => match r.get("format").and_then(|f| f.as_str()) {
            Some("date-time") => "timestamp (RFC 3339)".to_string(),
            _ => "string".to_string(),
        },
        other => other.to_string(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk_object(
    root: &serde_json::Value,
    node: &serde_json::Value,
    path: &str,
    out: &mut Vec<FieldDoc>,
    depth: usize,
) {
    if depth > 16 {
        return;
    }
    let node = resolve(root, node);
    let Some(props) = node.get("properties").and_then(|p| p.as_object()) else {
        return;
    };
    let required: Vec<&str> = node
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    for (key, prop) in props {
        let here = join(path, key);
        let described = prop
            .get("description")
            .or_else(|| resolve(root, prop).get("description"))
            .and_then(|d| d.as_str())
            .unwrap_or("");
        out.push(FieldDoc {
            path: here.clone(),
            type_: type_words(root, prop),
            default: prop.get("default").map(|d| d.to_string()),
            required: required.contains(&key.as_str()),
            description: one_line(described),
        });
        walk_value(root, prop, &here, out, depth + 1);
    }
}

/// Documents what is inside a field: object properties, list items, map values, enum variants.
fn walk_value(
    root: &serde_json::Value,
    prop: &serde_json::Value,
    here: &str,
    out: &mut Vec<FieldDoc>,
    depth: usize,
) {
    if depth > 16 || ref_name(prop) == Some("Threshold") {
        return;
    }
    let r = resolve(root, prop);
    if let Some(variants) = tagged_variants(r) {
        for (name, content, desc) in variants {
            let vpath = join(here, &name);
            out.push(FieldDoc {
                path: vpath.clone(),
                type_: type_words(root, content),
                default: None,
                required: false,
                description: desc,
            });
            walk_value(root, content, &vpath, out, depth + 1);
        }
        return;
    }
    if r.get("properties").is_some() {
        walk_object(root, r, here, out, depth);
    } else if let Some(items) = r.get("items").filter(|i| i.is_object()) {
        walk_value(root, items, &format!("{here}[]"), out, depth + 1);
    } else if let Some(ap) = r.get("additionalProperties").filter(|a| a.is_object()) {
        walk_value(root, ap, &format!("{here}.<name>"), out, depth + 1);
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The field reference, `crds/SPEC.md`: every field with its type, default, bounds and meaning,
/// then the limits, the allowed librdkafka properties and the threshold metrics.
pub fn spec_reference_markdown() -> String {
    use crate::validate::limits;
    let mut md = String::new();
    md.push_str("<!-- Generated from the types by `BARRAGE_BLESS=1 cargo test -p barrage-crds spec_reference`; do not edit by hand. -->\n");
    md.push_str("# LoadTest field reference\n\n");
    md.push_str("Every field of a `LoadTest` document (`apiVersion: barrage.dev/v1alpha1`, `kind: LoadTest`), generated from\n");
    md.push_str("the Rust types and their doc comments (the same source as `crds/loadtest.schema.json`). Paths use `[]` for\n");
    md.push_str("list items and `<name>` for map keys; for a field that is one of several variants (`value`, `steps[]`,\n");
    md.push_str("generators) each variant is listed as a child path. Unknown fields are rejected everywhere in `spec`.\n");
    md.push_str("`barrage validate FILE` checks a file against every rule and lists all problems with their paths.\n\n");
    md.push_str("Durations are written `250ms`, `10s`, `5m`, `1h30m`, `2d`, `1.5s` (a bare number means seconds).\n\n");
    md.push_str(
        "| Path | Type | Required | Default | Bounds | Meaning |\n|---|---|---|---|---|---|\n",
    );
    let bounds = crate::validate::BOUNDS;
    for f in field_docs() {
        let bound = bounds
            .iter()
            .find(|(p, _)| *p == f.path)
            .map(|(_, b)| *b)
            .unwrap_or("");
        md.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            f.path,
            cell(&f.type_),
            if f.required { "yes" } else { "" },
            f.default
                .as_deref()
                .map(|d| format!("`{}`", cell(d)))
                .unwrap_or_default(),
            cell(bound),
            cell(&f.description)
        ));
    }
    md.push_str("\n## Limits\n\n");
    md.push_str(&format!(
        "- At most {} agents; at most {} records/s per agent (peak rate ÷ agents.count).\n",
        limits::MAX_AGENTS,
        limits::MAX_RATE_PER_AGENT
    ));
    md.push_str(&format!(
        "- The load lasts at most {}; `maxDuration` at most {}.\n",
        crate::duration::HumanDuration::from(limits::MAX_DURATION),
        crate::duration::HumanDuration::from(limits::MAX_MAX_DURATION)
    ));
    md.push_str(&format!(
        "- Record values at most {} bytes (10 MiB).\n",
        limits::MAX_RECORD_SIZE
    ));
    md.push_str(&format!(
        "- Cost guard: `agents.count × agents.cpu/1024 × maxDuration (hours)` at most {} vCPU-hours.\n",
        limits::MAX_VCPU_HOURS
    ));
    md.push_str("- Fargate memory for each cpu size (MiB):");
    for cpu in limits::FARGATE_CPU {
        if let Some((lo, hi, step)) = crate::validate::fargate_memory(*cpu) {
            md.push_str(&format!(" cpu {cpu}: {lo}–{hi} step {step};"));
        }
    }
    md.push_str("\n- Secrets are never written inline: a `password` (or any secret-looking key) under `spec.kafka` is rejected;\n  reference it with `credentials.secretsManagerArn` or `credentials.ssmParameter`.\n");
    md.push_str("\n## Allowed producer properties (`spec.kafka.producer.properties`)\n\n");
    for p in crate::spec::ALLOWED_PRODUCER_PROPERTIES {
        md.push_str(&format!("`{p}` "));
    }
    md.push_str("\n\n## Allowed consumer properties (`spec.kafka.consumer.properties`)\n\n");
    for p in crate::spec::ALLOWED_CONSUMER_PROPERTIES {
        md.push_str(&format!("`{p}` "));
    }
    md.push_str("\n\n## Threshold metrics\n\nWritten `\"<metric> <op> <value>\"` (`<`, `<=`, `>`, `>=`) or as an object `{metric, op, value, scope}`; scope is `run`, `window` or `both` (default).\n\n| Metric | Value | Meaning |\n|---|---|---|\n");
    let root = loadtest_schema();
    let metric_docs = root
        .get("$defs")
        .and_then(|d| d.get("Metric"))
        .and_then(|m| m.get("oneOf"))
        .and_then(|o| o.as_array())
        .cloned()
        .unwrap_or_default();
    for m in crate::spec::Metric::ALL {
        let desc = metric_docs
            .iter()
            .find(|d| d.get("const").and_then(|c| c.as_str()) == Some(m.as_str()))
            .and_then(|d| d.get("description"))
            .and_then(|d| d.as_str())
            .unwrap_or("");
        let kind = match m.kind() {
            crate::spec::MetricKind::Latency => "latency with a unit: `50ms`, `250us`, `1.5s`",
            crate::spec::MetricKind::Ratio => "ratio: `0.1%` or `0.001`",
            crate::spec::MetricKind::Count => "count: an integer",
            crate::spec::MetricKind::Number => "number: `120`, `2.5`",
        };
        md.push_str(&format!("| `{}` | {kind} | {} |\n", m.as_str(), cell(desc)));
    }
    md.push_str("\n## JSON value templates\n\nPlaceholders: ");
    let ph: Vec<String> = crate::validate::JSON_TEMPLATE_PLACEHOLDERS
        .iter()
        .map(|p| format!("`{p}`"))
        .collect();
    md.push_str(&ph.join(", "));
    md.push_str(". The template must be JSON once every placeholder is replaced by a value.\n");
    md
}
