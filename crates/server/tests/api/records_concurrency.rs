//! Records under concurrent requests, because a multi-threaded server must apply patches of
//! one record one at a time and keep one client's failure from failing anyone else's request.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_of_one_record_are_applied_one_at_a_time() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "Concurrent").await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let req = srv
            .request(Method::PATCH, &record_path(&t.id, &s, &r))
            .bearer_auth(&t.owner)
            .json(&json!({ "purpose": "essential.service", "return_fields": true, "fields": { "name": format!("Name {i}") } }));
        set.spawn(async move {
            let resp = req.send().await.expect("sent");
            let status = resp.status();
            (status, resp.json::<Value>().await.expect("json"))
        });
    }
    let mut applied = Vec::new();
    while let Some(res) = set.join_next().await {
        let (status, body) = res.expect("task");
        match status {
            StatusCode::OK => applied.push(body),
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "conflict", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert!(!applied.is_empty(), "at least one patch wins");
    let got = read(&srv, &t, &s, &r, ESSENTIAL).await;
    assert_eq!(
        got["revision"],
        1 + applied.len(),
        "every applied patch is one revision: {got}"
    );
    let last = applied
        .iter()
        .find(|p| p["revision"] == got["revision"])
        .expect("the newest applied patch");
    assert_eq!(got["fields"], last["fields"]);
    let mut revisions: Vec<i64> = applied
        .iter()
        .map(|p| p["revision"].as_i64().expect("revision"))
        .collect();
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(
        revisions.len(),
        applied.len(),
        "no two patches saw the same revision: {applied:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_does_not_fail_concurrent_ones() {
    let srv = crate::start().await;
    let t = srv.tenant("Isolated").await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..12 {
        let external_ref = if i % 2 == 0 {
            "same".to_owned()
        } else {
            format!("own-{}", "abcdefghijkl".chars().nth(i).expect("letter"))
        };
        let req = srv
            .request(Method::POST, &subjects_path(&t.id))
            .bearer_auth(&t.owner)
            .json(&json!({ "external_ref": external_ref }));
        set.spawn(async move {
            let resp = req.send().await.expect("sent");
            (
                external_ref,
                resp.status(),
                resp.json::<Value>().await.expect("json"),
            )
        });
    }
    let mut same_created = 0;
    while let Some(res) = set.join_next().await {
        let (external_ref, status, body) = res.expect("task");
        if external_ref == "same" {
            match status {
                StatusCode::CREATED => same_created += 1,
                StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "conflict"),
                other => panic!("{other}: {body}"),
            }
        } else {
            assert_eq!(status, StatusCode::CREATED, "{external_ref}: {body}");
            let (st, found) = srv
                .get(
                    &format!("{}?external_ref={external_ref}", subjects_path(&t.id)),
                    &t.owner,
                )
                .await;
            assert_eq!(st, StatusCode::OK);
            assert_eq!(found["id"], body["id"]);
        }
    }
    assert_eq!(
        same_created, 1,
        "exactly one subject gets the contested reference"
    );
}
