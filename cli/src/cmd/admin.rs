//! `barrage admin init` (hidden, for scripts and tests): creates the table (with its stream)
//! and the bucket of `BARRAGE_STORE` / `BARRAGE_BLOBS`.

use crate::Outcome;
use crate::cmd::client::{die, url_from_env};
use barrage_crds::env::{BlobsUrl, StoreUrl};
use barrage_operator::runtime::config as cfgvars;
use barrage_store::dynamo::DynamoStore;
use barrage_store::s3::S3Blobs;
use barrage_store::{Store, StoreError};

/// A step of `init` that failed, with the resource it was about.
#[derive(Debug, thiserror::Error)]
#[error("{step} {name}: {source}")]
pub struct InitError {
    /// What was being done: "checking table", "creating table", "creating bucket".
    step: &'static str,
    /// The table or bucket.
    name: String,
    source: StoreError,
}

/// Creates the table (with its stream) and the bucket if missing.
pub async fn init(store: &StoreUrl, blobs: &BlobsUrl) -> Result<(), InitError> {
    let failed = |step, name: &str| {
        let name = name.to_string();
        move |source| InitError { step, name, source }
    };
    if let StoreUrl::DynamoDb { table } = store {
        let d = DynamoStore::from_env(table.clone()).await;
        match d.list_load_tests().await {
            Ok(_) => println!("table {table}: exists"),
            Err(StoreError::Missing(_)) => {
                d.create_table()
                    .await
                    .map_err(failed("creating table", table))?;
                println!("table {table}: created (with its stream)");
            }
            Err(e) => return Err(failed("checking table", table)(e)),
        }
    }
    if let BlobsUrl::S3 { bucket, prefix } = blobs {
        let b = S3Blobs::from_env(bucket.clone(), prefix.clone()).await;
        b.create_bucket()
            .await
            .map_err(failed("creating bucket", bucket))?;
        println!("bucket {bucket}: ready");
    }
    Ok(())
}

/// `barrage admin init`: the table and the bucket of `BARRAGE_STORE` / `BARRAGE_BLOBS`.
pub async fn admin_init() -> Outcome {
    let (store, blobs) = match (
        url_from_env::<StoreUrl>(cfgvars::BARRAGE_STORE),
        url_from_env::<BlobsUrl>(cfgvars::BARRAGE_BLOBS),
    ) {
        (Ok(store), Ok(blobs)) => (store, blobs),
        (Err(outcome), _) | (_, Err(outcome)) => return outcome,
    };
    match init(&store, &blobs).await {
        Ok(()) => Outcome::Passed,
        Err(e) => die(Outcome::RunError, e),
    }
}
