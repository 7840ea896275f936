//! The agent's side of the protocol, driven directly (memory store and blobs, the real broker):
//! an agent whose slot is not a member of the fleet at `startAt` — scaled down or dropped
//! while it prepared — sends nothing, instead of taking a member's share under its slot
//! number.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use barrage_agent::protocol::{self, AgentExit};
use barrage_crds::agent_status::AgentPhase;
use barrage_crds::env::{Assignment, BlobsUrl, LogFormat, StoreUrl};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::status::{FleetAssignment, LoadTestStatus, Phase};
use barrage_store::memory::{MemoryBlobs, MemoryStore};
use barrage_store::{Blobs, Store};
use barrage_system_tests::{kafka, unique};

#[test]
fn a_slot_left_out_of_the_fleet_at_the_start_sends_nothing() {
    let Some(bootstrap) = kafka() else { return };
    let name = unique("fleet");
    let topic = unique("barrage-it-fleet");
    let lt = LoadTest::from_yaml(&format!(
        "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata: {{name: {name}}}
spec:
  kafka: {{bootstrapServers: {bootstrap}}}
  topic:
    name: {topic}
    create: {{partitions: 1, replicationFactor: 1}}
  workload: {{kind: Produce, records: {{value: {{size: 10}}}}}}
  load:
    steps: [{{constant: {{rate: 100, for: 2s}}}}]
  agents: {{count: 3}}
  report: {{interval: 1s}}
"
    ))
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
