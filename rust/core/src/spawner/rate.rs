//! Per-client token bucket limiting how fast a client may spawn.

use tokio::time::Instant;

/// Token bucket refilled at `rate` tokens per second, holding at most one
/// second's worth (`rate`), so a client may burst that many lines at once and
/// then sustain `rate` per second. A rate of 0 disables the limit.
///
/// Time comes from the caller (tokio's clock), so tests can pause it.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `per_second` tokens per second (0 = unlimited).
    pub fn new(per_second: u32, now: Instant) -> Self {
        let rate = f64::from(per_second);
        TokenBucket { rate, tokens: rate, last: now }
    }

    /// Takes one token if there is one. Refills lazily from the time elapsed
    /// since the last call, so an idle bucket costs nothing.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TokenBucket;
    use std::time::Duration;
    use tokio::time::Instant;

    fn takes(bucket: &mut TokenBucket, now: Instant, n: usize) -> usize {
        (0..n).filter(|_| bucket.try_take(now)).count()
    }

    #[test]
    fn burst_is_one_second_then_refills_at_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(50, t0);
        assert_eq!(takes(&mut b, t0, 100), 50);
        assert!(!b.try_take(t0));
        // 100 ms later: 5 tokens.
        assert_eq!(takes(&mut b, t0 + Duration::from_millis(100), 100), 5);
        // A long pause refills only up to the burst.
        assert_eq!(takes(&mut b, t0 + Duration::from_secs(60), 100), 50);
    }

    #[test]
    fn sustained_rate_is_respected() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, t0);
        assert_eq!(takes(&mut b, t0, 10), 10);
        // Ten seconds of one attempt per millisecond: ~100 granted.
        let granted = (1..=10_000).filter(|ms| b.try_take(t0 + Duration::from_millis(*ms))).count();
        assert!((99..=101).contains(&granted), "granted {granted}");
    }

    #[test]
    fn zero_means_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0, t0);
        assert_eq!(takes(&mut b, t0, 100_000), 100_000);
    }

    #[test]
    fn clock_going_backwards_does_not_panic_or_refill() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let mut b = TokenBucket::new(1, t0);
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 - Duration::from_secs(5)));
    }
}
