//! The conformance checks of [`StreamStore`]: settings and their changes,
//! the cursor's start and moves, leases across holders, and health.

use auditlog_domain::change::Change;
use auditlog_domain::pattern::EventPattern;
use auditlog_domain::siem::Format;
use auditlog_domain::store::Progress;
use auditlog_domain::stream::{Destination, Stream, StreamSettings, StreamState, TlsSettings, Transport};
use auditlog_domain::{Store, Timestamp};

use crate::{T0, append, change, new_entry, org, rejected_code};

fn settings(id: &str) -> StreamSettings {
    StreamSettings {
        id: id.into(),
        destination: Destination {
            transport: Transport::SyslogTls,
            host: "siem.example.com".into(),
            port: 6514,
        },
        format: Format::Cef,
        events: vec![EventPattern::parse("api_key.*").unwrap()],
        facility: 13,
        app_name: "auditlog".into(),
        description: "to the SIEM".into(),
        enabled: true,
        tls: TlsSettings {
            ca_pem: Some("-----BEGIN CERTIFICATE-----\n…".into()),
            client_cert_pem: Some("cert".into()),
            client_key: Some(vec![1, 2, 3]),
        },
    }
}

fn new_stream(id: &str) -> Change {
    Change::CreateStream(Box::new(Stream {
        settings: settings(id),
        state: StreamState::default(),
        created_at: Timestamp(T0),
    }))
}

fn progress(cursor: i64, error: Option<&str>, at: i64) -> Progress {
    Progress {
        cursor,
        error: error.map(str::to_owned),
        at: Timestamp(T0 + at),
        lease_until: Timestamp(T0 + at + 30_000),
        purged: 0,
    }
}

pub async fn streams_start_at_the_head_and_change_with_their_entries(store: &dyn Store) {
    let a = org(store, "acme").await;
    let b = org(store, "globex").await;
    append(
        store,
        &a,
        (0..5)
            .map(|i| new_entry(i, "a@x.io", "api_key.created", ("k", "1")))
            .collect(),
    )
    .await;
    change(store, &a, new_stream("st_1"), "stream.created").await.unwrap();
    let s = store.stream(a.id, "st_1").await.unwrap().expect("created");
    assert_eq!(s.settings, settings("st_1"), "settings round-trip");
    assert_eq!(s.state.cursor, 5, "starts after the entries already there");
    assert_eq!((s.state.revision, s.state.failing_since), (1, None));
    assert!(
        store.stream(b.id, "st_1").await.unwrap().is_none(),
        "other organizations see nothing"
    );
    assert!(store.streams(b.id).await.unwrap().is_empty());
    assert_eq!(
        rejected_code(change(store, &a, new_stream("st_1"), "stream.created").await),
        "conflict"
    );

    let mut new = settings("st_1");
    new.format = Format::Ocsf;
    new.destination.transport = Transport::SyslogTcp;
    new.tls.client_key = None;
    let keep = Change::UpdateStream {
        settings: Box::new(new.clone()),
        keep_tls_key: true,
    };
    change(store, &a, keep, "stream.updated").await.unwrap();
    let s = store.stream(a.id, "st_1").await.unwrap().unwrap();
    assert_eq!((s.settings.format, s.state.revision), (Format::Ocsf, 2));
    assert_eq!(
        s.settings.tls.client_key,
        Some(vec![1, 2, 3]),
        "the key is kept when asked"
    );
    let drop_key = Change::UpdateStream {
        settings: Box::new(new),
        keep_tls_key: false,
    };
    change(store, &a, drop_key, "stream.updated").await.unwrap();
    assert_eq!(
        store
            .stream(a.id, "st_1")
            .await
            .unwrap()
            .unwrap()
            .settings
            .tls
            .client_key,
        None
    );

    change(store, &a, Change::DeleteStream { id: "st_1".into() }, "stream.deleted")
        .await
        .unwrap();
    assert!(store.streams(a.id).await.unwrap().is_empty());
    let gone = change(store, &a, Change::DeleteStream { id: "st_1".into() }, "stream.deleted").await;
    assert_eq!(rejected_code(gone), "stale", "deleting what is gone is refused");
}

pub async fn one_holder_leases_a_stream_and_its_cursor_only_moves_forward(store: &dyn Store) {
    let a = org(store, "acme").await;
    change(store, &a, new_stream("st_1"), "stream.created").await.unwrap();
    let now = Timestamp(T0);
    let until = Timestamp(T0 + 30_000);
    let held = store.claim_streams("one", now, until, 10).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].org_id, held[0].stream.settings.id.as_str()), (a.id, "st_1"));
    assert!(
        store.claim_streams("two", now, until, 10).await.unwrap().is_empty(),
        "leased"
    );
    assert_eq!(
        store.claim_streams("one", now, until, 10).await.unwrap().len(),
        1,
        "renewed by its holder"
    );

    let rev = held[0].stream.state.revision;
    assert!(
        store
            .stream_progress(a.id, "st_1", "one", rev, progress(3, None, 10))
            .await
            .unwrap()
    );
    assert!(
        store
            .stream_progress(a.id, "st_1", "one", rev, progress(2, None, 20))
            .await
            .unwrap()
    );
    let s = store.stream(a.id, "st_1").await.unwrap().unwrap();
    assert_eq!(s.state.cursor, 3, "never moved back");
    assert_eq!(s.state.last_delivered_at, Some(Timestamp(T0 + 10)));
    assert_eq!(s.state.purged_unsent, 0);
    assert!(
        !store
            .stream_progress(a.id, "st_1", "two", rev, progress(9, None, 30))
            .await
            .unwrap(),
        "not two's"
    );

    // Entries found purged before they were sent add up, from the holder
    // only.
    for (holder, purged) in [("one", 5), ("one", 2), ("two", 100)] {
        let p = Progress {
            purged,
            ..progress(3, None, 25)
        };
        store.stream_progress(a.id, "st_1", holder, rev, p).await.unwrap();
    }
    let s = store.stream(a.id, "st_1").await.unwrap().unwrap();
    assert_eq!(s.state.purged_unsent, 7);

    // A change of settings stops the sender on the old ones.
    let update = Change::UpdateStream {
        settings: Box::new(settings("st_1")),
        keep_tls_key: true,
    };
    change(store, &a, update, "stream.updated").await.unwrap();
    assert!(
        !store
            .stream_progress(a.id, "st_1", "one", rev, progress(9, None, 40))
            .await
            .unwrap()
    );

    // Once the lease runs out, another holder takes the stream.
    let later = Timestamp(T0 + 10 * 60_000);
    let taken = store
        .claim_streams("two", later, Timestamp(later.millis() + 30_000), 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].stream.state.cursor, 3);
    store.release_stream(a.id, "st_1", "two").await.unwrap();
    assert_eq!(
        store.claim_streams("one", later, until, 10).await.unwrap().len(),
        1,
        "released"
    );

    // Disabled streams are not handed out.
    let mut off = settings("st_1");
    off.enabled = false;
    let disable = Change::UpdateStream {
        settings: Box::new(off),
        keep_tls_key: true,
    };
    change(store, &a, disable, "stream.updated").await.unwrap();
    let far = Timestamp(T0 + 60 * 60_000);
    assert!(
        store
            .claim_streams("three", far, Timestamp(far.millis() + 1), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn stream_health_follows_failures_and_progress(store: &dyn Store) {
    let a = org(store, "acme").await;
    change(store, &a, new_stream("st_1"), "stream.created").await.unwrap();
    let held = store
        .claim_streams("one", Timestamp(T0), Timestamp(T0 + 30_000), 10)
        .await
        .unwrap();
    let rev = held[0].stream.state.revision;
    let report = |p| store.stream_progress(a.id, "st_1", "one", rev, p);
    assert!(report(progress(0, Some("connection refused"), 100)).await.unwrap());
    assert!(report(progress(0, Some("handshake failed"), 200)).await.unwrap());
    let s = store.stream(a.id, "st_1").await.unwrap().unwrap();
    assert_eq!(
        s.state.failing_since,
        Some(Timestamp(T0 + 100)),
        "from the first failure"
    );
    assert_eq!(s.state.last_error.as_deref(), Some("handshake failed"));
    assert!(report(progress(0, None, 300)).await.unwrap());
    let s = store.stream(a.id, "st_1").await.unwrap().unwrap();
    assert_eq!(
        s.state.failing_since,
        Some(Timestamp(T0 + 100)),
        "a renewal alone is no progress"
    );
    assert!(report(progress(4, None, 400)).await.unwrap());
    let s = store.stream(a.id, "st_1").await.unwrap().unwrap();
    assert_eq!(
        (s.state.failing_since, s.state.last_error),
        (None, None),
        "progress clears it"
    );

    assert!(report(progress(4, Some("gone"), 500)).await.unwrap());
    let mut on = settings("st_1");
    on.enabled = false;
    let off = Change::UpdateStream {
        settings: Box::new(on.clone()),
        keep_tls_key: true,
    };
    change(store, &a, off, "stream.updated").await.unwrap();
    on.enabled = true;
    let back = Change::UpdateStream {
        settings: Box::new(on),
        keep_tls_key: true,
    };
    change(store, &a, back, "stream.updated").await.unwrap();
    let s = store.stream(a.id, "st_1").await.unwrap().unwrap();
    assert_eq!(s.state.failing_since, None, "re-enabling clears the failure");
}
