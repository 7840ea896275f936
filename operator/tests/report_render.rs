//! The report set end to end: blobs on disk or in a blob store → report.json, report.html,
//! merged.hlog, junit.xml; byte-identical re-aggregation; counts equal acked records.

#![allow(clippy::unwrap_used)]

use barrage_crds::names::HistogramTag;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use barrage_crds::hlog::{self, DecodeLimits, IntervalEntry};
use barrage_crds::keys;
use barrage_crds::spec::Threshold;
use barrage_crds::status::VerdictResult;
use barrage_operator::report::fetch;
use barrage_operator::report::render::{intervals_from_texts, render_dir, render_dir_with};
use barrage_operator::report::sample::{SampleRun, sample_run};
use barrage_operator::report::{
    ReportContext, build_report, encode_interval_blob, merge::merge_all,
};
use barrage_store::{Blobs, PutOnce, Result as StoreResult};
use bytes::Bytes;
use serde_json::Value;

fn temp_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a sample run's blobs under `dir` with the real key scheme.
fn write_blobs(dir: &Path, run: &SampleRun) -> u64 {
    let mut acked = 0;
    for i in sample_run(run) {
        acked += i.counters.as_ref().unwrap().acked;
        let key = keys::interval_key("demo", "r1", i.slot, i.incarnation, i.index);
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, encode_interval_blob(&i).unwrap()).unwrap();
    }
    acked
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

fn small() -> SampleRun {
    SampleRun {
        agents: 3,
        intervals: 12,
        records: 300,
        ..SampleRun::default()
    }
}

#[test]
fn re_rendering_the_same_blobs_gives_byte_identical_files() {
    let input = temp_dir("identical-in");
    write_blobs(&input, &small());
    let (a, b) = (temp_dir("identical-a"), temp_dir("identical-b"));
    render_dir(&input, &a).unwrap();
    render_dir(&input, &b).unwrap();
    for f in ["report.json", "report.html", "merged.hlog", "junit.xml"] {
        assert_eq!(read(&a, f), read(&b, f), "{f} differs between renders");
    }
    // And the order blobs arrive in does not matter either.
    let mut texts: Vec<(String, String)> = sample_run(&small())
        .iter()
        .map(|i| {
            (
                format!("{}-{}", i.slot, i.index),
                encode_interval_blob(i).unwrap(),
            )
        })
        .collect();
    texts.reverse();
    let intervals =
        intervals_from_texts(texts.iter().map(|(n, t)| (n.as_str(), t.as_str()))).unwrap();
    let reversed = build_report(
        &merge_all(&intervals, ReportContext::offline().merge_options()).unwrap(),
        &ReportContext::offline(),
    )
    .unwrap();
    assert_eq!(reversed.json, read(&a, "report.json"));
    assert_eq!(reversed.hlog, read(&a, "merged.hlog"));
}

#[test]
fn json_counts_equal_the_records_acked() {
    let input = temp_dir("counts-in");
    let acked = write_blobs(&input, &small());
    let out = temp_dir("counts-out");
    let set = render_dir(&input, &out).unwrap();
    let json: Value = serde_json::from_str(&read(&out, "report.json")).unwrap();
    assert_eq!(json["schema"], "barrage.dev/report/v2");
    assert_eq!(json["summary"]["records"]["acked"], acked);
    assert_eq!(json["summary"]["latency"]["produce"]["count"], acked);
    let per_interval: u64 = json["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["latency"]["produce"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(per_interval, acked);
    let per_agent: u64 = json["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["records"]["acked"].as_u64().unwrap())
        .sum();
    assert_eq!(per_agent, acked);
    assert_eq!(set.summary.records_acked, acked);
    // The replaced agent is accounted for: one gap, explained.
    let gaps = json["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["cause"]["kind"], "replaced");
    assert_eq!(json["verdict"]["result"], "Passed");
}

#[test]
fn merged_hlog_is_a_standard_log_with_tags_and_every_value() {
    let input = temp_dir("hlog-in");
    let acked = write_blobs(&input, &small());
    let out = temp_dir("hlog-out");
    render_dir(&input, &out).unwrap();
    let entries = hlog::parse_log(&read(&out, "merged.hlog"), &DecodeLimits::default()).unwrap();
    let mut by_tag: BTreeMap<String, u64> = BTreeMap::new();
    for e in &entries {
        *by_tag.entry(e.tag.clone().unwrap()).or_default() += e.histogram.len();
    }
    assert_eq!(
        by_tag.keys().collect::<Vec<_>>(),
        vec!["lag", "produce", "service"]
    );
    assert_eq!(by_tag["produce"], acked);
    // Rendering the merged log alone reproduces the run's merged percentiles.
    let again_in = temp_dir("hlog-again-in");
    std::fs::copy(out.join("merged.hlog"), again_in.join("run.hlog")).unwrap();
    std::fs::write(
        again_in.join("run.hlog"),
        read(&out, "merged.hlog").replace("#[Barrage-Merged:", "#[Copied:"),
    )
    .unwrap();
    let again = render_dir(&again_in, &temp_dir("hlog-again-out")).unwrap();
    let first: Value = serde_json::from_str(&read(&out, "report.json")).unwrap();
    let second: Value = serde_json::from_str(&again.json).unwrap();
    assert_eq!(
        first["summary"]["latency"]["produce"],
        second["summary"]["latency"]["produce"]
    );
}

#[test]
fn a_merged_log_in_the_input_folder_is_not_counted_twice() {
    let input = temp_dir("twice-in");
    let acked = write_blobs(&input, &small());
    let first = render_dir(&input, &input).unwrap();
    let second = render_dir(&input, &input).unwrap();
    assert_eq!(first.json, second.json);
    assert_eq!(second.summary.records_acked, acked);
}

#[test]
fn logs_written_by_other_tools_count_as_produce_on_a_common_grid() {
    let input = temp_dir("foreign-in");
    let mut expected = 0;
    for (file, base, values) in [
        ("a/one.hlog", 1_700_000_000.0, vec![100u64, 200, 300]),
        ("b/c/two.hlog", 1_700_000_000.4, vec![1_000u64, 2_000]),
    ] {
        let entries: Vec<IntervalEntry> = (0..3)
            .map(|i| {
                let mut h = hlog::new_histogram();
                for v in &values {
                    h.record(*v * (i + 1)).unwrap();
                }
                expected += h.len();
                IntervalEntry {
                    tag: None,
                    start_secs: i as f64,
                    length_secs: 1.0,
                    histogram: h,
                }
            })
            .collect();
        let path = input.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, hlog::write_log(base, &entries).unwrap()).unwrap();
    }
    let set = render_dir(&input, &temp_dir("foreign-out")).unwrap();
    let json: Value = serde_json::from_str(&set.json).unwrap();
    assert_eq!(json["summary"]["latency"]["produce"]["count"], expected);
    assert_eq!(json["coverage"]["slots"], 2);
    assert_eq!(json["intervals"].as_array().unwrap().len(), 3);
    assert_eq!(json["summary"]["latency"]["produce"]["max"], 6_003);
}

#[test]
fn junit_has_a_test_case_per_threshold_with_the_observed_value() {
    let input = temp_dir("junit-in");
    write_blobs(&input, &small());
    let ctx = ReportContext {
        thresholds: vec![
            Threshold::parse("produce.p99 < 1s").unwrap(),
            Threshold::parse("produce.p50 < 100us").unwrap(),
            Threshold::parse("errors.ratio < 0.1%").unwrap(),
        ],
        ..ReportContext::offline()
    };
    let set = render_dir_with(&input, &temp_dir("junit-out"), &ctx).unwrap();
    assert_eq!(set.verdict.result, VerdictResult::Failed);
    assert_eq!(set.junit.matches("<testcase ").count(), 4);
    assert_eq!(set.junit.matches("<failure ").count(), 1);
    let p50 = set.report.summary.latency[&HistogramTag::Produce].p50;
    let shown = barrage_operator::report::verdict::format_micros(p50 as f64);
    assert!(
        set.junit.contains(&format!(
            "produce.p50 &lt; 100us (observed {shown} over the run)"
        )),
        "{}",
        set.junit
    );
    assert!(set.verdict.reasons[0].starts_with("produce.p50 < 100us: observed"));
}

#[test]
fn the_html_cards_and_junit_carry_the_summarys_rates_load_and_span() {
    // 3 agents, 300 records each per 10 s interval, 12 intervals: a 120 s load.
    let input = temp_dir("rates-in");
    let acked = write_blobs(&input, &small());
    let ctx = ReportContext {
        load_ms: Some(120_000),
        target_records: Some(3 * 300 * 12),
        last_interval: Some(11),
        ..ReportContext::offline()
    };
    let set = render_dir_with(&input, &temp_dir("rates-out"), &ctx).unwrap();
    let s = &set.report.summary;
    let achieved = (acked as f64 / 120.0 * 1000.0).round() / 1000.0;
    assert_eq!(
        (s.load_secs, s.span_secs, s.target_rate, s.achieved_rate),
        (Some(120.0), 120.0, Some(90.0), Some(achieved))
    );
    let card = |k: &str, v: &str| format!("<div class=\"k\">{k}</div><div class=\"v\">{v}</div>");
    for (k, v) in [
        ("target rate (profile)", "90/s"),
        ("load", "120 s"),
        ("span (with flush)", "120 s"),
    ] {
        assert!(set.html.contains(&card(k, v)), "{k} {v}");
    }
    assert!(
        set.html
            .contains("<div class=\"k\">achieved rate (over load)</div>")
    );
    for (name, value) in [
        ("targetRate", "90".to_string()),
        ("achievedRate", achieved.to_string()),
        ("loadSecs", "120".to_string()),
        ("spanSecs", "120".to_string()),
        ("targetRecords", "10800".to_string()),
    ] {
        let property = format!("<property name=\"{name}\" value=\"{value}\"/>");
        assert!(
            set.junit.contains(&property),
            "{property} in\n{}",
            set.junit
        );
    }
}

#[test]
fn the_html_is_self_contained_and_has_the_charts_and_tables() {
    let input = temp_dir("html-in");
    write_blobs(&input, &small());
    let set = render_dir(&input, &temp_dir("html-out")).unwrap();
    let html = &set.html;
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));
    for title in [
        "Throughput over time",
        "Produce latency over time",
        "Latency by percentile",
        "Agents",
    ] {
        assert!(
            html.contains(&format!("<h2>{title}</h2>")),
            "missing {title}"
        );
    }
    assert_eq!(html.matches("<svg ").count(), 3);
    assert!(html.matches("<polyline").count() >= 8);
    assert!(html.contains("99.9%"));
}

#[test]
fn an_empty_folder_is_an_error_that_names_it() {
    let input = temp_dir("empty-in");
    let err = render_dir(&input, &temp_dir("empty-out")).unwrap_err();
    assert!(err.to_string().contains("no interval logs"), "{err}");
}

/// A blob store in memory that remembers every key it listed.
#[derive(Default)]
struct MemBlobs(Mutex<BTreeMap<String, Vec<u8>>>, Mutex<Vec<String>>);

#[async_trait]
impl Blobs for MemBlobs {
    async fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let m = self.0.lock().unwrap();
        let keys: Vec<String> = m
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        self.1.lock().unwrap().extend(keys.iter().cloned());
        Ok(keys)
    }
    async fn get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        Ok(self.0.lock().unwrap().get(key).cloned().map(Bytes::from))
    }
    async fn put(&self, key: &str, body: Bytes, _: &str) -> StoreResult<()> {
        self.0
            .lock()
            .unwrap()
            .insert(key.to_string(), body.to_vec());
        Ok(())
    }
    async fn put_once(&self, key: &str, body: Bytes, _: &str) -> StoreResult<PutOnce> {
        let mut m = self.0.lock().unwrap();
        if m.contains_key(key) {
            return Ok(PutOnce::AlreadyExists);
        }
        m.insert(key.to_string(), body.to_vec());
        Ok(PutOnce::Created)
    }
    fn uri(&self, key: &str) -> String {
        format!("memory:{key}")
    }
}

#[test]
fn the_blob_store_path_merges_interval_by_interval_and_writes_the_set_and_windows() {
    let store = MemBlobs::default();
    let run = small();
    let mut acked = 0;
    for i in sample_run(&run) {
        acked += i.counters.as_ref().unwrap().acked;
        store.0.lock().unwrap().insert(
            keys::interval_key("demo", "r1", i.slot, i.incarnation, i.index),
            encode_interval_blob(&i).unwrap().into_bytes(),
        );
    }
    let ctx = ReportContext {
        load_test: Some("demo".into()),
        run_id: Some("r1".into()),
        window_intervals: Some(4),
        expected_agents: Some(3),
        thresholds: vec![Threshold::parse("produce.p99 < 1s").unwrap()],
        ..ReportContext::offline()
    };
    let set = futures::executor::block_on(fetch::render_from_blobs(&store, &ctx)).unwrap();
    assert_eq!(set.summary.records_acked, acked);
    assert_eq!(set.report.windows.len(), 3);
    assert_eq!(set.report.thresholds[0].windows.len(), 3);
    for file in keys::ReportFile::ALL {
        let key = keys::report_key("demo", "r1", file);
        assert!(
            store.0.lock().unwrap().contains_key(&key),
            "{key} not written"
        );
    }
    let window =
        futures::executor::block_on(fetch::render_window_from_blobs(&store, &ctx, 1)).unwrap();
    let window_acked: u64 = sample_run(&run)
        .iter()
        .filter(|i| (4..8).contains(&i.index))
        .map(|i| i.counters.as_ref().unwrap().acked)
        .sum();
    assert_eq!(window.summary.records_acked, window_acked);
    // The replaced slot's gap (interval 6) falls in window 1 and is explained, not missing.
    assert_eq!(
        window.verdict.result,
        VerdictResult::Passed,
        "{:?}",
        window.verdict.reasons
    );
    assert!(
        store
            .0
            .lock()
            .unwrap()
            .contains_key(&keys::window_report_key("demo", "r1", 1))
    );

    // Knowing the agents, the window lists only their keys of its own intervals — and renders
    // the same report as from the listing of the whole run.
    let full_listing = store.1.lock().unwrap().len();
    store.1.lock().unwrap().clear();
    let mut dirs: Vec<(u32, u32)> = sample_run(&run)
        .iter()
        .map(|i| (i.slot, i.incarnation))
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    let narrow = ReportContext {
        agent_dirs: Some(dirs.clone()),
        ..ctx.clone()
    };
    let again =
        futures::executor::block_on(fetch::render_window_from_blobs(&store, &narrow, 1)).unwrap();
    let listed = store.1.lock().unwrap().clone();
    println!(
        "window 1 of a {}-interval run: {} keys listed knowing the agents {dirs:?}; the run's listings before: {full_listing} keys",
        run.intervals,
        listed.len()
    );
    assert!(!listed.is_empty());
    for key in &listed {
        let k = keys::parse_interval_key(key).expect("only interval keys");
        assert!((4..8).contains(&k.interval), "{key} is not in window 1");
    }
    assert_eq!(listed.len() as u64, window_intervals_with_data(&run, 4..8));
    assert_eq!(again.json, window.json, "the same window report");
    assert_eq!(again.hlog, window.hlog);
}

/// Interval blobs of the sample run in `range`.
fn window_intervals_with_data(run: &SampleRun, range: std::ops::Range<u32>) -> u64 {
    sample_run(run)
        .iter()
        .filter(|i| range.contains(&i.index))
        .count() as u64
}

/// Renders the sample report the browser check opens (scripts/browser-test.sh).
#[test]
fn sample_report_for_the_browser_check() {
    let input = temp_dir("sample-in");
    write_blobs(&input, &SampleRun::default());
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-sample");
    let ctx = ReportContext {
        load_test: Some("demo".into()),
        run_id: Some("r1".into()),
        thresholds: vec![
            Threshold::parse("produce.p99 < 50ms").unwrap(),
            Threshold::parse("errors.ratio < 0.1%").unwrap(),
        ],
        window_intervals: Some(10),
        ..ReportContext::offline()
    };
    let set = render_dir_with(&input, &out, &ctx).unwrap();
    assert!(out.join("report.html").exists());
    assert_eq!(
        set.verdict.result,
        VerdictResult::Passed,
        "{:?}",
        set.verdict.reasons
    );
}

/// A Consume run draining a backlog: three agents of two partitions each, the third one
/// slower, no histograms (so its only charts are the throughput and the consumer lag).
fn consume_sample() -> Vec<barrage_crds::interval::AgentInterval> {
    let mut out = Vec::new();
    for slot in 0..3u32 {
        let per_interval = if slot == 2 { 900 } else { 1_500 };
        for index in 0..30u32 {
            let lag_of = |partition: u32| {
                let drained = u64::from(index + 1) * per_interval / 2;
                (partition, 20_000u64.saturating_sub(drained))
            };
            out.push(barrage_crds::interval::AgentInterval {
                slot,
                incarnation: 0,
                index,
                start_ms: barrage_operator::report::sample::SAMPLE_START_MS
                    + u64::from(index) * 10_000,
                length_ms: 10_000,
                histograms: BTreeMap::new(),
                counters: Some(barrage_crds::interval::IntervalCounters {
                    consumed: per_interval,
                    ..Default::default()
                }),
                consumer_lag: [lag_of(slot * 2), lag_of(slot * 2 + 1)].into(),
                partitions: Default::default(),
            });
        }
    }
    out
}

#[test]
fn consume_sample_report_for_the_browser_check() {
    let input = temp_dir("consume-sample-in");
    for i in consume_sample() {
        let key = keys::interval_key("drain", "r1", i.slot, i.incarnation, i.index);
        let path = input.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, encode_interval_blob(&i).unwrap()).unwrap();
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-sample-consume");
    let mut lt = barrage_crds::loadtest::LoadTest::example("drain", "127.0.0.1:9092", "t");
    lt.spec.workload.kind = barrage_crds::spec::WorkloadKind::Consume;
    lt.spec.workload.backlog = Some(barrage_crds::spec::BacklogSpec {
        records: 120_000,
        ..Default::default()
    });
    let ctx = ReportContext {
        load_test: Some("drain".into()),
        run_id: Some("r1".into()),
        thresholds: vec![
            Threshold::parse("consumer_lag.max < 150000").unwrap(),
            Threshold::parse("consume.rate > 100").unwrap(),
        ],
        settings: Some(barrage_operator::report::Settings::from_spec(&lt.spec)),
        ..ReportContext::offline()
    };
    let set = render_dir_with(&input, &out, &ctx).unwrap();
    let report: Value = serde_json::from_str(&read(&out, "report.json")).unwrap();
    let lag = &report["summary"]["consumerLag"];
    // 6 partitions at 20 000 less what each drained in the first interval.
    assert_eq!(lag["max"], 6 * 20_000 - 2 * (2 * 750 + 450), "{lag}");
    assert_eq!(lag["intervals"], 30);
    assert_eq!(lag["lastByPartition"]["5"], 20_000 - 30 * 450);
    assert_eq!(lag["lastByPartition"]["0"], 0);
    assert_eq!(
        report["thresholds"][0]["run"]["observed"].as_f64(),
        lag["max"].as_f64()
    );
    let html = read(&out, "report.html");
    assert!(html.contains("<h2>Consumer lag</h2>"));
    // Partitions 0–3 reach zero at interval 26 (2 × 750 a interval from 20 000); 4 and 5 never
    // do: the backlog is not drained, and the rate is over every interval.
    let drain = &report["summary"]["drain"];
    assert_eq!(drain["backlogRecords"], 120_000);
    assert!(drain["seconds"].is_null(), "{drain}");
    assert_eq!(drain["consumedRecords"], 30 * (1_500 + 1_500 + 900));
    assert_eq!(drain["rate"].as_f64(), Some(390.0));
    assert_eq!(
        report["thresholds"][1]["run"]["observed"].as_f64(),
        Some(390.0)
    );
    assert!(html.contains("backlog drained in") && html.contains("not drained"));
    assert_eq!(
        set.verdict.result,
        VerdictResult::Passed,
        "{:?}",
        set.verdict.reasons
    );
}
