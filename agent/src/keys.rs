//! Record keys: none, uniform, sequential or zipf over a fixed cardinality, seeded.
//!
//! Keys are the decimal text of a key index (`"0"` … `"cardinality-1"`), written into a
//! reused buffer so the hot path does not allocate.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};

/// How keys are drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyPlan {
    /// No key: the partitioner spreads records.
    None,
    /// Uniformly random over `cardinality` keys.
    Uniform { cardinality: u64 },
    /// The fleet-wide send number modulo `cardinality`: every key in turn.
    Sequential { cardinality: u64 },
    /// Zipf-distributed with `exponent` over `cardinality` keys (key 0 is the hottest).
    Zipf { cardinality: u64, exponent: f64 },
}

/// Draws keys for one agent.
#[derive(Debug, Clone)]
pub struct KeyGen {
    plan: KeyPlan,
    rng: SmallRng,
    zipf: Option<Zipf<f64>>,
    buf: Vec<u8>,
}

impl KeyGen {
    /// A generator seeded with `seed` (mix the agent's slot into it so agents differ).
    pub fn new(plan: KeyPlan, seed: u64) -> Self {
        let zipf = match plan {
            KeyPlan::Zipf {
                cardinality,
                exponent,
            } => Zipf::new(cardinality.max(1) as f64, exponent.max(0.0)).ok(),
            _ => None,
        };
        KeyGen {
            plan,
            rng: SmallRng::seed_from_u64(seed),
            zipf,
            buf: Vec::with_capacity(20),
        }
    }

    /// The key index for fleet-wide send `global`, or `None` when records have no key.
    pub fn next_index(&mut self, global: u64) -> Option<u64> {
        match self.plan {
            KeyPlan::None => None,
            KeyPlan::Sequential { cardinality } => Some(global % cardinality.max(1)),
            KeyPlan::Uniform { cardinality } => Some(rand::Rng::random_range(
                &mut self.rng,
                0..cardinality.max(1),
            )),
            KeyPlan::Zipf { cardinality, .. } => {
                let k = match &self.zipf {
                    // Zipf yields 1..=n as floats.
                    Some(z) => z.sample(&mut self.rng) as u64,
                    None => 1,
                };
                Some(k.clamp(1, cardinality.max(1)) - 1)
            }
        }
    }

    /// The key bytes for fleet-wide send `global`.
    pub fn next_key(&mut self, global: u64) -> Option<&[u8]> {
        let index = self.next_index(global)?;
        self.buf.clear();
        write_decimal(&mut self.buf, index);
        Some(&self.buf)
    }
}

fn write_decimal(buf: &mut Vec<u8>, mut n: u64) {
    let start = buf.len();
    loop {
        buf.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf[start..].reverse();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_keys_cycle_through_the_cardinality() {
        let mut g = KeyGen::new(KeyPlan::Sequential { cardinality: 3 }, 1);
        let keys: Vec<Vec<u8>> = (0..5)
            .map(|j| g.next_key(j).map(<[u8]>::to_vec).unwrap_or_default())
            .collect();
        assert_eq!(
            keys,
            vec![
                b"0".to_vec(),
                b"1".to_vec(),
                b"2".to_vec(),
                b"0".to_vec(),
                b"1".to_vec()
            ]
        );
    }

    #[test]
    fn no_key_plan_gives_no_key() {
        let mut g = KeyGen::new(KeyPlan::None, 1);
        assert!(g.next_key(7).is_none());
    }

    #[test]
    fn uniform_keys_stay_in_range_and_cover_it() {
        let mut g = KeyGen::new(KeyPlan::Uniform { cardinality: 10 }, 42);
        let mut seen = [0u32; 10];
        for j in 0..10_000 {
            let k = g.next_index(j).unwrap_or(u64::MAX);
            assert!(k < 10);
            seen[k as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800 && c < 1_200), "{seen:?}");
    }

    #[test]
    fn zipf_keys_favour_the_first_key() {
        let mut g = KeyGen::new(
            KeyPlan::Zipf {
                cardinality: 1_000,
                exponent: 1.2,
            },
            7,
        );
        let mut counts = vec![0u32; 1_000];
        for j in 0..50_000 {
            let k = g.next_index(j).unwrap_or(u64::MAX);
            assert!(k < 1_000);
            counts[k as usize] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500]);
    }

    #[test]
    fn the_same_seed_gives_the_same_keys() {
        let plan = KeyPlan::Uniform {
            cardinality: 1 << 40,
        };
        let mut a = KeyGen::new(plan.clone(), 99);
        let mut b = KeyGen::new(plan, 99);
        for j in 0..100 {
            assert_eq!(a.next_index(j), b.next_index(j));
        }
    }

    #[test]
    fn decimal_keys_are_written_without_allocation_errors() {
        let mut buf = Vec::new();
        write_decimal(&mut buf, 0);
        write_decimal(&mut buf, 1_234_567_890);
        assert_eq!(buf, b"01234567890");
    }
}
