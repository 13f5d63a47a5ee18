-- The Merkle tree's stored nodes: the root of every complete 16-, 256-, 4,096-… event
-- subtree (height 4, 8, 12, …; ward_audit::tree), one row per 15 events. A proof
-- reads O(log n) of them instead of hashing every event. Derived from the events: the writer
-- stores each node in the commit that completes it, and a log older than this table gets its
-- nodes once, at open. Hashes only, so audit retention leaves them in place.
CREATE TABLE audit_tree (
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (height, idx)
) WITHOUT ROWID;
