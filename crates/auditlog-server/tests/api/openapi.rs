//! The OpenAPI document against the server it describes: every registered
//! route is documented and every documented operation exists (read from
//! the router's own source, since axum cannot list its routes), each one
//! answers, and each documents its refusals and its parameters.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;

/// The router, whose `.route(…)` calls are the API's endpoints.
const ROUTER_SOURCE: &str = include_str!("../../src/http/mod.rs");
/// What starts the server, and hands the router its pages.
const SERVE_SOURCE: &str = include_str!("../../src/lib.rs");

const METHODS: [&str; 8] = ["get", "post", "put", "patch", "delete", "head", "options", "trace"];

/// `(path, method)` of every `.route("…", get(…).post(…))` of the router.
/// Panics on anything it cannot read, so a new way of adding routes makes
/// this test fail rather than pass unchecked.
fn registered_routes(source: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (at, _) in source.match_indices(".route(") {
        let rest = &source[at + ".route(".len()..];
        let call = &rest[..closing_paren(rest)];
        let path = call
            .trim_start()
            .strip_prefix('"')
            .and_then(|p| p.split_once('"'))
            .map(|(p, _)| p)
            .unwrap_or_else(|| panic!("a .route( whose path is not a string literal: {call}"));
        let mut methods = 0;
        for method in METHODS {
            for (i, _) in call.match_indices(&format!("{method}(")) {
                // `get(` or `.post(`, not `webhooks::delete)` nor `…_get(`.
                let before = call[..i].chars().next_back();
                if matches!(before, Some(c) if c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                routes.insert((path.to_owned(), method.to_owned()));
                methods += 1;
            }
        }
        assert!(methods > 0, "no method router in .route({call})");
    }
    // Routes can also come in through other routers; only the web pages'
    // does, and it is HTML for people, not part of the JSON API.
    for other in [".nest(", ".nest_service(", ".route_service(", ".fallback_service("] {
        assert!(
            !source.contains(other),
            "the router uses {other}: teach this test to read it"
        );
    }
    let merges: Vec<_> = source.match_indices(".merge(").collect();
    assert_eq!(
        merges.len(),
        1,
        "the router merges another router: teach this test to read it"
    );
    assert!(source.contains(".merge(pages)"));
    assert!(SERVE_SOURCE.contains("http::router(state, ui::router())"));
    routes
}

/// The index of the parenthesis that closes a call whose text starts at
/// `text` (just after its opening parenthesis).
fn closing_paren(text: &str) -> usize {
    let mut depth = 1;
    let mut in_string = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses after .route(");
}

/// `/v1/orgs/{org}` in the document is `/v1/orgs/{org}` in axum 0.8 too;
/// both use braces.
fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((path.clone(), method.to_owned()));
            }
        }
    }
    ops
}

async fn document(app: &crate::helpers::TestApp) -> Value {
    let resp = app.client.get(app.url("/v1/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    resp.json().await.unwrap()
}

#[test]
fn the_route_reader_reads_every_form_the_router_uses() {
    let source = r#"
        Router::new()
            .route("/a", get(a::one))
            .route(
                "/b/{id}",
                get(b::get_one).patch(b::update).delete(b::delete),
            )
            .route("/c", post(c::retry))
            .merge(pages)
    "#;
    let got: Vec<_> = registered_routes(source).into_iter().collect();
    let want: Vec<(String, String)> = [
        ("/a", "get"),
        ("/b/{id}", "delete"),
        ("/b/{id}", "get"),
        ("/b/{id}", "patch"),
        ("/c", "post"),
    ]
    .iter()
    .map(|(p, m)| (p.to_string(), m.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn the_document_lists_exactly_the_registered_routes() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let registered = registered_routes(ROUTER_SOURCE);
    let documented = documented_operations(&doc);
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty(),
        "routes not in the OpenAPI document: {undocumented:?}"
    );
    assert!(missing.is_empty(), "documented operations with no route: {missing:?}");
    assert!(registered.len() > 30, "the router was not read: {registered:?}");
}

#[tokio::test]
async fn every_documented_operation_answers() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    for (path, method) in documented_operations(&doc) {
        let url = path
            .replace("{org}", "acme")
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let resp = app
            .client
            .request(method.to_uppercase().parse().unwrap(), app.url(&url))
            .bearer_auth(&app.keys.read)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            !(status == 404 && body.contains("no such endpoint")),
            "{method} {path} is not routed: {body}"
        );
    }
}

#[tokio::test]
async fn every_operation_documents_its_refusals_and_parameters() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let error_body = "#/components/schemas/ErrorBody";
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let what = format!("{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            let refusals: Vec<&String> = responses.keys().filter(|s| s.starts_with('4')).collect();
            // The public operations cannot be refused, only fail.
            let public = [
                "/healthz",
                "/readyz",
                "/metrics",
                "/v1/openapi.json",
                "/v1/audit/catalog",
                "/v1/audit/signing-key",
            ];
            if !public.contains(&path.as_str()) {
                assert!(!refusals.is_empty(), "{what} documents no 4xx answer");
            }
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{what} documents no success"
            );
            for (status, resp) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let name = resp["$ref"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{what} {status}: not a shared error"));
                    let shared = &doc["components"]["responses"][name.rsplit('/').next().unwrap()];
                    assert_eq!(
                        shared["content"]["application/json"]["schema"]["$ref"], error_body,
                        "{what} {status}"
                    );
                }
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
                    "{what} does not document its path parameter {name}"
                );
            }
            if path.starts_with("/v1/orgs/") {
                assert!(responses.contains_key("401"), "{what} documents no 401");
                assert!(responses.contains_key("403"), "{what} documents no 403");
                let schemes: BTreeSet<&str> = op["security"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{what} has no security"))
                    .iter()
                    .flat_map(|alt| alt.as_object().unwrap().keys().map(String::as_str))
                    .collect();
                assert!(
                    schemes.contains("api_key") && schemes.contains("session"),
                    "{what}: {schemes:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_query_parameters_are_those_the_server_reads() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let names = |path: &str| -> BTreeSet<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let filters = [
        "actor",
        "event",
        "resource_type",
        "resource_id",
        "submitted_by",
        "from",
        "to",
        "q",
        "after_seq",
    ];
    let mut list: Vec<&str> = filters.to_vec();
    list.extend(["limit", "cursor", "proofs"]);
    let mut export: Vec<&str> = filters.to_vec();
    export.extend(["format", "proofs"]);
    let owned = |v: Vec<&str>| v.into_iter().map(String::from).collect::<BTreeSet<_>>();
    assert_eq!(names("/v1/orgs/{org}/audit/events"), owned(list));
    assert_eq!(names("/v1/orgs/{org}/audit/export"), owned(export));
    assert_eq!(
        names("/v1/orgs/{org}/audit/checkpoint"),
        owned(vec!["tree_size", "format"])
    );
    assert_eq!(
        names("/v1/orgs/{org}/audit/proofs/inclusion"),
        owned(vec!["seq", "tree_size"])
    );
    assert_eq!(
        names("/v1/orgs/{org}/audit/proofs/consistency"),
        owned(vec!["from", "to"])
    );
    let event = doc["paths"]["/v1/orgs/{org}/audit/events"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "event")
        .unwrap()
        .clone();
    assert_eq!(event["explode"], true, "event repeats: {event}");
    assert!(
        event["schema"]["type"] == "array" || event["schema"]["type"][0] == "array",
        "{event}"
    );
}

/// Every `$ref` points at something the document defines, or no client
/// generator (nor schemathesis) can use it.
#[tokio::test]
async fn every_reference_resolves() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "unresolved {r}");
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
