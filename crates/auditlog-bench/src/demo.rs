//! The organization `auditlog demo` serves: `acme` on the Scale plan with a
//! year of entries from [`seed`](crate::seed), written straight into the
//! store.

use auditlog_domain::org::NewOrg;
use auditlog_domain::store::AppendRequest;
use auditlog_domain::{Org, Plan, Store, Timestamp};

use crate::AnyError;
use crate::seed;

/// Creates the organization `slug` ("Acme") on the Scale plan and fills its
/// last year with `n` entries; returns the organization.
pub async fn seed_org(store: &dyn Store, slug: &str, n: usize, now: Timestamp) -> Result<Org, AnyError> {
    let org = store
        .create_org(
            NewOrg {
                slug: slug.into(),
                name: "Acme".into(),
                plan: Plan::Scale,
                enterprise_retention_days: None,
            },
            now.minus_days(400),
        )
        .await?;
    // A day short of the retention window, so every entry is inside it,
    // as ingest would require. Written straight into the store: the mix
    // holds the service's own events, which ingest refuses.
    let entries = seed::entries(n, now.minus_days(364), now.plus_millis(-60_000), 2026);
    for chunk in entries.chunks(1000) {
        let received = chunk.last().map(|e| e.timestamp.plus_millis(1500)).unwrap_or(now);
        store
            .append(vec![AppendRequest::entries(org.id, chunk.to_vec())], received)
            .await?
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
    }
    Ok(org)
}
