//! Checks of personal data at rest: sealed values read back whole, an
//! erasure removes one person and nothing else, and every proof still
//! holds.

use auditlog_domain::change::Change;
use auditlog_domain::entry::{Actor, ActorType, Resource};
use auditlog_domain::filter::Filter;
use auditlog_domain::personal::{Disclosure, ERASED, Subject};
use auditlog_domain::store::AppendRequest;
use auditlog_domain::{NewEntry, Org, Store, StoreError, SubmittedBy, SubmitterKind, Timestamp};
use auditlog_domain::{canonical, merkle};

use crate::{T0, all, org, personal_data};

/// An admin (ada, signed in) making a member (bob) an owner, `i` ms after
/// the suite's start: two people in one entry.
pub fn role_change(i: i64) -> NewEntry {
    NewEntry {
        timestamp: Timestamp(T0 + i * 1000),
        actor: Actor {
            kind: ActorType::User,
            id: "ada@acme.com".into(),
        },
        event: "organization.member_role_changed".into(),
        resource: Resource::member("bob@acme.com"),
        details: serde_json::from_str(r#"{"member":"bob@acme.com","old_role":"admin","new_role":"owner"}"#).unwrap(),
        ip_address: Some("203.0.113.7".parse().unwrap()),
        user_agent: Some("Firefox/140".into()),
        request_id: Some(format!("r-{i}")),
        idempotency_key: None,
        submitted_by: SubmittedBy::new(SubmitterKind::Session, "ada@acme.com"),
    }
}

/// Erases `email` in `org` as the server does: counted, then erased in the
/// same transaction as the entry that records it.
async fn erase(store: &dyn Store, org: &Org, email: &str, count: Option<u64>) -> Result<u64, StoreError> {
    let personal = personal_data();
    let pseudonym = personal.pseudonym(&Subject::new(email).unwrap());
    let entries = match count {
        Some(n) => n,
        None => store.subject_entries(org.id, pseudonym).await?,
    };
    let change = Change::EraseSubject {
        pseudonym,
        token: personal.token(&pseudonym),
        entries,
    };
    let mut record = crate::new_entry(100, "system", "audit_log.subject_erased", ("subject", "x"));
    record.details.insert("entries".into(), entries.into());
    let request = AppendRequest {
        org_id: org.id,
        changes: vec![change],
        entries: vec![record],
    };
    let mut out = store.append(vec![request], Timestamp(T0 + 20_000_000)).await?;
    out.remove(0).map(|_| entries)
}

fn actor_is(id: &str) -> Filter {
    Filter {
        actor: Some(id.into()),
        ..Filter::default()
    }
}

/// Ada and bob share three entries and bob has one of his own; erasing
/// bob leaves ada whole, shows bob's values erased field by field, finds
/// nothing by his id, and every leaf the tree holds still rebuilds.
pub async fn erasing_a_person_leaves_the_other_and_every_proof(store: &dyn Store) {
    let a = org(store, "acme").await;
    let mut news: Vec<NewEntry> = (0..3).map(role_change).collect();
    let mut own = role_change(3);
    own.actor.id = "bob@acme.com".into();
    own.submitted_by = SubmittedBy::new(SubmitterKind::Session, "bob@acme.com");
    news.push(own);
    let written = crate::append(store, &a, news).await;
    let leaves: Vec<merkle::Hash> = written.iter().map(canonical::entry_leaf_hash).collect();
    let before = all(store, &a, &Filter::default(), 10).await;
    assert_eq!(
        before.iter().rev().cloned().collect::<Vec<_>>(),
        written,
        "read back whole"
    );
    assert_eq!(
        all(store, &a, &actor_is("Bob@Acme.com"), 10).await.len(),
        1,
        "found by id"
    );

    assert_eq!(erase(store, &a, "bob@acme.com", None).await.unwrap(), 4);
    let after = all(store, &a, &Filter::default(), 10).await;
    assert_eq!(after.len(), 5, "the erasure's own entry is added, nothing removed");
    for (i, e) in after.iter().rev().take(3).enumerate() {
        assert_eq!(e.seq, written[i].seq);
        assert_eq!(e.actor.id, "ada@acme.com");
        assert_eq!(
            (e.ip_address, e.user_agent.as_deref()),
            (written[i].ip_address, Some("Firefox/140"))
        );
        assert_eq!(e.submitted_by, written[i].submitted_by);
        assert_eq!(
            (e.resource.id.as_str(), e.details["member"].as_str()),
            (ERASED, Some(ERASED))
        );
        assert_eq!(e.details["new_role"], "owner");
        assert!(matches!(
            e.personal["resource.id"],
            Disclosure::Erased { erased: true, .. }
        ));
        assert!(matches!(e.personal["actor.id"], Disclosure::Opened { .. }));
        assert!(!serde_json::to_string(e).unwrap().contains("bob"), "{e:?}");
        assert_eq!(canonical::entry_leaf_hash(e), leaves[i], "the leaf rebuilds");
    }
    let bobs = &after[1];
    assert_eq!((bobs.actor.id.as_str(), bobs.ip_address), (ERASED, None));
    assert_eq!(canonical::entry_leaf_hash(bobs), leaves[3]);
    for filter in [
        actor_is("bob@acme.com"),
        Filter {
            resource_id: Some("bob@acme.com".into()),
            ..Filter::default()
        },
        Filter {
            submitted_by: Some(SubmittedBy::new(SubmitterKind::Session, "bob@acme.com")),
            ..Filter::default()
        },
    ] {
        assert_eq!(all(store, &a, &filter, 10).await, [], "{filter:?} finds nothing");
    }
    assert_eq!(all(store, &a, &actor_is("ada@acme.com"), 10).await.len(), 3);
    assert_eq!(
        store
            .subject_entries(a.id, personal_data().pseudonym(&Subject::new("bob@acme.com").unwrap()))
            .await
            .unwrap(),
        0
    );
}

/// A count that ingest has outdated is refused and writes nothing; a
/// person with no entries is erased, and recorded, with a count of 0; new
/// entries of an erased person are sealed under a new key and readable.
pub async fn erasure_is_compare_and_set_and_a_person_may_come_back(store: &dyn Store) {
    let a = org(store, "acme").await;
    crate::append(store, &a, vec![role_change(0)]).await;
    let stale = erase(store, &a, "bob@acme.com", Some(0)).await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Rejected {
                code: "subject_changed",
                ..
            })
        ),
        "{stale:?}"
    );
    assert_eq!(
        all(store, &a, &Filter::default(), 10).await.len(),
        1,
        "nothing recorded"
    );
    assert_eq!(
        all(store, &a, &actor_is("ada@acme.com"), 10).await[0].resource.id,
        "bob@acme.com"
    );
    assert_eq!(erase(store, &a, "carol@acme.com", None).await.unwrap(), 0);
    assert_eq!(erase(store, &a, "bob@acme.com", None).await.unwrap(), 1);
    let later = crate::append(store, &a, vec![role_change(5)]).await;
    let read = store.entry(a.id, later[0].id).await.unwrap().unwrap();
    assert_eq!((read.resource.id.as_str(), &read), ("bob@acme.com", &later[0]));
    assert_eq!(
        all(
            store,
            &a,
            &Filter {
                resource_id: Some("bob@acme.com".into()),
                ..Filter::default()
            },
            10
        )
        .await
        .len(),
        1
    );
}

/// An erasure racing ingest of the same person: every entry committed
/// before the erasure's own entry reads erased, every one after it reads
/// whole, and none is lost.
pub async fn erasure_racing_ingest_leaves_nothing_readable_from_before_it(store: &dyn Store) {
    let a = org(store, "acme").await;
    crate::append(store, &a, vec![role_change(0)]).await;
    let ingest = async {
        let mut written = Vec::new();
        for i in 1..=40 {
            written.extend(crate::append(store, &a, vec![role_change(i)]).await);
            tokio::task::yield_now().await;
        }
        written
    };
    let erasure = async {
        for _ in 0..100 {
            match erase(store, &a, "bob@acme.com", None).await {
                Err(StoreError::Rejected {
                    code: "subject_changed",
                    ..
                }) => tokio::task::yield_now().await,
                done => return done.unwrap(),
            }
        }
        panic!("the erasure never caught up with ingest");
    };
    let (written, _) = tokio::join!(ingest, erasure);
    let recorded = all(store, &a, &Filter::default(), 100).await;
    let erased_at = recorded
        .iter()
        .find(|e| e.event == "audit_log.subject_erased")
        .unwrap()
        .seq;
    assert_eq!(recorded.len(), 42, "every entry and the erasure's");
    for w in &written {
        let read = store.entry(a.id, w.id).await.unwrap().expect("not lost");
        let erased = read.resource.id == ERASED;
        assert_eq!(
            erased,
            read.seq < erased_at,
            "seq {} (erasure at {erased_at})",
            read.seq
        );
        assert_eq!(canonical::entry_leaf_hash(&read), canonical::entry_leaf_hash(w));
    }
}
