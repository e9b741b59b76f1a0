//! Property tests of everything that parses what clients send: ingest
//! bodies, listing parameters, the query language, cursors, and the CSV
//! writer that must carry any recorded text out intact. Whatever the input,
//! nothing panics, every refusal names at least one problem (which the
//! server turns into a 4xx), and what is accepted round-trips.

use auditlog_domain::csv_row::{COLUMNS, CsvEncoder};
use auditlog_domain::cursor::Cursor;
use auditlog_domain::filter::parse_listing;
use auditlog_domain::ingest::{IngestContext, validate_body};
use auditlog_domain::query_language::parse_with_spans;
use auditlog_domain::{Actor, ActorType, Catalog, Entry, OrgId, Resource, Timestamp};
use proptest::prelude::*;
use serde_json::{Value, json};

const NOW: i64 = 1_790_000_000_000;

/// Keys an ingest body uses, and some it does not.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "event",
            "events",
            "actor",
            "type",
            "id",
            "name",
            "resource",
            "details",
            "timestamp",
            "occurred_at",
            "ip_address",
            "ip",
            "user_agent",
            "request_id",
            "idempotency_key",
        ])
        .prop_map(String::from),
        "[a-z_]{0,12}",
    ]
}

/// JSON of any shape, leaning towards values an ingest body holds.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop::sample::select(vec![
            "project.created",
            "api_key.*",
            "",
            "ada@acme.com",
            "user",
            "api_key",
            "system",
            "2026-01-31T12:00:00Z",
            "1999-01-01T00:00:00Z",
            "203.0.113.7",
            "::ffff:10.0.0.1",
            "not an ip",
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,60}", "[=+@'\\t\\r\\n\",; -]{0,6}[a-z]{0,6}"]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ingest_bodies_are_accepted_or_refused_with_problems(body in json_value()) {
        let catalog = Catalog::builtin();
        let ctx = IngestContext {
            catalog: &catalog,
            now: Timestamp(NOW),
            retention_days: 90,
            default_actor: Actor::api_key("lqt_abcd1234"),
            default_ip: None,
            default_request_id: None,
            submitted_by: auditlog_domain::SubmittedBy::new(auditlog_domain::SubmitterKind::ApiKey, "lqt_abcd1234"),
        };
        if let Err(problems) = validate_body(&body, &ctx) {
            prop_assert!(!problems.is_empty());
        }
    }

    #[test]
    fn listing_parameters_are_accepted_or_refused_with_problems(
        pairs in prop::collection::vec((
            prop_oneof![
                prop::sample::select(vec![
                    "actor", "event", "resource_type", "resource_id", "from", "to", "limit",
                    "cursor", "q", "after_seq",
                ]).prop_map(String::from),
                "[a-z_]{0,10}",
            ],
            text(),
        ), 0..6)
    ) {
        let catalog = Catalog::builtin();
        if let Err(problems) = parse_listing(&pairs, &catalog, &[]) {
            prop_assert!(!problems.is_empty());
        }
    }

    #[test]
    fn the_query_language_points_inside_what_it_was_given(
        input in prop_oneof![
            ".{0,120}",
            prop::collection::vec(prop_oneof![
                "(actor|event|resource|after|before|bogus):",
                "\"[^\"]{0,10}\"?",
                "[a-z._*@:-]{0,12}",
                Just(" ".to_string()),
            ], 0..8).prop_map(|parts| parts.concat()),
        ]
    ) {
        if let Err(e) = parse_with_spans(&input) {
            prop_assert!(e.span.start + e.span.len <= input.chars().count(), "{:?} in {:?}", e, input);
        }
    }

    #[test]
    /// Sequence numbers start at 1, so only cursors after one are issued.
    fn cursors_decode_only_what_was_encoded(
        garbage in ".{0,80}",
        ms in 0i64..4_102_444_800_000,
        seq in 1..i64::MAX,
    ) {
        let _ = Cursor::decode(&garbage);
        let c = Cursor { timestamp: Timestamp(ms), seq };
        prop_assert_eq!(Cursor::decode(&c.encode()), Ok(c));
    }

    #[test]
    fn csv_rows_carry_any_text_out_and_back(
        actor in text(), event in text(), kind in text(), id in text(), name in text(), agent in text(),
    ) {
        let entry = Entry {
            id: uuid::Uuid::nil(),
            org_id: OrgId(1),
            seq: 7,
            timestamp: Timestamp(NOW),
            received_at: Timestamp(NOW),
            actor: Actor { kind: ActorType::User, id: actor.clone() },
            event: event.clone(),
            resource: Resource { kind: kind.clone(), id: id.clone(), name: Some(name.clone()) },
            details: serde_json::Map::new(),
            ip_address: None,
            user_agent: Some(agent.clone()),
            request_id: None,
            idempotency_key: None,
            submitted_by: None,
            canonical_version: 1,
            personal: Default::default(),
        };
        let mut csv = CsvEncoder::new();
        csv.row(&entry);
        let bytes = csv.take();
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(bytes.as_slice());
        let records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(records.len(), 1);
        let row = &records[0];
        prop_assert_eq!(row.len(), COLUMNS.len());
        // The documented way back: drop one leading quote where there is one.
        let back = |cell: &str| cell.strip_prefix('\'').unwrap_or(cell).to_owned();
        for (column, original) in [(4, &actor), (5, &event), (6, &kind), (7, &id), (8, &name), (11, &agent)] {
            prop_assert_eq!(&back(&row[column]), original, "column {}", COLUMNS[column]);
            let first = row[column].chars().next();
            prop_assert!(
                !matches!(first, Some('=' | '+' | '-' | '@' | '\t' | '\r')),
                "a formula got through"
            );
        }
    }
}
