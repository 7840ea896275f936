//! `barrage run` on a constant step, a ramp and a staircase: every histogram object of
//! `report.json` agrees with `merged.hlog` and the agents' interval logs (mean, min, max,
//! count), and the rates mean what they say: the target rate is the profile's own mean rate,
//! the achieved rate is acked records over the load's duration, and the span (which includes
//! the flush interval) is reported apart; the CLI summary and `junit.xml` say the same.

use std::time::Duration;

use barrage_system_tests::report_walk::check_report_histograms;
use barrage_system_tests::spec::{Spec, Step};
use barrage_system_tests::{barrage, kafka, temp_file, unique};
use serde_json::Value;

/// 400/s for 2 s, 400→800/s over 2 s, then stairs of 200, 400 and 600/s of 1 s each:
/// 800 + 1200 + 1200 = 3200 records over 7 s.
const LOAD: [Step; 3] = [
    Step::Constant { rate: 400, secs: 2 },
    Step::Ramp {
        from: 400,
        to: 800,
        secs: 2,
    },
    Step::Staircase {
        start: 200,
        step: 200,
        every_secs: 1,
        until: 600,
    },
];
const LOAD_SECS: f64 = 7.0;
const TARGET_RECORDS: u64 = 3_200;

fn spec(topic: &str, bootstrap: &str) -> String {
    Spec::new("run-report", topic, bootstrap)
        .partitions(3)
        .delete_if_created()
        .steps(LOAD)
        .agents(2)
        .window(2)
        .threshold("errors.ratio < 1%")
        .yaml()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The first number on the summary line that starts with `label`.
fn cli_number(stdout: &str, label: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{stdout}"))
}

fn junit_property(junit: &str, name: &str) -> f64 {
    let marker = format!("<property name=\"{name}\" value=\"");
    junit
        .split_once(&marker)
        .and_then(|(_, rest)| rest.split_once('"'))
        .and_then(|(v, _)| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} property in:\n{junit}"))
}

#[test]
fn a_ramp_and_a_staircase_report_the_profiles_rate_the_achieved_rate_and_the_span_apart_and_every_histogram_matches_its_logs()
 {
    let Some(bootstrap) = kafka() else { return };
    let topic = unique("barrage-it-run-report");
    let file = temp_file("run-report.yaml", &spec(&topic, &bootstrap));
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
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "barrage run failed:\n{stdout}\n{stderr}"
    );

    let checked = check_report_histograms(&out_dir);
    println!("run report: {checked} histogram objects agree with merged.hlog and the agents' logs");

    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("report.json")).expect("report.json"),
    )
    .expect("report.json is JSON");
    let s = &report["summary"];
    let acked = s["records"]["acked"].as_u64().expect("acked");
    let span = s["spanSecs"].as_f64().expect("spanSecs");
    let intervals = report["coverage"]["intervals"].as_f64().expect("intervals");
    println!("run report summary: {s}");
    assert_eq!(s["loadSecs"].as_f64(), Some(LOAD_SECS), "{s}");
    assert_eq!(s["targetRecords"].as_u64(), Some(TARGET_RECORDS), "{s}");
    assert_eq!(
        s["targetRate"].as_f64(),
        Some(round3(TARGET_RECORDS as f64 / LOAD_SECS)),
        "the profile's own mean rate: {s}"
    );
    assert_eq!(
        s["achievedRate"].as_f64(),
        Some(round3(acked as f64 / LOAD_SECS)),
        "acked records over the load's duration: {s}"
    );
    assert_eq!(
        span,
        intervals * s["intervalSecs"].as_f64().expect("interval")
    );
    assert!(span >= LOAD_SECS, "the span holds the load: {s}");
    assert!(acked >= TARGET_RECORDS * 99 / 100, "{s}");

    // The CLI summary prints the same figures (to one decimal).
    for (label, key) in [
        ("target rate", "targetRate"),
        ("achieved rate", "achievedRate"),
        ("load", "loadSecs"),
        ("span", "spanSecs"),
    ] {
        let json = s[key].as_f64().expect(key);
        let cli = cli_number(&stdout, label);
        assert!(
            (cli - json).abs() <= 0.05,
            "CLI {label} {cli}, report.json {key} {json}"
        );
    }
    // And junit.xml carries them as suite properties.
    let junit = std::fs::read_to_string(out_dir.join("junit.xml")).expect("junit.xml");
    for key in ["targetRate", "achievedRate", "loadSecs", "spanSecs"] {
        assert_eq!(
            Some(junit_property(&junit, key)),
            s[key].as_f64(),
            "junit {key}"
        );
    }
}
