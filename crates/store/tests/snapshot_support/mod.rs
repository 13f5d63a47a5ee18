//! Fixtures of the snapshot tests: stores of either backend, a store holding a row in every
//! table, dumps and loads through channels, and views of a store through its own reads.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, Actor, AuditEvent, Checkpoint, Frontier, Outcome, PublicKey, Verifier};
use ward_store::{
    ApiKeyRow, CheckpointRow, HeldRecordRow, HoldRow, IndexEntry, InvitationRow, KeyJobRow,
    LedgerRow, Op, PostgresStore, RecordFilter, RecordRow, RequestRow, SnapshotStream,
    SnapshotSummary, SqliteStore, Store, StoreError, SubjectKeyChange, SubjectRow, TenantRow,
};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn url() -> String {
    std::env::var("WARD_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh empty store and what keeps its storage alive (a directory, or a schema dropped
/// when the test ends).
pub struct Target {
    pub store: Arc<dyn Store>,
    pub backend: Backend,
    dir: Option<tempfile::TempDir>,
    schema: Option<Schema>,
}

impl Backend {
    pub async fn open(self) -> Target {
        match self {
            Self::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let store = SqliteStore::open(&dir.path().join("ward.db"))
                    .await
                    .unwrap();
                Target {
                    store: Arc::new(store),
                    backend: self,
                    dir: Some(dir),
                    schema: None,
                }
            }
            Self::Postgres => {
                let schema = Schema::new();
                let store = PostgresStore::open_in_schema(&url(), &schema.name)
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "cannot open the PostgreSQL store at {}: {e}; these tests need a \
                             running PostgreSQL (set WARD_TEST_DATABASE_URL)",
                            url()
                        )
                    });
                Target {
                    store: Arc::new(store),
                    backend: self,
                    dir: None,
                    schema: Some(schema),
                }
            }
        }
    }
}

impl Target {
    /// The names of the tables the backend created (migration bookkeeping left out).
    pub async fn schema_tables(&self) -> BTreeSet<String> {
        let mut tables = BTreeSet::new();
        if let Some(dir) = &self.dir {
            let conn = SqliteStore::open_connection(&dir.path().join("ward.db")).unwrap();
            for schema in ["main", "keys"] {
                let sql = format!(
                    "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%'"
                );
                let mut stmt = conn.prepare(&sql).unwrap();
                let names = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
                tables.extend(names.map(Result::unwrap));
            }
            tables.remove("_ward_migrations");
            // Bookkeeping of the dump sections (snapshot.rs, `MARKED_TABLES`), the writer's
            // stored audit tail (rebuilt from the events when absent), the stored Merkle
            // tree nodes (recomputed from the events by the import) and the subject index of
            // sealed segments (sealed again after the import): not data. The bundles hold
            // the sealed history of `audit_events`, which a dump lists as that table's rows
            // (bundled again after the import).
            tables.remove("dump_marks");
            tables.remove("audit_bundles");
            tables.remove("audit_bundle_tenants");
            tables.remove("audit_tail");
            tables.remove("audit_tree");
            tables.remove("audit_subject_ids");
            tables.remove("audit_subject_postings");
            tables.remove("audit_sealed");
        }
        if let Some(schema) = &self.schema {
            let mut conn = PgConnection::connect(&url()).await.unwrap();
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = $1",
            )
            .bind(&schema.name)
            .fetch_all(&mut conn)
            .await
            .unwrap();
            tables.extend(names);
            tables.remove("_sqlx_migrations");
            tables.remove("dump_marks");
            // The stored Merkle tree nodes: derived from the events, recomputed by the import.
            tables.remove("audit_tree");
        }
        tables
    }
}

/// A schema of the test's own, dropped when the test ends.
struct Schema {
    name: String,
}

impl Schema {
    fn new() -> Self {
        Self {
            name: format!("t_{}", Uuid::new_v4().simple()),
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let url = url();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut conn = PgConnection::connect(&url).await?;
                conn.execute("SET lock_timeout = '10s'").await?;
                conn.execute(AssertSqlSafe(sql)).await?;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}

// ---- dumps ----------------------------------------------------------------------------------

pub struct Dump {
    pub bytes: Vec<u8>,
    pub summary: SnapshotSummary,
}

/// Exports `stream` through a channel, as a backup would consume it.
pub async fn dump(store: &dyn Store, stream: SnapshotStream) -> Dump {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let collect = tokio::spawn(async move {
        let mut bytes = Vec::new();
        while let Some(buf) = rx.recv().await {
            assert!(buf.len() <= 2 << 20, "a buffer of {} bytes", buf.len());
            bytes.extend_from_slice(&buf);
        }
        bytes
    });
    let summary = store.export_snapshot(stream, tx).await.unwrap();
    let bytes = collect.await.unwrap();
    Dump { bytes, summary }
}

/// Imports `bytes` sent in pieces of `piece` bytes.
pub async fn load(
    store: &dyn Store,
    stream: SnapshotStream,
    bytes: &[u8],
    piece: usize,
) -> Result<SnapshotSummary, StoreError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let pieces: Vec<Bytes> = bytes.chunks(piece).map(Bytes::copy_from_slice).collect();
    let send = tokio::spawn(async move {
        for piece in pieces {
            if tx.send(piece).await.is_err() {
                break;
            }
        }
    });
    let result = store.import_snapshot(stream, rx).await;
    send.await.unwrap();
    result
}

// ---- rows -----------------------------------------------------------------------------------

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600 + secs).unwrap()
}

pub fn tenant_row(id: Uuid, n: u8) -> TenantRow {
    TenantRow {
        id,
        name: format!("tenant {n}"),
        status: ward_store::TenantStatus::Active,
        region: (n % 2 == 1).then(|| "eu-west".into()),
        wrapped_key: Some(vec![n; 60]),
        root_key_version: 1,
        key_version: 1,
        settings: format!("{{\"n\":{n}}}"),
        created_at: at(i64::from(n)),
        status_changed_at: at(i64::from(n)),
        destroy_after: None,
    }
}

fn subject_row(tenant: Uuid, id: Uuid, n: u8) -> SubjectRow {
    SubjectRow {
        tenant,
        id,
        external_ref: Some(vec![n; 32]),
        wrapped_key: Some(vec![n; 40]),
        key_version: 1,
        record_key_version: 1,
        restrictions: "[]".into(),
        hold_until: None,
        created_at: at(10 + i64::from(n)),
    }
}

fn record_row(tenant: Uuid, subject: Uuid, n: u8) -> RecordRow {
    RecordRow {
        tenant,
        subject,
        id: Uuid::now_v7(),
        collection: if n.is_multiple_of(2) {
            "contacts"
        } else {
            "notes"
        }
        .into(),
        // Bytes of every value, so an encoding that mangles any byte shows.
        ciphertext: (0..=255u8).map(|b| b ^ n).collect(),
        key_version: 1,
        revision: i64::from(n) + 1,
        created_at: at(100 + i64::from(n)),
        updated_at: at(200 + i64::from(n)),
        expires_at: n.is_multiple_of(3).then(|| at(1_000_000)),
    }
}

fn event(tenant: Option<Uuid>, subject: Option<Uuid>, id: &str, secs: i64) -> AuditEvent {
    AuditEvent {
        at: at(secs),
        request_id: format!("req-{id}"),
        actor: Actor {
            id: "actor-ü".into(),
            role: "admin".into(),
        },
        tenant,
        subject,
        record: None,
        collection: None,
        purpose: None,
        action: Action::RecordRead,
        outcome: Outcome::Allowed,
        reason: None,
        client: None,
        detail: None,
    }
}

pub fn audit_op(tenant: Option<Uuid>, subject: Option<Uuid>, id: &str, secs: i64) -> Op {
    Op::Audit(Box::new(event(tenant, subject, id, secs)))
}

/// The ids of the populated store.
pub struct Fixture {
    pub tenant: Uuid,
    pub tenant2: Uuid,
    /// Erased after the data snapshot, with a ledger entry (2 records).
    pub erased: Uuid,
    /// Its key destroyed after the data snapshot, no ledger entry (1 record).
    pub keyless: Uuid,
    /// Kept: a record, an anonymized one, a rotated key with a retired version.
    pub kept: Uuid,
    /// Erased before the snapshot under a legal hold (a held record, a live hold key).
    pub held: Uuid,
    /// The second tenant's subject (1 record).
    pub other: Uuid,
    pub hashes: Vec<[u8; 32]>,
    pub audit_key: PublicKey,
    pub audit_size: u64,
}

impl Fixture {
    pub fn subjects(&self) -> Vec<(Uuid, Uuid)> {
        let t = self.tenant;
        vec![
            (t, self.erased),
            (t, self.keyless),
            (t, self.kept),
            (t, self.held),
            (self.tenant2, self.other),
        ]
    }
}

fn index(hash: [u8; 32]) -> Vec<IndexEntry> {
    vec![IndexEntry {
        field: "email".into(),
        hash,
    }]
}

/// A store with rows in every table of both streams, and an audit log pruned at a signed
/// checkpoint.
pub async fn populate(store: &dyn Store) -> Fixture {
    let (t, t2) = (Uuid::now_v7(), Uuid::now_v7());
    let f = Fixture {
        tenant: t,
        tenant2: t2,
        erased: Uuid::now_v7(),
        keyless: Uuid::now_v7(),
        kept: Uuid::now_v7(),
        held: Uuid::now_v7(),
        other: Uuid::now_v7(),
        hashes: (1..=4u8).map(|n| [n; 32]).collect(),
        audit_key: ward_audit::SigningKey::generate().unwrap().public_key(),
        audit_size: 0,
    };
    let commit = |ops: Vec<Op>| async move { store.commit(ops).await.unwrap() };
    commit(vec![
        Op::InsertTenant(tenant_row(t, 1)),
        Op::InsertTenant(tenant_row(t2, 2)),
        audit_op(Some(t), None, "tenants", 1),
    ])
    .await;
    let key = |id, tenant, n: u8| ApiKeyRow {
        id,
        tenant,
        token_hash: [n; 32],
        name: format!("key {n}"),
        role: "owner".into(),
        purposes: "[\"support\"]".into(),
        created_at: at(5),
        revoked_at: None,
        expires_at: (n == 2).then(|| at(9)),
    };
    commit(vec![
        Op::InsertApiKey(key(Uuid::now_v7(), None, 1)),
        Op::InsertApiKey(key(Uuid::now_v7(), Some(t), 2)),
        Op::InsertApiKey(key(Uuid::now_v7(), Some(t2), 3)),
        Op::InsertInvitation(InvitationRow {
            id: Uuid::now_v7(),
            tenant: t,
            token_hash: [9; 32],
            created_at: at(6),
            expires_at: at(7),
            used_at: None,
            role: None,
            purposes: None,
            membership_expires_at: None,
        }),
        audit_op(None, None, "keys", 5),
    ])
    .await;
    let mut ops = Vec::new();
    for (tenant, subject, n) in [
        (t, f.erased, 1),
        (t, f.keyless, 2),
        (t, f.kept, 3),
        (t, f.held, 4),
        (t2, f.other, 5),
    ] {
        ops.push(Op::InsertSubject(subject_row(tenant, subject, n)));
        ops.push(audit_op(Some(tenant), Some(subject), &format!("s{n}"), 10));
    }
    commit(ops).await;
    let mut ops = Vec::new();
    for (tenant, subject, n, hash) in [
        (t, f.erased, 0, Some(f.hashes[0])),
        (t, f.erased, 1, Some(f.hashes[1])),
        (t, f.keyless, 2, Some(f.hashes[2])),
        (t, f.kept, 3, Some(f.hashes[3])),
        (t, f.held, 4, None),
        (t2, f.other, 5, None),
    ] {
        ops.push(Op::InsertRecord {
            record: record_row(tenant, subject, n),
            index: hash.map(index).unwrap_or_default(),
        });
        ops.push(audit_op(Some(tenant), Some(subject), &format!("r{n}"), 20));
    }
    commit(ops).await;
    // An anonymized record and a rotated key (its old version retired) for the kept subject.
    let anonymized = record_row(t, f.kept, 6);
    commit(vec![Op::InsertRecord {
        record: anonymized.clone(),
        index: Vec::new(),
    }])
    .await;
    commit(vec![
        Op::AnonymizeRecord {
            record: anonymized,
            at: at(300),
        },
        Op::RotateSubjectKeys {
            tenant: t,
            tenant_key_version: 1,
            keys: vec![SubjectKeyChange {
                subject: f.kept,
                expected_version: 1,
                wrapped_key: vec![33; 40],
            }],
        },
        Op::SetRestrictions {
            tenant: t,
            subject: f.kept,
            restrictions: "[\"marketing\"]".into(),
        },
    ])
    .await;
    // A subject erased under a legal hold: its records live on under the hold's key.
    let hold = Uuid::now_v7();
    commit(vec![
        Op::EraseSubject {
            tenant: t,
            subject: f.held,
        },
        Op::InsertLedger(ledger(t, f.held, 400)),
        Op::InsertHold(HoldRow {
            tenant: t,
            id: hold,
            subject: f.held,
            wrapped_key: Some(vec![44; 40]),
            key_version: 1,
            created_at: at(400),
        }),
        Op::InsertHeldRecord(HeldRecordRow {
            tenant: t,
            hold,
            id: Uuid::now_v7(),
            collection: "contacts".into(),
            ciphertext: vec![4; 50],
            key_version: 1,
            created_at: at(400),
            hold_until: at(9_000_000),
            reason: "litigation".into(),
        }),
        Op::InsertRequest(RequestRow {
            tenant: t,
            id: Uuid::now_v7(),
            kind: "erasure".into(),
            subject: f.held,
            status: "done".into(),
            verified_by: "sealed:abc".into(),
            detail: "sealed:def".into(),
            created_at: at(390),
            due_at: at(3_000_000),
            closed_at: Some(at(400)),
        }),
        Op::InsertKeyJob(KeyJobRow {
            id: Uuid::now_v7(),
            tenant: t,
            status: "running".into(),
            cursor: Some(f.kept),
            subjects_done: 3,
            records_done: 7,
            records_total: 9,
            started_at: at(500),
            updated_at: at(501),
            finished_at: None,
            lease_owner: Some("host-1".into()),
            lease_until: Some(at(600)),
            error: None,
        }),
        audit_op(Some(t), Some(f.held), "erase", 400),
    ])
    .await;
    // A signed checkpoint, the log pruned to it, and events after it.
    let head = store.audit_head().await.unwrap();
    let signing = ward_audit::SigningKey::generate().unwrap();
    let checkpoint = signing.sign("ward-test", head.size, head.root, head.chain, 1_767_300_000);
    commit(vec![
        Op::SaveCheckpoint(CheckpointRow {
            tree_size: head.size,
            checkpoint: serde_json::to_string(&checkpoint).unwrap(),
            frontier: head.frontier.clone(),
            created_at: at(700),
        }),
        Op::PruneAudit { before: head.size },
    ])
    .await;
    for n in 0..5 {
        commit(vec![audit_op(
            Some(t),
            Some(f.kept),
            &format!("late{n}"),
            800 + n,
        )])
        .await;
    }
    // Enough more for two complete 256-event blocks, so the log has stored tree nodes, the
    // first over pruned events.
    commit(
        (0..600)
            .map(|n| audit_op(Some(t2), None, &format!("bulk{n}"), 900 + n))
            .collect(),
    )
    .await;
    let audit_size = store.audit_head().await.unwrap().size;
    Fixture {
        audit_key: signing.public_key(),
        audit_size,
        ..f
    }
}

fn ledger(tenant: Uuid, subject: Uuid, secs: i64) -> LedgerRow {
    LedgerRow {
        id: Uuid::now_v7(),
        tenant,
        subject,
        requested_by: "subject".into(),
        erased_at: at(secs),
        detail: "{}".into(),
    }
}

/// On the source, after its data snapshot: an erasure with a ledger entry, a subject key
/// destroyed without one, the second tenant destroyed, and a subject created (its key is in
/// the key snapshot, its row is not in the data snapshot).
pub async fn erase_after_snapshot(store: &dyn Store, f: &Fixture) {
    store
        .commit(vec![
            Op::InsertSubject(subject_row(f.tenant, Uuid::now_v7(), 77)),
            Op::EraseSubject {
                tenant: f.tenant,
                subject: f.erased,
            },
            Op::InsertLedger(ledger(f.tenant, f.erased, 1000)),
            Op::EraseSubject {
                tenant: f.tenant,
                subject: f.keyless,
            },
            Op::DestroyTenant {
                id: f.tenant2,
                at: at(1000),
            },
        ])
        .await
        .unwrap();
}

/// Asserts that the erased subjects and the destroyed tenant hold nothing.
pub async fn assert_gone(store: &dyn Store, f: &Fixture) {
    for subject in [f.erased, f.keyless] {
        let view = store
            .subject_view(f.tenant, subject, RecordFilter::All(None))
            .await
            .unwrap()
            .unwrap();
        assert!(view.records.is_empty(), "{view:?}");
        assert!(view.subject.wrapped_key.is_none());
        assert!(view.subject.external_ref.is_none());
    }
    for hash in &f.hashes[..3] {
        assert!(
            store
                .lookup(f.tenant, "contacts", "email", hash)
                .await
                .unwrap()
                .is_empty()
        );
    }
    let tenant2 = store.tenant(f.tenant2).await.unwrap().unwrap();
    assert_eq!(tenant2.status, ward_store::TenantStatus::Destroyed);
    assert!(tenant2.wrapped_key.is_none());
    assert!(
        store
            .subject_view(f.tenant2, f.other, RecordFilter::All(None))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.record_count(f.tenant2).await.unwrap(), 0);
    assert!(
        store
            .api_keys(Some(f.tenant2))
            .await
            .unwrap()
            .iter()
            .all(|k| k.revoked_at.is_some())
    );
    // The legally held records of the subject erased before the snapshot stay.
    assert_eq!(store.held_records(f.tenant, f.held).await.unwrap().len(), 1);
}

/// Everything the store's reads say about the fixture, as text (times a reconciliation
/// writes left out).
pub async fn view(store: &dyn Store, f: &Fixture) -> Vec<String> {
    let mut out = Vec::new();
    for t in store.tenants().await.unwrap() {
        out.push(format!(
            "tenant {} {} {} {:?} {:?} {} {} {} {:?}",
            t.id,
            t.name,
            t.status,
            t.region,
            t.wrapped_key,
            t.root_key_version,
            t.key_version,
            t.settings,
            t.destroy_after
        ));
    }
    for tenant in [None, Some(f.tenant), Some(f.tenant2)] {
        for k in store.api_keys(tenant).await.unwrap() {
            out.push(format!(
                "key {} {:?} {} {} {} {}",
                k.id,
                k.tenant,
                k.name,
                k.role,
                k.purposes,
                k.revoked_at.is_some()
            ));
        }
    }
    out.push(format!("{:?}", store.invitation_by_hash(&[9; 32]).await));
    for (tenant, subject) in f.subjects() {
        out.push(format!(
            "{:?}",
            store
                .subject_view(tenant, subject, RecordFilter::All(None))
                .await
                .unwrap()
        ));
        out.push(format!("{:?}", store.retired_keys(tenant, subject).await));
        out.push(format!("{:?}", store.ledger_entry(tenant, subject).await));
        out.push(format!("{:?}", store.held_records(tenant, subject).await));
    }
    for hash in &f.hashes {
        out.push(format!(
            "{:?}",
            store.lookup(f.tenant, "contacts", "email", hash).await
        ));
    }
    for tenant in [f.tenant, f.tenant2] {
        out.push(format!("{:?}", store.live_holds(tenant).await));
        out.push(format!("{:?}", store.requests(tenant, None).await));
        out.push(format!("{:?}", store.record_count(tenant).await));
    }
    out.push(format!("{:?}", store.key_jobs(None).await));
    out.push(format!("{:?}", store.checkpoints().await));
    out.push(format!("{:?}", store.audit_head().await));
    out.push(format!("{:?}", store.audit_rows(0, 10_000).await));
    out
}

/// Verifies the stored log from the checkpoint it was pruned to, and that it ends at the head.
pub async fn verify_audit(store: &dyn Store, f: &Fixture) {
    let head = store.audit_head().await.unwrap();
    let rows = store.audit_rows(0, 100_000).await.unwrap();
    let first = rows.first().map_or(head.size, |r| r.idx);
    let checkpoints = store.checkpoints().await.unwrap();
    let mut verifier = if first == 0 {
        Verifier::new()
    } else {
        let cp = checkpoints
            .iter()
            .find(|c| c.tree_size == first)
            .expect("a checkpoint at the prune boundary");
        let signed: Checkpoint = serde_json::from_str(&cp.checkpoint).unwrap();
        Verifier::resume_from_checkpoint(
            &signed,
            &f.audit_key,
            Frontier::from_bytes(&cp.frontier).unwrap(),
        )
        .unwrap()
    };
    for row in &rows {
        verifier.feed(row.idx, &row.event, &row.chain).unwrap();
    }
    verifier
        .finish(checkpoints.iter().map(|c| c.tree_size).max())
        .unwrap();
    assert_eq!(verifier.size(), head.size);
    assert_eq!(verifier.root(), head.root);
    assert_eq!(verifier.chain(), head.chain);
}

// ---- concurrent writers ---------------------------------------------------------------------

/// Writer `w`: a subject, then `n` commits of one record and its audit event each.
pub async fn write_with_events(store: &dyn Store, tenant: Uuid, w: u8, n: u8) -> Uuid {
    let subject = Uuid::now_v7();
    store
        .commit(vec![Op::InsertSubject(subject_row(tenant, subject, w))])
        .await
        .unwrap();
    for i in 0..n {
        let record = record_row(tenant, subject, i);
        let mut event = event(Some(tenant), Some(subject), &format!("{w}-{i}"), 50);
        event.record = Some(record.id);
        store
            .commit(vec![
                Op::InsertRecord {
                    record,
                    index: Vec::new(),
                },
                Op::Audit(Box::new(event)),
            ])
            .await
            .unwrap();
    }
    subject
}

pub struct Consistency {
    pub records: usize,
    pub events: usize,
}

/// Checks that every record of the writers' subjects has its audit event and every such
/// event its record.
pub async fn consistency(store: &dyn Store, tenant: Uuid, subjects: &[Uuid]) -> Consistency {
    let mut records = BTreeSet::new();
    for subject in subjects {
        if let Some(view) = store
            .subject_view(tenant, *subject, RecordFilter::All(None))
            .await
            .unwrap()
        {
            records.extend(view.records.iter().map(|r| r.id));
        }
    }
    let mut events = BTreeSet::new();
    for row in store.audit_rows(0, 1_000_000).await.unwrap() {
        let event: AuditEvent = serde_json::from_slice(&row.event).unwrap();
        events.extend(event.record);
    }
    assert_eq!(
        records, events,
        "records without events or events without records"
    );
    Consistency {
        records: records.len(),
        events: events.len(),
    }
}
