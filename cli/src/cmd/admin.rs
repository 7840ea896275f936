//! `barrage admin init` (hidden, for scripts and tests): creates the table (with its stream)
//! and the bucket of `BARRAGE_STORE` / `BARRAGE_BLOBS`.

use crate::Outcome;
use crate::cmd::client::die;
use barrage_crds::env::{BlobsUrl, StoreUrl};
use barrage_operator::runtime::config::{self as cfgvars, ControllerConfig};
use barrage_store::dynamo::DynamoStore;
use barrage_store::s3::S3Blobs;
use barrage_store::{Store, StoreError};

/// Creates the table (with its stream) and the bucket if missing.
pub async fn init(store: &StoreUrl, blobs: &BlobsUrl) -> Result<(), String> {
    if let StoreUrl::DynamoDb { table } = store {
        let d = DynamoStore::from_env(table.clone()).await;
        match d.list_load_tests().await {
            Ok(_) => println!("table {table}: exists"),
            Err(StoreError::Missing(_)) => {
                d.create_table()
                    .await
                    .map_err(|e| format!("creating table {table}: {e}"))?;
                println!("table {table}: created (with its stream)");
            }
            Err(e) => return Err(format!("checking table {table}: {e}")),
        }
    }
    if let BlobsUrl::S3 { bucket, prefix } = blobs {
        let b = S3Blobs::from_env(bucket.clone(), prefix.clone()).await;
        b.create_bucket()
            .await
            .map_err(|e| format!("creating bucket {bucket}: {e}"))?;
        println!("bucket {bucket}: ready");
    }
    Ok(())
}

/// `barrage admin init`: the table and the bucket of `BARRAGE_STORE` / `BARRAGE_BLOBS`.
pub async fn admin_init() -> Outcome {
    let cfg = match ControllerConfig::from_lookup(|k| match k {
        cfgvars::BARRAGE_LAUNCHER => Some("process".into()),
        _ => std::env::var(k).ok(),
    }) {
        Ok(c) => c,
        Err(e) => return die(Outcome::InvalidInput, e),
    };
    match init(&cfg.store, &cfg.blobs).await {
        Ok(()) => Outcome::Passed,
        Err(e) => die(Outcome::RunError, e),
    }
}
