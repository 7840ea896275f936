//! `AgentStatus`: its JSON shape, round trip, tolerance to version skew, liveness.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::time::Duration;

use barrage_crds::agent_status::{AgentCounters, AgentPhase, AgentStatus, UndeliveredIntervals};
use chrono::{DateTime, Utc};
use proptest::prelude::*;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_732_567_200 + secs, 0).unwrap()
}

fn running() -> AgentStatus {
    AgentStatus {
        load_test: "orders".into(),
        run_id: "r1".into(),
        slot: 3,
        incarnation: 1,
        task_id: Some("arn:aws:ecs:eu-west-1:123456789012:task/barrage/abc".into()),
        phase: AgentPhase::Running,
        reason: None,
        heartbeat_at: at(30),
        started_at: Some(at(10)),
        counters: AgentCounters {
            sent: 1000,
            acked: 990,
            errors: 2,
            dropped: 1,
            late: 5,
            bytes: 99_000,
            consumed: 0,
            overflow: 0,
            errors_by_kind: BTreeMap::from([("MsgTimedOut".to_string(), 2)]),
        },
        intervals_uploaded: 2,
        last_interval_p99_us: Some(4_200),
        last_interval_records: Some(495),
        saturated: false,
        metrics_addr: Some("10.0.1.7:9464".into()),
        topic_created: true,
        intervals_spooled: 1,
        undelivered: vec![UndeliveredIntervals {
            from_interval: 4,
            to_interval: 6,
            records: 1_485,
        }],
    }
}

#[test]
fn the_json_is_camel_case_with_rfc3339_times() {
    let json: serde_json::Value = serde_json::from_str(&running().to_json()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "loadTest": "orders",
            "runId": "r1",
            "slot": 3,
            "incarnation": 1,
            "taskId": "arn:aws:ecs:eu-west-1:123456789012:task/barrage/abc",
            "phase": "Running",
            "heartbeatAt": "2024-11-25T20:40:30Z",
            "startedAt": "2024-11-25T20:40:10Z",
            "counters": {
                "sent": 1000, "acked": 990, "errors": 2, "dropped": 1, "late": 5,
                "bytes": 99000, "consumed": 0, "overflow": 0, "errorsByKind": {"MsgTimedOut": 2}
            },
            "intervalsUploaded": 2,
            "lastIntervalP99Us": 4200,
            "lastIntervalRecords": 495,
            "saturated": false,
            "metricsAddr": "10.0.1.7:9464",
            "topicCreated": true,
            "intervalsSpooled": 1,
            "undelivered": [{"fromInterval": 4, "toInterval": 6, "records": 1485}]
        })
    );
}

#[test]
fn a_minimal_document_reads_with_defaults_and_unknown_fields_are_ignored() {
    let s = AgentStatus::from_json(
        r#"{"loadTest":"orders","runId":"r1","slot":0,"incarnation":0,"phase":"Starting",
            "heartbeatAt":"2024-11-25T20:40:00Z","addedInAFutureVersion":{"x":1}}"#,
    )
    .unwrap();
    assert_eq!(s, AgentStatus::new("orders", "r1", 0, 0, at(0)));
    assert_eq!(s.counters, AgentCounters::default());
}

#[test]
fn bad_documents_are_errors() {
    for bad in [
        "",
        "{}",
        r#"{"loadTest":"o","runId":"r","slot":0,"incarnation":0,"phase":"Sleeping","heartbeatAt":"2024-11-25T20:40:00Z"}"#,
        r#"{"loadTest":"o","runId":"r","slot":-1,"incarnation":0,"phase":"Ready","heartbeatAt":"2024-11-25T20:40:00Z"}"#,
        r#"{"loadTest":"o","runId":"r","slot":0,"incarnation":0,"phase":"Ready","heartbeatAt":"yesterday"}"#,
    ] {
        assert!(AgentStatus::from_json(bad).is_err(), "{bad}");
    }
}

#[test]
fn liveness() {
    let s = running(); // heartbeat at +30 s
    let timeout = Duration::from_secs(15);
    assert!(s.is_live(at(30), timeout));
    assert!(s.is_live(at(45), timeout));
    assert!(!s.is_live(at(46), timeout));
    assert!(
        s.is_live(at(0), timeout),
        "a heartbeat ahead of our clock is fresh"
    );
    for phase in AgentPhase::ALL {
        let s = AgentStatus { phase, ..running() };
        assert_eq!(s.is_live(at(31), timeout), !phase.is_terminal(), "{phase}");
    }
    assert_eq!(
        AgentPhase::ALL.iter().filter(|p| p.is_terminal()).count(),
        2
    );
}

#[test]
fn phases_serialize_as_their_names() {
    for phase in AgentPhase::ALL {
        assert_eq!(
            serde_json::to_string(&phase).unwrap(),
            format!("\"{}\"", phase.as_str())
        );
        assert_eq!(phase.to_string(), phase.as_str());
    }
}

fn statuses() -> impl Strategy<Value = AgentStatus> {
    let phase = prop::sample::select(AgentPhase::ALL.to_vec());
    let time = (0_i64..4_000_000_000, 0_u32..1_000_000_000)
        .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap());
    let counters = (
        any::<[u64; 8]>(),
        prop::collection::btree_map("[A-Za-z]{1,20}", any::<u64>(), 0..4),
    )
        .prop_map(|(c, errors_by_kind)| AgentCounters {
            sent: c[0],
            acked: c[1],
            errors: c[2],
            dropped: c[3],
            late: c[4],
            bytes: c[5],
            overflow: c[6],
            consumed: c[7],
            errors_by_kind,
        });
    (
        (
            "[a-z0-9-]{1,20}",
            "[A-Za-z0-9_-]{1,20}",
            any::<u32>(),
            any::<u32>(),
        ),
        (
            prop::option::of(".{0,30}"),
            phase,
            prop::option::of(".{0,30}"),
        ),
        (time.clone(), prop::option::of(time), counters),
        (any::<u32>(), prop::option::of(any::<u64>()), any::<bool>()),
    )
        .prop_map(
            |(
                (load_test, run_id, slot, incarnation),
                (task_id, phase, reason),
                (heartbeat_at, started_at, counters),
                (intervals_uploaded, last_interval_p99_us, saturated),
            )| AgentStatus {
                load_test,
                run_id,
                slot,
                incarnation,
                task_id,
                phase,
                reason,
                heartbeat_at,
                started_at,
                counters,
                intervals_uploaded,
                last_interval_p99_us,
                last_interval_records: last_interval_p99_us.map(|p| p / 7),
                saturated,
                metrics_addr: saturated.then(|| "127.0.0.1:41234".to_string()),
                topic_created: intervals_uploaded % 2 == 0,
                intervals_spooled: intervals_uploaded % 3,
                undelivered: Vec::new(),
            },
        )
}

proptest! {
    #[test]
    fn json_round_trip(s in statuses()) {
        prop_assert_eq!(AgentStatus::from_json(&s.to_json()).unwrap(), s);
    }
}
