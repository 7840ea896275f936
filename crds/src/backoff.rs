//! The one backoff: capped exponential delays, with "equal jitter" chosen by a seed.
//!
//! Every retry in Barrage uses it: the reconciler's error policy and slot relaunches, the
//! Streams watch's polling after failures, and the retries around throttled AWS calls (as an
//! iterator of delays, which `backon` takes as a backoff).

use std::time::Duration;

/// Delays `min(cap, base · 2^attempt)` for attempt 0, 1, 2 …; with jitter, each is drawn in
/// `[d/2, d]` from a seed, so it is reproducible, never more than `cap`, and callers seeded
/// apart do not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay (before jitter).
    pub base: Duration,
    /// No delay is longer.
    pub cap: Duration,
    /// Draw each delay in `[d/2, d]` (true) or wait exactly `d`.
    pub jitter: bool,
}

impl Backoff {
    /// Jittered delays from `base`, doubling, capped at `cap`.
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            jitter: true,
        }
    }

    /// The same delays, exactly, without jitter.
    pub const fn without_jitter(self) -> Self {
        Backoff {
            jitter: false,
            ..self
        }
    }

    /// The delay before jitter after `attempt` failures in a row (0 for the first).
    pub fn nominal(&self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.cap)
    }

    /// The delay after `attempt` failures in a row, jittered by `seed`.
    pub fn delay(&self, attempt: u32, seed: u64) -> Duration {
        let d = self.nominal(attempt);
        if !self.jitter {
            return d;
        }
        let half = d / 2;
        let spread = u64::try_from((d - half).as_nanos()).unwrap_or(u64::MAX);
        let r = splitmix64(seed ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        half + Duration::from_nanos(r % spread.saturating_add(1))
    }

    /// The delays of at most `times` retries, for a retry loop (`backon` takes any iterator of
    /// durations as its backoff).
    pub fn delays(self, times: u32, seed: u64) -> Delays {
        Delays {
            backoff: self,
            attempt: 0,
            times,
            seed,
        }
    }
}

/// The delays of [`Backoff::delays`].
#[derive(Debug, Clone)]
pub struct Delays {
    backoff: Backoff,
    attempt: u32,
    times: u32,
    seed: u64,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.attempt >= self.times {
            return None;
        }
        let d = self.backoff.delay(self.attempt, self.seed);
        self.attempt += 1;
        Some(d)
    }
}

/// SplitMix64: a tiny, well-mixed hash for jitter (not for anything secret).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn nominal_delays_double_up_to_the_cap() {
        let b = Backoff::new(SECOND, Duration::from_secs(10));
        let secs: Vec<u64> = (0..6).map(|a| b.nominal(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
        assert_eq!(b.nominal(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_in_the_upper_half_and_is_reproducible() {
        let b = Backoff::new(SECOND, Duration::from_secs(60));
        for seed in 0..200 {
            let d = b.delay(3, seed);
            assert!(
                d >= Duration::from_secs(4) && d <= Duration::from_secs(8),
                "{d:?}"
            );
            assert_eq!(d, b.delay(3, seed));
        }
        assert_eq!(b.without_jitter().delay(3, 7), Duration::from_secs(8));
    }

    #[test]
    fn delays_stop_after_the_given_number_of_retries() {
        let b = Backoff::new(SECOND, Duration::from_secs(2)).without_jitter();
        let secs: Vec<u64> = b.delays(3, 0).map(|d| d.as_secs()).collect();
        assert_eq!(secs, [1, 2, 2]);
    }
}
