//! `ControllerConfig`: read once, typed, in one place. [`ControllerConfig::from_lookup`] is pure
//! (tests pass a map); [`ControllerConfig::from_env`] reads the process environment. Flags of
//! `barrage controller` are folded in by the CLI as a lookup that prefers them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use barrage_crds::duration::HumanDuration;
use barrage_crds::env::{BlobsUrl, LogFormat, StoreUrl};

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

/// Every variable the controller reads, for `--help` and docs.
pub const CONTROLLER_ENV: &[&str] = &[
    BARRAGE_STORE,
    BARRAGE_BLOBS,
    BARRAGE_LAUNCHER,
    BARRAGE_ECS_CLUSTER,
    BARRAGE_AGENT_TASK_DEFINITION,
    BARRAGE_AGENT_CONTAINER,
    BARRAGE_SUBNETS,
    BARRAGE_SECURITY_GROUPS,
    BARRAGE_ASSIGN_PUBLIC_IP,
    BARRAGE_METRICS_ADDR,
    BARRAGE_LOG_FORMAT,
    BARRAGE_RESYNC_PERIOD,
    BARRAGE_LEASE_DURATION,
    BARRAGE_SHUTDOWN_GRACE,
    BARRAGE_CONTROLLER_ID,
    BARRAGE_WORKERS,
    BARRAGE_WATCH_POLL,
    BARRAGE_AGENT_BINARY,
    BARRAGE_AGENT_LOG_DIR,
    BARRAGE_AGENT_METRICS_ADDR,
    BARRAGE_AGENT_HEARTBEAT,
];

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
    /// Log format.
    pub log_format: LogFormat,
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
            log_format: LogFormat::Compact,
            resync: DEFAULT_RESYNC,
            lease_duration: DEFAULT_LEASE,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            controller_id: DEFAULT_CONTROLLER_ID.to_string(),
            workers: DEFAULT_WORKERS,
            watch_poll: DEFAULT_WATCH_POLL,
        }
    }

    /// Reads the process environment; a missing `BARRAGE_CONTROLLER_ID` becomes
    /// `{HOSTNAME}-{pid}-{random}` so two controllers never share a name.
    pub fn from_env() -> Result<ControllerConfig, ConfigError> {
        ControllerConfig::from_lookup(default_id(|k| std::env::var(k).ok()))
    }

    /// Reads the process environment with `overrides` (command-line flags) taking precedence.
    pub fn from_env_with(
        overrides: impl Fn(&str) -> Option<String>,
    ) -> Result<ControllerConfig, ConfigError> {
        ControllerConfig::from_lookup(default_id(move |k| {
            overrides(k).or_else(|| std::env::var(k).ok())
        }))
    }

    /// Reads the configuration through `lookup` (pure: no environment, no clock).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ControllerConfig, ConfigError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let problems = std::cell::RefCell::new(Vec::<String>::new());
        let bad = |name: &str, rule: &str, got: &str| {
            problems
                .borrow_mut()
                .push(format!("{name}: {rule} (got '{got}')"));
        };

        let store = match get(BARRAGE_STORE) {
            None => None,
            Some(v) => match v.parse::<StoreUrl>() {
                Ok(u) => Some(u),
                Err(e) => {
                    bad(BARRAGE_STORE, &e.to_string(), &v);
                    None
                }
            },
        };
        let blobs = match get(BARRAGE_BLOBS) {
            None => None,
            Some(v) => match v.parse::<BlobsUrl>() {
                Ok(u) => Some(u),
                Err(e) => {
                    bad(BARRAGE_BLOBS, &e.to_string(), &v);
                    None
                }
            },
        };
        let launcher = match get(BARRAGE_LAUNCHER).as_deref() {
            None | Some("ecs") => LauncherKind::Ecs,
            Some("process") => LauncherKind::Process,
            Some(other) => {
                bad(BARRAGE_LAUNCHER, "must be ecs or process", other);
                LauncherKind::Ecs
            }
        };
        let list = |k: &str| -> Vec<String> {
            get(k)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let assign_public_ip = match get(BARRAGE_ASSIGN_PUBLIC_IP) {
            None => false,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "enabled" | "true" | "yes" | "1" => true,
                "disabled" | "false" | "no" | "0" => false,
                _ => {
                    bad(BARRAGE_ASSIGN_PUBLIC_IP, "must be ENABLED or DISABLED", &v);
                    false
                }
            },
        };
        let ecs = if launcher == LauncherKind::Ecs {
            let cluster = get(BARRAGE_ECS_CLUSTER);
            let task_definition = get(BARRAGE_AGENT_TASK_DEFINITION);
            if cluster.is_none() {
                problems.borrow_mut().push(format!(
                    "{BARRAGE_ECS_CLUSTER}: required with the ecs launcher (or use --launcher process)"
                ));
            }
            if task_definition.is_none() {
                problems.borrow_mut().push(format!(
                    "{BARRAGE_AGENT_TASK_DEFINITION}: required with the ecs launcher (or use --launcher process)"
                ));
            }
            Some(EcsConfig {
                cluster: cluster.unwrap_or_default(),
                task_definition: task_definition.unwrap_or_default(),
                container_name: get(BARRAGE_AGENT_CONTAINER).unwrap_or_else(|| "agent".into()),
                subnets: list(BARRAGE_SUBNETS),
                security_groups: list(BARRAGE_SECURITY_GROUPS),
                assign_public_ip,
                enable_ecs_managed_tags: false,
                propagate_task_definition_tags: false,
                owner: store.as_ref().map(ToString::to_string),
            })
        } else {
            None
        };

        let default_metrics = match launcher {
            LauncherKind::Ecs => ECS_METRICS_ADDR,
            LauncherKind::Process => LOCAL_METRICS_ADDR,
        };
        let metrics_text = get(BARRAGE_METRICS_ADDR).unwrap_or_else(|| default_metrics.into());
        let metrics_addr = if metrics_text == "off" {
            None
        } else {
            match metrics_text.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    bad(
                        BARRAGE_METRICS_ADDR,
                        "must be IP:PORT or off",
                        &metrics_text,
                    );
                    None
                }
            }
        };
        let agent_metrics_addr = match get(BARRAGE_AGENT_METRICS_ADDR) {
            // Many local agents share one host: no fixed port unless asked for.
            None => match launcher {
                LauncherKind::Ecs => Some(barrage_crds::env::DEFAULT_METRICS_ADDR.to_string()),
                LauncherKind::Process => None,
            },
            Some(v) if v == "off" => None,
            Some(v) => {
                if v.parse::<SocketAddr>().is_err() {
                    bad(BARRAGE_AGENT_METRICS_ADDR, "must be IP:PORT or off", &v);
                }
                Some(v)
            }
        };
        let log_format = match get(BARRAGE_LOG_FORMAT) {
            None => LogFormat::Compact,
            Some(v) => v.parse::<LogFormat>().unwrap_or_else(|_| {
                bad(BARRAGE_LOG_FORMAT, "must be json or compact", &v);
                LogFormat::Compact
            }),
        };
        let duration = |name: &str, default: Duration, min: Duration| match get(name) {
            None => default,
            Some(v) => match HumanDuration::parse(&v) {
                Ok(d) if d.as_std() >= min => d.as_std(),
                Ok(_) => {
                    bad(name, &format!("must be at least {min:?}"), &v);
                    default
                }
                Err(e) => {
                    bad(name, &e.to_string(), &v);
                    default
                }
            },
        };
        let resync = duration(
            BARRAGE_RESYNC_PERIOD,
            DEFAULT_RESYNC,
            Duration::from_secs(1),
        );
        let lease_duration = duration(
            BARRAGE_LEASE_DURATION,
            DEFAULT_LEASE,
            Duration::from_secs(3),
        );
        let shutdown_grace = duration(
            BARRAGE_SHUTDOWN_GRACE,
            DEFAULT_SHUTDOWN_GRACE,
            Duration::from_secs(1),
        );
        let agent_heartbeat = duration(
            BARRAGE_AGENT_HEARTBEAT,
            barrage_crds::env::DEFAULT_HEARTBEAT,
            barrage_crds::env::MIN_HEARTBEAT,
        );
        let workers = match get(BARRAGE_WORKERS) {
            None => DEFAULT_WORKERS,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=256).contains(&n) => n,
                _ => {
                    bad(BARRAGE_WORKERS, "must be a number from 1 to 256", &v);
                    DEFAULT_WORKERS
                }
            },
        };
        let watch_poll = duration(
            BARRAGE_WATCH_POLL,
            DEFAULT_WATCH_POLL,
            Duration::from_millis(100),
        );
        let controller_id =
            get(BARRAGE_CONTROLLER_ID).unwrap_or_else(|| DEFAULT_CONTROLLER_ID.into());

        if store.is_none() && get(BARRAGE_STORE).is_none() {
            problems.borrow_mut().push(format!(
                "{BARRAGE_STORE}: required, e.g. dynamodb://barrage (locally: eval \"$(scripts/local-operator.sh env)\")"
            ));
        }
        if blobs.is_none() && get(BARRAGE_BLOBS).is_none() {
            problems.borrow_mut().push(format!(
                "{BARRAGE_BLOBS}: required, e.g. s3://barrage-reports (locally: eval \"$(scripts/local-operator.sh env)\")"
            ));
        }
        match (store, blobs) {
            (Some(store), Some(blobs)) if problems.borrow().is_empty() => Ok(ControllerConfig {
                store,
                blobs,
                launcher,
                ecs,
                agent_binary: get(BARRAGE_AGENT_BINARY).map(PathBuf::from),
                agent_log_dir: get(BARRAGE_AGENT_LOG_DIR).map(PathBuf::from),
                agent_metrics_addr,
                agent_heartbeat,
                metrics_addr,
                log_format,
                resync,
                lease_duration,
                shutdown_grace,
                controller_id,
                workers,
                watch_poll,
            }),
            _ => Err(ConfigError(problems.into_inner())),
        }
    }
}

/// Wraps `lookup` so that a missing controller id becomes a unique one.
fn default_id(lookup: impl Fn(&str) -> Option<String>) -> impl Fn(&str) -> Option<String> {
    let host = lookup("HOSTNAME")
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "barrage".into());
    let id = format!(
        "{host}-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    move |k: &str| lookup(k).or_else(|| (k == BARRAGE_CONTROLLER_ID).then(|| id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<ControllerConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ControllerConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn the_ecs_task_definitions_environment_reads_as_an_ecs_controller() {
        let c = cfg(&[
            ("BARRAGE_STORE", "dynamodb://barrage"),
            ("BARRAGE_BLOBS", "s3://barrage-reports"),
            ("BARRAGE_LAUNCHER", "ecs"),
            ("BARRAGE_ECS_CLUSTER", "barrage"),
            ("BARRAGE_AGENT_TASK_DEFINITION", "barrage-agent:3"),
            ("BARRAGE_AGENT_CONTAINER", "agent"),
            ("BARRAGE_SUBNETS", "subnet-a, subnet-b"),
            ("BARRAGE_SECURITY_GROUPS", "sg-1"),
            ("BARRAGE_ASSIGN_PUBLIC_IP", "ENABLED"),
            ("BARRAGE_METRICS_ADDR", "0.0.0.0:9464"),
            ("BARRAGE_LOG_FORMAT", "json"),
        ])
        .expect("valid");
        assert_eq!(c.launcher, LauncherKind::Ecs);
        let ecs = c.ecs.expect("ecs settings");
        assert_eq!(ecs.cluster, "barrage");
        assert_eq!(ecs.task_definition, "barrage-agent:3");
        assert_eq!(ecs.subnets, vec!["subnet-a", "subnet-b"]);
        assert_eq!(ecs.security_groups, vec!["sg-1"]);
        assert!(ecs.assign_public_ip);
        assert_eq!(c.metrics_addr, "0.0.0.0:9464".parse().ok());
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.resync, DEFAULT_RESYNC);
        assert_eq!(c.lease_duration, DEFAULT_LEASE);
        assert_eq!(c.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
        assert_eq!(c.workers, DEFAULT_WORKERS);
        assert_eq!(c.watch_poll, DEFAULT_WATCH_POLL);
        assert_eq!(
            c.agent_metrics_addr.as_deref(),
            Some(barrage_crds::env::DEFAULT_METRICS_ADDR)
        );
    }

    #[test]
    fn a_process_controller_listens_on_localhost_and_gives_agents_no_fixed_port() {
        let c = cfg(&[
            ("BARRAGE_STORE", "dynamodb://barrage"),
            ("BARRAGE_BLOBS", "s3://barrage-reports"),
            ("BARRAGE_LAUNCHER", "process"),
            ("BARRAGE_RESYNC_PERIOD", "5s"),
            ("BARRAGE_LEASE_DURATION", "9s"),
            ("BARRAGE_CONTROLLER_ID", "c1"),
            ("BARRAGE_WORKERS", "64"),
            ("BARRAGE_WATCH_POLL", "250ms"),
            ("BARRAGE_SHUTDOWN_GRACE", "5s"),
        ])
        .expect("valid");
        assert_eq!(c.shutdown_grace, Duration::from_secs(5));
        assert_eq!(c.workers, 64);
        assert_eq!(c.watch_poll, Duration::from_millis(250));
        assert_eq!(c.launcher, LauncherKind::Process);
        assert!(c.ecs.is_none());
        assert_eq!(c.metrics_addr, LOCAL_METRICS_ADDR.parse().ok());
        assert_eq!(c.agent_metrics_addr, None);
        assert_eq!(c.resync, Duration::from_secs(5));
        assert_eq!(c.lease_duration, Duration::from_secs(9));
        assert_eq!(c.controller_id, "c1");
    }

    #[test]
    fn every_problem_is_named_with_its_variable() {
        let err = cfg(&[
            ("BARRAGE_STORE", "postgres://x"),
            ("BARRAGE_LAUNCHER", "k8s"),
            ("BARRAGE_METRICS_ADDR", "nowhere"),
            ("BARRAGE_LEASE_DURATION", "1s"),
            ("BARRAGE_WATCH_POLL", "10ms"),
            ("BARRAGE_SHUTDOWN_GRACE", "500ms"),
        ])
        .expect_err("invalid");
        let text = err.to_string();
        for name in [
            "BARRAGE_STORE",
            "BARRAGE_BLOBS",
            "BARRAGE_LAUNCHER",
            "BARRAGE_METRICS_ADDR",
            "BARRAGE_LEASE_DURATION",
            "BARRAGE_WATCH_POLL",
            "BARRAGE_SHUTDOWN_GRACE",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }

    #[test]
    fn the_ecs_launcher_needs_a_cluster_and_a_task_definition() {
        let err = cfg(&[
            ("BARRAGE_STORE", "dynamodb://barrage"),
            ("BARRAGE_BLOBS", "s3://barrage-reports"),
        ])
        .expect_err("ecs settings missing");
        assert!(err.to_string().contains("BARRAGE_ECS_CLUSTER"));
        assert!(err.to_string().contains("BARRAGE_AGENT_TASK_DEFINITION"));
    }

    #[test]
    fn metrics_can_be_turned_off_and_the_id_defaults_uniquely_from_env() {
        let c = cfg(&[
            ("BARRAGE_STORE", "memory:"),
            ("BARRAGE_BLOBS", "memory:"),
            ("BARRAGE_LAUNCHER", "process"),
            ("BARRAGE_METRICS_ADDR", "off"),
        ])
        .expect("valid");
        assert_eq!(c.metrics_addr, None);
        assert_eq!(c.controller_id, DEFAULT_CONTROLLER_ID);
        let a = default_id(|_| None)(BARRAGE_CONTROLLER_ID).expect("an id");
        let b = default_id(|_| None)(BARRAGE_CONTROLLER_ID).expect("an id");
        assert_ne!(a, b);
    }
}
