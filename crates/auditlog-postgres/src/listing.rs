//! The SQL of a filtered listing, newest first, strictly after a cursor.
//!
//! Every filter column has an index ending in `(ts, seq)`, and the entries
//! are partitioned by `ts`, so PostgreSQL reads the partitions newest first,
//! walks one index backwards in each and stops after `limit` rows. A filter
//! on a few event names gets a different shape: `event = ANY(…)` cannot walk
//! one index in order, so each name gets its own ordered, limited subquery
//! and the results are merged, reading at most `limit` rows per name.
//!
//! With personal data, a person's id is stored as their blind-index token
//! (see the domain's `personal::PersonalData`) in entries that sealed it,
//! and as itself in older ones, so a filter on an id matches either
//! ([`Tokens`]). The driving index cannot walk two values of its column in
//! order, so the id and the token then get an ordered, limited subquery
//! each, merged like event names.
//!
//! Values are always bound as parameters; the text varies only with which
//! filters are present (and how many event names are merged), so each
//! connection prepares a handful of statements and reuses them.

use auditlog_domain::OrgId;
use auditlog_domain::filter::{Filter, Page};
use tokio_postgres::types::ToSql;

use crate::rows::ENTRY_COLUMNS;

/// Up to this many event names are merged from per-name subqueries; a
/// longer list selects so much of the log that scanning by time is cheaper.
const MERGE_EVENTS_UP_TO: usize = 8;

const ORDER: &str = "ORDER BY ts DESC, seq DESC";

pub type Param = Box<dyn ToSql + Sync + Send>;

pub struct Query {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Query {
    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query")
            .field("sql", &self.sql)
            .field("params", &self.params)
            .finish()
    }
}

fn push(params: &mut Vec<Param>, v: Param) -> String {
    params.push(v);
    format!("${}", params.len())
}

/// The blind-index tokens a filter's person ids also match.
pub use auditlog_domain::personal::IndexTokens as Tokens;

/// ` AND column = value`, or ` AND column IN (value, token)`.
fn equals(column: &str, value: &str, token: Option<&String>, params: &mut Vec<Param>) -> String {
    let value = push(params, Box::new(value.to_owned()));
    match token {
        None => format!(" AND {column} = {value}"),
        Some(t) => format!(" AND {column} IN ({value}, {})", push(params, Box::new(t.clone()))),
    }
}

/// The conditions other than the event filter.
fn conditions(org: OrgId, filter: &Filter, tokens: &Tokens, page: Page, params: &mut Vec<Param>) -> String {
    let mut sql = format!("org_id = {}", push(params, Box::new(org.0)));
    if let Some(a) = &filter.actor {
        sql += &equals("actor", a, tokens.actor.as_ref(), params);
    }
    if let Some(t) = &filter.resource_type {
        sql += &format!(" AND resource_type = {}", push(params, Box::new(t.clone())));
    }
    if let Some(i) = &filter.resource_id {
        sql += &equals("resource_id", i, tokens.resource_id.as_ref(), params);
    }
    if let Some(by) = &filter.submitted_by {
        let kind = push(params, Box::new(by.kind.as_str().to_owned()));
        sql += &format!(" AND submitted_by_kind = {kind}");
        sql += &equals("submitted_by_id", &by.id, tokens.submitted_by.as_ref(), params);
    }
    if let Some(f) = filter.from {
        sql += &format!(" AND ts >= {}", push(params, Box::new(f.millis())));
    }
    if let Some(t) = filter.to {
        sql += &format!(" AND ts < {}", push(params, Box::new(t.millis())));
    }
    if let Some(m) = filter.max_seq {
        sql += &format!(" AND seq <= {}", push(params, Box::new(m)));
    }
    if let Some(c) = page.after {
        let ts = push(params, Box::new(c.timestamp.millis()));
        let seq = push(params, Box::new(c.seq));
        // The row comparison, plus a plain bound on ts that prunes partitions.
        sql += &format!(" AND ts <= {ts} AND (ts, seq) < ({ts}, {seq})");
    }
    sql
}

/// Oldest first after a sequence number: each partition's primary key
/// `(org_id, seq, ts)` is in that order, so a page reads only its own rows.
fn build_replay(org: OrgId, filter: &Filter, tokens: &Tokens, after_seq: i64, page: Page) -> Query {
    let mut params = Vec::new();
    let mut sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM entries WHERE {}",
        conditions(org, filter, tokens, page, &mut params)
    );
    sql += &format!(" AND seq > {}", push(&mut params, Box::new(after_seq)));
    if let Some(names) = &filter.events {
        sql += &format!(" AND event = ANY({})", push(&mut params, Box::new(names.clone())));
    }
    sql += &format!(
        " ORDER BY seq LIMIT {}",
        push(&mut params, Box::new(i64::from(page.limit)))
    );
    Query { sql, params }
}

pub fn build(org: OrgId, filter: &Filter, tokens: &Tokens, page: Page) -> Query {
    if let Some(after_seq) = filter.after_seq {
        return build_replay(org, filter, tokens, after_seq, page);
    }
    if filter.events.as_deref() == Some(&[]) {
        return Query {
            sql: format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE false"),
            params: Vec::new(),
        };
    }
    let mut params = Vec::new();
    let sql = build_newest(org, filter, tokens, page, &mut params);
    Query { sql, params }
}

/// A newest-first listing, its parameters numbered after `params`'.
fn build_newest(org: OrgId, filter: &Filter, tokens: &Tokens, page: Page, params: &mut Vec<Param>) -> String {
    if let Some([(plain, rest), (token, _)]) = split_on_token(filter, tokens) {
        let a = build_newest(org, &plain, &rest, page, params);
        let b = build_newest(org, &token, &rest, page, params);
        let limit = push(params, Box::new(i64::from(page.limit)));
        return format!("SELECT {ENTRY_COLUMNS} FROM (({a}) UNION ALL ({b})) AS ids {ORDER} LIMIT {limit}");
    }
    let base = conditions(org, filter, tokens, page, params);
    let limit = push(params, Box::new(i64::from(page.limit)));
    // Per-event merging pays off only when the event filter drives the query.
    let merge = matches!(filter.events.as_deref(), Some(names) if names.len() <= MERGE_EVENTS_UP_TO)
        && filter.resource_id.is_none()
        && filter.actor.is_none();
    match filter.events.as_deref() {
        None => format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE {base} {ORDER} LIMIT {limit}"),
        Some(names) if merge => {
            let parts: Vec<String> = names
                .iter()
                .map(|name| {
                    let p = push(params, Box::new(name.clone()));
                    format!("(SELECT {ENTRY_COLUMNS} FROM entries WHERE {base} AND event = {p} {ORDER} LIMIT {limit})")
                })
                .collect();
            format!(
                "SELECT {ENTRY_COLUMNS} FROM ({}) AS merged {ORDER} LIMIT {limit}",
                parts.join(" UNION ALL ")
            )
        }
        Some(names) => {
            let p = push(params, Box::new(names.to_vec()));
            format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE {base} AND event = ANY({p}) {ORDER} LIMIT {limit}")
        }
    }
}

/// When the driving column's value has a token: the filter with the value
/// and with the token in its place, each with the tokens left to match.
/// The resource id drives before the actor, as the SQLite store's listing
/// has it: it is the rarer of the two.
fn split_on_token(filter: &Filter, tokens: &Tokens) -> Option<[(Filter, Tokens); 2]> {
    let mut by_token = filter.clone();
    let mut rest = tokens.clone();
    if filter.resource_id.is_some() {
        by_token.resource_id = Some(rest.resource_id.take()?);
    } else if filter.actor.is_some() {
        by_token.actor = Some(rest.actor.take()?);
    } else {
        return None;
    }
    Some([(filter.clone(), rest.clone()), (by_token, rest)])
}

/// Entries per bucket of `width_ms` and per category: each row is
/// `(bucket start, category, count)`.
pub fn build_histogram(org: OrgId, filter: &Filter, tokens: &Tokens, width_ms: i64) -> Query {
    let mut params = Vec::new();
    let base = conditions(org, filter, tokens, Page::default(), &mut params);
    let width = push(&mut params, Box::new(width_ms.max(1)));
    let events = match filter.events.as_deref() {
        None => String::new(),
        Some(names) => format!(" AND event = ANY({})", push(&mut params, Box::new(names.to_vec()))),
    };
    let sql = format!(
        "SELECT (ts / {width}) * {width} AS bucket, split_part(event, '.', 1) AS category, count(*) \
         FROM entries WHERE {base}{events} GROUP BY 1, 2 ORDER BY 1, 2"
    );
    Query { sql, params }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_domain::Timestamp;
    use auditlog_domain::cursor::Cursor;

    #[test]
    fn values_are_always_bound_never_spliced() {
        let filter = Filter {
            actor: Some("x' OR 1=1 --".into()),
            events: Some(vec!["a.b".into(), "c.d".into()]),
            ..Filter::default()
        };
        let q = build(OrgId(1), &filter, &Tokens::default(), Page::default());
        assert!(!q.sql.contains("OR 1=1"), "{}", q.sql);
        assert!(!q.sql.contains("a.b"), "{}", q.sql);
        assert!(format!("{:?}", q.params).contains("x' OR 1=1 --"));
    }

    #[test]
    fn few_events_merge_ordered_subqueries() {
        let filter = Filter {
            events: Some(vec!["a.b".into(), "c.d".into()]),
            ..Filter::default()
        };
        let q = build(OrgId(1), &filter, &Tokens::default(), Page::default());
        assert_eq!(q.sql.matches("UNION ALL").count(), 1);
    }

    #[test]
    fn many_events_use_one_array_parameter() {
        let filter = Filter {
            events: Some((0..9).map(|i| format!("e.n{i}")).collect()),
            ..Filter::default()
        };
        let q = build(OrgId(1), &filter, &Tokens::default(), Page::default());
        assert!(q.sql.contains("event = ANY($3)"), "{}", q.sql);
        assert!(!q.sql.contains("UNION"));
    }

    #[test]
    fn every_parameter_is_used() {
        let filter = Filter {
            actor: Some("a@x.io".into()),
            events: Some(vec!["a.b".into(), "c.d".into()]),
            resource_type: Some("project".into()),
            from: Some(Timestamp(1)),
            to: Some(Timestamp(2)),
            max_seq: Some(9),
            ..Filter::default()
        };
        let page = Page {
            limit: 10,
            after: Some(Cursor {
                timestamp: Timestamp(5),
                seq: 9,
            }),
        };
        for f in [filter.clone(), Filter { actor: None, ..filter }] {
            let q = build(OrgId(1), &f, &Tokens::default(), page);
            for i in 1..=q.params.len() {
                assert!(q.sql.contains(&format!("${i}")), "${i} unused in {}", q.sql);
            }
        }
    }

    #[test]
    fn a_token_gives_the_driving_column_a_walk_of_its_own() {
        let filter = Filter {
            actor: Some("a@x.io".into()),
            resource_id: Some("p_1".into()),
            events: Some(vec!["a.b".into()]),
            ..Filter::default()
        };
        let tokens = Tokens {
            actor: Some("\u{1}aa".into()),
            resource_id: Some("\u{1}bb".into()),
            submitted_by: None,
        };
        let page = Page {
            limit: 10,
            after: Some(Cursor {
                timestamp: Timestamp(5),
                seq: 9,
            }),
        };
        let q = build(OrgId(1), &filter, &tokens, page);
        assert_eq!(q.sql.matches("UNION ALL").count(), 1, "{}", q.sql);
        assert_eq!(q.sql.matches("resource_id = $").count(), 2, "{}", q.sql);
        assert_eq!(q.sql.matches("actor IN ($").count(), 2, "{}", q.sql);
        for i in 1..=q.params.len() {
            assert!(q.sql.contains(&format!("${i}")), "${i} unused in {}", q.sql);
        }
        let params = format!("{:?}", q.params);
        assert!(params.contains("p_1") && params.contains("\\u{1}bb"), "{params}");
    }

    #[test]
    fn cursor_is_a_row_value_bound() {
        let page = Page {
            limit: 10,
            after: Some(Cursor {
                timestamp: Timestamp(5),
                seq: 9,
            }),
        };
        let q = build(OrgId(1), &Filter::default(), &Tokens::default(), page);
        assert!(q.sql.contains("(ts, seq) < ($2, $3)"), "{}", q.sql);
        assert_eq!(q.params.len(), 4);
    }
}
