-- A subject's access log found by subject *number* per sealed segment of 65,536 events,
-- instead of by one index seek per 1,024 events of the log (migration 0005): at 10 M events
-- the chunk walk made about 10,000 seeks (~50 ms) for a page of one subject's events.
-- Derived from the events and filled by the writer thread a slice at a time once a segment is
-- complete (crates/store/src/sqlite/subject_postings.rs); a log older than these tables is
-- sealed the same way after open. Readers use postings only below `audit_sealed.segments`
-- and walk the chunk index for the rest, so an unsealed or half-written segment is never
-- read from here.

-- Every (tenant, subject) pair the sealed log names, numbered once: a posting row then holds
-- a small integer instead of two 16-byte ids.
CREATE TABLE audit_subject_ids (
    sno INTEGER PRIMARY KEY,
    tenant BLOB NOT NULL,
    subject BLOB NOT NULL
);
CREATE UNIQUE INDEX audit_subject_ids_pair ON audit_subject_ids(tenant, subject);

-- One row per subject present in a sealed segment: the offsets (within the segment) of its
-- events, ascending, as LEB128 deltas. Keyed by segment first, so a segment's rows are
-- written at the end of the table in key order and one seek per segment finds a subject.
CREATE TABLE audit_subject_postings (
    seg INTEGER NOT NULL,
    sno INTEGER NOT NULL,
    offsets BLOB NOT NULL,
    PRIMARY KEY (seg, sno)
) WITHOUT ROWID;

-- Segments below this number are sealed: their postings are complete.
CREATE TABLE audit_sealed (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    segments INTEGER NOT NULL
);
INSERT INTO audit_sealed (id, segments) VALUES (1, 0);
