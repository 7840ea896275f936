//! The interval histogram log: encode/decode identity, the Java log format, merging.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use barrage_crds::hlog::{
    DecodeLimits, HistogramConfig, HistogramLog, HlogError, IntervalEntry, LEGEND,
    decode_v2_compressed, encode_v2_compressed, histogram_config_of, merge_into, new_histogram,
    parse_log, write_log,
};
use base64::Engine as _;
use hdrhistogram::Histogram;
use proptest::prelude::*;
use std::io::Write as _;

/// Encodes a V2 compressed histogram by hand, following the format description (not the
/// `hdrhistogram` serializer): 40-byte header, zig-zag LEB128 counts with negative zero runs,
/// zlib at best compression as Java's `HistogramLogWriter` does, cookies with the word-size bits.
fn v2_blob_by_hand(lowest: u64, highest: u64, sigfig: u32, counts: &[(usize, i64)]) -> String {
    fn zigzag_leb128(out: &mut Vec<u8>, n: i64) {
        let mut v = ((n << 1) ^ (n >> 63)) as u64;
        for _ in 0..8 {
            if v < 0x80 {
                out.push(v as u8);
                return;
            }
            out.push((v & 0x7f) as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut payload = Vec::new();
    let mut next = 0usize;
    for &(index, count) in counts {
        if index > next {
            zigzag_leb128(&mut payload, -((index - next) as i64));
        }
        zigzag_leb128(&mut payload, count);
        next = index + 1;
    }
    let mut v2 = Vec::new();
    v2.extend_from_slice(&0x1c84_9313_u32.to_be_bytes());
    v2.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v2.extend_from_slice(&0_u32.to_be_bytes());
    v2.extend_from_slice(&sigfig.to_be_bytes());
    v2.extend_from_slice(&lowest.to_be_bytes());
    v2.extend_from_slice(&highest.to_be_bytes());
    v2.extend_from_slice(&1.0_f64.to_bits().to_be_bytes());
    v2.extend_from_slice(&payload);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&v2).unwrap();
    let deflated = z.finish().unwrap();
    let mut blob = Vec::new();
    blob.extend_from_slice(&0x1c84_9314_u32.to_be_bytes());
    blob.extend_from_slice(&(deflated.len() as u32).to_be_bytes());
    blob.extend_from_slice(&deflated);
    base64::engine::general_purpose::STANDARD.encode(blob)
}

const JAVA_FIXTURE: &str = include_str!("data/hlog/java-format.hlog");
const JAVA_HIGHEST: u64 = 3_600_000_000_000;

fn fixture_blob(line_no: usize) -> &'static str {
    let line = JAVA_FIXTURE.lines().nth(line_no - 1).unwrap();
    line.rsplit(',').next().unwrap()
}

#[test]
fn java_fixture_blobs_follow_the_v2_description() {
    assert_eq!(
        fixture_blob(6),
        v2_blob_by_hand(1, JAVA_HIGHEST, 2, &[(100, 3), (200, 1)])
    );
    assert_eq!(
        fixture_blob(8),
        v2_blob_by_hand(1, JAVA_HIGHEST, 2, &[(5, 2), (300, 1)])
    );
    assert_eq!(
        fixture_blob(10),
        v2_blob_by_hand(1, JAVA_HIGHEST, 2, &[(42, 7)])
    );
}

#[test]
fn parse_log_reads_a_log_in_the_java_writers_format() {
    let log = HistogramLog::parse(JAVA_FIXTURE, &DecodeLimits::default()).unwrap();
    assert_eq!(log.start_time_secs, Some(1_441_753_532.570));
    assert_eq!(log.base_time_secs, Some(1_441_753_532.570));
    assert_eq!(log.entries.len(), 3);

    let [a, b, c] = &log.entries[..] else {
        panic!("three entries")
    };
    let java_config = HistogramConfig {
        lowest: 1,
        highest: JAVA_HIGHEST,
        sigfig: 2,
    };

    assert_eq!(a.tag, None, "legacy line without Tag=");
    assert_eq!((a.start_secs, a.length_secs), (0.126, 1.007));
    assert_eq!(histogram_config_of(&a.histogram), java_config);
    assert_eq!(a.histogram.len(), 4);
    assert_eq!(a.histogram.count_at(100), 3);
    assert_eq!(a.histogram.count_at(200), 1);
    assert_eq!((a.histogram.min(), a.histogram.max()), (100, 200));

    assert_eq!(b.tag.as_deref(), Some("B"));
    assert_eq!((b.start_secs, b.length_secs), (1.133, 1.000));
    assert_eq!(b.histogram.count_at(5), 2);
    // Index 300 with 2 significant digits is bucket 1, sub-bucket 172: values 344..=345.
    assert_eq!(b.histogram.count_at(344), 1);
    assert_eq!(b.histogram.max(), 345);

    assert_eq!(c.tag.as_deref(), Some("C"));
    assert_eq!(c.histogram.count_at(42), 7);
    assert_eq!(c.histogram.len(), 7);

    // parse_log is the same, without the header.
    assert_eq!(
        parse_log(JAVA_FIXTURE, &DecodeLimits::default()).unwrap(),
        log.entries
    );
}

#[test]
fn parse_log_accepts_crlf_line_endings_and_surrounding_blanks() {
    let text = JAVA_FIXTURE.replace('\n', "\r\n");
    let entries = parse_log(&text, &DecodeLimits::default()).unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2].histogram.count_at(42), 7);
}

#[test]
fn expecting_the_standard_config_rejects_a_java_nanosecond_log() {
    let err = parse_log(
        JAVA_FIXTURE,
        &DecodeLimits::default().expecting(HistogramConfig::STANDARD),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 6: histogram configuration mismatch: expected lowest=1 highest=3600000000 sigfig=3, \
         found lowest=1 highest=3600000000000 sigfig=2"
    );
}

fn histogram_of(values: &[(u64, u64)]) -> Histogram<u64> {
    let mut h = new_histogram();
    for &(v, n) in values {
        h.record_n(v, n).unwrap();
    }
    h
}

#[test]
fn write_log_writes_the_java_layout() {
    let h = histogram_of(&[(1_000, 5), (12_345, 1)]);
    let text = write_log(
        1_732_567_200.0,
        &[
            IntervalEntry {
                tag: Some("produce".to_string()),
                start_secs: 0.0,
                length_secs: 10.0,
                histogram: h.clone(),
            },
            IntervalEntry {
                tag: None,
                start_secs: 10.0,
                length_secs: 9.5,
                histogram: new_histogram(),
            },
        ],
    )
    .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "#[Histogram log format version 1.3]");
    assert_eq!(
        lines[1],
        "#[StartTime: 1732567200.000 (seconds since epoch), 2024-11-25T20:40:00Z]"
    );
    assert_eq!(
        lines[2],
        "#[BaseTime: 1732567200.000 (seconds since epoch)]"
    );
    assert_eq!(lines[3], LEGEND);
    let blob = encode_v2_compressed(&h).unwrap();
    // max 12345 µs is within 12345's equivalent range at 3 digits (12345..=12351): 12.351 ms.
    assert_eq!(lines[4], format!("Tag=produce,0.000,10.000,12.351,{blob}"));
    assert!(
        lines[5].starts_with("10.000,9.500,0.000,HISTF"),
        "{}",
        lines[5]
    );
    assert_eq!(lines.len(), 6);
    assert!(text.ends_with('\n'));
}

#[test]
fn write_log_refuses_tags_and_times_the_format_cannot_carry() {
    let entry = |tag: Option<&str>, start: f64, length: f64| IntervalEntry {
        tag: tag.map(str::to_string),
        start_secs: start,
        length_secs: length,
        histogram: new_histogram(),
    };
    for bad in ["", "a,b", "a b", "tab\there", "new\nline"] {
        assert_eq!(
            write_log(0.0, &[entry(Some(bad), 0.0, 1.0)]).unwrap_err(),
            HlogError::InvalidTag(bad.to_string())
        );
    }
    assert!(matches!(
        write_log(0.0, &[entry(None, -1.0, 1.0)]),
        Err(HlogError::InvalidTime {
            what: "interval start",
            ..
        })
    ));
    assert!(matches!(
        write_log(0.0, &[entry(None, 0.0, f64::NAN)]),
        Err(HlogError::InvalidTime {
            what: "interval length",
            ..
        })
    ));
    assert!(matches!(
        write_log(f64::INFINITY, &[]),
        Err(HlogError::InvalidTime {
            what: "start time",
            ..
        })
    ));
    // -0.0 is accepted and written as 0.000.
    let text = write_log(-0.0, &[entry(None, -0.0, 1.0)]).unwrap();
    assert!(text.contains("\n0.000,1.000,"), "{text}");
}

#[test]
fn parse_log_names_the_line_and_the_problem() {
    let good = write_log(
        0.0,
        &[IntervalEntry {
            tag: Some("produce".into()),
            start_secs: 0.0,
            length_secs: 1.0,
            histogram: histogram_of(&[(7, 1)]),
        }],
    )
    .unwrap();
    let blob = good.lines().last().unwrap().rsplit(',').next().unwrap();
    let limits = DecodeLimits::default();
    let case = |line: String| {
        parse_log(
            &format!("#[Histogram log format version 1.3]\n{line}\n"),
            &limits,
        )
        .unwrap_err()
        .to_string()
    };
    assert_eq!(
        case(format!("abc,1.0,0.0,{blob}")),
        "line 2: StartTimestamp: expected a number, got \"abc\""
    );
    assert_eq!(
        case(format!("0.0,inf,0.0,{blob}")),
        "line 2: Interval_Length: expected a number, got \"inf\""
    );
    assert_eq!(
        case(format!("0.0,1.0,x,{blob}")),
        "line 2: Interval_Max: expected a number, got \"x\""
    );
    assert_eq!(
        case("0.0,1.0,{blob}".to_string()),
        "line 2: expected [Tag=TAG,]StartTimestamp,Interval_Length,Interval_Max,\
         Interval_Compressed_Histogram; found 3 fields"
    );
    assert_eq!(
        case(format!("Tag=,0.0,1.0,0.0,{blob}")),
        "line 2: invalid tag \"\": a tag must be non-empty, without commas, whitespace or control characters"
    );
    assert_eq!(
        case("0.0,1.0,0.0,!!!".to_string()),
        "line 2: histogram blob is not valid base64: Invalid symbol 33, offset 0."
    );
    assert_eq!(
        case("#[StartTime: soon]".to_string()),
        "line 2: StartTime: expected seconds since the epoch, got \"soon\""
    );
    assert!(matches!(
        parse_log(&format!("\n\n0.0,1.0,0.0,{}", &blob[..20]), &limits),
        Err(HlogError::LineHistogram { line: 3, .. })
    ));
}

#[test]
fn merge_into_adds_counts_of_compatible_histograms() {
    let mut dst = histogram_of(&[(10, 2), (1_000, 1)]);
    let src = histogram_of(&[(10, 3), (50_000, 4)]);
    merge_into(&mut dst, &src).unwrap();
    assert_eq!(dst.len(), 10);
    assert_eq!(dst.count_at(10), 5);
    assert_eq!(dst.count_at(1_000), 1);
    assert_eq!(dst.count_at(50_000), 4);
    assert_eq!(dst.max(), src.max());
}

#[test]
fn merge_into_refuses_a_different_bucket_layout() {
    let mut dst = new_histogram();
    let mut src = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 2).unwrap();
    src.record(5).unwrap();
    let err = merge_into(&mut dst, &src).unwrap_err();
    assert_eq!(
        err,
        HlogError::ConfigMismatch {
            expected: HistogramConfig::STANDARD,
            found: HistogramConfig {
                lowest: 1,
                highest: 3_600_000_000,
                sigfig: 2
            },
        }
    );
    assert!(dst.is_empty(), "nothing merged");
    let mut ns = Histogram::<u64>::new_with_bounds(1000, 3_600_000_000, 3).unwrap();
    ns.record(5_000).unwrap();
    assert!(matches!(
        merge_into(&mut dst, &ns),
        Err(HlogError::ConfigMismatch { .. })
    ));
}

#[test]
fn merge_into_reports_values_out_of_a_fixed_range() {
    let mut dst = Histogram::<u64>::new_with_bounds(1, 1_000, 3).unwrap();
    let mut src = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).unwrap();
    src.record(900_000).unwrap();
    let err = merge_into(&mut dst, &src).unwrap_err();
    assert!(
        matches!(&err, HlogError::Merge(m) if m.contains("does not auto-resize")),
        "{err}"
    );
    // A larger highest with the same layout is fine for an auto-resizing destination.
    let mut grows = new_histogram();
    merge_into(&mut grows, &src).unwrap();
    assert_eq!(grows.count_at(900_000), 1);
}

#[test]
fn decoded_histograms_can_be_merge_destinations() {
    let h = histogram_of(&[(100, 1)]);
    let mut decoded =
        decode_v2_compressed(&encode_v2_compressed(&h).unwrap(), &DecodeLimits::default()).unwrap();
    let big = histogram_of(&[(3_600_000_000, 1)]);
    merge_into(&mut decoded, &big).unwrap();
    assert_eq!(decoded.len(), 2);
}

fn values() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec(
        (
            prop_oneof![1..=1_000_u64, 1..=3_600_000_000_u64],
            1..=1_000_000_u64,
        ),
        0..200,
    )
}

fn assert_same(a: &Histogram<u64>, b: &Histogram<u64>) {
    assert_eq!(a, b);
    assert_eq!(histogram_config_of(a), histogram_config_of(b));
    assert_eq!(a.len(), b.len());
    assert_eq!((a.min(), a.max()), (b.min(), b.max()));
    for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
        assert_eq!(a.value_at_quantile(q), b.value_at_quantile(q));
    }
    let ia: Vec<_> = a
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();
    let ib: Vec<_> = b
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();
    assert_eq!(ia, ib);
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(values in values()) {
        let h = histogram_of(&values);
        let b64 = encode_v2_compressed(&h).unwrap();
        let back = decode_v2_compressed(&b64, &DecodeLimits::default().expecting(HistogramConfig::STANDARD)).unwrap();
        assert_same(&h, &back);
        // Re-encoding the decoded histogram gives the same text.
        prop_assert_eq!(encode_v2_compressed(&back).unwrap(), b64);
    }

}

proptest! {
    // Large configurations are slow to build in debug builds; fewer cases, same coverage of shapes.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_is_identity_for_any_valid_config(
        lowest in prop_oneof![Just(1_u64), 1..=10_000_u64],
        span in 1..=40_u32,
        sigfig in 1..=5_u8,
        raw in prop::collection::vec((any::<u64>(), 1..=1_000_u64), 0..50),
    ) {
        let highest = (2 * lowest).saturating_mul(1_u64 << span);
        let mut h = Histogram::<u64>::new_with_bounds(lowest, highest, sigfig).unwrap();
        for (v, n) in raw {
            h.record_n(v % highest, n).unwrap();
        }
        // 5 significant digits over a wide range need more counters than the default cap.
        let limits = DecodeLimits { max_counts: 8 << 20, ..DecodeLimits::default() };
        let back = decode_v2_compressed(&encode_v2_compressed(&h).unwrap(), &limits).unwrap();
        assert_same(&h, &back);
    }

    #[test]
    fn write_then_parse_log_is_identity(
        start_ms in 0..=4_102_444_800_000_u64,
        entries in prop::collection::vec(
            (
                prop::option::of(prop_oneof![Just("produce"), Just("service"), Just("lag"), Just("e2e"), Just("custom-tag_1")]),
                0..=10_000_000_u64,
                0..=600_000_u64,
                values(),
            ),
            0..8,
        ),
    ) {
        let entries: Vec<IntervalEntry> = entries
            .into_iter()
            .map(|(tag, s, l, v)| IntervalEntry {
                tag: tag.map(str::to_string),
                start_secs: s as f64 / 1000.0,
                length_secs: l as f64 / 1000.0,
                histogram: histogram_of(&v),
            })
            .collect();
        let text = write_log(start_ms as f64 / 1000.0, &entries).unwrap();
        let log = HistogramLog::parse(&text, &DecodeLimits::default()).unwrap();
        prop_assert_eq!(log.start_time_secs, Some(start_ms as f64 / 1000.0));
        prop_assert_eq!(log.base_time_secs, Some(start_ms as f64 / 1000.0));
        prop_assert_eq!(log.entries.len(), entries.len());
        for (a, b) in entries.iter().zip(&log.entries) {
            prop_assert_eq!(&a.tag, &b.tag);
            prop_assert_eq!(a.start_secs, b.start_secs);
            prop_assert_eq!(a.length_secs, b.length_secs);
            assert_same(&a.histogram, &b.histogram);
        }
    }

    #[test]
    fn merging_intervals_equals_recording_everything_once(parts in prop::collection::vec(values(), 1..6)) {
        let mut merged = new_histogram();
        let mut all = new_histogram();
        for part in &parts {
            let decoded = decode_v2_compressed(&encode_v2_compressed(&histogram_of(part)).unwrap(), &DecodeLimits::default()).unwrap();
            merge_into(&mut merged, &decoded).unwrap();
            for &(v, n) in part {
                all.record_n(v, n).unwrap();
            }
        }
        assert_same(&merged, &all);
    }
}
