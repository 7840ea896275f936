//! Terminal output: logging set-up, human formatting of numbers and durations.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Logs go to stderr: compact on a terminal, JSON otherwise (ECS, CI), filtered by `RUST_LOG`.
/// librdkafka's own chatter is off unless asked for: the CLI reports connection problems
/// itself, once, clearly.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("warn,barrage_controller=info,barrage_agent=info,barrage_store=info,rdkafka=off,librdkafka=off")
    });
    let json = std::env::var("BARRAGE_LOG_FORMAT")
        .map(|f| f == "json")
        .unwrap_or(false);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder
            .compact()
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
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

#[cfg(test)]
mod tests {
    use super::*;

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
