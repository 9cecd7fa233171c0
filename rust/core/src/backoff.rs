//! Exponential reconnect backoff with "equal jitter" (half the delay fixed, half random),
//! shared by every client node.

use std::time::Duration;

/// Delays between reconnect attempts: the ceiling doubles from `min` up to
/// `max` and each delay is drawn uniformly from `[ceiling / 2, ceiling]`, so
/// many clients dropped together do not return in lockstep, yet none comes
/// back sooner than half the ceiling (full jitter, `[0, ceiling]`, would let
/// some retry at once).
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    ceiling: Duration,
    rng: u64,
}

impl Backoff {
    /// A backoff whose ceiling goes from `min` up to `max` (swapped if given the wrong way
    /// round; a zero `min` is raised to 1 ms so a failing peer is never hammered).
    pub fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        let (min, max) = if max < min { (max.max(Duration::from_millis(1)), min) } else { (min, max) };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        Self { min, max, ceiling: min, rng: seed | 1 }
    }

    /// The delay before the next attempt; each call raises the ceiling.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling;
        self.ceiling = (self.ceiling * 2).min(self.max);
        let half = ceiling / 2;
        let span = (ceiling - half).as_nanos() as u64;
        let jitter = if span == 0 { 0 } else { self.next_random() % (span + 1) };
        half + Duration::from_nanos(jitter)
    }

    /// Call after a connection succeeded: the next failure starts from `min`.
    pub fn reset(&mut self) {
        self.ceiling = self.min;
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: plenty for jitter, and no dependency.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_maximum_and_stay_in_range() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let ceilings = [500, 1000, 2000, 4000, 4000, 4000];
        for ceiling in ceilings {
            let d = b.next_delay();
            let ceiling = Duration::from_millis(ceiling);
            assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} outside [{:?}, {ceiling:?}]", ceiling / 2);
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(500));
    }

    #[test]
    fn hostile_settings_are_made_sane() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        let d = b.next_delay();
        assert!(d >= Duration::from_micros(500) && d <= Duration::from_millis(1), "{d:?}");
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(1));
        assert!(b.next_delay() <= Duration::from_secs(1));
    }
}
