//! What the client commands share: the store and the blobs named by `BARRAGE_STORE` and
//! `BARRAGE_BLOBS`, following a run until it ends, and the exit outcome of a finished run.
//! Exit codes are the CLI's: 0 passed, 1 thresholds failed, 2 invalid input, 3 run error or
//! timeout. These commands format and wait; they decide nothing about runs.

use crate::Outcome;
use barrage_crds::duration::HumanDuration;
use barrage_crds::env::{BlobsUrl, StoreUrl};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::status::{LoadTestStatus, Phase, VerdictResult};
use barrage_operator::runtime::config::{self as cfgvars};
use barrage_store::{Blobs, Store, StoreError};
use chrono::Utc;
use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::format::{micros, progress_line, thousands};

pub const HINT: &str = "set BARRAGE_STORE and BARRAGE_BLOBS, e.g. dynamodb://barrage and s3://barrage-reports \
                    (locally: scripts/local-operator.sh up && eval \"$(scripts/local-operator.sh env)\")";

pub fn die(outcome: Outcome, message: impl std::fmt::Display) -> Outcome {
    eprintln!("error: {message}");
    outcome
}

pub fn store_outcome(e: &StoreError) -> Outcome {
    match e {
        StoreError::Missing(_) => Outcome::RunError,
        _ => Outcome::RunError,
    }
}

/// The URL in the environment variable `name` (`BARRAGE_STORE`, `BARRAGE_BLOBS`).
pub fn url_from_env<T>(name: &str) -> Result<T, Outcome>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let Some(text) = std::env::var(name).ok().filter(|s| !s.trim().is_empty()) else {
        return Err(die(
            Outcome::InvalidInput,
            format!("{name} is not set: {HINT}"),
        ));
    };
    text.trim()
        .parse::<T>()
        .map_err(|e| die(Outcome::InvalidInput, format!("{name}: {e}")))
}

/// The store of `BARRAGE_STORE`.
pub async fn client_store() -> Result<Arc<dyn Store>, Outcome> {
    let url: StoreUrl = url_from_env(cfgvars::BARRAGE_STORE)?;
    if matches!(url, StoreUrl::Memory) {
        return Err(die(
            Outcome::InvalidInput,
            "BARRAGE_STORE=memory: lives inside one process; the CLI needs a shared store (dynamodb://TABLE)",
        ));
    }
    barrage_store::open_store(&url)
        .await
        .map_err(|e| die(Outcome::InvalidInput, e))
}

/// The blobs of `BARRAGE_BLOBS`.
pub async fn client_blobs() -> Result<Arc<dyn Blobs>, Outcome> {
    let url: BlobsUrl = url_from_env(cfgvars::BARRAGE_BLOBS)?;
    barrage_store::open_blobs(&url)
        .await
        .map_err(|e| die(Outcome::InvalidInput, e))
}

/// The exit outcome of a finished run.
pub fn outcome_of(status: &LoadTestStatus) -> Outcome {
    let reason = status
        .transitions
        .last()
        .map(|t| t.reason.as_str())
        .unwrap_or("");
    match status.phase {
        Phase::Succeeded => match status.verdict.as_ref().map(|v| v.result) {
            Some(VerdictResult::Passed) | None => Outcome::Passed,
            Some(VerdictResult::Failed) => Outcome::ThresholdsFailed,
            Some(_) => Outcome::RunError,
        },
        Phase::Failed => {
            let spec_invalid = status
                .condition(barrage_crds::names::ConditionType::SpecInvalid)
                .is_some_and(|c| c.status == barrage_crds::status::ConditionStatus::True);
            if spec_invalid || reason == "SpecInvalid" {
                Outcome::InvalidInput
            } else if reason == "ThresholdsFailed"
                || status.verdict.as_ref().map(|v| v.result) == Some(VerdictResult::Failed)
            {
                Outcome::ThresholdsFailed
            } else {
                Outcome::RunError
            }
        }
        _ => Outcome::RunError,
    }
}

/// How long `--wait` waits by default: the longest the run may take, plus a minute.
pub fn default_wait(lt: &LoadTest) -> Duration {
    let t = &lt.spec.timeouts;
    [
        t.provisioning.as_std(),
        t.ready.as_std(),
        lt.spec.load.effective_max_duration(),
        t.draining.as_std(),
        t.reporting.as_std(),
        Duration::from_secs(60),
    ]
    .into_iter()
    .fold(Duration::ZERO, Duration::saturating_add)
}

pub fn parse_timeout(text: &str) -> Result<Duration, Outcome> {
    HumanDuration::parse(text)
        .map(|d| d.as_std())
        .map_err(|e| die(Outcome::InvalidInput, format!("--timeout: {e}")))
}

/// Follows `name` until its status is terminal (and has observed `generation`), printing
/// progress; the terminal status, or None on timeout / vanished record.
pub async fn follow(
    store: &dyn Store,
    name: &str,
    generation: Option<i64>,
    limit: Duration,
) -> Result<LoadTestStatus, Outcome> {
    let deadline = Instant::now() + limit;
    let tty = std::io::stderr().is_terminal();
    let mut last_line = String::new();
    let mut last_print = Instant::now();
    let mut last_phase = None;
    loop {
        let rec = match store.get_load_test(name).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                if tty {
                    eprintln!();
                }
                return Err(die(
                    Outcome::RunError,
                    format!("loadtest/{name} no longer exists"),
                ));
            }
            Err(e) => {
                if e.is_retryable() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                return Err(die(store_outcome(&e), e));
            }
        };
        let st = rec.status.clone().unwrap_or_default();
        let current = generation.is_none_or(|g| st.observed_generation.unwrap_or(0) >= g);
        let line = progress_line(name, &st, Utc::now());
        if tty {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else if line != last_line
            && (last_phase != Some(st.phase) || last_print.elapsed() >= Duration::from_secs(5))
        {
            eprintln!("{line}");
            last_print = Instant::now();
        }
        last_line = line;
        last_phase = Some(st.phase);
        if current && st.phase.is_terminal() {
            if tty {
                eprintln!();
            }
            return Ok(st);
        }
        if Instant::now() >= deadline {
            if tty {
                eprintln!();
            }
            return Err(die(
                Outcome::RunError,
                format!(
                    "timed out after {} waiting for loadtest/{name} (phase {}); it goes on in the controller",
                    HumanDuration::from_millis(
                        u64::try_from(limit.as_millis()).unwrap_or(u64::MAX)
                    ),
                    st.phase.as_str()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Prints how a run ended and returns its exit outcome.
pub fn finish(name: &str, st: &LoadTestStatus) -> Outcome {
    println!("loadtest/{name} {}", st.phase.as_str());
    if let Some(m) = &st.message {
        println!("  {m}");
    }
    if let Some(s) = &st.summary {
        println!(
            "  records sent {}  acked {}  failed {}  achieved {:.1}/s of {:.1}/s  p50 {}  p99 {}",
            thousands(s.records_sent),
            thousands(s.records_acked),
            thousands(s.records_failed),
            s.achieved_rate,
            s.target_rate,
            micros(s.produce_p50_us),
            micros(s.produce_p99_us)
        );
    }
    if let Some(v) = &st.verdict {
        println!("  verdict {:?}", v.result);
        for r in &v.reasons {
            println!("    {r}");
        }
    }
    if let Some(r) = &st.reports {
        for uri in [&r.json, &r.html, &r.junit].into_iter().flatten() {
            println!("  report {uri}");
        }
    }
    outcome_of(st)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use barrage_crds::status::{Transition, Verdict};

    /// A status that ended in `phase` by `reason`, with `verdict`.
    pub fn ended(phase: Phase, reason: &str, verdict: Option<VerdictResult>) -> LoadTestStatus {
        let mut st = LoadTestStatus {
            phase,
            ..LoadTestStatus::default()
        };
        st.push_transition(Transition {
            from: Phase::Reporting,
            to: phase,
            at: Utc::now(),
            reason: reason.into(),
        });
        st.verdict = verdict.map(|result| Verdict {
            result,
            reasons: vec![],
        });
        st
    }

    #[test]
    fn exit_codes_follow_the_documented_table() {
        let code = |st: &LoadTestStatus| outcome_of(st).code();
        assert_eq!(
            code(&ended(
                Phase::Succeeded,
                "ThresholdsMet",
                Some(VerdictResult::Passed)
            )),
            0
        );
        assert_eq!(
            code(&ended(
                Phase::Failed,
                "ThresholdsFailed",
                Some(VerdictResult::Failed)
            )),
            1
        );
        assert_eq!(code(&ended(Phase::Failed, "SpecInvalid", None)), 2);
        assert_eq!(code(&ended(Phase::Failed, "ReportTimedOut", None)), 3);
        assert_eq!(
            code(&ended(
                Phase::Failed,
                "MeasurementInvalid",
                Some(VerdictResult::Invalid)
            )),
            3
        );
        assert_eq!(code(&ended(Phase::Cancelled, "Cancelled", None)), 3);
    }

    #[test]
    fn the_default_wait_covers_the_run_and_every_timeout() {
        let lt = LoadTest::example("demo", "127.0.0.1:9092", "t");
        assert!(
            default_wait(&lt) > lt.spec.load.effective_max_duration() + Duration::from_secs(60)
        );
    }
}
