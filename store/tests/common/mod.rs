//! One behaviour suite for every `Store` and `Blobs` adapter: the memory adapters run it in
//! plain unit-test time, the cloud adapters against moto server. Same assertions, so the
//! adapters cannot drift apart.
#![allow(dead_code)] // each test binary uses a part of this module

pub mod moto;

use std::time::Duration;

use async_trait::async_trait;
use barrage_crds::agent_status::{AgentPhase, AgentStatus};
use barrage_crds::items::{self, Attr, Item};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::status::{LoadTestStatus, Phase};
use barrage_store::{Applied, Blobs, PutOnce, Store, StoreError};
use bytes::Bytes;
use chrono::{TimeZone, Utc};

/// Writes an item as a plain `PutItem` would (what CI may do by hand).
#[async_trait]
pub trait RawItems {
    async fn put_raw(&self, item: Item);
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub fn example(name: &str) -> LoadTest {
    LoadTest::example(name, "127.0.0.1:9092", "barrage-test")
}

fn status(phase: Phase) -> LoadTestStatus {
    LoadTestStatus {
        phase,
        ..LoadTestStatus::default()
    }
}

pub async fn generation_bumps_only_when_the_spec_changes(store: &dyn Store) {
    let name = unique("gen");
    let mut lt = example(&name);
    assert_eq!(
        store.apply(&lt).await.expect("create"),
        Applied::Created { generation: 1 }
    );
    assert_eq!(
        store.apply(&lt).await.expect("same again"),
        Applied::Unchanged { generation: 1 }
    );
    let v1 = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (v1.generation, v1.version),
        (1, 0),
        "no status written yet: status version 0"
    );
    let doc = v1.doc.as_ref().expect("parses");
    assert_eq!(doc.spec, lt.spec);
    assert_eq!(doc.metadata.generation, Some(1));
    assert!(
        doc.metadata.uid.is_some(),
        "the store sets a uid on creation"
    );
    assert!(doc.metadata.creation_timestamp.is_some());

    // A status write must not make the next apply look like a change.
    let version = store
        .write_status(&name, &status(Phase::Provisioning), v1.version, 1)
        .await
        .expect("status");
    assert_eq!(
        store.apply(&lt).await.expect("same after status"),
        Applied::Unchanged { generation: 1 }
    );

    lt.spec.agents.count = 3;
    assert_eq!(
        store.apply(&lt).await.expect("update"),
        Applied::Updated { generation: 2 }
    );
    let v2 = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(v2.generation, 2);
    assert_eq!(v2.version, version, "apply never touches the status item");
    assert_eq!(v2.doc.as_ref().expect("parses").spec.agents.count, 3);
    assert_eq!(
        v2.doc.as_ref().expect("parses").metadata.uid,
        doc.metadata.uid,
        "uid survives updates"
    );
    assert_eq!(
        v2.status.as_ref().map(|s| s.phase),
        Some(Phase::Provisioning),
        "apply never touches status"
    );

    // Labels only: written, generation kept.
    lt.metadata.labels.insert("team".into(), "kafka".into());
    assert_eq!(
        store.apply(&lt).await.expect("labels"),
        Applied::Updated { generation: 2 }
    );
    let v3 = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(v3.generation, 2);
    assert_eq!(
        v3.doc.as_ref().expect("parses").metadata.labels.get("team"),
        Some(&"kafka".to_string())
    );
    let listed = store.list_load_tests().await.expect("list");
    assert!(listed.iter().any(|s| s.name == name && s.generation == 2));
}

pub async fn status_writes_are_conditional_on_version_and_epoch(store: &dyn Store) {
    let name = unique("status");
    store.apply(&example(&name)).await.expect("create");
    let v = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");

    let after = store
        .write_status(&name, &status(Phase::Provisioning), v.version, 5)
        .await
        .expect("first status write");
    assert_eq!(after, v.version + 1);

    let stale_version = store
        .write_status(&name, &status(Phase::Running), v.version, 5)
        .await;
    assert!(
        matches!(stale_version, Err(StoreError::Conflict { .. })),
        "a write on a stale version must conflict, got {stale_version:?}"
    );
    let stale_epoch = store
        .write_status(&name, &status(Phase::Running), after, 4)
        .await;
    assert!(
        matches!(stale_epoch, Err(StoreError::Conflict { .. })),
        "a write from an older leader epoch must conflict, got {stale_epoch:?}"
    );
    let newer = store
        .write_status(&name, &status(Phase::Running), after, 6)
        .await
        .expect("a newer epoch may write");

    let got = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.version, newer);
    assert_eq!(got.epoch, 6);
    assert_eq!(got.generation, 1, "status writes never touch generation");
    assert_eq!(got.status.as_ref().map(|s| s.phase), Some(Phase::Running));
    let doc = got.doc.expect("doc untouched and readable");
    assert_eq!(doc.spec, example(&name).spec);
    assert_eq!(doc.status.map(|s| s.phase), Some(Phase::Running));

    let missing = store
        .write_status(&unique("absent"), &status(Phase::Running), 0, 1)
        .await;
    assert!(missing.is_err(), "no status without a record");
}

/// A status as the controller writes it: the generation and digest of the spec it observed.
fn observed(phase: Phase, generation: i64, lt: &LoadTest) -> LoadTestStatus {
    LoadTestStatus {
        phase,
        observed_generation: Some(generation),
        observed_spec_digest: Some(lt.spec.digest()),
        run_id: Some("run-1".into()),
        ..LoadTestStatus::default()
    }
}

pub async fn a_spec_put_again_by_hand_never_touches_status(store: &dyn Store, raw: &dyn RawItems) {
    let name = unique("reput");
    let mut lt = example(&name);
    store.apply(&lt).await.expect("create");
    lt.spec.agents.count = 2;
    store.apply(&lt).await.expect("update to generation 2");
    let running = observed(Phase::Running, 2, &lt);
    let version = store
        .write_status(&name, &running, 0, 1)
        .await
        .expect("status");

    // The same desired state, put by hand (no generation attribute), three times.
    for _ in 0..3 {
        raw.put_raw(raw_item(&name, &lt.to_yaml())).await;
        let got = store
            .get_load_test(&name)
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(
            got.status.as_ref(),
            Some(&running),
            "status survives the put"
        );
        assert_eq!(
            (got.generation, got.version),
            (2, version),
            "nothing changed"
        );
    }
    assert_eq!(
        store.apply(&lt).await.expect("apply"),
        Applied::Unchanged { generation: 2 },
        "apply after a hand put of the same spec is no change"
    );

    // A changed spec put by hand is the next generation; the status is still there.
    let mut changed = lt.clone();
    changed.spec.workload.records.records_per_transaction = 5;
    raw.put_raw(raw_item(&name, &changed.to_json())).await;
    let got = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.generation, 3);
    assert_eq!(
        got.doc.as_ref().expect("parses").metadata.generation,
        Some(3)
    );
    assert_eq!(got.status.as_ref().map(|s| s.phase), Some(Phase::Running));
    let listed = store.list_load_tests().await.expect("list");
    let listed = listed.iter().find(|s| s.name == name).expect("listed");
    assert_eq!((listed.generation, listed.version), (3, version));
    assert_eq!(
        listed.status.as_ref().map(|s| s.phase),
        Some(Phase::Running)
    );
}

pub async fn a_record_of_the_earlier_layout_keeps_its_status(
    store: &dyn Store,
    raw: &dyn RawItems,
) {
    let name = unique("legacy");
    let lt = example(&name);
    let st = observed(Phase::Running, 1, &lt);
    let mut item = raw_item(&name, &lt.to_json());
    item.insert(
        items::ATTR_STATUS.into(),
        Attr::S(serde_json::to_string(&st).expect("json")),
    );
    item.insert(items::ATTR_EPOCH.into(), Attr::N(3));
    item.insert(items::ATTR_VERSION.into(), Attr::N(12));
    raw.put_raw(item).await;
    let got = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        got.status.as_ref(),
        Some(&st),
        "the status inside the spec item is read"
    );
    assert_eq!((got.version, got.epoch), (0, 3));
    // The first status write moves it to the status item, which wins from then on.
    let mut next = st.clone();
    next.phase = Phase::Draining;
    let v = store
        .write_status(&name, &next, got.version, 3)
        .await
        .expect("first write");
    let got = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.status.map(|s| s.phase), Some(Phase::Draining));
    assert_eq!(got.version, v);
}

fn raw_item(name: &str, doc: &str) -> Item {
    let mut item = Item::new();
    item.insert(items::ATTR_PK.into(), Attr::S(items::load_test_pk(name)));
    item.insert(items::ATTR_SK.into(), Attr::S(items::SPEC_SK.into()));
    item.insert(items::ATTR_DOC.into(), Attr::S(doc.into()));
    item
}

pub async fn raw_items_with_only_a_doc_are_readable(store: &dyn Store, raw: &dyn RawItems) {
    // YAML, as CI might PutItem it.
    let name = unique("raw");
    let yaml = example(&name).to_yaml();
    raw.put_raw(raw_item(&name, &yaml)).await;
    let got = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((got.generation, got.version, got.epoch), (1, 0, 0));
    assert_eq!(got.doc.as_ref().expect("parses").spec, example(&name).spec);
    assert!(got.status.is_none());
    // The controller can write status on it (version 0 means "never written").
    let v = store
        .write_status(&name, &status(Phase::Provisioning), 0, 1)
        .await
        .expect("status on a raw item");
    assert_eq!(v, 1);
    // And apply of the same spec is no change; of another spec bumps generation 1 -> 2.
    assert_eq!(
        store.apply(&example(&name)).await.expect("apply"),
        Applied::Unchanged { generation: 1 }
    );
    let mut changed = example(&name);
    changed.spec.agents.count = 2;
    assert_eq!(
        store.apply(&changed).await.expect("apply"),
        Applied::Updated { generation: 2 }
    );

    // JSON text works too.
    let name = unique("rawjson");
    raw.put_raw(raw_item(&name, &example(&name).to_json()))
        .await;
    let got = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");
    assert!(got.doc.is_ok(), "JSON doc: {:?}", got.doc);

    // A document that does not parse is reported with field paths, not dropped.
    let name = unique("malformed");
    let bad = example(&name)
        .to_yaml()
        .replace("bootstrapServers", "bootstrapServer");
    assert_ne!(
        bad,
        example(&name).to_yaml(),
        "the fixture must change the doc"
    );
    raw.put_raw(raw_item(&name, &bad)).await;
    let got = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");
    let err = got.doc.expect_err("malformed doc").to_string();
    assert!(
        err.contains("spec.kafka"),
        "the message names the field path: {err}"
    );
    let listed = store.list_load_tests().await.expect("list");
    assert!(
        listed.iter().any(|s| s.name == name && s.doc.is_err()),
        "a malformed record is listed, not hidden"
    );
}

pub async fn lease_epochs_fence_a_deposed_leader(store: &dyn Store) {
    let t0 = Utc.timestamp_opt(1_800_000_000, 0).single().expect("t0");
    let ttl = Duration::from_secs(10);
    let a = unique("ctl-a");
    let b = unique("ctl-b");

    let first = store
        .acquire_lease(&a, ttl, t0)
        .await
        .expect("acquire")
        .expect("free lease taken");
    let epoch = first.epoch;
    assert!(epoch >= 1);
    assert_eq!(first.expires_at, t0 + chrono::Duration::seconds(10));

    let renewed = store
        .acquire_lease(&a, ttl, t0 + chrono::Duration::seconds(5))
        .await
        .expect("renew")
        .expect("holder renews");
    assert_eq!(renewed.epoch, epoch, "renewing keeps the epoch");

    let refused = store
        .acquire_lease(&b, ttl, t0 + chrono::Duration::seconds(6))
        .await
        .expect("try");
    assert_eq!(refused, None, "a valid lease is not taken over");

    // A LoadTest whose status the first leader writes.
    let name = unique("fenced");
    store.apply(&example(&name)).await.expect("create");
    let v = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");
    let v = store
        .write_status(&name, &status(Phase::Provisioning), v.version, epoch)
        .await
        .expect("leader writes");

    // a pauses past its expiry; b takes over with epoch + 1.
    let taken = store
        .acquire_lease(&b, ttl, t0 + chrono::Duration::seconds(16))
        .await
        .expect("takeover")
        .expect("expired lease taken");
    assert_eq!(taken.epoch, epoch + 1);
    assert_eq!(taken.holder, b);
    let v = store
        .write_status(&name, &status(Phase::Running), v, taken.epoch)
        .await
        .expect("new leader writes");

    // a wakes up, re-reads (fresh version) and still cannot write: its epoch is older.
    let deposed = store
        .write_status(&name, &status(Phase::Failed), v, epoch)
        .await;
    assert!(
        matches!(deposed, Err(StoreError::Conflict { .. })),
        "a deposed leader's write must fail, got {deposed:?}"
    );
    // ... nor get the lease back while b holds it.
    let again = store
        .acquire_lease(&a, ttl, t0 + chrono::Duration::seconds(17))
        .await
        .expect("try");
    assert_eq!(again, None);

    // b releases on shutdown: a takes over at once, with a newer epoch.
    store.release_lease(&taken).await.expect("release");
    let back = store
        .acquire_lease(&a, ttl, t0 + chrono::Duration::seconds(18))
        .await
        .expect("acquire after release")
        .expect("released lease taken");
    assert_eq!(back.epoch, epoch + 2);
}

pub async fn a_deposed_leaders_writes_are_refused_even_where_the_new_leader_has_not_written(
    store: &dyn Store,
) {
    let name = unique("fence");
    store.apply(&example(&name)).await.expect("create");
    let ttl = Duration::from_secs(10);
    let t0 = Utc.timestamp_opt(1_800_000_000, 0).single().expect("t0");
    let old = store
        .acquire_lease("old", ttl, t0)
        .await
        .expect("acquire")
        .expect("free lease");
    let v = store
        .write_status(&name, &status(Phase::Running), 0, old.epoch)
        .await
        .expect("the leader writes");
    // The old leader pauses past its lease; a new one takes over and writes nothing here.
    let new = store
        .acquire_lease("new", ttl, t0 + chrono::Duration::seconds(11))
        .await
        .expect("acquire")
        .expect("expired lease taken");
    assert!(new.epoch > old.epoch);
    let stale = store
        .write_status(&name, &status(Phase::Draining), v, old.epoch)
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "a deposed leader's status write must be refused, got {stale:?}"
    );
    store.request_delete(&name).await.expect("request delete");
    let stale = store.remove(&name, v, old.epoch).await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    let got = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        got.status.map(|s| s.phase),
        Some(Phase::Running),
        "nothing landed"
    );
    store
        .write_status(&name, &status(Phase::Cancelling), v, new.epoch)
        .await
        .expect("the new leader writes");
}

pub async fn delete_is_requested_then_removed_under_the_same_conditions(store: &dyn Store) {
    let name = unique("del");
    store.apply(&example(&name)).await.expect("create");
    let before = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");
    assert!(before.deletion_requested.is_none());
    store.request_delete(&name).await.expect("request delete");
    let marked = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists");
    assert!(marked.deletion_requested.is_some());
    assert_eq!(
        marked.version, before.version,
        "the mark is on the spec item: the status version fences status writes only"
    );
    assert!(
        marked
            .doc
            .as_ref()
            .expect("parses")
            .metadata
            .deletion_timestamp
            .is_some()
    );
    let missing = store.request_delete(&unique("nothing")).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));

    let v = store
        .write_status(&name, &status(Phase::Cancelling), marked.version, 3)
        .await
        .expect("status");
    let stale = store.remove(&name, marked.version, 3).await;
    assert!(matches!(stale, Err(StoreError::Conflict { .. })));
    let old_epoch = store.remove(&name, v, 2).await;
    assert!(matches!(old_epoch, Err(StoreError::Conflict { .. })));
    store.remove(&name, v, 3).await.expect("remove");
    assert!(store.get_load_test(&name).await.expect("get").is_none());
}

pub async fn agent_status_is_listed_per_run(store: &dyn Store) {
    let name = unique("agents");
    let now = Utc.timestamp_opt(1_800_000_000, 0).single().expect("now");
    store.apply(&example(&name)).await.expect("create");
    for (run, slot, inc) in [
        ("run1", 0, 0),
        ("run1", 1, 0),
        ("run1", 1, 1),
        ("run2", 0, 0),
    ] {
        let mut s = AgentStatus::new(&name, run, slot, inc, now);
        s.phase = AgentPhase::Ready;
        s.counters.sent = u64::from(slot * 10 + inc);
        store.put_agent_status(&s).await.expect("put agent status");
    }
    // Overwrite: an agent's own item is replaced by its next heartbeat.
    let mut s = AgentStatus::new(&name, "run1", 0, 0, now);
    s.phase = AgentPhase::Running;
    store.put_agent_status(&s).await.expect("heartbeat");

    let mut run1 = store.list_agent_status(&name, "run1").await.expect("list");
    run1.sort_by_key(|s| (s.slot, s.incarnation));
    let seen: Vec<_> = run1
        .iter()
        .map(|s| (s.slot, s.incarnation, s.phase))
        .collect();
    assert_eq!(
        seen,
        vec![
            (0, 0, AgentPhase::Running),
            (1, 0, AgentPhase::Ready),
            (1, 1, AgentPhase::Ready)
        ]
    );
    assert_eq!(
        store
            .list_agent_status(&name, "run2")
            .await
            .expect("list")
            .len(),
        1
    );
    assert!(
        store
            .list_agent_status(&name, "run3")
            .await
            .expect("list")
            .is_empty()
    );
    // Agent items are not LoadTests.
    let listed = store.list_load_tests().await.expect("list");
    assert_eq!(listed.iter().filter(|s| s.name == name).count(), 1);

    let bad = AgentStatus::new("Not A Name", "run1", 0, 0, now);
    assert!(store.put_agent_status(&bad).await.is_err());
}

pub async fn blobs_are_written_once(blobs: &dyn Blobs) {
    let key = "runs/t/r1/agents/0000-00/000001.hlog";
    assert_eq!(
        blobs
            .put_once(key, Bytes::from("first"), "text/plain")
            .await
            .expect("put once"),
        PutOnce::Created
    );
    assert_eq!(
        blobs
            .put_once(key, Bytes::from("second"), "text/plain")
            .await
            .expect("put twice"),
        PutOnce::AlreadyExists
    );
    assert_eq!(
        blobs.get(key).await.expect("get"),
        Some(Bytes::from("first"))
    );
    assert_eq!(blobs.get("runs/t/none").await.expect("get absent"), None);

    blobs
        .put(
            "runs/t/r1/report/report.json",
            Bytes::from("{}"),
            "application/json",
        )
        .await
        .expect("put");
    blobs
        .put(
            "runs/t/r1/report/report.json",
            Bytes::from("{\"v\":2}"),
            "application/json",
        )
        .await
        .expect("put replaces");
    assert_eq!(
        blobs
            .get("runs/t/r1/report/report.json")
            .await
            .expect("get"),
        Some(Bytes::from("{\"v\":2}"))
    );
    blobs
        .put_once(
            "runs/t/r1/agents/0001-00/000001.hlog",
            Bytes::from("x"),
            "text/plain",
        )
        .await
        .expect("put");
    blobs
        .put_once(
            "runs/t/r2/agents/0000-00/000001.hlog",
            Bytes::from("x"),
            "text/plain",
        )
        .await
        .expect("put");
    assert_eq!(
        blobs.list("runs/t/r1/agents/").await.expect("list"),
        vec![
            "runs/t/r1/agents/0000-00/000001.hlog",
            "runs/t/r1/agents/0001-00/000001.hlog"
        ]
    );
    assert_eq!(blobs.list("runs/t/").await.expect("list").len(), 4);
    assert!(blobs.list("runs/none/").await.expect("list").is_empty());
}

pub async fn racing_controllers_get_one_lease(store: std::sync::Arc<dyn Store>) {
    let now = Utc.timestamp_opt(1_800_000_000, 0).single().expect("now");
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = store.clone();
        racers.spawn(async move {
            store
                .acquire_lease(&format!("ctl-{i}"), Duration::from_secs(30), now)
                .await
                .expect("acquire")
        });
    }
    let mut winners = Vec::new();
    while let Some(result) = racers.join_next().await {
        if let Some(lease) = result.expect("task") {
            winners.push(lease);
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one controller leads: {winners:?}"
    );
    assert_eq!(winners[0].epoch, 1);
}

pub async fn names_that_make_no_key_are_refused_and_lists_are_sorted(store: &dyn Store) {
    let bad = example("Not_A_Name");
    assert!(store.apply(&bad).await.is_err());
    for name in ["c-sorted", "a-sorted", "b-sorted"] {
        store.apply(&example(name)).await.expect("apply");
    }
    let names: Vec<_> = store
        .list_load_tests()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.name)
        .filter(|n| n.ends_with("-sorted"))
        .collect();
    assert_eq!(names, vec!["a-sorted", "b-sorted", "c-sorted"]);
}
