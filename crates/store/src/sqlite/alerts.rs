//! Alerts on SQLite.

use rusqlite::{Connection, params};
use uuid::Uuid;

use super::{all, first, run, run_one};
use crate::alerts::{AlertOp, AlertQuery, AlertRow};
use crate::decode::alert_from;
use crate::sql::{self, ALERT_COLUMNS};
use crate::{Result, StoreError, to_micros};

/// Applies one change to alerts inside the writer's transaction.
pub(super) fn apply(conn: &Connection, op: &AlertOp) -> Result<()> {
    match op {
        AlertOp::Insert(a) => {
            run(
                conn,
                "INSERT INTO alerts (id, rule, scope, severity, tenant, status, first_seen, \
                 last_seen, count, events, acknowledged_by, acknowledged_at, resolved_by, \
                 resolved_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    a.id,
                    a.rule,
                    a.scope,
                    a.severity,
                    a.tenant,
                    a.status,
                    to_micros(a.first_seen),
                    to_micros(a.last_seen),
                    a.count,
                    a.events,
                    a.acknowledged_by,
                    a.acknowledged_at.map(to_micros),
                    a.resolved_by,
                    a.resolved_at.map(to_micros),
                ],
            )
            .map_err(super::unique_to_conflict("alert"))?;
        }
        AlertOp::Bump {
            id,
            hits,
            at,
            events,
        } => run_one(
            conn,
            "alert",
            "UPDATE alerts SET count = count + ?1, last_seen = max(last_seen, ?2), events = ?3 \
             WHERE id = ?4 AND status <> 'resolved'",
            params![hits, to_micros(*at), events, id],
        )?,
        AlertOp::SetStatus {
            id,
            from,
            to,
            by,
            at,
        } => {
            let sql = if to == "resolved" {
                "UPDATE alerts SET status = ?1, resolved_by = ?2, resolved_at = ?3 \
                 WHERE id = ?4 AND status = ?5"
            } else {
                "UPDATE alerts SET status = ?1, acknowledged_by = ?2, acknowledged_at = ?3 \
                 WHERE id = ?4 AND status = ?5"
            };
            run_one(
                conn,
                "alert",
                sql,
                params![to, by, to_micros(*at), id, from],
            )?;
        }
    }
    Ok(())
}

pub(super) fn alert(c: &Connection, id: Uuid) -> Result<Option<AlertRow>> {
    let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1");
    first(c, &sql, [id], |r| alert_from(r))
}

pub(super) fn live_alert(c: &Connection, rule: &str, scope: &str) -> Result<Option<AlertRow>> {
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE rule = ?1 AND scope = ?2 AND status <> 'resolved'"
    );
    first(c, &sql, [rule, scope], |r| alert_from(r))
}

pub(super) fn alerts(c: &Connection, q: &AlertQuery) -> Result<Vec<AlertRow>> {
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts \
         WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR status = ?2) \
         AND (?3 IS NULL OR first_seen < ?3 OR (first_seen = ?3 AND id < ?4)) \
         ORDER BY first_seen DESC, id DESC LIMIT ?5"
    );
    let (at, id) = match q.before {
        Some((at, id)) => (Some(to_micros(at)), Some(id)),
        None => (None, None),
    };
    all(
        c,
        &sql,
        params![q.tenant, q.status, at, id, i64::from(q.limit)],
        |r| alert_from(r),
    )
}

pub(super) fn open_alert_counts(c: &Connection) -> Result<Vec<(String, String, u64)>> {
    all(c, sql::OPEN_ALERT_COUNTS, [], |r| {
        let n: i64 = r.get(2)?;
        Ok((
            r.get(0)?,
            r.get(1)?,
            u64::try_from(n).map_err(|_| StoreError::Corrupt("alert count".into()))?,
        ))
    })
}
