//! Reconnect backoff: exponential bound, full jitter.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// A random 64-bit seed from the standard library's per-process hash keys.
pub(crate) fn random_seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// Waits that double from `initial_ms` up to `max_ms`, each drawn uniformly
/// in `[0, bound]` so that many clients cut at once do not return at once.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    attempt: u32,
    state: u64,
}

impl Backoff {
    pub(crate) fn new(initial_ms: u64, max_ms: u64) -> Backoff {
        Backoff {
            initial_ms: initial_ms.max(1),
            max_ms: max_ms.max(initial_ms.max(1)),
            attempt: 0,
            state: random_seed(),
        }
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The upper bound of the next wait, in milliseconds.
    pub(crate) fn bound_ms(&self) -> u64 {
        self.initial_ms
            .saturating_mul(1u64 << self.attempt.min(32))
            .min(self.max_ms)
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let bound = self.bound_ms();
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_millis(self.next_u64() % (bound + 1))
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_doubles_up_to_max_and_waits_stay_below_it() {
        let mut backoff = Backoff::new(100, 1_000);
        let mut bounds = Vec::new();
        for _ in 0..6 {
            let bound = backoff.bound_ms();
            let delay = backoff.next_delay();
            assert!(delay <= Duration::from_millis(bound));
            bounds.push(bound);
        }
        assert_eq!(bounds, [100, 200, 400, 800, 1_000, 1_000]);
        backoff.reset();
        assert_eq!(backoff.bound_ms(), 100);
    }

    #[test]
    fn waits_are_spread_not_constant() {
        let mut backoff = Backoff::new(1_000, 1_000);
        let delays: std::collections::HashSet<Duration> =
            (0..20).map(|_| backoff.next_delay()).collect();
        assert!(delays.len() > 10, "full jitter spreads the waits");
    }
}
