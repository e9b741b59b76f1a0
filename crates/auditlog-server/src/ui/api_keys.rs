//! Platform → API keys: the organization's keys (prefix, name, scopes, who
//! created them, last use), creating one with the scopes the viewer holds
//! (its secret shown once), and revoking one after a confirmation.

use auditlog_domain::api_key::{KeyPrefix, Scope};
use auditlog_domain::permissions::Action;
use auditlog_domain::store::ApiKeyRecord;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::Failure;
use super::console::{OrgPage, Outcome, disabled_because, list_table, trail_href};
use super::extract::Acting;
use super::layout::date;
use crate::http::error::ApiError;
use crate::http::routes::api_keys::{CreatedKey, create_key, revoke_key};
use crate::http::state::AppState;

const SCOPES: [(Scope, &str); 3] = [
    (Scope::AuditWrite, "record entries through the ingest API"),
    (Scope::AuditRead, "read, export and verify the log"),
    (Scope::Admin, "manage the organization as an admin would"),
];

const COLUMNS: [&str; 6] = ["Prefix", "Name", "Scopes", "Created", "Last used", "Actions"];

fn list_href(slug: &str) -> String {
    format!("/orgs/{slug}/api-keys")
}

/// `GET /orgs/{org}/api-keys`
pub async fn page(State(state): State<AppState>, page: OrgPage) -> Result<Response, Failure> {
    page.require(&Action::ViewKeys, "the API keys")?;
    render(&state, &page, None).await
}

async fn render(state: &AppState, page: &OrgPage, said: Option<(StatusCode, Outcome)>) -> Result<Response, Failure> {
    let (status, outcome) = said.map_or((StatusCode::OK, None), |(s, o)| (s, Some(o)));
    let keys = state.store.api_keys(page.org.id).await.map_err(|e| page.failed(e))?;
    let active = keys.iter().filter(|k| k.revoked_at.is_none()).count();
    let main = html! {
        div.heading {
            div {
                h1 { "API keys" }
                p.muted { (active) " active of " (keys.len()) ". A key is shown in full once, when it is created; the log names it by its prefix." }
            }
        }
        @if let Some(o) = &outcome { (o.show()) }
        (create_form(page))
        (list_table("keys", "API keys", &COLUMNS, keys.iter().map(|k| row(page, k)).collect(), "No keys yet."))
    };
    Ok(page.render(status, "API keys", "api-keys", main))
}

fn create_form(page: &OrgPage) -> Markup {
    let holds = |s: Scope| page.may(&Action::CreateKey { scopes: vec![s] });
    if SCOPES.iter().all(|(s, _)| holds(*s).is_err()) {
        let reason = holds(Scope::AuditWrite).err().unwrap_or_default();
        return html! { p.muted #create-key { "Creating keys: " (disabled_because(&reason)) } };
    }
    html! {
        form.inline-form #create-key method="post" action=(list_href(page.slug())) {
            h2 { "Create a key" }
            (page.csrf_field())
            div { label for="key-name" { "Name" } input #key-name name="name" required maxlength="100" placeholder="billing-service"; }
            fieldset {
                legend { "Scopes" }
                @for (scope, what) in &SCOPES {
                    @let id = format!("scope-{}", scope.as_str().replace(':', "-"));
                    @let held = holds(*scope);
                    div.check {
                        input type="checkbox" id=(id) name="scope" value=(scope.as_str())
                            checked[*scope == Scope::AuditWrite && held.is_ok()] disabled[held.is_err()];
                        label for=(id) { code { (scope.as_str()) } ": " (what) }
                        @if let Err(reason) = &held { " " (disabled_because(reason)) }
                    }
                }
            }
            button.primary type="submit" { "Create key" }
        }
    }
}

fn row(page: &OrgPage, k: &ApiKeyRecord) -> Markup {
    let prefix = k.prefix.as_str();
    html! {
        tr.revoked[k.revoked_at.is_some()] {
            th scope="row" { code { (prefix) } }
            td { (k.name) }
            td { @for s in &k.scopes { code { (s.as_str()) } " " } }
            td {
                (date(k.created_at))
                @if let Some(by) = &k.created_by { br; span.muted { "by " (by.id) } }
            }
            td { @if let Some(t) = k.last_used_at { (date(t)) } @else { span.muted { "never" } } }
            td.actions {
                @if let Some(t) = k.revoked_at {
                    "Revoked " (date(t))
                } @else if let Err(reason) = page.may(&Action::RevokeKey) {
                    (disabled_because(&reason))
                } @else {
                    a.button.danger href=(format!("{}/{prefix}/revoke", list_href(page.slug()))) {
                        "Revoke" span.visually-hidden { " " (prefix) }
                    }
                }
                @if page.may(&Action::ReadAudit).is_ok() {
                    " " a href=(trail_href(page.slug(), "api_key", prefix)) { "Audit trail" span.visually-hidden { " of " (prefix) } }
                }
            }
        }
    }
}

/// `POST /orgs/{org}/api-keys`: creates, and shows the secret once.
pub async fn create(State(state): State<AppState>, Acting { page, form, ctx }: Acting) -> Result<Response, Failure> {
    let scopes: Result<Vec<Scope>, _> = form.all("scope").map(str::parse).collect();
    let result = match scopes {
        Ok(scopes) => create_key(&state, &page.principal(ctx), form.get("name"), scopes)
            .await
            .map(|k| created(&k)),
        Err(e) => Err(ApiError::invalid("scopes", "invalid_scope", e.to_string())),
    };
    render(&state, &page, Some(page.outcome(result)?)).await
}

fn created(k: &CreatedKey) -> Markup {
    html! {
        p { "Key " strong { (k.name) } " (" code { (k.prefix.as_str()) } ") is created with "
            @for s in &k.scopes { code { (s.as_str()) } " " } "." }
        p.warning { strong { "Copy it now." } " It is not stored, and it cannot be shown again." }
        p.secret {
            label for="new-key" { "The key" }
            input #new-key type="text" readonly value=(k.key) spellcheck="false" autocomplete="off";
            " " button.copy type="button" data-copy="#new-key" hidden { "Copy key" }
        }
    }
}

/// `GET /orgs/{org}/api-keys/{prefix}/revoke`: are you sure?
pub async fn confirm_revoke(
    State(state): State<AppState>,
    Path((_, prefix)): Path<(String, String)>,
    page: OrgPage,
) -> Result<Response, Failure> {
    page.require(&Action::RevokeKey, "revoking keys")?;
    let key = match KeyPrefix::parse(&prefix) {
        Some(p) => state.store.api_key(&p).await.map_err(|e| page.failed(e))?,
        None => None,
    };
    let Some(key) = key.filter(|k| k.org_id == page.org.id && k.revoked_at.is_none()) else {
        return Err(page.not_found(
            &format!("There is no active key {prefix:?} in this organization."),
            &list_href(page.slug()),
        ));
    };
    let prefix = key.prefix.as_str();
    let list = list_href(page.slug());
    let text = html! { "Every request with this key is refused from now on. This cannot be undone; a new key can be created instead." };
    let action = format!("{list}/{prefix}/revoke");
    let title = format!("Revoke {prefix} ({})?", key.name);
    Ok(page.confirmation("api-keys", &title, text, (&action, &format!("Revoke {prefix}")), &list))
}

/// `POST /orgs/{org}/api-keys/{prefix}/revoke`
pub async fn revoke(
    State(state): State<AppState>,
    Path((_, prefix)): Path<(String, String)>,
    Acting { page, form: _, ctx }: Acting,
) -> Result<Response, Failure> {
    let result = revoke_key(&state, &page.principal(ctx), &prefix)
        .await
        .map(|()| html! { p { "Revoked " code { (prefix) } "." } });
    render(&state, &page, Some(page.outcome(result)?)).await
}
