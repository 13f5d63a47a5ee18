//! The audit log as a tenant sees it over HTTP: one event per access with the right facts,
//! nothing for refused writes, one denial per denied read, strict tenant isolation, filters,
//! pagination and JSONL export. Backend-neutral: HTTP only.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use ward_testkit::{TenantFixture, TestServer};

use crate::support::{Resp, audit_all, audit_page, enc, indices, send, with_rid};
use ward_testkit::api::rfc3339;

const EMAIL: &str = "Leocadia.Vintergatan@Example.ORG";
const NAME: &str = "Leocadia Vintergatan";
const PHONE: &str = "+46 70 123 45 67";
const PHONE2: &str = "+46 70 765 43 21";
const ADDRESS: &str = "Vintergatan 42, 123 45 Stjärnholm";
const EXT_REF: &str = "crm-ext-ref-vintergatan-001";
const CUST_NAME: &str = "Torsten Nebulosa";
const NOTE: &str = "prefers contact after sunset";

/// Posts/gets with a request id; asserts the status.
async fn call(
    srv: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    rid: &str,
    expect: StatusCode,
) -> Resp {
    let r = send(srv, method.clone(), path, Some(token), body, Some(rid)).await;
    assert_eq!(r.status, expect, "{method} {path} ({rid}): {}", r.text);
    r
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_owned()
}

/// Checks the facts every event carries, and that it names nothing else: `keys` lists the
/// optional fields the event must have beyond the always-present ones.
fn check_event(
    e: &Value,
    action: &str,
    actor: &str,
    tenant: &str,
    rid: &str,
    outcome: &str,
    keys: &[&str],
) {
    assert_eq!(e["action"], action, "{e}");
    assert_eq!(e["actor"]["id"], actor, "{e}");
    assert_eq!(e["tenant"], tenant, "{e}");
    assert_eq!(e["request_id"], rid, "{e}");
    assert_eq!(e["outcome"], outcome, "{e}");
    let client = e["client"]
        .as_str()
        .unwrap_or_else(|| panic!("client hash missing: {e}"));
    assert_eq!(
        client.len(),
        32,
        "client is a 128-bit keyed hash in hex: {e}"
    );
    assert!(client.bytes().all(|b| b.is_ascii_hexdigit()), "{e}");
    assert!(
        !e.to_string().contains("127.0.0.1"),
        "raw client IP in event: {e}"
    );
    assert!(
        OffsetDateTime::parse(e["at"].as_str().unwrap_or(""), &Rfc3339).is_ok(),
        "{e}"
    );
    assert!(e["index"].is_u64(), "{e}");
    let mut expected: BTreeSet<&str> = [
        "at",
        "request_id",
        "actor",
        "tenant",
        "action",
        "outcome",
        "client",
        "index",
    ]
    .into_iter()
    .collect();
    expected.extend(keys);
    let actual: BTreeSet<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(actual, expected, "unexpected set of fields in {e}");
    assert_eq!(e["actor"].as_object().map(|o| o.len()), Some(2), "{e}");
}

fn one<'a>(events: &'a [Value], rid: &str) -> &'a Value {
    let found = with_rid(events, rid);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one event with request id {rid}: {found:?}"
    );
    found[0]
}

/// A new key through the API; returns (key id, token).
async fn issue_key(
    srv: &TestServer,
    tenant: &str,
    issuer: &str,
    role: &str,
    purposes: &[&str],
    rid: &str,
) -> (String, String) {
    let r = call(
        srv,
        Method::POST,
        &format!("/v1/tenants/{tenant}/keys"),
        issuer,
        Some(json!({ "name": format!("{role} key"), "role": role, "purposes": purposes })),
        rid,
        StatusCode::CREATED,
    )
    .await;
    (s(&r.json["id"]), s(&r.json["token"]))
}

/// What `every_operation_appends_the_expected_event` did and the tenant's log after it.
struct Traffic {
    t: String,
    invitation_id: String,
    owner_id: String,
    owner_actor: String,
    member_id: String,
    subj: String,
    r1: String,
    r2: String,
    events: Vec<Value>,
}

/// One request of every kind against a new tenant, each with its own request id, then the
/// tenant's whole audit log.
async fn every_operation(srv: &TestServer) -> Traffic {
    let op = srv.operator.clone();

    let r = call(
        srv,
        Method::POST,
        "/v1/tenants",
        &op,
        Some(json!({ "name": "Audit Facts" })),
        "rid-tenant-create",
        StatusCode::CREATED,
    )
    .await;
    let t = s(&r.json["id"]);
    let invitation_id = s(&r.json["invitation"]["id"]);
    // The first owner claims the tenant's invitation, with no API key.
    let r = send(
        srv,
        Method::POST,
        "/v1/invitations/claim",
        None,
        Some(json!({ "invitation": s(&r.json["invitation"]["token"]), "name": "first owner" })),
        Some("rid-key-owner"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (owner_id, owner) = (s(&r.json["id"]), s(&r.json["token"]));
    let owner_actor = format!("key:{owner_id}");

    let r = call(
        srv,
        Method::POST,
        &format!("/v1/tenants/{t}/subjects"),
        &owner,
        Some(json!({ "external_ref": EXT_REF })),
        "rid-subject-create",
        StatusCode::CREATED,
    )
    .await;
    let subj = s(&r.json["id"]);
    let records = format!("/v1/tenants/{t}/subjects/{subj}/records");
    let r = call(
        srv,
        Method::POST,
        &records,
        &owner,
        Some(json!({ "collection": "contact", "fields": { "name": NAME, "email": EMAIL, "phone": PHONE, "postal_address": ADDRESS } })),
        "rid-record-create",
        StatusCode::CREATED,
    )
    .await;
    let r1 = s(&r.json["id"]);
    let r = call(
        srv,
        Method::POST,
        &records,
        &owner,
        Some(json!({ "collection": "customer_record", "fields": { "name": CUST_NAME, "notes": { "note": NOTE } } })),
        "rid-record-create-2",
        StatusCode::CREATED,
    )
    .await;
    let r2 = s(&r.json["id"]);

    call(
        srv,
        Method::GET,
        &format!("{records}/{r1}?purpose=essential.service"),
        &owner,
        None,
        "rid-read",
        StatusCode::OK,
    )
    .await;
    let r = call(
        srv,
        Method::GET,
        &format!("{records}?purpose=essential.service"),
        &owner,
        None,
        "rid-list",
        StatusCode::OK,
    )
    .await;
    assert_eq!(r.json.as_array().map(Vec::len), Some(2), "{}", r.text);
    let lookup = format!(
        "/v1/tenants/{t}/lookup?collection=contact&field=email&value={}&purpose=essential.service",
        enc(&EMAIL.to_lowercase())
    );
    let r = call(
        srv,
        Method::GET,
        &lookup,
        &owner,
        None,
        "rid-lookup",
        StatusCode::OK,
    )
    .await;
    assert_eq!(r.json.as_array().map(Vec::len), Some(1), "{}", r.text);
    call(
        srv,
        Method::GET,
        &format!("/v1/tenants/{t}/subjects?external_ref={}", enc(EXT_REF)),
        &owner,
        None,
        "rid-subject-lookup",
        StatusCode::OK,
    )
    .await;
    call(
        srv,
        Method::PATCH,
        &format!("{records}/{r1}"),
        &owner,
        Some(json!({ "purpose": "essential.service", "fields": { "phone": PHONE2 } })),
        "rid-update",
        StatusCode::OK,
    )
    .await;
    let (member_id, member) = issue_key(
        srv,
        &t,
        &owner,
        "member",
        &["analytics.reporting"],
        "rid-key-member",
    )
    .await;
    let r = call(
        srv,
        Method::GET,
        &format!("{records}/{r1}?purpose=employment.recruitment"),
        &owner,
        None,
        "rid-denied-purpose",
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(r.code(), "purpose_not_allowed", "{}", r.text);
    let r = call(
        srv,
        Method::GET,
        &format!("{records}/{r1}?purpose=essential.service"),
        &member,
        None,
        "rid-denied-member",
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(r.code(), "purpose_not_allowed", "{}", r.text);
    call(
        srv,
        Method::DELETE,
        &format!("{records}/{r2}"),
        &owner,
        None,
        "rid-delete",
        StatusCode::NO_CONTENT,
    )
    .await;
    call(
        srv,
        Method::GET,
        &format!("/v1/tenants/{t}"),
        &op,
        None,
        "rid-tenant-read",
        StatusCode::OK,
    )
    .await;
    call(
        srv,
        Method::GET,
        &format!("/v1/tenants/{t}/keys"),
        &owner,
        None,
        "rid-key-list",
        StatusCode::OK,
    )
    .await;

    let events = audit_all(srv, &t, &owner, "").await;
    Traffic {
        t,
        invitation_id,
        owner_id,
        owner_actor,
        member_id,
        subj,
        r1,
        r2,
        events,
    }
}

#[tokio::test]
async fn every_operation_appends_the_expected_event() {
    let srv = crate::start().await;
    let traffic = every_operation(&srv).await;
    operator_actions_are_visible_to_the_tenant(&traffic);
    data_operations_name_what_they_touched(&traffic);
    key_management_is_audited(&traffic);
    denials_name_their_reason(&traffic);
    events_are_ordered_and_carry_no_values(&traffic);
}

/// The operator's actions on the tenant, and the owner's claim of the invitation.
fn operator_actions_are_visible_to_the_tenant(tr: &Traffic) {
    let Traffic {
        t,
        invitation_id,
        owner_id,
        events,
        ..
    } = tr;

    // Operator actions, visible to the tenant: the tenant and its owner invitation, in one
    // request.
    let created = with_rid(events, "rid-tenant-create");
    assert_eq!(created.len(), 2, "{created:?}");
    let e = created[0];
    let op_actor = s(&e["actor"]["id"]);
    assert!(op_actor.starts_with("operator:"), "{e}");
    assert_eq!(e["actor"]["role"], "operator");
    check_event(
        e,
        "tenant_create",
        &op_actor,
        t,
        "rid-tenant-create",
        "allowed",
        &[],
    );
    let e = created[1];
    check_event(
        e,
        "invitation_create",
        &op_actor,
        t,
        "rid-tenant-create",
        "allowed",
        &["detail"],
    );
    assert_eq!(e["detail"]["invitation"], invitation_id.as_str(), "{e}");
    assert!(e["detail"]["expires_at"].is_i64(), "{e}");
    let e = one(events, "rid-key-owner");
    check_event(
        e,
        "invitation_claim",
        &format!("invitation:{invitation_id}"),
        t,
        "rid-key-owner",
        "allowed",
        &["detail"],
    );
    assert_eq!(e["actor"]["role"], "invitee");
    assert_eq!(
        e["detail"],
        json!({ "invitation": invitation_id, "key": owner_id, "role": "owner" })
    );
    let e = one(events, "rid-tenant-read");
    check_event(
        e,
        "tenant_read",
        &op_actor,
        t,
        "rid-tenant-read",
        "allowed",
        &[],
    );
}

/// Data operations by the owner key name their subject, record, collection and purpose.
fn data_operations_name_what_they_touched(tr: &Traffic) {
    let Traffic {
        t,
        owner_actor,
        subj,
        r1,
        r2,
        events,
        ..
    } = tr;
    // Data operations by the owner key.
    let e = one(events, "rid-subject-create");
    check_event(
        e,
        "subject_create",
        owner_actor,
        t,
        "rid-subject-create",
        "allowed",
        &["subject"],
    );
    assert_eq!(e["subject"], subj.as_str());
    assert_eq!(e["actor"]["role"], "owner");
    let e = one(events, "rid-record-create");
    check_event(
        e,
        "record_create",
        owner_actor,
        t,
        "rid-record-create",
        "allowed",
        &["subject", "record", "collection"],
    );
    assert_eq!(
        (&e["subject"], &e["record"], &e["collection"]),
        (&json!(subj), &json!(r1), &json!("contact"))
    );
    let e = one(events, "rid-record-create-2");
    check_event(
        e,
        "record_create",
        owner_actor,
        t,
        "rid-record-create-2",
        "allowed",
        &["subject", "record", "collection"],
    );
    assert_eq!(
        (&e["record"], &e["collection"]),
        (&json!(r2), &json!("customer_record"))
    );
    let e = one(events, "rid-read");
    check_event(
        e,
        "record_read",
        owner_actor,
        t,
        "rid-read",
        "allowed",
        &["subject", "record", "collection", "purpose"],
    );
    assert_eq!(
        (&e["subject"], &e["record"], &e["collection"]),
        (&json!(subj), &json!(r1), &json!("contact"))
    );
    assert_eq!(e["purpose"], "essential.service");

    // A list is one event per record returned.
    let listed = with_rid(events, "rid-list");
    assert_eq!(listed.len(), 2, "{listed:?}");
    let mut seen = BTreeMap::new();
    for e in &listed {
        check_event(
            e,
            "record_list",
            owner_actor,
            t,
            "rid-list",
            "allowed",
            &["subject", "record", "collection", "purpose"],
        );
        assert_eq!(e["purpose"], "essential.service");
        assert_eq!(e["subject"], subj.as_str());
        seen.insert(s(&e["record"]), s(&e["collection"]));
    }
    assert_eq!(
        seen,
        BTreeMap::from([
            (r1.clone(), "contact".to_owned()),
            (r2.clone(), "customer_record".to_owned())
        ])
    );

    let e = one(events, "rid-lookup");
    check_event(
        e,
        "lookup",
        owner_actor,
        t,
        "rid-lookup",
        "allowed",
        &["subject", "record", "collection", "purpose"],
    );
    assert_eq!(
        (&e["subject"], &e["record"], &e["collection"]),
        (&json!(subj), &json!(r1), &json!("contact"))
    );
    let e = one(events, "rid-subject-lookup");
    check_event(
        e,
        "subject_lookup",
        owner_actor,
        t,
        "rid-subject-lookup",
        "allowed",
        &["subject"],
    );
    assert_eq!(e["subject"], subj.as_str());
    let e = one(events, "rid-update");
    check_event(
        e,
        "record_update",
        owner_actor,
        t,
        "rid-update",
        "allowed",
        &["subject", "record", "collection", "purpose"],
    );
    assert_eq!(
        (&e["record"], &e["collection"], &e["purpose"]),
        (&json!(r1), &json!("contact"), &json!("essential.service"))
    );
    let e = one(events, "rid-delete");
    check_event(
        e,
        "record_delete",
        owner_actor,
        t,
        "rid-delete",
        "allowed",
        &["subject", "record", "collection"],
    );
    assert_eq!(
        (&e["record"], &e["collection"]),
        (&json!(r2), &json!("customer_record"))
    );
}

/// Keys issued and listed.
fn key_management_is_audited(tr: &Traffic) {
    let Traffic {
        t,
        owner_actor,
        member_id,
        events,
        ..
    } = tr;
    let e = one(events, "rid-key-member");
    check_event(
        e,
        "key_create",
        owner_actor,
        t,
        "rid-key-member",
        "allowed",
        &["detail"],
    );
    assert_eq!(e["detail"], json!({ "key": member_id, "role": "member" }));
    let e = one(events, "rid-key-list");
    check_event(
        e,
        "key_list",
        owner_actor,
        t,
        "rid-key-list",
        "allowed",
        &[],
    );
}

/// Denied reads: their outcome, and a reason that names the purpose.
fn denials_name_their_reason(tr: &Traffic) {
    let Traffic {
        t,
        owner_actor,
        member_id,
        events,
        ..
    } = tr;
    // Denials: outcome, and a reason that names the purpose.
    let e = one(events, "rid-denied-purpose");
    check_event(
        e,
        "record_read",
        owner_actor,
        t,
        "rid-denied-purpose",
        "denied",
        &["subject", "record", "collection", "purpose", "reason"],
    );
    assert_eq!(e["purpose"], "employment.recruitment");
    assert!(s(&e["reason"]).contains("employment.recruitment"), "{e}");
    let e = one(events, "rid-denied-member");
    check_event(
        e,
        "record_read",
        &format!("key:{member_id}"),
        t,
        "rid-denied-member",
        "denied",
        &["subject", "record", "collection", "purpose", "reason"],
    );
    assert_eq!(e["actor"]["role"], "member");
    assert!(s(&e["reason"]).contains("essential.service"), "{e}");
}

/// Log order, one client hash per client, and no personal-data value in any form.
fn events_are_ordered_and_carry_no_values(tr: &Traffic) {
    let Traffic { events, .. } = tr;
    // Events follow the log order and the client hash is stable (same client, same key).
    let idx = indices(events);
    assert!(idx.windows(2).all(|w| w[0] < w[1]), "{idx:?}");
    let clients: BTreeSet<String> = events.iter().map(|e| s(&e["client"])).collect();
    assert_eq!(clients.len(), 1, "one client, one hash: {clients:?}");

    // No personal-data value, in any form, inside any event.
    let dump = serde_json::to_string(&events).unwrap();
    let dump_lower = dump.to_lowercase();
    for v in [
        EMAIL,
        NAME,
        PHONE,
        PHONE2,
        "+46701234567",
        "+46707654321",
        ADDRESS,
        EXT_REF,
        CUST_NAME,
        NOTE,
        "Vintergatan",
        "Nebulosa",
    ] {
        assert!(
            !dump_lower.contains(&v.to_lowercase()),
            "audit events contain the value {v:?}"
        );
    }
}

#[tokio::test]
async fn refused_writes_leave_no_event() {
    let srv = crate::start().await;
    let t = srv.tenant("Refused Writes").await;
    let subj = srv.subject(&t).await;
    let rec = srv
        .record(
            &t,
            &subj,
            "contact",
            json!({ "name": "Valid Person", "email": "valid@example.org" }),
        )
        .await;
    let records = format!("/v1/tenants/{}/subjects/{subj}/records", t.id);

    let before = audit_page(&srv, &t.id, &t.owner, "limit=1000", Some("rid-count-1")).await;
    let before = before.json["events"].as_array().unwrap().clone();
    let last = *indices(&before).last().unwrap();

    let refused: Vec<(&str, Method, String, Value, &str)> = vec![
        (
            "rid-bad-email",
            Method::POST,
            records.clone(),
            json!({ "collection": "contact", "fields": { "name": "Refused One", "email": "not-an-email" } }),
            "invalid_email",
        ),
        (
            "rid-card-field",
            Method::POST,
            records.clone(),
            json!({ "collection": "contact", "fields": { "name": "Refused Two", "email": "r2@example.org", "company": "4111 1111 1111 1111" } }),
            "card_data_refused",
        ),
        (
            "rid-card-json",
            Method::POST,
            records.clone(),
            json!({ "collection": "customer_record", "fields": { "name": "Refused Three", "notes": { "pay": ["5500-0000-0000-0004"] } } }),
            "card_data_refused",
        ),
        (
            "rid-unknown-field",
            Method::POST,
            records.clone(),
            json!({ "collection": "contact", "fields": { "name": "Refused Four", "email": "r4@example.org", "shoe_size": 44 } }),
            "unknown_field",
        ),
        (
            "rid-missing-field",
            Method::POST,
            records.clone(),
            json!({ "collection": "contact", "fields": { "name": "Refused Five" } }),
            "missing_field",
        ),
        (
            "rid-bad-patch",
            Method::PATCH,
            format!("{records}/{rec}"),
            json!({ "purpose": "essential.service", "fields": { "email": "still not an email" } }),
            "invalid_email",
        ),
        (
            "rid-card-patch",
            Method::PATCH,
            format!("{records}/{rec}"),
            json!({ "purpose": "essential.service", "fields": { "postal_address": "card 4111111111111111 here" } }),
            "card_data_refused",
        ),
        (
            "rid-card-ref",
            Method::POST,
            format!("/v1/tenants/{}/subjects", t.id),
            json!({ "external_ref": "4111-1111-1111-1111" }),
            "card_data_refused",
        ),
    ];
    for (rid, method, path, body, code) in &refused {
        let r = send(
            &srv,
            method.clone(),
            path,
            Some(&t.owner),
            Some(body.clone()),
            Some(rid),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{rid}: {}",
            r.text
        );
        assert_eq!(r.code(), *code, "{rid}: {}", r.text);
        assert!(
            !r.text.contains("4111"),
            "{rid}: the refused value is echoed: {}",
            r.text
        );
    }

    let after = audit_all(&srv, &t.id, &t.owner, "").await;
    // Exactly one event appeared: the audit read that produced `before`.
    let new: Vec<&Value> = after
        .iter()
        .filter(|e| e["index"].as_u64().unwrap() > last)
        .collect();
    assert_eq!(new.len(), 1, "refused writes left events: {new:?}");
    assert_eq!(new[0]["action"], "audit_read");
    assert_eq!(new[0]["request_id"], "rid-count-1");
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "earlier events changed"
    );
    for (rid, ..) in &refused {
        assert!(with_rid(&after, rid).is_empty(), "{rid} left an event");
    }
    // The valid record is unchanged by the refused patches.
    let (st, b) = srv
        .get(
            &format!("{records}/{rec}?purpose=essential.service"),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(b["revision"], 1, "{b}");
}

#[tokio::test]
async fn denied_read_leaves_exactly_one_denial_event() {
    let srv = crate::start().await;
    let t = srv.tenant("Denied Read").await;
    let subj = srv.subject(&t).await;
    let rec = srv
        .record(
            &t,
            &subj,
            "contact",
            json!({ "name": "Denied Person", "email": "denied@example.org" }),
        )
        .await;
    let before = audit_page(&srv, &t.id, &t.owner, "limit=1000", Some("rid-before")).await;
    let last = *indices(before.json["events"].as_array().unwrap())
        .last()
        .unwrap();

    let path = format!(
        "/v1/tenants/{}/subjects/{subj}/records/{rec}?purpose=analytics.reporting",
        t.id
    );
    let r = call(
        &srv,
        Method::GET,
        &path,
        &t.owner,
        None,
        "rid-wrong-purpose",
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(r.code(), "purpose_not_allowed");
    assert!(!r.text.contains("Denied Person"), "{}", r.text);

    let after = audit_all(&srv, &t.id, &t.owner, "").await;
    let new: Vec<&Value> = after
        .iter()
        .filter(|e| e["index"].as_u64().unwrap() > last)
        .collect();
    assert_eq!(
        new.len(),
        2,
        "expected the earlier audit read and one denial: {new:?}"
    );
    assert_eq!(new[0]["request_id"], "rid-before");
    let e = new[1];
    assert_eq!(e["request_id"], "rid-wrong-purpose");
    assert_eq!(e["outcome"], "denied");
    assert_eq!(e["action"], "record_read");
    assert_eq!(e["purpose"], "analytics.reporting");
    assert_eq!(e["record"], rec.as_str());
    assert_eq!(e["collection"], "contact");
    let reason = s(&e["reason"]);
    assert!(
        reason.contains("analytics.reporting"),
        "reason must name the purpose: {reason}"
    );
    assert!(
        !reason.contains("Denied Person") && !reason.contains("denied@example.org"),
        "{reason}"
    );

    let denied = audit_all(&srv, &t.id, &t.owner, "outcome=denied").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0], *e);
}

/// Some traffic in a tenant; every request id starts with `prefix`.
async fn traffic(srv: &TestServer, t: &TenantFixture, prefix: &str) -> (String, String) {
    let r = call(
        srv,
        Method::POST,
        &format!("/v1/tenants/{}/subjects", t.id),
        &t.owner,
        Some(json!({})),
        &format!("{prefix}-subject"),
        StatusCode::CREATED,
    )
    .await;
    let subj = s(&r.json["id"]);
    let r = call(
        srv,
        Method::POST,
        &format!("/v1/tenants/{}/subjects/{subj}/records", t.id),
        &t.owner,
        Some(json!({ "collection": "contact", "fields": { "name": format!("{prefix} Person"), "email": format!("{prefix}@example.org") } })),
        &format!("{prefix}-create"),
        StatusCode::CREATED,
    )
    .await;
    let rec = s(&r.json["id"]);
    call(
        srv,
        Method::GET,
        &format!(
            "/v1/tenants/{}/subjects/{subj}/records/{rec}?purpose=essential.service",
            t.id
        ),
        &t.owner,
        None,
        &format!("{prefix}-read"),
        StatusCode::OK,
    )
    .await;
    call(
        srv,
        Method::GET,
        &format!(
            "/v1/tenants/{}/subjects/{subj}/records/{rec}?purpose=employment.recruitment",
            t.id
        ),
        &t.owner,
        None,
        &format!("{prefix}-denied"),
        StatusCode::FORBIDDEN,
    )
    .await;
    (subj, rec)
}

#[tokio::test]
async fn tenants_never_see_each_others_events() {
    let srv = crate::start().await;
    let a = srv.tenant("Isolation A").await;
    let b = srv.tenant("Isolation B").await;
    let auditor_a = srv.key(&a.id, &a.owner, "auditor", &[]).await;
    let auditor_b = srv.key(&b.id, &b.owner, "auditor", &[]).await;
    let (sa, ra) = traffic(&srv, &a, "ten-a").await;
    let (sb, rb) = traffic(&srv, &b, "ten-b").await;

    // The operator touches A: these accesses belong in A's log.
    call(
        &srv,
        Method::GET,
        &format!("/v1/tenants/{}", a.id),
        &srv.operator,
        None,
        "op-read-a",
        StatusCode::OK,
    )
    .await;
    call(
        &srv,
        Method::POST,
        &format!("/v1/tenants/{}/keys", a.id),
        &srv.operator,
        Some(json!({ "name": "support", "role": "admin" })),
        "op-key-a",
        StatusCode::FORBIDDEN,
    )
    .await;
    let r = call(
        &srv,
        Method::GET,
        &format!("/v1/tenants/{}/audit", a.id),
        &srv.operator,
        None,
        "op-audit-a",
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(r.code(), "not_found", "{}", r.text);

    // A's keys cannot read B's log (hidden as not found), nor the other way round.
    for (token, rid) in [
        (&a.owner, "ten-a-peek-owner"),
        (&auditor_a, "ten-a-peek-auditor"),
    ] {
        let r = call(
            &srv,
            Method::GET,
            &format!("/v1/tenants/{}/audit", b.id),
            token,
            None,
            rid,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert!(!r.text.contains("ten-b"), "{}", r.text);
    }
    call(
        &srv,
        Method::GET,
        &format!("/v1/tenants/{}/audit", a.id),
        &b.owner,
        None,
        "ten-b-peek-owner",
        StatusCode::NOT_FOUND,
    )
    .await;

    for (tenant, token, own, other, other_ids) in [
        (&a, &a.owner, "ten-a", "ten-b", [&b.id, &sb, &rb]),
        (&a, &auditor_a, "ten-a", "ten-b", [&b.id, &sb, &rb]),
        (&b, &b.owner, "ten-b", "ten-a", [&a.id, &sa, &ra]),
        (&b, &auditor_b, "ten-b", "ten-a", [&a.id, &sa, &ra]),
    ] {
        let events = audit_all(&srv, &tenant.id, token, "").await;
        assert!(!events.is_empty());
        for e in &events {
            assert_eq!(
                e["tenant"],
                tenant.id.as_str(),
                "foreign event in {own}'s view: {e}"
            );
            let text = e.to_string();
            for id in other_ids {
                assert!(
                    !text.contains(id.as_str()),
                    "{own}'s view mentions {other}'s id {id}: {e}"
                );
            }
        }
        // Own traffic is there, complete.
        for suffix in ["subject", "create", "read", "denied"] {
            assert_eq!(
                with_rid(&events, &format!("{own}-{suffix}")).len(),
                1,
                "{own}-{suffix} missing from {own}'s view"
            );
        }
        // Events caused by the other tenant's keys are not shown here, except their attempts
        // on this tenant (which are accesses to this tenant).
        for e in &events {
            let rid = s(&e["request_id"]);
            if rid.starts_with(other) {
                assert!(
                    rid.contains("peek"),
                    "{other}'s event {rid} leaked into {own}'s view: {e}"
                );
                assert_eq!(e["outcome"], "denied", "{e}");
            }
        }
    }

    // Operator accesses to A appear in A's view, allowed or denied, and nowhere else.
    let a_events = audit_all(&srv, &a.id, &a.owner, "").await;
    for (rid, action, outcome) in [
        ("op-read-a", "tenant_read", "allowed"),
        ("op-key-a", "key_create", "denied"),
        ("op-audit-a", "audit_read", "denied"),
    ] {
        let e = one(&a_events, rid);
        assert_eq!(e["action"], action, "{e}");
        assert_eq!(e["outcome"], outcome, "{e}");
        assert!(s(&e["actor"]["id"]).starts_with("operator:"), "{e}");
    }
    let b_events = audit_all(&srv, &b.id, &b.owner, "").await;
    for rid in ["op-read-a", "op-key-a", "op-audit-a"] {
        assert!(with_rid(&b_events, rid).is_empty(), "{rid} in B's view");
    }
    // A's peeks at B are recorded as denied accesses to B.
    for rid in ["ten-a-peek-owner", "ten-a-peek-auditor"] {
        assert!(with_rid(&a_events, rid).is_empty(), "{rid} in A's own view");
        let e = one(&b_events, rid);
        assert_eq!(
            (e["action"].as_str(), e["outcome"].as_str()),
            (Some("audit_read"), Some("denied")),
            "{e}"
        );
    }
}

#[tokio::test]
async fn only_owners_admins_and_auditors_read_the_audit_view() {
    // The permission table: the tenant's owner and admins (and auditors) read the audit log; application
    // (member) keys do not.
    let srv = crate::start().await;
    let t = srv.tenant("Audit Roles").await;
    let member = srv
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    let r = call(
        &srv,
        Method::GET,
        &format!("/v1/tenants/{}/audit", t.id),
        &member,
        None,
        "rid-member",
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(r.code(), "role_not_permitted", "{}", r.text);
    assert!(r.json.get("events").is_none());
    assert!(!r.text.contains("key_create"), "{}", r.text);
    for (who, token) in [
        ("owner", &t.owner),
        ("admin", &admin),
        ("auditor", &auditor),
    ] {
        let r = call(
            &srv,
            Method::GET,
            &format!("/v1/tenants/{}/audit", t.id),
            token,
            None,
            &format!("rid-{who}"),
            StatusCode::OK,
        )
        .await;
        assert!(
            r.json["events"].as_array().is_some_and(|e| !e.is_empty()),
            "{who}: {}",
            r.text
        );
    }
    let r = send(
        &srv,
        Method::GET,
        &format!("/v1/tenants/{}/audit", t.id),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(
        &srv,
        Method::GET,
        &format!("/v1/tenants/{}/audit", t.id),
        Some("ward_key_not-a-real-token"),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The refusal is in the log, with the role in the reason.
    let events = audit_all(&srv, &t.id, &auditor, "outcome=denied").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["request_id"], "rid-member");
    assert_eq!(events[0]["action"], "audit_read");
    assert!(s(&events[0]["reason"]).contains("member"), "{}", events[0]);
    // An auditor reads the log and nothing else.
    let subj = srv.subject(&t).await;
    let r = send(
        &srv,
        Method::POST,
        &format!("/v1/tenants/{}/subjects", t.id),
        Some(&auditor),
        Some(json!({})),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let path = format!(
        "/v1/tenants/{}/subjects/{subj}/records?purpose=essential.service",
        t.id
    );
    let r = send(&srv, Method::GET, &path, Some(&auditor), None, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

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

#[tokio::test]
async fn batches_audit_every_item_or_nothing() {
    let srv = crate::start().await;
    let t = srv.tenant("Batch Audit").await;
    let batch = format!("/v1/tenants/{}/batch", t.id);
    let before = audit_page(&srv, &t.id, &t.owner, "limit=1000", Some("rid-batch-count")).await;
    let last = *indices(before.json["events"].as_array().unwrap())
        .last()
        .unwrap();

    // One bad item refuses the whole batch, and nothing of it is logged.
    let bad = json!({ "items": [
        { "op": "create_subject" },
        { "op": "create_record", "subject": "#0", "collection": "contact", "fields": { "name": "Batch Good", "email": "good@example.org" } },
        { "op": "create_record", "subject": "#0", "collection": "contact", "fields": { "name": "Batch Bad", "email": "no-at-sign" } }
    ]});
    let r = call(
        &srv,
        Method::POST,
        &batch,
        &t.owner,
        Some(bad),
        "rid-batch-bad",
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(r.code(), "invalid_email", "{}", r.text);
    let after = audit_all(&srv, &t.id, &t.owner, "").await;
    let new: Vec<&Value> = after
        .iter()
        .filter(|e| e["index"].as_u64().unwrap() > last)
        .collect();
    assert_eq!(new.len(), 1, "a refused batch left events: {new:?}");
    assert_eq!(new[0]["request_id"], "rid-batch-count");

    // A good batch logs every item, under the batch's request id, in item order.
    let good = json!({ "items": [
        { "op": "create_subject" },
        { "op": "create_record", "subject": "#0", "collection": "contact", "fields": { "name": "Batch One", "email": "one@example.org" } },
        { "op": "create_record", "subject": "#0", "collection": "customer_record", "fields": { "name": "Batch Two" } }
    ]});
    let r = call(
        &srv,
        Method::POST,
        &batch,
        &t.owner,
        Some(good),
        "rid-batch-ok",
        StatusCode::OK,
    )
    .await;
    let results = r.json["results"].as_array().expect("results");
    let subj = s(&results[0]["id"]);
    let events = audit_all(&srv, &t.id, &t.owner, "").await;
    let logged = with_rid(&events, "rid-batch-ok");
    let summary: Vec<(String, Option<String>, Option<String>)> = logged
        .iter()
        .map(|e| {
            (
                s(&e["action"]),
                e["record"].as_str().map(str::to_owned),
                e["collection"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("subject_create".to_owned(), None, None),
            (
                "record_create".to_owned(),
                Some(s(&results[1]["id"])),
                Some("contact".to_owned())
            ),
            (
                "record_create".to_owned(),
                Some(s(&results[2]["id"])),
                Some("customer_record".to_owned())
            ),
        ]
    );
    for e in &logged {
        assert_eq!(e["subject"], subj.as_str());
        assert_eq!(e["outcome"], "allowed");
        assert!(
            !e.to_string().contains("Batch One") && !e.to_string().contains("one@example.org"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn searches_that_find_nothing_are_audited_too() {
    // Whether someone is a data subject of the tenant is itself personal data, and external
    // references are guessable (customer numbers, e-mails): a probe that finds nothing is an
    // access and must be in the log, as the blind-index lookup already does.
    let srv = crate::start().await;
    let t = srv.tenant("Empty Answers").await;
    let s = srv.subject(&t).await;
    srv.record(
        &t,
        &s,
        "contact",
        json!({ "name": "Known Person", "email": "known@example.org" }),
    )
    .await;
    let probe = "crm-ref-of-someone-else-42";

    // Control: a blind-index lookup with no hit is logged once.
    let path = format!(
        "/v1/tenants/{}/lookup?collection=contact&field=email&value={}&purpose=essential.service",
        t.id,
        enc("nobody@example.org")
    );
    let r = call(
        &srv,
        Method::GET,
        &path,
        &t.owner,
        None,
        "rid-empty-lookup",
        StatusCode::OK,
    )
    .await;
    assert_eq!(r.json, json!([]));

    // An external-reference lookup with no hit.
    let path = format!("/v1/tenants/{}/subjects?external_ref={}", t.id, enc(probe));
    call(
        &srv,
        Method::GET,
        &path,
        &t.owner,
        None,
        "rid-empty-ref",
        StatusCode::NOT_FOUND,
    )
    .await;

    let events = audit_all(&srv, &t.id, &t.owner, "").await;
    let e = one(&events, "rid-empty-lookup");
    assert_eq!(e["action"], "lookup");
    assert!(e.get("record").is_none(), "{e}");
    let found = with_rid(&events, "rid-empty-ref");
    assert_eq!(
        found.len(),
        1,
        "an external_ref lookup that found nothing left no audit event"
    );
    assert_eq!(found[0]["action"], "subject_lookup");
    assert!(found[0].get("subject").is_none(), "{}", found[0]);
    assert!(!found[0].to_string().contains(probe), "{}", found[0]);
}

#[tokio::test]
async fn denied_requests_cannot_write_arbitrary_text_into_another_tenants_log() {
    // Audit events hold identifiers and policy names only: they outlive erasure, so a
    // client-chosen string (here personal data smuggled in as a "collection") must never be
    // copied into one, least of all into another tenant's log by a foreign key.
    let srv = crate::start().await;
    let a = srv.tenant("Injector").await;
    let b = srv.tenant("Victim").await;
    let sb = srv.subject(&b).await;
    let injected = "Jane Injected <jane.injected@example.org>, +33 6 12 34 56 78";
    let body =
        json!({ "collection": injected, "fields": { "name": "x", "email": "x@example.org" } });
    let path = format!("/v1/tenants/{}/subjects/{sb}/records", b.id);
    let r = call(
        &srv,
        Method::POST,
        &path,
        &a.owner,
        Some(body),
        "rid-inject",
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(!r.text.contains("jane.injected"), "{}", r.text);

    let events = audit_all(&srv, &b.id, &b.owner, "").await;
    let e = one(&events, "rid-inject");
    assert_eq!(e["outcome"], "denied", "{e}");
    assert_eq!(e["action"], "record_create", "{e}");
    let text = e.to_string();
    assert!(
        !text.contains("jane.injected"),
        "a foreign key wrote client text into the tenant's audit log: {e}"
    );
    if let Some(c) = e["collection"].as_str() {
        assert!(
            srv.vault.policy().collection(c).is_some(),
            "undeclared collection name in an event: {c:?}"
        );
    }
}
