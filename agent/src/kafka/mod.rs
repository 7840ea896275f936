//! rdkafka adapters: producer context, consumer, topic administration and the one pure
//! function that turns a spec into librdkafka settings.

pub mod admin;
pub mod config;
pub mod consumer;
pub mod credentials;
pub mod msk_iam;
pub mod producer;
pub mod tls;
