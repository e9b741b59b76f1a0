//! The JSON API's handlers, one module per group of endpoints; the
//! route table that maps paths to them is `http::api`.

pub(crate) mod api_keys;
pub(crate) mod catalog;
pub(crate) mod entries;
pub(crate) mod erasures;
pub(crate) mod export;
pub(crate) mod health;
pub(crate) mod ingest;
pub(crate) mod invitations;
pub(crate) mod members;
pub(crate) mod orgs;
pub(crate) mod password;
pub(crate) mod projects;
pub(crate) mod proofs;
pub(crate) mod session;
pub(crate) mod streams;
pub(crate) mod webhooks;
