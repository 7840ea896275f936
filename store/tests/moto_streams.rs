//! The DynamoDB Streams watch against moto server.

mod common;

use std::time::Duration;

use barrage_crds::agent_status::AgentStatus;
use barrage_store::Store;
use barrage_store::dynamo::DynamoStore;
use barrage_store::watch::{WatchEvent, WatchOptions, Watchable};
use chrono::Utc;
use common::moto::moto_config;
use common::*;
use tokio::sync::mpsc::Receiver;

async fn next(rx: &mut Receiver<WatchEvent>) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a watch event within 10 s")
        .expect("the watch is running")
}

#[tokio::test]
async fn the_watch_yields_the_names_of_changed_load_tests() {
    let Some(config) = moto_config().await else {
        return;
    };
    let store = DynamoStore::with_config(&config, unique("barrage-test"));
    store.create_table().await.expect("create table");
    let before = unique("before");
    store
        .apply(&example(&before))
        .await
        .expect("apply before watch");

    let (mut events, handle) = store.watch(WatchOptions {
        poll_interval: Duration::from_millis(100),
        ..WatchOptions::default()
    });
    // First event: positioned at LATEST, list everything now.
    assert_eq!(next(&mut events).await, WatchEvent::Relist);

    let a = unique("a");
    store.apply(&example(&a)).await.expect("apply a");
    assert_eq!(next(&mut events).await, WatchEvent::Changed(a.clone()));

    // A status write and an agent heartbeat are changes of that LoadTest too.
    let v = store.get_load_test(&a).await.expect("get").expect("exists");
    store
        .write_status(&a, &Default::default(), v.version, 1)
        .await
        .expect("status");
    assert_eq!(next(&mut events).await, WatchEvent::Changed(a.clone()));
    store
        .put_agent_status(&AgentStatus::new(&a, "run1", 0, 0, Utc::now()))
        .await
        .expect("agent status");
    assert_eq!(next(&mut events).await, WatchEvent::Changed(a.clone()));

    // The lease is not a LoadTest: nothing for it; the next change is b's.
    store
        .acquire_lease("ctl", Duration::from_secs(10), Utc::now())
        .await
        .expect("lease")
        .expect("free");
    let b = unique("b");
    store.apply(&example(&b)).await.expect("apply b");
    assert_eq!(next(&mut events).await, WatchEvent::Changed(b.clone()));
    assert!(
        events.try_recv().is_err(),
        "no event for the record written before the watch, nor for the lease"
    );

    handle.shutdown().await;
    let _ = store.delete_table().await;
}
