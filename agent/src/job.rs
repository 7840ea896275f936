//! From a LoadTest spec to what the engine runs: the produce job (the rate profile is `barrage_crds::schedule::profile`).
//! Pure apart from reading an Avro schema file and the clock (the base of random timestamps).

use std::time::Duration;

use barrage_crds::spec::{KeyDistribution, LoadTestSpec, ValueSpec};

use crate::engine::ProduceJob;
use crate::keys::{KeyGen, KeyPlan};
use crate::payload::{PayloadPool, RecordAt, ValuePlan, Values};
use barrage_crds::schedule::{Share, profile};
use barrage_kafka::config::{SaslCredentials, producer_config};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("spec.workload.records.value: {0}")]
    Value(String),
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Records generated when the job is built, so that a spec whose values cannot be made fails
/// before the run rather than record by record.
const CHECKED_RECORDS: u64 = 256;

/// The values of a records spec for run `run_id`, seeded with [`value_seed`]. Reads
/// `avro.schemaFile` when given.
pub fn values(spec: &LoadTestSpec, run_id: &str) -> Result<Values, JobError> {
    let seed = value_seed(spec, run_id);
    let mut values = match &spec.workload.records.value {
        ValueSpec::Size(size) => Values::pool(PayloadPool::random(
            &ValuePlan::Fixed {
                size: *size as usize,
            },
            seed,
        )),
        ValueSpec::UniformSize(r) => Values::pool(PayloadPool::random(
            &ValuePlan::Uniform {
                min: r.min as usize,
                max: r.max as usize,
            },
            seed,
        )),
        ValueSpec::Avro(avro) => Values::avro(avro_generator(avro)?, seed),
        ValueSpec::Json(json) => {
            let template = crate::payload::json::JsonTemplate::from_spec(json)
                .map_err(|e| JobError::Value(format!("json: {e}")))?;
            Values::json(template, seed)
        }
    };
    let now = now_millis();
    for index in 0..CHECKED_RECORDS {
        values
            .value(RecordAt::nth(index, now))
            .map_err(|e| JobError::Value(e.to_string()))?;
    }
    Ok(values)
}

fn avro_generator(
    avro: &barrage_crds::spec::AvroValue,
) -> Result<crate::payload::avro::AvroGenerator, JobError> {
    let schema = match (&avro.schema, &avro.schema_file) {
        (Some(inline), _) => inline.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| JobError::Value(format!("avro.schemaFile {file}: cannot read: {e}")))?,
        (None, None) => {
            return Err(JobError::Value("avro needs schema or schemaFile".into()));
        }
    };
    let inline = barrage_crds::spec::AvroValue {
        schema: Some(schema),
        schema_file: None,
        ..avro.clone()
    };
    crate::payload::avro::AvroGenerator::from_spec(&inline)
        .map(|g| g.with_base_time_millis(now_millis()))
        .map_err(|e| JobError::Value(format!("avro: {e}")))
}

/// How keys are drawn for a records spec.
pub fn key_plan(spec: &LoadTestSpec) -> KeyPlan {
    let k = &spec.workload.records.key;
    match k.distribution {
        KeyDistribution::None => KeyPlan::None,
        KeyDistribution::Uniform => KeyPlan::Uniform {
            cardinality: k.cardinality,
        },
        KeyDistribution::Sequential => KeyPlan::Sequential {
            cardinality: k.cardinality,
        },
        KeyDistribution::Zipf => KeyPlan::Zipf {
            cardinality: k.cardinality,
            exponent: k.exponent,
        },
    }
}

/// The seed of run `run_id`'s values: the spec's seed (the same records in every run), or
/// one derived from the run id (every run its own `uuid`s and random values). The same on
/// every agent and incarnation of a run, so record `j` has the same value whichever agent
/// sends it.
pub fn value_seed(spec: &LoadTestSpec, run_id: &str) -> u64 {
    spec.workload
        .records
        .seed
        .unwrap_or_else(|| barrage_crds::digest::fnv1a(run_id.as_bytes()))
}

/// The seed of one agent (its keys): the value seed mixed with the slot.
pub fn agent_seed(spec: &LoadTestSpec, run_id: &str, slot: u32) -> u64 {
    value_seed(spec, run_id) ^ (u64::from(slot) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Everything the engine needs to produce this agent's share of `spec`.
pub fn produce_job(
    spec: &LoadTestSpec,
    run_id: &str,
    share: Share,
    values: Values,
    sasl: Option<&SaslCredentials>,
    round_trip_agent: Option<String>,
) -> ProduceJob {
    let records = &spec.workload.records;
    let mut client = producer_config(&spec.kafka, sasl);
    if records.transactional {
        client.set(
            "transactional.id",
            format!("barrage-{}-{}", spec.topic.name, share.slot),
        );
        // Right after a commit the broker answers the next transaction's first request with
        // CONCURRENT_TRANSACTIONS until its markers are written; librdkafka then waits
        // retry.backoff.ms (100 ms by default) before retrying, which would cap one agent at
        // ~10 transactions/s. The Java client backs off 20 ms in this case.
        if !spec
            .kafka
            .producer
            .properties
            .contains_key("retry.backoff.ms")
        {
            client.set("retry.backoff.ms", "5");
        }
    }
    ProduceJob {
        client,
        topic: spec.topic.name.clone(),
        profile: profile(&spec.load),
        share,
        values,
        keys: KeyGen::new(key_plan(spec), agent_seed(spec, run_id, share.slot)),
        headers: records
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect(),
        records_per_transaction: records.records_per_transaction.max(1),
        transactional: records.transactional,
        max_in_flight: spec.kafka.producer.max_in_flight.max(1) as usize,
        flush_timeout: Duration::from_secs(30),
        interval: spec.report.interval.as_std(),
        round_trip_agent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barrage_crds::loadtest::LoadTest;

    /// The records of a spec with a `{{uuid}}` template, values `0..n` of run `run_id`.
    fn uuids(seed: Option<u64>, run_id: &str, n: u64) -> Vec<String> {
        let mut lt = LoadTest::example("t", "x:1", "t");
        lt.spec.workload.records.seed = seed;
        lt.spec.workload.records.value = serde_json::from_value(serde_json::json!({
            "json": {"template": "{\"u\": \"{{uuid}}\"}"}
        }))
        .expect("a JSON value spec");
        let mut values = values(&lt.spec, run_id).expect("values");
        (0..n)
            .map(|i| {
                let v = values.value(RecordAt::nth(i, 0)).expect("a value");
                String::from_utf8_lossy(v).to_string()
            })
            .collect()
    }

    #[test]
    fn without_a_seed_each_run_has_its_own_records_and_with_one_every_run_the_same() {
        let a = uuids(None, "lt-1-aaaa", 1_000);
        let b = uuids(None, "lt-1-bbbb", 1_000);
        let shared = a.iter().filter(|u| b.contains(u)).count();
        assert_eq!(shared, 0, "two runs share {shared} uuids");
        assert_eq!(
            a,
            uuids(None, "lt-1-aaaa", 1_000),
            "a run's records are reproducible"
        );
        assert_eq!(
            uuids(Some(42), "lt-1-aaaa", 100),
            uuids(Some(42), "lt-1-bbbb", 100)
        );
        assert_eq!(
            value_seed(&LoadTest::example("t", "x:1", "t").spec, "r"),
            barrage_crds::digest::fnv1a(b"r")
        );
    }

    #[test]
    fn seeds_differ_per_slot() {
        let lt = LoadTest::example("t", "x:1", "t");
        assert_ne!(agent_seed(&lt.spec, "r", 0), agent_seed(&lt.spec, "r", 1));
    }
}
