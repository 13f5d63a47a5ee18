-- Marks that every write to a large table replaces, so that a backup can tell without
-- reading the table that its section of the dump is the one it already holds (the store's
-- snapshot module, "sections"). Triggers, not the application, keep them: no write path can
-- forget one. A random token rather than a counter: two stores (a copy, a restore) never
-- share a mark by accident.
CREATE TABLE dump_marks (
    name TEXT PRIMARY KEY,
    token BLOB NOT NULL
);
INSERT INTO dump_marks (name, token) VALUES
    ('subjects', randomblob(16)),
    ('records', randomblob(16)),
    ('blind_index', randomblob(16)),
    ('anonymized_records', randomblob(16)),
    ('held_records', randomblob(16));
CREATE TRIGGER subjects_mark_insert AFTER INSERT ON subjects BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'subjects';
END;
CREATE TRIGGER subjects_mark_update AFTER UPDATE ON subjects BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'subjects';
END;
CREATE TRIGGER subjects_mark_delete AFTER DELETE ON subjects BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'subjects';
END;
CREATE TRIGGER records_mark_insert AFTER INSERT ON records BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'records';
END;
CREATE TRIGGER records_mark_update AFTER UPDATE ON records BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'records';
END;
CREATE TRIGGER records_mark_delete AFTER DELETE ON records BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'records';
END;
CREATE TRIGGER blind_index_mark_insert AFTER INSERT ON blind_index BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'blind_index';
END;
CREATE TRIGGER blind_index_mark_update AFTER UPDATE ON blind_index BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'blind_index';
END;
CREATE TRIGGER blind_index_mark_delete AFTER DELETE ON blind_index BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'blind_index';
END;
CREATE TRIGGER anonymized_records_mark_insert AFTER INSERT ON anonymized_records BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'anonymized_records';
END;
CREATE TRIGGER anonymized_records_mark_update AFTER UPDATE ON anonymized_records BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'anonymized_records';
END;
CREATE TRIGGER anonymized_records_mark_delete AFTER DELETE ON anonymized_records BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'anonymized_records';
END;
CREATE TRIGGER held_records_mark_insert AFTER INSERT ON held_records BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'held_records';
END;
CREATE TRIGGER held_records_mark_update AFTER UPDATE ON held_records BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'held_records';
END;
CREATE TRIGGER held_records_mark_delete AFTER DELETE ON held_records BEGIN
    UPDATE dump_marks SET token = randomblob(16) WHERE name = 'held_records';
END;
