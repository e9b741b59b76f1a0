//! Fixtures the PostgreSQL store's own tests share: an organization, an
//! entry at a given time, and an append that must succeed.

use auditlog_domain::entry::Resource;
use auditlog_domain::org::NewOrg;
use auditlog_domain::store::AccountStore;
use auditlog_domain::store::AppendRequest;
use auditlog_domain::store::EntryStore;
use auditlog_domain::{Entry, NewEntry, Org, Plan, Timestamp};
use auditlog_postgres::PostgresStore;

/// The time organizations are made and entries received at.
pub const T0: i64 = 1_790_000_000_000;

/// A new organization on the Team plan, named as its slug.
pub async fn org(store: &PostgresStore, slug: &str) -> Org {
    store
        .create_org(
            NewOrg {
                slug: slug.into(),
                name: slug.into(),
                plan: Plan::Team,
                enterprise_retention_days: None,
            },
            Timestamp(T0),
        )
        .await
        .unwrap()
}

/// The `n`th project created, at `when`.
pub fn dated(when: Timestamp, n: usize) -> NewEntry {
    NewEntry::by_system(
        when,
        "project.created",
        Resource {
            kind: "project".into(),
            id: format!("p_{n}"),
            name: None,
        },
        serde_json::json!({ "n": n }),
    )
}

/// Appends `entries` to `org` in one request, and returns them as stored.
pub async fn append(store: &PostgresStore, org: &Org, entries: Vec<NewEntry>) -> Vec<Entry> {
    store
        .append(vec![AppendRequest::entries(org.id, entries)], Timestamp(T0))
        .await
        .unwrap()
        .remove(0)
        .unwrap()
        .into_iter()
        .map(|a| a.entry)
        .collect()
}
