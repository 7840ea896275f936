//! [`S3Blobs`]: the [`Blobs`] port on an S3 bucket under a key prefix.
//!
//! Write-once is S3's conditional write: `PutObject` with `If-None-Match: *`, answered with
//! 412 `PreconditionFailed` when the key exists ([`PutOnce::AlreadyExists`]). A retried upload
//! can therefore never replace, or count twice, what a first attempt wrote. moto server (5.2.x)
//! implements `If-None-Match: *` on `PutObject` as AWS does (checked by `moto_s3` tests), so
//! there is no HeadObject-then-Put emulation here: such an emulation is racy and would hide a
//! backend that lacks the feature. A 409 `ConditionalRequestConflict` (two conditional writes
//! of one key in flight) is retried; the retry then sees 412.
//!
//! Against an emulator (`AWS_ENDPOINT_URL` set) requests use path-style addressing
//! (`http://host/bucket/key`), which moto needs.
//!
//! Must not: let SDK types out of this file, or overwrite from `put_once`.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use backon::Retryable;
use bytes::Bytes;
use tracing::debug;

use crate::dynamo::load_sdk_config;
use crate::{Blobs, PutOnce, Result, StoreError};

/// Blobs in an S3 bucket, under a key prefix.
#[derive(Clone)]
pub struct S3Blobs {
    client: Client,
    bucket: String,
    /// Empty, or ends with `/`.
    prefix: String,
    region: Option<String>,
}

impl std::fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Blobs")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What an S3 error means to this adapter.
#[derive(Debug, PartialEq, Eq)]
enum S3Failure {
    /// 412: an `If-None-Match: *` write found the key.
    PreconditionFailed,
    /// 409: another conditional write of the key is in flight; retry.
    ConditionalConflict,
    NoSuchBucket,
    NoSuchKey,
    Throttled,
    Other,
}

fn failure_of(code: Option<&str>, http_status: Option<u16>) -> S3Failure {
    match (code, http_status) {
        (Some("PreconditionFailed"), _) | (_, Some(412)) => S3Failure::PreconditionFailed,
        (Some("ConditionalRequestConflict"), _) => S3Failure::ConditionalConflict,
        (Some("NoSuchBucket"), _) => S3Failure::NoSuchBucket,
        (Some("NoSuchKey"), _) => S3Failure::NoSuchKey,
        (Some("SlowDown" | "ThrottlingException" | "RequestLimitExceeded"), _) | (_, Some(503)) => {
            S3Failure::Throttled
        }
        _ => S3Failure::Other,
    }
}

fn classify<E: ProvideErrorMetadata>(err: &SdkError<E>) -> S3Failure {
    let status = err.raw_response().map(|r| r.status().as_u16());
    failure_of(err.code(), status)
}

impl S3Blobs {
    /// Blobs in `bucket` under `prefix`, configured from the environment.
    pub async fn from_env(bucket: impl Into<String>, prefix: impl Into<String>) -> S3Blobs {
        S3Blobs::with_config(&load_sdk_config().await, bucket, prefix)
    }

    /// Blobs in `bucket` under `prefix` with an already loaded configuration.
    pub fn with_config(
        sdk_config: &SdkConfig,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
    ) -> S3Blobs {
        let emulator = sdk_config.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let conf = aws_sdk_s3::config::Builder::from(sdk_config)
            .force_path_style(emulator)
            .retry_config(RetryConfig::standard().with_max_attempts(4))
            .build();
        let prefix = prefix.into();
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        S3Blobs {
            client: Client::from_conf(conf),
            bucket: bucket.into(),
            prefix,
            region: sdk_config.region().map(|r| r.to_string()),
        }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket (for scripts and tests; in AWS the CloudFormation stack does).
    /// A bucket this account already owns is fine.
    pub async fn create_bucket(&self) -> Result<()> {
        let mut req = self.client.create_bucket().bucket(&self.bucket);
        // us-east-1 is the one region that takes no location constraint.
        if let Some(region) = self.region.as_deref().filter(|r| *r != "us-east-1") {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(e) => Err(self.error(&e, "CreateBucket")),
        }
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn error<E>(&self, err: &SdkError<E>, operation: &'static str) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match classify(err) {
            S3Failure::NoSuchBucket => StoreError::Missing(missing_bucket_message(&self.bucket)),
            S3Failure::Throttled | S3Failure::ConditionalConflict => StoreError::Throttled {
                service: "S3",
                operation,
            },
            _ => StoreError::Backend {
                operation,
                message: format!("s3://{}: {}", self.bucket, DisplayErrorContext(err)),
            },
        }
    }

    async fn retrying<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        call.retry(crate::aws::throttle_delays())
            .when(|e: &StoreError| matches!(e, StoreError::Throttled { .. }))
            .notify(|e, delay: Duration| debug!(error = %e, ?delay, "S3 throttled; retrying."))
            .await
    }
}

pub(crate) fn missing_bucket_message(bucket: &str) -> String {
    format!(
        "S3 bucket {bucket:?} does not exist: create it with `scripts/local-operator.sh up` \
         (locally, against the emulator) or deploy the CloudFormation stack in infra/ (in AWS)"
    )
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn put_once(&self, key: &str, body: Bytes, content_type: &str) -> Result<PutOnce> {
        let full = self.full_key(key);
        self.retrying(|| async {
            let sent = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&full)
                .content_type(content_type)
                .if_none_match("*")
                .body(ByteStream::from(body.clone()))
                .send()
                .await;
            match sent {
                Ok(_) => Ok(PutOnce::Created),
                Err(e) if classify(&e) == S3Failure::PreconditionFailed => {
                    Ok(PutOnce::AlreadyExists)
                }
                Err(e) => Err(self.error(&e, "PutObject")),
            }
        })
        .await
    }

    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<()> {
        let full = self.full_key(key);
        self.retrying(|| async {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&full)
                .content_type(content_type)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .map_err(|e| self.error(&e, "PutObject"))?;
            Ok(())
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let full = self.full_key(key);
        self.retrying(|| async {
            let out = match self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if classify(&e) == S3Failure::NoSuchKey => return Ok(None),
                Err(e) => return Err(self.error(&e, "GetObject")),
            };
            let body = out.body.collect().await.map_err(|e| StoreError::Backend {
                operation: "GetObject",
                message: format!("reading s3://{}/{full}: {e}", self.bucket),
            })?;
            Ok(Some(body.into_bytes()))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let full = self.full_key(prefix);
        self.retrying(|| async {
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full)
                .into_paginator()
                .send();
            let mut keys = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| self.error(&e, "ListObjectsV2"))?;
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key())
                        .filter_map(|k| k.strip_prefix(&self.prefix))
                        .map(str::to_string),
                );
            }
            keys.sort();
            Ok(keys)
        })
        .await
    }

    fn uri(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full_key(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_answers_map_to_what_they_mean() {
        assert_eq!(
            failure_of(Some("PreconditionFailed"), Some(412)),
            S3Failure::PreconditionFailed
        );
        assert_eq!(failure_of(None, Some(412)), S3Failure::PreconditionFailed);
        assert_eq!(
            failure_of(Some("ConditionalRequestConflict"), Some(409)),
            S3Failure::ConditionalConflict
        );
        assert_eq!(
            failure_of(Some("NoSuchBucket"), Some(404)),
            S3Failure::NoSuchBucket
        );
        assert_eq!(
            failure_of(Some("SlowDown"), Some(503)),
            S3Failure::Throttled
        );
        assert_eq!(
            failure_of(Some("AccessDenied"), Some(403)),
            S3Failure::Other
        );
    }

    #[test]
    fn the_missing_bucket_message_says_how_to_create_it() {
        let msg = missing_bucket_message("reports");
        assert!(msg.contains("\"reports\""));
        assert!(msg.contains("scripts/local-operator.sh up"));
        assert!(msg.contains("CloudFormation"));
    }
}
