//! The Audit page's chart: the filtered view's entries over time, by hour
//! or by day as the range suggests, stacked by category, drawn as SVG on
//! the server (no script, no inline style: colours come from the
//! stylesheet's classes). Each bar is a link that narrows the page's date
//! range to it.
//!
//! [`Window`] and the layout are pure; the counts come from the store's
//! `histogram`.

use auditlog_domain::Timestamp;
use auditlog_domain::filter::Bucket;
use maud::{Markup, html};

use super::filters::UiFilters;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// A view without a date range charts its last 30 days.
const DEFAULT_SPAN_MS: i64 = 30 * DAY_MS;
/// Up to three days are charted by the hour.
const HOURLY_UP_TO_MS: i64 = 3 * DAY_MS;
/// More days than this are charted in buckets of several days.
const MOST_BARS: i64 = 120;
/// Colour classes, assigned to categories in the catalog's order.
const COLOURS: usize = 12;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 120.0;

/// The time range a chart covers and the width of its bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
    pub bar_ms: i64,
}

impl Window {
    /// The view's own range, or its last 30 days (never before `oldest`,
    /// the retention cutoff); hours up to three days, days beyond, several
    /// days a bar past 120 of them.
    pub fn of(from: Option<Timestamp>, to: Option<Timestamp>, now: Timestamp, oldest: Timestamp) -> Self {
        let from = from
            .unwrap_or(to.unwrap_or(now).plus_millis(-DEFAULT_SPAN_MS))
            .max(oldest);
        // `to` is exclusive: an entry of this very millisecond is in.
        let to = to.unwrap_or(now.plus_millis(1));
        let span = (to.millis() - from.millis()).max(1);
        let bar_ms = if span <= HOURLY_UP_TO_MS {
            HOUR_MS
        } else {
            DAY_MS * ((span / DAY_MS + MOST_BARS - 1) / MOST_BARS).max(1)
        };
        Self { from, to, bar_ms }
    }

    /// The bars' starts, oldest first: multiples of the bar width.
    fn starts(&self) -> Vec<i64> {
        let first = self.from.millis().div_euclid(self.bar_ms) * self.bar_ms;
        (0..)
            .map(|i| first + i * self.bar_ms)
            .take_while(|s| *s < self.to.millis())
            .collect()
    }
}

/// The chart, or nothing when the view has no entry in its window.
pub fn render(window: Window, buckets: &[Bucket], categories: &[String], ui: &UiFilters, slug: &str) -> Markup {
    let starts = window.starts();
    let total: u64 = buckets.iter().map(|b| b.count).sum();
    if starts.is_empty() || total == 0 {
        return html! { figure.chart #chart { p.muted { "No entries in this view's last " (days(window)) " to chart." } } };
    }
    let per_bar = |s: i64| buckets.iter().filter(move |b| b.start.millis() == s);
    let tallest = starts
        .iter()
        .map(|s| per_bar(*s).map(|b| b.count).sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1);
    let slot = WIDTH / starts.len() as f64;
    let colour = |c: &str| categories.iter().position(|k| k == c).unwrap_or(categories.len()) % COLOURS;
    let unit = if window.bar_ms == HOUR_MS {
        "hour"
    } else if window.bar_ms == DAY_MS {
        "day"
    } else {
        "bar"
    };
    html! {
        figure.chart #chart {
            figcaption { (total) " entries in this view, by " (unit) " (UTC) and category. Select a bar to narrow the range to it." }
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="group" aria-label="Entries over time" preserveAspectRatio="none" {
                @for (i, s) in starts.iter().enumerate() {
                    @let segments: Vec<&Bucket> = per_bar(*s).collect();
                    @let count: u64 = segments.iter().map(|b| b.count).sum();
                    @if count > 0 {
                        a href=(narrowed(ui, slug, *s, window.bar_ms)) aria-label=(label(*s, window.bar_ms, &segments)) {
                            (bar(i as f64 * slot, slot, &segments, tallest, &colour))
                        }
                    }
                }
            }
            (legend(buckets, categories, &colour))
        }
    }
}

fn days(w: Window) -> String {
    let days = (w.to.millis() - w.from.millis()) as f64 / DAY_MS as f64;
    if days < 1.5 {
        "day".into()
    } else {
        format!("{} days", days.round())
    }
}

fn bar(x: f64, slot: f64, segments: &[&Bucket], tallest: u64, colour: &dyn Fn(&str) -> usize) -> Markup {
    let mut y = HEIGHT;
    let width = (slot * 0.8).max(1.0);
    html! {
        rect.hit x=(x) y="0" width=(slot) height=(HEIGHT) {}
        @for b in segments {
            @let h = HEIGHT * b.count as f64 / tallest as f64;
            @let top = { y -= h; y };
            rect class=(format!("c{}", colour(&b.category))) x=(x + slot * 0.1) y=(top) width=(width) height=(h) {}
        }
    }
}

fn legend(buckets: &[Bucket], categories: &[String], colour: &dyn Fn(&str) -> usize) -> Markup {
    let mut shown: Vec<&str> = buckets.iter().map(|b| b.category.as_str()).collect();
    shown.sort_by_key(|c| (categories.iter().position(|k| k == c).unwrap_or(usize::MAX), *c));
    shown.dedup();
    html! {
        ul.legend {
            @for c in shown {
                li { span class=(format!("swatch c{}", colour(c))) aria-hidden="true" {} (c) }
            }
        }
    }
}

fn label(start: i64, bar_ms: i64, segments: &[&Bucket]) -> String {
    let count: u64 = segments.iter().map(|b| b.count).sum();
    let parts: Vec<String> = segments.iter().map(|b| format!("{} {}", b.count, b.category)).collect();
    format!("{}: {count} entries ({})", when(start, bar_ms), parts.join(", "))
}

fn when(start: i64, bar_ms: i64) -> String {
    let s = Timestamp(start).to_rfc3339();
    if bar_ms == HOUR_MS {
        format!("{} {}:00 UTC", &s[..10], &s[11..13])
    } else if bar_ms == DAY_MS {
        s[..10].to_owned()
    } else {
        let end = Timestamp(start + bar_ms - DAY_MS).to_rfc3339();
        format!("{} to {}", &s[..10], &end[..10])
    }
}

/// The page's filters with the date range narrowed to one bar.
fn narrowed(ui: &UiFilters, slug: &str, start: i64, bar_ms: i64) -> String {
    let (from, to) = if bar_ms == HOUR_MS {
        (Timestamp(start).to_rfc3339(), Timestamp(start + bar_ms).to_rfc3339())
    } else {
        let day = |t: i64| Timestamp(t).to_rfc3339()[..10].to_owned();
        (day(start), day(start + bar_ms - DAY_MS))
    };
    let narrowed = UiFilters {
        range: "custom".into(),
        from,
        to,
        cursor: String::new(),
        ..ui.clone()
    };
    format!("/orgs/{slug}/audit?{}", narrowed.to_query())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn the_range_decides_the_bars() {
        let now = at("2026-12-07T13:00:00Z");
        let oldest = at("2026-01-01T00:00:00Z");
        let default = Window::of(None, None, now, oldest);
        assert_eq!((default.from, default.bar_ms), (at("2026-11-07T13:00:00Z"), DAY_MS));
        assert_eq!(default.starts().len(), 31, "30 days, the first one partly");
        let day = Window::of(
            Some(at("2026-12-06T00:00:00Z")),
            Some(at("2026-12-07T00:00:00Z")),
            now,
            oldest,
        );
        assert_eq!((day.bar_ms, day.starts().len()), (HOUR_MS, 24));
        let year = Window::of(Some(at("2025-12-07T00:00:00Z")), None, now, at("2025-01-01T00:00:00Z"));
        assert_eq!(year.bar_ms, 4 * DAY_MS, "366 days in bars of several days");
        assert!(year.starts().len() as i64 <= MOST_BARS);
        let clipped = Window::of(Some(at("2020-01-01T00:00:00Z")), None, now, oldest);
        assert_eq!(clipped.from, oldest, "never before the retention cutoff");
    }

    #[test]
    fn a_bar_narrows_the_range_to_itself() {
        let ui = UiFilters {
            actor: "ana@x.io".into(),
            cursor: "abc".into(),
            ..UiFilters::default()
        };
        let day = at("2026-12-06T00:00:00Z").millis();
        assert_eq!(
            narrowed(&ui, "acme", day, DAY_MS),
            "/orgs/acme/audit?actor=ana%40x.io&range=custom&from=2026-12-06&to=2026-12-06"
        );
        let hour = narrowed(&ui, "acme", day + 5 * HOUR_MS, HOUR_MS);
        assert!(
            hour.contains("from=2026-12-06T05%3A00%3A00") && hour.contains("to=2026-12-06T06%3A00%3A00"),
            "{hour}"
        );
    }

    #[test]
    fn bars_stack_categories_to_the_tallest() {
        let b = |cat: &str, count| Bucket {
            start: Timestamp(0),
            category: cat.into(),
            count,
        };
        let segments = [b("api_key", 2), b("project", 2)];
        let refs: Vec<&Bucket> = segments.iter().collect();
        let svg = bar(0.0, 10.0, &refs, 4, &|c| usize::from(c == "project")).into_string();
        assert!(
            svg.contains(r#"class="c0" x="1" y="60" width="8" height="60""#),
            "{svg}"
        );
        assert!(svg.contains(r#"class="c1" x="1" y="0" width="8" height="60""#), "{svg}");
        assert_eq!(label(0, DAY_MS, &refs), "1970-01-01: 4 entries (2 api_key, 2 project)");
    }
}
