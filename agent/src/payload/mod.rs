//! Record values, made per record as a pure function of the run's seed and the record's place
//! in the fleet's schedule ([`RecordAt`]), so a run is reproducible from its seed and a record
//! has the same bytes whichever agent sends it (a replacement or a re-split changes nothing).
//!
//! Avro and JSON values are generated for every record: `sequence` / `{{seq}}` is the
//! record's fleet-wide index (plus the start), `timestampMillis` its intended send time, and
//! `uuid` is fresh per record (unique per index by construction, see [`record_uuid`]); other
//! random fields come from a generator seeded by the seed and the index. Random bytes of a
//! fixed or uniformly random size are pre-generated into a pool that record `j` reads at
//! `j % len`: such bytes carry no field a reader could key on.
//!
//! No I/O and no clock: callers pass the index and the intended time.

pub mod avro;
pub mod json;

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

pub use avro::PayloadError;

/// Most bytes a pool may hold; with large records the pool holds fewer values.
pub const POOL_BYTES: usize = 64 * 1024 * 1024;
/// Most values a pool holds.
pub const POOL_VALUES: usize = 4_096;

/// Where a record stands in the run: what its per-record fields are made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordAt {
    /// The fleet-wide record number: the schedule's send index times the records per send,
    /// plus the record's place in its send. Unique in the run, whichever agent sends it.
    pub index: u64,
    /// The intended send time, ms since the Unix epoch.
    pub intended_millis: i64,
}

impl RecordAt {
    /// Record `index` of a run whose records are intended one millisecond apart from
    /// `base_millis`: what `generate` in the Avro and JSON modules makes.
    pub fn nth(index: u64, base_millis: i64) -> Self {
        RecordAt {
            index,
            intended_millis: base_millis.saturating_add(i64::try_from(index).unwrap_or(i64::MAX)),
        }
    }
}

/// SplitMix64's finaliser: a bijection on `u64` that mixes every bit into every other.
pub(crate) fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The random generator of record `index`'s random fields, seeded.
pub(crate) fn record_rng(seed: u64, index: u64) -> SmallRng {
    SmallRng::seed_from_u64(mix64(seed ^ mix64(index)))
}

/// A version-4 UUID for record `index`, seeded; `salt` tells apart the UUID fields of one
/// value. For one seed and salt, different indices always give different UUIDs: 64 of the
/// 122 random bits are a bijection of the index, placed where the version and variant bits
/// are not.
pub fn record_uuid(seed: u64, salt: u64, index: u64) -> uuid::Uuid {
    let key = mix64(seed ^ mix64(salt));
    let unique = mix64(index ^ key).to_be_bytes();
    let filler = mix64(mix64(index ^ key) ^ key.rotate_left(32)).to_be_bytes();
    let mut b = [0u8; 16];
    // Bytes 6 and 8 hold the version and variant bits; the bijection stays clear of them.
    for (pos, byte) in [0, 1, 2, 3, 4, 5, 9, 10].into_iter().zip(unique) {
        b[pos] = byte;
    }
    for (pos, byte) in [6, 7, 8, 11, 12, 13, 14, 15].into_iter().zip(filler) {
        b[pos] = byte;
    }
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// What the values look like.
#[derive(Debug, Clone, PartialEq)]
pub enum ValuePlan {
    /// Random bytes of exactly `size` bytes.
    Fixed { size: usize },
    /// Random bytes of a size drawn uniformly from `min..=max`.
    Uniform { min: usize, max: usize },
}

impl ValuePlan {
    /// The mean value size, for rate and cost estimates.
    pub fn mean_size(&self) -> f64 {
        match *self {
            ValuePlan::Fixed { size } => size as f64,
            ValuePlan::Uniform { min, max } => (min + max) as f64 / 2.0,
        }
    }
}

/// Pre-generated random-byte values; record `j` takes value `j % len`.
#[derive(Debug, Clone)]
pub struct PayloadPool {
    values: Vec<Vec<u8>>,
}

impl PayloadPool {
    /// Generates random-byte values as `plan` says, reproducibly from `seed`.
    pub fn random(plan: &ValuePlan, seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let largest = match *plan {
            ValuePlan::Fixed { size } => size,
            ValuePlan::Uniform { max, .. } => max,
        }
        .max(1);
        let count = (POOL_BYTES / largest).clamp(1, POOL_VALUES);
        let values = (0..count)
            .map(|_| {
                let size = match *plan {
                    ValuePlan::Fixed { size } => size,
                    ValuePlan::Uniform { min, max } => {
                        rng.random_range(min.min(max)..=max.max(min))
                    }
                };
                let mut v = vec![0u8; size];
                rng.fill_bytes(&mut v);
                v
            })
            .collect();
        PayloadPool { values }
    }

    /// The value of record `index`.
    pub fn at(&self, index: u64) -> &[u8] {
        let len = self.values.len().max(1) as u64;
        usize::try_from(index % len)
            .ok()
            .and_then(|i| self.values.get(i))
            .map_or(&[], Vec::as_slice)
    }

    /// How many distinct values the pool holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Never true: a pool always holds at least one value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The values of a run, one per record: what the sender asks for each record it sends.
#[derive(Debug, Clone)]
pub struct Values {
    kind: Kind,
    seed: u64,
    /// The last generated value, reused so that a record allocates nothing.
    buf: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Kind {
    Pool(PayloadPool),
    /// Boxed: a generator is far larger than a pool or a template.
    Avro(Box<avro::AvroGenerator>),
    Json(json::JsonTemplate),
}

impl Values {
    /// Random bytes from a pool.
    pub fn pool(pool: PayloadPool) -> Self {
        Values {
            kind: Kind::Pool(pool),
            seed: 0,
            buf: Vec::new(),
        }
    }

    /// Avro values of `generator`, seeded.
    pub fn avro(generator: avro::AvroGenerator, seed: u64) -> Self {
        Values {
            kind: Kind::Avro(Box::new(generator)),
            seed,
            buf: Vec::with_capacity(256),
        }
    }

    /// JSON values of `template`, seeded.
    pub fn json(template: json::JsonTemplate, seed: u64) -> Self {
        Values {
            kind: Kind::Json(template),
            seed,
            buf: Vec::with_capacity(256),
        }
    }

    /// The value of the record at `at`, borrowed until the next call. Fails only for Avro
    /// values that cannot be made (a `sequence` past an int field's range, a value past the
    /// record limit).
    pub fn value(&mut self, at: RecordAt) -> Result<&[u8], PayloadError> {
        match &self.kind {
            Kind::Pool(pool) => Ok(pool.at(at.index)),
            Kind::Avro(generator) => {
                self.buf.clear();
                generator.encode_record(self.seed, at, &mut self.buf)?;
                Ok(&self.buf)
            }
            Kind::Json(template) => {
                self.buf.clear();
                template.render(self.seed, at, &mut self.buf);
                Ok(&self.buf)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_size_values_all_have_the_size() {
        let p = PayloadPool::random(&ValuePlan::Fixed { size: 100 }, 1);
        for j in 0..10_000 {
            assert_eq!(p.at(j).len(), 100);
        }
    }

    #[test]
    fn uniform_sizes_stay_in_bounds_and_vary() {
        let p = PayloadPool::random(&ValuePlan::Uniform { min: 10, max: 20 }, 1);
        let sizes: Vec<usize> = (0..1_000).map(|j| p.at(j).len()).collect();
        assert!(sizes.iter().all(|s| (10..=20).contains(s)));
        assert!(sizes.contains(&10) && sizes.contains(&20));
    }

    #[test]
    fn pools_are_reproducible_from_the_seed_and_differ_across_seeds() {
        let plan = ValuePlan::Fixed { size: 32 };
        let a = PayloadPool::random(&plan, 5);
        let b = PayloadPool::random(&plan, 5);
        let c = PayloadPool::random(&plan, 6);
        assert_eq!(a.at(3), b.at(3));
        assert_ne!(a.at(3), c.at(3));
        assert_eq!(
            a.at(3),
            a.at(3 + a.len() as u64),
            "record j reads value j % len"
        );
    }

    #[test]
    fn large_values_keep_the_pool_within_its_byte_budget() {
        let p = PayloadPool::random(
            &ValuePlan::Fixed {
                size: 10 * 1024 * 1024,
            },
            1,
        );
        assert_eq!(p.len(), POOL_BYTES / (10 * 1024 * 1024));
    }

    #[test]
    fn record_uuids_are_version_4_and_differ_for_every_index_and_salt() {
        let mut seen = std::collections::HashSet::new();
        for salt in 0..3 {
            for j in 0..100_000 {
                let u = record_uuid(7, salt, j);
                assert_eq!(u.get_version_num(), 4);
                assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
                assert!(seen.insert(u), "salt {salt}, index {j}: {u} repeats");
            }
        }
        assert_eq!(record_uuid(7, 0, 5), record_uuid(7, 0, 5));
        assert_ne!(record_uuid(7, 0, 5), record_uuid(8, 0, 5));
    }

    #[test]
    fn record_uuids_carry_the_index_bijection_untouched_by_the_version_bits() {
        for j in [0, 1, 4_095, 4_096, u64::MAX] {
            let key = mix64(3 ^ mix64(1));
            let u = record_uuid(3, 1, j).into_bytes();
            let unique = mix64(j ^ key).to_be_bytes();
            for (pos, b) in [0, 1, 2, 3, 4, 5, 9, 10].into_iter().zip(unique) {
                assert_eq!(u[pos], b, "index {j}, byte {pos}");
            }
        }
    }
}
