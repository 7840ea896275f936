//! The agent environment contract: every variable the controller sets on an agent, what it
//! means, whether it is required, and its parsing into a typed [`Assignment`].
//!
//! The controller builds an [`Assignment`] and passes [`Assignment::to_env`] to ECS (container
//! overrides) or to a local process; the agent reads it back once with
//! [`Assignment::from_env`]. [`AGENT_ENV`] is the single table of variables; the tests check that
//! parsing and `to_env` use exactly its names.
//!
//! No secret ever travels in this contract: Kafka credentials are references resolved by the
//! agent itself. The standard `AWS_REGION`, `AWS_ENDPOINT_URL` and `RUST_LOG` are passed through
//! untouched and are not part of it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::HumanDuration;
use crate::keys::{
    LOAD_TEST_NAME_RULE, MAX_INCARNATION, MAX_SLOT, RUN_ID_RULE, is_valid_load_test_name,
    is_valid_run_id,
};

/// The LoadTest's name.
pub const BARRAGE_LOADTEST: &str = "BARRAGE_LOADTEST";
/// The run id.
pub const BARRAGE_RUN_ID: &str = "BARRAGE_RUN_ID";
/// The agent's slot.
pub const BARRAGE_SLOT: &str = "BARRAGE_SLOT";
/// The agent's incarnation in its slot.
pub const BARRAGE_INCARNATION: &str = "BARRAGE_INCARNATION";
/// Where records are kept.
pub const BARRAGE_STORE: &str = "BARRAGE_STORE";
/// Where blobs are kept.
pub const BARRAGE_BLOBS: &str = "BARRAGE_BLOBS";
/// The metrics listen address.
pub const BARRAGE_METRICS_ADDR: &str = "BARRAGE_METRICS_ADDR";
/// The log format.
pub const BARRAGE_LOG_FORMAT: &str = "BARRAGE_LOG_FORMAT";
/// The heartbeat period.
pub const BARRAGE_HEARTBEAT: &str = "BARRAGE_HEARTBEAT";

/// Default of `BARRAGE_METRICS_ADDR`.
pub const DEFAULT_METRICS_ADDR: &str = "0.0.0.0:9464";
/// The `BARRAGE_METRICS_ADDR` value that turns the metrics endpoint off.
pub const METRICS_OFF: &str = "off";
/// Default of `BARRAGE_HEARTBEAT`.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
/// Shortest accepted heartbeat period.
pub const MIN_HEARTBEAT: Duration = Duration::from_millis(100);
/// Longest accepted heartbeat period.
pub const MAX_HEARTBEAT: Duration = Duration::from_secs(600);

/// One variable of the agent environment contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable's name.
    pub name: &'static str,
    /// Whether the agent refuses to start without it.
    pub required: bool,
    /// What it means, its format and its default.
    pub meaning: &'static str,
}

/// Every variable of the agent environment contract, in the order the agent reads them.
pub const AGENT_ENV: &[EnvVar] = &[
    EnvVar {
        name: BARRAGE_LOADTEST,
        required: true,
        meaning: "Name of the LoadTest this agent runs (a DNS-1123 name, as in metadata.name).",
    },
    EnvVar {
        name: BARRAGE_RUN_ID,
        required: true,
        meaning: "Id of the run, set by the controller when the run starts (1 to 64 characters of A-Z, a-z, 0-9, '-', '_'); names the run's blobs and agent records.",
    },
    EnvVar {
        name: BARRAGE_SLOT,
        required: true,
        meaning: "The agent's slot, 0-based, below spec.agents.count (0..=9999): its share of the load and its key prefix.",
    },
    EnvVar {
        name: BARRAGE_INCARNATION,
        required: true,
        meaning: "How many times this slot was launched before, 0 for the first launch (0..=99); a replacement agent gets the next number so its records and blobs never collide with its predecessor's.",
    },
    EnvVar {
        name: BARRAGE_STORE,
        required: true,
        meaning: "Where LoadTest records and agent status live: dynamodb://TABLE, dir:///absolute/path (one machine) or memory: (in-process only).",
    },
    EnvVar {
        name: BARRAGE_BLOBS,
        required: true,
        meaning: "Where interval histograms and reports are written: s3://BUCKET[/PREFIX], dir:///absolute/path (one machine) or memory: (in-process only).",
    },
    EnvVar {
        name: BARRAGE_METRICS_ADDR,
        required: false,
        meaning: "IP:PORT of the agent's Prometheus endpoint (/metrics: target and achieved rate, schedule lag, errors by kind, dropped, in flight; /healthz); port 0 takes any free port, and the bound address is logged and written to the agent's status record (metricsAddr); \"off\" disables it. Default 0.0.0.0:9464 (ECS: one agent per task). On one machine the process launcher gives agents 127.0.0.1:0 (when the controller's BARRAGE_AGENT_METRICS_ADDR is set; off otherwise), so several agents never collide. An address that cannot be bound is logged and the agent runs without the endpoint.",
    },
    EnvVar {
        name: BARRAGE_LOG_FORMAT,
        required: false,
        meaning: "Log format: json (one JSON object per line, for ECS and CloudWatch) or text (one human-readable line per event; compact is a synonym). Default json when stderr is not a terminal (ECS, a log file, a pipe), text when it is. Filtering is RUST_LOG's.",
    },
    EnvVar {
        name: BARRAGE_HEARTBEAT,
        required: false,
        meaning: "How often the agent writes its status record, as a duration (100ms..=10m, e.g. 5s, 2500ms). Default 5s.",
    },
];

/// The contract as a Markdown table (`| Variable | Required | Meaning |`), for the README.
pub fn agent_env_markdown() -> String {
    let mut out = String::from("| Variable | Required | Meaning |\n| --- | --- | --- |\n");
    for var in AGENT_ENV {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            var.name,
            if var.required { "yes" } else { "no" },
            var.meaning.replace('|', "\\|")
        ));
    }
    out
}

/// A store or blobs URL that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule} (got {url:?})")]
pub struct UrlError {
    /// The text given.
    pub url: String,
    /// The rule it breaks.
    pub rule: String,
}

fn url_error(url: &str, rule: impl Into<String>) -> UrlError {
    UrlError {
        url: url.to_string(),
        rule: rule.into(),
    }
}

/// Parses `dir:///absolute/path`.
fn parse_dir(url: &str, rest: &str) -> Result<PathBuf, UrlError> {
    if !rest.starts_with('/') || rest.contains('\0') {
        return Err(url_error(
            url,
            "dir: needs an absolute path, written dir:///absolute/path",
        ));
    }
    Ok(PathBuf::from(rest))
}

/// Where records are kept (`BARRAGE_STORE`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoreUrl {
    /// `dynamodb://TABLE`: a DynamoDB table in the agent's region.
    DynamoDb {
        /// The table name.
        table: String,
    },
    /// `dir:///absolute/path`: a local folder (one machine).
    Dir {
        /// The absolute path of the folder.
        path: PathBuf,
    },
    /// `memory:`: in the process's memory (in-process runs and tests only).
    Memory,
}

/// What [`StoreUrl`] accepts.
pub const STORE_URL_RULE: &str = "expected dynamodb://TABLE, dir:///absolute/path or memory:";

/// Whether `table` is a valid DynamoDB table name: 3 to 255 characters of `a-z`, `A-Z`, `0-9`,
/// `_`, `-` and `.`.
pub fn is_valid_table_name(table: &str) -> bool {
    (3..=255).contains(&table.len())
        && table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl FromStr for StoreUrl {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if url == "memory:" {
            return Ok(StoreUrl::Memory);
        }
        if let Some(table) = url.strip_prefix("dynamodb://") {
            if !is_valid_table_name(table) {
                return Err(url_error(
                    url,
                    "dynamodb://TABLE: table names are 3 to 255 characters of a-z, A-Z, 0-9, '_', '-' and '.'",
                ));
            }
            return Ok(StoreUrl::DynamoDb {
                table: table.to_string(),
            });
        }
        if let Some(rest) = url.strip_prefix("dir://") {
            return Ok(StoreUrl::Dir {
                path: parse_dir(url, rest)?,
            });
        }
        Err(url_error(url, STORE_URL_RULE))
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::DynamoDb { table } => write!(f, "dynamodb://{table}"),
            StoreUrl::Dir { path } => write!(f, "dir://{}", path.display()),
            StoreUrl::Memory => f.write_str("memory:"),
        }
    }
}

/// Where blobs are kept (`BARRAGE_BLOBS`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BlobsUrl {
    /// `s3://BUCKET[/PREFIX]`: an S3 bucket, keys under an optional prefix.
    S3 {
        /// The bucket name.
        bucket: String,
        /// The key prefix, without leading or trailing `/`; empty for the bucket's root.
        prefix: String,
    },
    /// `dir:///absolute/path`: a local folder (one machine).
    Dir {
        /// The absolute path of the folder.
        path: PathBuf,
    },
    /// `memory:`: in the process's memory (in-process runs and tests only).
    Memory,
}

/// What [`BlobsUrl`] accepts.
pub const BLOBS_URL_RULE: &str = "expected s3://BUCKET[/PREFIX], dir:///absolute/path or memory:";

/// Whether `bucket` is a valid S3 bucket name: 3 to 63 characters of `a-z`, `0-9`, `.` and `-`,
/// starting and ending with a letter or digit, without `..`.
pub fn is_valid_bucket_name(bucket: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (3..=63).contains(&bucket.len())
        && bucket.chars().all(|c| alnum(c) || c == '.' || c == '-')
        && bucket.starts_with(alnum)
        && bucket.ends_with(alnum)
        && !bucket.contains("..")
}

impl BlobsUrl {
    /// The full object key (or relative file path) of a key from [`crate::keys`].
    pub fn object_key(&self, key: &str) -> String {
        match self {
            BlobsUrl::S3 { prefix, .. } => crate::keys::join_prefix(prefix, key),
            BlobsUrl::Dir { .. } | BlobsUrl::Memory => key.to_string(),
        }
    }
}

impl FromStr for BlobsUrl {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if url == "memory:" {
            return Ok(BlobsUrl::Memory);
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if !is_valid_bucket_name(bucket) {
                return Err(url_error(
                    url,
                    "s3://BUCKET[/PREFIX]: bucket names are 3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit",
                ));
            }
            let prefix = prefix.trim_end_matches('/');
            let bad_segment = |s: &str| s.is_empty() || s == "." || s == "..";
            if !prefix.is_empty()
                && (prefix.split('/').any(bad_segment) || prefix.chars().any(|c| c.is_control()))
            {
                return Err(url_error(
                    url,
                    "s3://BUCKET[/PREFIX]: the prefix must not contain empty, '.' or '..' segments or control characters",
                ));
            }
            return Ok(BlobsUrl::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        if let Some(rest) = url.strip_prefix("dir://") {
            return Ok(BlobsUrl::Dir {
                path: parse_dir(url, rest)?,
            });
        }
        Err(url_error(url, BLOBS_URL_RULE))
    }
}

impl fmt::Display for BlobsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobsUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            BlobsUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            BlobsUrl::Dir { path } => write!(f, "dir://{}", path.display()),
            BlobsUrl::Memory => f.write_str("memory:"),
        }
    }
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(StoreUrl);
string_serde!(BlobsUrl);

/// The agent's log format (`BARRAGE_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// One JSON object per line (ECS, CloudWatch).
    #[default]
    Json,
    /// Human-readable single lines (terminals); written `text` or `compact`.
    Compact,
}

impl LogFormat {
    /// The value as written in the environment.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Compact => "compact",
        }
    }
}

/// A log format other than `json`, `text` or `compact`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{LOG_FORMAT_RULE} (got {0:?})")]
pub struct LogFormatError(pub String);

/// What [`LogFormat`] accepts.
pub const LOG_FORMAT_RULE: &str = "must be json, text or compact";

impl FromStr for LogFormat {
    type Err = LogFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(LogFormat::Json),
            "text" | "compact" => Ok(LogFormat::Compact),
            _ => Err(LogFormatError(s.to_string())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything an agent is told at start: who it is and where to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// `BARRAGE_LOADTEST`: the LoadTest's name.
    pub load_test: String,
    /// `BARRAGE_RUN_ID`: the run id.
    pub run_id: String,
    /// `BARRAGE_SLOT`: the agent's slot, 0-based.
    pub slot: u32,
    /// `BARRAGE_INCARNATION`: launches of this slot before this one.
    pub incarnation: u32,
    /// `BARRAGE_STORE`: where records are kept.
    pub store: StoreUrl,
    /// `BARRAGE_BLOBS`: where blobs are kept.
    pub blobs: BlobsUrl,
    /// `BARRAGE_METRICS_ADDR`: the metrics listen address, `None` when turned off.
    pub metrics_addr: Option<String>,
    /// `BARRAGE_LOG_FORMAT`: the log format.
    pub log_format: LogFormat,
    /// `BARRAGE_HEARTBEAT`: how often the agent writes its status record.
    pub heartbeat: Duration,
}

/// One variable that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvProblem {
    /// The variable's name.
    pub name: &'static str,
    /// The value found, `None` if the variable is not set (or empty).
    pub value: Option<String>,
    /// The rule broken.
    pub rule: EnvRule,
}

/// The rule an agent variable breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvRule {
    /// A required variable is unset or empty; carries what the variable means.
    #[error("is required and not set: {0}")]
    Required(&'static str),
    /// `BARRAGE_LOADTEST` is not a LoadTest name.
    #[error("{LOAD_TEST_NAME_RULE}")]
    LoadTestName,
    /// `BARRAGE_RUN_ID` is not a run id.
    #[error("{RUN_ID_RULE}")]
    RunId,
    /// An integer variable is not a number up to `max`.
    #[error("must be an integer from 0 to {max}")]
    IntegerUpTo {
        /// The largest value allowed.
        max: u32,
    },
    /// A store or blobs URL does not parse; carries the URL rule broken.
    #[error("{0}")]
    Url(String),
    /// `BARRAGE_METRICS_ADDR` is neither an address nor `off`.
    #[error("must be IP:PORT (e.g. 0.0.0.0:9464) or {METRICS_OFF}")]
    MetricsAddr,
    /// `BARRAGE_LOG_FORMAT` is not a log format.
    #[error("{LOG_FORMAT_RULE}")]
    LogFormat,
    /// `BARRAGE_HEARTBEAT` is not a duration in the allowed range.
    #[error(
        "must be a duration from {} to {} (e.g. 5s, 2500ms)",
        HumanDuration::from(MIN_HEARTBEAT),
        HumanDuration::from(MAX_HEARTBEAT)
    )]
    Heartbeat,
}

impl fmt::Display for EnvProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}: {} (got {value:?})", self.name, self.rule),
            None => write!(f, "{}: {}", self.name, self.rule),
        }
    }
}

/// Why an agent environment was rejected: every missing or invalid variable, each named with
/// its rule, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct EnvError {
    /// The problems, in [`AGENT_ENV`] order.
    pub problems: Vec<EnvProblem>,
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid agent environment:")?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// Collects problems while reading variables.
struct Reader<F> {
    lookup: F,
    problems: Vec<EnvProblem>,
}

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    /// The variable's value; empty counts as unset.
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.is_empty())
    }

    fn problem(&mut self, name: &'static str, value: Option<String>, rule: EnvRule) {
        self.problems.push(EnvProblem { name, value, rule });
    }

    /// A required variable, parsed by `parse` (which returns the rule on failure).
    fn required<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, EnvRule>,
    ) -> Option<T> {
        let Some(value) = self.get(name) else {
            let meaning = AGENT_ENV
                .iter()
                .find(|v| v.name == name)
                .map_or("", |v| v.meaning);
            self.problem(name, None, EnvRule::Required(meaning));
            return None;
        };
        self.parsed(name, value, parse)
    }

    /// An optional variable, parsed by `parse`, or `default` when unset.
    fn optional<T>(
        &mut self,
        name: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, EnvRule>,
    ) -> Option<T> {
        match self.get(name) {
            None => Some(default),
            Some(value) => self.parsed(name, value, parse),
        }
    }

    fn parsed<T>(
        &mut self,
        name: &'static str,
        value: String,
        parse: impl FnOnce(&str) -> Result<T, EnvRule>,
    ) -> Option<T> {
        match parse(&value) {
            Ok(v) => Some(v),
            Err(rule) => {
                self.problem(name, Some(value), rule);
                None
            }
        }
    }
}

fn bounded_u32(max: u32) -> impl FnOnce(&str) -> Result<u32, EnvRule> {
    move |s| match s.parse::<u32>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(EnvRule::IntegerUpTo { max }),
    }
}

fn parse_heartbeat(s: &str) -> Result<Duration, EnvRule> {
    match s.parse::<HumanDuration>() {
        Ok(d) if (MIN_HEARTBEAT..=MAX_HEARTBEAT).contains(&d.as_std()) => Ok(d.as_std()),
        _ => Err(EnvRule::Heartbeat),
    }
}

fn parse_metrics_addr(s: &str) -> Result<Option<String>, EnvRule> {
    if s == METRICS_OFF {
        return Ok(None);
    }
    match s.parse::<std::net::SocketAddr>() {
        Ok(_) => Ok(Some(s.to_string())),
        Err(_) => Err(EnvRule::MetricsAddr),
    }
}

impl Assignment {
    /// Reads the assignment from the process environment; see [`Assignment::from_lookup`].
    pub fn from_env() -> Result<Assignment, EnvError> {
        Assignment::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the assignment through `lookup` (a variable's value, `None` if unset; an empty
    /// value counts as unset). Every missing or invalid variable is reported, each with its
    /// name and rule.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Assignment, EnvError> {
        let mut r = Reader {
            lookup,
            problems: Vec::new(),
        };
        let load_test = r.required(BARRAGE_LOADTEST, |s| {
            if is_valid_load_test_name(s) {
                Ok(s.to_string())
            } else {
                Err(EnvRule::LoadTestName)
            }
        });
        let run_id = r.required(BARRAGE_RUN_ID, |s| {
            if is_valid_run_id(s) {
                Ok(s.to_string())
            } else {
                Err(EnvRule::RunId)
            }
        });
        let slot = r.required(BARRAGE_SLOT, bounded_u32(MAX_SLOT));
        let incarnation = r.required(BARRAGE_INCARNATION, bounded_u32(MAX_INCARNATION));
        let store = r.required(BARRAGE_STORE, |s| {
            s.parse::<StoreUrl>().map_err(|e| EnvRule::Url(e.rule))
        });
        let blobs = r.required(BARRAGE_BLOBS, |s| {
            s.parse::<BlobsUrl>().map_err(|e| EnvRule::Url(e.rule))
        });
        let metrics_addr = r.optional(
            BARRAGE_METRICS_ADDR,
            Some(DEFAULT_METRICS_ADDR.to_string()),
            parse_metrics_addr,
        );
        let log_format = r.optional(BARRAGE_LOG_FORMAT, LogFormat::Json, |s| {
            s.parse::<LogFormat>().map_err(|_| EnvRule::LogFormat)
        });
        let heartbeat = r.optional(BARRAGE_HEARTBEAT, DEFAULT_HEARTBEAT, parse_heartbeat);

        match (
            load_test,
            run_id,
            slot,
            incarnation,
            store,
            blobs,
            metrics_addr,
            log_format,
            heartbeat,
        ) {
            (
                Some(load_test),
                Some(run_id),
                Some(slot),
                Some(incarnation),
                Some(store),
                Some(blobs),
                Some(metrics_addr),
                Some(log_format),
                Some(heartbeat),
            ) if r.problems.is_empty() => Ok(Assignment {
                load_test,
                run_id,
                slot,
                incarnation,
                store,
                blobs,
                metrics_addr,
                log_format,
                heartbeat,
            }),
            _ => Err(EnvError {
                problems: r.problems,
            }),
        }
    }

    /// The environment that makes an agent read back this assignment, every variable of
    /// [`AGENT_ENV`] in its order (optional ones included, with their values).
    pub fn to_env(&self) -> Vec<(String, String)> {
        let metrics = self
            .metrics_addr
            .clone()
            .unwrap_or_else(|| METRICS_OFF.to_string());
        [
            (BARRAGE_LOADTEST, self.load_test.clone()),
            (BARRAGE_RUN_ID, self.run_id.clone()),
            (BARRAGE_SLOT, self.slot.to_string()),
            (BARRAGE_INCARNATION, self.incarnation.to_string()),
            (BARRAGE_STORE, self.store.to_string()),
            (BARRAGE_BLOBS, self.blobs.to_string()),
            (BARRAGE_METRICS_ADDR, metrics),
            (BARRAGE_LOG_FORMAT, self.log_format.to_string()),
            (
                BARRAGE_HEARTBEAT,
                HumanDuration::from(self.heartbeat).to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}
