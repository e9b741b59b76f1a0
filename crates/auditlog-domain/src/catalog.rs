//! The event catalog: which events exist, what each means, which detail
//! keys each must carry, and which of its values are a person's (see
//! [`crate::personal`]).
//!
//! The built-in catalog is the data file `catalog.toml` beside this crate's
//! manifest, compiled into the binary; operators extend it with files of the
//! same shape. Lookups happen on every ingested entry, hence the map.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The catalog shipped with auditlog.
pub const BUILTIN: &str = include_str!("../catalog.toml");

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventSpec {
    pub name: String,
    pub category: String,
    pub description: String,
    pub required_details: Vec<String>,
    /// Who may record it.
    pub recorded_by: RecordedBy,
    /// Detail keys whose text values name a person (an email, say): each is
    /// that person's personal data, as are the keys the whole catalog marks.
    /// Not served yet: nothing acts on it until erasure does.
    #[serde(skip)]
    pub personal_details: Vec<String>,
    /// The resource is a person (a member, by email): its id and name are
    /// that person's personal data.
    #[serde(skip)]
    pub personal_resource: bool,
}

/// Who may record an event. What auditlog does itself is recorded by the
/// service alone, so no client can forge (or frame someone with) a role
/// change, a purge or an export; the platform's other services record
/// theirs through the ingest API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RecordedBy {
    /// Only auditlog itself; refused on ingest (`reserved_event`).
    Service,
    /// Producers, through `POST …/audit/events` with an `audit:write` key.
    Ingest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Category {
    pub name: String,
    pub label: String,
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    categories: BTreeMap<String, String>,
    events: BTreeMap<String, EventSpec>,
    /// Detail keys personal in every event (`[personal] details = [...]`).
    personal_details: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog {source_name}: {message}")]
    Parse { source_name: String, message: String },
    #[error("catalog {source_name}: event {name:?} is already defined")]
    Duplicate { source_name: String, name: String },
    #[error(
        "catalog {source_name}: event name {name:?} must be `category.action` in lower case letters, digits and underscores"
    )]
    BadName { source_name: String, name: String },
    #[error(
        "catalog {source_name}: event {name:?} is marked recorded_by = \"service\"; only auditlog's built-in events are, as only auditlog records them"
    )]
    ServiceEvent { source_name: String, name: String },
    #[error("catalog {source_name}: built-in event {name:?} must say who records it (recorded_by)")]
    Unmarked { source_name: String, name: String },
    #[error(
        "catalog {source_name}: event {name:?} belongs to category {category:?}, which no [categories] table names"
    )]
    UnknownCategory {
        source_name: String,
        name: String,
        category: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    categories: BTreeMap<String, String>,
    #[serde(default)]
    event: Vec<EventFile>,
    #[serde(default)]
    personal: PersonalFile,
}

/// Marks that hold for every event, the operator's own included: an
/// operator can mark a detail key personal in the built-in events too.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PersonalFile {
    #[serde(default)]
    details: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventFile {
    name: String,
    description: String,
    #[serde(default)]
    required_details: Vec<String>,
    /// Built-in events say; an operator's events are recorded by ingest.
    recorded_by: Option<RecordedBy>,
    #[serde(default)]
    personal_details: Vec<String>,
    #[serde(default)]
    personal_resource: bool,
}

/// Where a catalog file comes from, which decides what it may declare.
#[derive(Clone, Copy)]
enum Source {
    BuiltIn,
    Operator,
}

impl Source {
    fn recorded_by(self, source_name: &str, ev: &EventFile) -> Result<RecordedBy, CatalogError> {
        let err = |make: fn(String, String) -> CatalogError| Err(make(source_name.to_owned(), ev.name.clone()));
        match (self, ev.recorded_by) {
            (Source::BuiltIn, Some(r)) => Ok(r),
            (Source::BuiltIn, None) => err(|source_name, name| CatalogError::Unmarked { source_name, name }),
            (Source::Operator, Some(RecordedBy::Service)) => {
                err(|source_name, name| CatalogError::ServiceEvent { source_name, name })
            }
            (Source::Operator, _) => Ok(RecordedBy::Ingest),
        }
    }
}

fn is_valid_name(name: &str) -> bool {
    let mut parts = name.split('.');
    let ok = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    matches!((parts.next(), parts.next(), parts.next()), (Some(c), Some(a), None) if ok(c) && ok(a))
}

impl Catalog {
    /// The built-in catalog alone.
    pub fn builtin() -> Self {
        let mut c = Catalog::default();
        c.extend(Source::BuiltIn, "built-in", BUILTIN)
            .expect("the built-in catalog is valid (checked by tests)");
        c
    }

    /// Adds the categories and events of an operator's catalog file, all
    /// recorded through ingest. Nothing is added when the file has any
    /// problem.
    pub fn extend_from_toml(&mut self, source_name: &str, text: &str) -> Result<(), CatalogError> {
        self.extend(Source::Operator, source_name, text)
    }

    fn extend(&mut self, source: Source, source_name: &str, text: &str) -> Result<(), CatalogError> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| CatalogError::Parse {
            source_name: source_name.to_owned(),
            message: e.to_string(),
        })?;
        let mut next = self.clone();
        for (name, label) in file.categories {
            next.categories.entry(name).or_insert(label);
        }
        next.personal_details.extend(file.personal.details);
        for ev in file.event {
            if !is_valid_name(&ev.name) {
                return Err(CatalogError::BadName {
                    source_name: source_name.to_owned(),
                    name: ev.name,
                });
            }
            let category = ev.name.split('.').next().unwrap_or_default().to_owned();
            if !next.categories.contains_key(&category) {
                return Err(CatalogError::UnknownCategory {
                    source_name: source_name.to_owned(),
                    name: ev.name,
                    category,
                });
            }
            if next.events.contains_key(&ev.name) {
                return Err(CatalogError::Duplicate {
                    source_name: source_name.to_owned(),
                    name: ev.name,
                });
            }
            let recorded_by = source.recorded_by(source_name, &ev)?;
            next.events.insert(
                ev.name.clone(),
                EventSpec {
                    name: ev.name,
                    category,
                    description: ev.description,
                    required_details: ev.required_details,
                    recorded_by,
                    personal_details: ev.personal_details,
                    personal_resource: ev.personal_resource,
                },
            );
        }
        *self = next;
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&EventSpec> {
        self.events.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.events.contains_key(name)
    }

    /// Is detail `key` of an `event` entry a person's? Events the catalog
    /// no longer holds keep the marks that hold for every event.
    pub fn is_personal_detail(&self, event: &str, key: &str) -> bool {
        self.personal_details.contains(key)
            || self
                .events
                .get(event)
                .is_some_and(|e| e.personal_details.iter().any(|k| k == key))
    }

    /// Is the resource of an `event` entry a person?
    pub fn has_personal_resource(&self, event: &str) -> bool {
        self.events.get(event).is_some_and(|e| e.personal_resource)
    }

    /// Every event, sorted by name.
    pub fn events(&self) -> impl Iterator<Item = &EventSpec> {
        self.events.values()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn categories(&self) -> impl Iterator<Item = Category> + '_ {
        self.categories.iter().map(|(name, label)| Category {
            name: name.clone(),
            label: label.clone(),
        })
    }

    /// The catalog as the API serves it: categories, each with its events.
    pub fn to_json(&self) -> serde_json::Value {
        let categories: Vec<_> = self
            .categories
            .iter()
            .map(|(name, label)| {
                let events: Vec<_> = self.events.values().filter(|e| &e.category == name).collect();
                serde_json::json!({ "name": name, "label": label, "events": events })
            })
            .collect();
        serde_json::json!({ "categories": categories })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event named in DESIGN.md's catalog table.
    const DESIGN_EVENTS: &[&str] = &[
        "organization.renamed",
        "organization.sso_configured",
        "organization.member_added",
        "organization.member_removed",
        "organization.member_role_changed",
        "project.created",
        "project.deleted",
        "project.renamed",
        "api_key.created",
        "api_key.revoked",
        "api_key.last_used_updated",
        "guardrail.created",
        "guardrail.updated",
        "guardrail.enabled",
        "guardrail.disabled",
        "guardrail.deleted",
        "alert.created",
        "alert.updated",
        "alert.triggered",
        "alert.deleted",
        "billing.plan_upgraded",
        "billing.plan_downgraded",
        "billing.payment_method_changed",
        "data_export.requested",
        "data_export.downloaded",
        "evaluation.template_created",
        "evaluation.template_deleted",
        "prompt.version_published",
        "prompt.version_rolled_back",
        "webhook.created",
        "webhook.updated",
        "webhook.deleted",
        "webhook.disabled",
        "webhook.secret_rotated",
        "audit_log.retention_purged",
    ];

    /// Events auditlog adds beyond DESIGN.md's table, all its own.
    const ADDED_EVENTS: &[&str] = &[
        "audit_log.viewed",
        "webhook.replayed",
        "webhook.redelivered",
        "organization.created",
        "organization.member_invited",
        "organization.member_password_reset",
        "organization.member_password_changed",
        "organization.member_provisioned",
        "session.signed_in",
        "session.sign_in_failed",
        "session.signed_out",
        "session.ended",
        "stream.created",
        "stream.updated",
        "stream.deleted",
        "audit_log.subject_erased",
    ];

    /// The events producers record through ingest (issue: guardrails,
    /// alerts, evaluations, prompts and the payment method).
    const INGESTED: &[&str] = &["guardrail", "alert", "evaluation", "prompt"];

    #[test]
    fn builtin_catalog_holds_exactly_the_designed_events() {
        let c = Catalog::builtin();
        let mut names: Vec<_> = c.events().map(|e| e.name.as_str()).collect();
        let mut want = [DESIGN_EVENTS, ADDED_EVENTS].concat();
        names.sort_unstable();
        want.sort_unstable();
        assert_eq!(names, want);
        for e in c.events() {
            assert!(!e.description.is_empty(), "{} lacks a description", e.name);
            assert!(
                !e.required_details.is_empty(),
                "{} lists no required detail keys",
                e.name
            );
        }
    }

    #[test]
    fn role_change_requires_member_and_both_roles() {
        let c = Catalog::builtin();
        let spec = c.get("organization.member_role_changed").unwrap();
        assert_eq!(spec.category, "organization");
        assert_eq!(spec.required_details, ["member", "old_role", "new_role"]);
    }

    #[test]
    fn extension_adds_events_and_categories() {
        let mut c = Catalog::builtin();
        c.extend_from_toml(
            "ext.toml",
            r#"
            [categories]
            dataset = "Datasets"
            [[event]]
            name = "dataset.created"
            description = "A dataset was created."
            required_details = ["name"]
            [[event]]
            name = "project.archived"
            description = "A project was archived."
            "#,
        )
        .unwrap();
        assert!(c.contains("dataset.created"));
        assert!(c.get("project.archived").unwrap().required_details.is_empty());
        assert_eq!(c.len(), DESIGN_EVENTS.len() + ADDED_EVENTS.len() + 2);
        assert_eq!(c.get("dataset.created").unwrap().recorded_by, RecordedBy::Ingest);
    }

    #[test]
    fn members_and_sessions_are_marked_personal() {
        let c = Catalog::builtin();
        for e in c.events() {
            let person = e.name.starts_with("organization.member_") || e.name.starts_with("session.");
            assert_eq!(e.personal_resource, person, "{}", e.name);
            if e.required_details.iter().any(|k| k == "member") {
                assert!(c.is_personal_detail(&e.name, "member"), "{}", e.name);
            }
        }
        assert!(!c.is_personal_detail("project.created", "name"));
        assert!(!c.is_personal_detail("organization.member_role_changed", "new_role"));
        assert!(!c.has_personal_resource("no.such_event"));
    }

    #[test]
    fn an_operators_marks_hold_everywhere_or_in_their_events() {
        let mut c = Catalog::builtin();
        c.extend_from_toml(
            "more.toml",
            r#"
            [personal]
            details = ["email"]
            [categories]
            ticket = "Tickets"
            [[event]]
            name = "ticket.assigned"
            description = "A ticket was assigned to someone."
            personal_details = ["assignee"]
            personal_resource = true
            "#,
        )
        .unwrap();
        assert!(c.is_personal_detail("project.created", "email"), "built-in events too");
        assert!(
            c.is_personal_detail("gone.event", "email"),
            "even events no longer in the catalog"
        );
        assert!(c.is_personal_detail("ticket.assigned", "assignee"));
        assert!(!c.is_personal_detail("project.created", "assignee"));
        assert!(c.has_personal_resource("ticket.assigned"));
    }

    #[test]
    fn only_producers_events_are_ingested() {
        for e in Catalog::builtin().events() {
            let ingested = INGESTED.contains(&e.category.as_str()) || e.name == "billing.payment_method_changed";
            let want = if ingested {
                RecordedBy::Ingest
            } else {
                RecordedBy::Service
            };
            assert_eq!(e.recorded_by, want, "{}", e.name);
        }
    }

    #[test]
    fn an_extension_cannot_declare_a_service_event() {
        let mut c = Catalog::builtin();
        let err = c
            .extend_from_toml(
                "ext.toml",
                r#"
                [[event]]
                name = "project.archived"
                description = "A project was archived."
                recorded_by = "service"
                "#,
            )
            .unwrap_err();
        assert!(matches!(err, CatalogError::ServiceEvent { .. }), "{err}");
        assert!(!c.contains("project.archived"));
    }

    #[test]
    fn extension_cannot_redefine_an_event_and_adds_nothing_on_error() {
        let mut c = Catalog::builtin();
        let err = c
            .extend_from_toml(
                "ext.toml",
                r#"
                [[event]]
                name = "project.archived"
                description = "fine"
                [[event]]
                name = "project.created"
                description = "again"
                "#,
            )
            .unwrap_err();
        assert!(matches!(err, CatalogError::Duplicate { ref name, .. } if name == "project.created"));
        assert!(!c.contains("project.archived"), "a refused file must add nothing");
    }

    #[test]
    fn extension_names_bad_events_and_missing_categories() {
        let mut c = Catalog::builtin();
        for (text, want) in [
            (
                "[[event]]\nname = \"Project.Created\"\ndescription = \"x\"",
                "must be `category.action`",
            ),
            (
                "[[event]]\nname = \"nope\"\ndescription = \"x\"",
                "must be `category.action`",
            ),
            (
                "[[event]]\nname = \"zzz.made\"\ndescription = \"x\"",
                "which no [categories] table names",
            ),
            ("[[event]]\nname = \"zzz.made\"\ndescriptio = \"x\"", "unknown field"),
        ] {
            let err = c.extend_from_toml("ext.toml", text).unwrap_err().to_string();
            assert!(err.contains(want), "{err} should contain {want}");
        }
    }

    #[test]
    fn json_groups_events_by_category() {
        let v = Catalog::builtin().to_json();
        let cats = v["categories"].as_array().unwrap();
        assert_eq!(cats.len(), 13);
        let api = cats.iter().find(|c| c["name"] == "api_key").unwrap();
        assert_eq!(api["label"], "API keys");
        assert_eq!(api["events"].as_array().unwrap().len(), 3);
    }
}
