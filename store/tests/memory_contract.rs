//! The adapter behaviour suite against the memory adapters (no services needed).

mod common;

use async_trait::async_trait;
use barrage_crds::items::Item;
use barrage_store::Store;
use barrage_store::memory::{MemoryBlobs, MemoryStore};
use barrage_store::watch::{WatchEvent, WatchOptions};
use common::*;

#[async_trait]
impl RawItems for MemoryStore {
    async fn put_raw(&self, item: Item) {
        self.put_raw_item(item).expect("raw put");
    }
}

#[tokio::test]
async fn memory_generation_bumps_only_when_the_spec_changes() {
    generation_bumps_only_when_the_spec_changes(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_status_writes_are_conditional_on_version_and_epoch() {
    status_writes_are_conditional_on_version_and_epoch(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_raw_items_with_only_a_doc_are_readable() {
    let store = MemoryStore::new();
    raw_items_with_only_a_doc_are_readable(&store, &store).await;
}

#[tokio::test]
async fn memory_lease_epochs_fence_a_deposed_leader() {
    lease_epochs_fence_a_deposed_leader(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_delete_is_requested_then_removed() {
    delete_is_requested_then_removed_under_the_same_conditions(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_agent_status_is_listed_per_run() {
    agent_status_is_listed_per_run(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_blobs_are_written_once() {
    blobs_are_written_once(&MemoryBlobs::new()).await;
}

#[tokio::test]
async fn dir_blobs_are_written_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    blobs_are_written_once(&barrage_store::dir::DirBlobs::new(dir.path())).await;
}

#[tokio::test]
async fn memory_watch_reports_changes_and_asks_for_a_relist_when_it_fell_behind() {
    let store = MemoryStore::new();
    let (mut events, handle) = store.watch(WatchOptions {
        capacity: 2,
        ..WatchOptions::default()
    });
    assert_eq!(events.recv().await, Some(WatchEvent::Relist), "first event");
    let a = unique("a");
    store.apply(&example(&a)).await.expect("apply");
    assert_eq!(events.recv().await, Some(WatchEvent::Changed(a.clone())));

    // Unchanged applies write nothing and say nothing.
    store.apply(&example(&a)).await.expect("apply");
    for i in 0..3 {
        store
            .apply(&example(&format!("{a}-{i}")))
            .await
            .expect("apply");
    }
    // Capacity 2: two changes delivered, the third dropped and replaced by a Relist later.
    assert_eq!(
        events.recv().await,
        Some(WatchEvent::Changed(format!("{a}-0")))
    );
    assert_eq!(
        events.recv().await,
        Some(WatchEvent::Changed(format!("{a}-1")))
    );
    assert!(events.try_recv().is_err(), "nothing else queued yet");
    store.request_delete(&a).await.expect("delete");
    assert_eq!(events.recv().await, Some(WatchEvent::Relist));
    assert_eq!(events.recv().await, Some(WatchEvent::Changed(a.clone())));

    // After shutdown the receiver ends.
    handle.shutdown().await;
    store
        .apply(&example(&unique("later")))
        .await
        .expect("apply");
    assert_eq!(events.recv().await, None);
}

#[tokio::test]
async fn memory_racing_controllers_get_one_lease() {
    racing_controllers_get_one_lease(std::sync::Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn memory_names_that_make_no_key_are_refused_and_lists_are_sorted() {
    names_that_make_no_key_are_refused_and_lists_are_sorted(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_a_spec_put_again_by_hand_never_touches_status() {
    let store = MemoryStore::new();
    a_spec_put_again_by_hand_never_touches_status(&store, &store).await;
}

#[tokio::test]
async fn memory_a_record_of_the_earlier_layout_keeps_its_status() {
    let store = MemoryStore::new();
    a_record_of_the_earlier_layout_keeps_its_status(&store, &store).await;
}

#[tokio::test]
async fn memory_a_deposed_leaders_writes_are_refused_even_where_the_new_leader_has_not_written() {
    a_deposed_leaders_writes_are_refused_even_where_the_new_leader_has_not_written(
        &MemoryStore::new(),
    )
    .await;
}
