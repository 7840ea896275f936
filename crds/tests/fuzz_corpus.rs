//! Replays the fuzz corpus (crds/fuzz/corpus/spec) with a normal `cargo test`: every input
//! parses or fails with errors, deterministically, without panicking; accepted inputs round-trip.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use barrage_crds::loadtest::LoadTest;
use barrage_crds::validate::parse_and_validate;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/spec");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn fuzz_corpus_replays_without_panics_and_deterministically() {
    let files = corpus();
    assert!(files.len() >= 10, "the seed corpus is missing");
    let mut accepted = 0;
    for (name, bytes) in &files {
        let Ok(text) = std::str::from_utf8(bytes) else {
            continue;
        };
        let first = parse_and_validate(text);
        assert_eq!(first, parse_and_validate(text), "{name}: not deterministic");
        match &first {
            Ok(lt) => {
                accepted += 1;
                assert_eq!(&LoadTest::from_yaml(&lt.to_yaml()).unwrap(), lt, "{name}");
                assert_eq!(&LoadTest::from_json(&lt.to_json()).unwrap(), lt, "{name}");
            }
            Err(e) => assert!(e.0.iter().all(|f| !f.message.is_empty()), "{name}"),
        }
    }
    assert!(
        accepted >= 8,
        "the valid seeds must still validate (got {accepted})"
    );
}

#[test]
fn fuzz_corpus_seeds_have_the_expected_outcome() {
    let files = corpus();
    let get = |n: &str| {
        let (_, b) = files.iter().find(|(name, _)| name == n).unwrap();
        String::from_utf8(b.clone()).unwrap()
    };
    for valid in [
        "quickstart.yaml",
        "quickstart.json",
        "soak-multi-day.yaml",
        "seed-recipe.yaml",
    ] {
        assert!(parse_and_validate(&get(valid)).is_ok(), "{valid}");
    }
    let errs = parse_and_validate(&get("broken-many.yaml")).unwrap_err();
    assert!(errs.0.len() >= 15, "every problem is listed:\n{errs}");
    for invalid in [
        "deep.json",
        "alias-fanout.yaml",
        "tags-and-recursive-alias.yaml",
        "empty.yaml",
        "huge-numbers.yaml",
        "bom.yaml",
    ] {
        assert!(parse_and_validate(&get(invalid)).is_err(), "{invalid}");
    }
}

mod support {
    pub mod decoders;
}

/// The histogram decoder corpus (crds/fuzz/corpus/hlog, from the hlog_decode target) replays
/// without panics and deterministically, the two histogram decoders agree on every input, and
/// the interval-blob reader refuses or accepts each input without panicking.
#[test]
fn fuzz_corpus_hlog_replays_without_panics_and_deterministically() {
    use barrage_crds::hlog::{DecodeLimits, decode_v2_compressed, parse_log};
    use barrage_crds::interval::decode_interval_blob;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/hlog");
    let limits = DecodeLimits::default();
    let mut decoded = 0;
    let mut blobs = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        files += 1;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let a = support::decoders::decode_with(text.trim(), &limits);
        assert_eq!(a, decode_v2_compressed(text.trim(), &limits));
        let blob = decode_interval_blob(text);
        assert_eq!(blob.is_ok(), decode_interval_blob(text).is_ok());
        blobs += usize::from(blob.is_ok());
        decoded += usize::from(a.is_ok());
        let l = parse_log(text, &limits);
        assert_eq!(l, parse_log(text, &limits));
    }
    assert!(files >= 10, "the hlog corpus is missing");
    assert!(decoded >= 1, "some seed blobs must decode");
    assert!(blobs >= 1, "the interval blob seed must decode");
}
