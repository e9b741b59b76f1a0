//! auditlog's benchmarks, run by `auditlog bench`, and the synthetic log
//! `auditlog demo` serves. Nothing here is part of the service: the
//! `auditlog` command calls in, and the service's crates never do.
//!
//! The bench runs inside the `auditlog` binary: the sections that need a
//! server of their own start that binary again (`auditlog serve`) as a
//! child process, so its memory and CPU are its own to measure.
//!
//! # Layout
//!
//! - [`cli`]: the sections of `auditlog bench` and the options of each.
//! - `harness`: what every section shares: the work directory, progress
//!   lines, in-process and child servers, the HTTP load generators, seeding
//!   and sampling the query log, the HTTP export.
//! - `report`: Markdown tables, verdicts against targets, number formats.
//! - `sqlite`: the SQLite sections (ceiling, ingest, queries, export) and
//!   the report of a whole run.
//! - `reads`: what recording reads costs a reader.
//! - `integrity`: what the Merkle tree costs appends.
//! - `erasure`: what sealing personal values costs, and erasing a person.
//! - `webhooks`: commit-to-delivery latency of webhooks.
//! - `streams`: commit-to-receipt latency of SIEM streams and what they
//!   cost ingest, against a private rsyslog (`rsyslog`).
//! - `load`: sustained open-loop ingest against a separate server.
//! - `abuse`: slow and oversized bodies against a separate server.
//! - `ops`: `auditlog check` and `auditlog backup`, and ingest beside a
//!   backup.
//! - `console`: the management pages on a large organization.
//! - `postgres`: the PostgreSQL measurements, beside COPY ceilings.
//! - `replicas`: what a second replica adds, each held to a CPU quota
//!   (`cpu_quota`).
//! - [`seed`]: realistic synthetic entries for the demo and the bench.
//! - [`demo`]: the organization `auditlog demo` serves, seeded with them.

#![forbid(unsafe_code)]

mod abuse;
pub mod cli;
mod console;
mod cpu_quota;
pub mod demo;
mod erasure;
mod harness;
mod integrity;
mod load;
mod ops;
mod postgres;
mod reads;
mod replicas;
mod report;
mod rsyslog;
pub mod seed;
mod sqlite;
mod streams;
mod webhooks;

use auditlog_domain::api_key::{self, Scope};
use auditlog_domain::store::NewApiKey;
use auditlog_domain::{Clock, Org, Store, SystemClock};

pub use cli::Section;

pub type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// Runs one section (or all) and prints its report on stdout; progress
/// goes to stderr.
pub async fn run(section: Section) -> Result<(), AnyError> {
    match section {
        Section::All(args) => sqlite::all(&args).await,
        Section::Ingest(args) => sqlite::ingest(&args).await,
        Section::Query(args) => sqlite::query(&args).await,
        Section::Export(args) => sqlite::export(&args).await,
        Section::Webhooks(args) => sqlite::webhooks(&args).await,
        Section::Integrity(args) => sqlite::integrity(&args).await,
        Section::Load(args) => load::run_cli(&args).await,
        Section::Abuse(args) => abuse::run_cli(&args).await,
        Section::Ops(args) => ops::run_cli(&args).await,
        Section::Console(args) => console::run_cli(&args).await,
        Section::Postgres(args) => postgres::run_cli(&args).await,
        Section::Replicas(args) => replicas::run_cli(&args).await,
        Section::Streams(args) => streams::run_cli(&args).await,
        Section::Erasure(args) => erasure::run_cli(&args).await,
    }
}

/// A new API key of the organization with these scopes, straight into the
/// store and without an entry of its own: for a log made up to measure or
/// to show, not for one people rely on. Returns the secret.
pub async fn make_key(store: &dyn Store, org: &Org, name: &str, scopes: Vec<Scope>) -> Result<String, AnyError> {
    let key = api_key::generate();
    store
        .create_api_key(
            NewApiKey {
                org_id: org.id,
                prefix: key.prefix.clone(),
                name: name.into(),
                scopes,
                hash: key.hash.clone(),
                created_by: None,
            },
            SystemClock.now(),
        )
        .await?;
    Ok(key.secret)
}
