//! One agent incarnation's interval blob. The format is shared with the agents, so it lives
//! in `barrage_crds::interval` (see its documentation for the exact layout); this module
//! adapts its errors to [`ReportError`].

use barrage_crds::hlog::DecodeLimits;
pub use barrage_crds::interval::{
    AgentInterval, COUNTERS_COMMENT, INTERVAL_COMMENT, IntervalCounters, IntervalError,
    is_interval_blob,
};

use super::ReportError;

impl From<IntervalError> for ReportError {
    fn from(e: IntervalError) -> Self {
        match e {
            IntervalError::Hlog { what, source } => ReportError::Hlog { what, source },
            IntervalError::Blob { what, message } => ReportError::Blob { what, message },
        }
    }
}

/// Writes an interval blob.
pub fn encode_interval_blob(interval: &AgentInterval) -> Result<String, ReportError> {
    Ok(barrage_crds::interval::encode_interval_blob(interval)?)
}

/// Reads an interval blob, decoding every histogram with the hardened limits.
pub fn decode_interval_blob(text: &str) -> Result<AgentInterval, ReportError> {
    Ok(barrage_crds::interval::decode_interval_blob(text)?)
}

/// [`decode_interval_blob`] with explicit decode limits.
pub fn decode_interval_blob_with(
    text: &str,
    limits: &DecodeLimits,
) -> Result<AgentInterval, ReportError> {
    Ok(barrage_crds::interval::decode_interval_blob_with(
        text, limits,
    )?)
}
