//! Job leases: one replica at a time signs checkpoints or purges, however
//! many share the database.
//!
//! A lease is a session-level advisory lock (`pg_try_advisory_lock`), held
//! by the pooled connection that took it for as long as the lease lives.
//! Dropping the lease unlocks and returns the connection to the pool; if
//! unlocking fails, the connection is closed instead, which releases the
//! lock with the session. A lease is a way to avoid doing work twice, not a
//! guarantee: a connection that drops loses its lock while its process
//! works on, so the jobs themselves stay safe to run twice (a checkpoint's
//! first signature stands; purges lock the rows they delete).

use auditlog_domain::StoreError;
use auditlog_domain::store::{Job, JobLease};
use deadpool_postgres::{Object, Pool};

use crate::error::{db_err, pool_err};

/// The advisory lock key of a job: a fixed hash (FNV-1a) of its name, so
/// every build and replica agrees on it.
fn key_of(job: Job) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"auditlog job ".iter().chain(job.as_str().as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

pub struct Lease {
    job: Job,
    key: i64,
    /// The session holding the lock; `None` once released.
    client: Option<Object>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("job", &self.job.as_str()).finish()
    }
}

impl JobLease for Lease {}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let key = self.key;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let unlocked = client
                        .query_one("SELECT pg_advisory_unlock($1)", &[&key])
                        .await
                        .map(|r| r.get::<_, bool>(0))
                        .unwrap_or(false);
                    if !unlocked {
                        // Out of the pool and closed: the lock goes with the session.
                        drop(Object::take(client));
                    }
                });
            }
            Err(_) => drop(Object::take(client)),
        }
    }
}

/// Takes `job` if no other session holds it.
pub async fn try_lease(pool: &Pool, job: Job) -> Result<Option<Box<dyn JobLease>>, StoreError> {
    let client = pool.get().await.map_err(pool_err)?;
    let key = key_of(job);
    let taken: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .map_err(db_err)?
        .get(0);
    Ok(taken.then(|| {
        Box::new(Lease {
            job,
            key,
            client: Some(client),
        }) as Box<dyn JobLease>
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_have_distinct_fixed_keys() {
        assert_ne!(key_of(Job::Checkpoints), key_of(Job::Retention));
        assert_eq!(key_of(Job::Checkpoints), key_of(Job::Checkpoints));
    }
}
