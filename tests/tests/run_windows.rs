//! `barrage run` with `spec.report.window`: rolling window report sets are written into the
//! run's folder while the run continues, one stdout line per window, and the windows plus the
//! tail after the last full window add up to the run's report.

use std::time::Duration;

use barrage_system_tests::spec::Spec;
use barrage_system_tests::{barrage, kafka, temp_file, unique};

const RUN_SECS: u64 = 20;
const WINDOW_SECS: u64 = 5;
const RATE: u64 = 500;

fn small(n: u64) -> u32 {
    u32::try_from(n).expect("a small constant")
}

fn spec(topic: &str, bootstrap: &str) -> String {
    Spec::new("run-windows", topic, bootstrap)
        .partitions(3)
        .delete_if_created()
        .agents(2)
        .rate(small(RATE))
        .secs(small(RUN_SECS))
        .window(small(WINDOW_SECS))
        .threshold("errors.ratio < 1%")
        .yaml()
}

fn json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

#[test]
fn barrage_run_writes_each_window_report_while_the_run_continues() {
    let Some(bootstrap) = kafka() else { return };
    let topic = unique("barrage-it-run-windows");
    let file = temp_file("run-windows.yaml", &spec(&topic, &bootstrap));
    let out_dir = file.with_file_name("out");
    let out = barrage(
        &[
            "run",
            file.to_str().expect("utf-8 path"),
            "--out",
            out_dir.to_str().expect("utf-8 path"),
        ],
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "barrage run failed:\n{stdout}\n{stderr}"
    );

    let windows = RUN_SECS / WINDOW_SECS;
    let mut window_acked = 0;
    for w in 0..windows {
        let dir = out_dir.join("windows").join(format!("{w:05}"));
        for f in ["report.json", "report.html", "merged.hlog", "junit.xml"] {
            assert!(dir.join(f).is_file(), "{} exists", dir.join(f).display());
        }
        let report = json(&dir.join("report.json"));
        let acked = report["summary"]["records"]["acked"]
            .as_u64()
            .expect("window acked count");
        assert!(acked > 0, "window {w} acked records: {report}");
        window_acked += acked;
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("Window {w:05} (")))
            .unwrap_or_else(|| panic!("a stdout line for window {w}:\n{stdout}"));
        assert!(line.contains("records acked"), "{line}");
        assert!(line.contains("produce p99"), "{line}");
        assert!(line.contains("Passed"), "{line}");
    }
    assert!(
        !out_dir
            .join("windows")
            .join(format!("{windows:05}"))
            .exists(),
        "no window past the run"
    );

    let report = json(&out_dir.join("report.json"));
    let total = report["summary"]["records"]["acked"]
        .as_u64()
        .expect("run acked count");
    let tail: u64 = report["intervals"]
        .as_array()
        .expect("intervals")
        .iter()
        .filter(|i| i["index"].as_u64().expect("index") >= windows * WINDOW_SECS)
        .map(|i| i["records"]["acked"].as_u64().expect("acked"))
        .sum();
    println!(
        "run windows: windows {window_acked} + tail {tail} = {}; run report {total}; planned {}",
        window_acked + tail,
        RATE * RUN_SECS
    );
    assert_eq!(
        window_acked + tail,
        total,
        "windows add up to the run's report"
    );
    assert_eq!(total, RATE * RUN_SECS, "every planned record acked");

    // Written while the run continued: the first window well before the run's report.
    let modified = |p: std::path::PathBuf| {
        std::fs::metadata(&p)
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let first = modified(out_dir.join("windows/00000/report.json"));
    let last = modified(out_dir.join("report.json"));
    let ahead = last.duration_since(first).unwrap_or_default();
    println!(
        "run windows: window 0 written {:.1}s before the run's report",
        ahead.as_secs_f64()
    );
    assert!(
        ahead >= Duration::from_secs(10),
        "window 0 was written while the run continued ({ahead:?} before the end)"
    );
}
