//! The process launcher: one local `barrage-agent` process per agent (one machine, tests).
//!
//! Each agent gets exactly the environment an ECS task gets: the assignment
//! ([`barrage_crds::env::Assignment::to_env`]) plus an explicit pass-through list (region,
//! endpoint, log filter, and, standing in for the ECS task role, AWS credentials when the
//! caller passes them), on a cleared environment with only `PATH` and `HOME` added. One value
//! differs from ECS: `BARRAGE_METRICS_ADDR` is [`LOCAL_METRICS_ADDR`] (a free loopback port)
//! because local agents share one machine's ports. Output goes to `{log_dir}/{task_id}.log`.
//!
//! Exits are reported the way ECS reports them: `Running` while the process lives, then
//! `Exited { ok, code, reason }` with `code` 128 + signal for a process killed by a signal
//! (137 after SIGKILL, as ECS shows it) and `reason` `UserInitiated: …` when it was stopped
//! through [`Launcher::stop_agent`]. Stopping sends SIGTERM, waits a grace period, then SIGKILL.
//!
//! Every task is also recorded in `{log_dir}/{task_id}.task` (pid, process start time,
//! ownership, client token, exit once seen, stop reason). A new launcher on the same folder (a
//! restarted controller) adopts those tasks, as ECS tasks outlive their controller: live ones
//! are watched through `/proc` (pid and start time, so a reused pid is never mistaken) and can
//! be stopped; an exit seen by the earlier launcher keeps its code; a process that ended while
//! no launcher was its parent reads `Exited { ok: false, code: None }` (its status is lost).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{AgentTemplate, LaunchError, LaunchResult, Launcher, SecretGuard, SlotLaunch};
use crate::reconcile::{Launch, ObservedTask, TaskState};

/// Variables passed from the controller to local agents by default: region, endpoints, logs,
/// the agents' interval spool.
pub const PASS_THROUGH: &[&str] = &[
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SSM",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "RUST_LOG",
    "BARRAGE_SPOOL_DIR",
    "BARRAGE_SPOOL_MAX_BYTES",
    "BARRAGE_UPLOAD_DRAIN",
];

/// The stand-in for an ECS task role on one machine: the controller's AWS credentials. Pass
/// them only when the agents need them (against the emulator or a real account).
pub const CREDENTIAL_PASS_THROUGH: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
];

/// The values of `names` in the controller's environment (unset ones left out).
pub fn pass_through(names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|n| Some((n.to_string(), std::env::var(n).ok()?)))
        .collect()
}

/// `BARRAGE_METRICS_ADDR` of local agents (when the template has metrics on): any free
/// loopback port, so agents on one machine never collide.
pub const LOCAL_METRICS_ADDR: &str = "127.0.0.1:0";

/// Default time between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How an agent process is held.
enum Proc {
    /// Started by this launcher: waited on, its exit status known.
    Child(Child),
    /// Started by an earlier launcher on the same log folder (a restarted controller): watched
    /// through `/proc`, identified by pid and start time so a reused pid is never mistaken.
    Adopted { start_time: u64 },
}

/// How an agent process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    Code(i32),
    Signal(i32),
    /// It ended while no launcher was its parent: the status is lost.
    Unknown,
}

impl Exit {
    fn of(status: ExitStatus) -> Exit {
        match (status.code(), status.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(s)) => Exit::Signal(s),
            (None, None) => Exit::Unknown,
        }
    }

    fn to_text(self) -> String {
        match self {
            Exit::Code(c) => format!("code:{c}"),
            Exit::Signal(s) => format!("signal:{s}"),
            Exit::Unknown => "unknown".to_string(),
        }
    }

    fn from_text(s: &str) -> Option<Exit> {
        if s == "unknown" {
            return Some(Exit::Unknown);
        }
        let (kind, n) = s.split_once(':')?;
        let n = n.parse().ok()?;
        match kind {
            "code" => Some(Exit::Code(n)),
            "signal" => Some(Exit::Signal(n)),
            _ => None,
        }
    }
}

/// `(state, start time)` of a process from `/proc/{pid}/stat`.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces and parentheses).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Whether the process `pid` that started at `start_time` (0: unknown) still runs.
fn alive(pid: u32, start_time: u64) -> bool {
    match proc_stat(pid) {
        Some((state, start)) => {
            !matches!(state, 'Z' | 'X' | 'x') && (start_time == 0 || start == start_time)
        }
        None => false,
    }
}

/// Sends `signal` (a `kill` option such as `-TERM`) to `pid` with the system's `kill`.
fn send_signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Agent {
    proc_: Proc,
    pid: u32,
    record: PathBuf,
    load_test: String,
    run_id: String,
    slot: u32,
    incarnation: u32,
    client_token: String,
    exit: Option<Exit>,
    stop_reason: Option<String>,
}

impl Agent {
    /// Reaps (or, adopted, looks for) the process; its exit once known.
    fn poll(&mut self) -> Option<Exit> {
        if self.exit.is_none() {
            let exit = match &mut self.proc_ {
                Proc::Child(child) => match child.try_wait() {
                    Ok(Some(status)) => Some(Exit::of(status)),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!(pid = self.pid, "try_wait failed: {e}");
                        None
                    }
                },
                Proc::Adopted { start_time } => {
                    (!alive(self.pid, *start_time)).then_some(Exit::Unknown)
                }
            };
            if exit.is_some() {
                self.exit = exit;
                self.save();
            }
        }
        self.exit
    }

    /// SIGKILL now, and the exit recorded.
    fn kill(&mut self) {
        match &mut self.proc_ {
            Proc::Child(child) => {
                if let Err(e) = child.kill() {
                    tracing::warn!(pid = self.pid, "SIGKILL failed: {e}");
                }
                if let Ok(status) = child.wait() {
                    self.exit = Some(Exit::of(status));
                }
            }
            Proc::Adopted { start_time } => {
                if alive(self.pid, *start_time) && !send_signal(self.pid, "-KILL") {
                    tracing::warn!(pid = self.pid, "SIGKILL failed");
                }
                if !alive(self.pid, *start_time) {
                    self.exit = Some(Exit::Signal(9));
                }
            }
        }
        self.save();
    }

    fn state(&mut self) -> TaskState {
        match self.poll() {
            None => TaskState::Running,
            Some(exit) => {
                let (code, signal) = match exit {
                    Exit::Code(c) => (Some(c), None),
                    Exit::Signal(s) => (Some(128 + s), Some(s)),
                    Exit::Unknown => (None, None),
                };
                let reason = match (&self.stop_reason, signal, exit) {
                    (Some(r), _, _) => format!("UserInitiated: {r}"),
                    (None, Some(s), _) => format!("killed by signal {s}"),
                    (None, None, Exit::Unknown) => {
                        "exited while no controller watched it; exit status unknown".to_string()
                    }
                    (None, None, _) => "EssentialContainerExited".to_string(),
                };
                TaskState::Exited {
                    ok: code == Some(0),
                    code,
                    reason: Some(reason),
                }
            }
        }
    }

    /// Writes the task record (replaced atomically); a failure is logged, not fatal.
    fn save(&self) {
        let start_time = match &self.proc_ {
            Proc::Adopted { start_time } => *start_time,
            Proc::Child(_) => proc_stat(self.pid).map_or(0, |(_, s)| s),
        };
        let one_line = |s: &str| s.replace(['\n', '\r'], " ");
        let mut text = format!(
            "pid={}\nstart_time={start_time}\nload_test={}\nrun_id={}\nslot={}\nincarnation={}\nclient_token={}\n",
            self.pid,
            self.load_test,
            self.run_id,
            self.slot,
            self.incarnation,
            one_line(&self.client_token),
        );
        if let Some(exit) = self.exit {
            text.push_str(&format!("exit={}\n", exit.to_text()));
        }
        if let Some(r) = &self.stop_reason {
            text.push_str(&format!("stop_reason={}\n", one_line(r)));
        }
        let tmp = self.record.with_extension("task.tmp");
        let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.record));
        if let Err(e) = written {
            tracing::warn!(record = %self.record.display(), "could not write the task record: {e}");
        }
    }

    /// Reads a task record written by [`Agent::save`] (of an earlier launcher).
    fn load(record: &Path) -> Option<Agent> {
        let text = std::fs::read_to_string(record).ok()?;
        let map: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let pid: u32 = map.get("pid")?.parse().ok()?;
        let start_time: u64 = map.get("start_time")?.parse().ok()?;
        Some(Agent {
            proc_: Proc::Adopted { start_time },
            pid,
            record: record.to_path_buf(),
            load_test: map.get("load_test")?.to_string(),
            run_id: map.get("run_id")?.to_string(),
            slot: map.get("slot")?.parse().ok()?,
            incarnation: map.get("incarnation")?.parse().ok()?,
            client_token: map.get("client_token")?.to_string(),
            exit: map.get("exit").and_then(|e| Exit::from_text(e)),
            stop_reason: map.get("stop_reason").map(|s| s.to_string()),
        })
    }
}

/// The agents recorded in `log_dir` by an earlier launcher, adopted.
fn adopt(log_dir: &Path) -> Children {
    let mut children = Children::default();
    let Ok(entries) = std::fs::read_dir(log_dir) else {
        return children;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(task_id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".task"))
            .map(str::to_string)
        else {
            continue;
        };
        match Agent::load(&path) {
            Some(mut agent) => {
                let state = agent.state();
                tracing::info!(task_id, pid = agent.pid, ?state, "adopted an agent process");
                children
                    .tokens
                    .insert(agent.client_token.clone(), task_id.clone());
                children.agents.insert(task_id, agent);
            }
            None => tracing::warn!(record = %path.display(), "unreadable task record; ignored"),
        }
    }
    children
}

#[derive(Default)]
struct Children {
    agents: BTreeMap<String, Agent>,
    /// Client token → task id: a retried launch finds its task.
    tokens: BTreeMap<String, String>,
}

/// The local-process [`Launcher`].
pub struct ProcessLauncher {
    agent_binary: PathBuf,
    agent_args: Vec<String>,
    base_env: Vec<(String, String)>,
    log_dir: PathBuf,
    grace: Duration,
    guard: SecretGuard,
    children: Mutex<Children>,
}

impl std::fmt::Debug for ProcessLauncher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessLauncher")
            .field("agent_binary", &self.agent_binary)
            .field("agent_args", &self.agent_args)
            .field(
                "base_env",
                &self.base_env.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("log_dir", &self.log_dir)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl ProcessLauncher {
    /// A launcher that runs `agent_binary` with `base_env` passed through (contract variables
    /// in it are dropped: the assignment sets those) and logs under `log_dir` (created).
    pub fn new(
        agent_binary: impl Into<PathBuf>,
        base_env: Vec<(String, String)>,
        log_dir: impl Into<PathBuf>,
    ) -> Result<ProcessLauncher, LaunchError> {
        let log_dir = log_dir.into();
        std::fs::create_dir_all(&log_dir).map_err(|source| LaunchError::Io {
            what: "could not create the agent log folder".to_string(),
            path: log_dir.clone(),
            source,
        })?;
        let contract: Vec<&str> = barrage_crds::env::AGENT_ENV
            .iter()
            .map(|v| v.name)
            .collect();
        let children = Mutex::new(adopt(&log_dir));
        Ok(ProcessLauncher {
            agent_binary: agent_binary.into(),
            agent_args: Vec::new(),
            base_env: base_env
                .into_iter()
                .filter(|(k, _)| !contract.contains(&k.as_str()) && k != "PATH" && k != "HOME")
                .collect(),
            log_dir,
            grace: DEFAULT_GRACE,
            guard: SecretGuard::from_process_env(),
            children,
        })
    }

    /// Arguments for the agent program (a stand-in program in tests; the agent takes none).
    pub fn with_args(mut self, args: Vec<String>) -> ProcessLauncher {
        self.agent_args = args;
        self
    }

    /// Time between SIGTERM and SIGKILL when stopping.
    pub fn with_grace(mut self, grace: Duration) -> ProcessLauncher {
        self.grace = grace;
        self
    }

    /// Adds values that must never reach an agent's environment.
    pub fn with_guard(mut self, guard: &SecretGuard) -> ProcessLauncher {
        self.guard = self.guard.merged(guard);
        self
    }

    /// Where a task's output goes.
    pub fn log_path(&self, task_id: &str) -> PathBuf {
        self.log_dir.join(format!("{task_id}.log"))
    }

    /// The task id of a launch: `local-{run}-{slot}-{incarnation}`.
    pub fn task_id(run_id: &str, launch: &Launch) -> String {
        format!("local-{run_id}-{}-{}", launch.slot, launch.incarnation)
    }

    fn children(&self) -> MutexGuard<'_, Children> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The full environment of one agent process, in the order it is set: `PATH`, `HOME`, the
    /// pass-through list, then the agent contract.
    pub fn process_env(
        &self,
        load_test: &str,
        run_id: &str,
        launch: &Launch,
        template: &AgentTemplate,
    ) -> Result<Vec<(String, String)>, LaunchError> {
        let guard = self.guard.merged(&template.secrets);
        // Agents on one machine share its ports: each metrics endpoint takes a free loopback
        // port instead of the fixed one every ECS task has to itself.
        let mut local = template.clone();
        if local.metrics_addr.is_some() {
            local.metrics_addr = Some(LOCAL_METRICS_ADDR.to_string());
        }
        let agent = local.agent_env(load_test, run_id, launch, &guard)?;
        let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string());
        let home = std::env::var("HOME").unwrap_or_else(|_| self.log_dir.display().to_string());
        let mut env = vec![("PATH".to_string(), path), ("HOME".to_string(), home)];
        env.extend(self.base_env.iter().cloned());
        env.extend(agent);
        Ok(env)
    }

    fn spawn(&self, task_id: &str, env: &[(String, String)]) -> Result<Child, LaunchError> {
        let log = self.log_path(task_id);
        let io = |what: &str, path: &Path, source| LaunchError::Io {
            what: what.to_string(),
            path: path.to_path_buf(),
            source,
        };
        let out = File::create(&log).map_err(|e| io("could not create the agent log", &log, e))?;
        let err = out
            .try_clone()
            .map_err(|e| io("could not open the agent log", &log, e))?;
        Command::new(&self.agent_binary)
            .args(&self.agent_args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| io("could not start the agent", &self.agent_binary, e))
    }

    /// SIGKILLs a task at once, as a crash would (no stop reason is recorded): for
    /// fault-injection tests. Unknown or exited tasks are left alone.
    pub fn kill_agent(&self, task_id: &str) -> Result<(), LaunchError> {
        let mut children = self.children();
        let Some(agent) = children.agents.get_mut(task_id) else {
            return Ok(());
        };
        if agent.poll().is_some() {
            return Ok(());
        }
        agent.kill();
        Ok(())
    }

    /// The pid of a live task.
    pub fn pid(&self, task_id: &str) -> Option<u32> {
        let mut children = self.children();
        let agent = children.agents.get_mut(task_id)?;
        agent.poll().is_none().then_some(agent.pid)
    }
}

#[async_trait]
impl Launcher for ProcessLauncher {
    async fn run_agents(
        &self,
        load_test: &str,
        run_id: &str,
        launches: &[Launch],
        template: &AgentTemplate,
    ) -> Result<Vec<SlotLaunch>, LaunchError> {
        let envs = launches
            .iter()
            .map(|l| self.process_env(load_test, run_id, l, template))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(launches.len());
        let mut children = self.children();
        for (launch, env) in launches.iter().zip(envs) {
            if let Some(id) = children.tokens.get(&launch.client_token) {
                // The same launch again (a retried call): its task, as ECS's clientToken does.
                out.push(SlotLaunch {
                    launch: launch.clone(),
                    result: LaunchResult::Started {
                        task_id: id.clone(),
                    },
                });
                continue;
            }
            let base = ProcessLauncher::task_id(run_id, launch);
            let task_id = if children.agents.contains_key(&base) {
                format!("{base}-{}", launch.attempt)
            } else {
                base
            };
            let result = match self.spawn(&task_id, &env) {
                Ok(child) => {
                    let pid = child.id();
                    tracing::info!(
                        load_test,
                        run_id,
                        slot = launch.slot,
                        incarnation = launch.incarnation,
                        pid,
                        task_id,
                        "agent process started"
                    );
                    let agent = Agent {
                        proc_: Proc::Child(child),
                        pid,
                        record: self.log_dir.join(format!("{task_id}.task")),
                        load_test: load_test.to_string(),
                        run_id: run_id.to_string(),
                        slot: launch.slot,
                        incarnation: launch.incarnation,
                        client_token: launch.client_token.clone(),
                        exit: None,
                        stop_reason: None,
                    };
                    agent.save();
                    children.agents.insert(task_id.clone(), agent);
                    children
                        .tokens
                        .insert(launch.client_token.clone(), task_id.clone());
                    LaunchResult::Started { task_id }
                }
                Err(e) => LaunchResult::Failed {
                    reason: e.to_string(),
                    retryable: false,
                },
            };
            out.push(SlotLaunch {
                launch: launch.clone(),
                result,
            });
        }
        Ok(out)
    }

    async fn list_agents(&self, load_test: Option<&str>) -> Result<Vec<ObservedTask>, LaunchError> {
        let mut children = self.children();
        Ok(children
            .agents
            .iter_mut()
            .filter(|(_, a)| load_test.is_none_or(|lt| lt == a.load_test))
            .map(|(id, a)| ObservedTask {
                task_id: id.clone(),
                load_test: a.load_test.clone(),
                started_by: a.run_id.clone(),
                slot: Some(a.slot),
                incarnation: Some(a.incarnation),
                state: a.state(),
            })
            .collect())
    }

    async fn stop_agent(&self, task_id: &str, reason: &str) -> Result<(), LaunchError> {
        let pid = {
            let mut children = self.children();
            let Some(agent) = children.agents.get_mut(task_id) else {
                return Ok(());
            };
            if agent.poll().is_some() {
                return Ok(());
            }
            if agent.stop_reason.is_none() {
                agent.stop_reason = Some(reason.to_string());
                agent.save();
            }
            agent.pid
        };
        // The process is not reaped yet (or, adopted, has its start time): the pid is ours.
        let term = tokio::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        let termed = match term {
            Ok(status) => status.success(),
            Err(e) => {
                tracing::warn!(task_id, pid, "could not run kill -TERM: {e}; killing");
                false
            }
        };
        let deadline = Instant::now() + self.grace;
        loop {
            {
                let mut children = self.children();
                let Some(agent) = children.agents.get_mut(task_id) else {
                    return Ok(());
                };
                if agent.poll().is_some() {
                    return Ok(());
                }
                if Instant::now() >= deadline || !termed {
                    tracing::warn!(task_id, pid, "agent ignored SIGTERM; sending SIGKILL");
                    agent.kill();
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
