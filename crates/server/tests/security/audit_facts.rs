//! The facts of each event: one request of every kind, then the tenant's whole log checked
//! event by event, because an auditor can only rely on the log if every access names who did
//! what to which data and why, and nothing else (no personal-data value in any form).

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use ward_testkit::TestServer;

use crate::audit_common::{call, issue_key, one, s};
use crate::support::{audit_all, enc, indices, send, with_rid};

const EMAIL: &str = "Leocadia.Vintergatan@Example.ORG";
const NAME: &str = "Leocadia Vintergatan";
const PHONE: &str = "+46 70 123 45 67";
const PHONE2: &str = "+46 70 765 43 21";
const ADDRESS: &str = "Vintergatan 42, 123 45 Stjärnholm";
const EXT_REF: &str = "crm-ext-ref-vintergatan-001";
const CUST_NAME: &str = "Torsten Nebulosa";
const NOTE: &str = "prefers contact after sunset";

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
