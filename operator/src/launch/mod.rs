//! # launch — the `Launcher` port and its adapters
//!
//! The controller's shell starts, lists and stops agent tasks through [`Launcher`]:
//! - [`ecs::EcsLauncher`]: one ECS task per agent (RunTask, ListTasks + DescribeTasks, StopTask).
//! - [`process::ProcessLauncher`]: one local `barrage-agent` process per agent (one machine),
//!   with exactly the environment an ECS task gets, reporting exits the way ECS does.
//!
//! The launcher speaks the reconcile core's types ([`Launch`], [`ObservedTask`],
//! [`TaskState`]); foreign strings (ECS statuses, exit codes) are parsed once here, at the
//! boundary, into [`TaskState`]. SDK types never leave `ecs.rs`.
//!
//! ## No secrets in the agent environment
//! An agent learns who it is from the environment contract ([`barrage_crds::env`]) and nothing
//! else: Kafka credentials are references the agent resolves itself with its task role. Every
//! launcher checks what it is about to send against a [`SecretGuard`] (the spec's credential
//! references and the controller's own secret-looking variables) and refuses to launch when
//! any of them would travel.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use barrage_crds::env::{
    Assignment, BlobsUrl, DEFAULT_HEARTBEAT, DEFAULT_METRICS_ADDR, LogFormat, StoreUrl,
};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::spec::LaunchType;

pub use crate::reconcile::{Launch, LaunchOutcome, ObservedTask, TaskState};

pub mod ecs;
pub mod process;

/// Tag naming the LoadTest an agent task belongs to.
pub const TAG_LOAD_TEST: &str = "barrage:load-test";
/// Tag naming the run.
pub const TAG_RUN: &str = "barrage:run";
/// Tag naming the slot.
pub const TAG_SLOT: &str = "barrage:slot";
/// Tag naming the incarnation.
pub const TAG_INCARNATION: &str = "barrage:incarnation";
/// Tag naming the store (`BARRAGE_STORE`) of the controller that launched the task: tasks of
/// another store belong to another installation sharing the cluster.
pub const TAG_STORE: &str = "barrage:store";

/// Starts, lists and stops agent tasks.
#[async_trait]
pub trait Launcher: Send + Sync {
    /// Starts one agent per launch, each with its own environment built from `template`.
    /// Partial failures are reported per slot; `Err` means nothing was attempted (an invalid or
    /// unsafe request).
    async fn run_agents(
        &self,
        load_test: &str,
        run_id: &str,
        launches: &[Launch],
        template: &AgentTemplate,
    ) -> Result<Vec<SlotLaunch>, LaunchError>;

    /// Every agent task this launcher can see, of one LoadTest or of all of them; exited tasks
    /// are included while the backend remembers them.
    async fn list_agents(&self, load_test: Option<&str>) -> Result<Vec<ObservedTask>, LaunchError>;

    /// Stops one task with a reason. A task that is unknown or already stopped is a success.
    async fn stop_agent(&self, task_id: &str, reason: &str) -> Result<(), LaunchError>;
}

/// What became of one launch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LaunchResult {
    /// A task was started (or, for a retried client token, found started).
    Started {
        /// ECS task ARN or local task id.
        task_id: String,
    },
    /// Whether a task started is not known: RunTask timed out or failed in transit every time
    /// it was tried (with the same client token), and no task of the slot is listed yet. The
    /// launch stays in flight, so the slot is not launched again until it is seen or its
    /// expectation times out.
    Unknown {
        /// The last error.
        reason: String,
    },
    /// No task was started for this slot.
    Failed {
        /// The backend's reason.
        reason: String,
        /// A throttle, capacity shortage or transient fault: trying again later may work.
        retryable: bool,
    },
}

/// One launch and its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotLaunch {
    /// The launch as planned by the reconcile core.
    pub launch: Launch,
    /// What happened to it.
    pub result: LaunchResult,
}

impl SlotLaunch {
    /// The outcome in the reconcile core's terms.
    pub fn outcome(&self) -> LaunchOutcome {
        match &self.result {
            LaunchResult::Started { task_id } => LaunchOutcome::Started {
                task_id: task_id.clone(),
            },
            LaunchResult::Unknown { .. } => LaunchOutcome::InFlight,
            LaunchResult::Failed { reason, retryable } => LaunchOutcome::Failed {
                reason: reason.clone(),
                throttled: *retryable,
            },
        }
    }
}

/// Why a launcher call failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The backend throttled the call.
    #[error("{op} was throttled: {message}")]
    Throttled {
        /// The operation (RunTask, ListTasks, ...).
        op: &'static str,
        /// The backend's message.
        message: String,
    },
    /// The backend refused or failed the call.
    #[error("{op} failed: {message}")]
    Api {
        /// The operation.
        op: &'static str,
        /// The backend's message.
        message: String,
        /// A transient fault (timeout, connection, 5xx): trying again may work.
        transient: bool,
    },
    /// The request is invalid (bad names, too many launches, bad configuration).
    #[error("invalid launch request: {0}")]
    Invalid(String),
    /// A secret would have reached the agent's environment, tags or overrides.
    #[error(
        "refusing to launch: {field} would carry a secret value (from the spec's credentials or the controller's environment)"
    )]
    SecretLeak {
        /// Where the secret would have gone (never the value itself).
        field: String,
    },
    /// A local agent process could not be started or signalled.
    #[error("{what} ({path}): {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The file or program involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl LaunchError {
    /// Throttles and transient faults: requeue with backoff and try again.
    pub fn is_retryable(&self) -> bool {
        match self {
            LaunchError::Throttled { .. } => true,
            LaunchError::Api { transient, .. } => *transient,
            LaunchError::Invalid(_) | LaunchError::SecretLeak { .. } | LaunchError::Io { .. } => {
                false
            }
        }
    }
}

impl TaskState {
    /// Parses an ECS task's `lastStatus`, `stopCode` and the agent container's exit code, once,
    /// at the boundary. Unknown statuses become [`TaskState::Unknown`] (logged at WARN; treated
    /// as alive, so never launched over).
    ///
    /// A stopped task is `ok` when the agent exited 0, unless ECS says it was taken away
    /// (`SpotInterruption`, `TerminationNotice`) or never started (`TaskFailedToStart`): an
    /// agent that flushes and exits 0 on the SIGTERM of a Spot interruption did not finish its
    /// share, and its slot must be replaced.
    pub fn from_ecs(
        last_status: Option<&str>,
        stop_code: Option<&str>,
        exit_code: Option<i32>,
    ) -> TaskState {
        match last_status.unwrap_or("") {
            "PROVISIONING" | "PENDING" | "ACTIVATING" => TaskState::Starting,
            "RUNNING" => TaskState::Running,
            "DEACTIVATING" | "STOPPING" | "DEPROVISIONING" => TaskState::Stopping,
            "STOPPED" | "DELETED" => {
                let taken = matches!(
                    stop_code,
                    Some("SpotInterruption" | "TerminationNotice" | "TaskFailedToStart")
                );
                TaskState::Exited {
                    ok: exit_code == Some(0) && !taken,
                    code: exit_code,
                    reason: stop_code.map(str::to_string),
                }
            }
            other => {
                tracing::warn!(
                    last_status = other,
                    "unknown ECS task status; treating the task as alive"
                );
                TaskState::Unknown(other.to_string())
            }
        }
    }
}

/// Everything every agent of one launch gets, apart from its slot and incarnation.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentTemplate {
    /// `BARRAGE_STORE`.
    pub store: StoreUrl,
    /// `BARRAGE_BLOBS`.
    pub blobs: BlobsUrl,
    /// `BARRAGE_METRICS_ADDR` (None: off).
    pub metrics_addr: Option<String>,
    /// `BARRAGE_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `BARRAGE_HEARTBEAT`.
    pub heartbeat: Duration,
    /// CPU units per agent (ECS task override), if set.
    pub cpu: Option<u32>,
    /// Memory MiB per agent (ECS task override), if set.
    pub memory: Option<u32>,
    /// ECS launch type.
    pub launch_type: LaunchType,
    /// Run on Fargate Spot capacity.
    pub spot: bool,
    /// The LoadTest's labels, copied to tasks as tags.
    pub labels: BTreeMap<String, String>,
    /// Values that must not travel to the agent.
    pub secrets: SecretGuard,
}

impl AgentTemplate {
    /// A template with the contract's defaults and nothing from a spec.
    pub fn new(store: StoreUrl, blobs: BlobsUrl) -> AgentTemplate {
        AgentTemplate {
            store,
            blobs,
            metrics_addr: Some(DEFAULT_METRICS_ADDR.to_string()),
            log_format: LogFormat::Json,
            heartbeat: DEFAULT_HEARTBEAT,
            cpu: None,
            memory: None,
            launch_type: LaunchType::Fargate,
            spot: false,
            labels: BTreeMap::new(),
            secrets: SecretGuard::default(),
        }
    }

    /// The template for `lt`: sizes, launch type, spot and labels from the spec, and the spec's
    /// credential references as values that must never travel.
    pub fn for_load_test(lt: &LoadTest, store: StoreUrl, blobs: BlobsUrl) -> AgentTemplate {
        let agents = &lt.spec.agents;
        AgentTemplate {
            cpu: Some(agents.cpu),
            memory: Some(agents.memory),
            launch_type: agents.launch_type,
            spot: agents.spot,
            labels: lt.metadata.labels.clone(),
            secrets: SecretGuard::from_load_test(lt),
            ..AgentTemplate::new(store, blobs)
        }
    }

    /// The assignment of one launch.
    pub fn assignment(&self, load_test: &str, run_id: &str, launch: &Launch) -> Assignment {
        Assignment {
            load_test: load_test.to_string(),
            run_id: run_id.to_string(),
            slot: launch.slot,
            incarnation: launch.incarnation,
            store: self.store.clone(),
            blobs: self.blobs.clone(),
            metrics_addr: self.metrics_addr.clone(),
            log_format: self.log_format,
            heartbeat: self.heartbeat,
        }
    }

    /// The agent environment of one launch: [`Assignment::to_env`], checked to read back as
    /// the same assignment (so the agent will accept it) and to carry no secret.
    pub fn agent_env(
        &self,
        load_test: &str,
        run_id: &str,
        launch: &Launch,
        guard: &SecretGuard,
    ) -> Result<Vec<(String, String)>, LaunchError> {
        let assignment = self.assignment(load_test, run_id, launch);
        let env = assignment.to_env();
        let back = Assignment::from_lookup(|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .map_err(|e| LaunchError::Invalid(e.to_string()))?;
        if back != assignment {
            return Err(LaunchError::Invalid(format!(
                "the agent environment of slot {} does not read back as its assignment",
                launch.slot
            )));
        }
        guard.check_pairs("the agent environment", &env)?;
        self.secrets.check_pairs("the agent environment", &env)?;
        Ok(env)
    }
}

/// Shortest value a [`SecretGuard`] looks for; shorter ones would match ordinary words.
pub const MIN_SECRET_LEN: usize = 8;

/// Values that must never reach an agent's environment, tags or overrides: the spec's
/// credential references and the controller's own secret-looking environment variables.
/// Its `Debug` shows only how many values it holds.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretGuard {
    values: Vec<String>,
}

impl fmt::Debug for SecretGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretGuard({} values)", self.values.len())
    }
}

/// Parts of an environment variable name that mark its value as secret.
const SECRET_NAME_PARTS: &[&str] = &[
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "TOKEN",
    "CREDENTIAL",
    "PRIVATE_KEY",
    "PASSPHRASE",
    "API_KEY",
    "APIKEY",
];

impl SecretGuard {
    /// Adds a value (ignored when shorter than [`MIN_SECRET_LEN`] after trimming).
    pub fn add(&mut self, value: &str) {
        let value = value.trim();
        if value.len() >= MIN_SECRET_LEN && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_string());
        }
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Holds no value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The spec's credentials: SASL user name and secret references.
    pub fn from_load_test(lt: &LoadTest) -> SecretGuard {
        let mut guard = SecretGuard::default();
        if let Some(sasl) = &lt.spec.kafka.security.sasl {
            if let Some(user) = &sasl.username {
                guard.add(user);
            }
            if let Some(arn) = &sasl.credentials.secrets_manager_arn {
                guard.add(arn);
            }
            if let Some(param) = &sasl.credentials.ssm_parameter {
                guard.add(param);
            }
        }
        guard
    }

    /// The values of variables whose names look secret (`AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `*PASSWORD*`, ...).
    pub fn from_env_vars(vars: impl IntoIterator<Item = (String, String)>) -> SecretGuard {
        let mut guard = SecretGuard::default();
        for (name, value) in vars {
            let upper = name.to_ascii_uppercase();
            if SECRET_NAME_PARTS.iter().any(|p| upper.contains(p)) {
                guard.add(&value);
            }
        }
        guard
    }

    /// [`SecretGuard::from_env_vars`] over this process's environment.
    pub fn from_process_env() -> SecretGuard {
        SecretGuard::from_env_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Both guards' values.
    pub fn merged(&self, other: &SecretGuard) -> SecretGuard {
        let mut out = self.clone();
        for v in &other.values {
            out.add(v);
        }
        out
    }

    /// Fails when `text` contains any of the values.
    pub fn check_text(&self, field: &str, text: &str) -> Result<(), LaunchError> {
        if self.values.iter().any(|v| text.contains(v.as_str())) {
            return Err(LaunchError::SecretLeak {
                field: field.to_string(),
            });
        }
        Ok(())
    }

    /// Fails when any name or value contains any of the values; the error names the variable.
    pub fn check_pairs(&self, what: &str, pairs: &[(String, String)]) -> Result<(), LaunchError> {
        for (name, value) in pairs {
            self.check_text(&format!("{what}: {name}"), name)?;
            self.check_text(&format!("{what}: {name}"), value)?;
        }
        Ok(())
    }
}

/// The tags of one agent task: ownership first, then the LoadTest's labels (at most 50 in all,
/// as ECS allows; labels under the reserved `aws:` and `barrage:` prefixes are left out).
pub fn task_tags(
    load_test: &str,
    run_id: &str,
    launch: &Launch,
    labels: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut tags = vec![
        (TAG_LOAD_TEST.to_string(), load_test.to_string()),
        (TAG_RUN.to_string(), run_id.to_string()),
        (TAG_SLOT.to_string(), launch.slot.to_string()),
        (TAG_INCARNATION.to_string(), launch.incarnation.to_string()),
    ];
    for (k, v) in labels {
        if tags.len() >= 50 {
            break;
        }
        let lower = k.to_ascii_lowercase();
        if lower.starts_with("aws:") || lower.starts_with("barrage:") {
            continue;
        }
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            continue;
        }
        tags.push((k.clone(), v.clone()));
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ecs_status_parses_into_one_state() {
        for s in ["PROVISIONING", "PENDING", "ACTIVATING"] {
            assert_eq!(
                TaskState::from_ecs(Some(s), None, None),
                TaskState::Starting
            );
        }
        assert_eq!(
            TaskState::from_ecs(Some("RUNNING"), None, None),
            TaskState::Running
        );
        for s in ["DEACTIVATING", "STOPPING", "DEPROVISIONING"] {
            assert_eq!(
                TaskState::from_ecs(Some(s), None, None),
                TaskState::Stopping
            );
        }
        assert_eq!(
            TaskState::from_ecs(Some("STOPPED"), Some("EssentialContainerExited"), Some(0)),
            TaskState::Exited {
                ok: true,
                code: Some(0),
                reason: Some("EssentialContainerExited".into())
            }
        );
        assert_eq!(
            TaskState::from_ecs(Some("STOPPED"), Some("EssentialContainerExited"), Some(137)),
            TaskState::Exited {
                ok: false,
                code: Some(137),
                reason: Some("EssentialContainerExited".into())
            }
        );
        assert_eq!(
            TaskState::from_ecs(Some("STOPPED"), None, None),
            TaskState::Exited {
                ok: false,
                code: None,
                reason: None
            }
        );
        assert_eq!(
            TaskState::from_ecs(Some("WARPING"), None, None),
            TaskState::Unknown("WARPING".into())
        );
        assert_eq!(
            TaskState::from_ecs(None, None, None),
            TaskState::Unknown(String::new())
        );
        assert!(TaskState::from_ecs(Some("WARPING"), None, None).is_live());
        assert!(!TaskState::from_ecs(Some("STOPPED"), None, Some(0)).is_live());
    }

    #[test]
    fn a_clean_exit_after_a_spot_interruption_is_not_ok() {
        for code in ["SpotInterruption", "TerminationNotice", "TaskFailedToStart"] {
            let s = TaskState::from_ecs(Some("STOPPED"), Some(code), Some(0));
            assert!(matches!(s, TaskState::Exited { ok: false, .. }), "{code}");
        }
        let s = TaskState::from_ecs(Some("STOPPED"), Some("UserInitiated"), Some(0));
        assert!(matches!(s, TaskState::Exited { ok: true, .. }));
    }

    fn launch(slot: u32) -> Launch {
        Launch {
            slot,
            incarnation: 0,
            attempt: 1,
            client_token: format!("run-1-{slot}-0-1"),
        }
    }

    fn template() -> AgentTemplate {
        AgentTemplate::new(
            StoreUrl::DynamoDb {
                table: "barrage".into(),
            },
            BlobsUrl::S3 {
                bucket: "barrage-blobs".into(),
                prefix: String::new(),
            },
        )
    }

    #[test]
    fn the_agent_env_reads_back_as_the_assignment() {
        let t = template();
        let env = t
            .agent_env("demo", "demo-1-abc", &launch(3), &SecretGuard::default())
            .expect("env");
        let back =
            Assignment::from_lookup(|n| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
                .expect("parses");
        assert_eq!(back.slot, 3);
        assert_eq!(back.run_id, "demo-1-abc");
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        let contract: Vec<&str> = barrage_crds::env::AGENT_ENV
            .iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, contract, "exactly the contract, nothing extra");
    }

    #[test]
    fn an_invalid_name_is_refused_before_anything_is_sent() {
        let err = template()
            .agent_env("Not A Name", "run", &launch(0), &SecretGuard::default())
            .expect_err("invalid load test name");
        assert!(matches!(err, LaunchError::Invalid(_)), "{err}");
        assert!(!err.is_retryable());
    }

    #[test]
    fn the_guard_finds_secret_values_and_never_prints_them() {
        let guard = SecretGuard::from_env_vars([
            (
                "AWS_SECRET_ACCESS_KEY".to_string(),
                "wJalrXUtnFEMI/K7MDENG".to_string(),
            ),
            ("AWS_SESSION_TOKEN".to_string(), "short".to_string()),
            ("HOME".to_string(), "/home/someone-long".to_string()),
        ]);
        assert_eq!(
            guard.len(),
            1,
            "short values and ordinary names are ignored"
        );
        let pairs = vec![("X".to_string(), "a-wJalrXUtnFEMI/K7MDENG-b".to_string())];
        let err = guard.check_pairs("env", &pairs).expect_err("contained");
        assert!(!err.to_string().contains("wJalrXUtnFEMI"), "{err}");
        assert!(err.to_string().contains("env: X"), "{err}");
        assert!(!format!("{guard:?}").contains("wJalr"));
        let ok = vec![("HOME".to_string(), "/home/someone-long".to_string())];
        assert!(guard.check_pairs("env", &ok).is_ok());
    }

    #[test]
    fn tags_carry_ownership_and_skip_reserved_labels() {
        let mut labels = BTreeMap::new();
        labels.insert("team".to_string(), "kafka".to_string());
        labels.insert("aws:owner".to_string(), "x".to_string());
        labels.insert("barrage:slot".to_string(), "99".to_string());
        let tags = task_tags("demo", "demo-1-abc", &launch(7), &labels);
        assert_eq!(
            tags,
            vec![
                (TAG_LOAD_TEST.to_string(), "demo".to_string()),
                (TAG_RUN.to_string(), "demo-1-abc".to_string()),
                (TAG_SLOT.to_string(), "7".to_string()),
                (TAG_INCARNATION.to_string(), "0".to_string()),
                ("team".to_string(), "kafka".to_string()),
            ]
        );
        let many: BTreeMap<String, String> = (0..80)
            .map(|i| (format!("l{i:02}"), "v".to_string()))
            .collect();
        assert_eq!(task_tags("demo", "r", &launch(0), &many).len(), 50);
    }

    #[test]
    fn a_throttle_is_retryable_and_a_leak_is_not() {
        let t = LaunchError::Throttled {
            op: "RunTask",
            message: "Rate exceeded".into(),
        };
        assert!(t.is_retryable());
        let l = LaunchError::SecretLeak {
            field: "env".into(),
        };
        assert!(!l.is_retryable());
        let outcome = SlotLaunch {
            launch: launch(1),
            result: LaunchResult::Failed {
                reason: "Rate exceeded".into(),
                retryable: true,
            },
        }
        .outcome();
        assert_eq!(
            outcome,
            LaunchOutcome::Failed {
                reason: "Rate exceeded".into(),
                throttled: true
            }
        );
    }
}
