#!/usr/bin/env bash
# Fuzz smoke run: every cargo-fuzz target for SECONDS (default 30) on libFuzzer, starting from
# its committed corpus. The project builds on stable; only this script uses nightly, which
# cargo-fuzz needs for the sanitizer and coverage instrumentation. The instrumented build
# lives in ~/.cache/ward-ci/fuzz-target (WARD_FUZZ_TARGET_DIR).
#
#   ci/fuzz-smoke.sh [SECONDS] [TARGET...]
#
# New coverage goes to a scratch corpus, not to fuzz/corpus. A crash fails the run and leaves
# its reproducer in fuzz/artifacts/TARGET/; copy it to fuzz/regressions/TARGET/ with the fix,
# where `cargo test -p ward-fuzz-targets` replays it on stable from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-30}"
shift || true

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz > /dev/null; then
    cargo install cargo-fuzz --locked
fi

# The fuzz build (every dependency, instrumented, on nightly) shares nothing with the
# workspace's; it is kept across runs beside the other CI caches, so only a machine's first
# run pays for it cold.
export CARGO_TARGET_DIR="${WARD_FUZZ_TARGET_DIR:-$HOME/.cache/ward-ci/fuzz-target}"

cd fuzz
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    mapfile -t TARGETS < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
# Targets run side by side, one per core (WARD_FUZZ_JOBS): libFuzzer uses one thread each.
JOBS="${WARD_FUZZ_JOBS:-$(nproc)}"

fuzz_one() {
    local target=$1 status=0
    mkdir -p "$SCRATCH/$target"
    cargo +nightly fuzz run "$target" "$SCRATCH/$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 > "$SCRATCH/$target.log" 2>&1 \
        || status=$?
    echo "$status" > "$SCRATCH/$target.status"
}

running=0
for target in "${TARGETS[@]}"; do
    echo "fuzz: $target for ${SECONDS_PER_TARGET}s"
    fuzz_one "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

failed=0
for target in "${TARGETS[@]}"; do
    status=$(cat "$SCRATCH/$target.status" 2>/dev/null || echo 1)
    echo "fuzz: $target: $(grep -E '^stat::number_of_executed_units' "$SCRATCH/$target.log" \
        | awk '{print $2}') executions, exit $status"
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$SCRATCH/$target.log" >&2
        echo "fuzz: $target failed (exit $status); reproducer under fuzz/artifacts/$target/" >&2
        failed=1
    fi
done
exit "$failed"
