//! The blob key scheme and the DynamoDB item layout: builders and parsers agree.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use barrage_crds::agent_status::AgentStatus;
use barrage_crds::items::{
    AgentSk, AgentStatusItem, Attr, Item, ItemError, ItemKey, LeaseItem, LoadTestItem, StatusItem,
    agent_sk, agent_sk_prefix, load_test_pk, parse_agent_sk, parse_load_test_pk,
};
use barrage_crds::keys::{
    IntervalKey, ReportFile, agent_prefix, agents_prefix, interval_key, parse_interval_key,
    parse_window_report_key, report_key, run_prefix, window_report_key,
};
use chrono::DateTime;
use proptest::prelude::*;

const NAME: &str = "[a-z0-9]([a-z0-9.-]{0,40}[a-z0-9])?";
const RUN: &str = "[A-Za-z0-9_-]{1,64}";

fn interval_keys() -> impl Strategy<Value = IntervalKey> {
    (NAME, RUN, 0..=9_999_u32, 0..=99_u32, 0..=999_999_u32).prop_map(
        |(load_test, run_id, slot, incarnation, interval)| IntervalKey {
            load_test,
            run_id,
            slot,
            incarnation,
            interval,
        },
    )
}

proptest! {
    #[test]
    fn interval_keys_parse_back(k in interval_keys()) {
        let key = k.to_key();
        prop_assert_eq!(&key, &interval_key(&k.load_test, &k.run_id, k.slot, k.incarnation, k.interval));
        prop_assert_eq!(k.to_string(), key.clone());
        prop_assert!(key.starts_with(&agent_prefix(&k.load_test, &k.run_id, k.slot, k.incarnation)));
        prop_assert!(key.starts_with(&agents_prefix(&k.load_test, &k.run_id)));
        prop_assert!(key.starts_with(&run_prefix(&k.load_test, &k.run_id)));
        prop_assert_eq!(parse_interval_key(&key), Some(k));
    }

    #[test]
    fn interval_keys_of_one_agent_sort_in_time_order(a in 0..=999_999_u32, b in 0..=999_999_u32) {
        let ka = interval_key("lt", "r", 12, 3, a);
        let kb = interval_key("lt", "r", 12, 3, b);
        prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
    }

    #[test]
    fn window_keys_parse_back(lt in NAME, run in RUN, w in 0..=99_999_u32) {
        let key = window_report_key(&lt, &run, w);
        prop_assert_eq!(parse_window_report_key(&key), Some((lt, run, w)));
    }

    #[test]
    fn agent_sort_keys_parse_back(run in RUN, slot in 0..=9_999_u32, inc in 0..=99_u32) {
        let sk = agent_sk(&run, slot, inc);
        prop_assert!(sk.starts_with(&agent_sk_prefix(&run)));
        prop_assert_eq!(parse_agent_sk(&sk), Some(AgentSk { run_id: run, slot, incarnation: inc }));
    }

    #[test]
    fn load_test_partition_keys_parse_back(name in NAME) {
        let pk = load_test_pk(&name);
        prop_assert_eq!(parse_load_test_pk(&pk), Some(name.as_str()));
    }

    #[test]
    fn parsers_never_panic(s in ".{0,120}") {
        let _ = parse_interval_key(&s);
        let _ = parse_window_report_key(&s);
        let _ = parse_agent_sk(&s);
        let _ = parse_load_test_pk(&s);
        let _ = ItemKey::parse(&s, &s);
    }
}

#[test]
fn only_canonical_interval_keys_parse() {
    let good = "runs/orders/r1/agents/0003-01/000042.hlog";
    assert!(parse_interval_key(good).is_some());
    for bad in [
        "runs/orders/r1/agents/003-01/000042.hlog", // 3-digit slot
        "runs/orders/r1/agents/0003-1/000042.hlog", // 1-digit incarnation
        "runs/orders/r1/agents/0003-01/42.hlog",    // short interval
        "runs/orders/r1/agents/0003-01/000042.json", // wrong suffix
        "runs/orders/r1/agents/0003-01/000042.hlog/x", // extra segment
        "prefix/runs/orders/r1/agents/0003-01/000042.hlog", // still prefixed
        "runs/Orders/r1/agents/0003-01/000042.hlog", // invalid name
        "runs/orders/r.1/agents/0003-01/000042.hlog", // invalid run id
        "runs/orders/r1/report/0003-01/000042.hlog", // not agents/
        "runs/orders/r1/agents/+003-01/000042.hlog", // sign
        "runs/orders/r1/agents/0003-01/",           // a prefix
    ] {
        assert_eq!(parse_interval_key(bad), None, "{bad}");
    }
    // Numbers past the fixed widths build keys that do not parse.
    assert_eq!(
        parse_interval_key(&interval_key("a", "r", 10_000, 0, 0)),
        None
    );
    assert_eq!(parse_interval_key(&interval_key("a", "r", 0, 100, 0)), None);
    assert_eq!(
        parse_interval_key(&interval_key("a", "r", 0, 0, 1_000_000)),
        None
    );
}

#[test]
fn report_files_have_fixed_names() {
    let names: Vec<String> = ReportFile::ALL
        .iter()
        .map(|f| report_key("orders", "r1", *f))
        .collect();
    assert_eq!(
        names,
        [
            "runs/orders/r1/report/report.json",
            "runs/orders/r1/report/report.html",
            "runs/orders/r1/report/merged.hlog",
            "runs/orders/r1/report/junit.xml",
        ]
    );
    for f in ReportFile::ALL {
        assert_eq!(ReportFile::from_file_name(f.file_name()), Some(f));
        assert!(!f.content_type().is_empty());
    }
    assert_eq!(ReportFile::from_file_name("report.xml"), None);
}

#[test]
fn a_run_prefix_does_not_match_a_longer_run_id() {
    let sk_r10 = agent_sk("r10", 0, 0);
    assert!(!sk_r10.starts_with(&agent_sk_prefix("r1")));
    assert!(!interval_key("lt", "r10", 0, 0, 0).starts_with(&agents_prefix("lt", "r1")));
}

#[test]
fn item_keys_follow_the_layout() {
    assert_eq!(load_test_pk("orders"), "lt#orders");
    assert_eq!(agent_sk("r1", 7, 2), "agent#r1#0007#02");
    let cases = [
        (
            ("lt#orders", "spec"),
            ItemKey::LoadTest {
                name: "orders".into(),
            },
        ),
        (
            ("lt#orders", "agent#r1#0007#02"),
            ItemKey::Agent {
                load_test: "orders".into(),
                agent: AgentSk {
                    run_id: "r1".into(),
                    slot: 7,
                    incarnation: 2,
                },
            },
        ),
        (
            ("lt#orders", "status"),
            ItemKey::Status {
                name: "orders".into(),
            },
        ),
        (("lease#controller", "lease"), ItemKey::Lease),
    ];
    for ((pk, sk), key) in cases {
        assert_eq!(ItemKey::parse(pk, sk), Some(key.clone()));
        assert_eq!(key.keys(), (pk.to_string(), sk.to_string()));
    }
    for (pk, sk) in [
        ("lt#orders", "statuses"),
        ("lt#Orders", "status"),
        ("lt#Orders", "spec"),
        ("lt#", "spec"),
        ("lease#controller", "spec"),
        ("lease#other", "lease"),
        ("lt#orders", "agent#r1#7#2"),
        ("lt#orders", "agent#r1#0007#02#x"),
        ("orders", "spec"),
    ] {
        assert_eq!(ItemKey::parse(pk, sk), None, "{pk} {sk}");
    }
}

fn s(v: &str) -> Attr {
    Attr::S(v.to_string())
}

#[test]
fn load_test_items_round_trip() {
    let lt = LoadTestItem {
        name: "orders".into(),
        doc: "{\"apiVersion\":\"barrage.dev/v1alpha1\"}".into(),
        generation: 3,
        version: 17,
        status: Some("{\"phase\":\"Running\"}".into()),
        epoch: 4,
        ttl: Some(1_800_000_000),
    };
    let item = lt.to_item();
    assert_eq!(item["pk"], s("lt#orders"));
    assert_eq!(item["sk"], s("spec"));
    assert_eq!(item["generation"], Attr::N(3));
    assert_eq!(item["version"], Attr::N(17));
    assert_eq!(item["epoch"], Attr::N(4));
    assert_eq!(item["ttl"], Attr::N(1_800_000_000));
    assert_eq!(LoadTestItem::from_item(&item).unwrap(), lt);
    let bare = LoadTestItem {
        status: None,
        ttl: None,
        ..lt
    };
    let item = bare.to_item();
    assert!(!item.contains_key("status") && !item.contains_key("ttl"));
    assert_eq!(LoadTestItem::from_item(&item).unwrap(), bare);
}

#[test]
fn status_items_round_trip_and_name_what_is_wrong() {
    let st = StatusItem {
        name: "orders".into(),
        status: "{\"phase\":\"Running\"}".into(),
        version: 5,
        epoch: 2,
    };
    let item = st.to_item();
    assert_eq!(item["pk"], s("lt#orders"));
    assert_eq!(item["sk"], s("status"));
    assert_eq!(item["version"], Attr::N(5));
    assert_eq!(item["epoch"], Attr::N(2));
    assert!(!item.contains_key("doc"));
    assert_eq!(StatusItem::from_item(&item).unwrap(), st);
    let mut spec_keys = item.clone();
    spec_keys.insert("sk".into(), s("spec"));
    assert!(matches!(
        StatusItem::from_item(&spec_keys),
        Err(ItemError::WrongKeys { .. })
    ));
    let mut no_epoch = item;
    no_epoch.remove("epoch");
    assert_eq!(
        StatusItem::from_item(&no_epoch).unwrap_err(),
        ItemError::Missing("epoch")
    );
}

#[test]
fn a_load_test_put_by_hand_gets_defaults() {
    let item: Item = [
        ("pk".to_string(), s("lt#orders")),
        ("sk".to_string(), s("spec")),
        ("doc".to_string(), s("apiVersion: barrage.dev/v1alpha1\n")),
    ]
    .into_iter()
    .collect();
    let lt = LoadTestItem::from_item(&item).unwrap();
    assert_eq!((lt.generation, lt.version, lt.epoch), (1, 0, 0));
    assert_eq!(lt.status, None);
}

#[test]
fn malformed_items_are_named() {
    let mut item = LoadTestItem {
        name: "orders".into(),
        doc: "x".into(),
        generation: 1,
        version: 1,
        status: None,
        epoch: 0,
        ttl: None,
    }
    .to_item();
    item.insert("version".into(), s("1"));
    assert_eq!(
        LoadTestItem::from_item(&item).unwrap_err().to_string(),
        "item attribute \"version\": must be a number (N)"
    );
    item.insert("version".into(), Attr::N(-1));
    assert_eq!(
        LoadTestItem::from_item(&item).unwrap_err().to_string(),
        "item attribute \"version\": number -1 is out of range"
    );
    item.insert("version".into(), Attr::N(1));
    item.remove("doc");
    assert_eq!(
        LoadTestItem::from_item(&item).unwrap_err(),
        ItemError::Missing("doc")
    );
    item.insert("sk".into(), s("agent#r1#0000#00"));
    assert!(matches!(
        LoadTestItem::from_item(&item),
        Err(ItemError::WrongKeys { .. })
    ));
    item.remove("pk");
    assert_eq!(
        LoadTestItem::from_item(&item).unwrap_err(),
        ItemError::Missing("pk")
    );
}

fn status() -> AgentStatus {
    let now = DateTime::from_timestamp(1_732_567_200, 0).unwrap();
    let mut s = AgentStatus::new("orders", "r1", 7, 2, now);
    s.counters.sent = 10;
    s
}

#[test]
fn agent_status_items_round_trip_and_check_their_keys() {
    let a = AgentStatusItem {
        status: status(),
        ttl: Some(1_900_000_000),
    };
    let item = a.to_item();
    assert_eq!(item["pk"], s("lt#orders"));
    assert_eq!(item["sk"], s("agent#r1#0007#02"));
    assert_eq!(AgentStatusItem::from_item(&item).unwrap(), a);

    let mut other = status();
    other.slot = 8;
    let mut forged = item.clone();
    forged.insert("doc".into(), s(&other.to_json()));
    assert_eq!(
        AgentStatusItem::from_item(&forged).unwrap_err().to_string(),
        "item attribute \"doc\": the status is for orders/r1 slot 8 incarnation 2, not the item's keys"
    );
    let mut broken = item;
    broken.insert("doc".into(), s("{\"loadTest\":"));
    assert!(matches!(
        AgentStatusItem::from_item(&broken),
        Err(ItemError::AgentDoc(_))
    ));
}

#[test]
fn lease_items_round_trip() {
    let lease = LeaseItem {
        holder: "controller-7f3a".into(),
        epoch: 12,
        expires_at_ms: 1_732_567_215_000,
    };
    let item = lease.to_item();
    assert_eq!(item["pk"], s("lease#controller"));
    assert_eq!(item["sk"], s("lease"));
    assert_eq!(item["expires_at_ms"], Attr::N(1_732_567_215_000));
    assert_eq!(LeaseItem::from_item(&item).unwrap(), lease);
    assert!(!lease.is_expired(1_732_567_214_999));
    assert!(lease.is_expired(1_732_567_215_000));
    let mut not_lease = item;
    not_lease.insert("pk".into(), s("lt#x"));
    assert!(matches!(
        LeaseItem::from_item(&not_lease),
        Err(ItemError::WrongKeys { .. })
    ));
}

#[test]
fn interval_prefixes_group_aligned_decimal_blocks() {
    use barrage_crds::keys::interval_prefixes;
    assert_eq!(interval_prefixes(360..390), ["00036", "00037", "00038"]);
    assert_eq!(
        interval_prefixes(15..30),
        ["000015", "000016", "000017", "000018", "000019", "00002"]
    );
    assert_eq!(interval_prefixes(0..1_000), ["000"]);
    assert_eq!(interval_prefixes(7..7), Vec::<String>::new());
    assert_eq!(interval_prefixes(999_999..2_000_000), ["999999"]);
}

proptest! {
    /// Listing an agent's prefix + each of `interval_prefixes(range)` returns exactly the
    /// interval keys of `range`: each key of the range under exactly one prefix, no key
    /// outside it under any.
    #[test]
    fn interval_prefixes_select_exactly_the_range(start in 0u32..1_000_100, len in 0u32..3_000) {
        use barrage_crds::keys::{MAX_INTERVAL, interval_prefixes};
        let range = start..start.saturating_add(len);
        let prefixes = interval_prefixes(range.clone());
        let dir = agent_prefix("lt", "r1", 2, 0);
        // Every index near the range, and a sample of far ones.
        let lo = start.saturating_sub(25);
        let hi = range.end.saturating_add(25).min(MAX_INTERVAL);
        for i in (lo..=hi).chain([0, 9, 10, 99_999, 100_000, MAX_INTERVAL]) {
            let key = interval_key("lt", "r1", 2, 0, i);
            let under = prefixes
                .iter()
                .filter(|p| key.starts_with(&format!("{dir}{p}")))
                .count();
            let expected = usize::from(range.contains(&i));
            prop_assert_eq!(under, expected, "interval {} with prefixes {:?}", i, prefixes);
        }
        // Few listings per window: at most 9 per decimal digit on each side.
        prop_assert!(prefixes.len() <= 2 * 9 * 6, "{:?}", prefixes);
    }
}
