//! Ends sessions past their expiry and records each end (`session.ended`,
//! `reason: expired`) in every organization of its person.
//!
//! The end is a compare-and-set on the session's row, applied with the
//! first organization's entry: replicas sweeping at once end and record
//! each session once, and a session is never gone without its record.
//! A person in no organization has no log to record in; their session is
//! simply deleted.

use auditlog_domain::change::Change;
use auditlog_domain::entry::{Actor, ActorType, Resource};
use auditlog_domain::session::Session;
use auditlog_domain::store::AppendRequest;
use auditlog_domain::{Clock, NewEntry, Store, StoreError, SubmittedBy};
use serde_json::json;

use crate::workers::writer::Writer;

/// Sessions looked at per pass; the rest wait for the next one.
const PER_PASS: u32 = 1000;

fn ended(clock: &dyn Clock, s: &Session) -> NewEntry {
    NewEntry {
        actor: Actor {
            kind: ActorType::User,
            id: s.email.clone(),
        },
        submitted_by: SubmittedBy::service(),
        ..NewEntry::by_system(
            clock.now(),
            "session.ended",
            Resource::member(&s.email),
            json!({"member": s.email, "reason": "expired", "expired_at": s.expires_at, "method": s.origin.method.as_str()}),
        )
    }
}

/// One pass: ends the expired sessions there are (up to a limit) and
/// returns how many this call ended.
pub async fn end_expired(store: &dyn Store, writer: &Writer, clock: &dyn Clock) -> Result<usize, StoreError> {
    let mut count = 0;
    for s in store.expired_sessions(clock.now(), PER_PASS).await? {
        let orgs = store.memberships(&s.email).await?;
        let Some(((first, _), others)) = orgs.split_first() else {
            store.delete_session(&s.token_hash).await?;
            continue;
        };
        let end = AppendRequest {
            org_id: first.id,
            changes: vec![Change::EndSession {
                token_hash: s.token_hash,
            }],
            entries: vec![ended(clock, &s)],
        };
        match writer.append(end).await {
            Ok(_) => count += 1,
            // Another replica ended it first, and recorded it.
            Err(StoreError::Rejected { .. }) => continue,
            Err(e) => return Err(e),
        }
        for (org, _) in others {
            writer
                .append(AppendRequest::entries(org.id, vec![ended(clock, &s)]))
                .await?;
        }
    }
    Ok(count)
}
