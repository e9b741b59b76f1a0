//! The API tests of `tests/api`, unchanged, against PostgreSQL: each test
//! gets a database of its own on a throwaway server (or on
//! `AUDITLOG_TEST_DATABASE_URL`), so both backends pass one suite.

/// The store this binary tests against.
const BACKEND: helpers::Backend = helpers::Backend::Postgres;

#[path = "api/auth.rs"]
mod auth;
#[path = "api/catalog.rs"]
mod catalog;
#[path = "api/console.rs"]
mod console;
#[path = "api/console_settings.rs"]
mod console_settings;
#[path = "api/console_streams.rs"]
mod console_streams;
#[path = "api/console_webhooks.rs"]
mod console_webhooks;
#[path = "api/erasure.rs"]
mod erasure;
#[path = "api/export.rs"]
mod export;
#[path = "api/helpers.rs"]
mod helpers;
#[path = "api/ingest.rs"]
mod ingest;
#[path = "api/limits.rs"]
mod limits;
#[path = "api/management.rs"]
mod management;
#[path = "api/matrix.rs"]
mod matrix;
#[path = "api/metrics.rs"]
mod metrics;
#[path = "api/pages.rs"]
mod pages;
#[path = "api/proofs.rs"]
mod proofs;
#[path = "api/provenance.rs"]
mod provenance;
#[path = "api/query.rs"]
mod query;
#[path = "api/reads.rs"]
mod reads;
#[path = "api/receiver.rs"]
mod receiver;
#[path = "api/retention.rs"]
mod retention;
#[path = "api/sessions.rs"]
mod sessions;
#[path = "api/shutdown.rs"]
mod shutdown;
#[path = "api/streams.rs"]
mod streams;
#[path = "api/syslog_receiver.rs"]
mod syslog_receiver;
#[path = "api/webhooks.rs"]
mod webhooks;
