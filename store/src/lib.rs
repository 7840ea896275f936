//! # barrage-store — where records and blobs are kept
//!
//! Two small ports that both binaries need, and their adapters:
//! - [`Store`]: LoadTest records (spec and status kept apart), agent status, the leader lease.
//!   Adapters: DynamoDB ([`dynamo`], watched through [`streams`]) and memory ([`memory`]).
//! - [`Blobs`]: interval histograms and reports. Adapters: S3 ([`s3`]) and a local folder
//!   ([`dir`]).
//!
//! The rules both record adapters follow (conditional versions, generations, epochs, the
//! lease) are one pure module, `rules`; what a watch yields and how it is stopped is
//! [`watch`], whichever adapter produces the events.
//!
//! SDK types never leave their adapter files: callers see only the types of `barrage-crds`
//! and of this module. Every write that can race is conditional, and a failed condition is
//! [`StoreError::Conflict`] ("read again and re-plan"), never a loud error.

use std::time::Duration;

use async_trait::async_trait;
use barrage_crds::agent_status::AgentStatus;
use barrage_crds::loadtest::LoadTest;
use barrage_crds::status::LoadTestStatus;
use bytes::Bytes;
use chrono::{DateTime, Utc};

pub mod aws;
pub mod dir;
pub mod dynamo;
pub mod memory;
pub mod rebased;
pub(crate) mod rules;
pub mod s3;
pub mod streams;
pub mod watch;

/// Why a record's document cannot be read as a LoadTest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    /// The item lacks its `doc` (or another attribute the layout needs), or has the wrong type.
    #[error(transparent)]
    Item(#[from] barrage_crds::items::ItemError),
    /// The document's `metadata.name` is not the record's key.
    #[error("metadata.name: {found:?} does not match the record's key (lt#{key})")]
    NameMismatch {
        /// The name in the record's key.
        key: String,
        /// The name in the document.
        found: String,
    },
    /// The document does not parse: every problem with its field path.
    #[error("{}", .0.to_string().trim_end())]
    Invalid(barrage_crds::validate::ValidationErrors),
    /// The document does not parse, though validation finds nothing (kept as a fallback).
    #[error(transparent)]
    Parse(barrage_crds::loadtest::ParseError),
}

/// A LoadTest record as kept, with the bookkeeping the controller conditions its writes on.
#[derive(Debug, Clone)]
pub struct StoredLoadTest {
    /// The record's name (its key), known even when the document does not parse.
    pub name: String,
    /// The status item's version (0 before the controller wrote one); status writes and the
    /// removal are conditional on it.
    pub version: u64,
    /// Bumped only when the spec changes (see `rules::effective_generation` for
    /// records put by hand).
    pub generation: i64,
    /// The parsed document (metadata and spec, status attached), or why it could not be
    /// parsed: a malformed record becomes `Failed`/`SpecInvalid`, it never stops the controller.
    pub doc: Result<LoadTest, DocError>,
    /// The status as last written by the controller.
    pub status: Option<LoadTestStatus>,
    /// Set when a status is stored but does not decode (written by another client, or a
    /// newer controller): the controller must leave such a record alone, never read it as
    /// "no status" and start a run again.
    pub status_error: Option<String>,
    /// Leader epoch of the last status write.
    pub epoch: u64,
    /// Set when a delete was requested (the finalizer then cleans up and removes the record).
    pub deletion_requested: Option<DateTime<Utc>>,
}

/// What `apply` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created {
        generation: i64,
    },
    /// The spec changed: generation bumped.
    Updated {
        generation: i64,
    },
    /// Same spec as stored: nothing written.
    Unchanged {
        generation: i64,
    },
}

/// A held leader lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    /// Fencing token: every controller write carries it; a newer holder's epoch is larger.
    pub epoch: u64,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost a race (version moved, or a newer leader epoch wrote).
    #[error("conditional write on {what} failed: the record changed or a newer leader wrote")]
    Conflict { what: String },
    #[error("{what} not found")]
    NotFound { what: String },
    /// The table or bucket is missing: the message says which and how to create it.
    #[error("{0}")]
    Missing(String),
    /// The backend throttled the request; retry later.
    #[error("throttled by {service} during {operation}")]
    Throttled {
        service: &'static str,
        operation: &'static str,
    },
    #[error("{operation} failed: {message}")]
    Backend {
        operation: &'static str,
        message: String,
    },
    #[error("stored data is corrupt at {what}: {message}")]
    Corrupt { what: String, message: String },
    /// A blob key this store cannot hold (outside its root, or not a plain relative path).
    #[error("blob key {key:?} {rule}")]
    BadKey { key: String, rule: String },
    #[error("I/O error on {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// True when retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Throttled { .. } | StoreError::Backend { .. }
        )
    }

    /// True for a lost conditional write: read again and re-plan.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// LoadTest records, agent status and the leader lease.
#[async_trait]
pub trait Store: Send + Sync {
    /// Every LoadTest record, parsed or not.
    async fn list_load_tests(&self) -> Result<Vec<StoredLoadTest>>;

    /// One record by name.
    async fn get_load_test(&self, name: &str) -> Result<Option<StoredLoadTest>>;

    /// Creates the record or updates its spec (metadata labels too). Generation bumps only
    /// when the spec changed. Never touches status.
    async fn apply(&self, load_test: &LoadTest) -> Result<Applied>;

    /// Writes status only, if the record is still at `expected_version` and no newer leader
    /// epoch has written. Returns the new version.
    async fn write_status(
        &self,
        name: &str,
        status: &LoadTestStatus,
        expected_version: u64,
        epoch: u64,
    ) -> Result<u64>;

    /// Marks the record for deletion (the controller's finalizer does the rest).
    async fn request_delete(&self, name: &str) -> Result<()>;

    /// Removes the record after the finalizer ran, conditional like `write_status`.
    async fn remove(&self, name: &str, expected_version: u64, epoch: u64) -> Result<()>;

    /// Writes an agent's own status item (agents write only their own).
    async fn put_agent_status(&self, status: &AgentStatus) -> Result<()>;

    /// Every agent status item of one run.
    async fn list_agent_status(&self, load_test: &str, run_id: &str) -> Result<Vec<AgentStatus>>;

    /// Takes the lease if it is free or expired (the epoch then grows), or renews it if
    /// `holder` holds it. `None` when another holder's lease is still valid.
    async fn acquire_lease(
        &self,
        holder: &str,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Lease>>;

    /// Gives the lease up (on graceful shutdown) so another controller takes over at once.
    async fn release_lease(&self, lease: &Lease) -> Result<()>;
}

/// Whether a write-once put created the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOnce {
    Created,
    /// A blob was already there: a retry, so nothing is counted twice.
    AlreadyExists,
}

/// Interval histograms and reports.
#[async_trait]
pub trait Blobs: Send + Sync {
    /// Writes `key` only if it does not exist yet.
    async fn put_once(&self, key: &str, body: Bytes, content_type: &str) -> Result<PutOnce>;

    /// Writes `key`, replacing what was there (reports, which are re-rendered).
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<()>;

    /// Reads `key`; `None` if absent.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// Every key under `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Where `key` can be found, for people (`s3://…`, a path).
    fn uri(&self, key: &str) -> String;
}

/// The store an URL of the environment contract names (`dynamodb://TABLE`, `memory:`).
pub async fn open_store(url: &barrage_crds::env::StoreUrl) -> Result<std::sync::Arc<dyn Store>> {
    use barrage_crds::env::StoreUrl;
    match url {
        StoreUrl::DynamoDb { table } => Ok(std::sync::Arc::new(
            dynamo::DynamoStore::from_env(table.clone()).await,
        )),
        StoreUrl::Memory => Ok(std::sync::Arc::new(memory::MemoryStore::new())),
        StoreUrl::Dir { path } => Err(StoreError::Missing(format!(
            "a folder store ({}) is not supported: use dynamodb://TABLE (locally, the AWS emulator started by scripts/local-operator.sh) or memory:",
            path.display()
        ))),
    }
}

/// The blob store an URL of the environment contract names (`s3://BUCKET/PREFIX`,
/// `dir:///path`, `memory:`).
pub async fn open_blobs(url: &barrage_crds::env::BlobsUrl) -> Result<std::sync::Arc<dyn Blobs>> {
    use barrage_crds::env::BlobsUrl;
    Ok(match url {
        BlobsUrl::S3 { bucket, prefix } => {
            std::sync::Arc::new(s3::S3Blobs::from_env(bucket.clone(), prefix.clone()).await)
        }
        BlobsUrl::Dir { path } => std::sync::Arc::new(dir::DirBlobs::new(path.clone())),
        BlobsUrl::Memory => std::sync::Arc::new(memory::MemoryBlobs::default()),
    })
}
