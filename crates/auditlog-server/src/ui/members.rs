//! Platform → Members: the people of an organization and their roles;
//! inviting someone (the one-time link shown once), changing a role and
//! removing a member, with the last-owner rule said where it applies.

use auditlog_domain::Role;
use auditlog_domain::member::Member;
use auditlog_domain::permissions::Action;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::Failure;
use super::console::{OrgPage, Outcome, disabled_because, list_table, segment, trail_href};
use super::extract::Acting;
use super::layout::date;
use crate::http::error::ApiError;
use crate::http::routes::members::{Invited, invite, remove_member, set_role};
use crate::http::state::AppState;

fn list_href(slug: &str) -> String {
    format!("/orgs/{slug}/members")
}

/// `GET /orgs/{org}/members`
pub async fn page(State(state): State<AppState>, page: OrgPage) -> Result<Response, Failure> {
    page.require(&Action::ViewMembers, "the members")?;
    render(&state, &page, None).await
}

async fn render(state: &AppState, page: &OrgPage, said: Option<(StatusCode, Outcome)>) -> Result<Response, Failure> {
    let (status, outcome) = said.map_or((StatusCode::OK, None), |(s, o)| (s, Some(o)));
    let members = state.store.members(page.org.id).await.map_err(|e| page.failed(e))?;
    let owners = members.iter().filter(|m| m.role == Role::Owner).count();
    let main = html! {
        div.heading {
            div {
                h1 { "Members" }
                p.muted { (members.len()) " people in " (page.org.name) ". Owners do everything; admins manage members below owner, keys, projects and webhooks, and read the log; members write with keys; viewers read settings." }
            }
        }
        @if let Some(o) = &outcome { (o.show()) }
        (add_form(page))
        (list_table(
            "members",
            "Members and their roles",
            &["Email", "Role", "Added", "Actions"],
            members.iter().map(|m| row(page, m, owners)).collect(),
            "No members.",
        ))
    };
    Ok(page.render(status, "Members", "members", main))
}

fn add_form(page: &OrgPage) -> Markup {
    let grantable: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|r| page.may(&Action::AddMember { role: *r }).is_ok())
        .collect();
    if grantable.is_empty() {
        let reason = page
            .may(&Action::AddMember { role: Role::Viewer })
            .err()
            .unwrap_or_default();
        return html! { p.muted #add-member { "Inviting people: " (disabled_because(&reason)) } };
    }
    let sso = page.org.sso.is_some();
    html! {
        form.inline-form #add-member method="post" action=(list_href(page.slug())) {
            h2 { "Invite someone" }
            (page.csrf_field())
            div { label for="new-email" { "Email" } input #new-email type="email" name="email" required autocomplete="off"; }
            div {
                label for="new-role" { "Role" }
                select #new-role name="role" {
                    @for r in &grantable { option value=(r.as_str()) selected[*r == Role::Member] { (r.as_str()) } }
                }
            }
            button.primary type="submit" { "Invite" }
            p.muted.hint {
                "You get a one-time link to pass on; the person sets their own password with it"
                @if sso { ", or signs in through the organization's single sign-on" }
                ". Only owners invite owners."
            }
        }
    }
}

fn row(page: &OrgPage, m: &Member, owners: usize) -> Markup {
    let last_owner = m.role == Role::Owner && owners <= 1;
    let removable = page.may(&Action::RemoveMember { role: m.role });
    html! {
        tr {
            th scope="row" { (m.email) }
            td { (role_control(page, m, last_owner)) }
            td { (date(m.added_at)) }
            td.actions {
                @if last_owner {
                    (disabled_because("the only owner cannot be removed; make someone else an owner first"))
                } @else if let Err(reason) = &removable {
                    (disabled_because(reason))
                } @else {
                    a.button.danger href=(format!("{}/{}/remove", list_href(page.slug()), segment(&m.email))) {
                        "Remove" span.visually-hidden { " " (m.email) }
                    }
                }
                @if page.may(&Action::ReadAudit).is_ok() {
                    " " a href=(trail_href(page.slug(), "member", &m.email)) { "Audit trail" span.visually-hidden { " of " (m.email) } }
                }
            }
        }
    }
}

fn role_control(page: &OrgPage, m: &Member, last_owner: bool) -> Markup {
    let settable: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|to| *to == m.role || page.may(&Action::ChangeRole { from: m.role, to: *to }).is_ok())
        .collect();
    if last_owner || settable.len() < 2 {
        let why = if last_owner {
            "the only owner keeps the owner role until there is another".to_owned()
        } else {
            page.may(&Action::ChangeRole {
                from: m.role,
                to: Role::Viewer,
            })
            .err()
            .unwrap_or_else(|| "your role cannot change this member's".to_owned())
        };
        return html! { strong { (m.role.as_str()) } br; (disabled_because(&why)) };
    }
    let id = format!("role-{}", segment(&m.email));
    html! {
        form.role-form method="post" action=(format!("{}/{}/role", list_href(page.slug()), segment(&m.email))) {
            (page.csrf_field())
            label.visually-hidden for=(id) { "Role of " (m.email) }
            select id=(id) name="role" {
                @for r in &settable { option value=(r.as_str()) selected[*r == m.role] { (r.as_str()) } }
            }
            " "
            button type="submit" { "Change" span.visually-hidden { " the role of " (m.email) } }
        }
    }
}

/// `POST /orgs/{org}/members`: invites, and shows the link once.
pub async fn add(State(state): State<AppState>, Acting { page, form, ctx }: Acting) -> Result<Response, Failure> {
    let role = form.get("role").parse::<Role>();
    let result = match role {
        Ok(role) => invite(&state, &page.principal(ctx), form.get("email"), role)
            .await
            .map(|i| invited(&i)),
        Err(e) => Err(ApiError::invalid("role", "invalid_role", e.to_string())),
    };
    render(&state, &page, Some(page.outcome(result)?)).await
}

fn invited(i: &Invited) -> Markup {
    html! {
        p { strong { (i.email) } " is invited as " strong { (i.role.as_str()) } ". Send them this link; it works once, until "
            (i.invitation.expires_at.to_rfc3339()) ", and is not shown again:" }
        p.secret {
            a #invitation-link href=(i.invitation.accept_url) { (i.invitation.accept_url) }
            " " button.copy type="button" data-copy="#invitation-link" hidden { "Copy link" }
        }
    }
}

/// `POST /orgs/{org}/members/{email}/role`
pub async fn change_role(
    State(state): State<AppState>,
    Path((_, email)): Path<(String, String)>,
    Acting { page, form, ctx }: Acting,
) -> Result<Response, Failure> {
    let result = match form.get("role").parse::<Role>() {
        Ok(role) => set_role(&state, &page.principal(ctx), &email, role)
            .await
            .map(|_| html! { p { strong { (email) } " is now " strong { (role.as_str()) } "." } }),
        Err(e) => Err(ApiError::invalid("role", "invalid_role", e.to_string())),
    };
    render(&state, &page, Some(page.outcome(result)?)).await
}

/// `GET /orgs/{org}/members/{email}/remove`: are you sure?
pub async fn confirm_remove(
    State(state): State<AppState>,
    Path((_, email)): Path<(String, String)>,
    page: OrgPage,
) -> Result<Response, Failure> {
    page.require(&Action::ViewMembers, "the members")?;
    let list = list_href(page.slug());
    let missing = format!("There is no member {email:?} in this organization.");
    let email = page
        .found(state.store.member(page.org.id, &email).await, missing, &list)?
        .email;
    let text = html! { "They lose access to " (page.org.name) " at once, and their sessions stop reaching it. Their entries in the log stay." };
    let action = format!("{list}/{}/remove", segment(&email));
    let title = format!("Remove {email}?");
    Ok(page.confirmation("members", &title, text, (&action, &format!("Remove {email}")), &list))
}

/// `POST /orgs/{org}/members/{email}/remove`
pub async fn remove(
    State(state): State<AppState>,
    Path((_, email)): Path<(String, String)>,
    Acting { page, form: _, ctx }: Acting,
) -> Result<Response, Failure> {
    let result = remove_member(&state, &page.principal(ctx), &email)
        .await
        .map(|()| html! { p { "Removed " strong { (email) } "." } });
    render(&state, &page, Some(page.outcome(result)?)).await
}
