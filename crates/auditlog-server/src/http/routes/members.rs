//! Members and roles: `GET/POST /v1/orgs/{org}/members`,
//! `PATCH/DELETE …/members/{email}`, `POST …/members/{email}/password-reset`.
//!
//! Adding a member issues an invitation; nothing here sets, changes or
//! reveals a credential, and the answer is the same whether the person has
//! an account or not.

use auditlog_domain::OrgId;
use auditlog_domain::Role;
use auditlog_domain::change::Change;
use auditlog_domain::entry::Resource;
use auditlog_domain::invitation::{self, Invitation, InvitationKind};
use auditlog_domain::member::Member;
use auditlog_domain::member::normalise_email;
use auditlog_domain::permissions::Action;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::auth::{Credential, Principal};
use crate::http::body;
use crate::http::error::ApiError;
use crate::http::recorder::commit;
use crate::http::routes::invitations::Issued;
use crate::http::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Members {
    members: Vec<Member>,
}

/// The people of the organization and their roles.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/members",
    operation_id = "list_members",
    tag = "members",
    params(crate::http::responses::OrgPath),
    responses(
        (status = 200, description = "The members.", body = Members),
        crate::http::responses::Denied,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub async fn list(State(state): State<AppState>, principal: Principal) -> Result<Json<Members>, ApiError> {
    principal.authorize(Action::ViewMembers)?;
    let members = state.store.members(principal.org.id).await?;
    Ok(Json(Members { members }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"email": "li.wei@acme.com", "role": "admin"})))]
pub struct NewMember {
    #[schema(format = Email)]
    email: String,
    role: Role,
    /// Refused: adding a member never sets a credential. The person sets
    /// their own password with the invitation.
    #[schema(value_type = Option<String>, deprecated)]
    password: Option<serde::de::IgnoredAny>,
}

/// A member as changed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberChanged {
    email: String,
    role: Role,
}

/// An invitation as issued: the same answer whether the person has an
/// account already or not.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Invited {
    pub(crate) email: String,
    pub(crate) role: Role,
    pub(crate) invitation: Issued,
}

/// Invites a person with a role; only owners invite owners. The person
/// becomes a member when they accept the invitation (`POST
/// /v1/invitations/accept`), signed in as themselves or by creating their
/// account with a password of their own: pass the token or the link on.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/members",
    operation_id = "add_member",
    tag = "members",
    params(crate::http::responses::OrgPath),
    request_body = NewMember,
    responses(
        (status = 201, description = "Invited.", body = Invited),
        crate::http::responses::CreateRefused,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn add(
    State(state): State<AppState>,
    principal: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Invited>), ApiError> {
    let req: NewMember = body::parse(raw, state.config.max_body_bytes)?;
    principal.authorize(Action::AddMember { role: req.role })?;
    if req.password.is_some() {
        return Err(ApiError::invalid(
            "password",
            "password_not_accepted",
            "adding a member never sets a password: the person sets their own with the invitation this returns",
        ));
    }
    let invited = invite(&state, &principal, &req.email, req.role).await?;
    Ok((StatusCode::CREATED, Json(invited)))
}

/// Invites `email` with `role`, recorded as `organization.member_invited`:
/// the API's and the console's way in.
pub async fn invite(state: &AppState, principal: &Principal, email: &str, role: Role) -> Result<Invited, ApiError> {
    principal.authorize(Action::AddMember { role })?;
    let email = normalise_email(email).map_err(|e| ApiError::invalid("email", "invalid_email", e.to_string()))?;
    if state.store.member(principal.org.id, &email).await?.is_some() {
        return Err(ApiError::Conflict {
            code: "conflict",
            message: format!("member {email} already exists"),
        });
    }
    let now = state.clock.now();
    let (token, inv) = Invitation::issue(
        principal.org.id,
        InvitationKind::Join,
        &email,
        role,
        &principal.actor().id,
        now,
        state.config.invitation_ttl_ms,
    );
    let entry = principal.entry(
        now,
        "organization.member_invited",
        Resource::member(&email),
        json!({"member": email, "role": role, "expires_at": inv.expires_at}),
    );
    let invitation = Issued::new(token, &inv);
    commit(state, principal, vec![Change::Invite(inv)], vec![entry]).await?;
    Ok(Invited {
        email,
        role,
        invitation,
    })
}

async fn existing(state: &AppState, principal: &Principal, email: &str) -> Result<(String, Role), ApiError> {
    let email = normalise_email(email).map_err(|_| ApiError::NotFound(format!("no member {email:?}")))?;
    let member = state
        .store
        .member(principal.org.id, &email)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no member {email:?} in this organization")))?;
    Ok((email, member.role))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"role": "viewer"})))]
pub struct RolePatch {
    role: Role,
}

/// Changes a member's role; the last owner stays an owner.
#[utoipa::path(
    patch,
    path = "/v1/orgs/{org}/members/{email}",
    operation_id = "change_member_role",
    tag = "members",
    params(
        crate::http::responses::OrgPath,
        ("email" = String, Path, description = "The member's email."),
    ),
    request_body = RolePatch,
    responses(
        (status = 200, description = "The member's role now.", body = MemberChanged),
        (status = 400, response = crate::http::responses::BadRequest),
        (status = 401, response = crate::http::responses::Unauthenticated),
        (status = 403, response = crate::http::responses::Forbidden),
        (status = 404, response = crate::http::responses::NotFound),
        (status = 409, response = crate::http::responses::Conflict),
        (status = 413, response = crate::http::responses::PayloadTooLarge),
        (status = 500, response = crate::http::responses::Internal),
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn change_role(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, email)): Path<(String, String)>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<MemberChanged>, ApiError> {
    let req: RolePatch = body::parse(raw, state.config.max_body_bytes)?;
    Ok(Json(set_role(&state, &principal, &email, req.role).await?))
}

/// Gives member `email` the role `to`, recorded as
/// `organization.member_role_changed` unless it is theirs already.
pub async fn set_role(
    state: &AppState,
    principal: &Principal,
    email: &str,
    to: Role,
) -> Result<MemberChanged, ApiError> {
    let (email, from) = existing(state, principal, email).await?;
    principal.authorize(Action::ChangeRole { from, to })?;
    if from != to {
        let entry = principal.entry(
            state.clock.now(),
            "organization.member_role_changed",
            Resource::member(&email),
            json!({"member": email, "old_role": from, "new_role": to}),
        );
        let change = Change::SetRole {
            email: email.clone(),
            from,
            to,
        };
        commit(state, principal, vec![change], vec![entry]).await?;
    }
    Ok(MemberChanged { email, role: to })
}

/// Removes a member; the last owner stays.
#[utoipa::path(
    delete,
    path = "/v1/orgs/{org}/members/{email}",
    operation_id = "remove_member",
    tag = "members",
    params(
        crate::http::responses::OrgPath,
        ("email" = String, Path, description = "The member's email."),
    ),
    responses(
        (status = 204, description = "Removed."),
        crate::http::responses::ActionRefused,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, email)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    remove_member(&state, &principal, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes member `email`, recorded as `organization.member_removed`, with
/// `session.ended` when that cuts off sessions of theirs.
pub async fn remove_member(state: &AppState, principal: &Principal, email: &str) -> Result<(), ApiError> {
    let (email, role) = existing(state, principal, email).await?;
    principal.authorize(Action::RemoveMember { role })?;
    let now = state.clock.now();
    let mut entries = vec![principal.entry(
        now,
        "organization.member_removed",
        Resource::member(&email),
        json!({"member": email, "role": role}),
    )];
    // Their sessions stop reaching this organization with it.
    let live = state.store.live_sessions(&email, now).await?.len();
    if live > 0 {
        entries.push(principal.entry(
            now,
            "session.ended",
            Resource::member(&email),
            json!({"member": email, "reason": "member_removed", "sessions": live}),
        ));
    }
    commit(state, principal, vec![Change::RemoveMember { email, role }], entries).await?;
    Ok(())
}

/// A reset as issued to the owner, to pass on to the member.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ResetIssued {
    email: String,
    reset: Issued,
}

/// Clears a member's password, ends every session of theirs and issues a
/// single-use reset token to pass on to them. Owners only, signed in, and
/// only for a person all of whose organizations they own.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/members/{email}/password-reset",
    operation_id = "reset_member_password",
    tag = "members",
    params(
        crate::http::responses::OrgPath,
        ("email" = String, Path, description = "The member's email."),
    ),
    responses(
        (status = 201, description = "Reset; the token is shown only now.", body = ResetIssued),
        crate::http::responses::ActionRefused,
    ),
    // A key authenticates, and is then refused: only a person may reset.
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn reset_password(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, email)): Path<(String, String)>,
) -> Result<(StatusCode, Json<ResetIssued>), ApiError> {
    principal.authorize(Action::ForceReset)?;
    let Credential::Session(session) = &principal.credential else {
        return Err(ApiError::forbidden(
            "person_required",
            "only an owner signed in as a person can reset a password, never an API key",
        ));
    };
    let (email, role) = existing(&state, &principal, &email).await?;
    let theirs: Vec<OrgId> = state
        .store
        .memberships(&email)
        .await?
        .iter()
        .map(|(o, _)| o.id)
        .collect();
    let mine = state.store.memberships(&session.email).await?;
    invitation::may_force_reset(&email, &theirs, |org| {
        mine.iter().any(|(o, r)| o.id == org && *r == Role::Owner)
    })
    .map_err(|e| ApiError::forbidden("not_your_account", e.to_string()))?;
    let now = state.clock.now();
    let (token, inv) = Invitation::issue(
        principal.org.id,
        InvitationKind::PasswordReset,
        &email,
        role,
        &session.email,
        now,
        state.config.invitation_ttl_ms,
    );
    let entry = principal.entry(
        now,
        "organization.member_password_reset",
        Resource::member(&email),
        json!({"member": email}),
    );
    let reset = Issued::new(token, &inv);
    let change = Change::ForceReset {
        memberships: theirs,
        invitation: inv,
    };
    commit(&state, &principal, vec![change], vec![entry]).await?;
    Ok((StatusCode::CREATED, Json(ResetIssued { email, reset })))
}
