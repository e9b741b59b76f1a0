//! Platform → Settings: the organization's name, its plan and the
//! retention that gives (a change that keeps entries for less time says
//! which entries go before it is confirmed), and single sign-on. Each form
//! goes through the API's `update_org`, so it is authorized and recorded
//! as `PATCH /v1/orgs/{org}` is.

use auditlog_domain::Role;
use auditlog_domain::org::Plan;
use auditlog_domain::permissions::Action;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::Failure;
use super::PostedForm;
use super::console::{OrgPage, Outcome, disabled_because, trail_href};
use super::extract::Acting;
use super::layout::time;
use crate::http::error::ApiError;
use crate::http::routes::orgs::{OrgPatch, SsoInput, update_org};
use crate::http::state::AppState;
use crate::sso::redirect_uri;

const PLANS: [Plan; 3] = [Plan::Team, Plan::Scale, Plan::Enterprise];

fn href(slug: &str) -> String {
    format!("/orgs/{slug}/settings")
}

fn empty_patch() -> OrgPatch {
    OrgPatch {
        name: None,
        plan: None,
        retention_days: None,
        sso: None,
    }
}

/// `GET /orgs/{org}/settings`
pub async fn page(State(state): State<AppState>, page: OrgPage) -> Result<Response, Failure> {
    page.require(&Action::ViewOrg, "the settings")?;
    Ok(render(&state, &page, StatusCode::OK, None))
}

fn render(state: &AppState, page: &OrgPage, status: StatusCode, outcome: Option<Outcome>) -> Response {
    let main = html! {
        div.heading { div { h1 { "Settings" } p.muted { "Organization " code { (page.org.slug) } "." } } }
        @if let Some(o) = &outcome { (o.show()) }
        (name_form(page))
        (plan_form(page))
        (sso_form(state, page))
        @if page.may(&Action::ReadAudit).is_ok() {
            p { a href=(trail_href(page.slug(), "organization", page.slug())) { "This organization's audit trail" } }
        }
    };
    page.render(status, "Settings", "settings", main)
}

fn name_form(page: &OrgPage) -> Markup {
    let allowed = page.may(&Action::ConfigureOrg);
    html! {
        form.inline-form #org-name method="post" action=(format!("{}/name", href(page.slug()))) {
            h2 { "Name" }
            (page.csrf_field())
            div.wide { label for="name" { "Name" } input #name name="name" required maxlength="200" value=(page.org.name) disabled[allowed.is_err()]; }
            @match &allowed {
                Ok(()) => button.primary type="submit" { "Rename" },
                Err(reason) => (disabled_because(reason)),
            }
        }
    }
}

fn plan_form(page: &OrgPage) -> Markup {
    let allowed = page.may(&Action::ChangePlan);
    let org = &page.org;
    html! {
        form.inline-form #plan method="post" action=(format!("{}/plan", href(page.slug()))) {
            h2 { "Plan and retention" }
            p.hint { "On the " strong { (org.plan.label()) } " plan, entries are kept for " strong { (org.retention_days()) " days" } "; older ones are deleted by the retention job, which records what it deleted." }
            (page.csrf_field())
            div {
                label for="plan-choice" { "Plan" }
                select #plan-choice name="plan" disabled[allowed.is_err()] {
                    @for p in PLANS {
                        option value=(p.as_str()) selected[p == org.plan] {
                            (p.label()) " — " @if p == Plan::Enterprise { "your own retention" } @else { (p.retention_days(None)) " days" }
                        }
                    }
                }
            }
            div {
                label for="retention-days" { "Retention days (Enterprise)" }
                input #retention-days type="number" name="retention_days" min="1" disabled[allowed.is_err()]
                    value=[org.enterprise_retention_days];
            }
            @match &allowed {
                Ok(()) => button.primary type="submit" { "Change plan" },
                Err(reason) => (disabled_because(reason)),
            }
        }
    }
}

fn sso_form(state: &AppState, page: &OrgPage) -> Markup {
    let allowed = page.may(&Action::ConfigureOrg);
    let sso = page.org.sso.as_ref();
    let off = allowed.is_err();
    let role = sso.and_then(|s| s.provision_role);
    html! {
        form.inline-form #sso method="post" action=(format!("{}/sso", href(page.slug()))) {
            h2 { "Single sign-on (OpenID Connect)" }
            p.hint {
                @match &state.config.public_url {
                    Some(url) => { "Register " code { (redirect_uri(url)) } " as the redirect URI with your provider." },
                    None => { "The operator has not set the service's public URL (" code { "--public-url" } "), so sign-in through a provider is not available yet." },
                }
            }
            (page.csrf_field())
            div.wide { label for="sso-issuer" { "Issuer" } input #sso-issuer type="url" name="issuer" maxlength="512" disabled[off] value=[sso.map(|s| s.issuer.as_str())] placeholder="https://login.example.com"; }
            div { label for="sso-client-id" { "Client id" } input #sso-client-id name="client_id" maxlength="256" disabled[off] value=[sso.map(|s| s.client_id.as_str())]; }
            div { label for="sso-secret" { "Client secret" } input #sso-secret type="password" name="client_secret" maxlength="1024" autocomplete="new-password" disabled[off] placeholder=(if sso.is_some() { "kept when left empty" } else { "" }); }
            div.wide { label for="sso-domains" { "Allowed email domains (space or comma separated; empty: any)" } input #sso-domains name="allowed_domains" disabled[off] value=[sso.map(|s| s.allowed_domains.join(" "))]; }
            div {
                label for="sso-role" { "Role for new people" }
                select #sso-role name="provision_role" disabled[off] {
                    option value="" selected[role.is_none()] { "none: refuse them" }
                    @for r in [Role::Viewer, Role::Member, Role::Admin] {
                        option value=(r.as_str()) selected[role == Some(r)] { (r.as_str()) }
                    }
                }
            }
            div.check { input #sso-enforced type="checkbox" name="enforced" value="true" disabled[off] checked[sso.is_some_and(|s| s.enforced)]; label for="sso-enforced" { "Enforced: members sign in only this way (owners keep a break-glass password)" } }
            @match &allowed {
                Ok(()) => {
                    button.primary type="submit" { "Save single sign-on" }
                    @if sso.is_some() { button.danger type="submit" name="remove" value="true" { "Remove single sign-on" } }
                },
                Err(reason) => (disabled_because(reason)),
            }
        }
    }
}

/// Applies `patch` as the viewer and shows the page with what happened,
/// its forms showing the organization as it is now.
async fn apply(
    state: &AppState,
    Acting { mut page, ctx, .. }: Acting,
    patch: Result<OrgPatch, ApiError>,
    done: &str,
) -> Result<Response, Failure> {
    let updated = match patch {
        Ok(patch) => update_org(state, &page.principal(ctx), patch).await,
        Err(e) => Err(e),
    };
    let result = updated.map(|org| {
        page.org = org;
        html! { p { (done) } }
    });
    let (status, shown) = page.outcome(result)?;
    Ok(render(state, &page, status, Some(shown)))
}

/// `POST /orgs/{org}/settings/name`
pub async fn rename(State(state): State<AppState>, acting: Acting) -> Result<Response, Failure> {
    let patch = OrgPatch {
        name: Some(acting.form.get("name").to_owned()),
        ..empty_patch()
    };
    apply(&state, acting, Ok(patch), "Renamed.").await
}

fn plan_patch(form: &PostedForm) -> Result<OrgPatch, ApiError> {
    let plan: Plan = form
        .get("plan")
        .parse()
        .map_err(|e: auditlog_domain::org::UnknownPlan| ApiError::invalid("plan", "invalid_plan", e.to_string()))?;
    let days = match form.get("retention_days").trim() {
        "" => None,
        d => Some(d.parse::<u32>().map_err(|_| {
            ApiError::invalid(
                "retention_days",
                "invalid_value",
                "retention days must be a whole number from 1",
            )
        })?),
    };
    Ok(OrgPatch {
        plan: Some(plan),
        retention_days: days.filter(|_| plan == Plan::Enterprise),
        ..empty_patch()
    })
}

/// `POST /orgs/{org}/settings/plan`: a change that keeps entries for less
/// time is confirmed first, with the date before which entries go.
pub async fn change_plan(State(state): State<AppState>, acting: Acting) -> Result<Response, Failure> {
    let patch = plan_patch(&acting.form);
    if let Ok(p) = &patch
        && acting.form.get("confirmed") != "true"
        && acting.page.may(&Action::ChangePlan).is_ok()
        && let Ok(Some(change)) = acting.page.org.plan_change(p.plan, p.retention_days)
        && change.new_days < change.old_days
    {
        return Ok(confirm_shorter(
            &state,
            &acting.page,
            &acting.form,
            change.new,
            change.new_days,
        ));
    }
    apply(&state, acting, patch, "The plan is changed.").await
}

fn confirm_shorter(state: &AppState, page: &OrgPage, form: &PostedForm, plan: Plan, days: u32) -> Response {
    let cutoff = state.clock.now().minus_days(days);
    let main = html! {
        section.message {
            h1 { "Keep entries for " (days) " days instead of " (page.org.retention_days()) "?" }
            p { "On the " (plan.label()) " plan, every entry recorded before " strong { (time(cutoff)) } " is deleted by the next retention run, and cannot be brought back. The deletion itself is recorded in the log." }
            form method="post" action=(format!("{}/plan", href(page.slug()))) {
                (page.csrf_field())
                input type="hidden" name="plan" value=(form.get("plan"));
                input type="hidden" name="retention_days" value=(form.get("retention_days"));
                input type="hidden" name="confirmed" value="true";
                button.danger type="submit" { "Change the plan and delete older entries" }
                " " a.button href=(href(page.slug())) { "Cancel" }
            }
        }
    };
    page.render(StatusCode::OK, "Confirm the plan change", "settings", main)
}

/// The SSO form as the API's input; an unknown role is refused rather than
/// read as "refuse new people".
fn sso_input(form: &PostedForm) -> Result<SsoInput, ApiError> {
    let secret = form.get("client_secret");
    let provision_role = match form.get("provision_role") {
        "" => None,
        role => Some(
            role.parse::<Role>()
                .map_err(|e| ApiError::invalid("provision_role", "invalid_role", e.to_string()))?,
        ),
    };
    Ok(SsoInput {
        issuer: form.get("issuer").trim().to_owned(),
        client_id: form.get("client_id").trim().to_owned(),
        client_secret: (!secret.is_empty()).then(|| secret.to_owned()),
        enforced: form.get("enforced") == "true",
        allowed_domains: form
            .get("allowed_domains")
            .split([',', ' '])
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect(),
        provision_role,
    })
}

/// `POST /orgs/{org}/settings/sso`: saves, or removes with `remove=true`.
pub async fn sso(State(state): State<AppState>, acting: Acting) -> Result<Response, Failure> {
    let (patch, done) = if acting.form.get("remove") == "true" {
        (Ok(None), "Single sign-on is removed.")
    } else {
        (sso_input(&acting.form).map(Some), "Single sign-on is saved.")
    };
    let patch = patch.map(|sso| OrgPatch {
        sso: Some(sso),
        ..empty_patch()
    });
    apply(&state, acting, patch, done).await
}
