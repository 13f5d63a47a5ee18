//! The statement helpers that collect rows. The decoders they take are the shared ones in
//! `crate::decode`, so that SQLite reads a row exactly as PostgreSQL does. Callers pass them
//! as closures (`|r| key_from(r)`): a generic decoder named bare would fix the row's statement
//! lifetime, and these helpers need a decoder for a row of any.

use super::*;
pub(super) use crate::decode::{
    SUBJECT_WIDTH, audit_row_from, blob_at, checkpoint_from, hash_at, held_from, hold_from,
    invitation_from, key_from, key_job_from, ledger_from, opt_uuid_at, record_from, request_from,
    retired_key_from, subject_from, tenant_from, uuid_at,
};

/// Runs a cached query and decodes every row.
pub(super) fn all<T, P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    mut decode: impl FnMut(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// Runs a cached query and decodes its first row, if any.
pub(super) fn first<T, P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    decode: impl FnOnce(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    rows.next()?.map(decode).transpose()
}
