//! `barrage controller`'s settings. Each is a flag and an environment variable at once
//! (clap's `env`; the flag wins), parsed into its type as it is read, so a bad value is
//! refused with the flag, the variable and the rule before anything starts.
//! [`ControllerArgs::config`] adds the rules that span settings: the ECS launcher needs a
//! cluster and a task definition, and some defaults depend on the launcher.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use barrage_crds::duration::{DurationError, HumanDuration};
use barrage_crds::env::{BlobsUrl, MIN_HEARTBEAT, StoreUrl, UrlError};
use barrage_operator::launch::ecs::EcsConfig;
use barrage_operator::runtime::config::{
    self as vars, ConfigError, ControllerConfig, ECS_METRICS_ADDR, LOCAL_METRICS_ADDR, LauncherKind,
};
use clap::{Args, ValueEnum};

/// How agents run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Launcher {
    /// One ECS task per agent.
    Ecs,
    /// One local `barrage-agent` process per agent.
    Process,
}

impl From<Launcher> for LauncherKind {
    fn from(l: Launcher) -> LauncherKind {
        match l {
            Launcher::Ecs => LauncherKind::Ecs,
            Launcher::Process => LauncherKind::Process,
        }
    }
}

/// A listening address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    Off,
    At(SocketAddr),
}

impl Listen {
    fn addr(self) -> Option<SocketAddr> {
        match self {
            Listen::Off => None,
            Listen::At(a) => Some(a),
        }
    }
}

/// Why a flag's (or its variable's) value is rejected; clap prints it after the flag's name.
#[derive(Debug, thiserror::Error)]
enum FlagError {
    #[error("must be IP:PORT (e.g. 0.0.0.0:9464) or off")]
    Listen,
    #[error("must be at least {}", HumanDuration::from(*.0))]
    TooShort(Duration),
    #[error(transparent)]
    Duration(#[from] DurationError),
    #[error("must be ENABLED or DISABLED")]
    PublicIp,
}

fn listen(s: &str) -> Result<Listen, FlagError> {
    match s.trim() {
        "off" => Ok(Listen::Off),
        text => text
            .parse::<SocketAddr>()
            .map(Listen::At)
            .map_err(|_| FlagError::Listen),
    }
}

/// A duration of at least `min`, written as in specs (`500ms`, `30s`, `1m`).
fn at_least(min: Duration) -> impl Fn(&str) -> Result<Duration, FlagError> + Clone + Send + Sync {
    move |s: &str| {
        let d = s.trim().parse::<HumanDuration>()?.as_std();
        if d >= min {
            Ok(d)
        } else {
            Err(FlagError::TooShort(min))
        }
    }
}

fn resync(s: &str) -> Result<Duration, FlagError> {
    at_least(Duration::from_secs(1))(s)
}

fn lease(s: &str) -> Result<Duration, FlagError> {
    at_least(Duration::from_secs(3))(s)
}

fn grace(s: &str) -> Result<Duration, FlagError> {
    at_least(Duration::from_secs(1))(s)
}

fn poll(s: &str) -> Result<Duration, FlagError> {
    at_least(Duration::from_millis(100))(s)
}

fn heartbeat(s: &str) -> Result<Duration, FlagError> {
    at_least(MIN_HEARTBEAT)(s)
}

/// `ENABLED`/`DISABLED` as CloudFormation writes it, or a boolean.
fn public_ip(s: &str) -> Result<bool, FlagError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "enabled" | "true" | "yes" | "1" => Ok(true),
        "disabled" | "false" | "no" | "0" => Ok(false),
        _ => Err(FlagError::PublicIp),
    }
}

fn store_url(s: &str) -> Result<StoreUrl, UrlError> {
    s.trim().parse::<StoreUrl>()
}

fn blobs_url(s: &str) -> Result<BlobsUrl, UrlError> {
    s.trim().parse::<BlobsUrl>()
}

/// `barrage controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// How agents run: ecs tasks or local processes.
    #[arg(long, env = vars::BARRAGE_LAUNCHER, value_enum, default_value_t = Launcher::Ecs)]
    pub launcher: Launcher,
    /// Records store, e.g. dynamodb://barrage.
    #[arg(long, env = vars::BARRAGE_STORE, value_name = "URL", value_parser = store_url)]
    pub store: Option<StoreUrl>,
    /// Blob store, e.g. s3://barrage-reports.
    #[arg(long, env = vars::BARRAGE_BLOBS, value_name = "URL", value_parser = blobs_url)]
    pub blobs: Option<BlobsUrl>,
    /// `/metrics` and `/healthz` address, or off [default: 0.0.0.0:9464 with ecs, 127.0.0.1:9464 with process].
    #[arg(long, env = vars::BARRAGE_METRICS_ADDR, value_name = "IP:PORT|off", value_parser = listen)]
    pub metrics_addr: Option<Listen>,
    /// Period of the full relist beside the Streams watch (at least 1s).
    #[arg(long, env = vars::BARRAGE_RESYNC_PERIOD, value_name = "DURATION", default_value = "30s", value_parser = resync)]
    pub resync: Duration,
    /// The leader lease, renewed every third of it (at least 3s).
    #[arg(long, env = vars::BARRAGE_LEASE_DURATION, value_name = "DURATION", default_value = "15s", value_parser = lease)]
    pub lease_duration: Duration,
    /// Longest graceful shutdown after SIGTERM (at least 1s).
    #[arg(long, env = vars::BARRAGE_SHUTDOWN_GRACE, value_name = "DURATION", default_value = "20s", value_parser = grace)]
    pub shutdown_grace: Duration,
    /// This controller's lease holder name [default: HOSTNAME-PID-RANDOM].
    #[arg(long, env = vars::BARRAGE_CONTROLLER_ID, value_name = "NAME")]
    pub id: Option<String>,
    /// LoadTests reconciled at once.
    #[arg(long, env = vars::BARRAGE_WORKERS, value_name = "1-256", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Pause between rounds of DynamoDB Streams reads (at least 100ms).
    #[arg(long, env = vars::BARRAGE_WATCH_POLL, value_name = "DURATION", default_value = "500ms", value_parser = poll)]
    pub watch_poll: Duration,
    /// ECS cluster (ecs launcher).
    #[arg(long, env = vars::BARRAGE_ECS_CLUSTER, value_name = "NAME|ARN")]
    pub cluster: Option<String>,
    /// Agent task definition (ecs launcher).
    #[arg(long, env = vars::BARRAGE_AGENT_TASK_DEFINITION, value_name = "FAMILY[:REV]|ARN")]
    pub task_definition: Option<String>,
    /// The agent container's name in the task definition.
    #[arg(long, env = vars::BARRAGE_AGENT_CONTAINER, value_name = "NAME", default_value = "agent")]
    pub agent_container: String,
    /// awsvpc subnets, comma-separated.
    #[arg(long, env = vars::BARRAGE_SUBNETS, value_name = "IDS", value_delimiter = ',')]
    pub subnets: Vec<String>,
    /// awsvpc security groups, comma-separated.
    #[arg(long, env = vars::BARRAGE_SECURITY_GROUPS, value_name = "IDS", value_delimiter = ',')]
    pub security_groups: Vec<String>,
    /// Give each agent task a public IP: ENABLED or DISABLED.
    #[arg(long, env = vars::BARRAGE_ASSIGN_PUBLIC_IP, value_name = "ENABLED|DISABLED",
          default_value = "DISABLED", value_parser = public_ip, action = clap::ArgAction::Set)]
    pub assign_public_ip: bool,
    /// The `barrage-agent` program for the process launcher [default: beside `barrage`, else on PATH].
    #[arg(long, env = vars::BARRAGE_AGENT_BINARY, value_name = "PATH")]
    pub agent_binary: Option<PathBuf>,
    /// Where the process launcher writes agent logs and records its agents [default: ~/.cache/barrage/agents/STORE].
    #[arg(long, env = vars::BARRAGE_AGENT_LOG_DIR, value_name = "DIR")]
    pub agent_log_dir: Option<PathBuf>,
    /// The agents' metrics address, or off [default: 0.0.0.0:9464 on ECS, off with the process launcher].
    #[arg(long, env = vars::BARRAGE_AGENT_METRICS_ADDR, value_name = "IP:PORT|off", value_parser = listen)]
    pub agent_metrics_addr: Option<Listen>,
    /// How often agents write their status.
    #[arg(long, env = vars::BARRAGE_AGENT_HEARTBEAT, value_name = "DURATION", default_value = "5s", value_parser = heartbeat)]
    pub agent_heartbeat: Duration,
    /// Create the table and the bucket first if they are missing (local use).
    #[arg(long)]
    pub init: bool,
}

/// The hint for a missing store or blob store.
const LOCAL_HINT: &str = "locally: eval \"$(scripts/local-operator.sh env)\"";

impl ControllerArgs {
    /// The controller's configuration, or every problem that spans settings, each naming its
    /// variable and the rule. `hostname` and `pid` make the default controller id unique.
    pub fn config(
        &self,
        hostname: Option<&str>,
        pid: u32,
    ) -> Result<ControllerConfig, ConfigError> {
        let mut problems = Vec::new();
        if self.store.is_none() {
            problems.push(format!(
                "{}: required, e.g. dynamodb://barrage ({LOCAL_HINT})",
                vars::BARRAGE_STORE
            ));
        }
        if self.blobs.is_none() {
            problems.push(format!(
                "{}: required, e.g. s3://barrage-reports ({LOCAL_HINT})",
                vars::BARRAGE_BLOBS
            ));
        }
        let launcher = LauncherKind::from(self.launcher);
        let ecs = (launcher == LauncherKind::Ecs).then(|| self.ecs(&mut problems));
        let (Some(store), Some(blobs), true) =
            (self.store.clone(), self.blobs.clone(), problems.is_empty())
        else {
            return Err(ConfigError(problems));
        };
        Ok(ControllerConfig {
            store,
            blobs,
            launcher,
            ecs,
            agent_binary: self.agent_binary.clone(),
            agent_log_dir: self.agent_log_dir.clone(),
            agent_metrics_addr: self.agent_metrics_addr(launcher),
            agent_heartbeat: self.agent_heartbeat,
            metrics_addr: self.metrics_addr(launcher),
            resync: self.resync,
            lease_duration: self.lease_duration,
            shutdown_grace: self.shutdown_grace,
            controller_id: self.controller_id(hostname, pid),
            workers: usize::from(self.workers),
            watch_poll: self.watch_poll,
        })
    }

    /// The ECS settings; a missing cluster or task definition is a problem.
    fn ecs(&self, problems: &mut Vec<String>) -> EcsConfig {
        let required = |name: &str| {
            format!("{name}: required with the ecs launcher (or use --launcher process)")
        };
        let non_empty = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        let cluster = non_empty(&self.cluster);
        let task_definition = non_empty(&self.task_definition);
        if cluster.is_none() {
            problems.push(required(vars::BARRAGE_ECS_CLUSTER));
        }
        if task_definition.is_none() {
            problems.push(required(vars::BARRAGE_AGENT_TASK_DEFINITION));
        }
        let list = |items: &[String]| -> Vec<String> {
            items
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        EcsConfig {
            cluster: cluster.unwrap_or_default(),
            task_definition: task_definition.unwrap_or_default(),
            container_name: self.agent_container.clone(),
            subnets: list(&self.subnets),
            security_groups: list(&self.security_groups),
            assign_public_ip: self.assign_public_ip,
            enable_ecs_managed_tags: false,
            propagate_task_definition_tags: false,
            owner: self.store.as_ref().map(ToString::to_string),
        }
    }

    fn metrics_addr(&self, launcher: LauncherKind) -> Option<SocketAddr> {
        let default = match launcher {
            LauncherKind::Ecs => ECS_METRICS_ADDR,
            LauncherKind::Process => LOCAL_METRICS_ADDR,
        };
        match self.metrics_addr {
            Some(given) => given.addr(),
            None => default.parse().ok(),
        }
    }

    /// Many local agents share one host: no fixed port unless asked for.
    fn agent_metrics_addr(&self, launcher: LauncherKind) -> Option<String> {
        match (self.agent_metrics_addr, launcher) {
            (Some(given), _) => given.addr().map(|a| a.to_string()),
            (None, LauncherKind::Ecs) => Some(barrage_crds::env::DEFAULT_METRICS_ADDR.to_string()),
            (None, LauncherKind::Process) => None,
        }
    }

    /// The given id, or `{HOSTNAME}-{pid}-{random}` so two controllers never share a name.
    fn controller_id(&self, hostname: Option<&str>, pid: u32) -> String {
        if let Some(id) = self.id.as_ref().filter(|id| !id.trim().is_empty()) {
            return id.trim().to_string();
        }
        let host = hostname.filter(|h| !h.is_empty()).unwrap_or("barrage");
        let random = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}-{pid}-{}", &random[..6])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barrage_operator::runtime::config::{
        DEFAULT_LEASE, DEFAULT_RESYNC, DEFAULT_SHUTDOWN_GRACE, DEFAULT_WATCH_POLL, DEFAULT_WORKERS,
    };
    use clap::{Command, FromArgMatches as _};

    /// Parses `flags` alone: the environment of the test process is not read.
    fn parse(flags: &[&str]) -> Result<ControllerArgs, clap::Error> {
        let command = ControllerArgs::augment_args(Command::new("controller"))
            .mut_args(|a| a.env(None::<&str>));
        let matches = command
            .try_get_matches_from(std::iter::once("controller").chain(flags.iter().copied()))?;
        ControllerArgs::from_arg_matches(&matches)
    }

    fn cfg(flags: &[&str]) -> Result<ControllerConfig, ConfigError> {
        parse(flags).expect("flags parse").config(Some("host"), 7)
    }

    #[test]
    fn every_setting_is_read_from_its_variable() {
        let command = ControllerArgs::augment_args(Command::new("controller"));
        let envs: Vec<String> = command
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        for name in [
            vars::BARRAGE_STORE,
            vars::BARRAGE_BLOBS,
            vars::BARRAGE_LAUNCHER,
            vars::BARRAGE_ECS_CLUSTER,
            vars::BARRAGE_AGENT_TASK_DEFINITION,
            vars::BARRAGE_AGENT_CONTAINER,
            vars::BARRAGE_SUBNETS,
            vars::BARRAGE_SECURITY_GROUPS,
            vars::BARRAGE_ASSIGN_PUBLIC_IP,
            vars::BARRAGE_METRICS_ADDR,
            vars::BARRAGE_RESYNC_PERIOD,
            vars::BARRAGE_LEASE_DURATION,
            vars::BARRAGE_SHUTDOWN_GRACE,
            vars::BARRAGE_CONTROLLER_ID,
            vars::BARRAGE_WORKERS,
            vars::BARRAGE_WATCH_POLL,
            vars::BARRAGE_AGENT_BINARY,
            vars::BARRAGE_AGENT_LOG_DIR,
            vars::BARRAGE_AGENT_METRICS_ADDR,
            vars::BARRAGE_AGENT_HEARTBEAT,
        ] {
            assert!(
                envs.iter().any(|e| e == name),
                "{name} is not read: {envs:?}"
            );
        }
    }

    #[test]
    fn the_ecs_task_definitions_settings_read_as_an_ecs_controller() {
        let c = cfg(&[
            "--store=dynamodb://barrage",
            "--blobs=s3://barrage-reports",
            "--launcher=ecs",
            "--cluster=barrage",
            "--task-definition=barrage-agent:3",
            "--agent-container=agent",
            "--subnets=subnet-a, subnet-b",
            "--security-groups=sg-1",
            "--assign-public-ip=ENABLED",
            "--metrics-addr=0.0.0.0:9464",
        ])
        .expect("valid");
        assert_eq!(c.launcher, LauncherKind::Ecs);
        let ecs = c.ecs.expect("ecs settings");
        assert_eq!(ecs.cluster, "barrage");
        assert_eq!(ecs.task_definition, "barrage-agent:3");
        assert_eq!(ecs.subnets, vec!["subnet-a", "subnet-b"]);
        assert_eq!(ecs.security_groups, vec!["sg-1"]);
        assert!(ecs.assign_public_ip);
        assert_eq!(ecs.owner.as_deref(), Some("dynamodb://barrage"));
        assert_eq!(c.metrics_addr, "0.0.0.0:9464".parse().ok());
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
            "--store=dynamodb://barrage",
            "--blobs=s3://barrage-reports",
            "--launcher=process",
            "--resync=5s",
            "--lease-duration=9s",
            "--id=c1",
            "--workers=64",
            "--watch-poll=250ms",
            "--shutdown-grace=5s",
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
    fn a_bad_value_is_refused_with_its_rule() {
        for (flag, rule) in [
            ("--store=postgres://x", "postgres://x"),
            ("--launcher=k8s", "k8s"),
            ("--metrics-addr=nowhere", "must be IP:PORT"),
            ("--lease-duration=1s", "must be at least 3s"),
            ("--watch-poll=10ms", "must be at least 100ms"),
            ("--shutdown-grace=500ms", "must be at least 1s"),
            ("--workers=0", "1..=256"),
            ("--assign-public-ip=maybe", "must be ENABLED or DISABLED"),
        ] {
            let err = parse(&[flag]).expect_err(flag).to_string();
            let name = flag.split('=').next().unwrap_or(flag);
            assert!(
                err.contains(name),
                "{flag}: the flag is not named in: {err}"
            );
            assert!(
                err.contains(rule),
                "{flag}: the rule is not given in: {err}"
            );
        }
    }

    #[test]
    fn missing_settings_are_all_named_with_their_variable() {
        let err = cfg(&[]).expect_err("nothing given").to_string();
        for name in [
            vars::BARRAGE_STORE,
            vars::BARRAGE_BLOBS,
            vars::BARRAGE_ECS_CLUSTER,
            vars::BARRAGE_AGENT_TASK_DEFINITION,
        ] {
            assert!(err.contains(name), "{name} missing from:\n{err}");
        }
    }

    #[test]
    fn metrics_can_be_turned_off_and_the_id_defaults_uniquely() {
        let flags = [
            "--store=memory:",
            "--blobs=memory:",
            "--launcher=process",
            "--metrics-addr=off",
        ];
        let c = cfg(&flags).expect("valid");
        assert_eq!(c.metrics_addr, None);
        assert!(
            c.controller_id.starts_with("host-7-"),
            "{}",
            c.controller_id
        );
        let again = cfg(&flags).expect("valid");
        assert_ne!(c.controller_id, again.controller_id);
    }
}
