//! Record values, generated before the run starts.
//!
//! Values are made once, seeded, into a pool that the sender cycles through, so generation
//! never limits the rate and a run is reproducible from its seed. Random bytes of a fixed or
//! uniformly random size are the default; Avro and JSON values come from their modules.

pub mod avro;
pub mod json;

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

/// Most bytes a pool may hold; with large records the pool holds fewer values.
pub const POOL_BYTES: usize = 64 * 1024 * 1024;
/// Most values a pool holds.
pub const POOL_VALUES: usize = 4_096;

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

/// A ring of pre-generated values.
#[derive(Debug, Clone)]
pub struct PayloadPool {
    values: Vec<Vec<u8>>,
    next: usize,
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
        PayloadPool { values, next: 0 }
    }

    /// A pool of values made elsewhere (Avro, JSON). An empty list yields empty values.
    pub fn from_values(values: Vec<Vec<u8>>) -> Self {
        let values = if values.is_empty() {
            vec![Vec::new()]
        } else {
            values
        };
        PayloadPool { values, next: 0 }
    }

    /// The next value in the ring.
    pub fn next_value(&mut self) -> &[u8] {
        let i = self.next;
        self.next = (self.next + 1) % self.values.len();
        &self.values[i]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_size_values_all_have_the_size() {
        let mut p = PayloadPool::random(&ValuePlan::Fixed { size: 100 }, 1);
        for _ in 0..10_000 {
            assert_eq!(p.next_value().len(), 100);
        }
    }

    #[test]
    fn uniform_sizes_stay_in_bounds_and_vary() {
        let mut p = PayloadPool::random(&ValuePlan::Uniform { min: 10, max: 20 }, 1);
        let sizes: Vec<usize> = (0..1_000).map(|_| p.next_value().len()).collect();
        assert!(sizes.iter().all(|s| (10..=20).contains(s)));
        assert!(sizes.contains(&10) && sizes.contains(&20));
    }

    #[test]
    fn pools_are_reproducible_from_the_seed_and_differ_across_seeds() {
        let plan = ValuePlan::Fixed { size: 32 };
        let mut a = PayloadPool::random(&plan, 5);
        let mut b = PayloadPool::random(&plan, 5);
        let mut c = PayloadPool::random(&plan, 6);
        let va = a.next_value().to_vec();
        assert_eq!(va, b.next_value());
        assert_ne!(va, c.next_value());
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
}
