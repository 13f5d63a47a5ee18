#!/usr/bin/env bash
# API fuzzing: Schemathesis against the OpenAPI document of a live `ward serve`, as a tenant
# owner, as a member and unauthenticated, with the stateful phase chaining real responses
# (create subject → create record → read → erase).
#
#   ci/api-fuzz.sh [MAX_EXAMPLES]      # default 25 per operation and phase (the CI run)
#
# Fails (exit 1) on any 5xx, any response whose status, content type, headers or body the
# document does not describe, or any server crash. Needs python3, curl and jq; the ward
# binary is built by cargo if absent. The venv lives in ~/.cache/ward-ci, beside CI's other
# tool caches, so reruns are quick.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXAMPLES="${1:-25}"
VENV="${WARD_ST_VENV:-$HOME/.cache/ward-ci/schemathesis-venv}"
SCHEMATHESIS_VERSION="4.32.5"
WARD="${WARD_BIN:-target/debug/ward}"

if [ ! -x "$VENV/bin/st" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
[ -x "$WARD" ] || cargo build -q -p ward-cli

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# The example policy, with the failed-authentication throttle raised: the fuzzer sends
# thousands of requests with missing or malformed credentials from one address, and a
# throttled source would answer 429 to everything after the tenth, leaving the handlers
# behind it untested. (The throttle itself has its own tests.)
sed 's/^lockout_threshold = .*/lockout_threshold = 1000000/' examples/saas-policy.toml > "$WORK/policy.toml"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
API="http://127.0.0.1:$PORT"
"$WARD" serve --data-dir "$WORK/data" --policy "$WORK/policy.toml" --listen "127.0.0.1:$PORT" --log-format json \
    > "$WORK/serve.out" 2> "$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fs "$API/healthz" > /dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log"; echo "api-fuzz: ward serve exited" >&2; exit 1; }
    sleep 0.1
done
OPERATOR=$(sed -n 's/^Operator token (shown once, store it now): //p' "$WORK/serve.out")
[ -n "$OPERATOR" ] || { echo "api-fuzz: no operator token printed" >&2; exit 1; }

json() { curl -fsS -H 'Content-Type: application/json' "$@"; }
CREATED=$(json -X POST "$API/v1/tenants" -H "Authorization: Bearer $OPERATOR" -d '{"name": "Fuzz Tenant"}')
TENANT=$(jq -r .id <<< "$CREATED")
INVITATION=$(jq -r .invitation.token <<< "$CREATED")
OWNER=$(json -X POST "$API/v1/invitations/claim" -d "{\"invitation\": \"$INVITATION\", \"name\": \"fuzz owner\"}" | jq -r .token)
MEMBER=$(json -X POST "$API/v1/tenants/$TENANT/keys" -H "Authorization: Bearer $OWNER" \
    -d '{"name": "fuzz member", "role": "member", "purposes": ["essential.service"]}' | jq -r .token)
# One subject with a record, so reads by a known id reach the handlers, not only 404s.
SUBJECT=$(json -X POST "$API/v1/tenants/$TENANT/subjects" -H "Authorization: Bearer $OWNER" \
    -d '{"external_ref": "fuzz-subject"}' | jq -r .id)
json -X POST "$API/v1/tenants/$TENANT/subjects/$SUBJECT/records" -H "Authorization: Bearer $OWNER" \
    -d '{"collection": "contact", "fields": {"name": "Fuzz Person", "email": "fuzz@example.com"}}' > /dev/null

run_as() {
    local who="$1"; shift
    echo "api-fuzz: as $who (max $MAX_EXAMPLES examples per operation)"
    WARD_FUZZ_TENANT="$TENANT" "$VENV/bin/st" --config-file ci/schemathesis.toml \
        run "$API/openapi.json" "$@" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
        --phases examples,coverage,fuzzing,stateful \
        --max-examples "$MAX_EXAMPLES" \
        --seed 20261204 \
        --request-timeout 30 \
        --suppress-health-check all \
        --no-color \
        --exclude-path /v1/invitations/claim \
        --report junit --report-dir "$WORK/reports-$who"
}

status=0
run_as owner -H "Authorization: Bearer $OWNER" || status=1
run_as member -H "Authorization: Bearer $MEMBER" || status=1
run_as anonymous || status=1
kill -0 "$SERVER_PID" 2>/dev/null || { echo "api-fuzz: ward serve died" >&2; status=1; }
if grep -q '"level":"ERROR"' "$WORK/serve.log"; then
    echo "api-fuzz: the server logged errors:" >&2
    grep '"level":"ERROR"' "$WORK/serve.log" | head -20 >&2
    status=1
fi
exit $status
