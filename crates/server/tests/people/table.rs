//! Every endpoint × every principal, with the exact status each gets.
//!
//! The endpoints are read from the router itself (its route list, then one unauthenticated
//! probe per method: a method the router does not serve answers 405), so a new endpoint
//! without a row here fails [`every_endpoint_answers_every_principal_exactly`]. Each cell
//! runs against a world of its own (a fresh tenant with a subject, a record, a member key
//! to revoke and a data-subject request), so no cell sees another's effects.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::{Options, TenantFixture, TestServer};
use ward_vault::{Clock as _, Role};

use crate::common::*;
use ward_testkit::api::rfc3339;

/// The principals, in column order.
const PRINCIPALS: [&str; 14] = [
    "none",
    "revoked key",
    "expired key",
    "other tenant's owner",
    "ended session",
    "owner",
    "admin",
    "member",
    "auditor",
    "operator",
    "support, no grant",
    "support, expired grant",
    "support, live grant of another scope",
    "support, live grant",
];

/// (method, route, expected status per principal in [`PRINCIPALS`] order).
const TABLE: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/v1/doctor",
        "401 401 401 403 401 403 403 403 403 200 403 403 403 403",
    ),
    (
        "DELETE",
        "/v1/auth/sessions",
        "401 401 401 403 401 403 403 403 403 403 204 204 204 204",
    ),
    (
        "DELETE",
        "/v1/auth/sessions/{session}",
        "401 401 401 403 401 403 403 403 403 403 404 404 404 404",
    ),
    (
        "DELETE",
        "/v1/tenants/{tenant}/keys/{key}",
        "401 401 401 404 401 204 204 403 403 204 403 403 403 403",
    ),
    (
        "DELETE",
        "/v1/tenants/{tenant}/subjects/{subject}/records/{record}",
        "401 401 401 404 401 204 204 204 403 404 404 404 404 204",
    ),
    (
        "DELETE",
        "/v1/tenants/{tenant}/subjects/{subject}/restrictions",
        "401 401 401 404 401 200 200 403 403 404 404 404 404 404",
    ),
    (
        "GET",
        "/healthz",
        "200 200 200 200 200 200 200 200 200 200 200 200 200 200",
    ),
    (
        "GET",
        "/metrics",
        "200 200 200 200 200 200 200 200 200 200 200 200 200 200",
    ),
    (
        "GET",
        "/openapi.json",
        "200 200 200 200 200 200 200 200 200 200 200 200 200 200",
    ),
    (
        "GET",
        "/v1/audit/checkpoint",
        "401 401 401 200 401 200 200 200 200 200 200 200 200 200",
    ),
    (
        "GET",
        "/v1/audit/proof/consistency",
        "401 401 401 200 401 200 200 200 200 200 200 200 200 200",
    ),
    (
        "GET",
        "/v1/audit/proof/inclusion",
        "401 401 401 200 401 200 200 200 200 200 200 200 200 200",
    ),
    (
        "GET",
        "/v1/audit/public-key",
        "200 200 200 200 200 200 200 200 200 200 200 200 200 200",
    ),
    (
        "GET",
        "/v1/auth/sessions",
        "401 401 401 403 401 403 403 403 403 403 200 200 200 200",
    ),
    (
        "GET",
        "/v1/keys/status",
        "401 401 401 403 401 403 403 403 403 200 403 403 403 403",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}",
        "401 401 401 404 401 200 200 200 200 200 404 404 200 200",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/audit",
        "401 401 401 404 401 200 200 403 200 404 404 404 404 200",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/export",
        "401 401 401 404 401 200 200 403 403 404 404 404 404 404",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/keys",
        "401 401 401 404 401 200 200 403 403 200 403 403 403 403",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/lookup",
        "401 401 401 404 401 200 200 200 403 404 404 404 404 200",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/requests",
        "401 401 401 404 401 200 200 403 403 404 404 404 404 404",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/subjects",
        "401 401 401 404 401 200 200 200 403 404 404 404 404 200",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/subjects/export",
        "401 401 401 404 401 200 200 403 403 404 404 404 404 404",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/subjects/{subject}/export",
        "401 401 401 404 401 200 200 403 403 404 404 404 404 404",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/subjects/{subject}/records",
        "401 401 401 404 401 200 200 200 403 404 404 404 200 200",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/subjects/{subject}/records/{record}",
        "401 401 401 404 401 200 200 200 403 404 404 404 404 200",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/support-grants",
        "401 401 401 404 401 200 200 403 200 403 403 403 403 403",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/users",
        "401 401 401 404 401 200 200 403 200 404 404 404 404 404",
    ),
    (
        "DELETE",
        "/v1/tenants/{tenant}/users/{user}",
        "401 401 401 404 401 404 404 403 403 404 404 404 404 404",
    ),
    (
        "PATCH",
        "/v1/tenants/{tenant}/users/{user}",
        "401 401 401 404 401 404 404 403 403 404 404 404 404 404",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/users/{user}/password-reset",
        "401 401 401 404 401 404 404 403 403 404 404 404 404 404",
    ),
    (
        "PATCH",
        "/v1/tenants/{tenant}/subjects/{subject}/records/{record}",
        "401 401 401 404 401 200 200 200 403 404 404 404 404 200",
    ),
    (
        "POST",
        "/v1/audit/checkpoint",
        "401 401 401 403 401 403 403 403 200 200 403 403 403 403",
    ),
    (
        "POST",
        "/v1/auth/login",
        "401 401 401 401 401 401 401 401 401 401 401 401 401 401",
    ),
    (
        "POST",
        "/v1/auth/logout",
        "401 401 401 403 401 403 403 403 403 403 204 204 204 204",
    ),
    (
        "POST",
        "/v1/auth/password",
        "401 401 401 403 401 403 403 403 403 403 422 422 422 422",
    ),
    (
        "POST",
        "/v1/auth/password/reset",
        "401 401 401 401 401 401 401 401 401 401 401 401 401 401",
    ),
    (
        "POST",
        "/v1/invitations/claim",
        "401 401 401 401 401 401 401 401 401 401 401 401 401 401",
    ),
    (
        "POST",
        "/v1/keys/rotate",
        "401 401 401 403 401 403 403 403 403 200 403 403 403 403",
    ),
    (
        "POST",
        "/v1/keys/rotate-records",
        "401 401 401 403 401 403 403 403 403 202 403 403 403 403",
    ),
    (
        "POST",
        "/v1/retention/run",
        "401 401 401 403 401 403 403 403 403 200 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants",
        "401 401 401 403 401 403 403 403 403 201 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/batch",
        "401 401 401 404 401 200 200 200 403 404 404 404 404 200",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/cancel",
        "401 401 401 404 401 200 403 403 403 200 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/invitations",
        "401 401 401 404 401 403 403 403 403 409 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/keys",
        "401 401 401 404 401 201 201 403 403 403 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/reactivate",
        "401 401 401 404 401 409 403 403 403 409 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/requests",
        "401 401 401 404 401 201 201 403 403 404 404 404 404 404",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/requests/{request}/complete",
        "401 401 401 404 401 200 200 403 403 404 404 404 404 404",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/requests/{request}/reject",
        "401 401 401 404 401 200 200 403 403 404 404 404 404 404",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/subjects",
        "401 401 401 404 401 201 201 201 403 404 404 404 404 201",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/subjects/{subject}/erase",
        "401 401 401 404 401 200 200 403 403 404 404 404 404 404",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/subjects/{subject}/records",
        "401 401 401 404 401 201 201 201 403 404 404 404 404 201",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/subjects/{subject}/restrictions",
        "401 401 401 404 401 200 200 403 403 404 404 404 404 404",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/support-grants",
        "401 401 401 404 401 403 403 403 403 403 201 201 201 201",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/support-grants/{grant}/approve",
        "401 401 401 404 401 404 404 403 403 403 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/support-grants/{grant}/deny",
        "401 401 401 404 401 404 404 403 403 403 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/support-grants/{grant}/revoke",
        "401 401 401 404 401 404 404 403 403 403 403 403 403 403",
    ),
    (
        "GET",
        "/v1/alerts",
        "401 401 401 403 401 403 403 403 403 200 403 403 403 403",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/alerts",
        "401 401 401 404 401 200 200 403 200 200 403 403 403 403",
    ),
    (
        "POST",
        "/v1/alerts/{alert}/acknowledge",
        "401 401 401 403 401 403 403 403 403 404 403 403 403 403",
    ),
    (
        "POST",
        "/v1/alerts/{alert}/resolve",
        "401 401 401 403 401 403 403 403 403 404 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/alerts/{alert}/acknowledge",
        "401 401 401 404 401 404 403 403 403 404 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/alerts/{alert}/resolve",
        "401 401 401 404 401 404 403 403 403 404 403 403 403 403",
    ),
    (
        "DELETE",
        "/v1/tenants/{tenant}/webhooks/{webhook}",
        "401 401 401 404 401 404 404 403 403 403 403 403 403 403",
    ),
    (
        "DELETE",
        "/v1/webhooks/{webhook}",
        "401 401 401 403 401 403 403 403 403 404 403 403 403 403",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/webhooks",
        "401 401 401 404 401 200 200 403 403 403 403 403 403 403",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/webhooks/{webhook}/deliveries",
        "401 401 401 404 401 404 404 403 403 403 403 403 403 403",
    ),
    (
        "GET",
        "/v1/webhooks",
        "401 401 401 403 401 403 403 403 403 200 403 403 403 403",
    ),
    (
        "GET",
        "/v1/webhooks/{webhook}/deliveries",
        "401 401 401 403 401 403 403 403 403 404 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/webhooks",
        "401 401 401 404 401 201 201 403 403 403 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/webhooks/{webhook}/test",
        "401 401 401 404 401 404 404 403 403 403 403 403 403 403",
    ),
    (
        "POST",
        "/v1/webhooks",
        "401 401 401 403 401 403 403 403 403 201 403 403 403 403",
    ),
    (
        "POST",
        "/v1/webhooks/{webhook}/test",
        "401 401 401 403 401 403 403 403 403 404 403 403 403 403",
    ),
    (
        "PUT",
        "/v1/tenants/{tenant}/retention/{collection}",
        "401 401 401 404 401 200 200 403 403 404 404 404 404 404",
    ),
    (
        "PUT",
        "/v1/tenants/{tenant}/subjects/{subject}/hold",
        "401 401 401 404 401 204 204 403 403 404 404 404 404 404",
    ),
    (
        "PATCH",
        "/v1/tenants/{tenant}/settings",
        "401 401 401 404 401 200 403 403 403 403 403 403 403 403",
    ),
    (
        "POST",
        "/v1/auth/totp",
        "401 401 401 403 401 403 403 403 403 403 409 409 409 409",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/incidents",
        "401 401 401 404 401 200 200 403 200 403 403 403 403 403",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/incidents/{incident}",
        "401 401 401 404 401 200 200 403 200 403 403 403 403 403",
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/incidents/{incident}/notification",
        "401 401 401 404 401 200 200 403 200 403 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/incidents",
        "401 401 401 404 401 201 201 403 403 403 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/incidents/{incident}/notes",
        "401 401 401 404 401 201 201 403 403 403 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/incidents/{incident}/notified",
        "401 401 401 404 401 200 200 403 403 403 403 403 403 403",
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/incidents/{incident}/close",
        "401 401 401 404 401 200 200 403 403 403 403 403 403 403",
    ),
    (
        "GET",
        "/v1/incidents",
        "401 401 401 403 401 403 403 403 403 200 403 403 403 403",
    ),
    (
        "GET",
        "/v1/incidents/{incident}",
        "401 401 401 403 401 403 403 403 403 200 403 403 403 403",
    ),
    (
        "GET",
        "/v1/incidents/{incident}/notification",
        "401 401 401 403 401 403 403 403 403 200 403 403 403 403",
    ),
    (
        "POST",
        "/v1/incidents",
        "401 401 401 403 401 403 403 403 403 201 403 403 403 403",
    ),
    (
        "POST",
        "/v1/incidents/{incident}/notes",
        "401 401 401 403 401 403 403 403 403 201 403 403 403 403",
    ),
    (
        "POST",
        "/v1/incidents/{incident}/notified",
        "401 401 401 403 401 403 403 403 403 200 403 403 403 403",
    ),
    (
        "POST",
        "/v1/incidents/{incident}/close",
        "401 401 401 403 401 403 403 403 403 200 403 403 403 403",
    ),
    (
        "POST",
        "/v1/auth/totp/confirm",
        "401 401 401 403 401 403 403 403 403 403 409 409 409 409",
    ),
];

static ALL_ACTIONS: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| json!(["read", "write", "audit"]));

/// One cell's world.
struct World {
    t: TenantFixture,
    subject: String,
    record: String,
    member_key_id: String,
    request: String,
    /// An incident of the tenant.
    incident: String,
    /// An operator incident that affects the tenant.
    operator_incident: String,
}

/// Credentials shared by every world: an ended session, the other tenant's owner, and the
/// support users with their sessions.
struct Cast {
    other: TenantFixture,
    ended: Session,
    sup_none: (Account, Session),
    sup_expired: (Account, Session),
    sup_other: (Account, Session),
    sup_live: (Account, Session),
}

enum Cred {
    None,
    Key(String),
    Session(Session),
}

async fn world(srv: &TestServer) -> World {
    let t = srv.tenant("Table").await;
    let (st, s) = srv
        .post(
            &format!("/v1/tenants/{}/subjects", t.id),
            &t.owner,
            json!({ "external_ref": "ref-1" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{s}");
    let subject = s["id"].as_str().unwrap().to_owned();
    let record = srv.record(&t, &subject, "contact", contact()).await;
    let (st, k) = srv
        .post(
            &format!("/v1/tenants/{}/keys", t.id),
            &t.owner,
            json!({ "name": "target", "role": "member", "purposes": ["essential.service"] }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{k}");
    let (st, r) = srv
        .post(
            &format!("/v1/tenants/{}/requests", t.id),
            &t.owner,
            json!({ "kind": "access", "subject": subject, "verified_by": "login" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let (st, i) = srv
        .post(
            &format!("/v1/tenants/{}/incidents", t.id),
            &t.owner,
            json!({ "title": "table", "subjects": [subject] }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{i}");
    let (st, oi) = srv
        .post(
            "/v1/incidents",
            &srv.operator,
            json!({ "title": "table", "tenants": [t.id] }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{oi}");
    World {
        t,
        subject,
        record,
        member_key_id: k["id"].as_str().unwrap().to_owned(),
        request: r["id"].as_str().unwrap().to_owned(),
        incident: i["id"].as_str().unwrap().to_owned(),
        operator_incident: oi["id"].as_str().unwrap().to_owned(),
    }
}

async fn grant(
    srv: &TestServer,
    w: &World,
    who: &Session,
    (collections, actions): (Value, Value),
    duration: &str,
) {
    let grants = format!("/v1/tenants/{}/support-grants", w.t.id);
    let (st, g) = call(
        srv,
        who,
        Method::POST,
        &grants,
        Some(json!({
            "ticket": "T-1", "justification": "table", "collections": collections,
            "actions": actions, "duration": duration,
        })),
        true,
    )
    .await;
    assert_eq!(
        st,
        StatusCode::CREATED,
        "{collections} at {}: {g}",
        srv.clock.now()
    );
    let approve = format!("{grants}/{}/approve", g["id"].as_str().unwrap());
    let (st, g) = srv.post(&approve, &w.t.owner, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{g}");
}

/// A support user of its own, logged in (for a cell that ends its session).
async fn fresh_support(srv: &TestServer) -> (Account, Session) {
    let email = format!("s{}@example.com", uuid::Uuid::new_v4().simple());
    let a = account(srv, &email, Role::Support, None, true).await;
    let s = login(srv, &a).await;
    (a, s)
}

/// The credential of principal `p` in world `w` (granting what it needs first). With `own`,
/// a support principal gets a user of its own, so a cell that logs out ends no other
/// cell's session.
async fn credential(srv: &TestServer, cast: &Cast, w: &World, p: usize, own: bool) -> Cred {
    let shared = |s: &(Account, Session)| {
        let s = s.1.clone();
        async move { if own { fresh_support(srv).await.1 } else { s } }
    };
    let key = |role: &'static str, purposes: &'static [&'static str]| async move {
        srv.key(&w.t.id, &w.t.owner, role, purposes).await
    };
    match PRINCIPALS[p] {
        "none" => Cred::None,
        "revoked key" => {
            let k = key("member", &["essential.service"]).await;
            let (st, keys) = srv
                .get(&format!("/v1/tenants/{}/keys", w.t.id), &w.t.owner)
                .await;
            assert_eq!(st, StatusCode::OK);
            let id = keys
                .as_array()
                .unwrap()
                .iter()
                .filter(|k| k["revoked_at"].is_null() && k["role"] == "member")
                .map(|k| k["id"].as_str().unwrap().to_owned())
                .find(|id| *id != w.member_key_id)
                .unwrap();
            let (st, _) = srv
                .delete(&format!("/v1/tenants/{}/keys/{id}", w.t.id), &w.t.owner)
                .await;
            assert_eq!(st, StatusCode::NO_CONTENT);
            Cred::Key(k)
        }
        "expired key" => {
            let end = rfc3339(srv.clock.now() + time::Duration::seconds(1));
            let (st, k) = srv
                .post(
                    &format!("/v1/tenants/{}/keys", w.t.id),
                    &w.t.owner,
                    json!({ "name": "ends", "role": "admin", "expires_at": end }),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{k}");
            srv.clock.advance(time::Duration::seconds(2));
            Cred::Key(k["token"].as_str().unwrap().to_owned())
        }
        "other tenant's owner" => Cred::Key(cast.other.owner.clone()),
        "ended session" => Cred::Session(cast.ended.clone()),
        "owner" => Cred::Key(w.t.owner.clone()),
        "admin" => Cred::Key(key("admin", &[]).await),
        "member" => Cred::Key(key("member", &["essential.service"]).await),
        "auditor" => Cred::Key(key("auditor", &[]).await),
        "operator" => Cred::Key(srv.operator.clone()),
        "support, no grant" => Cred::Session(shared(&cast.sup_none).await),
        "support, expired grant" => {
            let s = shared(&cast.sup_expired).await;
            grant(srv, w, &s, (json!(["contact"]), ALL_ACTIONS.clone()), "1s").await;
            srv.clock.advance(time::Duration::seconds(2));
            Cred::Session(s)
        }
        "support, live grant of another scope" => {
            let s = shared(&cast.sup_other).await;
            // Another collection, reading only.
            grant(
                srv,
                w,
                &s,
                (json!(["job_application"]), json!(["read"])),
                "4h",
            )
            .await;
            Cred::Session(s)
        }
        "support, live grant" => {
            let s = shared(&cast.sup_live).await;
            grant(srv, w, &s, (json!(["contact"]), ALL_ACTIONS.clone()), "4h").await;
            Cred::Session(s)
        }
        other => unreachable!("{other}"),
    }
}

/// The concrete request of a route in a world: path and body.
fn request(method: &str, route: &str, w: &World) -> (String, Option<Value>) {
    let incident = if route.starts_with("/v1/incidents/") {
        &w.operator_incident
    } else {
        &w.incident
    };
    let path = route
        .replace("{tenant}", &w.t.id)
        .replace("{incident}", incident)
        .replace("{subject}", &w.subject)
        .replace("{record}", &w.record)
        .replace("{key}", &w.member_key_id)
        .replace("{request}", &w.request)
        .replace("{collection}", "contact")
        .replace("{grant}", "0190a5d2-0000-7000-8000-000000000000")
        .replace("{alert}", "0190a5d2-0000-7000-8000-000000000000")
        .replace("{webhook}", "0190a5d2-0000-7000-8000-000000000000")
        .replace("{session}", "0190a5d2-0000-7000-8000-000000000000")
        .replace("{user}", "0190a5d2-0000-7000-8000-000000000000");
    let purpose = "purpose=essential.service";
    let (path, body) = match (method, route) {
        ("POST", "/v1/tenants") => (path, Some(json!({ "name": "New" }))),
        ("POST", "/v1/tenants/{tenant}/incidents") => (path, Some(json!({ "title": "New" }))),
        ("POST", "/v1/incidents") => (path, Some(json!({ "title": "New", "tenants": [w.t.id] }))),
        ("POST", "/v1/tenants/{tenant}/incidents/{incident}/notes")
        | ("POST", "/v1/incidents/{incident}/notes") => {
            (path, Some(json!({ "text": "n", "kind": "note" })))
        }
        ("GET", "/v1/incidents/{incident}/notification") => {
            (format!("{path}?tenant={}", w.t.id), None)
        }
        ("POST", "/v1/tenants/{tenant}/webhooks") | ("POST", "/v1/webhooks") => (
            path,
            Some(json!({ "url": "https://hooks.example.com/ward" })),
        ),
        ("POST", "/v1/tenants/{tenant}/keys") => (
            path,
            Some(json!({ "name": "k", "role": "member", "purposes": ["essential.service"] })),
        ),
        ("POST", "/v1/tenants/{tenant}/subjects") => (
            path,
            Some(json!({ "external_ref": uuid::Uuid::new_v4().to_string() })),
        ),
        ("GET", "/v1/tenants/{tenant}/subjects") => (format!("{path}?external_ref=ref-1"), None),
        ("POST", "/v1/tenants/{tenant}/subjects/{subject}/records") => (
            path,
            Some(json!({ "collection": "contact", "fields": contact() })),
        ),
        ("GET", "/v1/tenants/{tenant}/subjects/{subject}/records")
        | ("GET", "/v1/tenants/{tenant}/subjects/{subject}/records/{record}") => {
            (format!("{path}?{purpose}"), None)
        }
        ("PATCH", "/v1/tenants/{tenant}/subjects/{subject}/records/{record}") => (
            path,
            Some(json!({ "purpose": "essential.service", "fields": { "name": "Changed" } })),
        ),
        ("GET", "/v1/tenants/{tenant}/lookup") => (
            format!("{path}?collection=contact&field=email&value=ada@example.com&{purpose}"),
            None,
        ),
        ("POST", "/v1/tenants/{tenant}/batch") => (
            path,
            Some(
                json!({ "items": [{ "op": "create_record", "subject": w.subject,
                "collection": "contact", "fields": contact() }] }),
            ),
        ),
        ("GET", "/v1/tenants/{tenant}/subjects/export") => {
            (format!("{path}?external_ref=ref-1"), None)
        }
        ("POST", "/v1/tenants/{tenant}/subjects/{subject}/restrictions")
        | ("DELETE", "/v1/tenants/{tenant}/subjects/{subject}/restrictions") => (
            path,
            Some(json!({ "purposes": ["marketing.communications.email"] })),
        ),
        ("PUT", "/v1/tenants/{tenant}/subjects/{subject}/hold") => {
            (path, Some(json!({ "until": null })))
        }
        ("PUT", "/v1/tenants/{tenant}/retention/{collection}") => {
            (path, Some(json!({ "retain_for": "30d" })))
        }
        ("POST", "/v1/tenants/{tenant}/requests") => (
            path,
            Some(json!({ "kind": "access", "subject": w.subject, "verified_by": "login" })),
        ),
        ("POST", "/v1/tenants/{tenant}/requests/{request}/complete") => (path, Some(json!({}))),
        ("POST", "/v1/tenants/{tenant}/requests/{request}/reject") => {
            (path, Some(json!({ "reason": "duplicate" })))
        }
        ("POST", "/v1/keys/rotate") | ("POST", "/v1/keys/rotate-records") => {
            (path, Some(json!({ "tenant": w.t.id })))
        }
        ("GET", "/v1/audit/proof/inclusion") => (format!("{path}?index=0&tree_size=1"), None),
        ("GET", "/v1/audit/proof/consistency") => (format!("{path}?from=1&to=2"), None),
        ("POST", "/v1/invitations/claim") => (
            path,
            Some(json!({ "invitation": "ward_inv_nothing", "name": "x" })),
        ),
        ("POST", "/v1/auth/login") => (
            path,
            Some(json!({ "email": "nobody@example.com", "password": "not a password at all" })),
        ),
        ("POST", "/v1/auth/password") => (
            path,
            Some(
                json!({ "current_password": "wrong password here", "new_password": "another long passphrase" }),
            ),
        ),
        ("POST", "/v1/auth/password/reset") => (
            path,
            Some(
                json!({ "email": "nobody@example.com", "token": "ward_reset_x", "new_password": "another long passphrase" }),
            ),
        ),
        ("POST", "/v1/tenants/{tenant}/support-grants") => (
            path,
            Some(
                json!({ "ticket": "T", "justification": "j", "collections": ["contact"],
                "actions": ["read"], "duration": "1h" }),
            ),
        ),
        ("PATCH", "/v1/tenants/{tenant}/settings") => {
            (path, Some(json!({ "require_totp": false })))
        }
        ("POST", "/v1/auth/totp/confirm") => (path, Some(json!({ "code": "123456" }))),
        ("PATCH", "/v1/tenants/{tenant}/users/{user}") => {
            (path, Some(json!({ "role": "auditor" })))
        }
        (m, _) if m != "GET" && m != "DELETE" => (path, Some(json!({}))),
        _ => (path, None),
    };
    (path, body)
}

/// The routes the router serves: its paths, and the methods each answers with other than
/// 405 to an anonymous probe.
async fn routes(srv: &TestServer) -> BTreeSet<(String, String)> {
    let paths = srv.router_paths();
    let mut out = BTreeSet::new();
    let probe = World {
        t: TenantFixture {
            id: "0190a5d2-0000-7000-8000-000000000000".into(),
            owner: String::new(),
        },
        subject: "0190a5d2-0000-7000-8000-000000000000".into(),
        record: "0190a5d2-0000-7000-8000-000000000000".into(),
        member_key_id: "0190a5d2-0000-7000-8000-000000000000".into(),
        request: "0190a5d2-0000-7000-8000-000000000000".into(),
        incident: "0190a5d2-0000-7000-8000-000000000000".into(),
        operator_incident: "0190a5d2-0000-7000-8000-000000000000".into(),
    };
    for route in &paths {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let (path, _) = request(method, route, &probe);
            let resp = reqwest::Client::new()
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("{}{path}", srv.url),
                )
                .send()
                .await
                .unwrap();
            if resp.status() != StatusCode::METHOD_NOT_ALLOWED {
                out.insert((method.to_owned(), route.clone()));
            }
        }
    }
    out
}

async fn send(srv: &TestServer, cred: &Cred, method: &str, path: &str, body: Option<Value>) -> u16 {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", srv.url));
    match cred {
        Cred::None => {}
        Cred::Key(k) => req = req.bearer_auth(k),
        Cred::Session(s) => {
            req = req
                .header("cookie", format!("ward_session={}", s.cookie))
                .header("x-csrf-token", &s.csrf);
        }
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn every_endpoint_answers_every_principal_exactly() {
    // Thousands of requests from one address, many refused on purpose: the throttle would
    // (rightly) stop them, which is not what this test is about.
    let policy = ward_policy::EXAMPLE_POLICY
        .replace("lockout_threshold = 10", "lockout_threshold = 1000000");
    let srv = TestServer::start_with(Options {
        policy: Some(policy),
        ..crate::options()
    })
    .await;
    let served = routes(&srv).await;
    let listed: BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|(m, r, _)| ((*m).to_owned(), (*r).to_owned()))
        .collect();
    let other = srv.tenant("Other").await;
    let ended_user = account(&srv, "ended@example.com", Role::Support, None, true).await;
    let ended = login(&srv, &ended_user).await;
    let (st, _) = call(&srv, &ended, Method::POST, "/v1/auth/logout", None, true).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let sup = |email: &'static str| {
        let srv = &srv;
        async move {
            let a = account(srv, email, Role::Support, None, true).await;
            srv.clock.advance(time::Duration::seconds(30));
            let s = login(srv, &a).await;
            (a, s)
        }
    };
    let cast = Cast {
        other,
        ended,
        sup_none: sup("none@example.com").await,
        sup_expired: sup("expired@example.com").await,
        sup_other: sup("other@example.com").await,
        sup_live: sup("live@example.com").await,
    };
    let mut actual = Vec::new();
    for (method, route) in &served {
        let mut row = Vec::new();
        for p in 0..PRINCIPALS.len() {
            let w = world(&srv).await;
            let own = route == "/v1/auth/logout";
            let cred = credential(&srv, &cast, &w, p, own).await;
            if route == "/v1/audit/checkpoint" && method == "POST" {
                // On-request checkpoints are at most one a minute.
                srv.clock.advance(time::Duration::seconds(61));
            }
            let (path, body) = request(method, route, &w);
            row.push(send(&srv, &cred, method, &path, body).await);
        }
        actual.push((method.clone(), route.clone(), row));
    }
    let rendered: String = actual
        .iter()
        .map(|(m, r, row)| {
            let cells: Vec<String> = row.iter().map(u16::to_string).collect();
            format!("    (\"{m}\", \"{r}\", \"{}\"),\n", cells.join(" "))
        })
        .collect();
    assert_eq!(
        served, listed,
        "the router's endpoints and the table's rows differ; the router answers:\n{rendered}"
    );
    for (m, r, row) in &actual {
        let want = TABLE
            .iter()
            .find(|(tm, tr, _)| tm == m && tr == r)
            .map(|(_, _, w)| *w)
            .unwrap_or_default();
        let want: Vec<&str> = want.split(' ').collect();
        for (i, (g, w)) in row.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_string(),
                *w,
                "{m} {r} as {}:\n{rendered}",
                PRINCIPALS[i]
            );
        }
    }
}
