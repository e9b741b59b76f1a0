//! Erasing a person's personal data: `POST /v1/orgs/{org}/erasures`.
//!
//! The store destroys the person's key, their sealed values and their
//! blind-index tokens in the same transaction as the
//! `audit_log.subject_erased` entry that records it (see the domain's
//! `personal` module): from that commit on, every read, export and
//! delivery shows their values erased, and every proof still holds.

use auditlog_domain::Timestamp;
use auditlog_domain::permissions::Action;
use auditlog_domain::personal::Subject;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::http::auth::Principal;
use crate::http::body;
use crate::http::error::ApiError;
use crate::http::state::AppState;

use crate::erasure::ERASED_EVENT;

/// Longer than any email (RFC 5321 caps a path at 256 octets).
const MAX_SUBJECT_LEN: usize = 320;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"subject": "bob@acme.com"})))]
pub struct NewErasure {
    /// The person, as the log names them: an email (compared as accounts
    /// are: trimmed, lower-cased), or another actor id of a person.
    subject: String,
}

/// An erasure as recorded.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Erasure {
    /// The person's keyed pseudonym, as the log records it.
    subject: String,
    /// How many entries held values of theirs (0 is recorded too).
    entries: u64,
    /// The `audit_log.subject_erased` entry.
    entry_id: Uuid,
    seq: i64,
    erased_at: Timestamp,
}

/// Erases a person's personal data from the organization's log: their
/// email, IP addresses and user agents, wherever the log holds them, show
/// as `[erased]` from now on, with `"erased": true` beside each in JSON,
/// and no filter finds them by their email. Entries themselves stay, and
/// every checkpoint and proof still verifies. Owners only, signed in.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/erasures",
    operation_id = "erase_subject",
    tag = "organization",
    params(crate::http::responses::OrgPath),
    request_body = NewErasure,
    responses(
        (status = 201, description = "Erased and recorded.", body = Erasure),
        crate::http::responses::CreateRefused,
    ),
    // A key authenticates, and is refused: no key counts as an owner.
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn erase(
    State(state): State<AppState>,
    principal: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Erasure>), ApiError> {
    let req: NewErasure = body::parse(raw, state.config.max_body_bytes)?;
    principal.authorize(Action::EraseSubject)?;
    let subject = parse_subject(&req.subject)?;
    Ok((
        StatusCode::CREATED,
        Json(erase_subject(&state, &principal, &subject).await?),
    ))
}

fn parse_subject(text: &str) -> Result<Subject, ApiError> {
    let bad = |code, message: &str| Err(ApiError::invalid("subject", code, message));
    if text.len() > MAX_SUBJECT_LEN {
        return bad("too_long", "subject is longer than any email (320 bytes)");
    }
    if text.chars().any(char::is_control) {
        return bad("control_character", "subject must not hold control characters");
    }
    match Subject::new(text) {
        Some(s) => Ok(s),
        None => bad("required", "subject names nobody: give the person's email"),
    }
}

/// Erases `subject` and records it, as the signed-in owner.
async fn erase_subject(state: &AppState, principal: &Principal, subject: &Subject) -> Result<Erasure, ApiError> {
    let now = state.clock.now();
    let erased = crate::erasure::erase(
        state.store.as_ref(),
        &state.personal,
        principal.org.id,
        subject,
        |resource, details| principal.entry(now, ERASED_EVENT, resource, details),
        |request| async move { state.writer.append(request).await },
    )
    .await?;
    Ok(Erasure {
        subject: erased.subject,
        entries: erased.entries,
        entry_id: erased.entry.id,
        seq: erased.entry.seq,
        erased_at: erased.entry.received_at,
    })
}
