//! Checks of what the database holds: its schema, the keys that seal tenants, the audit log,
//! retention, and the clock against the newest stored times.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use ward_store::schema::SchemaStatus;
use ward_store::{PostgresStore, SqliteStore, Store};
use ward_vault::LogVerifyError;

use crate::{Context, Database, Finding};

/// How far the clock may be behind the newest stored time before it counts as wrong.
const CLOCK_TOLERANCE: time::Duration = time::Duration::minutes(5);

/// The database answers, and its migrations are exactly those this Ward knows. Opens the
/// store for the checks after it, never migrating.
pub(crate) async fn database(ctx: &Context) -> Finding {
    const NAME: &str = "database";
    let Some(db) = &ctx.setup.database else {
        return Finding::ok(NAME, "the running server opened its database at start");
    };
    let (what, schema) = match db {
        Database::Sqlite(path) => {
            let what = format!("the SQLite database {}", path.display());
            if !path.is_file() {
                return Finding::fail(
                    NAME,
                    format!("there is no Ward database at {}", path.display()),
                    "check --data-dir (or data_dir in the config file); `ward init` creates a \
                     new deployment",
                );
            }
            (what, ward_store::schema::sqlite_schema(path))
        }
        Database::Postgres(url) => (
            "the PostgreSQL database".to_owned(),
            ward_store::schema::postgres_schema(url).await,
        ),
    };
    let schema = match schema {
        Ok(s) => s,
        Err(e) => {
            return Finding::fail(
                NAME,
                format!("{what} cannot be read: {e}"),
                "check database_url (or the data directory), that the database server runs \
                 and that it accepts Ward's user",
            );
        }
    };
    if let Some(finding) = schema_finding(NAME, &what, &schema) {
        return finding;
    }
    if ctx.store().is_none() {
        let opened: Result<Arc<dyn Store>, _> = match db {
            Database::Sqlite(path) => SqliteStore::open(path).await.map(|s| Arc::new(s) as _),
            Database::Postgres(url) => PostgresStore::open(url).await.map(|s| Arc::new(s) as _),
        };
        match opened {
            Ok(store) => ctx.set_store(store),
            Err(e) => {
                return Finding::fail(
                    NAME,
                    format!("{what} cannot be opened: {e}"),
                    "check that Ward's user can read and write it",
                );
            }
        }
    }
    Finding::ok(
        NAME,
        format!(
            "{what} answers; its schema is at version {}, the newest this Ward knows",
            schema.known_version()
        ),
    )
}

/// A failing finding when migrations are missing or newer than this Ward.
fn schema_finding(name: &'static str, what: &str, schema: &SchemaStatus) -> Option<Finding> {
    if let Err(e) = schema.refuse_newer() {
        return Some(Finding::fail(
            name,
            format!("{what}: {e}"),
            "run the Ward version that migrated it (or newer); never open it with an older one",
        ));
    }
    let missing = schema.missing();
    if missing.is_empty() {
        return None;
    }
    let list = missing
        .iter()
        .map(|m| format!("{} ({})", m.version, m.description))
        .collect::<Vec<_>>()
        .join(", ");
    Some(Finding::fail(
        name,
        format!(
            "{what} lacks migration(s) {list}: it was last opened by an older Ward, and this \
             one would fail on it"
        ),
        "start `ward serve` (or run `ward init`) once with this Ward: it applies the missing \
         migrations at start, in one transaction, under a lock shared by every server",
    ))
}

pub(crate) fn not_checked(name: &'static str, why: &str) -> Finding {
    Finding::warn(
        name,
        format!("not checked: {why}"),
        "fix the findings above, then run the doctor again",
    )
}

/// The root key provider answers, every tenant's key is sealed under a version it holds,
/// and the key is kept apart from the data.
pub(crate) async fn root_key(ctx: &Context) -> Finding {
    const NAME: &str = "root_key";
    let Some(root) = &ctx.setup.root_key else {
        return Finding::ok(NAME, "the running server loaded its root key at start");
    };
    let provider = root.provider.describe();
    let ring = match root.provider.load() {
        Ok(r) => r,
        Err(e) => {
            return Finding::fail(
                NAME,
                format!("the root key provider ({provider}) fails: {e}"),
                "make the provider answer: the key file readable by Ward's user only (mode 600), \
                 WARD_ROOT_KEY set, or the key command runnable by hand",
            );
        }
    };
    let versions = ring.versions();
    let held: Vec<String> = versions.iter().map(|v| format!("v{}", v.0)).collect();
    if let Some(store) = ctx.store() {
        match store.tenants().await {
            Ok(tenants) => {
                let mut lacking: Vec<u32> = tenants
                    .iter()
                    .filter(|t| t.wrapped_key.is_some())
                    .map(|t| t.root_key_version)
                    .filter(|v| !versions.iter().any(|h| h.0 == *v))
                    .collect();
                lacking.sort_unstable();
                lacking.dedup();
                if !lacking.is_empty() {
                    return Finding::fail(
                        NAME,
                        format!(
                            "tenants are sealed under root key version(s) {lacking:?}, which \
                             {provider} does not hold (it holds {})",
                            held.join(", ")
                        ),
                        "restore the missing versions into the key provider from your key backup",
                    );
                }
            }
            Err(e) => {
                return Finding::fail(
                    NAME,
                    format!("reading the tenants failed: {e}"),
                    "check the database",
                );
            }
        }
    }
    if let (Some(file), Some(dir)) = (&root.file, &ctx.setup.data_dir)
        && key_beside_data(file, dir)
    {
        return Finding::warn(
            NAME,
            format!(
                "{provider} answers (versions {}), but the key sits next to the data in {}: \
                 anyone with a copy of the data directory (a backup, a disk image) can decrypt it",
                held.join(", "),
                dir.display()
            ),
            "keep the key elsewhere: `--key-file` on a file outside the data directory (the \
             packaged unit loads /etc/ward/root.key as a systemd credential), or \
             `--key-provider command` with a KMS or HSM",
        );
    }
    Finding::ok(
        NAME,
        format!(
            "{provider} answers (versions {}) and is kept apart from the data",
            held.join(", ")
        ),
    )
}

/// Whether `file` lies inside `dir`.
fn key_beside_data(file: &std::path::Path, dir: &std::path::Path) -> bool {
    let canonical =
        |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    file.parent()
        .is_some_and(|parent| canonical(parent).starts_with(canonical(dir)))
}

/// The events after the newest signed checkpoint verify from it.
pub(crate) async fn audit_log(ctx: &Context) -> Finding {
    const NAME: &str = "audit_log";
    let Some(store) = ctx.store() else {
        return not_checked(NAME, "the database is not open");
    };
    let key = match ctx.audit_key() {
        Ok(k) => k,
        Err(e) => {
            return Finding::fail(
                NAME,
                format!("checkpoints cannot be verified: {e}"),
                "restore audit-signing.key into the data directory from your key backup",
            );
        }
    };
    match ward_vault::verify_tail(store.as_ref(), &key).await {
        Ok(r) if r.checkpoints_verified == 0 => Finding::ok(
            NAME,
            format!(
                "{} event(s), no signed checkpoint yet: the whole log verifies from its start",
                r.tree_size
            ),
        ),
        Ok(r) => Finding::ok(
            NAME,
            format!(
                "{} events; the {} after the last signed checkpoint (size {}) verify from it \
                 (`ward audit verify` checks the whole log)",
                r.tree_size,
                r.tree_size - r.first_index,
                r.first_index
            ),
        ),
        Err(
            e @ (LogVerifyError::Tampered(_)
            | LogVerifyError::ColumnMismatch { .. }
            | LogVerifyError::TreeNodeMismatch { .. }
            | LogVerifyError::SubjectIndexMismatch { .. }),
        ) => {
            let at = e
                .first_bad_index()
                .map(|i| format!(" (first bad index: {i})"))
                .unwrap_or_default();
            Finding::fail(
                NAME,
                format!("the audit log does not verify from its last checkpoint: {e}{at}"),
                "the log was changed outside Ward: stop writing to it, keep a copy of the \
                 database as evidence, run `ward audit verify` for the whole log, and restore \
                 the database from a backup taken before the first bad index",
            )
        }
        Err(e) => Finding::fail(
            NAME,
            format!("the audit log cannot be read: {e}"),
            "check the database",
        ),
    }
}

/// No record is kept long past its expiry: the retention sweep keeps up.
pub(crate) async fn retention(ctx: &Context) -> Finding {
    const NAME: &str = "retention";
    let Some(store) = ctx.store() else {
        return not_checked(NAME, "the database is not open");
    };
    let every = ctx.retention_interval();
    // Two intervals: one sweep may be running late, two missed means none is running.
    let allowed = time::Duration::try_from(every * 2).unwrap_or(time::Duration::DAY);
    let cutoff = ctx.now - allowed;
    match store.expired_records(cutoff, None, None, 100).await {
        Err(e) => Finding::fail(
            NAME,
            format!("expired records cannot be read: {e}"),
            "check the database",
        ),
        Ok(overdue) => {
            // A subject under a litigation hold keeps its records on purpose.
            let overdue: Vec<_> = overdue
                .into_iter()
                .filter(|r| r.subject.hold_until.is_none_or(|until| until <= ctx.now))
                .collect();
            match overdue.first() {
                None => last_sweep(ctx, store.as_ref(), every, allowed).await,
                Some(oldest) => Finding::fail(
                    NAME,
                    format!(
                        "records past their expiry are still stored (the oldest expired at {}, \
                         {} ago): retention has not run for longer than two intervals of {}",
                        rfc3339(oldest.record.expires_at.unwrap_or(cutoff)),
                        human(
                            Duration::try_from(
                                ctx.now - oldest.record.expires_at.unwrap_or(cutoff)
                            )
                            .unwrap_or_default()
                        ),
                        human(every)
                    ),
                    "`ward serve` runs retention every retention_interval: check that it runs and \
                     its logs for `retention run failed`; `ward retention run` sweeps now",
                ),
            }
        }
    }
}

/// With nothing overdue: when the last full sweep ran (its `retention_run` system event).
async fn last_sweep(
    ctx: &Context,
    store: &dyn Store,
    every: Duration,
    allowed: time::Duration,
) -> Finding {
    const NAME: &str = "retention";
    let keeps_up = format!(
        "no record is more than {} past its expiry",
        human(every * 2)
    );
    match store.last_system_event("retention_run").await {
        Err(e) => Finding::fail(
            NAME,
            format!("the last retention sweep cannot be read: {e}"),
            "check the database",
        ),
        Ok(None) => Finding::ok(
            NAME,
            format!(
                "{keeps_up}; no sweep has been recorded yet (`ward serve` sweeps every {})",
                human(every)
            ),
        ),
        Ok(Some(row)) => {
            let at = ward_store::from_micros(row.columns.at);
            let ago = ago(ctx.now - at);
            if ctx.now - at > allowed {
                Finding::warn(
                    NAME,
                    format!(
                        "{keeps_up}, but the last sweep ran {ago} ago ({}), more than two \
                         intervals of {}",
                        rfc3339(at),
                        human(every)
                    ),
                    "check that `ward serve` runs (it sweeps every retention_interval) and its \
                     logs for `retention run failed`; `ward retention run` sweeps now",
                )
            } else {
                Finding::ok(
                    NAME,
                    format!(
                        "{keeps_up}; the last sweep ran {ago} ago (every {})",
                        human(every)
                    ),
                )
            }
        }
    }
}

/// The clock is not behind the newest time Ward stored (which a clock set back would show).
pub(crate) async fn clock(ctx: &Context) -> Finding {
    const NAME: &str = "clock";
    let now = ctx.now;
    if now.year() < 2024 {
        return clock_wrong(NAME, now, "a date before this Ward was built");
    }
    let Some(store) = ctx.store() else {
        return Finding::ok(NAME, format!("the clock reads {}", rfc3339(now)));
    };
    let mut newest: Option<(OffsetDateTime, &str)> = None;
    if let Ok(head) = store.audit_head().await
        && head.size > 0
        && let Ok(rows) = store.audit_rows(head.size - 1, 1).await
        && let Some(row) = rows.first()
    {
        newest = Some((
            ward_store::from_micros(row.columns.at),
            "the newest audit event",
        ));
    }
    if let Ok(cps) = store.checkpoints().await
        && let Some(cp) = cps.last()
        && newest.is_none_or(|(t, _)| cp.created_at > t)
    {
        newest = Some((cp.created_at, "the newest signed checkpoint"));
    }
    match newest {
        Some((t, what)) if t > now + CLOCK_TOLERANCE => {
            clock_wrong(NAME, now, &format!("earlier than {what} ({})", rfc3339(t)))
        }
        Some((t, what)) => Finding::ok(
            NAME,
            format!(
                "the clock reads {}, after {what} ({})",
                rfc3339(now),
                rfc3339(t)
            ),
        ),
        None => Finding::ok(NAME, format!("the clock reads {}", rfc3339(now))),
    }
}

fn clock_wrong(name: &'static str, now: OffsetDateTime, why: &str) -> Finding {
    Finding::fail(
        name,
        format!(
            "the clock reads {}, {why}: it is wrong or was set back",
            rfc3339(now)
        ),
        "synchronize the system clock (`timedatectl set-ntp true`, chrony or ntpd) before \
         serving: expiry, retention and audit times depend on it",
    )
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// A duration the way an operator writes one (`2h`, `90s`, `3d`).
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".to_owned(),
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}min", s / 60),
        _ => format!("{s}s"),
    }
}

/// How long ago something happened, rounded the way a person says it (`40s`, `25min`, `5h`,
/// `3d`).
pub(crate) fn ago(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}min", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}
