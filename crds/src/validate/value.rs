//! The record value (`spec.workload.records.value`): its size, Avro schemas and the generator
//! names they must contain, JSON templates and their placeholders.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{V, limits};
use crate::loadtest::join_key;
use crate::spec::{AvroValue, FieldGenerator, ValueSpec};
use crate::template::Segment;

/// The record value at `p` (`spec.workload.records.value`): at most 10 MiB, whichever way it is
/// made.
pub(super) fn check_value(v: &mut V, p: &str, value: &ValueSpec) {
    let max = limits::MAX_RECORD_SIZE;
    match value {
        ValueSpec::Size(s) => {
            if *s > max {
                v.err(
                    format!("{p}.size"),
                    format!("must be at most {max} bytes (10 MiB) (got {s})"),
                );
            }
        }
        ValueSpec::UniformSize(range) => {
            let p = format!("{p}.uniformSize");
            if range.min > range.max {
                v.err(
                    &p,
                    format!(
                        "min must be at most max (got min {}, max {})",
                        range.min, range.max
                    ),
                );
            }
            if range.max > max {
                v.err(
                    format!("{p}.max"),
                    format!("must be at most {max} bytes (10 MiB) (got {})", range.max),
                );
            }
        }
        ValueSpec::Avro(avro) => check_avro(v, &format!("{p}.avro"), avro),
        ValueSpec::Json(json) => {
            let p = format!("{p}.json.template");
            if json.template.trim().is_empty() {
                v.err(&p, "must not be empty");
            } else if json.template.len() > max as usize {
                v.err(
                    &p,
                    format!(
                        "must be at most {max} bytes (10 MiB) (got {})",
                        json.template.len()
                    ),
                );
            } else if let Err(e) = check_json_template(&json.template) {
                v.err(&p, e.to_string());
            }
        }
    }
}

/// An Avro value: its schema (inline or a file) and the generators of its fields.
fn check_avro(v: &mut V, p: &str, avro: &AvroValue) {
    match (&avro.schema, &avro.schema_file) {
        (None, None) => v.err(
            p,
            "exactly one of schema and schemaFile must be set (got none)",
        ),
        (Some(_), Some(_)) => v.err(
            p,
            "exactly one of schema and schemaFile must be set (got both)",
        ),
        _ => {}
    }
    if let Some(f) = &avro.schema_file
        && f.trim().is_empty()
    {
        v.err(format!("{p}.schemaFile"), "must not be empty when set");
    }
    let field_names = avro
        .schema
        .as_ref()
        .and_then(|text| schema_field_names(v, p, text));
    for (name, g) in &avro.generators {
        let gp = join_key(&format!("{p}.generators"), name);
        if name.trim().is_empty() {
            v.err(&gp, "field names must not be empty");
            continue;
        }
        if let Some(names) = &field_names
            && !names.contains(name)
        {
            let known: Vec<&str> = names.iter().map(String::as_str).collect();
            v.err(
                &gp,
                format!(
                    "no field {name:?} in the Avro schema (fields: {})",
                    known.join(", ")
                ),
            );
        }
        check_generator(v, &gp, g);
    }
}

/// Checks an inline schema is Avro in JSON. For a record schema whose types all resolve, the
/// dotted names of its fields (what generator names must be); otherwise `None`.
fn schema_field_names(v: &mut V, p: &str, text: &str) -> Option<BTreeSet<String>> {
    let schema = match serde_json::from_str::<Value>(text) {
        Err(e) => {
            v.err(
                format!("{p}.schema"),
                format!("must be an Avro schema in JSON: {e}"),
            );
            return None;
        }
        Ok(schema) => schema,
    };
    match &schema {
        Value::Object(o) if o.get("type").is_some_and(Value::is_string) => {
            if o.get("type").and_then(Value::as_str) != Some("record") {
                return None;
            }
            let mut named = BTreeMap::new();
            avro_named_records(&schema, &mut named, 0);
            let mut names = BTreeSet::new();
            collect_avro_fields(&schema, "", &named, &mut Vec::new(), &mut names)
                .ok()
                .map(|()| names)
        }
        Value::String(_) | Value::Array(_) => None,
        _ => {
            v.err(
                format!("{p}.schema"),
                "must be an Avro schema: a JSON object with a \"type\", a type name, or a union list",
            );
            None
        }
    }
}

/// One field generator at `gp`: its ranges are ordered and bounded, its lists not empty.
fn check_generator(v: &mut V, gp: &str, g: &FieldGenerator) {
    match g {
        FieldGenerator::UniformInt(r) if r.min > r.max => v.err(
            format!("{gp}.uniformInt"),
            format!("min must be at most max (got min {}, max {})", r.min, r.max),
        ),
        FieldGenerator::StringLength(r) => {
            if r.min > r.max {
                v.err(
                    format!("{gp}.stringLength"),
                    format!("min must be at most max (got min {}, max {})", r.min, r.max),
                );
            }
            if r.max > limits::MAX_RECORD_SIZE {
                v.err(
                    format!("{gp}.stringLength.max"),
                    format!(
                        "must be at most {} (got {})",
                        limits::MAX_RECORD_SIZE,
                        r.max
                    ),
                );
            }
        }
        FieldGenerator::OneOf(list) if list.is_empty() => {
            v.err(format!("{gp}.oneOf"), "must list at least one value");
        }
        _ => {}
    }
}

/// Most field paths collected from one Avro schema.
const MAX_AVRO_PATHS: usize = 10_000;

const AVRO_PRIMITIVES: &[&str] = &[
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// Every named record of an Avro schema, by name and by full name.
fn avro_named_records<'a>(v: &'a Value, out: &mut BTreeMap<String, &'a Value>, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(o) => {
            if o.get("type").and_then(Value::as_str) == Some("record")
                && let Some(name) = o.get("name").and_then(Value::as_str)
            {
                out.insert(name.to_string(), v);
                if let Some(ns) = o.get("namespace").and_then(Value::as_str) {
                    out.insert(format!("{ns}.{name}"), v);
                }
                if let Some(short) = name.rsplit('.').next() {
                    out.entry(short.to_string()).or_insert(v);
                }
            }
            for child in o.values() {
                avro_named_records(child, out, depth + 1);
            }
        }
        Value::Array(a) => {
            for child in a {
                avro_named_records(child, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Dotted names of the fields of an Avro record schema: nested records, through unions and
/// named references, as the agent resolves generator names. `Err(())` when a type reference
/// cannot be resolved here (then generator names are left to the agent to check).
fn collect_avro_fields(
    schema: &Value,
    prefix: &str,
    named: &BTreeMap<String, &Value>,
    stack: &mut Vec<String>,
    out: &mut BTreeSet<String>,
) -> Result<(), ()> {
    if stack.len() > 32 || out.len() > MAX_AVRO_PATHS {
        return Ok(());
    }
    let Some(fields) = schema.get("fields").and_then(Value::as_array) else {
        return Ok(());
    };
    let record_name = schema
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    stack.push(record_name);
    for f in fields {
        let Some(name) = f.get("name").and_then(Value::as_str) else {
            continue;
        };
        let full = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        out.insert(full.clone());
        let candidates: Vec<&Value> = match f.get("type") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(t) => vec![t],
            None => vec![],
        };
        for t in candidates {
            let record = match t {
                Value::String(n) if AVRO_PRIMITIVES.contains(&n.as_str()) => None,
                Value::String(n) => match named.get(n.as_str()) {
                    Some(r) => Some(*r),
                    None => {
                        stack.pop();
                        return Err(());
                    }
                },
                Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("record") => {
                    Some(t)
                }
                _ => None,
            };
            if let Some(r) = record {
                let rname = r.get("name").and_then(Value::as_str).unwrap_or_default();
                // A recursive type is entered once per path.
                if !stack.iter().any(|s| s == rname)
                    && collect_avro_fields(r, &full, named, stack, out).is_err()
                {
                    stack.pop();
                    return Err(());
                }
            }
        }
    }
    stack.pop();
    Ok(())
}

/// The placeholders a JSON template may use (the agent's `payload::json` renders them).
pub use crate::template::PLACEHOLDERS as JSON_TEMPLATE_PLACEHOLDERS;

/// Checks a JSON template with the one template parser ([`crate::template::parse`]): every
/// placeholder is known, well formed and stands where it can, and the text is JSON once every
/// placeholder is replaced by a value (`0`).
pub fn check_json_template(template: &str) -> Result<(), JsonTemplateError> {
    let segments = crate::template::parse(template)?;
    let filled: String = segments
        .iter()
        .map(|s| match s {
            Segment::Text(text) => text,
            Segment::Placeholder { .. } => "0",
        })
        .collect();
    serde_json::from_str::<Value>(&filled)
        .map(|_| ())
        .map_err(|e| JsonTemplateError::NotJson(e.to_string()))
}

/// Why a JSON template is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonTemplateError {
    /// A placeholder is unknown, malformed or misplaced.
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    /// The text is not JSON once every placeholder is filled in; carries the JSON parser's
    /// message.
    #[error("must be JSON once placeholders are filled in: {0}")]
    NotJson(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_templates_are_checked() {
        assert!(
            check_json_template(r#"{"id": {{seq}}, "u": "{{uuid}}", "n": {{int 1 9}}}"#).is_ok()
        );
        assert!(
            check_json_template(r#"{"s": "{{string 1 10}}", "t": {{timestampMillis}}}"#).is_ok()
        );
        assert!(
            check_json_template(r#"{"id": {{sequence}}}"#)
                .unwrap_err()
                .to_string()
                .contains("placeholder {{sequence}}: is not a placeholder")
        );
        assert!(
            check_json_template(
                r#"{"a": {{seq 5}}, "b": {{uniformInt -1 1}}, "c": "{{string 8}}", "d": {{oneOf x 1 true}}, "e": {{bool}}, "f": {{uuid}}}"#
            )
            .is_ok()
        );
        assert!(
            check_json_template(r#"{"a": {{oneOf}}}"#)
                .unwrap_err()
                .to_string()
                .contains("must list at least one word")
        );
        assert!(
            check_json_template(r#"{"a": "{{string 99999999}}"}"#)
                .unwrap_err()
                .to_string()
                .contains("LEN must be at most 10485760")
        );
        assert!(check_json_template(r#"{"id": {{int 9 1}}}"#).is_err());
        assert!(
            check_json_template(r#"{"id": {{seq}"#)
                .unwrap_err()
                .to_string()
                .contains("unclosed")
        );
        assert!(
            check_json_template(r#"{"id": "#)
                .unwrap_err()
                .to_string()
                .contains("must be JSON")
        );
    }
}
