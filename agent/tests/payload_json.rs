//! JSON template payloads: every placeholder renders valid JSON within its rules, quoting
//! follows where a placeholder stands, errors name the placeholder and its position, seeds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod payload_json {
    use std::collections::BTreeSet;
    use std::time::Instant;

    use barrage_agent::payload::avro::DEFAULT_BASE_MILLIS;
    use barrage_agent::payload::json::{JsonTemplate, generate_pool};
    use barrage_crds::spec::JsonValue;
    use proptest::prelude::*;
    use serde_json::Value;

    const EXAMPLE: &str = r#"{"id": "{{seq}}", "user": "{{uuid}}", "amount": {{uniformInt 1 1000}},
 "ts": {{timestampMillis}}, "name": "{{string 8}}", "choice": "{{oneOf a b c}}"}"#;

    fn parse_all(values: &[Vec<u8>]) -> Vec<Value> {
        values
            .iter()
            .map(|v| {
                serde_json::from_slice(v)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(v)))
            })
            .collect()
    }

    fn err(template: &str) -> String {
        match JsonTemplate::parse(template) {
            Ok(_) => panic!("expected an error for {template}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_example_template_renders_valid_json_within_every_rule() {
        let values = parse_all(&generate_pool(EXAMPLE, 1, 2000).unwrap());
        let mut amounts = BTreeSet::new();
        let mut choices = BTreeSet::new();
        let mut users = BTreeSet::new();
        for (i, v) in values.iter().enumerate() {
            assert_eq!(v["id"], Value::String(i.to_string()));
            let user: uuid::Uuid = v["user"].as_str().unwrap().parse().unwrap();
            assert_eq!(user.get_version_num(), 4);
            users.insert(user);
            let amount = v["amount"].as_i64().unwrap();
            assert!((1..=1000).contains(&amount), "{amount}");
            amounts.insert(amount);
            assert_eq!(v["ts"].as_i64().unwrap(), DEFAULT_BASE_MILLIS + i as i64);
            let name = v["name"].as_str().unwrap();
            assert!(name.len() == 8 && name.chars().all(|c| c.is_ascii_alphanumeric()));
            choices.insert(v["choice"].as_str().unwrap().to_string());
        }
        assert_eq!(users.len(), 2000);
        assert!(amounts.len() > 500, "amounts spread over the range");
        assert_eq!(
            choices,
            ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
        );
    }

    #[test]
    fn the_validator_placeholders_render_too() {
        // The spellings crds' check_json_template accepts.
        let t = r#"{"n": {{int -5 5}}, "s": "{{string 2 4}}", "q": {{seq}}, "u": "{{uuid}}", "t": {{timestampMillis}}}"#;
        barrage_crds::validate::check_json_template(t).unwrap();
        for v in parse_all(&generate_pool(t, 3, 500).unwrap()) {
            assert!((-5..=5).contains(&v["n"].as_i64().unwrap()));
            assert!((2..=4).contains(&v["s"].as_str().unwrap().len()));
        }
    }

    #[test]
    fn placeholders_outside_strings_are_whole_json_values() {
        let t = r#"{"u": {{uuid}}, "s": {{string 3 5}}, "o": [{{oneOf 1 x true null 2.5}}], "b": {{bool}}, "q": {{seq 10}}}"#;
        let values = parse_all(&generate_pool(t, 9, 400).unwrap());
        let mut kinds = BTreeSet::new();
        for (i, v) in values.iter().enumerate() {
            assert!(v["u"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
            assert!((3..=5).contains(&v["s"].as_str().unwrap().len()));
            assert!(v["b"].is_boolean());
            assert_eq!(v["q"].as_i64().unwrap(), 10 + i as i64);
            let o = &v["o"][0];
            kinds.insert(match o {
                Value::Number(n) if n.as_i64() == Some(1) => "1",
                Value::Number(_) => "2.5",
                Value::String(s) if s == "x" => "x",
                Value::Bool(true) => "true",
                Value::Null => "null",
                other => panic!("{other}"),
            });
        }
        assert_eq!(kinds.len(), 5, "{kinds:?}");
    }

    #[test]
    fn words_inside_strings_are_escaped_for_json() {
        let t = r#"{"w": "<{{oneOf a"b c\d tab	x}}>", "key-{{seq}}": 1}"#;
        let values = parse_all(&generate_pool(t, 2, 300).unwrap());
        let seen: BTreeSet<String> = values
            .iter()
            .map(|v| v["w"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            seen,
            ["<a\"b>", "<c\\d>", "<tab>", "<x>"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        assert!(values[7].get("key-7").is_some());
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_other_seeds_differ() {
        let a = generate_pool(EXAMPLE, 42, 100).unwrap();
        assert_eq!(a, generate_pool(EXAMPLE, 42, 100).unwrap());
        let b = generate_pool(EXAMPLE, 43, 100).unwrap();
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
        // seq and timestampMillis do not depend on the seed; the rest does.
        let plain = r#"{"s": {{seq}}}"#;
        assert_eq!(
            generate_pool(plain, 1, 5).unwrap(),
            generate_pool(plain, 2, 5).unwrap()
        );
    }

    #[test]
    fn the_base_time_moves_timestamps() {
        let t = JsonTemplate::parse(r#"[{{timestampMillis}}]"#)
            .unwrap()
            .with_base_time_millis(1_000);
        let values = parse_all(&t.generate(0, 3));
        assert_eq!(
            values,
            vec![
                serde_json::json!([1000]),
                serde_json::json!([1001]),
                serde_json::json!([1002])
            ]
        );
    }

    #[test]
    fn the_spec_shape_from_crds_builds_a_template() {
        let spec: JsonValue =
            serde_json::from_value(serde_json::json!({"template": "{\"a\": {{seq 5}}}"})).unwrap();
        let t = JsonTemplate::from_spec(&spec).unwrap();
        assert_eq!(t.generate(0, 1), vec![br#"{"a": 5}"#.to_vec()]);
    }

    #[test]
    fn errors_name_the_placeholder_and_its_position() {
        assert_eq!(
            err(r#"{"a": {{uniformInt 5 1}}}"#),
            "spec.workload.records.value.json.template: placeholder {{uniformInt 5 1}}: min must be at most max (got min 5, max 1) (at line 1, column 7)"
        );
        let e = err("{\"a\": 1,\n \"b\": \"{{nope 3}}\"}");
        assert!(
            e.contains("placeholder {{nope 3}}: is not a placeholder; expected one of {{seq}}"),
            "{e}"
        );
        assert!(e.ends_with("(at line 2, column 8)"), "{e}");
        assert!(
            err(r#"{"a": {{seq}"#)
                .contains("an unclosed {{ (placeholders end with }}) (at line 1, column 7)")
        );
        assert!(err(r#"{"a": "{{}}"}"#).contains("placeholder {{}}: is empty"));
        assert!(err(r#"{"a": {{string x}}}"#).contains("LEN must be a length"));
        assert!(err(r#"{"a": {{int 1}}}"#).contains("is not a placeholder"));
        assert!(err(r#"{"a": {{oneOf}}}"#).contains("must list at least one word"));
        assert!(err(r#"{"a": {{string 99999999999}}}"#).contains("must be at most"));
        // Where a value cannot stand.
        let e = err(r#"{"a": {{seq}}{{seq}}}"#);
        assert!(
            e.contains("placeholder {{seq}} must be followed by , ] or }"),
            "{e}"
        );
        assert!(e.ends_with("(at line 1, column 7)"), "{e}");
        let e = err(r#"{"a": -{{seq}}}"#);
        assert!(e.contains("stands where a JSON value cannot"), "{e}");
        assert!(err(r#"{ {{seq}}: 1}"#).contains("stands where a JSON value cannot"));
        assert!(err(r#"{"a": {{seq}}0}"#).contains("must be followed by"));
        // Not JSON at all.
        let e = err(r#"{"a": {{seq}},}"#);
        assert!(
            e.contains("is not JSON once placeholders are filled in"),
            "{e}"
        );
        assert!(err("").contains("is not JSON"));
    }

    #[test]
    fn seq_uuid_and_timestamp_come_from_the_record_not_from_its_place_in_a_pool() {
        use barrage_agent::payload::RecordAt;
        let t = JsonTemplate::parse(EXAMPLE).unwrap();
        let render = |index: u64, intended_millis: i64| {
            let mut out = Vec::new();
            t.render(
                9,
                RecordAt {
                    index,
                    intended_millis,
                },
                &mut out,
            );
            serde_json::from_slice::<serde_json::Value>(&out).unwrap()
        };
        let far = render(1_000_003, 1_800_000_000_123);
        assert_eq!(far["id"], "1000003");
        assert_eq!(far["ts"], 1_800_000_000_123u64);
        // Record 4 096 is not record 0 again (a pool of 4 096 values repeated there).
        assert_ne!(render(4_096, 5)["user"], render(0, 5)["user"]);
        assert_ne!(render(4_096, 5)["id"], render(0, 5)["id"]);
        // A record is the same whoever renders it, and whatever was rendered before.
        assert_eq!(render(77, 5), render(77, 5));
        let users: std::collections::HashSet<String> = (0..20_000)
            .map(|j| render(j, 5)["user"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(users.len(), 20_000, "uuids are fresh per record");
    }

    #[test]
    fn templates_that_could_pass_the_record_limit_are_refused() {
        let e = err(r#"[{{string 6000000}}, {{string 6000000}}]"#);
        assert!(
            e.contains("a rendered value could be 12000008 bytes; at most 10485760"),
            "{e}"
        );
        JsonTemplate::parse(r#"[{{string 6000000}}]"#).unwrap();
    }

    #[test]
    fn throughput_is_printed_not_asserted() {
        let t = JsonTemplate::parse(EXAMPLE).unwrap();
        let n = 200_000;
        let start = Instant::now();
        let values = t.generate(1, n);
        let secs = start.elapsed().as_secs_f64();
        let bytes: usize = values.iter().map(Vec::len).sum();
        println!(
            "json: {n} values in {secs:.3} s = {:.0} values/s, {:.1} MB/s (mean {} B)",
            n as f64 / secs,
            bytes as f64 / secs / 1e6,
            bytes / n
        );
        assert_eq!(values.len(), n);
    }

    fn placeholder() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("{{seq}}".to_string()),
            any::<i64>().prop_map(|s| format!("{{{{seq {s}}}}}")),
            Just("{{uuid}}".to_string()),
            Just("{{timestampMillis}}".to_string()),
            Just("{{bool}}".to_string()),
            (any::<i64>(), any::<i64>()).prop_map(|(a, b)| format!(
                "{{{{int {} {}}}}}",
                a.min(b),
                a.max(b)
            )),
            (0usize..20).prop_map(|n| format!("{{{{string {n}}}}}")),
            prop::collection::vec("[a-z0-9\"\\\\.\\-]{1,6}", 1..4)
                .prop_map(|w| format!("{{{{oneOf {}}}}}", w.join(" "))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn templates_with_placeholders_in_value_places_always_render_json(
            fields in prop::collection::vec((placeholder(), any::<bool>(), "[a-z ]{0,4}"), 1..6),
            seed in any::<u64>(),
        ) {
            let body: Vec<String> = fields
                .iter()
                .enumerate()
                .map(|(i, (p, in_string, pad))| {
                    if *in_string {
                        format!("\"k{i}\": \"{pad}{p}{pad}\"")
                    } else {
                        let ws = pad.replace(|c: char| c != ' ', "");
                        format!("\"k{i}\":{ws}{p}{ws}")
                    }
                })
                .collect();
            let template = format!("{{{}, \"list\": [{}]}}", body.join(", "), fields.iter().map(|f| f.0.clone()).collect::<Vec<_>>().join(","));
            let t = JsonTemplate::parse(&template).map_err(|e| TestCaseError::fail(format!("{e}\n{template}")))?;
            for v in t.generate(seed, 16) {
                prop_assert!(serde_json::from_slice::<Value>(&v).is_ok(), "{}", String::from_utf8_lossy(&v));
            }
        }

        #[test]
        fn arbitrary_templates_never_panic(template in "\\PC{0,80}", seed in any::<u64>()) {
            if let Ok(t) = JsonTemplate::parse(&template) {
                for v in t.generate(seed, 4) {
                    prop_assert!(serde_json::from_slice::<Value>(&v).is_ok());
                }
            }
        }

        #[test]
        fn arbitrary_placeholder_text_never_panics(inner in "[a-zA-Z0-9 \\-\"]{0,30}") {
            let _ = JsonTemplate::parse(&format!("{{\"a\": {{{{{inner}}}}}}}"));
            let _ = JsonTemplate::parse(&format!("{{\"a\": \"{{{{{inner}}}}}\"}}"));
        }
    }
}
