//! People: users (one account per email, across organizations), their
//! membership and role in each organization, and the projects an
//! organization holds.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::role::Role;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub email: String,
    pub role: Role,
    pub added_at: Timestamp,
}

/// A person's account. The password hash is a PHC string (argon2id).
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub email: String,
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("email", &self.email)
            .field("has_password", &self.password_hash.is_some())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Project {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an email address")]
pub struct BadEmail(pub String);

/// Checks an email's shape and returns it lower-cased, so one person has one
/// account however they type their address.
pub fn normalise_email(s: &str) -> Result<String, BadEmail> {
    let t = s.trim();
    let ok = t.len() <= 254
        && t.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && t.matches('@').count() == 1
        && !t
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ',' | ';'));
    if ok {
        Ok(t.to_lowercase())
    } else {
        Err(BadEmail(s.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadName {
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{0} is longer than {1} characters")]
    TooLong(&'static str, usize),
    #[error("{0} must not hold control characters")]
    Control(&'static str),
}

/// A display name (organization, project, key): at most `max` characters
/// as given, not blank, no control characters; returned trimmed.
pub fn display_name(what: &'static str, s: &str, max: usize) -> Result<String, BadName> {
    let t = s.trim();
    if t.is_empty() {
        Err(BadName::Empty(what))
    } else if s.chars().count() > max {
        // The text as sent: the limit a client reads in the API's schema
        // applies to what it sends, not to what is left after trimming.
        Err(BadName::TooLong(what, max))
    } else if t.chars().any(char::is_control) {
        Err(BadName::Control(what))
    } else {
        Ok(t.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_lower_cased() {
        assert_eq!(normalise_email(" Alice@Acme.COM ").unwrap(), "alice@acme.com");
        assert_eq!(normalise_email("zoë@例え.jp").unwrap(), "zoë@例え.jp");
        for bad in [
            "",
            "alice",
            "@acme.com",
            "alice@",
            "alice@acme",
            "a@b@c.com",
            "a b@c.com",
            "<a@b.com>",
            "a@.com",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_names() {
        assert_eq!(display_name("name", "  Prod  ", 10).unwrap(), "Prod");
        assert_eq!(display_name("name", " ", 10), Err(BadName::Empty("name")));
        assert_eq!(
            display_name("name", "abcdefghijk", 10),
            Err(BadName::TooLong("name", 10))
        );
        assert_eq!(display_name("name", "a\nb", 10), Err(BadName::Control("name")));
        assert_eq!(
            display_name("name", " abcdefghij", 10),
            Err(BadName::TooLong("name", 10))
        );
    }

    #[test]
    fn debug_hides_the_password_hash() {
        let u = User {
            email: "a@b.co".into(),
            password_hash: Some("$argon2id$secret".into()),
        };
        assert!(!format!("{u:?}").contains("secret"));
    }
}
