//! Projects: `GET/POST /v1/orgs/{org}/projects`, `PATCH/DELETE …/projects/{id}`.

use auditlog_domain::change::Change;
use auditlog_domain::entry::Resource;
use auditlog_domain::member::{Project, display_name};
use auditlog_domain::permissions::Action;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::auth::Principal;
use crate::http::body;
use crate::http::error::ApiError;
use crate::http::recorder::{commit, record_change};
use crate::http::state::AppState;

fn resource(p: &Project) -> Resource {
    Resource {
        kind: "project".into(),
        id: p.id.clone(),
        name: Some(p.name.clone()),
    }
}

fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..10)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("p_{tail}")
}

fn name(raw: &str) -> Result<String, ApiError> {
    display_name("name", raw, 200).map_err(|e| ApiError::invalid("name", "invalid_name", e.to_string()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Projects {
    projects: Vec<Project>,
}

/// The organization's projects.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/projects",
    operation_id = "list_projects",
    tag = "projects",
    params(crate::http::responses::OrgPath),
    responses(
        (status = 200, description = "The projects.", body = Projects),
        crate::http::responses::Denied,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub async fn list(State(state): State<AppState>, principal: Principal) -> Result<Json<Projects>, ApiError> {
    principal.authorize(Action::ViewProjects)?;
    let projects = state.store.projects(principal.org.id).await?;
    Ok(Json(Projects { projects }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Production"})))]
pub struct ProjectInput {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

/// Creates a project.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/projects",
    operation_id = "create_project",
    tag = "projects",
    params(crate::http::responses::OrgPath),
    request_body = ProjectInput,
    responses(
        (status = 201, description = "Created.", body = Project),
        crate::http::responses::CreateRefused,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Project>), ApiError> {
    let req: ProjectInput = body::parse(raw, state.config.max_body_bytes)?;
    Ok((
        StatusCode::CREATED,
        Json(create_project(&state, &principal, &req.name).await?),
    ))
}

/// Creates a project named `raw_name`, recorded as `project.created`.
pub async fn create_project(state: &AppState, principal: &Principal, raw_name: &str) -> Result<Project, ApiError> {
    principal.authorize(Action::ManageProjects)?;
    let now = state.clock.now();
    let project = Project {
        id: new_id(),
        name: name(raw_name)?,
        created_at: now,
    };
    let entry = principal.entry(
        now,
        "project.created",
        resource(&project),
        json!({"name": project.name}),
    );
    commit(
        state,
        principal,
        vec![Change::CreateProject(project.clone())],
        vec![entry],
    )
    .await?;
    Ok(project)
}

async fn existing(state: &AppState, principal: &Principal, id: &str) -> Result<Project, ApiError> {
    state
        .store
        .project(principal.org.id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no project {id:?} in this organization")))
}

/// Renames a project.
#[utoipa::path(
    patch,
    path = "/v1/orgs/{org}/projects/{id}",
    operation_id = "rename_project",
    tag = "projects",
    params(
        crate::http::responses::OrgPath,
        ("id" = String, Path, description = "The project's id, such as `p_1a2b3c4d5e`."),
    ),
    request_body = ProjectInput,
    responses(
        (status = 200, description = "The project now.", body = Project),
        crate::http::responses::UpdateRefused,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn rename(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Project>, ApiError> {
    let req: ProjectInput = body::parse(raw, state.config.max_body_bytes)?;
    Ok(Json(rename_project(&state, &principal, &id, &req.name).await?))
}

/// Renames project `id`, recorded as `project.renamed` unless the name is
/// the same.
pub async fn rename_project(
    state: &AppState,
    principal: &Principal,
    id: &str,
    raw_name: &str,
) -> Result<Project, ApiError> {
    principal.authorize(Action::ManageProjects)?;
    let mut project = existing(state, principal, id).await?;
    let new = name(raw_name)?;
    if new != project.name {
        let entry = principal.entry(
            state.clock.now(),
            "project.renamed",
            Resource {
                name: Some(new.clone()),
                ..resource(&project)
            },
            json!({"old_name": project.name, "new_name": new}),
        );
        let change = Change::RenameProject {
            id: project.id.clone(),
            old: project.name.clone(),
            new: new.clone(),
        };
        commit(state, principal, vec![change], vec![entry]).await?;
        project.name = new;
    }
    Ok(project)
}

/// Deletes a project.
#[utoipa::path(
    delete,
    path = "/v1/orgs/{org}/projects/{id}",
    operation_id = "delete_project",
    tag = "projects",
    params(
        crate::http::responses::OrgPath,
        ("id" = String, Path, description = "The project's id."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        crate::http::responses::ActionRefused,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    delete_project(&state, &principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes project `id`, recorded as `project.deleted`.
pub async fn delete_project(state: &AppState, principal: &Principal, id: &str) -> Result<(), ApiError> {
    principal.authorize(Action::ManageProjects)?;
    let project = existing(state, principal, id).await?;
    let (what, details) = (resource(&project), json!({"name": project.name}));
    let change = Change::DeleteProject { id: project.id };
    record_change(state, principal, change, "project.deleted", what, details).await?;
    Ok(())
}
