//! The names records carry: condition types and transition reasons (status), histogram tags
//! (interval logs and reports), as enums.
//!
//! Each is a closed set this version writes, plus `Other` for a name it does not know (a
//! record written by a newer version or by another client): read, kept and written back as
//! it was, never rejected. On the wire each is its plain string, so the schema and the
//! records stay as they were.

use std::borrow::Cow;
use std::fmt;

/// Defines a name enum: its variants and their strings, `Other` for any other string, and
/// the conversions, comparisons and serde/schema impls of a plain string. Names order as
/// their strings do, so maps keyed by them keep the order (and the bytes) of string keys.
macro_rules! names {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A name this version does not know, kept as read.
            Other(String),
        }

        impl $name {
            /// Every name this version writes.
            pub const KNOWN: &[$name] = &[$($name::$variant),+];

            /// The name as written.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::Other(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => $name::$variant, )+
                    other => $name::Other(other.to_string()),
                }
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                match $name::from(text.as_str()) {
                    $name::Other(_) => $name::Other(text),
                    known => known,
                }
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                match name {
                    $name::Other(other) => other,
                    known => known.as_str().to_string(),
                }
            }
        }

        /// An empty name (a record that carries none).
        impl Default for $name {
            fn default() -> Self {
                $name::Other(String::new())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                String::json_schema(generator)
            }
        }
    };
}

names! {
    /// The type of a status condition.
    ConditionType {
        /// The spec failed validation (True) or passed it (False).
        SpecInvalid = "SpecInvalid",
        /// Enough agents reported Ready and `startAt` was set.
        AgentsReady = "AgentsReady",
        /// Some slot exhausted its restarts; the others carry its share.
        Degraded = "Degraded",
        /// A phase ran past its timeout.
        TimedOut = "TimedOut",
        /// The verdict of the final report.
        ThresholdsMet = "ThresholdsMet",
        /// A changed spec superseded the run: it was cancelled and the new generation's run
        /// started.
        Superseded = "Superseded",
    }
}

names! {
    /// Why the phase changed (a [`crate::status::Transition`]'s reason).
    TransitionReason {
        /// A new LoadTest (or run) was accepted: agents are being launched.
        Accepted = "Accepted",
        /// The spec failed validation.
        SpecInvalid = "SpecInvalid",
        /// `spec.stop` was set.
        StopRequested = "StopRequested",
        /// The LoadTest was deleted.
        Deleted = "Deleted",
        /// A changed spec superseded the run.
        Superseded = "Superseded",
        /// `spec.rerun` changed: the spec runs again.
        Rerun = "Rerun",
        /// Agents failed beyond their restarts.
        AgentsFailed = "AgentsFailed",
        /// Enough agents reported Ready and `startAt` was set.
        AgentsReady = "AgentsReady",
        /// Agents did not start in time.
        ProvisioningTimedOut = "ProvisioningTimedOut",
        /// Agents did not report Ready in time.
        ReadyTimedOut = "ReadyTimedOut",
        /// The load profile ended.
        LoadComplete = "LoadComplete",
        /// Every agent finished and uploaded.
        Drained = "Drained",
        /// Draining ran past its timeout.
        DrainTimedOut = "DrainTimedOut",
        /// The report's thresholds held.
        ThresholdsMet = "ThresholdsMet",
        /// A threshold failed.
        ThresholdsFailed = "ThresholdsFailed",
        /// The measurement cannot be trusted (e.g. the agents were the limit).
        MeasurementInvalid = "MeasurementInvalid",
        /// Intervals are missing from the report.
        Incomplete = "Incomplete",
        /// Reporting ran past its timeout.
        ReportTimedOut = "ReportTimedOut",
        /// Cancelling ran past its timeout.
        CancelTimedOut = "CancelTimedOut",
        /// Every agent stopped after a cancel.
        Cancelled = "Cancelled",
    }
}

names! {
    /// Which histogram an interval log entry holds (its `Tag=`), and the key of a report's
    /// latency statistics.
    HistogramTag {
        /// End-to-end latency (RoundTrip and Consume): intended send time (Consume: the
        /// record's timestamp) to consume; coordinated-omission free, like `produce`.
        E2e = "e2e",
        /// End-to-end service time (RoundTrip): actual send time to consume.
        E2eService = "e2eService",
        /// Schedule lag: how late sends left compared to the schedule.
        Lag = "lag",
        /// Produce latency: intended send time to acknowledgement (coordinated-omission free).
        Produce = "produce",
        /// Service time: actual send time to acknowledgement.
        Service = "service",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_names_round_trip_as_plain_strings() {
        for name in ConditionType::KNOWN {
            let json = serde_json::to_string(name).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(&serde_json::from_str::<ConditionType>(&json).unwrap(), name);
        }
        for name in TransitionReason::KNOWN {
            assert_eq!(&TransitionReason::from(name.as_str()), name);
        }
    }

    #[test]
    fn unknown_names_are_kept_as_read() {
        let read: TransitionReason = serde_json::from_str("\"NewerReason\"").unwrap();
        assert_eq!(read, TransitionReason::Other("NewerReason".into()));
        assert_eq!(serde_json::to_string(&read).unwrap(), "\"NewerReason\"");
        assert_eq!(ConditionType::from("AgentsReady"), "AgentsReady");
    }

    #[test]
    fn names_order_as_their_strings_so_maps_keep_the_order_of_string_keys() {
        let mut tags: Vec<HistogramTag> = ["service", "zeta", "e2eService", "abc", "lag"]
            .into_iter()
            .map(HistogramTag::from)
            .chain(HistogramTag::KNOWN.iter().cloned())
            .collect();
        tags.sort();
        tags.dedup();
        let mut strings: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        let sorted = {
            let mut s = strings.clone();
            s.sort();
            s
        };
        assert_eq!(strings, sorted);
        strings.dedup();
        assert_eq!(
            strings,
            [
                "abc",
                "e2e",
                "e2eService",
                "lag",
                "produce",
                "service",
                "zeta"
            ]
        );
        let map: std::collections::BTreeMap<HistogramTag, u32> =
            tags.into_iter().zip(0..).collect();
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            r#"{"abc":0,"e2e":1,"e2eService":2,"lag":3,"produce":4,"service":5,"zeta":6}"#
        );
    }
}
