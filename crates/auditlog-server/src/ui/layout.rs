//! The frame every page shares: the document head with its assets, the
//! sidebar (organization switcher, Platform → Audit, sign-out), and the
//! pages that only say something (error, forbidden, not found).

use auditlog_domain::permissions::{self, Action, Authority};
use auditlog_domain::{Org, Role, Timestamp};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::assets;

/// Who is looking, for the sidebar.
pub struct Nav<'a> {
    pub email: &'a str,
    pub csrf_token: &'a str,
    pub orgs: &'a [(Org, Role)],
    /// The organization being shown, if any.
    pub current: Option<&'a str>,
    /// Its page being shown (`audit`, `members`, …), marked in the sidebar.
    pub page: &'a str,
}

/// The organization's pages, by path segment and name, and what a role
/// needs to open each; pages a role cannot open are left out.
const PAGES: [(&str, &str, Action); 7] = [
    ("audit", "Audit", Action::ReadAudit),
    ("members", "Members", Action::ViewMembers),
    ("api-keys", "API keys", Action::ViewKeys),
    ("projects", "Projects", Action::ViewProjects),
    ("webhooks", "Webhooks", Action::ManageWebhooks),
    ("streams", "Streams", Action::ManageStreams),
    ("settings", "Settings", Action::ViewOrg),
];

/// A whole page. `nav` is absent on the sign-in page.
pub fn page(title: &str, nav: Option<&Nav>, main: Markup) -> Markup {
    document(title, nav, main, None)
}

/// A page titled `title` that sends the browser on to `target` by itself.
/// Single sign-on goes through two. To the provider: the sign-in form's
/// answer may not redirect to another site (the CSP's `form-action 'self'`
/// covers redirects too), while a page's own navigation may. Back from it:
/// the provider's redirect to us is a cross-site navigation, and a browser
/// withholds SameSite=Strict cookies (the session's) from every step of a
/// chain that began cross-site; the step from this page is our own.
pub fn onward_page(title: &str, target: &str) -> Response {
    let main = html! {
        section.message {
            h1 { (title) }
            p { a href=(target) { "Continue" } }
        }
    };
    let refresh = format!("0;url={target}");
    (StatusCode::OK, document(title, None, main, Some(&refresh))).into_response()
}

fn document(title: &str, nav: Option<&Nav>, main: Markup, refresh: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if let Some(refresh) = refresh {
                    meta http-equiv="refresh" content=(refresh);
                }
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · auditlog" }
                link rel="stylesheet" href=(assets::href("app.css"));
                link rel="icon" href="data:,";
                script src=(assets::href("app.js")) defer {}
            }
            body class=[nav.is_none().then_some("bare")] {
                a.skip href="#main" { "Skip to content" }
                @if let Some(nav) = nav {
                    (sidebar(nav))
                }
                main #main tabindex="-1" { (main) }
            }
        }
    }
}

fn sidebar(nav: &Nav) -> Markup {
    let current = nav
        .current
        .and_then(|slug| nav.orgs.iter().find(|(o, _)| o.slug == slug));
    html! {
        header.sidebar {
            a.brand href="/" { span.logo aria-hidden="true" { "◆" } " auditlog" }
            @if nav.orgs.len() > 1 {
                nav.orgs aria-label="Organizations" {
                    h2.section { "Organization" }
                    ul {
                        @for (org, role) in nav.orgs {
                            li {
                                a href=(format!("/orgs/{}/audit", org.slug))
                                    aria-current=[(Some(org.slug.as_str()) == nav.current).then_some("true")] {
                                    (org.name) " " span.role { (role.as_str()) }
                                }
                            }
                        }
                    }
                }
            } @else if let Some((org, role)) = current {
                p.org-name { (org.name) " " span.role { (role.as_str()) } }
            }
            @if let Some((org, role)) = current {
                nav aria-label="Platform" {
                    h2.section { "Platform" }
                    ul {
                        @for (path, name, action) in &PAGES {
                            @if permissions::check(&Authority::User(*role), action).is_ok() {
                                li {
                                    a href=(format!("/orgs/{}/{path}", org.slug))
                                        aria-current=[(nav.page == *path).then_some("page")] { (name) }
                                }
                            }
                        }
                    }
                }
            }
            form.signout method="post" action="/logout" {
                input type="hidden" name="csrf_token" value=(nav.csrf_token);
                span.who { (nav.email) }
                button.link type="submit" { "Sign out" }
            }
        }
    }
}

/// `2026-11-28 10:15:03 UTC`, to the second; the page's script adds the
/// viewer's local time on hover.
fn utc(t: Timestamp) -> String {
    let s = t.to_rfc3339();
    format!("{} {} UTC", &s[..10], &s[11..19])
}

/// A moment, to the second, in UTC.
pub fn time(t: Timestamp) -> Markup {
    html! { time datetime=(t.to_rfc3339()) title=(t.to_rfc3339()) { (utc(t)) } }
}

/// A day, in UTC; the moment on hover.
pub fn date(t: Timestamp) -> Markup {
    let s = t.to_rfc3339();
    html! { time datetime=(s) title=(s) { (&s[..10]) } }
}

/// A page that explains why there is nothing to show.
pub fn message_page(status: StatusCode, title: &str, nav: Option<&Nav>, body: Markup) -> Response {
    let main = html! {
        section.message {
            h1 { (title) }
            (body)
        }
    };
    (status, page(title, nav, main)).into_response()
}

/// The page for failures of ours: no detail beyond an id to quote.
pub fn internal_error_page(request_id: Option<&str>) -> Response {
    message_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        None,
        html! {
            p { "The page could not be shown. Try again in a moment." }
            @if let Some(id) = request_id {
                p.muted { "If it keeps happening, quote request " code { (id) } " to your operator." }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_to_the_second() {
        let t = Timestamp::parse("2026-11-28T10:15:03.456Z").unwrap();
        assert_eq!(utc(t), "2026-11-28 10:15:03 UTC");
    }
}
