//! Text for people: numbers and durations, the rate lines of a run's summary, the `get` table,
//! the `describe` text and the progress line of `watch` / `apply --wait`.

use std::fmt::Write as _;

use barrage_crds::agent_status::AgentStatus;
use barrage_crds::duration::HumanDuration;
use barrage_crds::status::{LoadTestStatus, Phase};
use barrage_operator::report::json::SummaryJson;
use barrage_store::StoredLoadTest;
use chrono::{DateTime, Utc};

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Microseconds as a short human latency: `850µs`, `12.3ms`, `1.40s`.
pub fn micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1_000.0)
    } else {
        format!("{:.2}s", us as f64 / 1_000_000.0)
    }
}

/// Seconds as `mm:ss` or `h:mm:ss`.
pub fn clock(secs: u64) -> String {
    if secs >= 3_600 {
        format!("{}:{:02}:{:02}", secs / 3_600, secs / 60 % 60, secs % 60)
    } else {
        format!("{:02}:{:02}", secs / 60, secs % 60)
    }
}

/// The rate lines of a run's summary, from the report's own figures (`report.json`'s
/// `summary`), so that the terminal and the report say the same: the load profile's target
/// rate, the achieved (and consumed) rate per second of load, the load and the span.
pub fn rate_lines(s: &SummaryJson) -> Vec<String> {
    let mut lines = Vec::new();
    let per_load = |n: u64| s.load_secs.filter(|l| *l > 0.0).map(|l| n as f64 / l);
    if let (Some(rate), Some(records)) = (s.target_rate, s.target_records) {
        lines.push(format!(
            "  target rate       {rate:.1} records/s (the profile's {} records over its load)",
            thousands(records)
        ));
    }
    if let Some(rate) = s
        .achieved_rate
        .filter(|_| s.records.acked > 0 || s.target_rate.is_some())
    {
        let of_target = s
            .achieved_ratio
            .map_or(String::new(), |r| format!(", {:.2}% of target", r * 100.0));
        lines.push(format!(
            "  achieved rate     {rate:.1} records/s (acked over the load{of_target})"
        ));
    }
    if let Some(rate) = s.consumed_rate.filter(|_| s.records.consumed > 0) {
        lines.push(format!(
            "  consumed rate     {rate:.1} records/s (consumed over the load)"
        ));
    }
    if let Some(mb) = per_load(s.records.bytes) {
        lines.push(format!(
            "  data rate         {:.2} MB/s over the load",
            mb / 1e6
        ));
    }
    if let Some(load) = s.load_secs {
        lines.push(format!(
            "  load              {load:.1} s (the load profile's duration)"
        ));
    }
    lines.push(format!(
        "  span              {:.1} s (first interval's start to last interval's end, flush included)",
        s.span_secs
    ));
    lines
}

/// One line of live progress.
pub fn progress_line(name: &str, st: &LoadTestStatus, now: DateTime<Utc>) -> String {
    let a = &st.agents;
    let p = &st.progress;
    let since = st
        .phase_since
        .map(|s| format!(" {}s", (now - s).num_seconds().max(0)))
        .unwrap_or_default();
    let mut line = format!(
        "{name}: {}{since}  agents {}/{} ready, {} running",
        st.phase.as_str(),
        a.ready,
        a.desired,
        a.running
    );
    if p.sent > 0 || p.consumed > 0 || st.phase == Phase::Running {
        if p.sent > 0 || p.consumed == 0 {
            line.push_str(&format!(
                "  sent {}  acked {}",
                thousands(p.sent),
                thousands(p.acked)
            ));
        }
        if p.consumed > 0 {
            line.push_str(&format!("  consumed {}", thousands(p.consumed)));
        }
        line.push_str(&format!(
            "  errors {}  {:.0}/s",
            thousands(p.errors),
            p.current_rate
        ));
        if let Some(us) = p.window_p99_us {
            line.push_str(&format!("  p99 {}", micros(us)));
        }
    }
    line
}

pub fn age(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(since) = since else {
        return "-".into();
    };
    let s = (now - since).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// The `get` table (wide adds generation, run, p99 and message).
pub fn table(records: &[StoredLoadTest], wide: bool, now: DateTime<Utc>) -> String {
    let mut rows = vec![{
        let mut h = vec!["NAME", "PHASE", "AGENTS", "SENT", "RATE", "VERDICT", "AGE"];
        if wide {
            h.extend(["GEN", "RUN", "P99", "MESSAGE"]);
        }
        h.into_iter().map(String::from).collect::<Vec<_>>()
    }];
    for r in records {
        let st = r.status.clone().unwrap_or_default();
        let created = r
            .doc
            .as_ref()
            .ok()
            .and_then(|lt| lt.metadata.creation_timestamp);
        let mut row = vec![
            r.name.clone(),
            st.phase.as_str().to_string(),
            format!(
                "{}/{}",
                st.agents.ready.max(st.agents.running),
                st.agents.desired
            ),
            thousands(
                st.summary
                    .as_ref()
                    .map_or(st.progress.sent, |s| s.records_sent),
            ),
            format!(
                "{:.0}/s",
                st.summary
                    .as_ref()
                    .map_or(st.progress.current_rate, |s| s.achieved_rate)
            ),
            st.verdict
                .as_ref()
                .map_or("-".to_string(), |v| format!("{:?}", v.result)),
            age(created.or(st.transitions.first().map(|t| t.at)), now),
        ];
        if wide {
            row.push(format!(
                "{}/{}",
                st.observed_generation.unwrap_or(0),
                r.generation
            ));
            row.push(st.run_id.clone().unwrap_or_else(|| "-".into()));
            row.push(
                st.summary
                    .as_ref()
                    .map(|s| micros(s.produce_p99_us))
                    .or(st.progress.window_p99_us.map(micros))
                    .unwrap_or_else(|| "-".into()),
            );
            let msg = match &r.doc {
                Err(e) => e.to_string(),
                Ok(_) => st.message.clone().unwrap_or_default(),
            };
            row.push(msg.lines().next().unwrap_or("").to_string());
        }
        rows.push(row);
    }
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The `describe` text: the record, its spec, where the run is, its figures, its verdict and
/// reports, then the tables (conditions, slots, agents, transitions).
pub fn describe_text(r: &StoredLoadTest, agents: &[AgentStatus], now: DateTime<Utc>) -> String {
    let mut o = String::new();
    let st = r.status.clone().unwrap_or_default();
    describe_record(&mut o, r, &st, now);
    describe_spec(&mut o, r);
    describe_run(&mut o, &st, now);
    describe_figures(&mut o, &st);
    describe_outcome(&mut o, &st);
    describe_conditions(&mut o, &st, now);
    describe_slots(&mut o, &st);
    describe_agents(&mut o, agents, now);
    describe_transitions(&mut o, &st);
    o
}

fn describe_record(o: &mut String, r: &StoredLoadTest, st: &LoadTestStatus, now: DateTime<Utc>) {
    let _ = writeln!(o, "Name:          {}", r.name);
    let _ = writeln!(
        o,
        "Generation:    {} (observed {})",
        r.generation,
        st.observed_generation.map_or("-".into(), |g| g.to_string())
    );
    if let Some(d) = r.deletion_requested {
        let _ = writeln!(o, "Deletion:      requested {} ago", age(Some(d), now));
    }
    if let Some(e) = &r.status_error {
        let _ = writeln!(
            o,
            "Status:        UNREADABLE, the controller leaves this record alone: {e}. \
             Fix or delete its status item (pk lt#{}, sk status).",
            r.name
        );
    }
}

fn describe_spec(o: &mut String, r: &StoredLoadTest) {
    let lt = match &r.doc {
        Err(e) => {
            let _ = writeln!(o, "Spec:          unreadable: {e}");
            return;
        }
        Ok(lt) => lt,
    };
    let s = &lt.spec;
    let _ = writeln!(
        o,
        "Spec:          {:?} to topic {} at {}",
        s.workload.kind, s.topic.name, s.kafka.bootstrap_servers
    );
    let _ = writeln!(
        o,
        "               {} agent(s), peak {:.0} records/s, {} planned over {}{}",
        s.agents.count,
        s.load.peak_rate(),
        thousands(s.load.expected_records()),
        HumanDuration::from_millis(
            u64::try_from(s.load.total_duration().as_millis()).unwrap_or(u64::MAX)
        ),
        if s.paused { ", paused" } else { "" }
    );
    if !s.thresholds.is_empty() {
        let t: Vec<String> = s.thresholds.iter().map(ToString::to_string).collect();
        let _ = writeln!(o, "Thresholds:    {}", t.join(", "));
    }
}

fn describe_run(o: &mut String, st: &LoadTestStatus, now: DateTime<Utc>) {
    let _ = writeln!(
        o,
        "Phase:         {} (for {})",
        st.phase.as_str(),
        age(st.phase_since, now)
    );
    if let Some(run) = &st.run_id {
        let _ = writeln!(o, "Run:           {run}");
    }
    if let Some(s) = st.start_at {
        let _ = writeln!(o, "Start at:      {}", s.to_rfc3339());
    }
    if let Some(m) = &st.message {
        let _ = writeln!(o, "Message:       {m}");
    }
}

fn describe_figures(o: &mut String, st: &LoadTestStatus) {
    let a = &st.agents;
    let _ = writeln!(
        o,
        "Agents:        desired {}  launched {}  ready {}  running {}  failed {}  replaced {}",
        a.desired, a.launched, a.ready, a.running, a.failed, a.replaced
    );
    let p = &st.progress;
    let _ = writeln!(
        o,
        "Progress:      sent {}  acked {}  consumed {}  errors {}  dropped {}  {:.0}/s{}",
        thousands(p.sent),
        thousands(p.acked),
        thousands(p.consumed),
        thousands(p.errors),
        thousands(p.dropped),
        p.current_rate,
        p.window_p99_us
            .map(|u| format!("  p99 {}", micros(u)))
            .unwrap_or_default()
    );
    if let Some(s) = &st.summary {
        let _ = writeln!(
            o,
            "Summary:       sent {}  acked {}  failed {}  achieved {:.1}/s of {:.1}/s  p50 {}  p99 {}  max {}",
            thousands(s.records_sent),
            thousands(s.records_acked),
            thousands(s.records_failed),
            s.achieved_rate,
            s.target_rate,
            micros(s.produce_p50_us),
            micros(s.produce_p99_us),
            micros(s.produce_max_us)
        );
    }
}

fn describe_outcome(o: &mut String, st: &LoadTestStatus) {
    if let Some(v) = &st.verdict {
        let _ = writeln!(o, "Verdict:       {:?}", v.result);
        for reason in &v.reasons {
            let _ = writeln!(o, "               {reason}");
        }
    }
    let Some(rep) = &st.reports else {
        return;
    };
    for (label, uri) in [
        ("json", &rep.json),
        ("html", &rep.html),
        ("hlog", &rep.hlog),
        ("junit", &rep.junit),
    ] {
        if let Some(u) = uri {
            let _ = writeln!(o, "Report {label:<6} {u}");
        }
    }
}

fn describe_conditions(o: &mut String, st: &LoadTestStatus, now: DateTime<Utc>) {
    if st.conditions.is_empty() {
        return;
    }
    let _ = writeln!(o, "Conditions:");
    for c in &st.conditions {
        let _ = writeln!(
            o,
            "  {:<16} {:<7} {:<22} {:>5}  {}",
            c.type_,
            format!("{:?}", c.status),
            c.reason,
            age(Some(c.last_transition_time), now),
            c.message
        );
    }
}

fn describe_slots(o: &mut String, st: &LoadTestStatus) {
    if st.slots.is_empty() {
        return;
    }
    let _ = writeln!(o, "Slots:");
    let _ = writeln!(o, "  SLOT  INC  STATE        RESTARTS  TASK");
    for s in &st.slots {
        let _ = writeln!(
            o,
            "  {:<5} {:<4} {:<12} {:<9} {}{}",
            s.slot,
            s.incarnation,
            format!("{:?}", s.state),
            s.restarts,
            s.task_id.as_deref().unwrap_or("-"),
            s.last_error
                .as_ref()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default()
        );
    }
}

fn describe_agents(o: &mut String, agents: &[AgentStatus], now: DateTime<Utc>) {
    if agents.is_empty() {
        return;
    }
    let _ = writeln!(o, "Agents of this run:");
    let _ = writeln!(
        o,
        "  SLOT  INC  PHASE       SENT        ACKED       ERRORS   HEARTBEAT"
    );
    for a in agents {
        let _ = writeln!(
            o,
            "  {:<5} {:<4} {:<11} {:<11} {:<11} {:<8} {} ago{}",
            a.slot,
            a.incarnation,
            a.phase.as_str(),
            thousands(a.counters.sent),
            thousands(a.counters.acked),
            thousands(a.counters.errors),
            age(Some(a.heartbeat_at), now),
            a.reason
                .as_ref()
                .map(|r| format!("  ({r})"))
                .unwrap_or_default()
        );
    }
}

fn describe_transitions(o: &mut String, st: &LoadTestStatus) {
    if st.transitions.is_empty() {
        return;
    }
    let _ = writeln!(o, "Transitions:");
    for t in &st.transitions {
        let _ = writeln!(
            o,
            "  {}  {} -> {}  {}",
            t.at.format("%H:%M:%S"),
            t.from.as_str(),
            t.to.as_str(),
            t.reason
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::client::tests::ended;
    use crate::cmd::get::record_value;
    use barrage_crds::loadtest::LoadTest;
    use barrage_crds::status::VerdictResult;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(micros(850), "850µs");
        assert_eq!(micros(12_345), "12.35ms");
        assert_eq!(micros(1_400_000), "1.40s");
        assert_eq!(clock(65), "01:05");
        assert_eq!(clock(3_725), "1:02:05");
    }

    #[test]
    fn describe_says_when_the_stored_status_does_not_decode() {
        let rec = StoredLoadTest {
            name: "demo".into(),
            version: 4,
            generation: 2,
            doc: Ok(LoadTest::example("demo", "127.0.0.1:9092", "t")),
            status: None,
            status_error: Some("the stored status does not decode: unknown variant".into()),
            epoch: 1,
            deletion_requested: None,
        };
        let text = describe_text(&rec, &[], Utc::now());
        assert!(
            text.contains("Status:        UNREADABLE") && text.contains("sk status"),
            "{text}"
        );
    }

    #[test]
    fn the_table_has_a_row_per_record_and_an_unreadable_one_shows_its_error_when_wide() {
        let lt = LoadTest::example("demo", "127.0.0.1:9092", "t");
        let ok = StoredLoadTest {
            name: "demo".into(),
            version: 3,
            generation: 2,
            doc: Ok(lt),
            status: Some(ended(
                Phase::Succeeded,
                "ThresholdsMet",
                Some(VerdictResult::Passed),
            )),
            status_error: None,
            epoch: 1,
            deletion_requested: None,
        };
        let bad = StoredLoadTest {
            name: "broken".into(),
            version: 1,
            generation: 1,
            doc: Err(barrage_store::DocError::Parse(
                barrage_crds::loadtest::ParseError {
                    path: "spec".into(),
                    message: "expected a mapping".into(),
                },
            )),
            status: Some(ended(Phase::Failed, "SpecInvalid", None)),
            status_error: None,
            epoch: 1,
            deletion_requested: None,
        };
        let t = table(&[ok.clone(), bad.clone()], true, Utc::now());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("NAME"));
        assert!(
            lines[1].starts_with("demo")
                && lines[1].contains("Succeeded")
                && lines[1].contains("Passed"),
            "{t}"
        );
        assert!(
            lines[2].contains("Failed") && lines[2].contains("expected a mapping"),
            "{t}"
        );
        let v = record_value(&bad);
        assert_eq!(v["error"], "spec: expected a mapping");
        let d = describe_text(&ok, &[], Utc::now());
        assert!(
            d.contains("Name:          demo") && d.contains("Reporting -> Succeeded"),
            "{d}"
        );
    }
}
