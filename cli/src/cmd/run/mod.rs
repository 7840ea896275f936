//! `barrage run FILE [--out DIR]`: one LoadTest on this machine, no AWS.
//!
//! The same agents as on ECS: `agents.count` copies of the agent protocol run in this process
//! ([`fleet`]), over a store in memory and the run's folder as their blob store, and this
//! command plays the controller's part: it ensures the topic, writes the fleet, writes
//! `startAt` once every agent is ready, stops them on Ctrl-C or at `maxDuration`, and renders
//! the report with the operator's code from the interval logs the agents uploaded
//! (`agents/SLOT-INC/INDEX.hlog`, the S3 layout below the run's prefix). Progress while it
//! runs; a summary at the end ([`summary`]). With `spec.report.window`, each closed window's
//! report set goes to `windows/NNNNN/` as the run continues ([`windows`]).

mod fleet;
mod summary;
mod windows;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use barrage_agent::metrics::AgentMetrics;
use barrage_agent::protocol::{AgentError, Finished};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::spec::{LoadTestSpec, TopicCleanup, WorkloadKind};
use barrage_crds::status::VerdictResult;
use barrage_kafka::admin::{Admin, TopicCreate, TopicOutcome};
use barrage_kafka::config::{SaslCredentials, base_config};
use barrage_operator::report::ReportContext;
use barrage_operator::report::render::render_dir_with;
use clap::Args;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use crate::Outcome;
use crate::format::{clock, thousands};
use fleet::LocalFleet;
use summary::{AgentRun, print_summary, print_verdict};
use windows::{Windows, window_loop};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The LoadTest file (YAML or JSON).
    pub file: PathBuf,
    /// Where the run's files go. Default: barrage-reports/<name>/<run-id>/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Longest wait for the broker to answer before giving up.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Progress line interval when not attached to a terminal.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub progress_every: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, barrage_crds::duration::DurationError> {
    s.parse::<barrage_crds::duration::HumanDuration>()
        .map(|d| d.as_std())
}

/// How far ahead of its writing `startAt` is set: every agent reads its LoadTest every
/// 500 ms while it waits, so each sees the start well before it passes.
const START_LEAD: Duration = Duration::from_millis(1_500);

pub async fn run(args: RunArgs) -> Outcome {
    let lt = match super::validate::read_load_test(&args.file) {
        Ok(lt) => lt,
        Err(outcome) => return outcome,
    };
    match run_load_test(&lt, &args).await {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("error: {e}");
            Outcome::RunError
        }
    }
}

/// A short, sortable run id: `20261125-204012-3fa9`.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..4];
    format!("{}-{suffix}", now.format("%Y%m%d-%H%M%S"))
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Admin(#[from] barrage_kafka::admin::AdminError),
    #[error(transparent)]
    Credentials(#[from] barrage_kafka::credentials::CredentialsError),
    #[error(transparent)]
    Store(#[from] barrage_store::StoreError),
    /// An agent failed: the reason it gives.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// An agent's task failed (panicked or was cancelled).
    #[error("an agent task failed: {0}")]
    AgentTask(#[source] tokio::task::JoinError),
    /// The agents never all became ready.
    #[error("the run could not start: {0}")]
    NotStarted(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

async fn run_load_test(lt: &LoadTest, args: &RunArgs) -> Result<Outcome, RunError> {
    let spec = &lt.spec;
    let run_id = new_run_id();
    let out = out_folder(lt, args, &run_id)?;
    let topic = RunTopic::ensure(spec, args.connect_timeout).await?;
    let mut fleet = LocalFleet::launch(lt, &run_id, &out).await?;
    let ready_limit = spec.timeouts.ready.as_std() + spec.timeouts.provisioning.as_std();
    let (_, origin) = fleet.start(START_LEAD, ready_limit).await?;
    print_start(lt, &run_id);

    let stopper = tokio::spawn(stop_at(
        fleet.stopper(),
        origin + spec.load.effective_max_duration(),
    ));
    let progress = tokio::spawn(progress_loop(
        fleet.metrics(),
        origin,
        spec.load.total_duration(),
        args.progress_every,
    ));
    // Soaks: window reports while the run continues, then a last pass once every agent is done.
    let (stop_windows, stop_rx) = oneshot::channel();
    let windows = Windows::new(lt, &run_id, fleet.stores(), origin)
        .map(|w| tokio::spawn(window_loop(w, stop_rx)));
    let finished = fleet.join().await;
    stopper.abort();
    progress.abort();
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let _ = stop_windows.send(());
    if let Some(task) = windows
        && let Ok(mut w) = task.await
        && finished.is_ok()
    {
        w.write_due().await;
    }
    let finished = finished?;
    topic.clean_up(spec, args.connect_timeout).await;
    Ok(report(lt, &run_id, &out, &finished))
}

/// The run's folder: `--out`, or `barrage-reports/<name>/<run-id>/`.
fn out_folder(lt: &LoadTest, args: &RunArgs, run_id: &str) -> Result<PathBuf, RunError> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("barrage-reports").join(lt.name()).join(run_id));
    std::fs::create_dir_all(&out).map_err(|source| RunError::Write {
        path: out.display().to_string(),
        source,
    })?;
    Ok(out)
}

/// The run's topic, ensured before the agents start (a bounded wait for the broker), and
/// deleted at the end when the run created it and the spec asks for it.
struct RunTopic {
    admin: Admin,
    created: bool,
    /// SASL credentials from the referenced secret (and the MSK IAM token refresher), kept
    /// for the admin client's life.
    _sasl: Option<SaslCredentials>,
}

impl RunTopic {
    async fn ensure(spec: &LoadTestSpec, timeout: Duration) -> Result<RunTopic, RunError> {
        let sasl = barrage_kafka::credentials::prepare_security(&spec.kafka).await?;
        let admin = Admin::new(&base_config(&spec.kafka, sasl.as_ref()))?;
        let create = spec.topic.create.as_ref().map(TopicCreate::from_spec);
        let outcome = admin
            .ensure_topic(&spec.topic.name, create.as_ref(), timeout)
            .await?;
        Ok(RunTopic {
            admin,
            created: outcome == TopicOutcome::Created,
            _sasl: sasl,
        })
    }

    async fn clean_up(&self, spec: &LoadTestSpec, timeout: Duration) {
        if self.created
            && spec.topic.cleanup == TopicCleanup::DeleteIfCreated
            && let Err(e) = self.admin.delete_topic(&spec.topic.name, timeout).await
        {
            warn!(error = %e, "Could not delete the topic this run created.");
        }
    }
}

fn print_start(lt: &LoadTest, run_id: &str) {
    let spec = &lt.spec;
    let agents = spec.agents.count.max(1);
    let duration = clock(spec.load.total_duration().as_secs());
    if spec.workload.kind == WorkloadKind::Consume {
        println!(
            "Consuming {} with {agents} agent(s) in one group for {duration}, run {run_id}",
            spec.topic.name,
        );
    } else {
        println!(
            "Running {} ({agents} agent(s), {} records planned over {duration}), run {run_id}",
            lt.name(),
            thousands(planned(spec)),
        );
    }
}

/// Records the profile plans (Consume is not paced by it: none).
fn planned(spec: &LoadTestSpec) -> u64 {
    match spec.workload.kind {
        WorkloadKind::Consume => 0,
        _ => barrage_crds::schedule::profile(&spec.load).total_sends(),
    }
}

/// Stops every agent on Ctrl-C (SIGINT or SIGTERM) or at `deadline` (`maxDuration`).
async fn stop_at(stop: watch::Sender<bool>, deadline: Instant) {
    tokio::select! {
        _ = barrage_agent::cli::shutdown_signal() => {
            warn!("Interrupted (SIGINT or SIGTERM): stopping, flushing and writing what was measured.");
        }
        _ = tokio::time::sleep_until(deadline.into()) => {
            warn!("maxDuration reached: stopping.");
        }
    }
    let _ = stop.send(true);
}

/// The report from the interval logs the agents uploaded, with the same code as the
/// operator's; the summary's rates are the report's.
fn report(lt: &LoadTest, run_id: &str, out: &Path, finished: &[Finished]) -> Outcome {
    let runs: Vec<AgentRun> = finished
        .iter()
        .zip(0u32..)
        .filter_map(|(f, slot)| f.outcome.clone().map(|outcome| AgentRun { slot, outcome }))
        .collect();
    let complete = !finished.iter().any(|f| {
        matches!(
            f.exit,
            barrage_agent::protocol::AgentExit::Completed {
                stopped_early: true
            }
        )
    });
    let ctx = ReportContext::for_run(lt, run_id, complete);
    let set = render_dir_with(&out.join("agents"), out, &ctx);
    print_summary(
        lt,
        &runs,
        planned(&lt.spec),
        set.as_ref().ok().map(|s| &s.report.summary),
    );
    let written: u32 = finished.iter().map(|f| f.uploaded).sum();
    println!("Interval logs: {written} file(s)");
    let set = match set {
        Ok(set) => set,
        Err(e) => {
            eprintln!("error: could not build the report: {e}");
            return Outcome::RunError;
        }
    };
    print_verdict(&set, out);
    info!(out = %out.display(), "Run finished.");
    match set.verdict.result {
        VerdictResult::Passed => Outcome::Passed,
        VerdictResult::Failed => Outcome::ThresholdsFailed,
        VerdictResult::Invalid | VerdictResult::Incomplete => Outcome::RunError,
    }
}

/// One progress line per tick (a line rewritten in place on a terminal): elapsed, the
/// agents' acked rate since the last tick, and their counters.
async fn progress_loop(
    agents: Vec<Arc<AgentMetrics>>,
    origin: Instant,
    duration: Duration,
    every: Duration,
) {
    let tty = std::io::stderr().is_terminal();
    let tick = if tty {
        Duration::from_secs(1)
    } else {
        every.max(Duration::from_secs(1))
    };
    let mut last_acked = 0u64;
    let mut last_at = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let (mut acked, mut errors, mut sent) = (0u64, 0u64, 0u64);
        for c in agents.iter().filter_map(|m| m.counters()) {
            acked += c.acked;
            errors += c.errors;
            sent += c.sent;
        }
        let now = Instant::now();
        let rate =
            (acked - last_acked.min(acked)) as f64 / now.duration_since(last_at).as_secs_f64();
        last_acked = acked;
        last_at = now;
        let elapsed = now.saturating_duration_since(origin).as_secs();
        let line = format!(
            "{} / {}  rate {:>9.0}/s  sent {}  acked {}  errors {}",
            clock(elapsed),
            clock(duration.as_secs()),
            rate,
            thousands(sent),
            thousands(acked),
            thousands(errors),
        );
        if tty {
            eprint!("\r{line}   ");
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("{line}");
        }
    }
}
