//! The one hash helper: FNV-1a (64 bit), for run ids, client tokens and spec digests.
//!
//! Not cryptographic: it names things and tells "same" from "changed"; nothing here is a
//! secret or has to resist a chosen collision.

/// FNV-1a, 64 bit, of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The digest of a serializable value: FNV-1a of its JSON, as 16 hex digits. Struct fields
/// serialize in declaration order and maps are ordered, so equal values have equal digests.
pub fn of_json<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    format!("{:016x}", fnv1a(&json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn equal_values_have_equal_digests_and_a_change_shows() {
        let a = serde_json::json!({"rate": 1000, "topic": "t"});
        assert_eq!(of_json(&a), of_json(&a.clone()));
        assert_ne!(
            of_json(&a),
            of_json(&serde_json::json!({"rate": 1001, "topic": "t"}))
        );
        assert_eq!(of_json(&a).len(), 16);
    }
}
