//! Reads for key rotation: retired keys, the subjects that still hold some, key jobs.

use super::*;

pub(in crate::sqlite) fn keyed_subjects(
    c: &Connection,
    tenant: Uuid,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<SubjectRow>> {
    all(
        c,
        concat!(
            "SELECT ",
            subject_columns!(),
            " FROM subjects s \
             JOIN keys.subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id \
             WHERE s.tenant = ?1 AND s.id > ?2 ORDER BY s.id LIMIT ?3"
        ),
        params![tenant, after.unwrap_or(Uuid::nil()), i64::from(limit)],
        |r| subject_from(r, 0),
    )
}

pub(in crate::sqlite) fn retired_keys(
    c: &Connection,
    tenant: Uuid,
    subject: Uuid,
) -> Result<Vec<RetiredKeyRow>> {
    all(
        c,
        "SELECT version, wrapped_key, key_version FROM keys.retired_subject_keys \
         WHERE tenant = ?1 AND subject = ?2 ORDER BY version",
        params![tenant, subject],
        |r| retired_key_from(r),
    )
}

pub(in crate::sqlite) fn subjects_with_retired_keys(
    c: &Connection,
    tenant: Uuid,
    limit: u32,
) -> Result<Vec<Uuid>> {
    all(
        c,
        "SELECT DISTINCT subject FROM keys.retired_subject_keys WHERE tenant = ?1 \
         ORDER BY subject LIMIT ?2",
        params![tenant, i64::from(limit)],
        |r| uuid_at(r, 0),
    )
}

pub(in crate::sqlite) fn key_jobs(
    c: &Connection,
    status: Option<String>,
) -> Result<Vec<KeyJobRow>> {
    all(
        c,
        "SELECT id, tenant, status, cursor, subjects_done, records_done, records_total, \
         started_at, updated_at, finished_at, lease_owner, lease_until, error \
         FROM key_jobs WHERE ?1 IS NULL OR status = ?1 \
         ORDER BY started_at DESC, id DESC LIMIT 1000",
        [status],
        |r| key_job_from(r),
    )
}

pub(in crate::sqlite) fn retired_key_count(c: &Connection, tenant: Option<Uuid>) -> Result<u64> {
    let n: i64 = c
        .prepare_cached(
            "SELECT COUNT(*) FROM keys.retired_subject_keys \
             WHERE ?1 IS NULL OR tenant = ?1",
        )?
        .query_row([tenant], |r| r.get(0))?;
    Ok(n as u64)
}
