//! [`DynamoStore`]: the [`Store`] port on one DynamoDB table, in the
//! [`barrage_crds::items`] layout (string keys `pk`, `sk`).
//!
//! The rules (what `apply` writes, how a record is read, lease decisions) are shared with the
//! memory store (`crate::rules`); this file only turns them into conditional
//! DynamoDB calls:
//! - `apply`: read, compare spec, then `PutItem` with `attribute_not_exists(pk)` (create) or
//!   `UpdateItem` of `doc`/`generation`/`version` with `version = :seen` (update). Status and
//!   epoch are never touched. A lost race re-reads and re-plans (a few times).
//! - `write_status`: `UpdateItem SET status, version = version + 1, epoch = :mine` on
//!   `version = :seen AND (attribute_not_exists(epoch) OR epoch <= :mine)`; never `doc` or
//!   `generation`.
//! - the lease: a conditional `PutItem` on exactly what was read (compare-and-set), so two
//!   controllers can never both win; the epoch grows on every change of holder.
//!
//! An item put by hand (only `pk`, `sk` and `doc`, YAML or JSON) reads as generation 1,
//! version 0; "version 0" conditions accept an absent `version` attribute.
//!
//! Errors: a failed condition is [`StoreError::Conflict`]; throttling is
//! [`StoreError::Throttled`] after the SDK's own retries and a capped, jittered backoff here;
//! a missing table is [`StoreError::Missing`] naming the table and how to create it.
//!
//! Must not: let SDK types out of this file (except to [`crate::streams`]), write `doc` from a
//! status write, or write without a condition where two writers can race.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement,
    KeyType, Put, ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus,
    TimeToLiveSpecification, TransactWriteItem, Update,
};
use backon::Retryable;
use barrage_crds::agent_status::AgentStatus;
use barrage_crds::items::{
    self, ATTR_DOC, ATTR_EPOCH, ATTR_EXPIRES_AT_MS, ATTR_GENERATION, ATTR_HOLDER, ATTR_PK, ATTR_SK,
    ATTR_STATUS, ATTR_TTL, ATTR_VERSION, AgentStatusItem, Attr, Item, LeaseItem, LoadTestItem,
    StatusItem,
};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::status::LoadTestStatus;
use chrono::{DateTime, Utc};
use tracing::{debug, warn};

use crate::rules::{
    AGENT_STATUS_TTL_SECS, ATTR_DELETION_REQUESTED_MS, ApplyPlan, LeaseDecision,
    check_agent_status_keys, check_load_test_name, lease_decision, lease_from_item, millis,
    plan_apply, status_json, stored_from_items, version_of,
};
use crate::{Applied, Lease, Result, Store, StoreError, StoredLoadTest};

/// How many times `apply` re-reads and re-plans after losing a race (to a status write).
const APPLY_ATTEMPTS: usize = 5;

/// LoadTests, agent status and the leader lease in one DynamoDB table.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    sdk_config: SdkConfig,
    table: String,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// The SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL`).
pub(crate) async fn load_sdk_config() -> SdkConfig {
    crate::aws::sdk_config().await
}

impl DynamoStore {
    /// A store on `table`, configured from the environment (`AWS_REGION`, credentials,
    /// `AWS_ENDPOINT_URL` for an emulator).
    pub async fn from_env(table: impl Into<String>) -> DynamoStore {
        DynamoStore::with_config(&load_sdk_config().await, table)
    }

    /// A store on `table` with an already loaded configuration.
    pub fn with_config(sdk_config: &SdkConfig, table: impl Into<String>) -> DynamoStore {
        let conf = aws_sdk_dynamodb::config::Builder::from(sdk_config)
            .retry_config(RetryConfig::standard().with_max_attempts(4))
            .build();
        DynamoStore {
            client: Client::from_conf(conf),
            sdk_config: sdk_config.clone(),
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn sdk_config(&self) -> &SdkConfig {
        &self.sdk_config
    }

    /// Creates the table (keys `pk`/`sk`, on-demand, stream with new and old images, TTL on
    /// `ttl`) and waits until it is active. For scripts and tests; in AWS the CloudFormation
    /// stack creates it.
    pub async fn create_table(&self) -> Result<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
        };
        let build_err = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Backend {
            operation: "CreateTable",
            message: e.to_string(),
        };
        let stream = StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewAndOldImages)
            .build()
            .map_err(build_err)?;
        self.client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attr(ATTR_PK).map_err(build_err)?)
            .attribute_definitions(attr(ATTR_SK).map_err(build_err)?)
            .key_schema(key(ATTR_PK, KeyType::Hash).map_err(build_err)?)
            .key_schema(key(ATTR_SK, KeyType::Range).map_err(build_err)?)
            .billing_mode(BillingMode::PayPerRequest)
            .stream_specification(stream)
            .send()
            .await
            .map_err(|e| self.classify(e, "CreateTable", "the table"))?;
        for _ in 0..300 {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| self.classify(e, "DescribeTable", "the table"))?;
            let status = described.table().and_then(|t| t.table_status());
            if status == Some(&TableStatus::Active) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(ATTR_TTL)
            .build()
            .map_err(build_err)?;
        if let Err(e) = self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl)
            .send()
            .await
        {
            // Not fatal: items then simply do not expire.
            warn!(table = %self.table, error = %DisplayErrorContext(&e), "Could not enable TTL.");
        }
        Ok(())
    }

    /// Deletes the table (tests clean up with it).
    pub async fn delete_table(&self) -> Result<()> {
        self.client
            .delete_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| self.classify(e, "DeleteTable", "the table"))?;
        Ok(())
    }

    /// Writes an item as a plain `PutItem` would: no condition, no bookkeeping. This is what
    /// CI may do by hand; the store must read such items (tests use it to prove that).
    pub async fn put_raw_item(&self, item: &Item) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attribute_map(item)))
            .send()
            .await
            .map_err(|e| self.classify(e, "PutItem", "a raw item"))?;
        Ok(())
    }

    /// Maps an SDK error: failed condition, throttling, missing table, or anything else.
    fn classify<E, R>(&self, err: SdkError<E, R>, operation: &'static str, what: &str) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        error_for_code(err.code(), &self.table, operation, what, || {
            DisplayErrorContext(&err).to_string()
        })
    }

    /// Runs `call`, retrying with the jittered, capped [`crate::aws::THROTTLE_BACKOFF`] while it
    /// is throttled.
    async fn retrying<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        call.retry(crate::aws::throttle_delays())
            .when(|e: &StoreError| matches!(e, StoreError::Throttled { .. }))
            .notify(|e, delay| debug!(error = %e, ?delay, "Throttled; retrying."))
            .await
    }

    async fn get_item(&self, pk: &str, sk: &str) -> Result<Option<Item>> {
        self.retrying(|| async {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key(ATTR_PK, AttributeValue::S(pk.to_string()))
                .key(ATTR_SK, AttributeValue::S(sk.to_string()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| self.classify(e, "GetItem", pk))?;
            Ok(out.item().map(from_attribute_map))
        })
        .await
    }

    /// One conditional write that either lands or reports `Conflict`.
    async fn put_item(
        &self,
        item: &Item,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
        what: &str,
    ) -> Result<()> {
        let map = to_attribute_map(item);
        self.retrying(|| async {
            let mut req = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(map.clone()))
                .condition_expression(condition);
            for (k, v) in names {
                req = req.expression_attribute_names(*k, *v);
            }
            for (k, v) in &values {
                req = req.expression_attribute_values(*k, v.clone());
            }
            req.send()
                .await
                .map_err(|e| self.classify(e, "PutItem", what))?;
            Ok(())
        })
        .await
    }

    async fn update_item(
        &self,
        key: (&str, &str),
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        what: &str,
    ) -> Result<()> {
        self.retrying(|| async {
            let mut req = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(ATTR_PK, AttributeValue::S(key.0.to_string()))
                .key(ATTR_SK, AttributeValue::S(key.1.to_string()))
                .update_expression(update)
                .condition_expression(condition)
                .set_expression_attribute_names(names_in(&[update, condition]));
            for (k, v) in &values {
                req = req.expression_attribute_values(*k, v.clone());
            }
            req.send()
                .await
                .map_err(|e| self.classify(e, "UpdateItem", what))?;
            Ok(())
        })
        .await
    }

    /// Runs `write` in one transaction with two checks: the record's spec item still exists
    /// (no status for a record that is gone), and no controller holds the lease with an epoch
    /// newer than `epoch` (a deposed leader's write fails even where the new leader has not
    /// written yet).
    async fn fenced(
        &self,
        write: TransactWriteItem,
        pk: &str,
        epoch: u64,
        what: &str,
    ) -> Result<()> {
        let spec_exists = ConditionCheck::builder()
            .table_name(&self.table)
            .key(ATTR_PK, s(pk))
            .key(ATTR_SK, s(items::SPEC_SK))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", ATTR_PK)
            .build()
            .map_err(build_error)?;
        let no_newer_leader = ConditionCheck::builder()
            .table_name(&self.table)
            .key(ATTR_PK, s(items::LEASE_PK))
            .key(ATTR_SK, s(items::LEASE_SK))
            .condition_expression("attribute_not_exists(#pk) OR #epoch <= :mine")
            .expression_attribute_names("#pk", ATTR_PK)
            .expression_attribute_names("#epoch", ATTR_EPOCH)
            .expression_attribute_values(":mine", n(epoch))
            .build()
            .map_err(build_error)?;
        let checks = [
            write,
            TransactWriteItem::builder()
                .condition_check(spec_exists)
                .build(),
            TransactWriteItem::builder()
                .condition_check(no_newer_leader)
                .build(),
        ];
        self.retrying(|| async {
            self.client
                .transact_write_items()
                .set_transact_items(Some(checks.to_vec()))
                .send()
                .await
                .map_err(|e| self.classify(e, "TransactWriteItems", what))?;
            Ok(())
        })
        .await
    }

    /// One conditional `DeleteItem` that either lands or reports `Conflict`.
    async fn delete_item(
        &self,
        key: (&str, &str),
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        what: &str,
    ) -> Result<()> {
        self.retrying(|| async {
            let mut req = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key(ATTR_PK, AttributeValue::S(key.0.to_string()))
                .key(ATTR_SK, AttributeValue::S(key.1.to_string()))
                .condition_expression(condition)
                .set_expression_attribute_names(names_in(&[condition]));
            for (k, v) in &values {
                req = req.expression_attribute_values(*k, v.clone());
            }
            req.send()
                .await
                .map_err(|e| self.classify(e, "DeleteItem", what))?;
            Ok(())
        })
        .await
    }

    /// Every item of one partition whose sort key starts with `sk_prefix`.
    async fn query_prefix(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>> {
        self.retrying(|| async {
            let mut pages = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", ATTR_PK)
                .expression_attribute_names("#sk", ATTR_SK)
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
                .expression_attribute_values(":prefix", AttributeValue::S(sk_prefix.to_string()))
                .consistent_read(true)
                .into_paginator()
                .items()
                .send();
            let mut out = Vec::new();
            while let Some(item) = pages.next().await {
                let item = item.map_err(|e| self.classify(e, "Query", pk))?;
                out.push(from_attribute_map(&item));
            }
            Ok(out)
        })
        .await
    }
}

/// Placeholders for every attribute name an expression uses (several are reserved words).
const ATTR_NAMES: &[(&str, &str)] = &[
    ("#pk", ATTR_PK),
    ("#doc", ATTR_DOC),
    ("#generation", ATTR_GENERATION),
    ("#version", ATTR_VERSION),
    ("#status", ATTR_STATUS),
    ("#epoch", ATTR_EPOCH),
    ("#holder", ATTR_HOLDER),
    ("#expires", ATTR_EXPIRES_AT_MS),
    ("#deletion", ATTR_DELETION_REQUESTED_MS),
];

/// The `#name` placeholders the expressions use, with the attributes they stand for; `None`
/// when there are none (DynamoDB refuses an empty map).
fn names_in(expressions: &[&str]) -> Option<HashMap<String, String>> {
    let names: HashMap<String, String> = ATTR_NAMES
        .iter()
        .filter(|(k, _)| expressions.iter().any(|e| e.contains(k)))
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    (!names.is_empty()).then_some(names)
}

/// "The record is still at version `seen`": an absent `version` (an item put by hand) counts
/// as version 0.
fn version_condition(seen: u64) -> &'static str {
    if seen == 0 {
        "(attribute_not_exists(#version) OR #version = :seen)"
    } else {
        "#version = :seen"
    }
}

/// The condition every controller write of a LoadTest carries: same version, no newer leader.
fn fenced_condition(seen: u64) -> String {
    format!(
        "attribute_exists(#pk) AND {} AND (attribute_not_exists(#epoch) OR #epoch <= :mine)",
        version_condition(seen)
    )
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend {
        operation: "TransactWriteItems",
        message: format!("building the request: {e}"),
    }
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// What a DynamoDB error code means to the store.
fn error_for_code(
    code: Option<&str>,
    table: &str,
    operation: &'static str,
    what: &str,
    message: impl FnOnce() -> String,
) -> StoreError {
    match code {
        // A transaction is cancelled when one of its conditions fails (or it raced another).
        Some("ConditionalCheckFailedException" | "TransactionCanceledException") => {
            StoreError::Conflict {
                what: what.to_string(),
            }
        }
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded",
        ) => StoreError::Throttled {
            service: "DynamoDB",
            operation,
        },
        Some("ResourceNotFoundException") => StoreError::Missing(missing_table_message(table)),
        _ => StoreError::Backend {
            operation,
            message: message(),
        },
    }
}

pub(crate) fn missing_table_message(table: &str) -> String {
    format!(
        "DynamoDB table {table:?} does not exist: create it with `scripts/local-operator.sh up` \
         (locally, against the emulator) or deploy the CloudFormation stack in infra/ (in AWS)"
    )
}

fn to_attribute_map(item: &Item) -> HashMap<String, AttributeValue> {
    item.iter()
        .map(|(k, v)| {
            let v = match v {
                Attr::S(text) => AttributeValue::S(text.clone()),
                Attr::N(num) => AttributeValue::N(num.to_string()),
            };
            (k.clone(), v)
        })
        .collect()
}

/// The attributes this layout uses (strings and integers); anything else is left out, so a
/// required attribute of another type reads as missing.
fn from_attribute_map(map: &HashMap<String, AttributeValue>) -> Item {
    map.iter()
        .filter_map(|(k, v)| match v {
            AttributeValue::S(text) => Some((k.clone(), Attr::S(text.clone()))),
            AttributeValue::N(num) => num.parse::<i128>().ok().map(|n| (k.clone(), Attr::N(n))),
            _ => None,
        })
        .collect()
}

#[async_trait]
impl Store for DynamoStore {
    async fn list_load_tests(&self) -> Result<Vec<StoredLoadTest>> {
        self.retrying(|| async {
            let mut pages = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#sk IN (:spec, :status)")
                .expression_attribute_names("#sk", ATTR_SK)
                .expression_attribute_values(":spec", s(items::SPEC_SK))
                .expression_attribute_values(":status", s(items::STATUS_SK))
                .consistent_read(true)
                .into_paginator()
                .items()
                .send();
            let mut specs = Vec::new();
            let mut statuses = HashMap::new();
            while let Some(item) = pages.next().await {
                let item =
                    from_attribute_map(&item.map_err(|e| self.classify(e, "Scan", "LoadTests"))?);
                match (item.get(ATTR_PK), item.get(ATTR_SK)) {
                    (Some(Attr::S(pk)), Some(Attr::S(sk))) if sk == items::STATUS_SK => {
                        statuses.insert(pk.clone(), item);
                    }
                    _ => specs.push(item),
                }
            }
            let mut out = Vec::new();
            for spec in &specs {
                let status = match spec.get(ATTR_PK) {
                    Some(Attr::S(pk)) => statuses.get(pk),
                    _ => None,
                };
                match stored_from_items(spec, status) {
                    Some(stored) => out.push(stored),
                    None => {
                        warn!(table = %self.table, "Skipped an item with keys outside the layout.")
                    }
                }
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }

    async fn get_load_test(&self, name: &str) -> Result<Option<StoredLoadTest>> {
        let pk = items::load_test_pk(name);
        let Some(spec) = self.get_item(&pk, items::SPEC_SK).await? else {
            return Ok(None);
        };
        let status = self.get_item(&pk, items::STATUS_SK).await?;
        Ok(stored_from_items(&spec, status.as_ref()))
    }

    async fn apply(&self, load_test: &LoadTest) -> Result<Applied> {
        let name = load_test.name();
        check_load_test_name(name)?;
        let pk = items::load_test_pk(name);
        for attempt in 1..=APPLY_ATTEMPTS {
            let spec_version = self
                .get_item(&pk, items::SPEC_SK)
                .await?
                .as_ref()
                .map(version_of);
            let existing = match spec_version {
                Some(_) => self.get_load_test(name).await?,
                None => None,
            };
            let uid = uuid::Uuid::new_v4().to_string();
            let written = match plan_apply(existing.as_ref(), load_test, Utc::now(), &uid) {
                ApplyPlan::Unchanged { generation } => {
                    return Ok(Applied::Unchanged { generation });
                }
                ApplyPlan::Create { doc } => {
                    let item = LoadTestItem {
                        name: name.to_string(),
                        doc,
                        generation: 1,
                        version: 1,
                        status: None,
                        epoch: 0,
                        ttl: None,
                    }
                    .to_item();
                    self.put_item(
                        &item,
                        "attribute_not_exists(#pk)",
                        &[("#pk", ATTR_PK)],
                        vec![],
                        name,
                    )
                    .await
                    .map(|()| Applied::Created { generation: 1 })
                }
                ApplyPlan::Update {
                    doc, generation, ..
                } => {
                    let seen = spec_version.unwrap_or(0);
                    self.update_item(
                        (&pk, items::SPEC_SK),
                        "SET #doc = :doc, #generation = :generation, \
                         #version = if_not_exists(#version, :zero) + :one",
                        &format!("attribute_exists(#pk) AND {}", version_condition(seen)),
                        vec![
                            (":doc", s(doc)),
                            (":generation", n(generation)),
                            (":zero", n(0)),
                            (":one", n(1)),
                            (":seen", n(seen)),
                        ],
                        name,
                    )
                    .await
                    .map(|()| Applied::Updated { generation })
                }
            };
            match written {
                Err(StoreError::Conflict { .. }) => {
                    debug!(load_test = %name, attempt, "Apply lost a race; reading again.");
                }
                other => return other,
            }
        }
        Err(StoreError::Conflict {
            what: format!("LoadTest {name} (still changing after {APPLY_ATTEMPTS} attempts)"),
        })
    }

    async fn write_status(
        &self,
        name: &str,
        status: &LoadTestStatus,
        expected_version: u64,
        epoch: u64,
    ) -> Result<u64> {
        let json = status_json(status)?;
        let pk = items::load_test_pk(name);
        let what = format!("status of {name}");
        let write = if expected_version == 0 {
            let item = StatusItem {
                name: name.to_string(),
                status: json,
                version: 1,
                epoch,
            }
            .to_item();
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(to_attribute_map(&item)))
                        .condition_expression("attribute_not_exists(#pk)")
                        .expression_attribute_names("#pk", ATTR_PK)
                        .build()
                        .map_err(build_error)?,
                )
                .build()
        } else {
            let update = "SET #status = :status, #version = #version + :one, #epoch = :mine";
            let condition = fenced_condition(expected_version);
            let b = Update::builder()
                .table_name(&self.table)
                .key(ATTR_PK, s(pk.clone()))
                .key(ATTR_SK, s(items::STATUS_SK))
                .update_expression(update)
                .condition_expression(&condition)
                .expression_attribute_values(":status", s(json))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":seen", n(expected_version))
                .expression_attribute_values(":mine", n(epoch))
                .set_expression_attribute_names(names_in(&[update, &condition]));
            TransactWriteItem::builder()
                .update(b.build().map_err(build_error)?)
                .build()
        };
        self.fenced(write, &pk, epoch, &what).await?;
        Ok(expected_version + 1)
    }

    async fn request_delete(&self, name: &str) -> Result<()> {
        let result = self
            .update_item(
                (&items::load_test_pk(name), items::SPEC_SK),
                "SET #deletion = if_not_exists(#deletion, :now), \
                 #version = if_not_exists(#version, :zero) + :one",
                "attribute_exists(#pk)",
                vec![
                    (":now", n(millis(Utc::now()))),
                    (":zero", n(0)),
                    (":one", n(1)),
                ],
                name,
            )
            .await;
        match result {
            Err(StoreError::Conflict { .. }) => Err(StoreError::NotFound {
                what: format!("LoadTest {name}"),
            }),
            other => other,
        }
    }

    async fn remove(&self, name: &str, expected_version: u64, epoch: u64) -> Result<()> {
        let pk = items::load_test_pk(name);
        let write = if expected_version == 0 {
            // "No status written yet": true only while no status item exists.
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key(ATTR_PK, s(pk.clone()))
                .key(ATTR_SK, s(items::STATUS_SK))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", ATTR_PK)
                .build()
                .map_err(build_error)?;
            TransactWriteItem::builder().condition_check(check).build()
        } else {
            let condition = fenced_condition(expected_version);
            let delete = Delete::builder()
                .table_name(&self.table)
                .key(ATTR_PK, s(pk.clone()))
                .key(ATTR_SK, s(items::STATUS_SK))
                .condition_expression(&condition)
                .expression_attribute_values(":seen", n(expected_version))
                .expression_attribute_values(":mine", n(epoch))
                .set_expression_attribute_names(names_in(&[&condition]));
            TransactWriteItem::builder()
                .delete(delete.build().map_err(build_error)?)
                .build()
        };
        self.fenced(write, &pk, epoch, &format!("removal of {name}"))
            .await?;
        // Only the spec whose delete was requested: one put again since is wanted, and stays.
        let spec = self
            .delete_item(
                (&pk, items::SPEC_SK),
                "attribute_exists(#deletion)",
                vec![],
                &format!("removal of {name}"),
            )
            .await;
        match spec {
            Err(StoreError::Conflict { .. }) => {
                debug!(load_test = %name, "The spec was put again after the delete; it stays.");
                return Ok(());
            }
            other => other?,
        }
        // The record is gone; its agents' status items go too (best effort: they also expire).
        match self.query_prefix(&pk, items::AGENT_SK_PREFIX).await {
            Ok(agents) => {
                for item in agents {
                    let Some(Attr::S(sk)) = item.get(ATTR_SK) else {
                        continue;
                    };
                    let deleted = self
                        .client
                        .delete_item()
                        .table_name(&self.table)
                        .key(ATTR_PK, s(pk.clone()))
                        .key(ATTR_SK, s(sk.clone()))
                        .send()
                        .await;
                    if let Err(e) = deleted {
                        warn!(load_test = %name, error = %DisplayErrorContext(&e), "Could not delete an agent status item.");
                    }
                }
            }
            Err(e) => {
                warn!(load_test = %name, error = %e, "Could not list agent status items to delete.")
            }
        }
        Ok(())
    }

    async fn put_agent_status(&self, status: &AgentStatus) -> Result<()> {
        check_agent_status_keys(status)?;
        let item = AgentStatusItem {
            status: status.clone(),
            ttl: Some(status.heartbeat_at.timestamp() + AGENT_STATUS_TTL_SECS),
        }
        .to_item();
        let map = to_attribute_map(&item);
        self.retrying(|| async {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(map.clone()))
                .send()
                .await
                .map_err(|e| self.classify(e, "PutItem", "agent status"))?;
            Ok(())
        })
        .await
    }

    async fn list_agent_status(&self, load_test: &str, run_id: &str) -> Result<Vec<AgentStatus>> {
        let found = self
            .query_prefix(
                &items::load_test_pk(load_test),
                &items::agent_sk_prefix(run_id),
            )
            .await?;
        Ok(found
            .iter()
            .filter_map(|item| match AgentStatusItem::from_item(item) {
                Ok(it) => Some(it.status),
                Err(e) => {
                    warn!(load_test, run_id, error = %e, "Skipped an unreadable agent status item.");
                    None
                }
            })
            .collect())
    }

    async fn acquire_lease(
        &self,
        holder: &str,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Lease>> {
        let expires_at =
            now + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
        let current = match self.get_item(items::LEASE_PK, items::LEASE_SK).await? {
            Some(item) => Some(lease_from_item(&item)?),
            None => None,
        };
        let LeaseDecision::Take { epoch } = lease_decision(current.as_ref(), holder, millis(now))
        else {
            return Ok(None);
        };
        let item = LeaseItem {
            holder: holder.to_string(),
            epoch,
            expires_at_ms: millis(expires_at),
        }
        .to_item();
        // Compare-and-set on what was read: of two controllers racing for the same lease
        // only one write lands.
        let written = match &current {
            None => {
                self.put_item(
                    &item,
                    "attribute_not_exists(#pk)",
                    &[("#pk", ATTR_PK)],
                    vec![],
                    "the leader lease",
                )
                .await
            }
            Some(seen) => {
                self.put_item(
                    &item,
                    "#epoch = :seen_epoch AND #holder = :seen_holder AND (#expires <= :now OR #holder = :me)",
                    &[
                        ("#epoch", ATTR_EPOCH),
                        ("#holder", ATTR_HOLDER),
                        ("#expires", ATTR_EXPIRES_AT_MS),
                    ],
                    vec![
                        (":seen_epoch", n(seen.epoch)),
                        (":seen_holder", s(seen.holder.clone())),
                        (":now", n(millis(now))),
                        (":me", s(holder)),
                    ],
                    "the leader lease",
                )
                .await
            }
        };
        match written {
            Ok(()) => Ok(Some(Lease {
                holder: holder.to_string(),
                epoch,
                expires_at,
            })),
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        let released = self
            .update_item(
                (items::LEASE_PK, items::LEASE_SK),
                "SET #expires = :zero",
                "#holder = :me AND #epoch = :epoch",
                vec![
                    (":zero", n(0)),
                    (":me", s(lease.holder.clone())),
                    (":epoch", n(lease.epoch)),
                ],
                "the leader lease",
            )
            .await;
        match released {
            // Someone else holds it already: nothing to give up.
            Err(StoreError::Conflict { .. }) => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_survive_the_round_trip_through_attribute_values() {
        let mut item = Item::new();
        item.insert("pk".into(), Attr::S("lt#a".into()));
        item.insert("version".into(), Attr::N(12));
        item.insert("big".into(), Attr::N(i128::from(u64::MAX)));
        assert_eq!(from_attribute_map(&to_attribute_map(&item)), item);
    }

    #[test]
    fn attributes_of_other_types_read_as_absent() {
        let mut map = HashMap::new();
        map.insert("doc".to_string(), AttributeValue::Bool(true));
        map.insert("version".to_string(), AttributeValue::N("1.5".into()));
        assert!(from_attribute_map(&map).is_empty());
    }

    #[test]
    fn version_zero_accepts_an_item_put_by_hand() {
        assert!(fenced_condition(0).contains("attribute_not_exists(#version)"));
        assert!(!fenced_condition(3).contains("attribute_not_exists(#version)"));
        assert!(fenced_condition(3).contains("#epoch <= :mine"));
    }

    #[test]
    fn every_placeholder_in_the_expressions_has_a_name() {
        for (placeholder, _) in ATTR_NAMES {
            assert!(placeholder.starts_with('#'));
        }
        let cond = fenced_condition(1);
        for token in cond.split(|c: char| !(c == '#' || c.is_alphanumeric() || c == '_')) {
            if token.starts_with('#') {
                assert!(ATTR_NAMES.iter().any(|(p, _)| *p == token), "{token}");
            }
        }
    }

    #[test]
    fn dynamodb_error_codes_map_to_what_they_mean() {
        let map = |code| error_for_code(Some(code), "t", "PutItem", "lt#a", || "m".into());
        assert!(matches!(
            map("ConditionalCheckFailedException"),
            StoreError::Conflict { what } if what == "lt#a"
        ));
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
        ] {
            assert!(
                matches!(
                    map(code),
                    StoreError::Throttled {
                        service: "DynamoDB",
                        operation: "PutItem"
                    }
                ),
                "{code}"
            );
        }
        assert!(
            matches!(map("ResourceNotFoundException"), StoreError::Missing(m) if m.contains("\"t\""))
        );
        assert!(matches!(
            map("ValidationException"),
            StoreError::Backend { message, .. } if message == "m"
        ));
    }

    #[test]
    fn the_missing_table_message_says_how_to_create_it() {
        let msg = missing_table_message("barrage");
        assert!(msg.contains("\"barrage\""));
        assert!(msg.contains("scripts/local-operator.sh up"));
        assert!(msg.contains("CloudFormation"));
    }
}
