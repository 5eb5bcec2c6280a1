//! The demo's randomness: a seeded SplitMix64 and the few distributions the simulation draws
//! from, using only IEEE-exact arithmetic so streams are identical on every platform.

use super::{HOUR, MINUTE};

/// The SplitMix64 output function: a bijective 64-bit mixer.
pub(super) fn mix64(value: u64) -> u64 {
    let mut z = value;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64 (Steele, Lea & Flood, 2014): a 64-bit counter passed through [`mix64`]. Tiny,
/// fast and statistically fine for simulation; not for anything secret.
pub(super) struct Rng {
    state: u64,
}

/// How long the tail of a duration is: heavy (log-logistic shape 2, p90 = 3 × median) for
/// queues and waits, light (shape 4, p90 = 1.7 × median) for hands-on work.
#[derive(Clone, Copy)]
pub(super) enum Tail {
    Heavy,
    Light,
}

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// Uniform in the open interval (0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; `n` = 0 gives 0).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub(super) fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    /// Uniform in `low..=high` seconds.
    pub(super) fn between(&mut self, low: i64, high: i64) -> i64 {
        low + self.below(high.saturating_sub(low).saturating_add(1).unsigned_abs()) as i64
    }

    pub(super) fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub(super) fn weighted(&mut self, weights: &[u32]) -> usize {
        let mut roll = self.below(weights.iter().map(|w| u64::from(*w)).sum());
        for (index, weight) in weights.iter().enumerate() {
            match roll.checked_sub(u64::from(*weight)) {
                Some(rest) => roll = rest,
                None => return index,
            }
        }
        weights.len().saturating_sub(1)
    }

    /// A log-logistic duration in seconds with the given median, capped, at least a minute.
    pub(super) fn duration(&mut self, median_hours: f64, tail: Tail, cap_hours: f64) -> i64 {
        let u = self.unit();
        let odds = (u / (1.0 - u)).sqrt();
        let factor = match tail {
            Tail::Heavy => odds,
            Tail::Light => odds.sqrt(),
        };
        (((median_hours * factor).min(cap_hours) * HOUR as f64) as i64).max(MINUTE)
    }

    pub(super) fn sha(&mut self) -> String {
        format!("{:016x}{:08x}", self.next_u64(), self.next_u64() >> 32)
    }
}
