//! Human durations used across the spec: `250ms`, `10s`, `5m`, `1h30m`, `2d`, `1.5s`.
//!
//! [`HumanDuration`] serializes as its canonical string and deserializes from a string or from a
//! plain number of seconds (`30` means 30 s). Parsing is exact: decimal fractions are computed in
//! integer nanoseconds, never through floating point.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;
const NANOS_PER_MIN: u64 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: u64 = 60 * NANOS_PER_MIN;
const NANOS_PER_DAY: u64 = 24 * NANOS_PER_HOUR;
const NANOS_PER_SEC_U128: u128 = NANOS_PER_SEC as u128;
/// `std::time::Duration::MAX` in nanoseconds.
const MAX_NANOS: u128 = (u64::MAX as u128) * NANOS_PER_SEC_U128 + (NANOS_PER_SEC_U128 - 1);

/// Units in the order [`HumanDuration`]'s `Display` prints them.
const UNITS: &[(&str, u64)] = &[
    ("d", NANOS_PER_DAY),
    ("h", NANOS_PER_HOUR),
    ("m", NANOS_PER_MIN),
    ("s", NANOS_PER_SEC),
    ("ms", NANOS_PER_MILLI),
    ("us", NANOS_PER_MICRO),
    ("ns", 1),
];

/// A non-negative duration written for people: `250ms`, `10s`, `5m`, `1h30m`, `2d`, `1.5s`.
///
/// Accepted units: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, `d`; several parts may be
/// concatenated (`1h30m`). A bare number (in YAML or JSON) means seconds. The largest value is
/// `std::time::Duration::MAX`; every value prints and parses back exactly. `Display` prints the canonical form (`1h30m`,
/// `1s500ms`, `0s`), which parses back to the same value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(std::time::Duration);

/// Why a duration string was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text is not `<number><unit>...`.
    #[error(
        "invalid duration {text:?}: expected a number followed by ms, s, m, h or d (e.g. \"250ms\", \"10s\", \"1h30m\")"
    )]
    Syntax {
        /// The rejected text.
        text: String,
    },
    /// The value does not fit in 64-bit nanoseconds.
    #[error("invalid duration {text:?}: too large")]
    TooLarge {
        /// The rejected text.
        text: String,
    },
    /// The value is negative.
    #[error("invalid duration {text:?}: must not be negative")]
    Negative {
        /// The rejected text.
        text: String,
    },
}

impl HumanDuration {
    /// The zero duration.
    pub const ZERO: HumanDuration = HumanDuration(std::time::Duration::ZERO);

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        HumanDuration(std::time::Duration::from_secs(secs))
    }

    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        HumanDuration(std::time::Duration::from_millis(millis))
    }

    /// A duration of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: u64) -> Self {
        HumanDuration(std::time::Duration::from_nanos(nanos))
    }

    /// Wraps a standard duration.
    pub const fn from_std(d: std::time::Duration) -> Self {
        HumanDuration(d)
    }

    /// The standard library duration.
    pub const fn as_std(&self) -> std::time::Duration {
        self.0
    }

    /// Nanoseconds, saturating at `u64::MAX`.
    pub fn as_nanos_u64(&self) -> u64 {
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Seconds as a float.
    pub fn as_secs_f64(&self) -> f64 {
        self.0.as_secs_f64()
    }

    /// True for the zero duration.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// Parses `text` (`"1h30m"`, `"1.5s"`, `"250ms"`, `"30"` = seconds).
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let nanos = parse_nanos(text)?;
        // parse_nanos bounds the value by MAX_NANOS, so the seconds fit in a u64.
        let secs =
            u64::try_from(nanos / NANOS_PER_SEC_U128).map_err(|_| DurationError::TooLarge {
                text: text.to_string(),
            })?;
        let sub = (nanos % NANOS_PER_SEC_U128) as u32;
        Ok(HumanDuration(std::time::Duration::new(secs, sub)))
    }
}

impl From<std::time::Duration> for HumanDuration {
    fn from(d: std::time::Duration) -> Self {
        HumanDuration(d)
    }
}

impl From<HumanDuration> for std::time::Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HumanDuration::parse(s)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.as_nanos();
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, nanos) in UNITS {
            let nanos = u128::from(*nanos);
            let n = rest / nanos;
            if n > 0 {
                write!(f, "{n}{unit}")?;
                rest -= n * nanos;
            }
        }
        Ok(())
    }
}

fn unit_nanos(unit: &str) -> Option<u64> {
    match unit {
        "ns" => Some(1),
        "us" | "µs" | "μs" => Some(NANOS_PER_MICRO),
        "ms" => Some(NANOS_PER_MILLI),
        "s" => Some(NANOS_PER_SEC),
        "m" => Some(NANOS_PER_MIN),
        "h" => Some(NANOS_PER_HOUR),
        "d" => Some(NANOS_PER_DAY),
        _ => None,
    }
}

/// Parses a duration into nanoseconds with exact integer arithmetic.
fn parse_nanos(text: &str) -> Result<u128, DurationError> {
    let syntax = || DurationError::Syntax {
        text: text.to_string(),
    };
    let too_large = || DurationError::TooLarge {
        text: text.to_string(),
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(syntax());
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative {
            text: text.to_string(),
        });
    }
    // A bare number means seconds.
    let bare = s.strip_prefix('+').unwrap_or(s);
    if !bare.is_empty() && bare.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return number_times(bare, NANOS_PER_SEC, text)?.ok_or_else(too_large);
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        if number.is_empty() {
            return Err(syntax());
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos = unit_nanos(unit).ok_or_else(syntax)?;
        let part = number_times(number, nanos, text)?.ok_or_else(too_large)?;
        total = total
            .checked_add(part)
            .filter(|t| *t <= MAX_NANOS)
            .ok_or_else(too_large)?;
    }
    Ok(total)
}

/// `number` (digits with at most one `.`) times `unit` nanoseconds; `Ok(None)` on overflow.
/// Fractions finer than a nanosecond are truncated.
fn number_times(number: &str, unit: u64, text: &str) -> Result<Option<u128>, DurationError> {
    let syntax = || DurationError::Syntax {
        text: text.to_string(),
    };
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(syntax());
    }
    let mut value: u128 = 0;
    for c in int.chars() {
        let d = c.to_digit(10).ok_or_else(syntax)?;
        value = match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(d)))
        {
            Some(v) if v <= MAX_NANOS => v,
            _ => return Ok(None),
        };
    }
    let Some(mut nanos) = value.checked_mul(u128::from(unit)) else {
        return Ok(None);
    };
    // Fraction: sum of digit * unit / 10^k, computed exactly then truncated.
    let mut scale: u128 = 1;
    let mut frac_num: u128 = 0;
    for c in frac.chars() {
        let d = c.to_digit(10).ok_or_else(syntax)?;
        if scale >= 10u128.pow(20) {
            continue; // beyond any meaningful precision
        }
        scale *= 10;
        frac_num = frac_num * 10 + u128::from(d);
    }
    // frac_num < 10^20 and unit < 10^14, so the product fits in a u128.
    nanos = nanos.saturating_add(frac_num * u128::from(unit) / scale);
    Ok((nanos <= MAX_NANOS).then_some(nanos))
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = HumanDuration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a duration such as \"250ms\", \"10s\", \"5m\", \"1h30m\" or a number of seconds",
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        HumanDuration::parse(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(HumanDuration::from_secs(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(HumanDuration::from_secs)
            .map_err(|_| E::custom(format!("invalid duration {v}: must not be negative")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if !v.is_finite() || v < 0.0 {
            return Err(E::custom(format!(
                "invalid duration {v}: must be a finite, non-negative number of seconds"
            )));
        }
        std::time::Duration::try_from_secs_f64(v)
            .map(HumanDuration)
            .map_err(|_| E::custom(format!("invalid duration {v}: too large")))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

impl schemars::JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "HumanDuration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: a number followed by a unit (ns, us, ms, s, m, h, d), several parts may be concatenated (\"250ms\", \"10s\", \"1h30m\", \"1.5s\"); a bare number means seconds.",
            "anyOf": [
                { "type": "string", "pattern": "^\\s*([0-9]+(\\.[0-9]*)?|\\.[0-9]+)((ns|us|µs|μs|ms|s|m|h|d)(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h|d))*)?\\s*$" },
                { "type": "number", "minimum": 0 }
            ]
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> HumanDuration {
        HumanDuration::parse(s).unwrap()
    }

    #[test]
    fn parses_every_unit_and_compounds() {
        assert_eq!(d("250ms"), HumanDuration::from_millis(250));
        assert_eq!(d("10s"), HumanDuration::from_secs(10));
        assert_eq!(d("5m"), HumanDuration::from_secs(300));
        assert_eq!(d("1h30m"), HumanDuration::from_secs(5400));
        assert_eq!(d("2d"), HumanDuration::from_secs(172_800));
        assert_eq!(d("1.5s"), HumanDuration::from_millis(1500));
        assert_eq!(d("250us"), HumanDuration::from_nanos(250_000));
        assert_eq!(d("7ns"), HumanDuration::from_nanos(7));
        assert_eq!(d("30"), HumanDuration::from_secs(30));
        assert_eq!(d(" 0.1s "), HumanDuration::from_millis(100));
        assert_eq!(d(".5m"), HumanDuration::from_secs(30));
    }

    #[test]
    fn decimal_fractions_are_exact() {
        assert_eq!(d("0.3s").as_nanos_u64(), 300_000_000);
        assert_eq!(d("1.000000001s").as_nanos_u64(), 1_000_000_001);
        assert_eq!(d("0.1h").as_nanos_u64(), 360 * NANOS_PER_SEC);
    }

    #[test]
    fn rejects_garbage_with_a_helpful_message() {
        for bad in [
            "", "s", "10x", "1..5s", "ms10", "1h-5m", "10 s s", "abc", ".",
        ] {
            let err = HumanDuration::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains("expected a number followed by ms, s, m, h or d"),
                "{bad}: {err}"
            );
        }
        assert!(
            HumanDuration::parse("-5s")
                .unwrap_err()
                .to_string()
                .contains("must not be negative")
        );
        assert!(
            HumanDuration::parse("999999999999999d")
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        for (input, canon) in [
            ("1h30m", "1h30m"),
            ("90m", "1h30m"),
            ("1.5s", "1s500ms"),
            ("0ms", "0s"),
            ("2d", "2d"),
            ("1d1h1m1s1ms1us1ns", "1d1h1m1s1ms1us1ns"),
        ] {
            let parsed = d(input);
            assert_eq!(parsed.to_string(), canon);
            assert_eq!(d(canon), parsed);
        }
    }

    #[test]
    fn extremes_print_and_parse_back() {
        for extreme in [
            HumanDuration::from_std(std::time::Duration::MAX),
            HumanDuration::from_secs(u64::MAX),
            HumanDuration::from_secs(u64::MAX / 1_000_000_000 + 1),
            HumanDuration::from_nanos(1),
        ] {
            assert_eq!(HumanDuration::parse(&extreme.to_string()).unwrap(), extreme);
        }
        assert!(HumanDuration::parse("213503982334602d").is_err());
        assert!(HumanDuration::parse("1.0000000000000000000000000000000000000001d").is_ok());
        let v: HumanDuration = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(v.to_string().parse::<HumanDuration>().unwrap(), v);
    }

    #[test]
    fn serde_accepts_strings_and_numbers() {
        let v: HumanDuration = serde_json::from_str("\"5m\"").unwrap();
        assert_eq!(v, HumanDuration::from_secs(300));
        let v: HumanDuration = serde_json::from_str("42").unwrap();
        assert_eq!(v, HumanDuration::from_secs(42));
        let v: HumanDuration = serde_json::from_str("0.25").unwrap();
        assert_eq!(v, HumanDuration::from_millis(250));
        assert!(serde_json::from_str::<HumanDuration>("-1").is_err());
        assert!(serde_json::from_str::<HumanDuration>("true").is_err());
        assert_eq!(
            serde_json::to_string(&HumanDuration::from_millis(1500)).unwrap(),
            "\"1s500ms\""
        );
    }
}
