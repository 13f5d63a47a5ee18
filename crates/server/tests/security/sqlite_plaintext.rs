//! No personal-data value written through the API may appear in clear anywhere in the data
//! directory: database, WAL, shared memory, key files.

use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::{TestServer, contains_bytes};

use crate::support::{enc, send};

/// Distinctive values, as sent by the client.
const EMAIL: &str = "Xanthippe.Quokkawood@Example-Mailhost.COM";
const EMAIL2: &str = "yorick.zanzibarfeld@example-mailhost.org";
const NAME: &str = "Xanthippe Quokkawood";
const NAME_PATCHED: &str = "Xanthippe Quokkawood-Rennerfeld";
const NAME_UNICODE: &str = "Żaneta Ołówkiewicz-Brzęczyszczykiewicz";
const PHONE: &str = "+33 (0)6 71 82 93 04";
const PHONE_NORMALIZED: &str = "+33671829304";
const PHONE_PATCHED: &str = "0049 30 9876 5432";
const ADDRESS: &str = "17 Rue des Ornithorynques Improbables, 75011 Paris";
const COMPANY: &str = "Quokkawood Zitherworks SARL";
const IP: &str = "203.0.113.187";
const IP6: &str = "2001:DB8:0:0:0:0:7A3F:1C2D";
const NOTES_SECRET: &str = "allergic to zanthoxylum piperitum";
const NOTES_KEY_VALUE: &str = "locker-combination-918273";
const GEO_LAT: &str = "47.918273";
const BIRTH_DATE: &str = "1979-03-14";
const CITY: &str = "Quimperlé-sur-Zorn";
const EXTERNAL_REF: &str = "crm-customer-XQ-884271-quokka";
const COVER_LETTER: &str = "I have always dreamt of cataloguing zither strings for a living.";
const INVOICE_NAME: &str = "Zebulon Invoicefield";
const BILLING_ADDRESS: &str = "Apartado 4417, Ciudad Improbable";

/// Every needle, in the forms it could have been stored in.
fn needles(extra_normalized: &[String]) -> Vec<String> {
    let mut out: Vec<String> = [
        EMAIL,
        EMAIL2,
        NAME,
        NAME_PATCHED,
        NAME_UNICODE,
        PHONE,
        PHONE_NORMALIZED,
        PHONE_PATCHED,
        ADDRESS,
        COMPANY,
        IP,
        IP6,
        NOTES_SECRET,
        NOTES_KEY_VALUE,
        CITY,
        GEO_LAT,
        BIRTH_DATE,
        EXTERNAL_REF,
        COVER_LETTER,
        INVOICE_NAME,
        BILLING_ADDRESS,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // Normalized forms as the API returned them; codes like "FR" are too short to be
    // distinctive (two bytes occur by chance in any binary file), so they are left out.
    out.extend(
        extra_normalized
            .iter()
            .filter(|s| s.chars().count() >= 6)
            .cloned(),
    );
    // Lower-cased forms (blind-index normalization lower-cases e-mails) and distinctive
    // fragments, so a partially stored value is caught too.
    let lower: Vec<String> = out.iter().map(|s| s.to_lowercase()).collect();
    out.extend(lower);
    out.extend(
        [
            "Quokkawood",
            "Ornithorynques",
            "zanthoxylum",
            "Zitherworks",
            "XQ-884271",
            "Ołówkiewicz",
        ]
        .map(str::to_owned),
    );
    out.sort();
    out.dedup();
    out
}

/// (file, needle) pairs found in the data directory.
fn scan(srv: &TestServer, needles: &[String]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for (file, bytes) in srv.data_dir_bytes() {
        for n in needles {
            if contains_bytes(&bytes, n.as_bytes()) {
                found.push((file.clone(), n.clone()));
            }
        }
    }
    found
}

#[tokio::test]
async fn no_plaintext_value_reaches_the_data_directory() {
    let srv = crate::start().await;
    let t = srv.tenant("Plaintext Scan").await;

    // Subjects: one with an external reference.
    let (st, b) = srv
        .post(
            &format!("/v1/tenants/{}/subjects", t.id),
            &t.owner,
            json!({ "external_ref": EXTERNAL_REF }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let s1 = b["id"].as_str().unwrap().to_owned();
    let s2 = srv.subject(&t).await;

    // Several collections, every kind of field.
    let (st, contact) = srv
        .post(
            &format!("/v1/tenants/{}/subjects/{s1}/records", t.id),
            &t.owner,
            json!({ "collection": "contact", "purpose": "essential.service", "return_fields": true, "fields": {
                "name": NAME, "email": EMAIL, "phone": PHONE, "postal_address": ADDRESS,
                "company": COMPANY, "country": "FR"
            }}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{contact}");
    let contact_id = contact["id"].as_str().unwrap().to_owned();
    let customer = srv
        .record(
            &t,
            &s1,
            "customer_record",
            json!({
                "name": NAME_UNICODE, "email": EMAIL2, "city": CITY, "last_seen_ip": IP6,
                "notes": { "medical": NOTES_SECRET, "nested": [ { "code": NOTES_KEY_VALUE } ] },
                "loyalty_points": 4711, "birth_date": BIRTH_DATE,
                "delivery_location": { "lat": 47.918273, "lon": 3.556677 }
            }),
        )
        .await;
    srv.record(
        &t,
        &s1,
        "browser_visit",
        json!({ "ip": IP, "visited_at": "2026-01-15T08:59:00Z", "browser": "Firefox 147" }),
    )
    .await;
    srv.record(
        &t,
        &s2,
        "job_application",
        json!({ "name": INVOICE_NAME, "email": "zebulon.jobs@example.org", "applied_on": "2026-01-10", "cover_letter": COVER_LETTER }),
    )
    .await;
    srv.record(
        &t,
        &s2,
        "billing",
        json!({ "invoice_number": "INV-2026-000417", "amount": "99.90", "billing_name": INVOICE_NAME,
                "billing_address": BILLING_ADDRESS, "issued_on": "2026-01-14" }),
    )
    .await;

    // The normalized forms the API answers with are needles too.
    let mut normalized: Vec<String> = Vec::new();
    for f in contact["fields"].as_object().unwrap().values() {
        if let Some(s) = f.as_str() {
            normalized.push(s.to_owned());
        }
    }
    assert!(
        normalized.contains(&PHONE_NORMALIZED.to_owned()),
        "phone normalization changed: {contact}"
    );

    // Updates (rectification) and reads of every kind.
    let (st, patched) = srv
        .patch(
            &format!("/v1/tenants/{}/subjects/{s1}/records/{contact_id}", t.id),
            &t.owner,
            json!({ "purpose": "essential.service", "return_fields": true, "fields": { "name": NAME_PATCHED, "phone": PHONE_PATCHED } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{patched}");
    normalized.push(patched["fields"]["phone"].as_str().unwrap().to_owned());
    let (st, cust) = srv
        .patch(
            &format!("/v1/tenants/{}/subjects/{s1}/records/{customer}", t.id),
            &t.owner,
            json!({ "purpose": "essential.service", "return_fields": true, "fields": { "city": null } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{cust}");
    normalized.push(cust["fields"]["last_seen_ip"].as_str().unwrap().to_owned());
    let (st, list) = srv
        .get(
            &format!(
                "/v1/tenants/{}/subjects/{s1}/records?purpose=essential.service",
                t.id
            ),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let (st, hits) = srv
        .get(
            &format!(
                "/v1/tenants/{}/lookup?collection=contact&field=email&value={}&purpose=essential.service",
                t.id,
                enc(&EMAIL.to_lowercase())
            ),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{hits}");
    assert_eq!(hits.as_array().map(Vec::len), Some(1), "{hits}");
    let (st, found) = srv
        .get(
            &format!(
                "/v1/tenants/{}/subjects?external_ref={}",
                t.id,
                enc(EXTERNAL_REF)
            ),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{found}");
    assert_eq!(found["id"], Value::from(s1.clone()));
    let (st, _) = srv
        .get(&format!("/v1/tenants/{}/audit", t.id), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK);
    // A refused card number must not be stored either.
    let (st, refused) = srv
        .post(
            &format!("/v1/tenants/{}/subjects/{s1}/records", t.id),
            &t.owner,
            json!({ "collection": "contact", "fields": { "name": "Card Holder", "email": "c@example.org", "company": "4111 1111 1111 1111" } }),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    normalized.push("4111 1111 1111 1111".to_owned());
    normalized.push("4111111111111111".to_owned());

    // A checkpoint makes the writer persist the frontier; the log is flushed with it.
    let r = send(
        &srv,
        Method::POST,
        "/v1/audit/checkpoint",
        Some(&srv.operator),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let needles = needles(&normalized);

    // The scanner works: a value planted in a nested file of the directory is found.
    let canary_dir = srv.dir.path().join("canary");
    std::fs::create_dir(&canary_dir).unwrap();
    let canary = canary_dir.join("planted.bin");
    std::fs::write(
        &canary,
        format!("\0\0junk{}junk\0", NAME_UNICODE.to_lowercase()),
    )
    .unwrap();
    let planted = scan(&srv, &needles);
    assert!(
        planted
            .iter()
            .any(|(f, n)| f == &canary && n == &NAME_UNICODE.to_lowercase()),
        "scanner did not find the planted value: {planted:?}"
    );
    std::fs::remove_dir_all(&canary_dir).unwrap();

    let files: Vec<PathBuf> = srv.data_dir_bytes().into_iter().map(|(p, _)| p).collect();
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n == "ward.db"),
        "database file missing from scan: {names:?}"
    );
    assert!(
        names.iter().any(|n| n == "ward.db-wal"),
        "WAL file missing from scan: {names:?}"
    );
    let found = scan(&srv, &needles);
    assert!(
        found.is_empty(),
        "plaintext personal data in the data directory: {found:?}"
    );
}

/// Free text typed into data-subject requests (who verified the requester, why a request was
/// rejected) may name people: it is sealed like a record, shown to the tenant's rights
/// handlers, and bound to its row and column.
#[tokio::test]
async fn request_free_text_is_sealed_and_bound_to_its_row() {
    const VERIFIED_BY: &str = "Ottoline Brackenwhistle checked the passport scan";
    const REASON: &str = "Requester Quintessa Marrowby could not prove her identity";
    const LEGACY: &str = "Legacy Verifier Philomena Gooseberry";
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Sealed Requests").await;
    let open = |kind: &'static str| {
        let (srv, t, s) = (&srv, &t, &s);
        async move {
            let (st, r) = srv
                .post(
                    &format!("/v1/tenants/{}/requests", t.id),
                    &t.owner,
                    json!({ "kind": kind, "subject": s, "verified_by": VERIFIED_BY }),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{r}");
            assert_eq!(r["verified_by"], VERIFIED_BY);
            r["id"].as_str().unwrap().to_owned()
        }
    };
    let access = open("access").await;
    let erasure = open("erasure").await;
    let (st, r) = srv
        .post(
            &format!("/v1/tenants/{}/requests/{erasure}/reject", t.id),
            &t.owner,
            json!({ "reason": REASON }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["detail"]["outcome"]["reason"], REASON);

    let needles: Vec<String> = [
        VERIFIED_BY,
        REASON,
        "Brackenwhistle",
        "passport scan",
        "Quintessa",
        "Marrowby",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let found = scan(&srv, &needles);
    assert!(found.is_empty(), "request text in clear: {found:?}");

    // The tenant's rights handlers still read it.
    let list = |token: &str| {
        let (srv, t) = (&srv, &t);
        let token = token.to_owned();
        async move {
            srv.get(&format!("/v1/tenants/{}/requests", t.id), &token)
                .await
        }
    };
    let (st, rows) = list(&t.owner).await;
    assert_eq!(st, StatusCode::OK, "{rows}");
    let by_id = |rows: &Value, id: &str| -> Value {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in {rows}"))
    };
    assert_eq!(by_id(&rows, &access)["verified_by"], VERIFIED_BY);
    assert_eq!(
        by_id(&rows, &erasure)["detail"]["outcome"]["reason"],
        REASON
    );
    // Nobody else does.
    let member = srv
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    let (st, body) = list(&member).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert!(!body.to_string().contains("Brackenwhistle"));

    let db = ward_testkit::sql::Db::open(&srv.db_path());
    let access_id = uuid::Uuid::parse_str(&access).unwrap();
    let erasure_id = uuid::Uuid::parse_str(&erasure).unwrap();
    let stored: String = db.scalar(
        "SELECT verified_by FROM requests WHERE id = ?1",
        [access_id],
    );
    assert!(stored.starts_with("ward-sealed:v1:"), "{stored}");

    // A sealed value moved to another request does not open there: integrity error, never
    // another row's text.
    let other: String = db.scalar(
        "SELECT verified_by FROM requests WHERE id = ?1",
        [erasure_id],
    );
    db.execute(
        "UPDATE requests SET verified_by = ?1 WHERE id = ?2",
        rusqlite::params![stored, erasure_id],
    );
    let (st, body) = list(&t.owner).await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["code"], "integrity_error");
    db.execute(
        "UPDATE requests SET verified_by = ?1 WHERE id = ?2",
        rusqlite::params![other, erasure_id],
    );

    // A row an older Ward wrote in clear is read as it is, then sealed by the start-up pass.
    db.execute(
        "UPDATE requests SET verified_by = ?1 WHERE id = ?2",
        rusqlite::params![LEGACY, access_id],
    );
    let (_, rows) = list(&t.owner).await;
    assert_eq!(by_id(&rows, &access)["verified_by"], LEGACY);
    assert_eq!(srv.vault.seal_legacy_free_text().await.unwrap(), 1);
    assert_eq!(srv.vault.seal_legacy_free_text().await.unwrap(), 0);
    let stored: String = db.scalar(
        "SELECT verified_by FROM requests WHERE id = ?1",
        [access_id],
    );
    assert!(stored.starts_with("ward-sealed:v1:"), "{stored}");
    let (_, rows) = list(&t.owner).await;
    assert_eq!(by_id(&rows, &access)["verified_by"], LEGACY);
    assert_eq!(
        by_id(&rows, &erasure)["detail"]["outcome"]["reason"],
        REASON
    );
}
