#!/usr/bin/env bash
# The fresh-machine PostgreSQL path: with WARD_TEST_DATABASE_URL unset and the default
# address moved to a port where nothing listens, the store's PostgreSQL suite must start a
# private throwaway cluster from the system's binaries, pass on it, and have it removed once
# the run ends. Then, with no binaries to find, the suite must fail with one line naming
# what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "fresh-postgres: FAILED: $*" >&2; exit 1; }

nowhere="127.0.0.1:1"
if (exec 3<>/dev/tcp/127.0.0.1/1) 2>/dev/null; then
    fail "something listens on $nowhere"
fi
scratch="$(mktemp -d /tmp/ward-fresh-postgres.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
# The cluster runs as the postgres user when the tests run as root: it must reach its files.
chmod 755 "$scratch"
events="$scratch/ward-test-postgres/events.log"

echo "fresh-postgres: the store suite with no server on the default address"
env -u WARD_TEST_DATABASE_URL TMPDIR="$scratch" WARD_TEST_POSTGRES_DEFAULT_ADDR="$nowhere" \
    cargo test -p ward-store --test postgres_store 2>&1 | tee "$scratch/run.log" | grep -E '^test result' \
    || fail "the suite failed on the private cluster: $(tail -n 30 "$scratch/run.log")"
grep -Eq '^test result: ok\. [1-9][0-9]* passed' "$scratch/run.log" || fail "no test ran"
grep -q '^started ' "$events" || fail "no private cluster was started"
server_pid="$(sed -n 's/^started .* server pid \([0-9]*\) .*/\1/p' "$events" | head -n 1)"
for _ in $(seq 1 150); do
    grep -q '^removed ' "$events" && break
    sleep 0.2
done
grep -q '^removed ' "$events" || fail "the private cluster was not removed after the run"
kill -0 "$server_pid" 2>/dev/null && fail "the private cluster's server (pid $server_pid) still runs"
if compgen -G "$scratch/ward-test-postgres/run-*" >/dev/null; then
    fail "the private cluster's directory is still there"
fi
echo "fresh-postgres: private cluster started, used by $(grep -c '^test .* ok$' "$scratch/run.log") tests, removed"

echo "fresh-postgres: the store suite with no PostgreSQL binaries"
if env -u WARD_TEST_DATABASE_URL TMPDIR="$scratch" WARD_TEST_POSTGRES_DEFAULT_ADDR="$nowhere" \
    WARD_TEST_POSTGRES_BIN_DIR="$scratch/no-such-dir" \
    cargo test -p ward-store --test postgres_store > "$scratch/missing.log" 2>&1; then
    fail "the suite passed without any PostgreSQL"
fi
grep -q "the PostgreSQL tests need a server: .*install PostgreSQL (Debian/Ubuntu: \`apt-get install postgresql\`)" \
    "$scratch/missing.log" || fail "no line naming what to install: $(tail -n 20 "$scratch/missing.log")"
echo "fresh-postgres: without binaries every test fails naming what to install"
