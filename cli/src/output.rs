//! Terminal output: logging set-up, human formatting of numbers and durations, and the rate
//! lines of a run's summary.

use std::io::IsTerminal;

use barrage_crds::env::LogFormat;
use tracing_subscriber::EnvFilter;

use barrage_operator::report::json::SummaryJson;

/// The variable that chooses the log format (`--log-format` wins over it).
pub const BARRAGE_LOG_FORMAT: &str = "BARRAGE_LOG_FORMAT";

/// The log format: the one given (`--log-format` or `BARRAGE_LOG_FORMAT`), otherwise JSON for
/// the long-running service (`barrage controller`) when stderr is not a terminal (ECS,
/// CloudWatch, a log file), and text in every other case: the other commands' stderr is read
/// by people (progress lines, `error:` lines), terminal or CI log alike.
pub fn log_format(given: Option<LogFormat>, service: bool, stderr_is_terminal: bool) -> LogFormat {
    given.unwrap_or(if service && !stderr_is_terminal {
        LogFormat::Json
    } else {
        LogFormat::Compact
    })
}

/// Logs go to stderr in `format`, filtered by `RUST_LOG`. librdkafka's own chatter is off
/// unless asked for: the CLI reports connection problems itself, once, clearly.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("warn,barrage=info,barrage_operator=info,barrage_kafka=info,barrage_agent=info,barrage_store=info,rdkafka=off,librdkafka=off")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Compact => builder
            .compact()
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_logs_json_off_a_terminal_and_a_given_format_always_wins() {
        assert_eq!(log_format(None, true, false), LogFormat::Json);
        assert_eq!(log_format(None, true, true), LogFormat::Compact);
        assert_eq!(log_format(None, false, false), LogFormat::Compact);
        assert_eq!(
            log_format(Some(LogFormat::Json), false, true),
            LogFormat::Json
        );
        assert_eq!(
            log_format(Some(LogFormat::Compact), true, false),
            LogFormat::Compact
        );
    }

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
}
