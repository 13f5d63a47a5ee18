#!/usr/bin/env bash
# What storing audit events in bundles would save PostgreSQL, measured with pgbench on the
# database alone (no Ward): a group commit of N events written as N rows of today's
# `audit_events` (primary key, tenant and subject indexes, ~100-byte event, 32-byte chain)
# against one bundle row (the N events' bytes as one value, ~75 bytes each as a compressed
# bundle would hold them) plus one row of a per-tenant summary, each table prefilled with
# 1,000,000 events' worth. Two clients, as Ward's two writers; the cases alternate.
#
#   bench/pg-audit-rows.sh [URL] [SECONDS] [ROUNDS]   # defaults: the test database, 10, 2
#
# Prints events per second for 32 and 256 events per commit. Figures go to BENCHMARKS.md
# "Audit bundles on PostgreSQL, measured before they exist". Needs psql and pgbench.
set -euo pipefail
URL="${1:-postgres://postgres@127.0.0.1:5432/test}"
SECS="${2:-10}"
ROUNDS="${3:-2}"
WORK=$(mktemp -d)
trap 'psql -q "$URL" -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS audit_rows_bench CASCADE" > /dev/null; rm -rf "$WORK"' EXIT

psql -q -v ON_ERROR_STOP=1 "$URL" > /dev/null <<'SQL'
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS audit_rows_bench CASCADE;
CREATE SCHEMA audit_rows_bench;
SET search_path = audit_rows_bench;
CREATE SEQUENCE seq START 1000001;
CREATE TABLE events (idx BIGINT PRIMARY KEY, at BIGINT NOT NULL, tenant BYTEA, subject BYTEA,
    actor TEXT NOT NULL, action TEXT NOT NULL, outcome TEXT NOT NULL, event BYTEA NOT NULL,
    chain BYTEA NOT NULL);
INSERT INTO events SELECT g, 1700000000000000 + g, decode(md5('t' || (g % 10)), 'hex'),
    decode(md5('s' || ((g::bigint * 7919) % 100000)), 'hex'), 'key:0192b6f0-aaaa-7bbb-8ccc-' || (g % 10),
    'record_read', 'allowed', decode(repeat(md5(g::text), 6), 'hex'),
    decode(md5(g::text) || md5((g + 1)::text), 'hex') FROM generate_series(1, 1000000) g;
CREATE INDEX ON events (tenant, idx);
CREATE INDEX ON events (tenant, subject, idx) WHERE subject IS NOT NULL;
CREATE SEQUENCE bundle_seq START 1000001;
CREATE TABLE bundles (first BIGINT PRIMARY KEY, count INTEGER NOT NULL, at_min BIGINT NOT NULL,
    at_max BIGINT NOT NULL, events BYTEA NOT NULL, chain BYTEA NOT NULL);
-- Stored as is: a bundle is compressed already, PostgreSQL's own compression would only cost.
ALTER TABLE bundles ALTER COLUMN events SET STORAGE EXTERNAL;
CREATE TABLE bundle_tenants (tenant BYTEA NOT NULL, first BIGINT NOT NULL, PRIMARY KEY (tenant, first));
INSERT INTO bundles SELECT g * 32, 32, g, g + 31, decode(repeat(md5(g::text), 150), 'hex'),
    decode(md5(g::text) || md5(g::text), 'hex') FROM generate_series(1, 31250) g;
INSERT INTO bundle_tenants SELECT decode(md5('t' || (g % 10)), 'hex'), g * 32 FROM generate_series(1, 31250) g;
VACUUM ANALYZE events;
VACUUM ANALYZE bundles;
VACUUM ANALYZE bundle_tenants;
SQL

for n in 32 256; do
    cat > "$WORK/rows-$n.sql" <<SQL
INSERT INTO audit_rows_bench.events SELECT n, 1700000000000000 + n, decode(md5('t' || (n % 10)), 'hex'),
    decode(md5('s' || ((n * 7919) % 100000)), 'hex'), 'key:0192b6f0-aaaa-7bbb-8ccc-' || (n % 10),
    'record_read', 'allowed', decode(repeat(md5(n::text), 6), 'hex'),
    decode(md5(n::text) || md5((n + 1)::text), 'hex')
    FROM (SELECT nextval('audit_rows_bench.seq') n FROM generate_series(1, $n)) s;
SQL
    # An md5 (16 bytes) repeated: 75 bytes an event.
    cat > "$WORK/bundle-$n.sql" <<SQL
INSERT INTO audit_rows_bench.bundles SELECT b * $n, $n, b, b + $n - 1,
    decode(repeat(md5(b::text), $((n * 75 / 16))), 'hex'), decode(md5(b::text) || md5(b::text), 'hex')
    FROM (SELECT nextval('audit_rows_bench.bundle_seq') b) s;
INSERT INTO audit_rows_bench.bundle_tenants
    SELECT decode(md5('t' || (currval('audit_rows_bench.bundle_seq') % 10)), 'hex'),
    currval('audit_rows_bench.bundle_seq') * $n;
SQL
done

tps() { pgbench -n -c 2 -j 2 -T "$SECS" -f "$1" "$URL" 2>&1 | awk '/^tps/ { print $3 }'; }
for round in $(seq 1 "$ROUNDS"); do
    for n in 32 256; do
        rows=$(tps "$WORK/rows-$n.sql")
        bundle=$(tps "$WORK/bundle-$n.sql")
        python3 -c "import sys; n, r, b = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]); \
print(f'round {sys.argv[4]}, {n} events a commit: rows {r * n:,.0f} events/s, one bundle {b * n:,.0f} events/s ({b / r:.2f}x)')" \
            "$n" "$rows" "$bundle" "$round"
    done
done
