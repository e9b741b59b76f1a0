//! Platform → Projects: the organization's projects; creating, renaming
//! and (after a confirmation) deleting one.

use auditlog_domain::Timestamp;
use auditlog_domain::member::Project;
use auditlog_domain::permissions::Action;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use maud::{Markup, html};

use super::console::{OrgPage, Outcome, PostedForm, disabled_because, outcome, trail_href};
use super::{Failure, request_id};
use crate::http::context::RequestContext;
use crate::http::routes::projects::{create_project, delete_project, rename_project};
use crate::http::state::AppState;

fn list_href(slug: &str) -> String {
    format!("/orgs/{slug}/projects")
}

/// `GET /orgs/{org}/projects`
pub async fn page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Failure> {
    let page = OrgPage::load(&state, &headers, &uri, &slug).await?;
    page.require(&Action::ViewProjects, "the projects")?;
    render(&state, &page, &headers, StatusCode::OK, None).await
}

async fn render(
    state: &AppState,
    page: &OrgPage,
    headers: &HeaderMap,
    status: StatusCode,
    outcome: Option<Outcome>,
) -> Result<Response, Failure> {
    let projects = state
        .store
        .projects(page.org.id)
        .await
        .map_err(|e| Failure::Internal(e.into(), request_id(headers)))?;
    let manage = page.may(&Action::ManageProjects);
    let main = html! {
        div.heading { div { h1 { "Projects" } p.muted { (projects.len()) " projects in " (page.org.name) "." } } }
        @if let Some(o) = &outcome { (o.show()) }
        @match &manage {
            Ok(()) => (create_form(page)),
            Err(reason) => p.muted #create-project { "Changing projects: " (disabled_because(reason)) },
        }
        @if projects.is_empty() {
            p.empty { "No projects yet." }
        } @else {
            div.table-scroll {
                table.list #projects {
                    caption.visually-hidden { "Projects" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Id" } th scope="col" { "Created" } th scope="col" { "Actions" } } }
                    tbody { @for p in &projects { (row(page, p, manage.is_ok())) } }
                }
            }
        }
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

fn date(t: Timestamp) -> Markup {
    let s = t.to_rfc3339();
    html! { time datetime=(s) title=(s) { (&s[..10]) } }
}

/// `POST /orgs/{org}/projects`
pub async fn create(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    ctx: RequestContext,
    body: Bytes,
) -> Result<Response, Failure> {
    let form = PostedForm::parse(&body);
    let page = OrgPage::acting(&state, &headers, &list_href(&slug), &slug, &form).await?;
    let result = create_project(&state, &page.principal(ctx), form.get("name"))
        .await
        .map(|p| html! { p { "Created " strong { (p.name) } " (" code { (p.id) } ")." } });
    let (status, shown) = outcome(result, &headers)?;
    render(&state, &page, &headers, status, Some(shown)).await
}

/// `POST /orgs/{org}/projects/{id}/rename`
pub async fn rename(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    ctx: RequestContext,
    body: Bytes,
) -> Result<Response, Failure> {
    let form = PostedForm::parse(&body);
    let page = OrgPage::acting(&state, &headers, &list_href(&slug), &slug, &form).await?;
    let result = rename_project(&state, &page.principal(ctx), &id, form.get("name"))
        .await
        .map(|p| html! { p { "Project " code { (p.id) } " is named " strong { (p.name) } "." } });
    let (status, shown) = outcome(result, &headers)?;
    render(&state, &page, &headers, status, Some(shown)).await
}

/// `GET /orgs/{org}/projects/{id}/delete`: are you sure?
pub async fn confirm_delete(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Failure> {
    let page = OrgPage::load(&state, &headers, &uri, &slug).await?;
    page.require(&Action::ManageProjects, "deleting projects")?;
    let project = state
        .store
        .project(page.org.id, &id)
        .await
        .map_err(|e| Failure::Internal(e.into(), request_id(&headers)))?;
    let Some(project) = project else {
        return Err(page.not_found(
            &format!("There is no project {id:?} in this organization."),
            &list_href(&slug),
        ));
    };
    let main = html! {
        section.message {
            h1 { "Delete " (project.name) "?" }
            p { "The project " code { (project.id) } " goes; its entries in the log stay." }
            form method="post" action=(format!("{}/{}/delete", list_href(&slug), project.id)) {
                (page.csrf_field())
                button.danger type="submit" { "Delete " (project.name) }
                " " a.button href=(list_href(&slug)) { "Cancel" }
            }
        }
    };
    Ok(page.render(StatusCode::OK, "Delete a project", "projects", main))
}

/// `POST /orgs/{org}/projects/{id}/delete`
pub async fn delete(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    ctx: RequestContext,
    body: Bytes,
) -> Result<Response, Failure> {
    let form = PostedForm::parse(&body);
    let page = OrgPage::acting(&state, &headers, &list_href(&slug), &slug, &form).await?;
    let result = delete_project(&state, &page.principal(ctx), &id)
        .await
        .map(|()| html! { p { "Deleted project " code { (id) } "." } });
    let (status, shown) = outcome(result, &headers)?;
    render(&state, &page, &headers, status, Some(shown)).await
}
