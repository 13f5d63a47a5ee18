//! The logical tables of each stream: their columns, types and order in a dump.
//!
//! Both backends export and import exactly these; a table added to a schema must be added
//! here (to one stream) or the schema test in `tests/snapshot.rs` fails.

use super::SnapshotStream;

/// A column's logical type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    /// A signed 64-bit integer (sizes, counts, versions).
    Int,
    /// Unix microseconds.
    Time,
    /// A 16-byte UUID.
    Uuid,
    /// A byte string (ciphertext, hashes, frontiers).
    Bytes,
    /// UTF-8 text.
    Text,
}

impl Type {
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Int => 1,
            Self::Time => 2,
            Self::Uuid => 3,
            Self::Bytes => 4,
            Self::Text => 5,
        }
    }

    /// The PostgreSQL array type a column of this type is bound as for `UNNEST`.
    pub(crate) fn pg_array(self) -> &'static str {
        match self {
            Self::Int | Self::Time => "BIGINT[]",
            Self::Uuid | Self::Bytes => "BYTEA[]",
            Self::Text => "TEXT[]",
        }
    }
}

/// One column of a logical table.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) ty: Type,
    pub(crate) nullable: bool,
}

/// One logical table.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Table {
    pub(crate) name: &'static str,
    pub(crate) columns: &'static [Column],
    /// The primary key: rows are dumped in this order.
    pub(crate) key: &'static [&'static str],
}

impl Table {
    /// The column list, comma-separated, with `prefix` before each name.
    pub(crate) fn column_list(&self, prefix: &str) -> String {
        self.columns
            .iter()
            .map(|c| format!("{prefix}{}", c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

const fn col(name: &'static str, ty: Type) -> Column {
    Column {
        name,
        ty,
        nullable: false,
    }
}

const fn opt(name: &'static str, ty: Type) -> Column {
    Column {
        name,
        ty,
        nullable: true,
    }
}

use Type::{Bytes, Int, Text, Time, Uuid};

/// The data stream, parents before children (foreign keys hold at every step of an import),
/// audit checkpoints before the events they anchor, the head last.
pub(crate) const DATA: &[Table] = &[
    Table {
        name: "tenants",
        columns: &[
            col("id", Uuid),
            col("name", Text),
            col("status", Text),
            opt("region", Text),
            col("root_key_version", Int),
            col("key_version", Int),
            col("settings", Text),
            col("created_at", Time),
            col("status_changed_at", Time),
            opt("destroy_after", Time),
        ],
        key: &["id"],
    },
    Table {
        name: "api_keys",
        columns: &[
            col("id", Uuid),
            opt("tenant", Uuid),
            col("token_hash", Bytes),
            col("name", Text),
            col("role", Text),
            col("purposes", Text),
            col("created_at", Time),
            opt("revoked_at", Time),
            opt("expires_at", Time),
        ],
        key: &["id"],
    },
    Table {
        name: "invitations",
        columns: &[
            col("id", Uuid),
            col("tenant", Uuid),
            col("token_hash", Bytes),
            col("created_at", Time),
            col("expires_at", Time),
            opt("used_at", Time),
            opt("role", Text),
            opt("purposes", Text),
            opt("membership_expires_at", Time),
        ],
        key: &["id"],
    },
    Table {
        name: "users",
        columns: &[
            col("id", Uuid),
            col("email_hash", Bytes),
            col("email_sealed", Bytes),
            col("role", Text),
            opt("tenant", Uuid),
            col("password_hash", Text),
            opt("totp_sealed", Bytes),
            opt("totp_last_step", Int),
            col("key_version", Int),
            opt("reset_hash", Bytes),
            opt("reset_expires_at", Time),
            col("created_at", Time),
            col("password_changed_at", Time),
            opt("disabled_at", Time),
        ],
        key: &["id"],
    },
    Table {
        name: "memberships",
        columns: &[
            col("user_id", Uuid),
            col("tenant", Uuid),
            col("role", Text),
            col("purposes", Text),
            opt("expires_at", Time),
            col("created_at", Time),
        ],
        key: &["user_id", "tenant"],
    },
    Table {
        name: "recovery_codes",
        columns: &[
            col("user_id", Uuid),
            col("code_hash", Bytes),
            opt("used_at", Time),
        ],
        key: &["user_id", "code_hash"],
    },
    Table {
        name: "sessions",
        columns: &[
            col("id", Uuid),
            col("token_hash", Bytes),
            col("user_id", Uuid),
            col("csrf_hash", Bytes),
            col("created_at", Time),
            col("last_seen_at", Time),
            col("expires_at", Time),
            opt("revoked_at", Time),
        ],
        key: &["id"],
    },
    Table {
        name: "support_grants",
        columns: &[
            col("id", Uuid),
            col("tenant", Uuid),
            col("requester", Uuid),
            col("ticket", Text),
            col("justification", Text),
            col("collections", Text),
            col("actions", Text),
            // 0 or 1: a BOOLEAN on PostgreSQL, converted both ways by its export and import.
            col("break_glass", Int),
            col("status", Text),
            col("duration_secs", Int),
            col("requested_at", Time),
            opt("decided_at", Time),
            opt("decided_by", Text),
            opt("expires_at", Time),
        ],
        key: &["id"],
    },
    Table {
        name: "alerts",
        columns: &[
            col("id", Uuid),
            col("rule", Text),
            col("scope", Text),
            col("severity", Text),
            opt("tenant", Uuid),
            col("status", Text),
            col("first_seen", Time),
            col("last_seen", Time),
            col("count", Int),
            col("events", Text),
            opt("acknowledged_by", Text),
            opt("acknowledged_at", Time),
            opt("resolved_by", Text),
            opt("resolved_at", Time),
        ],
        key: &["id"],
    },
    Table {
        name: "webhooks",
        columns: &[
            col("id", Uuid),
            opt("tenant", Uuid),
            col("url", Text),
            col("secret", Bytes),
            col("created_at", Time),
            col("created_by", Text),
            opt("deleted_at", Time),
        ],
        key: &["id"],
    },
    Table {
        name: "webhook_deliveries",
        columns: &[
            col("id", Uuid),
            col("webhook", Uuid),
            opt("tenant", Uuid),
            col("event", Text),
            opt("alert", Uuid),
            col("payload", Text),
            col("status", Text),
            col("attempts", Int),
            col("created_at", Time),
            col("next_attempt_at", Time),
            opt("last_attempt_at", Time),
            opt("last_result", Text),
            opt("delivered_at", Time),
            opt("lease_owner", Text),
            opt("lease_until", Time),
        ],
        key: &["id"],
    },
    Table {
        name: "incidents",
        columns: &[
            col("id", Uuid),
            opt("tenant", Uuid),
            col("opened_by", Text),
            col("title", Bytes),
            col("status", Text),
            col("opened_at", Time),
            opt("closed_at", Time),
            col("due_alerted", Int),
            col("overdue_alerted", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "incident_tenants",
        columns: &[
            col("incident", Uuid),
            col("tenant", Uuid),
            opt("notified_at", Time),
            opt("notified_by", Text),
        ],
        key: &["incident", "tenant"],
    },
    Table {
        name: "incident_subjects",
        columns: &[
            col("incident", Uuid),
            col("tenant", Uuid),
            col("subject", Uuid),
        ],
        key: &["incident", "tenant", "subject"],
    },
    Table {
        name: "incident_alerts",
        columns: &[col("incident", Uuid), col("alert", Uuid)],
        key: &["incident", "alert"],
    },
    Table {
        name: "incident_notes",
        columns: &[
            col("incident", Uuid),
            col("seq", Int),
            col("at", Time),
            col("author", Text),
            col("kind", Text),
            col("text", Bytes),
        ],
        key: &["incident", "seq"],
    },
    Table {
        name: "subjects",
        columns: &[
            col("tenant", Uuid),
            col("id", Uuid),
            opt("external_ref", Bytes),
            col("key_version", Int),
            col("restrictions", Text),
            opt("hold_until", Time),
            col("created_at", Time),
        ],
        key: &["tenant", "id"],
    },
    Table {
        name: "records",
        columns: &[
            col("tenant", Uuid),
            col("subject", Uuid),
            col("id", Uuid),
            col("collection", Text),
            col("ciphertext", Bytes),
            col("key_version", Int),
            col("revision", Int),
            col("created_at", Time),
            col("updated_at", Time),
            opt("expires_at", Time),
        ],
        key: &["tenant", "subject", "id"],
    },
    Table {
        name: "blind_index",
        columns: &[
            col("tenant", Uuid),
            col("collection", Text),
            col("field", Text),
            col("hash", Bytes),
            col("subject", Uuid),
            col("record", Uuid),
        ],
        key: &["tenant", "collection", "field", "hash", "record"],
    },
    Table {
        name: "anonymized_records",
        columns: &[
            col("tenant", Uuid),
            col("id", Uuid),
            col("collection", Text),
            col("ciphertext", Bytes),
            col("key_version", Int),
            col("created_at", Time),
            col("anonymized_at", Time),
        ],
        key: &["tenant", "id"],
    },
    Table {
        name: "holds",
        columns: &[
            col("tenant", Uuid),
            col("id", Uuid),
            col("subject", Uuid),
            col("key_version", Int),
            col("created_at", Time),
        ],
        key: &["tenant", "id"],
    },
    Table {
        name: "held_records",
        columns: &[
            col("tenant", Uuid),
            col("hold", Uuid),
            col("id", Uuid),
            col("collection", Text),
            col("ciphertext", Bytes),
            col("key_version", Int),
            col("created_at", Time),
            col("hold_until", Time),
            col("reason", Text),
        ],
        key: &["tenant", "id"],
    },
    Table {
        name: "requests",
        columns: &[
            col("tenant", Uuid),
            col("id", Uuid),
            col("kind", Text),
            col("subject", Uuid),
            col("status", Text),
            col("verified_by", Text),
            col("detail", Text),
            col("created_at", Time),
            col("due_at", Time),
            opt("closed_at", Time),
        ],
        key: &["tenant", "id"],
    },
    Table {
        name: "key_jobs",
        columns: &[
            col("id", Uuid),
            col("tenant", Uuid),
            col("status", Text),
            opt("cursor", Bytes),
            col("subjects_done", Int),
            col("records_done", Int),
            col("records_total", Int),
            col("started_at", Time),
            col("updated_at", Time),
            opt("finished_at", Time),
            opt("lease_owner", Text),
            opt("lease_until", Time),
            opt("error", Text),
        ],
        key: &["id"],
    },
    Table {
        name: "audit_checkpoints",
        columns: &[
            col("tree_size", Int),
            col("checkpoint", Text),
            col("frontier", Bytes),
            col("created_at", Time),
        ],
        key: &["tree_size"],
    },
    Table {
        name: "audit_events",
        columns: &[
            col("idx", Int),
            col("at", Time),
            opt("tenant", Uuid),
            opt("subject", Uuid),
            col("actor", Text),
            col("action", Text),
            col("outcome", Text),
            col("event", Bytes),
            col("chain", Bytes),
        ],
        key: &["idx"],
    },
    AUDIT_HEAD,
];

/// The audit log's tail: a table on PostgreSQL, the writer's memory on SQLite.
pub(crate) const AUDIT_HEAD: Table = Table {
    name: "audit_head",
    columns: &[
        col("size", Int),
        col("chain", Bytes),
        col("frontier", Bytes),
    ],
    key: &[],
};

/// The key stream: wrapped keys with the versions they were sealed under, and the ledger.
pub(crate) const KEYS: &[Table] = &[
    Table {
        name: "tenant_keys",
        columns: &[
            col("tenant", Uuid),
            col("wrapped_key", Bytes),
            col("root_key_version", Int),
            col("key_version", Int),
        ],
        key: &["tenant"],
    },
    Table {
        name: "subject_keys",
        columns: &[
            col("tenant", Uuid),
            col("subject", Uuid),
            col("wrapped_key", Bytes),
            col("version", Int),
            col("key_version", Int),
        ],
        key: &["tenant", "subject"],
    },
    Table {
        name: "retired_subject_keys",
        columns: &[
            col("tenant", Uuid),
            col("subject", Uuid),
            col("version", Int),
            col("wrapped_key", Bytes),
            col("key_version", Int),
        ],
        key: &["tenant", "subject", "version"],
    },
    Table {
        name: "hold_keys",
        columns: &[
            col("tenant", Uuid),
            col("hold", Uuid),
            col("wrapped_key", Bytes),
            col("key_version", Int),
        ],
        key: &["tenant", "hold"],
    },
    Table {
        name: "erasure_ledger",
        columns: &[
            col("id", Uuid),
            col("tenant", Uuid),
            col("subject", Uuid),
            col("requested_by", Text),
            col("erased_at", Time),
            col("detail", Text),
        ],
        key: &["id"],
    },
];

/// The tables of `stream`, in dump order.
/// Tables added to a stream after its format version was fixed, so that a dump written before
/// holds no frame for them: they restore empty. A table joins this list the release it is added
/// (wherever it sits in the stream's order). Columns evolve the same way, with no list: a
/// column added later goes at the end of its table and is nullable, and a dump without it
/// restores it as NULL.
pub(crate) const ADDED_LATER: &[&str] = &[
    "memberships",
    "alerts",
    "webhooks",
    "webhook_deliveries",
    "incidents",
    "incident_tenants",
    "incident_subjects",
    "incident_alerts",
    "incident_notes",
];

/// What restores a table a dump lacks (see [`ADDED_LATER`]) from what the dump held: the
/// statement its migration ran over existing rows, valid on both backends. A table without one
/// restores empty.
pub(crate) const BACKFILL: &[(&str, &str)] = &[(
    "memberships",
    "INSERT INTO memberships (user_id, tenant, role, purposes, expires_at, created_at) \
     SELECT id, tenant, role, '[]', NULL, created_at FROM users WHERE tenant IS NOT NULL",
)];

/// The backfill statements for the tables of `stream` the dump summarized by `summary` lacked.
pub(crate) fn backfills(
    stream: SnapshotStream,
    summary: &crate::SnapshotSummary,
) -> impl Iterator<Item = &'static str> {
    of(stream)
        .iter()
        .filter(|t| !summary.tables.contains_key(t.name))
        .filter_map(|t| BACKFILL.iter().find(|(name, _)| *name == t.name))
        .map(|(_, sql)| *sql)
}

pub(crate) fn of(stream: SnapshotStream) -> &'static [Table] {
    match stream {
        SnapshotStream::Data => DATA,
        SnapshotStream::Keys => KEYS,
    }
}

/// Tables that SQLite keeps in the attached key store (`keys.` prefix).
pub(crate) fn in_sqlite_key_store(table: &str) -> bool {
    matches!(
        table,
        "tenant_keys" | "subject_keys" | "retired_subject_keys" | "hold_keys"
    )
}

#[cfg(test)]
mod backfill_tests {
    use super::*;

    fn summary(tables: &[&str]) -> crate::SnapshotSummary {
        crate::SnapshotSummary {
            tables: tables.iter().map(|t| ((*t).to_owned(), 1)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_a_table_the_dump_lacked_is_backfilled() {
        let all: Vec<&str> = DATA.iter().map(|t| t.name).collect();
        assert_eq!(backfills(SnapshotStream::Data, &summary(&all)).count(), 0);
        let old: Vec<&str> = all
            .iter()
            .copied()
            .filter(|t| !ADDED_LATER.contains(t))
            .collect();
        let sql: Vec<&str> = backfills(SnapshotStream::Data, &summary(&old)).collect();
        assert_eq!(sql.len(), 1);
        assert!(sql[0].starts_with("INSERT INTO memberships"));
        assert_eq!(backfills(SnapshotStream::Keys, &summary(&[])).count(), 0);
        // Every backfilled table is one a dump may lack.
        for (table, _) in BACKFILL {
            assert!(ADDED_LATER.contains(table), "{table}");
        }
    }
}
