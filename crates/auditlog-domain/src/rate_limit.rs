//! Token buckets per key (an API key, a client address): a steady rate with
//! room for bursts, answering how long to wait when a key is over it.
//!
//! Time is passed in, so the rule is tested without waiting. The number of
//! keys tracked is bounded: a flood of distinct addresses cannot grow memory
//! without limit (buckets that have refilled are forgotten first, as they
//! are indistinguishable from new ones).

use std::collections::HashMap;

use crate::Timestamp;

/// A sustained rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second, sustained; 0 turns the limit off.
    pub per_second: f64,
    /// Requests that may arrive at once after a quiet spell.
    pub burst: f64,
}

impl Rate {
    pub const UNLIMITED: Rate = Rate {
        per_second: 0.0,
        burst: 0.0,
    };

    /// `per_second` with a burst of twice as many.
    pub fn per_second(per_second: f64) -> Self {
        Self {
            per_second,
            burst: per_second * 2.0,
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.per_second <= 0.0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: Rate,
    capacity: usize,
    buckets: HashMap<String, Bucket>,
}

impl RateLimiter {
    /// Tracks at most `capacity` keys.
    pub fn new(rate: Rate, capacity: usize) -> Self {
        Self {
            rate,
            capacity: capacity.max(1),
            buckets: HashMap::new(),
        }
    }

    fn refilled(&self, b: Bucket, now_ms: i64) -> f64 {
        let elapsed = (now_ms - b.at_ms).max(0) as f64 / 1000.0;
        (b.tokens + elapsed * self.rate.per_second).min(self.rate.burst)
    }

    /// Takes one request's worth for `key`; `Err(seconds)` to wait when the
    /// key is over its rate (nothing is taken then).
    pub fn take(&mut self, key: &str, now: Timestamp) -> Result<(), u64> {
        if self.rate.is_unlimited() {
            return Ok(());
        }
        let now_ms = now.millis();
        let tokens = match self.buckets.get(key) {
            Some(b) => self.refilled(*b, now_ms),
            None => {
                self.make_room(now_ms);
                self.rate.burst
            }
        };
        // A burst below one request would refuse everything.
        let cost = 1.0f64.min(self.rate.burst.max(f64::MIN_POSITIVE));
        if tokens < cost {
            let wait = (cost - tokens) / self.rate.per_second;
            return Err((wait.ceil() as u64).max(1));
        }
        self.buckets.insert(
            key.to_owned(),
            Bucket {
                tokens: tokens - cost,
                at_ms: now_ms,
            },
        );
        Ok(())
    }

    fn make_room(&mut self, now_ms: i64) {
        if self.buckets.len() < self.capacity {
            return;
        }
        let rate = self.rate;
        self.buckets.retain(|_, b| {
            let elapsed = (now_ms - b.at_ms).max(0) as f64 / 1000.0;
            b.tokens + elapsed * rate.per_second < rate.burst
        });
        if self.buckets.len() >= self.capacity {
            // Every tracked key is busy: forgetting them all errs towards
            // letting requests through rather than refusing new clients.
            self.buckets.clear();
        }
    }

    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp(1_790_000_000_000 + ms)
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds_and_the_wait_is_named() {
        let mut l = RateLimiter::new(
            Rate {
                per_second: 2.0,
                burst: 4.0,
            },
            100,
        );
        for _ in 0..4 {
            l.take("k", at(0)).unwrap();
        }
        assert_eq!(l.take("k", at(0)), Err(1));
        // Half a second refills one request at 2/s.
        l.take("k", at(500)).unwrap();
        assert_eq!(l.take("k", at(500)), Err(1));
        // A slow rate asks for a longer wait.
        let mut slow = RateLimiter::new(
            Rate {
                per_second: 0.1,
                burst: 1.0,
            },
            100,
        );
        slow.take("k", at(0)).unwrap();
        assert_eq!(slow.take("k", at(0)), Err(10));
    }

    #[test]
    fn keys_are_limited_apart() {
        let mut l = RateLimiter::new(
            Rate {
                per_second: 1.0,
                burst: 1.0,
            },
            100,
        );
        l.take("a", at(0)).unwrap();
        assert!(l.take("a", at(0)).is_err());
        l.take("b", at(0)).unwrap();
    }

    #[test]
    fn refused_requests_take_nothing() {
        let mut l = RateLimiter::new(
            Rate {
                per_second: 1.0,
                burst: 1.0,
            },
            100,
        );
        l.take("k", at(0)).unwrap();
        for ms in [100, 200, 300] {
            assert!(l.take("k", at(ms)).is_err());
        }
        l.take("k", at(1000)).unwrap();
    }

    #[test]
    fn unlimited_never_refuses_or_tracks() {
        let mut l = RateLimiter::new(Rate::UNLIMITED, 10);
        for i in 0..1000 {
            l.take(&i.to_string(), at(0)).unwrap();
        }
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let mut l = RateLimiter::new(Rate::per_second(10.0), 50);
        for i in 0..10_000 {
            l.take(&format!("10.0.{}.{}", i / 256, i % 256), at(i)).unwrap();
            assert!(l.tracked() <= 50);
        }
    }
}
