//! The isolation matrix: every operation of the OpenAPI document, tried by every key of
//! another tenant against tenant A's own ids, answers as if A did not exist (404) and never
//! carries A's data; afterwards A's data is untouched.
//!
//! The operations come from the served document, and the document is checked against the
//! router's source (every `.route(…)` in `src/lib.rs` is in it), so a new route is in the
//! matrix the day it is added. A tenant route that needs a body or a query to get past its
//! extractors needs a sample below; without one it answers 4xx before its tenant check and
//! the test fails, naming the route.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::TestServer;

/// Tenant A's values: none may appear in any answer to tenant B.
const NAME: &str = "Isolde Quarantine-Ashworth";
const EMAIL: &str = "isolde.quarantine@tenant-a.example";
/// Tenant A's incident title.
const INCIDENT: &str = "Isolde's laptop left on a train";

/// What an operation sends so that its extractors accept it.
fn sample(method: &str, path: &str, a: &Ids) -> (String, Option<Value>) {
    let purpose = "purpose=essential.service";
    match (method, path) {
        ("POST", "/v1/tenants/{tenant}/keys") => (
            String::new(),
            Some(json!({"name": "intruder", "role": "member", "purposes": ["essential.service"]})),
        ),
        ("POST", "/v1/tenants/{tenant}/subjects") => (String::new(), Some(json!({}))),
        ("PATCH", "/v1/tenants/{tenant}/users/{user}") => {
            (String::new(), Some(json!({"role": "owner"})))
        }
        ("POST", "/v1/tenants/{tenant}/webhooks") => (
            String::new(),
            Some(json!({"url": "https://hooks.example.com/intruder"})),
        ),
        ("POST", "/v1/tenants/{tenant}/incidents") => {
            (String::new(), Some(json!({"title": "intruder"})))
        }
        ("POST", "/v1/tenants/{tenant}/incidents/{incident}/notes") => (
            String::new(),
            Some(json!({"text": "intruder", "kind": "note"})),
        ),
        ("PATCH", "/v1/tenants/{tenant}/settings") => {
            (String::new(), Some(json!({"require_totp": false})))
        }
        ("POST", "/v1/tenants/{tenant}/subjects/{subject}/records") => (
            String::new(),
            Some(json!({"collection": "contact", "fields": {"name": "X", "email": "x@b.example"}})),
        ),
        ("PATCH", "/v1/tenants/{tenant}/subjects/{subject}/records/{record}") => (
            format!("?{purpose}"),
            Some(json!({"fields": {"name": "Overwritten"}})),
        ),
        ("GET", "/v1/tenants/{tenant}/subjects/{subject}/records/{record}")
        | ("GET", "/v1/tenants/{tenant}/subjects/{subject}/records") => {
            (format!("?{purpose}"), None)
        }
        ("GET", "/v1/tenants/{tenant}/lookup") => (
            format!("?collection=contact&field=email&value={EMAIL}&{purpose}"),
            None,
        ),
        ("GET", "/v1/tenants/{tenant}/subjects/export")
        | ("GET", "/v1/tenants/{tenant}/subjects") => ("?external_ref=a-subject".to_owned(), None),
        ("POST", "/v1/tenants/{tenant}/batch") => (
            String::new(),
            Some(
                json!({"items": [{"op": "delete_record", "subject": a.subject, "record": a.record}]}),
            ),
        ),
        ("POST", "/v1/tenants/{tenant}/requests") => (
            String::new(),
            Some(json!({"kind": "access", "subject": a.subject, "verified_by": "intruder"})),
        ),
        ("POST", "/v1/tenants/{tenant}/requests/{request}/complete") => {
            (String::new(), Some(json!({"fields": {}})))
        }
        ("POST", "/v1/tenants/{tenant}/requests/{request}/reject") => {
            (String::new(), Some(json!({"reason": "intruder"})))
        }
        ("PUT", "/v1/tenants/{tenant}/retention/{collection}") => {
            (String::new(), Some(json!({"retain_for": "1d"})))
        }
        ("PUT", "/v1/tenants/{tenant}/subjects/{subject}/hold") => (String::new(), Some(json!({}))),
        ("POST", "/v1/tenants/{tenant}/subjects/{subject}/restrictions") => (
            String::new(),
            Some(json!({"purposes": ["marketing.advertising"]})),
        ),
        ("DELETE", "/v1/tenants/{tenant}/subjects/{subject}/restrictions") => {
            (format!("?{purpose}"), None)
        }
        ("POST", "/v1/tenants/{tenant}/support-grants") => (
            String::new(),
            Some(
                json!({"ticket": "T-1", "justification": "intruder", "collections": ["contact"],
                "actions": ["read"], "duration": "1h"}),
            ),
        ),
        _ => (String::new(), None),
    }
}

/// Tenant A's ids that fill the path templates.
struct Ids {
    tenant: String,
    subject: String,
    record: String,
    key: String,
    request: String,
    incident: String,
}

impl Ids {
    fn fill(&self, template: &str) -> String {
        template
            .replace("{tenant}", &self.tenant)
            .replace("{subject}", &self.subject)
            .replace("{record}", &self.record)
            .replace("{key}", &self.key)
            .replace("{request}", &self.request)
            .replace("{incident}", &self.incident)
            .replace("{collection}", "contact")
            // No grant of A's exists for B to name; B must get 404 before any grant lookup.
            .replace("{grant}", "0190a5d2-0000-7000-8000-000000000000")
            // Likewise for a user: B must get 404 before any membership lookup.
            .replace("{user}", "0190a5d2-0000-7000-8000-000000000000")
            .replace("{alert}", "0190a5d2-0000-7000-8000-000000000000")
            .replace("{webhook}", "0190a5d2-0000-7000-8000-000000000000")
    }
}

/// The `(method, path)` pairs the router's source declares, from `.route("…", …)` calls.
fn router_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../../src/lib.rs");
    let mut routes = BTreeSet::new();
    for call in source.split(".route(").skip(1) {
        let Some(path) = call.split('"').nth(1) else {
            continue;
        };
        let body = call.split(".route(").next().unwrap_or(call);
        let body = body.split(';').next().unwrap_or(body);
        for method in ["get", "post", "put", "patch", "delete"] {
            if body.contains(&format!("{method}(")) {
                routes.insert((method.to_uppercase(), path.to_owned()));
            }
        }
    }
    routes
}

async fn matrix(srv: TestServer) {
    let (_, doc) = srv.call(Method::GET, "/openapi.json", None, None).await;
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let routes = router_routes();
    assert!(
        routes.len() > 30,
        "the router's routes were not found in its source"
    );
    for (method, path) in &routes {
        if path == "/openapi.json" || path == "/metrics" {
            continue; // the document itself, and Prometheus text: neither is part of the API
        }
        let documented = operations.contains(&(method.clone(), path.clone()))
            || operations.contains(&(method.clone(), format!("/v1{path}")));
        assert!(
            documented,
            "{method} {path} is routed but not in the OpenAPI document"
        );
    }

    let a = srv.tenant("tenant a").await;
    let b = srv.tenant("tenant b").await;
    let subject = srv.subject(&a).await;
    let record = srv.contact(&a, &subject, NAME, EMAIL).await;
    let (_, keys) = srv
        .get(&format!("/v1/tenants/{}/keys", a.id), &a.owner)
        .await;
    let key = keys[0]["id"].as_str().expect("key id").to_owned();
    let (s, request) = srv
        .post(
            &format!("/v1/tenants/{}/requests", a.id),
            &a.owner,
            json!({"kind": "access", "subject": subject, "verified_by": "owner"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{request}");
    let (s, incident) = srv
        .post(
            &format!("/v1/tenants/{}/incidents", a.id),
            &a.owner,
            json!({"title": INCIDENT, "subjects": [subject]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{incident}");
    let ids = Ids {
        tenant: a.id.clone(),
        subject: subject.clone(),
        record: record.clone(),
        key: key.clone(),
        request: request["id"].as_str().expect("request id").to_owned(),
        incident: incident["id"].as_str().expect("incident id").to_owned(),
    };
    let intruders = [
        ("owner", b.owner.clone()),
        ("admin", srv.key(&b.id, &b.owner, "admin", &[]).await),
        (
            "member",
            srv.key(&b.id, &b.owner, "member", &["essential.service"])
                .await,
        ),
        ("auditor", srv.key(&b.id, &b.owner, "auditor", &[]).await),
    ];
    let secrets = [
        NAME,
        EMAIL,
        ids.subject.as_str(),
        ids.record.as_str(),
        ids.key.as_str(),
        ids.request.as_str(),
        ids.incident.as_str(),
        INCIDENT,
    ];

    let mut probed = 0;
    for (method, template) in &operations {
        if !template.starts_with("/v1/") || template == "/v1/invitations/claim" {
            continue; // no credential to try: the claim takes an invitation, not a key
        }
        let (query, body) = sample(method, template, &ids);
        let path = format!("{}{query}", ids.fill(template));
        for (role, token) in &intruders {
            let mut req = srv
                .request(
                    Method::from_bytes(method.as_bytes()).expect("method"),
                    &path,
                )
                .bearer_auth(token);
            if let Some(body) = &body {
                req = req.json(body);
            }
            let resp = req.send().await.expect("request sent");
            let status = resp.status();
            let text = resp.text().await.expect("body");
            for secret in secrets {
                assert!(
                    !text.contains(secret),
                    "{method} {template} as tenant B's {role}: {status} carries tenant A's {secret:?}: {text}"
                );
            }
            if template.contains("{tenant}") {
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "{method} {template} as tenant B's {role} on tenant A: {text} \
                     (if the route needs a body or query to reach its tenant check, add a \
                     sample in edge/isolation.rs)"
                );
            } else {
                assert!(
                    status.is_client_error() || !text.contains(&ids.tenant),
                    "{method} {template} as tenant B's {role} answers with tenant A: {text}"
                );
            }
            probed += 1;
        }
    }
    assert!(probed >= 4 * 30, "only {probed} probes");

    // Nothing B tried changed A.
    let (s, read) = srv
        .get(
            &format!(
                "/v1/tenants/{}/subjects/{subject}/records/{record}?purpose=essential.service",
                a.id
            ),
            &a.owner,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{read}");
    assert_eq!(read["fields"], json!({"name": NAME, "email": EMAIL}));
    assert_eq!(read["revision"], 1);
    let (_, keys) = srv
        .get(&format!("/v1/tenants/{}/keys", a.id), &a.owner)
        .await;
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "A's keys: {keys}");
    let (_, incident) = srv
        .get(
            &format!("/v1/tenants/{}/incidents/{}", a.id, ids.incident),
            &a.owner,
        )
        .await;
    assert_eq!(incident["status"], "open", "{incident}");
    assert_eq!(incident["timeline"], json!([]), "{incident}");
    assert_eq!(
        incident["affected"][0]["notified_at"],
        json!(null),
        "{incident}"
    );
}

#[tokio::test]
async fn every_route_refuses_every_key_of_another_tenant_with_404_and_no_data() {
    matrix(crate::start().await).await;
}
