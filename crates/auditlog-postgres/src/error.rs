//! From PostgreSQL's errors to [`StoreError`]: what a caller may retry later
//! (`Unavailable`), what names a taken unique name (`Conflict`), and what is
//! a bug (`Internal`).

use auditlog_domain::StoreError;
use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

/// What went wrong inside a transaction body: the database, or a rule of
/// the store (a refused change). Kept apart so the transaction runner can
/// tell a deadlock, worth running again, from a refusal, which is final.
#[derive(Debug)]
pub enum Failure {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<Failure> for StoreError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Db(e) => db_err(e),
            Failure::Store(e) => e,
        }
    }
}

/// PostgreSQL aborted the transaction to resolve a conflict with another
/// one; running it again from the start is the documented remedy.
pub fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE | &SqlState::T_R_DEADLOCK_DETECTED)
    )
}

/// Errors a client can do nothing about but wait: the service answers 503.
fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    if let Some(code) = e.code() {
        let class = &code.code()[..2];
        // 08: connection exceptions; 53: insufficient resources (disk full,
        // out of memory, too many connections); 57: operator intervention
        // (shutdown, "cannot connect now", a cancelled statement).
        return matches!(class, "08" | "53" | "57")
            || matches!(
                code,
                &SqlState::READ_ONLY_SQL_TRANSACTION // failed over to a standby
                    | &SqlState::LOCK_NOT_AVAILABLE
                    | &SqlState::IO_ERROR
                    | &SqlState::T_R_SERIALIZATION_FAILURE
                    | &SqlState::T_R_DEADLOCK_DETECTED
            );
    }
    if e.is_closed() {
        return true;
    }
    // Without a SQLSTATE the server never answered: the connection could
    // not be made or broke (an I/O error underneath), or timed out. Type
    // conversions also lack one, but they are bugs.
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    let text = e.to_string();
    text.starts_with("error connecting to server") || text.starts_with("timeout")
}

pub fn db_err(e: tokio_postgres::Error) -> StoreError {
    if is_unavailable(&e) {
        StoreError::Unavailable(with_causes(&e))
    } else {
        StoreError::Internal(match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => with_causes(&e),
        })
    }
}

/// An error's message followed by its causes'. tokio-postgres's own
/// messages name only the kind ("error performing TLS handshake", "db
/// error"); the reason is in the causes. A cause whose text the message
/// already holds is not repeated.
fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

/// A unique violation means the name is taken.
pub fn conflict_or(e: tokio_postgres::Error, what: String) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(what)
    } else {
        db_err(e)
    }
}

/// Any failure to get a connection from the pool is a wait-and-retry.
pub fn pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => match db_err(e) {
            // A server that refuses us a connection, for whatever reason, is unavailable to us.
            StoreError::Internal(m) => StoreError::Unavailable(m),
            other => other,
        },
        other => StoreError::Unavailable(format!("no database connection: {other}")),
    }
}
