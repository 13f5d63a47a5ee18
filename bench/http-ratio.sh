#!/usr/bin/env bash
# Ward's audited record get over HTTP against a bare axum handler returning the same JSON
# (bench/bare-axum), measured alternately in one run: issue 17's "≥ 0.4× a bare axum
# handler" goal. wrk with 2 threads and 32 connections for DURATION per phase; each of Ward's
# gets reads a random one of 500 records and durably commits its audit event.
#
#   bench/http-ratio.sh [DURATION] [ROUNDS]     # defaults: 10s, 2
#   WARD_BIN=/path/to/ward bench/http-ratio.sh  # another build of Ward (e.g. the previous commit's)
#
# Prints each phase's requests per second and, per round, Ward's rate over the baseline's.
# Fails (exit 1) if any answer was not 2xx. Needs wrk, curl, jq and python3. Figures go to
# BENCHMARKS.md "Ward against a bare axum handler".
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-10s}"
ROUNDS="${2:-2}"
BARE=target/bare-axum/release/bare-axum
cargo build --release -q --manifest-path bench/bare-axum/Cargo.toml --target-dir target/bare-axum

. bench/fixture.sh

# The baseline answers with the bytes Ward answers a get with.
read -r _ SUBJECT RECORD _ < <(grep '^R ' "$WORK/ids" | head -n 1)
curl -fsS -H "Authorization: Bearer $OWNER" \
    "$API/v1/tenants/$TENANT/subjects/$SUBJECT/records/$RECORD?purpose=essential.service" \
    > "$WORK/record.json"
BARE_PORT=$(free_port)
"$BARE" "127.0.0.1:$BARE_PORT" "$WORK/record.json" &
EXTRA_PID=$!
wait_for "http://127.0.0.1:$BARE_PORT/"
echo "record JSON: $(wc -c < "$WORK/record.json") bytes; wrk -t2 -c32 -d$DURATION per phase"

status=0
rate() {
    local out
    out=$(SOAK_IDS="$WORK/ids" wrk -t2 -c32 -d"$DURATION" -s bench/get.lua "$1")
    grep -q "Non-2xx" <<< "$out" && { echo "non-2xx answers from $1" >&2; status=1; }
    awk '/^Requests\/sec:/ { print $2 }' <<< "$out"
}
for round in $(seq 1 "$ROUNDS"); do
    ward=$(rate "$API")
    bare=$(rate "http://127.0.0.1:$BARE_PORT")
    python3 -c "import sys; w, b = float(sys.argv[1]), float(sys.argv[2]); \
print(f'round {sys.argv[3]}: Ward get {w:,.0f} req/s, bare axum {b:,.0f} req/s, ratio {w / b:.2f}')" \
        "$ward" "$bare" "$round"
done
exit $status
