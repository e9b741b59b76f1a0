//! Slowing and limiting failed logins, per account and per address.
//!
//! A key (an email, an IP address) that failed `max_failures` times within
//! the window is refused until the oldest of those failures leaves it. Each
//! failure also earns a growing delay before the answer. Time is passed in,
//! so the rule is tested without waiting.

use std::collections::{HashMap, VecDeque};

use crate::Timestamp;

#[derive(Debug, Clone)]
pub struct Throttle {
    window_ms: i64,
    max_failures: usize,
    /// Keys tracked at most; beyond it the stalest are forgotten, so a flood
    /// of distinct addresses cannot grow memory without bound.
    capacity: usize,
    failures: HashMap<String, VecDeque<Timestamp>>,
}

impl Throttle {
    pub fn new(window_ms: i64, max_failures: usize, capacity: usize) -> Self {
        Self {
            window_ms,
            max_failures,
            capacity,
            failures: HashMap::new(),
        }
    }

    fn recent(&mut self, key: &str, now: Timestamp) -> usize {
        let horizon = now.millis() - self.window_ms;
        match self.failures.get_mut(key) {
            Some(q) => {
                while q.front().is_some_and(|t| t.millis() <= horizon) {
                    q.pop_front();
                }
                q.len()
            }
            None => 0,
        }
    }

    /// `Err(seconds)` when the key must wait that long before trying again.
    pub fn check(&mut self, key: &str, now: Timestamp) -> Result<(), u64> {
        if self.recent(key, now) < self.max_failures {
            return Ok(());
        }
        let oldest = self
            .failures
            .get(key)
            .and_then(|q| q.front())
            .map_or(now.millis(), |t| t.millis());
        let wait_ms = (oldest + self.window_ms - now.millis()).max(1000);
        Err((wait_ms as u64).div_ceil(1000))
    }

    /// Records a failure; returns how long to delay the answer to it.
    pub fn fail(&mut self, key: &str, now: Timestamp) -> std::time::Duration {
        let n = self.recent(key, now);
        if self.failures.len() >= self.capacity && !self.failures.contains_key(key) {
            let horizon = now.millis() - self.window_ms;
            self.failures
                .retain(|_, q| q.back().is_some_and(|t| t.millis() > horizon));
            if self.failures.len() >= self.capacity {
                // Still full of live keys: forget the stalest half.
                let mut lasts: Vec<i64> = self
                    .failures
                    .values()
                    .filter_map(|q| q.back())
                    .map(|t| t.millis())
                    .collect();
                lasts.sort_unstable();
                let cut = lasts[lasts.len() / 2];
                self.failures.retain(|_, q| q.back().is_some_and(|t| t.millis() > cut));
            }
        }
        self.failures.entry(key.to_owned()).or_default().push_back(now);
        // 0.25 s, 0.5 s, 1 s, 2 s, then 2 s.
        std::time::Duration::from_millis(250u64 << n.min(3))
    }

    /// Forgets a key's failures (after a successful login).
    pub fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

/// The two limits on sign-ins: per account and per client address.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    by_account: Throttle,
    by_ip: Throttle,
}

impl LoginThrottle {
    pub fn new(window_ms: i64, per_account: usize, per_ip: usize) -> Self {
        Self {
            by_account: Throttle::new(window_ms, per_account, 100_000),
            by_ip: Throttle::new(window_ms, per_ip, 100_000),
        }
    }

    /// `Err(seconds)` while either the account or the address must wait.
    pub fn check(&mut self, account: &str, ip: &str, now: Timestamp) -> Result<(), u64> {
        self.by_account.check(account, now).and(self.by_ip.check(ip, now))
    }

    /// Records a failed sign-in; returns how long to delay the answer.
    pub fn fail(&mut self, account: &str, ip: &str, now: Timestamp) -> std::time::Duration {
        self.by_account.fail(account, now).max(self.by_ip.fail(ip, now))
    }

    /// A successful sign-in clears the account's failures; the address's
    /// stay, so one good account cannot launder guesses at others.
    pub fn succeed(&mut self, account: &str) {
        self.by_account.clear(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn refuses_after_the_limit_until_the_window_passes() {
        let mut t = Throttle::new(15 * MIN, 3, 100);
        let now = Timestamp(1_000_000);
        for _ in 0..3 {
            assert!(t.check("a@b.co", now).is_ok());
            t.fail("a@b.co", now);
        }
        assert_eq!(t.check("a@b.co", now), Err(15 * 60));
        assert!(t.check("other@b.co", now).is_ok(), "keys are independent");
        assert!(
            t.check("a@b.co", now.plus_millis(15 * MIN)).is_ok(),
            "the window passed"
        );
    }

    #[test]
    fn delays_grow_with_failures() {
        let mut t = Throttle::new(15 * MIN, 10, 100);
        let now = Timestamp(0);
        let d: Vec<u128> = (0..5).map(|_| t.fail("k", now).as_millis()).collect();
        assert_eq!(d, [250, 500, 1000, 2000, 2000]);
    }

    #[test]
    fn an_address_is_limited_across_accounts() {
        let mut t = LoginThrottle::new(15 * MIN, 5, 3);
        let now = Timestamp(0);
        for i in 0..3 {
            t.fail(&format!("user{i}@b.co"), "198.51.100.1", now);
        }
        assert!(t.check("fresh@b.co", "198.51.100.1", now).is_err());
        assert!(t.check("fresh@b.co", "198.51.100.2", now).is_ok());
        t.succeed("user0@b.co");
        assert!(
            t.check("user0@b.co", "198.51.100.1", now).is_err(),
            "the address still waits"
        );
    }

    #[test]
    fn success_clears_and_memory_is_bounded() {
        let mut t = Throttle::new(15 * MIN, 1, 4);
        let now = Timestamp(0);
        t.fail("k", now);
        t.clear("k");
        assert!(t.check("k", now).is_ok());
        for i in 0..50 {
            t.fail(&format!("ip{i}"), now.plus_millis(i));
        }
        assert!(t.failures.len() <= 4);
        assert!(
            t.check("ip49", now.plus_millis(49)).is_err(),
            "the freshest keys are kept"
        );
    }
}
