//! `GET/PATCH /v1/orgs/{org}`: name, plan and single sign-on settings. Each
//! change is recorded in the same transaction that makes it.

use auditlog_domain::change::Change;
use auditlog_domain::entry::{NewEntry, Resource};
use auditlog_domain::member::display_name;
use auditlog_domain::org::{Sso, SsoConfig};
use auditlog_domain::permissions::Action;
use auditlog_domain::sealed::SecretSealer;
use auditlog_domain::sso::{self, SessionOrigin};
use auditlog_domain::{Org, Plan, Role, Timestamp};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::auth::{Credential, Principal};
use crate::http::body;
use crate::http::error::ApiError;
use crate::http::recorder::commit;
use crate::http::state::AppState;
use crate::workers::webhook_client::DestinationPolicy;

/// An organization as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OrgView {
    slug: String,
    name: String,
    plan: Plan,
    /// How long entries are kept, from the plan.
    retention_days: u32,
    sso: Option<Sso>,
    created_at: Timestamp,
}

pub fn org_view(org: &Org) -> OrgView {
    OrgView {
        slug: org.slug.clone(),
        name: org.name.clone(),
        plan: org.plan,
        retention_days: org.retention_days(),
        sso: org.sso.clone(),
        created_at: org.created_at,
    }
}

/// The organization: name, plan, retention and single sign-on settings.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}",
    operation_id = "get_org",
    tag = "organization",
    params(crate::http::responses::OrgPath),
    responses(
        (status = 200, description = "The organization.", body = OrgView),
        crate::http::responses::Denied,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub async fn get_org(principal: Principal) -> Result<Json<OrgView>, ApiError> {
    principal.authorize(Action::ViewOrg)?;
    Ok(Json(org_view(&principal.org)))
}

/// What to change; what is absent stays as it is.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Acme Inc.", "sso": {"issuer": "https://sso.acme.com", "client_id": "auditlog"}})))]
pub struct OrgPatch {
    #[schema(min_length = 1, max_length = 200)]
    pub(crate) name: Option<String>,
    pub(crate) plan: Option<Plan>,
    /// Enterprise plans only.
    #[schema(minimum = 1)]
    pub(crate) retention_days: Option<u32>,
    /// `null` removes the settings.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<SsoInput>)]
    pub(crate) sso: Option<Option<SsoInput>>,
}

/// Tells `"sso": null` (remove) from no `sso` key at all (leave alone).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<SsoInput>>, D::Error> {
    Option::<SsoInput>::deserialize(d).map(Some)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoInput {
    /// An `https://` URL.
    #[schema(max_length = 512, pattern = "^\\s*https://")]
    pub(crate) issuer: String,
    #[schema(min_length = 1, max_length = 256)]
    pub(crate) client_id: String,
    /// Stored sealed and never shown again; needed the first time, left
    /// out afterwards to keep the stored one.
    #[schema(min_length = 1, max_length = 1024, format = Password)]
    pub(crate) client_secret: Option<String>,
    #[serde(default)]
    pub(crate) enforced: bool,
    /// Email domains whose people may sign in this way (at most 50);
    /// empty or absent allows any.
    #[serde(default)]
    pub(crate) allowed_domains: Vec<String>,
    /// The role given to people who sign in without being members yet
    /// (`viewer`, `member` or `admin`); absent or `null` refuses them.
    #[serde(default)]
    pub(crate) provision_role: Option<Role>,
}

fn org_resource(org: &Org) -> Resource {
    Resource {
        kind: "organization".into(),
        id: org.slug.clone(),
        name: Some(org.name.clone()),
    }
}

/// Changes the name (owners and admins), the plan and retention (owners),
/// or single sign-on (owners and admins); each change is recorded.
#[utoipa::path(
    patch,
    path = "/v1/orgs/{org}",
    operation_id = "update_org",
    tag = "organization",
    params(crate::http::responses::OrgPath),
    request_body = OrgPatch,
    responses(
        (status = 200, description = "The organization after the change.", body = OrgView),
        crate::http::responses::UpdateRefused,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn patch_org(
    State(state): State<AppState>,
    principal: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<OrgView>, ApiError> {
    let patch: OrgPatch = body::parse(raw, state.config.max_body_bytes)?;
    Ok(Json(org_view(&update_org(&state, &principal, patch).await?)))
}

/// Applies `patch` as one transaction with an entry per change
/// (`organization.renamed`, `billing.plan_*`, `organization.sso_configured`);
/// returns the organization as it is now.
pub async fn update_org(state: &AppState, principal: &Principal, patch: OrgPatch) -> Result<Org, ApiError> {
    let mut planned = Planned {
        principal,
        now: state.clock.now(),
        changes: Vec::new(),
        entries: Vec::new(),
    };
    if let Some(name) = &patch.name {
        planned.rename(name)?;
    }
    if patch.plan.is_some() || patch.retention_days.is_some() {
        planned.plan(patch.plan, patch.retention_days)?;
    }
    if let Some(sso) = patch.sso {
        planned.sso(sso, state)?;
    }
    let Planned { changes, entries, .. } = planned;
    if !changes.is_empty() {
        commit(state, principal, changes, entries).await?;
        state.keys.forget_org(&principal.org.slug);
    }
    state
        .store
        .org_by_slug(&principal.org.slug)
        .await?
        .ok_or_else(|| ApiError::NotFound("organization gone".into()))
}

/// What a patch changes, each change with the entry that records it;
/// committed together or not at all.
struct Planned<'a> {
    principal: &'a Principal,
    now: Timestamp,
    changes: Vec<Change>,
    entries: Vec<NewEntry>,
}

impl Planned<'_> {
    /// Whether the caller is a session begun through this organization's
    /// own single sign-on.
    fn signed_in_through_sso(&self) -> bool {
        matches!(&self.principal.credential,
            Credential::Session(s) if s.origin == SessionOrigin::sso(self.principal.org.id))
    }

    fn record(&mut self, event: &str, details: serde_json::Value, change: Change) {
        let org = &self.principal.org;
        self.entries
            .push(self.principal.entry(self.now, event, org_resource(org), details));
        self.changes.push(change);
    }

    fn rename(&mut self, name: &str) -> Result<(), ApiError> {
        self.principal.authorize(Action::ConfigureOrg)?;
        let name =
            display_name("name", name, 200).map_err(|e| ApiError::invalid("name", "invalid_name", e.to_string()))?;
        let old = self.principal.org.name.clone();
        if name != old {
            let details = json!({"old_name": old, "new_name": name});
            self.record("organization.renamed", details, Change::RenameOrg { old, new: name });
        }
        Ok(())
    }

    fn plan(&mut self, plan: Option<Plan>, retention_days: Option<u32>) -> Result<(), ApiError> {
        self.principal.authorize(Action::ChangePlan)?;
        let org = &self.principal.org;
        let change = org
            .plan_change(plan, retention_days)
            .map_err(|e| ApiError::invalid("retention_days", "invalid_value", e.to_string()))?;
        if let Some(c) = change {
            let old = org.plan;
            let details = json!({"old_plan": old, "new_plan": c.new, "old_retention_days": c.old_days, "new_retention_days": c.new_days});
            let change = Change::SetPlan {
                old,
                new: c.new,
                enterprise_retention_days: c.enterprise_retention_days,
            };
            self.record(c.event(), details, change);
        }
        Ok(())
    }

    fn sso(&mut self, input: Option<SsoInput>, state: &AppState) -> Result<(), ApiError> {
        self.principal.authorize(Action::ConfigureOrg)?;
        let old = &self.principal.org.sso;
        let config = input
            .map(|i| parse_sso(i, old.as_ref(), &state.sealer, state.sso.policy()))
            .transpose()?;
        let enforcing_now =
            config.as_ref().is_some_and(|c| c.settings.enforced) && !old.as_ref().is_some_and(|o| o.enforced);
        if enforcing_now && !self.signed_in_through_sso() {
            return Err(ApiError::forbidden(
                "sso_session_required",
                "sign in through this organization's single sign-on first: enforcing it is refused from any \
                 other session (or an API key), so that nobody locks everyone out",
            ));
        }
        if let Some(details) = sso::change_details(config.as_ref(), old.as_ref()) {
            self.record("organization.sso_configured", details, Change::ConfigureSso(config));
        }
        Ok(())
    }
}

fn parse_sso(
    s: SsoInput,
    old: Option<&Sso>,
    sealer: &SecretSealer,
    policy: &DestinationPolicy,
) -> Result<SsoConfig, ApiError> {
    let input = sso::SettingsInput {
        issuer: s.issuer,
        client_id: s.client_id,
        client_secret: s.client_secret,
        enforced: s.enforced,
        allowed_domains: s.allowed_domains,
        provision_role: s.provision_role,
    };
    let config = sso::settings(input, old, |secret| sealer.seal(secret))
        .map_err(|p| ApiError::invalid(p.field, "invalid_value", p.message))?;
    policy
        .check_url(&config.settings.issuer)
        .map_err(|e| ApiError::invalid("sso.issuer", "invalid_value", format!("sso.issuer is refused: {e}")))?;
    Ok(config)
}
