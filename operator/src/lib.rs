//! # barrage-operator — the operator, as a library
//!
//! Sans-IO core, effectful shell (the kube-rs / controller-rs pattern):
//! - [`reconcile`]: THE PURE CORE. `plan(&LoadTest, &Observed, now) -> Plan`. No async, no SDK types.
//! - [`launch`]: the `Launcher` port (start, stop, list agent tasks) with ECS and local-process adapters.
//! - [`report`]: pure merge of interval histograms and rendering of the report set; the async
//!   part only fetches and uploads.
//! - [`topics`]: the `Topics` port (delete the topic a run created) with the Kafka adapter.
//! - [`runtime`]: the one effectful loop: watch, queue, lease, execute plans, requeue.
//!
//! The `barrage` command line (crate `barrage`, `cli/`) drives it.

pub mod launch;
pub mod metrics;
pub mod reconcile;
pub mod report;
pub mod runtime;
pub mod topics;
