//! The operator commands: `barrage controller` (the service) and the kubectl-like client
//! commands `apply`, `get`, `describe`, `watch`, `delete`, `report`, plus the hidden
//! `admin init` that creates the table and the bucket (scripts and tests).
//!
//! The client commands find the store and the blobs through `BARRAGE_STORE` and
//! `BARRAGE_BLOBS` (`eval "$(scripts/local-operator.sh env)"` sets them against the
//! emulator). Exit codes are the CLI's: 0 passed, 1 thresholds failed, 2 invalid input, 3 run
//! error or timeout. This module formats and waits; it decides nothing about runs.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use barrage_crds::agent_status::AgentStatus;
use barrage_crds::duration::HumanDuration;
use barrage_crds::env::{BlobsUrl, StoreUrl};
use barrage_crds::keys::{self, ReportFile};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::status::{LoadTestStatus, Phase, VerdictResult};
use barrage_store::dynamo::DynamoStore;
use barrage_store::memory::MemoryStore;
use barrage_store::s3::S3Blobs;
use barrage_store::streams::{WatchOptions, Watchable as _};
use barrage_store::{Applied, Blobs, Store, StoreError, StoredLoadTest};
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};

use super::Outcome;
use super::output::{micros, thousands};
use barrage_operator::launch::Launcher;
use barrage_operator::launch::ecs::EcsLauncher;
use barrage_operator::launch::process::{
    CREDENTIAL_PASS_THROUGH, PASS_THROUGH, ProcessLauncher, pass_through,
};
use barrage_operator::metrics::Metrics;
use barrage_operator::runtime::Controller;
use barrage_operator::runtime::config::{self as cfgvars, ControllerConfig, LauncherKind};

const HINT: &str = "set BARRAGE_STORE and BARRAGE_BLOBS, e.g. dynamodb://barrage and s3://barrage-reports \
                    (locally: scripts/local-operator.sh up && eval \"$(scripts/local-operator.sh env)\")";

// ---------------------------------------------------------------------------------------------
// Arguments

/// `barrage controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// How agents run: `ecs` tasks or local `process`es [env: BARRAGE_LAUNCHER; default ecs].
    #[arg(long, value_parser = ["ecs", "process"])]
    pub launcher: Option<String>,
    /// Records store, e.g. dynamodb://barrage [env: BARRAGE_STORE].
    #[arg(long)]
    pub store: Option<String>,
    /// Blob store, e.g. s3://barrage-reports [env: BARRAGE_BLOBS].
    #[arg(long)]
    pub blobs: Option<String>,
    /// `/metrics` and `/healthz` address, or `off` [env: BARRAGE_METRICS_ADDR].
    #[arg(long)]
    pub metrics_addr: Option<String>,
    /// Full resync period, e.g. 30s [env: BARRAGE_RESYNC_PERIOD].
    #[arg(long)]
    pub resync: Option<String>,
    /// Leader lease, e.g. 15s [env: BARRAGE_LEASE_DURATION].
    #[arg(long)]
    pub lease_duration: Option<String>,
    /// Longest graceful shutdown after SIGTERM, e.g. 20s [env: BARRAGE_SHUTDOWN_GRACE].
    #[arg(long)]
    pub shutdown_grace: Option<String>,
    /// This controller's lease holder name [env: BARRAGE_CONTROLLER_ID].
    #[arg(long)]
    pub id: Option<String>,
    /// The `barrage-agent` program for the process launcher [env: BARRAGE_AGENT_BINARY].
    #[arg(long)]
    pub agent_binary: Option<PathBuf>,
    /// ECS cluster [env: BARRAGE_ECS_CLUSTER].
    #[arg(long)]
    pub cluster: Option<String>,
    /// Agent task definition [env: BARRAGE_AGENT_TASK_DEFINITION].
    #[arg(long)]
    pub task_definition: Option<String>,
    /// Create the table and the bucket first if they are missing (local use).
    #[arg(long)]
    pub init: bool,
}

/// `barrage apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The LoadTest file (YAML or JSON).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Follow the run until it ends; the exit code is its verdict.
    #[arg(long)]
    pub wait: bool,
    /// Longest wait, e.g. 10m (default: the spec's durations and timeouts).
    #[arg(long)]
    pub timeout: Option<String>,
}

/// Output formats of `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GetFormat {
    /// Columns.
    Table,
    /// More columns.
    Wide,
    /// The records as JSON.
    Json,
    /// The records as YAML.
    Yaml,
}

/// `barrage get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// One LoadTest (default: all).
    pub name: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: GetFormat,
}

/// `barrage watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The LoadTest.
    pub name: String,
    /// Longest wait, e.g. 10m (default: the spec's durations and timeouts).
    #[arg(long)]
    pub timeout: Option<String>,
}

/// `barrage delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The LoadTest.
    pub name: String,
    /// Wait until the controller stopped every agent and removed the record.
    #[arg(long)]
    pub wait: bool,
    /// Longest wait (default 5m).
    #[arg(long, default_value = "5m")]
    pub timeout: String,
}

/// `barrage rerun`.
#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The LoadTest.
    pub name: String,
    /// Follow the new run until it ends; the exit code is its verdict.
    #[arg(long)]
    pub wait: bool,
    /// Longest wait, e.g. 10m (default: the spec's durations and timeouts).
    #[arg(long)]
    pub timeout: Option<String>,
}

/// `barrage report`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReportArgs {
    /// The LoadTest.
    #[arg(required = true)]
    pub name: Option<String>,
    /// Where the files go (default barrage-reports/NAME/RUN).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<ReportCommand>,
}

/// `barrage report render`.
#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Renders the full report set (report.json, report.html, merged.hlog, junit.xml) from a
    /// folder of interval logs (`.hlog`, Barrage's or any HdrHistogram tool's), offline.
    Render {
        /// Folder searched for `.hlog` files (recursively).
        dir: PathBuf,
        /// Where the report set goes (default: DIR).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `barrage report render DIR [--out DIR]`.
pub fn report_render(dir: &Path, out: Option<&Path>) -> Outcome {
    let out = out.unwrap_or(dir);
    match barrage_operator::report::render_dir(dir, out) {
        Ok(set) => {
            let s = &set.summary;
            println!(
                "Rendered {} from {}: {} records acked, produce p50 {} µs, p99 {} µs, max {} µs; verdict {:?}",
                out.display(),
                dir.display(),
                s.records_acked,
                s.produce_p50_us,
                s.produce_p99_us,
                s.produce_max_us,
                set.verdict.result
            );
            Outcome::Passed
        }
        Err(e) => die(
            Outcome::InvalidInput,
            format!("cannot render {}: {e}", dir.display()),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Opening the stores

fn die(outcome: Outcome, message: impl std::fmt::Display) -> Outcome {
    eprintln!("error: {message}");
    outcome
}

fn store_outcome(e: &StoreError) -> Outcome {
    match e {
        StoreError::Missing(_) => Outcome::RunError,
        _ => Outcome::RunError,
    }
}

async fn open_store_url(url: &StoreUrl) -> Result<Arc<dyn Store>, String> {
    barrage_store::open_store(url)
        .await
        .map_err(|e| e.to_string())
}

/// The store and blobs of `BARRAGE_STORE` / `BARRAGE_BLOBS`.
async fn client_store() -> Result<Arc<dyn Store>, Outcome> {
    let Some(text) = std::env::var(cfgvars::BARRAGE_STORE)
        .ok()
        .filter(|s| !s.is_empty())
    else {
        return Err(die(
            Outcome::InvalidInput,
            format!("BARRAGE_STORE is not set: {HINT}"),
        ));
    };
    let url = text
        .parse::<StoreUrl>()
        .map_err(|e| die(Outcome::InvalidInput, format!("BARRAGE_STORE: {e}")))?;
    if matches!(url, StoreUrl::Memory) {
        return Err(die(
            Outcome::InvalidInput,
            "BARRAGE_STORE=memory: lives inside one process; the CLI needs a shared store (dynamodb://TABLE)",
        ));
    }
    open_store_url(&url)
        .await
        .map_err(|e| die(Outcome::InvalidInput, e))
}

async fn client_blobs() -> Result<Arc<dyn Blobs>, Outcome> {
    let Some(text) = std::env::var(cfgvars::BARRAGE_BLOBS)
        .ok()
        .filter(|s| !s.is_empty())
    else {
        return Err(die(
            Outcome::InvalidInput,
            format!("BARRAGE_BLOBS is not set: {HINT}"),
        ));
    };
    let url = text
        .parse::<BlobsUrl>()
        .map_err(|e| die(Outcome::InvalidInput, format!("BARRAGE_BLOBS: {e}")))?;
    barrage_store::open_blobs(&url)
        .await
        .map_err(|e| die(Outcome::InvalidInput, e))
}

// ---------------------------------------------------------------------------------------------
// barrage controller and admin init

/// Creates the table (with its stream) and the bucket if missing.
pub async fn init(store: &StoreUrl, blobs: &BlobsUrl) -> Result<(), String> {
    if let StoreUrl::DynamoDb { table } = store {
        let d = DynamoStore::from_env(table.clone()).await;
        match d.list_load_tests().await {
            Ok(_) => println!("table {table}: exists"),
            Err(StoreError::Missing(_)) => {
                d.create_table()
                    .await
                    .map_err(|e| format!("creating table {table}: {e}"))?;
                println!("table {table}: created (with its stream)");
            }
            Err(e) => return Err(format!("checking table {table}: {e}")),
        }
    }
    if let BlobsUrl::S3 { bucket, prefix } = blobs {
        let b = S3Blobs::from_env(bucket.clone(), prefix.clone()).await;
        b.create_bucket()
            .await
            .map_err(|e| format!("creating bucket {bucket}: {e}"))?;
        println!("bucket {bucket}: ready");
    }
    Ok(())
}

/// `barrage admin init`: the table and the bucket of `BARRAGE_STORE` / `BARRAGE_BLOBS`.
pub async fn admin_init() -> Outcome {
    let cfg = match ControllerConfig::from_lookup(|k| match k {
        cfgvars::BARRAGE_LAUNCHER => Some("process".into()),
        _ => std::env::var(k).ok(),
    }) {
        Ok(c) => c,
        Err(e) => return die(Outcome::InvalidInput, e),
    };
    match init(&cfg.store, &cfg.blobs).await {
        Ok(()) => Outcome::Passed,
        Err(e) => die(Outcome::RunError, e),
    }
}

fn default_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("barrage")
}

/// The process launcher's default agent folder under `~/.cache/barrage/agents/`, one per store:
/// a controller adopts (and reaps as orphans) the agents recorded in its folder, so controllers
/// of different stores must not share one. A memory store lives and dies with its process, so
/// its agents belong to that process alone (`memory-{pid}`).
fn agent_folder(store: &StoreUrl, pid: u32) -> String {
    if *store == StoreUrl::Memory {
        return format!("memory-{pid}");
    }
    let mut name: String = store
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    name.trim_matches('-').to_string()
}

fn agent_binary(cfg: &ControllerConfig) -> PathBuf {
    if let Some(p) = &cfg.agent_binary {
        return p.clone();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("barrage-agent")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("barrage-agent"))
}

/// Runs `controller` until SIGTERM or Ctrl-C, then gives it `grace` to finish reconciles in
/// progress and release the lease; past that it is dropped (its lease then expires by itself)
/// so that hung AWS calls never keep the process beyond its task's stop timeout.
async fn run_until_stopped(controller: Controller, grace: Duration) {
    // The signal is watched by a task of its own: the controller's loop may be waiting on a
    // hung call when it comes, and the grace counts from the signal, not from when it is seen.
    let (requested, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = requested.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        if rx.wait_for(|stopped| *stopped).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let deadline = {
        let rx = stopping.clone();
        async move {
            stopped(rx).await;
            tokio::time::sleep(grace).await;
        }
    };
    tokio::select! {
        () = controller.run(stopped(stopping)) => {}
        () = deadline => tracing::warn!(
            ?grace,
            "Shutdown did not finish within its grace (BARRAGE_SHUTDOWN_GRACE): exiting now; the lease expires by itself."
        ),
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("Shutdown requested.");
}

/// `barrage controller`.
pub async fn controller(args: ControllerArgs) -> Outcome {
    let flags: Vec<(&str, String)> = [
        (cfgvars::BARRAGE_LAUNCHER, args.launcher.clone()),
        (cfgvars::BARRAGE_STORE, args.store.clone()),
        (cfgvars::BARRAGE_BLOBS, args.blobs.clone()),
        (cfgvars::BARRAGE_METRICS_ADDR, args.metrics_addr.clone()),
        (cfgvars::BARRAGE_RESYNC_PERIOD, args.resync.clone()),
        (cfgvars::BARRAGE_LEASE_DURATION, args.lease_duration.clone()),
        (cfgvars::BARRAGE_SHUTDOWN_GRACE, args.shutdown_grace.clone()),
        (cfgvars::BARRAGE_CONTROLLER_ID, args.id.clone()),
        (
            cfgvars::BARRAGE_AGENT_BINARY,
            args.agent_binary.as_ref().map(|p| p.display().to_string()),
        ),
        (cfgvars::BARRAGE_ECS_CLUSTER, args.cluster.clone()),
        (
            cfgvars::BARRAGE_AGENT_TASK_DEFINITION,
            args.task_definition.clone(),
        ),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect();
    let cfg = match ControllerConfig::from_env_with(|k| {
        flags.iter().find(|(f, _)| *f == k).map(|(_, v)| v.clone())
    }) {
        Ok(c) => c,
        Err(e) => return die(Outcome::InvalidInput, e),
    };
    if args.init
        && let Err(e) = init(&cfg.store, &cfg.blobs).await
    {
        return die(Outcome::RunError, e);
    }
    let metrics = Arc::new(Metrics::new());

    // The store, and its watch.
    let (store, watch): (Arc<dyn Store>, _) = match &cfg.store {
        StoreUrl::DynamoDb { table } => {
            let d = Arc::new(DynamoStore::from_env(table.clone()).await);
            if let Err(e) = d.list_load_tests().await {
                return die(Outcome::RunError, e);
            }
            let w = d.watch(WatchOptions {
                poll_interval: cfg.watch_poll,
                ..WatchOptions::default()
            });
            (d, Some(w))
        }
        StoreUrl::Memory => {
            let m = Arc::new(MemoryStore::new());
            let w = m.watch(WatchOptions {
                poll_interval: cfg.watch_poll,
                ..WatchOptions::default()
            });
            (m, Some(w))
        }
        other => match open_store_url(other).await {
            Ok(s) => (s, None),
            Err(e) => return die(Outcome::InvalidInput, e),
        },
    };
    let blobs = match barrage_store::open_blobs(&cfg.blobs).await {
        Ok(b) => b,
        Err(e) => return die(Outcome::InvalidInput, e),
    };
    if let Err(e) = blobs.list("runs/").await {
        return die(Outcome::RunError, e);
    }

    // The launcher.
    let launcher: Arc<dyn Launcher> = match cfg.launcher {
        LauncherKind::Process => {
            let mut env = pass_through(PASS_THROUGH);
            env.extend(pass_through(CREDENTIAL_PASS_THROUGH));
            let dir = cfg.agent_log_dir.clone().unwrap_or_else(|| {
                default_cache()
                    .join("agents")
                    .join(agent_folder(&cfg.store, std::process::id()))
            });
            let program = agent_binary(&cfg);
            match ProcessLauncher::new(&program, env, &dir) {
                Ok(l) => {
                    tracing::info!(agent = %program.display(), logs = %dir.display(), "Agents run as local processes.");
                    Arc::new(l)
                }
                Err(e) => return die(Outcome::RunError, e),
            }
        }
        LauncherKind::Ecs => {
            let Some(ecs) = cfg.ecs.clone() else {
                return die(
                    Outcome::InvalidInput,
                    "the ecs launcher needs BARRAGE_ECS_CLUSTER and BARRAGE_AGENT_TASK_DEFINITION",
                );
            };
            let sdk = barrage_store::aws::sdk_config().await;
            let l = Arc::new(EcsLauncher::new(aws_sdk_ecs::Client::new(&sdk), ecs));
            let stats = l.clone();
            metrics.add_aws_source(Arc::new(move || {
                stats
                    .stats()
                    .snapshot()
                    .into_iter()
                    .map(|(op, c, t, e)| ("ecs", op, c, t, e))
                    .collect()
            }));
            l
        }
    };

    // Metrics.
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = match cfg.metrics_addr {
        Some(addr) => match barrage_operator::metrics::bind(addr).await {
            Ok(listener) => {
                let bound = listener
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                tracing::info!(addr = %bound, "Serving /metrics and /healthz.");
                Some(tokio::spawn(barrage_operator::metrics::serve(
                    listener,
                    metrics.clone(),
                    async {
                        let _ = metrics_stopped.await;
                    },
                )))
            }
            Err(e) => {
                return die(
                    Outcome::RunError,
                    format!(
                        "cannot listen on {addr} for metrics: {e} (set BARRAGE_METRICS_ADDR or --metrics-addr, or off)"
                    ),
                );
            }
        },
        None => None,
    };

    let grace = cfg.shutdown_grace;
    let mut controller = Controller::new(cfg, store, blobs, launcher).with_metrics(metrics);
    if let Some(w) = watch {
        controller = controller.with_watch(w);
    }
    run_until_stopped(controller, grace).await;
    let _ = stop_metrics.send(());
    if let Some(s) = server {
        let _ = s.await;
    }
    Outcome::Passed
}

// ---------------------------------------------------------------------------------------------
// Waiting and the verdict

/// The exit outcome of a finished run.
pub fn outcome_of(status: &LoadTestStatus) -> Outcome {
    let reason = status
        .transitions
        .last()
        .map(|t| t.reason.as_str())
        .unwrap_or("");
    match status.phase {
        Phase::Succeeded => match status.verdict.as_ref().map(|v| v.result) {
            Some(VerdictResult::Passed) | None => Outcome::Passed,
            Some(VerdictResult::Failed) => Outcome::ThresholdsFailed,
            Some(_) => Outcome::RunError,
        },
        Phase::Failed => {
            let spec_invalid = status
                .condition("SpecInvalid")
                .is_some_and(|c| c.status == barrage_crds::status::ConditionStatus::True);
            if spec_invalid || reason == "SpecInvalid" {
                Outcome::InvalidInput
            } else if reason == "ThresholdsFailed"
                || status.verdict.as_ref().map(|v| v.result) == Some(VerdictResult::Failed)
            {
                Outcome::ThresholdsFailed
            } else {
                Outcome::RunError
            }
        }
        _ => Outcome::RunError,
    }
}

/// How long `--wait` waits by default: the longest the run may take, plus a minute.
pub fn default_wait(lt: &LoadTest) -> Duration {
    let t = &lt.spec.timeouts;
    [
        t.provisioning.as_std(),
        t.ready.as_std(),
        lt.spec.load.effective_max_duration(),
        t.draining.as_std(),
        t.reporting.as_std(),
        Duration::from_secs(60),
    ]
    .into_iter()
    .fold(Duration::ZERO, Duration::saturating_add)
}

fn parse_timeout(text: &str) -> Result<Duration, Outcome> {
    HumanDuration::parse(text)
        .map(|d| d.as_std())
        .map_err(|e| die(Outcome::InvalidInput, format!("--timeout: {e}")))
}

/// One line of live progress.
pub fn progress_line(name: &str, st: &LoadTestStatus, now: DateTime<Utc>) -> String {
    let a = &st.agents;
    let p = &st.progress;
    let since = st
        .phase_since
        .map(|s| format!(" {}s", (now - s).num_seconds().max(0)))
        .unwrap_or_default();
    let mut line = format!(
        "{name}: {}{since}  agents {}/{} ready, {} running",
        st.phase.as_str(),
        a.ready,
        a.desired,
        a.running
    );
    if p.sent > 0 || p.consumed > 0 || st.phase == Phase::Running {
        if p.sent > 0 || p.consumed == 0 {
            line.push_str(&format!(
                "  sent {}  acked {}",
                thousands(p.sent),
                thousands(p.acked)
            ));
        }
        if p.consumed > 0 {
            line.push_str(&format!("  consumed {}", thousands(p.consumed)));
        }
        line.push_str(&format!(
            "  errors {}  {:.0}/s",
            thousands(p.errors),
            p.current_rate
        ));
        if let Some(us) = p.window_p99_us {
            line.push_str(&format!("  p99 {}", micros(us)));
        }
    }
    line
}

/// Follows `name` until its status is terminal (and has observed `generation`), printing
/// progress; the terminal status, or None on timeout / vanished record.
async fn follow(
    store: &dyn Store,
    name: &str,
    generation: Option<i64>,
    limit: Duration,
) -> Result<LoadTestStatus, Outcome> {
    let deadline = Instant::now() + limit;
    let tty = std::io::stderr().is_terminal();
    let mut last_line = String::new();
    let mut last_print = Instant::now();
    let mut last_phase = None;
    loop {
        let rec = match store.get_load_test(name).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                if tty {
                    eprintln!();
                }
                return Err(die(
                    Outcome::RunError,
                    format!("loadtest/{name} no longer exists"),
                ));
            }
            Err(e) => {
                if e.is_retryable() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                return Err(die(store_outcome(&e), e));
            }
        };
        let st = rec.status.clone().unwrap_or_default();
        let current = generation.is_none_or(|g| st.observed_generation.unwrap_or(0) >= g);
        let line = progress_line(name, &st, Utc::now());
        if tty {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else if line != last_line
            && (last_phase != Some(st.phase) || last_print.elapsed() >= Duration::from_secs(5))
        {
            eprintln!("{line}");
            last_print = Instant::now();
        }
        last_line = line;
        last_phase = Some(st.phase);
        if current && st.phase.is_terminal() {
            if tty {
                eprintln!();
            }
            return Ok(st);
        }
        if Instant::now() >= deadline {
            if tty {
                eprintln!();
            }
            return Err(die(
                Outcome::RunError,
                format!(
                    "timed out after {} waiting for loadtest/{name} (phase {}); it goes on in the controller",
                    HumanDuration::from_millis(
                        u64::try_from(limit.as_millis()).unwrap_or(u64::MAX)
                    ),
                    st.phase.as_str()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Prints how a run ended and returns its exit outcome.
fn finish(name: &str, st: &LoadTestStatus) -> Outcome {
    println!("loadtest/{name} {}", st.phase.as_str());
    if let Some(m) = &st.message {
        println!("  {m}");
    }
    if let Some(s) = &st.summary {
        println!(
            "  records sent {}  acked {}  failed {}  achieved {:.1}/s of {:.1}/s  p50 {}  p99 {}",
            thousands(s.records_sent),
            thousands(s.records_acked),
            thousands(s.records_failed),
            s.achieved_rate,
            s.target_rate,
            micros(s.produce_p50_us),
            micros(s.produce_p99_us)
        );
    }
    if let Some(v) = &st.verdict {
        println!("  verdict {:?}", v.result);
        for r in &v.reasons {
            println!("    {r}");
        }
    }
    if let Some(r) = &st.reports {
        for uri in [&r.json, &r.html, &r.junit].into_iter().flatten() {
            println!("  report {uri}");
        }
    }
    outcome_of(st)
}

// ---------------------------------------------------------------------------------------------
// apply, watch, delete

/// `barrage apply -f FILE [--wait] [--timeout D]`.
pub async fn apply(args: ApplyArgs) -> Outcome {
    let lt = match super::validate::read_load_test(&args.file) {
        Ok(lt) => lt,
        Err(outcome) => return outcome,
    };
    let limit = match &args.timeout {
        Some(t) => match parse_timeout(t) {
            Ok(d) => d,
            Err(o) => return o,
        },
        None => default_wait(&lt),
    };
    let store = match client_store().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let name = lt.name().to_string();
    let applied = match store.apply(&lt).await {
        Ok(a) => a,
        Err(e) => return die(store_outcome(&e), e),
    };
    let generation = match applied {
        Applied::Created { generation } => {
            println!("loadtest/{name} created (generation {generation})");
            generation
        }
        Applied::Updated { generation } => {
            println!("loadtest/{name} configured (generation {generation})");
            generation
        }
        Applied::Unchanged { generation } => {
            println!("loadtest/{name} unchanged (generation {generation})");
            generation
        }
    };
    if !args.wait {
        return Outcome::Passed;
    }
    if let Ok(Some(rec)) = store.get_load_test(&name).await
        && let Some(st) = &rec.status
        && st.phase.is_terminal()
        && st.observed_generation.unwrap_or(0) < generation
    {
        eprintln!(
            "note: loadtest/{name} already finished ({}); a finished run is final. \
             To run it again: barrage rerun {name} --wait (or set a new spec.rerun).",
            st.phase.as_str()
        );
    }
    match follow(store.as_ref(), &name, Some(generation), limit).await {
        Ok(st) => finish(&name, &st),
        Err(o) => o,
    }
}

/// `barrage rerun NAME`: writes the next `spec.rerun`, so the controller runs the same spec
/// again (superseding a live run). The one way to start a run over on purpose.
pub async fn rerun(args: RerunArgs) -> Outcome {
    let store = match client_store().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let name = args.name;
    let rec = match store.get_load_test(&name).await {
        Ok(Some(rec)) => rec,
        Ok(None) => return die(Outcome::InvalidInput, format!("loadtest/{name} not found")),
        Err(e) => return die(store_outcome(&e), e),
    };
    let mut lt = match rec.doc {
        Ok(lt) => lt,
        Err(e) => {
            return die(
                Outcome::InvalidInput,
                format!("loadtest/{name} cannot be read, so it cannot run again: {e}"),
            );
        }
    };
    let ran = rec.status.as_ref().map_or(0, |st| st.rerun);
    lt.spec.rerun = lt.spec.rerun.max(ran).saturating_add(1);
    let limit = match &args.timeout {
        Some(t) => match parse_timeout(t) {
            Ok(d) => d,
            Err(o) => return o,
        },
        None => default_wait(&lt),
    };
    let generation = match store.apply(&lt).await {
        Ok(Applied::Created { generation } | Applied::Updated { generation })
        | Ok(Applied::Unchanged { generation }) => generation,
        Err(e) => return die(store_outcome(&e), e),
    };
    println!(
        "loadtest/{name} rerun {} requested (generation {generation})",
        lt.spec.rerun
    );
    if !args.wait {
        return Outcome::Passed;
    }
    match follow(store.as_ref(), &name, Some(generation), limit).await {
        Ok(st) => finish(&name, &st),
        Err(o) => o,
    }
}

/// `barrage watch NAME`.
pub async fn watch(args: WatchArgs) -> Outcome {
    let store = match client_store().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let rec = match store.get_load_test(&args.name).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return die(
                Outcome::InvalidInput,
                format!("loadtest/{} not found", args.name),
            );
        }
        Err(e) => return die(store_outcome(&e), e),
    };
    let limit = match (&args.timeout, &rec.doc) {
        (Some(t), _) => match parse_timeout(t) {
            Ok(d) => d,
            Err(o) => return o,
        },
        (None, Ok(lt)) => default_wait(lt),
        (None, Err(_)) => Duration::from_secs(60),
    };
    match follow(store.as_ref(), &args.name, None, limit).await {
        Ok(st) => finish(&args.name, &st),
        Err(o) => o,
    }
}

/// `barrage delete NAME [--wait]`.
pub async fn delete(args: DeleteArgs) -> Outcome {
    let limit = match parse_timeout(&args.timeout) {
        Ok(d) => d,
        Err(o) => return o,
    };
    let store = match client_store().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    match store.request_delete(&args.name).await {
        Ok(()) => println!("loadtest/{} deletion requested", args.name),
        Err(StoreError::NotFound { .. }) => {
            return die(
                Outcome::InvalidInput,
                format!("loadtest/{} not found", args.name),
            );
        }
        Err(e) => return die(store_outcome(&e), e),
    }
    if !args.wait {
        return Outcome::Passed;
    }
    let deadline = Instant::now() + limit;
    let mut last_phase = None;
    loop {
        match store.get_load_test(&args.name).await {
            Ok(None) => {
                println!("loadtest/{} deleted", args.name);
                return Outcome::Passed;
            }
            Ok(Some(rec)) => {
                let phase = rec.status.map(|s| s.phase);
                if phase != last_phase {
                    if let Some(p) = phase {
                        eprintln!("{}: {}", args.name, p.as_str());
                    }
                    last_phase = phase;
                }
            }
            Err(e) if !e.is_retryable() => return die(store_outcome(&e), e),
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            return die(
                Outcome::RunError,
                format!(
                    "timed out waiting for loadtest/{} to be removed (is a controller running?)",
                    args.name
                ),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// get and describe

fn age(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(since) = since else {
        return "-".into();
    };
    let s = (now - since).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// The `get` table (wide adds generation, run, p99 and message).
pub fn table(records: &[StoredLoadTest], wide: bool, now: DateTime<Utc>) -> String {
    let mut rows = vec![{
        let mut h = vec!["NAME", "PHASE", "AGENTS", "SENT", "RATE", "VERDICT", "AGE"];
        if wide {
            h.extend(["GEN", "RUN", "P99", "MESSAGE"]);
        }
        h.into_iter().map(String::from).collect::<Vec<_>>()
    }];
    for r in records {
        let st = r.status.clone().unwrap_or_default();
        let created = r
            .doc
            .as_ref()
            .ok()
            .and_then(|lt| lt.metadata.creation_timestamp);
        let mut row = vec![
            r.name.clone(),
            st.phase.as_str().to_string(),
            format!(
                "{}/{}",
                st.agents.ready.max(st.agents.running),
                st.agents.desired
            ),
            thousands(
                st.summary
                    .as_ref()
                    .map_or(st.progress.sent, |s| s.records_sent),
            ),
            format!(
                "{:.0}/s",
                st.summary
                    .as_ref()
                    .map_or(st.progress.current_rate, |s| s.achieved_rate)
            ),
            st.verdict
                .as_ref()
                .map_or("-".to_string(), |v| format!("{:?}", v.result)),
            age(created.or(st.transitions.first().map(|t| t.at)), now),
        ];
        if wide {
            row.push(format!(
                "{}/{}",
                st.observed_generation.unwrap_or(0),
                r.generation
            ));
            row.push(st.run_id.clone().unwrap_or_else(|| "-".into()));
            row.push(
                st.summary
                    .as_ref()
                    .map(|s| micros(s.produce_p99_us))
                    .or(st.progress.window_p99_us.map(micros))
                    .unwrap_or_else(|| "-".into()),
            );
            let msg = match &r.doc {
                Err(e) => e.clone(),
                Ok(_) => st.message.clone().unwrap_or_default(),
            };
            row.push(msg.lines().next().unwrap_or("").to_string());
        }
        rows.push(row);
    }
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A record as data: the document with its status, or (unreadable) its name, error and status.
pub fn record_value(r: &StoredLoadTest) -> serde_json::Value {
    match &r.doc {
        Ok(lt) => {
            let mut lt = lt.clone();
            lt.status = r.status.clone();
            lt.to_value()
        }
        Err(e) => serde_json::json!({
            "metadata": {"name": r.name, "generation": r.generation},
            "error": e,
            "status": r.status,
        }),
    }
}

/// `barrage get [NAME] [-o FORMAT]`.
pub async fn get(args: GetArgs) -> Outcome {
    let store = match client_store().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let records = match &args.name {
        Some(name) => match store.get_load_test(name).await {
            Ok(Some(r)) => vec![r],
            Ok(None) => return die(Outcome::InvalidInput, format!("loadtest/{name} not found")),
            Err(e) => return die(store_outcome(&e), e),
        },
        None => match store.list_load_tests().await {
            Ok(mut r) => {
                r.sort_by(|a, b| a.name.cmp(&b.name));
                r
            }
            Err(e) => return die(store_outcome(&e), e),
        },
    };
    let value = || {
        if args.name.is_some() {
            records.first().map(record_value).unwrap_or_default()
        } else {
            serde_json::json!({"kind": "List", "items": records.iter().map(record_value).collect::<Vec<_>>()})
        }
    };
    match args.output {
        GetFormat::Table | GetFormat::Wide => {
            if records.is_empty() {
                eprintln!("No LoadTests.");
            } else {
                print!(
                    "{}",
                    table(&records, args.output == GetFormat::Wide, Utc::now())
                );
            }
        }
        GetFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&value()).unwrap_or_default()
        ),
        GetFormat::Yaml => print!("{}", serde_yaml::to_string(&value()).unwrap_or_default()),
    }
    Outcome::Passed
}

/// The `describe` text.
pub fn describe_text(r: &StoredLoadTest, agents: &[AgentStatus], now: DateTime<Utc>) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let st = r.status.clone().unwrap_or_default();
    let _ = writeln!(o, "Name:          {}", r.name);
    let _ = writeln!(
        o,
        "Generation:    {} (observed {})",
        r.generation,
        st.observed_generation.map_or("-".into(), |g| g.to_string())
    );
    if let Some(d) = r.deletion_requested {
        let _ = writeln!(o, "Deletion:      requested {} ago", age(Some(d), now));
    }
    if let Some(e) = &r.status_error {
        let _ = writeln!(
            o,
            "Status:        UNREADABLE, the controller leaves this record alone: {e}. \
             Fix or delete its status item (pk lt#{}, sk status).",
            r.name
        );
    }
    match &r.doc {
        Err(e) => {
            let _ = writeln!(o, "Spec:          unreadable: {e}");
        }
        Ok(lt) => {
            let s = &lt.spec;
            let _ = writeln!(
                o,
                "Spec:          {:?} to topic {} at {}",
                s.workload.kind, s.topic.name, s.kafka.bootstrap_servers
            );
            let _ = writeln!(
                o,
                "               {} agent(s), peak {:.0} records/s, {} planned over {}{}",
                s.agents.count,
                s.load.peak_rate(),
                thousands(s.load.expected_records()),
                HumanDuration::from_millis(
                    u64::try_from(s.load.total_duration().as_millis()).unwrap_or(u64::MAX)
                ),
                if s.paused { ", paused" } else { "" }
            );
            if !s.thresholds.is_empty() {
                let t: Vec<String> = s.thresholds.iter().map(ToString::to_string).collect();
                let _ = writeln!(o, "Thresholds:    {}", t.join(", "));
            }
        }
    }
    let _ = writeln!(
        o,
        "Phase:         {} (for {})",
        st.phase.as_str(),
        age(st.phase_since, now)
    );
    if let Some(run) = &st.run_id {
        let _ = writeln!(o, "Run:           {run}");
    }
    if let Some(s) = st.start_at {
        let _ = writeln!(o, "Start at:      {}", s.to_rfc3339());
    }
    if let Some(m) = &st.message {
        let _ = writeln!(o, "Message:       {m}");
    }
    let a = &st.agents;
    let _ = writeln!(
        o,
        "Agents:        desired {}  launched {}  ready {}  running {}  failed {}  replaced {}",
        a.desired, a.launched, a.ready, a.running, a.failed, a.replaced
    );
    let p = &st.progress;
    let _ = writeln!(
        o,
        "Progress:      sent {}  acked {}  consumed {}  errors {}  dropped {}  {:.0}/s{}",
        thousands(p.sent),
        thousands(p.acked),
        thousands(p.consumed),
        thousands(p.errors),
        thousands(p.dropped),
        p.current_rate,
        p.window_p99_us
            .map(|u| format!("  p99 {}", micros(u)))
            .unwrap_or_default()
    );
    if let Some(s) = &st.summary {
        let _ = writeln!(
            o,
            "Summary:       sent {}  acked {}  failed {}  achieved {:.1}/s of {:.1}/s  p50 {}  p99 {}  max {}",
            thousands(s.records_sent),
            thousands(s.records_acked),
            thousands(s.records_failed),
            s.achieved_rate,
            s.target_rate,
            micros(s.produce_p50_us),
            micros(s.produce_p99_us),
            micros(s.produce_max_us)
        );
    }
    if let Some(v) = &st.verdict {
        let _ = writeln!(o, "Verdict:       {:?}", v.result);
        for reason in &v.reasons {
            let _ = writeln!(o, "               {reason}");
        }
    }
    if let Some(rep) = &st.reports {
        for (label, uri) in [
            ("json", &rep.json),
            ("html", &rep.html),
            ("hlog", &rep.hlog),
            ("junit", &rep.junit),
        ] {
            if let Some(u) = uri {
                let _ = writeln!(o, "Report {label:<6} {u}");
            }
        }
    }
    if !st.conditions.is_empty() {
        let _ = writeln!(o, "Conditions:");
        for c in &st.conditions {
            let _ = writeln!(
                o,
                "  {:<16} {:<7} {:<22} {:>5}  {}",
                c.type_,
                format!("{:?}", c.status),
                c.reason,
                age(Some(c.last_transition_time), now),
                c.message
            );
        }
    }
    if !st.slots.is_empty() {
        let _ = writeln!(o, "Slots:");
        let _ = writeln!(o, "  SLOT  INC  STATE        RESTARTS  TASK");
        for s in &st.slots {
            let _ = writeln!(
                o,
                "  {:<5} {:<4} {:<12} {:<9} {}{}",
                s.slot,
                s.incarnation,
                format!("{:?}", s.state),
                s.restarts,
                s.task_id.as_deref().unwrap_or("-"),
                s.last_error
                    .as_ref()
                    .map(|e| format!("  ({e})"))
                    .unwrap_or_default()
            );
        }
    }
    if !agents.is_empty() {
        let _ = writeln!(o, "Agents of this run:");
        let _ = writeln!(
            o,
            "  SLOT  INC  PHASE       SENT        ACKED       ERRORS   HEARTBEAT"
        );
        for a in agents {
            let _ = writeln!(
                o,
                "  {:<5} {:<4} {:<11} {:<11} {:<11} {:<8} {} ago{}",
                a.slot,
                a.incarnation,
                a.phase.as_str(),
                thousands(a.counters.sent),
                thousands(a.counters.acked),
                thousands(a.counters.errors),
                age(Some(a.heartbeat_at), now),
                a.reason
                    .as_ref()
                    .map(|r| format!("  ({r})"))
                    .unwrap_or_default()
            );
        }
    }
    if !st.transitions.is_empty() {
        let _ = writeln!(o, "Transitions:");
        for t in &st.transitions {
            let _ = writeln!(
                o,
                "  {}  {} -> {}  {}",
                t.at.format("%H:%M:%S"),
                t.from.as_str(),
                t.to.as_str(),
                t.reason
            );
        }
    }
    o
}

/// `barrage describe NAME`.
pub async fn describe(name: &str) -> Outcome {
    let store = match client_store().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let rec = match store.get_load_test(name).await {
        Ok(Some(r)) => r,
        Ok(None) => return die(Outcome::InvalidInput, format!("loadtest/{name} not found")),
        Err(e) => return die(store_outcome(&e), e),
    };
    let agents = match rec.status.as_ref().and_then(|s| s.run_id.clone()) {
        Some(run) => store
            .list_agent_status(name, &run)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    print!("{}", describe_text(&rec, &agents, Utc::now()));
    Outcome::Passed
}

// ---------------------------------------------------------------------------------------------
// report

/// `barrage report NAME [--out DIR]`: downloads the run's report set.
pub async fn report(args: ReportArgs) -> Outcome {
    if let Some(ReportCommand::Render { dir, out }) = &args.command {
        return report_render(dir, out.as_deref());
    }
    let Some(name) = args.name.clone() else {
        return die(
            Outcome::InvalidInput,
            "barrage report needs NAME (or `render DIR`)",
        );
    };
    let store = match client_store().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let blobs = match client_blobs().await {
        Ok(b) => b,
        Err(o) => return o,
    };
    let rec = match store.get_load_test(&name).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return die(
                Outcome::InvalidInput,
                format!("loadtest/{} not found", name),
            );
        }
        Err(e) => return die(store_outcome(&e), e),
    };
    let st = rec.status.unwrap_or_default();
    let Some(run) = st.run_id.clone() else {
        return die(
            Outcome::RunError,
            format!("loadtest/{} has not started a run yet", name),
        );
    };
    let out = args
        .out
        .unwrap_or_else(|| Path::new("barrage-reports").join(&name).join(&run));
    if let Err(e) = std::fs::create_dir_all(&out) {
        return die(
            Outcome::RunError,
            format!("cannot create {}: {e}", out.display()),
        );
    }
    let mut written = 0;
    for file in ReportFile::ALL {
        let key = keys::report_key(&name, &run, file);
        match blobs.get(&key).await {
            Ok(Some(body)) => {
                let path = out.join(file.file_name());
                if let Err(e) = std::fs::write(&path, &body[..]) {
                    return die(
                        Outcome::RunError,
                        format!("cannot write {}: {e}", path.display()),
                    );
                }
                println!("{}", path.display());
                written += 1;
            }
            Ok(None) => eprintln!("missing: {}", blobs.uri(&key)),
            Err(e) => return die(Outcome::RunError, e),
        }
    }
    if written == 0 {
        return die(
            Outcome::RunError,
            format!(
                "no report for run {run} of loadtest/{} yet (phase {})",
                name,
                st.phase.as_str()
            ),
        );
    }
    if st.phase.is_terminal() {
        outcome_of(&st)
    } else {
        Outcome::Passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barrage_crds::status::{Transition, Verdict};

    #[test]
    fn each_store_has_its_own_agent_folder() {
        let table = |t: &str| StoreUrl::DynamoDb { table: t.into() };
        assert_eq!(agent_folder(&table("barrage"), 7), "dynamodb-barrage");
        assert_eq!(agent_folder(&table("barrage_2"), 7), "dynamodb-barrage-2");
        assert_ne!(
            agent_folder(&table("a"), 7),
            agent_folder(&table("b"), 7),
            "controllers of two tables never adopt each other's agents"
        );
        let dir = StoreUrl::Dir {
            path: "/tmp/x y".into(),
        };
        assert_eq!(agent_folder(&dir, 7), "dir-tmp-x-y");
        assert_eq!(agent_folder(&StoreUrl::Memory, 7), "memory-7");
        assert_ne!(
            agent_folder(&StoreUrl::Memory, 7),
            agent_folder(&StoreUrl::Memory, 8)
        );
    }

    fn ended(phase: Phase, reason: &str, verdict: Option<VerdictResult>) -> LoadTestStatus {
        let mut st = LoadTestStatus {
            phase,
            ..LoadTestStatus::default()
        };
        st.push_transition(Transition {
            from: Phase::Reporting,
            to: phase,
            at: Utc::now(),
            reason: reason.into(),
        });
        st.verdict = verdict.map(|result| Verdict {
            result,
            reasons: vec![],
        });
        st
    }

    #[test]
    fn exit_codes_follow_the_documented_table() {
        let code = |st: &LoadTestStatus| outcome_of(st).code();
        assert_eq!(
            code(&ended(
                Phase::Succeeded,
                "ThresholdsMet",
                Some(VerdictResult::Passed)
            )),
            0
        );
        assert_eq!(
            code(&ended(
                Phase::Failed,
                "ThresholdsFailed",
                Some(VerdictResult::Failed)
            )),
            1
        );
        assert_eq!(code(&ended(Phase::Failed, "SpecInvalid", None)), 2);
        assert_eq!(code(&ended(Phase::Failed, "ReportTimedOut", None)), 3);
        assert_eq!(
            code(&ended(
                Phase::Failed,
                "MeasurementInvalid",
                Some(VerdictResult::Invalid)
            )),
            3
        );
        assert_eq!(code(&ended(Phase::Cancelled, "Cancelled", None)), 3);
    }

    #[test]
    fn describe_says_when_the_stored_status_does_not_decode() {
        let rec = StoredLoadTest {
            name: "demo".into(),
            version: 4,
            generation: 2,
            doc: Ok(LoadTest::example("demo", "127.0.0.1:9092", "t")),
            status: None,
            status_error: Some("the stored status does not decode: unknown variant".into()),
            epoch: 1,
            deletion_requested: None,
        };
        let text = describe_text(&rec, &[], Utc::now());
        assert!(
            text.contains("Status:        UNREADABLE") && text.contains("sk status"),
            "{text}"
        );
    }

    #[test]
    fn the_table_has_a_row_per_record_and_an_unreadable_one_shows_its_error_when_wide() {
        let lt = LoadTest::example("demo", "127.0.0.1:9092", "t");
        let ok = StoredLoadTest {
            name: "demo".into(),
            version: 3,
            generation: 2,
            doc: Ok(lt),
            status: Some(ended(
                Phase::Succeeded,
                "ThresholdsMet",
                Some(VerdictResult::Passed),
            )),
            status_error: None,
            epoch: 1,
            deletion_requested: None,
        };
        let bad = StoredLoadTest {
            name: "broken".into(),
            version: 1,
            generation: 1,
            doc: Err("spec: expected a mapping".into()),
            status: Some(ended(Phase::Failed, "SpecInvalid", None)),
            status_error: None,
            epoch: 1,
            deletion_requested: None,
        };
        let t = table(&[ok.clone(), bad.clone()], true, Utc::now());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("NAME"));
        assert!(
            lines[1].starts_with("demo")
                && lines[1].contains("Succeeded")
                && lines[1].contains("Passed"),
            "{t}"
        );
        assert!(
            lines[2].contains("Failed") && lines[2].contains("expected a mapping"),
            "{t}"
        );
        let v = record_value(&bad);
        assert_eq!(v["error"], "spec: expected a mapping");
        let d = describe_text(&ok, &[], Utc::now());
        assert!(
            d.contains("Name:          demo") && d.contains("Reporting -> Succeeded"),
            "{d}"
        );
    }

    #[test]
    fn the_default_wait_covers_the_run_and_every_timeout() {
        let lt = LoadTest::example("demo", "127.0.0.1:9092", "t");
        assert!(
            default_wait(&lt) > lt.spec.load.effective_max_duration() + Duration::from_secs(60)
        );
    }
}
