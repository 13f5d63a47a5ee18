//! `/healthz`, `/openapi.json`, `/metrics`, and what happens off the map.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn healthz_is_ok_without_credentials() {
    let srv = crate::start().await;
    let resp = srv.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(resp, (StatusCode::OK, json!({ "status": "ok" })));
}

#[tokio::test]
async fn openapi_is_3_1_and_describes_every_v1_endpoint() {
    let srv = crate::start().await;
    let (st, doc) = srv.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(st, StatusCode::OK, "{doc}");
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1"), "OpenAPI version is {version}");
    let paths = doc["paths"].as_object().expect("paths");
    // Every path the router serves is documented, and nothing else is: the set comes from
    // the router, so a new route without documentation fails here. (Methods per path are
    // checked against the router's source by the isolation matrix.)
    let served: std::collections::BTreeSet<String> = srv
        .router_paths()
        .into_iter()
        // The document itself, and Prometheus text: neither is part of the API.
        .filter(|p| p != "/openapi.json" && p != "/metrics")
        .collect();
    let documented: std::collections::BTreeSet<String> = paths.keys().cloned().collect();
    assert_eq!(
        served.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "served but not documented"
    );
    assert_eq!(
        documented.difference(&served).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented but not served"
    );
    for item in paths.values() {
        let ops = item.as_object().expect("path item");
        assert!(
            ops.keys()
                .any(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str())),
            "a path without an operation: {item}"
        );
    }
    // The invitation flow and the bounded audit endpoints document what they answer.
    let statuses = |path: &str, method: &str| -> Vec<String> {
        paths[path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} undocumented"))
            .keys()
            .cloned()
            .collect()
    };
    for (path, method, codes) in [
        (
            "/v1/tenants/{tenant}/invitations",
            "post",
            &["201", "401", "403", "404", "409"][..],
        ),
        (
            "/v1/invitations/claim",
            "post",
            &["201", "400", "401", "422"][..],
        ),
        (
            "/v1/tenants/{tenant}/keys/{key}",
            "delete",
            &["204", "403", "404", "409"][..],
        ),
        ("/v1/audit/checkpoint", "post", &["200", "403", "429"][..]),
        (
            "/v1/audit/proof/inclusion",
            "get",
            &["200", "400", "401", "422"][..],
        ),
        (
            "/v1/audit/proof/consistency",
            "get",
            &["200", "400", "401", "422"][..],
        ),
    ] {
        let documented = statuses(path, method);
        for code in codes {
            assert!(
                documented.iter().any(|c| c == code),
                "{method} {path}: {code} missing from {documented:?}"
            );
        }
    }
    assert!(
        paths["/v1/invitations/claim"]["post"]
            .get("security")
            .is_none(),
        "claiming takes no API key"
    );
    assert!(
        paths["/v1/tenants"]["post"]["responses"]["201"]
            .to_string()
            .contains("CreatedTenant"),
        "{}",
        paths["/v1/tenants"]["post"]
    );
    // Bearer authentication is declared, so generated clients send the token.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
        "{}",
        doc["components"]
    );
    // Every documented error response uses the one error shape.
    assert!(
        doc["components"]["schemas"]["ErrorBody"].is_object(),
        "{}",
        doc["components"]["schemas"]
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_without_ids() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "Metrics").await;
    let _ = read(&srv, &t, &s, &r, ESSENTIAL).await;
    let resp = srv
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("metrics");
    assert_eq!(resp.status(), StatusCode::OK);
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ctype.starts_with("text/plain"), "content type {ctype}");
    let text = resp.text().await.expect("text");
    assert!(text.contains("ward_http_requests_total"), "{text}");
    assert!(
        text.contains("route=\"/v1/tenants/{tenant}/subjects/{subject}/records/{record}\""),
        "requests are labelled by route template: {text}"
    );
    for id in [&s, &r] {
        assert!(
            !text.contains(id.as_str()),
            "an id leaked into the metrics: {id}"
        );
    }
    // A tenant id labels only the per-tenant families (as many series as tenants).
    for line in text.lines().filter(|l| l.contains(t.id.as_str())) {
        assert!(
            ["ward_tenant_subjects{", "ward_tenant_records{", "# "]
                .iter()
                .any(|family| line.starts_with(family)),
            "a tenant id outside the per-tenant families: {line}"
        );
    }
}

#[tokio::test]
async fn unknown_endpoint_is_a_json_404() {
    let srv = crate::start().await;
    let resp = srv
        .call(Method::GET, "/v1/nothing-here", Some(&srv.operator), None)
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn wrong_method_is_a_json_405() {
    let srv = crate::start().await;
    let resp = srv
        .call(
            Method::PUT,
            "/v1/tenants",
            Some(&srv.operator),
            Some(json!({})),
        )
        .await;
    assert_error(&resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}
