//! Opening a store: the schema a store may live in, and the migrations. Several servers may
//! start at once, so migrations (and the creation of the schema, for
//! [`PostgresStore::open_in_schema`]) run under a session advisory lock.

use super::*;

/// Read pool size per store. Reads are one query each, so a few connections keep up with many
/// clients; more would only add PostgreSQL backends competing for the same cores.
pub(super) const MAX_CONNECTIONS: u32 = 8;

/// Key of the session advisory lock held while creating the schema and migrating, so that
/// servers starting together apply migrations one at a time (`"ward:mig"` in ASCII).
pub(super) const MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"ward:mig");

/// Refuses schema names that would need quoting (or could smuggle SQL into `CREATE SCHEMA`).
pub(super) fn check_schema_name(schema: &str) -> Result<()> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && schema.len() <= 63 {
        Ok(())
    } else {
        Err(StoreError::Database(sqlx::Error::Configuration(
            format!("invalid PostgreSQL schema name {schema:?}: use ^[a-z_][a-z0-9_]{{0,62}}$")
                .into(),
        )))
    }
}

/// Creates the schema if asked and applies migrations, under [`MIGRATION_LOCK`], on a
/// connection of its own.
pub(super) async fn migrate(options: &PgConnectOptions, schema: Option<&str>) -> Result<()> {
    let mut conn = PgConnection::connect_with(options).await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut conn)
        .await?;
    let migrated = migrate_locked(&mut conn, schema).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut conn)
        .await;
    // Closing also releases the lock, should the unlock above have failed.
    let _ = conn.close().await;
    migrated?;
    unlocked?;
    Ok(())
}

pub(super) async fn migrate_locked(conn: &mut PgConnection, schema: Option<&str>) -> Result<()> {
    if let Some(schema) = schema {
        // The name was checked by `check_schema_name`: lowercase letters, digits, underscores.
        conn.execute(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .await?;
    }
    // A database a newer Ward migrated is refused with both versions named, before sqlx
    // would report the unknown migration less helpfully.
    crate::schema::postgres_status(conn).await?.refuse_newer()?;
    MIGRATOR.run(&mut *conn).await?;
    super::tree::backfill(conn).await?;
    Ok(())
}

/// The PostgreSQL migrations, embedded at build time.
pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The migrations this Ward applies to a PostgreSQL database.
pub(crate) fn known_migrations() -> Vec<crate::schema::Migration> {
    MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| crate::schema::Migration {
            version: m.version,
            // `migrate!` compiles the descriptions in, so they are borrowed for 'static.
            description: match &m.description {
                std::borrow::Cow::Borrowed(s) => s,
                std::borrow::Cow::Owned(_) => "",
            },
        })
        .collect()
}

// ---- the writer -----------------------------------------------------------------------------
