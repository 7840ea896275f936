//! The value benchmark: Avro and JSON records of the example specs (`avro-produce.yaml`,
//! `sasl-scram.yaml`) made one per record, as the sender makes them, on one thread. Prints
//! records per second for each; the goal is ≥ 200 000 per core (encode only).
//!
//! Run it in release mode (it is ignored otherwise):
//! `cargo test --release -p barrage-agent --test values_bench -- --ignored --nocapture`
//! `BENCH_RECORDS` changes the records per format (default 2 000 000). It prints its figures
//! and asserts only what it made, never a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use barrage_agent::job;
use barrage_agent::payload::RecordAt;
use barrage_crds::loadtest::LoadTest;

fn example(name: &str) -> LoadTest {
    let path = format!("{}/../crds/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("the example exists");
    LoadTest::from_yaml(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Makes `records` values of `lt`'s spec; returns records per second and the mean size.
fn measure(lt: &LoadTest, records: u64) -> (f64, f64) {
    let mut values = job::values(&lt.spec, "bench").expect("values");
    let base = 1_764_720_000_000;
    let mut bytes = 0u64;
    let start = Instant::now();
    for index in 0..records {
        // 20 000 records/s: 20 records per intended millisecond.
        let at = RecordAt {
            index,
            intended_millis: base + (index / 20) as i64,
        };
        bytes += values.value(at).expect("a value").len() as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    assert!(bytes >= records, "every value has bytes");
    (records as f64 / seconds, bytes as f64 / records as f64)
}

#[test]
#[ignore = "benchmark: run in release mode with --ignored"]
fn avro_and_json_values_per_record_on_one_core() {
    let records = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    for (format, name) in [("Avro", "avro-produce.yaml"), ("JSON", "sasl-scram.yaml")] {
        let lt = example(name);
        measure(&lt, records / 20);
        let (rate, size) = measure(&lt, records);
        println!(
            "values bench: {format} ({name}): {records} records, {rate:.0} records/s on one thread, mean {size:.1} bytes"
        );
    }
}
