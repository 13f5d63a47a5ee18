//! Set-based record writes: the record inserts, revision-conditional updates and deletes of
//! many requests as a handful of multi-row statements, whatever the number of requests.
//!
//! A PostgreSQL write costs round trips, not rows: one `INSERT … SELECT FROM UNNEST(…)` of a
//! hundred records takes barely longer than one of a single record. So the writer hands the
//! record writes of a whole group commit to [`apply_writes`], which runs at most six
//! statements for them (subject-key and tenant check, insert, update, delete, index delete, index
//! insert), each reporting row by row which writes took effect. A write that lost (its record
//! exists already, its revision is stale, its record is gone, its subject key was rotated or
//! shredded) is reported as the error the one-statement-per-op path would have given, and
//! nothing of it was written: every statement only touches the rows of writes that have not
//! failed yet, and a write's index entries follow its record only once the record statement
//! reported it.
//!
//! That makes each *write* atomic without a savepoint. A *request* is atomic only if it is
//! one write (plus its audit events, which the writer appends at the end for the requests
//! that succeeded): that is the invariant the writer keeps by passing several requests to one
//! call only when each holds at most one write and no two touch the same record. Requests of
//! several writes (a batch call) get one call of their own, under a savepoint when other
//! requests share the transaction, and are rolled back whole when any of their writes lost.

use std::collections::HashMap;

use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::uuid_at;
use crate::{Conflict, IndexEntry, Op, RecordRow, Result, StoreError, TenantStatus, to_micros};

/// One record write a set-based statement can carry.
pub(super) enum RecordWrite {
    /// A new record and its blind-index entries.
    Insert {
        record: RecordRow,
        index: Vec<IndexEntry>,
    },
    /// A record's new state if its revision is still `expected_revision`, with the entries
    /// that replace its old ones.
    Update {
        record: RecordRow,
        expected_revision: i64,
        index: Vec<IndexEntry>,
    },
    /// The deletion of one record and its entries.
    Delete {
        tenant: Uuid,
        subject: Uuid,
        id: Uuid,
    },
}

/// (tenant, subject, record): what a write touches.
pub(super) type RecordKey = (Uuid, Uuid, Uuid);

impl RecordWrite {
    /// The record this write touches.
    pub(super) fn key(&self) -> RecordKey {
        match self {
            Self::Insert { record, .. } | Self::Update { record, .. } => {
                (record.tenant, record.subject, record.id)
            }
            Self::Delete {
                tenant,
                subject,
                id,
            } => (*tenant, *subject, *id),
        }
    }

    /// The record `op` writes, if it is a record write.
    pub(super) fn key_of(op: &Op) -> Option<RecordKey> {
        match op {
            Op::InsertRecord { record, .. } | Op::UpdateRecord { record, .. } => {
                Some((record.tenant, record.subject, record.id))
            }
            Op::DeleteRecord {
                tenant,
                subject,
                id,
            } => Some((*tenant, *subject, *id)),
            _ => None,
        }
    }

    /// Whether `op` is a record write (`Op::Audit` is neither: the writer stages those).
    pub(super) fn accepts(op: &Op) -> bool {
        matches!(
            op,
            Op::InsertRecord { .. } | Op::UpdateRecord { .. } | Op::DeleteRecord { .. }
        )
    }

    /// `op` as a write, if it is one (`None` for anything else, which is dropped: the caller
    /// checked with [`RecordWrite::accepts`] first).
    pub(super) fn from_op(op: Op) -> Option<Self> {
        match op {
            Op::InsertRecord { record, index } => Some(Self::Insert { record, index }),
            Op::UpdateRecord {
                record,
                expected_revision,
                index,
            } => Some(Self::Update {
                record,
                expected_revision,
                index,
            }),
            Op::DeleteRecord {
                tenant,
                subject,
                id,
            } => Some(Self::Delete {
                tenant,
                subject,
                id,
            }),
            _ => None,
        }
    }

    /// The record and index entries this write stores, if it stores any.
    fn stored(&self) -> Option<(&RecordRow, &[IndexEntry])> {
        match self {
            Self::Insert { record, index } | Self::Update { record, index, .. } => {
                Some((record, index))
            }
            Self::Delete { .. } => None,
        }
    }
}

fn b(u: &Uuid) -> &[u8] {
    u.as_bytes().as_slice()
}

/// Applies `writes`, which touch pairwise different records, in at most six statements, and
/// returns, position by position, the error of each write that lost (`None`: it took
/// effect). The outer error is a statement that failed as a whole (a constraint the statements
/// do not check row by row, a lost connection): the transaction (or the savepoint the caller
/// set) must then be rolled back, and which write caused it is unknown.
pub(super) async fn apply_writes(
    conn: &mut PgConnection,
    writes: &[&RecordWrite],
) -> Result<Vec<Option<StoreError>>> {
    let mut lost: Vec<Option<StoreError>> = writes.iter().map(|_| None).collect();
    check_subject_keys(conn, writes, &mut lost).await?;
    insert_records(conn, writes, &mut lost).await?;
    update_records(conn, writes, &mut lost).await?;
    delete_records(conn, writes, &mut lost).await?;
    replace_index(conn, writes, &lost).await?;
    Ok(lost)
}

/// Positions of the writes that match `want` and have not lost yet, in the order of their
/// records' keys: statements then visit (and lock) rows in one order, so that two writers, or
/// two servers, whose batches share records wait for each other rather than deadlock.
fn live(
    writes: &[&RecordWrite],
    lost: &[Option<StoreError>],
    want: impl Fn(&RecordWrite) -> bool,
) -> Vec<usize> {
    let mut live: Vec<usize> = (0..writes.len())
        .filter(|&i| lost[i].is_none() && want(writes[i]))
        .collect();
    live.sort_by_key(|&i| writes[i].key());
    live
}

/// A record may only be stored sealed under its subject's current key: the share lock on each
/// `subject_keys` row makes a concurrent erasure or record rotation wait for this transaction.
/// A new record also needs its tenant active (see `assert_tenant_active`); the tenant row is
/// read, not locked: a cancellation committing meanwhile orders itself after this write.
async fn check_subject_keys(
    conn: &mut PgConnection,
    writes: &[&RecordWrite],
    lost: &mut [Option<StoreError>],
) -> Result<()> {
    let sealed = live(writes, lost, |w| w.stored().is_some());
    if sealed.is_empty() {
        return Ok(());
    }
    let records: Vec<&RecordRow> = sealed
        .iter()
        .filter_map(|&i| writes[i].stored().map(|(r, _)| r))
        .collect();
    let rows = sqlx::query(
        "SELECT k.tenant, k.subject, k.version, t.status FROM subject_keys k \
         JOIN tenants t ON t.id = k.tenant \
         WHERE (k.tenant, k.subject) IN \
         (SELECT * FROM UNNEST($1::BYTEA[], $2::BYTEA[])) FOR SHARE OF k",
    )
    .bind(records.iter().map(|r| b(&r.tenant)).collect::<Vec<_>>())
    .bind(records.iter().map(|r| b(&r.subject)).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    let mut current = HashMap::with_capacity(rows.len());
    for row in &rows {
        let active = row.try_get::<&str, _>(3)? == TenantStatus::Active.as_str();
        current.insert(
            (uuid_at(row, 0)?, uuid_at(row, 1)?),
            (row.try_get::<i64, _>(2)?, active),
        );
    }
    for (&i, record) in sealed.iter().zip(records) {
        let new = matches!(writes[i], RecordWrite::Insert { .. });
        lost[i] = match current.get(&(record.tenant, record.subject)) {
            None => Some(StoreError::NotFound("subject")),
            Some(&(_, false)) if new => Some(StoreError::Conflict(Conflict::TenantInactive)),
            Some(&(v, _)) if v == i64::from(record.key_version) => None,
            Some(_) => Some(StoreError::Conflict(Conflict::SubjectKeyRotated)),
        };
    }
    Ok(())
}

/// The keys a `RETURNING tenant, subject, id` reported.
fn returned(rows: &[sqlx::postgres::PgRow]) -> Result<std::collections::HashSet<RecordKey>> {
    rows.iter()
        .map(|row| Ok((uuid_at(row, 0)?, uuid_at(row, 1)?, uuid_at(row, 2)?)))
        .collect()
}

async fn insert_records(
    conn: &mut PgConnection,
    writes: &[&RecordWrite],
    lost: &mut [Option<StoreError>],
) -> Result<()> {
    let new = live(writes, lost, |w| matches!(w, RecordWrite::Insert { .. }));
    if new.is_empty() {
        return Ok(());
    }
    let records: Vec<&RecordRow> = new
        .iter()
        .filter_map(|&i| writes[i].stored().map(|(r, _)| r))
        .collect();
    let rows = sqlx::query(
        "INSERT INTO records (tenant, subject, id, collection, ciphertext, key_version, \
         revision, created_at, updated_at, expires_at) \
         SELECT * FROM UNNEST($1::BYTEA[], $2::BYTEA[], $3::BYTEA[], $4::TEXT[], $5::BYTEA[], \
         $6::BIGINT[], $7::BIGINT[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[]) \
         ON CONFLICT DO NOTHING RETURNING tenant, subject, id",
    )
    .bind(records.iter().map(|r| b(&r.tenant)).collect::<Vec<_>>())
    .bind(records.iter().map(|r| b(&r.subject)).collect::<Vec<_>>())
    .bind(records.iter().map(|r| b(&r.id)).collect::<Vec<_>>())
    .bind(
        records
            .iter()
            .map(|r| r.collection.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        records
            .iter()
            .map(|r| r.ciphertext.as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(
        records
            .iter()
            .map(|r| i64::from(r.key_version))
            .collect::<Vec<_>>(),
    )
    .bind(records.iter().map(|r| r.revision).collect::<Vec<_>>())
    .bind(
        records
            .iter()
            .map(|r| to_micros(r.created_at))
            .collect::<Vec<_>>(),
    )
    .bind(
        records
            .iter()
            .map(|r| to_micros(r.updated_at))
            .collect::<Vec<_>>(),
    )
    .bind(
        records
            .iter()
            .map(|r| r.expires_at.map(to_micros))
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut *conn)
    .await?;
    let inserted = returned(&rows)?;
    for i in new {
        if !inserted.contains(&writes[i].key()) {
            // The message the one-row path gives for the same unique violation.
            lost[i] = Some(StoreError::Conflict(Conflict::Exists("subject")));
        }
    }
    Ok(())
}

async fn update_records(
    conn: &mut PgConnection,
    writes: &[&RecordWrite],
    lost: &mut [Option<StoreError>],
) -> Result<()> {
    let changed = live(writes, lost, |w| matches!(w, RecordWrite::Update { .. }));
    if changed.is_empty() {
        return Ok(());
    }
    let updates: Vec<(&RecordRow, i64)> = changed
        .iter()
        .filter_map(|&i| match writes[i] {
            RecordWrite::Update {
                record,
                expected_revision,
                ..
            } => Some((record, *expected_revision)),
            _ => None,
        })
        .collect();
    let rows = sqlx::query(
        "UPDATE records r SET ciphertext = v.ciphertext, key_version = v.key_version, \
         revision = v.revision, updated_at = v.updated_at, expires_at = v.expires_at \
         FROM UNNEST($1::BYTEA[], $2::BYTEA[], $3::BYTEA[], $4::BYTEA[], $5::BIGINT[], \
         $6::BIGINT[], $7::BIGINT[], $8::BIGINT[], $9::BIGINT[]) \
         AS v(tenant, subject, id, ciphertext, key_version, revision, updated_at, expires_at, \
         expected) \
         WHERE r.tenant = v.tenant AND r.subject = v.subject AND r.id = v.id \
         AND r.revision = v.expected \
         RETURNING r.tenant, r.subject, r.id",
    )
    .bind(
        updates
            .iter()
            .map(|(r, _)| b(&r.tenant))
            .collect::<Vec<_>>(),
    )
    .bind(
        updates
            .iter()
            .map(|(r, _)| b(&r.subject))
            .collect::<Vec<_>>(),
    )
    .bind(updates.iter().map(|(r, _)| b(&r.id)).collect::<Vec<_>>())
    .bind(
        updates
            .iter()
            .map(|(r, _)| r.ciphertext.as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(
        updates
            .iter()
            .map(|(r, _)| i64::from(r.key_version))
            .collect::<Vec<_>>(),
    )
    .bind(updates.iter().map(|(r, _)| r.revision).collect::<Vec<_>>())
    .bind(
        updates
            .iter()
            .map(|(r, _)| to_micros(r.updated_at))
            .collect::<Vec<_>>(),
    )
    .bind(
        updates
            .iter()
            .map(|(r, _)| r.expires_at.map(to_micros))
            .collect::<Vec<_>>(),
    )
    .bind(updates.iter().map(|(_, e)| *e).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    let updated = returned(&rows)?;
    for i in changed {
        if !updated.contains(&writes[i].key()) {
            lost[i] = Some(StoreError::Conflict(Conflict::Stale));
        }
    }
    Ok(())
}

async fn delete_records(
    conn: &mut PgConnection,
    writes: &[&RecordWrite],
    lost: &mut [Option<StoreError>],
) -> Result<()> {
    let gone = live(writes, lost, |w| matches!(w, RecordWrite::Delete { .. }));
    if gone.is_empty() {
        return Ok(());
    }
    let keys: Vec<RecordKey> = gone.iter().map(|&i| writes[i].key()).collect();
    let rows = sqlx::query(
        "DELETE FROM records r USING UNNEST($1::BYTEA[], $2::BYTEA[], $3::BYTEA[]) \
         AS v(tenant, subject, id) \
         WHERE r.tenant = v.tenant AND r.subject = v.subject AND r.id = v.id \
         RETURNING r.tenant, r.subject, r.id",
    )
    .bind(keys.iter().map(|k| b(&k.0)).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| b(&k.1)).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| b(&k.2)).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    let deleted = returned(&rows)?;
    for i in gone {
        if !deleted.contains(&writes[i].key()) {
            lost[i] = Some(StoreError::NotFound("record"));
        }
    }
    Ok(())
}

/// Drops the old index entries of the updated and deleted records and inserts the entries of
/// the inserted and updated ones: two statements for the whole set.
async fn replace_index(
    conn: &mut PgConnection,
    writes: &[&RecordWrite],
    lost: &[Option<StoreError>],
) -> Result<()> {
    let stale = live(writes, lost, |w| !matches!(w, RecordWrite::Insert { .. }));
    if !stale.is_empty() {
        let keys: Vec<RecordKey> = stale.iter().map(|&i| writes[i].key()).collect();
        sqlx::query(
            "DELETE FROM blind_index x USING UNNEST($1::BYTEA[], $2::BYTEA[], $3::BYTEA[]) \
             AS v(tenant, subject, record) \
             WHERE x.tenant = v.tenant AND x.subject = v.subject AND x.record = v.record",
        )
        .bind(keys.iter().map(|k| b(&k.0)).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| b(&k.1)).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| b(&k.2)).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    let entries: Vec<(&RecordRow, &IndexEntry)> = live(writes, lost, |w| w.stored().is_some())
        .into_iter()
        .filter_map(|i| writes[i].stored())
        .flat_map(|(record, index)| index.iter().map(move |e| (record, e)))
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO blind_index (tenant, collection, field, hash, subject, record) \
         SELECT * FROM UNNEST($1::BYTEA[], $2::TEXT[], $3::TEXT[], $4::BYTEA[], $5::BYTEA[], \
         $6::BYTEA[]) ON CONFLICT DO NOTHING",
    )
    .bind(
        entries
            .iter()
            .map(|(r, _)| b(&r.tenant))
            .collect::<Vec<_>>(),
    )
    .bind(
        entries
            .iter()
            .map(|(r, _)| r.collection.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        entries
            .iter()
            .map(|(_, e)| e.field.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        entries
            .iter()
            .map(|(_, e)| e.hash.as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(
        entries
            .iter()
            .map(|(r, _)| b(&r.subject))
            .collect::<Vec<_>>(),
    )
    .bind(entries.iter().map(|(r, _)| b(&r.id)).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
