//! Fuzzes the hardened histogram decoders: a V2-compressed blob (base64 text) and a whole
//! interval log. Any input must yield Ok or an error, never a panic or a huge allocation.
#![no_main]

use barrage_crds::hlog::{DecodeLimits, decode_v2_compressed, parse_log};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = DecodeLimits::default();
    let _ = decode_v2_compressed(text.trim(), &limits);
    let _ = parse_log(text, &limits);
});
