//! `ControllerConfig`: what a controller runs with, typed. The `barrage` CLI reads it from
//! flags and environment (clap's `env`, one setting per variable named here) and checks the
//! rules that span settings; embedders and tests build it with [`ControllerConfig::local`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use barrage_crds::env::{BlobsUrl, StoreUrl};

use crate::launch::ecs::EcsConfig;

/// `BARRAGE_STORE`: where LoadTests, agent status and the lease are kept.
pub const BARRAGE_STORE: &str = "BARRAGE_STORE";
/// `BARRAGE_BLOBS`: where histograms and reports go.
pub const BARRAGE_BLOBS: &str = "BARRAGE_BLOBS";
/// `BARRAGE_LAUNCHER`: `ecs` or `process`.
pub const BARRAGE_LAUNCHER: &str = "BARRAGE_LAUNCHER";
/// `BARRAGE_ECS_CLUSTER`.
pub const BARRAGE_ECS_CLUSTER: &str = "BARRAGE_ECS_CLUSTER";
/// `BARRAGE_AGENT_TASK_DEFINITION`.
pub const BARRAGE_AGENT_TASK_DEFINITION: &str = "BARRAGE_AGENT_TASK_DEFINITION";
/// `BARRAGE_AGENT_CONTAINER` (default `agent`).
pub const BARRAGE_AGENT_CONTAINER: &str = "BARRAGE_AGENT_CONTAINER";
/// `BARRAGE_SUBNETS`: comma-separated.
pub const BARRAGE_SUBNETS: &str = "BARRAGE_SUBNETS";
/// `BARRAGE_SECURITY_GROUPS`: comma-separated.
pub const BARRAGE_SECURITY_GROUPS: &str = "BARRAGE_SECURITY_GROUPS";
/// `BARRAGE_ASSIGN_PUBLIC_IP`: `ENABLED`/`DISABLED` (as CloudFormation writes it) or true/false.
pub const BARRAGE_ASSIGN_PUBLIC_IP: &str = "BARRAGE_ASSIGN_PUBLIC_IP";
/// `BARRAGE_METRICS_ADDR`: the controller's `/metrics` and `/healthz`, or `off`.
pub const BARRAGE_METRICS_ADDR: &str = "BARRAGE_METRICS_ADDR";
/// `BARRAGE_LOG_FORMAT`: `json` or `compact`.
pub const BARRAGE_LOG_FORMAT: &str = "BARRAGE_LOG_FORMAT";
/// `BARRAGE_RESYNC_PERIOD`: full relist period (default 30s).
pub const BARRAGE_RESYNC_PERIOD: &str = "BARRAGE_RESYNC_PERIOD";
/// `BARRAGE_LEASE_DURATION`: leader lease (default 15s; renewed every third of it).
pub const BARRAGE_LEASE_DURATION: &str = "BARRAGE_LEASE_DURATION";
/// `BARRAGE_SHUTDOWN_GRACE`: how long a stopping controller may take to finish reconciles in
/// progress and release its lease before it exits anyway (default 20s).
pub const BARRAGE_SHUTDOWN_GRACE: &str = "BARRAGE_SHUTDOWN_GRACE";
/// `BARRAGE_CONTROLLER_ID`: this controller's lease holder name.
pub const BARRAGE_CONTROLLER_ID: &str = "BARRAGE_CONTROLLER_ID";
/// `BARRAGE_WORKERS`: LoadTests reconciled at once (default 16).
pub const BARRAGE_WORKERS: &str = "BARRAGE_WORKERS";
/// `BARRAGE_WATCH_POLL`: pause between rounds of DynamoDB Streams `GetRecords` (default 500ms).
pub const BARRAGE_WATCH_POLL: &str = "BARRAGE_WATCH_POLL";
/// `BARRAGE_AGENT_BINARY`: the `barrage-agent` program for the process launcher.
pub const BARRAGE_AGENT_BINARY: &str = "BARRAGE_AGENT_BINARY";
/// `BARRAGE_AGENT_LOG_DIR`: where the process launcher writes agent logs.
pub const BARRAGE_AGENT_LOG_DIR: &str = "BARRAGE_AGENT_LOG_DIR";
/// `BARRAGE_AGENT_METRICS_ADDR`: the agents' metrics address, or `off`.
pub const BARRAGE_AGENT_METRICS_ADDR: &str = "BARRAGE_AGENT_METRICS_ADDR";
/// `BARRAGE_AGENT_HEARTBEAT`: the agents' heartbeat period (default 5s).
pub const BARRAGE_AGENT_HEARTBEAT: &str = "BARRAGE_AGENT_HEARTBEAT";

/// Default metrics address of a local controller (process launcher).
pub const LOCAL_METRICS_ADDR: &str = "127.0.0.1:9464";
/// Default metrics address in ECS (ecs launcher): reachable by the scraper.
pub const ECS_METRICS_ADDR: &str = "0.0.0.0:9464";
/// Default full resync period.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(30);
/// Default number of LoadTests reconciled at once. Reconciles wait on AWS calls, not on CPU:
/// enough workers that a burst of new records does not queue behind a few.
pub const DEFAULT_WORKERS: usize = 16;
/// Default pause between rounds of stream reads: a new record is seen within about this long.
/// DynamoDB Streams serves at most 5 `GetRecords` per second per shard, shared by every
/// reader; two controllers (leader and standby) polling every 500 ms make 4.
pub const DEFAULT_WATCH_POLL: Duration = Duration::from_millis(500);
/// Default leader lease.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// Default shutdown grace: under the controller task's `StopTimeout` (30 s in
/// infra/barrage.yaml), so a controller whose AWS calls hang (30 s operation timeout each)
/// still exits before ECS kills it. A lease not released in time expires by itself.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// Default controller id when none is given (`from_env` makes a unique one).
pub const DEFAULT_CONTROLLER_ID: &str = "barrage-controller";

/// How agents are started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LauncherKind {
    /// One ECS task per agent.
    Ecs,
    /// One local `barrage-agent` process per agent.
    Process,
}

impl LauncherKind {
    /// `ecs` or `process`.
    pub fn as_str(self) -> &'static str {
        match self {
            LauncherKind::Ecs => "ecs",
            LauncherKind::Process => "process",
        }
    }
}

/// Everything `barrage controller` is configured with.
#[derive(Clone, Debug, PartialEq)]
pub struct ControllerConfig {
    /// `BARRAGE_STORE`.
    pub store: StoreUrl,
    /// `BARRAGE_BLOBS`.
    pub blobs: BlobsUrl,
    /// `BARRAGE_LAUNCHER`.
    pub launcher: LauncherKind,
    /// ECS settings (present when the launcher is `ecs`).
    pub ecs: Option<EcsConfig>,
    /// The agent program for the process launcher (None: next to `barrage`, else on `PATH`).
    pub agent_binary: Option<PathBuf>,
    /// Agent logs of the process launcher (None: `~/.cache/barrage/agents`).
    pub agent_log_dir: Option<PathBuf>,
    /// The agents' metrics address (None: off).
    pub agent_metrics_addr: Option<String>,
    /// The agents' heartbeat period.
    pub agent_heartbeat: Duration,
    /// The controller's metrics address (None: off).
    pub metrics_addr: Option<SocketAddr>,
    /// Full relist period.
    pub resync: Duration,
    /// Leader lease duration.
    pub lease_duration: Duration,
    /// Longest graceful shutdown after SIGTERM (`BARRAGE_SHUTDOWN_GRACE`).
    pub shutdown_grace: Duration,
    /// Lease holder name.
    pub controller_id: String,
    /// LoadTests reconciled at once.
    pub workers: usize,
    /// Pause between rounds of stream reads (`BARRAGE_WATCH_POLL`).
    pub watch_poll: Duration,
}

/// Every problem of a configuration, each naming the variable and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid controller configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

impl ControllerConfig {
    /// A configuration for tests and embedding: process launcher, no metrics, short periods.
    pub fn local(store: StoreUrl, blobs: BlobsUrl) -> ControllerConfig {
        ControllerConfig {
            store,
            blobs,
            launcher: LauncherKind::Process,
            ecs: None,
            agent_binary: None,
            agent_log_dir: None,
            agent_metrics_addr: None,
            agent_heartbeat: barrage_crds::env::DEFAULT_HEARTBEAT,
            metrics_addr: None,
            resync: DEFAULT_RESYNC,
            lease_duration: DEFAULT_LEASE,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            controller_id: DEFAULT_CONTROLLER_ID.to_string(),
            workers: DEFAULT_WORKERS,
            watch_poll: DEFAULT_WATCH_POLL,
        }
    }
}
