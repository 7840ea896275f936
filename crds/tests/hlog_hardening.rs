//! Hostile histogram blobs: every claimed size is checked before anything of that size is
//! allocated, and corrupt input gives a clear error, never a panic.
//!
//! This test binary runs under a capped global allocator: while a test holds [`capped`], any
//! allocation that would take the process more than [`HEADROOM`] above what it held before
//! fails, and a failed allocation aborts the whole binary. So a test that passes here shows
//! that decoding the blob never allocated what the blob claimed.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::Write as _;
use std::sync::{Mutex, MutexGuard};

use barrage_crds::hlog::{
    DecodeLimits, HistogramConfig, HlogError, encode_v2_compressed, new_histogram,
};
use base64::Engine as _;
use cap::Cap;
use proptest::prelude::*;

mod support {
    pub mod decoders;
}
use support::decoders::decode_with;

#[global_allocator]
static ALLOCATOR: Cap<std::alloc::System> = Cap::new(std::alloc::System, usize::MAX);

/// Room above the current allocation while capped: enough for a legitimate decode under the
/// default limits (the inflate buffer may reach 32 MiB of capacity while filling 16 MiB), far
/// below any claim tested here (4 GiB payloads, 48 MiB counts arrays).
const HEADROOM: usize = 40 << 20;

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs one test at a time under the cap; the cap is lifted when the guard drops.
struct Capped(#[allow(dead_code)] MutexGuard<'static, ()>);

impl Drop for Capped {
    fn drop(&mut self) {
        ALLOCATOR.set_limit(usize::MAX).unwrap();
    }
}

fn capped() -> Capped {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ALLOCATOR
        .set_limit(ALLOCATOR.allocated() + HEADROOM)
        .unwrap();
    Capped(guard)
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(bytes).unwrap();
    z.finish().unwrap()
}

/// The compressed envelope: cookie, claimed length, body.
fn envelope(cookie: u32, claimed_len: u32, body: &[u8]) -> String {
    let mut blob = Vec::new();
    blob.extend_from_slice(&cookie.to_be_bytes());
    blob.extend_from_slice(&claimed_len.to_be_bytes());
    blob.extend_from_slice(body);
    base64::engine::general_purpose::STANDARD.encode(blob)
}

fn compressed(inner: &[u8]) -> String {
    let z = zlib(inner);
    envelope(0x1c84_9314, z.len() as u32, &z)
}

struct V2Header {
    cookie: u32,
    payload_len: u32,
    normalizing_offset: u32,
    sigfig: u32,
    lowest: u64,
    highest: u64,
    ratio: f64,
}

impl Default for V2Header {
    fn default() -> Self {
        V2Header {
            cookie: 0x1c84_9313,
            payload_len: 0,
            normalizing_offset: 0,
            sigfig: 3,
            lowest: 1,
            highest: 3_600_000_000,
            ratio: 1.0,
        }
    }
}

impl V2Header {
    fn with_payload(&self, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&self.cookie.to_be_bytes());
        v.extend_from_slice(&self.payload_len.to_be_bytes());
        v.extend_from_slice(&self.normalizing_offset.to_be_bytes());
        v.extend_from_slice(&self.sigfig.to_be_bytes());
        v.extend_from_slice(&self.lowest.to_be_bytes());
        v.extend_from_slice(&self.highest.to_be_bytes());
        v.extend_from_slice(&self.ratio.to_bits().to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn blob(&self, payload: &[u8]) -> String {
        compressed(&self.with_payload(payload))
    }
}

/// Decodes with both decoders and checks that they agree (see [`support::decoders`]).
fn decode(b64: &str) -> Result<hdrhistogram::Histogram<u64>, HlogError> {
    decode_with(b64, &DecodeLimits::default())
}

#[test]
fn default_limits_are_4_mib_compressed_and_16_mib_inflated() {
    let l = DecodeLimits::default();
    assert_eq!(l.max_compressed_bytes, 4 * 1024 * 1024);
    assert_eq!(l.max_inflated_bytes, 16 * 1024 * 1024);
    assert_eq!(l.expected, None);
}

#[test]
fn a_blob_claiming_a_4_gib_payload_is_rejected_without_allocating_it() {
    // A valid header whose payload length says 4 GiB - 1, followed by 2 real bytes.
    let blob = V2Header {
        payload_len: u32::MAX,
        ..V2Header::default()
    }
    .blob(&[0x02, 0x02]);
    assert!(blob.len() < 100, "the blob itself is tiny");
    let _cap = capped();
    let err = decode(&blob).unwrap_err();
    assert_eq!(
        err,
        HlogError::PayloadLengthMismatch {
            claimed: 4_294_967_295,
            available: 2,
        }
    );
    assert_eq!(
        err.to_string(),
        "histogram header claims a 4294967295-byte payload but only 2 bytes follow the header"
    );
}

/// The control for the test above: `hdrhistogram`'s own deserializer, given the same blob,
/// sizes its buffer from the claimed payload length. Run in a child process, because under the
/// cap that allocation aborts the process.
#[test]
fn the_unguarded_deserializer_would_allocate_the_claimed_4_gib() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "unguarded_deserializer_child",
            "--ignored",
            "--test-threads=1",
        ])
        .env("BARRAGE_HLOG_UNGUARDED_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the child survived: {stderr}");
    assert!(
        stderr.contains("memory allocation of 4294967295 bytes failed"),
        "{stderr}"
    );
}

#[test]
#[ignore = "run in a child process by the_unguarded_deserializer_would_allocate_the_claimed_4_gib"]
fn unguarded_deserializer_child() {
    if std::env::var_os("BARRAGE_HLOG_UNGUARDED_CHILD").is_none() {
        return;
    }
    let blob = V2Header {
        payload_len: u32::MAX,
        ..V2Header::default()
    }
    .blob(&[0x02, 0x02]);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .unwrap();
    let _cap = capped();
    let _ = hdrhistogram::serialization::Deserializer::new().deserialize::<u64, _>(&mut &bytes[..]);
}

#[test]
fn a_blob_claiming_a_huge_compressed_length_is_rejected_before_inflating() {
    let body = zlib(&V2Header::default().with_payload(&[]));
    let _cap = capped();
    // Claims 4 GiB: over the cap.
    assert_eq!(
        decode(&envelope(0x1c84_9314, u32::MAX, &body)).unwrap_err(),
        HlogError::CompressedTooLarge {
            claimed: u64::from(u32::MAX),
            max: 4 << 20,
        }
    );
    // Claims 1 MiB, under the cap, but carries only the real body: truncated.
    assert_eq!(
        decode(&envelope(0x1c84_9314, 1 << 20, &body)).unwrap_err(),
        HlogError::Truncated {
            what: "compressed histogram",
            needed: 1 << 20,
            available: body.len(),
        }
    );
    // Claims less than it carries.
    assert_eq!(
        decode(&envelope(0x1c84_9314, body.len() as u32 - 1, &body)).unwrap_err(),
        HlogError::CompressedLengthMismatch {
            claimed: body.len() as u64 - 1,
            actual: body.len(),
        }
    );
}

#[test]
fn base64_text_longer_than_the_compressed_cap_is_rejected_before_decoding() {
    let limits = DecodeLimits {
        max_compressed_bytes: 1024,
        ..DecodeLimits::default()
    };
    let text = "A".repeat(2000);
    assert_eq!(
        decode_with(&text, &limits).unwrap_err(),
        HlogError::Base64TooLong {
            len: 2000,
            max_bytes: 1024
        }
    );
}

#[test]
fn a_deflate_bomb_stops_at_the_inflate_cap() {
    // 256 MiB of zeros deflate to about 256 KiB, well under the 4 MiB compressed cap.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&V2Header::default().with_payload(&[])).unwrap();
    let zeros = vec![0_u8; 1 << 20];
    for _ in 0..256 {
        z.write_all(&zeros).unwrap();
    }
    let body = z.finish().unwrap();
    drop(zeros);
    assert!(body.len() < 1 << 20, "bomb is {} bytes", body.len());
    let blob = envelope(0x1c84_9314, body.len() as u32, &body);
    drop(body);
    let _cap = capped();
    assert_eq!(
        decode(&blob).unwrap_err(),
        HlogError::InflatedTooLarge { max: 16 << 20 }
    );
}

#[test]
fn a_header_needing_a_huge_counts_array_is_rejected_before_allocating_it() {
    // lowest 1, highest u64::MAX, 5 digits: 6 291 456 counters, 48 MiB.
    let blob = V2Header {
        sigfig: 5,
        highest: u64::MAX / 2,
        ..V2Header::default()
    }
    .blob(&[]);
    let _cap = capped();
    let err = decode(&blob).unwrap_err();
    assert!(
        matches!(err, HlogError::TooManyCounts { counts, max: 2_097_152, .. } if counts > 6_000_000),
        "{err:?}"
    );
}

#[test]
fn corrupt_base64_is_a_clear_error() {
    let err = decode("HISTFAAA*AAA").unwrap_err();
    assert!(matches!(err, HlogError::Base64(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("histogram blob is not valid base64")
    );
}

#[test]
fn wrong_cookies_are_named() {
    // V1 compressed (0x1c849302) and plain V2 (uncompressed) are not what interval logs carry.
    for cookie in [0x1c84_9302_u32, 0x1c84_9313, 0xdead_beef] {
        let err = decode(&envelope(cookie, 0, &[])).unwrap_err();
        assert_eq!(
            err,
            HlogError::WrongCookie {
                found: cookie,
                expected: 0x1c84_9304,
                what: "V2 compressed histogram"
            }
        );
    }
    let err = decode(
        &V2Header {
            cookie: 0x1c84_9312,
            ..V2Header::default()
        }
        .blob(&[]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "histogram blob has cookie 0x1c849312, expected 0x1c849303 (V2 histogram inside the compressed envelope)"
    );
}

#[test]
fn the_cookie_word_size_bits_are_ignored_as_java_does() {
    let mut h = new_histogram();
    h.record_n(250, 4).unwrap();
    let header = V2Header {
        cookie: 0x1c84_9303, // no word-size bits
        payload_len: 3,
        ..V2Header::default()
    };
    // 250 empty buckets (zig-zag -250 = 499 = 0xf3 0x03), then a count of 4 (zig-zag 8).
    let inner = header.with_payload(&[0xf3, 0x03, 0x08]);
    let z = zlib(&inner);
    let decoded = decode(&envelope(0x1c84_9304, z.len() as u32, &z)).unwrap();
    assert_eq!((decoded.len(), decoded.count_at(250)), (4, 4));
    assert!(decoded == h, "same histogram as recording 250 four times");
}

#[test]
fn every_truncation_of_a_valid_blob_is_an_error_not_a_panic() {
    let mut h = new_histogram();
    for v in 1..500 {
        h.record_n(v * 997, v).unwrap();
    }
    let b64 = encode_v2_compressed(&h).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .unwrap();
    for cut in 0..bytes.len() {
        let text = base64::engine::general_purpose::STANDARD.encode(&bytes[..cut]);
        assert!(decode(&text).is_err(), "cut at {cut}");
    }
    // The same bytes with the envelope length adjusted: the zlib stream itself is cut.
    let body = &bytes[8..];
    for cut in [1, 2, body.len() / 2, body.len() - 1] {
        let err = decode(&envelope(0x1c84_9314, cut as u32, &body[..cut])).unwrap_err();
        assert!(
            matches!(err, HlogError::Inflate(_) | HlogError::Truncated { .. }),
            "cut at {cut}: {err:?}"
        );
    }
    // A V2 header cut short inside the zlib stream.
    assert_eq!(
        decode(&compressed(&V2Header::default().with_payload(&[])[..39])).unwrap_err(),
        HlogError::Truncated {
            what: "V2 histogram header",
            needed: 40,
            available: 39
        }
    );
    assert!(matches!(
        decode("").unwrap_err(),
        HlogError::Truncated { available: 0, .. }
    ));
}

#[test]
fn significant_digits_outside_1_to_5_are_rejected() {
    for sigfig in [0, 6, 255, 256, u32::MAX] {
        let err = decode(
            &V2Header {
                sigfig,
                ..V2Header::default()
            }
            .blob(&[]),
        )
        .unwrap_err();
        assert_eq!(err, HlogError::SigFig(sigfig));
        assert_eq!(
            err.to_string(),
            format!("histogram header: significant digits must be 1..=5 (got {sigfig})")
        );
    }
}

#[test]
fn invalid_ranges_are_rejected_with_the_rule() {
    let case = |lowest, highest| {
        decode(
            &V2Header {
                lowest,
                highest,
                ..V2Header::default()
            }
            .blob(&[]),
        )
        .unwrap_err()
        .to_string()
    };
    assert_eq!(
        case(0, 100),
        "histogram header: invalid range lowest=0 highest=100: lowest must be at least 1"
    );
    assert_eq!(
        case(10, 19),
        "histogram header: invalid range lowest=10 highest=19: highest must be at least twice lowest"
    );
    assert_eq!(
        case(1, u64::MAX),
        "histogram header: invalid range lowest=1 highest=18446744073709551615: highest must be at most 9223372036854775807"
    );
    assert_eq!(
        case(1 << 60, 1 << 62),
        "histogram header: invalid range lowest=1152921504606846976 highest=4611686018427387904: \
         lowest is too large for this many significant digits"
    );
}

#[test]
fn unsupported_header_features_are_named() {
    let offset = decode(
        &V2Header {
            normalizing_offset: 7,
            ..V2Header::default()
        }
        .blob(&[]),
    )
    .unwrap_err();
    assert_eq!(
        offset.to_string(),
        "histogram header: unsupported normalizing index offset (non-zero)"
    );
    let ratio = decode(
        &V2Header {
            ratio: 0.001,
            ..V2Header::default()
        }
        .blob(&[]),
    )
    .unwrap_err();
    assert!(matches!(ratio, HlogError::Unsupported(m) if m.contains("DoubleHistogram")));
}

#[test]
fn a_config_mismatch_with_the_expected_config_is_rejected() {
    let blob = V2Header {
        sigfig: 2,
        ..V2Header::default()
    }
    .blob(&[]);
    let limits = DecodeLimits::default().expecting(HistogramConfig::STANDARD);
    assert_eq!(
        decode_with(&blob, &limits).unwrap_err().to_string(),
        "histogram configuration mismatch: expected lowest=1 highest=3600000000 sigfig=3, \
         found lowest=1 highest=3600000000 sigfig=2"
    );
    // Without an expectation the same blob decodes.
    assert!(decode(&blob).is_ok());
}

#[test]
fn a_payload_running_past_the_counts_array_is_a_payload_error() {
    // A zero run to the last index, then one count beyond it.
    let counts = HistogramConfig::STANDARD.counts_len().unwrap() as i64;
    let mut payload = Vec::new();
    let mut v = ((-counts) << 1 ^ (-counts >> 63)) as u64;
    while v >= 0x80 {
        payload.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    payload.push(v as u8);
    payload.push(0x02);
    let blob = V2Header {
        payload_len: payload.len() as u32,
        ..V2Header::default()
    }
    .blob(&payload);
    let err = decode(&blob).unwrap_err();
    assert!(matches!(err, HlogError::Payload(_)), "{err:?}");
}

/// Cases per never-panic property: 512, or `PROPTEST_CASES` for a longer fuzzing run
/// (`PROPTEST_CASES=200000 cargo test --release -p barrage-crds --test hlog_hardening arbitrary`).
fn fuzz_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: fuzz_cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = decode(&text);
    }

    #[test]
    fn arbitrary_envelopes_never_panic(cookie in prop_oneof![Just(0x1c84_9314_u32), any::<u32>()],
                                       len in any::<u32>(), body in prop::collection::vec(any::<u8>(), 0..200)) {
        let _cap = capped();
        let _ = decode(&envelope(cookie, len, &body));
    }

    #[test]
    fn arbitrary_headers_and_payloads_never_panic(
        payload_len in prop_oneof![Just(None), any::<u32>().prop_map(Some)],
        sigfig in prop_oneof![1..=5_u32, any::<u32>()],
        lowest in prop_oneof![1..=1000_u64, any::<u64>()],
        highest in prop_oneof![Just(3_600_000_000_u64), Just(u64::MAX / 2), any::<u64>()],
        payload in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let header = V2Header {
            payload_len: payload_len.unwrap_or(payload.len() as u32),
            sigfig,
            lowest,
            highest,
            ..V2Header::default()
        };
        let _cap = capped();
        if let Ok(h) = decode(&header.blob(&payload)) {
            // Whatever decodes is a usable histogram.
            let _ = (h.len(), h.max(), h.min(), h.value_at_quantile(0.99), h.mean());
            let _ = encode_v2_compressed(&h).unwrap();
        }
    }

    #[test]
    fn mutated_valid_histograms_never_panic(
        values in prop::collection::vec((1..=3_600_000_000_u64, 1..=1_000_u64), 1..100),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        use hdrhistogram::serialization::Serializer as _;
        let mut h = new_histogram();
        for (v, n) in values {
            h.record_n(v, n).unwrap();
        }
        let mut v2 = Vec::new();
        hdrhistogram::serialization::V2Serializer::new().serialize(&h, &mut v2).unwrap();
        for (at, byte) in edits {
            let i = at.index(v2.len());
            v2[i] = byte;
        }
        let _cap = capped();
        if let Ok(d) = decode(&compressed(&v2)) {
            let _ = (d.len(), d.max(), d.min(), d.value_at_quantile(0.99), d.mean());
            let _ = encode_v2_compressed(&d).unwrap();
        }
    }
}
