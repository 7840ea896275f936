//! # barrage-crds — the contract
//!
//! Everything that users, CI, the controller and the agents share, and nothing else:
//! the `LoadTest` resource (spec, status, defaults, validation, JSON Schema) and the
//! formats both binaries read and write (agent environment contract, DynamoDB item
//! layout, blob key scheme, `AgentStatus`, the HdrHistogram interval log).
//!
//! This crate does no I/O and knows nothing of tokio or the AWS SDKs: every function
//! here is pure, so it can be tested exhaustively and fuzzed.
//!
//! # Layout
//! - [`backoff`]: the one backoff (capped exponential, equal jitter from a seed).
//! - [`digest`]: the one hash helper (FNV-1a), for ids and spec digests.
//! - [`duration`]: human durations (`250ms`, `10s`, `1h30m`) used across the spec.
//! - [`names`]: condition types, transition reasons and histogram tags, as enums that keep
//!   unknown names.
//! - [`spec`], [`status`], [`loadtest`]: the resource (defaults in one place, [`spec::defaults`]).
//! - [`schedule`]: when each record of the load profile is due, fleet-wide and per agent
//!   (what agents send and what reports count as the target).
//! - [`template`]: the JSON-template language (placeholders), one parser for validation and the agent.
//! - [`validate`]: total validation with field paths; a rejection lists every problem.
//! - [`schema`]: the JSON Schema generated from the types.
//! - [`hlog`]: the interval histogram log (`.hlog`, V2 compressed), hardened decoding.
//! - [`interval`]: one agent interval as a blob: an interval log plus its counters.
//! - [`env`](mod@env): the agent environment contract.
//! - [`keys`]: the blob key scheme.
//! - [`items`]: the DynamoDB item layout.
//! - [`agent_status`]: what an agent reports about itself.

pub mod agent_status;
pub mod backoff;
pub mod digest;
pub mod duration;
pub mod env;
pub mod hlog;
pub mod interval;
pub mod items;
pub mod keys;
pub mod loadtest;
pub mod names;
pub mod schedule;
pub mod schema;
pub mod spec;
pub mod status;
pub mod template;
pub mod validate;
