//! `barrage run` with `spec.load.warmup`: the warm-up's sends happen as scheduled and count in
//! every record total, its latency is reported apart (`summary.warmup`), and the summary's
//! percentiles, the agents' and the thresholds (latency and rate) are those of the intervals
//! after it — re-derived here from `merged.hlog`, which keeps every interval.

use barrage_crds::names::HistogramTag;
use std::collections::BTreeMap;
use std::time::Duration;

use barrage_crds::hlog::{self, DecodeLimits};
use barrage_system_tests::operator::lag_only;
use barrage_system_tests::report_walk::check_report_histograms;
use barrage_system_tests::spec::Spec;
use barrage_system_tests::{barrage_run, invalid_reasons, kafka, temp_file, unique};
use hdrhistogram::Histogram;
use serde_json::Value;

const RATE: u64 = 200;
const LOAD_SECS: u64 = 4;

fn spec(topic: &str, bootstrap: &str) -> String {
    Spec::new("run-warmup", topic, bootstrap)
        .partitions(3)
        .delete_if_created()
        .rate(RATE as u32)
        .secs(LOAD_SECS as u32)
        .warmup(1)
        .agents(1)
        .threshold("produce.p99 < 500ms")
        .threshold("errors.ratio < 1%")
        .threshold("rate.achieved_ratio >= 0.9")
        .yaml()
}

/// `merged.hlog`'s produce histograms by interval index.
fn produce_by_interval(text: &str, interval_secs: f64) -> BTreeMap<u32, Histogram<u64>> {
    let mut by_interval = BTreeMap::new();
    for e in hlog::parse_log(text, &DecodeLimits::default()).expect("merged.hlog parses") {
        if e.tag.as_deref() == Some(HistogramTag::Produce.as_str()) {
            let index = (e.start_secs / interval_secs).round() as u32;
            by_interval.insert(index, e.histogram);
        }
    }
    by_interval
}

fn sum<'a>(hs: impl Iterator<Item = &'a Histogram<u64>>) -> Histogram<u64> {
    let mut total = hlog::new_histogram();
    for h in hs {
        total.add(h).expect("histograms of one run add up");
    }
    total
}

fn u64_at(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_u64()
        .unwrap_or_else(|| panic!("{} in {v}", path.join(".")))
}

#[test]
fn a_warmup_is_counted_reported_apart_and_left_out_of_the_summary_percentiles_and_thresholds() {
    let Some(bootstrap) = kafka() else { return };
    let topic = unique("barrage-it-run-warmup");
    let file = temp_file("run-warmup.yaml", &spec(&topic, &bootstrap));
    let (out, out_dir) = barrage_run(&file, &[], Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    // On two shared cores the broker's topic set-up can still take the sender's CPU after
    // the warm-up: a verdict Invalid for schedule lag alone is not what this test is about.
    let reasons = invalid_reasons(&stdout);
    assert!(
        out.status.success() || (out.status.code() == Some(3) && lag_only(&reasons)),
        "barrage run failed ({:?}):\n{stdout}\n{stderr}",
        out.status.code()
    );
    assert!(
        stdout.contains("  warm-up           1.0 s (intervals 0–0)"),
        "{stdout}"
    );

    let checked = check_report_histograms(&out_dir);
    println!("run warmup: {checked} histogram objects agree with merged.hlog and the agents' logs");

    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("report.json")).expect("report.json"),
    )
    .expect("report.json is JSON");
    let s = &report["summary"];
    let w = &s["warmup"];
    println!("run warmup: summary.warmup {w}");
    assert_eq!(w["secs"].as_f64(), Some(1.0), "{w}");
    assert_eq!(
        (u64_at(w, &["firstInterval"]), u64_at(w, &["lastInterval"])),
        (0, 0)
    );

    // Every record counts: the summary's records are the warm-up's and the rest's.
    let acked = u64_at(s, &["records", "acked"]);
    let warmup_acked = u64_at(w, &["records", "acked"]);
    let interval_0 = &report["intervals"][0];
    assert_eq!(interval_0["warmup"], Value::Bool(true), "{interval_0}");
    assert_eq!(u64_at(interval_0, &["records", "acked"]), warmup_acked);
    assert!(report["intervals"][1].get("warmup").is_none());
    assert_eq!(acked, RATE * LOAD_SECS, "every record acked: {s}");
    // RATE + 1: the first interval can hold one record more than its share (CI saw 201 acked
    // of 200 scheduled: the send at the interval's edge, the known one-record rounding between
    // the profile's sends and the interval boundaries).
    assert!(
        (RATE * 3 / 4..=RATE + 1).contains(&warmup_acked),
        "about rate × 1 s acked in the warm-up: {warmup_acked}"
    );
    let measured = u64_at(s, &["latency", "produce", "count"]);
    let warmup_measured = u64_at(w, &["latency", "produce", "count"]);
    assert_eq!(
        (warmup_measured, measured + warmup_measured),
        (warmup_acked, acked)
    );

    // The summary's percentiles are merged.hlog's intervals after the warm-up, not all of them.
    let interval_secs = s["intervalSecs"].as_f64().expect("intervalSecs");
    let hlog_text = std::fs::read_to_string(out_dir.join("merged.hlog")).expect("merged.hlog");
    assert!(
        hlog_text.contains("#[Barrage-Warmup: intervals 0-0"),
        "{hlog_text}"
    );
    let by_interval = produce_by_interval(&hlog_text, interval_secs);
    let after = sum(by_interval.range(1..).map(|(_, h)| h));
    let whole = sum(by_interval.values());
    let p99 = u64_at(s, &["latency", "produce", "p99"]);
    assert_eq!(p99, after.value_at_quantile(0.99), "{s}");
    assert_eq!(u64_at(s, &["latency", "produce", "max"]), after.max());
    assert_eq!(
        u64_at(w, &["latency", "produce", "p99"]),
        by_interval[&0].value_at_quantile(0.99)
    );
    let threshold = &report["thresholds"][0];
    assert_eq!(
        threshold["run"]["observed"].as_f64(),
        Some(p99 as f64),
        "{threshold}"
    );
    // A rate is judged after the warm-up too: the records acked after it over the records the
    // load asked for after it (RATE x (LOAD_SECS - 1)), not over the whole run's target.
    let rate = &report["thresholds"][2];
    let judged = (acked - warmup_acked) as f64 / (RATE * (LOAD_SECS - 1)) as f64;
    assert_eq!(
        rate["run"]["observed"].as_f64(),
        Some((judged * 1000.0).round() / 1000.0),
        "{rate}"
    );
    println!("run warmup: rate.achieved_ratio judged after the warm-up {rate}");
    let agent = &report["agents"][0];
    assert_eq!(u64_at(agent, &["produce", "count"]), measured, "{agent}");
    println!(
        "run warmup: warm-up produce p99 {} µs ({} records), summary produce p99 {} µs ({} records), whole run with the warm-up {} µs; lag p99 warm-up {} µs, after {} µs",
        u64_at(w, &["latency", "produce", "p99"]),
        warmup_measured,
        p99,
        measured,
        whole.value_at_quantile(0.99),
        u64_at(w, &["latency", "lag", "p99"]),
        u64_at(s, &["latency", "lag", "p99"]),
    );

    let junit = std::fs::read_to_string(out_dir.join("junit.xml")).expect("junit.xml");
    assert!(
        junit.contains("<property name=\"warmupSecs\" value=\"1\"/>"),
        "{junit}"
    );
    let html = std::fs::read_to_string(out_dir.join("report.html")).expect("report.html");
    assert!(html.contains("warm-up (latency apart)"));
}
