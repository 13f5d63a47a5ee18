//! Logs pruned by retention, because a prune removes the start of the chain and the verifier
//! must still accept an honest prune at a checkpoint while catching edits and forged frontiers.

use crate::common::{
    assert_fails_at, assert_verdict, db, fresh, master, row, set_row, verify, verify_tampered,
};

#[tokio::test]
async fn log_pruned_at_a_checkpoint_still_verifies() {
    // Audit retention prunes old events; what remains must stay verifiable from the
    // checkpoint at the prune boundary.
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    pool.execute(
        "DELETE FROM audit_events WHERE idx < ?1",
        rusqlite::params![i64::try_from(m.size1).unwrap()],
    );
    drop(pool);
    let out = verify(dir.path(), &[]);
    let expected = format!(
        "audit log intact: {} events (from index {}), 2 signed checkpoints verified",
        m.total, m.size1
    );
    assert_verdict(&out, 0, &expected);
}

#[tokio::test]
async fn log_pruned_off_a_checkpoint_boundary_is_named() {
    let m = master().await;
    let out = verify_tampered(&m, |pool| {
        pool.execute("DELETE FROM audit_events WHERE idx < 5", []);
    });
    assert_fails_at(&out, 0);
}

#[tokio::test]
async fn pruned_log_with_an_edit_after_the_boundary_is_named() {
    let m = master().await;
    let out = verify_tampered(&m, |pool| {
        pool.execute(
            "DELETE FROM audit_events WHERE idx < ?1",
            rusqlite::params![i64::try_from(m.size1).unwrap()],
        );
        let idx = i64::try_from(m.size1 + 1).unwrap();
        let r = row(pool, idx);
        let edited = String::from_utf8(r.event)
            .unwrap()
            .replacen("\"allowed\"", "\"denied\"", 1);
        set_row(pool, idx, edited.as_bytes(), &r.chain);
    });
    assert_fails_at(&out, m.size1 + 1);
}

#[tokio::test]
async fn pruned_log_with_a_forged_frontier_is_refused() {
    // The frontier stored beside the prune checkpoint is only trusted once its root matches
    // the signed one.
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    let size = i64::try_from(m.size1).unwrap();
    pool.execute(
        "DELETE FROM audit_events WHERE idx < ?1",
        rusqlite::params![size],
    );
    let mut frontier: Vec<u8> = pool.scalar(
        "SELECT frontier FROM audit_checkpoints WHERE tree_size = ?1",
        rusqlite::params![size],
    );
    let last = frontier.len() - 1;
    frontier[last] ^= 0x01;
    pool.execute(
        "UPDATE audit_checkpoints SET frontier = ?1 WHERE tree_size = ?2",
        rusqlite::params![&frontier, size],
    );
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
}
