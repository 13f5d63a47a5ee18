#!/usr/bin/env bash
# Ward's backup against restic and borg on the same store, side by side in one run.
#
# Builds a data directory of RECORDS contact records (default 1,000,000 ≈ 1 GiB of SQLite
# files) with `ward bench --export-fixture`, then for each tool: a first backup, a second
# backup of the unchanged store, the repository size, and a restore. MB/s are over the data
# directory's size, for every tool. Prints a Markdown table for BENCHMARKS.md.
#
#   bench/backup.sh                      # 1,000,000 records, release build
#   RECORDS=100000 WORK=/tmp/bb bench/backup.sh
#   WARD=target/debug/ward RECORDS=2000 bench/backup.sh   # a quick check of the script
#
# Needs restic and borg (`apt-get install -y restic borgbackup`; installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS="${RECORDS:-1000000}"
WORK="${WORK:-$(mktemp -d /tmp/ward-backup-bench.XXXXXX)}"
if [ -z "${WARD:-}" ]; then
    cargo build --release -p ward-cli
    WARD=target/release/ward
fi
if ! command -v restic >/dev/null || ! command -v borg >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q restic borgbackup
fi

DATA="$WORK/data"
if [ ! -d "$DATA" ]; then
    "$WARD" bench --export-fixture "$RECORDS" --fixture-dir "$DATA"
fi
chmod 700 "$DATA"
STORE_BYTES=$(du -sb "$DATA" | cut -f1)

# Seconds (with fractions) taken by a command; its output goes to $WORK/log.
seconds() {
    local start end
    start=$(date +%s.%N)
    "$@" >>"$WORK/log" 2>&1
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}
mbps() { echo "scale=1; $STORE_BYTES / 1048576 / $1" | bc -l; }
mib() { echo "scale=1; $(du -sb "$1" | cut -f1) / 1048576" | bc -l; }
pct() { echo "scale=1; 100 * $1 / $2" | bc -l; }

rows=()
measure() {
    local name=$1 first second size restore
    # Every tool starts with the store in the page cache, as a daily backup of a live store
    # would find it, so no tool pays (or is spared) the disk reads another one caused.
    find "$DATA" -type f -exec cat {} + >/dev/null
    first=$(seconds "${@:2:1}")
    second=$(seconds "${@:2:1}")
    size=$(mib "$REPO")
    restore=$(seconds "${@:3:1}")
    rows+=("| $name | $(printf %.1f "$first") s ($(mbps "$first") MB/s) | $(printf %.1f "$second") s ($(pct "$second" "$first") %) | $(printf %.1f "$size") MiB | $(printf %.1f "$restore") s ($(mbps "$restore") MB/s) |")
}

# Ward: two locations would double the writes; the comparison uses one, like the others.
REPO="$WORK/ward-repo"
rm -rf "$REPO" "$WORK/ward-restored"
ward_run() { "$WARD" backup run --data-dir "$DATA" --location "$REPO" --quiet; }
ward_restore() {
    rm -rf "$WORK/ward-restored"
    "$WARD" backup restore latest --data-dir "$DATA" --location "$REPO" --to "$WORK/ward-restored" --quiet
}
measure ward ward_run ward_restore

export RESTIC_PASSWORD=ward-bench
REPO="$WORK/restic-repo"
rm -rf "$REPO"
restic init --repo "$REPO" >>"$WORK/log"
restic_run() { restic --repo "$REPO" backup "$DATA"; }
restic_restore() { rm -rf "$WORK/restic-restored"; restic --repo "$REPO" restore latest --target "$WORK/restic-restored"; }
measure restic restic_run restic_restore

export BORG_PASSPHRASE=ward-bench
REPO="$WORK/borg-repo"
rm -rf "$REPO"
borg init --encryption=repokey-blake2 "$REPO" >>"$WORK/log" 2>&1
borg_run() { borg create "$REPO::run-$(date +%s%N)" "$DATA"; }
borg_restore() {
    rm -rf "$WORK/borg-restored" && mkdir -p "$WORK/borg-restored"
    (cd "$WORK/borg-restored" && borg extract "$REPO::$(borg list --last 1 --short "$REPO")")
}
measure borg borg_run borg_restore

echo
echo "Store: $RECORDS records, $(echo "scale=1; $STORE_BYTES / 1048576" | bc -l) MiB of data directory; $(nproc) cores; $(restic version | head -1); $(borg --version)"
echo
echo "| tool | first backup | unchanged second backup (of first) | repository | restore |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "work directory: $WORK (log: $WORK/log)"
