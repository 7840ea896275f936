//! Watching a store: the events a watch yields, how it polls, and the handle that stops it.
//! Adapters: DynamoDB Streams ([`crate::streams`]) and the memory store's own notifications
//! ([`crate::memory`]).
//!
//! Must not: know any adapter's types.

use std::time::Duration;

use tokio::sync::{mpsc, watch as signal};
use tokio::task::JoinHandle;

/// What the watch saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The LoadTest (or one of its agents' status) changed.
    Changed(String),
    /// Changes may have been missed: list everything again.
    Relist,
}

/// How the watch polls.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Pause between rounds of `GetRecords` (default 1 s).
    pub poll_interval: Duration,
    /// How often the shard list is refreshed even when no shard closed (default 60 s).
    pub describe_interval: Duration,
    /// Events buffered for a slow receiver before the watch waits for it (default 1024).
    pub capacity: usize,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            poll_interval: Duration::from_secs(1),
            describe_interval: Duration::from_secs(60),
            capacity: 1024,
        }
    }
}

/// Stops a watch: its receiver then yields `None` once the events already queued are read.
pub struct WatchHandle {
    stop: Option<signal::Sender<bool>>,
    pub(crate) task: Option<JoinHandle<()>>,
    on_shutdown: Option<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle").finish_non_exhaustive()
    }
}

impl WatchHandle {
    /// A handle that stops `task` through `stop`.
    pub(crate) fn from_task(stop: signal::Sender<bool>, task: JoinHandle<()>) -> WatchHandle {
        WatchHandle {
            stop: Some(stop),
            task: Some(task),
            on_shutdown: None,
        }
    }

    /// A handle whose shutdown runs `on_shutdown` (a watch without a task of its own).
    pub(crate) fn from_fn(on_shutdown: impl FnOnce() + Send + 'static) -> WatchHandle {
        WatchHandle {
            stop: None,
            task: None,
            on_shutdown: Some(Box::new(on_shutdown)),
        }
    }

    /// Stops the watch and waits for its task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(f) = self.on_shutdown.take() {
            f();
        }
    }
}

/// A store whose changes can be watched. Every watch starts with [`WatchEvent::Relist`]:
/// start the watch, then list on that first event, and no change is missed.
pub trait Watchable: Send + Sync {
    fn watch(&self, options: WatchOptions) -> (mpsc::Receiver<WatchEvent>, WatchHandle);
}
