//! Security headers on every `/v1` answer, and request ids: a caller's id is kept only when
//! it is at most 64 plain characters.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::*;

fn check_headers(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    assert_eq!(h["cache-control"], "no-store", "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    assert!(
        !h.contains_key("strict-transport-security"),
        "no HSTS over plain HTTP: {what}"
    );
}

#[tokio::test]
async fn every_v1_answer_carries_the_security_headers() {
    let srv = crate::start().await;
    let t = srv.tenant("Headers").await;
    let ok = srv
        .request(Method::GET, &format!("/v1/tenants/{}", t.id))
        .bearer_auth(&t.owner)
        .send()
        .await
        .expect("sent");
    assert_eq!(ok.status(), StatusCode::OK);
    check_headers(&ok, "200");
    let unauth = srv
        .request(Method::GET, &format!("/v1/tenants/{}", t.id))
        .send()
        .await
        .expect("sent");
    assert_eq!(unauth.status(), StatusCode::UNAUTHORIZED);
    check_headers(&unauth, "401");
    let missing = srv
        .request(Method::GET, "/v1/no/such/endpoint")
        .bearer_auth(&t.owner)
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    check_headers(&missing, "404");
    let c = client_from(7);
    let mut last = None;
    for _ in 0..=srv.policy.security.lockout_threshold {
        last = Some(
            send(
                &srv,
                &c,
                Method::GET,
                "/v1/tenants/00000000-0000-0000-0000-000000000000",
                Some("ward_key_x"),
            )
            .await,
        );
    }
    let throttled = last.expect("sent");
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    check_headers(&throttled, "429");
}

/// The request id the audit log recorded for a read of the tenant sent with `id`.
async fn recorded_id(
    srv: &ward_testkit::TestServer,
    owner: &str,
    tenant: &str,
    id: &str,
) -> String {
    let r = srv
        .request(Method::GET, &format!("/v1/tenants/{tenant}"))
        .bearer_auth(owner)
        .header("x-request-id", id)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::OK);
    let (st, log) = srv
        .get(
            &format!("/v1/tenants/{tenant}/audit?action=tenant_read"),
            owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{log}");
    let events = log["events"].as_array().expect("events");
    let newest: &Value = events.last().expect("one event");
    newest["request_id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn request_ids_are_kept_only_when_short_and_plain() {
    let srv = crate::start().await;
    let t = srv.tenant("Ids").await;
    let good = format!("req-{}.A_b", "x".repeat(56));
    assert_eq!(good.len(), 64);
    assert_eq!(recorded_id(&srv, &t.owner, &t.id, &good).await, good);
    for bad in [
        format!("req-{}", "x".repeat(61)),
        "req id".to_owned(),
        "req/1".to_owned(),
        "<script>".to_owned(),
        "a;b=c".to_owned(),
    ] {
        let got = recorded_id(&srv, &t.owner, &t.id, &bad).await;
        assert_ne!(got, bad);
        assert!(uuid::Uuid::parse_str(&got).is_ok(), "fresh id, got {got:?}");
    }
}
