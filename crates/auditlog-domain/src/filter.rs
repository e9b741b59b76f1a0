//! What a reader asks for: the filters of a query or export, parsed from URL
//! query parameters and resolved against the catalog.
//!
//! The `q` parameter (the [query language](crate::query_language)) fills
//! the same fields as the separate parameters; a field given both ways is
//! refused rather than one silently winning.
//!
//! Event patterns are expanded here into the exact catalogued names they
//! select, so a backend only ever sees `event IN (…)` (or no event filter at
//! all when the patterns select everything) and can use its indexes.

use serde::Serialize;

use crate::Catalog;
use crate::cursor::Cursor;
use crate::entry::SubmittedBy;
use crate::ingest::Problem;
use crate::pattern::EventPattern;
use crate::query_language::{self, Query, Span, Spans};
use crate::timestamp::Timestamp;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 1000;
/// More patterns than anyone writes by hand; bounds the work per request.
const MAX_EVENT_PARAMS: usize = 50;
const MAX_VALUE_LEN: usize = 512;
/// `q` holds several terms, each up to `MAX_VALUE_LEN`.
const MAX_Q_LEN: usize = 2048;
/// Every listing parameter; all but `event` may be given once.
const PARAMETERS: [&str; 11] = [
    "actor",
    "submitted_by",
    "event",
    "resource_type",
    "resource_id",
    "from",
    "to",
    "q",
    "limit",
    "cursor",
    "after_seq",
];

/// The entries a reader selects. Empty fields select everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Filter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The patterns as given, kept for display and for the export's own
    /// audit entry.
    #[serde(rename = "event", skip_serializing_if = "Vec::is_empty")]
    pub event_patterns: Vec<String>,
    /// The catalogued names the patterns select; `None` when unrestricted.
    #[serde(skip)]
    pub events: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// The credential that submitted the entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<SubmittedBy>,
    /// Inclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    /// Exclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    /// Only entries with `seq <= max_seq`: an export pins the log's size at
    /// its start so it is a consistent snapshot however long it runs.
    #[serde(skip)]
    pub max_seq: Option<i64>,
    /// Only entries with `seq > after_seq`, listed oldest first: how a
    /// webhook receiver that saw a gap replays what it missed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<i64>,
}

impl Filter {
    /// Every entry after `after_seq` (up to `max_seq`, if given), oldest
    /// first: how a whole log is read in order, a page at a time.
    pub fn in_order(after_seq: i64, max_seq: Option<i64>) -> Self {
        Self {
            after_seq: Some(after_seq),
            max_seq,
            ..Self::default()
        }
    }

    /// Narrows the filter to what the organization's plan still keeps at
    /// `now`: nothing past the retention window is ever listed, even before
    /// the purger has removed it.
    pub fn within_retention(&mut self, org: &crate::Org, now: Timestamp) {
        let cutoff = org.retention_cutoff(now);
        self.from = Some(self.from.map_or(cutoff, |f| f.max(cutoff)));
    }
}

/// One page's worth of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub after: Option<Cursor>,
}

impl Page {
    /// The first `limit` entries.
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

/// A parsed listing request: the filter, the page, and any parameters the
/// caller declared as its own (such as an export's `format`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListingRequest {
    pub filter: Filter,
    pub page: Page,
    pub extra: Vec<(String, String)>,
}

fn problem(field: &str, code: &'static str, message: impl Into<String>) -> Problem {
    Problem::whole(field, code, message)
}

/// A problem at a place in the `q` parameter's text.
fn in_q(code: &'static str, span: Span, message: impl Into<String>) -> Problem {
    Problem {
        position: Some(span.start),
        length: Some(span.len),
        ..problem("q", code, message)
    }
}

/// Parses query parameters. `extra` names parameters the endpoint handles
/// itself; anything else unknown is refused by name.
pub fn parse_listing(
    pairs: &[(String, String)],
    catalog: &Catalog,
    extra: &[&str],
) -> Result<ListingRequest, Vec<Problem>> {
    let mut l = Listing::default();
    for (key, value) in pairs {
        l.parameter(key, value, extra);
    }
    if let Some((q, spans)) = l.query.take() {
        merge_query(q, &spans, &l.seen, &mut l.req.filter, &mut l.problems);
    }
    l.check_combinations();
    l.resolve_events(catalog);
    if l.problems.is_empty() {
        Ok(l.req)
    } else {
        Err(l.problems)
    }
}

/// A listing request being read, parameter by parameter, with every
/// problem found so far.
#[derive(Default)]
struct Listing<'a> {
    req: ListingRequest,
    problems: Vec<Problem>,
    seen: std::collections::HashSet<&'a str>,
    /// Each with where it was written in `q`, if it came from there.
    patterns: Vec<(EventPattern, Option<Span>)>,
    query: Option<(query_language::Query, query_language::Spans)>,
}

impl<'a> Listing<'a> {
    fn parameter(&mut self, key: &'a str, value: &str, extra: &[&str]) {
        let repeatable = key == "event";
        if PARAMETERS.contains(&key) && !repeatable && !self.seen.insert(key) {
            self.problems.push(problem(
                key,
                "repeated_parameter",
                format!("{key} may be given only once"),
            ));
            return;
        }
        let max = if key == "q" { MAX_Q_LEN } else { MAX_VALUE_LEN };
        if value.len() > max {
            self.problems
                .push(problem(key, "too_long", format!("{key} is longer than {max} bytes")));
            return;
        }
        match key {
            "actor" => self.req.filter.actor = self.nonempty(key, value),
            "resource_type" => self.req.filter.resource_type = self.nonempty(key, value),
            "resource_id" => self.req.filter.resource_id = self.nonempty(key, value),
            "submitted_by" => match SubmittedBy::parse_text(value) {
                Some(by) => self.req.filter.submitted_by = Some(by),
                None => self.problems.push(problem(
                    key,
                    "invalid_submitter",
                    "submitted_by wants KIND:ID, KIND one of service, api_key, session, cli (e.g. api_key:lqt_ab12cd34)",
                )),
            },
            "event" => self.event(value),
            "q" => self.q(value),
            "from" | "to" => match Timestamp::parse(value) {
                Ok(t) if key == "from" => self.req.filter.from = Some(t),
                Ok(t) => self.req.filter.to = Some(t),
                Err(e) => self.problems.push(problem(key, "invalid_timestamp", e.to_string())),
            },
            k if extra.contains(&k) => self.req.extra.push((key.to_owned(), value.to_owned())),
            _ => self.paging(key, value, extra),
        }
    }

    fn nonempty(&mut self, key: &str, value: &str) -> Option<String> {
        if value.is_empty() {
            self.problems
                .push(problem(key, "empty", format!("{key} must not be empty")));
            None
        } else {
            Some(value.to_owned())
        }
    }

    /// `event=a,b` is accepted as well as `event=a&event=b`.
    fn event(&mut self, value: &str) {
        if self.patterns.len() >= MAX_EVENT_PARAMS {
            self.problems.push(problem(
                "event",
                "too_many",
                format!("at most {MAX_EVENT_PARAMS} event parameters"),
            ));
            return;
        }
        for part in value.split(',') {
            match EventPattern::parse(part.trim()) {
                Ok(p) => self.patterns.push((p, None)),
                Err(e) => self.problems.push(problem("event", "invalid_pattern", e.to_string())),
            }
        }
    }

    /// Empty is allowed: an empty search box selects everything.
    fn q(&mut self, value: &str) {
        match query_language::parse_with_spans(value) {
            Ok((q, spans)) => {
                // In place, so patterns keep the order they were given in.
                let located = spans.events.iter().map(|s| Some(*s));
                self.patterns.extend(q.events.iter().cloned().zip(located));
                self.query = Some((q, spans));
            }
            Err(e) => self.problems.push(in_q("invalid_query", e.span, e.to_string())),
        }
    }

    /// The page parameters, and the refusal of any parameter unknown.
    fn paging(&mut self, key: &str, value: &str, extra: &[&str]) {
        match key {
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => self.req.page.limit = n,
                _ => self.problems.push(problem(
                    "limit",
                    "invalid_limit",
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                )),
            },
            "after_seq" => match value.parse::<i64>() {
                Ok(n) if n >= 0 => self.req.filter.after_seq = Some(n),
                _ => self.problems.push(problem(
                    "after_seq",
                    "invalid_after_seq",
                    "after_seq must be a whole number, 0 or more",
                )),
            },
            "cursor" => match Cursor::decode(value) {
                Ok(c) => self.req.page.after = Some(c),
                Err(e) => self.problems.push(problem("cursor", "invalid_cursor", e.to_string())),
            },
            _ => {
                let mut known = PARAMETERS.to_vec();
                known.extend_from_slice(extra);
                self.problems.push(problem(
                    key,
                    "unknown_parameter",
                    format!("unknown parameter {key:?}; expected one of: {}", known.join(", ")),
                ));
            }
        }
    }

    /// Parameters valid alone that cannot go together.
    fn check_combinations(&mut self) {
        let f = &self.req.filter;
        if let (Some(from), Some(to)) = (f.from, f.to)
            && from >= to
        {
            self.problems.push(problem(
                "to",
                "empty_range",
                "from must be earlier than to (from is inclusive, to exclusive)",
            ));
        }
        if f.after_seq.is_some() && self.req.page.after.is_some() {
            self.problems.push(problem(
                "cursor",
                "conflicting_parameters",
                "after_seq lists oldest first and pages by seq; give after_seq or cursor, not both",
            ));
        }
    }

    /// The event patterns, from parameters and `q`, as catalog names; a
    /// pattern matching nothing is refused where it was written.
    fn resolve_events(&mut self, catalog: &Catalog) {
        if self.patterns.is_empty() {
            return;
        }
        let mut names: Vec<String> = Vec::new();
        for (p, span) in &self.patterns {
            let expanded = p.expand(catalog);
            if expanded.is_empty() {
                let what = if p.is_wildcard() {
                    format!("event pattern {:?} matches no event in the catalog", p.as_str())
                } else {
                    format!(
                        "unknown event {:?}: it is not in the catalog (GET /v1/audit/catalog)",
                        p.as_str()
                    )
                };
                self.problems.push(match span {
                    Some(span) => in_q("unknown_event", *span, format!("at character {}: {what}", span.start)),
                    None => problem("event", "unknown_event", what),
                });
            }
            names.extend(expanded.into_iter().map(str::to_owned));
        }
        names.sort_unstable();
        names.dedup();
        self.req.filter.event_patterns = self.patterns.iter().map(|(p, _)| p.as_str().to_owned()).collect();
        self.req.filter.events = (names.len() < catalog.len()).then_some(names);
    }
}

/// Fills the filter's fields from `q`'s terms (its event patterns are
/// already among the others), refusing any field also given as its own
/// parameter: which of the two was meant cannot be known.
fn merge_query(
    q: Query,
    spans: &Spans,
    given: &std::collections::HashSet<&str>,
    filter: &mut Filter,
    problems: &mut Vec<Problem>,
) {
    // May `q` set what `param` would? Says why not when it may not.
    let mut free = |param: &str, term: &str, what: &str, span: Option<Span>| {
        if !given.contains(param) {
            return true;
        }
        let at = span.map_or(String::new(), |s| format!("at character {}: ", s.start));
        problems.push(Problem {
            position: span.map(|s| s.start),
            length: span.map(|s| s.len),
            ..problem(
                "q",
                "conflicting_parameters",
                format!("{at}q's {term} term and the {param} parameter both set {what}; give it in one place"),
            )
        });
        false
    };
    if let Some(actor) = q.actor
        && free("actor", "actor:", "the actor", spans.actor)
    {
        filter.actor = Some(actor);
    }
    if let Some(r) = q.resource {
        if free("resource_type", "resource:", "the resource type", spans.resource) {
            filter.resource_type = Some(r.kind);
        }
        if let Some(id) = r.id
            && free("resource_id", "resource:", "the resource id", spans.resource)
        {
            filter.resource_id = Some(id);
        }
    }
    if let Some(by) = q.submitted_by
        && free("submitted_by", "submitted_by:", "the submitter", spans.submitted_by)
    {
        filter.submitted_by = Some(by);
    }
    if let Some(t) = q.after
        && free("from", "after:", "the start of the range", spans.after)
    {
        filter.from = Some(t);
    }
    if let Some(t) = q.before
        && free("to", "before:", "the end of the range", spans.before)
    {
        filter.to = Some(t);
    }
}

impl Filter {
    /// Does an entry with these fields pass the filter? The backends filter
    /// in SQL; this is the reference they are tested against.
    pub fn matches(&self, e: &crate::Entry) -> bool {
        self.actor.as_ref().is_none_or(|a| *a == e.actor.id)
            && self.events.as_ref().is_none_or(|names| names.contains(&e.event))
            && self.resource_type.as_ref().is_none_or(|t| *t == e.resource.kind)
            && self.resource_id.as_ref().is_none_or(|i| *i == e.resource.id)
            && self
                .submitted_by
                .as_ref()
                .is_none_or(|b| e.submitted_by.as_ref() == Some(b))
            && self.from.is_none_or(|f| e.timestamp >= f)
            && self.to.is_none_or(|t| e.timestamp < t)
            && self.max_seq.is_none_or(|m| e.seq <= m)
            && self.after_seq.is_none_or(|a| e.seq > a)
    }
}

/// How many entries of one category fall in one time bucket of a
/// filtered view: a bar segment of the Audit page's chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The bucket's start: a multiple of its width since the epoch.
    pub start: Timestamp,
    /// The event's category, the part of its name before the first dot.
    pub category: String,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<ListingRequest, Vec<Problem>> {
        let pairs: Vec<_> = q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        parse_listing(&pairs, &Catalog::builtin(), &["format"])
    }

    fn codes(q: &[(&str, &str)]) -> Vec<(String, &'static str)> {
        parse(q).unwrap_err().into_iter().map(|p| (p.field, p.code)).collect()
    }

    #[test]
    fn empty_query_selects_everything_newest_first_fifty_at_a_time() {
        let r = parse(&[]).unwrap();
        assert_eq!(r.filter, Filter::default());
        assert_eq!(r.page, Page::default());
        assert_eq!(r.page.limit, 50);
    }

    #[test]
    fn event_patterns_expand_and_merge() {
        let r = parse(&[("event", "api_key.*"), ("event", "project.created,api_key.created")]).unwrap();
        assert_eq!(
            r.filter.events.unwrap(),
            [
                "api_key.created",
                "api_key.last_used_updated",
                "api_key.revoked",
                "project.created"
            ]
        );
        assert_eq!(
            r.filter.event_patterns,
            ["api_key.*", "project.created", "api_key.created"]
        );
    }

    #[test]
    fn a_pattern_selecting_every_event_is_no_restriction() {
        assert_eq!(parse(&[("event", "*")]).unwrap().filter.events, None);
    }

    #[test]
    fn unknown_events_and_patterns_matching_nothing_are_named() {
        let p = parse(&[("event", "api_key.exploded"), ("event", "nothing.*")]).unwrap_err();
        assert!(p[0].message.contains("api_key.exploded"));
        assert!(p[1].message.contains("nothing.*"));
    }

    #[test]
    fn all_filters_together() {
        let r = parse(&[
            ("actor", "alice@acme.com"),
            ("resource_type", "project"),
            ("resource_id", "p_1"),
            ("from", "2026-01-01T00:00:00Z"),
            ("to", "2026-02-01T00:00:00Z"),
            ("limit", "1000"),
            ("format", "csv"),
        ])
        .unwrap();
        assert_eq!(r.filter.actor.as_deref(), Some("alice@acme.com"));
        assert_eq!(r.filter.resource_id.as_deref(), Some("p_1"));
        assert_eq!(r.filter.from, Some(Timestamp::parse("2026-01-01T00:00:00Z").unwrap()));
        assert_eq!(r.page.limit, 1000);
        assert_eq!(r.extra, [("format".to_string(), "csv".to_string())]);
    }

    #[test]
    fn refuses_bad_values_by_name() {
        assert_eq!(codes(&[("limit", "0")]), [("limit".into(), "invalid_limit")]);
        assert_eq!(codes(&[("limit", "1001")]), [("limit".into(), "invalid_limit")]);
        assert_eq!(codes(&[("limit", "ten")]), [("limit".into(), "invalid_limit")]);
        assert_eq!(codes(&[("cursor", "nope")]), [("cursor".into(), "invalid_cursor")]);
        assert_eq!(codes(&[("from", "yesterday")]), [("from".into(), "invalid_timestamp")]);
        assert_eq!(codes(&[("actor", "")]), [("actor".into(), "empty")]);
        assert_eq!(codes(&[("colour", "red")]), [("colour".into(), "unknown_parameter")]);
        assert_eq!(
            codes(&[("actor", "a"), ("actor", "b")]),
            [("actor".into(), "repeated_parameter")]
        );
        assert_eq!(codes(&[("event", "API_KEY.*")]), [("event".into(), "invalid_pattern")]);
        assert_eq!(
            codes(&[("from", "2026-02-01T00:00:00Z"), ("to", "2026-02-01T00:00:00Z")]),
            [("to".into(), "empty_range")]
        );
    }

    #[test]
    fn after_seq_replays_oldest_first_and_excludes_cursors() {
        assert_eq!(parse(&[("after_seq", "41")]).unwrap().filter.after_seq, Some(41));
        assert_eq!(
            codes(&[("after_seq", "-1")]),
            [("after_seq".into(), "invalid_after_seq")]
        );
        let c = Cursor {
            timestamp: Timestamp(1),
            seq: 2,
        }
        .encode();
        assert_eq!(
            codes(&[("after_seq", "1"), ("cursor", &c)]),
            [("cursor".into(), "conflicting_parameters")]
        );
    }

    /// The problems' fields, codes, and the text of `q` each points at.
    fn located(q: &[(&str, &str)]) -> Vec<(String, &'static str, Option<String>)> {
        let text = q.iter().find(|(k, _)| *k == "q").map_or("", |(_, v)| *v);
        parse(q)
            .unwrap_err()
            .into_iter()
            .map(|p| {
                let covered = p
                    .position
                    .map(|at| text.chars().skip(at).take(p.length.unwrap()).collect());
                (p.field, p.code, covered)
            })
            .collect()
    }

    #[test]
    fn q_fills_the_same_fields_as_the_separate_parameters() {
        let separate = parse(&[
            ("actor", "Jane Doe"),
            ("event", "api_key.*"),
            ("event", "project.created"),
            ("resource_type", "project"),
            ("resource_id", "p:1"),
            ("from", "2026-01-01T00:00:00Z"),
            ("to", "2026-02-01T00:00:00Z"),
        ])
        .unwrap();
        let q = parse(&[(
            "q",
            r#"actor:"Jane Doe" event:api_key.*,project.created resource:project:p:1 after:2026-01-01 before:2026-02-01"#,
        )])
        .unwrap();
        assert_eq!(q, separate);
        assert_eq!(parse(&[("q", "")]).unwrap(), parse(&[]).unwrap());
    }

    #[test]
    fn q_and_separate_parameters_combine_when_they_set_different_fields() {
        let r = parse(&[
            ("event", "project.created"),
            ("q", "event:api_key.created resource:project"),
            ("resource_id", "p_1"),
            ("actor", "a@acme.com"),
        ])
        .unwrap();
        assert_eq!(r.filter.event_patterns, ["project.created", "api_key.created"]);
        assert_eq!(r.filter.events.unwrap(), ["api_key.created", "project.created"]);
        assert_eq!(r.filter.resource_type.as_deref(), Some("project"));
        assert_eq!(r.filter.resource_id.as_deref(), Some("p_1"));
        assert_eq!(r.filter.actor.as_deref(), Some("a@acme.com"));
    }

    #[test]
    fn a_field_given_in_q_and_as_a_parameter_is_refused_naming_both() {
        let p = parse(&[("actor", "a"), ("q", "event:*  actor:b")]).unwrap_err();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].field.as_str(), p[0].code), ("q", "conflicting_parameters"));
        assert_eq!((p[0].position, p[0].length), (Some(9), Some(7)));
        assert_eq!(
            p[0].message,
            "at character 9: q's actor: term and the actor parameter both set the actor; give it in one place"
        );
        let conflict = |covered: &str| vec![("q".to_owned(), "conflicting_parameters", Some(covered.to_owned()))];
        let q = "resource:project:p_1 after:2026-01-01 before:2026-02-01";
        assert_eq!(
            located(&[("q", q), ("resource_type", "x")]),
            conflict("resource:project:p_1")
        );
        assert_eq!(
            located(&[("q", q), ("resource_id", "x")]),
            conflict("resource:project:p_1")
        );
        assert_eq!(
            located(&[("from", "2026-01-01T00:00:00Z"), ("q", q)]),
            conflict("after:2026-01-01")
        );
        assert_eq!(
            located(&[("q", q), ("to", "2026-01-02T00:00:00Z")]),
            conflict("before:2026-02-01")
        );
        assert_eq!(
            located(&[("q", "actor:a"), ("q", "actor:a")]),
            [("q".to_owned(), "repeated_parameter", None)]
        );
    }

    #[test]
    fn errors_in_q_say_where() {
        assert_eq!(
            located(&[("q", "actor:alice acter:bob")]),
            [("q".to_owned(), "invalid_query", Some("acter".to_owned()))]
        );
        let p = parse(&[("q", "actor:alice acter:bob")]).unwrap_err();
        assert_eq!(
            p[0].message,
            "at character 12: unknown key \"acter\"; expected actor, event, resource, submitted_by, after, before"
        );
        assert_eq!(
            located(&[("q", "event:api_key.*,nothing.* event:api_key.exploded")]),
            [
                ("q".to_owned(), "unknown_event", Some("nothing.*".to_owned())),
                ("q".to_owned(), "unknown_event", Some("api_key.exploded".to_owned())),
            ]
        );
        assert_eq!(
            located(&[("q", "x".repeat(MAX_Q_LEN + 1).as_str())]),
            [("q".to_owned(), "too_long", None)]
        );
    }

    #[test]
    fn filters_survive_rendering_to_q_and_parsing_back() {
        let cases: &[&[(&str, &str)]] = &[
            &[],
            &[("actor", "alice@acme.com")],
            &[("actor", r#"Jane "JD" Doe \ CORP\jane"#)],
            &[("event", "api_key.*,*.deleted"), ("event", "project.created")],
            &[("event", "*")],
            &[("resource_type", "project")],
            &[("resource_type", "file store"), ("resource_id", "s3://bucket/a b:c")],
            &[("from", "2026-01-01T00:00:00Z")],
            &[
                ("from", "2026-01-01T12:00:00.123+02:00"),
                ("to", "2026-03-01T00:00:00Z"),
            ],
            &[
                ("actor", "zoë@例え.jp"),
                ("event", "guardrail.*"),
                ("resource_type", "guardrail"),
                ("resource_id", "g_1"),
                ("to", "2026-06-01T00:00:00Z"),
            ],
        ];
        for params in cases {
            let filter = parse(params).unwrap().filter;
            let text = query_language::render(&filter).unwrap();
            let back = parse(&[("q", &text)]).unwrap().filter;
            assert_eq!(back, filter, "{params:?} as {text}");
        }
    }

    #[test]
    fn lists_every_problem_at_once() {
        assert_eq!(codes(&[("limit", "0"), ("cursor", "x"), ("what", "1")]).len(), 3);
    }
}
