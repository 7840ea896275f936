//! The merge benchmark: 1 000 agents × 360 intervals (an hour of 10 s intervals), decoded from
//! blob text and merged interval by interval, then the report set rendered. Prints the time and
//! the peak resident memory (VmHWM). Goal: ≤ 2 s and ≤ 256 MiB.
//!
//! Run it in release mode (it is ignored otherwise):
//! `cargo test --release -p barrage-operator --test report_bench -- --ignored --nocapture`
//! `BENCH_AGENTS`, `BENCH_INTERVALS` and `BENCH_RECORDS` (records per agent interval, default
//! 1 000) change the size, `BENCH_THREADS` the decoding threads (default: the machine's
//! parallelism, at most 8). It prints its figures and asserts only the counts, never a time.

#![allow(clippy::unwrap_used)]

use barrage_crds::names::HistogramTag;
use std::time::Instant;

use barrage_crds::hlog::DecodeLimits;
use barrage_operator::report::counts::{decode_parallel, decode_threads};
use barrage_operator::report::sample::{SampleRun, sample_interval};
use barrage_operator::report::{
    Merger, ReportContext, build_report, decode_interval_blob, encode_interval_blob,
};

/// Blobs decoded at once (what `fetch` does too).
const BATCH: usize = barrage_operator::report::fetch::DECODE_BATCH;

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "benchmark: run in release mode with --ignored"]
fn merge_1000_agents_by_360_intervals() {
    let agents = env_u32("BENCH_AGENTS", 1_000);
    let intervals = env_u32("BENCH_INTERVALS", 360);
    // 64 distinct blobs (`records` records each, three tags) stand in for the 360 000: every one
    // is still decoded from text and merged, which is the work being measured.
    let records = u64::from(env_u32("BENCH_RECORDS", 1_000));
    let run = SampleRun {
        agents: 8,
        intervals: 8,
        records,
        ..SampleRun::default()
    };
    let templates: Vec<String> = (0..64)
        .map(|k| encode_interval_blob(&sample_interval(&run, k % 8, 0, k / 8)).unwrap())
        .collect();
    let template_bytes: usize = templates.iter().map(String::len).sum();
    let before = vm_hwm_kib();

    let threads = env_u32("BENCH_THREADS", decode_threads() as u32) as usize;
    let limits = DecodeLimits::default();
    let start = Instant::now();
    let mut merger = Merger::new(ReportContext::offline().merge_options());
    let mut acked = 0u64;
    let (mut decoders, mut decoded) = (Vec::new(), Vec::new());
    let mut texts: Vec<&str> = Vec::with_capacity(agents as usize);
    for index in 0..intervals {
        texts.clear();
        texts.extend((0..agents).map(|slot| {
            templates[((slot as usize) * 31 + index as usize) % templates.len()].as_str()
        }));
        // Every blob is decoded from its text (on `threads` threads, a batch at a time), then
        // added in slot order.
        for (batch, chunk) in texts.chunks(BATCH).enumerate() {
            decode_parallel(chunk, &limits, threads, &mut decoders, &mut decoded).unwrap();
            for (i, blob) in decoded[..chunk.len()].iter_mut().enumerate() {
                blob.slot = (batch * BATCH + i) as u32;
                blob.index = index;
                blob.start_ms = 1_767_225_600_000 + u64::from(index) * blob.length_ms;
                acked += blob.counters.as_ref().unwrap().acked;
                merger.add_counts(blob).unwrap();
            }
        }
        merger.close_through(index).unwrap();
    }
    let merged = merger.finish().unwrap();
    let merge_time = start.elapsed();
    let set = build_report(&merged, &ReportContext::offline()).unwrap();
    let total_time = start.elapsed();
    let hwm = vm_hwm_kib();

    assert_eq!(merged.blobs, u64::from(agents) * u64::from(intervals));
    assert_eq!(set.summary.records_acked, acked);
    assert_eq!(
        set.report.summary.latency[&HistogramTag::Produce].count,
        acked
    );
    let distinct: usize = templates
        .iter()
        .map(|t| {
            decode_interval_blob(t).unwrap().histograms[&HistogramTag::Produce]
                .iter_recorded()
                .count()
        })
        .sum::<usize>()
        / templates.len();
    println!(
        "{records} records per blob, {distinct} distinct produce buckets on average; \
         {threads} decode thread(s); merged {agents} agents x {intervals} intervals ({} blobs, {acked} records; {} template bytes): \
         merge {:.3} s, merge + render {:.3} s; peak RSS (VmHWM) {:.1} MiB (before: {:.1} MiB); \
         report.json {:.1} MiB, report.html {:.1} MiB, merged.hlog {:.1} MiB",
        merged.blobs,
        template_bytes,
        merge_time.as_secs_f64(),
        total_time.as_secs_f64(),
        hwm as f64 / 1024.0,
        before as f64 / 1024.0,
        set.json.len() as f64 / 1048576.0,
        set.html.len() as f64 / 1048576.0,
        set.hlog.len() as f64 / 1048576.0,
    );
}
