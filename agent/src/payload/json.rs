//! JSON record values from a template: JSON text with `{{…}}` placeholders, parsed once into
//! literal parts and fills, then rendered into bytes without parsing again.
//!
//! Pure and seeded: a record's bytes depend only on the template, the seed and the record's
//! [`RecordAt`] (its fleet-wide index and intended send time), so every agent renders record
//! `j` the same way.
//!
//! # Placeholders
//! | placeholder | renders |
//! |---|---|
//! | `{{seq}}`, `{{seq START}}` | the record's fleet-wide index, from 0 or `START`: unique in the run |
//! | `{{uuid}}` | a version-4 UUID, fresh per record (unique per index, see [`record_uuid`]) |
//! | `{{timestampMillis}}` | the record's intended send time, in ms since the epoch |
//! | `{{int MIN MAX}}`, `{{uniformInt MIN MAX}}` | a uniform integer in `[MIN, MAX]` |
//! | `{{string LEN}}`, `{{string MIN MAX}}` | alphanumeric text of `LEN` characters, or of a uniform length in `[MIN, MAX]` |
//! | `{{oneOf A B C}}` | one of the words, uniformly (words are separated by spaces) |
//! | `{{bool}}` | `true` or `false` |
//!
//! # Quoting
//! Inside a JSON string a placeholder inserts its text, escaped for JSON: `"id-{{seq}}"`.
//! Outside a string a placeholder is one whole JSON value — numbers and booleans bare, text
//! quoted (a `oneOf` word that is a JSON number, `true`, `false` or `null` stays bare) — so
//! `"user": {{uuid}}` and `"user": "{{uuid}}"` both give valid JSON. Such a placeholder stands
//! where a value can: after `:`, `,` or `[` (or alone), and before `,`, `]` or `}` (or the end).
//! `{{` always opens a placeholder; `}}` closes it.

use std::io::Write as _;

use barrage_crds::spec::JsonValue;
use barrage_crds::template::{self, Placeholder, Segment};
use rand::Rng;

pub use super::avro::PayloadError;
use super::avro::{DEFAULT_BASE_MILLIS, MAX_SIZE, alnum};
use super::{RecordAt, record_rng, record_uuid};

/// Where the template sits in a LoadTest; errors name this path.
pub const SPEC_PATH: &str = "spec.workload.records.value.json.template";

/// The placeholders a template may use, for messages and documentation.
pub use barrage_crds::template::PLACEHOLDERS;

/// What a placeholder renders.
#[derive(Debug, Clone, PartialEq)]
enum Fill {
    Seq {
        start: i64,
    },
    Uuid,
    TimestampMillis,
    Int {
        min: i64,
        max: i64,
    },
    Str {
        min: usize,
        max: usize,
    },
    /// Words already rendered for where the placeholder stands.
    OneOf(Vec<Vec<u8>>),
    Bool,
}

impl Fill {
    /// The most bytes this fill renders, quotes included.
    fn max_len(&self) -> usize {
        match self {
            Fill::Seq { .. } | Fill::TimestampMillis | Fill::Int { .. } => 40,
            Fill::Uuid => 38,
            Fill::Bool => 5,
            Fill::Str { max, .. } => max + 2,
            Fill::OneOf(words) => words.iter().map(Vec::len).max().unwrap_or(0),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(Vec<u8>),
    /// `quote`: outside a JSON string, so text values get quotes.
    Fill {
        fill: Fill,
        quote: bool,
    },
}

/// A parsed template, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonTemplate {
    parts: Vec<Part>,
    base_millis: i64,
    size_hint: usize,
}

/// Renders `count` values of `template`, reproducible from `seed`.
pub fn generate_pool(
    template: &str,
    seed: u64,
    count: usize,
) -> Result<Vec<Vec<u8>>, PayloadError> {
    Ok(JsonTemplate::parse(template)?.generate(seed, count))
}

impl JsonTemplate {
    /// Parses the template (with the one template parser, [`template::parse`]) and checks
    /// that it renders valid JSON.
    pub fn parse(template: &str) -> Result<Self, PayloadError> {
        let segments = template::parse(template)
            .map_err(|e| PayloadError::invalid(SPEC_PATH, e.to_string()))?;
        let parts: Vec<Part> = segments.into_iter().map(Part::from).collect();
        let largest: usize = parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.len(),
                Part::Fill { fill, .. } => fill.max_len(),
            })
            .fold(0, usize::saturating_add);
        if largest > MAX_SIZE {
            return Err(PayloadError::invalid(
                SPEC_PATH,
                format!(
                    "a rendered value could be {largest} bytes; at most {MAX_SIZE} (the record limit)"
                ),
            ));
        }
        let mut t = JsonTemplate {
            parts,
            base_millis: DEFAULT_BASE_MILLIS,
            size_hint: 0,
        };
        t.size_hint = t.check_sample()?;
        Ok(t)
    }

    /// Renders record 0 and checks it is JSON; returns a size hint for the record buffers.
    fn check_sample(&self) -> Result<usize, PayloadError> {
        let mut sample = Vec::new();
        self.render(0, RecordAt::nth(0, self.base_millis), &mut sample);
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&sample) {
            let shown: String = String::from_utf8_lossy(&sample).chars().take(200).collect();
            return Err(PayloadError::invalid(
                SPEC_PATH,
                format!("is not JSON once placeholders are filled in: {e} (sample: {shown})"),
            ));
        }
        Ok(sample.len() + sample.len() / 4)
    }

    /// From the LoadTest's `value.json`.
    pub fn from_spec(spec: &JsonValue) -> Result<Self, PayloadError> {
        JsonTemplate::parse(&spec.template)
    }

    /// Sets the intended time of record 0 in [`JsonTemplate::generate`] (ms since the epoch).
    pub fn with_base_time_millis(mut self, base_millis: i64) -> Self {
        self.base_millis = base_millis;
        self
    }

    /// Records `0..count`, intended one millisecond apart from the base time, reproducible
    /// from `seed`.
    pub fn generate(&self, seed: u64, count: usize) -> Vec<Vec<u8>> {
        (0..count as u64)
            .map(|index| {
                let mut out = Vec::with_capacity(self.size_hint);
                self.render(seed, RecordAt::nth(index, self.base_millis), &mut out);
                out
            })
            .collect()
    }

    /// Appends the value of the record at `at` to `out`.
    pub fn render(&self, seed: u64, at: RecordAt, out: &mut Vec<u8>) {
        let mut rng = record_rng(seed, at.index);
        for (n, part) in self.parts.iter().enumerate() {
            let (fill, quote) = match part {
                Part::Text(t) => {
                    out.extend_from_slice(t);
                    continue;
                }
                Part::Fill { fill, quote } => (fill, *quote),
            };
            // Writing to a Vec cannot fail.
            match fill {
                Fill::Seq { start } => {
                    let _ = write!(out, "{}", i128::from(*start) + i128::from(at.index));
                }
                Fill::TimestampMillis => {
                    let _ = write!(out, "{}", at.intended_millis);
                }
                Fill::Int { min, max } => {
                    let _ = write!(out, "{}", rng.random_range(*min..=*max));
                }
                Fill::Bool => out.extend_from_slice(if rng.random() { b"true" } else { b"false" }),
                Fill::Uuid => {
                    let mut buf = [0u8; 36];
                    let u = record_uuid(seed, n as u64, at.index);
                    quoted(out, quote, u.hyphenated().encode_lower(&mut buf).as_bytes());
                }
                Fill::Str { min, max } => {
                    let n = rng.random_range(*min..=*max);
                    quoted(out, quote, alnum(&mut rng, n).as_bytes());
                }
                Fill::OneOf(words) => {
                    let i = rng.random_range(0..words.len().max(1));
                    if let Some(w) = words.get(i) {
                        out.extend_from_slice(w);
                    }
                }
            }
        }
    }
}

fn quoted(out: &mut Vec<u8>, quote: bool, text: &[u8]) {
    if quote {
        out.push(b'"');
        out.extend_from_slice(text);
        out.push(b'"');
    } else {
        out.extend_from_slice(text);
    }
}

impl From<Segment<'_>> for Part {
    fn from(segment: Segment<'_>) -> Self {
        let (placeholder, quote) = match segment {
            Segment::Text(text) => return Part::Text(text.as_bytes().to_vec()),
            Segment::Placeholder {
                placeholder,
                in_string,
            } => (placeholder, !in_string),
        };
        let fill = match placeholder {
            Placeholder::Seq { start } => Fill::Seq { start },
            Placeholder::Uuid => Fill::Uuid,
            Placeholder::TimestampMillis => Fill::TimestampMillis,
            Placeholder::Int { min, max } => Fill::Int { min, max },
            Placeholder::Str { min, max } => Fill::Str {
                min: min as usize,
                max: max as usize,
            },
            Placeholder::OneOf(words) => {
                Fill::OneOf(words.iter().map(|w| one_of_word(w, quote)).collect())
            }
            Placeholder::Bool => Fill::Bool,
        };
        Part::Fill { fill, quote }
    }
}

/// A `oneOf` word rendered for where it stands: outside a string a JSON number, `true`, `false`
/// or `null` stays bare and other text is quoted; inside a string the text is escaped.
fn one_of_word(word: &str, quote: bool) -> Vec<u8> {
    let literal = quote
        && matches!(
            serde_json::from_str::<serde_json::Value>(word),
            Ok(serde_json::Value::Number(_) | serde_json::Value::Bool(_) | serde_json::Value::Null)
        );
    if literal {
        return word.as_bytes().to_vec();
    }
    let json = serde_json::Value::String(word.to_string()).to_string();
    if quote {
        return json.into_bytes();
    }
    // Drop the quotes: the text goes inside the template's own string.
    let inner = json
        .get(1..json.len().saturating_sub(1))
        .unwrap_or_default();
    inner.as_bytes().to_vec()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let e = JsonTemplate::parse("{\n  \"a\": {{nope}}\n}").unwrap_err();
        assert!(e.to_string().contains("line 2, column 8"), "{e}");
    }

    #[test]
    fn text_parts_and_fills_alternate_as_written() {
        let t = JsonTemplate::parse(r#"{"id": "x{{seq}}"}"#).unwrap();
        assert_eq!(t.parts.len(), 3);
        assert!(matches!(t.parts[1], Part::Fill { quote: false, .. }));
    }
}
