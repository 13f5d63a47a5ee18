//! Reads for data-subject rights: requests, legal holds and the records they keep.

use super::*;

pub(in crate::sqlite) fn expired_held_records(
    c: &Connection,
    now: time::OffsetDateTime,
    limit: u32,
) -> Result<Vec<HeldRecordRow>> {
    all(
        c,
        "SELECT tenant, hold, id, collection, ciphertext, key_version, created_at, \
         hold_until, reason FROM held_records WHERE hold_until <= ?1 \
         ORDER BY hold_until LIMIT ?2",
        params![to_micros(now), i64::from(limit)],
        |r| held_from(r, 0),
    )
}

pub(in crate::sqlite) fn empty_holds(c: &Connection) -> Result<Vec<HoldRow>> {
    all(
        c,
        concat!(
            "SELECT ",
            hold_columns!(),
            " FROM holds h JOIN keys.hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id \
             WHERE NOT EXISTS \
             (SELECT 1 FROM held_records r WHERE r.tenant = h.tenant AND r.hold = h.id)"
        ),
        [],
        |r| hold_from(r, 0),
    )
}

pub(in crate::sqlite) fn held_records(
    c: &Connection,
    tenant: Uuid,
    subject: Uuid,
) -> Result<Vec<(HoldRow, HeldRecordRow)>> {
    all(
        c,
        concat!(
            "SELECT ",
            hold_columns!(),
            ", r.tenant, r.hold, r.id, r.collection, r.ciphertext, r.key_version, \
             r.created_at, r.hold_until, r.reason \
             FROM holds h JOIN held_records r ON r.tenant = h.tenant AND r.hold = h.id \
             LEFT JOIN keys.hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id \
             WHERE h.tenant = ?1 AND h.subject = ?2 ORDER BY r.id"
        ),
        params![tenant, subject],
        |r| Ok((hold_from(r, 0)?, held_from(r, 6)?)),
    )
}

pub(in crate::sqlite) fn live_holds(c: &Connection, tenant: Uuid) -> Result<Vec<HoldRow>> {
    all(
        c,
        concat!(
            "SELECT ",
            hold_columns!(),
            " FROM holds h JOIN keys.hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id \
             WHERE h.tenant = ?1 ORDER BY h.id"
        ),
        [tenant],
        |r| hold_from(r, 0),
    )
}

pub(in crate::sqlite) fn request(
    c: &Connection,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<RequestRow>> {
    first(
        c,
        concat!(
            "SELECT ",
            request_columns!(),
            " FROM requests WHERE tenant = ?1 AND id = ?2"
        ),
        params![tenant, id],
        |r| request_from(r),
    )
}

pub(in crate::sqlite) fn requests(
    c: &Connection,
    tenant: Uuid,
    status: Option<&str>,
) -> Result<Vec<RequestRow>> {
    all(
        c,
        concat!(
            "SELECT ",
            request_columns!(),
            " FROM requests WHERE tenant = ?1 AND (?2 IS NULL OR status = ?2) \
             ORDER BY due_at, id"
        ),
        params![tenant, status],
        |r| request_from(r),
    )
}

pub(in crate::sqlite) fn requests_in_clear(
    c: &Connection,
    prefix: &str,
) -> Result<Vec<RequestRow>> {
    all(
        c,
        concat!(
            "SELECT ",
            request_columns!(),
            " FROM requests WHERE substr(verified_by, 1, length(?1)) <> ?1 \
             OR substr(detail, 1, length(?1)) <> ?1 ORDER BY tenant, id"
        ),
        params![prefix],
        |r| request_from(r),
    )
}
