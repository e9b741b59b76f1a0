//! Sign-ins as the log records them (`session.*`), for passwords and single
//! sign-on alike, and the rule on which sessions a password may start where
//! organizations enforce single sign-on.
//!
//! A person belongs to several organizations and each keeps its own log, so
//! a sign-in is recorded in every organization it admits the person to, and
//! a failure at a known account in every organization of that account.
//! Recording a failure never hides the failure itself: if the log cannot
//! take it, that is logged and the person still gets the real answer.

use auditlog_domain::entry::{Actor, ActorType, Resource};
use auditlog_domain::permissions::Authority;
use auditlog_domain::session::Session;
use auditlog_domain::sso::{self, SessionOrigin, SignInMethod};
use auditlog_domain::store::AppendRequest;
use auditlog_domain::{NewEntry, Org, Role, SubmittedBy};
use serde_json::{Value, json};

use crate::http::auth::{Credential, Principal};
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// The person of `session` acting on `org` as `role`.
pub fn person(org: &Org, role: Role, session: &Session, ctx: &RequestContext) -> Principal {
    Principal {
        org: org.clone(),
        authority: Authority::User(role),
        credential: Credential::Session(session.clone()),
        ctx: ctx.clone(),
    }
}

/// `session.signed_in` in each of `orgs` the session admits the person to.
pub async fn signed_in(
    state: &AppState,
    ctx: &RequestContext,
    session: &Session,
    orgs: &[(Org, Role)],
) -> Result<(), ApiError> {
    let now = state.clock.now();
    for (org, role) in orgs.iter().filter(|(o, r)| sso::admits(o, *r, session.origin)) {
        let entry = person(org, *role, session, ctx).entry(
            now,
            "session.signed_in",
            Resource::member(&session.email),
            json!({"member": session.email, "method": session.origin.method.as_str()}),
        );
        append(state, org, vec![entry]).await?;
    }
    Ok(())
}

/// `session.signed_out` in each organization of the person.
pub async fn signed_out(state: &AppState, ctx: &RequestContext, session: &Session) -> Result<(), ApiError> {
    let now = state.clock.now();
    for (org, role) in state.store.memberships(&session.email).await? {
        let entry = person(&org, role, session, ctx).entry(
            now,
            "session.signed_out",
            Resource::member(&session.email),
            json!({"member": session.email}),
        );
        append(state, &org, vec![entry]).await?;
    }
    Ok(())
}

/// `session.sign_in_failed` in each of `orgs`, done by `email` (an account
/// that exists, or a person a provider vouched for; empty for someone
/// unknown); `extra` adds details (the provider's error, ...).
pub async fn failed(
    state: &AppState,
    ctx: &RequestContext,
    orgs: &[Org],
    email: &str,
    method: SignInMethod,
    reason: &str,
    extra: Value,
) {
    let mut details = json!({"method": method.as_str(), "reason": reason});
    if let (Some(d), Some(more)) = (details.as_object_mut(), extra.as_object()) {
        d.extend(more.clone());
    }
    let who = if email.is_empty() { "unknown" } else { email };
    for org in orgs {
        let entry = NewEntry {
            timestamp: state.clock.now(),
            actor: Actor {
                kind: ActorType::User,
                id: who.to_owned(),
            },
            event: "session.sign_in_failed".into(),
            resource: Resource::member(who),
            details: details.as_object().cloned().unwrap_or_default(),
            ip_address: ctx.ip,
            user_agent: ctx.user_agent.clone(),
            request_id: ctx.request_id.clone(),
            idempotency_key: None,
            submitted_by: SubmittedBy::service(),
        };
        if let Err(e) = append(state, org, vec![entry]).await {
            tracing::error!(error = %e, org = %org.slug, reason, "a failed sign-in could not be recorded");
        }
    }
}

async fn append(state: &AppState, org: &Org, entries: Vec<NewEntry>) -> Result<(), ApiError> {
    state
        .writer
        .append(AppendRequest {
            org_id: org.id,
            changes: Vec::new(),
            entries,
        })
        .await?;
    Ok(())
}

/// How a password sign-in may begin for a person with `orgs`: plainly,
/// or, asked for, as an owner's break-glass where single sign-on is
/// enforced. Refused when every organization of the person enforces it.
pub fn password_origin(orgs: &[(Org, Role)], break_glass: bool) -> Result<SessionOrigin, ApiError> {
    let enforcing: Vec<&(Org, Role)> = orgs
        .iter()
        .filter(|(o, _)| o.sso.as_ref().is_some_and(|s| s.enforced))
        .collect();
    if break_glass {
        return if enforcing.iter().any(|(_, r)| *r == Role::Owner) {
            Ok(SessionOrigin::BREAK_GLASS)
        } else {
            Err(ApiError::forbidden(
                "break_glass_not_allowed",
                "break-glass sign-in is for owners of an organization that enforces single sign-on",
            ))
        };
    }
    if !orgs.is_empty() && enforcing.len() == orgs.len() {
        let names: Vec<&str> = enforcing.iter().map(|(o, _)| o.slug.as_str()).collect();
        return Err(ApiError::forbidden(
            "sso_required",
            format!(
                "{} requires single sign-on: sign in through your identity provider from the sign-in page",
                names.join(", ")
            ),
        ));
    }
    Ok(SessionOrigin::PASSWORD)
}
