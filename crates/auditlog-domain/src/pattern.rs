//! Event-name patterns: an exact name (`api_key.created`), a category
//! (`api_key.*`) or any glob with `*` (`*.deleted`, `*`).
//!
//! The same syntax selects entries in queries and exports and, later, the
//! events a webhook endpoint receives.

use std::fmt;

use crate::Catalog;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventPattern(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("event pattern is empty")]
    Empty,
    #[error("event pattern {0:?} may hold only lower-case letters, digits, `_`, `.` and `*`")]
    BadCharacter(String),
    #[error("event pattern {0:?} is longer than 128 characters")]
    TooLong(String),
}

impl EventPattern {
    pub fn parse(s: &str) -> Result<Self, PatternError> {
        if s.is_empty() {
            return Err(PatternError::Empty);
        }
        if s.len() > 128 {
            return Err(PatternError::TooLong(s.to_owned()));
        }
        let ok = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'*'));
        if !ok {
            return Err(PatternError::BadCharacter(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_wildcard(&self) -> bool {
        self.0.contains('*')
    }

    /// Glob match where `*` stands for any run of characters, dots included.
    pub fn matches(&self, event: &str) -> bool {
        glob_match(self.0.as_bytes(), event.as_bytes())
    }

    /// The catalogued events this pattern selects, in name order.
    pub fn expand<'c>(&self, catalog: &'c Catalog) -> Vec<&'c str> {
        catalog
            .events()
            .map(|e| e.name.as_str())
            .filter(|name| self.matches(name))
            .collect()
    }
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Iterative glob matching with single-star backtracking: linear in practice
/// and never exponential, whatever the pattern.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Whether `patterns` select `event`; none at all selects every event, as
/// an endpoint subscribed to nothing in particular gets everything.
pub fn selects(patterns: &[EventPattern], event: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| p.matches(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, e: &str) -> bool {
        EventPattern::parse(p).unwrap().matches(e)
    }

    #[test]
    fn exact_names_match_only_themselves() {
        assert!(m("api_key.created", "api_key.created"));
        assert!(!m("api_key.created", "api_key.revoked"));
        assert!(!m("api_key.created", "api_key.created2"));
    }

    #[test]
    fn category_wildcard_selects_the_whole_category_and_nothing_else() {
        assert!(m("api_key.*", "api_key.created"));
        assert!(m("api_key.*", "api_key.last_used_updated"));
        assert!(!m("api_key.*", "api_keys.created"));
        assert!(!m("api_key.*", "project.created"));
    }

    #[test]
    fn stars_anywhere() {
        assert!(m("*", "project.created"));
        assert!(m("*.deleted", "project.deleted"));
        assert!(!m("*.deleted", "project.created"));
        assert!(m("*member*", "organization.member_role_changed"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("**", ""));
    }

    #[test]
    fn refuses_characters_that_are_not_in_event_names() {
        for bad in ["API_KEY.*", "api key", "api_key.%", "x;drop", "é.x"] {
            assert!(
                matches!(EventPattern::parse(bad), Err(PatternError::BadCharacter(_))),
                "{bad}"
            );
        }
        assert_eq!(EventPattern::parse(""), Err(PatternError::Empty));
        assert!(matches!(
            EventPattern::parse(&"a".repeat(129)),
            Err(PatternError::TooLong(_))
        ));
    }

    #[test]
    fn expands_against_the_catalog() {
        let c = Catalog::builtin();
        let p = EventPattern::parse("api_key.*").unwrap();
        assert_eq!(
            p.expand(&c),
            ["api_key.created", "api_key.last_used_updated", "api_key.revoked"]
        );
        assert_eq!(EventPattern::parse("*").unwrap().expand(&c).len(), c.len());
        assert!(EventPattern::parse("nothing.*").unwrap().expand(&c).is_empty());
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let p = EventPattern::parse(&"*a".repeat(40)).unwrap();
        assert!(!p.matches(&"a".repeat(39)));
    }
}
