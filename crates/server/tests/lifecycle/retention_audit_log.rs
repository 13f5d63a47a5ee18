//! Pruning the audit log by retention, because the log must not grow forever, yet what remains
//! after a prune (even of an idle log) must still verify.

use reqwest::StatusCode;
use ward_testkit::TestServer;

use crate::retention::read;
use crate::support::{ESSENTIAL, at, audit, days, run_retention};

async fn verify(srv: &TestServer) -> ward_vault::VerifyReport {
    ward_vault::verify_log(srv.store.as_ref(), &srv.vault.audit_public_key(), |_, _| {})
        .await
        .unwrap_or_else(|e| panic!("the audit log no longer verifies: {e}"))
}

#[tokio::test]
async fn pruning_the_audit_log_keeps_what_remains_verifiable() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Pruned Co").await;
    let r = srv.contact(&t, &s, "Old News", "old@example.org").await;
    assert_eq!(read(&srv, &t, &s, &r, ESSENTIAL).await.0, StatusCode::OK);
    let before = verify(&srv).await;
    assert_eq!(before.first_index, 0);

    // 61 days later, with fresh activity after the cutoff.
    srv.clock.advance(days(61));
    assert_eq!(read(&srv, &t, &s, &r, ESSENTIAL).await.0, StatusCode::OK);
    let dry = run_retention(&srv, true).await;
    let pruned = dry["audit_events_pruned"].as_u64().unwrap();
    assert!(pruned > 0, "{dry}");
    assert_eq!(
        verify(&srv).await.first_index,
        0,
        "a dry run pruned something"
    );
    let report = run_retention(&srv, false).await;
    assert_eq!(
        report["audit_events_pruned"].as_u64(),
        Some(pruned),
        "{report}"
    );
    let after = verify(&srv).await;
    assert_eq!(
        after.first_index, pruned,
        "everything older than 60 days, and nothing newer, is gone"
    );
    assert!(after.tree_size > before.tree_size);
    assert!(after.checkpoints_verified >= 1);
    // The tenant's view shows only the recent read.
    let events = audit(&srv, &t, "").await;
    assert!(
        events
            .iter()
            .all(|e| at(&e["at"]) >= srv.vault.now() - days(60)),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e["action"] == "record_read"));
    assert_eq!(run_retention(&srv, false).await["audit_events_pruned"], 0);

    // A second prune resumes from the first one's checkpoint.
    srv.clock.advance(days(61));
    assert_eq!(read(&srv, &t, &s, &r, ESSENTIAL).await.0, StatusCode::OK);
    let report = run_retention(&srv, false).await;
    assert!(
        report["audit_events_pruned"].as_u64().unwrap() > 0,
        "{report}"
    );
    let again = verify(&srv).await;
    assert!(
        again.first_index > after.first_index,
        "{again:?} vs {after:?}"
    );
}

/// Regression: when no event was newer than the cutoff, the prune removed every row; the
/// verifier then found no first row, started from index 0 and reported the untouched log as
/// truncated. The prune now keeps the newest event as the log's anchor (an empty table could
/// not tell a legitimate prune from a deleted log), and everything older goes.
#[tokio::test]
async fn pruning_an_idle_audit_log_keeps_it_verifiable() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Idle Co").await;
    srv.contact(&t, &s, "Idle", "idle@example.org").await;
    let before = verify(&srv).await;

    // Nothing at all happens for 61 days; then retention prunes every event there is.
    srv.clock.advance(days(61));
    let report = run_retention(&srv, false).await;
    assert_eq!(
        report["audit_events_pruned"].as_u64(),
        Some(before.tree_size - 1),
        "{report}"
    );
    let after = verify(&srv).await;
    assert_eq!(
        after.tree_size,
        before.tree_size + 1,
        "the pruned history still counts, plus the sweep's own retention_run event: {after:?}"
    );

    // The next event continues the same log.
    srv.get(&format!("/v1/tenants/{}", t.id), &t.owner).await;
    let next = verify(&srv).await;
    assert_eq!(
        next.first_index,
        before.tree_size - 1,
        "the anchor event stays: {next:?}"
    );
    assert_eq!(next.tree_size, before.tree_size + 2, "{next:?}");
}
