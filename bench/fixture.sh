# A release `ward serve` on SQLite in a scratch directory, with one tenant and SUBJECTS
# (default 500) subjects holding one contact record each, for the wrk scripts of bench/.
# Sourced from the repository's root, not run:
#
#   . bench/fixture.sh
#
# Runs WARD_BIN if set, else target/release/ward (built if missing). Leaves: WARD (the
# binary), WORK (scratch directory, removed on exit), SERVER_PID, API (base URL), TENANT and
# OWNER (the tenant's id and its owner's token), $WORK/ids (lines "tenant T", "token K",
# "R subject record email"), which the wrk scripts read through SOAK_IDS (bench/ids.lua),
# and the functions free_port and wait_for URL. On exit it also stops SAMPLER_PID and
# EXTRA_PID, processes a script may start beside Ward. Needs curl, jq and python3.

SUBJECTS="${SUBJECTS:-500}"
WARD="${WARD_BIN:-target/release/ward}"
[ -x "$WARD" ] || cargo build --release -q -p ward-cli
WORK=$(mktemp -d)
SERVER_PID=""
SAMPLER_PID=""
cleanup() {
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
    [ -n "${EXTRA_PID:-}" ] && kill "$EXTRA_PID" 2>/dev/null
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# A free loopback port, and a wait of up to 10 s for a URL to answer: for Ward here and for
# whatever server a script starts beside it.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for() {
    for _ in $(seq 1 100); do
        curl -fs "$1" > /dev/null 2>&1 && return 0
        sleep 0.1
    done
}

PORT=$(free_port)
API="http://127.0.0.1:$PORT"
"$WARD" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" > "$WORK/serve.out" 2> "$WORK/serve.log" &
SERVER_PID=$!
wait_for "$API/healthz"
OPERATOR=$(sed -n 's/^Operator token (shown once, store it now): //p' "$WORK/serve.out")
json() { curl -fsS -H 'Content-Type: application/json' "$@"; }
CREATED=$(json -X POST "$API/v1/tenants" -H "Authorization: Bearer $OPERATOR" -d '{"name": "Soak"}')
TENANT=$(jq -r .id <<< "$CREATED")
OWNER=$(json -X POST "$API/v1/invitations/claim" \
    -d "{\"invitation\": \"$(jq -r .invitation.token <<< "$CREATED")\", \"name\": \"soak\"}" | jq -r .token)
{
    echo "tenant $TENANT"
    echo "token $OWNER"
} > "$WORK/ids"
# The subjects and records the scripts read, in one batch per 100 subjects. Names are letters
# only: a run of digits could read as a payment card number, which Ward refuses.
for batch in $(seq 0 $((SUBJECTS / 100 - 1))); do
    python3 - "$batch" "$WORK/items.json" "$WORK/emails" <<'PY'
import json, sys
b, items_path, emails_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def letters(n):
    s = ''
    while True:
        s += chr(97 + n % 26); n //= 26
        if n == 0: return s
items, emails = [], []
for i in range(100):
    name = letters(b * 100 + i)
    emails.append(name + '@example.com')
    items.append({'op': 'create_subject', 'external_ref': 'soak-' + name})
    items.append({'op': 'create_record', 'subject': '#%d' % (2 * i), 'collection': 'contact',
                  'fields': {'name': 'Soak ' + name, 'email': name + '@example.com'}})
json.dump({'items': items}, open(items_path, 'w'))
open(emails_path, 'w').write('\n'.join(emails) + '\n')
PY
    json -X POST "$API/v1/tenants/$TENANT/batch" -H "Authorization: Bearer $OWNER" -d @"$WORK/items.json" \
        | jq -r '.results as $r | range(1; $r | length; 2) | "\($r[.].subject) \($r[.].id)"' \
        | paste -d ' ' - "$WORK/emails" | sed 's/^/R /' >> "$WORK/ids"
done

