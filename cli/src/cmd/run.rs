//! `barrage run FILE [--out DIR]`: one LoadTest on this machine, no AWS.
//!
//! The same engine as the agents, in-process: `agents.count` engines, each with its own
//! producer and its share of the rate, writing interval logs into the run's folder exactly
//! as agents write them to S3. Progress while it runs; a summary at the end. With
//! `spec.report.window`, each closed window's report set goes to `windows/NNNNN/` as the run
//! continues (the cloud layout, below the run's folder).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use barrage_agent::consume::{self, Setup};
use barrage_agent::engine::{Control, IntervalRecord, Outcome as EngineOutcome};
use barrage_agent::kafka::consumer::SeqTracker;
use barrage_agent::kafka::producer::Clock;
use barrage_agent::protocol;
use barrage_agent::recorder::{CounterSnapshot, Histograms, Recorder};
use barrage_crds::hlog::{self, merge_into};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::schedule::Share;
use barrage_crds::spec::{TopicCleanup, WorkloadKind};
use barrage_crds::status::VerdictResult;
use barrage_kafka::admin::{Admin, TopicCreate, TopicOutcome};
use barrage_kafka::config::base_config;
use barrage_store::Blobs as _;
use barrage_store::dir::DirBlobs;
use clap::Args;
use hdrhistogram::Histogram;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::Outcome;
use crate::format::{clock, micros, rate_lines, thousands};
use barrage_operator::report::ReportContext;
use barrage_operator::report::fetch::{BlobIo, write_due_windows};
use barrage_operator::report::json::SummaryJson;
use barrage_operator::report::merge::Stats;
use barrage_operator::report::render::render_dir_with;
use barrage_operator::report::window::WindowClock;

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

fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<barrage_crds::duration::HumanDuration>()
        .map(|d| d.as_std())
        .map_err(|e| e.to_string())
}

/// Delay between preparing the engines and their common start, so all begin together.
const START_LEAD: Duration = Duration::from_millis(500);

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
    Engine(#[from] barrage_agent::engine::EngineError),
    #[error(transparent)]
    Job(#[from] barrage_agent::job::JobError),
    #[error(transparent)]
    Credentials(#[from] barrage_kafka::credentials::CredentialsError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    /// An in-process agent's engine task failed (panicked or was cancelled).
    #[error("an engine task failed: {0}")]
    EngineTask(#[source] tokio::task::JoinError),
}

/// Everything one in-process agent produced.
struct AgentRun {
    slot: u32,
    outcome: EngineOutcome,
    tracker: Option<SeqTracker>,
}

async fn run_load_test(lt: &LoadTest, args: &RunArgs) -> Result<Outcome, RunError> {
    let spec = &lt.spec;
    // SASL credentials from the referenced secret (and the MSK IAM token refresher).
    let sasl = barrage_kafka::credentials::prepare_security(&spec.kafka).await?;
    let run_id = new_run_id();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("barrage-reports").join(lt.name()).join(&run_id));
    std::fs::create_dir_all(&out).map_err(|source| RunError::Write {
        path: out.display().to_string(),
        source,
    })?;

    // Reachability and topic, with a bounded wait.
    let admin = Admin::new(&base_config(&spec.kafka, sasl.as_ref()))?;
    let create = spec.topic.create.as_ref().map(TopicCreate::from_spec);
    let topic_outcome = admin
        .ensure_topic(&spec.topic.name, create.as_ref(), args.connect_timeout)
        .await?;

    let agents = spec.agents.count.max(1);
    let control = Control::new();
    let consuming = spec.workload.kind == WorkloadKind::Consume;
    // Consume is not paced by the load profile: nothing is planned.
    let total_planned = if consuming {
        0
    } else {
        barrage_crds::schedule::profile(&spec.load).total_sends()
    };
    let duration = spec.load.total_duration();

    // Prepare every agent (connect, warm up, position consumers), then start them together.
    let mut prepared = Vec::new();
    for slot in 0..agents {
        let recorder = Arc::new(Recorder::new());
        let workload = consume::prepare(
            Setup {
                spec,
                run_id: &run_id,
                share: Share::new(slot, agents),
                agent_id: format!("{run_id}-{slot}"),
                group_id: format!("barrage-{}-{run_id}", lt.name()),
                sasl: sasl.as_ref(),
                connect_timeout: args.connect_timeout,
                flush_timeout: None,
            },
            recorder.clone(),
        )
        .await?;
        prepared.push((slot, recorder, workload));
    }
    let origin = Instant::now() + START_LEAD;
    let start_at = chrono::Utc::now() + chrono::Duration::from_std(START_LEAD).unwrap_or_default();
    let interval = spec.report.interval.as_std();
    let clock_ = Clock::new(origin);
    if consuming {
        println!(
            "Consuming {} with {} agent(s) in one group for {}, run {run_id}",
            spec.topic.name,
            agents,
            clock(duration.as_secs()),
        );
    } else {
        println!(
            "Running {} ({} agent(s), {} records planned over {}), run {run_id}",
            lt.name(),
            agents,
            thousands(total_planned),
            clock(duration.as_secs()),
        );
    }

    let (tx, mut rx) = mpsc::unbounded_channel::<(u32, IntervalRecord)>();
    let mut recorders = Vec::new();
    let mut tasks = Vec::new();
    for (slot, recorder, workload) in prepared {
        recorders.push(recorder);
        let (agent_tx, mut agent_rx) = mpsc::channel(barrage_agent::engine::INTERVAL_QUEUE);
        let forward = tx.clone();
        tokio::spawn(async move {
            while let Some(r) = agent_rx.recv().await {
                if forward.send((slot, r)).is_err() {
                    break;
                }
            }
        });
        let control = control.clone();
        tasks.push(tokio::spawn(async move {
            workload
                .run(clock_, control, agent_tx)
                .await
                .map(|f| AgentRun {
                    slot,
                    outcome: f.outcome,
                    tracker: f.tracker,
                })
        }));
    }
    drop(tx);

    // Interval logs land in the run's folder as they close; `uploaded` is the last interval
    // every agent has written (for the window reports).
    let writer_out = out.clone();
    let uploaded = Arc::new(AtomicU64::new(NOTHING_UPLOADED));
    let writer_uploaded = uploaded.clone();
    let writer = tokio::spawn(async move {
        let mut totals = Histograms::default();
        let mut written = 0usize;
        let mut failure = None;
        let mut last: std::collections::BTreeMap<u32, CounterSnapshot> = Default::default();
        let mut through: std::collections::BTreeMap<u32, u32> = Default::default();
        while let Some((slot, record)) = rx.recv().await {
            if let Err(e) = merge_histograms(&mut totals, &record.histograms) {
                failure.get_or_insert(e);
            }
            let prev = last.entry(slot).or_default();
            let counters = protocol::delta(prev, &record);
            *prev = record.counters.clone();
            match write_interval(&writer_out, slot, start_at, interval, &record, counters) {
                Ok(()) => {
                    written += 1;
                    let t = through.entry(slot).or_insert(record.index);
                    *t = (*t).max(record.index);
                    if through.len() == agents as usize
                        && let Some(min) = through.values().min()
                    {
                        writer_uploaded.store(u64::from(*min), Ordering::Release);
                    }
                }
                Err(e) => {
                    failure.get_or_insert(e.to_string());
                }
            }
        }
        (totals, written, failure)
    });

    // Progress until every engine is done; Ctrl-C and maxDuration stop them early.
    let max_duration = spec.load.effective_max_duration();
    let stopper = {
        let control = control.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = barrage_agent::cli::shutdown_signal() => {
                    warn!("Interrupted (SIGINT or SIGTERM): stopping, flushing and writing what was measured.");
                }
                _ = tokio::time::sleep_until((origin + max_duration).into()) => {
                    warn!(max_duration = ?max_duration, "maxDuration reached: stopping.");
                }
            }
            control.stop();
        })
    };
    let progress = tokio::spawn(progress_loop(
        recorders.clone(),
        origin,
        duration,
        args.progress_every,
    ));
    // Soaks: window reports while the run continues, then a last pass once every interval
    // log is written.
    let (stop_windows, stop_rx) = oneshot::channel();
    let windows = Windows::new(lt, &run_id, &out, origin, uploaded)
        .map(|w| tokio::spawn(window_loop(w, stop_rx)));
    let mut runs = Vec::new();
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok(r)) => runs.push(r),
            Ok(Err(e)) => {
                first_error.get_or_insert(RunError::Engine(e));
            }
            Err(e) => {
                first_error.get_or_insert(RunError::EngineTask(e));
            }
        }
    }
    stopper.abort();
    progress.abort();
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let (totals, written, failure) = writer.await.unwrap_or_else(|_| {
        (
            Histograms::default(),
            0,
            Some("the interval writer failed".into()),
        )
    });
    let _ = stop_windows.send(());
    if let Some(task) = windows
        && let Ok(mut w) = task.await
        && first_error.is_none()
    {
        w.write_due().await;
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let created = topic_outcome == TopicOutcome::Created;
    if created
        && spec.topic.cleanup == TopicCleanup::DeleteIfCreated
        && let Err(e) = admin
            .delete_topic(&spec.topic.name, args.connect_timeout)
            .await
    {
        warn!(error = %e, "Could not delete the topic this run created.");
    }
    runs.sort_by_key(|r| r.slot);
    // The same report code as the operator's, from the interval logs just written; the
    // summary's rates are the report's.
    let complete = !runs.iter().any(|r| r.outcome.stopped_early);
    let ctx = ReportContext::for_run(lt, &run_id, complete);
    let set = failure
        .is_none()
        .then(|| render_dir_with(&out.join("agents"), &out, &ctx));
    let report_summary = match &set {
        Some(Ok(set)) => Some(&set.report.summary),
        _ => None,
    };
    print_summary(lt, &runs, &totals, total_planned, report_summary);
    println!("Interval logs: {written} file(s)");
    let set = match set {
        Some(Ok(set)) => set,
        Some(Err(e)) => {
            eprintln!("error: could not build the report: {e}");
            return Ok(Outcome::RunError);
        }
        None => {
            eprintln!("warning: {}", failure.unwrap_or_default());
            return Ok(Outcome::RunError);
        }
    };
    println!();
    for t in &set.report.thresholds {
        let observed = t
            .run
            .as_ref()
            .map(|c| c.observed_display.clone())
            .unwrap_or_else(|| "n/a".into());
        println!(
            "  {} {:<40} observed {}",
            if t.passed { "PASS" } else { "FAIL" },
            t.threshold,
            observed
        );
    }
    println!("Verdict: {:?}", set.verdict.result);
    for reason in &set.verdict.reasons {
        println!("  {reason}");
    }
    println!(
        "Report: {} (report.json, report.html, merged.hlog, junit.xml)",
        out.display()
    );
    info!(out = %out.display(), "Run finished.");
    Ok(match set.verdict.result {
        VerdictResult::Passed => Outcome::Passed,
        VerdictResult::Failed => Outcome::ThresholdsFailed,
        VerdictResult::Invalid | VerdictResult::Incomplete => Outcome::RunError,
    })
}

/// `uploaded` before every agent has written an interval.
const NOTHING_UPLOADED: u64 = u64::MAX;

/// The run's folder as the report code's blob store: this run's keys (`runs/{lt}/{run}/…`)
/// are paths below the folder (`agents/…`, `windows/…`), as in S3 below the run's prefix.
struct RunFolder {
    blobs: DirBlobs,
    prefix: String,
}

impl RunFolder {
    fn rel<'k>(&self, key: &'k str) -> Result<&'k str, String> {
        key.strip_prefix(self.prefix.as_str())
            .ok_or_else(|| format!("{key} is not a key of this run ({})", self.prefix))
    }
}

#[async_trait::async_trait]
impl BlobIo for RunFolder {
    async fn list(&self, prefix: &str) -> Result<Vec<String>, String> {
        let keys = self
            .blobs
            .list(self.rel(prefix)?)
            .await
            .map_err(|e| e.to_string())?;
        Ok(keys
            .into_iter()
            .map(|k| format!("{}{k}", self.prefix))
            .collect())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.blobs
            .get(self.rel(key)?)
            .await
            .map(|b| b.map(|b| b.to_vec()))
            .map_err(|e| e.to_string())
    }

    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), String> {
        self.blobs
            .put(self.rel(key)?, body.into(), content_type)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Rolling window reports of one run: everything needed to write the next due window,
/// remembering only its index.
struct Windows {
    io: RunFolder,
    ctx: ReportContext,
    interval_ms: u64,
    k: u32,
    origin: Instant,
    uploaded: Arc<AtomicU64>,
    next: u32,
}

impl Windows {
    /// `None` when the LoadTest has no `spec.report.window`.
    fn new(
        lt: &LoadTest,
        run_id: &str,
        out: &Path,
        origin: Instant,
        uploaded: Arc<AtomicU64>,
    ) -> Option<Windows> {
        let ctx = ReportContext::for_run(lt, run_id, false);
        let k = ctx.window_intervals?;
        let interval_ms = u64::try_from(lt.spec.report.interval.as_std().as_millis()).ok()?;
        Some(Windows {
            io: RunFolder {
                blobs: DirBlobs::new(out),
                prefix: barrage_crds::keys::run_prefix(lt.name(), run_id),
            },
            ctx,
            interval_ms,
            k,
            origin,
            uploaded,
            next: 0,
        })
    }

    /// Writes every window whose intervals every agent has written (no grace: in-process
    /// agents do not go missing), and prints one line for each.
    async fn write_due(&mut self) {
        let through = self.uploaded.load(Ordering::Acquire);
        let due = WindowClock {
            elapsed_ms: u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX),
            interval_ms: self.interval_ms,
            k: self.k,
            grace_ms: u64::MAX,
            uploaded_through: (through != NOTHING_UPLOADED)
                .then(|| u32::try_from(through).ok())
                .flatten(),
            last_interval: self.ctx.last_interval,
        };
        let (written, error) =
            write_due_windows(&self.io, &self.ctx, &due, &mut self.next, usize::MAX).await;
        let secs = self.interval_ms.saturating_mul(u64::from(self.k)) / 1_000;
        for (w, set) in written {
            let from = u64::from(w).saturating_mul(secs);
            println!(
                "Window {w:05} ({}-{}): {:?}, records acked {}, produce p99 {}",
                clock(from),
                clock(from.saturating_add(secs)),
                set.verdict.result,
                thousands(set.summary.records_acked),
                micros(set.summary.produce_p99_us),
            );
        }
        if let Some(e) = error {
            eprintln!(
                "warning: could not write the report of window {:05}: {e}",
                self.next
            );
        }
    }
}

/// Looks for due windows every second until told to stop; gives the state back.
async fn window_loop(mut windows: Windows, mut stop: oneshot::Receiver<()>) -> Windows {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = &mut stop => return windows,
        }
        windows.write_due().await;
    }
}

fn merge_histograms(into: &mut Histograms, from: &Histograms) -> Result<(), String> {
    for (dst, src) in [
        (&mut into.produce, &from.produce),
        (&mut into.service, &from.service),
        (&mut into.lag, &from.lag),
        (&mut into.e2e, &from.e2e),
    ] {
        merge_into(dst, src).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn write_interval(
    out: &Path,
    slot: u32,
    start_at: chrono::DateTime<chrono::Utc>,
    interval: Duration,
    record: &IntervalRecord,
    counters: barrage_crds::interval::IntervalCounters,
) -> Result<(), RunError> {
    let key = barrage_crds::keys::interval_key("local", "run", slot, 0, record.index);
    // The same layout as in S3, below the run's folder: agents/SLOT-INC/INDEX.hlog.
    let rel = key
        .split_once("/agents/")
        .map(|(_, rest)| format!("agents/{rest}"))
        .unwrap_or(key.clone());
    let path = out.join(rel);
    let io = |source| RunError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let blob = protocol::interval_blob(slot, 0, start_at, interval, record, counters);
    let text =
        barrage_crds::interval::encode_interval_blob(&blob).map_err(|e| RunError::Write {
            path: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
    std::fs::write(&path, text).map_err(io)
}

async fn progress_loop(
    recorders: Vec<Arc<Recorder>>,
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
        for r in &recorders {
            let c = r.counters().snapshot();
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

fn print_summary(
    lt: &LoadTest,
    runs: &[AgentRun],
    totals: &Histograms,
    planned: u64,
    report: Option<&SummaryJson>,
) {
    let sum = |f: &dyn Fn(&EngineOutcome) -> u64| runs.iter().map(|r| f(&r.outcome)).sum::<u64>();
    let elapsed = runs
        .iter()
        .map(|r| r.outcome.elapsed)
        .max()
        .unwrap_or_default();
    if lt.spec.workload.kind == WorkloadKind::Consume {
        print_consume_summary(lt, runs, totals, elapsed, report);
        return;
    }
    println!();
    println!("Summary of {}", lt.name());
    println!("  records planned   {}", thousands(planned));
    println!(
        "  records sent      {}",
        thousands(sum(&|o| o.counters.sent))
    );
    println!(
        "  records acked     {}",
        thousands(sum(&|o| o.counters.acked))
    );
    println!(
        "  records failed    {}",
        thousands(sum(&|o| o.counters.errors))
    );
    println!(
        "  records dropped   {}",
        thousands(sum(&|o| o.counters.dropped))
    );
    println!(
        "  sent late (>1ms)  {}",
        thousands(sum(&|o| o.counters.late))
    );
    print_rates(report);
    println!(
        "  elapsed           {:.1}s (including flush)",
        elapsed.as_secs_f64()
    );
    print_latencies(totals, report);
    for r in runs {
        let c = &r.outcome.counters;
        if !c.errors_by_kind.is_empty() {
            println!("  agent {} errors by kind: {:?}", r.slot, c.errors_by_kind);
        }
        if r.tracker.is_some() {
            println!(
                "  agent {} round trip: consumed {} lost {} duplicated {} reordered {}",
                r.slot,
                thousands(c.consumed),
                thousands(c.lost),
                thousands(c.duplicated),
                thousands(c.reordered)
            );
        }
    }
    print_per_partition(runs);
}

/// The report's rates, or why there are none.
fn print_rates(report: Option<&SummaryJson>) {
    match report {
        Some(s) => rate_lines(s).iter().for_each(|l| println!("{l}")),
        None => println!("  rates             none: the report could not be built"),
    }
}

/// Consume: what the group read, how fast, and how old records were when they arrived.
fn print_consume_summary(
    lt: &LoadTest,
    runs: &[AgentRun],
    totals: &Histograms,
    elapsed: Duration,
    report: Option<&SummaryJson>,
) {
    let sum = |f: &dyn Fn(&EngineOutcome) -> u64| runs.iter().map(|r| f(&r.outcome)).sum::<u64>();
    println!();
    println!("Summary of {} (Consume)", lt.name());
    println!(
        "  records consumed  {}",
        thousands(sum(&|o| o.counters.consumed))
    );
    println!(
        "  bytes consumed    {}",
        thousands(sum(&|o| o.counters.bytes))
    );
    println!(
        "  consume errors    {}",
        thousands(sum(&|o| o.counters.errors))
    );
    print_rates(report);
    println!("  elapsed           {:.1}s", elapsed.as_secs_f64());
    let e2e = "end-to-end latency (record timestamp to receipt)";
    print_latency(e2e, latency_of(&totals.e2e, report, hlog::TAG_E2E).as_ref());
    print_warmup(report, &[(e2e, hlog::TAG_E2E)]);
    for r in runs {
        let c = &r.outcome.counters;
        println!("  agent {} consumed {}", r.slot, thousands(c.consumed));
        if !c.errors_by_kind.is_empty() {
            println!("  agent {} errors by kind: {:?}", r.slot, c.errors_by_kind);
        }
    }
    print_per_partition(runs);
}

/// Records per partition, summed over the agents (the line is left out when none were counted).
fn print_per_partition(runs: &[AgentRun]) {
    let mut per_partition: Vec<u64> = Vec::new();
    for r in runs {
        for (p, n) in r.outcome.per_partition.iter().enumerate() {
            if per_partition.len() <= p {
                per_partition.resize(p + 1, 0);
            }
            per_partition[p] += n;
        }
    }
    if !per_partition.is_empty() {
        let parts: Vec<String> = per_partition
            .iter()
            .enumerate()
            .map(|(p, n)| format!("{p}:{}", thousands(*n)))
            .collect();
        println!("  records per partition  {}", parts.join("  "));
    }
}

/// The latency lines: the report's figures (after the warm-up, the warm-up's apart), or the
/// agents' own histograms when there is no report.
fn print_latencies(totals: &Histograms, report: Option<&SummaryJson>) {
    let lines = [
        (
            "produce latency (from intended send)",
            &totals.produce,
            hlog::TAG_PRODUCE,
        ),
        (
            "service time (from actual send)",
            &totals.service,
            hlog::TAG_SERVICE,
        ),
        ("schedule lag", &totals.lag, hlog::TAG_LAG),
        ("end-to-end latency", &totals.e2e, hlog::TAG_E2E),
    ];
    for (label, h, tag) in lines {
        if tag != hlog::TAG_E2E || !totals.e2e.is_empty() {
            print_latency(label, latency_of(h, report, tag).as_ref());
        }
    }
    print_warmup(report, &lines.map(|(label, _, tag)| (label, tag)));
}

/// The warm-up's line and its latency lines (`(label, tag)`), when the report has one.
fn print_warmup(report: Option<&SummaryJson>, lines: &[(&str, &str)]) {
    let Some(w) = report.and_then(|s| s.warmup.as_ref()) else {
        return;
    };
    println!(
        "  warm-up           {:.1} s (intervals {}–{}): counted in the records above, its latency measured apart",
        w.secs, w.first_interval, w.last_interval
    );
    for (label, tag) in lines {
        if let Some(st) = w.latency.get(*tag) {
            print_latency(&format!("warm-up {label}"), Some(st));
        }
    }
}

/// The report's statistics of `tag`, or those of `h` when there is no report.
fn latency_of(h: &Histogram<u64>, report: Option<&SummaryJson>, tag: &str) -> Option<Stats> {
    match report {
        Some(s) => s.latency.get(tag).copied(),
        None => Stats::of(h),
    }
}

fn print_latency(label: &str, stats: Option<&Stats>) {
    let Some(st) = stats else {
        println!("  {label}: no samples");
        return;
    };
    println!(
        "  {label}: p50 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
        micros(st.p50),
        micros(st.p99),
        micros(st.p999),
        micros(st.max),
        thousands(st.count)
    );
}
