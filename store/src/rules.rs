//! The rules both the memory and the DynamoDB adapter follow. Pure: no I/O, no SDK types.
//!
//! Must not: perform I/O, or hold a rule only one adapter applies.

use barrage_crds::items::{
    ATTR_EPOCH, ATTR_GENERATION, ATTR_PK, ATTR_SK, ATTR_STATUS, ATTR_VERSION, Attr, Item, ItemKey,
    LeaseItem, LoadTestItem, StatusItem,
};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::status::LoadTestStatus;
use barrage_crds::validate;
use chrono::{DateTime, TimeZone, Utc};

use crate::{DocError, StoreError, StoredLoadTest};

/// When a delete was requested, epoch milliseconds (N). Kept beside `doc` rather than in
/// it, so a delete works even on a record whose document does not parse.
pub const ATTR_DELETION_REQUESTED_MS: &str = "deletion_requested_ms";

/// How long an agent status item is kept after its last heartbeat (DynamoDB TTL).
pub const AGENT_STATUS_TTL_SECS: i64 = 30 * 24 * 3600;

/// Reads a stored document (YAML or JSON). Parsing only: validation is the controller's
/// (an invalid spec becomes `Failed`/`SpecInvalid` there). When it does not parse, the
/// message lists every problem with its field path.
pub fn parse_doc(name: &str, text: &str) -> Result<LoadTest, DocError> {
    match LoadTest::from_text(text) {
        Ok(lt) if lt.metadata.name == name => Ok(lt),
        Ok(lt) => Err(DocError::NameMismatch {
            key: name.to_string(),
            found: lt.metadata.name,
        }),
        Err(first) => match validate::parse_and_validate(text) {
            Err(all) => Err(DocError::Invalid(all)),
            Ok(_) => Err(DocError::Parse(first)),
        },
    }
}

fn n_or(item: &Item, attr: &str, default: i128) -> i128 {
    match item.get(attr) {
        Some(Attr::N(n)) => *n,
        _ => default,
    }
}

/// Reads a LoadTest record from its spec item and, once the controller wrote one, its
/// status item. `None` when the spec item's keys are not a LoadTest's. A record whose `doc`
/// is missing or unreadable is still returned, with `doc = Err(why)`, so the controller can
/// mark it failed instead of never seeing it. Without a status item the status of the
/// earlier layout (an attribute of the spec item) is read, so no record loses its status.
pub fn stored_from_items(spec: &Item, status: Option<&Item>) -> Option<StoredLoadTest> {
    let (Some(Attr::S(pk)), Some(Attr::S(sk))) = (spec.get(ATTR_PK), spec.get(ATTR_SK)) else {
        return None;
    };
    let Some(ItemKey::LoadTest { name }) = ItemKey::parse(pk, sk) else {
        return None;
    };
    let deletion_requested = match spec.get(ATTR_DELETION_REQUESTED_MS) {
        Some(Attr::N(ms)) => i64::try_from(*ms)
            .ok()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        _ => None,
    };
    let read = read_status(&name, spec, status);
    let (item_generation, doc) = match LoadTestItem::from_item(spec) {
        Ok(it) => (it.generation, parse_doc(&name, &it.doc)),
        Err(e) => (
            i64::try_from(n_or(spec, ATTR_GENERATION, 1)).unwrap_or(1),
            Err(DocError::Item(e)),
        ),
    };
    let generation = effective_generation(item_generation, &doc, read.status.as_ref());
    let doc = doc.map(|mut lt| {
        lt.metadata.generation = Some(generation);
        lt.metadata.resource_version = Some(read.version.to_string());
        if deletion_requested.is_some() {
            lt.metadata.deletion_timestamp = deletion_requested;
        }
        lt.status = read.status.clone();
        lt
    });
    Some(StoredLoadTest {
        name,
        version: read.version,
        generation,
        doc,
        status: read.status,
        status_error: read.error,
        epoch: read.epoch,
        deletion_requested,
    })
}

/// The status part of a record, from wherever it is kept.
struct ReadStatus {
    status: Option<LoadTestStatus>,
    error: Option<String>,
    version: u64,
    epoch: u64,
}

fn read_status(name: &str, spec: &Item, status: Option<&Item>) -> ReadStatus {
    let decode = |json: &str| {
        serde_json::from_str::<LoadTestStatus>(json).map_err(|e| {
            tracing::error!(load_test = %name, error = %e, "The stored status does not decode.");
            format!("the stored status does not decode: {e}")
        })
    };
    let (json, version, epoch) = match status {
        Some(item) => match StatusItem::from_item(item) {
            Ok(it) => (Some(it.status), it.version, it.epoch),
            Err(e) => {
                return ReadStatus {
                    status: None,
                    error: Some(format!("the status item is malformed: {e}")),
                    version: version_of(item),
                    epoch: u64::try_from(n_or(item, ATTR_EPOCH, 0)).unwrap_or(0),
                };
            }
        },
        // The earlier layout: status inside the spec item, no status item yet.
        None => match spec.get(ATTR_STATUS) {
            Some(Attr::S(json)) => (
                Some(json.clone()),
                0,
                u64::try_from(n_or(spec, ATTR_EPOCH, 0)).unwrap_or(0),
            ),
            _ => (None, 0, 0),
        },
    };
    let (status, error) = match json.as_deref().map(decode) {
        None => (None, None),
        Some(Ok(st)) => (Some(st), None),
        Some(Err(e)) => (None, Some(e)),
    };
    ReadStatus {
        status,
        error,
        version,
        epoch,
    }
}

/// The generation of a record, whoever wrote it. `barrage apply` bumps the spec item's
/// `generation`; a spec put by hand carries none (or a stale one), so the digest the
/// controller recorded of the spec it last observed decides: the same spec keeps the
/// observed generation, a different one is the next.
pub fn effective_generation(
    item_generation: i64,
    doc: &Result<LoadTest, DocError>,
    status: Option<&LoadTestStatus>,
) -> i64 {
    let Some(st) = status else {
        return item_generation;
    };
    let observed = st.observed_generation.unwrap_or(0);
    let changed = match (doc, &st.observed_spec_digest) {
        (Ok(lt), Some(digest)) => lt.spec.digest() != *digest,
        _ => false,
    };
    item_generation.max(observed + i64::from(changed))
}

/// The version as stored (0 when absent: an item put by hand).
pub fn version_of(item: &Item) -> u64 {
    u64::try_from(n_or(item, ATTR_VERSION, 0)).unwrap_or(0)
}

/// What `apply` must write.
#[derive(Debug, Clone, PartialEq)]
pub enum ApplyPlan {
    /// No record yet: create it.
    Create { doc: String },
    /// Rewrite `doc`; `generation` is the new one (bumped only if the spec changed).
    Update {
        doc: String,
        generation: i64,
        spec_changed: bool,
    },
    /// Same spec and metadata: write nothing.
    Unchanged { generation: i64 },
}

/// The document as stored: no status, no store bookkeeping (generation and version live in
/// their own attributes).
pub fn doc_text(lt: &LoadTest) -> String {
    let mut doc = lt.without_status();
    doc.metadata.generation = None;
    doc.metadata.resource_version = None;
    doc.metadata.deletion_timestamp = None;
    serde_json::to_string(&doc.to_value()).unwrap_or_default()
}

/// Decides what `apply(lt)` writes given the stored record. Labels and annotations are
/// updated without a generation bump; uid, creation time and finalizers stay the store's.
pub fn plan_apply(
    existing: Option<&StoredLoadTest>,
    lt: &LoadTest,
    now: DateTime<Utc>,
    new_uid: &str,
) -> ApplyPlan {
    let fresh = |lt: &LoadTest| {
        let mut doc = lt.clone();
        doc.metadata.uid = Some(new_uid.to_string());
        doc.metadata.creation_timestamp = Some(now);
        doc
    };
    let Some(existing) = existing else {
        return ApplyPlan::Create {
            doc: doc_text(&fresh(lt)),
        };
    };
    match &existing.doc {
        Ok(old) => {
            let spec_changed = old.spec != lt.spec;
            let meta_changed = old.metadata.labels != lt.metadata.labels
                || old.metadata.annotations != lt.metadata.annotations;
            if !spec_changed && !meta_changed {
                return ApplyPlan::Unchanged {
                    generation: existing.generation,
                };
            }
            let mut doc = lt.clone();
            doc.metadata.uid = old.metadata.uid.clone();
            doc.metadata.creation_timestamp = old.metadata.creation_timestamp;
            doc.metadata.finalizers = old.metadata.finalizers.clone();
            ApplyPlan::Update {
                doc: doc_text(&doc),
                generation: existing.generation + i64::from(spec_changed),
                spec_changed,
            }
        }
        // The stored document is unreadable: whatever is applied now is a new spec.
        Err(_) => ApplyPlan::Update {
            doc: doc_text(&fresh(lt)),
            generation: existing.generation + 1,
            spec_changed: true,
        },
    }
}

/// What `acquire_lease` does given the current lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseDecision {
    /// Write the lease for the caller with this epoch (same epoch when renewing).
    Take { epoch: u64 },
    /// Another holder's lease is still valid.
    HeldByOther,
}

pub fn lease_decision(current: Option<&LeaseItem>, holder: &str, now_ms: i64) -> LeaseDecision {
    match current {
        None => LeaseDecision::Take { epoch: 1 },
        Some(lease) if lease.holder == holder => LeaseDecision::Take { epoch: lease.epoch },
        Some(lease) if lease.is_expired(now_ms) => LeaseDecision::Take {
            epoch: lease.epoch + 1,
        },
        Some(_) => LeaseDecision::HeldByOther,
    }
}

/// Reads the lease item, naming what is wrong with it.
pub fn lease_from_item(item: &Item) -> Result<LeaseItem, StoreError> {
    LeaseItem::from_item(item).map_err(|e| StoreError::Corrupt {
        what: "the leader lease".to_string(),
        message: e.to_string(),
    })
}

/// The status attribute's JSON.
pub fn status_json(status: &LoadTestStatus) -> Result<String, StoreError> {
    serde_json::to_string(status).map_err(|e| StoreError::Backend {
        operation: "write_status",
        message: format!("cannot serialize the status: {e}"),
    })
}

/// Checks an agent status's names before it becomes a key.
pub fn check_agent_status_keys(
    s: &barrage_crds::agent_status::AgentStatus,
) -> Result<(), StoreError> {
    use barrage_crds::keys::{
        LOAD_TEST_NAME_RULE, MAX_INCARNATION, MAX_SLOT, RUN_ID_RULE, is_valid_load_test_name,
        is_valid_run_id,
    };
    let problem = if !is_valid_load_test_name(&s.load_test) {
        Some(format!(
            "load test name {:?} {LOAD_TEST_NAME_RULE}",
            s.load_test
        ))
    } else if !is_valid_run_id(&s.run_id) {
        Some(format!("run id {:?} {RUN_ID_RULE}", s.run_id))
    } else if s.slot > MAX_SLOT || s.incarnation > MAX_INCARNATION {
        Some(format!(
            "slot {} / incarnation {} out of range (max {MAX_SLOT} / {MAX_INCARNATION})",
            s.slot, s.incarnation
        ))
    } else {
        None
    };
    match problem {
        Some(message) => Err(StoreError::Backend {
            operation: "put_agent_status",
            message,
        }),
        None => Ok(()),
    }
}

/// A LoadTest name must make a valid key, or the record could never be read back.
pub fn check_load_test_name(name: &str) -> Result<(), StoreError> {
    use barrage_crds::keys::{LOAD_TEST_NAME_RULE, is_valid_load_test_name};
    if is_valid_load_test_name(name) {
        Ok(())
    } else {
        Err(StoreError::Backend {
            operation: "apply",
            message: format!("metadata.name: {name:?} {LOAD_TEST_NAME_RULE}"),
        })
    }
}

/// `lt#{name}` when `pk` is a LoadTest partition (LoadTest or agent item).
pub fn load_test_of_pk(pk: &str) -> Option<String> {
    barrage_crds::items::parse_load_test_pk(pk).map(str::to_string)
}

/// Milliseconds since the epoch.
pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Whether a status write with `epoch` may land on an item whose last writer had `stored`.
pub fn epoch_allows(stored: Option<u64>, epoch: u64) -> bool {
    stored.is_none_or(|stored| stored <= epoch)
}
