//! SIEM streams: `GET/POST /v1/orgs/{org}/streams` and
//! `GET/PATCH/DELETE …/streams/{id}`. Owners and admins only; every change
//! records a `stream.*` entry in its own transaction. The client key is
//! taken, sealed and never shown again.

use auditlog_domain::Timestamp;
use auditlog_domain::change::Change;
use auditlog_domain::entry::Resource;
use auditlog_domain::pattern::EventPattern;
use auditlog_domain::permissions::Action;
use auditlog_domain::stream::{Stream, StreamSettings, StreamState, unhealthy};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::auth::Principal;
use crate::http::body;
use crate::http::error::ApiError;
use crate::http::recorder::commit;
use crate::http::state::AppState;
use crate::workers::streams::settings::{Invalid, Proposed, Rules, TlsInput, created_details, settings};

/// How a stream is doing.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Delivering, or not yet tried.
    Healthy,
    /// Connecting or sending fails, for less than the operator's limit.
    Failing,
    /// Failing for longer than the operator's limit.
    Unhealthy,
    Disabled,
}

/// TLS settings, without the key.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TlsView {
    /// The PEM certificates trusted instead of the system's roots.
    ca_pem: Option<String>,
    client_cert_pem: Option<String>,
    /// Whether a client key is stored (it is never shown).
    client_key: bool,
}

/// A SIEM stream.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StreamView {
    #[schema(examples("st_0123456789ab"))]
    pub(crate) id: String,
    /// `syslog+tls://host:port` (or `syslog+tcp://`).
    url: String,
    /// `rfc5424`, `cef` or `ocsf`.
    format: String,
    /// Event patterns; empty means every event.
    events: Vec<String>,
    facility: u8,
    app_name: String,
    description: String,
    enabled: bool,
    tls: TlsView,
    created_at: Timestamp,
    health: Health,
    /// Entries up to this `seq` have been delivered (or did not match).
    delivered_through_seq: i64,
    last_delivered_at: Option<Timestamp>,
    /// Since when connecting or sending has failed.
    failing_since: Option<Timestamp>,
    last_error: Option<String>,
    /// Entries retention purged before this stream sent them: its receiver
    /// was away longer than the plan keeps entries, and never gets them.
    purged_unsent: i64,
}

/// How stream `s` is doing now, under the operator's limit; the API's view
/// and the console's page say the same.
pub(crate) fn health(state: &AppState, s: &Stream) -> Health {
    let after = state.config.streams.unhealthy_after.as_millis() as i64;
    match (s.settings.enabled, &s.state) {
        (false, _) => Health::Disabled,
        (
            true,
            StreamState {
                failing_since: None, ..
            },
        ) => Health::Healthy,
        (true, st) if unhealthy(st.failing_since, state.clock.now(), after) => Health::Unhealthy,
        (true, _) => Health::Failing,
    }
}

fn view(state: &AppState, s: &Stream) -> StreamView {
    let c = &s.settings;
    let health = health(state, s);
    StreamView {
        id: c.id.clone(),
        url: c.destination.to_url(),
        format: c.format.as_str().to_owned(),
        events: c.events.iter().map(|p| p.as_str().to_owned()).collect(),
        facility: c.facility,
        app_name: c.app_name.clone(),
        description: c.description.clone(),
        enabled: c.enabled,
        tls: TlsView {
            ca_pem: c.tls.ca_pem.clone(),
            client_cert_pem: c.tls.client_cert_pem.clone(),
            client_key: c.tls.client_key.is_some(),
        },
        created_at: s.created_at,
        health,
        delivered_through_seq: s.state.cursor,
        last_delivered_at: s.state.last_delivered_at,
        failing_since: s.state.failing_since,
        last_error: s.state.last_error.clone(),
        purged_unsent: s.state.purged_unsent,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Streams {
    streams: Vec<StreamView>,
}

fn resource(c: &StreamSettings) -> Resource {
    Resource {
        kind: "stream".into(),
        id: c.id.clone(),
        name: (!c.description.is_empty()).then(|| c.description.clone()),
    }
}

fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("st_{tail}")
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::invalid(e.field, e.code, e.message)
    }
}

fn rules(state: &AppState) -> Rules<'_> {
    Rules {
        policy: &state.config.streams.policy,
        catalog: &state.catalog,
        sealer: Some(&state.sealer),
    }
}

async fn existing(state: &AppState, principal: &Principal, id: &str) -> Result<Stream, ApiError> {
    state
        .store
        .stream(principal.org.id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no stream {id:?} in this organization")))
}

/// The organization's SIEM streams.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/streams",
    operation_id = "list_streams",
    tag = "streams",
    params(crate::http::responses::OrgPath),
    responses(
        (status = 200, description = "The streams.", body = Streams),
        crate::http::responses::Denied,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub async fn list(State(state): State<AppState>, principal: Principal) -> Result<Json<Streams>, ApiError> {
    let streams = list_streams(&state, &principal).await?;
    Ok(Json(Streams {
        streams: streams.iter().map(|s| view(&state, s)).collect(),
    }))
}

/// The organization's streams, for owners and admins.
pub async fn list_streams(state: &AppState, principal: &Principal) -> Result<Vec<Stream>, ApiError> {
    principal.authorize(Action::ManageStreams)?;
    Ok(state.store.streams(principal.org.id).await?)
}

/// One stream.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/streams/{id}",
    operation_id = "get_stream",
    tag = "streams",
    params(
        crate::http::responses::OrgPath,
        ("id" = String, Path, description = "The stream's id."),
    ),
    responses(
        (status = 200, description = "The stream.", body = StreamView),
        crate::http::responses::DeniedOrMissing,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<StreamView>, ApiError> {
    principal.authorize(Action::ManageStreams)?;
    Ok(Json(view(&state, &existing(&state, &principal, &id).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"url": "syslog+tls://siem.example.com:6514", "format": "cef", "events": ["api_key.*"]})))]
pub struct NewStream {
    /// `syslog+tls://host[:port]` (port 6514 by default), or
    /// `syslog+tcp://` where the operator allows plain TCP. Not on a
    /// loopback or private network unless the operator allows it.
    #[schema(max_length = 2048)]
    pub(crate) url: String,
    /// `rfc5424`, `cef` or `ocsf`.
    pub(crate) format: String,
    /// Event patterns (`api_key.*`); empty or absent means every event.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub(crate) events: Vec<String>,
    /// Syslog facility, 0–23; default 13 (log audit).
    pub(crate) facility: Option<u8>,
    /// RFC 5424 APP-NAME; default `auditlog`.
    pub(crate) app_name: Option<String>,
    #[schema(max_length = 500)]
    pub(crate) description: Option<String>,
    /// Default true.
    pub(crate) enabled: Option<bool>,
    #[serde(default)]
    pub(crate) tls: Option<TlsInput>,
}

/// Creates a stream; it carries the entries recorded from then on.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/streams",
    operation_id = "create_stream",
    tag = "streams",
    params(crate::http::responses::OrgPath),
    request_body = NewStream,
    responses(
        (status = 201, description = "Created.", body = StreamView),
        crate::http::responses::CreateRefused,
    ),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<StreamView>), ApiError> {
    let req: NewStream = body::parse(raw, state.config.max_body_bytes)?;
    let stream = create_stream(&state, &principal, req).await?;
    Ok((StatusCode::CREATED, Json(view(&state, &stream))))
}

/// Creates a stream, recorded as `stream.created`.
pub async fn create_stream(state: &AppState, principal: &Principal, req: NewStream) -> Result<Stream, ApiError> {
    principal.authorize(Action::ManageStreams)?;
    let proposed = Proposed {
        url: req.url,
        format: req.format,
        events: req.events,
        facility: req.facility,
        app_name: req.app_name,
        description: req.description,
        enabled: req.enabled.unwrap_or(true),
        tls: req.tls.unwrap_or_default(),
    };
    let id = new_id();
    let settings = settings(&id, proposed, None, &rules(state))?;
    let entry = principal.entry(
        state.clock.now(),
        "stream.created",
        resource(&settings),
        created_details(&settings),
    );
    let stream = Stream {
        settings,
        state: StreamState::default(),
        created_at: state.clock.now(),
    };
    commit(
        state,
        principal,
        vec![Change::CreateStream(Box::new(stream))],
        vec![entry],
    )
    .await?;
    existing(state, principal, &id).await
}

fn show(p: &[EventPattern]) -> Vec<String> {
    p.iter().map(|p| p.as_str().to_owned()).collect()
}

/// What to change; what is absent stays as it is. `tls`, when present,
/// replaces the TLS settings whole, but for a client key left out while
/// the certificate stays, which is kept.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"format": "ocsf", "enabled": true})))]
pub struct StreamPatch {
    #[schema(max_length = 2048)]
    pub(crate) url: Option<String>,
    pub(crate) format: Option<String>,
    #[schema(max_items = 50)]
    pub(crate) events: Option<Vec<String>>,
    pub(crate) facility: Option<u8>,
    pub(crate) app_name: Option<String>,
    #[schema(max_length = 500)]
    pub(crate) description: Option<String>,
    pub(crate) enabled: Option<bool>,
    pub(crate) tls: Option<TlsInput>,
}

/// Changes a stream.
#[utoipa::path(
    patch,
    path = "/v1/orgs/{org}/streams/{id}",
    operation_id = "update_stream",
    tag = "streams",
    params(
        crate::http::responses::OrgPath,
        ("id" = String, Path, description = "The stream's id."),
    ),
    request_body = StreamPatch,
    responses(
        (status = 200, description = "The stream now.", body = StreamView),
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
) -> Result<Json<StreamView>, ApiError> {
    let req: StreamPatch = body::parse(raw, state.config.max_body_bytes)?;
    Ok(Json(view(&state, &update_stream(&state, &principal, &id, req).await?)))
}

/// Changes stream `id`, recorded as `stream.updated`; unchanged, nothing
/// is recorded. Returns the stream as it is now.
pub async fn update_stream(
    state: &AppState,
    principal: &Principal,
    id: &str,
    req: StreamPatch,
) -> Result<Stream, ApiError> {
    principal.authorize(Action::ManageStreams)?;
    let old = existing(state, principal, id).await?;
    let o = &old.settings;
    let tls_given = req.tls.is_some();
    let proposed = Proposed {
        url: req.url.unwrap_or_else(|| o.destination.to_url()),
        format: req.format.unwrap_or_else(|| o.format.as_str().to_owned()),
        events: req.events.unwrap_or_else(|| show(&o.events)),
        facility: Some(req.facility.unwrap_or(o.facility)),
        app_name: Some(req.app_name.unwrap_or_else(|| o.app_name.clone())),
        description: Some(req.description.unwrap_or_else(|| o.description.clone())),
        enabled: req.enabled.unwrap_or(o.enabled),
        tls: req.tls.unwrap_or_else(|| TlsInput {
            ca_pem: o.tls.ca_pem.clone(),
            client_cert_pem: o.tls.client_cert_pem.clone(),
            client_key_pem: None,
        }),
    };
    let keep_key = proposed.tls.client_key_pem.is_none() && proposed.tls.client_cert_pem.is_some();
    let new = settings(id, proposed, o.tls.client_key.as_deref(), &rules(state))?;
    let changes = changes(o, &new, tls_given);
    if !changes.is_empty() {
        let details = json!({"destination": new.destination.to_url(), "changes": changes});
        let entry = principal.entry(state.clock.now(), "stream.updated", resource(o), details);
        let change = Change::UpdateStream {
            settings: Box::new(new),
            keep_tls_key: keep_key,
        };
        commit(state, principal, vec![change], vec![entry]).await?;
    }
    existing(state, principal, id).await
}

/// Each setting that differs, as `{"old": …, "new": …}`; TLS material as
/// whether it is present (a new key is a change even where both have one).
fn changes(o: &StreamSettings, n: &StreamSettings, tls_given: bool) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    let mut differ = |name: &str, old: Value, new: Value| {
        if old != new {
            out.insert(name.into(), json!({"old": old, "new": new}));
        }
    };
    differ(
        "destination",
        json!(o.destination.to_url()),
        json!(n.destination.to_url()),
    );
    differ("format", json!(o.format.as_str()), json!(n.format.as_str()));
    differ("events", json!(show(&o.events)), json!(show(&n.events)));
    differ("facility", json!(o.facility), json!(n.facility));
    differ("app_name", json!(o.app_name), json!(n.app_name));
    differ("description", json!(o.description), json!(n.description));
    differ("enabled", json!(o.enabled), json!(n.enabled));
    if tls_given && o.tls != n.tls {
        out.insert(
            "tls".into(),
            json!({"custom_ca": n.tls.ca_pem.is_some(), "client_certificate": n.tls.client_cert_pem.is_some()}),
        );
    }
    out
}

/// Deletes a stream.
#[utoipa::path(
    delete,
    path = "/v1/orgs/{org}/streams/{id}",
    operation_id = "delete_stream",
    tag = "streams",
    params(
        crate::http::responses::OrgPath,
        ("id" = String, Path, description = "The stream's id."),
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
    delete_stream(&state, &principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes stream `id`, recorded as `stream.deleted`.
pub async fn delete_stream(state: &AppState, principal: &Principal, id: &str) -> Result<(), ApiError> {
    principal.authorize(Action::ManageStreams)?;
    let old = existing(state, principal, id).await?;
    let details = json!({"destination": old.settings.destination.to_url()});
    let entry = principal.entry(state.clock.now(), "stream.deleted", resource(&old.settings), details);
    let change = Change::DeleteStream {
        id: old.settings.id.clone(),
    };
    commit(state, principal, vec![change], vec![entry]).await?;
    Ok(())
}
