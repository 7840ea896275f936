//! Logging set-up: the format (`--log-format`, `BARRAGE_LOG_FORMAT`) and the subscriber.

use std::io::IsTerminal;

use barrage_crds::env::{LogFormat, LogFormatError};
use tracing_subscriber::EnvFilter;

/// The variable that chooses the log format (`--log-format` wins over it).
pub const BARRAGE_LOG_FORMAT: &str = "BARRAGE_LOG_FORMAT";

/// `json`, `text` or `compact` (the same as text), for clap.
pub fn parse_log_format(s: &str) -> Result<LogFormat, LogFormatError> {
    s.trim().parse::<LogFormat>()
}

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
}
