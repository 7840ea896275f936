//! Checks every histogram object of a run's `report.json` against the histograms it claims to
//! describe, decoded independently: each interval's from `merged.hlog`, the run's and each
//! window's as the sum of `merged.hlog`'s lines (and, for the run, of the agents' own interval
//! logs), each agent's from its own interval logs under `agents/`. With a warm-up
//! (`summary.warmup`), the run's, the windows' and the agents' are those sums over the
//! intervals after it, and `summary.warmup`'s the sum over its own.
//!
//! A histogram object is any JSON object with `count`, `min`, `mean` and `max`; one found at a
//! place this module does not know is a failure, so a new histogram in the report cannot go
//! unchecked.

use std::collections::BTreeMap;
use std::path::Path;

use barrage_crds::hlog::{self, DecodeLimits};
use barrage_crds::interval::decode_interval_blob;
use hdrhistogram::Histogram;
use serde_json::Value;

/// The histograms a report was built from, decoded from files.
struct Sources {
    /// `merged.hlog` by (interval index, tag).
    merged: BTreeMap<(u32, String), Histogram<u64>>,
    /// The agents' interval logs after the warm-up summed by (slot, incarnation, tag).
    agents: BTreeMap<(u32, u32, String), Histogram<u64>>,
    /// The first interval after the warm-up (0 without one).
    warmup_end: u32,
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn add<K: Ord>(into: &mut BTreeMap<K, Histogram<u64>>, key: K, h: &Histogram<u64>) {
    into.entry(key)
        .or_insert_with(hlog::new_histogram)
        .add(h)
        .expect("histograms of one run add up");
}

/// The sum of `histograms`.
fn sum<'a>(histograms: impl Iterator<Item = &'a Histogram<u64>>) -> Histogram<u64> {
    let mut total = hlog::new_histogram();
    for h in histograms {
        total.add(h).expect("histograms of one run add up");
    }
    total
}

fn interval_logs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            interval_logs(&path, out);
        } else if path.extension().is_some_and(|e| e == "hlog") {
            out.push(path);
        }
    }
}

impl Sources {
    fn load(run_dir: &Path, interval_secs: f64, warmup_end: u32) -> Sources {
        let limits = DecodeLimits::default();
        let mut merged = BTreeMap::new();
        for e in hlog::parse_log(&read(&run_dir.join("merged.hlog")), &limits)
            .expect("merged.hlog parses")
        {
            let index = (e.start_secs / interval_secs).round() as u32;
            let tag = e.tag.expect("merged.hlog lines are tagged");
            add(&mut merged, (index, tag), &e.histogram);
        }
        let mut files = Vec::new();
        interval_logs(&run_dir.join("agents"), &mut files);
        let mut agents = BTreeMap::new();
        for f in files {
            let blob = decode_interval_blob(&read(&f)).expect("an agent interval log");
            if blob.index < warmup_end {
                continue;
            }
            for (tag, h) in &blob.histograms {
                add(
                    &mut agents,
                    (blob.slot, blob.incarnation, tag.to_string()),
                    h,
                );
            }
        }
        assert!(
            !agents.is_empty(),
            "interval logs under {}",
            run_dir.display()
        );
        Sources {
            merged,
            agents,
            warmup_end,
        }
    }

    fn merged_sum(&self, tag: &str, range: std::ops::RangeInclusive<u32>) -> Histogram<u64> {
        sum(self
            .merged
            .iter()
            .filter(|((i, t), _)| t == tag && range.contains(i))
            .map(|(_, h)| h))
    }

    fn agents_sum(&self, tag: &str) -> Histogram<u64> {
        sum(self
            .agents
            .iter()
            .filter(|((_, _, t), _)| t == tag)
            .map(|(_, h)| h))
    }
}

/// `report.json[path]`.
fn at<'a>(report: &'a Value, path: &[String]) -> &'a Value {
    path.iter().fold(report, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[k.as_str()],
    })
}

fn u32_at(v: &Value, key: &str) -> u32 {
    v[key]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or_else(|| panic!("{key} in {v}"))
}

/// The histograms `report.json[path]` describes (one or more decodings that must agree).
fn expected(report: &Value, sources: &Sources, path: &[String]) -> Vec<(String, Histogram<u64>)> {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["summary", "latency", tag] => vec![
            (
                "merged.hlog".into(),
                sources.merged_sum(tag, sources.warmup_end..=u32::MAX),
            ),
            ("agents' logs".into(), sources.agents_sum(tag)),
        ],
        ["summary", "warmup", "latency", tag] => {
            let w = at(report, &path[..2]);
            let range = u32_at(w, "firstInterval")..=u32_at(w, "lastInterval");
            vec![("merged.hlog".into(), sources.merged_sum(tag, range))]
        }
        ["intervals", _, "latency", tag] => {
            let index = u32_at(at(report, &path[..2]), "index");
            vec![("merged.hlog".into(), sources.merged_sum(tag, index..=index))]
        }
        ["windows", _, "latency", tag] => {
            let w = at(report, &path[..2]);
            let first = u32_at(w, "firstInterval").max(sources.warmup_end);
            let range = first..=u32_at(w, "lastInterval");
            vec![("merged.hlog".into(), sources.merged_sum(tag, range))]
        }
        ["agents", _, which @ ("produce" | "lag")] => {
            let a = at(report, &path[..2]);
            let key = (
                u32_at(a, "slot"),
                u32_at(a, "incarnation"),
                which.to_string(),
            );
            let h = sources.agents.get(&key).cloned();
            vec![(
                "the agent's logs".into(),
                h.unwrap_or_else(hlog::new_histogram),
            )]
        }
        _ => panic!(
            "report.json has a histogram at {} that no check knows",
            p.join(".")
        ),
    }
}

fn is_histogram(v: &Value) -> bool {
    ["count", "min", "mean", "max"]
        .iter()
        .all(|k| v.get(k).is_some())
}

fn walk(v: &Value, path: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
    if is_histogram(v) {
        found.push(path.clone());
        return;
    }
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    for (k, child) in children {
        path.push(k);
        walk(child, path, found);
        path.pop();
    }
}

/// One histogram's figures against a decoded one; a line per disagreement.
fn compare(where_: &str, from: &str, got: &Value, h: &Histogram<u64>) -> Vec<String> {
    let mean = if h.is_empty() {
        None
    } else {
        Some((h.mean() * 1000.0).round() / 1000.0)
    };
    let want = [
        ("count", Some(h.len() as f64)),
        ("min", (!h.is_empty()).then(|| h.min() as f64)),
        ("mean", mean),
        ("max", (!h.is_empty()).then(|| h.max() as f64)),
    ];
    want.iter()
        .filter_map(|(k, w)| {
            let g = got[*k].as_f64();
            (g != *w).then(|| format!("{where_}.{k} is {g:?}, {from} say {w:?}"))
        })
        .collect()
}

/// Walks the `report.json` in `run_dir` and checks every histogram object's count, min, mean
/// and max against `merged.hlog` and the agents' interval logs in the same folder. Returns
/// the number of histogram objects checked; panics listing every disagreement.
pub fn check_report_histograms(run_dir: &Path) -> usize {
    let report: Value =
        serde_json::from_str(&read(&run_dir.join("report.json"))).expect("report.json is JSON");
    let interval_secs = report["summary"]["intervalSecs"]
        .as_f64()
        .expect("summary.intervalSecs");
    let warmup = &report["summary"]["warmup"];
    let warmup_end = if warmup.is_null() {
        0
    } else {
        u32_at(warmup, "lastInterval") + 1
    };
    let sources = Sources::load(run_dir, interval_secs, warmup_end);
    let mut found = Vec::new();
    walk(&report, &mut Vec::new(), &mut found);
    let mut problems = Vec::new();
    for path in &found {
        let got = at(&report, path);
        for (from, h) in expected(&report, &sources, path) {
            problems.extend(compare(&path.join("."), &from, got, &h));
        }
    }
    assert!(
        problems.is_empty(),
        "{} disagreements among {} histogram objects:\n{}",
        problems.len(),
        found.len(),
        problems.join("\n")
    );
    found.len()
}
