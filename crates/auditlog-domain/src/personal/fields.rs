//! Which values of an entry are personal data, and whose.
//!
//! A value is personal when it identifies or describes a person:
//!
//! - the actor's id when the actor is a person (`actor_type: user`), and
//!   then also the IP address and user agent, which are that person's;
//! - the submitter's id when a person submitted the entry (a session, or
//!   the operator's command line as `user@host`);
//! - the resource's id and name when the catalog marks the event's resource
//!   as a person (a member, by email);
//! - each detail whose key the catalog marks personal, when its value is
//!   text (the text names the person it belongs to).
//!
//! The IP address and user agent of a call by an API key or a service are
//! not anyone's: nobody could ask for them to be erased.

use std::borrow::Cow;

use crate::canonical::Fields;
use crate::catalog::Catalog;
use crate::entry::{ActorType, SubmitterKind};
use crate::member::normalise_email;

/// Where a personal value sits in an entry. Its text (`actor.id`,
/// `details.member`, ...) is what salts and ciphertexts are bound to, and
/// the name exports give the value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldPath {
    ActorId,
    IpAddress,
    UserAgent,
    SubmittedById,
    ResourceId,
    ResourceName,
    Detail(String),
}

impl FieldPath {
    pub fn as_str(&self) -> Cow<'_, str> {
        match self {
            FieldPath::ActorId => "actor.id".into(),
            FieldPath::IpAddress => "ip_address".into(),
            FieldPath::UserAgent => "user_agent".into(),
            FieldPath::SubmittedById => "submitted_by.id".into(),
            FieldPath::ResourceId => "resource.id".into(),
            FieldPath::ResourceName => "resource.name".into(),
            FieldPath::Detail(key) => format!("details.{key}").into(),
        }
    }

    /// The text of the value at this path of `fields`, as its commitment
    /// covers it; `None` where the entry holds none.
    pub fn value_in<'a>(&self, fields: &Fields<'a>) -> Option<Cow<'a, str>> {
        match self {
            FieldPath::ActorId => Some(fields.actor.id.as_str().into()),
            FieldPath::IpAddress => fields.ip_address.map(|ip| ip.to_string().into()),
            FieldPath::UserAgent => fields.user_agent.map(Into::into),
            FieldPath::SubmittedById => fields.submitted_by.map(|b| b.id.as_str().into()),
            FieldPath::ResourceId => Some(fields.resource.id.as_str().into()),
            FieldPath::ResourceName => fields.resource.name.as_deref().map(Into::into),
            FieldPath::Detail(key) => fields.details.get(key)?.as_str().map(Into::into),
        }
    }

    /// Reads [`Self::as_str`]'s text back.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "actor.id" => FieldPath::ActorId,
            "ip_address" => FieldPath::IpAddress,
            "user_agent" => FieldPath::UserAgent,
            "submitted_by.id" => FieldPath::SubmittedById,
            "resource.id" => FieldPath::ResourceId,
            "resource.name" => FieldPath::ResourceName,
            _ => FieldPath::Detail(s.strip_prefix("details.").filter(|k| !k.is_empty())?.to_owned()),
        })
    }
}

/// The person a value belongs to, as erasure names them: an email,
/// lower-cased and trimmed as accounts are; any other identifier as given,
/// trimmed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subject(String);

impl Subject {
    /// `None` for an empty identifier, which names nobody.
    pub fn new(id: &str) -> Option<Self> {
        let id = normalise_email(id).unwrap_or_else(|_| id.trim().to_owned());
        (!id.is_empty()).then_some(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One personal value of an entry: where it is, whose it is, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalValue<'a> {
    pub path: FieldPath,
    pub subject: Subject,
    pub value: Cow<'a, str>,
}

/// The personal values of an entry, ordered by path.
pub fn personal_values<'a>(fields: &Fields<'a>, catalog: &Catalog) -> Vec<PersonalValue<'a>> {
    let mut out = Vec::new();
    // Each path whose value is `owner`'s, where the entry holds a value.
    let mut push = |path: FieldPath, owner: &str| {
        if let (Some(subject), Some(value)) = (Subject::new(owner), path.value_in(fields)) {
            out.push(PersonalValue { path, subject, value });
        }
    };
    if fields.actor.kind == ActorType::User {
        let actor = fields.actor.id.as_str();
        for path in [FieldPath::ActorId, FieldPath::IpAddress, FieldPath::UserAgent] {
            push(path, actor);
        }
    }
    if let Some(by) = fields
        .submitted_by
        .filter(|b| matches!(b.kind, SubmitterKind::Session | SubmitterKind::Cli))
    {
        push(FieldPath::SubmittedById, &by.id);
    }
    if catalog.has_personal_resource(fields.event) {
        push(FieldPath::ResourceId, &fields.resource.id);
        push(FieldPath::ResourceName, &fields.resource.id);
    }
    for (key, value) in fields.details {
        if let Some(owner) = value.as_str().filter(|_| catalog.is_personal_detail(fields.event, key)) {
            push(FieldPath::Detail(key.clone()), owner);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Entry;
    use crate::entry::{Actor, SubmittedBy};

    /// The shared role change, with a mixed-case actor, a named member
    /// and other details.
    fn role_change() -> Entry {
        let mut e = crate::personal::test_entries::role_change();
        e.actor.id = "Ada@Acme.com".into();
        e.resource.name = Some("Bob".into());
        e.details =
            serde_json::from_str(r#"{"member":"bob@acme.com","old_role":"member","new_role":"admin"}"#).unwrap();
        e.user_agent = Some("curl/8.5".into());
        e
    }

    fn found(e: &Entry) -> Vec<(String, String, String)> {
        personal_values(&Fields::of(e), &Catalog::builtin())
            .into_iter()
            .map(|v| {
                (
                    v.path.as_str().into_owned(),
                    v.subject.as_str().to_owned(),
                    v.value.into_owned(),
                )
            })
            .collect()
    }

    fn row(path: &str, subject: &str, value: &str) -> (String, String, String) {
        (path.into(), subject.into(), value.into())
    }

    #[test]
    fn an_admin_changing_a_members_role_touches_two_people() {
        let ada = "ada@acme.com";
        let bob = "bob@acme.com";
        assert_eq!(
            found(&role_change()),
            [
                row("actor.id", ada, "Ada@Acme.com"),
                row("ip_address", ada, "203.0.113.7"),
                row("user_agent", ada, "curl/8.5"),
                row("submitted_by.id", ada, ada),
                row("resource.id", bob, bob),
                row("resource.name", bob, "Bob"),
                row("details.member", bob, bob),
            ]
        );
    }

    #[test]
    fn keys_services_and_the_system_are_nobody() {
        let mut e = role_change();
        e.event = "project.created".into();
        e.actor = Actor {
            kind: ActorType::ApiKey,
            id: "lqt_ab12cd34".into(),
        };
        e.submitted_by = Some(SubmittedBy::new(SubmitterKind::ApiKey, "lqt_ab12cd34"));
        assert_eq!(found(&e), [], "a key's IP and user agent are no one's");
        e.actor.kind = ActorType::Service;
        e.submitted_by = Some(SubmittedBy::service());
        assert_eq!(found(&e), []);
    }

    #[test]
    fn only_marked_text_details_are_personal() {
        let mut e = role_change();
        e.actor.kind = ActorType::Service;
        e.submitted_by = None;
        e.details = serde_json::from_str(r#"{"member":["bob@acme.com"],"new_role":"x@y.io"}"#).unwrap();
        assert_eq!(
            found(&e),
            [
                row("resource.id", "bob@acme.com", "bob@acme.com"),
                row("resource.name", "bob@acme.com", "Bob")
            ],
            "a list under a marked key, and an unmarked key, are not taken"
        );
        e.resource.id = "  ".into();
        assert_eq!(found(&e), [], "an empty identifier names nobody");
    }

    #[test]
    fn the_operators_cli_is_a_person_too() {
        let mut e = role_change();
        e.submitted_by = Some(SubmittedBy::new(SubmitterKind::Cli, "root@host-1"));
        assert!(found(&e).contains(&row("submitted_by.id", "root@host-1", "root@host-1")));
    }

    #[test]
    fn subjects_are_named_as_accounts_are() {
        assert_eq!(Subject::new(" Bob@ACME.com ").unwrap().as_str(), "bob@acme.com");
        assert_eq!(
            Subject::new(" User_42 ").unwrap().as_str(),
            "User_42",
            "other ids keep their case"
        );
        assert_eq!(Subject::new(""), None);
    }

    #[test]
    fn paths_round_trip_through_text() {
        let all = [
            FieldPath::ActorId,
            FieldPath::IpAddress,
            FieldPath::UserAgent,
            FieldPath::SubmittedById,
            FieldPath::ResourceId,
            FieldPath::ResourceName,
            FieldPath::Detail("member".into()),
        ];
        for p in all {
            assert_eq!(FieldPath::parse(&p.as_str()), Some(p));
        }
        assert_eq!(FieldPath::parse("details."), None);
        assert_eq!(FieldPath::parse("event"), None);
    }
}
