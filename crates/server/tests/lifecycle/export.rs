//! Access and portability (GDPR Art. 15 and 20): everything held about a subject, decrypted,
//! with its schema and the log of who accessed it.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use ward_policy::FieldType;
use ward_testkit::{Options, TenantFixture, TestServer};

use crate::support::{
    ANALYTICS, ESSENTIAL, LEGAL, RECRUITMENT, SECURITY, assert_error, days, export_path, id,
    read_path, ref_export_path, subject_with_ref, write,
};

/// The example policy has no `bool` field; this collection adds one so every type round-trips.
const PREFERENCES: &str = r#"

[collections.preferences]
description = "Communication preferences"
data_subjects = ["customer"]
purposes = ["essential.service"]
legal_basis = "contract"
recipients = ["OVHcloud"]

[collections.preferences.fields.newsletter]
type = "bool"
category = "user.privacy_preferences"
required = true

[collections.preferences.fields.channels]
type = "json"
category = "user.privacy_preferences"
"#;

const REF: &str = "crm-export-4411";

async fn start_with_every_type() -> TestServer {
    let policy = format!("{}{PREFERENCES}", ward_policy::EXAMPLE_POLICY);
    TestServer::start_with(Options {
        policy: Some(policy),
        ..crate::options()
    })
    .await
}

/// One record per collection, with values of every field type, as the client sends them
/// (often not in canonical form).
fn every_collection() -> Vec<(&'static str, Value)> {
    vec![
        (
            "contact",
            json!({ "name": "Ada Lovelace", "company": "Analytical Engines Ltd", "email": "Ada.Lovelace@Example.COM",
                    "phone": "+44 (0)20 7946 0958", "postal_address": "12 St James's Square\r\nLondon", "country": "gb" }),
        ),
        (
            "job_application",
            json!({ "name": "Ada Lovelace", "email": "ada@jobs.example", "phone": "0033 6 12 34 56 78",
                    "cover_letter": "Notes on the engine.", "cv": "Mathematician.\tPoet of science.", "applied_on": "2026-01-10" }),
        ),
        (
            "browser_visit",
            json!({ "ip": "2001:DB8:0:0::1", "language": "pt_br", "geo": { "lat": 48.856613, "lon": 2.352222 }, "country": "fr",
                    "browser": "Firefox 147", "referrer": "https://example.org/?q=engines", "visited_at": "2026-01-15T10:11:12+02:00" }),
        ),
        (
            "customer_record",
            json!({ "name": "Ada Lovelace", "email": "ada@customers.example", "phone": "+33612345678", "birth_date": "1815-12-10",
                    "loyalty_points": -42, "notes": { "tags": ["vip", 1, 2.5, null, true], "nested": { "k": "v" } },
                    "city": "London", "delivery_location": { "lat": -33.8688, "lon": 151.2093 },
                    "last_seen_ip": "::ffff:192.0.2.10", "contract_end": "2026-06-30" }),
        ),
        (
            "billing",
            json!({ "invoice_number": "INV-2026-0001", "amount": "0099.90", "billing_name": "A. Lovelace",
                    "billing_address": "12 St James's Square", "vat_id": "GB123456789", "issued_on": "2026-01-14" }),
        ),
        (
            "server_log",
            json!({ "ip": "192.0.2.1", "user_agent": "curl/8.5", "path": "/login", "at": "2026-01-15T09:00:00.250Z" }),
        ),
        (
            "preferences",
            json!({ "newsletter": false, "channels": { "email": true, "sms": false } }),
        ),
    ]
}

/// A read purpose for each collection.
fn purpose_of(collection: &str) -> &'static str {
    match collection {
        "job_application" => RECRUITMENT,
        "browser_visit" => ANALYTICS,
        "billing" => LEGAL,
        "server_log" => SECURITY,
        _ => ESSENTIAL,
    }
}

async fn export(srv: &TestServer, t: &TenantFixture, s: &str) -> Value {
    let (st, doc) = srv.get(&export_path(&t.id, s), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{doc}");
    assert_eq!(doc["format"], "ward.subject-export.v1", "{doc}");
    doc
}

#[tokio::test]
async fn export_round_trips_every_collection_and_every_field_type() {
    let srv = start_with_every_type().await;
    let t = srv.tenant("Export Co").await;
    let s = subject_with_ref(&srv, &t, REF).await;
    let other = srv.subject(&t).await;
    let mut written = Vec::new();
    for (collection, fields) in every_collection() {
        written.push(write(&srv, &t, &s, collection, fields).await);
    }
    let other_contact = srv
        .contact(&t, &other, "Someone Else", "else@example.org")
        .await;
    // The write answered with normalized values; the export must give exactly those back.
    let by = |c: &str| written.iter().find(|w| w["collection"] == c).unwrap();
    assert_eq!(by("contact")["fields"]["email"], "Ada.Lovelace@example.com");
    assert_eq!(by("contact")["fields"]["phone"], "+442079460958");
    assert_eq!(by("contact")["fields"]["country"], "GB");
    assert_eq!(
        by("contact")["fields"]["postal_address"],
        "12 St James's Square\nLondon"
    );
    assert_eq!(by("browser_visit")["fields"]["ip"], "2001:db8::1");
    assert_eq!(by("browser_visit")["fields"]["language"], "pt-BR");
    assert_eq!(
        by("browser_visit")["fields"]["visited_at"],
        "2026-01-15T08:11:12Z"
    );
    assert_eq!(
        by("customer_record")["fields"]["last_seen_ip"],
        "192.0.2.10"
    );
    assert_eq!(by("billing")["fields"]["amount"], "99.90");
    assert_eq!(by("server_log")["fields"]["at"], "2026-01-15T09:00:00.25Z");

    // Reads of this subject (and of another one) before the export.
    for w in [by("contact"), by("browser_visit")] {
        let (st, b) = srv
            .get(
                &read_path(
                    &t.id,
                    &s,
                    &id(w),
                    purpose_of(w["collection"].as_str().unwrap()),
                ),
                &t.owner,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
    }
    let (st, _) = srv
        .get(
            &read_path(&t.id, &other, &other_contact, ESSENTIAL),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK);

    let doc = export(&srv, &t, &s).await;
    assert_eq!(doc["subject"]["id"], s.as_str());
    assert_eq!(doc["tenant"], json!({ "id": t.id, "name": "Export Co" }));
    assert_eq!(
        doc["controller"],
        json!({ "name": "Acme Cloud SAS", "contact": "privacy@acme.example" })
    );
    let records = doc["records"].as_array().unwrap();
    assert_eq!(records.len(), written.len(), "{doc}");
    for w in &written {
        let r = records
            .iter()
            .find(|r| r["id"] == w["id"])
            .unwrap_or_else(|| panic!("{} missing from the export", w["id"]));
        for key in [
            "collection",
            "fields",
            "created_at",
            "updated_at",
            "expires_at",
        ] {
            assert_eq!(
                r[key], w[key],
                "{key} of the {} record differs between write and export",
                w["collection"]
            );
        }
    }
    assert!(
        records.iter().all(|r| r["id"] != other_contact.as_str()),
        "another subject's record was exported"
    );

    // The schema explains every exported collection.
    let schema = &doc["schema"]["collections"];
    let names: BTreeSet<&str> = schema
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = written
        .iter()
        .map(|w| w["collection"].as_str().unwrap())
        .collect();
    assert_eq!(names, expected);
    let policy = srv.vault.policy();
    let mut types = BTreeSet::new();
    for (name, c) in &policy.collections {
        let sc = &schema[name.as_str()];
        let fields = sc["fields"].as_object().unwrap();
        assert_eq!(fields.len(), c.fields.len(), "{name}: {sc}");
        for (fname, field) in &c.fields {
            let f = &sc["fields"][fname.as_str()];
            assert_eq!(f["type"], field.ty.as_str(), "{name}.{fname}");
            assert_eq!(f["category"], field.category.as_str(), "{name}.{fname}");
            types.insert(field.ty);
        }
        let purposes: Vec<&str> = sc["purposes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["key"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = c.purposes.iter().map(|p| p.as_str()).collect();
        assert_eq!(purposes, expected, "{name}");
        let recipients: Vec<&str> = sc["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            recipients,
            c.recipients.iter().map(String::as_str).collect::<Vec<_>>(),
            "{name}"
        );
    }
    assert_eq!(
        types,
        FieldType::ALL.into_iter().collect::<BTreeSet<_>>(),
        "the round trip must cover every field type"
    );
    assert_eq!(schema["contact"]["legal_basis"], "contract");
    assert_eq!(
        schema["contact"]["retention"],
        json!({ "retain_for": "3y", "on_expiry": "anonymize" })
    );
    assert_eq!(schema["contact"]["legal_hold"], Value::Null);
    assert_eq!(schema["contact"]["fields"]["email"]["type"], "email");
    assert_eq!(
        schema["contact"]["fields"]["email"]["category"],
        "user.contact.email"
    );
    assert_eq!(schema["billing"]["legal_basis"], "legal_obligation");
    assert_eq!(
        schema["billing"]["retention"],
        json!({ "retain_for": "10y", "on_expiry": "delete" })
    );
    assert_eq!(schema["billing"]["legal_hold"]["retain_for"], "10y");
    assert!(
        schema["billing"]["legal_hold"]["reason"]
            .as_str()
            .unwrap()
            .contains("tax law")
    );
    let stripe = &schema["billing"]["recipients"][0];
    assert_eq!(stripe["name"], "Stripe");
    assert!(
        stripe["location"]
            .as_str()
            .unwrap()
            .contains("United States"),
        "{stripe}"
    );
    assert!(
        stripe["purpose"].as_str().is_some_and(|p| !p.is_empty()),
        "{stripe}"
    );
    assert_eq!(
        schema["browser_visit"]["legal_basis"],
        "legitimate_interests"
    );
    assert_eq!(
        schema["browser_visit"]["retention"],
        json!({ "retain_for": "60d", "on_expiry": "anonymize" })
    );
    assert_eq!(schema["preferences"]["retention"], Value::Null);

    // The access log holds every earlier access to this subject, and only to it.
    let log = doc["access_log"].as_array().unwrap();
    assert!(log.iter().all(|e| e["subject"] == s.as_str()), "{log:?}");
    let creates = log
        .iter()
        .filter(|e| e["action"] == "record_create")
        .count();
    assert_eq!(creates, written.len(), "{log:?}");
    for w in [by("contact"), by("browser_visit")] {
        let purpose = purpose_of(w["collection"].as_str().unwrap());
        assert!(
            log.iter().any(|e| e["action"] == "record_read"
                && e["record"] == w["id"]
                && e["purpose"] == purpose
                && e["outcome"] == "allowed"),
            "the read of {} for {purpose} is missing from {log:?}",
            w["id"]
        );
    }
    assert!(
        log.iter().any(|e| e["action"] == "subject_create"),
        "{log:?}"
    );
    // The export itself is the next entry.
    let doc2 = export(&srv, &t, &s).await;
    assert_eq!(doc2["access_log"].as_array().unwrap().len(), log.len() + 1);
    assert_eq!(
        doc2["access_log"].as_array().unwrap().last().unwrap()["action"],
        "subject_export"
    );
}

#[tokio::test]
async fn export_by_external_reference_gives_the_same_document() {
    let srv = crate::start().await;
    let t = srv.tenant("Ref Export Co").await;
    let s = subject_with_ref(&srv, &t, REF).await;
    let r = write(
        &srv,
        &t,
        &s,
        "contact",
        json!({ "name": "Grace Hopper", "email": "grace@example.org" }),
    )
    .await;
    let by_id = export(&srv, &t, &s).await;
    let (st, by_ref) = srv.get(&ref_export_path(&t.id, REF), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{by_ref}");
    for key in ["format", "subject", "tenant", "schema", "records"] {
        assert_eq!(by_ref[key], by_id[key], "{key}");
    }
    assert_eq!(by_ref["records"][0]["fields"], r["fields"]);
    // The reference is matched after trimming, like at creation, and nothing else matches.
    let (st, padded) = srv
        .get(&ref_export_path(&t.id, &format!("  {REF} ")), &t.owner)
        .await;
    assert_eq!(
        (st, &padded["subject"]["id"]),
        (StatusCode::OK, &json!(s)),
        "{padded}"
    );
    assert_error(
        &srv.get(&ref_export_path(&t.id, "crm-export-4412"), &t.owner)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn only_owners_and_admins_of_the_tenant_export() {
    let srv = crate::start().await;
    let t = srv.tenant("Export Roles Co").await;
    let s = subject_with_ref(&srv, &t, REF).await;
    srv.contact(&t, &s, "Hedy Lamarr", "hedy@example.org").await;
    let member = srv.key(&t.id, &t.owner, "member", &[ESSENTIAL]).await;
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let other = srv.tenant("Other Co").await;
    for path in [export_path(&t.id, &s), ref_export_path(&t.id, REF)] {
        for token in [&member, &auditor] {
            let resp = srv.get(&path, token).await;
            assert_error(&resp, StatusCode::FORBIDDEN, "role_not_permitted");
            assert!(resp.1.get("records").is_none());
        }
        let resp = srv.get(&path, &srv.operator).await;
        assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
        assert!(resp.1.get("records").is_none());
        assert_error(
            &srv.get(&path, &other.owner).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
        let (st, doc) = srv.get(&path, &admin).await;
        assert_eq!(st, StatusCode::OK, "{doc}");
    }
    assert_error(
        &srv.get(
            &export_path(&t.id, "0190a5d2-0000-7000-8000-000000000000"),
            &t.owner,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn expired_records_are_not_exported() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Expiry Export Co").await;
    let log = crate::support::log_now(&srv, &t, &s, "192.0.2.77").await;
    let contact = write(
        &srv,
        &t,
        &s,
        "contact",
        json!({ "name": "Katherine Johnson", "email": "kj@example.org" }),
    )
    .await;
    let doc = export(&srv, &t, &s).await;
    assert_eq!(doc["records"].as_array().unwrap().len(), 2, "{doc}");

    srv.clock.advance(days(14) + time::Duration::seconds(1));
    let doc = export(&srv, &t, &s).await;
    let ids: Vec<&Value> = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(
        ids,
        vec![&contact["id"]],
        "the server log expired 14 days after its `at`: {doc}"
    );
    assert!(
        doc["schema"]["collections"].get("server_log").is_none(),
        "{doc}"
    );
    assert_ne!(log["id"], contact["id"]);
}
