//! The store's own record of what it accepted: every change of a table, read back from its
//! DynamoDB stream (from the oldest record on, every shard), as a client other than Barrage
//! reads it. A write the store refused leaves no record here.

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};

/// One accepted change of an item.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub event: String,
    /// The item's keys.
    pub pk: String,
    pub sk: String,
    /// `epoch` of the item after the change (status items and the lease carry one).
    pub epoch: Option<u64>,
    /// `holder` of the item after the change (the lease).
    pub holder: Option<String>,
}

/// Every change of `table` in its stream, in the order the store accepted them (records of
/// one shard are ordered; moto keeps one shard per table).
pub fn changes(table: &str) -> Vec<Change> {
    crate::operator::rt().block_on(async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
        let described = dynamo
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("describe the table");
        let arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .expect("the table has a stream")
            .to_string();
        let stream = streams
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await
            .expect("describe its stream");
        let shards: Vec<String> = stream
            .stream_description()
            .map(|d| {
                d.shards()
                    .iter()
                    .filter_map(|s| s.shard_id())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let mut out = Vec::new();
        for shard in shards {
            out.extend(shard_changes(&streams, &arn, &shard).await);
        }
        out
    })
}

async fn shard_changes(
    streams: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
    shard: &str,
) -> Vec<Change> {
    let mut iterator = streams
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("a shard iterator")
        .shard_iterator;
    let mut out = Vec::new();
    // Bounded: a shard of a test's table holds a few thousand records at most.
    for _ in 0..1_000 {
        let Some(it) = iterator.take() else { break };
        let page = streams
            .get_records()
            .shard_iterator(it)
            .limit(1_000)
            .send()
            .await
            .expect("get records");
        if page.records().is_empty() {
            break;
        }
        out.extend(page.records().iter().filter_map(change));
        iterator = page.next_shard_iterator;
    }
    out
}

fn change(record: &aws_sdk_dynamodbstreams::types::Record) -> Option<Change> {
    let data = record.dynamodb()?;
    let keys = data.keys()?;
    let text = |v: Option<&AttributeValue>| v.and_then(|v| v.as_s().ok()).cloned();
    let image = data.new_image();
    Some(Change {
        event: record.event_name()?.as_str().to_string(),
        pk: text(keys.get("pk"))?,
        sk: text(keys.get("sk"))?,
        epoch: image
            .and_then(|i| i.get("epoch"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok()),
        holder: text(image.and_then(|i| i.get("holder"))),
    })
}
