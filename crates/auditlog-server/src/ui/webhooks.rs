//! Platform → Webhooks: the organization's endpoints with their health
//! (enabled or not, failing since when, the last delivery, failures in a
//! row), and creating one with the event picker from the catalog and the
//! payload format, its URL checked by the same rules as the API and its
//! secret shown once. One endpoint's page is `webhook`.

use auditlog_domain::Catalog;
use auditlog_domain::permissions::Action;
use auditlog_domain::store::{Delivery, DeliveryStatus};
use auditlog_domain::webhook::{Endpoint, PayloadFormat};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::Failure;
use super::PostedForm;
use super::console::{OrgPage, Outcome, list_table};
use super::extract::Acting;
use super::layout::time;
use crate::http::routes::webhooks::{CreatedWebhook, NewWebhook, create_webhook};
use crate::http::state::AppState;

/// How many of an endpoint's newest deliveries the list looks at for its
/// health.
const HEALTH_WINDOW: u32 = 10;

const COLUMNS: [&str; 5] = ["Endpoint", "Events", "State", "Last delivery", "Failures in a row"];

pub fn list_href(slug: &str) -> String {
    format!("/orgs/{slug}/webhooks")
}

/// `GET /orgs/{org}/webhooks`
pub async fn page(State(state): State<AppState>, page: OrgPage) -> Result<Response, Failure> {
    page.require(&Action::ManageWebhooks, "the webhooks")?;
    render(&state, &page, StatusCode::OK, None, &PostedForm::parse(b"")).await
}

async fn render(
    state: &AppState,
    page: &OrgPage,
    status: StatusCode,
    outcome: Option<Outcome>,
    typed: &PostedForm,
) -> Result<Response, Failure> {
    let internal = |e: auditlog_domain::StoreError| page.failed(e);
    let endpoints = state.store.webhooks(page.org.id).await.map_err(internal)?;
    let recent = state
        .store
        .latest_deliveries(page.org.id, HEALTH_WINDOW)
        .await
        .map_err(internal)?;
    let none = Vec::new();
    let rows: Vec<Markup> = endpoints
        .iter()
        .map(|e| row(page.slug(), e, recent.get(&e.id).unwrap_or(&none)))
        .collect();
    let main = html! {
        div.heading { div {
            h1 { "Webhooks" }
            p.muted { "Each entry of the log is sent, signed (Standard Webhooks), to every enabled endpoint whose events match it, in order, until its receiver answers 2xx." }
        } }
        @if let Some(o) = &outcome { (o.show()) }
        (create_form(page, &state.catalog, typed))
        (list_table("webhooks", "Webhook endpoints and their health", &COLUMNS, rows, "No endpoints yet."))
    };
    Ok(page.render(status, "Webhooks", "webhooks", main))
}

/// How many of the newest deliveries failed their last attempt, counted
/// until one that got through; true when the whole window failed, so there
/// may be more.
fn failures_in_a_row(recent: &[Delivery]) -> (usize, bool) {
    let failed = |d: &&Delivery| {
        d.status == DeliveryStatus::Failed
            || (d.attempts > 0 && !d.last_status.is_some_and(|s| (200..300).contains(&s)))
    };
    let n = recent.iter().take_while(failed).count();
    (n, n == recent.len() && recent.len() as u32 == HEALTH_WINDOW)
}

fn row(slug: &str, e: &Endpoint, recent: &[Delivery]) -> Markup {
    let (failures, more) = failures_in_a_row(recent);
    html! {
        tr {
            th scope="row" {
                a href=(format!("{}/{}", list_href(slug), e.id)) { (e.url) }
                @if !e.description.is_empty() { br; span.muted { (e.description) } }
            }
            td { (events_text(e)) }
            td { (state_text(e)) }
            td {
                @match recent.first() {
                    Some(d) => { (delivery_status(d)) " " span.muted { "seq " (d.seq) } },
                    None => span.muted { "none yet" },
                }
            }
            td { (failures) @if more { "+" } }
        }
    }
}

pub fn events_text(e: &Endpoint) -> Markup {
    html! {
        @if e.events.is_empty() { "every event" }
        @for p in &e.events { code { (p.as_str()) } " " }
    }
}

pub fn state_text(e: &Endpoint) -> Markup {
    html! {
        @if !e.enabled {
            strong.warning { "Disabled" }
            @if let Some(why) = &e.disabled_reason { br; span.muted { (why) } }
        } @else if let Some(since) = e.failing_since {
            strong.warning { "Failing" } br; span.muted { "since " (time(since)) }
        } @else {
            "Enabled"
        }
    }
}

pub fn delivery_status(d: &Delivery) -> Markup {
    html! {
        @match (d.status, d.last_status) {
            (DeliveryStatus::Delivered, Some(code)) => span { "delivered (" (code) ")" },
            (DeliveryStatus::Delivered, None) => span { "delivered" },
            (DeliveryStatus::Failed, _) => strong.warning { "failed" },
            (DeliveryStatus::Pending, _) if d.attempts == 0 => span { "pending" },
            (DeliveryStatus::Pending, _) => strong.warning { "retrying" },
        }
    }
}

fn create_form(page: &OrgPage, catalog: &Catalog, typed: &PostedForm) -> Markup {
    let chosen: Vec<&str> = typed.all("event").collect();
    html! {
        form.inline-form #create-webhook method="post" action=(list_href(page.slug())) {
            h2 { "Add an endpoint" }
            (page.csrf_field())
            div.wide { label for="webhook-url" { "URL" } input #webhook-url type="url" name="url" required maxlength="2048" value=(typed.get("url")) placeholder="https://hooks.example.com/audit"; }
            div.wide { label for="webhook-description" { "Description" } input #webhook-description name="description" maxlength="500" value=(typed.get("description")); }
            (event_picker(catalog, &chosen))
            (payload_format_picker(typed.field("payload_format").unwrap_or(PayloadFormat::default().as_str())))
            button.primary type="submit" { "Add endpoint" }
        }
    }
}

/// The payload format, `chosen` selected, with what it changes.
pub fn payload_format_picker(chosen: &str) -> Markup {
    html! {
        div.wide {
            label for="webhook-payload-format" { "Payload format" }
            select #webhook-payload-format name="payload_format" aria-describedby="webhook-payload-format-hint" {
                @for f in PayloadFormat::ALL {
                    option value=(f.as_str()) selected[f.as_str() == chosen] { (payload_format_label(f)) }
                }
            }
            p.hint.muted #webhook-payload-format-hint {
                "What each delivery's " code { "data" } " holds. Either way the message is signed the same way (Standard Webhooks)."
            }
        }
    }
}

pub fn payload_format_label(f: PayloadFormat) -> &'static str {
    match f {
        PayloadFormat::Auditlog => "auditlog: the entry as the API returns it",
        PayloadFormat::Ocsf => "OCSF 1.8.0: the entry as an OCSF event, for a SIEM",
    }
}

/// The form's choice of field `name`, absent when it is not there or empty
/// (so the API's default applies).
pub fn chosen(form: &PostedForm, name: &str) -> Option<String> {
    form.field(name).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// Checkboxes for every category (`category.*`) and event of the catalog;
/// none ticked means every event.
pub fn event_picker(catalog: &Catalog, chosen: &[&str]) -> Markup {
    let summary = if chosen.is_empty() {
        "every event".to_owned()
    } else {
        chosen.join(", ")
    };
    html! {
        details.events open[chosen.is_empty()] {
            summary { "Events: " (summary) }
            (picker_boxes(catalog, chosen))
        }
    }
}

fn picker_boxes(catalog: &Catalog, chosen: &[&str]) -> Markup {
    html! {
        fieldset.events {
            legend { "Events (none ticked: every event)" }
            @for cat in catalog.categories() {
                @let all = format!("{}.*", cat.name);
                div.category {
                    (checkbox(&all, &format!("All {} events", cat.label.to_lowercase()), chosen))
                    @for ev in catalog.events().filter(|e| e.category == cat.name) {
                        (checkbox(&ev.name, &ev.name, chosen))
                    }
                }
            }
        }
    }
}

fn checkbox(value: &str, label: &str, chosen: &[&str]) -> Markup {
    let id = format!("event-{}", value.replace(['.', '*'], "-"));
    html! {
        div.check {
            input type="checkbox" id=(id) name="event" value=(value) checked[chosen.contains(&value)];
            label for=(id) { (label) }
        }
    }
}

/// `POST /orgs/{org}/webhooks`: adds, and shows the secret once; a refused
/// URL or pattern keeps what was typed.
pub async fn create(State(state): State<AppState>, Acting { page, form, ctx }: Acting) -> Result<Response, Failure> {
    let req = NewWebhook {
        url: form.get("url").trim().to_owned(),
        description: Some(form.get("description").to_owned()),
        events: form.all("event").map(str::to_owned).collect(),
        enabled: Some(true),
        payload_format: chosen(&form, "payload_format"),
    };
    let result = create_webhook(&state, &page.principal(ctx), req)
        .await
        .map(|w| created(page.slug(), &w));
    let (status, shown) = page.outcome(result)?;
    let keep = if status.is_success() {
        PostedForm::parse(b"")
    } else {
        form
    };
    render(&state, &page, status, Some(shown), &keep).await
}

fn created(slug: &str, w: &CreatedWebhook) -> Markup {
    html! {
        p { "Endpoint " a href=(format!("{}/{}", list_href(slug), w.webhook.id)) { (w.webhook.id) } " is added." }
        (secret_once(&w.secret, "Its signing secret"))
    }
}

/// A signing secret, shown once with a copy button.
pub fn secret_once(secret: &str, what: &str) -> Markup {
    html! {
        p.warning { strong { "Copy it now." } " It cannot be shown again; your receiver checks signatures with it." }
        p.secret {
            label for="new-secret" { (what) }
            input #new-secret type="text" readonly value=(secret) spellcheck="false" autocomplete="off";
            " " button.copy type="button" data-copy="#new-secret" hidden { "Copy secret" }
        }
    }
}
