//! Webhook endpoints: `GET/POST /v1/orgs/{org}/webhooks`,
//! `GET/PATCH/DELETE …/webhooks/{id}`, `POST …/{id}/rotate-secret`,
//! `POST …/{id}/test`, `GET …/{id}/deliveries`,
//! `POST …/{id}/deliveries/{delivery}/retry`. Owners and admins only; every
//! change records a `webhook.*` entry in its own transaction.
//!
//! An endpoint's `payload_format` says what its deliveries' `data` holds:
//! `auditlog` (the default, the entry itself) or `ocsf` (the entry as an
//! OCSF event); the envelope and the signature are the same for both.

use auditlog_domain::change::{Change, WebhookSettings};
use auditlog_domain::entry::{Actor, Resource};
use auditlog_domain::pattern::EventPattern;
use auditlog_domain::permissions::Action;
use auditlog_domain::store::Delivery;
use auditlog_domain::webhook::{
    Endpoint, PayloadFormat, ROTATION_OVERLAP_MS, Secret, UnknownPayloadFormat, message_id, payload_body,
};
use auditlog_domain::{Entry, StoreError, Timestamp};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::http::auth::Principal;
use crate::http::body;
use crate::http::error::ApiError;
use crate::http::recorder::{commit, record_change};
use crate::http::state::AppState;

const MAX_PATTERNS: usize = 50;

/// A webhook endpoint, without its secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    #[schema(examples("wh_0123456789ab"))]
    pub(crate) id: String,
    url: String,
    description: String,
    /// Event patterns; empty means every event.
    events: Vec<String>,
    enabled: bool,
    /// Why it was disabled, when it was.
    disabled_reason: Option<String>,
    /// Since when every attempt has failed; it is disabled after 5 days.
    failing_since: Option<Timestamp>,
    created_at: Timestamp,
    /// After a rotation, the old secret still signs until then.
    previous_secret_valid_until: Option<Timestamp>,
    /// What each delivery's `data` holds: the entry (`auditlog`) or the
    /// entry as an OCSF 1.8.0 event (`ocsf`).
    payload_format: PayloadFormat,
}

fn endpoint_view(w: &Endpoint) -> WebhookView {
    WebhookView {
        id: w.id.clone(),
        url: w.url.clone(),
        description: w.description.clone(),
        events: w.events.iter().map(|p| p.as_str().to_owned()).collect(),
        enabled: w.enabled,
        disabled_reason: w.disabled_reason.clone(),
        failing_since: w.failing_since,
        created_at: w.created_at,
        previous_secret_valid_until: w.previous_secret.as_ref().map(|(_, until)| *until),
        payload_format: w.payload_format,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Webhooks {
    webhooks: Vec<WebhookView>,
}

/// A new endpoint, with its signing secret: shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub(crate) webhook: WebhookView,
    /// The Standard Webhooks signing secret (`whsec_…`).
    pub(crate) secret: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    id: String,
    /// The new signing secret (`whsec_…`), shown this once.
    pub(crate) secret: String,
    /// Until then deliveries are signed with both secrets.
    pub(crate) previous_secret_valid_until: Timestamp,
}

/// What the receiver answered to a test message.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TestResult {
    /// It answered 2xx.
    pub(crate) delivered: bool,
    /// Its HTTP status; absent when it could not be reached.
    pub(crate) status: Option<u16>,
    pub(crate) latency_ms: u64,
    pub(crate) error: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Deliveries {
    /// At most 100.
    deliveries: Vec<Delivery>,
}

fn resource(w: &Endpoint) -> Resource {
    Resource {
        kind: "webhook".into(),
        id: w.id.clone(),
        name: (!w.description.is_empty()).then(|| w.description.clone()),
    }
}

fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("wh_{tail}")
}

fn patterns(raw: &[String], state: &AppState) -> Result<Vec<EventPattern>, ApiError> {
    if raw.len() > MAX_PATTERNS {
        return Err(ApiError::invalid(
            "events",
            "too_many",
            format!("at most {MAX_PATTERNS} patterns"),
        ));
    }
    raw.iter()
        .map(|p| {
            let pattern =
                EventPattern::parse(p).map_err(|e| ApiError::invalid("events", "invalid_pattern", e.to_string()))?;
            if pattern.expand(&state.catalog).is_empty() {
                return Err(ApiError::invalid(
                    "events",
                    "unknown_event",
                    format!("{p:?} matches no event in the catalog"),
                ));
            }
            Ok(pattern)
        })
        .collect()
}

fn checked_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    if url.len() > 2048 {
        return Err(ApiError::invalid(
            "url",
            "too_long",
            "the URL is longer than 2048 characters",
        ));
    }
    state
        .webhooks
        .policy()
        .check_url(url)
        .map(|u| u.to_string())
        .map_err(|e| ApiError::invalid("url", "invalid_url", e))
}

fn description(raw: Option<String>) -> Result<String, ApiError> {
    let d = raw.unwrap_or_default();
    if d.chars().count() > 500 || d.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "description",
            "invalid_value",
            "at most 500 characters, no control characters",
        ));
    }
    Ok(d.trim().to_owned())
}

/// The payload format asked for, or `default` when none is.
fn payload_format(raw: Option<&str>, default: PayloadFormat) -> Result<PayloadFormat, ApiError> {
    raw.map_or(Ok(default), |name| {
        name.parse()
            .map_err(|e: UnknownPayloadFormat| ApiError::invalid("payload_format", "invalid_value", e.to_string()))
    })
}

pub(crate) async fn existing(state: &AppState, principal: &Principal, id: &str) -> Result<Endpoint, ApiError> {
    state
        .store
        .webhook(principal.org.id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no webhook {id:?} in this organization")))
}

/// The organization's webhook endpoints.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/webhooks",
    operation_id = "list_webhooks",
    tag = "webhooks",
    params(crate::http::responses::OrgPath),
    responses(
        (status = 200, description = "The endpoints.", body = Webhooks),
        crate::http::responses::Denied,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub async fn list(State(state): State<AppState>, principal: Principal) -> Result<Json<Webhooks>, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    let webhooks = state
        .store
        .webhooks(principal.org.id)
        .await?
        .iter()
        .map(endpoint_view)
        .collect();
    Ok(Json(Webhooks { webhooks }))
}

/// One endpoint.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/webhooks/{id}",
    operation_id = "get_webhook",
    tag = "webhooks",
    params(
        crate::http::responses::OrgPath,
        ("id" = String, Path, description = "The endpoint's id."),
    ),
    responses(
        (status = 200, description = "The endpoint.", body = WebhookView),
        crate::http::responses::DeniedOrMissing,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<WebhookView>, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    Ok(Json(endpoint_view(&existing(&state, &principal, &id).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"url": "https://hooks.example.com/audit", "description": "SIEM", "events": ["api_key.*"]})))]
pub struct NewWebhook {
    /// `https://`, and not on a loopback or private network unless the
    /// operator allows it.
    #[schema(max_length = 2048)]
    pub(crate) url: String,
    #[schema(max_length = 500)]
    pub(crate) description: Option<String>,
    /// Event patterns (`api_key.*`); empty or absent means every event.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub(crate) events: Vec<String>,
    /// Default true.
    pub(crate) enabled: Option<bool>,
    /// What each delivery's `data` holds: `auditlog` (the default, the
    /// entry as the query API returns it) or `ocsf` (the entry as an OCSF
    /// 1.8.0 event). The envelope and the signature are the same for both.
    #[schema(value_type = Option<PayloadFormat>)]
    pub(crate) payload_format: Option<String>,
}

/// Creates an endpoint; the answer holds its signing secret, shown this
/// once.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/webhooks",
    operation_id = "create_webhook",
    tag = "webhooks",
    params(crate::http::responses::OrgPath),
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Created.", body = CreatedWebhook),
        crate::http::responses::CreateRefused,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let req: NewWebhook = body::parse(raw, state.config.max_body_bytes)?;
    Ok((
        StatusCode::CREATED,
        Json(create_webhook(&state, &principal, req).await?),
    ))
}

/// Creates an endpoint, recorded as `webhook.created`; the answer holds its
/// secret, the only time it exists in clear.
pub async fn create_webhook(
    state: &AppState,
    principal: &Principal,
    req: NewWebhook,
) -> Result<CreatedWebhook, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    let now = state.clock.now();
    let secret = Secret::generate();
    let endpoint = Endpoint {
        id: new_id(),
        url: checked_url(state, &req.url)?,
        description: description(req.description)?,
        events: patterns(&req.events, state)?,
        enabled: req.enabled.unwrap_or(true),
        // Stored sealed; shown once, in clear, in this answer.
        secret: state.webhooks.seal(&secret),
        previous_secret: None,
        created_at: now,
        failing_since: None,
        disabled_reason: None,
        payload_format: payload_format(req.payload_format.as_deref(), PayloadFormat::default())?,
    };
    let details = json!({
        "url": endpoint.url,
        "events": req.events,
        "enabled": endpoint.enabled,
        "payload_format": endpoint.payload_format.as_str(),
    });
    let entry = principal.entry(now, "webhook.created", resource(&endpoint), details);
    commit(
        state,
        principal,
        vec![Change::CreateWebhook(endpoint.clone())],
        vec![entry],
    )
    .await?;
    Ok(CreatedWebhook {
        webhook: endpoint_view(&endpoint),
        secret: secret.to_whsec(),
    })
}

/// What to change; what is absent stays as it is.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"events": ["api_key.*", "organization.*"], "enabled": true})))]
pub struct WebhookPatch {
    #[schema(max_length = 2048)]
    pub(crate) url: Option<String>,
    #[schema(max_length = 500)]
    pub(crate) description: Option<String>,
    #[schema(max_items = 50)]
    pub(crate) events: Option<Vec<String>>,
    /// `false` disables the endpoint (recorded as `webhook.disabled`).
    pub(crate) enabled: Option<bool>,
    /// `auditlog` or `ocsf`: what each delivery's `data` holds from now on.
    #[schema(value_type = Option<PayloadFormat>)]
    pub(crate) payload_format: Option<String>,
}

/// Changes an endpoint.
#[utoipa::path(
    patch,
    path = "/v1/orgs/{org}/webhooks/{id}",
    operation_id = "update_webhook",
    tag = "webhooks",
    params(
        crate::http::responses::OrgPath,
        ("id" = String, Path, description = "The endpoint's id."),
    ),
    request_body = WebhookPatch,
    responses(
        (status = 200, description = "The endpoint now.", body = WebhookView),
        crate::http::responses::UpdateRefused,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookView>, ApiError> {
    let req: WebhookPatch = body::parse(raw, state.config.max_body_bytes)?;
    Ok(Json(endpoint_view(
        &update_webhook(&state, &principal, &id, req).await?,
    )))
}

/// Changes endpoint `id`, recorded as `webhook.updated` (and
/// `webhook.disabled` when it is switched off); unchanged, nothing is
/// recorded. Returns the endpoint as it is now.
pub async fn update_webhook(
    state: &AppState,
    principal: &Principal,
    id: &str,
    req: WebhookPatch,
) -> Result<Endpoint, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    let old = existing(state, principal, id).await?;
    let new = patched(state, &old, req)?;
    let now = state.clock.now();
    let changes = changed(&old, &new);
    let mut entries = Vec::new();
    if !changes.is_empty() {
        entries.push(principal.entry(
            now,
            "webhook.updated",
            resource(&old),
            json!({"url": new.url, "changes": changes}),
        ));
    }
    if !new.enabled && old.enabled {
        let reason = format!("disabled by {}", principal.actor().id);
        entries.push(principal.entry(
            now,
            "webhook.disabled",
            resource(&old),
            json!({"url": new.url, "reason": reason}),
        ));
    }
    if !entries.is_empty() {
        commit(state, principal, vec![Change::UpdateWebhook(new)], entries).await?;
    }
    existing(state, principal, id).await
}

/// The settings `req` asks for, each checked; what it leaves out stays as
/// it is.
fn patched(state: &AppState, old: &Endpoint, req: WebhookPatch) -> Result<WebhookSettings, ApiError> {
    Ok(WebhookSettings {
        id: old.id.clone(),
        url: match &req.url {
            Some(u) => checked_url(state, u)?,
            None => old.url.clone(),
        },
        description: match req.description {
            Some(d) => description(Some(d))?,
            None => old.description.clone(),
        },
        events: match &req.events {
            Some(e) => patterns(e, state)?,
            None => old.events.clone(),
        },
        enabled: req.enabled.unwrap_or(old.enabled),
        payload_format: payload_format(req.payload_format.as_deref(), old.payload_format)?,
    })
}

/// What `webhook.updated` records: each changed setting's old and new
/// value. Switching an endpoint off is `webhook.disabled`'s to record.
fn changed(old: &Endpoint, new: &WebhookSettings) -> Map<String, Value> {
    let show = |p: &[EventPattern]| p.iter().map(|p| p.as_str().to_owned()).collect::<Vec<_>>();
    let mut changes = Map::new();
    if new.url != old.url {
        changes.insert("url".into(), json!({"old": old.url, "new": new.url}));
    }
    if new.description != old.description {
        changes.insert(
            "description".into(),
            json!({"old": old.description, "new": new.description}),
        );
    }
    if new.events != old.events {
        changes.insert(
            "events".into(),
            json!({"old": show(&old.events), "new": show(&new.events)}),
        );
    }
    if new.enabled && !old.enabled {
        changes.insert("enabled".into(), json!({"old": false, "new": true}));
    }
    if new.payload_format != old.payload_format {
        changes.insert(
            "payload_format".into(),
            json!({"old": old.payload_format.as_str(), "new": new.payload_format.as_str()}),
        );
    }
    changes
}

/// Deletes an endpoint and its pending deliveries.
#[utoipa::path(
    delete,
    path = "/v1/orgs/{org}/webhooks/{id}",
    operation_id = "delete_webhook",
    tag = "webhooks",
    params(
        crate::http::responses::OrgPath,
        ("id" = String, Path, description = "The endpoint's id."),
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
    delete_webhook(&state, &principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes endpoint `id`, recorded as `webhook.deleted`.
pub async fn delete_webhook(state: &AppState, principal: &Principal, id: &str) -> Result<(), ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    let old = existing(state, principal, id).await?;
    let (what, details) = (resource(&old), json!({"url": old.url}));
    let change = Change::DeleteWebhook { id: old.id };
    record_change(state, principal, change, "webhook.deleted", what, details).await?;
    Ok(())
}

/// A new signing secret; the old one keeps signing for a while, so
/// receivers can switch without losing deliveries.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/webhooks/{id}/rotate-secret",
    operation_id = "rotate_webhook_secret",
    tag = "webhooks",
    params(
        crate::http::responses::OrgPath,
        ("id" = String, Path, description = "The endpoint's id."),
    ),
    responses(
        (status = 200, description = "The new secret.", body = RotatedSecret),
        crate::http::responses::ActionRefused,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<RotatedSecret>, ApiError> {
    Ok(Json(rotate_webhook_secret(&state, &principal, &id).await?))
}

/// Gives endpoint `id` a new secret, recorded as `webhook.secret_rotated`;
/// the old one keeps signing for [`ROTATION_OVERLAP_MS`].
pub async fn rotate_webhook_secret(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<RotatedSecret, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    let old = existing(state, principal, id).await?;
    let now = state.clock.now();
    let secret = Secret::generate();
    let until = now.plus_millis(ROTATION_OVERLAP_MS);
    let entry = principal.entry(
        now,
        "webhook.secret_rotated",
        resource(&old),
        json!({"url": old.url, "previous_secret_valid_until": until}),
    );
    let change = Change::RotateWebhookSecret {
        id: old.id.clone(),
        new: state.webhooks.seal(&secret),
        previous_until: until,
    };
    commit(state, principal, vec![change], vec![entry]).await?;
    Ok(RotatedSecret {
        id: old.id,
        secret: secret.to_whsec(),
        previous_secret_valid_until: until,
    })
}

/// Sends a signed test message now and reports what the receiver answered.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/webhooks/{id}/test",
    operation_id = "test_webhook",
    tag = "webhooks",
    params(
        crate::http::responses::OrgPath,
        ("id" = String, Path, description = "The endpoint's id."),
    ),
    responses(
        (status = 200, description = "What the receiver answered (a failure to deliver is reported here, not as an error).",
            body = TestResult),
        crate::http::responses::DeniedOrMissing,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn test(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<TestResult>, ApiError> {
    Ok(Json(test_webhook(&state, &principal, &id).await?))
}

/// Sends endpoint `id` a signed `webhook.test` message (not in the log),
/// in the endpoint's payload format, and says what its receiver answered.
pub async fn test_webhook(state: &AppState, principal: &Principal, id: &str) -> Result<TestResult, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    let endpoint = existing(state, principal, id).await?;
    let now = state.clock.now();
    let entry = Entry {
        id: uuid::Uuid::now_v7(),
        org_id: principal.org.id,
        seq: 0,
        timestamp: now,
        received_at: now,
        actor: Actor::system(),
        event: "webhook.test".into(),
        resource: resource(&endpoint),
        details: json!({"message": "a test message from auditlog; it is not in the audit log"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ip_address: None,
        user_agent: None,
        request_id: principal.ctx.request_id.clone(),
        idempotency_key: None,
        submitted_by: Some(principal.submitted_by()),
        canonical_version: auditlog_domain::canonical::CURRENT_VERSION,
        personal: Default::default(),
    };
    let sent = state
        .webhooks
        .send(
            &endpoint.url,
            &endpoint.signing_secrets(now),
            &message_id(&endpoint.id, &entry),
            now,
            payload_body(&entry, endpoint.payload_format, &principal.org.slug),
        )
        .await;
    Ok(TestResult {
        delivered: sent.status.is_some_and(|s| (200..300).contains(&s)),
        status: sent.status,
        latency_ms: sent.latency_ms,
        error: sent.error,
    })
}

/// The endpoint's latest deliveries and how each went.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/webhooks/{id}/deliveries",
    operation_id = "list_webhook_deliveries",
    tag = "webhooks",
    params(
        crate::http::responses::OrgPath,
        ("id" = String, Path, description = "The endpoint's id."),
    ),
    responses(
        (status = 200, description = "The deliveries.", body = Deliveries),
        crate::http::responses::DeniedOrMissing,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub async fn deliveries(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Deliveries>, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    let endpoint = existing(&state, &principal, &id).await?;
    let list = state.store.deliveries(principal.org.id, &endpoint.id, 100).await?;
    Ok(Json(Deliveries { deliveries: list }))
}

/// Schedules a delivery to be attempted again now (a failed one too).
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/webhooks/{id}/deliveries/{delivery}/retry",
    operation_id = "retry_webhook_delivery",
    tag = "webhooks",
    params(
        crate::http::responses::OrgPath,
        ("id" = String, Path, description = "The endpoint's id."),
        ("delivery" = String, Path, description = "The delivery's id."),
    ),
    responses(
        (status = 200, description = "The delivery, due now.", body = Delivery),
        crate::http::responses::ActionRefused,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
pub async fn retry(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id, delivery)): Path<(String, String, String)>,
) -> Result<Json<Delivery>, ApiError> {
    Ok(Json(redeliver(&state, &principal, &id, &delivery).await?))
}

/// Makes delivery `delivery` of endpoint `id` due now, whatever its status,
/// recorded as `webhook.redelivered`.
pub async fn redeliver(
    state: &AppState,
    principal: &Principal,
    id: &str,
    delivery: &str,
) -> Result<Delivery, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    let endpoint = existing(state, principal, id).await?;
    let now = state.clock.now();
    let d = state
        .store
        .retry_delivery(principal.org.id, &endpoint.id, delivery, now)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::NotFound(format!("no delivery {delivery:?} for this webhook")),
            other => other.into(),
        })?;
    state.writer.committed().notify_one();
    // Sending an entry out again is data leaving the service: recorded.
    let details = json!({"url": endpoint.url, "delivery": d.id, "seq": d.seq});
    let entry = principal.entry(now, "webhook.redelivered", resource(&endpoint), details);
    commit(state, principal, vec![], vec![entry]).await?;
    Ok(d)
}

/// Entries a replay looks at, at most, per request.
pub const REPLAY_LIMIT: u32 = 10_000;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"from_seq": 1200})))]
pub struct ReplayRequest {
    /// The first `seq` to send again.
    #[schema(minimum = 1)]
    from_seq: i64,
}

/// What a replay queued.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Replayed {
    pub(crate) from_seq: i64,
    /// The last `seq` looked at; absent when the log ends before `from_seq`.
    pub(crate) through_seq: Option<i64>,
    /// New deliveries queued: the entries in that range the endpoint's
    /// events select.
    pub(crate) queued: u64,
    /// Where to go on from when the log continues past this replay's
    /// 10,000 entries.
    pub(crate) next_from_seq: Option<i64>,
}

/// Sends an endpoint's receiver, again and in order, the entries from
/// `from_seq` on that it subscribes to (10,000 entries at most per call;
/// `next_from_seq` says where to go on), for a receiver that fell behind or
/// lost what it was sent. Recorded as `webhook.replayed`.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/webhooks/{id}/replay",
    operation_id = "replay_webhook",
    tag = "webhooks",
    params(
        crate::http::responses::OrgPath,
        ("id" = String, Path, description = "The endpoint's id."),
    ),
    request_body = ReplayRequest,
    responses(
        (status = 200, description = "Queued.", body = Replayed),
        crate::http::responses::UpdateRefused,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn replay(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Replayed>, ApiError> {
    let req: ReplayRequest = body::parse(raw, state.config.max_body_bytes)?;
    Ok(Json(replay_webhook(&state, &principal, &id, req.from_seq).await?))
}

/// Queues endpoint `id` the entries from `from_seq` on again, recorded as
/// `webhook.replayed` in the same organization's log.
pub async fn replay_webhook(
    state: &AppState,
    principal: &Principal,
    id: &str,
    from_seq: i64,
) -> Result<Replayed, ApiError> {
    principal.authorize(Action::ManageWebhooks)?;
    if from_seq < 1 {
        return Err(ApiError::invalid("from_seq", "invalid_value", "from_seq starts at 1"));
    }
    let endpoint = existing(state, principal, id).await?;
    let now = state.clock.now();
    let replay = state
        .store
        .replay_deliveries(
            principal.org.id,
            &endpoint.id,
            &endpoint.events,
            from_seq,
            REPLAY_LIMIT,
            now,
        )
        .await?;
    state.writer.committed().notify_one();
    let size = state.store.log_size(principal.org.id).await?;
    let next_from_seq = replay.through.filter(|t| *t < size).map(|t| t + 1);
    let details =
        json!({"url": endpoint.url, "from_seq": from_seq, "through_seq": replay.through, "queued": replay.queued});
    let entry = principal.entry(now, "webhook.replayed", resource(&endpoint), details);
    commit(state, principal, vec![], vec![entry]).await?;
    Ok(Replayed {
        from_seq,
        through_seq: replay.through,
        queued: replay.queued,
        next_from_seq,
    })
}
