//! Talking to PostgreSQL: statements prepared once per connection, and the
//! transaction runner that runs a body again when PostgreSQL aborted it to
//! break a deadlock.

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

/// Runs `body` in a READ COMMITTED transaction and commits it. `args` is
/// handed to each try (cloned), so the body owns what it works on. On a
/// deadlock or serialization failure the transaction is rolled back and run
/// again from the start, after a short randomized pause.
pub async fn transaction<A, T, F>(pool: &Pool, args: A, body: F) -> Result<T, StoreError>
where
    A: Clone + Send,
    T: Send,
    F: for<'t> Fn(&'t Transaction<'t>, A) -> BoxFuture<'t, Result<T, Failure>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut client = pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(Failure::Db)?;
        let outcome = match body(&tx, args.clone()).await {
            Ok(value) => tx.commit().await.map(|()| value).map_err(Failure::Db),
            Err(e) => Err(e),
        };
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
