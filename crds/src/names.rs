//! The names status carries: condition types and transition reasons, as enums.
//!
//! Each is a closed set this version writes, plus `Other` for a name it does not know (a
//! record written by a newer version or by another client): read, kept and written back as
//! it was, never rejected. On the wire each is its plain string, so the schema and the
//! records stay as they were.

use std::borrow::Cow;
use std::fmt;

/// Defines a name enum: its variants and their strings, `Other` for any other string, and
/// the conversions, comparisons and serde/schema impls of a plain string.
macro_rules! names {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
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
}
