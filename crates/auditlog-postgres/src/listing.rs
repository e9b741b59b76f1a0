//! The SQL of a filtered listing, newest first, strictly after a cursor.
//!
//! Every filter column has an index ending in `(ts, seq)`, and the entries
//! are partitioned by `ts`, so PostgreSQL reads the partitions newest first,
//! walks one index backwards in each and stops after `limit` rows. A filter
//! on a few event names gets a different shape: `event = ANY(…)` cannot walk
//! one index in order, so each name gets its own ordered, limited subquery
//! and the results are merged, reading at most `limit` rows per name.
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

/// The conditions other than the event filter.
fn conditions(org: OrgId, filter: &Filter, page: Page, params: &mut Vec<Param>) -> String {
    let mut sql = format!("org_id = {}", push(params, Box::new(org.0)));
    if let Some(a) = &filter.actor {
        sql += &format!(" AND actor = {}", push(params, Box::new(a.clone())));
    }
    if let Some(t) = &filter.resource_type {
        sql += &format!(" AND resource_type = {}", push(params, Box::new(t.clone())));
    }
    if let Some(i) = &filter.resource_id {
        sql += &format!(" AND resource_id = {}", push(params, Box::new(i.clone())));
    }
    if let Some(by) = &filter.submitted_by {
        let kind = push(params, Box::new(by.kind.as_str().to_owned()));
        let id = push(params, Box::new(by.id.clone()));
        sql += &format!(" AND submitted_by_kind = {kind} AND submitted_by_id = {id}");
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
fn build_replay(org: OrgId, filter: &Filter, after_seq: i64, page: Page) -> Query {
    let mut params = Vec::new();
    let mut sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM entries WHERE {}",
        conditions(org, filter, page, &mut params)
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

pub fn build(org: OrgId, filter: &Filter, page: Page) -> Query {
    if let Some(after_seq) = filter.after_seq {
        return build_replay(org, filter, after_seq, page);
    }
    if filter.events.as_deref() == Some(&[]) {
        return Query {
            sql: format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE false"),
            params: Vec::new(),
        };
    }
    let mut params = Vec::new();
    let base = conditions(org, filter, page, &mut params);
    let limit = push(&mut params, Box::new(i64::from(page.limit)));
    // Per-event merging pays off only when the event filter drives the query.
    let merge = matches!(filter.events.as_deref(), Some(names) if names.len() <= MERGE_EVENTS_UP_TO)
        && filter.resource_id.is_none()
        && filter.actor.is_none();
    let sql = match filter.events.as_deref() {
        None => format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE {base} {ORDER} LIMIT {limit}"),
        Some(names) if merge => {
            let parts: Vec<String> = names
                .iter()
                .map(|name| {
                    let p = push(&mut params, Box::new(name.clone()));
                    format!("(SELECT {ENTRY_COLUMNS} FROM entries WHERE {base} AND event = {p} {ORDER} LIMIT {limit})")
                })
                .collect();
            format!(
                "SELECT {ENTRY_COLUMNS} FROM ({}) AS merged {ORDER} LIMIT {limit}",
                parts.join(" UNION ALL ")
            )
        }
        Some(names) => {
            let p = push(&mut params, Box::new(names.to_vec()));
            format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE {base} AND event = ANY({p}) {ORDER} LIMIT {limit}")
        }
    };
    Query { sql, params }
}

/// Entries per bucket of `width_ms` and per category: each row is
/// `(bucket start, category, count)`.
pub fn build_histogram(org: OrgId, filter: &Filter, width_ms: i64) -> Query {
    let mut params = Vec::new();
    let base = conditions(org, filter, Page::default(), &mut params);
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
        let q = build(OrgId(1), &filter, Page::default());
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
        let q = build(OrgId(1), &filter, Page::default());
        assert_eq!(q.sql.matches("UNION ALL").count(), 1);
    }

    #[test]
    fn many_events_use_one_array_parameter() {
        let filter = Filter {
            events: Some((0..9).map(|i| format!("e.n{i}")).collect()),
            ..Filter::default()
        };
        let q = build(OrgId(1), &filter, Page::default());
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
            let q = build(OrgId(1), &f, page);
            for i in 1..=q.params.len() {
                assert!(q.sql.contains(&format!("${i}")), "${i} unused in {}", q.sql);
            }
        }
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
        let q = build(OrgId(1), &Filter::default(), page);
        assert!(q.sql.contains("(ts, seq) < ($2, $3)"), "{}", q.sql);
        assert_eq!(q.params.len(), 4);
    }
}
