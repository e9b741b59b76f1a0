//! Realistic synthetic entries for the demo and the benchmark: a year in the
//! life of an organization, across every category of the catalog, with
//! varied people, keys, addresses, resources and details.

use std::net::IpAddr;

use auditlog_domain::catalog::RecordedBy;
use auditlog_domain::entry::{Actor, ActorType, Resource};
use auditlog_domain::{Catalog, NewEntry, Timestamp};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

#[derive(Clone, Copy)]
struct Person {
    email: &'static str,
    role: &'static str,
    ip: &'static str,
    agent: &'static str,
}

const PEOPLE: &[Person] = &[
    Person {
        email: "maria.gonzalez@acme.com",
        role: "owner",
        ip: "203.0.113.10",
        agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    },
    Person {
        email: "li.wei@acme.com",
        role: "admin",
        ip: "198.51.100.23",
        agent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    },
    Person {
        email: "sam.okafor@acme.com",
        role: "admin",
        ip: "2001:db8:85a3::8a2e:370:7334",
        agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    },
    Person {
        email: "priya.nair@acme.com",
        role: "member",
        ip: "203.0.113.77",
        agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    },
    Person {
        email: "jonas.berg@acme.com",
        role: "member",
        ip: "198.51.100.142",
        agent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/125.0 Safari/537.36",
    },
    Person {
        email: "amara.diallo@acme.com",
        role: "member",
        ip: "2001:db8:1f70::999:de8:7648:6e8",
        agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    },
    Person {
        email: "tomás.ruiz@acme.com",
        role: "viewer",
        ip: "203.0.113.201",
        agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    },
    Person {
        email: "yuki.tanaka@acme.com",
        role: "admin",
        ip: "198.51.100.7",
        agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    },
];

/// API keys that act on their own: CI pipelines and platform services.
const KEYS: &[(&str, &str, &str)] = &[
    ("lqt_ci7x2k9m", "198.51.100.200", "github-actions/2.317 lqt-cli/3.4.1"),
    ("lqt_tf4p8q2w", "203.0.113.150", "terraform-provider-lqt/1.8.0"),
    ("lqt_sdk3n5r8", "2001:db8:4::15", "lqt-python/2.11.0"),
];

const PROJECTS: &[(&str, &str)] = &[
    ("p_7f3k2m", "Production chatbot"),
    ("p_9x1q4n", "Support summariser"),
    ("p_2b8d6v", "Internal search"),
    ("p_5h7j3c", "Staging"),
    ("p_8w2e9r", "Eval sandbox"),
];

const GUARDRAILS: &[(&str, &str, &str)] = &[
    ("g_pii01", "PII redaction", "pii"),
    ("g_tox02", "Toxicity filter", "toxicity"),
    ("g_jbk03", "Jailbreak detector", "prompt_injection"),
    ("g_top04", "Off-topic blocker", "topic"),
];

const ALERTS: &[(&str, &str, &str, f64)] = &[
    ("al_lat1", "p95 latency above 2 s", "latency_p95_ms > 2000", 2000.0),
    ("al_err2", "Error rate above 5%", "error_rate > 0.05", 0.05),
    ("al_cost3", "Daily spend above $500", "daily_cost_usd > 500", 500.0),
    ("al_tok4", "Token usage spike", "tokens_per_min > 200000", 200_000.0),
];

const PROMPTS: &[(&str, &str)] = &[
    ("pr_greet", "greeting"),
    ("pr_summ", "summarise-ticket"),
    ("pr_route", "intent-router"),
];
const TEMPLATES: &[(&str, &str)] = &[
    ("et_faith", "Faithfulness"),
    ("et_rel", "Answer relevance"),
    ("et_tone", "Tone check"),
];
const WEBHOOKS: &[(&str, &str)] = &[
    ("wh_siem", "https://siem.acme.com/ingest/lqt"),
    ("wh_slack", "https://hooks.slack.com/services/T000/B000/XXXX"),
];
const PLANS: &[&str] = &["team", "scale", "enterprise"];
const ROLES: &[&str] = &["viewer", "member", "admin"];

/// Event names and how often each happens, relative to one another.
const WEIGHTS: &[(&str, u32)] = &[
    ("organization.renamed", 1),
    ("organization.sso_configured", 1),
    ("organization.member_added", 6),
    ("organization.member_removed", 3),
    ("organization.member_role_changed", 5),
    ("project.created", 6),
    ("project.deleted", 2),
    ("project.renamed", 3),
    ("api_key.created", 8),
    ("api_key.revoked", 5),
    ("api_key.last_used_updated", 60),
    ("guardrail.created", 5),
    ("guardrail.updated", 14),
    ("guardrail.enabled", 6),
    ("guardrail.disabled", 5),
    ("guardrail.deleted", 2),
    ("alert.created", 5),
    ("alert.updated", 8),
    ("alert.triggered", 45),
    ("alert.deleted", 2),
    ("billing.plan_upgraded", 1),
    ("billing.plan_downgraded", 1),
    ("billing.payment_method_changed", 1),
    ("data_export.requested", 4),
    ("data_export.downloaded", 4),
    ("evaluation.template_created", 5),
    ("evaluation.template_deleted", 2),
    ("prompt.version_published", 25),
    ("prompt.version_rolled_back", 3),
    ("webhook.created", 2),
    ("webhook.updated", 2),
    ("webhook.deleted", 1),
    ("webhook.disabled", 1),
    ("webhook.secret_rotated", 1),
    ("audit_log.retention_purged", 1),
];

/// Catalogued events the generator leaves out: the organization's own
/// creation happens once, when it is made (the demo's `create_org` records
/// it), and invitations and password resets came to the catalog after this
/// mix was set, as did single sign-on's sign-in events and SIEM streams
/// (left out so the seeded logs stay the ones measured before them).
#[cfg(test)]
const NOT_GENERATED: &[&str] = &[
    "organization.created",
    "organization.member_invited",
    "organization.member_password_reset",
    "organization.member_password_changed",
    "audit_log.viewed",
    "organization.member_provisioned",
    "session.signed_in",
    "session.sign_in_failed",
    "session.signed_out",
    "session.ended",
    "webhook.replayed",
    "webhook.redelivered",
    "stream.created",
    "stream.updated",
    "stream.deleted",
    "audit_log.subject_erased",
];

struct Who {
    actor: Actor,
    ip: IpAddr,
    agent: &'static str,
}

fn person(rng: &mut StdRng, admins_only: bool) -> Who {
    let pool: Vec<&Person> = PEOPLE
        .iter()
        .filter(|p| !admins_only || p.role == "owner" || p.role == "admin")
        .collect();
    let p = pool.choose(rng).copied().unwrap_or(&PEOPLE[0]);
    Who {
        actor: Actor {
            kind: ActorType::User,
            id: p.email.into(),
        },
        ip: p.ip.parse().unwrap_or(IpAddr::from([127, 0, 0, 1])),
        agent: p.agent,
    }
}

fn key(rng: &mut StdRng) -> Who {
    let (prefix, ip, agent) = KEYS.choose(rng).copied().unwrap_or(KEYS[0]);
    Who {
        actor: Actor::api_key(prefix),
        ip: ip.parse().unwrap_or(IpAddr::from([127, 0, 0, 1])),
        agent,
    }
}

fn system() -> Who {
    Who {
        actor: Actor::system(),
        ip: IpAddr::from([10, 0, 0, 5]),
        agent: "auditlog",
    }
}

fn res(kind: &str, id: &str, name: Option<&str>) -> Resource {
    Resource {
        kind: kind.into(),
        id: id.into(),
        name: name.map(str::to_owned),
    }
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

/// What one entry says: who did it, to what, with which details.
type Shape = (Who, Resource, Value);

/// Who did it, to what, with which details: one function per category of
/// the catalog, each drawing from `rng` in a fixed order, so a seed gives
/// the same year every time.
fn shape(event: &str, rng: &mut StdRng, ts: Timestamp) -> Shape {
    let category = event.split_once('.').map_or(event, |(category, _)| category);
    match category {
        "organization" => organization_shape(event, rng),
        "project" => project_shape(event, rng),
        "api_key" => api_key_shape(event, rng, ts),
        "guardrail" => guardrail_shape(event, rng),
        "alert" => alert_shape(event, rng),
        "billing" => billing_shape(event, rng),
        "data_export" => data_export_shape(event, rng),
        "evaluation" => evaluation_shape(event, rng),
        "prompt" => prompt_shape(event, rng),
        "webhook" => webhook_shape(event, rng),
        "audit_log" => audit_log_shape(event, rng, ts),
        _ => unknown(),
    }
}

/// An event outside the mix: the system, on nothing.
fn unknown() -> Shape {
    (system(), res("unknown", "unknown", None), json!({}))
}

/// A person four times in five, else a key.
fn human_or_key(rng: &mut StdRng) -> Who {
    if rng.random_bool(0.8) {
        person(rng, false)
    } else {
        key(rng)
    }
}

/// Renames, SSO, members and their roles, by an owner or admin.
fn organization_shape(event: &str, rng: &mut StdRng) -> Shape {
    match event {
        "organization.renamed" => {
            let names = ["Acme", "Acme Inc.", "Acme Corporation"];
            let old = pick(rng, &names);
            let new = pick(rng, &names);
            (
                person(rng, true),
                res("organization", "acme", Some(new)),
                json!({"old_name": old, "new_name": new}),
            )
        }
        "organization.sso_configured" => (
            person(rng, true),
            res("organization", "acme", Some("Acme")),
            json!({"issuer": "https://login.acme.com/oauth2/default", "client_id": "0oa8f2k1", "enforced": rng.random_bool(0.5)}),
        ),
        "organization.member_added" | "organization.member_removed" => {
            let m = pick(rng, PEOPLE);
            (
                person(rng, true),
                res("member", m.email, None),
                json!({"member": m.email, "role": m.role}),
            )
        }
        "organization.member_role_changed" => {
            let m = pick(rng, PEOPLE);
            let old = pick(rng, ROLES);
            // A change changes something.
            let others: Vec<_> = ROLES.iter().copied().filter(|r| *r != old).collect();
            let new = pick(rng, &others);
            (
                person(rng, true),
                res("member", m.email, None),
                json!({"member": m.email, "old_role": old, "new_role": new}),
            )
        }
        _ => unknown(),
    }
}

/// Projects, by a person or a key.
fn project_shape(event: &str, rng: &mut StdRng) -> Shape {
    match event {
        "project.created" | "project.deleted" => {
            let (id, name) = pick(rng, PROJECTS);
            (human_or_key(rng), res("project", id, Some(name)), json!({"name": name}))
        }
        "project.renamed" => {
            let (id, name) = pick(rng, PROJECTS);
            (
                person(rng, false),
                res("project", id, Some(name)),
                json!({"old_name": format!("{name} (old)"), "new_name": name}),
            )
        }
        _ => unknown(),
    }
}

/// Keys made and revoked by an owner or admin, and their last use.
fn api_key_shape(event: &str, rng: &mut StdRng, ts: Timestamp) -> Shape {
    match event {
        "api_key.created" | "api_key.revoked" => {
            let prefix = format!("lqt_{:08x}", rng.random::<u32>());
            let scopes = pick(
                rng,
                &[
                    &["audit:write"][..],
                    &["audit:read"],
                    &["audit:write", "audit:read"],
                    &["admin"],
                ],
            );
            let name = pick(rng, &["ci", "terraform", "backend", "notebook", "siem-reader"]);
            (
                person(rng, true),
                res("api_key", &prefix, Some(name)),
                json!({"prefix": prefix, "name": name, "scopes": scopes}),
            )
        }
        "api_key.last_used_updated" => {
            let (prefix, _, _) = pick(rng, KEYS);
            (
                system(),
                res("api_key", prefix, None),
                json!({"prefix": prefix, "last_used_at": ts}),
            )
        }
        _ => unknown(),
    }
}

/// Guardrails, by a person or a key.
fn guardrail_shape(event: &str, rng: &mut StdRng) -> Shape {
    match event {
        "guardrail.created" | "guardrail.updated" | "guardrail.enabled" | "guardrail.disabled"
        | "guardrail.deleted" => {
            let (id, name, kind) = pick(rng, GUARDRAILS);
            let details = match event {
                "guardrail.created" => json!({"name": name, "type": kind, "project": pick(rng, PROJECTS).0}),
                "guardrail.updated" => {
                    let old = rng.random_range(50..90);
                    json!({"name": name, "changes": {"threshold": {"old": old as f64 / 100.0, "new": (old + 5) as f64 / 100.0}}})
                }
                _ => json!({"name": name}),
            };
            (human_or_key(rng), res("guardrail", id, Some(name)), details)
        }
        _ => unknown(),
    }
}

/// Alerts set by people, and triggered by the system.
fn alert_shape(event: &str, rng: &mut StdRng) -> Shape {
    match event {
        "alert.created" | "alert.updated" | "alert.deleted" => {
            let (id, name, cond, _) = pick(rng, ALERTS);
            let details = match event {
                "alert.created" => json!({"name": name, "condition": cond, "channel": "#oncall-llm"}),
                "alert.updated" => {
                    json!({"name": name, "changes": {"channel": {"old": "#oncall", "new": "#oncall-llm"}}})
                }
                _ => json!({"name": name}),
            };
            (person(rng, false), res("alert", id, Some(name)), details)
        }
        "alert.triggered" => {
            let (id, name, _, threshold) = pick(rng, ALERTS);
            let value = threshold * (1.0 + rng.random_range(1..80) as f64 / 100.0);
            (
                system(),
                res("alert", id, Some(name)),
                json!({"name": name, "value": (value * 100.0).round() / 100.0, "threshold": threshold, "project": pick(rng, PROJECTS).0}),
            )
        }
        _ => unknown(),
    }
}

/// The plan and the payment method, by an owner or admin.
fn billing_shape(event: &str, rng: &mut StdRng) -> Shape {
    match event {
        "billing.plan_upgraded" => (
            person(rng, true),
            res("organization", "acme", Some("Acme")),
            json!({"old_plan": "team", "new_plan": "scale"}),
        ),
        "billing.plan_downgraded" => (
            person(rng, true),
            res("organization", "acme", Some("Acme")),
            json!({"old_plan": pick(rng, &PLANS[1..]), "new_plan": "team"}),
        ),
        "billing.payment_method_changed" => (
            person(rng, true),
            res(
                "payment_method",
                &format!("pm_{:06x}", rng.random::<u32>() & 0xff_ffff),
                None,
            ),
            json!({"method": format!("card ending {:04}", rng.random_range(1000..9999))}),
        ),
        _ => unknown(),
    }
}

/// Exports requested and downloaded by an owner or admin.
fn data_export_shape(event: &str, rng: &mut StdRng) -> Shape {
    match event {
        "data_export.requested" | "data_export.downloaded" => {
            let id = format!("exp_{:08x}", rng.random::<u32>());
            let details = if event == "data_export.requested" {
                json!({"format": "csv", "filters": {"event": ["api_key.*"]}})
            } else {
                json!({"format": "csv", "rows": rng.random_range(10..5000), "bytes": rng.random_range(2_000..900_000)})
            };
            (person(rng, true), res("data_export", &id, None), details)
        }
        _ => unknown(),
    }
}

/// Evaluation templates, by a person or a key.
fn evaluation_shape(event: &str, rng: &mut StdRng) -> Shape {
    match event {
        "evaluation.template_created" | "evaluation.template_deleted" => {
            let (id, name) = pick(rng, TEMPLATES);
            (
                human_or_key(rng),
                res("evaluation_template", id, Some(name)),
                json!({"name": name}),
            )
        }
        _ => unknown(),
    }
}

/// Prompt versions published and rolled back.
fn prompt_shape(event: &str, rng: &mut StdRng) -> Shape {
    match event {
        "prompt.version_published" => {
            let (id, name) = pick(rng, PROMPTS);
            (
                human_or_key(rng),
                res("prompt", id, Some(name)),
                json!({"prompt": name, "version": rng.random_range(2..60), "commit_message": "Tighten instructions"}),
            )
        }
        "prompt.version_rolled_back" => {
            let (id, name) = pick(rng, PROMPTS);
            let from = rng.random_range(3..60);
            (
                person(rng, false),
                res("prompt", id, Some(name)),
                json!({"prompt": name, "from_version": from, "to_version": from - 1}),
            )
        }
        _ => unknown(),
    }
}

/// Webhooks, by an owner or admin.
fn webhook_shape(event: &str, rng: &mut StdRng) -> Shape {
    match event {
        "webhook.created" | "webhook.updated" | "webhook.deleted" | "webhook.disabled" | "webhook.secret_rotated" => {
            let (id, url) = pick(rng, WEBHOOKS);
            let details = match event {
                "webhook.created" => json!({"url": url, "events": ["*"]}),
                "webhook.updated" => {
                    json!({"url": url, "changes": {"events": {"old": ["*"], "new": ["api_key.*", "organization.*"]}}})
                }
                "webhook.disabled" => json!({"url": url, "reason": "failing continuously for 5 days"}),
                _ => json!({"url": url}),
            };
            (person(rng, true), res("webhook", id, None), details)
        }
        _ => unknown(),
    }
}

/// Retention purges, by the system.
fn audit_log_shape(event: &str, rng: &mut StdRng, ts: Timestamp) -> Shape {
    match event {
        "audit_log.retention_purged" => {
            let count = rng.random_range(100..5000);
            let first = rng.random_range(1..100_000);
            (
                system(),
                res("audit_log", "acme", None),
                json!({"cutoff": ts.minus_days(365), "first_seq": first, "last_seq": first + count - 1, "count": count}),
            )
        }
        _ => unknown(),
    }
}

/// `n` entries spread over `[start, end)`, sorted by time: the whole mix,
/// the service's own events included, as a store holds them (the demo
/// writes these straight into its store).
pub fn entries(n: usize, start: Timestamp, end: Timestamp, seed: u64) -> Vec<NewEntry> {
    generate(n, start, end, seed, WEIGHTS)
}

/// The service that fires alerts, in [`ingestible_entries`]; `system` is
/// auditlog itself.
const ALERTING: &str = "alerting-service";

/// `n` entries a producer may send to ingest, spread over `[start, end)`,
/// sorted by time: the catalog's `recorded_by = "ingest"` events in their
/// usual proportions, none by the `system` actor (a fired alert is the
/// alerting service's). For the benchmarks that post entries over HTTP,
/// where the service's own events are refused with `reserved_event`.
pub fn ingestible_entries(n: usize, start: Timestamp, end: Timestamp, seed: u64) -> Vec<NewEntry> {
    let catalog = Catalog::builtin();
    let weights: Vec<(&str, u32)> = WEIGHTS
        .iter()
        .copied()
        .filter(|(e, _)| {
            catalog
                .get(e)
                .is_some_and(|spec| spec.recorded_by == RecordedBy::Ingest)
        })
        .collect();
    let mut out = generate(n, start, end, seed, &weights);
    for e in out.iter_mut().filter(|e| e.actor.kind == ActorType::System) {
        e.actor = Actor {
            kind: ActorType::Service,
            id: ALERTING.into(),
        };
        e.submitted_by = submitter_of(&e.actor);
    }
    out
}

fn generate(n: usize, start: Timestamp, end: Timestamp, seed: u64, weights: &[(&str, u32)]) -> Vec<NewEntry> {
    let mut rng = StdRng::seed_from_u64(seed);
    let total: u32 = weights.iter().map(|(_, w)| w).sum();
    let span = (end.millis() - start.millis()).max(1);
    let mut times: Vec<i64> = (0..n).map(|_| start.millis() + rng.random_range(0..span)).collect();
    times.sort_unstable();
    times
        .into_iter()
        .map(|t| {
            let mut roll = rng.random_range(0..total);
            let event = weights
                .iter()
                .find(|(_, w)| {
                    if roll < *w {
                        true
                    } else {
                        roll -= w;
                        false
                    }
                })
                .map(|(e, _)| *e)
                .unwrap_or("alert.triggered");
            let ts = Timestamp(t);
            let (who, resource, details) = shape(event, &mut rng, ts);
            NewEntry {
                timestamp: ts,
                submitted_by: submitter_of(&who.actor),
                actor: who.actor,
                event: event.into(),
                resource,
                details: details.as_object().cloned().unwrap_or_default(),
                ip_address: Some(who.ip),
                user_agent: Some(who.agent.into()),
                request_id: Some(uuid::Uuid::from_u128(rng.random()).to_string()),
                idempotency_key: None,
            }
        })
        .collect()
}

/// Who would have submitted a seeded entry: a person through the web UI,
/// a key through ingest, the service for its own work.
fn submitter_of(actor: &auditlog_domain::Actor) -> auditlog_domain::SubmittedBy {
    use auditlog_domain::{ActorType, SubmittedBy, SubmitterKind};
    match actor.kind {
        ActorType::User => SubmittedBy::new(SubmitterKind::Session, actor.id.as_str()),
        ActorType::ApiKey => SubmittedBy::new(SubmitterKind::ApiKey, actor.id.as_str()),
        ActorType::System | ActorType::Service => SubmittedBy::service(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_domain::Catalog;
    use std::collections::HashSet;

    #[test]
    fn weights_cover_exactly_the_catalog() {
        let catalog = Catalog::builtin();
        let weighted: HashSet<_> = WEIGHTS.iter().map(|(e, _)| *e).collect();
        let left_out: HashSet<_> = NOT_GENERATED.iter().copied().collect();
        assert!(weighted.is_disjoint(&left_out));
        let catalogued: HashSet<_> = catalog.events().map(|e| e.name.as_str()).collect();
        assert_eq!(&weighted | &left_out, catalogued);
    }

    #[test]
    fn every_generated_entry_is_valid_and_every_category_appears() {
        let catalog = Catalog::builtin();
        let start = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        let end = Timestamp::parse("2026-12-31T00:00:00Z").unwrap();
        let got = entries(5000, start, end, 42);
        assert_eq!(got.len(), 5000);
        let mut categories = HashSet::new();
        for e in &got {
            let spec = catalog.get(&e.event).expect("catalogued event");
            for k in &spec.required_details {
                assert!(e.details.contains_key(k), "{} lacks {k}", e.event);
            }
            assert!(e.timestamp >= start && e.timestamp < end);
            categories.insert(spec.category.clone());
        }
        // Every category but sign-ins and streams, which the generator
        // leaves out.
        assert_eq!(
            categories.len(),
            catalog
                .categories()
                .filter(|c| c.name != "session" && c.name != "stream")
                .count()
        );
        assert!(
            got.windows(2).all(|w| w[0].timestamp <= w[1].timestamp),
            "sorted by time"
        );
    }

    #[test]
    fn ingestible_entries_pass_ingest_as_the_benchmarks_send_them() {
        use auditlog_domain::ingest::{IngestContext, validate_body};
        use auditlog_domain::{SubmittedBy, SubmitterKind};
        let catalog = Catalog::builtin();
        let now = Timestamp::parse("2026-12-31T00:00:00Z").unwrap();
        let got = ingestible_entries(3000, now.minus_days(364), now.plus_millis(-60_000), 42);
        assert_eq!(got.len(), 3000);
        let ctx = IngestContext {
            catalog: &catalog,
            now,
            retention_days: 365,
            default_actor: Actor::api_key("lqt_bench000"),
            default_ip: None,
            default_request_id: None,
            submitted_by: SubmittedBy::new(SubmitterKind::ApiKey, "lqt_bench000"),
        };
        let events: Vec<Value> = got.iter().map(crate::harness::event_json).collect();
        for batch in events.chunks(1000) {
            if let Err(problems) = validate_body(&json!({ "events": batch }), &ctx) {
                panic!("refused: {:?}", &problems[..problems.len().min(3)]);
            }
        }
        let categories: HashSet<_> = got
            .iter()
            .map(|e| catalog.get(&e.event).unwrap().category.clone())
            .collect();
        assert!(categories.len() >= 4, "several categories: {categories:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_year() {
        let s = Timestamp(0);
        let e = Timestamp(86_400_000);
        assert_eq!(entries(50, s, e, 7), entries(50, s, e, 7));
    }
}
