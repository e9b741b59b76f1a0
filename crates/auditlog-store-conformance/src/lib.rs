//! The conformance suite every [`Store`] backend must pass: one set of
//! checks, run against SQLite and PostgreSQL alike, so the backends cannot
//! drift apart.
//!
//! A backend's test file calls [`conformance_tests!`] with an async
//! expression that yields a fresh, empty store; the macro makes one
//! `#[tokio::test]` per check so failures are reported by name.

#![forbid(unsafe_code)]

use std::collections::HashSet;

use auditlog_domain::api_key::{self, Scope};
use auditlog_domain::entry::{Actor, ActorType, Resource};
use auditlog_domain::filter::{Filter, Page};
use auditlog_domain::org::NewOrg;
use auditlog_domain::store::{AppendRequest, NewApiKey};
use auditlog_domain::{Catalog, Entry, NewEntry, Org, Plan, Store, StoreError, Timestamp};

/// Generates one test per check for a backend.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            orgs_are_created_once_and_found_by_slug,
            api_keys_are_found_by_prefix_and_prefixes_are_unique,
            sequences_are_gapless_per_organization,
            one_call_commits_many_requests_in_order,
            idempotency_keys_return_the_original,
            entries_round_trip_exactly,
            listing_is_newest_first_and_pages_neither_skip_nor_repeat,
            pages_stay_stable_while_entries_arrive,
            every_filter_matches_the_reference,
            organizations_never_see_each_other,
            max_seq_pins_a_snapshot,
        );
    };
    (@each $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let store = $make.await;
                $crate::$check(&store).await;
            }
        )*
    };
}

const T0: i64 = 1_790_000_000_000;

async fn org(store: &dyn Store, slug: &str) -> Org {
    store
        .create_org(
            NewOrg {
                slug: slug.into(),
                name: format!("{slug} Inc."),
                plan: Plan::Team,
                enterprise_retention_days: None,
            },
            Timestamp(T0),
        )
        .await
        .expect("create org")
}

fn new_entry(i: i64, actor: &str, event: &str, resource: (&str, &str)) -> NewEntry {
    NewEntry {
        timestamp: Timestamp(T0 + i * 1000),
        actor: Actor {
            kind: ActorType::infer(actor),
            id: actor.into(),
        },
        event: event.into(),
        resource: Resource {
            kind: resource.0.into(),
            id: resource.1.into(),
            name: None,
        },
        details: serde_json::Map::new(),
        ip_address: None,
        user_agent: None,
        request_id: None,
        idempotency_key: None,
    }
}

async fn append(store: &dyn Store, org: &Org, entries: Vec<NewEntry>) -> Vec<Entry> {
    let out = store
        .append(
            vec![AppendRequest {
                org_id: org.id,
                entries,
            }],
            Timestamp(T0 + 10_000_000),
        )
        .await
        .expect("append");
    out.into_iter().next().unwrap().into_iter().map(|a| a.entry).collect()
}

async fn all(store: &dyn Store, org: &Org, filter: &Filter, limit: u32) -> Vec<Entry> {
    let mut page = Page { limit, after: None };
    let mut out: Vec<Entry> = Vec::new();
    loop {
        let got = store.list(org.id, filter, page).await.expect("list");
        let done = got.len() < limit as usize;
        if let Some(last) = got.last() {
            page.after = Some(auditlog_domain::cursor::Cursor {
                timestamp: last.timestamp,
                seq: last.seq,
            });
        }
        out.extend(got);
        if done {
            return out;
        }
    }
}

pub async fn orgs_are_created_once_and_found_by_slug(store: &dyn Store) {
    let a = org(store, "acme").await;
    assert_eq!(store.org_by_slug("acme").await.unwrap(), Some(a.clone()));
    assert_eq!(store.org_by_slug("nope").await.unwrap(), None);
    let again = store
        .create_org(
            NewOrg {
                slug: "acme".into(),
                name: "Other".into(),
                plan: Plan::Scale,
                enterprise_retention_days: None,
            },
            Timestamp(T0),
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(store.log_size(a.id).await.unwrap(), 0);
}

pub async fn api_keys_are_found_by_prefix_and_prefixes_are_unique(store: &dyn Store) {
    let a = org(store, "acme").await;
    let k = api_key::generate();
    let rec = store
        .create_api_key(
            NewApiKey {
                org_id: a.id,
                prefix: k.prefix.clone(),
                name: "ci".into(),
                scopes: vec![Scope::AuditWrite, Scope::AuditRead],
                hash: k.hash.clone(),
            },
            Timestamp(T0),
        )
        .await
        .unwrap();
    let found = store.api_key(&k.prefix).await.unwrap().expect("key found");
    assert_eq!(found.org_id, a.id);
    assert_eq!(found.scopes, rec.scopes);
    assert!(found.hash.matches(&k.hash));
    assert_eq!(found.revoked_at, None);
    let dup = store
        .create_api_key(
            NewApiKey {
                org_id: a.id,
                prefix: k.prefix.clone(),
                name: "again".into(),
                scopes: vec![],
                hash: k.hash.clone(),
            },
            Timestamp(T0),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
    let other = api_key::generate();
    assert!(store.api_key(&other.prefix).await.unwrap().is_none());
}

pub async fn sequences_are_gapless_per_organization(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    let mut seqs_a = Vec::new();
    for round in 0..5 {
        let batch = (0..7)
            .map(|i| new_entry(round * 10 + i, "a@x.io", "project.created", ("project", "p")))
            .collect();
        seqs_a.extend(append(store, &a, batch).await.into_iter().map(|e| e.seq));
        let got_b = append(
            store,
            &b,
            vec![new_entry(round, "b@x.io", "project.created", ("project", "p"))],
        )
        .await;
        assert_eq!(got_b[0].seq, round + 1);
    }
    assert_eq!(seqs_a, (1..=35).collect::<Vec<_>>());
    assert_eq!(store.log_size(a.id).await.unwrap(), 35);
    assert_eq!(store.log_size(b.id).await.unwrap(), 5);
}

pub async fn one_call_commits_many_requests_in_order(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    let reqs = vec![
        AppendRequest {
            org_id: a.id,
            entries: vec![new_entry(1, "a@x.io", "project.created", ("project", "1"))],
        },
        AppendRequest {
            org_id: b.id,
            entries: vec![new_entry(2, "b@x.io", "project.created", ("project", "2"))],
        },
        AppendRequest {
            org_id: a.id,
            entries: vec![
                new_entry(3, "a@x.io", "project.deleted", ("project", "1")),
                new_entry(4, "a@x.io", "project.created", ("project", "3")),
            ],
        },
    ];
    let out = store.append(reqs, Timestamp(T0 + 99)).await.unwrap();
    let seqs: Vec<Vec<i64>> = out.iter().map(|r| r.iter().map(|a| a.entry.seq).collect()).collect();
    assert_eq!(seqs, vec![vec![1], vec![1], vec![2, 3]]);
    assert!(
        out.iter()
            .flatten()
            .all(|a| a.entry.received_at == Timestamp(T0 + 99) && !a.replayed)
    );
    let ids: HashSet<_> = out.iter().flatten().map(|a| a.entry.id).collect();
    assert_eq!(ids.len(), 4, "ids are unique");
}

pub async fn idempotency_keys_return_the_original(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    let mut e = new_entry(1, "a@x.io", "project.created", ("project", "1"));
    e.idempotency_key = Some("k-1".into());
    let first = append(store, &a, vec![e.clone()]).await;
    // Retried alone, and twice within one batch.
    let mut other = e.clone();
    other.resource.id = "changed".into();
    let out = store
        .append(
            vec![AppendRequest {
                org_id: a.id,
                entries: vec![other, e.clone()],
            }],
            Timestamp(T0 + 5),
        )
        .await
        .unwrap();
    assert!(out[0].iter().all(|x| x.replayed && x.entry == first[0]));
    let mut e2 = new_entry(2, "a@x.io", "project.created", ("project", "2"));
    e2.idempotency_key = Some("k-2".into());
    let out = store
        .append(
            vec![AppendRequest {
                org_id: a.id,
                entries: vec![e2.clone(), e2],
            }],
            Timestamp(T0 + 6),
        )
        .await
        .unwrap();
    assert!(!out[0][0].replayed && out[0][1].replayed);
    assert_eq!(out[0][0].entry, out[0][1].entry);
    assert_eq!(store.log_size(a.id).await.unwrap(), 2, "no duplicates were written");
    // Keys are per organization.
    let in_b = append(store, &b, vec![e]).await;
    assert_eq!(in_b[0].seq, 1);
    assert_ne!(in_b[0].id, first[0].id);
}

pub async fn entries_round_trip_exactly(store: &dyn Store) {
    let a = org(store, "acme").await;
    let mut e = new_entry(
        1,
        "zoë@例え.jp",
        "organization.member_role_changed",
        ("member", "bob@x.io"),
    );
    e.resource.name = Some("Bob \"the builder\"".into());
    e.details = serde_json::json!({"member": "bob@x.io", "old_role": "viewer", "new_role": "admin", "n": [1, 2.5, null], "nested": {"é": true}})
        .as_object()
        .unwrap()
        .clone();
    e.ip_address = Some("2001:db8::7".parse().unwrap());
    e.user_agent = Some("curl/8.5 <script>".into());
    e.request_id = Some("req-1".into());
    e.idempotency_key = Some("idem".into());
    let stored = append(store, &a, vec![e.clone()]).await.remove(0);
    let read = store.entry(a.id, stored.id).await.unwrap().expect("entry by id");
    assert_eq!(read, stored);
    assert_eq!(read.details, e.details);
    assert_eq!(read.resource, e.resource);
    assert_eq!(read.actor, e.actor);
    assert_eq!(read.ip_address, e.ip_address);
    assert!(store.entry(a.id, uuid::Uuid::now_v7()).await.unwrap().is_none());
}

pub async fn listing_is_newest_first_and_pages_neither_skip_nor_repeat(store: &dyn Store) {
    let a = org(store, "acme").await;
    // Timestamps repeat and arrive out of order, so (ts, seq) order matters.
    let batch: Vec<_> = (0..45)
        .map(|i| new_entry((i * 7) % 10, "a@x.io", "project.created", ("project", "p")))
        .collect();
    append(store, &a, batch).await;
    let got = all(store, &a, &Filter::default(), 4).await;
    assert_eq!(got.len(), 45);
    for w in got.windows(2) {
        assert!(
            (w[0].timestamp, w[0].seq) > (w[1].timestamp, w[1].seq),
            "strictly newest first"
        );
    }
}

pub async fn pages_stay_stable_while_entries_arrive(store: &dyn Store) {
    let a = org(store, "acme").await;
    append(
        store,
        &a,
        (0..20)
            .map(|i| new_entry(i, "a@x.io", "project.created", ("p", "1")))
            .collect(),
    )
    .await;
    let first = store
        .list(a.id, &Filter::default(), Page { limit: 5, after: None })
        .await
        .unwrap();
    // New entries, newer and older than the page boundary, arrive between pages.
    append(
        store,
        &a,
        vec![
            new_entry(100, "a@x.io", "project.created", ("p", "new")),
            new_entry(-5, "a@x.io", "project.created", ("p", "old")),
        ],
    )
    .await;
    let last = first.last().unwrap();
    let mut page = Page {
        limit: 5,
        after: Some(auditlog_domain::cursor::Cursor {
            timestamp: last.timestamp,
            seq: last.seq,
        }),
    };
    let mut rest = Vec::new();
    loop {
        let got = store.list(a.id, &Filter::default(), page).await.unwrap();
        if got.is_empty() {
            break;
        }
        let l = got.last().unwrap();
        page.after = Some(auditlog_domain::cursor::Cursor {
            timestamp: l.timestamp,
            seq: l.seq,
        });
        rest.extend(got);
    }
    let seen: Vec<i64> = first.iter().chain(&rest).map(|e| e.seq).collect();
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no entry repeated");
    for seq in 1..=20 {
        assert!(unique.contains(&seq), "entry {seq} was skipped");
    }
    assert!(
        rest.iter().any(|e| e.resource.id == "old"),
        "an older arrival appears on a later page"
    );
    assert!(!seen.contains(&21), "a newer arrival is not slipped into later pages");
}

pub async fn every_filter_matches_the_reference(store: &dyn Store) {
    let a = org(store, "acme").await;
    let actors = ["alice@acme.com", "bob@acme.com", "lqt_ab12cd34", "system"];
    let events = [
        "api_key.created",
        "api_key.revoked",
        "project.created",
        "project.deleted",
        "guardrail.updated",
        "alert.triggered",
        "billing.plan_upgraded",
        "webhook.created",
        "prompt.version_published",
        "evaluation.template_created",
    ];
    let resources = [
        ("project", "p_1"),
        ("project", "p_2"),
        ("api_key", "lqt_ab12cd34"),
        ("guardrail", "g_1"),
    ];
    // A deterministic spread (a linear congruential walk) of 600 entries.
    let mut x: u64 = 7;
    let mut next = |n: usize| {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((x >> 33) as usize) % n
    };
    let batch: Vec<_> = (0..600)
        .map(|_| {
            new_entry(
                next(400) as i64,
                actors[next(actors.len())],
                events[next(events.len())],
                resources[next(resources.len())],
            )
        })
        .collect();
    let everything = append(store, &a, batch).await;
    let catalog = Catalog::builtin();
    let queries: &[&[(&str, &str)]] = &[
        &[],
        &[("actor", "bob@acme.com")],
        &[("event", "api_key.created")],
        &[("event", "api_key.*")],
        &[("event", "*.created")],
        &[("event", "project.*"), ("event", "alert.*"), ("event", "billing.*")],
        &[("resource_type", "project")],
        &[("resource_id", "p_2")],
        &[("resource_type", "project"), ("resource_id", "p_1")],
        &[("from", "2026-09-21T13:36:40Z")],
        &[("to", "2026-09-21T13:36:40Z")],
        &[("from", "2026-09-21T13:35:00Z"), ("to", "2026-09-21T13:38:00Z")],
        &[
            ("actor", "alice@acme.com"),
            ("event", "project.*"),
            ("from", "2026-09-21T13:35:00Z"),
        ],
        &[("actor", "nobody@acme.com")],
    ];
    for q in queries {
        let pairs: Vec<_> = q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let req = auditlog_domain::filter::parse_listing(&pairs, &catalog, &[]).expect("valid query");
        let mut want: Vec<_> = everything.iter().filter(|e| req.filter.matches(e)).cloned().collect();
        want.sort_by_key(|e| std::cmp::Reverse((e.timestamp, e.seq)));
        for limit in [1, 7, 1000] {
            let got = all(store, &a, &req.filter, limit).await;
            let got_seqs: Vec<_> = got.iter().map(|e| e.seq).collect();
            let want_seqs: Vec<_> = want.iter().map(|e| e.seq).collect();
            assert_eq!(got_seqs, want_seqs, "query {q:?} with limit {limit}");
        }
    }
}

pub async fn organizations_never_see_each_other(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    let ea = append(
        store,
        &a,
        vec![new_entry(1, "a@acme.com", "project.created", ("project", "shared"))],
    )
    .await;
    let eb = append(
        store,
        &b,
        vec![new_entry(1, "a@acme.com", "project.created", ("project", "shared"))],
    )
    .await;
    let filter = Filter {
        actor: Some("a@acme.com".into()),
        resource_id: Some("shared".into()),
        ..Filter::default()
    };
    let in_a = store.list(a.id, &filter, Page::default()).await.unwrap();
    assert_eq!(in_a.iter().map(|e| e.id).collect::<Vec<_>>(), [ea[0].id]);
    assert!(store.entry(a.id, eb[0].id).await.unwrap().is_none());
    assert!(store.entry(b.id, ea[0].id).await.unwrap().is_none());
}

pub async fn max_seq_pins_a_snapshot(store: &dyn Store) {
    let a = org(store, "acme").await;
    append(
        store,
        &a,
        (0..10)
            .map(|i| new_entry(i, "a@x.io", "project.created", ("p", "1")))
            .collect(),
    )
    .await;
    let size = store.log_size(a.id).await.unwrap();
    append(store, &a, vec![new_entry(50, "a@x.io", "project.created", ("p", "1"))]).await;
    let filter = Filter {
        max_seq: Some(size),
        ..Filter::default()
    };
    let got = store
        .list(
            a.id,
            &filter,
            Page {
                limit: 100,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|e| e.seq <= size));
}
