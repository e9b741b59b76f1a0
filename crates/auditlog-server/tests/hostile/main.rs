//! The hostile suite: one regression test (or more) for every finding of
//! the red-team pass recorded in SECURITY.md, kept together so the next
//! tester starts from here. Each test starts the real server on a fresh
//! SQLite file, attacks it over a socket as the finding says, and asserts
//! the attack now fails.

/// The store this binary tests against.
const BACKEND: helpers::Backend = helpers::Backend::Sqlite;

mod accounts;
mod bodies;
mod escalation;
mod forgery;
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
mod lockout;
mod origin;
mod redirect;
