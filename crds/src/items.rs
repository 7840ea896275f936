//! The DynamoDB item layout: one table, string keys `pk` and `sk`, three kinds of item.
//!
//! | item | `pk` | `sk` | attributes |
//! | --- | --- | --- | --- |
//! | LoadTest (desired state) | `lt#{name}` | `spec` | `doc` (S: the LoadTest without status, JSON; CI may also put YAML or JSON here), `generation` (N, optional), `version` (N, optional, bumped by `barrage apply`), `ttl` (N, optional) |
//! | LoadTest status | `lt#{name}` | `status` | `status` (S: JSON `LoadTestStatus`), `version` (N, bumped on every status write), `epoch` (N: leader epoch of the last status write) |
//! | agent status | `lt#{name}` | `agent#{run_id}#{slot:04}#{incarnation:02}` | `doc` (S: JSON [`AgentStatus`]), `ttl` (N, optional) |
//! | leader lease | `lease#controller` | `lease` | `holder` (S), `epoch` (N), `expires_at_ms` (N) |
//!
//! A LoadTest and its agents share a partition, so one query (`pk = lt#NAME`) reads a test and
//! all its agents, and `begins_with(sk, agent#RUN#)` reads one run's agents.
//!
//! Spec and status are separate items (the Kubernetes status subresource): whoever writes
//! desired state (`barrage apply`, or CI's plain `PutItem` of the spec item) replaces only the
//! spec item and can never destroy the status, which only the controller writes, fenced by
//! its lease epoch. Records of the earlier layout (status as an attribute of the spec item,
//! read as [`LoadTestItem::status`]) are still read; the first status write moves it to the
//! status item.
//!
//! This module owns the names (constants for every attribute and key part), the key builders
//! and parsers, and a typed, SDK-free item model ([`Item`], [`Attr`]) with conversions for each
//! kind, so the DynamoDB adapter and the in-memory store write byte-identical items. It does no
//! I/O.

use std::collections::BTreeMap;

use crate::agent_status::AgentStatus;
use crate::keys::{MAX_INCARNATION, MAX_SLOT, is_valid_load_test_name, is_valid_run_id};

/// Partition key attribute (S).
pub const ATTR_PK: &str = "pk";
/// Sort key attribute (S).
pub const ATTR_SK: &str = "sk";
/// The document: a LoadTest (without status) or an AgentStatus, as text (S).
pub const ATTR_DOC: &str = "doc";
/// The LoadTest's generation: bumped when its spec changes (N).
pub const ATTR_GENERATION: &str = "generation";
/// The item's version: bumped on every write, for optimistic concurrency (N).
pub const ATTR_VERSION: &str = "version";
/// The LoadTest's status, JSON (S).
pub const ATTR_STATUS: &str = "status";
/// The leader epoch of the last status write, or the lease's current epoch (N).
pub const ATTR_EPOCH: &str = "epoch";
/// Expiry time in epoch seconds, for DynamoDB's TTL (N).
pub const ATTR_TTL: &str = "ttl";
/// Who holds the lease (S).
pub const ATTR_HOLDER: &str = "holder";
/// When the lease expires, epoch milliseconds (N).
pub const ATTR_EXPIRES_AT_MS: &str = "expires_at_ms";

/// Prefix of a LoadTest partition key.
pub const LOAD_TEST_PK_PREFIX: &str = "lt#";
/// Sort key of a LoadTest item.
pub const SPEC_SK: &str = "spec";
/// Sort key of a LoadTest's status item.
pub const STATUS_SK: &str = "status";
/// Prefix of an agent status sort key.
pub const AGENT_SK_PREFIX: &str = "agent#";
/// Partition key of the controller's leader lease.
pub const LEASE_PK: &str = "lease#controller";
/// Sort key of the controller's leader lease.
pub const LEASE_SK: &str = "lease";

/// `lt#{name}`.
pub fn load_test_pk(name: &str) -> String {
    format!("{LOAD_TEST_PK_PREFIX}{name}")
}

/// The LoadTest name of a `lt#{name}` partition key, if it is one with a valid name.
pub fn parse_load_test_pk(pk: &str) -> Option<&str> {
    pk.strip_prefix(LOAD_TEST_PK_PREFIX)
        .filter(|name| is_valid_load_test_name(name))
}

/// `agent#{run_id}#`: the sort key prefix of one run's agents (for `begins_with`).
pub fn agent_sk_prefix(run_id: &str) -> String {
    format!("{AGENT_SK_PREFIX}{run_id}#")
}

/// `agent#{run_id}#{slot:04}#{incarnation:02}`.
pub fn agent_sk(run_id: &str, slot: u32, incarnation: u32) -> String {
    format!("{}{slot:04}#{incarnation:02}", agent_sk_prefix(run_id))
}

/// The parts of an agent status sort key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentSk {
    /// The run id.
    pub run_id: String,
    /// The agent's slot.
    pub slot: u32,
    /// The agent's incarnation.
    pub incarnation: u32,
}

fn fixed_digits(s: &str, width: usize, max: u32) -> Option<u32> {
    if s.len() == width && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok().filter(|n| *n <= max)
    } else {
        None
    }
}

/// Parses a canonical agent status sort key (valid run id, exactly 4 and 2 digits).
pub fn parse_agent_sk(sk: &str) -> Option<AgentSk> {
    let rest = sk.strip_prefix(AGENT_SK_PREFIX)?;
    let mut parts = rest.split('#');
    let (run_id, slot, incarnation) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_valid_run_id(run_id) {
        return None;
    }
    Some(AgentSk {
        run_id: run_id.to_string(),
        slot: fixed_digits(slot, 4, MAX_SLOT)?,
        incarnation: fixed_digits(incarnation, 2, MAX_INCARNATION)?,
    })
}

/// What an item is, by its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKey {
    /// A LoadTest item.
    LoadTest {
        /// The LoadTest's name.
        name: String,
    },
    /// A LoadTest's status item.
    Status {
        /// The LoadTest's name.
        name: String,
    },
    /// An agent status item.
    Agent {
        /// The LoadTest's name.
        load_test: String,
        /// The sort key's parts.
        agent: AgentSk,
    },
    /// The controller's leader lease.
    Lease,
}

impl ItemKey {
    /// Classifies an item by its keys; `None` for keys this layout does not define.
    pub fn parse(pk: &str, sk: &str) -> Option<ItemKey> {
        if pk == LEASE_PK {
            return (sk == LEASE_SK).then_some(ItemKey::Lease);
        }
        let name = parse_load_test_pk(pk)?.to_string();
        if sk == SPEC_SK {
            return Some(ItemKey::LoadTest { name });
        }
        if sk == STATUS_SK {
            return Some(ItemKey::Status { name });
        }
        Some(ItemKey::Agent {
            load_test: name,
            agent: parse_agent_sk(sk)?,
        })
    }

    /// The `(pk, sk)` of this item.
    pub fn keys(&self) -> (String, String) {
        match self {
            ItemKey::LoadTest { name } => (load_test_pk(name), SPEC_SK.to_string()),
            ItemKey::Status { name } => (load_test_pk(name), STATUS_SK.to_string()),
            ItemKey::Agent { load_test, agent } => (
                load_test_pk(load_test),
                agent_sk(&agent.run_id, agent.slot, agent.incarnation),
            ),
            ItemKey::Lease => (LEASE_PK.to_string(), LEASE_SK.to_string()),
        }
    }
}

/// One attribute value: the two DynamoDB types this layout uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Attr {
    /// A string (`S`).
    S(String),
    /// A number (`N`); this layout only stores integers.
    N(i128),
}

/// An item: attribute name to value.
pub type Item = BTreeMap<String, Attr>;

/// Why an item does not fit this layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// A required attribute is absent.
    #[error("item attribute {0:?} is missing")]
    Missing(&'static str),
    /// An attribute has the wrong type or an out-of-range value.
    #[error("item attribute {attr:?}: {rule}")]
    Invalid {
        /// The attribute.
        attr: &'static str,
        /// The rule it breaks.
        rule: String,
    },
    /// The keys are not those of the expected kind of item.
    #[error("item keys pk={pk:?} sk={sk:?} are not those of {expected}")]
    WrongKeys {
        /// The partition key found.
        pk: String,
        /// The sort key found.
        sk: String,
        /// The kind of item expected.
        expected: &'static str,
    },
    /// The agent status document is not valid JSON for an `AgentStatus`.
    #[error("item attribute \"doc\": not an AgentStatus: {0}")]
    AgentDoc(String),
}

fn get_s<'a>(item: &'a Item, attr: &'static str) -> Result<&'a str, ItemError> {
    match item.get(attr) {
        Some(Attr::S(s)) => Ok(s),
        Some(Attr::N(_)) => Err(ItemError::Invalid {
            attr,
            rule: "must be a string (S)".to_string(),
        }),
        None => Err(ItemError::Missing(attr)),
    }
}

fn opt_s(item: &Item, attr: &'static str) -> Result<Option<String>, ItemError> {
    match item.get(attr) {
        None => Ok(None),
        Some(_) => get_s(item, attr).map(|s| Some(s.to_string())),
    }
}

fn get_n<T: TryFrom<i128>>(item: &Item, attr: &'static str) -> Result<T, ItemError> {
    match item.get(attr) {
        Some(Attr::N(n)) => T::try_from(*n).map_err(|_| ItemError::Invalid {
            attr,
            rule: format!("number {n} is out of range"),
        }),
        Some(Attr::S(_)) => Err(ItemError::Invalid {
            attr,
            rule: "must be a number (N)".to_string(),
        }),
        None => Err(ItemError::Missing(attr)),
    }
}

fn opt_n<T: TryFrom<i128>>(item: &Item, attr: &'static str) -> Result<Option<T>, ItemError> {
    match item.get(attr) {
        None => Ok(None),
        Some(_) => get_n(item, attr).map(Some),
    }
}

fn keys_of(item: &Item) -> Result<(&str, &str), ItemError> {
    Ok((get_s(item, ATTR_PK)?, get_s(item, ATTR_SK)?))
}

/// A LoadTest item, typed. `doc` and `status` stay text: parsing them is the resource
/// module's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadTestItem {
    /// The LoadTest's name (from `pk`).
    pub name: String,
    /// The LoadTest without status, as YAML or JSON text.
    pub doc: String,
    /// The spec's generation.
    pub generation: i64,
    /// The item's version, bumped on every write.
    pub version: u64,
    /// The status as JSON, in records of the earlier layout only (status inside the spec
    /// item); written by nothing now.
    pub status: Option<String>,
    /// The leader epoch of that status write (0 before any).
    pub epoch: u64,
    /// Expiry, epoch seconds.
    pub ttl: Option<i64>,
}

impl LoadTestItem {
    /// The item's attributes.
    pub fn to_item(&self) -> Item {
        let mut item = Item::new();
        item.insert(ATTR_PK.into(), Attr::S(load_test_pk(&self.name)));
        item.insert(ATTR_SK.into(), Attr::S(SPEC_SK.into()));
        item.insert(ATTR_DOC.into(), Attr::S(self.doc.clone()));
        item.insert(ATTR_GENERATION.into(), Attr::N(self.generation.into()));
        item.insert(ATTR_VERSION.into(), Attr::N(self.version.into()));
        if let Some(status) = &self.status {
            item.insert(ATTR_STATUS.into(), Attr::S(status.clone()));
        }
        item.insert(ATTR_EPOCH.into(), Attr::N(self.epoch.into()));
        if let Some(ttl) = self.ttl {
            item.insert(ATTR_TTL.into(), Attr::N(ttl.into()));
        }
        item
    }

    /// Reads a LoadTest item. `generation`, `version` and `epoch` default to 1, 0 and 0 when
    /// absent, so an item put by hand (CI's `PutItem` with only `pk`, `sk` and `doc`) is
    /// accepted.
    pub fn from_item(item: &Item) -> Result<LoadTestItem, ItemError> {
        let (pk, sk) = keys_of(item)?;
        let name = match ItemKey::parse(pk, sk) {
            Some(ItemKey::LoadTest { name }) => name,
            _ => {
                return Err(ItemError::WrongKeys {
                    pk: pk.to_string(),
                    sk: sk.to_string(),
                    expected: "a LoadTest (pk lt#NAME, sk spec)",
                });
            }
        };
        Ok(LoadTestItem {
            name,
            doc: get_s(item, ATTR_DOC)?.to_string(),
            generation: opt_n(item, ATTR_GENERATION)?.unwrap_or(1),
            version: opt_n(item, ATTR_VERSION)?.unwrap_or(0),
            status: opt_s(item, ATTR_STATUS)?,
            epoch: opt_n(item, ATTR_EPOCH)?.unwrap_or(0),
            ttl: opt_n(item, ATTR_TTL)?,
        })
    }
}

/// A LoadTest's status item, typed. `status` stays text: parsing it is the resource module's
/// job (a status that does not parse must stop the controller from acting, never read as "no
/// status").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusItem {
    /// The LoadTest's name (from `pk`).
    pub name: String,
    /// The status as JSON.
    pub status: String,
    /// Bumped on every status write; status writes are conditional on it.
    pub version: u64,
    /// The leader epoch of the last status write.
    pub epoch: u64,
}

impl StatusItem {
    /// The item's attributes.
    pub fn to_item(&self) -> Item {
        let mut item = Item::new();
        item.insert(ATTR_PK.into(), Attr::S(load_test_pk(&self.name)));
        item.insert(ATTR_SK.into(), Attr::S(STATUS_SK.into()));
        item.insert(ATTR_STATUS.into(), Attr::S(self.status.clone()));
        item.insert(ATTR_VERSION.into(), Attr::N(self.version.into()));
        item.insert(ATTR_EPOCH.into(), Attr::N(self.epoch.into()));
        item
    }

    /// Reads a status item.
    pub fn from_item(item: &Item) -> Result<StatusItem, ItemError> {
        let (pk, sk) = keys_of(item)?;
        let Some(ItemKey::Status { name }) = ItemKey::parse(pk, sk) else {
            return Err(ItemError::WrongKeys {
                pk: pk.to_string(),
                sk: sk.to_string(),
                expected: "a LoadTest status (pk lt#NAME, sk status)",
            });
        };
        Ok(StatusItem {
            name,
            status: get_s(item, ATTR_STATUS)?.to_string(),
            version: get_n(item, ATTR_VERSION)?,
            epoch: get_n(item, ATTR_EPOCH)?,
        })
    }
}

/// An agent status item, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatusItem {
    /// The agent's status.
    pub status: AgentStatus,
    /// Expiry, epoch seconds.
    pub ttl: Option<i64>,
}

impl AgentStatusItem {
    /// The item's attributes; the keys come from the status's own fields.
    pub fn to_item(&self) -> Item {
        let s = &self.status;
        let mut item = Item::new();
        item.insert(ATTR_PK.into(), Attr::S(load_test_pk(&s.load_test)));
        item.insert(
            ATTR_SK.into(),
            Attr::S(agent_sk(&s.run_id, s.slot, s.incarnation)),
        );
        item.insert(ATTR_DOC.into(), Attr::S(s.to_json()));
        if let Some(ttl) = self.ttl {
            item.insert(ATTR_TTL.into(), Attr::N(ttl.into()));
        }
        item
    }

    /// Reads an agent status item, checking that the document agrees with the keys.
    pub fn from_item(item: &Item) -> Result<AgentStatusItem, ItemError> {
        let (pk, sk) = keys_of(item)?;
        let wrong = || ItemError::WrongKeys {
            pk: pk.to_string(),
            sk: sk.to_string(),
            expected: "an agent status (pk lt#NAME, sk agent#RUN#SLOT#INCARNATION)",
        };
        let Some(ItemKey::Agent { load_test, agent }) = ItemKey::parse(pk, sk) else {
            return Err(wrong());
        };
        let status = AgentStatus::from_json(get_s(item, ATTR_DOC)?)
            .map_err(|e| ItemError::AgentDoc(e.to_string()))?;
        if status.load_test != load_test
            || status.run_id != agent.run_id
            || status.slot != agent.slot
            || status.incarnation != agent.incarnation
        {
            return Err(ItemError::Invalid {
                attr: ATTR_DOC,
                rule: format!(
                    "the status is for {}/{} slot {} incarnation {}, not the item's keys",
                    status.load_test, status.run_id, status.slot, status.incarnation
                ),
            });
        }
        Ok(AgentStatusItem {
            status,
            ttl: opt_n(item, ATTR_TTL)?,
        })
    }
}

/// The controller's leader lease, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseItem {
    /// Who holds it (a controller instance id).
    pub holder: String,
    /// The leader epoch, bumped on every change of holder.
    pub epoch: u64,
    /// When it expires, epoch milliseconds.
    pub expires_at_ms: i64,
}

impl LeaseItem {
    /// The item's attributes.
    pub fn to_item(&self) -> Item {
        let mut item = Item::new();
        item.insert(ATTR_PK.into(), Attr::S(LEASE_PK.into()));
        item.insert(ATTR_SK.into(), Attr::S(LEASE_SK.into()));
        item.insert(ATTR_HOLDER.into(), Attr::S(self.holder.clone()));
        item.insert(ATTR_EPOCH.into(), Attr::N(self.epoch.into()));
        item.insert(
            ATTR_EXPIRES_AT_MS.into(),
            Attr::N(self.expires_at_ms.into()),
        );
        item
    }

    /// Reads the lease item.
    pub fn from_item(item: &Item) -> Result<LeaseItem, ItemError> {
        let (pk, sk) = keys_of(item)?;
        if ItemKey::parse(pk, sk) != Some(ItemKey::Lease) {
            return Err(ItemError::WrongKeys {
                pk: pk.to_string(),
                sk: sk.to_string(),
                expected: "the lease (pk lease#controller, sk lease)",
            });
        }
        Ok(LeaseItem {
            holder: get_s(item, ATTR_HOLDER)?.to_string(),
            epoch: get_n(item, ATTR_EPOCH)?,
            expires_at_ms: get_n(item, ATTR_EXPIRES_AT_MS)?,
        })
    }

    /// Whether the lease has expired at `now_ms` (epoch milliseconds).
    pub fn is_expired(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_at_ms
    }
}
