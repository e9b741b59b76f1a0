//! Talking to PostgreSQL: statements prepared once per connection, and the
//! transaction runner that runs a body again when PostgreSQL aborted it to
//! break a deadlock, with a durable commit or, for the dispatcher's
//! bookkeeping, a relaxed one.

use std::time::Duration;

use auditlog_domain::StoreError;
use deadpool_postgres::{GenericClient, Pool, Transaction};
use futures_util::future::BoxFuture;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::{Failure, is_retryable, pool_err};

/// How many times a transaction is tried before the store reports the
/// database unavailable. Deadlocks between replicas are rare and resolve on
/// the next try; this is a bound, not an expectation.
const ATTEMPTS: u32 = 5;

pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub async fn query<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<Vec<Row>, tokio_postgres::Error> {
    let stmt = c.prepare_cached(sql).await?;
    c.query(&stmt, params).await
}

pub async fn query_opt<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, tokio_postgres::Error> {
    let stmt = c.prepare_cached(sql).await?;
    c.query_opt(&stmt, params).await
}

pub async fn query_one<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<Row, tokio_postgres::Error> {
    let stmt = c.prepare_cached(sql).await?;
    c.query_one(&stmt, params).await
}

pub async fn execute<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<u64, tokio_postgres::Error> {
    let stmt = c.prepare_cached(sql).await?;
    c.execute(&stmt, params).await
}

/// How long a commit makes its caller wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Until the commit is flushed to disk (the server's default,
    /// `synchronous_commit=on`): what is acknowledged survives a crash.
    Durable,
    /// Not for the flush (`SET LOCAL synchronous_commit = off`, this
    /// transaction only). A crash may lose the last such commits, never
    /// corrupt anything: for writes whose loss only repeats work.
    Relaxed,
}

/// Runs `body` in a READ COMMITTED transaction and commits it durably.
/// `args` is handed to each try (cloned), so the body owns what it works
/// on. On a deadlock or serialization failure the transaction is rolled
/// back and run again from the start, after a short randomized pause.
pub async fn transaction<A, T, F>(pool: &Pool, args: A, body: F) -> Result<T, StoreError>
where
    A: Clone + Send,
    T: Send,
    F: for<'t> Fn(&'t Transaction<'t>, A) -> BoxFuture<'t, Result<T, Failure>>,
{
    transaction_with(pool, Commit::Durable, args, body).await
}

/// [`transaction`], committed as `commit` says.
pub async fn transaction_with<A, T, F>(pool: &Pool, commit: Commit, args: A, body: F) -> Result<T, StoreError>
where
    A: Clone + Send,
    T: Send,
    F: for<'t> Fn(&'t Transaction<'t>, A) -> BoxFuture<'t, Result<T, Failure>>,
{
    run(pool, commit, args, body, |value| (value, Ended::Open)).await
}

/// How a transaction body left its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Open: the runner commits it.
    Open,
    /// Committed by the body with [`commit_pipelined`].
    Committed,
}

/// [`transaction`] for a body that may commit the transaction itself, with
/// [`commit_pipelined`], and says so.
pub async fn transaction_ending<A, T, F>(pool: &Pool, args: A, body: F) -> Result<T, StoreError>
where
    A: Clone + Send,
    T: Send,
    F: for<'t> Fn(&'t Transaction<'t>, A) -> BoxFuture<'t, Result<(T, Ended), Failure>>,
{
    run(pool, Commit::Durable, args, body, |ended| ended).await
}

/// Commits the body's transaction right behind its last statements, so that
/// they, the commit and its flush to disk take one round trip: the locks the
/// transaction holds are released without waiting for this process to send
/// one more message. The body must then report [`Ended::Committed`].
///
/// The transaction is committed only if every statement before it
/// succeeded (`COMMIT` in a failed transaction rolls it back), so the body
/// must also check each of their results, as a join does. They must have
/// been sent already: each one's future polled first in the same join, with
/// a statement prepared beforehand (an unprepared one would send its
/// `Execute` only after a round trip, behind this commit).
///
/// The same message begins a new, empty transaction, since the client still
/// holds the first one open: the runner rolls it back (it wrote nothing) as
/// it would any transaction it did not commit.
pub async fn commit_pipelined(tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute("COMMIT; BEGIN").await
}

/// Runs `body` as [`transaction_with`] says; `split` tells from its value
/// how it left the transaction.
async fn run<A, R, T, F>(
    pool: &Pool,
    commit: Commit,
    args: A,
    body: F,
    split: fn(R) -> (T, Ended),
) -> Result<T, StoreError>
where
    A: Clone + Send,
    R: Send,
    T: Send,
    F: for<'t> Fn(&'t Transaction<'t>, A) -> BoxFuture<'t, Result<R, Failure>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut client = pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(Failure::Db)?;
        let (these, body) = (args.clone(), &body);
        let outcome = async move {
            if commit == Commit::Relaxed {
                // LOCAL: the setting ends with this transaction, so the
                // pooled connection's next user commits durably again.
                tx.batch_execute("SET LOCAL synchronous_commit = off").await?;
            }
            let (value, ended) = split(body(&tx, these).await?);
            match ended {
                Ended::Open => tx.commit().await?,
                // Dropping the empty transaction that followed the commit
                // sends its rollback without waiting for the answer.
                Ended::Committed => drop(tx),
            }
            Ok::<T, Failure>(value)
        }
        .await;
        match outcome {
            Ok(value) => return Ok(value),
            Err(Failure::Db(e)) if is_retryable(&e) && attempt < ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "transaction aborted by a concurrent one; trying again");
                // Dropping the transaction rolled it back.
                let jitter = u64::from(uuid::Uuid::now_v7().as_bytes()[15] % 20);
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt) + jitter)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
    use tokio_postgres::NoTls;

    use super::*;
    use crate::testing;

    async fn setting(c: &impl GenericClient) -> String {
        c.query_one("SHOW synchronous_commit", &[]).await.unwrap().get(0)
    }

    /// A relaxed commit relaxes its own transaction and nothing after it on
    /// the same connection.
    #[tokio::test]
    async fn relaxed_commits_are_local_to_their_transaction() {
        let Some(url) = testing::fresh_database_url().await else {
            return;
        };
        // The test server runs with synchronous_commit=off throughout; these
        // connections start with the production default instead.
        let mut config: tokio_postgres::Config = url.parse().unwrap();
        config.options("-c synchronous_commit=on");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // One connection, so every step below runs on the same one.
        let pool = Pool::builder(manager)
            .max_size(1)
            .runtime(Runtime::Tokio1)
            .build()
            .unwrap();
        assert_eq!(setting(&pool.get().await.unwrap()).await, "on");

        let during = transaction_with(&pool, Commit::Relaxed, (), |tx, ()| {
            Box::pin(async move { Ok(setting(tx).await) })
        })
        .await
        .unwrap();
        assert_eq!(during, "off");
        assert_eq!(
            setting(&pool.get().await.unwrap()).await,
            "on",
            "after a relaxed commit"
        );

        let durable = transaction(&pool, (), |tx, ()| Box::pin(async move { Ok(setting(tx).await) }))
            .await
            .unwrap();
        assert_eq!(durable, "on");
    }
}
