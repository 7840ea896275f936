//! Interoperability with HdrHistogram's Java tools, the reference implementation of the
//! interval log.
//!
//! - `we_read_a_java_written_log_as_java_does` (always runs): `data/hlog/java-writer.hlog` was
//!   written by Java's `HistogramLogWriter` (`data/hlog/java/HlogWrite.java`) and
//!   `data/hlog/java-writer.dump.txt` is how Java's `HistogramLogReader` reads it
//!   (`data/hlog/java/HlogDump.java`); our reading must print the same text.
//! - `java_reads_our_logs_as_we_do` (opt-in, needs a JDK and the HdrHistogram jar): writes a log
//!   with [`write_log`], has Java read it with `HlogDump` and runs `HistogramLogProcessor` on it.
//!   Run it with
//!   `BARRAGE_HDRHISTOGRAM_JAR=/path/to/HdrHistogram-2.2.2.jar cargo test -p barrage-crds --test hlog_java -- --ignored`
//!   (the jar comes from Maven Central: `mvn dependency:get -Dartifact=org.hdrhistogram:HdrHistogram:2.2.2`).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use barrage_crds::hlog::{DecodeLimits, HistogramLog, IntervalEntry, new_histogram, write_log};
use hdrhistogram::Histogram;

/// One line per interval, as `HlogDump.java` prints what Java's `HistogramLogReader` returns
/// (absolute times computed the way it computes them).
fn dump(log: &HistogramLog) -> String {
    let base = log.base_time_secs.expect("our fixtures carry a BaseTime");
    let mut out = String::new();
    for e in &log.entries {
        let h = &e.histogram;
        let start = e.start_secs + base;
        out.push_str(&format!(
            "tag={} start_ms={} end_ms={} config={},{},{} total={}",
            e.tag.as_deref().unwrap_or("-"),
            (start * 1000.0) as i64,
            ((start + e.length_secs) * 1000.0) as i64,
            h.low(),
            h.high(),
            h.sigfig(),
            h.len()
        ));
        if !h.is_empty() {
            out.push_str(&format!(
                " min={} max={} p50={} p99={}",
                h.min_nz(),
                h.max(),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99)
            ));
        }
        let values: Vec<String> = h
            .iter_recorded()
            .map(|v| format!("{}:{}", v.value_iterated_to(), v.count_at_value()))
            .collect();
        out.push_str(&format!(" values={}\n", values.join(";")));
    }
    out.push_str(&format!("intervals={}\n", log.entries.len()));
    out
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/hlog")
        .join(name)
}

#[test]
fn we_read_a_java_written_log_as_java_does() {
    let text = std::fs::read_to_string(data("java-writer.hlog")).unwrap();
    let log = HistogramLog::parse(&text, &DecodeLimits::default()).unwrap();
    assert_eq!(log.start_time_secs, Some(1_732_567_200.0));
    assert_eq!(log.entries.len(), 8);
    let java = std::fs::read_to_string(data("java-writer.dump.txt")).unwrap();
    let ours = dump(&log);
    for (i, (a, b)) in ours.lines().zip(java.lines()).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
    }
    assert_eq!(ours, java);
}

/// A deterministic log in Barrage's configuration with every tag, wide values, an empty
/// interval and an untagged line.
fn our_log() -> (f64, Vec<IntervalEntry>) {
    let mut seed: u64 = 7;
    let mut next = |bound: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % bound
    };
    let mut entries = Vec::new();
    for i in 0..4_u32 {
        for tag in ["produce", "service", "lag", "e2e"] {
            let mut h = new_histogram();
            for _ in 0..2_000 {
                let v = 1 + next(1_000) * next(100_000);
                h.record(v.min(3_600_000_000)).unwrap();
            }
            entries.push(IntervalEntry {
                tag: Some(tag.to_string()),
                start_secs: f64::from(i) * 10.0,
                length_secs: 10.0,
                histogram: h,
            });
        }
    }
    entries.push(IntervalEntry {
        tag: Some("empty".into()),
        start_secs: 40.0,
        length_secs: 2.5,
        histogram: new_histogram(),
    });
    let mut untagged = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).unwrap();
    untagged.record_n(123_456_789, 5).unwrap();
    entries.push(IntervalEntry {
        tag: None,
        start_secs: 42.5,
        length_secs: 0.001,
        histogram: untagged,
    });
    (1_732_567_200.125, entries)
}

fn java(jar: &str, classes: &Path, args: &[&str]) -> String {
    let out = Command::new("java")
        .arg("-cp")
        .arg(format!("{jar}:{}", classes.display()))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "java {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[ignore = "needs a JDK and BARRAGE_HDRHISTOGRAM_JAR; see the module documentation"]
fn java_reads_our_logs_as_we_do() {
    let jar = std::env::var("BARRAGE_HDRHISTOGRAM_JAR")
        .expect("set BARRAGE_HDRHISTOGRAM_JAR to the HdrHistogram jar");
    let dir = std::env::temp_dir().join(format!("barrage-hlog-java-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("javac")
        .arg("-d")
        .arg(&dir)
        .arg("-cp")
        .arg(&jar)
        .arg(data("java/HlogDump.java"))
        .status()
        .unwrap();
    assert!(status.success(), "javac failed");

    let (start, entries) = our_log();
    let text = write_log(start, &entries).unwrap();
    let file = dir.join("ours.hlog");
    std::fs::write(&file, &text).unwrap();

    let ours = dump(&HistogramLog::parse(&text, &DecodeLimits::default()).unwrap());
    let theirs = java(&jar, &dir, &["HlogDump", file.to_str().unwrap()]);
    for (i, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
    }
    assert_eq!(ours, theirs);
    assert!(theirs.ends_with(&format!("intervals={}\n", entries.len())));

    // HdrHistogram's own log processor summarizes the produce intervals.
    let summary = java(
        &jar,
        &dir,
        &[
            "org.HdrHistogram.HistogramLogProcessor",
            "-i",
            file.to_str().unwrap(),
            "-tag",
            "produce",
            "-outputValueUnitRatio",
            "1",
        ],
    );
    // Its footer reads "#[Max     = 3600809983.000, Total count    =         3003]".
    let footer = summary
        .lines()
        .find(|l| l.starts_with("#[Max"))
        .unwrap_or_else(|| panic!("no #[Max line in {summary}"));
    let number_after = |label: &str| -> f64 {
        let rest = &footer[footer.find(label).unwrap() + label.len()..];
        let rest = rest.trim_start_matches([' ', '=']);
        let end = rest.find([',', ']']).unwrap();
        rest[..end].trim().parse().unwrap()
    };
    let produce: Vec<&IntervalEntry> = entries
        .iter()
        .filter(|e| e.tag.as_deref() == Some("produce"))
        .collect();
    let total: u64 = produce.iter().map(|e| e.histogram.len()).sum();
    let max = produce.iter().map(|e| e.histogram.max()).max().unwrap();
    assert_eq!(number_after("Total count"), total as f64, "{footer}");
    assert_eq!(number_after("Max"), max as f64, "{footer}");
    std::fs::remove_dir_all(&dir).unwrap();
}
