-- The audit log's tail (size, chain value, Merkle frontier) as the writer's last group commit
-- left it, so that opening a store, catching up with another process's appends, or dumping
-- the head for a backup does not re-hash every event since the last checkpoint. Only a hint:
-- it is used only while it matches the newest event (its index and chain value), else the
-- tail is rebuilt from the events as before. PostgreSQL keeps the same in `audit_head`.
CREATE TABLE audit_tail (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    chain BLOB NOT NULL,
    frontier BLOB NOT NULL
);
