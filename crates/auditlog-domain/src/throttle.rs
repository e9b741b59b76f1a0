//! Slowing and limiting failed logins, per account and address together,
//! per address, and per account.
//!
//! A key that failed `max_failures` times within the window is refused
//! until the oldest of those failures leaves it, and each failure earns a
//! growing delay before its answer. Time is passed in, so the rule is tested
//! without waiting.
//!
//! An account is never refused by failures alone: anyone can fail at
//! anyone's account, from as many addresses as they have, and a refusal
//! would lock its owner out. So an account's failures from everywhere only
//! slow every attempt at it; refusals are per address, and per account from
//! one address.

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

    /// How long to hold every attempt at a key that is past its limit: the
    /// same growing steps as [`Throttle::fail`], counted from the limit.
    pub fn pressure(&mut self, key: &str, now: Timestamp) -> std::time::Duration {
        match self.recent(key, now).checked_sub(self.max_failures) {
            Some(over) => step(over),
            None => std::time::Duration::ZERO,
        }
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
        step(n)
    }

    /// Forgets a key's failures (after a successful login).
    pub fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

/// The `n`th delay, from 0: 0.25 s, 0.5 s, 1 s, 2 s, then 2 s.
fn step(n: usize) -> std::time::Duration {
    std::time::Duration::from_millis(250u64 << n.min(3))
}

/// Keys tracked per limit at most.
const TRACKED: usize = 100_000;

/// The limits on sign-ins.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    /// One account from one address: refused past `per_account`, which
    /// stops a guesser at their own address while the owner, elsewhere,
    /// still gets in.
    by_pair: Throttle,
    /// One address, any accounts: refused past `per_ip`.
    by_ip: Throttle,
    /// One account, any addresses: slowed past `per_account`, never
    /// refused.
    by_account: Throttle,
}

impl LoginThrottle {
    pub fn new(window_ms: i64, per_account: usize, per_ip: usize) -> Self {
        Self {
            by_pair: Throttle::new(window_ms, per_account, TRACKED),
            by_ip: Throttle::new(window_ms, per_ip, TRACKED),
            by_account: Throttle::new(window_ms, per_account, TRACKED),
        }
    }

    /// `Err(seconds)` while this address must wait, for this account or
    /// for all.
    pub fn check(&mut self, account: &str, ip: &str, now: Timestamp) -> Result<(), u64> {
        self.by_pair
            .check(&pair(account, ip), now)
            .and(self.by_ip.check(ip, now))
    }

    /// How long to hold an attempt at `account` before checking it: longer
    /// the more it is being guessed at from everywhere.
    pub fn delay(&mut self, account: &str, now: Timestamp) -> std::time::Duration {
        self.by_account.pressure(account, now)
    }

    /// Records a failed sign-in; returns how long to delay the answer.
    pub fn fail(&mut self, account: &str, ip: &str, now: Timestamp) -> std::time::Duration {
        self.by_account.fail(account, now);
        self.by_pair.fail(&pair(account, ip), now).max(self.by_ip.fail(ip, now))
    }

    /// A successful sign-in clears the failures of the account from this
    /// address. The address's stay, so one good account cannot launder
    /// guesses at others; and the account's from elsewhere stay, as they
    /// are someone else's guesses.
    pub fn succeed(&mut self, account: &str, ip: &str) {
        self.by_pair.clear(&pair(account, ip));
    }
}

/// One key for an account at an address (addresses hold no spaces).
fn pair(account: &str, ip: &str) -> String {
    format!("{ip} {account}")
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
        t.succeed("user0@b.co", "198.51.100.1");
        assert!(
            t.check("user0@b.co", "198.51.100.1", now).is_err(),
            "the address still waits"
        );
    }

    const OWNER: &str = "olivia@acme.com";
    const HOME: &str = "192.0.2.10";

    #[test]
    fn failures_from_everywhere_never_lock_the_owner_out() {
        let mut t = LoginThrottle::new(15 * MIN, 5, 20);
        let now = Timestamp(0);
        for i in 0..200 {
            t.fail(OWNER, &format!("198.51.100.{i}"), now);
        }
        assert_eq!(t.check(OWNER, HOME, now), Ok(()), "the owner, at home, may try");
        assert!(
            t.delay(OWNER, now) <= std::time::Duration::from_secs(2),
            "and waits a little"
        );
    }

    #[test]
    fn one_address_guessing_one_account_is_refused() {
        let mut t = LoginThrottle::new(15 * MIN, 5, 20);
        let now = Timestamp(0);
        let guesser = "198.51.100.7";
        for _ in 0..4 {
            t.fail(OWNER, guesser, now);
        }
        assert_eq!(t.check(OWNER, guesser, now), Ok(()), "below per_account");
        t.fail(OWNER, guesser, now);
        assert_eq!(t.check(OWNER, guesser, now), Err(15 * 60), "at per_account");
        assert_eq!(t.check(OWNER, HOME, now), Ok(()), "the owner elsewhere is not");
        assert_eq!(t.check("ada@acme.com", guesser, now), Ok(()), "nor other accounts");
        assert_eq!(
            t.check(OWNER, guesser, now.plus_millis(15 * MIN)),
            Ok(()),
            "the window passed"
        );
    }

    #[test]
    fn many_addresses_guessing_one_account_are_slowed() {
        let mut t = LoginThrottle::new(15 * MIN, 5, 20);
        let now = Timestamp(0);
        let mut delays = Vec::new();
        for i in 0..9 {
            delays.push(t.delay(OWNER, now).as_millis());
            t.fail(OWNER, &format!("198.51.100.{i}"), now);
        }
        assert_eq!(delays, [0, 0, 0, 0, 0, 250, 500, 1000, 2000]);
        assert_eq!(t.delay("ada@acme.com", now), std::time::Duration::ZERO, "per account");
        assert_eq!(
            t.delay(OWNER, now.plus_millis(15 * MIN)),
            std::time::Duration::ZERO,
            "the window passed"
        );
    }

    #[test]
    fn success_clears_the_account_at_that_address_only() {
        let mut t = LoginThrottle::new(15 * MIN, 2, 20);
        let now = Timestamp(0);
        t.fail(OWNER, HOME, now);
        t.succeed(OWNER, HOME);
        t.fail(OWNER, HOME, now);
        assert_eq!(t.check(OWNER, HOME, now), Ok(()), "the earlier typo is forgiven");
        t.fail(OWNER, "198.51.100.7", now);
        t.fail(OWNER, "198.51.100.7", now);
        t.succeed(OWNER, HOME);
        assert!(t.check(OWNER, "198.51.100.7", now).is_err(), "the guesser's are not");
        assert!(t.delay(OWNER, now) > std::time::Duration::ZERO, "nor is the pressure");
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
