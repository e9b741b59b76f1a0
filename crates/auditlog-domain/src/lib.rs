//! The pure core of auditlog: everything that decides *what* happens, with no
//! I/O. Storage backends and the HTTP server are built around it.
//!
//! # Layout
//!
//! - [`timestamp`]: millisecond UTC instants, RFC 3339 in and out.
//! - [`clock`]: where "now" comes from, injectable so tests never sleep.
//! - [`catalog`]: the event catalog (a data file plus operator extensions).
//! - [`pattern`]: event-name patterns such as `api_key.*`.
//! - [`entry`]: a recorded audit entry and the parts it is made of.
//! - [`ingest`]: turning untrusted JSON into validated new entries.
//! - [`org`]: organizations and plans, and the retention window each implies.
//! - [`api_key`]: the `lqt_` key format, its checksum, hashing and scopes.
//! - [`role`]: owner, admin, member, viewer.
//! - [`permissions`]: who may do what, as one pure function.
//! - [`member`]: people, memberships and projects; email and name checks.
//! - [`change`]: management changes, applied with their audit entries.
//! - [`invitation`]: single-use invitations and password resets.
//! - [`password`]: argon2id hashing of people's passwords.
//! - [`session`]: web sessions and their tokens.
//! - [`throttle`]: slowing down repeated failed logins.
//! - [`rate_limit`]: token buckets per API key and per client address.
//! - [`webhook`]: endpoints, secrets and Standard Webhooks signatures.
//! - [`delivery`]: webhook outcomes, the retry schedule, giving up.
//! - [`ssrf`]: which addresses webhooks may reach.
//! - [`stream`]: SIEM streams, their cursors, health and reconnection.
//! - [`filter`]: what a reader asks for, parsed from query parameters.
//! - [`query_language`]: the search box's `actor:… event:…` text, both ways.
//! - [`cursor`]: the opaque keyset-pagination cursor.
//! - [`read_audit`]: reads of the log as `audit_log.viewed`, one per look.
//! - [`csv_row`]: the export's CSV columns and formula-injection defence.
//! - [`export_format`]: CSV or JSON Lines, a page of entries at a time.
//! - [`canonical`]: the canonical bytes of an entry, which its Merkle leaf
//!   hashes.
//! - [`leaf_hasher`]: hashing a transaction's new leaves beside its inserts.
//! - [`merkle`]: the RFC 9162 Merkle tree per organization: stored nodes,
//!   roots, inclusion and consistency proofs and their verification.
//! - [`checkpoint`]: signed tree heads, C2SP checkpoints in signed notes.
//! - [`gaps`]: which entries missing from a complete export retention purged.
//! - [`personal`]: which values of an entry are a person's, and the
//!   per-person keys, salted commitments and sealing that let them be
//!   erased without breaking a proof.
//! - [`siem`]: the messages of SIEM streams: RFC 5424 syslog, CEF and OCSF,
//!   with octet-counting framing.
//! - [`store`]: the store traits every backend implements (one per
//!   concern, `Store` all of them), and their errors.

#![forbid(unsafe_code)]

pub mod api_key;
pub mod canonical;
pub mod catalog;
pub mod change;
pub mod change_rules;
pub mod checkpoint;
pub mod clock;
pub mod csv_row;
pub mod cursor;
pub mod delivery;
pub mod entry;
pub mod export_format;
pub mod filter;
pub mod gaps;
pub mod ingest;
pub mod invitation;
pub mod leaf_hasher;
pub mod log_check;
pub mod member;
pub mod merkle;
pub mod org;
pub mod password;
pub mod pattern;
pub mod permissions;
pub mod personal;
pub mod query_language;
pub mod rate_limit;
pub mod read_audit;
pub mod role;
pub mod sealed;
pub mod session;
pub mod siem;
pub mod sso;
pub mod ssrf;
pub mod store;
pub mod stream;
pub mod summary;
pub mod throttle;
pub mod timestamp;
pub mod webhook;

pub use catalog::Catalog;
pub use clock::{Clock, ManualClock, SystemClock};
pub use entry::{Actor, ActorType, Entry, NewEntry, Resource, SubmittedBy, SubmitterKind};
pub use filter::Filter;
pub use org::{Org, OrgId, Plan};
pub use role::Role;
pub use store::{Store, StoreError};
pub use timestamp::Timestamp;
