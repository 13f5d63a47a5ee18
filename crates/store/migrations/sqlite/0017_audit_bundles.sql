-- The audit log's sealed history in bundles: each row holds up to 16 consecutive events,
-- their canonical bytes compressed together as one frame (crates/store/src/audit_codec.rs),
-- instead of one row per event with its copied filter columns, chain value and two index
-- entries. Filled by the writer thread once a segment of 65,536 events is sealed (its subject
-- postings written), moving the segment's rows here a step at a time
-- (crates/store/src/sqlite/audit_bundles.rs); the newest, unsealed events stay rows.
CREATE TABLE audit_bundles (
    -- Index of the bundle's first event; its events are first, first + 1, … first + count - 1.
    first INTEGER PRIMARY KEY,
    count INTEGER NOT NULL,
    -- The latest event time in the bundle (Unix µs): the prune's search for a cutoff skips
    -- bundles without decompressing them.
    at_max INTEGER NOT NULL,
    -- The hash chain value after the first event; the others' follow from the events.
    chain BLOB NOT NULL,
    body BLOB NOT NULL
);

-- Which blocks of 256 events (`first >> 8`) hold events of a tenant (X'' for Ward's own
-- events, which have none): the tenant's audit view reads only their bundles. By block, not
-- by bundle: with many tenants interleaved, a row per tenant per 16-event bundle would weigh
-- more than the events' own compressed bytes.
CREATE TABLE audit_bundle_tenants (
    tenant BLOB NOT NULL,
    block INTEGER NOT NULL,
    PRIMARY KEY (tenant, block)
) WITHOUT ROWID;
