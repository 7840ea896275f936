//! The repair-and-reparse path. A document that fails to deserialize is repaired where serde
//! stopped (the offending node dropped, an unknown enum variant replaced by a known one, a
//! missing field filled with a placeholder) and read again, up to [`MAX_ROUNDS`] times, so that
//! every parse problem is reported with its field path. [`Repairs`] remembers what was changed,
//! to map paths of the repaired document back to the original and to leave out the problems
//! that are only consequences of a repair.

use serde_json::Value;

use super::{FieldError, MAX_ERRORS, inline_secret_message, is_secret_key};
use crate::loadtest::{self, LoadTest, join_key};

/// A path segment in a JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn format_segs(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => out = join_key(&out, k),
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Parses a path written by `format_segs` / `join_key` back into segments.
fn parse_segs(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix("[\"") {
            // A quoted key: find the closing quote that is not escaped.
            let mut end = None;
            let mut escaped = false;
            for (i, c) in r.char_indices() {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    end = Some(i);
                    break;
                }
            }
            let Some(end) = end else {
                break;
            };
            segs.push(Seg::Key(
                r[..end].replace("\\\"", "\"").replace("\\\\", "\\"),
            ));
            rest = r[end + 1..].strip_prefix(']').unwrap_or(&r[end + 1..]);
            continue;
        }
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap_or(r.len());
            match r[..end].parse::<usize>() {
                Ok(i) => segs.push(Seg::Index(i)),
                Err(_) => segs.push(Seg::Key(r[..end].to_string())),
            }
            rest = r.get(end + 1..).unwrap_or("");
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        segs.push(Seg::Key(rest[..end].to_string()));
        rest = &rest[end..];
    }
    segs
}

fn segs_of(path: &serde_path_to_error::Path) -> Vec<Seg> {
    use serde_path_to_error::Segment;
    path.iter()
        .map(|s| match s {
            Segment::Seq { index } => Seg::Index(*index),
            Segment::Map { key } => Seg::Key(key.clone()),
            Segment::Enum { variant } => Seg::Key(variant.clone()),
            Segment::Unknown => Seg::Key("?".to_string()),
        })
        .collect()
}

fn get_mut<'a>(root: &'a mut Value, segs: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = root;
    for s in segs {
        cur = match (s, cur) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Removes the node at `segs`; true when something was removed.
fn remove_at(root: &mut Value, segs: &[Seg]) -> bool {
    let Some((last, parent)) = segs.split_last() else {
        return false;
    };
    match (last, get_mut(root, parent)) {
        (Seg::Key(k), Some(Value::Object(m))) => m.remove(k).is_some(),
        (Seg::Index(i), Some(Value::Array(a))) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

fn insert_at(root: &mut Value, segs: &[Seg], value: Value) -> bool {
    let Some((Seg::Key(k), parent)) = segs.split_last() else {
        return false;
    };
    match get_mut(root, parent) {
        Some(Value::Object(m)) => {
            m.insert(k.clone(), value);
            true
        }
        _ => false,
    }
}

/// Maps paths of the repaired document back to the original one (array elements removed).
#[derive(Default)]
pub(super) struct Repairs {
    /// (array path, index) of every removed element, in order.
    removed_elements: Vec<(Vec<Seg>, usize)>,
    /// Original-document paths that were repaired: problems at or under them are consequences.
    silenced: Vec<Vec<Seg>>,
}

impl Repairs {
    fn to_original(&self, segs: &[Seg]) -> Vec<Seg> {
        let mut p = segs.to_vec();
        for (array, index) in self.removed_elements.iter().rev() {
            if p.len() > array.len()
                && p[..array.len()] == array[..]
                && let Seg::Index(j) = &mut p[array.len()]
                && *j >= *index
            {
                *j += 1;
            }
        }
        p
    }

    fn is_silenced(&self, original: &[Seg]) -> bool {
        self.silenced
            .iter()
            .any(|s| original.len() >= s.len() && original[..s.len()] == s[..])
    }

    /// Where a problem the rules found at `path` of the repaired document lies in the original
    /// one; `None` when it is at or under a repaired place (a consequence of the repair).
    pub(super) fn original_path(&self, path: &str) -> Option<String> {
        let original = self.to_original(&parse_segs(path));
        if self.is_silenced(&original) {
            None
        } else {
            Some(format_segs(&original))
        }
    }
}

/// Most re-parses while collecting errors.
const MAX_ROUNDS: usize = 200;

/// Placeholders tried for a missing required field (their own problems are not reported).
fn placeholders() -> [Value; 5] {
    [
        Value::String("placeholder".to_string()),
        Value::from(1),
        Value::Object(serde_json::Map::new()),
        Value::Array(Vec::new()),
        Value::Bool(false),
    ]
}

/// Finds inline secrets under `spec.kafka`, reports them and removes them from the document.
fn strip_inline_secrets(doc: &mut Value, errs: &mut Vec<FieldError>) {
    fn walk(v: &mut Value, path: &mut Vec<Seg>, errs: &mut Vec<FieldError>, depth: usize) {
        if depth > 64 {
            return;
        }
        match v {
            Value::Object(m) => {
                let secret_keys: Vec<String> =
                    m.keys().filter(|k| is_secret_key(k)).cloned().collect();
                for k in secret_keys {
                    m.remove(&k);
                    path.push(Seg::Key(k));
                    errs.push(FieldError::new(format_segs(path), inline_secret_message()));
                    path.pop();
                }
                for (k, child) in m.iter_mut() {
                    path.push(Seg::Key(k.clone()));
                    walk(child, path, errs, depth + 1);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter_mut().enumerate() {
                    path.push(Seg::Index(i));
                    walk(child, path, errs, depth + 1);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    if let Some(kafka) = doc.get_mut("spec").and_then(|s| s.get_mut("kafka")) {
        let mut path = vec![Seg::Key("spec".into()), Seg::Key("kafka".into())];
        walk(kafka, &mut path, errs, 0);
    }
}

/// Rewrites serde's messages into `path: rule` form.
fn humanize(segs: &[Seg], message: &str) -> (Vec<Seg>, String) {
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some(field) = rest.strip_suffix('`')
    {
        let mut p = segs.to_vec();
        p.push(Seg::Key(field.to_string()));
        return (p, "is required".to_string());
    }
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((_, expected)) = rest.split_once("`, ")
    {
        return (
            segs.to_vec(),
            format!("unknown field ({})", expected.replace('`', "")),
        );
    }
    (segs.to_vec(), message.to_string())
}

/// The first variant listed in serde's "unknown variant `x`, expected one of `A`, `B`" message.
fn first_expected_variant(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown variant `")?;
    let (_, expected) = rest.split_once("`, expected ")?;
    let expected = expected.strip_prefix("one of ").unwrap_or(expected);
    let name = expected.strip_prefix('`')?;
    let end = name.find('`')?;
    Some(&name[..end])
}

/// Replaces an unknown enum variant by a known one: a string node, or the single key of a
/// `{variant: content}` map. True when something was replaced.
fn replace_variant(doc: &mut Value, segs: &[Seg], variant: &str) -> bool {
    match get_mut(doc, segs) {
        Some(node @ Value::String(_)) => {
            if node.as_str() == Some(variant) {
                return false;
            }
            *node = Value::String(variant.to_string());
            true
        }
        Some(Value::Object(m)) if m.len() == 1 => {
            let Some(key) = m.keys().next().cloned() else {
                return false;
            };
            if key == variant {
                return false;
            }
            let content = m.remove(&key).unwrap_or(Value::Null);
            m.insert(variant.to_string(), content);
            true
        }
        _ => false,
    }
}

/// Deserializes `doc`, repairing and retrying to collect every parse problem. Returns the
/// LoadTest of the repaired document (when one could be made) and the problems.
pub(super) fn parse_collecting(mut doc: Value) -> (Option<LoadTest>, Vec<FieldError>, Repairs) {
    let mut errs = Vec::new();
    let mut repairs = Repairs::default();
    strip_inline_secrets(&mut doc, &mut errs);
    if !doc.is_object() {
        errs.push(FieldError::new(
            "",
            format!(
                "expected a LoadTest mapping with apiVersion, kind, metadata and spec (got {})",
                loadtest::kind_of(&doc)
            ),
        ));
        return (None, errs, repairs);
    }
    let mut attempts: Vec<(Vec<Seg>, usize)> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let e = match serde_path_to_error::deserialize::<_, LoadTest>(&doc) {
            Ok(lt) => return (Some(lt), errs, repairs),
            Err(e) => e,
        };
        let raw_segs = segs_of(e.path());
        let (segs, message) = humanize(&raw_segs, &e.inner().to_string());
        let original = repairs.to_original(&segs);
        if !repairs.is_silenced(&original) && errs.len() < MAX_ERRORS {
            errs.push(FieldError::new(format_segs(&original), message.clone()));
        }
        let missing = message == "is required" && segs.len() == raw_segs.len() + 1;
        if missing {
            let tried = match attempts.iter_mut().find(|(p, _)| *p == segs) {
                Some((_, n)) => n,
                None => {
                    attempts.push((segs.clone(), 0));
                    match attempts.last_mut() {
                        Some((_, n)) => n,
                        None => break,
                    }
                }
            };
            let Some(candidate) = placeholders().into_iter().nth(*tried) else {
                break;
            };
            *tried += 1;
            if !insert_at(&mut doc, &segs, candidate) {
                break;
            }
            repairs.silenced.push(original);
        } else if let Some(variant) = first_expected_variant(&message)
            && replace_variant(&mut doc, &raw_segs, variant)
        {
            repairs.silenced.push(original);
        } else {
            if raw_segs.is_empty() || !remove_at(&mut doc, &raw_segs) {
                break;
            }
            if let Some((Seg::Index(i), array)) = raw_segs.split_last() {
                repairs.removed_elements.push((array.to_vec(), *i));
            }
            repairs.silenced.push(original);
        }
    }
    (None, errs, repairs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_through_text() {
        let segs = vec![
            Seg::Key("spec".into()),
            Seg::Key("kafka".into()),
            Seg::Key("properties".into()),
            Seg::Key("linger.ms".into()),
            Seg::Index(3),
            Seg::Key("a\"b".into()),
        ];
        assert_eq!(parse_segs(&format_segs(&segs)), segs);
    }

    #[test]
    fn removed_elements_map_back_to_original_indices() {
        let mut r = Repairs::default();
        let arr = vec![Seg::Key("t".into())];
        r.removed_elements.push((arr.clone(), 1));
        r.removed_elements.push((arr.clone(), 1));
        // After removing original [1] then original [2], current [1] is original [3].
        assert_eq!(
            r.to_original(&[Seg::Key("t".into()), Seg::Index(1)]),
            vec![Seg::Key("t".into()), Seg::Index(3)]
        );
        assert_eq!(
            r.to_original(&[Seg::Key("t".into()), Seg::Index(0)]),
            vec![Seg::Key("t".into()), Seg::Index(0)]
        );
    }
}
