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
use auditlog_domain::change::{Acceptance, Change, WebhookSettings};
use auditlog_domain::entry::{Actor, ActorType, Resource};
use auditlog_domain::filter::{Bucket, Filter, Page};
use auditlog_domain::invitation::{Invitation, InvitationKind};
use auditlog_domain::member::Project;
use auditlog_domain::org::NewOrg;
use auditlog_domain::org::{Sso, SsoConfig};
use auditlog_domain::pattern::EventPattern;
use auditlog_domain::sealed::SecretSealer;
use auditlog_domain::sso::{self, SessionOrigin};
use auditlog_domain::store::{AppendRequest, NewApiKey, Replay};
use auditlog_domain::store::{Attempt, AttemptResult, DeliveryStatus, Purged, RequestResult, StoredCheckpoint};
use auditlog_domain::webhook::{Endpoint, PayloadFormat, Secret};
use auditlog_domain::{
    Catalog, Entry, NewEntry, Org, OrgId, Plan, Store, StoreError, SubmittedBy, SubmitterKind, Timestamp,
};
use auditlog_domain::{Role, session};
use auditlog_domain::{canonical, merkle};

/// Generates one test per check for a backend.
///
/// `conformance_tests!(fresh())` takes an async expression yielding a fresh
/// store. `conformance_tests!(optional: fresh())` takes one yielding
/// `Option<store>`, for a backend that needs a server which may be absent:
/// on `None` each check returns early (its backend says why).
#[macro_export]
macro_rules! conformance_tests {
    (optional: $make:expr) => {
        $crate::conformance_tests!(@checks (optional) $make);
    };
    ($make:expr) => {
        $crate::conformance_tests!(@checks (required) $make);
    };
    (@checks $mode:tt $make:expr) => {
        $crate::conformance_tests!(@each $mode $make;
            orgs_are_created_once_and_found_by_slug,
            api_keys_are_found_by_prefix_and_prefixes_are_unique,
            sequences_are_gapless_per_organization,
            one_call_commits_many_requests_in_order,
            a_failed_organization_never_half_commits_a_call,
            idempotency_keys_return_the_original,
            entries_round_trip_exactly,
            listing_is_newest_first_and_pages_neither_skip_nor_repeat,
            pages_stay_stable_while_entries_arrive,
            every_filter_matches_the_reference,
            submitters_round_trip_and_both_canonical_versions_share_a_log,
            organizations_never_see_each_other,
            max_seq_pins_a_snapshot,
            members_roles_and_the_last_owner,
            a_refused_change_writes_nothing_and_spares_the_others,
            changes_are_compare_and_set,
            organization_settings_change_with_their_entries,
            keys_are_listed_revoked_and_touched_once,
            projects_are_created_renamed_and_deleted,
            sessions_expire_and_are_deleted,
            an_expired_session_ends_once,
            sso_sessions_and_flows_round_trip_and_flows_are_taken_once,
            invitations_are_single_use_and_never_touch_an_existing_account,
            resets_and_password_changes_are_compare_and_set,
            purge_removes_only_old_entries_in_batches,
            bulk_and_row_purges_remove_exactly_each_windows_entries,
            deliveries_are_written_with_their_entries,
            deliveries_are_claimed_leased_and_recorded,
            a_replay_queues_the_selected_entries_again,
            each_endpoints_newest_deliveries_come_in_one_read,
            endpoint_changes_apply_and_disable_once,
            payload_formats_round_trip_through_every_read,
            clear_webhook_secrets_are_sealed_in_place_once,
            listing_after_a_seq_replays_oldest_first,
            histograms_count_what_the_filter_selects_per_bucket_and_category,
            the_tree_grows_with_the_log_and_outlives_purges,
            large_transactions_grow_every_tree_in_order,
            checkpoints_are_kept_once_per_size,
            streams_start_at_the_head_and_change_with_their_entries,
            one_holder_leases_a_stream_and_its_cursor_only_moves_forward,
            stream_health_follows_failures_and_progress,
            erasing_a_person_leaves_the_other_and_every_proof,
            erasure_is_compare_and_set_and_a_person_may_come_back,
            erasure_racing_ingest_leaves_nothing_readable_from_before_it,
        );
    };
    (@each (required) $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let store = $make.await;
                auditlog_domain::store::EntryStore::use_personal_data(&store, $crate::personal_data());
                $crate::$check(&store).await;
            }
        )*
    };
    (@each (optional) $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some(store) = $make.await else { return };
                auditlog_domain::store::EntryStore::use_personal_data(&store, $crate::personal_data());
                $crate::$check(&store).await;
            }
        )*
    };
}

mod erasure;
mod streams;
pub use erasure::{
    erasing_a_person_leaves_the_other_and_every_proof, erasure_is_compare_and_set_and_a_person_may_come_back,
    erasure_racing_ingest_leaves_nothing_readable_from_before_it, role_change,
};
pub use streams::{
    one_holder_leases_a_stream_and_its_cursor_only_moves_forward, stream_health_follows_failures_and_progress,
    streams_start_at_the_head_and_change_with_their_entries,
};

pub(crate) const T0: i64 = 1_790_000_000_000;

/// The personal-data keys every check runs with, as a server gives them:
/// each check's entries are sealed and restored as they would be in
/// service.
pub fn personal_data() -> std::sync::Arc<auditlog_domain::personal::PersonalData> {
    std::sync::Arc::new(auditlog_domain::personal::PersonalData::new(
        &[42; 32],
        std::sync::Arc::new(Catalog::builtin()),
    ))
}

pub(crate) async fn org(store: &dyn Store, slug: &str) -> Org {
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

pub(crate) fn new_entry(i: i64, actor: &str, event: &str, resource: (&str, &str)) -> NewEntry {
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
        submitted_by: submitter(i),
    }
}

/// Entries alternate between two submitters, so the filter has something
/// to tell apart.
fn submitter(i: i64) -> SubmittedBy {
    if i % 2 == 0 {
        SubmittedBy::new(SubmitterKind::ApiKey, "lqt_conform01")
    } else {
        SubmittedBy::new(SubmitterKind::Session, "owner@x.io")
    }
}

pub(crate) async fn append(store: &dyn Store, org: &Org, entries: Vec<NewEntry>) -> Vec<Entry> {
    let out = store
        .append(
            vec![AppendRequest::entries(org.id, entries)],
            Timestamp(T0 + 10_000_000),
        )
        .await
        .expect("append");
    out.into_iter()
        .next()
        .unwrap()
        .expect("request committed")
        .into_iter()
        .map(|a| a.entry)
        .collect()
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
                created_by: Some(SubmittedBy::new(SubmitterKind::Session, "ana@acme.com")),
            },
            Timestamp(T0),
        )
        .await
        .unwrap();
    let found = store.api_key(&k.prefix).await.unwrap().expect("key found");
    assert_eq!(found.org_id, a.id);
    assert_eq!(
        found.created_by.map(|s| s.to_text()).as_deref(),
        Some("session:ana@acme.com")
    );
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
                created_by: None,
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
        AppendRequest::entries(a.id, vec![new_entry(1, "a@x.io", "project.created", ("project", "1"))]),
        AppendRequest::entries(b.id, vec![new_entry(2, "b@x.io", "project.created", ("project", "2"))]),
        AppendRequest::entries(
            a.id,
            vec![
                new_entry(3, "a@x.io", "project.deleted", ("project", "1")),
                new_entry(4, "a@x.io", "project.created", ("project", "3")),
            ],
        ),
    ];
    let out = store.append(reqs, Timestamp(T0 + 99)).await.unwrap();
    let out: Vec<Vec<_>> = out.into_iter().map(|r| r.expect("committed")).collect();
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

/// An organization that cannot be written (here, one that does not exist)
/// either fails the whole call, nothing committed, or fails only its own
/// requests while the others commit whole, each result in its request's
/// place and the sequences gapless.
pub async fn a_failed_organization_never_half_commits_a_call(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    let missing = OrgId(a.id.0.max(b.id.0) + 1000);
    let reqs = vec![
        AppendRequest::entries(a.id, vec![new_entry(1, "a@x.io", "project.created", ("project", "1"))]),
        AppendRequest::entries(
            missing,
            vec![new_entry(2, "m@x.io", "project.created", ("project", "2"))],
        ),
        AppendRequest::entries(
            b.id,
            vec![
                new_entry(3, "b@x.io", "project.created", ("project", "3")),
                new_entry(4, "b@x.io", "project.created", ("project", "4")),
            ],
        ),
        AppendRequest::entries(a.id, vec![new_entry(5, "a@x.io", "project.deleted", ("project", "1"))]),
    ];
    match store.append(reqs, Timestamp(T0 + 7)).await {
        Err(_) => {
            assert_eq!(store.log_size(a.id).await.unwrap(), 0);
            assert_eq!(store.log_size(b.id).await.unwrap(), 0);
        }
        Ok(out) => {
            assert_eq!(out.len(), 4);
            assert!(out[1].is_err(), "the missing organization's request must fail");
            let seqs = |r: &RequestResult| -> Vec<(OrgId, i64)> {
                r.as_ref()
                    .expect("committed")
                    .iter()
                    .map(|a| (a.entry.org_id, a.entry.seq))
                    .collect()
            };
            assert_eq!(seqs(&out[0]), vec![(a.id, 1)]);
            assert_eq!(seqs(&out[2]), vec![(b.id, 1), (b.id, 2)]);
            assert_eq!(seqs(&out[3]), vec![(a.id, 2)]);
            assert_eq!(store.log_size(a.id).await.unwrap(), 2);
            assert_eq!(store.log_size(b.id).await.unwrap(), 2);
            let listed = all(store, &b, &Filter::default(), 10).await;
            assert_eq!(listed.len(), 2);
        }
    }
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
            vec![AppendRequest::entries(a.id, vec![other, e.clone()])],
            Timestamp(T0 + 5),
        )
        .await
        .unwrap();
    let out: Vec<Vec<_>> = out.into_iter().map(|r| r.unwrap()).collect();
    assert!(out[0].iter().all(|x| x.replayed && x.entry == first[0]));
    let mut e2 = new_entry(2, "a@x.io", "project.created", ("project", "2"));
    e2.idempotency_key = Some("k-2".into());
    let out = store
        .append(
            vec![AppendRequest::entries(a.id, vec![e2.clone(), e2])],
            Timestamp(T0 + 6),
        )
        .await
        .unwrap();
    let out: Vec<Vec<_>> = out.into_iter().map(|r| r.unwrap()).collect();
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
        &[("submitted_by", "session:owner@x.io")],
        &[("submitted_by", "api_key:lqt_conform01"), ("event", "project.*")],
        &[("q", "submitted_by:api_key:lqt_conform01 actor:bob@acme.com")],
        &[("submitted_by", "cli:nobody@host")],
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

/// The submitter is stored and read back as written, and entries of
/// canonical version 1 (from before it was kept) and 2 grow one tree whose
/// leaves are each entry's own.
pub async fn submitters_round_trip_and_both_canonical_versions_share_a_log(store: &dyn Store) {
    let a = org(store, "acme").await;
    let written = append(
        store,
        &a,
        (0..4)
            .map(|i| new_entry(i, "a@x.io", "project.created", ("project", "p")))
            .collect(),
    )
    .await;
    for (i, e) in written.iter().enumerate() {
        let read = store.entry(a.id, e.id).await.unwrap().unwrap();
        assert_eq!(read.submitted_by, Some(submitter(i as i64)));
        assert_eq!(read.canonical_version, canonical::CURRENT_VERSION);
        assert_eq!(canonical::entry_leaf_hash(&read), canonical::entry_leaf_hash(e));
    }
    let v1 = Entry {
        submitted_by: None,
        canonical_version: 1,
        personal: Default::default(),
        ..written[0].clone()
    };
    assert_ne!(
        canonical::entry_leaf_hash(&v1),
        canonical::entry_leaf_hash(&written[0]),
        "the submitter is committed to"
    );
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

/// Applies one change with one recording entry; returns the request's result.
pub(crate) async fn change(store: &dyn Store, org: &Org, change: Change, event: &str) -> RequestResult {
    let mut out = store
        .append(
            vec![AppendRequest {
                org_id: org.id,
                changes: vec![change],
                entries: vec![new_entry(0, "owner@x.io", event, ("thing", "1"))],
            }],
            Timestamp(T0),
        )
        .await
        .expect("transaction");
    out.pop().unwrap()
}

fn add(email: &str, role: Role) -> Change {
    Change::AddMember {
        email: email.into(),
        role,
    }
}

pub(crate) fn rejected_code(r: RequestResult) -> String {
    match r {
        Err(StoreError::Rejected { code, .. }) => code.to_owned(),
        Err(StoreError::Conflict(_)) => "conflict".into(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub async fn members_roles_and_the_last_owner(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    change(store, &a, add("owner@x.io", Role::Owner), "organization.member_added")
        .await
        .unwrap();
    change(store, &a, add("bob@x.io", Role::Viewer), "organization.member_added")
        .await
        .unwrap();
    // One person, several organizations, different roles.
    change(store, &b, add("bob@x.io", Role::Admin), "organization.member_added")
        .await
        .unwrap();
    let mut mine = store.memberships("bob@x.io").await.unwrap();
    mine.sort_by(|x, y| x.0.slug.cmp(&y.0.slug));
    let got: Vec<_> = mine.iter().map(|(o, r)| (o.slug.as_str(), *r)).collect();
    assert_eq!(got, [("acme", Role::Viewer), ("globex", Role::Admin)]);
    assert_eq!(
        rejected_code(change(store, &a, add("bob@x.io", Role::Member), "organization.member_added").await),
        "conflict"
    );

    let members = store.members(a.id).await.unwrap();
    assert_eq!(
        members.iter().map(|m| m.email.as_str()).collect::<Vec<_>>(),
        ["bob@x.io", "owner@x.io"]
    );
    // The last owner can be neither demoted nor removed...
    let demote = Change::SetRole {
        email: "owner@x.io".into(),
        from: Role::Owner,
        to: Role::Admin,
    };
    assert_eq!(
        rejected_code(change(store, &a, demote.clone(), "organization.member_role_changed").await),
        "last_owner"
    );
    let remove = Change::RemoveMember {
        email: "owner@x.io".into(),
        role: Role::Owner,
    };
    assert_eq!(
        rejected_code(change(store, &a, remove.clone(), "organization.member_removed").await),
        "last_owner"
    );
    // ...until there is another.
    change(
        store,
        &a,
        Change::SetRole {
            email: "bob@x.io".into(),
            from: Role::Viewer,
            to: Role::Owner,
        },
        "organization.member_role_changed",
    )
    .await
    .unwrap();
    change(store, &a, demote, "organization.member_role_changed")
        .await
        .unwrap();
    assert_eq!(
        store.member(a.id, "owner@x.io").await.unwrap().unwrap().role,
        Role::Admin
    );
    change(
        store,
        &a,
        Change::RemoveMember {
            email: "owner@x.io".into(),
            role: Role::Admin,
        },
        "organization.member_removed",
    )
    .await
    .unwrap();
    assert!(store.member(a.id, "owner@x.io").await.unwrap().is_none());
    assert!(
        store.user("owner@x.io").await.unwrap().is_some(),
        "the account outlives the membership"
    );
    assert_eq!(
        store.member(b.id, "bob@x.io").await.unwrap().unwrap().role,
        Role::Admin,
        "other org untouched"
    );
}

pub async fn a_refused_change_writes_nothing_and_spares_the_others(store: &dyn Store) {
    let a = org(store, "acme").await;
    change(store, &a, add("owner@x.io", Role::Owner), "organization.member_added")
        .await
        .unwrap();
    let size = store.log_size(a.id).await.unwrap();
    let refused = AppendRequest {
        org_id: a.id,
        changes: vec![Change::RemoveMember {
            email: "owner@x.io".into(),
            role: Role::Owner,
        }],
        entries: vec![new_entry(
            1,
            "owner@x.io",
            "organization.member_removed",
            ("member", "owner@x.io"),
        )],
    };
    let fine = AppendRequest::entries(a.id, vec![new_entry(2, "x@x.io", "project.created", ("project", "p"))]);
    let also_fine = AppendRequest {
        org_id: a.id,
        changes: vec![add("new@x.io", Role::Viewer)],
        entries: vec![new_entry(
            3,
            "owner@x.io",
            "organization.member_added",
            ("member", "new@x.io"),
        )],
    };
    let out = store
        .append(vec![refused, fine, also_fine], Timestamp(T0))
        .await
        .unwrap();
    assert!(out[0].is_err());
    let seqs: Vec<i64> = out[1..].iter().map(|r| r.as_ref().unwrap()[0].entry.seq).collect();
    assert_eq!(
        seqs,
        [size + 1, size + 2],
        "the refused request took no sequence number"
    );
    assert_eq!(store.log_size(a.id).await.unwrap(), size + 2);
    assert!(store.member(a.id, "owner@x.io").await.unwrap().is_some());
    assert!(store.member(a.id, "new@x.io").await.unwrap().is_some());
}

pub async fn changes_are_compare_and_set(store: &dyn Store) {
    let a = org(store, "acme").await;
    change(store, &a, add("bob@x.io", Role::Viewer), "organization.member_added")
        .await
        .unwrap();
    let wrong_from = Change::SetRole {
        email: "bob@x.io".into(),
        from: Role::Member,
        to: Role::Admin,
    };
    assert_eq!(
        rejected_code(change(store, &a, wrong_from, "organization.member_role_changed").await),
        "stale"
    );
    let wrong_name = Change::RenameOrg {
        old: "not the name".into(),
        new: "New".into(),
    };
    assert_eq!(
        rejected_code(change(store, &a, wrong_name, "organization.renamed").await),
        "stale"
    );
    let size = store.log_size(a.id).await.unwrap();
    assert_eq!(size, 1, "refused changes recorded nothing");
}

pub async fn organization_settings_change_with_their_entries(store: &dyn Store) {
    let a = org(store, "acme").await;
    change(
        store,
        &a,
        Change::RenameOrg {
            old: a.name.clone(),
            new: "Acme Corporation".into(),
        },
        "organization.renamed",
    )
    .await
    .unwrap();
    change(
        store,
        &a,
        Change::SetPlan {
            old: Plan::Team,
            new: Plan::Enterprise,
            enterprise_retention_days: Some(1000),
        },
        "billing.plan_upgraded",
    )
    .await
    .unwrap();
    let sso = Sso {
        issuer: "https://login.acme.com".into(),
        client_id: "0oa1".into(),
        enforced: true,
        allowed_domains: vec!["acme.com".into(), "acme.eu".into()],
        provision_role: Some(Role::Viewer),
        client_secret_set: true,
    };
    let configure = |settings: &Sso, sealed_secret: Option<&[u8]>| {
        Change::ConfigureSso(Some(SsoConfig {
            settings: settings.clone(),
            sealed_secret: sealed_secret.map(<[u8]>::to_vec),
        }))
    };
    change(
        store,
        &a,
        configure(&sso, Some(b"sealed")),
        "organization.sso_configured",
    )
    .await
    .unwrap();
    let now = store.org_by_slug("acme").await.unwrap().unwrap();
    assert_eq!(now.name, "Acme Corporation");
    assert_eq!(now.plan, Plan::Enterprise);
    assert_eq!(now.retention_days(), 1000);
    assert_eq!(now.sso, Some(sso.clone()));
    assert_eq!(store.orgs().await.unwrap(), vec![now]);
    assert_eq!(store.log_size(a.id).await.unwrap(), 3);
    assert_eq!(
        store.sso_client_secret(a.id).await.unwrap().as_deref(),
        Some(&b"sealed"[..])
    );
    // A change without a secret keeps the stored one; removing single
    // sign-on removes it.
    let changed = Sso {
        allowed_domains: Vec::new(),
        provision_role: None,
        ..sso
    };
    change(store, &a, configure(&changed, None), "organization.sso_configured")
        .await
        .unwrap();
    assert_eq!(store.org_by_slug("acme").await.unwrap().unwrap().sso, Some(changed));
    assert_eq!(
        store.sso_client_secret(a.id).await.unwrap().as_deref(),
        Some(&b"sealed"[..])
    );
    change(store, &a, Change::ConfigureSso(None), "organization.sso_configured")
        .await
        .unwrap();
    assert_eq!(store.org_by_slug("acme").await.unwrap().unwrap().sso, None);
    assert_eq!(store.sso_client_secret(a.id).await.unwrap(), None);
}

pub async fn keys_are_listed_revoked_and_touched_once(store: &dyn Store) {
    let a = org(store, "acme").await;
    let k = api_key::generate();
    let new = NewApiKey {
        org_id: a.id,
        prefix: k.prefix.clone(),
        name: "ci".into(),
        scopes: vec![Scope::AuditWrite],
        hash: k.hash.clone(),
        created_by: Some(SubmittedBy::new(SubmitterKind::ApiKey, "lqt_0123abcd")),
    };
    change(store, &a, Change::CreateKey(new), "api_key.created")
        .await
        .unwrap();
    let listed = store.api_keys(a.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].prefix, k.prefix);
    assert_eq!(
        listed[0].created_by.as_ref().map(SubmittedBy::to_text).as_deref(),
        Some("api_key:lqt_0123abcd")
    );
    let touch = |previous, at| Change::TouchKey {
        prefix: k.prefix.clone(),
        previous,
        at: Timestamp(at),
    };
    change(store, &a, touch(None, T0), "api_key.last_used_updated")
        .await
        .unwrap();
    // A second request that saw the same previous value loses the race.
    assert_eq!(
        rejected_code(change(store, &a, touch(None, T0 + 1), "api_key.last_used_updated").await),
        "stale"
    );
    assert_eq!(
        store.api_key(&k.prefix).await.unwrap().unwrap().last_used_at,
        Some(Timestamp(T0))
    );
    let revoke = Change::RevokeKey {
        prefix: k.prefix.clone(),
        at: Timestamp(T0 + 5),
    };
    change(store, &a, revoke.clone(), "api_key.revoked").await.unwrap();
    assert_eq!(
        store.api_key(&k.prefix).await.unwrap().unwrap().revoked_at,
        Some(Timestamp(T0 + 5))
    );
    assert!(
        change(store, &a, revoke, "api_key.revoked").await.is_err(),
        "revoked once"
    );
    // Another organization cannot revoke it.
    let b = org(store, "globex").await;
    let other = Change::RevokeKey {
        prefix: k.prefix.clone(),
        at: Timestamp(T0),
    };
    assert!(change(store, &b, other, "api_key.revoked").await.is_err());
}

pub async fn projects_are_created_renamed_and_deleted(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    let p = Project {
        id: "p_1".into(),
        name: "Prod".into(),
        created_at: Timestamp(T0),
    };
    change(store, &a, Change::CreateProject(p.clone()), "project.created")
        .await
        .unwrap();
    change(store, &b, Change::CreateProject(p.clone()), "project.created")
        .await
        .unwrap();
    assert_eq!(
        rejected_code(change(store, &a, Change::CreateProject(p.clone()), "project.created").await),
        "conflict"
    );
    let rename = Change::RenameProject {
        id: "p_1".into(),
        old: "Prod".into(),
        new: "Production".into(),
    };
    change(store, &a, rename, "project.renamed").await.unwrap();
    assert_eq!(store.project(a.id, "p_1").await.unwrap().unwrap().name, "Production");
    assert_eq!(store.project(b.id, "p_1").await.unwrap().unwrap().name, "Prod");
    change(store, &a, Change::DeleteProject { id: "p_1".into() }, "project.deleted")
        .await
        .unwrap();
    assert!(store.projects(a.id).await.unwrap().is_empty());
    assert_eq!(store.projects(b.id).await.unwrap(), vec![p]);
    assert!(
        change(store, &a, Change::DeleteProject { id: "p_1".into() }, "project.deleted")
            .await
            .is_err()
    );
}

fn join(inv: &Invitation, new_account: Option<&str>, at: i64) -> Change {
    Change::AcceptInvitation(Acceptance {
        token_hash: inv.token_hash,
        email: inv.email.clone(),
        role: inv.role,
        new_account: new_account.map(str::to_owned),
        at: Timestamp(at),
    })
}

fn issue(org: &Org, kind: InvitationKind, email: &str) -> Invitation {
    Invitation::issue(org.id, kind, email, Role::Viewer, "owner@x.io", Timestamp(T0), 1_000).1
}

pub async fn invitations_are_single_use_and_never_touch_an_existing_account(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    let inv = issue(&a, InvitationKind::Join, "new@x.io");
    change(store, &a, Change::Invite(inv.clone()), "organization.member_invited")
        .await
        .unwrap();
    let stored = store.invitation(&inv.token_hash).await.unwrap().unwrap();
    assert_eq!(stored, inv);
    // Expired, then used once, then spent.
    let late = change(
        store,
        &a,
        join(&inv, Some("$argon2id$new"), T0 + 1_000),
        "organization.member_added",
    )
    .await;
    assert_eq!(rejected_code(late), "invitation_invalid");
    change(
        store,
        &a,
        join(&inv, Some("$argon2id$new"), T0 + 1),
        "organization.member_added",
    )
    .await
    .unwrap();
    assert_eq!(
        store.member(a.id, "new@x.io").await.unwrap().unwrap().role,
        Role::Viewer
    );
    let again = change(
        store,
        &a,
        join(&inv, Some("$argon2id$new"), T0 + 2),
        "organization.member_added",
    )
    .await;
    assert_eq!(rejected_code(again), "invitation_invalid");
    assert!(
        store
            .invitation(&inv.token_hash)
            .await
            .unwrap()
            .unwrap()
            .accepted_at
            .is_some()
    );

    // A token never sets the password of an account that exists, with a
    // password or without one.
    change(store, &b, add("sso@x.io", Role::Owner), "organization.member_added")
        .await
        .unwrap();
    let grab = issue(&a, InvitationKind::Join, "sso@x.io");
    change(store, &a, Change::Invite(grab.clone()), "organization.member_invited")
        .await
        .unwrap();
    let taken = change(
        store,
        &a,
        join(&grab, Some("$argon2id$attacker"), T0 + 1),
        "organization.member_added",
    )
    .await;
    assert_eq!(rejected_code(taken), "sign_in_required");
    assert_eq!(store.user("sso@x.io").await.unwrap().unwrap().password_hash, None);
    assert!(
        store.member(a.id, "sso@x.io").await.unwrap().is_none(),
        "nothing written"
    );
    // Signed in as the account, it joins; the invitation was not spent by
    // the refused try.
    change(store, &a, join(&grab, None, T0 + 2), "organization.member_added")
        .await
        .unwrap();
    // Joining without an account (and without creating one) is refused.
    let ghost = issue(&a, InvitationKind::Join, "ghost@x.io");
    change(store, &a, Change::Invite(ghost.clone()), "organization.member_invited")
        .await
        .unwrap();
    let r = change(store, &a, join(&ghost, None, T0 + 1), "organization.member_added").await;
    assert_eq!(rejected_code(r), "sign_in_required");
}

pub async fn resets_and_password_changes_are_compare_and_set(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    store
        .set_password("ned@x.io", "$argon2id$old", Timestamp(T0))
        .await
        .unwrap();
    change(store, &a, add("ned@x.io", Role::Viewer), "organization.member_added")
        .await
        .unwrap();
    let (t1, s1) = session::start("ned@x.io", Timestamp(T0), SessionOrigin::PASSWORD);
    let (_, s2) = session::start("ned@x.io", Timestamp(T0), SessionOrigin::PASSWORD);
    store.create_session(s1.clone()).await.unwrap();
    store.create_session(s2.clone()).await.unwrap();
    // A change of password keeps the session it came from and ends the rest.
    let wrong = Change::ChangePassword {
        email: "ned@x.io".into(),
        old_hash: "$argon2id$not-it".into(),
        new_hash: "$argon2id$new".into(),
        keep: s1.token_hash,
    };
    assert_eq!(
        rejected_code(change(store, &a, wrong, "organization.member_password_changed").await),
        "stale"
    );
    let right = Change::ChangePassword {
        email: "ned@x.io".into(),
        old_hash: "$argon2id$old".into(),
        new_hash: "$argon2id$new".into(),
        keep: s1.token_hash,
    };
    change(store, &a, right, "organization.member_password_changed")
        .await
        .unwrap();
    assert_eq!(
        store.user("ned@x.io").await.unwrap().unwrap().password_hash.as_deref(),
        Some("$argon2id$new")
    );
    assert!(
        store
            .session(&session::hash_token(&t1), Timestamp(T0 + 1))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session(&s2.token_hash, Timestamp(T0 + 1))
            .await
            .unwrap()
            .is_none()
    );

    // A reset applies only to the memberships the owner was allowed for.
    let reset = issue(&a, InvitationKind::PasswordReset, "ned@x.io");
    change(store, &b, add("ned@x.io", Role::Viewer), "organization.member_added")
        .await
        .unwrap();
    let seen_before = Change::ForceReset {
        memberships: vec![a.id],
        invitation: reset.clone(),
    };
    let r = change(store, &a, seen_before, "organization.member_password_reset").await;
    assert_eq!(rejected_code(r), "stale");
    assert!(
        store.invitation(&reset.token_hash).await.unwrap().is_none(),
        "nothing written"
    );
    let both = Change::ForceReset {
        memberships: vec![b.id, a.id],
        invitation: reset.clone(),
    };
    change(store, &a, both, "organization.member_password_reset")
        .await
        .unwrap();
    assert_eq!(store.user("ned@x.io").await.unwrap().unwrap().password_hash, None);
    assert!(
        store
            .session(&s1.token_hash, Timestamp(T0 + 1))
            .await
            .unwrap()
            .is_none(),
        "every session ended"
    );
    let complete = |at| Change::CompleteReset {
        token_hash: reset.token_hash,
        email: "ned@x.io".into(),
        password_hash: "$argon2id$mine".into(),
        at: Timestamp(at),
    };
    change(store, &a, complete(T0 + 1), "organization.member_password_changed")
        .await
        .unwrap();
    assert_eq!(
        store.user("ned@x.io").await.unwrap().unwrap().password_hash.as_deref(),
        Some("$argon2id$mine")
    );
    let r = change(store, &a, complete(T0 + 2), "organization.member_password_changed").await;
    assert_eq!(rejected_code(r), "invitation_invalid", "single use");
}

pub async fn sessions_expire_and_are_deleted(store: &dyn Store) {
    store
        .set_password("a@x.io", "$argon2id$fake", Timestamp(T0))
        .await
        .unwrap();
    assert_eq!(
        store.user("a@x.io").await.unwrap().unwrap().password_hash.as_deref(),
        Some("$argon2id$fake")
    );
    let (token, s) = session::start("a@x.io", Timestamp(T0), SessionOrigin::PASSWORD);
    store.create_session(s.clone()).await.unwrap();
    let hash = session::hash_token(&token);
    assert_eq!(store.session(&hash, Timestamp(T0 + 1)).await.unwrap(), Some(s.clone()));
    assert_eq!(store.session(&hash, s.expires_at).await.unwrap(), None, "expired");
    assert_eq!(
        store.live_sessions("a@x.io", Timestamp(T0 + 1)).await.unwrap(),
        std::slice::from_ref(&s)
    );
    assert_eq!(store.live_sessions("a@x.io", s.expires_at).await.unwrap(), []);
    assert_eq!(store.expired_sessions(Timestamp(T0 + 1), 10).await.unwrap(), []);
    assert_eq!(
        store.expired_sessions(s.expires_at, 10).await.unwrap(),
        std::slice::from_ref(&s)
    );
    store.delete_session(&hash).await.unwrap();
    assert_eq!(store.session(&hash, Timestamp(T0 + 1)).await.unwrap(), None);
}

pub async fn an_expired_session_ends_once(store: &dyn Store) {
    let a = org(store, "acme").await;
    store
        .set_password("a@x.io", "$argon2id$fake", Timestamp(T0))
        .await
        .unwrap();
    let (_, s) = session::start("a@x.io", Timestamp(T0), SessionOrigin::PASSWORD);
    store.create_session(s.clone()).await.unwrap();
    let end = || Change::EndSession {
        token_hash: s.token_hash,
    };
    change(store, &a, end(), "session.ended").await.unwrap();
    assert_eq!(rejected_code(change(store, &a, end(), "session.ended").await), "stale");
    assert_eq!(store.expired_sessions(s.expires_at, 10).await.unwrap(), []);
}

pub async fn sso_sessions_and_flows_round_trip_and_flows_are_taken_once(store: &dyn Store) {
    let a = org(store, "acme").await;
    store
        .set_password("a@x.io", "$argon2id$fake", Timestamp(T0))
        .await
        .unwrap();
    for origin in [SessionOrigin::sso(a.id), SessionOrigin::BREAK_GLASS] {
        let (token, s) = session::start("a@x.io", Timestamp(T0), origin);
        store.create_session(s.clone()).await.unwrap();
        let found = store
            .session(&session::hash_token(&token), Timestamp(T0 + 1))
            .await
            .unwrap();
        assert_eq!(found.map(|f| f.origin), Some(origin));
    }
    let flow = |n: u8, expires: i64| sso::Flow {
        state_hash: [n; 32],
        org_id: a.id,
        sealed: vec![n, 1, 2],
        expires_at: Timestamp(expires),
    };
    store.begin_sso_flow(flow(1, T0 + 1000)).await.unwrap();
    store.begin_sso_flow(flow(2, T0 + 1000)).await.unwrap();
    let now = Timestamp(T0 + 10);
    let taken = |n: u8, at: i64| async move { store.take_sso_flow(&[n; 32], Timestamp(at)).await.unwrap() };
    assert_eq!(taken(1, now.millis()).await, sso::Taken::Fresh(flow(1, T0 + 1000)));
    assert_eq!(
        taken(1, now.millis()).await,
        sso::Taken::Replayed(flow(1, T0 + 1000)),
        "a replayed state"
    );
    assert_eq!(taken(3, now.millis()).await, sso::Taken::Unknown, "an unknown state");
    assert_eq!(
        taken(2, T0 + 1000).await,
        sso::Taken::Replayed(flow(2, T0 + 1000)),
        "an expired flow"
    );
    // A new flow sweeps the expired ones: flow 4 outlived, flow 5 did not.
    store.begin_sso_flow(flow(4, T0 + 1000)).await.unwrap();
    let later = T0 + 1000 + sso::FLOW_TTL_MS;
    store.begin_sso_flow(flow(5, later + sso::FLOW_TTL_MS)).await.unwrap();
    assert_eq!(taken(4, T0).await, sso::Taken::Unknown, "swept");
    assert_eq!(
        taken(5, later).await,
        sso::Taken::Fresh(flow(5, later + sso::FLOW_TTL_MS))
    );
}

pub async fn purge_removes_only_old_entries_in_batches(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    // Timestamps T0 + i s, arriving out of order.
    let batch: Vec<_> = [5, 1, 8, 3, 9, 0, 7, 2, 6, 4]
        .iter()
        .map(|i| new_entry(*i, "a@x.io", "project.created", ("p", "1")))
        .collect();
    let stored = append(store, &a, batch.clone()).await;
    append(store, &b, batch).await;
    let cutoff = Timestamp(T0 + 6000);
    let first = store.purge_before(a.id, cutoff, 4).await.unwrap();
    assert_eq!(first.count, 4);
    let second = store.purge_before(a.id, cutoff, 4).await.unwrap();
    assert_eq!(second.count, 2);
    assert_eq!(store.purge_before(a.id, cutoff, 4).await.unwrap(), Purged::default());
    let seq_of = |secs: i64| {
        stored
            .iter()
            .find(|e| e.timestamp == Timestamp(T0 + secs * 1000))
            .unwrap()
            .seq
    };
    let oldest: Vec<i64> = (0..4).map(seq_of).collect();
    assert_eq!(first.first_seq, oldest.iter().min().copied(), "oldest first");
    assert_eq!(first.last_seq, oldest.iter().max().copied());
    let left = store
        .list(
            a.id,
            &Filter::default(),
            Page {
                limit: 100,
                after: None,
            },
        )
        .await
        .unwrap();
    let mut secs: Vec<i64> = left.iter().map(|e| (e.timestamp.millis() - T0) / 1000).collect();
    secs.sort_unstable();
    assert_eq!(secs, [6, 7, 8, 9]);
    assert_eq!(store.log_size(a.id).await.unwrap(), 10, "the head does not move back");
    let b_left = store
        .list(
            b.id,
            &Filter::default(),
            Page {
                limit: 100,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(b_left.len(), 10, "other organizations untouched");
}

/// Everything of `org` before `cutoff` goes, first by
/// [`Store::drop_expired_partitions`] (whatever units the backend drops
/// whole) and then row by row, as the retention purger does.
async fn purge_as_retention_does(
    store: &dyn Store,
    cutoffs: &std::collections::HashMap<auditlog_domain::OrgId, Timestamp>,
) -> std::collections::HashMap<auditlog_domain::OrgId, Purged> {
    let mut total = store.drop_expired_partitions(cutoffs).await.expect("drop expired");
    for (org, cutoff) in cutoffs {
        loop {
            let p = store.purge_before(*org, *cutoff, 2).await.expect("purge");
            total.entry(*org).or_default().add(p);
            if p.count < 2 {
                break;
            }
        }
    }
    total.retain(|_, p| p.count > 0);
    total
}

/// Two organizations with different windows over entries spread across
/// months: however a backend removes them (PostgreSQL drops a month's
/// partition whole when every row in it has expired), exactly the entries
/// before each organization's own cutoff go, with their deliveries and
/// idempotency keys, the figures are exact, and the tree stays whole.
pub async fn bulk_and_row_purges_remove_exactly_each_windows_entries(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    let created = change(
        store,
        &a,
        Change::CreateWebhook(endpoint("wh_all", &[])),
        "webhook.created",
    )
    .await
    .unwrap();
    let at = |s: &str| Timestamp::parse(s).unwrap();
    let dated = |when: &str, n: usize| {
        let mut e = new_entry(0, "a@x.io", "project.created", ("p", "1"));
        e.timestamp = at(when);
        e.details.insert("n".into(), serde_json::json!(n));
        e
    };
    let mut keyed = dated("2026-04-10T00:00:00Z", 4);
    keyed.idempotency_key = Some("k-april".into());
    let a_new = vec![
        dated("2026-01-10T00:00:00Z", 1),
        dated("2026-02-10T00:00:00Z", 2),
        dated("2026-03-10T00:00:00Z", 3),
        keyed.clone(),
        dated("2026-04-30T23:59:59.999Z", 5),
        dated("2026-05-01T00:00:00Z", 6),
        dated("2026-06-10T00:00:00Z", 7),
    ];
    let b_new = vec![
        dated("2026-01-20T00:00:00Z", 1),
        dated("2026-02-20T00:00:00Z", 2),
        dated("2026-03-05T00:00:00Z", 3),
        dated("2026-03-25T00:00:00Z", 4),
        dated("2026-06-20T00:00:00Z", 5),
    ];
    let mut a_all: Vec<Entry> = created.into_iter().map(|x| x.entry).collect();
    a_all.extend(append(store, &a, a_new).await);
    let b_all = append(store, &b, b_new).await;
    let a_leaves: Vec<merkle::Hash> = a_all.iter().map(canonical::entry_leaf_hash).collect();
    // acme's window starts on a month's first instant, globex's mid-month:
    // January and February have expired for both, April for acme (the only
    // one with entries then), March only in part.
    let cutoffs: std::collections::HashMap<_, _> =
        [(a.id, at("2026-05-01T00:00:00Z")), (b.id, at("2026-03-15T00:00:00Z"))].into();

    let figures = purge_as_retention_does(store, &cutoffs).await;
    for (o, all) in [(&a, &a_all), (&b, &b_all)] {
        let cutoff = cutoffs[&o.id];
        let (gone, kept): (Vec<&Entry>, Vec<&Entry>) = all.iter().partition(|e| e.timestamp < cutoff);
        assert_eq!(
            figures.get(&o.id).copied().unwrap_or_default(),
            Purged {
                count: gone.len() as u64,
                first_seq: gone.iter().map(|e| e.seq).min(),
                last_seq: gone.iter().map(|e| e.seq).max(),
            },
            "{}: exact figures",
            o.slug
        );
        let mut left: Vec<i64> = all_entries(store, o).await.iter().map(|e| e.seq).collect();
        left.sort_unstable();
        assert_eq!(left, kept.iter().map(|e| e.seq).collect::<Vec<_>>(), "{}", o.slug);
        for e in &gone {
            assert_eq!(store.entry(o.id, e.id).await.unwrap(), None, "{} seq {}", o.slug, e.seq);
        }
        for e in &kept {
            assert!(
                store.entry(o.id, e.id).await.unwrap().is_some(),
                "{} seq {}",
                o.slug,
                e.seq
            );
        }
    }
    assert_eq!(figures.len(), 2);
    // Deliveries go with their entries.
    let mut delivered: Vec<i64> = store
        .deliveries(a.id, "wh_all", 100)
        .await
        .unwrap()
        .iter()
        .map(|d| d.seq)
        .collect();
    delivered.sort_unstable();
    let kept: Vec<i64> = a_all
        .iter()
        .filter(|e| e.timestamp >= cutoffs[&a.id])
        .map(|e| e.seq)
        .collect();
    assert_eq!(delivered, kept);
    // Proofs outlive retention.
    let size = a_leaves.len() as u64;
    assert_eq!(store.log_size(a.id).await.unwrap() as u64, size);
    assert_eq!(root_from_store(store, &a, size).await, naive_root(&a_leaves));
    for (i, leaf) in a_leaves.iter().enumerate() {
        let refs = merkle::inclusion_proof_nodes(i as u64, size).unwrap();
        let nodes = store.tree_nodes(a.id, merkle::needed_nodes(&refs)).await.unwrap();
        let proof = merkle::assemble(&refs, |id| nodes.get(&id).copied()).unwrap();
        merkle::verify_inclusion(i as u64, size, leaf, &proof, &naive_root(&a_leaves)).unwrap();
    }

    // A purged entry's idempotency key is free again, and an entry dated in
    // a month whose storage was removed is stored (and goes at the next pass).
    let again = store
        .append(vec![AppendRequest::entries(a.id, vec![keyed])], Timestamp(T0))
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap()
        .pop()
        .unwrap();
    assert!(!again.replayed, "the key went with its entry");
    assert_eq!(again.entry.seq, size as i64 + 1);
    assert_eq!(
        store.entry(a.id, again.entry.id).await.unwrap(),
        Some(again.entry.clone())
    );
    let second = purge_as_retention_does(store, &cutoffs).await;
    assert_eq!(
        second,
        [(
            a.id,
            Purged {
                count: 1,
                first_seq: Some(again.entry.seq),
                last_seq: Some(again.entry.seq)
            }
        )]
        .into()
    );
}

async fn all_entries(store: &dyn Store, org: &Org) -> Vec<Entry> {
    all(store, org, &Filter::default(), 3).await
}

fn endpoint(id: &str, events: &[&str]) -> Endpoint {
    Endpoint {
        id: id.into(),
        url: format!("https://hooks.example/{id}"),
        description: String::new(),
        events: events.iter().map(|p| EventPattern::parse(p).unwrap()).collect(),
        enabled: true,
        secret: Secret::generate(),
        previous_secret: None,
        created_at: Timestamp(T0),
        failing_since: None,
        disabled_reason: None,
        payload_format: PayloadFormat::default(),
    }
}

pub async fn deliveries_are_written_with_their_entries(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    change(
        store,
        &a,
        Change::CreateWebhook(endpoint("wh_all", &[])),
        "webhook.created",
    )
    .await
    .unwrap();
    change(
        store,
        &a,
        Change::CreateWebhook(endpoint("wh_keys", &["api_key.*"])),
        "webhook.created",
    )
    .await
    .unwrap();
    let mut off = endpoint("wh_off", &[]);
    off.enabled = false;
    change(store, &a, Change::CreateWebhook(off), "webhook.created")
        .await
        .unwrap();
    let listed: Vec<String> = store.webhooks(a.id).await.unwrap().into_iter().map(|w| w.id).collect();
    assert_eq!(listed.len(), 3);
    append(
        store,
        &a,
        vec![
            new_entry(1, "a@x.io", "api_key.created", ("api_key", "k")),
            new_entry(2, "a@x.io", "project.created", ("project", "p")),
        ],
    )
    .await;
    append(
        store,
        &b,
        vec![new_entry(1, "b@x.io", "api_key.created", ("api_key", "k"))],
    )
    .await;
    let all = store.deliveries(a.id, "wh_all", 100).await.unwrap();
    let keys = store.deliveries(a.id, "wh_keys", 100).await.unwrap();
    assert!(
        store.deliveries(a.id, "wh_off", 100).await.unwrap().is_empty(),
        "disabled endpoints get nothing"
    );
    // wh_all exists from its own creation on, so it gets its own
    // webhook.created entry, the two later ones and the two new entries.
    let seqs = |d: &[auditlog_domain::store::Delivery]| {
        let mut s: Vec<i64> = d.iter().map(|d| d.seq).collect();
        s.sort_unstable();
        s
    };
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5]);
    assert_eq!(seqs(&keys), [4], "only the matching entry");
    assert!(
        all.iter()
            .all(|d| d.status == DeliveryStatus::Pending && d.attempts == 0)
    );
    assert!(
        store.deliveries(b.id, "wh_all", 100).await.unwrap().is_empty(),
        "no cross-organization fan-out"
    );
}

pub async fn deliveries_are_claimed_leased_and_recorded(store: &dyn Store) {
    let a = org(store, "acme").await;
    change(
        store,
        &a,
        Change::CreateWebhook(endpoint("wh_1", &["project.*"])),
        "webhook.created",
    )
    .await
    .unwrap();
    append(
        store,
        &a,
        vec![new_entry(1, "a@x.io", "project.created", ("project", "p"))],
    )
    .await;
    let now = Timestamp(T0 + 20_000_000);
    let lease = now.plus_millis(60_000);
    let due = store.claim_deliveries(now, lease, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].entry.event, "project.created");
    assert_eq!(due[0].endpoint.id, "wh_1");
    assert!(
        store.claim_deliveries(now, lease, 10).await.unwrap().is_empty(),
        "leased"
    );
    assert_eq!(
        store
            .claim_deliveries(lease, lease.plus_millis(1), 10)
            .await
            .unwrap()
            .len(),
        1,
        "lease expired"
    );

    let id = due[0].delivery.id.clone();
    let fail = Attempt {
        at: now,
        status: Some(500),
        latency_ms: 12,
        error: Some("HTTP 500".into()),
        result: AttemptResult::RetryAt(now.plus_millis(5000)),
    };
    assert_eq!(store.record_attempt(a.id, &id, fail.clone()).await.unwrap(), Some(now));
    let later = Attempt {
        at: now.plus_millis(5000),
        ..fail
    };
    assert_eq!(
        store.record_attempt(a.id, &id, later).await.unwrap(),
        Some(now),
        "failing since the first"
    );
    let d = &store.deliveries(a.id, "wh_1", 10).await.unwrap()[0];
    assert_eq!((d.attempts, d.last_status, d.last_latency_ms), (2, Some(500), Some(12)));
    let ok = Attempt {
        at: now.plus_millis(10_000),
        status: Some(204),
        latency_ms: 3,
        error: None,
        result: AttemptResult::Delivered,
    };
    assert_eq!(
        store.record_attempt(a.id, &id, ok).await.unwrap(),
        None,
        "a success clears it"
    );
    let d = &store.deliveries(a.id, "wh_1", 10).await.unwrap()[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert!(
        store
            .claim_deliveries(now.plus_millis(99_999_999), now, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        matches!(
            store.retry_delivery(a.id, "wh_other", &id, now).await,
            Err(StoreError::NotFound(_))
        ),
        "not another endpoint's"
    );
    let again = store.retry_delivery(a.id, "wh_1", &id, now).await.unwrap();
    assert_eq!(again.status, DeliveryStatus::Pending);
    assert_eq!(store.claim_deliveries(now, lease, 10).await.unwrap().len(), 1);
    let other = org(store, "globex").await;
    assert!(
        store.retry_delivery(other.id, "wh_1", &id, now).await.is_err(),
        "not another organization's"
    );
}

/// A replay queues a new delivery of each entry from the given seq on that
/// the patterns select, looking at no more than the limit, and says where
/// it stopped; what was delivered before stays delivered.
pub async fn a_replay_queues_the_selected_entries_again(store: &dyn Store) {
    let a = org(store, "acme").await;
    change(
        store,
        &a,
        Change::CreateWebhook(endpoint("wh_1", &["project.*"])),
        "webhook.created",
    )
    .await
    .unwrap();
    let entries: Vec<NewEntry> = (1..=6)
        .map(|i| {
            let event = if i % 2 == 0 {
                "project.created"
            } else {
                "guardrail.created"
            };
            new_entry(i, "a@x.io", event, ("project", "p"))
        })
        .collect();
    append(store, &a, entries).await;
    let size = store.log_size(a.id).await.unwrap();
    let before = store.deliveries(a.id, "wh_1", 100).await.unwrap();
    let project = [EventPattern::parse("project.*").unwrap()];
    let now = Timestamp(T0 + 30_000_000);
    let replay = store
        .replay_deliveries(a.id, "wh_1", &project, size - 4, 3, now)
        .await
        .unwrap();
    assert_eq!(replay.through, Some(size - 2), "three entries looked at");
    let after = store.deliveries(a.id, "wh_1", 100).await.unwrap();
    let new: Vec<i64> = after
        .iter()
        .filter(|d| !before.iter().any(|b| b.id == d.id))
        .map(|d| d.seq)
        .collect();
    let page = Page {
        limit: 100,
        after: None,
    };
    let events = store.list(a.id, &Filter::default(), page).await.unwrap();
    for seq in &new {
        let e = events.iter().find(|e| e.seq == *seq).unwrap();
        assert!(e.event.starts_with("project."), "{seq}: {}", e.event);
        assert!((size - 4..=size - 2).contains(seq));
    }
    assert_eq!(new.len() as u64, replay.queued);
    assert!(replay.queued >= 1);
    let every = store
        .replay_deliveries(a.id, "wh_1", &[], size + 1, 10, now)
        .await
        .unwrap();
    assert_eq!(
        every,
        Replay {
            queued: 0,
            through: None
        },
        "nothing past the end"
    );
    let other = org(store, "globex").await;
    let none = store
        .replay_deliveries(other.id, "wh_1", &[], 1, 10, now)
        .await
        .unwrap();
    assert_eq!(none.queued, 0, "another organization's log is not replayed");
}

/// A histogram counts exactly the entries a listing with the same filter
/// would return, per category and per bucket, oldest bucket first.
pub async fn histograms_count_what_the_filter_selects_per_bucket_and_category(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    // Seconds 1..=9: buckets of 5 s hold 1–4, 5–9 (starting at T0, a
    // multiple of 5,000 ms).
    let entries: Vec<NewEntry> = (1..=9)
        .map(|i| {
            let event = if i % 3 == 0 {
                "project.created"
            } else {
                "api_key.created"
            };
            let actor = if i <= 6 { "ana@x.io" } else { "bo@x.io" };
            new_entry(i, actor, event, ("project", "p"))
        })
        .collect();
    append(store, &a, entries).await;
    append(
        store,
        &b,
        vec![new_entry(1, "ana@x.io", "project.created", ("project", "p"))],
    )
    .await;
    let bucket = |at: i64, category: &str, count: u64| Bucket {
        start: Timestamp(T0 + at),
        category: category.into(),
        count,
    };
    let all = store.histogram(a.id, &Filter::default(), 5_000).await.unwrap();
    assert_eq!(
        all,
        [
            bucket(0, "api_key", 3),
            bucket(0, "project", 1),
            bucket(5_000, "api_key", 3),
            bucket(5_000, "project", 2),
        ]
    );
    let ana = Filter {
        actor: Some("ana@x.io".into()),
        events: Some(vec!["project.created".into()]),
        ..Filter::default()
    };
    let got = store.histogram(a.id, &ana, 5_000).await.unwrap();
    assert_eq!(got, [bucket(0, "project", 1), bucket(5_000, "project", 1)]);
    let late = Filter {
        from: Some(Timestamp(T0 + 8_000)),
        ..Filter::default()
    };
    let got = store.histogram(a.id, &late, 1_000).await.unwrap();
    assert_eq!(got, [bucket(8_000, "api_key", 1), bucket(9_000, "project", 1)]);
}

/// Every endpoint's newest deliveries in one read, newest first, and only
/// the organization's own.
pub async fn each_endpoints_newest_deliveries_come_in_one_read(store: &dyn Store) {
    let a = org(store, "acme").await;
    for (id, pattern) in [("wh_1", "project.*"), ("wh_2", "guardrail.*"), ("wh_3", "alert.*")] {
        change(
            store,
            &a,
            Change::CreateWebhook(endpoint(id, &[pattern])),
            "webhook.created",
        )
        .await
        .unwrap();
    }
    let entries: Vec<NewEntry> = (1..=4)
        .map(|i| {
            let event = if i == 4 { "guardrail.created" } else { "project.created" };
            new_entry(i, "a@x.io", event, ("project", "p"))
        })
        .collect();
    append(store, &a, entries).await;
    let latest = store.latest_deliveries(a.id, 2).await.unwrap();
    let seqs = |id: &str| latest.get(id).map(|l| l.iter().map(|d| d.seq).collect::<Vec<_>>());
    let first = store.deliveries(a.id, "wh_1", 2).await.unwrap();
    assert_eq!(
        seqs("wh_1"),
        Some(first.iter().map(|d| d.seq).collect()),
        "as deliveries() lists them"
    );
    assert_eq!(seqs("wh_1").unwrap().len(), 2);
    assert_eq!(seqs("wh_2").unwrap().len(), 1);
    assert!(seqs("wh_3").is_none_or(|l| l.is_empty()), "an endpoint with none");
    let other = org(store, "globex").await;
    assert!(
        store
            .latest_deliveries(other.id, 2)
            .await
            .unwrap()
            .values()
            .all(Vec::is_empty)
    );
}

/// Secrets stored in clear (as before sealing existed), current and
/// previous, are sealed where they are and open to what they were; sealed
/// ones are left alone, and a second pass has nothing to do.
pub async fn clear_webhook_secrets_are_sealed_in_place_once(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    let sealer = std::sync::Arc::new(SecretSealer::derive(&[7u8; 32]));
    let clear = endpoint("wh_clear", &[]);
    let mut already = endpoint("wh_sealed", &[]);
    let plain = already.secret.clone();
    already.secret = Secret(sealer.seal(&plain.0));
    for (o, e) in [(&a, clear.clone()), (&b, already.clone())] {
        change(store, o, Change::CreateWebhook(e), "webhook.created")
            .await
            .unwrap();
    }
    let rotated = Secret::generate();
    let rotate = Change::RotateWebhookSecret {
        id: "wh_clear".into(),
        new: rotated.clone(),
        previous_until: Timestamp(T0 + 1000),
    };
    change(store, &a, rotate, "webhook.secret_rotated").await.unwrap();

    assert_eq!(store.seal_clear_webhook_secrets(sealer.clone()).await.unwrap(), 2);
    let w = store.webhook(a.id, "wh_clear").await.unwrap().unwrap();
    assert!(!SecretSealer::needs_sealing(&w.secret.0));
    assert_eq!(sealer.open(&w.secret.0).unwrap(), rotated.0);
    let (previous, until) = w.previous_secret.expect("previous secret kept");
    assert!(!SecretSealer::needs_sealing(&previous.0));
    assert_eq!(sealer.open(&previous.0).unwrap(), clear.secret.0);
    assert_eq!(until, Timestamp(T0 + 1000));
    let untouched = store.webhook(b.id, "wh_sealed").await.unwrap().unwrap();
    assert_eq!(untouched.secret, already.secret, "a sealed secret is not sealed again");

    assert_eq!(store.seal_clear_webhook_secrets(sealer).await.unwrap(), 0);
}

pub async fn endpoint_changes_apply_and_disable_once(store: &dyn Store) {
    let a = org(store, "acme").await;
    change(
        store,
        &a,
        Change::CreateWebhook(endpoint("wh_1", &[])),
        "webhook.created",
    )
    .await
    .unwrap();
    let before = store.webhook(a.id, "wh_1").await.unwrap().unwrap();
    let new = Secret::generate();
    let rotate = Change::RotateWebhookSecret {
        id: "wh_1".into(),
        new: new.clone(),
        previous_until: Timestamp(T0 + 1000),
    };
    change(store, &a, rotate, "webhook.secret_rotated").await.unwrap();
    let w = store.webhook(a.id, "wh_1").await.unwrap().unwrap();
    assert_eq!(w.secret, new);
    assert_eq!(w.previous_secret, Some((before.secret, Timestamp(T0 + 1000))));
    let disable = || Change::DisableWebhook {
        id: "wh_1".into(),
        reason: "410 Gone".into(),
    };
    change(store, &a, disable(), "webhook.disabled").await.unwrap();
    assert_eq!(
        rejected_code(change(store, &a, disable(), "webhook.disabled").await),
        "stale",
        "once"
    );
    let w = store.webhook(a.id, "wh_1").await.unwrap().unwrap();
    assert!(!w.enabled);
    assert_eq!(w.disabled_reason.as_deref(), Some("410 Gone"));
    let update = Change::UpdateWebhook(WebhookSettings {
        id: "wh_1".into(),
        url: "https://new.example/h".into(),
        description: "siem".into(),
        events: vec![EventPattern::parse("billing.*").unwrap()],
        enabled: true,
        payload_format: PayloadFormat::Auditlog,
    });
    change(store, &a, update, "webhook.updated").await.unwrap();
    let w = store.webhook(a.id, "wh_1").await.unwrap().unwrap();
    assert!(w.enabled && w.disabled_reason.is_none());
    assert_eq!(w.url, "https://new.example/h");
    change(
        store,
        &a,
        Change::DeleteWebhook { id: "wh_1".into() },
        "webhook.deleted",
    )
    .await
    .unwrap();
    assert!(store.webhook(a.id, "wh_1").await.unwrap().is_none());
}

/// An endpoint's payload format is kept as created and as updated, and
/// every read that yields the endpoint (one, the list, a claimed delivery)
/// carries it: the dispatcher shapes the body from the claimed one.
pub async fn payload_formats_round_trip_through_every_read(store: &dyn Store) {
    let a = org(store, "acme").await;
    let ocsf = Endpoint {
        payload_format: PayloadFormat::Ocsf,
        ..endpoint("wh_ocsf", &["project.*"])
    };
    for e in [ocsf, endpoint("wh_plain", &["project.*"])] {
        change(store, &a, Change::CreateWebhook(e), "webhook.created")
            .await
            .unwrap();
    }
    let format_of = |list: &[Endpoint], id: &str| list.iter().find(|e| e.id == id).map(|e| e.payload_format);
    let listed = store.webhooks(a.id).await.unwrap();
    assert_eq!(format_of(&listed, "wh_ocsf"), Some(PayloadFormat::Ocsf));
    assert_eq!(
        format_of(&listed, "wh_plain"),
        Some(PayloadFormat::Auditlog),
        "the default"
    );

    append(
        store,
        &a,
        vec![new_entry(1, "a@x.io", "project.created", ("project", "p"))],
    )
    .await;
    let now = Timestamp(T0 + 20_000_000);
    let due = store.claim_deliveries(now, now.plus_millis(60_000), 10).await.unwrap();
    let claimed: Vec<Endpoint> = due.into_iter().map(|d| d.endpoint).collect();
    assert_eq!(format_of(&claimed, "wh_ocsf"), Some(PayloadFormat::Ocsf));
    assert_eq!(format_of(&claimed, "wh_plain"), Some(PayloadFormat::Auditlog));

    for (id, to) in [("wh_ocsf", PayloadFormat::Auditlog), ("wh_plain", PayloadFormat::Ocsf)] {
        let w = store.webhook(a.id, id).await.unwrap().unwrap();
        let update = Change::UpdateWebhook(WebhookSettings {
            id: w.id,
            url: w.url,
            description: w.description,
            events: w.events,
            enabled: w.enabled,
            payload_format: to,
        });
        change(store, &a, update, "webhook.updated").await.unwrap();
        let w = store.webhook(a.id, id).await.unwrap().unwrap();
        assert_eq!(w.payload_format, to, "{id} updated");
    }
}

pub async fn listing_after_a_seq_replays_oldest_first(store: &dyn Store) {
    let a = org(store, "acme").await;
    let batch: Vec<_> = (0..10)
        .map(|i| new_entry(10 - i, "a@x.io", "project.created", ("p", "1")))
        .collect();
    append(store, &a, batch).await;
    let filter = Filter {
        after_seq: Some(4),
        ..Filter::default()
    };
    let got = store.list(a.id, &filter, Page { limit: 3, after: None }).await.unwrap();
    assert_eq!(
        got.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [5, 6, 7],
        "by seq, not by time"
    );
}

/// The organization's tree root at `size`, from stored nodes.
async fn root_from_store(store: &dyn Store, org: &Org, size: u64) -> merkle::Hash {
    let nodes = store
        .tree_nodes(org.id, merkle::frontier_ids(size))
        .await
        .expect("tree nodes");
    merkle::root_at(size, |id| nodes.get(&id).copied()).expect("every frontier node is stored")
}

/// The reference: RFC 9162's MTH computed naively over the leaf hashes.
fn naive_root(leaves: &[merkle::Hash]) -> merkle::Hash {
    match leaves.len() {
        0 => merkle::EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = n.next_power_of_two() / 2;
            merkle::node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

pub async fn the_tree_grows_with_the_log_and_outlives_purges(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    let mut leaves = Vec::new();
    // Transactions of uneven sizes, so nodes complete across them.
    for (round, n) in [1, 2, 5, 3, 8, 1, 13].iter().enumerate() {
        let batch: Vec<_> = (0..*n)
            .map(|i| {
                let mut e = new_entry(round as i64 * 100 + i, "a@x.io", "project.created", ("p", "1"));
                e.details.insert("n".into(), serde_json::json!(i));
                e
            })
            .collect();
        let stored = append(store, &a, batch.clone()).await;
        append(store, &b, batch).await;
        leaves.extend(stored.iter().map(canonical::entry_leaf_hash));
        let size = leaves.len() as u64;
        assert_eq!(
            root_from_store(store, &a, size).await,
            naive_root(&leaves),
            "root at {size}"
        );
    }
    let size = leaves.len() as u64;
    // Every entry's inclusion proof, from stored nodes, verifies.
    let root = naive_root(&leaves);
    for (i, leaf) in leaves.iter().enumerate() {
        let refs = merkle::inclusion_proof_nodes(i as u64, size).unwrap();
        let nodes = store.tree_nodes(a.id, merkle::needed_nodes(&refs)).await.unwrap();
        let proof = merkle::assemble(&refs, |id| nodes.get(&id).copied()).unwrap();
        merkle::verify_inclusion(i as u64, size, leaf, &proof, &root).unwrap();
    }
    // Organizations have trees of their own, though their entries look alike.
    assert_ne!(root_from_store(store, &b, size).await, root, "ids and times differ");
    // Purging entries keeps the tree: old roots and proofs still hold.
    let purged = store
        .purge_before(a.id, Timestamp(T0 + 400 * 1000), 1000)
        .await
        .unwrap();
    assert!(purged.count > 0);
    assert_eq!(root_from_store(store, &a, size).await, root);
    assert_eq!(root_from_store(store, &a, 3).await, naive_root(&leaves[..3]));
}

/// One transaction large enough that a backend may hash its leaves apart
/// from its inserts, interleaving organizations and replaying an
/// idempotency key: each tree gets exactly its new entries, in `seq` order.
pub async fn large_transactions_grow_every_tree_in_order(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    let first = append(store, &a, vec![new_entry(0, "a@x.io", "project.created", ("p", "0"))]).await;
    let mut keyed = new_entry(1, "a@x.io", "project.created", ("p", "1"));
    keyed.idempotency_key = Some("k-1".into());
    append(store, &a, vec![keyed.clone()]).await;
    let batch = |org: &Org, from: i64| {
        AppendRequest::entries(
            org.id,
            (from..from + 150)
                .map(|i| new_entry(i, "a@x.io", "project.updated", ("p", "2")))
                .collect(),
        )
    };
    let mut replay = batch(&a, 500);
    replay.entries.insert(70, keyed);
    let requests = vec![batch(&a, 100), batch(&b, 100), replay, batch(&b, 300)];
    for result in store.append(requests, Timestamp(T0 + 20_000_000)).await.unwrap() {
        result.expect("request committed");
    }
    for (org, size) in [(&a, 302), (&b, 300)] {
        let stored = all(store, org, &Filter::default(), 1000).await;
        let mut by_seq: Vec<&Entry> = stored.iter().collect();
        by_seq.sort_by_key(|e| e.seq);
        assert_eq!(
            by_seq.len(),
            size,
            "{}: one entry per seq, the replay not added",
            org.slug
        );
        let leaves: Vec<merkle::Hash> = by_seq.iter().map(|e| canonical::entry_leaf_hash(e)).collect();
        assert_eq!(
            root_from_store(store, org, size as u64).await,
            naive_root(&leaves),
            "{}'s root",
            org.slug
        );
    }
    assert_eq!(first[0].seq, 1);
}

pub async fn checkpoints_are_kept_once_per_size(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    assert_eq!(store.checkpoint(a.id, None).await.unwrap(), None);
    assert!(
        store.orgs_with_unsigned_entries().await.unwrap().is_empty(),
        "no entries, nothing to sign"
    );
    let added: Vec<_> = (0..7)
        .map(|i| new_entry(i, "a@x.io", "project.created", ("p", "1")))
        .collect();
    append(store, &a, added).await;
    let unsigned = store.orgs_with_unsigned_entries().await.unwrap();
    assert_eq!(unsigned.iter().map(|o| o.id).collect::<Vec<_>>(), [a.id]);
    let cp = |size: u64, note: &str| StoredCheckpoint {
        size,
        root: [size as u8; 32],
        note: note.into(),
        signed_at: Timestamp(T0 + size as i64),
    };
    store.save_checkpoint(a.id, cp(3, "three")).await.unwrap();
    store.save_checkpoint(a.id, cp(7, "seven")).await.unwrap();
    store.save_checkpoint(a.id, cp(7, "seven again")).await.unwrap();
    assert_eq!(
        store.checkpoint(a.id, None).await.unwrap(),
        Some(cp(7, "seven")),
        "latest; first stands"
    );
    assert_eq!(store.checkpoint(a.id, Some(3)).await.unwrap(), Some(cp(3, "three")));
    assert_eq!(store.checkpoint(a.id, Some(4)).await.unwrap(), None);
    assert_eq!(store.checkpoint(b.id, None).await.unwrap(), None, "per organization");
    assert!(
        store.orgs_with_unsigned_entries().await.unwrap().is_empty(),
        "signed up to its size: nothing left"
    );
}
