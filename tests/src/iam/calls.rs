//! Recorded HTTP requests turned into the authorization requests AWS makes for them.
//!
//! The recording is moto server's (`/moto-api/recorder/…`): one JSON object per request with
//! its headers, method, URL and body (base64 when `body_encoded`). Objects are read as a stream
//! of JSON values, so two written by concurrent requests without a line break between them
//! still read apart. Each request names its caller by the access key of its SigV4
//! `Authorization` header.
//!
//! One API call can need several authorizations, as the service authorization reference
//! lists them; those this project's calls need are derived here:
//! - DynamoDB `TransactWriteItems` is authorized per item (`ConditionCheckItem`, `PutItem`,
//!   `UpdateItem`, `DeleteItem`), `TransactGetItems` as `GetItem` per item; every item
//!   request carries `dynamodb:LeadingKeys` (its partition key values; none for `Scan` and
//!   table operations) and, for writes, `dynamodb:Attributes` (the item's top-level names for
//!   `PutItem`; the key's names and the names in the update expression for `UpdateItem`; the
//!   key's names for `DeleteItem` and `ConditionCheckItem`);
//! - DynamoDB Streams `GetRecords` is authorized on the stream: moto's shard iterators begin
//!   with the stream ARN (`ARN|1|id`; AWS's are opaque and authorize against the same stream);
//! - ECS `RunTask` needs `iam:PassRole` for each role the task gets (the task definition's,
//!   given in [`Facts`], or an override), with `iam:PassedToService`, and, when it carries
//!   tags, `ecs:TagResource` on the new task with `ecs:CreateAction` = `RunTask`; task
//!   actions carry `ecs:cluster`; `DescribeTasks` is authorized per task;
//! - Secrets Manager `GetSecretValue` of a secret encrypted with a customer-managed key needs
//!   `kms:Decrypt` on that key through Secrets Manager (`kms:ViaService`), as Secrets Manager
//!   decrypts with the caller's permissions;
//! - S3 REST requests map to their IAM actions (`HeadObject` is `s3:GetObject`, a multipart
//!   upload is `s3:PutObject`, `ListObjectsV2` and `HeadBucket` are `s3:ListBucket`, with
//!   `s3:prefix`, `s3:delimiter`, `s3:max-keys` from the query).
//!
//! A request of a service or an operation not known here becomes an action `unknown:…`,
//! which no policy allows: the test then names it instead of passing it by.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

use super::Request;

/// One recorded HTTP request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The URL as sent (`http://127.0.0.1:PORT/bucket/key?query`).
    pub url: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// Every request of a recording, in order.
pub fn read_recording(text: &str) -> Vec<Recorded> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .map(|entry| {
            let entry = entry.unwrap_or_else(|e| panic!("the recording does not parse: {e}"));
            Recorded::from_entry(&entry)
        })
        .collect()
}

impl Recorded {
    fn from_entry(entry: &Value) -> Recorded {
        let text = |k: &str| entry[k].as_str().unwrap_or_default().to_string();
        let body = text("body");
        let body = if entry["body_encoded"].as_bool() == Some(true) {
            base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .unwrap_or_else(|e| panic!("a recorded body is not base64: {e}"))
        } else {
            body.into_bytes()
        };
        let headers = entry["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Recorded {
            method: text("method"),
            url: text("url"),
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// `AKID/date/region/service/aws4_request` of the SigV4 `Authorization` header.
    fn scope(&self) -> Option<Vec<&str>> {
        let auth = self.header("authorization")?;
        let credential = auth.split("Credential=").nth(1)?.split(',').next()?;
        Some(credential.split('/').collect())
    }

    /// The access key that signed it (`None`: unsigned, e.g. the emulator's own API).
    pub fn access_key(&self) -> Option<&str> {
        self.scope().and_then(|s| s.first().copied())
    }

    fn region(&self) -> String {
        self.scope()
            .and_then(|s| s.get(2).map(|r| r.to_string()))
            .unwrap_or_else(|| "us-east-1".to_string())
    }

    fn signing_service(&self) -> String {
        self.scope()
            .and_then(|s| s.get(3).map(|r| r.to_string()))
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What the evaluation needs to know beyond the request itself.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The account every resource is in.
    pub account: String,
    /// The table's partition key attribute (`pk`).
    pub partition_key: String,
    /// Task definition ARN → the roles a RunTask of it passes to ECS.
    pub passed_roles: BTreeMap<String, Vec<String>>,
    /// Secret ARN → its customer-managed KMS key.
    pub secret_keys: BTreeMap<String, String>,
}

/// One API call: its operation (`dynamodb:GetItem`, `s3:PutObject`…) and the authorization
/// requests it needs.
#[derive(Debug, Clone)]
pub struct Call {
    pub operation: String,
    pub requests: Vec<Request>,
}

/// The authorization requests of `rec`.
pub fn call_of(rec: &Recorded, facts: &Facts) -> Call {
    let region = rec.region();
    let ctx = Ctx {
        region: &region,
        facts,
    };
    if let Some(target) = rec.header("x-amz-target") {
        let (prefix, op) = target.split_once('.').unwrap_or((target, ""));
        let body = rec.json();
        let (service, requests) = match prefix {
            "DynamoDB_20120810" => ("dynamodb", ctx.dynamodb(op, &body)),
            "DynamoDBStreams_20120810" => ("dynamodbstreams", ctx.streams(op, &body)),
            "AmazonEC2ContainerServiceV20141113" => ("ecs", ctx.ecs(op, &body)),
            "secretsmanager" => ("secretsmanager", ctx.secrets(op, &body)),
            _ => ("unknown", vec![unknown(target)]),
        };
        return Call {
            operation: format!("{service}:{op}"),
            requests,
        };
    }
    if rec.signing_service() == "s3" {
        let (operation, requests) = s3(rec);
        return Call {
            operation: format!("s3:{operation}"),
            requests,
        };
    }
    let what = format!("{} {} ({})", rec.method, rec.url, rec.signing_service());
    Call {
        operation: format!("unknown:{what}"),
        requests: vec![unknown(&what)],
    }
}

fn unknown(what: &str) -> Request {
    Request::new(format!("unknown:{what}"), "*")
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

struct Ctx<'a> {
    region: &'a str,
    facts: &'a Facts,
}

impl Ctx<'_> {
    fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            self.region, self.facts.account
        )
    }

    // ---- DynamoDB --------------------------------------------------------------------------

    fn table_arn(&self, name: &str) -> String {
        if name.starts_with("arn:") {
            name.to_string()
        } else {
            self.arn("dynamodb", &format!("table/{name}"))
        }
    }

    fn dynamodb(&self, op: &str, body: &Value) -> Vec<Request> {
        let table = || self.table_arn(text(body, "TableName").unwrap_or_default());
        match op {
            "GetItem" | "PutItem" | "UpdateItem" | "DeleteItem" => {
                vec![self.item_request(op, body, table())]
            }
            "Query" => vec![
                Request::new("dynamodb:Query", table())
                    .with("dynamodb:LeadingKeys", [self.query_partition(body)]),
            ],
            "TransactWriteItems" | "TransactGetItems" => self.transaction(body),
            "BatchGetItem" => self.batch_get(body),
            _ => vec![Request::new(format!("dynamodb:{op}"), table())],
        }
    }

    /// `GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`, `ConditionCheckItem` on one item.
    fn item_request(&self, op: &str, item: &Value, table: String) -> Request {
        let key = if op == "PutItem" {
            &item["Item"]
        } else {
            &item["Key"]
        };
        let pk = key[&self.facts.partition_key]["S"]
            .as_str()
            .unwrap_or_else(|| panic!("{op} without a string partition key: {item}"));
        let mut r =
            Request::new(format!("dynamodb:{op}"), table).with("dynamodb:LeadingKeys", [pk]);
        if op != "GetItem" {
            r = r.with("dynamodb:Attributes", attributes(op, item));
        }
        r
    }

    /// The partition key value a `Query` names (`#pk = :pk` in its key condition).
    fn query_partition(&self, body: &Value) -> String {
        let names = &body["ExpressionAttributeNames"];
        let values = &body["ExpressionAttributeValues"];
        let expr = text(body, "KeyConditionExpression")
            .unwrap_or_else(|| panic!("a Query without KeyConditionExpression: {body}"));
        expr.split(" AND ")
            .filter_map(|clause| clause.split_once('='))
            .find_map(|(lhs, rhs)| {
                let lhs = lhs.trim();
                let name = text(names, lhs).unwrap_or(lhs);
                (name == self.facts.partition_key)
                    .then(|| values[rhs.trim()]["S"].as_str().map(str::to_string))
                    .flatten()
            })
            .unwrap_or_else(|| panic!("no partition key value in the Query {body}"))
    }

    fn transaction(&self, body: &Value) -> Vec<Request> {
        let items = body["TransactItems"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::new();
        for entry in &items {
            let (kind, item) = entry
                .as_object()
                .and_then(|o| o.iter().next())
                .unwrap_or_else(|| panic!("a transaction item {entry}"));
            let op = match kind.as_str() {
                "ConditionCheck" => "ConditionCheckItem",
                "Put" => "PutItem",
                "Update" => "UpdateItem",
                "Delete" => "DeleteItem",
                "Get" => "GetItem",
                other => panic!("a transaction item of kind {other}"),
            };
            let table = self.table_arn(text(item, "TableName").unwrap_or_default());
            out.push(self.item_request(op, item, table));
        }
        out
    }

    fn batch_get(&self, body: &Value) -> Vec<Request> {
        let tables = body["RequestItems"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        tables
            .iter()
            .map(|(table, req)| {
                let keys: Vec<String> = req["Keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k[&self.facts.partition_key]["S"].as_str())
                    .map(str::to_string)
                    .collect();
                Request::new("dynamodb:BatchGetItem", self.table_arn(table))
                    .with("dynamodb:LeadingKeys", keys)
            })
            .collect()
    }

    // ---- DynamoDB Streams -----------------------------------------------------------------

    fn streams(&self, op: &str, body: &Value) -> Vec<Request> {
        let stream = match op {
            "GetRecords" => text(body, "ShardIterator")
                .and_then(|it| it.split('|').next())
                .filter(|arn| arn.starts_with("arn:"))
                .unwrap_or_else(|| panic!("no stream ARN in the shard iterator: {body}"))
                .to_string(),
            "ListStreams" => "*".to_string(),
            _ => text(body, "StreamArn")
                .unwrap_or_else(|| panic!("{op} without StreamArn: {body}"))
                .to_string(),
        };
        vec![Request::new(format!("dynamodb:{op}"), stream)]
    }

    // ---- ECS -------------------------------------------------------------------------------

    fn cluster_arn(&self, body: &Value) -> String {
        match text(body, "cluster") {
            Some(c) if c.starts_with("arn:") => c.to_string(),
            Some(c) => self.arn("ecs", &format!("cluster/{c}")),
            None => self.arn("ecs", "cluster/default"),
        }
    }

    fn task_arn(&self, cluster: &str, task: &str) -> String {
        if task.starts_with("arn:") {
            return task.to_string();
        }
        let name = cluster.rsplit('/').next().unwrap_or(cluster);
        self.arn("ecs", &format!("task/{name}/{task}"))
    }

    fn ecs(&self, op: &str, body: &Value) -> Vec<Request> {
        let cluster = self.cluster_arn(body);
        let on = |resource: String| {
            Request::new(format!("ecs:{op}"), resource).with("ecs:cluster", [cluster.clone()])
        };
        match op {
            "RunTask" => self.run_task(body, &cluster),
            "StopTask" => vec![on(
                self.task_arn(&cluster, text(body, "task").unwrap_or_default())
            )],
            "DescribeTasks" => body["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|t| on(self.task_arn(&cluster, t)))
                .collect(),
            "ListTasks" => vec![on("*".to_string())],
            _ => vec![Request::new(format!("ecs:{op}"), "*")],
        }
    }

    fn task_definition_arn(&self, td: &str) -> String {
        if td.starts_with("arn:") {
            td.to_string()
        } else {
            self.arn("ecs", &format!("task-definition/{td}"))
        }
    }

    fn run_task(&self, body: &Value, cluster: &str) -> Vec<Request> {
        let td = self.task_definition_arn(text(body, "taskDefinition").unwrap_or_default());
        let mut out = vec![
            Request::new("ecs:RunTask", td.clone()).with("ecs:cluster", [cluster.to_string()]),
        ];
        let tags: Vec<(String, String)> = body["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let get = |k| text(t, k).unwrap_or_default().to_string();
                (get("key"), get("value"))
            })
            .collect();
        if !tags.is_empty() {
            let mut tag = Request::new("ecs:TagResource", self.task_arn(cluster, "new-task"))
                .with("ecs:CreateAction", ["RunTask"])
                .with("aws:TagKeys", tags.iter().map(|(k, _)| k.clone()));
            for (k, v) in &tags {
                tag = tag.with(&format!("aws:RequestTag/{k}"), [v.clone()]);
            }
            out.push(tag);
        }
        let mut roles = self
            .facts
            .passed_roles
            .get(&td)
            .cloned()
            .unwrap_or_else(|| panic!("RunTask of {td}: its roles are not known"));
        let overrides = &body["overrides"];
        roles.extend(
            ["taskRoleArn", "executionRoleArn"]
                .iter()
                .filter_map(|k| text(overrides, k).map(str::to_string)),
        );
        roles.sort();
        roles.dedup();
        out.extend(roles.into_iter().map(|role| {
            Request::new("iam:PassRole", role)
                .with("iam:PassedToService", ["ecs-tasks.amazonaws.com"])
        }));
        out
    }

    // ---- Secrets Manager ----------------------------------------------------------------------

    fn secrets(&self, op: &str, body: &Value) -> Vec<Request> {
        let id = text(body, "SecretId").unwrap_or("*");
        let arn = if id.starts_with("arn:") || id == "*" {
            id.to_string()
        } else {
            self.facts
                .secret_keys
                .keys()
                .find(|arn| arn.contains(&format!(":secret:{id}-")))
                .cloned()
                .unwrap_or_else(|| self.arn("secretsmanager", &format!("secret:{id}")))
        };
        let mut out = vec![
            Request::new(format!("secretsmanager:{op}"), arn.clone())
                .with("secretsmanager:SecretId", [id]),
        ];
        if op == "GetSecretValue"
            && let Some(key) = self.facts.secret_keys.get(&arn)
        {
            out.push(
                Request::new("kms:Decrypt", key.clone())
                    .with(
                        "kms:ViaService",
                        [format!("secretsmanager.{}.amazonaws.com", self.region)],
                    )
                    .with("kms:CallerAccount", [self.facts.account.clone()])
                    .with("kms:EncryptionContext:SecretARN", [arn]),
            );
        }
        out
    }
}

/// `dynamodb:Attributes` of a write (see the module doc).
fn attributes(op: &str, item: &Value) -> Vec<String> {
    let keys_of = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    if op == "PutItem" {
        return keys_of(&item["Item"]);
    }
    let mut names = keys_of(&item["Key"]);
    if let Some(update) = text(item, "UpdateExpression") {
        names.extend(update_names(update, &item["ExpressionAttributeNames"]));
    }
    names.extend(keys_of(&item["AttributeUpdates"]));
    names.sort();
    names.dedup();
    names
}

/// The top-level attribute names an update expression reads or writes.
fn update_names(update: &str, placeholders: &Value) -> Vec<String> {
    const WORDS: &[&str] = &[
        "SET",
        "REMOVE",
        "ADD",
        "DELETE",
        "if_not_exists",
        "list_append",
    ];
    update
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '#' || c == ':' || c == '.'))
        .filter(|t| !t.is_empty() && !t.starts_with(':') && !WORDS.contains(t))
        .filter(|t| !t.chars().all(|c| c.is_ascii_digit()))
        .map(|t| {
            let top = t.split('.').next().unwrap_or(t);
            text(placeholders, top).unwrap_or(top).to_string()
        })
        .collect()
}

// ---- S3 ---------------------------------------------------------------------------------------

/// `%XX` decoded (S3 keys in a URL path; `+` stays itself there).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The operation name and the authorization of one S3 REST request (path-style URL).
fn s3(rec: &Recorded) -> (String, Vec<Request>) {
    let after_scheme = rec
        .url
        .split_once("://")
        .map_or(rec.url.as_str(), |(_, r)| r);
    let path_and_query = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    // `x-id=GetObject` and the like name the SDK operation; S3 ignores them.
    let query: BTreeMap<String, String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("x-id="))
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(&v.replace('+', " ")))
        })
        .collect();
    let path = path.trim_start_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let key = percent_decode(key);
    let method = rec.method.as_str();
    if bucket.is_empty() {
        return (
            "ListBuckets".into(),
            vec![Request::new("s3:ListAllMyBuckets", "*")],
        );
    }
    if key.is_empty() {
        return s3_bucket(method, bucket, &query);
    }
    let copy_source = rec.header("x-amz-copy-source").map(percent_decode);
    s3_object(method, bucket, &key, &query, copy_source)
}

fn s3_bucket(method: &str, bucket: &str, q: &BTreeMap<String, String>) -> (String, Vec<Request>) {
    let arn = format!("arn:aws:s3:::{bucket}");
    let list = |op: &str| {
        let mut r = Request::new("s3:ListBucket", arn.clone());
        for (param, key) in [
            ("prefix", "s3:prefix"),
            ("delimiter", "s3:delimiter"),
            ("max-keys", "s3:max-keys"),
        ] {
            if let Some(v) = q.get(param) {
                r = r.with(key, [v.clone()]);
            }
        }
        (op.to_string(), vec![r])
    };
    let one = |op: &str, action: &str| (op.to_string(), vec![Request::new(action, arn.clone())]);
    match method {
        "GET" if q.contains_key("versions") => one("ListObjectVersions", "s3:ListBucketVersions"),
        "GET" if q.contains_key("uploads") => {
            one("ListMultipartUploads", "s3:ListBucketMultipartUploads")
        }
        "GET" if q.contains_key("location") => one("GetBucketLocation", "s3:GetBucketLocation"),
        "GET" if q.get("list-type").map(String::as_str) == Some("2") => list("ListObjectsV2"),
        "GET" if q.is_empty() || q.keys().all(|k| LIST_PARAMS.contains(&k.as_str())) => {
            list("ListObjects")
        }
        "HEAD" => list("HeadBucket"),
        "PUT" if q.is_empty() => one("CreateBucket", "s3:CreateBucket"),
        "DELETE" if q.is_empty() => one("DeleteBucket", "s3:DeleteBucket"),
        _ => {
            let what = format!(
                "{method} bucket ?{}",
                q.keys().cloned().collect::<Vec<_>>().join("&")
            );
            (
                format!("unknown({what})"),
                vec![unknown(&format!("s3 {what}"))],
            )
        }
    }
}

const LIST_PARAMS: &[&str] = &[
    "prefix",
    "delimiter",
    "max-keys",
    "marker",
    "encoding-type",
    "continuation-token",
    "start-after",
    "fetch-owner",
];

fn s3_object(
    method: &str,
    bucket: &str,
    key: &str,
    q: &BTreeMap<String, String>,
    copy_source: Option<String>,
) -> (String, Vec<Request>) {
    let arn = format!("arn:aws:s3:::{bucket}/{key}");
    let one = |op: &str, action: &str| (op.to_string(), vec![Request::new(action, arn.clone())]);
    let has = |k: &str| q.contains_key(k);
    match method {
        "GET" | "HEAD" if has("versionId") => one("GetObjectVersion", "s3:GetObjectVersion"),
        "GET" if has("uploadId") => one("ListParts", "s3:ListMultipartUploadParts"),
        "GET"
            if q.keys()
                .all(|k| k.starts_with("response-") || k == "partNumber") =>
        {
            one("GetObject", "s3:GetObject")
        }
        "HEAD" => one("HeadObject", "s3:GetObject"),
        "PUT" if has("uploadId") => one("UploadPart", "s3:PutObject"),
        "PUT" if q.is_empty() => match copy_source {
            Some(source) => {
                let source = source.trim_start_matches('/').to_string();
                let mut reqs = vec![Request::new("s3:PutObject", arn.clone())];
                reqs.push(Request::new(
                    "s3:GetObject",
                    format!("arn:aws:s3:::{source}"),
                ));
                ("CopyObject".into(), reqs)
            }
            None => one("PutObject", "s3:PutObject"),
        },
        "POST" if has("uploads") => one("CreateMultipartUpload", "s3:PutObject"),
        "POST" if has("uploadId") => one("CompleteMultipartUpload", "s3:PutObject"),
        "DELETE" if has("uploadId") => one("AbortMultipartUpload", "s3:AbortMultipartUpload"),
        "DELETE" if has("versionId") => one("DeleteObjectVersion", "s3:DeleteObjectVersion"),
        "DELETE" if q.is_empty() => one("DeleteObject", "s3:DeleteObject"),
        _ => {
            let what = format!(
                "{method} object ?{}",
                q.keys().cloned().collect::<Vec<_>>().join("&")
            );
            (
                format!("unknown({what})"),
                vec![unknown(&format!("s3 {what}"))],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> Facts {
        let td = "arn:aws:ecs:us-east-1:123456789012:task-definition/s-agent:1";
        Facts {
            account: "123456789012".into(),
            partition_key: "pk".into(),
            passed_roles: [(
                td.to_string(),
                vec!["arn:aws:iam::123456789012:role/task".to_string()],
            )]
            .into(),
            secret_keys: [(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:s/kafka-AbCdEf".to_string(),
                "arn:aws:kms:us-east-1:123456789012:key/k".to_string(),
            )]
            .into(),
        }
    }

    fn signed(service: &str) -> BTreeMap<String, String> {
        [(
            "authorization".to_string(),
            format!("AWS4-HMAC-SHA256 Credential=ASIAKEY/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=x"),
        )]
        .into()
    }

    fn json_call(target: &str, service: &str, body: Value) -> Call {
        let mut headers = signed(service);
        headers.insert("x-amz-target".into(), target.into());
        let rec = Recorded {
            method: "POST".into(),
            url: "http://127.0.0.1:1/".into(),
            headers,
            body: body.to_string().into_bytes(),
        };
        assert_eq!(rec.access_key(), Some("ASIAKEY"));
        call_of(&rec, &facts())
    }

    fn s3_call(method: &str, url: &str) -> Call {
        let rec = Recorded {
            method: method.into(),
            url: url.into(),
            headers: signed("s3"),
            body: Vec::new(),
        };
        call_of(&rec, &facts())
    }

    #[test]
    fn a_fenced_status_write_is_authorized_item_by_item() {
        let call = json_call(
            "DynamoDB_20120810.TransactWriteItems",
            "dynamodb",
            json!({"TransactItems": [
                {"Update": {"TableName": "t", "Key": {"pk": {"S": "lt#a"}, "sk": {"S": "status"}},
                    "UpdateExpression": "SET #status = :status, #version = #version + :one",
                    "ExpressionAttributeNames": {"#status": "status", "#version": "version"}}},
                {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "lease#controller"}, "sk": {"S": "lease"}}}}
            ]}),
        );
        assert_eq!(call.operation, "dynamodb:TransactWriteItems");
        let actions: Vec<&str> = call.requests.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(
            actions,
            ["dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]
        );
        assert_eq!(
            call.requests[0].context["dynamodb:Attributes"],
            ["pk", "sk", "status", "version"]
        );
        assert_eq!(
            call.requests[1].context["dynamodb:LeadingKeys"],
            ["lease#controller"]
        );
        assert_eq!(
            call.requests[1].resource,
            "arn:aws:dynamodb:us-east-1:123456789012:table/t"
        );
    }

    #[test]
    fn a_query_names_its_partition_and_a_scan_names_none() {
        let q = json_call(
            "DynamoDB_20120810.Query",
            "dynamodb",
            json!({"TableName": "t", "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
                "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
                "ExpressionAttributeValues": {":pk": {"S": "lt#a"}, ":prefix": {"S": "agent#"}}}),
        );
        assert_eq!(q.requests[0].context["dynamodb:LeadingKeys"], ["lt#a"]);
        let s = json_call(
            "DynamoDB_20120810.Scan",
            "dynamodb",
            json!({"TableName": "t"}),
        );
        assert!(s.requests[0].context.is_empty());
    }

    #[test]
    fn run_task_needs_pass_role_and_tag_resource() {
        let call = json_call(
            "AmazonEC2ContainerServiceV20141113.RunTask",
            "ecs",
            json!({"cluster": "c", "taskDefinition": "s-agent:1", "tags": [{"key": "barrage.dev/run", "value": "r"}]}),
        );
        let actions: Vec<&str> = call.requests.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["ecs:RunTask", "ecs:TagResource", "iam:PassRole"]);
        assert_eq!(
            call.requests[0].context["ecs:cluster"],
            ["arn:aws:ecs:us-east-1:123456789012:cluster/c"]
        );
        assert_eq!(
            call.requests[1].resource,
            "arn:aws:ecs:us-east-1:123456789012:task/c/new-task"
        );
        assert_eq!(call.requests[1].context["ecs:CreateAction"], ["RunTask"]);
    }

    #[test]
    fn a_secret_under_a_customer_key_needs_kms_decrypt_through_secrets_manager() {
        let call = json_call(
            "secretsmanager.GetSecretValue",
            "secretsmanager",
            json!({"SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s/kafka-AbCdEf"}),
        );
        assert_eq!(call.requests[1].action, "kms:Decrypt");
        assert_eq!(
            call.requests[1].context["kms:ViaService"],
            ["secretsmanager.us-east-1.amazonaws.com"]
        );
    }

    #[test]
    fn s3_requests_map_to_their_iam_actions() {
        let list = s3_call(
            "GET",
            "http://h/b?list-type=2&prefix=runs%2Fa%2F&encoding-type=url",
        );
        assert_eq!(list.operation, "s3:ListObjectsV2");
        assert_eq!(list.requests[0].action, "s3:ListBucket");
        assert_eq!(list.requests[0].resource, "arn:aws:s3:::b");
        assert_eq!(list.requests[0].context["s3:prefix"], ["runs/a/"]);
        let head = s3_call("HEAD", "http://h/b/runs/a%20b/c.hlog");
        assert_eq!(head.requests[0].action, "s3:GetObject");
        assert_eq!(head.requests[0].resource, "arn:aws:s3:::b/runs/a b/c.hlog");
        let put = s3_call("PUT", "http://h/b/runs/x?x-id=PutObject");
        assert_eq!(put.operation, "s3:PutObject");
        let odd = s3_call("PUT", "http://h/b/runs/x?tagging");
        assert!(odd.requests[0].action.starts_with("unknown:"));
    }

    #[test]
    fn concatenated_records_still_read_apart() {
        let text = r#"{"method":"GET","url":"http://h/","headers":{},"body":"","body_encoded":false}{"method":"PUT","url":"http://h/b/k","headers":{"Authorization":"x"},"body":"aGk=","body_encoded":true}
"#;
        let recs = read_recording(text);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].body, b"hi");
        assert_eq!(recs[1].headers["authorization"], "x");
    }
}
