//! The blob behaviour suite against S3 on moto server, one fresh bucket per test.

mod common;

use barrage_store::s3::S3Blobs;
use barrage_store::{Blobs, StoreError};
use bytes::Bytes;
use common::moto::moto_config;
use common::*;

#[tokio::test]
async fn s3_blobs_are_written_once() {
    let Some(config) = moto_config().await else {
        return;
    };
    let blobs = S3Blobs::with_config(&config, unique("barrage-test"), "team/a");
    blobs.create_bucket().await.expect("create bucket");
    blobs
        .create_bucket()
        .await
        .expect("creating it again is fine");
    blobs_are_written_once(&blobs).await;
    assert!(
        blobs
            .uri("runs/x")
            .starts_with(&format!("s3://{}/team/a/runs/x", blobs.bucket())),
        "{}",
        blobs.uri("runs/x")
    );
}

#[tokio::test]
async fn s3_keys_live_under_the_prefix_and_prefixes_do_not_see_each_other() {
    let Some(config) = moto_config().await else {
        return;
    };
    let bucket = unique("barrage-test");
    let a = S3Blobs::with_config(&config, bucket.clone(), "a/");
    let b = S3Blobs::with_config(&config, bucket.clone(), "b");
    let root = S3Blobs::with_config(&config, bucket, "");
    a.create_bucket().await.expect("create bucket");
    a.put_once("k", Bytes::from("from a"), "text/plain")
        .await
        .expect("put a");
    b.put_once("k", Bytes::from("from b"), "text/plain")
        .await
        .expect("put b: same key, other prefix");
    assert_eq!(a.get("k").await.expect("get"), Some(Bytes::from("from a")));
    assert_eq!(b.get("k").await.expect("get"), Some(Bytes::from("from b")));
    assert_eq!(a.list("").await.expect("list"), vec!["k"]);
    assert_eq!(root.list("").await.expect("list"), vec!["a/k", "b/k"]);
}

#[tokio::test]
async fn s3_list_paginates_past_a_thousand_keys() {
    let Some(config) = moto_config().await else {
        return;
    };
    let blobs = S3Blobs::with_config(&config, unique("barrage-test"), "p");
    blobs.create_bucket().await.expect("create bucket");
    for i in 0..1005 {
        blobs
            .put_once(
                &format!("runs/t/r/{i:05}"),
                Bytes::from_static(b"x"),
                "text/plain",
            )
            .await
            .expect("put");
    }
    let keys = blobs.list("runs/t/r/").await.expect("list");
    assert_eq!(
        keys.len(),
        1005,
        "ListObjectsV2 returns at most 1000 per page"
    );
    assert_eq!(keys[1004], "runs/t/r/01004");
}

#[tokio::test]
async fn a_missing_bucket_says_how_to_create_it() {
    let Some(config) = moto_config().await else {
        return;
    };
    let blobs = S3Blobs::with_config(&config, unique("no-such-bucket"), "");
    let err = blobs
        .put_once("k", Bytes::from("x"), "text/plain")
        .await
        .expect_err("no bucket");
    match err {
        StoreError::Missing(msg) => {
            assert!(msg.contains(blobs.bucket()), "{msg}");
            assert!(msg.contains("scripts/local-operator.sh up"), "{msg}");
        }
        other => panic!("expected Missing, got {other:?}"),
    }
}
