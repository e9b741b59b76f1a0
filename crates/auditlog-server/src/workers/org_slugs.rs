//! Organizations' slugs by id, for the workers that name an organization
//! in what they send (a webhook's OCSF body, a SIEM stream's messages).
//! Slugs never change, so the store's list is read once, and again only
//! for an organization not met yet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use auditlog_domain::{OrgId, Store, StoreError};

/// Cheap to clone; clones share what they have read.
#[derive(Clone, Default)]
pub struct OrgSlugs(Arc<Mutex<HashMap<OrgId, String>>>);

impl OrgSlugs {
    /// The organization's slug, from what is known or, for one not met yet,
    /// from the store's list (which fills in the rest). The lock is held
    /// for a lookup only, never across the read.
    pub async fn get(&self, store: &dyn Store, org: OrgId) -> Result<String, StoreError> {
        if let Some(slug) = self.known(org) {
            return Ok(slug);
        }
        let orgs = store.orgs().await?;
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(orgs.into_iter().map(|o| (o.id, o.slug)));
        self.known(org)
            .ok_or_else(|| StoreError::NotFound(format!("organization {}", org.0)))
    }

    fn known(&self, org: OrgId) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&org).cloned()
    }
}
