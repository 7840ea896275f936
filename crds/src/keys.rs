//! The blob key scheme: where interval histograms and reports live in the blob store.
//!
//! Keys are relative to the configured prefix (`BARRAGE_BLOBS`, e.g. `s3://bucket/prefix` or a
//! local folder); both binaries build them only through this module:
//! ```text
//! runs/{load_test}/{run_id}/agents/{slot:04}-{incarnation:02}/{interval:06}.hlog
//! runs/{load_test}/{run_id}/report/{report.json|report.html|merged.hlog|junit.xml}
//! runs/{load_test}/{run_id}/windows/{window:05}/report.json
//! ```
//! An interval blob holds one interval of one agent incarnation (an interval log with one line
//! per tag) and is written once: a retried upload writes the same key, so it can never count
//! twice. The fixed-width numbers make a listing sort in time order.
//!
//! This module also owns the rules for the names that appear in keys and item keys
//! ([`is_valid_load_test_name`], [`is_valid_run_id`]): no `/` or `#`, so keys parse back.

use std::fmt;

/// Largest slot a key can carry (4 digits).
pub const MAX_SLOT: u32 = 9_999;
/// Largest incarnation a key can carry (2 digits).
pub const MAX_INCARNATION: u32 = 99;
/// Largest interval index a key can carry (6 digits: 115 days of 10 s intervals).
pub const MAX_INTERVAL: u32 = 999_999;
/// Largest window index a key can carry (5 digits).
pub const MAX_WINDOW: u32 = 99_999;

/// The first path segment of every key.
pub const RUNS_DIR: &str = "runs";

/// Whether `name` can be a LoadTest name in keys: a DNS-1123 subdomain, i.e. 1 to 253
/// characters of `a-z`, `0-9`, `-` and `.`, starting and ending with a letter or digit.
pub fn is_valid_load_test_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=253).contains(&name.len())
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
        && name.starts_with(alnum)
        && name.ends_with(alnum)
}

/// The rule [`is_valid_load_test_name`] checks, for error messages.
pub const LOAD_TEST_NAME_RULE: &str = "must be 1 to 253 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or digit";

/// Whether `run_id` can be a run id in keys: 1 to 64 characters of `A-Z`, `a-z`, `0-9`, `-` and
/// `_`.
pub fn is_valid_run_id(run_id: &str) -> bool {
    (1..=64).contains(&run_id.len())
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The rule [`is_valid_run_id`] checks, for error messages.
pub const RUN_ID_RULE: &str = "must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'";

/// `runs/{load_test}/{run_id}/`: everything one run wrote.
pub fn run_prefix(load_test: &str, run_id: &str) -> String {
    format!("{RUNS_DIR}/{load_test}/{run_id}/")
}

/// `runs/{load_test}/{run_id}/agents/`: every interval blob of one run (list it to merge).
pub fn agents_prefix(load_test: &str, run_id: &str) -> String {
    format!("{}agents/", run_prefix(load_test, run_id))
}

/// `runs/{load_test}/{run_id}/agents/{slot:04}-{incarnation:02}/`: the interval blobs of one
/// agent incarnation.
pub fn agent_prefix(load_test: &str, run_id: &str, slot: u32, incarnation: u32) -> String {
    format!(
        "{}{slot:04}-{incarnation:02}/",
        agents_prefix(load_test, run_id)
    )
}

/// The key of one interval blob of one agent incarnation.
///
/// `interval` is the 0-based index of the reporting interval counted from the run's `startAt`,
/// so the same index means the same wall-clock interval on every agent. Numbers above
/// [`MAX_SLOT`], [`MAX_INCARNATION`] or [`MAX_INTERVAL`] give keys that
/// [`parse_interval_key`] refuses.
pub fn interval_key(
    load_test: &str,
    run_id: &str,
    slot: u32,
    incarnation: u32,
    interval: u32,
) -> String {
    format!(
        "{}{interval:06}.hlog",
        agent_prefix(load_test, run_id, slot, incarnation)
    )
}

/// Key prefixes that, appended to an [`agent_prefix`], select exactly the interval blobs of
/// the intervals in `range` and no other: the six-digit interval numbers grouped into decimal
/// blocks (`00036` stands for intervals 360–369, `000365` for 365 alone). Listing them reads a
/// soak window's keys without listing the whole run. Indexes past [`MAX_INTERVAL`] are left
/// out.
pub fn interval_prefixes(range: std::ops::Range<u32>) -> Vec<String> {
    const WIDTH: u32 = 6;
    let end = u64::from(range.end).min(u64::from(MAX_INTERVAL) + 1);
    let mut at = u64::from(range.start);
    let mut out = Vec::new();
    while at < end {
        // The largest decimal block that starts at `at` and ends within the range.
        let mut digits = 0;
        while digits < WIDTH {
            let block = 10_u64.pow(digits + 1);
            if at % block != 0 || at + block > end {
                break;
            }
            digits += 1;
        }
        let number = format!("{at:06}");
        let keep = number.len() - digits as usize;
        out.push(number[..keep].to_string());
        at += 10_u64.pow(digits);
    }
    out
}

/// The parts of an interval blob key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntervalKey {
    /// The LoadTest's name.
    pub load_test: String,
    /// The run id.
    pub run_id: String,
    /// The agent's slot (0-based).
    pub slot: u32,
    /// The agent incarnation in that slot (0 for the first launch).
    pub incarnation: u32,
    /// The interval index from the run's start (0-based).
    pub interval: u32,
}

impl IntervalKey {
    /// The key string, as [`interval_key`] builds it.
    pub fn to_key(&self) -> String {
        interval_key(
            &self.load_test,
            &self.run_id,
            self.slot,
            self.incarnation,
            self.interval,
        )
    }
}

impl fmt::Display for IntervalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_key())
    }
}

/// Exactly `width` ASCII digits, as a number.
fn fixed_digits(s: &str, width: usize) -> Option<u32> {
    if s.len() == width && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Parses an interval blob key (relative to the prefix). Only canonical keys parse: valid
/// names and exactly 4, 2 and 6 digits, so `parse_interval_key(&k.to_key()) == Some(k)` and
/// anything else in the bucket is ignored.
pub fn parse_interval_key(key: &str) -> Option<IntervalKey> {
    let mut parts = key.split('/');
    let (runs, load_test, run_id, agents, agent, file) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if parts.next().is_some() || runs != RUNS_DIR || agents != "agents" {
        return None;
    }
    if !is_valid_load_test_name(load_test) || !is_valid_run_id(run_id) {
        return None;
    }
    let (slot, incarnation) = agent.split_once('-')?;
    let interval = file.strip_suffix(".hlog")?;
    Some(IntervalKey {
        load_test: load_test.to_string(),
        run_id: run_id.to_string(),
        slot: fixed_digits(slot, 4)?,
        incarnation: fixed_digits(incarnation, 2)?,
        interval: fixed_digits(interval, 6)?,
    })
}

/// One file of a run's report set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReportFile {
    /// `report.json`: the machine-readable report.
    Json,
    /// `report.html`: the self-contained report that opens offline.
    Html,
    /// `merged.hlog`: every agent's intervals merged, per tag, as an interval log.
    MergedHlog,
    /// `junit.xml`: thresholds as test cases, for CI.
    Junit,
}

impl ReportFile {
    /// Every report file.
    pub const ALL: [ReportFile; 4] = [
        ReportFile::Json,
        ReportFile::Html,
        ReportFile::MergedHlog,
        ReportFile::Junit,
    ];

    /// The file name under `report/`.
    pub fn file_name(self) -> &'static str {
        match self {
            ReportFile::Json => "report.json",
            ReportFile::Html => "report.html",
            ReportFile::MergedHlog => "merged.hlog",
            ReportFile::Junit => "junit.xml",
        }
    }

    /// The `Content-Type` to store the file with.
    pub fn content_type(self) -> &'static str {
        match self {
            ReportFile::Json => "application/json",
            ReportFile::Html => "text/html; charset=utf-8",
            ReportFile::MergedHlog => "text/plain; charset=utf-8",
            ReportFile::Junit => "application/xml",
        }
    }

    /// The report file with this name, if any.
    pub fn from_file_name(name: &str) -> Option<ReportFile> {
        ReportFile::ALL.into_iter().find(|f| f.file_name() == name)
    }
}

/// `runs/{load_test}/{run_id}/report/{file}`.
pub fn report_key(load_test: &str, run_id: &str, file: ReportFile) -> String {
    format!(
        "{}report/{}",
        run_prefix(load_test, run_id),
        file.file_name()
    )
}

/// `runs/{load_test}/{run_id}/windows/{window:05}/report.json`: the report of one rolling
/// window of a soak (0-based window index from the run's start).
pub fn window_report_key(load_test: &str, run_id: &str, window: u32) -> String {
    format!(
        "{}windows/{window:05}/report.json",
        run_prefix(load_test, run_id)
    )
}

/// The window index of a canonical window report key.
pub fn parse_window_report_key(key: &str) -> Option<(String, String, u32)> {
    let rest = key.strip_prefix(RUNS_DIR)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let (load_test, run_id, windows, window, file) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if parts.next().is_some() || windows != "windows" || file != "report.json" {
        return None;
    }
    if !is_valid_load_test_name(load_test) || !is_valid_run_id(run_id) {
        return None;
    }
    Some((
        load_test.to_string(),
        run_id.to_string(),
        fixed_digits(window, 5)?,
    ))
}

/// Joins a store prefix (possibly empty, with or without a trailing `/`) and a relative key.
pub fn join_prefix(prefix: &str, key: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}/{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_keys_follow_the_scheme() {
        assert_eq!(
            interval_key("orders-soak", "r20241125-2040", 3, 1, 42),
            "runs/orders-soak/r20241125-2040/agents/0003-01/000042.hlog"
        );
        assert_eq!(
            report_key("orders-soak", "r1", ReportFile::MergedHlog),
            "runs/orders-soak/r1/report/merged.hlog"
        );
        assert_eq!(
            window_report_key("orders-soak", "r1", 7),
            "runs/orders-soak/r1/windows/00007/report.json"
        );
        assert_eq!(agents_prefix("a", "r"), "runs/a/r/agents/");
        assert!(interval_key("a", "r", 0, 0, 0).starts_with(&agents_prefix("a", "r")));
    }

    #[test]
    fn names_with_separators_are_not_valid() {
        for bad in ["", "a/b", "a#b", "A", "-a", "a-", "a b", &"a".repeat(254)] {
            assert!(!is_valid_load_test_name(bad), "{bad:?}");
        }
        for good in ["a", "orders-soak", "v1.2.3", &"a".repeat(253)] {
            assert!(is_valid_load_test_name(good), "{good:?}");
        }
        for bad in ["", "a/b", "a#b", "a.b", "a b", &"r".repeat(65)] {
            assert!(!is_valid_run_id(bad), "{bad:?}");
        }
        for good in ["r1", "20241125T2040Z-ab12", "A_b-9"] {
            assert!(is_valid_run_id(good), "{good:?}");
        }
    }

    #[test]
    fn join_prefix_handles_empty_and_trailing_slashes() {
        assert_eq!(join_prefix("", "runs/a"), "runs/a");
        assert_eq!(join_prefix("p", "runs/a"), "p/runs/a");
        assert_eq!(join_prefix("p/q/", "runs/a"), "p/q/runs/a");
    }
}
