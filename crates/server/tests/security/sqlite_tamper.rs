//! Ciphertexts moved or altered in the SQLite file must fail to decrypt (the associated data
//! binds tenant, subject, record, collection and key version), and the error must not leak
//! the plaintext of the row the ciphertext came from.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;
use ward_testkit::sql::Db;
use ward_testkit::{TenantFixture, TestServer};

use crate::support::{enc, send_to};

const PURPOSE: &str = "essential.service";

/// A record written through the API, with the values that must never leak elsewhere.
#[derive(Clone)]
struct Rec {
    tenant: TenantFixture,
    subject: String,
    id: String,
    values: Vec<String>,
}

/// Writes a contact for `name` with the e-mail address made from it (`Ada Lovelace` is
/// `ada.lovelace@example.org`): every record here needs values unique to it, nothing more.
async fn contact(
    srv: &TestServer,
    tenant: &TenantFixture,
    subject: &str,
    name: &'static str,
) -> Rec {
    let email = format!("{}@example.org", name.to_lowercase().replace(' ', "."));
    let id = srv.contact(tenant, subject, name, &email).await;
    Rec {
        tenant: tenant.clone(),
        subject: subject.to_owned(),
        id,
        values: vec![name.to_owned(), email],
    }
}

fn blob(id: &str) -> Vec<u8> {
    Uuid::parse_str(id).expect("uuid").as_bytes().to_vec()
}

fn db(srv: &TestServer) -> Db {
    Db::open(&srv.db_path())
}

fn ciphertext(pool: &Db, rec: &Rec) -> Vec<u8> {
    pool.scalar(
        "SELECT ciphertext FROM records WHERE id = ?1",
        rusqlite::params![blob(&rec.id)],
    )
}

fn set_ciphertext(pool: &Db, rec: &Rec, ct: &[u8]) {
    let done = pool.execute(
        "UPDATE records SET ciphertext = ?1 WHERE id = ?2",
        rusqlite::params![ct, blob(&rec.id)],
    );
    assert_eq!(done, 1);
}

async fn swap(srv: &TestServer, a: &Rec, b: &Rec) {
    let pool = db(srv);
    let (ca, cb) = (ciphertext(&pool, a), ciphertext(&pool, b));
    assert_ne!(ca, cb);
    set_ciphertext(&pool, a, &cb);
    set_ciphertext(&pool, b, &ca);
    drop(pool);
}

/// Checks `a` and `b` read, swaps their ciphertexts and checks each then fails integrity
/// without showing the other's values: the swap tests differ only in where the two live.
async fn swap_fails_integrity(srv: &TestServer, a: &Rec, b: &Rec) {
    assert_reads(&srv.url, a).await;
    assert_reads(&srv.url, b).await;
    swap(srv, a, b).await;
    assert_integrity_error(&srv.url, a, Some(b)).await;
    assert_integrity_error(&srv.url, b, Some(a)).await;
}

fn record_path(rec: &Rec) -> String {
    format!(
        "/v1/tenants/{}/subjects/{}/records/{}",
        rec.tenant.id, rec.subject, rec.id
    )
}

/// Reads a record from the server at `base`; it must succeed and show its own values.
async fn assert_reads(base: &str, rec: &Rec) {
    let r = send_to(
        base,
        Method::GET,
        &format!("{}?purpose={PURPOSE}", record_path(rec)),
        Some(&rec.tenant.owner),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for v in &rec.values {
        let shown = r.json["fields"]
            .as_object()
            .expect("fields")
            .values()
            .any(|f| f.as_str() == Some(v.as_str()));
        assert!(shown, "{v} not in {}", r.text);
    }
}

/// Every way of reading `rec` from the server at `base` fails with 500 integrity_error and
/// never shows `leak`'s values (nor its own).
async fn assert_integrity_error(base: &str, rec: &Rec, leak: Option<&Rec>) {
    let token = &rec.tenant.owner;
    let list = format!(
        "/v1/tenants/{}/subjects/{}/records?purpose={PURPOSE}",
        rec.tenant.id, rec.subject
    );
    let one = format!("{}?purpose={PURPOSE}", record_path(rec));
    let patch =
        Some(json!({ "purpose": "essential.service", "fields": { "name": "Tamper Probe" } }));
    // The blind index still points at the row: a lookup by its e-mail must fail too.
    let lookup = format!(
        "/v1/tenants/{}/lookup?collection=contact&field=email&value={}&purpose={PURPOSE}",
        rec.tenant.id,
        enc(&rec.values[1])
    );
    let attempts = [
        (Method::GET, one, None),
        (Method::GET, list, None),
        (Method::GET, lookup, None),
        (Method::PATCH, record_path(rec), patch),
    ];
    for (method, path, body) in attempts {
        let r = send_to(base, method.clone(), &path, Some(token), body, None).await;
        assert_eq!(
            r.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{method} {path}: {}",
            r.text
        );
        assert_eq!(r.code(), "integrity_error", "{method} {path}: {}", r.text);
        let mut secrets: Vec<&str> = rec.values.iter().map(String::as_str).collect();
        if let Some(other) = leak {
            secrets.extend(other.values.iter().map(String::as_str));
        }
        for s in secrets {
            assert!(
                !r.text.contains(s),
                "{method} {path} leaked {s:?}: {}",
                r.text
            );
            assert!(
                !r.text.to_lowercase().contains(&s.to_lowercase()),
                "{method} {path} leaked {s:?}"
            );
        }
    }
}

#[tokio::test]
async fn ciphertexts_swapped_within_one_subject_fail_integrity() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Swap Same Subject").await;
    let a = contact(&srv, &t, &s, "Amadeus Firstrow").await;
    let b = contact(&srv, &t, &s, "Berenike Secondrow").await;
    let bystander = srv
        .record(
            &t,
            &s,
            "customer_record",
            json!({ "name": "Untouched Bystander" }),
        )
        .await;
    swap_fails_integrity(&srv, &a, &b).await;
    // The damage stays where it was done: another record of the subject still reads.
    let (st, body) = srv
        .get(
            &format!(
                "/v1/tenants/{}/subjects/{s}/records/{bystander}?purpose={PURPOSE}",
                t.id
            ),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["fields"]["name"], "Untouched Bystander");
}

#[tokio::test]
async fn ciphertexts_swapped_between_subjects_of_one_tenant_fail_integrity() {
    let srv = crate::start().await;
    let t = srv.tenant("Swap Subjects").await;
    let (s1, s2) = (srv.subject(&t).await, srv.subject(&t).await);
    let a = contact(&srv, &t, &s1, "Cornelius Oneperson").await;
    let b = contact(&srv, &t, &s2, "Dorothea Otherperson").await;
    swap_fails_integrity(&srv, &a, &b).await;
}

#[tokio::test]
async fn ciphertexts_swapped_between_tenants_fail_integrity() {
    let srv = crate::start().await;
    let (ta, sa) = srv.tenant_and_subject("Swap Tenant A").await;
    let (tb, sb) = srv.tenant_and_subject("Swap Tenant B").await;
    let a = contact(&srv, &ta, &sa, "Evangelos Tenanta").await;
    let b = contact(&srv, &tb, &sb, "Fiorella Tenantb").await;
    swap_fails_integrity(&srv, &a, &b).await;
}

#[tokio::test]
async fn ciphertext_copied_over_another_tenants_record_fails_integrity() {
    // Copy rather than swap: B's own row is intact, A's row now holds B's ciphertext.
    let srv = crate::start().await;
    let (ta, sa) = srv.tenant_and_subject("Copy Tenant A").await;
    let (tb, sb) = srv.tenant_and_subject("Copy Tenant B").await;
    let a = contact(&srv, &ta, &sa, "Gudrun Copytarget").await;
    let b = contact(&srv, &tb, &sb, "Hieronymus Copysource").await;
    let pool = db(&srv);
    let cb = ciphertext(&pool, &b);
    set_ciphertext(&pool, &a, &cb);
    drop(pool);
    assert_integrity_error(&srv.url, &a, Some(&b)).await;
    assert_reads(&srv.url, &b).await;
}

/// Stores one contact, checks it reads, runs `sql` (`?1` is the record's id) on its row alone
/// and checks the read then fails integrity: the tests that change one column of a record's
/// row differ only in that change.
async fn row_edit_fails_integrity(tenant: &str, name: &'static str, sql: &str) {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject(tenant).await;
    let a = contact(&srv, &t, &s, name).await;
    assert_reads(&srv.url, &a).await;
    let pool = db(&srv);
    let done = pool.execute(sql, rusqlite::params![blob(&a.id)]);
    assert_eq!(done, 1);
    drop(pool);
    assert_integrity_error(&srv.url, &a, None).await;
}

#[tokio::test]
async fn record_moved_to_another_collection_fails_integrity() {
    // customer_record also allows essential.service, so the read is not denied by policy:
    // only the associated data (which names the collection) can stop it.
    row_edit_fails_integrity(
        "Move Collection",
        "Ignatius Movedrow",
        "UPDATE records SET collection = 'customer_record' WHERE id = ?1",
    )
    .await;
}

#[tokio::test]
async fn record_key_version_changed_fails_integrity() {
    row_edit_fails_integrity(
        "Key Version",
        "Jolanda Versionrow",
        "UPDATE records SET key_version = key_version + 1 WHERE id = ?1",
    )
    .await;
}

#[tokio::test]
async fn one_flipped_ciphertext_byte_fails_integrity() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Bit Flip").await;
    let people = [
        "Kasimir Flipone",
        "Ludmila Fliptwo",
        "Meinrad Flipthree",
        "Notburga Flipfour",
        "Ottokar Flipfive",
    ];
    let mut recs = Vec::new();
    for name in people {
        recs.push(contact(&srv, &t, &s, name).await);
    }
    for r in &recs {
        assert_reads(&srv.url, r).await;
    }
    let pool = db(&srv);
    // Algorithm id, nonce, ciphertext body, tag, and a truncation.
    for (i, rec) in recs.iter().enumerate() {
        let mut ct = ciphertext(&pool, rec);
        let len = ct.len();
        match i {
            0 => ct[0] ^= 0x01,
            1 => ct[5] ^= 0x80,
            2 => ct[len / 2] ^= 0x01,
            3 => ct[len - 1] ^= 0x01,
            _ => ct.truncate(len - 1),
        }
        set_ciphertext(&pool, rec, &ct);
    }
    drop(pool);
    for rec in &recs {
        assert_integrity_error(&srv.url, rec, None).await;
    }
}

#[tokio::test]
async fn an_earlier_revisions_ciphertext_copied_back_fails_integrity_and_is_audited() {
    // Someone with write access to the database undoes a rectification by copying the old
    // ciphertext back into the row. The row's revision moved on, and the associated data
    // binds it, so the old value must not come back.
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Rollback").await;
    let a = contact(&srv, &t, &s, "Rosalind Oldvalue").await;
    let old = ciphertext(&db(&srv), &a);
    let (st, b) = srv
        .patch(
            &record_path(&a),
            &t.owner,
            json!({ "purpose": PURPOSE, "fields": { "name": "Rosalind Newvalue", "email": "rosalind.new@example.org" } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["revision"], 2);
    let pool = db(&srv);
    set_ciphertext(&pool, &a, &old);
    drop(pool);
    // Every way of reading it fails (the lookup finds the row by its new e-mail), and none
    // shows the old values.
    let before = Rec {
        values: a.values.clone(),
        ..a.clone()
    };
    let a = Rec {
        values: vec![
            "Rosalind Newvalue".to_owned(),
            "rosalind.new@example.org".to_owned(),
        ],
        ..a
    };
    assert_integrity_error(&srv.url, &a, Some(&before)).await;
    let (_, log) = srv
        .get(
            &format!(
                "/v1/tenants/{}/audit?action=record_read&outcome=denied",
                t.id
            ),
            &t.owner,
        )
        .await;
    let events = log["events"].as_array().expect("events");
    assert!(
        events.iter().any(|e| e["record"] == a.id.as_str()
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("integrity"))),
        "the failed read is in the tenant's log: {log}"
    );
}

#[tokio::test]
async fn integrity_error_is_not_a_denial_and_does_not_read_as_data() {
    // A tampered read must not be reported as success with empty or garbage fields; the
    // answer is the error shape only.
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Error Shape").await;
    let a = contact(&srv, &t, &s, "Philippa Shapetest").await;
    let b = contact(&srv, &t, &s, "Quirinus Shapetest").await;
    swap(&srv, &a, &b).await;
    let r = send_to(
        &srv.url,
        Method::GET,
        &format!("{}?purpose={PURPOSE}", record_path(&a)),
        Some(&t.owner),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    let keys: Vec<&String> = r.json.as_object().expect("object").keys().collect();
    assert_eq!(keys, vec!["error"], "{}", r.text);
    assert!(r.json.get("fields").is_none());
    assert_eq!(r.json["error"]["code"], Value::from("integrity_error"));
}

// ---- after a restart: no key in any cache ---------------------------------------------------

/// A second server over the same store and keys, with cold key caches: what `ward serve`
/// sees after a restart. Stops when dropped.
struct Cold {
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn cold(srv: &TestServer) -> Cold {
    let vault = srv.vault_on(srv.store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ward_server::serve(
        listener,
        ward_server::AppState::new(vault),
        async move {
            let _ = rx.await;
        },
    ));
    Cold { url, _stop: tx }
}

/// Restarts with cold key caches and checks `bystander` still reads while `a` and `b` fail
/// integrity without showing each other's values.
async fn fail_integrity_after_restart(srv: &TestServer, a: &Rec, b: &Rec, bystander: &Rec) {
    let restarted = cold(srv).await;
    assert_reads(&restarted.url, bystander).await;
    assert_integrity_error(&restarted.url, a, Some(b)).await;
    assert_integrity_error(&restarted.url, b, Some(a)).await;
}

fn key_db(srv: &TestServer) -> Db {
    let path = srv.dir.path().join("ward.keys.db");
    assert!(
        path.exists(),
        "the key store file moved: {}",
        path.display()
    );
    Db::open(&path)
}

#[tokio::test]
async fn ciphertexts_swapped_between_tenants_fail_integrity_after_restart() {
    let srv = crate::start().await;
    let (ta, sa) = srv.tenant_and_subject("Cold Swap A").await;
    let (tb, sb) = srv.tenant_and_subject("Cold Swap B").await;
    let a = contact(&srv, &ta, &sa, "Radegund Coldswap").await;
    let b = contact(&srv, &tb, &sb, "Sigisbert Coldswap").await;
    let bystander = contact(&srv, &ta, &srv.subject(&ta).await, "Tassilo Untouched").await;
    swap(&srv, &a, &b).await;
    fail_integrity_after_restart(&srv, &a, &b, &bystander).await;
}

#[tokio::test]
async fn subject_keys_swapped_fail_integrity_after_restart() {
    // Each subject key is wrapped with associated data naming its subject: a wrapped key
    // moved to another subject's row must not unwrap there.
    let srv = crate::start().await;
    let t = srv.tenant("Key Swap").await;
    let (s1, s2, s3) = (
        srv.subject(&t).await,
        srv.subject(&t).await,
        srv.subject(&t).await,
    );
    let a = contact(&srv, &t, &s1, "Ulrike Keyswap").await;
    let b = contact(&srv, &t, &s2, "Volkmar Keyswap").await;
    let bystander = contact(&srv, &t, &s3, "Walburga Untouched").await;
    let keys = key_db(&srv);
    let get = |s: &str| -> Vec<u8> {
        keys.scalar(
            "SELECT wrapped_key FROM subject_keys WHERE subject = ?1",
            rusqlite::params![blob(s)],
        )
    };
    let (k1, k2) = (get(&s1), get(&s2));
    assert_ne!(k1, k2);
    for (subject, key) in [(&s1, &k2), (&s2, &k1)] {
        let done = keys.execute(
            "UPDATE subject_keys SET wrapped_key = ?1 WHERE subject = ?2",
            rusqlite::params![key, blob(subject)],
        );
        assert_eq!(done, 1);
    }
    drop(keys);
    fail_integrity_after_restart(&srv, &a, &b, &bystander).await;
}

#[tokio::test]
async fn tenant_key_copied_from_another_tenant_fails_integrity_after_restart() {
    let srv = crate::start().await;
    let (ta, sa) = srv.tenant_and_subject("Tenant Key A").await;
    let (tb, sb) = srv.tenant_and_subject("Tenant Key B").await;
    let a = contact(&srv, &ta, &sa, "Xaver Tenantkey").await;
    let b = contact(&srv, &tb, &sb, "Yvonne Tenantkey").await;
    let keys = key_db(&srv);
    let kb: Vec<u8> = keys.scalar(
        "SELECT wrapped_key FROM tenant_keys WHERE tenant = ?1",
        rusqlite::params![blob(&tb.id)],
    );
    let done = keys.execute(
        "UPDATE tenant_keys SET wrapped_key = ?1 WHERE tenant = ?2",
        rusqlite::params![&kb, blob(&ta.id)],
    );
    assert_eq!(done, 1);
    drop(keys);
    let restarted = cold(&srv).await;
    assert_reads(&restarted.url, &b).await;
    assert_integrity_error(&restarted.url, &a, Some(&b)).await;
}
