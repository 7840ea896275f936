//! # barrage-agent — the load engine
//!
//! What meets the broker: the open-model [`schedule`], payload and key generation, the
//! rdkafka producer and consumer adapters, and the [`recorder`] that keeps latencies in
//! HdrHistograms rolled into interval logs. `barrage run` drives the same [`engine`]
//! in-process; the `barrage-agent` binary drives it from the environment contract.
//!
//! # Layout
//! - [`payload`], [`keys`]: pure and seeded (the schedule itself is `barrage_crds::schedule`).
//! - [`recorder`]: histograms and counters, recycled every interval (memory stays flat).
//! - [`kafka`]: rdkafka configuration, producer context, topic administration.
//! - [`engine`]: one agent's run, from warm-up to the last flushed interval.
//! - [`metrics`]: the agent's own `/metrics` and `/healthz` for live scraping.
//! - [`spool`]: the interval uploader and its bounded local spool (nothing lost silently).
//! - [`backlog`]: Consume's backlog, written before the start.
//! - [`consume`]: the Consume workload, RoundTrip's reader, and [`consume::Workload`] (any kind).
//!
//! Nothing here logs per record: counts and latencies go to histograms.

pub mod backlog;
pub mod cli;
pub mod consume;
pub mod engine;
pub mod job;
pub mod kafka;
pub mod keys;
pub mod metrics;
pub mod payload;
pub mod protocol;
pub mod recorder;
pub mod spool;
