//! Intervals on their way to the blob store: the uploader and its local spool.
//!
//! Every closed interval is put under its write-once key ([`Blobs::put_once`]: a retry can
//! never count twice). An interval the store refuses is written to a bounded spool folder (in
//! the task's volume) and retried, oldest first, with a capped backoff while the run goes on;
//! once one waits there, later intervals queue behind it without an attempt of their own, so
//! the uploader never falls behind the engine. After the run the spool is retried for up to
//! [`DeliveryConfig::drain`]; a stop (SIGTERM) makes one last attempt instead. What is left
//! then is undelivered: [`Uploader::finish`] names it, by interval with its records, for the
//! agent's status, its metrics and its exit code. No I/O but the spool folder and the store.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use barrage_crds::agent_status::UndeliveredIntervals;
use barrage_store::{Blobs, PutOnce};
use bytes::Bytes;
use tokio::time::Instant;
use tracing::{error, info, warn};

/// Where the spool lives, how large it may grow, how long undelivered intervals are retried
/// after the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// The spool folder (created; one per agent incarnation).
    pub dir: PathBuf,
    /// Most bytes the spool may hold; an interval that does not fit is undelivered.
    pub max_bytes: u64,
    /// How long the spool is retried after the run ends (unless a stop comes first).
    pub drain: Duration,
}

/// `BARRAGE_SPOOL_DIR`: the folder under which each agent incarnation spools (default: the
/// system temporary folder, the task's volume in ECS).
pub const BARRAGE_SPOOL_DIR: &str = "BARRAGE_SPOOL_DIR";
/// `BARRAGE_SPOOL_MAX_BYTES`: the spool's bound (default 256 MiB).
pub const BARRAGE_SPOOL_MAX_BYTES: &str = "BARRAGE_SPOOL_MAX_BYTES";
/// `BARRAGE_UPLOAD_DRAIN`: how long the spool is retried after the run (default 60s).
pub const BARRAGE_UPLOAD_DRAIN: &str = "BARRAGE_UPLOAD_DRAIN";

const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
const DEFAULT_DRAIN: Duration = Duration::from_secs(60);
/// First and longest wait between two retries of the spool.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(8);
/// Longest single upload (the store's own retries included): the uploader must keep up with
/// the engine, and a stop's last try must end within the stop timeout.
const PUT_TIMEOUT: Duration = Duration::from_secs(10);

/// A delivery setting that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {rule} (got {value:?})")]
pub struct ConfigError {
    name: &'static str,
    rule: &'static str,
    value: String,
}

impl DeliveryConfig {
    /// The settings of agent `name` (`RUN-SLOT-INCARNATION`) from `lookup` (the environment).
    pub fn from_lookup(
        name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |var: &str| lookup(var).filter(|v| !v.is_empty());
        let root = get(BARRAGE_SPOOL_DIR)
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("barrage-spool"));
        let max_bytes = match get(BARRAGE_SPOOL_MAX_BYTES) {
            Some(v) => v.parse().map_err(|_| ConfigError {
                name: BARRAGE_SPOOL_MAX_BYTES,
                rule: "a number of bytes",
                value: v.clone(),
            })?,
            None => DEFAULT_MAX_BYTES,
        };
        let drain = match get(BARRAGE_UPLOAD_DRAIN) {
            Some(v) => v
                .parse::<barrage_crds::duration::HumanDuration>()
                .map_err(|_| ConfigError {
                    name: BARRAGE_UPLOAD_DRAIN,
                    rule: "a duration such as 60s or 500ms",
                    value: v.clone(),
                })?
                .as_std(),
            None => DEFAULT_DRAIN,
        };
        Ok(DeliveryConfig {
            dir: root.join(name),
            max_bytes,
            drain,
        })
    }
}

/// One interval ready for the store.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub index: u32,
    pub key: String,
    pub body: Bytes,
    /// Records it counts (acknowledged; Consume: consumed), named if it is never delivered.
    pub records: u64,
}

/// An interval waiting in the spool folder.
#[derive(Debug)]
struct Spooled {
    index: u32,
    key: String,
    records: u64,
    path: PathBuf,
    bytes: u64,
}

/// Counts for the status record and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub uploaded: u32,
    pub spooled: u32,
    pub undelivered: Vec<UndeliveredIntervals>,
}

impl Progress {
    /// Intervals and records never delivered.
    pub fn lost(&self) -> (u32, u64) {
        self.undelivered.iter().fold((0, 0), |(n, r), u| {
            (n + u.to_interval - u.from_interval + 1, r + u.records)
        })
    }
}

/// Delivers intervals to the store, spooling what it refuses.
pub struct Uploader {
    blobs: Arc<dyn Blobs>,
    config: DeliveryConfig,
    queue: VecDeque<Spooled>,
    used: u64,
    progress: Progress,
    next_index: u32,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Uploader {
    pub fn new(blobs: Arc<dyn Blobs>, config: DeliveryConfig) -> Self {
        Uploader {
            blobs,
            config,
            queue: VecDeque::new(),
            used: 0,
            progress: Progress::default(),
            next_index: 0,
            retry_at: None,
            backoff: RETRY_FIRST,
        }
    }

    /// What has been delivered, what waits, what is lost.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Delivers `o` now, or spools it behind the intervals already waiting. An index that never
    /// arrived before it (the engine carries a closed interval it could not hand over into the
    /// next one) is counted as undelivered with no records of its own.
    pub async fn offer(&mut self, o: Outgoing) {
        for skipped in self.next_index..o.index {
            error!(
                interval = skipped,
                "The interval channel was full: an interval was skipped."
            );
            UndeliveredIntervals::add(&mut self.progress.undelivered, skipped, 0);
        }
        self.next_index = self.next_index.max(o.index.saturating_add(1));
        if self.queue.is_empty() && self.put(&o.key, o.body.clone()).await {
            self.progress.uploaded += 1;
            return;
        }
        self.spool(o).await;
    }

    async fn put(&self, key: &str, body: Bytes) -> bool {
        let put = self.blobs.put_once(key, body, "text/plain");
        match tokio::time::timeout(PUT_TIMEOUT, put).await {
            Ok(Ok(PutOnce::Created | PutOnce::AlreadyExists)) => true,
            Ok(Err(e)) => {
                warn!(key, error = %e, "The blob store refused an interval; it is spooled.");
                false
            }
            Err(_) => {
                warn!(key, timeout = ?PUT_TIMEOUT, "An interval upload timed out; it is spooled.");
                false
            }
        }
    }

    async fn spool(&mut self, o: Outgoing) {
        let bytes = o.body.len() as u64;
        let path = self.config.dir.join(format!("{:010}.hlog", o.index));
        let written = if self.used + bytes > self.config.max_bytes {
            Err(std::io::Error::other("the spool is full"))
        } else {
            write_file(&self.config.dir, &path, &o.body).await
        };
        match written {
            Ok(()) => {
                self.used += bytes;
                self.queue.push_back(Spooled {
                    index: o.index,
                    key: o.key,
                    records: o.records,
                    path,
                    bytes,
                });
                self.progress.spooled = self.queue.len() as u32;
                self.retry_at
                    .get_or_insert_with(|| Instant::now() + RETRY_FIRST);
            }
            Err(e) => {
                error!(interval = o.index, records = o.records, error = %e, "Could not spool an interval: it is lost.");
                UndeliveredIntervals::add(&mut self.progress.undelivered, o.index, o.records);
            }
        }
    }

    /// Resolves when the spool is due for a retry (never while it is empty).
    pub async fn retry_due(&self) {
        match self.retry_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// Retries the spool, oldest first, until it is empty or the store refuses one.
    pub async fn retry(&mut self) {
        let had = !self.queue.is_empty();
        while let Some(front) = self.queue.front() {
            let body = match tokio::fs::read(&front.path).await {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    error!(interval = front.index, error = %e, "A spooled interval cannot be read: it is lost.");
                    self.drop_front(true).await;
                    continue;
                }
            };
            if !self.put(&front.key, body).await {
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(RETRY_MAX);
                return;
            }
            self.progress.uploaded += 1;
            self.drop_front(false).await;
        }
        if had {
            info!("Every spooled interval is delivered.");
        }
        self.progress.spooled = 0;
        self.retry_at = None;
        self.backoff = RETRY_FIRST;
    }

    async fn drop_front(&mut self, lost: bool) {
        if let Some(s) = self.queue.pop_front() {
            if lost {
                UndeliveredIntervals::add(&mut self.progress.undelivered, s.index, s.records);
            }
            self.used -= s.bytes;
            let _ = tokio::fs::remove_file(&s.path).await;
        }
        self.progress.spooled = self.queue.len() as u32;
    }

    /// After the run: retries the spool until it is empty, for up to the drain time, or once
    /// more when `stop` resolves (SIGTERM: within the stop timeout). An upload under way is
    /// never cut off, so what the store took is never counted undelivered.
    pub async fn drain(&mut self, stop: impl Future<Output = ()>) {
        if self.queue.is_empty() {
            return;
        }
        info!(spooled = self.queue.len(), drain = ?self.config.drain, "Retrying the spooled intervals before the end.");
        let deadline = Instant::now() + self.config.drain;
        tokio::pin!(stop);
        while !self.queue.is_empty() {
            let next = self.retry_at.map_or(deadline, |at| at.min(deadline));
            let stopped = tokio::select! {
                _ = tokio::time::sleep_until(next) => false,
                _ = &mut stop => true,
            };
            if !stopped && Instant::now() >= deadline {
                return;
            }
            self.retry().await;
            if stopped {
                return;
            }
        }
    }

    /// Everything still spooled is undelivered; the final counts.
    pub async fn finish(mut self) -> Progress {
        while !self.queue.is_empty() {
            self.drop_front(true).await;
        }
        let _ = tokio::fs::remove_dir(&self.config.dir).await;
        let (intervals, records) = self.progress.lost();
        if intervals > 0 {
            error!(intervals, records, undelivered = ?self.progress.undelivered, "Intervals were never delivered to the blob store.");
        }
        self.progress
    }
}

async fn write_file(dir: &Path, path: &Path, body: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    tokio::fs::write(path, body).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use barrage_store::memory::MemoryBlobs;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A blob store that refuses every write while `down` is set.
    struct Flaky {
        inner: MemoryBlobs,
        down: AtomicBool,
    }

    #[async_trait::async_trait]
    impl Blobs for Flaky {
        async fn put_once(
            &self,
            key: &str,
            body: Bytes,
            content_type: &str,
        ) -> barrage_store::Result<PutOnce> {
            if self.down.load(Ordering::SeqCst) {
                return Err(barrage_store::StoreError::Throttled {
                    service: "s3",
                    operation: "PutObject",
                });
            }
            self.inner.put_once(key, body, content_type).await
        }
        async fn put(&self, key: &str, body: Bytes, ct: &str) -> barrage_store::Result<()> {
            self.inner.put(key, body, ct).await
        }
        async fn get(&self, key: &str) -> barrage_store::Result<Option<Bytes>> {
            self.inner.get(key).await
        }
        async fn list(&self, prefix: &str) -> barrage_store::Result<Vec<String>> {
            self.inner.list(prefix).await
        }
        fn uri(&self, key: &str) -> String {
            self.inner.uri(key)
        }
    }

    fn setup(max_bytes: u64) -> (Arc<Flaky>, Uploader) {
        let blobs = Arc::new(Flaky {
            inner: MemoryBlobs::default(),
            down: AtomicBool::new(false),
        });
        let dir = std::env::temp_dir().join(format!(
            "barrage-spool-test-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let config = DeliveryConfig {
            dir,
            max_bytes,
            drain: Duration::from_secs(2),
        };
        (blobs.clone(), Uploader::new(blobs, config))
    }

    fn interval(index: u32) -> Outgoing {
        Outgoing {
            index,
            key: format!("agents/{index:06}.hlog"),
            body: Bytes::from(vec![b'x'; 100]),
            records: 10 + u64::from(index),
        }
    }

    #[tokio::test]
    async fn intervals_refused_for_a_while_are_delivered_once_the_store_takes_them_again() {
        let (blobs, mut up) = setup(1 << 20);
        up.offer(interval(0)).await;
        blobs.down.store(true, Ordering::SeqCst);
        for i in 1..4 {
            up.offer(interval(i)).await;
            up.retry().await;
        }
        assert_eq!(up.progress().spooled, 3);
        blobs.down.store(false, Ordering::SeqCst);
        up.offer(interval(4)).await;
        assert_eq!(up.progress().spooled, 4, "queued behind the spooled ones");
        up.retry_due().await;
        up.retry().await;
        let p = up.finish().await;
        assert_eq!((p.uploaded, p.spooled, p.undelivered), (5, 0, vec![]));
        assert_eq!(blobs.inner.list("agents/").await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn what_the_store_never_takes_is_named_with_its_records() {
        let (blobs, mut up) = setup(1 << 20);
        up.offer(interval(0)).await;
        blobs.down.store(true, Ordering::SeqCst);
        up.offer(interval(1)).await;
        up.offer(interval(2)).await;
        up.drain(std::future::pending()).await;
        let p = up.finish().await;
        assert_eq!(p.uploaded, 1);
        let want = UndeliveredIntervals {
            from_interval: 1,
            to_interval: 2,
            records: 11 + 12,
        };
        assert_eq!(p.undelivered, vec![want]);
        assert_eq!(p.lost(), (2, 23));
    }

    #[tokio::test]
    async fn a_stop_makes_one_last_attempt_and_a_full_spool_loses_only_what_does_not_fit() {
        let (blobs, mut up) = setup(250);
        blobs.down.store(true, Ordering::SeqCst);
        for i in 0..3 {
            up.offer(interval(i)).await;
        }
        // Two of 100 bytes fit in 250: the third is lost at once.
        assert_eq!(up.progress().spooled, 2);
        blobs.down.store(false, Ordering::SeqCst);
        up.drain(std::future::ready(())).await;
        let p = up.finish().await;
        assert_eq!(p.uploaded, 2);
        assert_eq!(p.lost(), (1, 12));
    }

    #[tokio::test]
    async fn interval_indices_that_never_arrive_are_counted_undelivered() {
        let (_, mut up) = setup(1 << 20);
        up.offer(interval(0)).await;
        up.offer(interval(3)).await;
        let p = up.finish().await;
        assert_eq!(p.uploaded, 2);
        assert_eq!(p.lost(), (2, 0));
    }

    #[test]
    fn settings_come_from_the_environment_with_defaults() {
        let vars = |v: &str| match v {
            BARRAGE_SPOOL_DIR => Some("/vol/spool".to_string()),
            BARRAGE_UPLOAD_DRAIN => Some("5s".to_string()),
            _ => None,
        };
        let c = DeliveryConfig::from_lookup("r1-2-0", vars).unwrap();
        assert_eq!(c.dir, PathBuf::from("/vol/spool/r1-2-0"));
        assert_eq!(c.max_bytes, DEFAULT_MAX_BYTES);
        assert_eq!(c.drain, Duration::from_secs(5));
        let bad = |v: &str| (v == BARRAGE_SPOOL_MAX_BYTES).then(|| "lots".to_string());
        assert!(DeliveryConfig::from_lookup("r", bad).is_err());
    }
}
