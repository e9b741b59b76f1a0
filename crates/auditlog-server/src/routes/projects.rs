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
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Principal;
use crate::body;
use crate::error::ApiError;
use crate::recorder::{commit, record_change};

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

pub async fn list(State(state): State<AppState>, principal: Principal) -> Result<Json<Value>, ApiError> {
    principal.authorize(Action::ViewProjects)?;
    Ok(Json(
        json!({ "projects": state.store.projects(principal.org.id).await? }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectInput {
    name: String,
}

#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: ProjectInput = body::parse(raw, state.config.max_body_bytes)?;
    principal.authorize(Action::ManageProjects)?;
    let now = state.clock.now();
    let project = Project {
        id: new_id(),
        name: name(&req.name)?,
        created_at: now,
    };
    let entry = principal.entry(
        now,
        "project.created",
        resource(&project),
        json!({"name": project.name}),
    );
    commit(
        &state,
        &principal,
        vec![Change::CreateProject(project.clone())],
        vec![entry],
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!(project))))
}

async fn existing(state: &AppState, principal: &Principal, id: &str) -> Result<Project, ApiError> {
    state
        .store
        .project(principal.org.id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no project {id:?} in this organization")))
}

#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn rename(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let req: ProjectInput = body::parse(raw, state.config.max_body_bytes)?;
    principal.authorize(Action::ManageProjects)?;
    let mut project = existing(&state, &principal, &id).await?;
    let new = name(&req.name)?;
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
        commit(&state, &principal, vec![change], vec![entry]).await?;
        project.name = new;
    }
    Ok(Json(json!(project)))
}

#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    principal.authorize(Action::ManageProjects)?;
    let project = existing(&state, &principal, &id).await?;
    let (what, details) = (resource(&project), json!({"name": project.name}));
    let change = Change::DeleteProject { id: project.id };
    record_change(&state, &principal, change, "project.deleted", what, details).await?;
    Ok(StatusCode::NO_CONTENT)
}
