//! [`MemoryStore`] and [`MemoryBlobs`]: the stores for one machine and for tests, with exactly
//! the semantics of the cloud adapters.
//!
//! The memory store keeps the very items the DynamoDB adapter writes ([`barrage_crds::items`]
//! layout, typed as [`Item`]) and applies the same rules, which live in `crate::rules` and are
//! shared with [`crate::dynamo`]: conditional writes on `version`, generation bumped only when
//! the spec changes, status writes fenced by the leader epoch, lease epochs that grow on every
//! change of holder. [`MemoryBlobs`] is write-once like S3 with `If-None-Match: *`.
//!
//! Must not: hold its lock across an `.await`, or diverge from the DynamoDB adapter's rules.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use barrage_crds::agent_status::AgentStatus;
use barrage_crds::items::{
    self, ATTR_DOC, ATTR_EPOCH, ATTR_GENERATION, ATTR_PK, ATTR_SK, ATTR_VERSION, AgentStatusItem,
    Attr, Item, LeaseItem, LoadTestItem, StatusItem,
};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::status::LoadTestStatus;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::rules::*;
use crate::watch::{WatchEvent, WatchHandle, WatchOptions, Watchable};
use crate::{Applied, Blobs, Lease, PutOnce, Result, Store, StoreError, StoredLoadTest};

type Key = (String, String);

struct Subscriber {
    id: u64,
    tx: mpsc::Sender<WatchEvent>,
    /// A `Changed` was dropped because the channel was full: send `Relist` next.
    needs_relist: bool,
}

#[derive(Default)]
struct State {
    items: BTreeMap<Key, Item>,
    subscribers: Vec<Subscriber>,
    next_subscriber: u64,
}

impl State {
    fn notify(&mut self, load_test: &str) {
        self.subscribers.retain_mut(|sub| {
            if sub.needs_relist {
                match sub.tx.try_send(WatchEvent::Relist) {
                    Ok(()) => sub.needs_relist = false,
                    Err(mpsc::error::TrySendError::Full(_)) => return true,
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            match sub.tx.try_send(WatchEvent::Changed(load_test.to_string())) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    sub.needs_relist = true;
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }
}

/// LoadTests, agent status and the lease in memory, with the DynamoDB adapter's semantics.
#[derive(Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

fn lt_key(name: &str) -> Key {
    (items::load_test_pk(name), items::SPEC_SK.to_string())
}

fn status_key(name: &str) -> Key {
    (items::load_test_pk(name), items::STATUS_SK.to_string())
}

impl State {
    /// True when a controller holds (or held) the lease with an epoch newer than `epoch`: a
    /// deposed leader's writes are refused everywhere, as the DynamoDB adapter's lease check.
    fn newer_leader_than(&self, epoch: u64) -> bool {
        match self.items.get(&lease_key()) {
            Some(lease) => match lease.get(ATTR_EPOCH) {
                Some(Attr::N(n)) => *n > i128::from(epoch),
                _ => false,
            },
            None => false,
        }
    }

    /// The record `name`, read from its spec and status items.
    fn load_test(&self, name: &str) -> Option<StoredLoadTest> {
        let spec = self.items.get(&lt_key(name))?;
        stored_from_items(spec, self.items.get(&status_key(name)))
    }
}

fn lease_key() -> Key {
    (items::LEASE_PK.to_string(), items::LEASE_SK.to_string())
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave an item half-written (every write is a
        // single insert), so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes to LoadTest records and their agents' status, like the DynamoDB Streams watch:
    /// `Relist` first, then `Changed(name)` per write, and `Relist` again after events were
    /// dropped because the receiver fell more than `options.capacity` behind.
    pub fn watch(&self, options: WatchOptions) -> (mpsc::Receiver<WatchEvent>, WatchHandle) {
        let (tx, rx) = mpsc::channel(options.capacity.max(1));
        let mut state = self.lock();
        let id = state.next_subscriber;
        state.next_subscriber += 1;
        let needs_relist = tx.try_send(WatchEvent::Relist).is_err();
        state.subscribers.push(Subscriber {
            id,
            tx,
            needs_relist,
        });
        let weak = Arc::downgrade(&self.state);
        let handle = WatchHandle::from_fn(move || {
            if let Some(state) = weak.upgrade() {
                let mut state = state
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                state.subscribers.retain(|sub| sub.id != id);
            }
        });
        (rx, handle)
    }

    /// Writes a raw item as a `PutItem` would (no condition), e.g. what CI writes by hand.
    pub fn put_raw_item(&self, item: Item) -> Result<()> {
        let (Some(Attr::S(pk)), Some(Attr::S(sk))) = (item.get(ATTR_PK), item.get(ATTR_SK)) else {
            return Err(StoreError::Backend {
                operation: "put_raw_item",
                message: "an item needs string attributes pk and sk".to_string(),
            });
        };
        let key = (pk.clone(), sk.clone());
        let mut state = self.lock();
        state.items.insert(key.clone(), item);
        if let Some(name) = load_test_of_pk(&key.0) {
            state.notify(&name);
        }
        Ok(())
    }

    /// A raw item by its keys, as stored.
    pub fn raw_item(&self, pk: &str, sk: &str) -> Option<Item> {
        self.lock()
            .items
            .get(&(pk.to_string(), sk.to_string()))
            .cloned()
    }
}

fn set_n(item: &mut Item, attr: &str, n: impl Into<i128>) {
    item.insert(attr.to_string(), Attr::N(n.into()));
}

#[async_trait]
impl Store for MemoryStore {
    async fn list_load_tests(&self) -> Result<Vec<StoredLoadTest>> {
        let state = self.lock();
        let mut all: Vec<StoredLoadTest> = state
            .items
            .iter()
            .filter(|((_, sk), _)| sk == items::SPEC_SK)
            .filter_map(|((pk, _), item)| {
                let status = state.items.get(&(pk.clone(), items::STATUS_SK.to_string()));
                stored_from_items(item, status)
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    async fn get_load_test(&self, name: &str) -> Result<Option<StoredLoadTest>> {
        Ok(self.lock().load_test(name))
    }

    async fn apply(&self, load_test: &LoadTest) -> Result<Applied> {
        let name = load_test.name().to_string();
        check_load_test_name(&name)?;
        let key = lt_key(&name);
        let uid = uuid::Uuid::new_v4().to_string();
        let mut state = self.lock();
        let existing = state.load_test(&name);
        let applied = match plan_apply(existing.as_ref(), load_test, Utc::now(), &uid) {
            ApplyPlan::Unchanged { generation } => return Ok(Applied::Unchanged { generation }),
            ApplyPlan::Create { doc } => {
                let item = LoadTestItem {
                    name: name.clone(),
                    doc,
                    generation: 1,
                    version: 1,
                    status: None,
                    epoch: 0,
                    ttl: None,
                }
                .to_item();
                state.items.insert(key, item);
                Applied::Created { generation: 1 }
            }
            ApplyPlan::Update {
                doc, generation, ..
            } => {
                let Some(item) = state.items.get_mut(&key) else {
                    return Err(StoreError::NotFound { what: name });
                };
                let version = version_of(item) + 1;
                item.insert(ATTR_DOC.to_string(), Attr::S(doc));
                set_n(item, ATTR_GENERATION, generation);
                set_n(item, ATTR_VERSION, version);
                Applied::Updated { generation }
            }
        };
        state.notify(&name);
        Ok(applied)
    }

    async fn write_status(
        &self,
        name: &str,
        status: &LoadTestStatus,
        expected_version: u64,
        epoch: u64,
    ) -> Result<u64> {
        let json = status_json(status)?;
        let mut state = self.lock();
        let conflict = || StoreError::Conflict {
            what: format!("status of {name}"),
        };
        if !state.items.contains_key(&lt_key(name)) || state.newer_leader_than(epoch) {
            return Err(conflict());
        }
        let key = status_key(name);
        if let Some(item) = state.items.get(&key) {
            let stored_epoch = match item.get(ATTR_EPOCH) {
                Some(Attr::N(n)) => Some(u64::try_from(*n).unwrap_or(u64::MAX)),
                _ => None,
            };
            if version_of(item) != expected_version || !epoch_allows(stored_epoch, epoch) {
                return Err(conflict());
            }
        } else if expected_version != 0 {
            return Err(conflict());
        }
        let version = expected_version + 1;
        let item = StatusItem {
            name: name.to_string(),
            status: json,
            version,
            epoch,
        }
        .to_item();
        state.items.insert(key, item);
        state.notify(name);
        Ok(version)
    }

    async fn request_delete(&self, name: &str) -> Result<()> {
        let mut state = self.lock();
        let item = state
            .items
            .get_mut(&lt_key(name))
            .ok_or_else(|| StoreError::NotFound {
                what: format!("LoadTest {name}"),
            })?;
        item.entry(ATTR_DELETION_REQUESTED_MS.to_string())
            .or_insert(Attr::N(millis(Utc::now()).into()));
        let version = version_of(item) + 1;
        set_n(item, ATTR_VERSION, version);
        state.notify(name);
        Ok(())
    }

    async fn remove(&self, name: &str, expected_version: u64, epoch: u64) -> Result<()> {
        let mut state = self.lock();
        let conflict = || StoreError::Conflict {
            what: format!("removal of {name}"),
        };
        let spec = state.items.get(&lt_key(name)).ok_or_else(conflict)?;
        let put_again = !spec.contains_key(ATTR_DELETION_REQUESTED_MS);
        let (version, stored_epoch) = match state.items.get(&status_key(name)) {
            Some(item) => (
                version_of(item),
                match item.get(ATTR_EPOCH) {
                    Some(Attr::N(n)) => Some(u64::try_from(*n).unwrap_or(u64::MAX)),
                    _ => None,
                },
            ),
            None => (0, None),
        };
        if version != expected_version
            || !epoch_allows(stored_epoch, epoch)
            || state.newer_leader_than(epoch)
        {
            return Err(conflict());
        }
        if put_again {
            // Put again since the delete was requested: the new record is wanted, and stays.
            state.items.remove(&status_key(name));
            state.notify(name);
            return Ok(());
        }
        let pk = items::load_test_pk(name);
        state.items.retain(|(item_pk, _), _| *item_pk != pk);
        state.notify(name);
        Ok(())
    }

    async fn put_agent_status(&self, status: &AgentStatus) -> Result<()> {
        check_agent_status_keys(status)?;
        let item = AgentStatusItem {
            status: status.clone(),
            ttl: Some(status.heartbeat_at.timestamp() + AGENT_STATUS_TTL_SECS),
        }
        .to_item();
        let key = (
            items::load_test_pk(&status.load_test),
            items::agent_sk(&status.run_id, status.slot, status.incarnation),
        );
        let mut state = self.lock();
        state.items.insert(key, item);
        state.notify(&status.load_test);
        Ok(())
    }

    async fn list_agent_status(&self, load_test: &str, run_id: &str) -> Result<Vec<AgentStatus>> {
        let pk = items::load_test_pk(load_test);
        let prefix = items::agent_sk_prefix(run_id);
        let state = self.lock();
        Ok(state
            .items
            .range((pk.clone(), prefix.clone())..)
            .take_while(|((p, sk), _)| *p == pk && sk.starts_with(&prefix))
            .filter_map(|(_, item)| AgentStatusItem::from_item(item).ok())
            .map(|it| it.status)
            .collect())
    }

    async fn acquire_lease(
        &self,
        holder: &str,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Lease>> {
        let expires_at =
            now + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
        let mut state = self.lock();
        let current = match state.items.get(&lease_key()) {
            Some(item) => Some(lease_from_item(item)?),
            None => None,
        };
        match lease_decision(current.as_ref(), holder, millis(now)) {
            LeaseDecision::HeldByOther => Ok(None),
            LeaseDecision::Take { epoch } => {
                let item = LeaseItem {
                    holder: holder.to_string(),
                    epoch,
                    expires_at_ms: millis(expires_at),
                }
                .to_item();
                state.items.insert(lease_key(), item);
                Ok(Some(Lease {
                    holder: holder.to_string(),
                    epoch,
                    expires_at,
                }))
            }
        }
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        let mut state = self.lock();
        if let Some(item) = state.items.get_mut(&lease_key()) {
            let current = lease_from_item(item)?;
            if current.holder == lease.holder && current.epoch == lease.epoch {
                set_n(item, items::ATTR_EXPIRES_AT_MS, 0);
            }
        }
        Ok(())
    }
}

impl Watchable for MemoryStore {
    fn watch(&self, options: WatchOptions) -> (mpsc::Receiver<WatchEvent>, WatchHandle) {
        MemoryStore::watch(self, options)
    }
}

/// Blobs in memory, write-once like S3 with `If-None-Match: *`.
#[derive(Default)]
pub struct MemoryBlobs {
    blobs: Mutex<BTreeMap<String, Bytes>>,
}

impl MemoryBlobs {
    pub fn new() -> MemoryBlobs {
        MemoryBlobs::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Bytes>> {
        self.blobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn check_blob_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(StoreError::Backend {
            operation: "blob key check",
            message: "blob key is empty".to_string(),
        });
    }
    Ok(())
}

#[async_trait]
impl Blobs for MemoryBlobs {
    async fn put_once(&self, key: &str, body: Bytes, _content_type: &str) -> Result<PutOnce> {
        check_blob_key(key)?;
        let mut blobs = self.lock();
        if blobs.contains_key(key) {
            return Ok(PutOnce::AlreadyExists);
        }
        blobs.insert(key.to_string(), body);
        Ok(PutOnce::Created)
    }

    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<()> {
        check_blob_key(key)?;
        self.lock().insert(key.to_string(), body);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.lock().get(key).cloned())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .lock()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }

    fn uri(&self, key: &str) -> String {
        format!("memory:{key}")
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::*;
    use barrage_crds::items::LeaseItem;
    use barrage_crds::loadtest::LoadTest;
    use chrono::{TimeZone, Utc};

    fn example(name: &str) -> LoadTest {
        LoadTest::example(name, "127.0.0.1:9092", "t")
    }

    fn status_at(generation: i64, lt: &LoadTest) -> barrage_crds::status::LoadTestStatus {
        barrage_crds::status::LoadTestStatus {
            observed_generation: Some(generation),
            observed_spec_digest: Some(lt.spec.digest()),
            ..Default::default()
        }
    }

    #[test]
    fn a_spec_put_again_by_hand_keeps_the_observed_generation() {
        let lt = example("a");
        let st = status_at(3, &lt);
        // A hand-put item has no generation attribute: it reads as 1.
        assert_eq!(effective_generation(1, &Ok(lt.clone()), Some(&st)), 3);
        let mut changed = lt.clone();
        changed.spec.workload.records.records_per_transaction = 7;
        assert_eq!(effective_generation(1, &Ok(changed.clone()), Some(&st)), 4);
        // `barrage apply` already bumped the attribute: no double bump.
        assert_eq!(effective_generation(4, &Ok(changed), Some(&st)), 4);
        assert_eq!(effective_generation(2, &Ok(lt.clone()), None), 2);
        // A status of the earlier layout carries no digest: the attribute and the observed
        // generation decide, as before.
        let old = barrage_crds::status::LoadTestStatus {
            observed_generation: Some(5),
            ..Default::default()
        };
        assert_eq!(effective_generation(1, &Ok(lt), Some(&old)), 5);
    }

    #[test]
    fn a_record_of_the_earlier_layout_keeps_its_status() {
        let lt = example("a");
        let mut st = status_at(2, &lt);
        st.phase = barrage_crds::status::Phase::Running;
        let spec = barrage_crds::items::LoadTestItem {
            name: "a".into(),
            doc: doc_text(&lt),
            generation: 2,
            version: 9,
            status: Some(serde_json::to_string(&st).expect("json")),
            epoch: 4,
            ttl: None,
        }
        .to_item();
        let read = stored_from_items(&spec, None).expect("a record");
        assert_eq!(read.status, Some(st.clone()));
        assert_eq!((read.version, read.epoch, read.generation), (0, 4, 2));
        assert!(read.status_error.is_none());
        // Once a status item exists it wins over the attribute.
        let mut newer = st.clone();
        newer.phase = barrage_crds::status::Phase::Draining;
        let item = barrage_crds::items::StatusItem {
            name: "a".into(),
            status: serde_json::to_string(&newer).expect("json"),
            version: 1,
            epoch: 5,
        }
        .to_item();
        let read = stored_from_items(&spec, Some(&item)).expect("a record");
        assert_eq!(read.status, Some(newer));
        assert_eq!((read.version, read.epoch), (1, 5));
    }

    #[test]
    fn a_status_that_does_not_decode_is_an_error_not_an_absent_status() {
        let lt = example("a");
        let spec = barrage_crds::items::LoadTestItem {
            name: "a".into(),
            doc: doc_text(&lt),
            generation: 1,
            version: 1,
            status: None,
            epoch: 0,
            ttl: None,
        }
        .to_item();
        let item = barrage_crds::items::StatusItem {
            name: "a".into(),
            status: "{\"phase\": \"Exploded\"}".into(),
            version: 3,
            epoch: 1,
        }
        .to_item();
        let read = stored_from_items(&spec, Some(&item)).expect("a record");
        assert_eq!(read.status, None);
        let error = read.status_error.expect("an error");
        assert!(error.contains("does not decode"), "{error}");
        assert_eq!(read.version, 3, "the version still fences the next write");
    }

    #[test]
    fn a_doc_whose_name_is_not_its_key_is_refused() {
        let err = parse_doc("a", &example("b").to_json()).expect_err("mismatch");
        assert!(
            matches!(&err, crate::DocError::NameMismatch { key, found } if key == "a" && found == "b"),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("metadata.name:"), "{err}");
        assert!(parse_doc("b", &example("b").to_yaml()).is_ok());
    }

    #[test]
    fn a_doc_that_does_not_parse_lists_every_problem_with_its_path() {
        let text = example("a")
            .to_yaml()
            .replace("bootstrapServers", "bootstrapServer")
            .replace("apiVersion", "apiVersionX");
        let err = parse_doc("a", &text).expect_err("malformed").to_string();
        assert!(err.contains("spec.kafka"), "{err}");
        assert!(err.contains("apiVersion"), "{err}");
        assert!(err.lines().count() >= 2, "one line per problem: {err}");
    }

    #[test]
    fn the_stored_doc_carries_no_status_and_no_bookkeeping() {
        let mut lt = example("a");
        lt.metadata.generation = Some(7);
        lt.metadata.resource_version = Some("9".into());
        lt.status = Some(Default::default());
        let text = doc_text(&lt);
        assert!(!text.contains("\"status\""), "{text}");
        assert!(!text.contains("generation"), "{text}");
        assert!(!text.contains("resourceVersion"), "{text}");
        assert_eq!(
            LoadTest::from_json(&text).expect("round trip").spec,
            lt.spec
        );
    }

    #[test]
    fn applying_over_an_unreadable_record_is_a_spec_change() {
        let stored = crate::StoredLoadTest {
            name: "a".into(),
            version: 4,
            generation: 3,
            doc: Err(crate::DocError::Parse(barrage_crds::loadtest::ParseError {
                path: "spec".into(),
                message: "broken".into(),
            })),
            status: None,
            status_error: None,
            epoch: 0,
            deletion_requested: None,
        };
        let now = Utc.timestamp_opt(1_800_000_000, 0).single().expect("now");
        match plan_apply(Some(&stored), &example("a"), now, "uid-1") {
            ApplyPlan::Update {
                generation,
                spec_changed,
                doc,
            } => {
                assert_eq!(generation, 4);
                assert!(spec_changed);
                assert!(doc.contains("uid-1"));
            }
            other => panic!("expected an update, got {other:?}"),
        }
    }

    #[test]
    fn lease_decisions() {
        let lease = |holder: &str, epoch, expires_at_ms| LeaseItem {
            holder: holder.into(),
            epoch,
            expires_at_ms,
        };
        assert_eq!(
            lease_decision(None, "a", 0),
            LeaseDecision::Take { epoch: 1 }
        );
        assert_eq!(
            lease_decision(Some(&lease("a", 4, 100)), "a", 50),
            LeaseDecision::Take { epoch: 4 },
            "renewal keeps the epoch"
        );
        assert_eq!(
            lease_decision(Some(&lease("a", 4, 100)), "b", 99),
            LeaseDecision::HeldByOther
        );
        assert_eq!(
            lease_decision(Some(&lease("a", 4, 100)), "b", 100),
            LeaseDecision::Take { epoch: 5 },
            "expired at expires_at_ms"
        );
    }
}
