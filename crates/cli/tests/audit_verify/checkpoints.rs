//! `--checkpoint` and `--public-key`: an exported checkpoint checked against the grown log,
//! because a checkpoint kept outside the data directory is what catches history rewritten
//! together with its checkpoints, and only the trusted key may decide what is signed.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{assert_verdict, db, fresh, master, rewrite_history, stdout, verify};

fn write_checkpoint(dir: &Path, cp: &Value) -> PathBuf {
    let path = dir.join("exported-checkpoint.json");
    std::fs::write(&path, serde_json::to_string_pretty(cp).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn exported_checkpoint_is_consistent_with_the_grown_log() {
    let m = master().await;
    let dir = fresh(&m);
    let keep = tempfile::tempdir().unwrap();
    let path = write_checkpoint(keep.path(), &m.early_checkpoint);
    let out = verify(dir.path(), &["--checkpoint", path.to_str().unwrap()]);
    assert_verdict(&out, 0, "intact");
    assert!(
        stdout(&out).contains(&format!(
            "exported checkpoint at size {} is consistent with the current log",
            m.size1
        )),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn exported_checkpoint_with_altered_root_is_refused() {
    let m = master().await;
    let dir = fresh(&m);
    let keep = tempfile::tempdir().unwrap();
    let mut cp = m.early_checkpoint.clone();
    let root = cp["root"].as_str().unwrap().to_owned();
    // Change one base64 character of the root (still 32 bytes once decoded).
    let first = if root.starts_with('A') { "B" } else { "A" };
    cp["root"] = json!(format!("{first}{}", &root[1..]));
    let path = write_checkpoint(keep.path(), &cp);
    let out = verify(dir.path(), &["--checkpoint", path.to_str().unwrap()]);
    assert_verdict(
        &out,
        1,
        &format!("exported checkpoint at size {} is NOT consistent", m.size1),
    );
}

#[tokio::test]
async fn exported_checkpoint_catches_history_rewritten_with_checkpoints_dropped() {
    // An attacker with the database edits an old event, recomputes every chain value and
    // deletes the stored checkpoints. The checkpoint a tenant exported earlier still proves
    // the history changed.
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    rewrite_history(&pool, 3);
    pool.execute("DELETE FROM audit_checkpoints", []);
    drop(pool);
    let keep = tempfile::tempdir().unwrap();
    let path = write_checkpoint(keep.path(), &m.early_checkpoint);
    let out = verify(dir.path(), &["--checkpoint", path.to_str().unwrap()]);
    assert_verdict(
        &out,
        1,
        &format!("exported checkpoint at size {} is NOT consistent", m.size1),
    );
}

#[tokio::test]
async fn public_key_flag_decides_which_signatures_are_trusted() {
    let m = master().await;
    let dir = fresh(&m);
    let out = verify(dir.path(), &["--public-key", &m.public_key]);
    assert_verdict(&out, 0, "2 signed checkpoints verified");
    let foreign = ward_audit::SigningKey::generate()
        .unwrap()
        .public_key()
        .to_base64();
    let out = verify(dir.path(), &["--public-key", &foreign]);
    assert_verdict(
        &out,
        1,
        &format!(
            "checkpoint for tree size {} has an invalid signature",
            m.size1
        ),
    );
    // Not a key at all: a usage problem of the operator, not a verdict on the log.
    let out = verify(dir.path(), &["--public-key", "not-base64!"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(!stdout(&out).contains("intact"));
}

#[tokio::test]
async fn exported_checkpoint_at_the_current_head_is_consistent() {
    // Drop the unsigned tail so the log ends exactly at the last checkpoint.
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    pool.execute(
        "DELETE FROM audit_events WHERE idx >= ?1",
        rusqlite::params![i64::try_from(m.size2).unwrap()],
    );
    drop(pool);
    let keep = tempfile::tempdir().unwrap();
    let path = write_checkpoint(keep.path(), &m.last_checkpoint);
    let out = verify(dir.path(), &["--checkpoint", path.to_str().unwrap()]);
    assert_verdict(
        &out,
        0,
        &format!(
            "exported checkpoint at size {} is consistent with the current log",
            m.size2
        ),
    );
}

#[tokio::test]
async fn exported_checkpoint_catches_truncation_with_checkpoints_dropped() {
    // Deleting the newest events together with every stored checkpoint leaves nothing in the
    // directory to notice; the checkpoint exported earlier does.
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    pool.execute("DELETE FROM audit_events WHERE idx >= 12", []);
    pool.execute("DELETE FROM audit_checkpoints", []);
    drop(pool);
    let keep = tempfile::tempdir().unwrap();
    let path = write_checkpoint(keep.path(), &m.early_checkpoint);
    let out = verify(dir.path(), &["--checkpoint", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "exported checkpoint at size {} is NOT consistent",
            m.size1
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "the log has 12 events, fewer than the checkpoint's {}",
            m.size1
        )),
        "{text}"
    );
}
