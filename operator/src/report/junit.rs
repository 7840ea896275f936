//! `junit.xml`: one test case per threshold (failure message with the observed value), plus
//! one for the validity of the measurement, so CI systems show what held and what did not.
//! The suite's `time` is the report's span; its properties carry the summary's rates and
//! times under their `report.json` names.

use std::fmt::Write as _;

use super::json::Report;

/// Escapes text for XML and HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// The suite's properties: run id, verdict, and the summary's rates and times under their
/// `report.json` names (those that are known).
fn properties(report: &Report) -> String {
    let s = &report.summary;
    let number = |v: f64| v.to_string();
    let props: Vec<(&str, Option<String>)> = vec![
        ("runId", report.run_id.clone()),
        ("verdict", Some(report.verdict.result.clone())),
        ("targetRecords", s.target_records.map(|t| t.to_string())),
        ("targetRate", s.target_rate.map(number)),
        ("achievedRate", s.achieved_rate.map(number)),
        ("achievedRatio", s.achieved_ratio.map(number)),
        ("loadSecs", s.load_secs.map(number)),
        ("spanSecs", Some(number(s.span_secs))),
        ("warmupSecs", s.warmup.as_ref().map(|w| number(w.secs))),
    ];
    let mut x = String::from("    <properties>");
    for (name, value) in props {
        if let Some(v) = value {
            let _ = write!(x, "<property name=\"{name}\" value=\"{}\"/>", escape(&v));
        }
    }
    x.push_str("</properties>\n");
    x
}

/// Renders `junit.xml`.
pub fn render(report: &Report) -> String {
    let suite = format!(
        "barrage.{}",
        report.load_test.as_deref().unwrap_or("report")
    );
    let validity_failure = match report.verdict.result.as_str() {
        "Invalid" | "Incomplete" => Some(report.verdict.reasons.join("\n")),
        _ => None,
    };
    let failures = report.thresholds.iter().filter(|t| !t.passed).count()
        + usize::from(validity_failure.is_some());
    let tests = report.thresholds.len() + 1;
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"barrage\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">"
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\" timestamp=\"{}\">",
        escape(&suite),
        report.summary.span_secs,
        escape(report.summary.start_time.trim_end_matches('Z'))
    );
    x.push_str(&properties(report));
    for t in &report.thresholds {
        let _ = write!(
            x,
            "    <testcase classname=\"{}.thresholds\" name=\"{}\" time=\"0\"",
            escape(&suite),
            escape(&t.threshold)
        );
        match t.first_failure() {
            None => {
                let observed = t
                    .run
                    .as_ref()
                    .map_or(String::new(), |c| c.observed_display.clone());
                let _ = writeln!(
                    x,
                    "><system-out>observed {} over the run</system-out></testcase>",
                    escape(&observed)
                );
            }
            Some(c) => {
                let all: Vec<String> = t
                    .run
                    .iter()
                    .chain(t.windows.iter())
                    .filter(|c| !c.passed)
                    .map(|c| format!("{}: observed {}", c.scope, c.observed_display))
                    .collect();
                let _ = writeln!(
                    x,
                    ">\n      <failure message=\"{} (observed {} over the {})\" type=\"ThresholdFailed\">{}</failure>\n    </testcase>",
                    escape(&t.threshold),
                    escape(&c.observed_display),
                    escape(&c.scope),
                    escape(&all.join("\n"))
                );
            }
        }
    }
    let _ = write!(
        x,
        "    <testcase classname=\"{}\" name=\"measurement is valid and complete\" time=\"0\"",
        escape(&suite)
    );
    match validity_failure {
        None => x.push_str("/>\n"),
        Some(reasons) => {
            let _ = writeln!(
                x,
                ">\n      <failure message=\"verdict {}\" type=\"{}\">{}</failure>\n    </testcase>",
                escape(&report.verdict.result),
                escape(&report.verdict.result),
                escape(&reasons)
            );
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}
