//! Fuzzes the hardened histogram decoders: a V2-compressed blob (base64 text) through both
//! decoders (the histogram one and the counts one the report merge uses), which must agree; a
//! whole interval log; and an agent interval blob as the controller reads it from the store.
//! Any input must yield Ok or an error, never a panic or a huge allocation.
#![no_main]

use barrage_crds::hlog::{DecodeLimits, parse_log};
use barrage_crds::interval::decode_interval_blob;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/decoders.rs"]
mod decoders;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = DecodeLimits::default();
    let _ = decoders::decode_with(text.trim(), &limits);
    let _ = parse_log(text, &limits);
    let _ = decode_interval_blob(text);
});
