//! API keys and their organizations, remembered briefly by each process.

use std::collections::HashMap;

use auditlog_domain::Org;
use auditlog_domain::store::ApiKeyRecord;

/// Keys and their organizations, remembered briefly: two database reads,
/// each on another thread, were a quarter of the cost of a single-event
/// ingest. A key revoked through this process is forgotten at once; one
/// revoked through another replica works here for at most
/// [`KeyCache::TTL`] more.
#[derive(Default)]
pub struct KeyCache {
    entries: std::sync::Mutex<HashMap<String, (ApiKeyRecord, Org, std::time::Instant)>>,
}

impl KeyCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(2);
    const CAPACITY: usize = 10_000;

    pub(crate) fn get(&self, prefix: &str, slug: &str) -> Option<(ApiKeyRecord, Org)> {
        let map = self.entries.lock().ok()?;
        let (key, org, at) = map.get(prefix)?;
        (at.elapsed() < Self::TTL && org.slug == slug).then(|| (key.clone(), org.clone()))
    }

    pub(crate) fn put(&self, key: &ApiKeyRecord, org: &Org) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= Self::CAPACITY {
                map.clear();
            }
            map.insert(
                key.prefix.to_string(),
                (key.clone(), org.clone(), std::time::Instant::now()),
            );
        }
    }

    /// Forgets a key (revoked, or its last use moved).
    pub fn forget(&self, prefix: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(prefix);
        }
    }

    /// Forgets every key of an organization whose settings changed, so
    /// this process reads them anew at once.
    pub fn forget_org(&self, slug: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.retain(|_, (_, org, _)| org.slug != slug);
        }
    }
}
