//! The two histogram decoders checked against each other: shared by the hardening tests, the
//! fuzz-corpus replay and the `hlog_decode` fuzz target (`#[path]`-included there).

use barrage_crds::hlog::{
    DecodeLimits, DecodeScratch, HlogError, decode_v2_compressed, decode_v2_counts,
    histogram_config_of,
};

/// Decodes with both decoders (the histogram one and the counts one used by the report merge)
/// and checks that they agree: both refuse with the same error, or both accept the same counts.
/// Panics when they disagree.
pub fn decode_with(
    b64: &str,
    limits: &DecodeLimits,
) -> Result<hdrhistogram::Histogram<u64>, HlogError> {
    let whole = decode_v2_compressed(b64, limits);
    let mut scratch = DecodeScratch::default();
    let mut counts = Vec::new();
    // Decode twice with the same scratch: reused buffers must not leak into the next decode.
    let _ = decode_v2_counts(b64, limits, &mut scratch, &mut counts);
    let by_counts = decode_v2_counts(b64, limits, &mut scratch, &mut counts);
    match (&whole, by_counts) {
        (Ok(h), Ok(config)) => {
            assert_eq!(config, histogram_config_of(h), "{b64}");
            let expected: Vec<(u32, u64)> = h
                .iter_recorded()
                .map(|v| {
                    let i = config.index_of(v.value_iterated_to());
                    assert_eq!(
                        config.value_at_index(i),
                        h.lowest_equivalent(v.value_iterated_to())
                    );
                    (
                        u32::try_from(i).expect("an index within the limits"),
                        v.count_at_value(),
                    )
                })
                .collect();
            assert_eq!(counts, expected, "{b64}");
        }
        (Err(a), Err(b)) => {
            // The envelope and header checks are shared, so they fail alike; the counts
            // payload is read by different code and both must merely refuse it.
            if !matches!(a, HlogError::Payload(_)) {
                assert_eq!(a, &b, "{b64}");
            }
        }
        (a, b) => panic!("the decoders disagree on {b64:?}: {a:?} vs {b:?}"),
    }
    whole
}
