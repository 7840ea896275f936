//! Pure maps the shell consults: the error policy (what to do when an effect fails, with the
//! shared [`Backoff`] jittered from a seed), and the deterministic names it writes (run id, RunTask client token).

use std::time::Duration;

use barrage_crds::backoff::Backoff;
use chrono::{DateTime, Utc};

use super::LEASE_RETRY;

/// What went wrong in the shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The record is not a valid LoadTest.
    SpecInvalid,
    /// AWS throttled us (or a quota was hit).
    Throttled,
    /// A conditional write lost: someone else wrote the record first.
    Conflict,
    /// A network error, a 5xx, a timeout.
    Transient,
    /// This controller is not (or no longer) the leader.
    LeaseLost,
}

/// What to do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Terminal: the record is Failed; only a new change brings it back.
    Never,
    /// Re-read and re-plan now.
    Immediately,
    /// Requeue after this long.
    After(Duration),
}

/// The error policy. `attempt` counts consecutive failures of this LoadTest (0 for the first);
/// `seed` makes the jitter reproducible (the shell passes e.g. a hash of name and attempt).
pub fn error_policy(failure: Failure, attempt: u32, seed: u64) -> Retry {
    match failure {
        Failure::SpecInvalid => Retry::Never,
        Failure::Conflict => Retry::Immediately,
        Failure::Throttled => Retry::After(THROTTLED_BACKOFF.delay(attempt, seed)),
        Failure::Transient => Retry::After(TRANSIENT_BACKOFF.delay(attempt, seed)),
        Failure::LeaseLost => Retry::After(LEASE_RETRY),
    }
}

/// After throttling: 1 s doubling to 60 s, jittered.
pub const THROTTLED_BACKOFF: Backoff =
    Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
/// After a transient failure: 500 ms doubling to 30 s, jittered.
pub const TRANSIENT_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(500), Duration::from_secs(30));

fn fnv1a(s: &str) -> u64 {
    barrage_crds::digest::fnv1a(s.as_bytes())
}

/// Longest run id: ECS `startedBy` takes at most 36 characters.
pub const MAX_RUN_ID: usize = 36;

/// The run id: `{name}-{generation}-{unix seconds in base 36}`, at most 36 characters of
/// `[a-z0-9-]`. A name too long to fit is cut and followed by a hash of the whole name, so two
/// long names with one prefix still differ.
pub fn run_id(name: &str, generation: i64, at: DateTime<Utc>) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let suffix = format!(
        "-{}-{}",
        generation.max(0),
        base36(u64::try_from(at.timestamp()).unwrap_or(0))
    );
    let room = MAX_RUN_ID.saturating_sub(suffix.len());
    let id = if clean.len() <= room {
        format!("{clean}{suffix}")
    } else {
        let hash = format!("{:06x}", fnv1a(name) & 0xff_ffff);
        let keep = room.saturating_sub(hash.len() + 1);
        let head = clean[..keep].trim_end_matches('-');
        if head.is_empty() {
            format!("{hash}{suffix}")
        } else {
            format!("{head}-{hash}{suffix}")
        }
    };
    id.chars().take(MAX_RUN_ID).collect()
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Longest RunTask client token ECS accepts.
pub const MAX_CLIENT_TOKEN: usize = 64;

/// The RunTask client token of one launch: `{runId}-{slot}-{incarnation}-{attempt}`, so a
/// retried call of the same launch is idempotent and a new attempt is a new launch.
pub fn client_token(run_id: &str, slot: u32, incarnation: u32, attempt: u32) -> String {
    let token = format!("{run_id}-{slot}-{incarnation}-{attempt}");
    if token.len() <= MAX_CLIENT_TOKEN {
        token
    } else {
        format!("{:016x}-{slot}-{incarnation}-{attempt}", fnv1a(run_id))
    }
}
