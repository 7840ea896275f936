//! Total validation: every accepted spec is within documented bounds, and every rejection lists
//! *all* problems, each with its field path and rule (`spec.load.steps[1].constant.rate: must be
//! greater than 0 (got -5)`). Nothing here panics, whatever the input.
//!
//! [`parse_and_validate`] also collects *several* parse errors: after each serde error it
//! repairs the document (drops the offending node, or fills a missing one with a placeholder
//! whose own errors are not reported) and tries again, then validates the repaired document and
//! reports the problems outside the repaired places.
//!
//! # Layout
//! - `mod.rs`: the entry points ([`validate`], [`parse_and_validate`], [`validate_value`]), the
//!   problem types ([`FieldError`], [`ValidationErrors`]) and the dispatcher that runs the rules
//!   of each spec section in order.
//! - `rules.rs`: the per-field rules, one function per spec section (metadata, kafka, topic,
//!   workload, load, agents, thresholds, report, warm-up, timeouts).
//! - `properties.rs`: the allow-listed client properties (`spec.kafka.*.properties`): inline
//!   secrets, keys that have a typed field, suggestions for misspelt keys.
//! - `value.rs`: the record value (`spec.workload.records.value`): sizes, Avro schemas and their
//!   generator names, JSON templates and their placeholders.
//! - `bounds.rs`: the numeric bounds ([`limits`], the documented [`BOUNDS`] table, Fargate
//!   sizes) and the cost guards.
//! - `repair.rs`: the repair-and-reparse path: how a document that fails to deserialize is
//!   repaired and read again so that every parse problem is named with its field path.
//!
//! Nothing here does I/O; the rules read a typed [`LoadTest`] and only push problems.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::duration::HumanDuration;
use crate::loadtest::{self, LoadTest};

mod bounds;
mod properties;
mod repair;
mod rules;
mod value;

pub use bounds::{BOUNDS, fargate_memory, limits};
pub(crate) use properties::is_secret_key;
pub use value::{JSON_TEMPLATE_PLACEHOLDERS, JsonTemplateError, check_json_template};

/// One problem: the field path and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Field path, e.g. `spec.load.steps[1].constant.rate`.
    pub path: String,
    /// The rule that failed, e.g. `must be greater than 0 (got -5)`.
    pub message: String,
}

impl FieldError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl From<loadtest::ParseError> for FieldError {
    fn from(e: loadtest::ParseError) -> Self {
        FieldError {
            path: e.path,
            message: e.message,
        }
    }
}

/// Every problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// The problems.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// True when some problem is at exactly `path`.
    pub fn has_path(&self, path: &str) -> bool {
        self.0.iter().any(|e| e.path == path)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// The message for an inline secret.
pub fn inline_secret_message() -> &'static str {
    "inline secrets are not accepted; store it in Secrets Manager or SSM and reference it with credentials.secretsManagerArn or credentials.ssmParameter"
}

/// Most problems reported.
const MAX_ERRORS: usize = 100;

/// The problems found so far, with the checks several rules share.
struct V {
    errs: Vec<FieldError>,
}

impl V {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errs.push(FieldError::new(path, message));
    }

    fn rate(&mut self, path: &str, v: f64, allow_zero: bool) {
        if !v.is_finite() {
            self.err(path, format!("must be a finite number (got {v})"));
        } else if allow_zero && v < 0.0 {
            self.err(path, format!("must be at least 0 (got {v})"));
        } else if !allow_zero && v <= 0.0 {
            self.err(path, format!("must be greater than 0 (got {v})"));
        }
    }

    fn positive_duration(&mut self, path: &str, d: HumanDuration) {
        if d.is_zero() {
            self.err(path, format!("must be greater than 0s (got {d})"));
        }
    }

    fn duration_between(&mut self, path: &str, d: HumanDuration, min: Duration, max: Duration) {
        if d.as_std() < min || d.as_std() > max {
            self.err(
                path,
                format!(
                    "must be between {} and {} (got {d})",
                    HumanDuration::from(min),
                    HumanDuration::from(max)
                ),
            );
        }
    }

    fn non_empty_opt(&mut self, path: &str, v: &Option<String>) {
        if let Some(s) = v
            && s.trim().is_empty()
        {
            self.err(path, "must not be empty when set");
        }
    }
}

/// Checks every rule; lists all problems.
pub fn validate(lt: &LoadTest) -> Result<(), ValidationErrors> {
    let mut v = V { errs: Vec::new() };
    check(lt, &mut v);
    if v.errs.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(v.errs))
    }
}

/// The dispatcher: the rules of each spec section, in the order their problems are listed.
fn check(lt: &LoadTest, v: &mut V) {
    if lt.api_version != loadtest::API_VERSION {
        v.err(
            "apiVersion",
            format!(
                "must be {:?} (got {:?})",
                loadtest::API_VERSION,
                lt.api_version
            ),
        );
    }
    if lt.kind != loadtest::KIND {
        v.err(
            "kind",
            format!("must be {:?} (got {:?})", loadtest::KIND, lt.kind),
        );
    }
    rules::check_metadata(lt, v);
    rules::check_kafka(lt, v);
    rules::check_topic(lt, v);
    rules::check_workload(lt, v);
    rules::check_load(lt, v);
    rules::check_agents(lt, v);
    rules::check_thresholds(lt, v);
    rules::check_report(lt, v);
    rules::check_warmup(lt, v);
    rules::check_timeouts(lt, v);
}

/// Parses YAML or JSON and validates it, listing every problem: parse errors (unknown fields,
/// wrong types, missing fields) with their paths, then the validation rules. Never panics.
pub fn parse_and_validate(text: &str) -> Result<LoadTest, ValidationErrors> {
    let doc = loadtest::text_to_value(text).map_err(|e| ValidationErrors(vec![e.into()]))?;
    validate_value(doc)
}

/// Like [`parse_and_validate`], for a document already parsed into a JSON value.
pub fn validate_value(doc: Value) -> Result<LoadTest, ValidationErrors> {
    let (lt, mut errs, repairs) = repair::parse_collecting(doc);
    if let Some(lt) = &lt
        && let Err(ValidationErrors(more)) = validate(lt)
    {
        for e in more {
            let Some(path) = repairs.original_path(&e.path) else {
                continue;
            };
            if errs.len() < MAX_ERRORS {
                errs.push(FieldError::new(path, e.message));
            }
        }
    }
    match lt {
        Some(lt) if errs.is_empty() => Ok(lt),
        _ => {
            if errs.is_empty() {
                errs.push(FieldError::new(
                    "",
                    "the document could not be read as a LoadTest",
                ));
            }
            Err(ValidationErrors(errs))
        }
    }
}
