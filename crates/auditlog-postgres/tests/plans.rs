//! Listings read the partitions newest first, walking an index backwards in
//! each, so a first page reads only the rows it returns: no sort of every
//! matching row, and a date range touches only its months' partitions.
//! With personal data, a filter on a person's id matches their
//! blind-index token too, and still walks an index for each.

use std::sync::Arc;

use auditlog_domain::cursor::Cursor;
use auditlog_domain::entry::{Actor, ActorType, Resource};
use auditlog_domain::filter::{Page, parse_listing};
use auditlog_domain::org::NewOrg;
use auditlog_domain::personal::PersonalData;
use auditlog_domain::store::{AccountStore, AppendRequest, EntryStore};
use auditlog_domain::{Catalog, NewEntry, OrgId, Plan, Timestamp};
use auditlog_postgres::{PostgresStore, listing, testing};

const EVENTS: [&str; 4] = [
    "api_key.created",
    "project.created",
    "billing.plan_upgraded",
    "guardrail.updated",
];

fn entry(at: i64, n: usize) -> NewEntry {
    NewEntry {
        timestamp: Timestamp(at),
        actor: Actor {
            kind: ActorType::User,
            id: format!("u{}@x.io", n % 50),
        },
        event: EVENTS[n % EVENTS.len()].into(),
        resource: Resource {
            kind: if n.is_multiple_of(3) { "project" } else { "api_key" }.into(),
            id: format!("p_{}", n % 100),
            name: None,
        },
        details: Default::default(),
        ip_address: None,
        user_agent: None,
        request_id: None,
        idempotency_key: None,
        submitted_by: auditlog_domain::SubmittedBy::new(auditlog_domain::SubmitterKind::ApiKey, "lqt_test0000"),
    }
}

/// The plan of a listing; with `personal`, matching the tokens of the
/// filter's ids as the store does.
async fn explain(
    client: &tokio_postgres::Client,
    org: OrgId,
    q: &[(&str, &str)],
    after: Option<Cursor>,
    personal: Option<&PersonalData>,
) -> String {
    let pairs: Vec<_> = q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let req = parse_listing(&pairs, &Catalog::builtin(), &[]).unwrap();
    let f = &req.filter;
    let tokens = personal.map(|p| p.tokens_for(f)).unwrap_or_default();
    let query = listing::build(org, f, &tokens, Page { limit: 51, after });
    let rows = client
        .query(&format!("EXPLAIN {}", query.sql), &query.params())
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// That the listing `q` planned as `plan` walks indexes in order rather
/// than sorting what matches; `tokens` when it matched ids' tokens too.
fn assert_ordered(q: &[(&str, &str)], plan: &str, tokens: bool) {
    assert!(plan.contains("Index Scan Backward"), "{q:?} walks an index:\n{plan}");
    if tokens && q.iter().any(|(k, _)| *k == "actor") {
        // The id and the token each walk the actor index, merged.
        let walks = plan
            .lines()
            .filter(|l| l.contains("Index Scan Backward") && l.contains("actor_ts_seq"))
            .count();
        assert!(
            plan.contains("Merge Append") && walks >= 2,
            "{q:?} walks the index for the id and its token:\n{plan}"
        );
    }
    // Merged per-event subqueries are ordered by a merge; a sort is
    // allowed only over a partition the planner knows is (nearly) empty.
    for line in plan.lines().filter(|l| l.contains("Sort  (")) {
        let rows: u64 = line
            .split("rows=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|r| r.parse().ok())
            .unwrap_or(u64::MAX);
        assert!(rows <= 10, "{q:?} sorts matching rows:\n{plan}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_walk_partitions_in_order() {
    let Some(url) = testing::fresh_database_url().await else {
        return;
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    // Sealed entries, so actors and resource ids are stored as tokens.
    let personal = Arc::new(PersonalData::new(&[7; 32], Arc::new(Catalog::builtin())));
    store.use_personal_data(personal.clone());
    let mut orgs = Vec::new();
    for i in 0..3 {
        let org = NewOrg {
            slug: format!("org-{i}"),
            name: "Org".into(),
            plan: Plan::Team,
            enterprise_retention_days: None,
        };
        orgs.push(store.create_org(org, Timestamp(0)).await.unwrap());
    }
    // Three months of entries, every ten minutes, for each organization.
    let start = Timestamp::parse("2026-01-01T00:00:00Z").unwrap().millis();
    for chunk in 0..13 {
        let requests = orgs
            .iter()
            .map(|o| {
                let entries = (0..1000)
                    .map(|i| {
                        let n = chunk * 1000 + i;
                        entry(start + n as i64 * 600_000, n)
                    })
                    .collect();
                AppendRequest::entries(o.id, entries)
            })
            .collect();
        store.append(requests, Timestamp(start)).await.unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute("ANALYZE").await.unwrap();

    let cursor = Cursor {
        timestamp: Timestamp::parse("2026-02-15T00:00:00Z").unwrap(),
        seq: 10,
    };
    let ordered: &[&[(&str, &str)]] = &[
        &[],
        &[("actor", "u1@x.io")],
        &[("event", "api_key.created")],
        &[("event", "api_key.*"), ("event", "billing.*")],
        &[("resource_type", "project")],
        &[("from", "2026-01-10T00:00:00Z")],
        &[("actor", "u1@x.io"), ("submitted_by", "api_key:lqt_test0000")],
    ];
    for q in ordered {
        for (after, personal) in [None, Some(cursor)]
            .into_iter()
            .flat_map(|a| [(a, None), (a, Some(&*personal))])
        {
            let plan = explain(&client, orgs[1].id, q, after, personal).await;
            assert_ordered(q, &plan, personal.is_some());
        }
    }
    // A date range reads only its months.
    let plan = explain(
        &client,
        orgs[1].id,
        &[("from", "2026-02-03T00:00:00Z"), ("to", "2026-02-10T00:00:00Z")],
        None,
        None,
    )
    .await;
    assert!(plan.contains("entries_p202602"), "{plan}");
    for other in [
        "entries_p202601",
        "entries_p202603",
        "entries_before_2000",
        "entries_from_2100",
    ] {
        assert!(!plan.contains(other), "{other} is pruned:\n{plan}");
    }
}
