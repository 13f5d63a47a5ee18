//! Tampering done directly in SQLite (edit, delete, insert, reorder, truncate, rewritten chain,
//! forged checkpoint, edited index columns), because `ward audit verify` must fail with exit
//! code 1 and name the first bad index whatever an attacker with file access changed.

use serde_json::{Value, json};

use crate::common::{
    FORGED_EVENT, assert_fails_at, assert_verdict, db, first_bad_index, fresh, insert_row, master,
    rewrite_history, row, set_row, shift_up, stdout, verify, verify_tampered,
};

#[tokio::test]
async fn clean_log_verifies() {
    let m = master().await;
    let dir = fresh(&m);
    let out = verify(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let expected = format!(
        "audit log intact: {} events (from index 0), 2 signed checkpoints verified",
        m.total
    );
    assert!(stdout(&out).contains(&expected), "{}", stdout(&out));
    assert_eq!(first_bad_index(&out), None);
    // Verifying is read-only: a second run gives the same answer.
    let again = verify(dir.path(), &[]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(stdout(&again), stdout(&out));
}

#[tokio::test]
async fn edited_event_is_named() {
    let m = master().await;
    let out = verify_tampered(&m, |pool| {
        let r = row(pool, 7);
        let text = String::from_utf8(r.event.clone()).unwrap();
        assert!(text.contains("\"allowed\""), "{text}");
        let edited = text.replacen("\"allowed\"", "\"denied\"", 1);
        set_row(pool, 7, edited.as_bytes(), &r.chain);
    });
    assert_fails_at(&out, 7);
}

#[tokio::test]
async fn one_changed_byte_is_named() {
    let m = master().await;
    let out = verify_tampered(&m, |pool| {
        let idx = i64::try_from(m.size1 + 2).unwrap();
        let mut r = row(pool, idx);
        let last = r.event.len() - 2;
        r.event[last] ^= 0x20;
        set_row(pool, idx, &r.event, &r.chain);
    });
    assert_fails_at(&out, m.size1 + 2);
}

/// Events are stored packed (ward_store::audit_codec): one changed byte of the packed frame,
/// wherever it lands (the format byte, the frame header, the compressed body), is named too.
#[tokio::test]
async fn one_changed_byte_of_the_packed_form_is_named() {
    let m = master().await;
    for (n, at) in [0usize, 3, 7, 40].into_iter().enumerate() {
        let idx = 3 + n as i64;
        let out = verify_tampered(&m, |pool| {
            let mut stored: Vec<u8> =
                pool.scalar("SELECT event FROM audit_events WHERE idx = ?1", [idx]);
            assert_eq!(stored[0], ward_store::audit_codec::DICTIONARY_1);
            stored[at] ^= 0x01;
            let done = pool.execute(
                "UPDATE audit_events SET event = ?1 WHERE idx = ?2",
                rusqlite::params![stored, idx],
            );
            assert_eq!(done, 1);
        });
        assert_fails_at(&out, idx as u64);
    }
}

/// A log written before events were packed holds them as JSON; rewriting every event of a
/// log in that form (same canonical bytes) leaves it verifying, so an upgraded log needs no
/// conversion.
#[tokio::test]
async fn events_stored_as_json_verify_as_before() {
    let m = master().await;
    let out = verify_tampered(&m, |pool| {
        for idx in 0..i64::try_from(m.total).unwrap() {
            let r = row(pool, idx);
            assert_eq!(r.event[0], b'{');
            set_row(pool, idx, &r.event, &r.chain);
        }
    });
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[tokio::test]
async fn deleted_event_is_named() {
    let m = master().await;
    let out = verify_tampered(&m, |pool| {
        let done = pool.execute("DELETE FROM audit_events WHERE idx = 7", []);
        assert_eq!(done, 1);
    });
    assert_fails_at(&out, 7);
}

#[tokio::test]
async fn deleted_first_event_is_named() {
    let m = master().await;
    let out = verify_tampered(&m, |pool| {
        pool.execute("DELETE FROM audit_events WHERE idx = 0", []);
    });
    assert_fails_at(&out, 0);
}

#[tokio::test]
async fn inserted_forged_event_is_named() {
    let m = master().await;
    let out = verify_tampered(&m, |pool| {
        shift_up(pool, 7);
        insert_row(pool, 7, FORGED_EVENT, &[0x5a; 32]);
    });
    assert_fails_at(&out, 7);
}

#[tokio::test]
async fn duplicated_event_is_named_where_the_log_first_differs() {
    // Row 7's event and chain copied in as a new row 7 and the rest renumbered. The copy's
    // filter columns (time, tenant, actor, ...) are not the event's, and the verifier checks
    // them too, so the forged row itself is named.
    let m = master().await;
    let out = verify_tampered(&m, |pool| {
        let r = row(pool, 7);
        shift_up(pool, 7);
        insert_row(pool, 7, &r.event, &r.chain);
    });
    assert_fails_at(&out, 7);
}

#[tokio::test]
async fn event_appended_after_the_last_checkpoint_is_named() {
    let m = master().await;
    let out = verify_tampered(&m, |pool| {
        insert_row(
            pool,
            i64::try_from(m.total).unwrap(),
            FORGED_EVENT,
            &[0x11; 32],
        );
    });
    assert_fails_at(&out, m.total);
}

#[tokio::test]
async fn reordered_events_are_named() {
    let m = master().await;
    let out = verify_tampered(&m, |pool| {
        let (r5, r6) = (row(pool, 5), row(pool, 6));
        set_row(pool, 5, &r6.event, &r6.chain);
        set_row(pool, 6, &r5.event, &r5.chain);
    });
    assert_fails_at(&out, 5);
}

#[tokio::test]
async fn reordered_event_contents_are_named() {
    let m = master().await;
    let out = verify_tampered(&m, |pool| {
        let (r5, r6) = (row(pool, 5), row(pool, 6));
        set_row(pool, 5, &r6.event, &r5.chain);
        set_row(pool, 6, &r5.event, &r6.chain);
    });
    assert_fails_at(&out, 5);
}

#[tokio::test]
async fn truncation_below_the_last_checkpoint_is_reported() {
    let m = master().await;
    for k in [m.size1 + 3, 10] {
        let dir = fresh(&m);
        let pool = db(dir.path());
        let done = pool.execute(
            "DELETE FROM audit_events WHERE idx >= ?1",
            rusqlite::params![i64::try_from(k).unwrap()],
        );
        assert_eq!(done as u64, m.total - k);
        drop(pool);
        let out = verify(dir.path(), &[]);
        assert_fails_at(&out, k);
        let expected_cp = if k > m.size1 { m.size2 } else { m.size1 };
        let text = stdout(&out);
        assert!(
            text.contains(&format!(
                "ends after {k} events but a signed checkpoint covers {expected_cp}"
            )),
            "truncation not reported as such: {text}"
        );
    }
}

#[tokio::test]
async fn edit_with_rewritten_chain_is_caught_by_the_signed_checkpoint() {
    // The chain is unkeyed: recomputing every chain value after an edit hides the edit from
    // the chain check, but not from the signed Merkle root.
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    rewrite_history(&pool, 7);
    drop(pool);
    let out = verify(dir.path(), &[]);
    assert_verdict(
        &out,
        1,
        &format!(
            "does not match its signed checkpoint at tree size {}",
            m.size1
        ),
    );
    assert_eq!(
        first_bad_index(&out),
        None,
        "a rewritten chain cannot pin the index"
    );
}

#[tokio::test]
async fn forged_checkpoint_row_is_refused() {
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    let size = i64::try_from(m.size1).unwrap();
    let text: String = pool.scalar(
        "SELECT checkpoint FROM audit_checkpoints WHERE tree_size = ?1",
        rusqlite::params![size],
    );
    let mut cp: Value = serde_json::from_str(&text).unwrap();
    cp["timestamp"] = json!(cp["timestamp"].as_i64().unwrap() + 3600);
    pool.execute(
        "UPDATE audit_checkpoints SET checkpoint = ?1 WHERE tree_size = ?2",
        rusqlite::params![cp.to_string(), size],
    );
    drop(pool);
    let out = verify(dir.path(), &[]);
    assert_verdict(
        &out,
        1,
        &format!(
            "checkpoint for tree size {} has an invalid signature",
            m.size1
        ),
    );
}

#[tokio::test]
async fn edited_index_columns_are_named() {
    // The tenant view selects and filters events by the denormalized columns (tenant, subject,
    // actor, action, outcome, at), not by the hashed event bytes. Editing a column hides an
    // event from its tenant (or moves it into another tenant's view, or out of an
    // outcome=denied filter) without touching the Merkle leaf, so the verifier must compare
    // the columns with the event they index.
    let m = master().await;
    for (sql, idx) in [
        ("UPDATE audit_events SET tenant = NULL WHERE idx = ?1", 7i64),
        (
            "UPDATE audit_events SET outcome = 'denied' WHERE idx = ?1",
            8,
        ),
        (
            "UPDATE audit_events SET action = 'tenant_read' WHERE idx = ?1",
            9,
        ),
        ("UPDATE audit_events SET subject = NULL WHERE idx = ?1", 10),
    ] {
        let dir = fresh(&m);
        let pool = db(dir.path());
        let done = pool.execute(sql, rusqlite::params![idx]);
        assert_eq!(done, 1);
        drop(pool);
        let out = verify(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(1), "{sql}: {}", stdout(&out));
        assert_eq!(
            first_bad_index(&out),
            Some(u64::try_from(idx).unwrap()),
            "{sql}: {}",
            stdout(&out)
        );
    }
}
