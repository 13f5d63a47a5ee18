//! Dumps in sections, on both backends: an export offered the sections of an earlier dump
//! hands back unread exactly those whose content the store still holds, and the dump put
//! together from the pieces is byte for byte the one a full export writes now, so it
//! restores. Every write path moves a table's mark (the triggers), appends move only the
//! newest part of the audit log, pruning moves the part it reaches.
//!
//! Needs PostgreSQL at `WARD_TEST_DATABASE_URL`, as `snapshot.rs` does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod snapshot_support;

use std::collections::BTreeSet;
use std::ops::Range;

use snapshot_support::*;
use uuid::Uuid;
use ward_store::{DumpPiece, Op, ReusePlan, SectionInfo, SnapshotStream, Store};

const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// What one sectioned export handed out, and the whole dump put together from it.
struct Exported {
    whole: Vec<u8>,
    /// Bytes the store read and handed out.
    read: usize,
    reused: BTreeSet<String>,
    sections: Vec<(SectionInfo, Range<usize>)>,
}

impl Exported {
    fn plan(&self) -> ReusePlan {
        let mut plan = ReusePlan::default();
        for (info, _) in &self.sections {
            plan.offer(info.clone());
        }
        plan
    }

    fn keys(&self) -> BTreeSet<String> {
        self.sections.iter().map(|(s, _)| s.key.clone()).collect()
    }
}

/// Exports the data stream offering `earlier`'s sections, splicing reused ones in from it.
async fn export(store: &dyn Store, earlier: Option<&Exported>) -> Exported {
    let plan = earlier.map(Exported::plan).unwrap_or_default();
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let collect = async {
        let mut out = Exported {
            whole: Vec::new(),
            read: 0,
            reused: BTreeSet::new(),
            sections: Vec::new(),
        };
        while let Some(piece) = rx.recv().await {
            match piece {
                DumpPiece::Bytes(b) => {
                    out.read += b.len();
                    out.whole.extend_from_slice(&b);
                }
                DumpPiece::Cut(None) => {}
                DumpPiece::Cut(Some(info)) => {
                    let end = out.whole.len();
                    let start = end - usize::try_from(info.section.bytes).unwrap();
                    out.sections.push((info, start..end));
                }
                DumpPiece::Reused(info) => {
                    let earlier = earlier.expect("nothing was offered");
                    let (offered, range) = earlier
                        .sections
                        .iter()
                        .find(|(s, _)| s.key == info.key)
                        .expect("a section that was offered");
                    assert_eq!(offered, &info);
                    let start = out.whole.len();
                    out.whole.extend_from_slice(&earlier.whole[range.clone()]);
                    out.reused.insert(info.key.clone());
                    out.sections.push((info, start..out.whole.len()));
                }
            }
        }
        out
    };
    let (summary, out) = tokio::join!(
        store.export_sections(SnapshotStream::Data, &plan, tx),
        collect
    );
    assert_eq!(summary.unwrap().bytes, out.whole.len() as u64);
    out
}

/// The sections a store with a few records and a short audit log has.
fn small_store_sections() -> BTreeSet<String> {
    [
        "subjects",
        "records",
        "blind_index",
        "anonymized_records",
        "held_records",
        "audit_events/0",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_sections_are_handed_back_unread_and_the_dump_is_the_same() {
    for backend in BACKENDS {
        let source = backend.open().await;
        let store = &*source.store;
        let f = populate(store).await;
        let first = export(store, None).await;
        assert_eq!(
            first.whole,
            dump(store, SnapshotStream::Data).await.bytes,
            "{backend:?}: a sectioned export is the plain export"
        );
        assert_eq!(first.keys(), small_store_sections(), "{backend:?}");
        assert!(first.reused.is_empty());

        // Nothing changed: every section comes back unread, the dump is the same.
        let second = export(store, Some(&first)).await;
        assert_eq!(second.reused, small_store_sections(), "{backend:?}");
        assert_eq!(second.whole, first.whole, "{backend:?}");
        assert!(
            second.read < first.read,
            "{backend:?}: read {} of {}",
            second.read,
            first.read
        );

        // An audit event: the log's section is read again, the tables are not.
        store
            .commit(vec![audit_op(Some(f.tenant), None, "after", 900)])
            .await
            .unwrap();
        let third = export(store, Some(&second)).await;
        assert!(!third.reused.contains("audit_events/0"), "{backend:?}");
        assert!(third.reused.contains("records"), "{backend:?}");
        assert_eq!(third.whole, dump(store, SnapshotStream::Data).await.bytes);

        // A new subject with a record: those tables are read again.
        write_with_events(store, f.tenant, 9, 2).await;
        let fourth = export(store, Some(&third)).await;
        for moved in ["subjects", "records", "audit_events/0"] {
            assert!(!fourth.reused.contains(moved), "{backend:?}: {moved}");
        }
        assert!(fourth.reused.contains("blind_index"), "{backend:?}");
        assert_eq!(fourth.whole, dump(store, SnapshotStream::Data).await.bytes);

        // The put-together dump restores into either backend with the same rows.
        for to in BACKENDS {
            let target = to.open().await;
            let imported = load(&*target.store, SnapshotStream::Data, &fourth.whole, 777)
                .await
                .unwrap();
            assert_eq!(imported.tables["records"], first_records(&first) + 2);
            assert_eq!(
                dump(&*target.store, SnapshotStream::Data).await.bytes,
                fourth.whole,
                "{backend:?} -> {to:?}"
            );
        }
    }
}

fn first_records(dump: &Exported) -> u64 {
    dump.sections
        .iter()
        .find(|(s, _)| s.key == "records")
        .map(|(s, _)| s.section.rows)
        .unwrap()
}

/// Every kind of write to a marked table moves its mark: update, delete, and the erasure
/// and tenant destruction that delete many rows at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_write_moves_the_mark() {
    for backend in BACKENDS {
        let source = backend.open().await;
        let store = &*source.store;
        let f = populate(store).await;
        let mut last = export(store, None).await;
        let record = store
            .subject_view(f.tenant, f.kept, ward_store::RecordFilter::All(None))
            .await
            .unwrap()
            .unwrap()
            .records
            .into_iter()
            .next()
            .unwrap();
        let writes: Vec<(&str, Vec<Op>)> = vec![
            (
                "records",
                vec![Op::DeleteRecord {
                    tenant: f.tenant,
                    subject: f.kept,
                    id: record.id,
                }],
            ),
            (
                "subjects",
                vec![Op::DestroyTenant {
                    id: f.tenant2,
                    at: time::OffsetDateTime::now_utc(),
                }],
            ),
        ];
        for (table, ops) in writes {
            store.commit(ops).await.unwrap();
            let next = export(store, Some(&last)).await;
            assert!(!next.reused.contains(table), "{backend:?}: {table}");
            assert_eq!(next.whole, dump(store, SnapshotStream::Data).await.bytes);
            last = next;
        }
    }
}

/// With more events than one section holds: appends re-read only the newest section,
/// pruning re-reads the section it reaches and drops those before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_read_again_only_where_it_changed() {
    for backend in BACKENDS {
        let source = backend.open().await;
        let store = &*source.store;
        let t = Some(Uuid::now_v7());
        let events = |batch: i64, n: usize| -> Vec<Op> {
            (0..n)
                .map(|i| audit_op(t, None, &format!("{batch}-{i}"), 1000 + batch))
                .collect()
        };
        // A checkpoint at index 100, where the log is pruned to later on.
        store.commit(events(-1, 100)).await.unwrap();
        let head = store.audit_head().await.unwrap();
        let signing = ward_audit::SigningKey::generate().unwrap();
        let checkpoint = signing.sign("ward-test", head.size, head.root, head.chain, 1_767_300_000);
        store
            .commit(vec![Op::SaveCheckpoint(ward_store::CheckpointRow {
                tree_size: head.size,
                checkpoint: serde_json::to_string(&checkpoint).unwrap(),
                frontier: head.frontier.clone(),
                created_at: time::OffsetDateTime::now_utc(),
            })])
            .await
            .unwrap();
        for batch in 0..17 {
            store.commit(events(batch, 1000)).await.unwrap();
        }
        let first = export(store, None).await;
        let audit: BTreeSet<String> = first
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("audit_events/"))
            .collect();
        assert_eq!(audit.len(), 2, "{backend:?}: 17,100 events in two sections");

        store
            .commit(vec![audit_op(t, None, "one-more", 2000)])
            .await
            .unwrap();
        let second = export(store, Some(&first)).await;
        assert!(second.reused.contains("audit_events/0"), "{backend:?}");
        assert!(!second.reused.contains("audit_events/1"), "{backend:?}");
        assert!(
            second.read < first.read / 4,
            "{backend:?}: read {} of {}",
            second.read,
            first.read
        );
        assert_eq!(second.whole, dump(store, SnapshotStream::Data).await.bytes);

        store
            .commit(vec![Op::PruneAudit { before: 100 }])
            .await
            .unwrap();
        let third = export(store, Some(&second)).await;
        assert!(!third.reused.contains("audit_events/0"), "{backend:?}");
        assert!(third.reused.contains("audit_events/1"), "{backend:?}");
        assert_eq!(third.whole, dump(store, SnapshotStream::Data).await.bytes);
        let rows = third
            .sections
            .iter()
            .find(|(s, _)| s.key == "audit_events/0")
            .map(|(s, _)| s.section.rows)
            .unwrap();
        assert_eq!(rows, 16_384 - 100, "{backend:?}");
    }
}

/// A plan whose marks match but whose bytes were altered (a corrupt backup object) gives a
/// dump the import refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_section_that_was_altered_is_refused_on_import() {
    for backend in BACKENDS {
        let source = backend.open().await;
        let store = &*source.store;
        populate(store).await;
        let mut first = export(store, None).await;
        let (_, range) = first
            .sections
            .iter()
            .find(|(s, _)| s.key == "records")
            .cloned()
            .unwrap();
        first.whole[range.start + range.len() / 2] ^= 0x20;
        let second = export(store, Some(&first)).await;
        assert!(second.reused.contains("records"));
        let target = backend.open().await;
        let err = load(&*target.store, SnapshotStream::Data, &second.whole, 4096)
            .await
            .unwrap_err();
        assert!(matches!(err, ward_store::StoreError::Snapshot(_)), "{err}");
    }
}
