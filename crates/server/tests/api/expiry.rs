//! Expired records are gone for every reader at once, whether or not a sweep has run.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn an_expired_browser_visit_is_404_and_leaves_lists_and_lookups() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Expiry").await;
    let visit = srv
        .record(&t, &s, "browser_visit", sample("browser_visit").input)
        .await;
    let contact = srv.record(&t, &s, "contact", contact()).await;
    let member = srv.key(&t.id, &t.owner, "member", &[ANALYTICS]).await;

    let got = read(&srv, &t, &s, &visit, ANALYTICS).await;
    assert_eq!(got["expires_at"], rfc3339(START + time::Duration::days(60)));
    assert_eq!(
        record_ids(&srv, &t, &s, ANALYTICS).await,
        vec![visit.clone()]
    );
    let (_, hits) = srv
        .get(
            &lookup_path(&t.id, "browser_visit", "ip", "192.0.2.17", ANALYTICS),
            &t.owner,
        )
        .await;
    assert_eq!(hits.as_array().map(Vec::len), Some(1), "{hits}");

    // One day before the end it is still there.
    srv.clock.advance(time::Duration::days(59));
    let _ = read(&srv, &t, &s, &visit, ANALYTICS).await;

    srv.clock.advance(time::Duration::days(2));
    for token in [&t.owner, &member] {
        let resp = srv
            .get(&read_path(&t.id, &s, &visit, ANALYTICS), token)
            .await;
        assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
        assert!(!resp.1.to_string().contains("192.0.2.17"), "{}", resp.1);
        let (st, list) = srv.get(&list_path(&t.id, &s, ANALYTICS), token).await;
        assert_eq!((st, list), (StatusCode::OK, json!([])));
        if token == &t.owner {
            let (st, list) = srv
                .get(
                    &format!(
                        "{}&collection=browser_visit",
                        list_path(&t.id, &s, SECURITY)
                    ),
                    token,
                )
                .await;
            assert_eq!((st, list), (StatusCode::OK, json!([])));
        }
        let (st, hits) = srv
            .get(
                &lookup_path(&t.id, "browser_visit", "ip", "192.0.2.17", ANALYTICS),
                token,
            )
            .await;
        assert_eq!((st, hits), (StatusCode::OK, json!([])));
    }
    // It cannot be rectified either.
    let resp = srv
        .patch(
            &record_path(&t.id, &s, &visit),
            &t.owner,
            json!({ "purpose": "analytics.reporting", "fields": { "language": "de" } }),
        )
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    let resp = srv
        .post(
            &format!("/v1/tenants/{}/batch", t.id),
            &t.owner,
            json!({ "items": [{ "op": "update_record", "subject": s, "record": visit, "purpose": "analytics.reporting", "fields": { "language": "de" } }] }),
        )
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    // The contact (3 years) is unaffected.
    let got = read(&srv, &t, &s, &contact, ESSENTIAL).await;
    assert_eq!(got["fields"]["name"], "Ada Lovelace");
    assert_eq!(record_ids(&srv, &t, &s, ESSENTIAL).await, vec![contact]);
}

#[tokio::test]
async fn expiry_counts_from_the_retention_field() {
    // server_log: 14 days from `at`, not from creation.
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("FromField").await;
    let old = srv
        .record(
            &t,
            &s,
            "server_log",
            json!({ "ip": "198.51.100.1", "at": rfc3339(START - time::Duration::days(10)) }),
        )
        .await;
    let new = srv
        .record(
            &t,
            &s,
            "server_log",
            json!({ "ip": "198.51.100.2", "at": rfc3339(START) }),
        )
        .await;
    let mut both = vec![old.clone(), new.clone()];
    both.sort();
    assert_eq!(record_ids(&srv, &t, &s, SECURITY).await, both);
    srv.clock.advance(time::Duration::days(5));
    let resp = srv
        .get(&read_path(&t.id, &s, &old, SECURITY), &t.owner)
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(record_ids(&srv, &t, &s, SECURITY).await, vec![new.clone()]);
    let _ = read(&srv, &t, &s, &new, SECURITY).await;
    srv.clock.advance(time::Duration::days(10));
    assert_eq!(
        record_ids(&srv, &t, &s, SECURITY).await,
        Vec::<String>::new()
    );
}
