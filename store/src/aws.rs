//! The one place AWS SDK clients get their configuration: region, credentials and
//! `AWS_ENDPOINT_URL` from the environment, and timeouts on every call, so a hung endpoint
//! (one that accepts connections and never answers) fails the call instead of the caller.
//!
//! Every SDK client of both binaries — DynamoDB, Streams, S3, ECS, Secrets Manager, SSM — is
//! built from [`sdk_config`].

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use barrage_crds::backoff::{Backoff, Delays};

/// How long one AWS call may take, all retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one attempt of a call may take (the SDK retries a timed-out attempt).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Retries around throttled calls, on top of the SDK's own: 100 ms doubling to 5 s, jittered.
pub const THROTTLE_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
/// How many times a throttled call is retried.
pub const THROTTLE_RETRIES: u32 = 6;

/// The delays of one throttled call's retries (`backon` takes them as its backoff).
pub fn throttle_delays() -> Delays {
    THROTTLE_BACKOFF.delays(THROTTLE_RETRIES, jitter_seed())
}

/// A fresh seed for jitter, so processes and calls retrying together spread out.
pub fn jitter_seed() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

/// The timeouts of every AWS call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsTimeouts {
    /// One call, all retries included.
    pub operation: Duration,
    /// One attempt.
    pub attempt: Duration,
    /// Connecting.
    pub connect: Duration,
}

impl Default for AwsTimeouts {
    fn default() -> Self {
        AwsTimeouts {
            operation: OPERATION_TIMEOUT,
            attempt: ATTEMPT_TIMEOUT,
            connect: CONNECT_TIMEOUT,
        }
    }
}

/// Overrides [`OPERATION_TIMEOUT`] (a duration: `30s`, `1m`).
pub const ENV_OPERATION_TIMEOUT: &str = "BARRAGE_AWS_OPERATION_TIMEOUT";
/// Overrides [`ATTEMPT_TIMEOUT`].
pub const ENV_ATTEMPT_TIMEOUT: &str = "BARRAGE_AWS_ATTEMPT_TIMEOUT";

impl AwsTimeouts {
    /// The defaults, with `BARRAGE_AWS_OPERATION_TIMEOUT` and `BARRAGE_AWS_ATTEMPT_TIMEOUT`
    /// where set. A value that is not a duration is named in a warning and the default kept.
    pub fn from_env() -> AwsTimeouts {
        let read = |name: &str, default: Duration| match std::env::var(name) {
            Ok(text) if !text.trim().is_empty() => {
                match text.trim().parse::<barrage_crds::duration::HumanDuration>() {
                    Ok(d) if !d.as_std().is_zero() => d.as_std(),
                    _ => {
                        tracing::warn!(
                            variable = name,
                            value = %text,
                            default = ?default,
                            "Not a positive duration (e.g. 30s); using the default."
                        );
                        default
                    }
                }
            }
            _ => default,
        };
        let operation = read(ENV_OPERATION_TIMEOUT, OPERATION_TIMEOUT);
        AwsTimeouts {
            operation,
            attempt: read(ENV_ATTEMPT_TIMEOUT, ATTEMPT_TIMEOUT).min(operation),
            connect: CONNECT_TIMEOUT.min(operation),
        }
    }

    /// The SDK's form of these timeouts.
    pub fn to_sdk(self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .operation_timeout(self.operation)
            .operation_attempt_timeout(self.attempt)
            .connect_timeout(self.connect)
            .build()
    }
}

/// The SDK configuration from the environment, with [`AwsTimeouts::from_env`].
pub async fn sdk_config() -> SdkConfig {
    sdk_config_with(AwsTimeouts::from_env()).await
}

/// The SDK configuration from the environment, with `timeouts`.
pub async fn sdk_config_with(timeouts: AwsTimeouts) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts.to_sdk())
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_has_an_operation_and_an_attempt_timeout() {
        let t = AwsTimeouts::default().to_sdk();
        assert_eq!(t.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert_eq!(t.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert!(ATTEMPT_TIMEOUT < OPERATION_TIMEOUT);
    }
}
