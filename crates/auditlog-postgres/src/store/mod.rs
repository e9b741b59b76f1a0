//! The store traits on this backend, one file per trait, named as in
//! `auditlog_domain::store`; each method is a thin shell around the SQL in
//! the crate's other modules.

mod access;
mod accounts;
mod deliveries;
mod entries;
mod maintenance;
mod streams;
