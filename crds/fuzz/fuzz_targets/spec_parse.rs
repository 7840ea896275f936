//! Fuzzes the LoadTest parser and validator: any input must yield Ok or path-named errors,
//! deterministically, and accepted documents must round-trip.
#![no_main]

use barrage_crds::loadtest::LoadTest;
use barrage_crds::validate::parse_and_validate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = parse_and_validate(text);
    assert_eq!(
        first,
        parse_and_validate(text),
        "validation must be deterministic"
    );
    match first {
        Ok(lt) => {
            let back = LoadTest::from_yaml(&lt.to_yaml()).expect("accepted documents re-read");
            assert_eq!(back, lt);
            let back = LoadTest::from_json(&lt.to_json()).expect("accepted documents re-read");
            assert_eq!(back, lt);
        }
        Err(errs) => {
            assert!(!errs.0.is_empty());
            for e in &errs.0 {
                assert!(!e.message.is_empty());
            }
        }
    }
    if let Ok(lt) = LoadTest::from_text(text) {
        let back = LoadTest::from_json(&lt.to_json()).expect("parsed documents re-read");
        assert_eq!(back, lt);
    }
});
