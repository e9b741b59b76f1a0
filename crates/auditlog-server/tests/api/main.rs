//! Black-box tests of the HTTP API: each test starts the real server on a
//! fresh SQLite file and talks to it over a socket. `tests/api_postgres.rs`
//! runs the very same tests against PostgreSQL.

/// The store this binary tests against.
const BACKEND: helpers::Backend = helpers::Backend::Sqlite;

mod auth;
mod catalog;
mod console;
mod console_settings;
mod console_streams;
mod console_webhooks;
mod erasure;
mod export;
mod helpers;
mod ingest;
mod limits;
mod management;
mod matrix;
mod metrics;
mod openapi;
mod pages;
mod proofs;
mod provenance;
mod query;
mod reads;
mod receiver;
mod retention;
mod sessions;
mod shutdown;
mod streams;
mod syslog_receiver;
mod webhooks;
