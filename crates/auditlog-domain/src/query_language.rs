//! The query language of the web UI's search box and the API's `q=`
//! parameter: `actor:alice@acme.com event:api_key.* resource:project:p_1
//! after:2026-01-01`.
//!
//! A query says what the separate listing parameters say (`actor`, `event`,
//! `resource_type` and `resource_id`, `from`, `to`) in one line a person can
//! type and read back. Parsing is pure. An error carries the span of the
//! input it is about, counted in characters, so a search box can underline
//! the offending text rather than only describe it. [`render`] writes a
//! filter back as canonical text that parses to the same filter, so the
//! search box can always show what is being looked at.
//!
//! # Grammar
//!
//! ```text
//! query   = term*, separated and surrounded by any whitespace
//! term    = key ":" value          key in any case
//! value   = ( plain | quoted )+    no whitespace outside quotes
//! plain   = any characters but whitespace and '"'
//! quoted  = '"' ( any character but '"' and '\' | '\"' | '\\' )* '"'
//!
//! actor:ID                 the actor, exactly
//! event:PATTERN[,PATTERN]  exact name, category.* or any * glob; repeatable
//! resource:TYPE[:ID]       split at the first colon: the ID may hold colons
//! submitted_by:KIND:ID     the credential that submitted the entry, e.g.
//!                          submitted_by:api_key:lqt_ab12cd34
//! after:TIME               inclusive lower bound (the `from` parameter)
//! before:TIME              exclusive upper bound (the `to` parameter)
//! TIME                     RFC 3339, or a date YYYY-MM-DD meaning midnight UTC
//! ```
//!
//! A backslash is an escape only inside quotes and only before `"` or `\`;
//! anywhere else it is itself, so `actor:CORP\jane` needs no quoting.

use std::fmt;

use crate::Filter;
use crate::entry::SubmittedBy;
use crate::pattern::{EventPattern, PatternError};
use crate::timestamp::Timestamp;

/// The longest value a term may have, in bytes, as for the separate
/// listing parameters.
pub const MAX_VALUE_LEN: usize = 512;

/// The keys a term may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Actor,
    Event,
    Resource,
    SubmittedBy,
    After,
    Before,
}

impl Key {
    pub const ALL: [Key; 6] = [
        Key::Actor,
        Key::Event,
        Key::Resource,
        Key::SubmittedBy,
        Key::After,
        Key::Before,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Key::Actor => "actor",
            Key::Event => "event",
            Key::Resource => "resource",
            Key::SubmittedBy => "submitted_by",
            Key::After => "after",
            Key::Before => "before",
        }
    }

    /// Case-insensitive: `Actor:` and `ACTOR:` are `actor:`.
    fn parse(s: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run of the input: `start` and `len` count characters (Unicode scalar
/// values) from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub len: usize,
}

impl Span {
    fn between(start: usize, end: usize) -> Self {
        Self {
            start,
            len: end - start,
        }
    }

    fn end(self) -> usize {
        self.start + self.len
    }
}

/// What a query selects. Empty fields select everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub actor: Option<String>,
    /// In the order written; an entry matching any of them is selected.
    pub events: Vec<EventPattern>,
    pub resource: Option<ResourceTerm>,
    pub submitted_by: Option<SubmittedBy>,
    /// Inclusive.
    pub after: Option<Timestamp>,
    /// Exclusive.
    pub before: Option<Timestamp>,
}

/// `resource:TYPE` or `resource:TYPE:ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceTerm {
    pub kind: String,
    pub id: Option<String>,
}

/// Where each part of a parsed query was written, for problems found only
/// later: an event pattern that matches nothing in the catalog, or a field
/// also given as its own parameter. Each is the whole term (`actor:alice`),
/// except for events, which point at each pattern of a comma list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans {
    pub actor: Option<Span>,
    /// One per pattern of [`Query::events`], in the same order.
    pub events: Vec<Span>,
    pub resource: Option<Span>,
    pub submitted_by: Option<Span>,
    pub after: Option<Span>,
    pub before: Option<Span>,
}

/// Why a query was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {}: {kind}", span.start)]
pub struct QueryError {
    pub span: Span,
    pub kind: QueryErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryErrorKind {
    #[error("unknown key {0:?}; expected actor, event, resource, submitted_by, after, before")]
    UnknownKey(String),
    #[error(
        "{0:?} has no key: terms must be key:value, with key one of actor, event, resource, submitted_by, after, before"
    )]
    BareWord(String),
    #[error("{0}: has no value")]
    EmptyValue(Key),
    #[error("this quote is never closed")]
    UnterminatedQuote,
    #[error("{0}: may be given only once")]
    Repeated(Key),
    #[error("{0}: value is longer than {MAX_VALUE_LEN} bytes")]
    TooLong(Key),
    #[error("resource: wants TYPE or TYPE:ID, neither of them empty")]
    BadResource,
    #[error("submitted_by: wants KIND:ID, KIND one of service, api_key, session, cli")]
    BadSubmitter,
    #[error("{key}: wants an RFC 3339 timestamp or a date (2026-01-31T12:00:00Z or 2026-01-31), not {value:?}")]
    BadTime { key: Key, value: String },
    #[error("{0}")]
    BadPattern(PatternError),
    #[error("after: must be earlier than before: (after is inclusive, before exclusive)")]
    EmptyRange,
}

/// Parses a query.
pub fn parse(input: &str) -> Result<Query, QueryError> {
    parse_with_spans(input).map(|(query, _)| query)
}

/// Parses a query and says where each of its parts was written.
pub fn parse_with_spans(input: &str) -> Result<(Query, Spans), QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut query = Query::default();
    let mut spans = Spans::default();
    let mut i = 0;
    loop {
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        if i == chars.len() {
            break;
        }
        let start = i;
        while chars
            .get(i)
            .is_some_and(|&c| !c.is_whitespace() && c != ':' && c != '"')
        {
            i += 1;
        }
        let key_end = i;
        let has_key = key_end > start && chars.get(i) == Some(&':');
        if has_key {
            i += 1;
        }
        let value_start = i;
        let value = scan_value(&chars, &mut i)?;
        let term = Span::between(start, i);
        if !has_key {
            let word = chars[start..i].iter().collect();
            return Err(QueryError {
                span: term,
                kind: QueryErrorKind::BareWord(word),
            });
        }
        let key_text: String = chars[start..key_end].iter().collect();
        let key = Key::parse(&key_text).ok_or(QueryError {
            span: Span::between(start, key_end),
            kind: QueryErrorKind::UnknownKey(key_text),
        })?;
        let located = Located {
            term,
            value: Span::between(value_start, i),
        };
        apply(&mut query, &mut spans, key, &value, located)?;
    }
    if let (Some(after), Some(before), Some(a), Some(b)) = (query.after, query.before, spans.after, spans.before)
        && after >= before
    {
        // Point at whichever of the two was written last: it is the one
        // that made the range empty.
        return Err(QueryError {
            span: if a.start > b.start { a } else { b },
            kind: QueryErrorKind::EmptyRange,
        });
    }
    Ok((query, spans))
}

/// Where a term and its value are in the input.
#[derive(Clone, Copy)]
struct Located {
    term: Span,
    value: Span,
}

/// A value with its quotes and escapes removed, each character remembering
/// where it was written, so a problem with part of a value (one pattern of
/// a comma list) points at that part.
#[derive(Default)]
struct Decoded {
    chars: Vec<char>,
    /// The input span each character came from (two characters for `\"`).
    from: Vec<Span>,
}

impl Decoded {
    fn push(&mut self, c: char, start: usize, len: usize) {
        self.chars.push(c);
        self.from.push(Span { start, len });
    }

    fn text(&self, range: std::ops::Range<usize>) -> String {
        self.chars[range].iter().collect()
    }

    /// The input span of a non-empty range of decoded characters.
    fn span(&self, range: std::ops::Range<usize>) -> Span {
        Span::between(self.from[range.start].start, self.from[range.end - 1].end())
    }
}

/// Reads a value up to the next whitespace outside quotes.
fn scan_value(chars: &[char], i: &mut usize) -> Result<Decoded, QueryError> {
    let mut out = Decoded::default();
    while let Some(&c) = chars.get(*i).filter(|c| !c.is_whitespace()) {
        if c != '"' {
            out.push(c, *i, 1);
            *i += 1;
            continue;
        }
        let open = *i;
        *i += 1;
        loop {
            match chars.get(*i) {
                None => {
                    return Err(QueryError {
                        span: Span::between(open, chars.len()),
                        kind: QueryErrorKind::UnterminatedQuote,
                    });
                }
                Some('"') => {
                    *i += 1;
                    break;
                }
                Some('\\') if matches!(chars.get(*i + 1), Some('"' | '\\')) => {
                    out.push(chars[*i + 1], *i, 2);
                    *i += 2;
                }
                Some(&c) => {
                    out.push(c, *i, 1);
                    *i += 1;
                }
            }
        }
    }
    Ok(out)
}

fn apply(query: &mut Query, spans: &mut Spans, key: Key, value: &Decoded, at: Located) -> Result<(), QueryError> {
    let fail = |span, kind| Err(QueryError { span, kind });
    if value.chars.is_empty() {
        return fail(at.term, QueryErrorKind::EmptyValue(key));
    }
    let text = value.text(0..value.chars.len());
    if text.len() > MAX_VALUE_LEN {
        return fail(at.value, QueryErrorKind::TooLong(key));
    }
    let given = match key {
        Key::Actor => spans.actor,
        Key::Event => None,
        Key::Resource => spans.resource,
        Key::SubmittedBy => spans.submitted_by,
        Key::After => spans.after,
        Key::Before => spans.before,
    };
    if given.is_some() {
        return fail(at.term, QueryErrorKind::Repeated(key));
    }
    match key {
        Key::Actor => {
            query.actor = Some(text);
            spans.actor = Some(at.term);
        }
        Key::Event => apply_events(query, spans, value, at)?,
        Key::Resource => {
            let (kind, id) = match text.split_once(':') {
                Some((kind, id)) => (kind, Some(id)),
                None => (text.as_str(), None),
            };
            if kind.is_empty() || id == Some("") {
                return fail(at.term, QueryErrorKind::BadResource);
            }
            query.resource = Some(ResourceTerm {
                kind: kind.to_owned(),
                id: id.map(str::to_owned),
            });
            spans.resource = Some(at.term);
        }
        Key::SubmittedBy => {
            let Some(by) = SubmittedBy::parse_text(&text) else {
                return fail(at.value, QueryErrorKind::BadSubmitter);
            };
            query.submitted_by = Some(by);
            spans.submitted_by = Some(at.term);
        }
        Key::After | Key::Before => {
            let Ok(t) = Timestamp::parse(&text).or_else(|_| Timestamp::parse_date(&text)) else {
                return fail(at.value, QueryErrorKind::BadTime { key, value: text });
            };
            if key == Key::After {
                query.after = Some(t);
                spans.after = Some(at.term);
            } else {
                query.before = Some(t);
                spans.before = Some(at.term);
            }
        }
    }
    Ok(())
}

/// `event:a,b` as well as `event:a event:b`, as in the `event` parameter;
/// each pattern located where it was written.
fn apply_events(query: &mut Query, spans: &mut Spans, value: &Decoded, at: Located) -> Result<(), QueryError> {
    let mut start = 0;
    for end in (0..=value.chars.len()).filter(|&j| j == value.chars.len() || value.chars[j] == ',') {
        let (mut s, mut e) = (start, end);
        start = end + 1;
        while s < e && value.chars[s].is_whitespace() {
            s += 1;
        }
        while e > s && value.chars[e - 1].is_whitespace() {
            e -= 1;
        }
        // An empty part has no text of its own to point at.
        let span = if s < e { value.span(s..e) } else { at.value };
        match EventPattern::parse(&value.text(s..e)) {
            Ok(p) => {
                query.events.push(p);
                spans.events.push(span);
            }
            Err(e) => {
                return Err(QueryError {
                    span,
                    kind: QueryErrorKind::BadPattern(e),
                });
            }
        }
    }
    Ok(())
}

impl Query {
    /// The fields of `filter` the language covers. `None` when the filter
    /// says something the language cannot: a resource id without its type.
    /// Fields outside the language (`after_seq`, the page) are left out.
    pub fn from_filter(filter: &Filter) -> Option<Query> {
        let resource = match (&filter.resource_type, &filter.resource_id) {
            (Some(kind), id) => Some(ResourceTerm {
                kind: kind.clone(),
                id: id.clone(),
            }),
            (None, Some(_)) => return None,
            (None, None) => None,
        };
        let events = filter
            .event_patterns
            .iter()
            .map(|p| EventPattern::parse(p).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Query {
            actor: filter.actor.clone(),
            events,
            resource,
            submitted_by: filter.submitted_by.clone(),
            after: filter.from,
            before: filter.to,
        })
    }
}

/// Canonical text: lower-case keys in the order actor, event (one term per
/// pattern), resource, submitted_by, after, before; values quoted only when they must
/// be; midnight UTC written as a plain date. Every query [`parse`] returns
/// is written as text that parses back to it.
impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut terms = Vec::new();
        if let Some(actor) = &self.actor {
            terms.push(format!("actor:{}", quoted(actor)));
        }
        for p in &self.events {
            terms.push(format!("event:{p}"));
        }
        if let Some(r) = &self.resource {
            let value = match &r.id {
                Some(id) => format!("{}:{id}", r.kind),
                None => r.kind.clone(),
            };
            terms.push(format!("resource:{}", quoted(&value)));
        }
        if let Some(by) = &self.submitted_by {
            terms.push(format!("submitted_by:{}", quoted(&by.to_text())));
        }
        if let Some(t) = self.after {
            terms.push(format!("after:{}", time_text(t)));
        }
        if let Some(t) = self.before {
            terms.push(format!("before:{}", time_text(t)));
        }
        f.write_str(&terms.join(" "))
    }
}

/// The canonical query text for what `filter` selects, or `None` when no
/// text would parse back to the same filter: a resource id without a type,
/// a type containing `:`, a value the parser refuses (empty, too long), or
/// an empty time range.
pub fn render(filter: &Filter) -> Option<String> {
    let query = Query::from_filter(filter)?;
    let text = query.to_string();
    // Checking by parsing keeps the promise whatever the filter holds,
    // rather than listing every case the text cannot express.
    (parse(&text).as_ref() == Ok(&query)).then_some(text)
}

/// A value as written in a term: bare unless it holds whitespace or a
/// quote, or is empty.
fn quoted(value: &str) -> String {
    if !value.is_empty() && !value.chars().any(|c| c.is_whitespace() || c == '"') {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn time_text(t: Timestamp) -> String {
    let text = t.to_rfc3339();
    if t.is_midnight() { text[..10].to_owned() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn pattern(s: &str) -> EventPattern {
        EventPattern::parse(s).unwrap()
    }

    /// The error's kind and the text its span covers.
    fn error(input: &str) -> (QueryErrorKind, String) {
        let e = parse(input).unwrap_err();
        let covered = input.chars().skip(e.span.start).take(e.span.len).collect();
        (e.kind, covered)
    }

    #[test]
    fn the_design_example() {
        let q = parse("actor:alice@acme.com event:api_key.* resource:project:p_1 after:2026-01-01").unwrap();
        assert_eq!(
            q,
            Query {
                actor: Some("alice@acme.com".into()),
                events: vec![pattern("api_key.*")],
                resource: Some(ResourceTerm {
                    kind: "project".into(),
                    id: Some("p_1".into())
                }),
                submitted_by: None,
                after: Some(ts("2026-01-01T00:00:00Z")),
                before: None,
            }
        );
    }

    #[test]
    fn submitted_by_names_a_kind_and_an_id() {
        let q = parse("submitted_by:api_key:lqt_ab12cd34").unwrap();
        assert_eq!(
            q.submitted_by,
            Some(SubmittedBy::new(crate::SubmitterKind::ApiKey, "lqt_ab12cd34"))
        );
        assert_eq!(q.to_string(), "submitted_by:api_key:lqt_ab12cd34");
        let cli = parse(r#"submitted_by:"cli:root@db 1""#).unwrap();
        assert_eq!(cli.submitted_by.unwrap().id, "root@db 1");
        for bad in ["submitted_by:robot:x", "submitted_by:api_key:", "submitted_by:api_key"] {
            assert_eq!(parse(bad).unwrap_err().kind, QueryErrorKind::BadSubmitter, "{bad}");
        }
    }

    #[test]
    fn nothing_but_whitespace_selects_everything() {
        assert_eq!(parse("").unwrap(), Query::default());
        assert_eq!(parse(" \t\n ").unwrap(), Query::default());
    }

    #[test]
    fn each_term_kind() {
        assert_eq!(
            parse("actor:lqt_ab12cd34").unwrap().actor.as_deref(),
            Some("lqt_ab12cd34")
        );
        assert_eq!(parse("actor:a:b").unwrap().actor.as_deref(), Some("a:b"));
        assert_eq!(
            parse("event:api_key.* event:*.deleted").unwrap().events,
            [pattern("api_key.*"), pattern("*.deleted")]
        );
        assert_eq!(
            parse("event:project.created,api_key.*").unwrap().events,
            [pattern("project.created"), pattern("api_key.*")]
        );
        assert_eq!(
            parse("resource:project").unwrap().resource,
            Some(ResourceTerm {
                kind: "project".into(),
                id: None
            })
        );
        assert_eq!(
            parse("resource:urn:aws:s3:bucket").unwrap().resource,
            Some(ResourceTerm {
                kind: "urn".into(),
                id: Some("aws:s3:bucket".into())
            }),
            "split at the first colon only"
        );
        let q = parse("after:2026-01-31T12:00:00+02:00 before:2026-02-01").unwrap();
        assert_eq!(q.after, Some(ts("2026-01-31T10:00:00Z")));
        assert_eq!(q.before, Some(ts("2026-02-01T00:00:00Z")));
    }

    #[test]
    fn keys_are_case_insensitive_and_values_are_not() {
        let q = parse("ACTOR:Jane Event:api_key.created").unwrap();
        assert_eq!(q.actor.as_deref(), Some("Jane"));
        assert_eq!(q.events, [pattern("api_key.created")]);
        assert!(matches!(
            parse("event:API_KEY.*").unwrap_err().kind,
            QueryErrorKind::BadPattern(PatternError::BadCharacter(_))
        ));
    }

    #[test]
    fn spans_point_at_each_term_and_pattern() {
        let (_, spans) = parse_with_spans("actor:é  event:a.b,c.*  resource:x before:2026-01-01").unwrap();
        assert_eq!(spans.actor, Some(Span { start: 0, len: 7 }));
        assert_eq!(spans.events, [Span { start: 15, len: 3 }, Span { start: 19, len: 3 }]);
        assert_eq!(spans.resource, Some(Span { start: 24, len: 10 }));
        assert_eq!(spans.before, Some(Span { start: 35, len: 17 }));
        assert_eq!(spans.after, None);
    }

    #[test]
    fn quotes_hold_spaces_quotes_and_backslashes() {
        assert_eq!(parse(r#"actor:"Jane Doe""#).unwrap().actor.as_deref(), Some("Jane Doe"));
        assert_eq!(
            parse(r#"actor:"say \"hi\" \\o/""#).unwrap().actor.as_deref(),
            Some(r#"say "hi" \o/"#)
        );
        assert_eq!(parse(r"actor:CORP\jane").unwrap().actor.as_deref(), Some(r"CORP\jane"));
        assert_eq!(parse(r#"actor:"a\b""#).unwrap().actor.as_deref(), Some(r"a\b"));
        assert_eq!(
            parse(r#"resource:project:"Prod EU""#)
                .unwrap()
                .resource
                .unwrap()
                .id
                .as_deref(),
            Some("Prod EU"),
            "quotes may start mid-value"
        );
        assert_eq!(
            parse(r#"resource:"my type:my id""#).unwrap().resource,
            Some(ResourceTerm {
                kind: "my type".into(),
                id: Some("my id".into())
            })
        );
        assert_eq!(
            parse(r#""actor":x"#).unwrap_err().kind,
            QueryErrorKind::BareWord(r#""actor":x"#.into())
        );
    }

    #[test]
    fn every_error_says_where() {
        let cases: Vec<(&str, QueryErrorKind, &str)> = vec![
            ("actor:a acter:b", QueryErrorKind::UnknownKey("acter".into()), "acter"),
            ("event:x.* alice", QueryErrorKind::BareWord("alice".into()), "alice"),
            (":x", QueryErrorKind::BareWord(":x".into()), ":x"),
            ("actor:", QueryErrorKind::EmptyValue(Key::Actor), "actor:"),
            (
                r#"event:a.* actor:"""#,
                QueryErrorKind::EmptyValue(Key::Actor),
                r#"actor:"""#,
            ),
            (
                r#"actor:"Jane Doe event:x"#,
                QueryErrorKind::UnterminatedQuote,
                r#""Jane Doe event:x"#,
            ),
            (r#"actor:"a\""#, QueryErrorKind::UnterminatedQuote, r#""a\""#),
            (
                "after:yesterday",
                QueryErrorKind::BadTime {
                    key: Key::After,
                    value: "yesterday".into(),
                },
                "yesterday",
            ),
            (
                r#"before:"2026-01-01 12:00""#,
                QueryErrorKind::BadTime {
                    key: Key::Before,
                    value: "2026-01-01 12:00".into(),
                },
                r#""2026-01-01 12:00""#,
            ),
            (
                "event:api_key.*,API.x",
                QueryErrorKind::BadPattern(PatternError::BadCharacter("API.x".into())),
                "API.x",
            ),
            (
                "event:a.*,,b.*",
                QueryErrorKind::BadPattern(PatternError::Empty),
                "a.*,,b.*",
            ),
            ("actor:a ACTOR:b", QueryErrorKind::Repeated(Key::Actor), "ACTOR:b"),
            (
                "resource:a resource:b",
                QueryErrorKind::Repeated(Key::Resource),
                "resource:b",
            ),
            (
                "after:2026-01-01 after:2026-01-02",
                QueryErrorKind::Repeated(Key::After),
                "after:2026-01-02",
            ),
            ("resource::p_1", QueryErrorKind::BadResource, "resource::p_1"),
            ("resource:project:", QueryErrorKind::BadResource, "resource:project:"),
            (
                "before:2026-01-01 after:2026-01-01",
                QueryErrorKind::EmptyRange,
                "after:2026-01-01",
            ),
            (
                "after:2026-02-01 before:2026-01-01",
                QueryErrorKind::EmptyRange,
                "before:2026-01-01",
            ),
        ];
        for (input, kind, covered) in cases {
            assert_eq!(error(input), (kind, covered.to_owned()), "{input}");
        }
        let long = format!("actor:{}", "a".repeat(MAX_VALUE_LEN + 1));
        assert_eq!(error(&long).0, QueryErrorKind::TooLong(Key::Actor));
        assert!(parse(&format!("actor:{}", "a".repeat(MAX_VALUE_LEN))).is_ok());
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let e = parse("actor:zoë@例え.jp acter:x").unwrap_err();
        assert_eq!(e.span, Span { start: 16, len: 5 });
    }

    #[test]
    fn messages_lead_with_the_position() {
        assert_eq!(
            parse("actor:alice acter:bob").unwrap_err().to_string(),
            "at character 12: unknown key \"acter\"; expected actor, event, resource, submitted_by, after, before"
        );
        assert_eq!(
            parse("alice").unwrap_err().to_string(),
            "at character 0: \"alice\" has no key: terms must be key:value, \
             with key one of actor, event, resource, submitted_by, after, before"
        );
    }

    /// Values chosen to trip a careless quoter.
    const AWKWARD: &[&str] = &[
        "alice@acme.com",
        "Jane Doe",
        "\"",
        "\\",
        "\\\"",
        "ends with \\",
        "\"quoted\"",
        "a:b:c",
        "tab\there",
        "line\nbreak",
        "nbsp\u{a0}inside",
        "zoë@例え.jp",
        "=HYPERLINK(\"x\")",
        ",comma,",
        "actor:nested",
        " leading",
        "trailing ",
        "'",
        "#",
    ];

    #[test]
    fn rendering_parses_back_to_the_same_query() {
        let times = [
            None,
            Some(ts("2026-01-01T00:00:00Z")),
            Some(ts("2026-01-31T12:34:56.789Z")),
            Some(ts("1969-12-31T23:59:59.999Z")),
        ];
        for (i, value) in AWKWARD.iter().enumerate() {
            let kind = AWKWARD[(i + 3) % AWKWARD.len()].replace(':', "");
            for id in [None, Some(value.to_string())] {
                let q = Query {
                    actor: Some(value.to_string()),
                    events: vec![pattern("api_key.*"), pattern("*.deleted"), pattern("project.created")],
                    resource: Some(ResourceTerm {
                        kind: kind.clone(),
                        id: id.clone(),
                    }),
                    submitted_by: Some(SubmittedBy::new(crate::SubmitterKind::Cli, value.to_string())),
                    after: times[i % times.len()],
                    before: Some(ts("2027-01-01T00:00:00.001Z")),
                };
                let text = q.to_string();
                assert_eq!(parse(&text), Ok(q), "{text}");
            }
        }
        assert_eq!(Query::default().to_string(), "");
    }

    #[test]
    fn canonical_text_quotes_only_where_needed() {
        let q =
            parse(r#"Before:2026-02-01 resource:project:p_1 ACTOR:"alice" event:a.*,b.* after:2026-01-01T00:00:00Z"#)
                .unwrap();
        assert_eq!(
            q.to_string(),
            "actor:alice event:a.* event:b.* resource:project:p_1 after:2026-01-01 before:2026-02-01"
        );
        let q = parse(r#"actor:"Jane \"JD\" Doe" after:2026-01-01T00:00:00.5Z"#).unwrap();
        assert_eq!(
            q.to_string(),
            r#"actor:"Jane \"JD\" Doe" after:2026-01-01T00:00:00.500Z"#
        );
    }

    #[test]
    fn filters_render_unless_the_language_cannot_say_them() {
        let filter = Filter {
            actor: Some("Jane Doe".into()),
            event_patterns: vec!["api_key.*".into()],
            resource_type: Some("project".into()),
            resource_id: Some("p:1".into()),
            from: Some(ts("2026-01-01T00:00:00Z")),
            to: Some(ts("2026-02-01T00:00:00Z")),
            after_seq: Some(7),
            ..Filter::default()
        };
        assert_eq!(
            render(&filter).as_deref(),
            Some(r#"actor:"Jane Doe" event:api_key.* resource:project:p:1 after:2026-01-01 before:2026-02-01"#)
        );
        assert_eq!(render(&Filter::default()).as_deref(), Some(""));
        let id_alone = Filter {
            resource_id: Some("p_1".into()),
            ..Filter::default()
        };
        assert_eq!(render(&id_alone), None);
        let colon_type = Filter {
            resource_type: Some("a:b".into()),
            ..Filter::default()
        };
        assert_eq!(render(&colon_type), None);
        let empty_actor = Filter {
            actor: Some(String::new()),
            ..Filter::default()
        };
        assert_eq!(render(&empty_actor), None);
    }
}
