//! rdkafka adapters that record into the engine: the producer context (delivery reports into
//! the recorder) and the consumers of Consume and RoundTrip. Configuration, credentials and
//! administration are in the `barrage-kafka` crate.

pub mod consumer;
pub mod producer;
