//! Scale rehearsal: many LoadTests × many agents against the AWS emulator (moto: DynamoDB and
//! its stream), with a launcher fake at the `Launcher` port that starts no process.
//!
//! The real controller (lease, Streams watch, work queue, reconcile core, status writes) runs
//! on its own tokio runtime, whose threads are named so their CPU time can be read from
//! `/proc`. The fake records every RunTask (which LoadTest, which slots, when), lists each
//! launched task as running, and — standing in for the agents — writes each agent's `Ready`
//! status item from the bench's runtime, so runs reach `Running` exactly as they do with real
//! agents (the controller sees the items through the stream).
//!
//! It asserts correctness only — every LoadTest reaches `Running`, every slot is launched
//! exactly once — and prints the figures: record write → first RunTask (per LoadTest), first
//! write → all `Running`, the AWS calls the controller counted, the controller's CPU seconds
//! and the process's peak RSS. Size with `BARRAGE_SCALE_LOADTESTS` (40) and
//! `BARRAGE_SCALE_AGENTS` (10). The default stays at 40 because the emulator's
//! TransactWriteItems (every fenced status write) copies the whole table and its stream log
//! per call, so its cost grows with every write the rehearsal makes (`bench/moto-transact-cost.py`:
//! 10 ms on an empty table, 680 ms after 3 600 writes); at 100 × 10 the emulator, not the
//! controller, decides whether the run finishes in time.
//!
//! ```text
//! eval "$(scripts/services.sh env)"
//! cargo test --release -p barrage-operator --test scale_rehearsal -- --nocapture
//! ```
//!
//! Needs `AWS_ENDPOINT_URL`; without it the test prints "skipped", or fails when
//! `BARRAGE_REQUIRE_SERVICES=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use barrage_crds::agent_status::{AgentPhase, AgentStatus};
use barrage_crds::duration::HumanDuration;
use barrage_crds::env::{BlobsUrl, StoreUrl};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::spec::{ConstantStep, LoadStep};
use barrage_crds::status::LoadTestStatus;
use barrage_operator::launch::{
    AgentTemplate, LaunchError, LaunchResult, Launcher, ObservedTask, SlotLaunch, TaskState,
};
use barrage_operator::metrics::Metrics;
use barrage_operator::reconcile::Launch;
use barrage_operator::runtime::Controller;
use barrage_operator::runtime::config::{self, ControllerConfig};
use barrage_store::dynamo::DynamoStore;
use barrage_store::memory::MemoryBlobs;
use barrage_store::watch::{WatchOptions, Watchable as _};
use barrage_store::{Applied, Lease, Store, StoredLoadTest};
use chrono::{DateTime, Utc};

/// Threads of the controller's runtime carry this name.
const CONTROLLER_THREADS: &str = "barrage-ctl";

fn endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let msg = "no AWS emulator: AWS_ENDPOINT_URL is not set (run `scripts/services.sh up` and `eval \"$(scripts/services.sh env)\"`)";
            if std::env::var("BARRAGE_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{msg}; BARRAGE_REQUIRE_SERVICES=1 requires the real services");
            }
            println!("skipped: {msg}");
            None
        }
    }
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The controller's store, counting every call it makes by method (each is one DynamoDB
/// request, a paginated listing one per page at least). The Streams watch polls on its own
/// client and is not counted here.
struct CountingStore {
    inner: Arc<DynamoStore>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl CountingStore {
    fn count(&self, method: &'static str) {
        *self.calls.lock().unwrap().entry(method).or_default() += 1;
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn list_load_tests(&self) -> barrage_store::Result<Vec<StoredLoadTest>> {
        self.count("list_load_tests (Query)");
        self.inner.list_load_tests().await
    }
    async fn get_load_test(&self, name: &str) -> barrage_store::Result<Option<StoredLoadTest>> {
        self.count("get_load_test (GetItem)");
        self.inner.get_load_test(name).await
    }
    async fn apply(&self, load_test: &LoadTest) -> barrage_store::Result<Applied> {
        self.count("apply");
        self.inner.apply(load_test).await
    }
    async fn write_status(
        &self,
        name: &str,
        status: &LoadTestStatus,
        expected_version: u64,
        epoch: u64,
    ) -> barrage_store::Result<u64> {
        self.count("write_status (UpdateItem)");
        self.inner
            .write_status(name, status, expected_version, epoch)
            .await
    }
    async fn request_delete(&self, name: &str) -> barrage_store::Result<()> {
        self.count("request_delete");
        self.inner.request_delete(name).await
    }
    async fn remove(
        &self,
        name: &str,
        expected_version: u64,
        epoch: u64,
    ) -> barrage_store::Result<()> {
        self.count("remove");
        self.inner.remove(name, expected_version, epoch).await
    }
    async fn put_agent_status(&self, status: &AgentStatus) -> barrage_store::Result<()> {
        self.count("put_agent_status");
        self.inner.put_agent_status(status).await
    }
    async fn list_agent_status(
        &self,
        load_test: &str,
        run_id: &str,
    ) -> barrage_store::Result<Vec<AgentStatus>> {
        self.count("list_agent_status (Query)");
        self.inner.list_agent_status(load_test, run_id).await
    }
    async fn acquire_lease(
        &self,
        holder: &str,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> barrage_store::Result<Option<Lease>> {
        self.count("acquire_lease (UpdateItem)");
        self.inner.acquire_lease(holder, duration, now).await
    }
    async fn release_lease(&self, lease: &Lease) -> barrage_store::Result<()> {
        self.count("release_lease");
        self.inner.release_lease(lease).await
    }
}

/// One RunTask as the fake saw it.
#[derive(Debug, Clone)]
struct Call {
    load_test: String,
    at: Instant,
    launches: Vec<(u32, u32)>,
}

/// Starts nothing: remembers every launch, lists launched tasks as running, and has the
/// "agents" report `Ready` from the bench's runtime.
struct FakeLauncher {
    agents: Arc<DynamoStore>,
    agents_rt: tokio::runtime::Handle,
    calls: Mutex<Vec<Call>>,
    tasks: Mutex<Vec<ObservedTask>>,
    ready_written: Arc<AtomicU64>,
    ready_failed: Arc<AtomicU64>,
}

#[async_trait]
impl Launcher for FakeLauncher {
    async fn run_agents(
        &self,
        load_test: &str,
        run_id: &str,
        launches: &[Launch],
        _template: &AgentTemplate,
    ) -> Result<Vec<SlotLaunch>, LaunchError> {
        let at = Instant::now();
        self.calls.lock().unwrap().push(Call {
            load_test: load_test.to_string(),
            at,
            launches: launches.iter().map(|l| (l.slot, l.incarnation)).collect(),
        });
        let mut out = Vec::with_capacity(launches.len());
        let mut statuses = Vec::with_capacity(launches.len());
        for l in launches {
            let task_id = format!("fake-{load_test}-{run_id}-{}-{}", l.slot, l.incarnation);
            self.tasks.lock().unwrap().push(ObservedTask {
                task_id: task_id.clone(),
                load_test: load_test.to_string(),
                started_by: run_id.to_string(),
                slot: Some(l.slot),
                incarnation: Some(l.incarnation),
                state: TaskState::Running,
            });
            let mut st =
                AgentStatus::new(load_test, run_id, l.slot, l.incarnation, chrono::Utc::now());
            st.phase = AgentPhase::Ready;
            st.task_id = Some(task_id.clone());
            statuses.push(st);
            out.push(SlotLaunch {
                launch: l.clone(),
                result: LaunchResult::Started { task_id },
            });
        }
        // The agents boot elsewhere: their status writes are not the controller's work.
        let store = self.agents.clone();
        let (ok, failed) = (self.ready_written.clone(), self.ready_failed.clone());
        self.agents_rt.spawn(async move {
            for st in statuses {
                let mut tries = 0;
                loop {
                    match store.put_agent_status(&st).await {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(_) if tries < 5 => {
                            tries += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            }
        });
        Ok(out)
    }

    async fn list_agents(&self, load_test: Option<&str>) -> Result<Vec<ObservedTask>, LaunchError> {
        Ok(self
            .tasks
            .lock()
            .unwrap()
            .iter()
            .filter(|t| load_test.is_none_or(|n| t.load_test == n))
            .cloned()
            .collect())
    }

    async fn stop_agent(&self, task_id: &str, reason: &str) -> Result<(), LaunchError> {
        for t in self.tasks.lock().unwrap().iter_mut() {
            if t.task_id == task_id {
                t.state = TaskState::Exited {
                    ok: true,
                    code: Some(0),
                    reason: Some(reason.to_string()),
                };
            }
        }
        Ok(())
    }
}

fn load_test(name: &str, agents: u32) -> LoadTest {
    let mut lt = LoadTest::example(name, "127.0.0.1:9", "scale");
    lt.spec.agents.count = agents;
    // Long enough that every run is still Running when the rehearsal ends.
    lt.spec.load.steps = vec![LoadStep::Constant(ConstantStep {
        rate: 10.0 * f64::from(agents),
        duration: HumanDuration::from_secs(1_800),
    })];
    lt
}

/// The sample `series` of a Prometheus text scrape (0 when absent).
/// Prints, for each LoadTest the controller does not count as Running, what the store holds:
/// its status (phase, transitions, slots) and its agents' items, so a failure says why.
async fn describe_stuck(store: &DynamoStore, scrape: &str) {
    let stuck = scrape
        .lines()
        .filter(|l| l.starts_with("barrage_loadtest_phase{") && !l.contains("phase=\"Running\""))
        .filter_map(|l| l.split('"').nth(1).map(str::to_string));
    for name in stuck {
        println!("not Running: {name}");
        let record = match store.get_load_test(&name).await {
            Ok(Some(r)) => r,
            other => {
                println!("  record: {other:?}");
                continue;
            }
        };
        let status = record.status.unwrap_or_default();
        println!(
            "  version {} generation {} phase {} run {:?} agents {:?}",
            record.version,
            record.generation,
            status.phase.as_str(),
            status.run_id,
            status.agents
        );
        for t in &status.transitions {
            println!("  transition {t:?}");
        }
        for s in &status.slots {
            println!("  slot {s:?}");
        }
        let Some(run) = status.run_id.as_deref() else {
            continue;
        };
        match store.list_agent_status(&name, run).await {
            Ok(agents) => {
                for a in agents {
                    println!(
                        "  agent slot {} incarnation {} phase {:?} task {:?}",
                        a.slot, a.incarnation, a.phase, a.task_id
                    );
                }
            }
            Err(e) => println!("  agents: {e}"),
        }
    }
}

fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// `(service/operation, calls)` of every `barrage_aws_calls_total` line.
fn aws_calls(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("barrage_aws_calls_total{service=\"") else {
            continue;
        };
        let Some((service, rest)) = rest.split_once("\",operation=\"") else {
            continue;
        };
        let Some((op, n)) = rest.split_once("\"} ") else {
            continue;
        };
        out.insert(format!("{service} {op}"), n.trim().parse().unwrap_or(0));
    }
    out
}

/// CPU seconds (user + system) of this process's threads named `name`, from `/proc`
/// (None off Linux).
fn thread_cpu_seconds(name: &str) -> Option<f64> {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let path = entry.ok()?.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !comm.trim().starts_with(name) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
        let after = stat.rsplit_once(") ")?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        total += utime + stime;
    }
    Some(total as f64 / ticks)
}

/// `VmHWM` / `VmRSS` of this process in MiB (None off Linux).
fn memory_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1_000.0)
}

#[test]
fn many_load_tests_each_get_every_slot_launched_once_and_reach_running() {
    let Some(_endpoint) = endpoint() else {
        return;
    };
    // The controller's log, shown with the test's output when it fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "barrage_operator=info,barrage_store=info",
        ))
        .with_test_writer()
        .try_init();
    let n = setting("BARRAGE_SCALE_LOADTESTS", 40);
    let agents = u32::try_from(setting("BARRAGE_SCALE_AGENTS", 10)).unwrap();
    let limit = Duration::from_secs(setting("BARRAGE_SCALE_TIMEOUT_SECS", 150) as u64);
    // As `barrage controller` runs by default (its workers and stream poll).
    let workers = setting("BARRAGE_SCALE_WORKERS", config::DEFAULT_WORKERS);
    let poll_interval = Duration::from_millis(setting(
        "BARRAGE_SCALE_POLL_MS",
        config::DEFAULT_WATCH_POLL.as_millis() as usize,
    ) as u64);
    let table = format!(
        "barrage-scale-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );

    // The bench's runtime: record writes, the agents' Ready writes, polling.
    let bench = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench")
        .enable_all()
        .build()
        .unwrap();
    // The controller's runtime, on threads of their own.
    let ctl_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(CONTROLLER_THREADS)
        .enable_all()
        .build()
        .unwrap();

    let writer = bench.block_on(async {
        let d = Arc::new(DynamoStore::from_env(table.clone()).await);
        d.create_table()
            .await
            .expect("create the table in the emulator");
        d
    });
    let launcher = Arc::new(FakeLauncher {
        agents: writer.clone(),
        agents_rt: bench.handle().clone(),
        calls: Mutex::new(Vec::new()),
        tasks: Mutex::new(Vec::new()),
        ready_written: Arc::new(AtomicU64::new(0)),
        ready_failed: Arc::new(AtomicU64::new(0)),
    });
    let rss_before = memory_mib("VmRSS:");

    // The controller, as `barrage controller` builds it (default watch options and workers).
    let metrics = Arc::new(Metrics::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let counting_slot: Arc<Mutex<Option<Arc<CountingStore>>>> = Arc::new(Mutex::new(None));
    let controller = {
        let counting_slot = counting_slot.clone();
        let table = table.clone();
        let launcher = launcher.clone();
        let metrics = metrics.clone();
        ctl_rt.spawn(async move {
            let dynamo = Arc::new(DynamoStore::from_env(table.clone()).await);
            let watch = dynamo.watch(WatchOptions {
                poll_interval,
                ..WatchOptions::default()
            });
            let store = Arc::new(CountingStore {
                inner: dynamo,
                calls: Mutex::new(BTreeMap::new()),
            });
            *counting_slot.lock().unwrap() = Some(store.clone());
            let mut cfg = ControllerConfig::local(StoreUrl::DynamoDb { table }, BlobsUrl::Memory);
            cfg.controller_id = "scale-rehearsal".into();
            cfg.workers = workers;
            Controller::new(cfg, store, Arc::new(MemoryBlobs::new()), launcher)
                .with_watch(watch)
                .with_metrics(metrics)
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        })
    };
    let leading_by = Instant::now() + Duration::from_secs(30);
    while !metrics.lease_held() {
        assert!(
            Instant::now() < leading_by,
            "the controller took the lease within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the watch settle on the stream before the first record.
    std::thread::sleep(Duration::from_millis(1_500));
    let cpu_before = thread_cpu_seconds(CONTROLLER_THREADS);
    let calls_before: u64 = aws_calls(&metrics.render()).values().sum();
    let counting = counting_slot
        .lock()
        .unwrap()
        .clone()
        .expect("the controller's store");
    let store_before = counting.calls.lock().unwrap().clone();

    // Write the records, one after the other, as CI (or people) would.
    let names: Vec<String> = (0..n).map(|i| format!("scale-{i:03}")).collect();
    let mut written: BTreeMap<String, Instant> = BTreeMap::new();
    let first_write = Instant::now();
    bench.block_on(async {
        for name in &names {
            let at = Instant::now();
            writer
                .apply(&load_test(name, agents))
                .await
                .expect("apply a LoadTest");
            written.insert(name.clone(), at);
        }
    });
    let writes_took = first_write.elapsed();

    // Wait for every run to be Running (the controller's own phase gauge, no extra AWS call).
    // The bound counts from the last write: on a shared machine moto's writes alone can take
    // a third of it, and that time is not the controller's.
    let deadline = Instant::now() + limit;
    let mut all_running = None;
    while Instant::now() < deadline {
        let running = sample(&metrics.render(), "barrage_loadtests{phase=\"Running\"}");
        if running as usize >= n {
            all_running = Some(first_write.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let cpu_after = thread_cpu_seconds(CONTROLLER_THREADS);
    let scrape = metrics.render();
    let calls = aws_calls(&scrape);
    let store_calls: BTreeMap<&'static str, u64> = counting
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (*k, v - store_before.get(k).copied().unwrap_or(0)))
        .collect();
    let peak = memory_mib("VmHWM:");

    let _ = stop.send(());
    ctl_rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), controller)
            .await
            .expect("the controller stops within 30 s")
            .expect("no panic");
    });
    if all_running.is_none() {
        bench.block_on(describe_stuck(&writer, &scrape));
    }
    bench.block_on(async {
        // Let the last Ready writes land before the table goes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Err(e) = writer.delete_table().await {
            println!("could not delete the table {table}: {e}");
        }
    });

    // Figures.
    let calls_made: Vec<Call> = launcher.calls.lock().unwrap().clone();
    let mut first_call: BTreeMap<&str, Instant> = BTreeMap::new();
    for c in &calls_made {
        first_call
            .entry(c.load_test.as_str())
            .and_modify(|t| *t = (*t).min(c.at))
            .or_insert(c.at);
    }
    let mut to_first: Vec<Duration> = names
        .iter()
        .filter_map(|name| {
            let w = written.get(name)?;
            Some(first_call.get(name.as_str())?.saturating_duration_since(*w))
        })
        .collect();
    to_first.sort();
    let earliest = calls_made
        .iter()
        .map(|c| c.at)
        .min()
        .map(|t| t.saturating_duration_since(first_write));
    let run_task_calls = calls_made.len();
    let total_calls: u64 = calls.values().sum::<u64>().saturating_sub(calls_before);
    let cpu = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => format!("{:.2} s", b - a),
        _ => "n/a".into(),
    };
    let mib = |v: Option<f64>| v.map_or("n/a".into(), |m| format!("{m:.0} MiB"));

    println!();
    println!(
        "scale rehearsal: {n} LoadTests x {agents} agents, moto DynamoDB + Streams, fake launcher, \
         {workers} workers, stream polled every {poll_interval:?}"
    );
    println!("| measure | value |");
    println!("| --- | --: |");
    println!("| records written (serially) in | {} |", ms(writes_took));
    println!(
        "| first write -> first RunTask | {} |",
        earliest.map_or("none".into(), ms)
    );
    println!(
        "| record write -> its first RunTask, p50 / p90 / max | {} / {} / {} |",
        ms(percentile(&to_first, 0.5)),
        ms(percentile(&to_first, 0.9)),
        ms(percentile(&to_first, 1.0))
    );
    println!(
        "| first write -> all {n} Running | {} |",
        all_running.map_or(format!("not within {limit:?} of the last write"), ms)
    );
    println!(
        "| RunTask calls (slow start 1, 2, 4, ...) | {run_task_calls} for {} agents |",
        calls_made.iter().map(|c| c.launches.len()).sum::<usize>()
    );
    println!(
        "| AWS calls counted by the controller's metrics | {total_calls} ({:.1} per LoadTest; by operation since its start:) |",
        total_calls as f64 / n as f64
    );
    for (op, c) in &calls {
        println!("|   {op} | {c} |");
    }
    println!(
        "| store calls the controller made (counted at the port) | {} ({:.1} per LoadTest) |",
        store_calls.values().sum::<u64>(),
        store_calls.values().sum::<u64>() as f64 / n as f64
    );
    for (op, c) in &store_calls {
        println!("|   {op} | {c} |");
    }
    println!(
        "| agent Ready items written by the fake / failed | {} / {} |",
        launcher.ready_written.load(Ordering::Relaxed),
        launcher.ready_failed.load(Ordering::Relaxed)
    );
    println!("| controller CPU (its runtime's threads) | {cpu} |");
    println!(
        "| process RSS before the controller / peak | {} / {} |",
        mib(rss_before),
        mib(peak)
    );
    println!(
        "| reconciles | {} |",
        sample(&scrape, "barrage_reconciles_total")
    );

    // Correctness only: every LoadTest got every slot exactly once, and all reached Running.
    let mut per_lt: BTreeMap<&str, Vec<(u32, u32)>> = BTreeMap::new();
    for c in &calls_made {
        per_lt
            .entry(c.load_test.as_str())
            .or_default()
            .extend(c.launches.iter().copied());
    }
    for name in &names {
        let mut launched = per_lt.remove(name.as_str()).unwrap_or_default();
        launched.sort_unstable();
        let expected: Vec<(u32, u32)> = (0..agents).map(|s| (s, 0)).collect();
        assert_eq!(
            launched, expected,
            "{name}: every slot launched exactly once, first incarnation"
        );
    }
    assert!(
        per_lt.is_empty(),
        "launches for unknown LoadTests: {per_lt:?}"
    );
    assert!(
        all_running.is_some(),
        "all {n} LoadTests reached Running within {limit:?} of the last write (Running: {})",
        sample(&scrape, "barrage_loadtests{phase=\"Running\"}")
    );
}
