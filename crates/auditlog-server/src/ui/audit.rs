//! Platform → Audit: the organization's log as a table, newest first, with
//! filters kept in the URL, pages appended in place, one entry in full,
//! and an Export button for exactly the filtered view.
//!
//! The page reads through the same listing code as the API
//! (`routes::entries`), so it shows what the API returns and never an
//! entry past the retention window.

use auditlog_domain::filter::Filter;
use auditlog_domain::permissions::{self, Action, Authority};
use auditlog_domain::read_audit::{Read, ReadKind};
use auditlog_domain::summary;
use auditlog_domain::{Catalog, Entry, Org, Timestamp};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::chart;
use super::console::OrgPage;
use super::filters::{RANGES, UiFilters};
use super::layout::{self, message_page, time};
use super::{Failure, Viewer, no_store, request_id};
use crate::http::auth::{Credential, Principal};
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::query_string::QueryPairs;
use crate::http::reads;
use crate::http::routes::entries::{listing, page_of, visible_entry};
use crate::http::state::AppState;

/// A problem with the filters, shown above the table.
struct Shown {
    field: String,
    message: String,
    /// Where in the search text, in characters: start and length.
    span: Option<(usize, usize)>,
}

/// A reader of the log at one of its pages: who, which organization (once
/// they may read its log), the page's query and filters, and the request.
pub struct Reading {
    viewer: Viewer,
    org: Org,
    pairs: Vec<(String, String)>,
    ui: UiFilters,
    ctx: RequestContext,
    headers: HeaderMap,
}

impl FromRequestParts<AppState> for Reading {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Failure> {
        let slug = super::extract::slug(parts, state).await?;
        let Ok(ctx) = RequestContext::from_request_parts(parts, state).await;
        let QueryPairs(pairs) = QueryPairs::from_request_parts(parts, state).await.map_err(|e| {
            let said = html! { p { (e.to_string()) } };
            Failure::Page(Box::new(message_page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                None,
                said,
            )))
        })?;
        let (viewer, org) = reader(state, &parts.headers, &parts.uri, &slug).await?;
        Ok(Self {
            viewer,
            org,
            ui: UiFilters::from_pairs(&pairs),
            pairs,
            ctx,
            headers: parts.headers.clone(),
        })
    }
}

/// The signed-in reader as the log names them, for recording their read.
fn as_principal(viewer: &Viewer, org: &Org, ctx: RequestContext) -> Principal {
    let role = viewer
        .orgs
        .iter()
        .find(|(o, _)| o.id == org.id)
        .map_or(auditlog_domain::Role::Viewer, |(_, r)| *r);
    Principal {
        org: org.clone(),
        authority: Authority::User(role),
        credential: Credential::Session(viewer.session.clone()),
        ctx,
    }
}

/// The viewer and the organization, once they may read its log; otherwise
/// the page that says why not.
async fn reader(state: &AppState, headers: &HeaderMap, uri: &Uri, slug: &str) -> Result<(Viewer, Org), Failure> {
    let page = OrgPage::load(state, headers, uri, slug).await?;
    if permissions::check(&Authority::User(page.role), &Action::ReadAudit).is_err() {
        return Err(Failure::Page(Box::new(message_page(
            StatusCode::FORBIDDEN,
            "You need the owner or admin role",
            Some(&page.nav("")),
            html! {
                p {
                    "The audit log of " strong { (page.org.name) } " can be read by owners and admins. "
                    "Your role is " strong { (page.role.as_str()) } "."
                }
                p { "Ask an owner or admin of " (page.org.name) " if you need access." }
            },
        ))));
    }
    Ok((page.viewer, page.org))
}

fn internal(headers: &HeaderMap) -> impl Fn(ApiError) -> Failure + '_ {
    move |e| Failure::Internal(e, request_id(headers))
}

/// The table's narrow form: the date, then the time.
fn time_in_two_lines(t: Timestamp) -> Markup {
    let s = t.to_rfc3339();
    html! {
        time datetime=(s) title=(s) { (&s[..10]) br; span.clock { (&s[11..19]) " UTC" } }
    }
}

fn entry_href(slug: &str, e: &Entry) -> String {
    format!("/orgs/{slug}/audit/entries/{}", e.id)
}

/// The Audit page filtered by `pairs`.
fn filtered(slug: &str, pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    format!("/orgs/{slug}/audit?{}", q.finish())
}

fn resource(slug: &str, e: &Entry) -> Markup {
    let href = filtered(
        slug,
        &[("resource_type", &e.resource.kind), ("resource_id", &e.resource.id)],
    );
    html! {
        a.filter href=(href) title="Everything about this resource" {
            span.rtype { (e.resource.kind) }
            " "
            code { (e.resource.id) }
        }
        @if let Some(name) = &e.resource.name {
            br; span.muted { (name) }
        }
    }
}

fn actor(slug: &str, e: &Entry) -> Markup {
    html! { a.filter href=(filtered(slug, &[("actor", &e.actor.id)])) title="Everything by this actor" { (e.actor.id) } }
}

fn rows(slug: &str, entries: &[Entry]) -> Markup {
    html! {
        @for e in entries {
            tr.entry {
                td.when { a href=(entry_href(slug, e)) { (time_in_two_lines(e.timestamp)) } }
                td.actor {
                    (actor(slug, e))
                    @if e.actor.id != e.actor.kind.as_str() { br; span.muted { (e.actor.kind.as_str()) } }
                }
                td.event { code { (e.event) } }
                td.resource { (resource(slug, e)) }
                td.details { (summary::summary(&e.details)) }
                td.ip { @if let Some(ip) = e.ip_address { (ip.to_string()) } @else { span.muted { "—" } } }
            }
        }
    }
}

fn pager(slug: &str, ui: &UiFilters, next: Option<&str>) -> Markup {
    html! {
        div #pager {
            @if let Some(cursor) = next {
                @let query = UiFilters { cursor: cursor.to_owned(), ..ui.clone() }.to_query();
                a.button #more href=(format!("/orgs/{slug}/audit?{query}")) { "Show older entries" }
            } @else {
                p.muted.end { "End of the log for these filters." }
            }
        }
    }
}

/// The event picker: categories (`category.*`) and their events.
fn event_picker(catalog: &Catalog, selected: &str) -> Markup {
    html! {
        select #event name="event" {
            option value="" selected[selected.is_empty()] { "Any event" }
            @for cat in catalog.categories() {
                optgroup label=(cat.label) {
                    @let all = format!("{}.*", cat.name);
                    option value=(all) selected[selected == all] { "All " (cat.label.to_lowercase()) " events" }
                    @for ev in catalog.events().filter(|e| e.category == cat.name) {
                        option value=(ev.name) selected[selected == ev.name] { (ev.name) }
                    }
                }
            }
        }
    }
}

fn filter_form(slug: &str, catalog: &Catalog, ui: &UiFilters) -> Markup {
    // The first event the picker knows goes into the picker; the rest stay
    // free patterns.
    let in_picker = |e: &String| {
        catalog.contains(e)
            || e.strip_suffix(".*")
                .is_some_and(|c| catalog.categories().any(|cat| cat.name == c))
    };
    let picked = ui.events.iter().find(|e| in_picker(e)).cloned().unwrap_or_default();
    let patterns: Vec<&str> = ui.events.iter().filter(|e| **e != picked).map(String::as_str).collect();
    let custom = ui.range.is_empty() || ui.range == "custom";
    html! {
        form #filters method="get" action=(format!("/orgs/{slug}/audit")) role="search" {
            div.search {
                label for="q" { "Search" }
                input #q type="search" name="q" value=(ui.q) spellcheck="false" autocomplete="off"
                    placeholder="actor:alice@acme.com event:api_key.* resource:project:p_1 after:2026-01-01"
                    aria-describedby="q-help";
                small #q-help { "Terms: " code { "actor:" } ", " code { "event:" } ", " code { "resource:type:id" } ", " code { "after:" } ", " code { "before:" } }
            }
            div.fields {
                div { label for="actor" { "Actor" } input #actor name="actor" value=(ui.actor) placeholder="email, key prefix or system"; }
                div { label for="event" { "Event type" } (event_picker(catalog, &picked)) }
                div { label for="event-pattern" { "or event pattern" } input #event-pattern name="event" value=(patterns.join(", ")) placeholder="api_key.*"; }
                div { label for="resource_type" { "Resource type" } input #resource_type name="resource_type" value=(ui.resource_type) placeholder="project"; }
                div { label for="resource_id" { "Resource id" } input #resource_id name="resource_id" value=(ui.resource_id) placeholder="p_1"; }
                div {
                    label for="range" { "Date range" }
                    select #range name="range" {
                        option value="" selected[ui.range.is_empty()] { "Any time" }
                        @for (value, label, _) in RANGES {
                            option value=(value) selected[ui.range == value] { (label) }
                        }
                        option value="custom" selected[ui.range == "custom"] { "Custom dates" }
                    }
                }
                div.dates.custom-dates hidden[!custom] {
                    div { label for="from" { "From (UTC)" } input #from type="date" name="from" value=(if custom { ui.from.as_str() } else { "" }); }
                    div { label for="to" { "To (UTC, inclusive)" } input #to type="date" name="to" value=(if custom { ui.to.as_str() } else { "" }); }
                }
            }
            div.actions {
                button.primary type="submit" { "Apply filters" }
                @if ui.is_filtered() {
                    a.button href=(format!("/orgs/{slug}/audit")) { "Clear filters" }
                }
            }
        }
    }
}

/// The problems, with the search text marked where the query language
/// found one.
fn problems_box(problems: &[Shown], q: &str) -> Markup {
    html! {
        div.alert #problems role="alert" {
            p { strong { "These filters cannot be applied:" } }
            ul {
                @for p in problems {
                    li {
                        strong { (label_of(&p.field)) } ": " (p.message)
                        @if let (Some((at, len)), "q") = (p.span, p.field.as_str()) {
                            @let (before, bad, after) = split_chars(q, at, len);
                            br;
                            code.query { (before) mark { (if bad.is_empty() { " " } else { bad }) } (after) }
                        }
                    }
                }
            }
        }
    }
}

/// `text` cut at character positions: before, the `len` characters from
/// `at`, after.
fn split_chars(text: &str, at: usize, len: usize) -> (&str, &str, &str) {
    let byte = |n: usize| text.char_indices().nth(n).map_or(text.len(), |(i, _)| i);
    let (start, end) = (byte(at), byte(at + len.max(1)));
    (&text[..start], &text[start..end], &text[end..])
}

fn label_of(field: &str) -> &str {
    match field {
        "q" => "Search",
        "actor" => "Actor",
        "event" => "Event",
        "resource_type" => "Resource type",
        "resource_id" => "Resource id",
        "from" => "From",
        "to" => "To",
        "range" => "Date range",
        "cursor" => "Page",
        other => other,
    }
}

/// A page of entries, and the API parameters that selected it.
type Found = (Vec<(String, String)>, (Vec<Entry>, Option<String>), Filter);

pub async fn page(State(state): State<AppState>, reading: Reading) -> Result<Response, Failure> {
    let Reading {
        viewer,
        org,
        pairs,
        ui,
        ctx,
        headers,
    } = reading;
    let slug = org.slug.clone();
    let only_rows = pairs.iter().any(|(k, v)| k == "fragment" && v == "rows");
    let (problems, found) = look(&state, &headers, &pairs, &ui, (&viewer, &org, ctx)).await?;

    if only_rows {
        let (entries, next) = found.map(|(_, page, _)| page).unwrap_or_default();
        let body = html! {
            table { tbody #rows { (rows(&slug, &entries)) } }
            (pager(&slug, &ui, next.as_deref()))
        };
        return Ok(no_store((StatusCode::OK, body).into_response()));
    }

    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let export_href = found.as_ref().map(|(api, _, _)| export_href(&slug, api));
    // Counting a month of a large log takes longer than the table, so the
    // chart comes after the first paint (the script fetches it; without
    // the script the link opens it).
    let chart = match &found {
        Some(_) => html! {
            figure.chart #chart {
                a #chart-link href=(format!("/orgs/{slug}/audit/chart?{}", ui.to_query())) { "Show this view's entries over time" }
            }
        },
        None => html! {},
    };
    let main = html! {
        (heading(&org, export_href.as_deref()))
        (filter_form(&slug, &state.catalog, &ui))
        @if !problems.is_empty() {
            (problems_box(&problems, &ui.q))
        }
        (chart)
        @if let Some((_, (entries, next), _)) = &found {
            (results(&slug, &ui, entries, next.as_deref()))
        }
        dialog #entry-dialog aria-labelledby="entry-title" {
            form method="dialog" { button.close type="submit" aria-label="Close" { "×" } }
            div #entry-body {}
        }
    };
    let title = format!("Audit log · {}", org.name);
    let html = layout::page(&title, Some(&viewer.nav(Some(&slug))), main);
    Ok(no_store((status, html).into_response()))
}

/// `GET /orgs/{org}/audit/chart`: the view's entries over time, as a page
/// of its own or (`fragment=1`) as the figure the Audit page fetches. A
/// read of the log like the table's, recorded as the same look.
pub async fn chart_page(State(state): State<AppState>, reading: Reading) -> Result<Response, Failure> {
    let (viewer, org, ui) = (&reading.viewer, &reading.org, &reading.ui);
    let slug = &org.slug;
    let fragment = reading.pairs.iter().any(|(k, v)| k == "fragment" && v == "1");
    let filter = ui
        .api_pairs(state.clock.now())
        .ok()
        .and_then(|api| listing(&api, &state, org, &[]).ok())
        .map(|req| req.filter);
    let Some(filter) = filter else {
        return Ok(no_store(
            (
                StatusCode::BAD_REQUEST,
                html! { p { "These filters cannot be charted; fix them on the Audit page." } },
            )
                .into_response(),
        ));
    };
    let (chart, total) = chart_of(&state, org, &filter, ui).await;
    let asked: Vec<_> = reading.pairs.iter().filter(|(k, _)| k != "fragment").cloned().collect();
    let reader = as_principal(viewer, org, reading.ctx.clone());
    reads::record(&state, &reader, Read::from_query(ReadKind::List, &asked, total));
    if fragment {
        return Ok(no_store((StatusCode::OK, chart).into_response()));
    }
    let main = html! {
        p { a href=(format!("/orgs/{slug}/audit?{}", ui.to_query())) { "← Audit log" } }
        h1 { "Entries over time" }
        (chart)
    };
    let html = layout::page("Entries over time", Some(&viewer.nav(Some(slug))), main);
    Ok(no_store((StatusCode::OK, html).into_response()))
}

/// The view's entries over time, and how many there are; nothing when
/// they cannot be counted now.
async fn chart_of(state: &AppState, org: &Org, filter: &Filter, ui: &UiFilters) -> (Markup, u64) {
    let now = state.clock.now();
    let cutoff = org.retention_cutoff(now);
    // A `from` at the cutoff is the retention window's, not one asked for.
    let asked_from = filter.from.filter(|f| *f > cutoff);
    let window = chart::Window::of(asked_from, filter.to, now, cutoff);
    let windowed = Filter {
        from: Some(window.from),
        to: Some(window.to),
        ..filter.clone()
    };
    match state.store.histogram(org.id, &windowed, window.bar_ms).await {
        Ok(buckets) => {
            let categories: Vec<String> = state.catalog.categories().map(|c| c.name).collect();
            let total = buckets.iter().map(|b| b.count).sum();
            (chart::render(window, &buckets, &categories, ui, &org.slug), total)
        }
        Err(e) => {
            tracing::warn!(error = %e, "the chart could not be counted");
            (html! { p { "The chart cannot be drawn right now." } }, 0)
        }
    }
}

/// Reads the page the filters select, recording the look; or what is
/// wrong with the filters.
async fn look(
    state: &AppState,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    ui: &UiFilters,
    (viewer, org, ctx): (&Viewer, &Org, RequestContext),
) -> Result<(Vec<Shown>, Option<Found>), Failure> {
    let api = match ui.api_pairs(state.clock.now()) {
        Ok(api) => api,
        Err(ps) => {
            let shown = ps.into_iter().map(|p| Shown {
                field: p.field.to_owned(),
                message: p.message,
                span: None,
            });
            return Ok((shown.collect(), None));
        }
    };
    match listing(&api, state, org, &[]) {
        Ok(req) => {
            let page = page_of(state, org, &req).await.map_err(internal(headers))?;
            // The page's own parameters, which stay the same from one
            // page-turn (or time-range preset) to the next.
            let asked: Vec<_> = pairs.iter().filter(|(k, _)| k != "fragment").cloned().collect();
            let read = Read::from_query(ReadKind::List, &asked, page.0.len() as u64);
            reads::record(state, &as_principal(viewer, org, ctx), read);
            Ok((Vec::new(), Some((api, page, req.filter))))
        }
        Err(ApiError::BadRequest { details, message, .. }) => {
            let mut problems = Vec::new();
            if details.is_empty() {
                problems.push(Shown {
                    field: String::new(),
                    message,
                    span: None,
                });
            }
            problems.extend(details.into_iter().map(|p| Shown {
                span: p.position.map(|at| (at, p.length.unwrap_or(1))),
                field: p.field,
                message: p.message,
            }));
            Ok((problems, None))
        }
        Err(e) => Err(internal(headers)(e)),
    }
}

/// The export of exactly the filtered view (every page of it).
fn export_href(slug: &str, api: &[(String, String)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::from("format=csv"));
    for (k, v) in api.iter().filter(|(k, _)| k != "cursor") {
        q.append_pair(k, v);
    }
    format!("/v1/orgs/{slug}/audit/export?{}", q.finish())
}

fn heading(org: &Org, export_href: Option<&str>) -> Markup {
    html! {
        div.heading {
            div {
                h1 { "Audit log" }
                p.muted #retention {
                    "Entries are kept for " (org.retention_days()) " days on the " (org.plan.label()) " plan."
                }
            }
            div.export {
                @if let Some(href) = export_href {
                    a.button.primary #export href=(href) download { "Export CSV" }
                } @else {
                    button.primary #export type="button" disabled { "Export CSV" }
                }
                span #export-status role="status" aria-live="polite" {}
            }
        }
    }
}

/// The table of entries and its pager, or why there are none.
fn results(slug: &str, ui: &UiFilters, entries: &[Entry], next: Option<&str>) -> Markup {
    html! {
        @if entries.is_empty() {
            div.empty #empty {
                @if ui.is_filtered() {
                    p { strong { "No entries match these filters." } }
                    p { "Try a wider date range or fewer filters, or " a href=(format!("/orgs/{slug}/audit")) { "clear them" } "." }
                } @else {
                    p { strong { "No entries yet." } }
                    p { "Entries appear here as your services send them to " code { "POST /v1/orgs/" (slug) "/audit/events" } " and as people manage this organization." }
                }
            }
        } @else {
            div.table-scroll {
                table #entries {
                    caption.visually-hidden { "Audit log entries, newest first. Select a timestamp to see the whole entry." }
                    thead {
                        tr {
                            th scope="col" { "Timestamp (UTC)" }
                            th scope="col" { "Actor" }
                            th scope="col" { "Event" }
                            th scope="col" { "Resource" }
                            th scope="col" { "Details" }
                            th scope="col" { "IP address" }
                        }
                    }
                    tbody #rows { (rows(slug, entries)) }
                }
            }
            (pager(slug, ui, next))
        }
    }
}

/// The management page of the entry's resource, when it still exists.
async fn object_page(state: &AppState, org: &Org, e: &Entry) -> Option<String> {
    let (slug, id) = (&org.slug, e.resource.id.as_str());
    let exists = match e.resource.kind.as_str() {
        "member" => state.store.member(org.id, id).await.ok()?.is_some(),
        "project" => state.store.project(org.id, id).await.ok()?.is_some(),
        "webhook" => state.store.webhook(org.id, id).await.ok()?.is_some(),
        "api_key" => {
            let prefix = auditlog_domain::api_key::KeyPrefix::parse(id)?;
            state
                .store
                .api_key(&prefix)
                .await
                .ok()?
                .is_some_and(|k| k.org_id == org.id)
        }
        "organization" => id == slug.as_str(),
        _ => false,
    };
    let page = match e.resource.kind.as_str() {
        "member" => format!("/orgs/{slug}/members"),
        "project" => format!("/orgs/{slug}/projects"),
        "webhook" => format!("/orgs/{slug}/webhooks/{id}"),
        "api_key" => format!("/orgs/{slug}/api-keys"),
        _ => format!("/orgs/{slug}/settings"),
    };
    exists.then_some(page)
}

fn submitter(slug: &str, e: &Entry) -> Markup {
    html! {
        @if let Some(by) = &e.submitted_by {
            @let q = format!("submitted_by:{}", by.to_text());
            a.filter href=(filtered(slug, &[("q", &q)])) title="Everything this credential submitted" { (by.id) }
            " " span.muted { "(" (by.kind.as_str()) ")" }
        } @else {
            span.muted { "not recorded (entry from before submitters were kept)" }
        }
    }
}

fn entry_view(catalog: &Catalog, slug: &str, e: &Entry, object: Option<&str>) -> Markup {
    let changes = summary::changes(&e.details);
    let details = serde_json::to_string_pretty(&e.details).unwrap_or_default();
    html! {
        article.entry-view {
            h2 #entry-title { code { (e.event) } }
            @if let Some(spec) = catalog.get(&e.event) {
                p.muted { (spec.description) }
            }
            @if !changes.is_empty() {
                table.changes {
                    caption { "What changed" }
                    thead { tr { th scope="col" { "Field" } th scope="col" { "Before" } th scope="col" { "After" } } }
                    tbody {
                        @for c in &changes {
                            tr { th scope="row" { (c.field) } td.old { (c.old) } td.new { (c.new) } }
                        }
                    }
                }
            }
            dl {
                dt { "Timestamp" } dd { (time(e.timestamp)) }
                dt { "Received" } dd { (time(e.received_at)) }
                dt { "Actor" } dd { (actor(slug, e)) " " span.muted { "(" (e.actor.kind.as_str()) ")" } }
                dt { "Submitted by" } dd { (submitter(slug, e)) }
                dt { "Resource" } dd {
                    (resource(slug, e))
                    @if let Some(href) = object { br; a href=(href) { "Open its page" } }
                }
                dt { "IP address" } dd { @if let Some(ip) = e.ip_address { (ip.to_string()) } @else { "—" } }
                dt { "User agent" } dd { (e.user_agent.as_deref().unwrap_or("—")) }
                dt { "Request id" } dd { code { (e.request_id.as_deref().unwrap_or("—")) } }
                dt { "Sequence" } dd { (e.seq) }
                dt { "Entry id" } dd { code { (e.id.to_string()) } }
            }
            h3 { "Details" }
            pre.json { code { (details) } }
            p {
                a href=(format!("/orgs/{slug}/audit/entries/{}", e.id)) { "Link to this entry" }
                " · "
                a href=(format!("/orgs/{slug}/audit?{}", form_urlencoded::Serializer::new(String::new()).append_pair("actor", &e.actor.id).finish())) {
                    "Everything by this actor"
                }
            }
        }
    }
}

pub async fn entry(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    ctx: RequestContext,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, Failure> {
    let (viewer, org) = reader(&state, &headers, &uri, &slug).await?;
    let only_body = pairs.iter().any(|(k, v)| k == "fragment" && v == "1");
    let entry = match visible_entry(&state, &org, &id).await {
        Ok(e) => e,
        Err(ApiError::NotFound(_)) => {
            return Err(Failure::Page(Box::new(message_page(
                StatusCode::NOT_FOUND,
                "Entry not found",
                Some(&viewer.nav(Some(&slug))),
                html! {
                    p { "This organization has no entry " code { (id) } ", or it is past the retention window." }
                    p { a href=(format!("/orgs/{slug}/audit")) { "Back to the audit log" } }
                },
            ))));
        }
        Err(e) => return Err(internal(&headers)(e)),
    };
    reads::record(
        &state,
        &as_principal(&viewer, &org, ctx),
        Read::of_one(ReadKind::Entry, &id, 1),
    );
    let object = object_page(&state, &org, &entry).await;
    let view = entry_view(&state.catalog, &slug, &entry, object.as_deref());
    if only_body {
        return Ok(no_store((StatusCode::OK, view).into_response()));
    }
    let main = html! {
        p { a href=(format!("/orgs/{slug}/audit")) { "← Audit log" } }
        (view)
    };
    let html = layout::page(
        &format!("{} · Audit log", entry.event),
        Some(&viewer.nav(Some(&slug))),
        main,
    );
    Ok(no_store((StatusCode::OK, html).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_spans_are_cut_on_characters() {
        assert_eq!(split_chars("actér:x y", 0, 6), ("", "actér:", "x y"));
        assert_eq!(split_chars("é:a bad", 4, 3), ("é:a ", "bad", ""));
        assert_eq!(split_chars("abc", 3, 0), ("abc", "", ""));
    }
}
