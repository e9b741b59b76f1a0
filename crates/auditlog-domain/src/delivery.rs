//! Webhook delivery rules: what an attempt's outcome means, when to try
//! again, and when to give up on an endpoint. Pure: the dispatcher supplies
//! the clock and the randomness.

use crate::Timestamp;

const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;

/// Delays before each attempt: the first immediately, then about 5 s,
/// 5 min, 30 min, 2 h, 5 h, 10 h and 10 h. After the last, the delivery
/// has failed.
pub const SCHEDULE_MS: [i64; 8] = [0, 5 * SEC, 5 * MIN, 30 * MIN, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR];

/// An endpoint that has failed every attempt for this long is disabled.
pub const DISABLE_AFTER_MS: i64 = 5 * 24 * HOUR;

/// A receiver may ask for at most this long a pause with `Retry-After`.
const MAX_RETRY_AFTER_MS: i64 = 10 * HOUR;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again (no sooner than `not_before`, if the receiver said so).
    Retry {
        not_before: Option<Timestamp>,
    },
    /// 410 Gone: the receiver wants no more; disable the endpoint.
    Gone,
}

/// What an HTTP answer (or its absence: `None` for a timeout or a
/// connection error) means.
pub fn classify(status: Option<u16>, retry_after_secs: Option<u64>, now: Timestamp) -> Outcome {
    match status {
        Some(200..=299) => Outcome::Delivered,
        Some(410) => Outcome::Gone,
        Some(429 | 503) => Outcome::Retry {
            not_before: retry_after_secs
                .map(|s| now.plus_millis(s.min((MAX_RETRY_AFTER_MS / SEC) as u64) as i64 * SEC)),
        },
        _ => Outcome::Retry { not_before: None },
    }
}

/// When attempt number `attempts + 1` is due after `attempts` failures, or
/// `None` when the schedule is spent. `jitter` in `[0, 1)` spreads retries
/// by ±20% so a recovering receiver is not hit by every retry at once.
pub fn next_attempt(attempts: u32, now: Timestamp, jitter: f64, not_before: Option<Timestamp>) -> Option<Timestamp> {
    let delay = *SCHEDULE_MS.get(attempts as usize)?;
    let spread = (delay as f64 * 0.4 * (jitter.clamp(0.0, 1.0) - 0.5)) as i64;
    let due = now.plus_millis(delay + spread);
    Some(not_before.map_or(due, |nb| due.max(nb)))
}

/// Whether an endpoint failing since `failing_since` should now be disabled.
pub fn should_disable(failing_since: Option<Timestamp>, now: Timestamp) -> bool {
    failing_since.is_some_and(|since| now.millis() - since.millis() >= DISABLE_AFTER_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_000_000_000);

    #[test]
    fn answers_are_classified() {
        assert_eq!(classify(Some(200), None, NOW), Outcome::Delivered);
        assert_eq!(classify(Some(204), None, NOW), Outcome::Delivered);
        for s in [Some(301), Some(400), Some(404), Some(500), None] {
            assert_eq!(classify(s, Some(60), NOW), Outcome::Retry { not_before: None }, "{s:?}");
        }
        assert_eq!(classify(Some(410), None, NOW), Outcome::Gone);
        assert_eq!(
            classify(Some(429), Some(30), NOW),
            Outcome::Retry {
                not_before: Some(NOW.plus_millis(30_000))
            }
        );
        assert_eq!(
            classify(Some(503), Some(u64::MAX), NOW),
            Outcome::Retry {
                not_before: Some(NOW.plus_millis(MAX_RETRY_AFTER_MS))
            }
        );
    }

    #[test]
    fn the_schedule_with_jitter() {
        assert_eq!(next_attempt(0, NOW, 0.5, None), Some(NOW), "first attempt immediately");
        assert_eq!(next_attempt(1, NOW, 0.5, None), Some(NOW.plus_millis(5_000)));
        assert_eq!(next_attempt(2, NOW, 0.0, None), Some(NOW.plus_millis(4 * MIN)));
        assert_eq!(next_attempt(2, NOW, 1.0, None), Some(NOW.plus_millis(6 * MIN)));
        assert_eq!(next_attempt(7, NOW, 0.5, None), Some(NOW.plus_millis(10 * HOUR)));
        assert_eq!(next_attempt(8, NOW, 0.5, None), None, "spent: the delivery failed");
        let later = NOW.plus_millis(HOUR);
        assert_eq!(
            next_attempt(1, NOW, 0.5, Some(later)),
            Some(later),
            "Retry-After wins when later"
        );
    }

    #[test]
    fn endpoints_are_disabled_after_five_days_of_failure() {
        assert!(!should_disable(None, NOW));
        assert!(!should_disable(Some(NOW.plus_millis(-DISABLE_AFTER_MS + 1)), NOW));
        assert!(should_disable(Some(NOW.plus_millis(-DISABLE_AFTER_MS)), NOW));
    }
}
