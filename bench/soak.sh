#!/usr/bin/env bash
# Load soak: a wrk mix (60% get, 25% put, 10% lookup, 5% subject export) against a release
# `ward serve` on SQLite for DURATION, sampling the server's resident memory and open file
# descriptors every 10 s, then `ward audit verify`.
#
#   bench/soak.sh [DURATION] [CONNECTIONS]     # defaults: 60s, 16
#   SOAK_WARMUP_SECS=900 bench/soak.sh 45m 8   # growth measured from minute 15
#   SOAK_PREFILL=5m bench/soak.sh 30m 8        # the mix runs 5 minutes before the soak
#
# Prints requests, non-2xx count, p50/p90/p99 latency, and memory and descriptor growth
# from warm-up (a sixth of the run, at most 5 minutes in, unless SOAK_WARMUP_SECS says
# otherwise) to the end: the median of the samples of the minute after warm-up against the
# median of the last minute's (one 10-second sample catches whichever request is in flight;
# the single-sample figure is printed too). The store starts empty unless SOAK_PREFILL runs
# the same mix first, unmeasured: without it SQLite's page caches (bounded, see
# BENCHMARKS.md "Load soak") are still filling at minute 5. Fails (exit 1) on any non-2xx
# answer, on growth above 5%, or if the audit log does not verify. Needs wrk, curl and jq.
# Figures go to BENCHMARKS.md "Load soak".
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-60s}"
CONNECTIONS="${2:-16}"

. bench/fixture.sh

if [ -n "${SOAK_PREFILL:-}" ]; then
    echo "soak: prefilling the store with the same mix for $SOAK_PREFILL"
    SOAK_IDS="$WORK/ids" wrk -t2 -c"$CONNECTIONS" -d"$SOAK_PREFILL" -s bench/soak.lua "$API" | grep '^soak:'
fi

( while kill -0 "$SERVER_PID" 2>/dev/null; do
      echo "$(date +%s) $(ps -o rss= -p "$SERVER_PID") $(ls "/proc/$SERVER_PID/fd" | wc -l)"
      sleep 10
  done ) > "$WORK/samples" &
SAMPLER_PID=$!

SOAK_IDS="$WORK/ids" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/soak.lua "$API" | tee "$WORK/wrk.out"
kill "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""

status=0
if grep -q "Non-2xx" "$WORK/wrk.out"; then
    echo "soak: non-2xx answers" >&2
    status=1
fi
python3 - "$WORK/samples" "${SOAK_WARMUP_SECS:-}" <<'PY' || status=1
import sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
if len(rows) < 3:
    print("soak: too few samples for a growth figure"); sys.exit(0)
start = rows[0][0]; end = rows[-1][0]
warm = start + (int(sys.argv[2]) if sys.argv[2] else min(300, (end - start) // 6))
base = next(r for r in rows if r[0] >= warm)
last = rows[-1]
def median(values):
    values = sorted(values)
    return values[len(values) // 2]
first_minute = [r for r in rows if warm <= r[0] < warm + 60] or [base]
last_minute = [r for r in rows if r[0] > end - 60] or [last]
rss_from, rss_to = median(r[1] for r in first_minute), median(r[1] for r in last_minute)
fds_from, fds_to = median(r[2] for r in first_minute), median(r[2] for r in last_minute)
rss = (rss_to - rss_from) / rss_from * 100
fds = (fds_to - fds_from) / fds_from * 100
single = (last[1] - base[1]) / base[1] * 100
print(f"soak: {len(rows)} samples; RSS median {rss_from / 1024:.1f} MiB in the minute from {warm - start}s -> {rss_to / 1024:.1f} MiB in the last minute ({rss:+.1f}%), max {max(r[1] for r in rows) / 1024:.1f} MiB")
print(f"soak: RSS single samples {base[1] / 1024:.1f} MiB at {base[0] - start}s -> {last[1] / 1024:.1f} MiB at {last[0] - start}s ({single:+.1f}%)")
print(f"soak: open descriptors {fds_from} -> {fds_to} ({fds:+.1f}%)")
print("soak: RSS MiB by sample: " + " ".join(f"{r[1] / 1024:.0f}" for r in rows))
sys.exit(1 if rss > 5 or fds > 5 else 0)
PY
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""
"$WARD" audit verify --data-dir "$WORK/data" | tail -n 2 || status=1
exit $status
