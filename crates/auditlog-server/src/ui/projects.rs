//! Platform → Projects: the organization's projects; creating, renaming
//! and (after a confirmation) deleting one.

use auditlog_domain::member::Project;
use auditlog_domain::permissions::Action;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::Failure;
use super::console::{OrgPage, Outcome, disabled_because, list_table, trail_href};
use super::extract::Acting;
use super::layout::date;
use crate::http::routes::projects::{create_project, delete_project, rename_project};
use crate::http::state::AppState;

fn list_href(slug: &str) -> String {
    format!("/orgs/{slug}/projects")
}

/// `GET /orgs/{org}/projects`
pub async fn page(State(state): State<AppState>, page: OrgPage) -> Result<Response, Failure> {
    page.require(&Action::ViewProjects, "the projects")?;
    render(&state, &page, None).await
}

async fn render(state: &AppState, page: &OrgPage, said: Option<(StatusCode, Outcome)>) -> Result<Response, Failure> {
    let (status, outcome) = said.map_or((StatusCode::OK, None), |(s, o)| (s, Some(o)));
    let projects = state.store.projects(page.org.id).await.map_err(|e| page.failed(e))?;
    let manage = page.may(&Action::ManageProjects);
    let main = html! {
        div.heading { div { h1 { "Projects" } p.muted { (projects.len()) " projects in " (page.org.name) "." } } }
        @if let Some(o) = &outcome { (o.show()) }
        @match &manage {
            Ok(()) => (create_form(page)),
            Err(reason) => p.muted #create-project { "Changing projects: " (disabled_because(reason)) },
        }
        (list_table(
            "projects",
            "Projects",
            &["Name", "Id", "Created", "Actions"],
            projects.iter().map(|p| row(page, p, manage.is_ok())).collect(),
            "No projects yet.",
        ))
    };
    Ok(page.render(status, "Projects", "projects", main))
}

fn create_form(page: &OrgPage) -> Markup {
    html! {
        form.inline-form #create-project method="post" action=(list_href(page.slug())) {
            h2 { "Create a project" }
            (page.csrf_field())
            div { label for="project-name" { "Name" } input #project-name name="name" required maxlength="200"; }
            button.primary type="submit" { "Create project" }
        }
    }
}

fn row(page: &OrgPage, p: &Project, manage: bool) -> Markup {
    let base = format!("{}/{}", list_href(page.slug()), p.id);
    let field = format!("name-{}", p.id);
    html! {
        tr {
            th scope="row" {
                @if manage {
                    form.rename-form method="post" action=(format!("{base}/rename")) {
                        (page.csrf_field())
                        label.visually-hidden for=(field) { "Name of project " (p.id) }
                        input id=(field) name="name" value=(p.name) required maxlength="200";
                        " " button type="submit" { "Rename" span.visually-hidden { " " (p.id) } }
                    }
                } @else {
                    (p.name)
                }
            }
            td { code { (p.id) } }
            td { (date(p.created_at)) }
            td.actions {
                @if manage {
                    a.button.danger href=(format!("{base}/delete")) { "Delete" span.visually-hidden { " " (p.name) } }
                }
                @if page.may(&Action::ReadAudit).is_ok() {
                    " " a href=(trail_href(page.slug(), "project", &p.id)) { "Audit trail" span.visually-hidden { " of " (p.name) } }
                }
            }
        }
    }
}

/// `POST /orgs/{org}/projects`
pub async fn create(State(state): State<AppState>, Acting { page, form, ctx }: Acting) -> Result<Response, Failure> {
    let result = create_project(&state, &page.principal(ctx), form.get("name"))
        .await
        .map(|p| html! { p { "Created " strong { (p.name) } " (" code { (p.id) } ")." } });
    render(&state, &page, Some(page.outcome(result)?)).await
}

/// `POST /orgs/{org}/projects/{id}/rename`
pub async fn rename(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Acting { page, form, ctx }: Acting,
) -> Result<Response, Failure> {
    let result = rename_project(&state, &page.principal(ctx), &id, form.get("name"))
        .await
        .map(|p| html! { p { "Project " code { (p.id) } " is named " strong { (p.name) } "." } });
    render(&state, &page, Some(page.outcome(result)?)).await
}

/// `GET /orgs/{org}/projects/{id}/delete`: are you sure?
pub async fn confirm_delete(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    page: OrgPage,
) -> Result<Response, Failure> {
    page.require(&Action::ManageProjects, "deleting projects")?;
    let list = list_href(page.slug());
    let missing = format!("There is no project {id:?} in this organization.");
    let project = page.found(state.store.project(page.org.id, &id).await, missing, &list)?;
    let text = html! { "The project " code { (project.id) } " goes; its entries in the log stay." };
    let action = format!("{list}/{}/delete", project.id);
    let title = format!("Delete {}?", project.name);
    Ok(page.confirmation(
        "projects",
        &title,
        text,
        (&action, &format!("Delete {}", project.name)),
        &list,
    ))
}

/// `POST /orgs/{org}/projects/{id}/delete`
pub async fn delete(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Acting { page, form: _, ctx }: Acting,
) -> Result<Response, Failure> {
    let result = delete_project(&state, &page.principal(ctx), &id)
        .await
        .map(|()| html! { p { "Deleted project " code { (id) } "." } });
    render(&state, &page, Some(page.outcome(result)?)).await
}
