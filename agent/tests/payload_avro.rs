//! Avro payloads: every type round-trips, generators are honoured, Confluent framing, seeds,
//! errors that name the spec path, recursive schemas that end, and random schemas that never panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod payload_avro {
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Instant;

    use apache_avro::types::Value;
    use barrage_agent::payload::avro::{
        AvroDecoder, AvroGenerator, DEFAULT_BASE_MILLIS, PayloadError, SOFT_DEPTH,
        confluent_schema_id, decode, generate_pool,
    };
    use barrage_crds::spec::{AvroValue, FieldGenerator};
    use proptest::prelude::*;

    /// Every Avro type and logical type, nested records included.
    const ALL_TYPES: &str = r#"{
  "type": "record", "name": "Everything", "namespace": "test.barrage",
  "fields": [
    {"name": "n", "type": "null"},
    {"name": "b", "type": "boolean"},
    {"name": "i", "type": "int"},
    {"name": "l", "type": "long"},
    {"name": "f", "type": "float"},
    {"name": "d", "type": "double"},
    {"name": "by", "type": "bytes"},
    {"name": "s", "type": "string"},
    {"name": "user", "type": {"type": "record", "name": "User", "fields": [
        {"name": "name", "type": "string"},
        {"name": "age", "type": "int"},
        {"name": "address", "type": {"type": "record", "name": "Address", "fields": [
            {"name": "zip", "type": "string"}]}}]}},
    {"name": "again", "type": "User"},
    {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "scores", "type": {"type": "map", "values": "long"}},
    {"name": "maybe", "type": ["null", "string", "Color"]},
    {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 16}},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
    {"name": "fprice", "type": {"type": "fixed", "name": "Money", "size": 5, "logicalType": "decimal", "precision": 20, "scale": 4}},
    {"name": "big", "type": {"type": "bytes", "logicalType": "big-decimal"}},
    {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "tms", "type": {"type": "int", "logicalType": "time-millis"}},
    {"name": "tus", "type": {"type": "long", "logicalType": "time-micros"}},
    {"name": "tsms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "tsus", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "tsns", "type": {"type": "long", "logicalType": "timestamp-nanos"}},
    {"name": "ltsms", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
    {"name": "ltsus", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
    {"name": "ltsns", "type": {"type": "long", "logicalType": "local-timestamp-nanos"}},
    {"name": "span", "type": {"type": "fixed", "name": "Span", "size": 12, "logicalType": "duration"}}
  ]
}"#;

    const USER: &str = r#"{
  "type": "record", "name": "Event",
  "fields": [
    {"name": "seq", "type": "long"},
    {"name": "user", "type": {"type": "record", "name": "User", "fields": [
        {"name": "id", "type": "string"},
        {"name": "age", "type": "int"},
        {"name": "nick", "type": "string"}]}},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["CLICK", "VIEW", "BUY"]}},
    {"name": "source", "type": "string"},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "tsus", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "ref", "type": ["null", "long"]},
    {"name": "blob", "type": "bytes"},
    {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}}
  ]
}"#;

    fn gens(pairs: &[(&str, serde_json::Value)]) -> BTreeMap<String, FieldGenerator> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::from_value(v.clone()).unwrap()))
            .collect()
    }

    fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
        match v {
            Value::Record(fields) => &fields.iter().find(|(n, _)| n == name).unwrap().1,
            other => panic!("not a record: {other:?}"),
        }
    }

    fn depth(v: &Value) -> usize {
        1 + match v {
            Value::Record(fs) => fs.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
            Value::Array(items) => items.iter().map(depth).max().unwrap_or(0),
            Value::Map(m) => m.values().map(depth).max().unwrap_or(0),
            Value::Union(_, v) => depth(v),
            _ => 0,
        }
    }

    fn err(schema: &str, g: &[(&str, serde_json::Value)]) -> String {
        match AvroGenerator::new(schema, &gens(g), None) {
            Ok(_) => panic!("expected an error for {g:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_avro_type_round_trips_through_binary_encoding() {
        let g = AvroGenerator::new(ALL_TYPES, &BTreeMap::new(), None).unwrap();
        let values = g.values(7, 300).unwrap();
        let bytes = g.generate(7, 300).unwrap();
        let decoder = AvroDecoder::new(ALL_TYPES).unwrap();
        for (v, b) in values.iter().zip(&bytes) {
            let back = decoder.decode(b, false).unwrap();
            assert_eq!(&back, v);
            assert!(back.validate(g.schema()));
        }
        // The values vary the way the schema allows.
        let colors: BTreeSet<String> = values
            .iter()
            .map(|v| match field(v, "color") {
                Value::Enum(_, s) => s.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(colors.len(), 3, "every enum symbol appears");
        let branches: BTreeSet<u32> = values
            .iter()
            .map(|v| match field(v, "maybe") {
                Value::Union(i, _) => *i,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            branches,
            BTreeSet::from([0, 1, 2]),
            "every union branch appears"
        );
        let lengths: BTreeSet<usize> = values
            .iter()
            .map(|v| match field(v, "tags") {
                Value::Array(a) => a.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(lengths.contains(&0) && lengths.len() >= 3, "{lengths:?}");
        for v in &values {
            match field(v, "hash") {
                Value::Fixed(16, b) => assert_eq!(b.len(), 16),
                other => panic!("{other:?}"),
            }
            match field(v, "tsms") {
                Value::TimestampMillis(ms) => {
                    assert!(
                        *ms <= DEFAULT_BASE_MILLIS && *ms > DEFAULT_BASE_MILLIS - 366 * 86_400_000
                    )
                }
                other => panic!("{other:?}"),
            }
            match field(v, "tms") {
                Value::TimeMillis(ms) => assert!((0..86_400_000).contains(ms)),
                other => panic!("{other:?}"),
            }
            assert!(matches!(field(v, "id"), Value::Uuid(u) if u.get_version_num() == 4));
            assert!(matches!(
                field(field(v, "user"), "address"),
                Value::Record(_)
            ));
        }
    }

    #[test]
    fn the_encoder_writes_what_apache_avro_writes() {
        // apache-avro writes maps in HashMap order, so compare values whose maps have one entry at most.
        for schema in [USER, ALL_TYPES] {
            let g = AvroGenerator::new(schema, &BTreeMap::new(), None).unwrap();
            let mut compared = 0;
            for v in g.values(5, 300).unwrap() {
                if schema == ALL_TYPES
                    && !matches!(field(&v, "scores"), Value::Map(m) if m.len() <= 1)
                {
                    continue;
                }
                let theirs = apache_avro::to_avro_datum(g.schema(), v.clone()).unwrap();
                assert_eq!(g.encode(&v).unwrap(), theirs);
                compared += 1;
            }
            assert!(compared > 50, "{compared}");
        }
    }

    #[test]
    fn values_stay_under_the_record_limit() {
        let g = AvroGenerator::new(USER, &BTreeMap::new(), None).unwrap();
        assert_eq!(g.generate(4, 7).unwrap().len(), 7);

        // Up to 4 fixeds of 3 MB: four of them pass the 10 MiB record limit.
        let big = r#"{"type": "record", "name": "B", "fields": [{"name": "a",
            "type": {"type": "array", "items": {"type": "fixed", "name": "F", "size": 3000000}}}]}"#;
        let e = AvroGenerator::new(big, &BTreeMap::new(), None)
            .unwrap()
            .generate(1, 200)
            .unwrap_err();
        assert!(e.to_string().contains("larger than 10485760 bytes"), "{e}");
    }

    #[test]
    fn decimals_stay_within_precision_and_the_fixed_size() {
        let schema = r#"{"type": "record", "name": "D", "fields": [
        {"name": "small", "type": {"type": "fixed", "name": "One", "size": 1, "logicalType": "decimal", "precision": 5, "scale": 0}},
        {"name": "p3", "type": {"type": "bytes", "logicalType": "decimal", "precision": 3, "scale": 1}},
        {"name": "wide", "type": {"type": "bytes", "logicalType": "decimal", "precision": 60, "scale": 10}}]}"#;
        let g = AvroGenerator::new(schema, &BTreeMap::new(), None).unwrap();
        let decoder = AvroDecoder::new(schema).unwrap();
        for b in g.generate(3, 500).unwrap() {
            let v = decoder.decode(&b, false).unwrap();
            let unscaled = |name: &str| -> i128 {
                match field(&v, name) {
                    Value::Decimal(d) => {
                        let bytes = <Vec<u8>>::try_from(d).unwrap();
                        let mut full = [if bytes[0] & 0x80 != 0 { 0xFF } else { 0 }; 16];
                        full[16 - bytes.len()..].copy_from_slice(&bytes);
                        i128::from_be_bytes(full)
                    }
                    other => panic!("{other:?}"),
                }
            };
            assert!((-127..=127).contains(&unscaled("small")));
            assert!((-999..=999).contains(&unscaled("p3")));
        }
    }

    #[test]
    fn field_generators_are_honoured() {
        let g = gens(&[
            ("seq", serde_json::json!({"sequence": {"start": 100}})),
            (
                "user.age",
                serde_json::json!({"uniformInt": {"min": 18, "max": 21}}),
            ),
            ("user.id", serde_json::json!({"uuid": {}})),
            (
                "user.nick",
                serde_json::json!({"stringLength": {"min": 2, "max": 3}}),
            ),
            ("kind", serde_json::json!({"oneOf": ["VIEW", "BUY"]})),
            ("source", serde_json::json!({"constant": "web"})),
            ("ts", serde_json::json!({"timestampMillis": {}})),
            ("tsus", serde_json::json!({"timestampMillis": {}})),
            ("ref", serde_json::json!({"sequence": {}})),
            (
                "blob",
                serde_json::json!({"stringLength": {"min": 5, "max": 5}}),
            ),
            ("uid", serde_json::json!({"uuid": {}})),
        ]);
        let base = 1_700_000_000_000;
        let gen_ = AvroGenerator::new(USER, &g, None)
            .unwrap()
            .with_base_time_millis(base);
        let values = gen_.values(1, 1000).unwrap();
        let mut ages = BTreeSet::new();
        let mut kinds = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for (i, v) in values.iter().enumerate() {
            let i = i as i64;
            assert_eq!(field(v, "seq"), &Value::Long(100 + i));
            assert_eq!(field(v, "ref"), &Value::Union(1, Box::new(Value::Long(i))));
            assert_eq!(field(v, "source"), &Value::String("web".into()));
            assert_eq!(field(v, "ts"), &Value::TimestampMillis(base + i));
            assert_eq!(
                field(v, "tsus"),
                &Value::TimestampMicros((base + i) * 1_000)
            );
            let user = field(v, "user");
            match field(user, "age") {
                Value::Int(a) => {
                    assert!((18..=21).contains(a), "{a}");
                    ages.insert(*a);
                }
                other => panic!("{other:?}"),
            }
            match field(user, "id") {
                Value::String(s) => {
                    let u: uuid::Uuid = s.parse().unwrap();
                    assert_eq!(u.get_version_num(), 4);
                    ids.insert(s.clone());
                }
                other => panic!("{other:?}"),
            }
            match field(user, "nick") {
                Value::String(s) => {
                    assert!(
                        (2..=3).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric())
                    )
                }
                other => panic!("{other:?}"),
            }
            match field(v, "kind") {
                Value::Enum(idx, s) => {
                    assert!(
                        matches!((idx, s.as_str()), (1, "VIEW") | (2, "BUY")),
                        "{idx} {s}"
                    );
                    kinds.insert(s.clone());
                }
                other => panic!("{other:?}"),
            }
            assert!(matches!(field(v, "blob"), Value::Bytes(b) if b.len() == 5));
            assert!(matches!(field(v, "uid"), Value::Uuid(_)));
        }
        assert_eq!(
            ages,
            BTreeSet::from([18, 19, 20, 21]),
            "both ends of the range appear"
        );
        assert_eq!(kinds.len(), 2);
        assert_eq!(ids.len(), 1000, "uuids differ");
        // And the encoded bytes decode to exactly these values.
        let decoder = AvroDecoder::new(USER).unwrap();
        for (v, b) in values.iter().zip(gen_.generate(1, 1000).unwrap()) {
            assert_eq!(&decoder.decode(&b, false).unwrap(), v);
        }
    }

    #[test]
    fn generators_reach_records_inside_unions_and_fill_union_fields() {
        let schema = r#"{"type": "record", "name": "R", "fields": [
        {"name": "inner", "type": ["null", {"type": "record", "name": "I", "fields": [
            {"name": "n", "type": ["null", "string", "int"]}]}]}]}"#;
        let g = gens(&[(
            "inner.n",
            serde_json::json!({"uniformInt": {"min": 5, "max": 5}}),
        )]);
        let values = AvroGenerator::new(schema, &g, None)
            .unwrap()
            .values(2, 200)
            .unwrap();
        let mut filled = 0;
        for v in &values {
            if let Value::Union(1, inner) = field(v, "inner") {
                // The first branch an integer fills is the string one.
                assert_eq!(
                    field(inner, "n"),
                    &Value::Union(1, Box::new(Value::String("5".into())))
                );
                filled += 1;
            }
        }
        assert!(filled > 50, "{filled}");
    }

    #[test]
    fn confluent_framing_is_magic_byte_schema_id_then_the_datum() {
        let plain = generate_pool(USER, &BTreeMap::new(), 9, 50, None).unwrap();
        let framed = generate_pool(USER, &BTreeMap::new(), 9, 50, Some(0x0102_0304)).unwrap();
        for (p, f) in plain.iter().zip(&framed) {
            assert_eq!(&f[..5], &[0, 1, 2, 3, 4]);
            assert_eq!(&f[5..], &p[..]);
            assert_eq!(confluent_schema_id(f), Some(0x0102_0304));
            assert_eq!(
                decode(USER, f, true).unwrap(),
                decode(USER, p, false).unwrap()
            );
        }
        let mut wrong = framed[0].clone();
        wrong[0] = 1;
        let e = decode(USER, &wrong, true).unwrap_err();
        assert!(e.to_string().contains("Confluent wire format"), "{e}");
        assert!(decode(USER, &framed[0][..3], true).is_err());
        // Unframed bytes read as framed lose 5 bytes and do not decode as a whole value.
        assert!(decode(USER, &framed[0], false).is_err());
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_other_seeds_differ() {
        let g = gens(&[(
            "user.age",
            serde_json::json!({"uniformInt": {"min": 0, "max": 100}}),
        )]);
        let a = generate_pool(ALL_TYPES, &BTreeMap::new(), 42, 100, None).unwrap();
        let b = generate_pool(ALL_TYPES, &BTreeMap::new(), 42, 100, None).unwrap();
        let c = generate_pool(ALL_TYPES, &BTreeMap::new(), 43, 100, None).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().zip(&c).filter(|(x, y)| x == y).count() == 0);
        let d = generate_pool(USER, &g, 5, 100, None).unwrap();
        let e = generate_pool(USER, &g, 5, 100, None).unwrap();
        assert_eq!(d, e);
        assert_eq!(generate_pool(USER, &g, 5, 0, None).unwrap().len(), 0);
    }

    #[test]
    fn the_spec_shape_from_crds_builds_a_generator() {
        let spec: AvroValue = serde_json::from_value(serde_json::json!({
            "schema": USER,
            "generators": {"seq": {"sequence": {"start": 7}}, "kind": {"constant": "BUY"}},
            "confluentSchemaId": 12
        }))
        .unwrap();
        let g = AvroGenerator::from_spec(&spec).unwrap();
        let bytes = g.generate(1, 3).unwrap();
        assert_eq!(confluent_schema_id(&bytes[2]), Some(12));
        let v = decode(USER, &bytes[2], true).unwrap();
        assert_eq!(field(&v, "seq"), &Value::Long(9));
        assert_eq!(field(&v, "kind"), &Value::Enum(2, "BUY".into()));

        let file_only: AvroValue =
            serde_json::from_value(serde_json::json!({"schemaFile": "user.avsc"})).unwrap();
        let e = AvroGenerator::from_spec(&file_only).unwrap_err();
        assert_eq!(e.path(), "spec.workload.records.value.avro.schemaFile");
    }

    #[test]
    fn errors_name_the_spec_path_and_the_rule() {
        assert_eq!(
            err(
                USER,
                &[(
                    "user.age",
                    serde_json::json!({"uniformInt": {"min": 10, "max": 5}})
                )]
            ),
            "spec.workload.records.value.avro.generators[\"user.age\"].uniformInt: min must be at most max (got min 10, max 5)"
        );
        assert_eq!(
            err(
                USER,
                &[(
                    "seq",
                    serde_json::json!({"uniformInt": {"min": 10, "max": 5}})
                )]
            ),
            "spec.workload.records.value.avro.generators.seq.uniformInt: min must be at most max (got min 10, max 5)"
        );
        let e = err(USER, &[("user.shoe", serde_json::json!({"uuid": {}}))]);
        assert!(
        e.contains("generators[\"user.shoe\"]: field \"user\" has no field \"shoe\" (fields: id, age, nick)"),
        "{e}"
    );
        let e = err(USER, &[("user.age", serde_json::json!({"uuid": {}}))]);
        assert!(e.contains("uuid cannot fill a field of type int"), "{e}");
        let e = err(
            USER,
            &[("kind", serde_json::json!({"oneOf": ["VIEW", "SHOUT"]}))],
        );
        assert!(
        e.starts_with("spec.workload.records.value.avro.generators.kind.oneOf[1]: \"SHOUT\" is not a symbol of enum Kind"),
        "{e}"
    );
        let e = err(
            USER,
            &[(
                "user.age",
                serde_json::json!({"sequence": {"start": 3_000_000_000i64}}),
            )],
        );
        assert!(e.contains("32-bit range"), "{e}");
        let e = err(
            USER,
            &[(
                "user.nick",
                serde_json::json!({"stringLength": {"min": 4, "max": 1}}),
            )],
        );
        assert!(
            e.ends_with("stringLength: min must be at most max (got min 4, max 1)"),
            "{e}"
        );
        let e = err(USER, &[("source", serde_json::json!({"constant": 5}))]);
        assert!(
            e.contains("generators.source.constant: expected a string"),
            "{e}"
        );
        let e = err(USER, &[("seq", serde_json::json!({"oneOf": []}))]);
        assert!(e.ends_with("oneOf: must list at least one value"), "{e}");
        let e = err(r#"{"type": "recrod"}"#, &[]);
        assert!(
            e.starts_with("spec.workload.records.value.avro.schema: is not a usable Avro schema"),
            "{e}"
        );
        let e = err(r#""long""#, &[("x", serde_json::json!({"uuid": {}}))]);
        assert!(
            e.ends_with("generators.x: the schema is long, not a record, so it has no field \"x\""),
            "{e}"
        );
    }

    #[test]
    fn a_sequence_that_leaves_the_int_range_is_an_error_not_a_wrap() {
        let schema = r#"{"type": "record", "name": "R", "fields": [{"name": "n", "type": "int"}]}"#;
        let g = gens(&[(
            "n",
            serde_json::json!({"sequence": {"start": 2_147_483_646i64}}),
        )]);
        let gen_ = AvroGenerator::new(schema, &g, None).unwrap();
        assert_eq!(gen_.generate(1, 2).unwrap().len(), 2);
        let e = gen_.generate(1, 3).unwrap_err();
        assert!(matches!(e, PayloadError::Invalid { .. }));
        assert!(
            e.to_string()
                .contains("generators.n.sequence: record 2 leaves the range of the field"),
            "{e}"
        );
    }

    #[test]
    fn recursive_schemas_end_within_the_depth_bound() {
        let list = r#"{"type": "record", "name": "Node", "fields": [
        {"name": "v", "type": "int"}, {"name": "next", "type": ["null", "Node"]}]}"#;
        let tree = r#"{"type": "record", "name": "Tree", "fields": [
        {"name": "kids", "type": {"type": "array", "items": "Tree"}},
        {"name": "attrs", "type": {"type": "map", "values": "Tree"}}]}"#;
        for schema in [list, tree] {
            let g = AvroGenerator::new(schema, &BTreeMap::new(), None).unwrap();
            let decoder = AvroDecoder::new(schema).unwrap();
            let mut deepest = 0;
            for b in g.generate(11, 200).unwrap() {
                let v = decoder.decode(&b, false).unwrap();
                deepest = deepest.max(depth(&v));
            }
            assert!(deepest > 2, "values do recurse ({deepest})");
            assert!(deepest <= SOFT_DEPTH + 2, "recursion is cut ({deepest})");
        }
        // A record that must contain itself has no finite value.
        let endless =
            r#"{"type": "record", "name": "Me", "fields": [{"name": "me", "type": "Me"}]}"#;
        if let Ok(g) = AvroGenerator::new(endless, &BTreeMap::new(), None) {
            let e = g.generate(1, 1).unwrap_err();
            assert!(e.to_string().contains("needs a way to end"), "{e}");
        }
    }

    #[test]
    fn unusable_schemas_are_errors_not_panics() {
        for schema in [
            r#"{"type": "record", "name": "E", "fields": [{"name": "e", "type": {"type": "enum", "name": "X", "symbols": []}}]}"#,
            r#"{"type": "fixed", "name": "Huge", "size": 100000000000}"#,
            r#"{"type": "fixed", "name": "Z", "size": 0, "logicalType": "decimal", "precision": 3}"#,
            r#"[]"#,
            "not json",
            "",
        ] {
            let r = generate_pool(schema, &BTreeMap::new(), 1, 3, None);
            if let Ok(values) = r {
                for v in values {
                    decode(schema, &v, false).unwrap();
                }
            }
        }
    }

    #[test]
    fn throughput_is_printed_not_asserted() {
        let g = AvroGenerator::new(USER, &BTreeMap::new(), None).unwrap();
        let n = 20_000;
        let t = Instant::now();
        let values = g.generate(1, n).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let bytes: usize = values.iter().map(Vec::len).sum();
        println!(
            "avro: {n} values in {secs:.3} s = {:.0} values/s, {:.1} MB/s (mean {} B)",
            n as f64 / secs,
            bytes as f64 / secs / 1e6,
            bytes / n
        );
        assert_eq!(values.len(), n);
    }

    // ---------------------------------------------------------------------------------------------
    // Random schemas
    // ---------------------------------------------------------------------------------------------

    fn leaf() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::json;
        prop_oneof![
        prop::sample::select(vec![
            "null", "boolean", "int", "long", "float", "double", "bytes", "string"
        ])
        .prop_map(|s| json!(s)),
        prop::sample::select(vec![
            ("int", "date"),
            ("int", "time-millis"),
            ("long", "time-micros"),
            ("long", "timestamp-millis"),
            ("long", "timestamp-micros"),
            ("long", "timestamp-nanos"),
            ("long", "local-timestamp-millis"),
            ("long", "local-timestamp-micros"),
            ("long", "local-timestamp-nanos"),
            ("string", "uuid"),
            ("bytes", "big-decimal"),
        ])
        .prop_map(|(t, l)| json!({"type": t, "logicalType": l})),
        (1usize..45, 0usize..8).prop_map(|(p, s)| json!({"type": "bytes", "logicalType": "decimal", "precision": p, "scale": s.min(p)})),
        (0usize..20, 1usize..45, 0usize..8).prop_map(|(size, p, s)| json!({"type": "fixed", "name": "N", "size": size, "logicalType": "decimal", "precision": p, "scale": s.min(p)})),
        (0usize..20).prop_map(|size| json!({"type": "fixed", "name": "N", "size": size})),
        Just(json!({"type": "fixed", "name": "N", "size": 12, "logicalType": "duration"})),
        (1usize..4).prop_map(|n| json!({"type": "enum", "name": "N", "symbols": (0..n).map(|i| format!("S{i}")).collect::<Vec<_>>()})),
    ]
    }

    fn schema_tree() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::json;
        leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| json!({"type": "array", "items": t})),
            inner.clone().prop_map(|t| json!({"type": "map", "values": t})),
            prop::collection::vec(inner.clone(), 1..4).prop_map(union_of),
            prop::collection::vec(inner, 1..5).prop_map(|fs| json!({
                "type": "record", "name": "N",
                "fields": fs.into_iter().enumerate().map(|(i, t)| json!({"name": format!("f{i}"), "type": t})).collect::<Vec<_>>()
            })),
        ]
    })
    }

    /// A union Avro accepts: no nested unions, one branch per unnamed kind.
    fn union_of(branches: Vec<serde_json::Value>) -> serde_json::Value {
        let mut kinds = BTreeSet::new();
        let kept = branches
            .into_iter()
            .filter(|b| {
                let kind = match b {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Array(_) => return false,
                    o if o.get("name").is_some() && o.get("logicalType").is_none() => return true,
                    o => o
                        .get("logicalType")
                        .or_else(|| o.get("type"))
                        .map(|k| k.to_string())
                        .unwrap_or_default(),
                };
                kinds.insert(kind)
            })
            .collect::<Vec<_>>();
        if kept.is_empty() {
            serde_json::json!(["null"])
        } else {
            serde_json::Value::Array(kept)
        }
    }

    /// Gives every named type a unique name.
    fn rename(v: &mut serde_json::Value, next: &mut usize) {
        match v {
            serde_json::Value::Object(o) => {
                if o.get("name").and_then(|n| n.as_str()) == Some("N") {
                    o.insert("name".into(), serde_json::json!(format!("T{next}")));
                    *next += 1;
                }
                for (_, c) in o.iter_mut() {
                    rename(c, next);
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|c| rename(c, next)),
            _ => {}
        }
    }

    fn generator() -> impl Strategy<Value = FieldGenerator> {
        use serde_json::json;
        prop_oneof![
            any::<i64>().prop_map(|s| json!({"sequence": {"start": s}})),
            (-100i64..100, -100i64..100)
                .prop_map(|(a, b)| json!({"uniformInt": {"min": a, "max": b}})),
            (any::<i64>(), any::<i64>())
                .prop_map(|(a, b)| json!({"uniformInt": {"min": a.min(b), "max": a.max(b)}})),
            Just(json!({"uuid": {}})),
            Just(json!({"timestampMillis": {}})),
            (0u32..10, 0u32..10).prop_map(|(a, b)| json!({"stringLength": {"min": a, "max": b}})),
            prop::sample::select(vec![
                json!(null),
                json!(1),
                json!("S0"),
                json!(true),
                json!(2.5),
                json!({"f0": 1}),
                json!([1, 2])
            ])
            .prop_map(|c| json!({"constant": c})),
            prop::collection::vec(
                prop::sample::select(vec![json!(null), json!(3), json!("x"), json!("S1")]),
                0..3
            )
            .prop_map(|l| json!({"oneOf": l})),
        ]
        .prop_map(|j| serde_json::from_value(j).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn random_small_schemas_never_panic_and_what_they_make_decodes(
            fields in prop::collection::vec(schema_tree(), 1..5),
            generators in prop::collection::btree_map(prop::sample::select(vec!["f0", "f1", "f2", "f0.f0", "f1.f1", "zz"]), generator(), 0..2),
            seed in any::<u64>(),
            framed in any::<bool>(),
        ) {
            let mut schema = serde_json::json!({
                "type": "record", "name": "N",
                "fields": fields.into_iter().enumerate().map(|(i, t)| serde_json::json!({"name": format!("f{i}"), "type": t})).collect::<Vec<_>>()
            });
            rename(&mut schema, &mut 0);
            let text = schema.to_string();
            let generators: BTreeMap<String, FieldGenerator> =
                generators.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            let id = framed.then_some(77);
            if let Ok(g) = AvroGenerator::new(&text, &generators, id)
                && let Ok(values) = g.values(seed, 8)
            {
                let bytes = g.generate(seed, 8).unwrap();
                let decoder = AvroDecoder::new(&text).unwrap();
                for (v, b) in values.iter().zip(&bytes) {
                    prop_assert_eq!(&decoder.decode(b, framed).unwrap(), v);
                }
            }
        }

        #[test]
        fn arbitrary_schema_text_never_panics(text in "\\PC{0,200}", seed in any::<u64>()) {
            let _ = generate_pool(&text, &BTreeMap::new(), seed, 2, None);
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let decoder = AvroDecoder::new(ALL_TYPES).unwrap();
            let _ = decoder.decode(&bytes, false);
            let _ = decoder.decode(&bytes, true);
            let _ = AvroDecoder::new(USER).unwrap().decode(&bytes, false);
        }
    }
}
