//! Failed authentication is throttled per source and per token (429 with `Retry-After`,
//! before any store lookup), audited once per source and window with a count, and never
//! slows a valid key from elsewhere.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::*;

const BAD: &str = "ward_key_not-a-real-token";

#[tokio::test]
async fn a_source_past_the_lockout_threshold_gets_429_and_reaches_no_store() {
    let srv = crate::start().await;
    let t = srv.tenant("Throttle").await;
    let threshold = srv.policy.security.lockout_threshold;
    let attacker = client_from(2);
    let path = format!("/v1/tenants/{}", t.id);
    for i in 0..threshold {
        let r = send(
            &srv,
            &attacker,
            Method::GET,
            &path,
            Some(&format!("{BAD}{i}")),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let before = audit_size(&srv).await;
    let r = send(&srv, &attacker, Method::GET, &path, Some(BAD)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    // One more failure is allowed once a token refills: window / threshold.
    let window = srv
        .policy
        .security
        .lockout_window
        .as_duration()
        .whole_seconds();
    assert!(retry >= 1 && retry <= window as u64, "{retry}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    // A valid key that this server has not seen yet is refused too from that source: the
    // request never reached the store that would have accepted it.
    let fresh = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let r = send(&srv, &attacker, Method::GET, &path, Some(&fresh)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(audit_size(&srv).await, before + 1, "only the key creation");
    // The same key from another source works at once.
    let r = send(&srv, &client_from(3), Method::GET, &path, Some(&fresh)).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Once a token refills, the source may try again.
    srv.clock.advance(time::Duration::seconds(retry as i64));
    let r = send(&srv, &attacker, Method::GET, &path, Some(BAD)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn one_token_failing_from_many_sources_is_throttled() {
    let srv = crate::start().await;
    let threshold = srv.policy.security.lockout_threshold;
    let path = "/v1/tenants/00000000-0000-0000-0000-000000000000";
    for i in 0..threshold {
        let c = client_from(10 + u8::try_from(i).expect("small threshold"));
        let r = send(&srv, &c, Method::GET, path, Some(BAD)).await;
        assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let r = send(&srv, &client_from(99), Method::GET, path, Some(BAD)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // Another token from that source is not affected.
    let r = send(
        &srv,
        &client_from(99),
        Method::GET,
        path,
        Some("ward_key_other"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn failures_are_audited_once_per_source_and_window_with_a_count() {
    let srv = crate::start().await;
    let path = "/v1/tenants/00000000-0000-0000-0000-000000000000";
    let a = client_from(4);
    let b = client_from(5);
    for i in 0..30 {
        let _ = send(&srv, &a, Method::GET, path, Some(&format!("{BAD}{i}"))).await;
    }
    let _ = send(&srv, &b, Method::GET, path, None).await;
    let events = auth_events(&srv).await;
    assert_eq!(events.len(), 2, "one event per source so far: {events:#?}");
    let clients: std::collections::BTreeSet<_> =
        events.iter().map(|e| e["client"].to_string()).collect();
    assert_eq!(clients.len(), 2, "{events:#?}");
    assert!(events.iter().all(|e| e["detail"]["failures"] == 1));
    assert!(!serde_json::to_string(&events).unwrap().contains("127.0.0."));
    // The window closes: the next flush writes one summary for source a, none for b.
    srv.clock
        .advance(srv.policy.security.lockout_window.as_duration());
    let written = srv.vault.flush_auth_failures(false).await.expect("flush");
    assert_eq!(written, 1);
    let events = auth_events(&srv).await;
    assert_eq!(events.len(), 3);
    let summary = &events[2];
    assert_eq!(summary["outcome"], "denied");
    assert_eq!(summary["client"], events[0]["client"], "{summary}");
    let threshold = u64::from(srv.policy.security.lockout_threshold);
    let failures = summary["detail"]["failures"].as_u64().expect("count");
    let throttled = summary["detail"]["throttled"].as_u64().expect("count");
    assert_eq!(1 + failures + throttled, 30, "{summary}");
    assert_eq!(1 + failures, threshold, "{summary}");
}

#[tokio::test]
async fn the_client_hash_changes_with_each_ip_hash_window() {
    let srv = crate::start().await;
    let c = client_from(6);
    let _ = send(
        &srv,
        &c,
        Method::GET,
        "/v1/tenants/00000000-0000-0000-0000-000000000000",
        None,
    )
    .await;
    srv.clock
        .advance(srv.policy.security.ip_hash_window.as_duration());
    let _ = send(
        &srv,
        &c,
        Method::GET,
        "/v1/tenants/00000000-0000-0000-0000-000000000000",
        None,
    )
    .await;
    let events = auth_events(&srv).await;
    assert_eq!(events.len(), 2, "{events:#?}");
    let (h1, h2) = (&events[0]["client"], &events[1]["client"]);
    assert!(h1.is_string() && h2.is_string());
    assert_ne!(h1, h2, "same address, new window, unlinkable hash");
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let srv = crate::start().await;
    let t = srv.tenant("Bearer").await;
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let r = srv
            .request(Method::GET, &format!("/v1/tenants/{}", t.id))
            .header("authorization", format!("{scheme} {}", t.owner))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), StatusCode::OK, "{scheme}");
    }
    let r = srv
        .request(Method::GET, &format!("/v1/tenants/{}", t.id))
        .header("authorization", format!("Basic {}", t.owner))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn openapi_lists_every_shared_status_on_every_v1_operation_it_applies_to() {
    let srv = crate::start().await;
    let (st, doc) = srv.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    let mut seen = 0;
    for (path, item) in paths.iter().filter(|(p, _)| p.starts_with("/v1/")) {
        for (method, op) in item.as_object().expect("item") {
            let responses = &op["responses"];
            assert!(responses["401"].is_object(), "{method} {path}");
            assert!(
                responses["429"]["headers"]["Retry-After"].is_object(),
                "{method} {path}: {responses}"
            );
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let has = |place: &str| params.iter().any(|p| p["in"] == place);
            let mut expected: Vec<&str> = Vec::new();
            if has("path") {
                expected.extend(["400", "404"]);
            }
            if has("query") {
                expected.push("400");
            }
            if op.get("requestBody").is_some() {
                expected.extend(["400", "408", "413", "415", "422"]);
            }
            if path.starts_with("/v1/tenants/{tenant}") {
                expected.push("403");
            }
            for code in expected {
                assert!(
                    responses[code].is_object(),
                    "{method} {path} can answer {code}, so the document must list it: {responses}"
                );
            }
            seen += 1;
        }
    }
    assert!(seen > 30, "{seen}");
}

async fn fail_with_xff(srv: &ward_testkit::TestServer, from: u8, xff: &str) -> StatusCode {
    client_from(from)
        .get(format!(
            "{}/v1/tenants/00000000-0000-0000-0000-000000000000",
            srv.url
        ))
        .bearer_auth(BAD)
        .header("x-forwarded-for", xff)
        .send()
        .await
        .expect("sent")
        .status()
}

#[tokio::test]
async fn x_forwarded_for_counts_only_from_a_trusted_proxy() {
    // By default the header is ignored: changing it does not escape the throttle.
    let srv = crate::start().await;
    let threshold = srv.policy.security.lockout_threshold;
    for i in 0..threshold {
        let st = fail_with_xff(&srv, 8, &format!("203.0.113.{i}")).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        fail_with_xff(&srv, 8, "198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Behind a trusted proxy, the client it names is the source.
    let proxy: std::net::IpAddr = "127.0.0.9".parse().unwrap();
    let mut opts = crate::options();
    opts.limits.trusted_proxies = vec![proxy];
    let srv = ward_testkit::TestServer::start_with(opts).await;
    for _ in 0..threshold {
        // A client-written first hop is not believed; the proxy appended the real one.
        let st = fail_with_xff(&srv, 9, "10.9.9.9, 203.0.113.7").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        fail_with_xff(&srv, 9, "10.9.9.9, 203.0.113.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    let other = client_from(9)
        .get(format!(
            "{}/v1/tenants/00000000-0000-0000-0000-000000000000",
            srv.url
        ))
        .bearer_auth("ward_key_another-guess")
        .header("x-forwarded-for", "203.0.113.8")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        other.status(),
        StatusCode::UNAUTHORIZED,
        "another client behind the proxy"
    );
}
