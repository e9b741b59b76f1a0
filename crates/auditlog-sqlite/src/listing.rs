//! The SQL of a filtered listing, newest first, strictly after a cursor.
//!
//! Every filter column has an index ending in `(ts, seq)`, so SQLite walks
//! one index backwards and stops after `limit` rows. A filter on a few event
//! names is the exception worth a different shape: `event IN (a, b)` cannot
//! walk one index in order, so each name gets its own ordered, limited
//! subquery and the results are merged; that reads at most `limit` rows per
//! name instead of every row of those events.

use auditlog_domain::OrgId;
use auditlog_domain::filter::{Filter, Page};
use r2d2_sqlite::rusqlite::types::Value;

use crate::rows::ENTRY_COLUMNS;

/// Up to this many event names are merged from per-name subqueries; a
/// longer list selects so much of the log that scanning by time is cheaper.
const MERGE_EVENTS_UP_TO: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub sql: String,
    pub params: Vec<Value>,
}

const ORDER: &str = "ORDER BY ts DESC, seq DESC";

/// The blind-index tokens (see the domain's `personal::PersonalData`) a
/// filter's person ids also match.
pub use auditlog_domain::personal::IndexTokens as Tokens;

/// `column = value`, or `column IN (value, token)`.
fn equals(column: &str, value: &str, token: Option<&String>, params: &mut Vec<Value>) -> String {
    params.push(Value::Text(value.to_owned()));
    let value = format!("?{}", params.len());
    match token {
        None => format!(" AND {column} = {value}"),
        Some(t) => {
            params.push(Value::Text(t.clone()));
            format!(" AND {column} IN ({value}, ?{})", params.len())
        }
    }
}

/// The conditions other than the event filter, with their parameters.
fn conditions(org: OrgId, filter: &Filter, tokens: &Tokens, page: Page, params: &mut Vec<Value>) -> String {
    let push = |v: Value, params: &mut Vec<Value>| {
        params.push(v);
        format!("?{}", params.len())
    };
    let mut sql = format!("org_id = {}", push(Value::Integer(org.0), params));
    if let Some(a) = &filter.actor {
        sql += &equals("actor", a, tokens.actor.as_ref(), params);
    }
    if let Some(t) = &filter.resource_type {
        sql += &format!(" AND resource_type = {}", push(Value::Text(t.clone()), params));
    }
    if let Some(i) = &filter.resource_id {
        sql += &equals("resource_id", i, tokens.resource_id.as_ref(), params);
    }
    if let Some(by) = &filter.submitted_by {
        let kind = push(Value::Text(by.kind.as_str().to_owned()), params);
        sql += &format!(" AND submitted_by_kind = {kind}");
        sql += &equals("submitted_by_id", &by.id, tokens.submitted_by.as_ref(), params);
    }
    if let Some(f) = filter.from {
        sql += &format!(" AND ts >= {}", push(Value::Integer(f.millis()), params));
    }
    if let Some(t) = filter.to {
        sql += &format!(" AND ts < {}", push(Value::Integer(t.millis()), params));
    }
    if let Some(m) = filter.max_seq {
        sql += &format!(" AND seq <= {}", push(Value::Integer(m), params));
    }
    if let Some(c) = page.after {
        let ts = push(Value::Integer(c.timestamp.millis()), params);
        let seq = push(Value::Integer(c.seq), params);
        sql += &format!(" AND (ts, seq) < ({ts}, {seq})");
    }
    sql
}

/// The index that drives a listing: the filter likeliest to be the most
/// selective. Naming it (`INDEXED BY`) keeps plans fixed: without
/// statistics SQLite's planner prefers any two-sided range, and would walk
/// a whole month of the time index to find one actor's few entries.
fn driving_index(filter: &Filter, merged_events: bool) -> &'static str {
    if filter.resource_id.is_some() {
        "entries_by_resource_id"
    } else if filter.actor.is_some() {
        "entries_by_actor"
    } else if merged_events {
        "entries_by_event"
    } else if filter.resource_type.is_some() {
        "entries_by_resource_type"
    } else {
        "entries_by_time"
    }
}

/// Binds each name as a parameter; their placeholders, comma-separated.
fn bind_each(params: &mut Vec<Value>, names: &[String]) -> String {
    let placeholders: Vec<String> = names
        .iter()
        .map(|name| {
            params.push(Value::Text(name.clone()));
            format!("?{}", params.len())
        })
        .collect();
    placeholders.join(", ")
}

/// Oldest first after a sequence number: the primary key `(org_id, seq)`
/// is the order, so a page reads only its own rows.
fn build_replay(org: OrgId, filter: &Filter, tokens: &Tokens, after_seq: i64, page: Page) -> Query {
    let mut params = Vec::new();
    let mut sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM entries WHERE {} AND seq > ",
        conditions(org, filter, tokens, page, &mut params)
    );
    params.push(Value::Integer(after_seq));
    sql += &format!("?{}", params.len());
    if let Some(names) = &filter.events {
        sql += &format!(" AND event IN ({})", bind_each(&mut params, names));
    }
    params.push(Value::Integer(i64::from(page.limit)));
    sql += &format!(" ORDER BY seq LIMIT ?{}", params.len());
    Query { sql, params }
}

pub fn build(org: OrgId, filter: &Filter, tokens: &Tokens, page: Page) -> Query {
    if let Some(after_seq) = filter.after_seq {
        return build_replay(org, filter, tokens, after_seq, page);
    }
    let mut params = Vec::new();
    let sql = build_newest(org, filter, tokens, page, &mut params);
    Query { sql, params }
}

/// A newest-first listing, its parameters numbered after `params`'.
fn build_newest(org: OrgId, filter: &Filter, tokens: &Tokens, page: Page, params: &mut Vec<Value>) -> String {
    // The driving index cannot walk two values of its column in order, so
    // a person's id and their token get an ordered, limited walk each.
    if let Some(split) = split_on_token(filter, tokens) {
        let [(plain, rest), (token, _)] = &split;
        let a = build_newest(org, plain, rest, page, params);
        let b = build_newest(org, token, rest, page, params);
        params.push(Value::Integer(i64::from(page.limit)));
        return format!(
            "SELECT * FROM ({a}) UNION ALL SELECT * FROM ({b}) {ORDER} LIMIT ?{}",
            params.len()
        );
    }
    let base = conditions(org, filter, tokens, page, params);
    params.push(Value::Integer(i64::from(page.limit)));
    let limit = format!("?{}", params.len());
    // Per-event merging pays off only when the event filter drives the query.
    let merge = matches!(filter.events.as_deref(), Some(names) if !names.is_empty() && names.len() <= MERGE_EVENTS_UP_TO)
        && filter.resource_id.is_none()
        && filter.actor.is_none();
    let index = driving_index(filter, merge);
    let from = format!("FROM entries INDEXED BY {index}");
    match filter.events.as_deref() {
        None => format!("SELECT {ENTRY_COLUMNS} {from} WHERE {base} {ORDER} LIMIT {limit}"),
        Some([]) => format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE 0 LIMIT {limit}"),
        Some(names) if merge => {
            let parts: Vec<String> = names
                .iter()
                .map(|name| {
                    params.push(Value::Text(name.clone()));
                    format!(
                        "SELECT * FROM (SELECT {ENTRY_COLUMNS} {from} WHERE {base} AND event = ?{} {ORDER} LIMIT {limit})",
                        params.len()
                    )
                })
                .collect();
            format!("{} {ORDER} LIMIT {limit}", parts.join(" UNION ALL "))
        }
        Some(names) => {
            let names = bind_each(params, names);
            format!("SELECT {ENTRY_COLUMNS} {from} WHERE {base} AND event IN ({names}) {ORDER} LIMIT {limit}")
        }
    }
}

/// When the driving column's value has a token: the filter with the value
/// and with the token in its place, each with the tokens left to match.
fn split_on_token(filter: &Filter, tokens: &Tokens) -> Option<[(Filter, Tokens); 2]> {
    let (column, token, rest): (fn(&mut Filter) -> &mut Option<String>, _, _) = if filter.resource_id.is_some() {
        let rest = Tokens {
            resource_id: None,
            ..tokens.clone()
        };
        (|f| &mut f.resource_id, tokens.resource_id.clone()?, rest)
    } else if filter.actor.is_some() {
        let rest = Tokens {
            actor: None,
            ..tokens.clone()
        };
        (|f| &mut f.actor, tokens.actor.clone()?, rest)
    } else {
        return None;
    };
    let mut by_token = filter.clone();
    *column(&mut by_token) = Some(token);
    Some([(filter.clone(), rest.clone()), (by_token, rest)])
}

/// Entries per bucket of `width_ms` and per category: each row is
/// `(bucket start, category, count)`. Driven by the same index a listing
/// with this filter would use.
pub fn build_histogram(org: OrgId, filter: &Filter, tokens: &Tokens, width_ms: i64) -> Query {
    let mut params = Vec::new();
    let base = conditions(org, filter, tokens, Page::default(), &mut params);
    params.push(Value::Integer(width_ms.max(1)));
    let width = format!("?{}", params.len());
    let events = match filter.events.as_deref() {
        None => String::new(),
        Some(names) => format!(" AND event IN ({})", bind_each(&mut params, names)),
    };
    let index = driving_index(filter, false);
    let sql = format!(
        "SELECT (ts / {width}) * {width} AS bucket, \
         CASE WHEN instr(event, '.') > 0 THEN substr(event, 1, instr(event, '.') - 1) ELSE event END AS category, \
         count(*) FROM entries INDEXED BY {index} WHERE {base}{events} GROUP BY bucket, category ORDER BY bucket, category"
    );
    Query { sql, params }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_domain::Timestamp;
    use auditlog_domain::cursor::Cursor;

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
    fn values_are_always_bound_never_spliced() {
        let filter = Filter {
            actor: Some("x' OR 1=1 --".into()),
            events: Some(vec!["a.b".into(), "c.d".into()]),
            ..Filter::default()
        };
        let q = build(OrgId(1), &filter, &Tokens::default(), Page::default());
        assert!(!q.sql.contains("OR 1=1"));
        assert!(q.params.contains(&Value::Text("x' OR 1=1 --".into())));
    }

    #[test]
    fn many_events_use_in() {
        let filter = Filter {
            events: Some((0..9).map(|i| format!("e.n{i}")).collect()),
            ..Filter::default()
        };
        let q = build(OrgId(1), &filter, &Tokens::default(), Page::default());
        assert!(q.sql.contains("event IN ("));
        assert!(!q.sql.contains("UNION"));
    }

    #[test]
    fn the_most_selective_filter_drives() {
        let mut f = Filter {
            events: Some(vec!["a.b".into(), "c.d".into()]),
            resource_type: Some("project".into()),
            ..Filter::default()
        };
        assert!(
            build(OrgId(1), &f, &Tokens::default(), Page::default())
                .sql
                .contains("INDEXED BY entries_by_event")
        );
        f.actor = Some("a@x.io".into());
        let q = build(OrgId(1), &f, &Tokens::default(), Page::default());
        assert!(
            q.sql.contains("INDEXED BY entries_by_actor") && !q.sql.contains("UNION"),
            "{}",
            q.sql
        );
        f.resource_id = Some("p_1".into());
        assert!(
            build(OrgId(1), &f, &Tokens::default(), Page::default())
                .sql
                .contains("INDEXED BY entries_by_resource_id")
        );
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
        assert!(q.sql.contains("(ts, seq) < (?2, ?3)"), "{}", q.sql);
        assert_eq!(q.params.last(), Some(&Value::Integer(10)));
    }
}
