//! # barrage-kafka — the Kafka code both binaries need
//!
//! librdkafka settings from a spec ([`config`]), SASL credentials fetched from Secrets Manager
//! or SSM ([`credentials`]), MSK IAM tokens ([`msk_iam`]), topic administration and the
//! connection probe ([`admin`]), and the TLS diagnosis that names why a handshake failed
//! ([`tls`]). It knows no engine: the producer and consumer adapters that record into the
//! agent's recorder stay with the agent.

pub mod admin;
pub mod config;
pub mod credentials;
pub mod msk_iam;
pub mod tls;
