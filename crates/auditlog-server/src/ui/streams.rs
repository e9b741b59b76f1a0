//! Platform → Streams: the organization's SIEM streams (syslog
//! destinations) with their health and how far each has delivered; adding
//! one (URL, format, events, facility, APP-NAME and, folded away, its TLS
//! material), enabling, disabling and, after a confirmation, deleting one,
//! each through the API's own functions. The client key is taken and never
//! shown again, not even on a form that was refused.

use auditlog_domain::permissions::Action;
use auditlog_domain::siem::Format;
use auditlog_domain::stream::{DEFAULT_FACILITY, Stream, StreamSettings, StreamState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::Failure;
use super::PostedForm;
use super::console::{OrgPage, Outcome, list_table, trail_href};
use super::extract::Acting;
use super::layout::time;
use crate::http::error::ApiError;
use crate::http::routes::streams::{
    Health, NewStream, StreamPatch, create_stream, delete_stream, health, update_stream,
};
use crate::http::state::AppState;
use crate::workers::streams::settings::TlsInput;

const COLUMNS: [&str; 7] = [
    "Destination",
    "Format",
    "Events",
    "Health",
    "Delivered through",
    "Last delivered",
    "Actions",
];

fn list_href(slug: &str) -> String {
    format!("/orgs/{slug}/streams")
}

/// `GET /orgs/{org}/streams`
pub async fn page(State(state): State<AppState>, page: OrgPage) -> Result<Response, Failure> {
    render(&state, &page, StatusCode::OK, None, &PostedForm::parse(b"")).await
}

/// The list with `outcome` above it and `typed` in the form. Only those who
/// may manage streams see it, whatever they posted.
async fn render(
    state: &AppState,
    page: &OrgPage,
    status: StatusCode,
    outcome: Option<Outcome>,
    typed: &PostedForm,
) -> Result<Response, Failure> {
    page.require(&Action::ManageStreams, "the streams")?;
    let streams = state.store.streams(page.org.id).await.map_err(|e| page.failed(e))?;
    let rows: Vec<Markup> = streams.iter().map(|s| row(page, s, &health(state, s))).collect();
    let main = html! {
        div.heading { div {
            h1 { "Streams" }
            p.muted { "Each entry of the log is sent over syslog, in order, to every enabled stream whose events match it, as RFC 5424, CEF or OCSF for a SIEM to collect." }
        } }
        @if let Some(o) = &outcome { (o.show()) }
        (create_form(page, typed))
        (list_table("streams", "SIEM streams and their health", &COLUMNS, rows, "No streams yet."))
    };
    Ok(page.render(status, "Streams", "streams", main))
}

fn format_label(f: Format) -> &'static str {
    match f {
        Format::Rfc5424 => "RFC 5424",
        Format::Cef => "CEF",
        Format::Ocsf => "OCSF",
    }
}

fn row(page: &OrgPage, s: &Stream, health: &Health) -> Markup {
    let c = &s.settings;
    let url = c.destination.to_url();
    let base = format!("{}/{}", list_href(page.slug()), c.id);
    html! {
        tr {
            th scope="row" {
                code { (url) }
                @if !c.description.is_empty() { br; span.muted { (c.description) } }
                @if let Some(tls) = tls_text(c) { br; span.muted { (tls) } }
            }
            td { (format_label(c.format)) br; span.muted { "facility " (c.facility) ", " (c.app_name) } }
            td {
                @if c.events.is_empty() { "every event" }
                @for p in &c.events { code { (p.as_str()) } " " }
            }
            td { (health_text(health, &s.state)) }
            td { "seq " (s.state.cursor) }
            td {
                @match s.state.last_delivered_at {
                    Some(t) => (time(t)),
                    None => span.muted { "not yet" },
                }
            }
            td { (actions(page, c, &base, &url)) }
        }
    }
}

/// The TLS settings beyond the defaults, if any.
fn tls_text(c: &StreamSettings) -> Option<String> {
    let mut parts = Vec::new();
    if c.tls.ca_pem.is_some() {
        parts.push("its own CA");
    }
    if c.tls.client_cert_pem.is_some() {
        parts.push("a client certificate");
    }
    (!parts.is_empty()).then(|| format!("TLS with {}", parts.join(" and ")))
}

/// The health in words, so it never rests on colour alone.
fn health_text(h: &Health, st: &StreamState) -> Markup {
    html! {
        @match h {
            Health::Healthy => "Healthy",
            Health::Disabled => strong.warning { "Disabled" },
            Health::Failing | Health::Unhealthy => {
                strong.warning { @if matches!(h, Health::Unhealthy) { "Unhealthy" } @else { "Failing" } }
                @if let Some(since) = st.failing_since { br; span.muted { "since " (time(since)) } }
                @if let Some(err) = &st.last_error { br; code { (err) } }
            },
        }
        @if st.purged_unsent > 0 {
            br;
            strong.warning { (st.purged_unsent) " never sent" }
            span.muted { " (purged by retention before the receiver took them)" }
        }
    }
}

fn actions(page: &OrgPage, c: &StreamSettings, base: &str, url: &str) -> Markup {
    let (toggle, label) = if c.enabled {
        ("disable", "Disable")
    } else {
        ("enable", "Enable")
    };
    html! {
        div.actions-row {
            form method="post" action=(format!("{base}/{toggle}")) {
                (page.csrf_field())
                button type="submit" { (label) span.visually-hidden { " the stream to " (url) } }
            }
            a.button.danger href=(format!("{base}/delete")) { "Delete" span.visually-hidden { " the stream to " (url) } }
            @if page.may(&Action::ReadAudit).is_ok() {
                a href=(trail_href(page.slug(), "stream", &c.id)) { "Audit trail" span.visually-hidden { " of the stream to " (url) } }
            }
        }
    }
}

fn create_form(page: &OrgPage, typed: &PostedForm) -> Markup {
    let facility = typed
        .field("facility")
        .map_or_else(|| DEFAULT_FACILITY.to_string(), str::to_owned);
    let chosen = typed.get("format");
    html! {
        form.inline-form #create-stream method="post" action=(list_href(page.slug())) {
            h2 { "Add a stream" }
            (page.csrf_field())
            div.wide {
                label for="stream-url" { "URL" }
                input #stream-url type="url" name="url" required maxlength="2048" spellcheck="false" value=(typed.get("url")) placeholder="syslog+tls://siem.example.com:6514";
            }
            div {
                label for="stream-format" { "Format" }
                select #stream-format name="format" {
                    @for f in Format::ALL { option value=(f.as_str()) selected[f.as_str() == chosen] { (format_label(f)) } }
                }
            }
            div.wide {
                label for="stream-events" { "Events" }
                input #stream-events name="events" maxlength="2048" spellcheck="false" aria-describedby="stream-events-hint" value=(typed.get("events")) placeholder="api_key.* organization.member_invited";
                p.hint.muted #stream-events-hint { "Event patterns, separated by spaces or commas; none: every event." }
            }
            div { label for="stream-facility" { "Facility (0–23)" } input #stream-facility type="number" name="facility" min="0" max="23" required value=(facility); }
            div { label for="stream-app-name" { "APP-NAME" } input #stream-app-name name="app_name" maxlength="48" spellcheck="false" value=(typed.field("app_name").unwrap_or("auditlog")); }
            div.wide { label for="stream-description" { "Description" } input #stream-description name="description" maxlength="500" value=(typed.get("description")); }
            (tls_fields(typed))
            button.primary type="submit" { "Add stream" }
        }
    }
}

/// The TLS material, folded away unless something was typed in it. The
/// key's box always comes back empty.
fn tls_fields(typed: &PostedForm) -> Markup {
    let given = ["ca_pem", "client_cert_pem", "client_key_pem"]
        .iter()
        .any(|f| !typed.get(f).trim().is_empty());
    html! {
        details.tls open[given] {
            summary { "TLS" }
            p.hint.muted { "Without these, the receiver's certificate is checked against the system's roots and no client certificate is presented." }
            div {
                label for="stream-ca" { "CA certificates (PEM), trusted instead of the system's roots" }
                textarea #stream-ca name="ca_pem" rows="4" spellcheck="false" placeholder="-----BEGIN CERTIFICATE-----" { (typed.get("ca_pem")) }
            }
            div {
                label for="stream-cert" { "Client certificate (PEM), for receivers that ask for one" }
                textarea #stream-cert name="client_cert_pem" rows="4" spellcheck="false" placeholder="-----BEGIN CERTIFICATE-----" { (typed.get("client_cert_pem")) }
            }
            div {
                label for="stream-key" { "Client key (PEM)" }
                textarea #stream-key name="client_key_pem" rows="4" autocomplete="off" spellcheck="false" aria-describedby="stream-key-hint" placeholder="-----BEGIN PRIVATE KEY-----" {}
                p.hint.muted #stream-key-hint { "Stored sealed and never shown again; a form that was refused asks for it anew." }
            }
        }
    }
}

/// The API's request from the form: patterns split at spaces and commas,
/// empty fields as absent, so the API's defaults apply.
fn new_stream(form: &PostedForm) -> Result<NewStream, ApiError> {
    let text = |name: &str| Some(form.get(name).trim()).filter(|v| !v.is_empty()).map(str::to_owned);
    let facility = match text("facility") {
        None => None,
        Some(f) => Some(
            f.parse::<u8>()
                .map_err(|_| ApiError::invalid("facility", "invalid_value", "a syslog facility is 0 to 23"))?,
        ),
    };
    // Browsers send a text area's lines ended with CRLF.
    let pem = |name: &str| text(name).map(|v| v.replace("\r\n", "\n"));
    let tls = TlsInput {
        ca_pem: pem("ca_pem"),
        client_cert_pem: pem("client_cert_pem"),
        client_key_pem: pem("client_key_pem"),
    };
    let given = tls.ca_pem.is_some() || tls.client_cert_pem.is_some() || tls.client_key_pem.is_some();
    Ok(NewStream {
        url: form.get("url").trim().to_owned(),
        format: form.get("format").to_owned(),
        events: form
            .get("events")
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        facility,
        app_name: text("app_name"),
        description: Some(form.get("description").to_owned()),
        enabled: Some(true),
        tls: given.then_some(tls),
    })
}

/// `POST /orgs/{org}/streams`: adds; a refusal keeps what was typed, but
/// for the client key.
pub async fn create(State(state): State<AppState>, Acting { page, form, ctx }: Acting) -> Result<Response, Failure> {
    let result = match new_stream(&form) {
        Ok(req) => create_stream(&state, &page.principal(ctx), req).await,
        Err(e) => Err(e),
    };
    let result = result.map(|s| {
        html! { p { "Stream " code { (s.settings.id) } " to " code { (s.settings.destination.to_url()) } " is added; it carries the entries recorded from now on." } }
    });
    let (status, shown) = page.outcome(result)?;
    let keep = if status.is_success() {
        PostedForm::parse(b"")
    } else {
        form
    };
    render(&state, &page, status, Some(shown), &keep).await
}

/// `POST /orgs/{org}/streams/{id}/enable`
pub async fn enable(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    acting: Acting,
) -> Result<Response, Failure> {
    toggle(&state, &id, acting, true).await
}

/// `POST /orgs/{org}/streams/{id}/disable`
pub async fn disable(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    acting: Acting,
) -> Result<Response, Failure> {
    toggle(&state, &id, acting, false).await
}

async fn toggle(state: &AppState, id: &str, acting: Acting, enabled: bool) -> Result<Response, Failure> {
    let Acting { page, ctx, .. } = acting;
    let patch = StreamPatch {
        url: None,
        format: None,
        events: None,
        facility: None,
        app_name: None,
        description: None,
        enabled: Some(enabled),
        tls: None,
    };
    let result = update_stream(state, &page.principal(ctx), id, patch).await.map(|s| {
        let url = s.settings.destination.to_url();
        html! {
            p {
                @if enabled { "Enabled: entries go to " code { (url) } " again, from where it stopped." }
                @else { "Disabled: nothing is sent to " code { (url) } " until it is enabled again." }
            }
        }
    });
    let (status, shown) = page.outcome(result)?;
    render(state, &page, status, Some(shown), &PostedForm::parse(b"")).await
}

/// `GET /orgs/{org}/streams/{id}/delete`: are you sure?
pub async fn confirm_delete(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    page: OrgPage,
) -> Result<Response, Failure> {
    page.require(&Action::ManageStreams, "the streams")?;
    let list = list_href(page.slug());
    let missing = format!("There is no stream {id:?} in this organization.");
    let stream = page.found(state.store.stream(page.org.id, &id).await, missing, &list)?;
    let url = stream.settings.destination.to_url();
    let text = html! { "Nothing more is sent to " code { (url) } ". Its entries stay in the log." };
    let action = format!("{list}/{}/delete", stream.settings.id);
    let title = format!("Delete the stream to {url}?");
    Ok(page.confirmation("streams", &title, text, (&action, "Delete the stream"), &list))
}

/// `POST /orgs/{org}/streams/{id}/delete`
pub async fn delete(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Acting { page, ctx, .. }: Acting,
) -> Result<Response, Failure> {
    let result = delete_stream(&state, &page.principal(ctx), &id)
        .await
        .map(|()| html! { p { "Deleted stream " code { (id) } "." } });
    let (status, shown) = page.outcome(result)?;
    render(&state, &page, status, Some(shown), &PostedForm::parse(b"")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_purged_before_sending_are_said_whatever_the_health() {
        let mut st = StreamState::default();
        assert!(!health_text(&Health::Healthy, &st).into_string().contains("never sent"));
        st.purged_unsent = 8;
        for h in [Health::Healthy, Health::Failing, Health::Disabled] {
            let text = health_text(&h, &st).into_string();
            assert!(
                text.contains("<strong class=\"warning\">8 never sent</strong>"),
                "{text}"
            );
        }
    }
}
