//! The authorization matrix: every endpoint, called by every kind of caller,
//! answers exactly the expected status, and no answer ever carries another
//! organization's data. Removing any single permission check changes at
//! least one cell.

use auditlog_domain::Role;
use auditlog_domain::api_key::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Browser, TestApp, event, key, person, spawn_app};

#[derive(Clone)]
enum Caller {
    Session(Browser),
    Key(String),
    Anonymous,
}

const CALLERS: [&str; 10] = [
    "owner",
    "admin",
    "member",
    "viewer",
    "key:write",
    "key:read",
    "key:admin",
    "other-org session",
    "other-org key",
    "anonymous",
];

struct Fixture {
    app: TestApp,
    callers: Vec<Caller>,
    entry_id: String,
    project_id: String,
    counter: std::sync::atomic::AtomicUsize,
}

impl Fixture {
    fn next(&self) -> usize {
        self.counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    async fn call(&self, caller: &Caller, method: Method, path: &str, body: Option<Value>) -> (u16, String) {
        let mut req = match caller {
            Caller::Session(b) => self.app.as_browser(b, method, path),
            Caller::Key(k) => self.app.client.request(method, self.app.url(path)).bearer_auth(k),
            Caller::Anonymous => self.app.client.request(method, self.app.url(path)),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

async fn fixture() -> Fixture {
    let app = spawn_app().await;
    let store = app.store.as_ref();
    for (email, role) in [
        ("olivia@acme.com", Role::Owner),
        ("adam@acme.com", Role::Admin),
        ("mia@acme.com", Role::Member),
        ("vic@acme.com", Role::Viewer),
        ("target@acme.com", Role::Viewer),
    ] {
        person(store, &app.acme, email, role).await;
    }
    person(store, &app.globex, "gus@globex.com", Role::Owner).await;
    let mut callers = Vec::new();
    for email in ["olivia@acme.com", "adam@acme.com", "mia@acme.com", "vic@acme.com"] {
        callers.push(Caller::Session(app.login(email).await));
    }
    callers.push(Caller::Key(key(store, &app.acme, vec![Scope::AuditWrite]).await));
    callers.push(Caller::Key(key(store, &app.acme, vec![Scope::AuditRead]).await));
    callers.push(Caller::Key(key(store, &app.acme, vec![Scope::Admin]).await));
    callers.push(Caller::Session(app.login("gus@globex.com").await));
    callers.push(Caller::Key(app.keys.other_org.clone()));
    callers.push(Caller::Anonymous);

    // Data in both organizations; globex's is marked so a leak shows.
    let acks = app
        .ingest(event("olivia@acme.com", "guardrail.created", ("guardrail", "g_acme")))
        .await;
    let globex = app
        .client
        .post(app.url("/v1/orgs/globex/audit/events"))
        .bearer_auth(&app.keys.other_org)
        .json(&event(
            "spy@globex.com",
            "guardrail.created",
            ("guardrail", "globex-secret"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(globex.status(), 201);
    let gus = app.login("gus@globex.com").await;
    let resp = app
        .as_browser(&gus, Method::POST, "/v1/orgs/globex/projects")
        .json(&json!({"name": "globex secret project"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let owner = match &callers[0] {
        Caller::Session(b) => b.clone(),
        _ => unreachable!(),
    };
    let resp = app
        .as_browser(&owner, Method::POST, "/v1/orgs/acme/projects")
        .json(&json!({"name": "Prod"}))
        .send()
        .await
        .unwrap();
    let project: Value = resp.json().await.unwrap();
    Fixture {
        entry_id: acks[0]["id"].as_str().unwrap().to_owned(),
        project_id: project["id"].as_str().unwrap().to_owned(),
        app,
        callers,
        counter: Default::default(),
    }
}

/// Something a test can destroy, made fresh for each call.
async fn fresh_member(f: &Fixture) -> String {
    let email = format!("doomed{}@acme.com", f.next());
    person(f.app.store.as_ref(), &f.app.acme, &email, Role::Viewer).await;
    email
}

async fn fresh_key(f: &Fixture) -> String {
    key(f.app.store.as_ref(), &f.app.acme, vec![Scope::AuditWrite]).await[..12].to_owned()
}

async fn fresh_project(f: &Fixture) -> String {
    let id = format!("p_doomed{}", f.next());
    let req = auditlog_domain::store::AppendRequest {
        org_id: f.app.acme.id,
        changes: vec![auditlog_domain::change::Change::CreateProject(
            auditlog_domain::member::Project {
                id: id.clone(),
                name: "doomed".into(),
                created_at: auditlog_domain::Timestamp(0),
            },
        )],
        entries: vec![],
    };
    f.app
        .store
        .append(vec![req], auditlog_domain::Timestamp(0))
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    id
}

#[tokio::test]
async fn every_endpoint_by_every_caller() {
    let f = fixture().await;
    let e = f.entry_id.clone();
    let p = f.project_id.clone();
    // owner, admin, member, viewer, key:write, key:read, key:admin, other session, other key, anonymous
    let reads_log = [200, 200, 403, 403, 403, 200, 403, 403, 403, 401];
    let views = [200, 200, 200, 200, 403, 403, 200, 403, 403, 401];
    let admins = [200, 200, 403, 403, 403, 403, 200, 403, 403, 401];
    let members = [200, 200, 200, 403, 403, 403, 200, 403, 403, 401];
    let created = |row: [u16; 10]| row.map(|s| if s == 200 { 201 } else { s });
    let deleted = |row: [u16; 10]| row.map(|s| if s == 200 { 204 } else { s });

    let mut failures = Vec::new();
    let mut check = |name: &str, i: usize, want: u16, got: (u16, String)| {
        if got.0 != want {
            let body: String = got.1.chars().take(300).collect();
            failures.push(format!("{name} as {}: want {want}, got {} {body}", CALLERS[i], got.0));
        }
        if got.1.contains("globex") {
            failures.push(format!(
                "{name} as {}: another organization's data leaked: {}",
                CALLERS[i], got.1
            ));
        }
    };

    for (i, caller) in f.callers.iter().enumerate() {
        let ev = event("x@acme.com", "guardrail.created", ("guardrail", "g"));
        check(
            "ingest",
            i,
            [403, 403, 403, 403, 201, 403, 403, 403, 403, 401][i],
            f.call(caller, Method::POST, "/v1/orgs/acme/audit/events", Some(ev))
                .await,
        );
        check(
            "query",
            i,
            reads_log[i],
            f.call(caller, Method::GET, "/v1/orgs/acme/audit/events", None).await,
        );
        check(
            "entry",
            i,
            reads_log[i],
            f.call(caller, Method::GET, &format!("/v1/orgs/acme/audit/events/{e}"), None)
                .await,
        );
        check(
            "export",
            i,
            reads_log[i],
            f.call(caller, Method::GET, "/v1/orgs/acme/audit/export", None).await,
        );
        for (name, path) in [
            ("checkpoint", "/v1/orgs/acme/audit/checkpoint"),
            ("inclusion proof", "/v1/orgs/acme/audit/proofs/inclusion?seq=1"),
            (
                "consistency proof",
                "/v1/orgs/acme/audit/proofs/consistency?from=1&to=1",
            ),
        ] {
            check(name, i, reads_log[i], f.call(caller, Method::GET, path, None).await);
        }
        check(
            "get org",
            i,
            views[i],
            f.call(caller, Method::GET, "/v1/orgs/acme", None).await,
        );
        check(
            "rename org",
            i,
            admins[i],
            f.call(
                caller,
                Method::PATCH,
                "/v1/orgs/acme",
                Some(json!({"name": format!("Acme {i}")})),
            )
            .await,
        );
        check(
            "change plan",
            i,
            [200, 403, 403, 403, 403, 403, 403, 403, 403, 401][i],
            f.call(caller, Method::PATCH, "/v1/orgs/acme", Some(json!({"plan": "team"})))
                .await,
        );
        check(
            "list members",
            i,
            views[i],
            f.call(caller, Method::GET, "/v1/orgs/acme/members", None).await,
        );
        let new_member = json!({"email": format!("new{i}@acme.com"), "role": "viewer"});
        check(
            "add member",
            i,
            created(admins)[i],
            f.call(caller, Method::POST, "/v1/orgs/acme/members", Some(new_member))
                .await,
        );
        check(
            "add owner",
            i,
            [201, 403, 403, 403, 403, 403, 403, 403, 403, 401][i],
            f.call(
                caller,
                Method::POST,
                "/v1/orgs/acme/members",
                Some(json!({"email": format!("owner{i}@acme.com"), "role": "owner"})),
            )
            .await,
        );
        check(
            "change role",
            i,
            admins[i],
            f.call(
                caller,
                Method::PATCH,
                "/v1/orgs/acme/members/target@acme.com",
                Some(json!({"role": "viewer"})),
            )
            .await,
        );
        let doomed = fresh_member(&f).await;
        check(
            "remove member",
            i,
            deleted(admins)[i],
            f.call(caller, Method::DELETE, &format!("/v1/orgs/acme/members/{doomed}"), None)
                .await,
        );
        let reset = fresh_member(&f).await;
        check(
            "force a password reset",
            i,
            [201, 403, 403, 403, 403, 403, 403, 403, 403, 401][i],
            f.call(
                caller,
                Method::POST,
                &format!("/v1/orgs/acme/members/{reset}/password-reset"),
                None,
            )
            .await,
        );
        check(
            "list keys",
            i,
            members[i],
            f.call(caller, Method::GET, "/v1/orgs/acme/api-keys", None).await,
        );
        // A key gives only scopes it holds: the admin key holds neither
        // audit:write nor audit:read.
        let mints = [201, 201, 201, 403, 403, 403, 403, 403, 403, 401];
        check(
            "create write key",
            i,
            mints[i],
            f.call(
                caller,
                Method::POST,
                "/v1/orgs/acme/api-keys",
                Some(json!({"name": "w", "scopes": ["audit:write"]})),
            )
            .await,
        );
        check(
            "create read key",
            i,
            [201, 201, 403, 403, 403, 403, 403, 403, 403, 401][i],
            f.call(
                caller,
                Method::POST,
                "/v1/orgs/acme/api-keys",
                Some(json!({"name": "r", "scopes": ["audit:read"]})),
            )
            .await,
        );
        check(
            "create admin key",
            i,
            created(admins)[i],
            f.call(
                caller,
                Method::POST,
                "/v1/orgs/acme/api-keys",
                Some(json!({"name": "a", "scopes": ["admin"]})),
            )
            .await,
        );
        let doomed = fresh_key(&f).await;
        check(
            "revoke key",
            i,
            deleted(admins)[i],
            f.call(
                caller,
                Method::DELETE,
                &format!("/v1/orgs/acme/api-keys/{doomed}"),
                None,
            )
            .await,
        );
        check(
            "list projects",
            i,
            views[i],
            f.call(caller, Method::GET, "/v1/orgs/acme/projects", None).await,
        );
        check(
            "create project",
            i,
            created(members)[i],
            f.call(
                caller,
                Method::POST,
                "/v1/orgs/acme/projects",
                Some(json!({"name": "N"})),
            )
            .await,
        );
        check(
            "rename project",
            i,
            members[i],
            f.call(
                caller,
                Method::PATCH,
                &format!("/v1/orgs/acme/projects/{p}"),
                Some(json!({"name": "Prod"})),
            )
            .await,
        );
        check(
            "list webhooks",
            i,
            admins[i],
            f.call(caller, Method::GET, "/v1/orgs/acme/webhooks", None).await,
        );
        let hook = json!({"url": "https://hooks.example.com/audit"});
        check(
            "create webhook",
            i,
            created(admins)[i],
            f.call(caller, Method::POST, "/v1/orgs/acme/webhooks", Some(hook)).await,
        );
        let doomed = fresh_project(&f).await;
        check(
            "delete project",
            i,
            deleted(members)[i],
            f.call(
                caller,
                Method::DELETE,
                &format!("/v1/orgs/acme/projects/{doomed}"),
                None,
            )
            .await,
        );
    }
    assert!(
        failures.is_empty(),
        "{} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
