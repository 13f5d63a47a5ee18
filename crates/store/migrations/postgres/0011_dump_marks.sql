-- Marks that every write to a large table replaces, so that a backup can tell without
-- reading the table that its section of the dump is the one it already holds (the store's
-- snapshot module, "sections"). Statement-level triggers keep them, so no write path can
-- forget one, at one upsert per statement. Each connection writes its own slot (backend pid
-- modulo 64), so two writers do not queue on one row lock; a table's mark is all its slots.
-- Random tokens rather than counters: two databases never share a mark by accident.
CREATE TABLE dump_marks (
    name TEXT NOT NULL,
    slot INTEGER NOT NULL,
    token UUID NOT NULL,
    PRIMARY KEY (name, slot)
);
INSERT INTO dump_marks (name, slot, token) VALUES
    ('subjects', 0, gen_random_uuid()),
    ('records', 0, gen_random_uuid()),
    ('blind_index', 0, gen_random_uuid()),
    ('anonymized_records', 0, gen_random_uuid()),
    ('held_records', 0, gen_random_uuid());
CREATE FUNCTION ward_dump_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dump_marks (name, slot, token)
    VALUES (TG_TABLE_NAME, pg_backend_pid() % 64, gen_random_uuid())
    ON CONFLICT (name, slot) DO UPDATE SET token = EXCLUDED.token;
    RETURN NULL;
END
$$;
CREATE TRIGGER subjects_dump_mark AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON subjects
    FOR EACH STATEMENT EXECUTE FUNCTION ward_dump_mark();
CREATE TRIGGER records_dump_mark AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON records
    FOR EACH STATEMENT EXECUTE FUNCTION ward_dump_mark();
CREATE TRIGGER blind_index_dump_mark AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON blind_index
    FOR EACH STATEMENT EXECUTE FUNCTION ward_dump_mark();
CREATE TRIGGER anonymized_records_dump_mark AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON anonymized_records
    FOR EACH STATEMENT EXECUTE FUNCTION ward_dump_mark();
CREATE TRIGGER held_records_dump_mark AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON held_records
    FOR EACH STATEMENT EXECUTE FUNCTION ward_dump_mark();
