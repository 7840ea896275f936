//! Watching the table through DynamoDB Streams: [`watch`] yields the names of LoadTests whose
//! record (or one of whose agents' status) changed, and [`WatchEvent::Relist`] whenever changes
//! may have been missed, so the caller lists everything again.
//!
//! How it reads the stream:
//! - the stream ARN comes from `DescribeTable`; shards from `DescribeStream` (paginated);
//! - at start every open shard is read from `LATEST` and the first event is a `Relist`: the
//!   caller's full list covers everything before that point, so starting a watch and then
//!   listing on its first event never misses a change;
//! - shards found later (a shard closes about every four hours and children take over) are read
//!   from `TRIM_HORIZON`, a child only once its parent is read to its end, so changes to one
//!   item stay in order;
//! - an expired iterator (`ExpiredIteratorException`, after 15 minutes without reading) or
//!   trimmed data (`TrimmedDataAccessException`, older than 24 hours) re-positions that shard at
//!   `LATEST` and then emits `Relist`; a vanished stream or table starts over the same way.
//!
//! The SDK sits behind a small internal port (`StreamApi`) so that what moto cannot produce
//! (expired iterators, trimmed data, closing shards with children: moto 5.2 has one shard that
//! never closes and iterators that never expire) is covered by unit tests with a fake.
//!
//! Must not: let SDK types out of this file, or drop a change without emitting `Relist`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodbstreams::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use barrage_crds::backoff::Backoff;
use tokio::sync::{mpsc, watch as signal};
use tracing::{debug, info, warn};

use crate::dynamo::DynamoStore;
use crate::rules::load_test_of_pk;
use crate::watch::{WatchEvent, WatchHandle, WatchOptions, Watchable};

impl Watchable for DynamoStore {
    fn watch(&self, options: WatchOptions) -> (mpsc::Receiver<WatchEvent>, WatchHandle) {
        watch(self, options)
    }
}

/// Watches `store`'s table. Dropping the receiver also ends the watch.
pub fn watch(
    store: &DynamoStore,
    options: WatchOptions,
) -> (mpsc::Receiver<WatchEvent>, WatchHandle) {
    let api = SdkStreams {
        dynamodb: store.client().clone(),
        streams: aws_sdk_dynamodbstreams::Client::new(store.sdk_config()),
        table: store.table().to_string(),
    };
    spawn_watch(api, options)
}

fn spawn_watch<A: StreamApi + 'static>(
    api: A,
    options: WatchOptions,
) -> (mpsc::Receiver<WatchEvent>, WatchHandle) {
    let (tx, rx) = mpsc::channel(options.capacity.max(1));
    let (stop, stop_rx) = signal::channel(false);
    let watcher = Watcher {
        api,
        options,
        tx,
        stop: stop_rx,
        stream_arn: None,
        shards: BTreeMap::new(),
    };
    let task = tokio::spawn(watcher.run());
    (rx, WatchHandle::from_task(stop, task))
}

// ---------------------------------------------------------------------------------------------
// The port between the watch logic and the SDK.

/// A shard as `DescribeStream` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShardInfo {
    id: String,
    parent: Option<String>,
    /// Has an ending sequence number: no new records will arrive.
    closed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Latest,
    TrimHorizon,
}

/// One `GetRecords` answer, reduced to what the watch needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Page {
    /// The LoadTest names of the records' keys, in record order (repeats allowed).
    names: Vec<String>,
    /// `None` when the shard is closed and read to its end.
    next: Option<String>,
    /// How many records the page held (a full page means: read again at once).
    records: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ApiError {
    /// The iterator expired: re-position.
    Expired,
    /// The requested records were trimmed (older than 24 h): re-position.
    Trimmed,
    /// The table, stream or shard is gone.
    NotFound(String),
    Throttled,
    Other(String),
}

const PAGE_LIMIT: i32 = 1000;

#[async_trait]
trait StreamApi: Send + Sync {
    async fn stream_arn(&self) -> Result<String, ApiError>;
    async fn shards(&self, arn: &str) -> Result<Vec<ShardInfo>, ApiError>;
    async fn iterator(&self, arn: &str, shard: &str, start: Start) -> Result<String, ApiError>;
    async fn records(&self, iterator: &str) -> Result<Page, ApiError>;
}

struct SdkStreams {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
}

fn api_error<E>(err: &SdkError<E>, what: &str) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err.code() {
        Some("ExpiredIteratorException") => ApiError::Expired,
        Some("TrimmedDataAccessException") => ApiError::Trimmed,
        Some("ResourceNotFoundException") => ApiError::NotFound(what.to_string()),
        Some(
            "LimitExceededException"
            | "ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded",
        ) => ApiError::Throttled,
        _ => ApiError::Other(format!("{what}: {}", DisplayErrorContext(err))),
    }
}

#[async_trait]
impl StreamApi for SdkStreams {
    async fn stream_arn(&self) -> Result<String, ApiError> {
        let out = self
            .dynamodb
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("ResourceNotFoundException") => {
                    ApiError::NotFound(crate::dynamo::missing_table_message(&self.table))
                }
                _ => ApiError::Other(format!("DescribeTable: {}", DisplayErrorContext(&e))),
            })?;
        out.table()
            .and_then(|t| t.latest_stream_arn())
            .map(str::to_string)
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "DynamoDB table {:?} has no stream: enable one with view type \
                     NEW_AND_OLD_IMAGES (the CloudFormation stack and create_table do)",
                    self.table
                ))
            })
    }

    async fn shards(&self, arn: &str) -> Result<Vec<ShardInfo>, ApiError> {
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .streams
                .describe_stream()
                .stream_arn(arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| api_error(&e, "DescribeStream"))?;
            let Some(description) = out.stream_description() else {
                break;
            };
            shards.extend(description.shards().iter().filter_map(|s| {
                Some(ShardInfo {
                    id: s.shard_id()?.to_string(),
                    parent: s.parent_shard_id().map(str::to_string),
                    closed: s
                        .sequence_number_range()
                        .and_then(|r| r.ending_sequence_number())
                        .is_some(),
                })
            }));
            match description.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_string()),
                None => break,
            }
        }
        Ok(shards)
    }

    async fn iterator(&self, arn: &str, shard: &str, start: Start) -> Result<String, ApiError> {
        let kind = match start {
            Start::Latest => ShardIteratorType::Latest,
            Start::TrimHorizon => ShardIteratorType::TrimHorizon,
        };
        let out = self
            .streams
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .send()
            .await
            .map_err(|e| api_error(&e, "GetShardIterator"))?;
        out.shard_iterator()
            .map(str::to_string)
            .ok_or_else(|| ApiError::Other(format!("GetShardIterator gave none for {shard}")))
    }

    async fn records(&self, iterator: &str) -> Result<Page, ApiError> {
        let out = self
            .streams
            .get_records()
            .shard_iterator(iterator)
            .limit(PAGE_LIMIT)
            .send()
            .await
            .map_err(|e| api_error(&e, "GetRecords"))?;
        let names = out
            .records()
            .iter()
            .filter_map(|r| r.dynamodb()?.keys()?.get(barrage_crds::items::ATTR_PK))
            .filter_map(|pk| match pk {
                AttributeValue::S(pk) => load_test_of_pk(pk),
                _ => None,
            })
            .collect();
        Ok(Page {
            names,
            next: out.next_shard_iterator().map(str::to_string),
            records: out.records().len(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The watch logic.

#[derive(Debug, Clone, PartialEq, Eq)]
enum ShardState {
    /// Being read from this iterator.
    Reading(String),
    /// Waiting for its parent to be read to its end.
    Waiting,
    /// Read to its end (or closed before the watch began).
    Done,
}

/// What to do with a shard the watch is not reading yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Get an iterator and read it.
    Open(Start),
    /// Its parent is not read to its end yet: look again at the next describe.
    Wait,
    /// Closed before the watch began: history the caller's first list covers.
    History,
}

/// Which shards to open now, and where. On the first look (`initial`) open shards start at
/// `LATEST` and closed ones are history; later, a new shard starts at `TRIM_HORIZON` once its
/// parent (if the watch knows it or it is still listed) is read to its end.
fn plan_shards(
    described: &[ShardInfo],
    known: &BTreeMap<String, ShardState>,
    initial: bool,
) -> Vec<(String, Step)> {
    let described_ids: HashSet<&str> = described.iter().map(|s| s.id.as_str()).collect();
    described
        .iter()
        .filter(|shard| {
            !matches!(
                known.get(&shard.id),
                Some(ShardState::Reading(_) | ShardState::Done)
            )
        })
        .map(|shard| {
            let step = if initial {
                if shard.closed {
                    Step::History
                } else {
                    Step::Open(Start::Latest)
                }
            } else {
                let parent_pending = shard.parent.as_deref().is_some_and(|p| match known.get(p) {
                    Some(ShardState::Done) => false,
                    Some(_) => true,
                    // A parent not tracked yet but still listed is read first.
                    None => described_ids.contains(p),
                });
                if parent_pending {
                    Step::Wait
                } else {
                    Step::Open(Start::TrimHorizon)
                }
            };
            (shard.id.clone(), step)
        })
        .collect()
}

/// The watch's bookkeeping between polls.
struct Watcher<A> {
    api: A,
    options: WatchOptions,
    tx: mpsc::Sender<WatchEvent>,
    stop: signal::Receiver<bool>,
    stream_arn: Option<String>,
    shards: BTreeMap<String, ShardState>,
}

/// Why a round ended early.
enum Halt {
    /// The receiver is gone or a stop was asked.
    Stop,
    /// Back off before the next round.
    Backoff,
}

impl<A: StreamApi> Watcher<A> {
    async fn run(mut self) {
        let mut failures: u32 = 0;
        let mut last_describe = tokio::time::Instant::now();
        let mut need_describe = true;
        loop {
            let round = self.round(&mut need_describe, &mut last_describe).await;
            let pause = match round {
                Ok(more) if more => Duration::ZERO,
                Ok(_) => {
                    failures = 0;
                    self.options.poll_interval
                }
                Err(Halt::Stop) => break,
                Err(Halt::Backoff) => {
                    failures = failures.saturating_add(1);
                    backoff(self.options.poll_interval, failures)
                }
            };
            if *self.stop.borrow() || self.tx.is_closed() {
                break;
            }
            tokio::select! {
                _ = self.stop.changed() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        debug!("Stream watch stopped.");
    }

    async fn send(&self, event: WatchEvent) -> Result<(), Halt> {
        self.tx.send(event).await.map_err(|_| Halt::Stop)
    }

    /// Forget everything: the next round starts over at `LATEST` and emits `Relist`.
    fn reset(&mut self) {
        self.stream_arn = None;
        self.shards.clear();
    }

    /// One round: refresh shards if due, then one `GetRecords` per readable shard. `Ok(true)`
    /// when a shard returned a full page (read again at once).
    async fn round(
        &mut self,
        need_describe: &mut bool,
        last_describe: &mut tokio::time::Instant,
    ) -> Result<bool, Halt> {
        if self.stream_arn.is_none()
            || *need_describe
            || last_describe.elapsed() >= self.options.describe_interval
        {
            self.describe().await?;
            *need_describe = false;
            *last_describe = tokio::time::Instant::now();
        }
        let Some(arn) = self.stream_arn.clone() else {
            return Err(Halt::Backoff);
        };
        let reading: Vec<(String, String)> = self
            .shards
            .iter()
            .filter_map(|(id, state)| match state {
                ShardState::Reading(it) => Some((id.clone(), it.clone())),
                _ => None,
            })
            .collect();
        let mut more = false;
        let mut changed: Vec<String> = Vec::new();
        for (shard, iterator) in reading {
            match self.api.records(&iterator).await {
                Ok(page) => {
                    more |= page.records >= PAGE_LIMIT as usize;
                    for name in page.names {
                        if !changed.contains(&name) {
                            changed.push(name);
                        }
                    }
                    match page.next {
                        Some(next) => {
                            self.shards.insert(shard, ShardState::Reading(next));
                        }
                        None => {
                            debug!(shard = %shard, "Shard read to its end.");
                            self.shards.insert(shard, ShardState::Done);
                            *need_describe = true;
                        }
                    }
                }
                Err(ApiError::Expired | ApiError::Trimmed) => {
                    warn!(shard = %shard, "Stream iterator expired or data trimmed; relisting.");
                    match self.api.iterator(&arn, &shard, Start::Latest).await {
                        Ok(it) => {
                            self.shards.insert(shard, ShardState::Reading(it));
                        }
                        Err(e) => {
                            warn!(shard = %shard, error = ?e, "Could not re-position; starting over.");
                            self.reset();
                        }
                    }
                    self.flush(&mut changed).await?;
                    self.send(WatchEvent::Relist).await?;
                }
                Err(ApiError::NotFound(what)) => {
                    warn!(shard = %shard, what, "Stream or shard gone; starting over.");
                    self.flush(&mut changed).await?;
                    self.reset();
                    return Err(Halt::Backoff);
                }
                Err(ApiError::Throttled) => {
                    self.flush(&mut changed).await?;
                    return Err(Halt::Backoff);
                }
                Err(ApiError::Other(message)) => {
                    warn!(shard = %shard, message, "GetRecords failed; retrying.");
                    self.flush(&mut changed).await?;
                    return Err(Halt::Backoff);
                }
            }
        }
        self.flush(&mut changed).await?;
        Ok(more)
    }

    async fn flush(&self, changed: &mut Vec<String>) -> Result<(), Halt> {
        for name in changed.drain(..) {
            self.send(WatchEvent::Changed(name)).await?;
        }
        Ok(())
    }

    /// Finds the stream and its shards, opens what is ready. The first successful look (and
    /// the first after a reset) ends with `Relist`.
    async fn describe(&mut self) -> Result<(), Halt> {
        let initial = self.stream_arn.is_none();
        let arn = match &self.stream_arn {
            Some(arn) => arn.clone(),
            None => match self.api.stream_arn().await {
                Ok(arn) => arn,
                Err(e) => {
                    warn!(error = ?e, "Cannot find the table's stream; retrying.");
                    return Err(Halt::Backoff);
                }
            },
        };
        let described = match self.api.shards(&arn).await {
            Ok(shards) => shards,
            Err(ApiError::NotFound(what)) => {
                warn!(what, "Stream gone; starting over.");
                self.reset();
                return Err(Halt::Backoff);
            }
            Err(e) => {
                warn!(error = ?e, "DescribeStream failed; retrying.");
                return Err(Halt::Backoff);
            }
        };
        let mut opened = Vec::new();
        // Parents before children: a waiting child is planned again at the describe that
        // follows its parent's end.
        for (shard, step) in plan_shards(&described, &self.shards, initial) {
            let start = match step {
                Step::Open(start) => start,
                Step::Wait => {
                    self.shards.insert(shard, ShardState::Waiting);
                    continue;
                }
                Step::History => {
                    self.shards.insert(shard, ShardState::Done);
                    continue;
                }
            };
            match self.api.iterator(&arn, &shard, start).await {
                Ok(it) => {
                    opened.push(shard.clone());
                    self.shards.insert(shard, ShardState::Reading(it));
                }
                Err(ApiError::NotFound(_)) if !initial => {
                    // Trimmed away entirely: nothing left to read in it.
                    self.shards.insert(shard, ShardState::Done);
                }
                Err(e) => {
                    warn!(shard = %shard, error = ?e, "GetShardIterator failed; retrying.");
                    if initial {
                        self.shards.clear();
                    }
                    return Err(Halt::Backoff);
                }
            }
        }
        if !opened.is_empty() {
            debug!(shards = ?opened, "Reading stream shards.");
        }
        if initial {
            self.stream_arn = Some(arn);
            info!("Watching the table's stream.");
            self.send(WatchEvent::Relist).await?;
        }
        Ok(())
    }
}

/// Pause after `failures` failed rounds in a row: doubling from the poll interval, capped at
/// 30 s, with jitter so that several controllers do not poll in step.
fn backoff(base: Duration, failures: u32) -> Duration {
    Backoff::new(base, Duration::from_secs(30)).delay(failures, crate::aws::jitter_seed())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use super::*;

    fn shard(id: &str, parent: Option<&str>, closed: bool) -> ShardInfo {
        ShardInfo {
            id: id.into(),
            parent: parent.map(str::to_string),
            closed,
        }
    }

    #[test]
    fn at_start_open_shards_are_read_from_latest_and_closed_ones_are_history() {
        let described = [shard("a", None, true), shard("b", Some("a"), false)];
        let plan = plan_shards(&described, &BTreeMap::new(), true);
        assert_eq!(
            plan,
            vec![
                ("a".into(), Step::History),
                ("b".into(), Step::Open(Start::Latest))
            ]
        );
    }

    #[test]
    fn a_child_waits_until_its_parent_is_read_to_the_end() {
        let mut known = BTreeMap::new();
        known.insert("a".to_string(), ShardState::Reading("it".into()));
        let described = [shard("a", None, true), shard("b", Some("a"), false)];
        assert_eq!(
            plan_shards(&described, &known, false),
            vec![("b".into(), Step::Wait)],
            "parent still being read"
        );
        known.insert("a".to_string(), ShardState::Done);
        assert_eq!(
            plan_shards(&described, &known, false),
            vec![("b".into(), Step::Open(Start::TrimHorizon))]
        );
    }

    #[test]
    fn a_new_parent_and_child_seen_together_open_the_parent_first() {
        let described = [shard("p", None, true), shard("c", Some("p"), false)];
        let known = BTreeMap::from([("old".to_string(), ShardState::Done)]);
        assert_eq!(
            plan_shards(&described, &known, false),
            vec![
                ("p".into(), Step::Open(Start::TrimHorizon)),
                ("c".into(), Step::Wait)
            ]
        );
    }

    #[test]
    fn a_child_whose_parent_is_gone_is_read_from_the_start() {
        let described = [shard("c", Some("trimmed-away"), false)];
        assert_eq!(
            plan_shards(&described, &BTreeMap::new(), false),
            vec![("c".into(), Step::Open(Start::TrimHorizon))]
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(1);
        assert!(backoff(base, 1) <= Duration::from_secs(2));
        assert!(backoff(base, 1) >= Duration::from_secs(1));
        assert!(backoff(base, 20) <= Duration::from_secs(30));
        assert!(backoff(base, 20) >= Duration::from_secs(15));
    }

    /// A scripted stream: shards, and per iterator the answer to `GetRecords`.
    #[derive(Clone, Default)]
    struct Fake {
        inner: Arc<Mutex<FakeState>>,
    }

    #[derive(Default)]
    struct FakeState {
        shards: Vec<ShardInfo>,
        /// What `DescribeStream` lists from its second call on, when set.
        shards_later: Option<Vec<ShardInfo>>,
        describes: usize,
        /// Answers per iterator; an iterator without scripted answers returns empty pages.
        answers: BTreeMap<String, VecDeque<Result<Page, ApiError>>>,
        /// Iterators handed out, as (shard, start).
        opened: Vec<(String, Start)>,
    }

    impl Fake {
        fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
            self.inner.lock().expect("fake lock")
        }
    }

    #[async_trait]
    impl StreamApi for Fake {
        async fn stream_arn(&self) -> Result<String, ApiError> {
            Ok("arn:stream".into())
        }
        async fn shards(&self, _arn: &str) -> Result<Vec<ShardInfo>, ApiError> {
            let mut state = self.state();
            state.describes += 1;
            match (&state.shards_later, state.describes) {
                (Some(later), n) if n > 1 => Ok(later.clone()),
                _ => Ok(state.shards.clone()),
            }
        }
        async fn iterator(
            &self,
            _arn: &str,
            shard: &str,
            start: Start,
        ) -> Result<String, ApiError> {
            let mut state = self.state();
            state.opened.push((shard.to_string(), start));
            Ok(format!("{shard}-{start:?}-{}", state.opened.len()))
        }
        async fn records(&self, iterator: &str) -> Result<Page, ApiError> {
            let mut state = self.state();
            let answer = state
                .answers
                .get_mut(iterator)
                .and_then(VecDeque::pop_front);
            answer.unwrap_or_else(|| {
                Ok(Page {
                    names: vec![],
                    next: Some(iterator.to_string()),
                    records: 0,
                })
            })
        }
    }

    fn options() -> WatchOptions {
        WatchOptions {
            poll_interval: Duration::from_millis(10),
            describe_interval: Duration::from_secs(3600),
            capacity: 16,
        }
    }

    async fn next(rx: &mut mpsc::Receiver<WatchEvent>) -> WatchEvent {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an event within 5 s")
            .expect("watch still running")
    }

    #[tokio::test]
    async fn an_expired_iterator_repositions_at_latest_then_asks_for_a_relist() {
        let fake = Fake::default();
        {
            let mut s = fake.state();
            s.shards = vec![shard("s1", None, false)];
            // First iterator (s1 LATEST, #1): one change, then expiry.
            s.answers.insert(
                "s1-Latest-1".into(),
                VecDeque::from([
                    Ok(Page {
                        names: vec!["a".into(), "a".into(), "b".into()],
                        next: Some("s1-Latest-1".into()),
                        records: 3,
                    }),
                    Err(ApiError::Expired),
                ]),
            );
            // After re-positioning (#2), another change.
            s.answers.insert(
                "s1-Latest-2".into(),
                VecDeque::from([Ok(Page {
                    names: vec!["c".into()],
                    next: Some("s1-Latest-2".into()),
                    records: 1,
                })]),
            );
        }
        let (mut rx, handle) = spawn_watch(fake.clone(), options());
        assert_eq!(next(&mut rx).await, WatchEvent::Relist, "first event");
        assert_eq!(next(&mut rx).await, WatchEvent::Changed("a".into()));
        assert_eq!(next(&mut rx).await, WatchEvent::Changed("b".into()));
        assert_eq!(next(&mut rx).await, WatchEvent::Relist, "after expiry");
        assert_eq!(next(&mut rx).await, WatchEvent::Changed("c".into()));
        handle.shutdown().await;
        let opened = fake.state().opened.clone();
        assert_eq!(
            opened,
            vec![("s1".into(), Start::Latest), ("s1".into(), Start::Latest)]
        );
    }

    #[tokio::test]
    async fn trimmed_data_also_relists() {
        let fake = Fake::default();
        {
            let mut s = fake.state();
            s.shards = vec![shard("s1", None, false)];
            s.answers.insert(
                "s1-Latest-1".into(),
                VecDeque::from([Err(ApiError::Trimmed)]),
            );
        }
        let (mut rx, handle) = spawn_watch(fake.clone(), options());
        assert_eq!(next(&mut rx).await, WatchEvent::Relist);
        assert_eq!(next(&mut rx).await, WatchEvent::Relist);
        handle.shutdown().await;
    }

    #[tokio::test]
    async fn a_closed_shard_hands_over_to_its_child_from_trim_horizon() {
        let fake = Fake::default();
        {
            let mut s = fake.state();
            s.shards = vec![shard("p", None, false)];
            // By the next DescribeStream the parent has closed and a child took over.
            s.shards_later = Some(vec![shard("p", None, true), shard("c", Some("p"), false)]);
            s.answers.insert(
                "p-Latest-1".into(),
                VecDeque::from([Ok(Page {
                    names: vec!["x".into()],
                    next: None, // closed and read to its end
                    records: 1,
                })]),
            );
            s.answers.insert(
                "c-TrimHorizon-2".into(),
                VecDeque::from([Ok(Page {
                    names: vec!["y".into()],
                    next: Some("c-TrimHorizon-2".into()),
                    records: 1,
                })]),
            );
        }
        let (mut rx, handle) = spawn_watch(fake.clone(), options());
        assert_eq!(next(&mut rx).await, WatchEvent::Relist);
        assert_eq!(next(&mut rx).await, WatchEvent::Changed("x".into()));
        assert_eq!(next(&mut rx).await, WatchEvent::Changed("y".into()));
        handle.shutdown().await;
        assert_eq!(
            fake.state().opened,
            vec![
                ("p".into(), Start::Latest),
                ("c".into(), Start::TrimHorizon)
            ]
        );
    }

    #[tokio::test]
    async fn dropping_the_receiver_ends_the_watch() {
        let (rx, handle) = spawn_watch(Fake::default(), options());
        drop(rx);
        let task = handle.task.expect("a task");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the task ends")
            .expect("no panic");
    }
}
