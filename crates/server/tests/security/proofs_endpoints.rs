//! The proof and checkpoint endpoints' contract: bad parameters refused, checkpoints signed only
//! by operators and auditors at a bounded rate, proof requests audited in the caller's log,
//! because these endpoints are reachable by tenants and must neither leak nor be abused.
//! Backend-neutral: HTTP only.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::proofs_support::{activity, consistency, get, inclusion, new_checkpoint};
use crate::support::{audit_all, send};

#[tokio::test]
async fn proof_endpoints_refuse_bad_parameters() {
    let srv = crate::start().await;
    let t = srv.tenant("Proof Params").await;
    activity(&srv, &t, 2).await;
    // Proof requests are audited, so the log grows below: `size` is a lower bound of the
    // current size, and the out-of-range sizes are absurd ones.
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    let size = new_checkpoint(&srv, &auditor).await["tree_size"]
        .as_u64()
        .unwrap();
    assert!(size >= 8);
    let tok = &t.owner;

    let ok = get(
        &srv,
        tok,
        &format!(
            "/v1/audit/proof/inclusion?index={}&tree_size={size}",
            size - 1
        ),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let same = consistency(&srv, tok, size, size).await;
    assert!(same.proof.is_empty());
    assert_eq!(same.from_root, same.to_root);
    let one = inclusion(&srv, tok, 0, 1).await;
    assert!(one.proof.is_empty());
    assert_eq!(one.root, one.leaf);

    let bad = [
        (
            format!("/v1/audit/proof/inclusion?index={size}&tree_size={size}"),
            "invalid_range",
        ),
        (
            format!(
                "/v1/audit/proof/inclusion?index={}&tree_size={size}",
                size + 7
            ),
            "invalid_range",
        ),
        (
            format!("/v1/audit/proof/inclusion?index=0&tree_size={}", 1u64 << 50),
            "invalid_range",
        ),
        (
            format!(
                "/v1/audit/proof/inclusion?index={}&tree_size={}",
                u64::MAX - 1,
                u64::MAX
            ),
            "invalid_range",
        ),
        (
            "/v1/audit/proof/inclusion?index=0&tree_size=18446744073709551616".to_owned(),
            "invalid_query",
        ),
        (
            "/v1/audit/proof/inclusion?index=0&tree_size=0".to_owned(),
            "invalid_range",
        ),
        (
            "/v1/audit/proof/inclusion?tree_size=3".to_owned(),
            "invalid_query",
        ),
        (
            "/v1/audit/proof/inclusion?index=-1&tree_size=3".to_owned(),
            "invalid_query",
        ),
        (
            "/v1/audit/proof/inclusion?index=one&tree_size=3".to_owned(),
            "invalid_query",
        ),
        (
            "/v1/audit/proof/inclusion?index=0&tree_size=3&extra=1".to_owned(),
            "invalid_query",
        ),
        (
            "/v1/audit/proof/consistency?from=3&to=2".to_owned(),
            "invalid_range",
        ),
        (
            format!("/v1/audit/proof/consistency?from={size}&to={}", size - 1),
            "invalid_range",
        ),
        (
            format!("/v1/audit/proof/consistency?from=0&to={size}"),
            "invalid_range",
        ),
        (
            "/v1/audit/proof/consistency?from=0&to=0".to_owned(),
            "invalid_range",
        ),
        (
            format!("/v1/audit/proof/consistency?from=1&to={}", 1u64 << 50),
            "invalid_range",
        ),
        (
            format!(
                "/v1/audit/proof/consistency?from={}&to={}",
                u64::MAX,
                u64::MAX
            ),
            "invalid_range",
        ),
        (
            "/v1/audit/proof/consistency?to=3".to_owned(),
            "invalid_query",
        ),
        (
            "/v1/audit/proof/consistency?from=1&to=x".to_owned(),
            "invalid_query",
        ),
    ];
    let before = srv.store.audit_head().await.unwrap().size;
    for (path, code) in &bad {
        let r = get(&srv, tok, path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text);
        assert_eq!(r.code(), *code, "{path}: {}", r.text);
    }
    assert_eq!(
        srv.store.audit_head().await.unwrap().size,
        before,
        "a refused proof request writes nothing"
    );
    // Proofs need a key.
    for path in [
        format!("/v1/audit/proof/inclusion?index=0&tree_size={size}"),
        "/v1/audit/proof/consistency?from=1&to=2".to_owned(),
    ] {
        let r = send(&srv, Method::GET, &path, None, None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.text);
    }
}

#[tokio::test]
async fn checkpoints_are_signed_by_operators_and_auditors_at_a_bounded_rate() {
    let srv = crate::start().await;
    let t = srv.tenant("Signers").await;
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let member = srv
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    let sign = |token: String| {
        let srv = &srv;
        async move {
            send(
                srv,
                Method::POST,
                "/v1/audit/checkpoint",
                Some(&token),
                None,
                None,
            )
            .await
        }
    };
    for token in [&t.owner, &admin, &member] {
        let r = sign(token.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert_eq!(r.code(), "role_not_permitted", "{}", r.text);
    }
    let cp = sign(auditor.clone()).await;
    assert_eq!(cp.status, StatusCode::OK, "{}", cp.text);
    assert_eq!(cp.json["origin"], "ward-test", "the configured name");
    // A second signing right away is refused, for any signer: one per interval per
    // deployment. The refusal writes nothing.
    let before = srv.store.audit_head().await.unwrap().size;
    for token in [&auditor, &srv.operator] {
        let r = srv
            .request(Method::POST, "/v1/audit/checkpoint")
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .expect("Retry-After in seconds");
        assert!((1..=60).contains(&retry), "{retry}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    }
    assert_eq!(srv.store.audit_head().await.unwrap().size, before);
    srv.clock.advance(time::Duration::seconds(61));
    let r = sign(srv.operator.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Refusals and signings are audited; the auditor's in its tenant's log.
    let events = audit_all(&srv, &t.id, &t.owner, "action=checkpoint_sign").await;
    let outcomes: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["actor"]["role"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("owner", "denied"),
            ("admin", "denied"),
            ("member", "denied"),
            ("auditor", "allowed")
        ],
        "{events:?}"
    );
    assert_eq!(events[3]["detail"]["tree_size"], cp.json["tree_size"]);
}

#[tokio::test]
async fn proof_requests_are_audited_in_the_callers_tenant_log() {
    let srv = crate::start().await;
    let t = srv.tenant("Proof Audit").await;
    activity(&srv, &t, 1).await;
    let size = srv.store.audit_head().await.unwrap().size;
    let _ = inclusion(&srv, &t.owner, 1, size).await;
    let _ = consistency(&srv, &t.owner, 2, size).await;
    let events = audit_all(&srv, &t.id, &t.owner, "action=audit_proof").await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0]["detail"],
        json!({ "proof": "inclusion", "index": 1, "tree_size": size })
    );
    assert_eq!(
        events[1]["detail"],
        json!({ "proof": "consistency", "from": 2, "to": size })
    );
    assert!(events.iter().all(|e| e["actor"]["role"] == "owner"));
}
