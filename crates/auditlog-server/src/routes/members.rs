//! Members and roles: `GET/POST /v1/orgs/{org}/members`,
//! `PATCH/DELETE …/members/{email}`.

use auditlog_domain::change::Change;
use auditlog_domain::entry::Resource;
use auditlog_domain::member::Member;
use auditlog_domain::member::normalise_email;
use auditlog_domain::password;
use auditlog_domain::permissions::Action;
use auditlog_domain::{Role, Timestamp};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;
use crate::auth::Principal;
use crate::body;
use crate::error::ApiError;
use crate::recorder::{commit, record_change};

fn member_resource(email: &str) -> Resource {
    Resource {
        kind: "member".into(),
        id: email.to_owned(),
        name: None,
    }
}

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
    params(("org" = String, Path, description = "The organization's slug.")),
    responses(
        (status = 200, description = "The members.", body = Members),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 500, response = crate::openapi::Internal),
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
    /// A first password for a person who has no account yet.
    #[schema(format = Password)]
    password: Option<String>,
}

/// A member as added or changed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberChanged {
    email: String,
    role: Role,
    /// When added; absent after a change of role.
    #[serde(skip_serializing_if = "Option::is_none")]
    added_at: Option<Timestamp>,
}

/// Adds a person with a role; only owners add owners.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/members",
    operation_id = "add_member",
    tag = "members",
    params(("org" = String, Path, description = "The organization's slug.")),
    request_body = NewMember,
    responses(
        (status = 201, description = "Added.", body = MemberChanged),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 409, response = crate::openapi::Conflict),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 422, response = crate::openapi::Unprocessable),
        (status = 500, response = crate::openapi::Internal),
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn add(
    State(state): State<AppState>,
    principal: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<MemberChanged>), ApiError> {
    let req: NewMember = body::parse(raw, state.config.max_body_bytes)?;
    principal.authorize(Action::AddMember { role: req.role })?;
    let email = normalise_email(&req.email).map_err(|e| ApiError::invalid("email", "invalid_email", e.to_string()))?;
    let password_hash = match req.password {
        Some(p) => Some(
            tokio::task::spawn_blocking(move || password::hash(p.as_str()))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .map_err(|e| ApiError::invalid("password", "weak_password", e.to_string()))?,
        ),
        None => None,
    };
    let now = state.clock.now();
    let entry = principal.entry(
        now,
        "organization.member_added",
        member_resource(&email),
        json!({"member": email, "role": req.role}),
    );
    commit(
        &state,
        &principal,
        vec![Change::AddMember {
            email: email.clone(),
            role: req.role,
            password_hash,
        }],
        vec![entry],
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(MemberChanged {
            email,
            role: req.role,
            added_at: Some(now),
        }),
    ))
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
        ("org" = String, Path, description = "The organization's slug."),
        ("email" = String, Path, description = "The member's email."),
    ),
    request_body = RolePatch,
    responses(
        (status = 200, description = "The member's role now.", body = MemberChanged),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 409, response = crate::openapi::Conflict),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 500, response = crate::openapi::Internal),
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
    let (email, from) = existing(&state, &principal, &email).await?;
    principal.authorize(Action::ChangeRole { from, to: req.role })?;
    if from != req.role {
        let entry = principal.entry(
            state.clock.now(),
            "organization.member_role_changed",
            member_resource(&email),
            json!({"member": email, "old_role": from, "new_role": req.role}),
        );
        let change = Change::SetRole {
            email: email.clone(),
            from,
            to: req.role,
        };
        commit(&state, &principal, vec![change], vec![entry]).await?;
    }
    Ok(Json(MemberChanged {
        email,
        role: req.role,
        added_at: None,
    }))
}

/// Removes a member; the last owner stays.
#[utoipa::path(
    delete,
    path = "/v1/orgs/{org}/members/{email}",
    operation_id = "remove_member",
    tag = "members",
    params(
        ("org" = String, Path, description = "The organization's slug."),
        ("email" = String, Path, description = "The member's email."),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 409, response = crate::openapi::Conflict),
        (status = 500, response = crate::openapi::Internal),
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, email)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (email, role) = existing(&state, &principal, &email).await?;
    principal.authorize(Action::RemoveMember { role })?;
    let (what, details) = (member_resource(&email), json!({"member": email, "role": role}));
    let change = Change::RemoveMember { email, role };
    record_change(&state, &principal, change, "organization.member_removed", what, details).await?;
    Ok(StatusCode::NO_CONTENT)
}
