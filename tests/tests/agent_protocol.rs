//! The agent's side of the protocol, driven directly (memory store and blobs, the real broker):
//! an agent whose slot is not a member of the fleet at `startAt` — scaled down or dropped
//! while it prepared — sends nothing, instead of taking a member's share under its slot
//! number; and an agent whose intervals the blob store never takes fails and names them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use barrage_agent::metrics::{AgentMetrics, Identity};
use barrage_agent::protocol::{self, AgentError, AgentExit};
use barrage_agent::spool::DeliveryConfig;
use barrage_crds::agent_status::AgentPhase;
use barrage_crds::env::{Assignment, BlobsUrl, LogFormat, StoreUrl};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::status::{FleetAssignment, LoadTestStatus, Phase};
use barrage_store::memory::{MemoryBlobs, MemoryStore};
use barrage_store::{Blobs, Store};
use barrage_system_tests::spec::Spec;
use barrage_system_tests::{kafka, unique};

#[test]
fn a_slot_left_out_of_the_fleet_at_the_start_sends_nothing() {
    let Some(bootstrap) = kafka() else { return };
    let name = unique("fleet");
    let topic = unique("barrage-it-fleet");
    let lt = LoadTest::from_yaml(
        &Spec::new(&name, &topic, &bootstrap)
            .size(10)
            .secs(2)
            .agents(3)
            .yaml(),
    )
    .expect("a valid spec");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let blobs = Arc::new(MemoryBlobs::new());
    let run_id = "r1";
    rt.block_on(async {
        store.apply(&lt).await.unwrap();
        let version = store.get_load_test(&name).await.unwrap().unwrap().version;
        // Slot 1 failed and was dropped while it prepared: slots 0 and 2 share the load, slot 2
        // at position 1 — the position slot 1 would take by its number.
        let start_at = chrono::Utc::now() + chrono::Duration::seconds(2);
        let status = LoadTestStatus {
            phase: Phase::Running,
            run_id: Some(run_id.into()),
            start_at: Some(start_at),
            fleet: Some(FleetAssignment {
                epoch: 1,
                members: vec![0, 2],
                effective_at: Some(start_at),
                spec_generation: 1,
                paused: false,
                paused_spans: Vec::new(),
            }),
            ..LoadTestStatus::default()
        };
        store
            .write_status(&name, &status, version, 1)
            .await
            .unwrap();
    });

    let assignment = Assignment {
        load_test: name.clone(),
        run_id: run_id.into(),
        slot: 1,
        incarnation: 0,
        store: StoreUrl::Memory,
        blobs: BlobsUrl::Memory,
        metrics_addr: None,
        log_format: LogFormat::Compact,
        heartbeat: Duration::from_secs(1),
    };
    let exit = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(90),
            protocol::run(
                assignment,
                store.clone() as Arc<dyn Store>,
                blobs.clone() as Arc<dyn Blobs>,
                std::future::pending::<()>(),
            ),
        )
        .await
        .expect("the agent ends by itself")
    });
    let (agents, uploaded) = rt.block_on(async {
        (
            store.list_agent_status(&name, run_id).await.unwrap(),
            blobs.list(&format!("runs/{name}/")).await.unwrap(),
        )
    });
    println!(
        "agent outside the fleet: exit {exit:?}; status {:?} sent {} acked {}; blobs {}",
        agents.first().map(|a| a.phase),
        agents.first().map_or(0, |a| a.counters.sent),
        agents.first().map_or(0, |a| a.counters.acked),
        uploaded.len()
    );
    assert!(
        matches!(
            exit,
            Ok(AgentExit::Completed {
                stopped_early: true
            })
        ),
        "{exit:?}"
    );
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].slot, 1);
    assert_eq!(agents[0].phase, AgentPhase::Completed);
    assert_eq!(
        agents[0].counters.sent, 0,
        "no share, nothing sent (not slot 2's share under position 1)"
    );
    assert!(uploaded.is_empty(), "no interval measured: {uploaded:?}");
}

/// Blobs whose every write fails, as an S3 that refuses PutObject for the whole run.
struct Refusing(MemoryBlobs);

#[async_trait::async_trait]
impl Blobs for Refusing {
    async fn put_once(
        &self,
        _: &str,
        _: bytes::Bytes,
        _: &str,
    ) -> barrage_store::Result<barrage_store::PutOnce> {
        Err(barrage_store::StoreError::Throttled {
            service: "S3",
            operation: "PutObject",
        })
    }
    async fn put(&self, key: &str, body: bytes::Bytes, ct: &str) -> barrage_store::Result<()> {
        self.0.put(key, body, ct).await
    }
    async fn get(&self, key: &str) -> barrage_store::Result<Option<bytes::Bytes>> {
        self.0.get(key).await
    }
    async fn list(&self, prefix: &str) -> barrage_store::Result<Vec<String>> {
        self.0.list(prefix).await
    }
    fn uri(&self, key: &str) -> String {
        self.0.uri(key)
    }
}

#[test]
fn intervals_the_store_never_takes_fail_the_agent_and_are_named_in_its_status() {
    let Some(bootstrap) = kafka() else { return };
    let name = unique("undelivered");
    let topic = unique("barrage-it-undelivered");
    let lt = LoadTest::from_yaml(
        &Spec::new(&name, &topic, &bootstrap)
            .size(10)
            .secs(3)
            .agents(1)
            .yaml(),
    )
    .expect("a valid spec");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let run_id = "r1";
    rt.block_on(async {
        store.apply(&lt).await.unwrap();
        let version = store.get_load_test(&name).await.unwrap().unwrap().version;
        let start_at = chrono::Utc::now() + chrono::Duration::seconds(2);
        let status = LoadTestStatus {
            phase: Phase::Running,
            run_id: Some(run_id.into()),
            start_at: Some(start_at),
            fleet: Some(FleetAssignment {
                epoch: 1,
                members: vec![0],
                effective_at: Some(start_at),
                spec_generation: 1,
                paused: false,
                paused_spans: Vec::new(),
            }),
            ..LoadTestStatus::default()
        };
        store
            .write_status(&name, &status, version, 1)
            .await
            .unwrap();
    });
    let assignment = Assignment {
        load_test: name.clone(),
        run_id: run_id.into(),
        slot: 0,
        incarnation: 0,
        store: StoreUrl::Memory,
        blobs: BlobsUrl::Memory,
        metrics_addr: None,
        log_format: LogFormat::Compact,
        heartbeat: Duration::from_secs(1),
    };
    let spool = std::env::temp_dir().join(unique("barrage-spool"));
    let delivery = DeliveryConfig {
        dir: spool.clone(),
        max_bytes: 1 << 20,
        drain: Duration::from_secs(2),
    };
    let metrics = Arc::new(AgentMetrics::new(Identity::default()));
    let exit = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(90),
            protocol::run_observed(
                assignment,
                store.clone() as Arc<dyn Store>,
                Arc::new(Refusing(MemoryBlobs::new())) as Arc<dyn Blobs>,
                std::future::pending::<()>(),
                metrics.clone(),
                delivery,
            ),
        )
        .await
        .expect("the agent ends by itself")
    });
    let agents = rt.block_on(async { store.list_agent_status(&name, run_id).await.unwrap() });
    let status = &agents[0];
    let named: u64 = status.undelivered.iter().map(|u| u.records).sum();
    println!(
        "store refusing every interval: exit {exit:?}; phase {:?}, acked {}, undelivered {:?}",
        status.phase, status.counters.acked, status.undelivered
    );
    let Err(AgentError::Undelivered { records, .. }) = exit else {
        panic!("the agent fails: {exit:?}");
    };
    assert_eq!(status.phase, AgentPhase::Failed);
    assert_eq!(status.counters.acked, 300);
    assert_eq!(records, 300, "every acked record is named as undelivered");
    assert_eq!(named, 300);
    assert_eq!(status.undelivered[0].from_interval, 0);
    assert!(
        metrics
            .render()
            .contains("barrage_agent_records_undelivered_total 300")
    );
    assert!(!spool.exists(), "the spool is cleaned up");
}
