//! Reading the log back: filters, pagination, JSONL export and request ids, because an
//! auditor needs to pull exactly the events of a period, actor or request, and the request id
//! a client sent is how an event is tied back to the call that caused it.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use ward_testkit::api::rfc3339;

use crate::audit_common::{call, issue_key, s, traffic};
use crate::support::{audit_all, audit_page, enc, indices, send};

fn at(e: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(e["at"].as_str().expect("at"), &Rfc3339).expect("RFC 3339 time")
}

#[tokio::test]
async fn filters_pagination_and_jsonl_export() {
    let srv = crate::start().await;
    let t = srv.tenant("Filters").await;
    let (member_id, member) = issue_key(
        &srv,
        &t.id,
        &t.owner,
        "member",
        &["essential.service"],
        "f-key",
    )
    .await;
    let member_actor = format!("key:{member_id}");
    let t0 = srv.vault.now();
    let (s1, r1) = traffic(&srv, &t, "f-phase0").await;
    srv.clock.advance(time::Duration::hours(1));
    let t1 = srv.vault.now();
    let (s2, _) = traffic(&srv, &t, "f-phase1").await;
    // The member reads in phase 1 too.
    let path = format!(
        "/v1/tenants/{}/subjects/{s1}/records/{r1}?purpose=essential.service",
        t.id
    );
    call(
        &srv,
        Method::GET,
        &path,
        &member,
        None,
        "f-member-read",
        StatusCode::OK,
    )
    .await;
    srv.clock.advance(time::Duration::hours(1));
    let t2 = srv.vault.now();
    traffic(&srv, &t, "f-phase2").await;
    srv.clock.advance(time::Duration::hours(1));
    let t3 = srv.vault.now();
    // Everything before t3 is fixed: the audit reads made from here on happen at t3.
    let until = format!("until={}", enc(&rfc3339(t3)));
    let full = audit_all(&srv, &t.id, &t.owner, &until).await;
    assert!(full.len() >= 15, "{}", full.len());
    assert!(full.iter().all(|e| at(e) < t3 && at(e) >= t0));
    let again = audit_all(&srv, &t.id, &t.owner, &until).await;
    assert_eq!(again, full, "a bounded query must be stable");

    let select = |f: &dyn Fn(&Value) -> bool| -> Vec<u64> {
        full.iter()
            .filter(|e| f(e))
            .map(|e| e["index"].as_u64().unwrap())
            .collect()
    };
    let cases: Vec<(String, Vec<u64>)> = vec![
        (
            format!("action=record_read&{until}"),
            select(&|e| e["action"] == "record_read"),
        ),
        (
            format!("action=record_create&{until}"),
            select(&|e| e["action"] == "record_create"),
        ),
        (
            format!("outcome=denied&{until}"),
            select(&|e| e["outcome"] == "denied"),
        ),
        (
            format!("outcome=allowed&{until}"),
            select(&|e| e["outcome"] == "allowed"),
        ),
        (
            format!("subject={s2}&{until}"),
            select(&|e| e["subject"] == s2.as_str()),
        ),
        (
            format!("actor={}&{until}", enc(&member_actor)),
            select(&|e| e["actor"]["id"] == member_actor.as_str()),
        ),
        (
            format!("since={}&{until}", enc(&rfc3339(t1))),
            select(&|e| at(e) >= t1),
        ),
        (
            format!("since={}&until={}", enc(&rfc3339(t1)), enc(&rfc3339(t2))),
            select(&|e| at(e) >= t1 && at(e) < t2),
        ),
        (
            format!("until={}", enc(&rfc3339(t1))),
            select(&|e| at(e) < t1),
        ),
        (
            format!(
                "action=record_read&subject={s1}&since={}&{until}",
                enc(&rfc3339(t1))
            ),
            select(&|e| e["action"] == "record_read" && e["subject"] == s1.as_str() && at(e) >= t1),
        ),
    ];
    for (query, expected) in &cases {
        assert!(
            !expected.is_empty(),
            "{query}: the fixture must make this filter select something"
        );
        assert!(
            expected.len() < full.len(),
            "{query}: the fixture must make this filter exclude something"
        );
        let got = audit_all(&srv, &t.id, &t.owner, query).await;
        assert_eq!(indices(&got), *expected, "filter {query}");
    }
    // The member read is attributed to the member key, in phase 1.
    let member_events = audit_all(
        &srv,
        &t.id,
        &t.owner,
        &format!("actor={}&{until}", enc(&member_actor)),
    )
    .await;
    assert_eq!(member_events.len(), 1);
    assert_eq!(member_events[0]["request_id"], "f-member-read");
    assert_eq!(at(&member_events[0]), t1);

    // Cursor pagination: pages of two, ascending, no duplicates, union is the full list.
    for (query, expected) in [(until.clone(), indices(&full)), cases[0].clone()] {
        let mut collected: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let c = cursor
                .as_ref()
                .map(|c| format!("&cursor={c}"))
                .unwrap_or_default();
            let page =
                audit_page(&srv, &t.id, &t.owner, &format!("limit=2&{query}{c}"), None).await;
            let events = page.json["events"].as_array().unwrap();
            assert!(events.len() <= 2, "page larger than the limit");
            pages += 1;
            assert!(pages <= expected.len() + 1, "pagination does not terminate");
            collected.extend(events.iter().cloned());
            match page.json["next_cursor"].as_str() {
                Some(next) => {
                    assert_eq!(events.len(), 2, "only the last page may be short");
                    cursor = Some(next.to_owned());
                }
                None => {
                    assert!(page.json["next_cursor"].is_null(), "{}", page.text);
                    break;
                }
            }
        }
        let got = indices(&collected);
        let unique: BTreeSet<u64> = got.iter().copied().collect();
        assert_eq!(unique.len(), got.len(), "duplicates across pages: {got:?}");
        assert_eq!(got, expected, "pages of {query}");
        assert!(
            pages >= expected.len().div_ceil(2),
            "{pages} pages for {} events",
            expected.len()
        );
    }

    // JSONL export: one object per line, the same events as the JSON view.
    let r = send(
        &srv,
        Method::GET,
        &format!("/v1/tenants/{}/audit?format=jsonl&limit=1000&{until}", t.id),
        Some(&t.owner),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.content_type.as_deref(), Some("application/x-ndjson"));
    assert!(r.text.ends_with('\n'));
    let lines: Vec<Value> = r
        .text
        .lines()
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("line is not JSON ({e}): {l}"));
            assert!(v.is_object(), "line is not an object: {l}");
            v
        })
        .collect();
    assert_eq!(lines, full);
    let r = send(
        &srv,
        Method::GET,
        &format!("/v1/tenants/{}/audit?format=jsonl&limit=3&{until}", t.id),
        Some(&t.owner),
        None,
        None,
    )
    .await;
    assert_eq!(r.text.lines().count(), 3);
    let json_page = audit_page(&srv, &t.id, &t.owner, &format!("limit=3&{until}"), None).await;
    assert_eq!(
        r.next_cursor_header.as_deref(),
        json_page.json["next_cursor"].as_str(),
        "x-next-cursor header"
    );
    assert!(r.next_cursor_header.is_some());

    // Malformed filters are refused, not ignored.
    for (query, code) in [
        ("action=record_peek", "invalid_action"),
        ("outcome=maybe", "invalid_outcome"),
        ("limit=0", "invalid_limit"),
        ("limit=1001", "invalid_limit"),
        ("since=yesterday", "invalid_time"),
        ("until=2026-01-15", "invalid_time"),
        ("format=xml", "invalid_format"),
        ("subject=not-a-uuid", "invalid_query"),
        ("cursor=-1", "invalid_cursor"),
        ("purpose=essential.service", "invalid_query"),
    ] {
        let r = send(
            &srv,
            Method::GET,
            &format!("/v1/tenants/{}/audit?{query}", t.id),
            Some(&t.owner),
            None,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.text);
        assert_eq!(r.code(), code, "{query}: {}", r.text);
    }
}

#[tokio::test]
async fn request_ids_are_kept_verbatim_or_replaced() {
    let srv = crate::start().await;
    let t = srv.tenant("Request Ids").await;
    let subjects = format!("/v1/tenants/{}/subjects", t.id);
    let tricky = r#"rid"quote\backslash}{"index":0,"#;
    let plain = "rid-ok_1.2";
    let exactly_64 = "r".repeat(64);
    let too_long = "l".repeat(65);
    for rid in [
        plain,
        exactly_64.as_str(),
        tricky,
        too_long.as_str(),
        "has space",
    ] {
        call(
            &srv,
            Method::POST,
            &subjects,
            &t.owner,
            Some(json!({})),
            rid,
            StatusCode::CREATED,
        )
        .await;
    }
    let until = format!(
        "until={}",
        enc(&rfc3339(srv.vault.now() + time::Duration::seconds(1)))
    );
    let events = audit_all(
        &srv,
        &t.id,
        &t.owner,
        &format!("action=subject_create&{until}"),
    )
    .await;
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(
        events[0]["request_id"], plain,
        "a valid request id is kept verbatim"
    );
    assert_eq!(events[1]["request_id"], exactly_64.as_str());
    // Quotes, backslashes, spaces or more than 64 characters: replaced (issue 13, item 9).
    for e in &events[2..] {
        let rid = s(&e["request_id"]);
        assert!(
            uuid::Uuid::parse_str(&rid).is_ok(),
            "invalid request ids are replaced by a generated id, got {rid:?}"
        );
    }
    // JSONL stays one event per line whatever the request id holds.
    let r = send(
        &srv,
        Method::GET,
        &format!(
            "/v1/tenants/{}/audit?format=jsonl&action=subject_create&{until}",
            t.id
        ),
        Some(&t.owner),
        None,
        None,
    )
    .await;
    let lines: Vec<Value> = r
        .text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines, events);
}
