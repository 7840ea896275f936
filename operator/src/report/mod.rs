//! # Reports: exact merge of agent histograms, verdicts, and the report set
//!
//! This module owns turning agent interval blobs into `report.json`, `report.html`,
//! `merged.hlog` and `junit.xml`, and the verdict. It is pure (no async, no SDK types) except
//! [`fetch::render_from_blobs`], which only lists, reads and writes blobs around the pure core.
//!
//! # Layout
//! - [`blob`]: the agent's interval blob (a standard `.hlog` with `#[Barrage-Interval: …]` and
//!   `#[Barrage-Counters: …]` comment lines) — [`encode_interval_blob`], [`decode_interval_blob`].
//! - [`merge`]: [`Merger`], HdrHistogram addition per interval, window, agent and run; gaps with
//!   their cause; the same output whatever order blobs arrive in.
//! - [`window`]: soak windows as pure functions over interval indices.
//! - [`verdict`]: thresholds (run and per window) with observed values; `Invalid` when the
//!   generator was the bottleneck; `Incomplete` for partial data.
//! - [`json`]: `report.json`, schema [`json::SCHEMA`] (field reference in the [`json`] module).
//! - [`html`]: `report.html`, one self-contained page with inline SVG charts.
//! - [`junit`]: `junit.xml`, one test case per threshold.
//! - [`hlogout`]: `merged.hlog`, the merged interval histograms, tags kept.
//! - [`render`]: [`render_dir`], the whole set from a folder of `.hlog` files.
//! - [`fetch`]: the thin async shell over the blob store.
//! - [`sample`]: deterministic sample runs for tests, the benchmark and the browser check.
//!
//! It must not talk to AWS or Kafka, and must not depend on `HashMap` iteration order.

use std::path::PathBuf;

use barrage_crds::agent_status::UndeliveredIntervals;
use barrage_crds::hlog::{HistogramConfig, HlogError};
use barrage_crds::keys::ReportFile;
use barrage_crds::loadtest::LoadTest;
use barrage_crds::spec::{LoadTestSpec, Threshold, ValueSpec, WorkloadKind};
use barrage_crds::status::{Summary, Verdict};
use serde::Serialize;

pub mod blob;
pub mod counts;
pub mod drain;
pub mod fetch;
pub mod hlogout;
pub mod html;
pub mod json;
pub mod junit;
pub mod merge;
pub mod render;
pub mod sample;
pub mod verdict;
pub mod window;

pub use blob::{AgentInterval, IntervalCounters, decode_interval_blob, encode_interval_blob};
pub use merge::{MergeOptions, Merged, Merger};
pub use render::render_dir;
pub use verdict::ValidityBounds;

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A histogram or interval log could not be read or written.
    #[error("{what}: {source}")]
    Hlog {
        /// Which blob or histogram.
        what: String,
        /// Why.
        #[source]
        source: HlogError,
    },
    /// An interval blob is malformed.
    #[error("{what}: {message}")]
    Blob {
        /// Which blob.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// Histograms with different bucket layouts cannot be merged exactly.
    #[error(
        "histogram configuration mismatch: {what} has {found}, the run's histograms have {expected}"
    )]
    ConfigMismatch {
        /// Which histogram.
        what: String,
        /// The configuration of the first histogram seen.
        expected: HistogramConfig,
        /// This one's.
        found: HistogramConfig,
    },
    /// Agents used different interval lengths.
    #[error(
        "interval length mismatch: {what} is {found_ms} ms long, the run's intervals are {expected_ms} ms"
    )]
    IntervalMismatch {
        /// Which interval.
        what: String,
        /// The length of the first interval seen.
        expected_ms: u64,
        /// This one's.
        found_ms: u64,
    },
    /// The same agent interval was given twice.
    #[error("interval {index} of agent {slot}-{incarnation} was given twice")]
    Duplicate {
        /// Slot.
        slot: u32,
        /// Incarnation.
        incarnation: u32,
        /// Interval index.
        index: u32,
    },
    /// There is nothing to report.
    #[error("nothing to report: {0}")]
    Empty(String),
    /// Some other inconsistency.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read or written.
    #[error("I/O error on {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The blob store failed.
    #[error("blob store: {operation} {key}: {message}")]
    Store {
        /// list, get or put.
        operation: &'static str,
        /// The key or prefix.
        key: String,
        /// Why.
        message: String,
    },
}

/// The producer and workload settings that decide what was measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Produce, Consume or RoundTrip.
    pub workload: String,
    /// Topic name.
    pub topic: String,
    /// Partitions, when the run created the topic.
    pub partitions: Option<i32>,
    /// `0`, `1` or `all`.
    pub acks: String,
    /// linger.ms as written.
    pub linger: String,
    /// batch.size in bytes.
    pub batch_size: u32,
    /// Compression codec.
    pub compression: String,
    /// Idempotent producer.
    pub idempotence: bool,
    /// librdkafka partitioner.
    pub partitioner: String,
    /// Records in flight per agent.
    pub max_in_flight: u32,
    /// Record value size or shape.
    pub record_size: String,
    /// Key distribution.
    pub keys: String,
    /// Records per transaction.
    pub records_per_transaction: u32,
    /// Real Kafka transactions.
    pub transactional: bool,
    /// Agents asked for.
    pub agents: u32,
    /// Peak target rate, records per second across the fleet.
    pub peak_rate: f64,
    /// Load duration as planned.
    pub duration: String,
    /// Report interval.
    pub interval: String,
    /// Soak window, if any.
    pub window: Option<String>,
    /// Warm-up (`spec.load.warmup`), if any.
    pub warmup: Option<String>,
    /// Extra librdkafka producer properties.
    pub producer_properties: std::collections::BTreeMap<String, String>,
    /// Records written before the start for the group to drain (`workload.backlog`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog_records: Option<u64>,
    /// The lag at or below which the backlog counts as drained (`backlog.caughtUp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog_caught_up: Option<u64>,
    /// The agents also produced at the load's rate while the group drained.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub backlog_under_load: bool,
}

impl Settings {
    /// The settings of `spec`.
    pub fn from_spec(spec: &LoadTestSpec) -> Settings {
        let p = &spec.kafka.producer;
        let r = &spec.workload.records;
        let record_size = match &r.value {
            ValueSpec::Size(n) => format!("{n} B"),
            ValueSpec::UniformSize(s) => format!("{}–{} B uniform", s.min, s.max),
            ValueSpec::Avro(_) => "Avro records".to_string(),
            ValueSpec::Json(_) => "JSON template".to_string(),
        };
        let keys = format!("{:?}", r.key.distribution).to_lowercase();
        let keys = if keys == "none" {
            keys
        } else {
            format!("{keys} over {} keys", r.key.cardinality)
        };
        Settings {
            workload: match spec.workload.kind {
                WorkloadKind::Produce => "Produce",
                WorkloadKind::Consume => "Consume",
                WorkloadKind::RoundTrip => "RoundTrip",
            }
            .to_string(),
            topic: spec.topic.name.clone(),
            partitions: spec.topic.create.as_ref().map(|c| c.partitions),
            acks: p.acks.as_str().to_string(),
            linger: p.linger.to_string(),
            batch_size: p.batch_size,
            compression: p.compression.as_str().to_string(),
            idempotence: p.idempotence,
            partitioner: p.partitioner.as_str().to_string(),
            max_in_flight: p.max_in_flight,
            record_size,
            keys,
            records_per_transaction: r.records_per_transaction,
            transactional: r.transactional,
            agents: spec.agents.count,
            peak_rate: merge::round3(spec.load.peak_rate()),
            duration: barrage_crds::duration::HumanDuration::from_millis(
                u64::try_from(spec.load.total_duration().as_millis()).unwrap_or(u64::MAX),
            )
            .to_string(),
            interval: spec.report.interval.to_string(),
            window: spec.report.window.as_ref().map(ToString::to_string),
            warmup: spec.load.warmup.as_ref().map(ToString::to_string),
            producer_properties: p.properties.clone(),
            backlog_records: spec
                .workload
                .backlog
                .as_ref()
                .and_then(|b| b.record_count(&r.value)),
            backlog_caught_up: spec.workload.backlog.as_ref().map(|b| b.caught_up),
            backlog_under_load: spec.workload.backlog.as_ref().is_some_and(|b| b.under_load),
        }
    }
}

/// What a report knows beyond the blobs: thresholds, settings, the target, the run's shape.
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    /// The LoadTest's name.
    pub load_test: Option<String>,
    /// The run id.
    pub run_id: Option<String>,
    /// Thresholds to evaluate.
    pub thresholds: Vec<Threshold>,
    /// Settings that decide what was measured.
    pub settings: Option<Settings>,
    /// Records the load profile asked for over the whole run (fleet-wide).
    pub target_records: Option<u64>,
    /// Of `target_records`, those the load asked for during the warm-up (0 without one):
    /// thresholds judge the rate after it against the rest.
    pub warmup_target_records: u64,
    /// How long the load profile runs, milliseconds (`spec.load`'s duration): the rates of
    /// `report.json` are per second of it (of its part inside the window, for a window).
    pub load_ms: Option<u64>,
    /// Intervals per soak window.
    pub window_intervals: Option<u32>,
    /// Agents asked for.
    pub expected_agents: Option<u32>,
    /// First interval index the report covers (a window's first; default 0).
    pub first_interval: Option<u32>,
    /// Last interval index the run should have (inclusive).
    pub last_interval: Option<u32>,
    /// Intervals `0..warmup_intervals` are the warm-up (`spec.load.warmup`): counted, their
    /// latency shown apart and left out of the summary's, the thresholds and the lag check.
    pub warmup_intervals: u32,
    /// Whether the run finished (false for reports of a run in progress or cancelled).
    pub complete: bool,
    /// Why the run was cut short, when it was (e.g. superseded by a changed spec): the first
    /// reason of the partial report's verdict.
    pub cut_short: Option<String>,
    /// Bounds of the generator-saturation checks.
    pub bounds: ValidityBounds,
    /// Every (slot, incarnation) that may have uploaded blobs, when known (the controller knows
    /// them from `status.slots`). With it, a window report lists only those agents' keys of
    /// its own intervals instead of the run's whole `agents/` prefix, which grows with the run.
    pub agent_dirs: Option<Vec<(u32, u32)>>,
    /// Intervals agents could not deliver at all, by (slot, incarnation), from their status
    /// records: the report names them and their records, and is `Incomplete`.
    pub undelivered: Vec<(u32, u32, UndeliveredIntervals)>,
    /// The run's paused spans inside its load, `[from, until)` milliseconds from the start
    /// (`status.fleet.pausedSpans`): left out of `target_records` and `load_ms`, and shown.
    pub paused_ms: Vec<(u64, u64)>,
}

/// The paused spans of `lt`'s run clipped to its load (`total_ns` long), in nanoseconds from
/// its start, merged where they overlap.
fn paused_in_load(lt: &LoadTest, total_ns: u64) -> Vec<(u64, u64)> {
    let Some((start_at, fleet)) = lt
        .status
        .as_ref()
        .and_then(|st| Some((st.start_at?, st.fleet.as_ref()?)))
    else {
        return Vec::new();
    };
    let mut spans: Vec<(u64, u64)> = fleet
        .paused_offsets_ns(start_at)
        .into_iter()
        .map(|(from, until)| (from.min(total_ns), until.min(total_ns)))
        .filter(|(from, until)| from < until)
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
    for (from, until) in spans {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(until),
            _ => merged.push((from, until)),
        }
    }
    merged
}

/// The parts of `spans` before `until_ns`.
fn clip_spans(spans: &[(u64, u64)], until_ns: u64) -> Vec<(u64, u64)> {
    spans
        .iter()
        .map(|&(from, until)| (from.min(until_ns), until.min(until_ns)))
        .filter(|(from, until)| from < until)
        .collect()
}

/// Records the load profile schedules inside `spans` (what a pause did not ask for).
fn records_in(load: &barrage_crds::spec::LoadSpec, spans: &[(u64, u64)]) -> u64 {
    let profile = barrage_crds::schedule::profile(load);
    spans
        .iter()
        .map(|&(from, until)| profile.sends_before(until) - profile.sends_before(from))
        .sum()
}

impl ReportContext {
    /// The backlog's drain, when the run had one.
    pub fn drain(&self, merged: &Merged) -> Option<drain::Drain> {
        let settings = self.settings.as_ref()?;
        let backlog = settings.backlog_records?;
        let caught_up = settings.backlog_caught_up.unwrap_or(0);
        Some(drain::drain(merged, backlog, caught_up))
    }

    /// The figures of the whole run thresholds judge (`drain.seconds`, `consume.rate`).
    pub fn run_figures(&self, merged: &Merged) -> drain::RunFigures {
        match self.drain(merged) {
            Some(d) => drain::RunFigures {
                drain_seconds: d.seconds,
                consume_rate: d.rate,
            },
            None => drain::RunFigures {
                drain_seconds: None,
                consume_rate: self.load_ms.filter(|ms| *ms > 0).map(|ms| {
                    merge::round3(merged.total.counters.consumed as f64 * 1000.0 / ms as f64)
                }),
            },
        }
    }

    /// For rendering files with nothing else known: no thresholds, no target, complete.
    pub fn offline() -> ReportContext {
        ReportContext {
            complete: true,
            ..ReportContext::default()
        }
    }

    /// For a run of `lt`: its thresholds, settings, target, agents and windows.
    pub fn for_run(lt: &LoadTest, run_id: &str, complete: bool) -> ReportContext {
        let spec = &lt.spec;
        let interval_ms = spec.report.interval.as_std().as_millis();
        let total_ms = spec.load.total_duration().as_millis();
        let last_interval = window::last_interval(interval_ms, total_ms);
        let window_intervals = spec.report.window.as_ref().and_then(|w| {
            window::intervals_per_window(
                u64::try_from(interval_ms).unwrap_or(u64::MAX),
                u64::try_from(w.as_std().as_millis()).unwrap_or(u64::MAX),
            )
        });
        let total_ns = u64::try_from(spec.load.total_duration().as_nanos()).unwrap_or(u64::MAX);
        let paused = paused_in_load(lt, total_ns);
        let paused_total_ms: u64 = paused.iter().map(|(f, u)| (u - f) / 1_000_000).sum();
        let target_records = (spec.workload.kind != WorkloadKind::Consume).then(|| {
            spec.load
                .expected_records()
                .saturating_sub(records_in(&spec.load, &paused))
        });
        let warmup_intervals = spec.load.warmup_intervals(spec.report.interval);
        let warmup_ns = u64::from(warmup_intervals)
            .saturating_mul(spec.report.interval.as_nanos_u64())
            .min(total_ns);
        let warmup_target_records = records_in(&spec.load, &[(0, warmup_ns)])
            .saturating_sub(records_in(&spec.load, &clip_spans(&paused, warmup_ns)));
        ReportContext {
            load_test: Some(lt.name().to_string()),
            run_id: Some(run_id.to_string()),
            thresholds: spec.thresholds.clone(),
            settings: Some(Settings::from_spec(spec)),
            target_records,
            warmup_target_records,
            load_ms: u64::try_from(total_ms)
                .ok()
                .map(|ms| ms.saturating_sub(paused_total_ms)),
            window_intervals,
            expected_agents: Some(spec.agents.count),
            first_interval: None,
            last_interval,
            warmup_intervals,
            complete,
            cut_short: lt
                .status
                .as_ref()
                .filter(|st| st.superseded && !complete)
                .map(|_| {
                    format!(
                        "superseded: generation {} of the spec replaced this run",
                        lt.metadata.generation.unwrap_or(0)
                    )
                }),
            bounds: ValidityBounds::default(),
            agent_dirs: None,
            undelivered: Vec::new(),
            paused_ms: paused
                .iter()
                .map(|(from, until)| (from / 1_000_000, until / 1_000_000))
                .collect(),
        }
    }

    /// The merge options this context implies.
    pub fn merge_options(&self) -> MergeOptions {
        MergeOptions {
            encode_intervals: true,
            window_intervals: self.window_intervals,
            expected_agents: self.expected_agents,
            first_interval: self.first_interval,
            last_interval: self.last_interval,
            warmup_intervals: self.warmup_intervals,
        }
    }
}

/// The four report files and what they say.
#[derive(Debug, Clone)]
pub struct ReportSet {
    /// The report as data (what `report.json` holds).
    pub report: json::Report,
    /// `report.json`.
    pub json: String,
    /// `report.html`.
    pub html: String,
    /// `merged.hlog`.
    pub hlog: String,
    /// `junit.xml`.
    pub junit: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The summary for the LoadTest's status.
    pub summary: Summary,
}

impl ReportSet {
    /// The files by name (`report.json`, `report.html`, `merged.hlog`, `junit.xml`), with
    /// their content types.
    pub fn files(&self) -> [(&'static str, &'static str, &str); 4] {
        ReportFile::ALL.map(|f| (f.file_name(), f.content_type(), self.body(f)))
    }

    /// The text of one file.
    pub fn body(&self, file: ReportFile) -> &str {
        match file {
            ReportFile::Json => &self.json,
            ReportFile::Html => &self.html,
            ReportFile::MergedHlog => &self.hlog,
            ReportFile::Junit => &self.junit,
        }
    }
}

/// Builds the whole report set from a merge: verdict, JSON, HTML, merged log, JUnit.
pub fn build_report(merged: &Merged, ctx: &ReportContext) -> Result<ReportSet, ReportError> {
    let scheduled = merged.total.counters.scheduled;
    let threshold_target = ctx.target_records.or((scheduled > 0).then_some(scheduled));
    let generator_target = if scheduled > 0 {
        Some(scheduled)
    } else {
        ctx.target_records
    };
    // Thresholds judge what came after the warm-up: the records asked for after it.
    let judged_target = match ctx.target_records {
        Some(t) => Some(t.saturating_sub(ctx.warmup_target_records)),
        None => {
            let after = verdict::counters_after_warmup(merged, 0..=u32::MAX).scheduled;
            (after > 0).then_some(after)
        }
    };
    let figures = ctx.run_figures(merged);
    let results =
        verdict::evaluate_thresholds_with(&ctx.thresholds, merged, judged_target, &figures);
    let invalid = verdict::invalid_reasons(merged, generator_target, &ctx.bounds);
    let mut incomplete = verdict::incomplete_reasons(merged, ctx.complete);
    if let Some(why) = &ctx.cut_short {
        incomplete.insert(0, why.clone());
    }
    incomplete.extend(verdict::undelivered_reasons(&ctx.undelivered));
    let v = verdict::verdict(&results, &invalid, &incomplete);
    let report = json::Report::build(merged, ctx, &results, &v, threshold_target);
    let json = report.to_json()?;
    let html = html::render(&report);
    let hlog = hlogout::merged_log(merged)?;
    let junit = junit::render(&report);
    let summary = report.status_summary();
    Ok(ReportSet {
        report,
        json,
        html,
        hlog,
        junit,
        verdict: v,
        summary,
    })
}
