//! Incidents on SQLite.

use rusqlite::{Connection, params};
use uuid::Uuid;

use super::{all, first, run, run_one, uuid_at};
use crate::decode::{incident_from, incident_note_from, incident_tenant_from};
use crate::incidents::{
    INCIDENT_CLOSED, INCIDENT_OPEN, IncidentOp, IncidentRow, IncidentScope, IncidentView,
};
use crate::sql::INCIDENT_COLUMNS;
use crate::{Result, to_micros};

/// Applies one change to incidents inside the writer's transaction.
pub(super) fn apply(conn: &Connection, op: &IncidentOp) -> Result<()> {
    match op {
        IncidentOp::Open {
            incident: i,
            tenants,
            subjects,
            alerts,
        } => {
            run(
                conn,
                "INSERT INTO incidents (id, tenant, opened_by, title, status, opened_at, \
                 closed_at, due_alerted, overdue_alerted) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    i.id,
                    i.tenant,
                    i.opened_by,
                    i.title,
                    i.status,
                    to_micros(i.opened_at),
                    i.closed_at.map(to_micros),
                    i64::from(i.due_alerted),
                    i64::from(i.overdue_alerted),
                ],
            )
            .map_err(super::unique_to_conflict("incident"))?;
            for t in tenants {
                run(
                    conn,
                    "INSERT OR IGNORE INTO incident_tenants (incident, tenant) VALUES (?1, ?2)",
                    params![i.id, t],
                )?;
            }
            for (t, s) in subjects {
                run(
                    conn,
                    "INSERT OR IGNORE INTO incident_subjects (incident, tenant, subject) \
                     VALUES (?1, ?2, ?3)",
                    params![i.id, t, s],
                )?;
            }
            for a in alerts {
                run(
                    conn,
                    "INSERT OR IGNORE INTO incident_alerts (incident, alert) VALUES (?1, ?2)",
                    params![i.id, a],
                )?;
            }
        }
        IncidentOp::Note(n) => {
            let done = run(
                conn,
                "INSERT INTO incident_notes (incident, seq, at, author, kind, text) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6 \
                 WHERE EXISTS (SELECT 1 FROM incidents WHERE id = ?1 AND status = ?7)",
                params![
                    n.incident,
                    n.seq,
                    to_micros(n.at),
                    n.author,
                    n.kind,
                    n.text,
                    INCIDENT_OPEN,
                ],
            )
            .map_err(super::unique_to_conflict("incident note"))?;
            if done == 0 {
                return Err(crate::StoreError::NotFound("incident"));
            }
        }
        IncidentOp::Notified {
            incident,
            tenant,
            at,
            by,
        } => run_one(
            conn,
            "incident tenant",
            "UPDATE incident_tenants SET notified_at = ?1, notified_by = ?2 \
             WHERE incident = ?3 AND tenant = ?4 AND notified_at IS NULL",
            params![to_micros(*at), by, incident, tenant],
        )?,
        IncidentOp::Close { id, at } => run_one(
            conn,
            "incident",
            "UPDATE incidents SET status = ?1, closed_at = ?2 WHERE id = ?3 AND status = ?4",
            params![INCIDENT_CLOSED, to_micros(*at), id, INCIDENT_OPEN],
        )?,
        IncidentOp::FlagDue { id } => run_one(
            conn,
            "incident",
            "UPDATE incidents SET due_alerted = 1 \
             WHERE id = ?1 AND status = ?2 AND due_alerted = 0",
            params![id, INCIDENT_OPEN],
        )?,
        IncidentOp::FlagOverdue { id } => run_one(
            conn,
            "incident",
            "UPDATE incidents SET overdue_alerted = 1 \
             WHERE id = ?1 AND status = ?2 AND overdue_alerted = 0",
            params![id, INCIDENT_OPEN],
        )?,
    }
    Ok(())
}

pub(super) fn incident(c: &Connection, id: Uuid) -> Result<Option<IncidentView>> {
    let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1");
    let Some(incident) = first(c, &sql, [id], |r| incident_from(r))? else {
        return Ok(None);
    };
    let tenants = all(
        c,
        "SELECT tenant, notified_at, notified_by FROM incident_tenants WHERE incident = ?1 \
         ORDER BY tenant",
        [id],
        |r| incident_tenant_from(r),
    )?;
    let subjects = all(
        c,
        "SELECT tenant, subject FROM incident_subjects WHERE incident = ?1 \
         ORDER BY tenant, subject",
        [id],
        |r| Ok((uuid_at(r, 0)?, uuid_at(r, 1)?)),
    )?;
    let alerts = all(
        c,
        "SELECT alert FROM incident_alerts WHERE incident = ?1 ORDER BY alert",
        [id],
        |r| uuid_at(r, 0),
    )?;
    let notes = all(
        c,
        "SELECT incident, seq, at, author, kind, text FROM incident_notes WHERE incident = ?1 \
         ORDER BY seq",
        [id],
        |r| incident_note_from(r),
    )?;
    Ok(Some(IncidentView {
        incident,
        tenants,
        subjects,
        alerts,
        notes,
    }))
}

pub(super) fn incidents(
    c: &Connection,
    scope: IncidentScope,
    limit: u32,
) -> Result<Vec<IncidentRow>> {
    let limit = i64::from(limit);
    match scope {
        IncidentScope::Operator => {
            let sql = format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE tenant IS NULL \
                 ORDER BY opened_at DESC, id DESC LIMIT ?1"
            );
            all(c, &sql, [limit], |r| incident_from(r))
        }
        IncidentScope::Tenant(t) => {
            let sql = format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE tenant = ?1 \
                 OR id IN (SELECT incident FROM incident_tenants WHERE tenant = ?1) \
                 ORDER BY opened_at DESC, id DESC LIMIT ?2"
            );
            all(c, &sql, params![t, limit], |r| incident_from(r))
        }
        IncidentScope::ClockPending => {
            let sql = format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE status = ?1 \
                 AND (due_alerted = 0 OR overdue_alerted = 0) \
                 AND EXISTS (SELECT 1 FROM incident_tenants it \
                 WHERE it.incident = incidents.id AND it.notified_at IS NULL) \
                 ORDER BY opened_at, id LIMIT ?2"
            );
            all(c, &sql, params![INCIDENT_OPEN, limit], |r| incident_from(r))
        }
    }
}
