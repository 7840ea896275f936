//! The summary `barrage run` prints at the end: the agents' counters, and the report's rates
//! and latencies (after the warm-up, the warm-up's apart).

use barrage_agent::engine::Outcome as EngineOutcome;
use barrage_agent::recorder::CounterSnapshot;
use barrage_crds::loadtest::LoadTest;
use barrage_crds::names::HistogramTag;
use barrage_crds::spec::WorkloadKind;
use barrage_operator::report::ReportSet;
use barrage_operator::report::json::SummaryJson;
use barrage_operator::report::merge::Stats;

use crate::format::{micros, rate_lines, thousands};

/// What one agent measured.
pub struct AgentRun {
    pub slot: u32,
    pub outcome: EngineOutcome,
}

pub fn print_summary(lt: &LoadTest, runs: &[AgentRun], planned: u64, report: Option<&SummaryJson>) {
    if lt.spec.workload.kind == WorkloadKind::Consume {
        print_consume_summary(lt, runs, report);
        return;
    }
    println!();
    println!("Summary of {}", lt.name());
    let counted: [(&str, Field); 5] = [
        ("records sent", |c| c.sent),
        ("records acked", |c| c.acked),
        ("records failed", |c| c.errors),
        ("records dropped", |c| c.dropped),
        ("sent late (>1ms)", |c| c.late),
    ];
    println!("  {:<18}{}", "records planned", thousands(planned));
    for (label, field) in counted {
        println!("  {label:<18}{}", thousands(total(runs, field)));
    }
    print_rates(report);
    println!(
        "  elapsed           {:.1}s (including flush)",
        elapsed_secs(runs)
    );
    print_latencies(report, lt.spec.workload.kind == WorkloadKind::RoundTrip);
    print_consumer_lag(report);
    for r in runs {
        let c = &r.outcome.counters;
        if !c.errors_by_kind.is_empty() {
            println!("  agent {} errors by kind: {:?}", r.slot, c.errors_by_kind);
        }
        if lt.spec.workload.kind == WorkloadKind::RoundTrip {
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

/// The thresholds, the verdict and where the report set is.
pub fn print_verdict(set: &ReportSet, out: &std::path::Path) {
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
}

/// One of an agent's counters.
type Field = fn(&CounterSnapshot) -> u64;

/// One counter summed over the agents.
fn total(runs: &[AgentRun], field: Field) -> u64 {
    runs.iter().map(|r| field(&r.outcome.counters)).sum()
}

fn elapsed_secs(runs: &[AgentRun]) -> f64 {
    runs.iter()
        .map(|r| r.outcome.elapsed)
        .max()
        .unwrap_or_default()
        .as_secs_f64()
}

/// The report's rates, or why there are none.
fn print_rates(report: Option<&SummaryJson>) {
    match report {
        Some(s) => rate_lines(s).iter().for_each(|l| println!("{l}")),
        None => println!("  rates             none: the report could not be built"),
    }
}

/// Consume: what the group read, how fast, and how old records were when they arrived.
fn print_consume_summary(lt: &LoadTest, runs: &[AgentRun], report: Option<&SummaryJson>) {
    println!();
    println!("Summary of {} (Consume)", lt.name());
    let counted: [(&str, Field); 3] = [
        ("records consumed", |c| c.consumed),
        ("bytes consumed", |c| c.bytes),
        ("consume errors", |c| c.errors),
    ];
    for (label, field) in counted {
        println!("  {label:<18}{}", thousands(total(runs, field)));
    }
    print_rates(report);
    println!("  elapsed           {:.1}s", elapsed_secs(runs));
    let e2e = "end-to-end latency (record timestamp to receipt)";
    print_latency_lines(report, &[(e2e, HistogramTag::E2e)]);
    print_consumer_lag(report);
    for r in runs {
        let c = &r.outcome.counters;
        println!("  agent {} consumed {}", r.slot, thousands(c.consumed));
        if !c.errors_by_kind.is_empty() {
            println!("  agent {} errors by kind: {:?}", r.slot, c.errors_by_kind);
        }
    }
    print_per_partition(runs);
}

/// The consumer group's lag, when one was sampled: `consumer lag      max 10,213  p99 10,213
/// records; at the end 0:3,804  1:2,053  2:4,356`.
fn print_consumer_lag(report: Option<&SummaryJson>) {
    let Some(lag) = report.and_then(|s| s.consumer_lag.as_ref()) else {
        return;
    };
    let end: Vec<String> = lag
        .last_by_partition
        .iter()
        .map(|(p, n)| format!("{p}:{}", thousands(*n)))
        .collect();
    println!(
        "  consumer lag      max {}  p99 {} records; at the end {}",
        thousands(lag.max),
        thousands(lag.p99),
        end.join("  ")
    );
    let Some(d) = report.and_then(|s| s.drain.as_ref()) else {
        return;
    };
    let rate = d.rate.map_or("-".to_string(), |r| format!("{r:.0}"));
    match d.seconds {
        Some(secs) => println!(
            "  backlog drain     {} records drained in {secs} s ({rate} consumed/s)",
            thousands(d.backlog_records)
        ),
        None => println!(
            "  backlog drain     {} records not drained by the end ({rate} consumed/s)",
            thousands(d.backlog_records)
        ),
    }
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

/// Produce and RoundTrip's latency lines (end-to-end only for RoundTrip).
fn print_latencies(report: Option<&SummaryJson>, round_trip: bool) {
    let mut lines = vec![
        (
            "produce latency (from intended send)",
            HistogramTag::Produce,
        ),
        ("service time (from actual send)", HistogramTag::Service),
        ("schedule lag", HistogramTag::Lag),
    ];
    if round_trip {
        lines.push(("end-to-end latency", HistogramTag::E2e));
    }
    print_latency_lines(report, &lines);
}

/// The report's latency lines (`(label, tag)`) and the warm-up's, or why there are none.
fn print_latency_lines(report: Option<&SummaryJson>, lines: &[(&str, HistogramTag)]) {
    let Some(s) = report else {
        println!("  latency           none: the report could not be built");
        return;
    };
    for (label, tag) in lines {
        print_latency(label, s.latency.get(tag));
    }
    let Some(w) = s.warmup.as_ref() else {
        return;
    };
    println!(
        "  warm-up           {:.1} s (intervals {}–{}): counted in the records above, its latency measured apart",
        w.secs, w.first_interval, w.last_interval
    );
    for (label, tag) in lines {
        if let Some(st) = w.latency.get(tag) {
            print_latency(&format!("warm-up {label}"), Some(st));
        }
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
