//! One webhook endpoint: its settings (edited with the same event picker
//! and payload format), a test message and the receiver's answer, enabling
//! and disabling, rotating the secret (the new one shown once, the overlap
//! stated), deleting, and the delivery log with a "redeliver" action per
//! delivery.

use auditlog_domain::permissions::Action;
use auditlog_domain::store::Delivery;
use auditlog_domain::webhook::{Endpoint, ROTATION_OVERLAP_MS};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::Failure;
use super::PostedForm;
use super::console::{OrgPage, Outcome, list_table, trail_href};
use super::extract::Acting;
use super::layout::time;
use super::webhooks::{
    chosen, delivery_status, event_picker, events_text, list_href, payload_format_label, payload_format_picker,
    secret_once, state_text,
};
use crate::http::error::ApiError;
use crate::http::routes::webhooks::{
    REPLAY_LIMIT, TestResult, WebhookPatch, delete_webhook, redeliver, replay_webhook, rotate_webhook_secret,
    test_webhook, update_webhook,
};
use crate::http::state::AppState;

/// How many deliveries the page lists, newest first.
const SHOWN_DELIVERIES: u32 = 100;

fn href(slug: &str, id: &str) -> String {
    format!("{}/{id}", list_href(slug))
}

/// The page and the endpoint, for a viewer who may manage webhooks.
async fn endpoint(state: &AppState, page: &OrgPage, id: &str) -> Result<Endpoint, Failure> {
    page.require(&Action::ManageWebhooks, "the webhooks")?;
    match state.store.webhook(page.org.id, id).await {
        Ok(Some(e)) => Ok(e),
        Ok(None) => Err(page.not_found(
            &format!("There is no webhook {id:?} in this organization."),
            &list_href(page.slug()),
        )),
        Err(e) => Err(page.failed(e)),
    }
}

/// `GET /orgs/{org}/webhooks/{id}`
pub async fn page(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    page: OrgPage,
) -> Result<Response, Failure> {
    let e = endpoint(&state, &page, &id).await?;
    render(&state, &page, &e, StatusCode::OK, None).await
}

async fn render(
    state: &AppState,
    page: &OrgPage,
    e: &Endpoint,
    status: StatusCode,
    outcome: Option<Outcome>,
) -> Result<Response, Failure> {
    let deliveries = state
        .store
        .deliveries(page.org.id, &e.id, SHOWN_DELIVERIES)
        .await
        .map_err(|err| page.failed(err))?;
    let base = href(page.slug(), &e.id);
    let main = html! {
        p { a href=(list_href(page.slug())) { "← Webhooks" } }
        h1 { "Endpoint " (e.id) }
        @if let Some(o) = &outcome { (o.show()) }
        dl.facts {
            dt { "URL" } dd { code { (e.url) } }
            dt { "Events" } dd { (events_text(e)) }
            dt { "Payload format" } dd { (payload_format_label(e.payload_format)) }
            dt { "State" } dd { (state_text(e)) }
            dt { "Added" } dd { (time(e.created_at)) }
            @if let Some((_, until)) = &e.previous_secret {
                dt { "Previous secret" } dd { "still signs until " (time(*until)) }
            }
        }
        (actions(page, e, &base))
        (deliveries_table(page, &base, &deliveries))
        (replay_form(page, &base))
        (edit_form(page, state, e, &base))
    };
    Ok(page.render(status, &format!("Endpoint {}", e.id), "webhooks", main))
}

fn actions(page: &OrgPage, e: &Endpoint, base: &str) -> Markup {
    let (toggle, label) = if e.enabled {
        ("disable", "Disable")
    } else {
        ("enable", "Enable")
    };
    html! {
        div.actions-row {
            form method="post" action=(format!("{base}/test")) {
                (page.csrf_field()) button.primary type="submit" { "Send a test event" }
            }
            form method="post" action=(format!("{base}/{toggle}")) {
                (page.csrf_field()) button type="submit" { (label) }
            }
            a.button href=(format!("{base}/rotate")) { "Rotate the secret" }
            a.button.danger href=(format!("{base}/delete")) { "Delete" }
            a href=(trail_href(page.slug(), "webhook", &e.id)) { "This endpoint's audit trail" }
        }
    }
}

fn edit_form(page: &OrgPage, state: &AppState, e: &Endpoint, base: &str) -> Markup {
    let chosen: Vec<&str> = e.events.iter().map(|p| p.as_str()).collect();
    html! {
        form.inline-form #edit-webhook method="post" action=(base) {
            h2 { "Settings" }
            (page.csrf_field())
            div.wide { label for="webhook-url" { "URL" } input #webhook-url type="url" name="url" required maxlength="2048" value=(e.url); }
            div.wide { label for="webhook-description" { "Description" } input #webhook-description name="description" maxlength="500" value=(e.description); }
            (event_picker(&state.catalog, &chosen))
            (payload_format_picker(e.payload_format.as_str()))
            button.primary type="submit" { "Save" }
        }
    }
}

fn replay_form(page: &OrgPage, base: &str) -> Markup {
    html! {
        form.inline-form #replay method="post" action=(format!("{base}/replay")) {
            h2 { "Replay" }
            p.hint.muted { "For a receiver that fell behind or lost what it was sent: every entry from this sequence number on that the endpoint subscribes to is sent again, in order (" (REPLAY_LIMIT) " entries per replay)." }
            (page.csrf_field())
            div { label for="from-seq" { "From seq" } input #from-seq type="number" name="from_seq" min="1" required; }
            button type="submit" { "Replay" }
        }
    }
}

fn deliveries_table(page: &OrgPage, base: &str, deliveries: &[Delivery]) -> Markup {
    html! {
        h2 { "Deliveries" }
        @if !deliveries.is_empty() { p.muted { "The newest " (deliveries.len()) ", newest first." } }
        (list_table(
            "deliveries",
            "Deliveries to this endpoint",
            &["Seq", "Status", "Attempts", "Last attempt", "Receiver's answer", "Next retry", "Action"],
            deliveries.iter().map(|d| delivery_row(page, base, d)).collect(),
            "Nothing sent to this endpoint yet.",
        ))
    }
}

fn delivery_row(page: &OrgPage, base: &str, d: &Delivery) -> Markup {
    html! {
        tr {
            th scope="row" { (d.seq) }
            td { (delivery_status(d)) }
            td { (d.attempts) }
            td {
                @if let Some(t) = d.last_attempt_at { (time(t)) }
                @if let Some(ms) = d.last_latency_ms { br; span.muted { (ms) " ms" } }
            }
            td { @if let Some(err) = &d.last_error { code { (err) } } @else if let Some(s) = d.last_status { (s) } }
            td { @if let Some(t) = d.next_attempt_at { (time(t)) } @else { span.muted { "—" } } }
            td {
                form method="post" action=(format!("{base}/deliveries/{}/redeliver", d.id)) {
                    (page.csrf_field())
                    button type="submit" { "Redeliver" span.visually-hidden { " seq " (d.seq) } }
                }
            }
        }
    }
}

/// Runs `act` as the viewer on endpoint `id` and shows the page with its
/// outcome.
async fn act_on<F, Fut>(state: AppState, id: String, acting: Acting, act: F) -> Result<Response, Failure>
where
    F: FnOnce(AppState, crate::http::auth::Principal, String, PostedForm) -> Fut,
    Fut: std::future::Future<Output = Result<Markup, ApiError>>,
{
    let Acting { page, form, ctx } = acting;
    let result = act(state.clone(), page.principal(ctx), id.clone(), form).await;
    let (status, shown) = page.outcome(result)?;
    let e = endpoint(&state, &page, &id).await?;
    render(&state, &page, &e, status, Some(shown)).await
}

/// `POST /orgs/{org}/webhooks/{id}`: saves the settings.
pub async fn save(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    acting: Acting,
) -> Result<Response, Failure> {
    act_on(state, id, acting, |state, who, id, form| async move {
        let patch = WebhookPatch {
            url: Some(form.get("url").trim().to_owned()),
            description: Some(form.get("description").to_owned()),
            events: Some(form.all("event").map(str::to_owned).collect()),
            enabled: None,
            payload_format: chosen(&form, "payload_format"),
        };
        update_webhook(&state, &who, &id, patch).await?;
        Ok(html! { p { "Saved." } })
    })
    .await
}

/// `POST /orgs/{org}/webhooks/{id}/enable`
pub async fn enable(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    acting: Acting,
) -> Result<Response, Failure> {
    toggle(state, id, acting, true).await
}

/// `POST /orgs/{org}/webhooks/{id}/disable`
pub async fn disable(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    acting: Acting,
) -> Result<Response, Failure> {
    toggle(state, id, acting, false).await
}

async fn toggle(state: AppState, id: String, acting: Acting, enabled: bool) -> Result<Response, Failure> {
    act_on(state, id, acting, |state, who, id, _| async move {
        let patch = WebhookPatch {
            url: None,
            description: None,
            events: None,
            enabled: Some(enabled),
            payload_format: None,
        };
        update_webhook(&state, &who, &id, patch).await?;
        Ok(html! { p { (if enabled { "Enabled." } else { "Disabled: nothing is sent to it until it is enabled again." }) } })
    })
    .await
}

/// `POST /orgs/{org}/webhooks/{id}/test`: the receiver's answer, shown.
pub async fn test(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    acting: Acting,
) -> Result<Response, Failure> {
    act_on(state, id, acting, |state, who, id, _| async move {
        Ok(tested(&test_webhook(&state, &who, &id).await?))
    })
    .await
}

fn tested(t: &TestResult) -> Markup {
    html! {
        p #test-result {
            @if t.delivered { "The receiver accepted the test event" } @else { strong { "The receiver did not accept the test event" } }
            @if let Some(s) = t.status { ": HTTP " (s) }
            " after " (t.latency_ms) " ms."
        }
        @if let Some(err) = &t.error { p { code { (err) } } }
    }
}

/// `POST /orgs/{org}/webhooks/{id}/deliveries/{delivery}/redeliver`
pub async fn redeliver_one(
    State(state): State<AppState>,
    Path((_, id, delivery)): Path<(String, String, String)>,
    acting: Acting,
) -> Result<Response, Failure> {
    act_on(state, id, acting, |state, who, id, _| async move {
        let d = redeliver(&state, &who, &id, &delivery).await?;
        Ok(html! { p { "Seq " (d.seq) " is due again and goes out in order with the rest." } })
    })
    .await
}

/// `POST /orgs/{org}/webhooks/{id}/replay`
pub async fn replay(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    acting: Acting,
) -> Result<Response, Failure> {
    act_on(state, id, acting, |state, who, id, form| async move {
        let from = form
            .get("from_seq")
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::invalid("from_seq", "invalid_value", "from seq must be a whole number from 1"))?;
        let r = replay_webhook(&state, &who, &id, from).await?;
        Ok(html! {
            p #replay-result {
                @match r.through_seq {
                    Some(through) => { (r.queued) " entries from seq " (r.from_seq) " through " (through) " are queued again." },
                    None => { "The log has no entry from seq " (r.from_seq) " on." },
                }
                @if let Some(next) = r.next_from_seq { " The log goes on: replay from seq " (next) " for more." }
            }
        })
    })
    .await
}

/// `GET /orgs/{org}/webhooks/{id}/rotate`: are you sure?
pub async fn confirm_rotate(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    page: OrgPage,
) -> Result<Response, Failure> {
    confirm(state, id, page, "rotate").await
}

/// `GET /orgs/{org}/webhooks/{id}/delete`: are you sure?
pub async fn confirm_delete(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    page: OrgPage,
) -> Result<Response, Failure> {
    confirm(state, id, page, "delete").await
}

async fn confirm(state: AppState, id: String, page: OrgPage, what: &str) -> Result<Response, Failure> {
    let slug = page.slug().to_owned();
    let e = endpoint(&state, &page, &id).await?;
    let hours = ROTATION_OVERLAP_MS / 3_600_000;
    let (title, text, button) = match what {
        "rotate" => (
            format!("Rotate the secret of {}?", e.id),
            format!(
                "A new secret signs every message from now on. The current one keeps signing too, for {hours} hours, so you can switch your receiver over without losing a delivery."
            ),
            "Rotate the secret",
        ),
        "delete" => (
            format!("Delete {}?", e.id),
            format!(
                "Nothing more is sent to {}, and its pending deliveries are dropped. Its entries in the log stay.",
                e.url
            ),
            "Delete the endpoint",
        ),
        _ => return Err(page.not_found("There is no such action.", &href(&slug, &id))),
    };
    let back = href(&slug, &e.id);
    let action = format!("{back}/{what}");
    Ok(page.confirmation("webhooks", &title, html! { (text) }, (&action, button), &back))
}

/// `POST /orgs/{org}/webhooks/{id}/rotate`: the new secret, shown once.
pub async fn rotate(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    acting: Acting,
) -> Result<Response, Failure> {
    act_on(state, id, acting, |state, who, id, _| async move {
        let r = rotate_webhook_secret(&state, &who, &id).await?;
        Ok(html! {
            p { "The secret is rotated. The old one keeps signing until " (time(r.previous_secret_valid_until)) "." }
            (secret_once(&r.secret, "The new secret"))
        })
    })
    .await
}

/// `POST /orgs/{org}/webhooks/{id}/delete`: back to the list.
pub async fn delete(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Acting { page, ctx, .. }: Acting,
) -> Result<Response, Failure> {
    let result = delete_webhook(&state, &page.principal(ctx), &id)
        .await
        .map(|()| html! { p { "Deleted endpoint " code { (id) } "." } });
    let (status, shown) = page.outcome(result)?;
    let list = html! {
        section.message {
            h1 { "Webhooks" }
            (shown.show())
            p { a href=(list_href(page.slug())) { "Back to the webhooks" } }
        }
    };
    Ok(page.render(status, "Webhooks", "webhooks", list))
}
