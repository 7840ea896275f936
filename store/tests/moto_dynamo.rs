//! The adapter behaviour suite against DynamoDB on moto server, one fresh table per test.

mod common;

use async_trait::async_trait;
use barrage_crds::items::Item;
use barrage_store::dynamo::DynamoStore;
use barrage_store::{Store, StoreError};
use common::moto::moto_config;
use common::*;

#[async_trait]
impl RawItems for DynamoStore {
    async fn put_raw(&self, item: Item) {
        self.put_raw_item(&item).await.expect("raw PutItem");
    }
}

/// A store on a fresh table, or `None` when there is no emulator (the test then skips).
async fn fresh_store() -> Option<DynamoStore> {
    let config = moto_config().await?;
    let store = DynamoStore::with_config(&config, unique("barrage-test"));
    store.create_table().await.expect("create table");
    Some(store)
}

async fn done(store: DynamoStore) {
    let _ = store.delete_table().await;
}

#[tokio::test]
async fn dynamo_generation_bumps_only_when_the_spec_changes() {
    let Some(store) = fresh_store().await else {
        return;
    };
    generation_bumps_only_when_the_spec_changes(&store).await;
    done(store).await;
}

#[tokio::test]
async fn dynamo_status_writes_are_conditional_on_version_and_epoch() {
    let Some(store) = fresh_store().await else {
        return;
    };
    status_writes_are_conditional_on_version_and_epoch(&store).await;
    done(store).await;
}

#[tokio::test]
async fn dynamo_raw_items_with_only_a_doc_are_readable() {
    let Some(store) = fresh_store().await else {
        return;
    };
    raw_items_with_only_a_doc_are_readable(&store, &store).await;
    done(store).await;
}

#[tokio::test]
async fn dynamo_lease_epochs_fence_a_deposed_leader() {
    let Some(store) = fresh_store().await else {
        return;
    };
    lease_epochs_fence_a_deposed_leader(&store).await;
    done(store).await;
}

#[tokio::test]
async fn dynamo_delete_is_requested_then_removed() {
    let Some(store) = fresh_store().await else {
        return;
    };
    delete_is_requested_then_removed_under_the_same_conditions(&store).await;
    done(store).await;
}

#[tokio::test]
async fn dynamo_agent_status_is_listed_per_run() {
    let Some(store) = fresh_store().await else {
        return;
    };
    agent_status_is_listed_per_run(&store).await;
    done(store).await;
}

#[tokio::test]
async fn dynamo_list_paginates_past_one_page() {
    let Some(store) = fresh_store().await else {
        return;
    };
    // Scan pages hold at most 1 MB: 40 records of ~30 KB each need several pages.
    let padding = "x".repeat(30_000);
    for i in 0..40 {
        let mut lt = example(&format!("page-{i:02}"));
        lt.metadata
            .annotations
            .insert("padding".into(), padding.clone());
        store.apply(&lt).await.expect("apply");
    }
    let mut names: Vec<_> = store
        .list_load_tests()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.name)
        .collect();
    names.sort();
    assert_eq!(names.len(), 40, "every record across pages");
    assert_eq!(names[0], "page-00");
    assert_eq!(names[39], "page-39");
    done(store).await;
}

#[tokio::test]
async fn a_missing_table_says_how_to_create_it() {
    let Some(config) = moto_config().await else {
        return;
    };
    let store = DynamoStore::with_config(&config, unique("no-such-table"));
    let err = store.list_load_tests().await.expect_err("no table");
    match err {
        StoreError::Missing(msg) => {
            assert!(msg.contains(store.table()), "{msg}");
            assert!(msg.contains("scripts/local-operator.sh up"), "{msg}");
        }
        other => panic!("expected Missing, got {other:?}"),
    }
}

#[tokio::test]
async fn dynamo_racing_controllers_get_one_lease() {
    let Some(store) = fresh_store().await else {
        return;
    };
    racing_controllers_get_one_lease(std::sync::Arc::new(store.clone())).await;
    done(store).await;
}

#[tokio::test]
async fn dynamo_names_that_make_no_key_are_refused_and_lists_are_sorted() {
    let Some(store) = fresh_store().await else {
        return;
    };
    names_that_make_no_key_are_refused_and_lists_are_sorted(&store).await;
    done(store).await;
}

#[tokio::test]
async fn dynamo_a_spec_put_again_by_hand_never_touches_status() {
    let Some(store) = fresh_store().await else {
        return;
    };
    a_spec_put_again_by_hand_never_touches_status(&store, &store).await;
    done(store).await;
}

#[tokio::test]
async fn dynamo_a_record_of_the_earlier_layout_keeps_its_status() {
    let Some(store) = fresh_store().await else {
        return;
    };
    a_record_of_the_earlier_layout_keeps_its_status(&store, &store).await;
    done(store).await;
}

#[tokio::test]
async fn dynamo_a_deposed_leaders_writes_are_refused_even_where_the_new_leader_has_not_written() {
    let Some(store) = fresh_store().await else {
        return;
    };
    a_deposed_leaders_writes_are_refused_even_where_the_new_leader_has_not_written(&store).await;
    done(store).await;
}

/// The emulator keeps every acknowledged write while fenced status writes lose their race
/// (real DynamoDB never undoes one). moto's TransactWriteItems copies the whole table first and
/// puts the copy back when the transaction is cancelled, undoing writes other requests made
/// meanwhile, unless `scripts/services.sh` serves DynamoDB requests one at a time
/// (`scripts/moto_server.py`): an agent's Ready write lost that way left a scale-rehearsal run
/// short of one agent for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_no_acknowledged_write_is_undone_by_a_cancelled_transaction() {
    use barrage_crds::agent_status::{AgentPhase, AgentStatus};
    use barrage_crds::status::{LoadTestStatus, Phase};
    use std::sync::Arc;

    let Some(store) = fresh_store().await else {
        return;
    };
    let store = Arc::new(store);
    let name = unique("undone");
    store.apply(&example(&name)).await.expect("create");
    let stale = store
        .get_load_test(&name)
        .await
        .expect("get")
        .expect("exists")
        .version;
    let status = LoadTestStatus {
        phase: Phase::Provisioning,
        ..LoadTestStatus::default()
    };
    store
        .write_status(&name, &status, stale, 1)
        .await
        .expect("the first status write");
    let now = chrono::Utc::now();
    let (writers, per_writer, fenced) = (3u32, 100u32, 2u32);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let (store, name) = (store.clone(), name.clone());
        tasks.spawn(async move {
            let mut acked = 0u64;
            for i in 0..per_writer {
                let mut agent = AgentStatus::new(&name, "run", w * per_writer + i, 0, now);
                agent.phase = AgentPhase::Ready;
                if store.put_agent_status(&agent).await.is_ok() {
                    acked += 1;
                }
            }
            (acked, 0u64)
        });
    }
    for _ in 0..fenced {
        let (store, name, status) = (store.clone(), name.clone(), status.clone());
        tasks.spawn(async move {
            let mut conflicts = 0u64;
            for _ in 0..per_writer {
                if let Err(StoreError::Conflict { .. }) =
                    store.write_status(&name, &status, stale, 1).await
                {
                    conflicts += 1;
                }
            }
            (0u64, conflicts)
        });
    }
    let (mut acked, mut conflicts) = (0u64, 0u64);
    while let Some(done) = tasks.join_next().await {
        let (a, c) = done.expect("no panic");
        acked += a;
        conflicts += c;
    }
    let listed = store
        .list_agent_status(&name, "run")
        .await
        .expect("list the agents")
        .len() as u64;
    println!(
        "acknowledged agent writes {acked}, listed {listed}, cancelled fenced writes {conflicts}"
    );
    assert_eq!(
        conflicts,
        u64::from(fenced * per_writer),
        "every stale fenced write conflicts"
    );
    assert_eq!(
        listed, acked,
        "every acknowledged agent write is still there after the cancelled transactions"
    );
    let store = Arc::into_inner(store).expect("the only owner");
    done(store).await;
}
