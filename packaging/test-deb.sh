#!/usr/bin/env bash
# The package on this machine: build ward_<version>_amd64.deb, install it with dpkg, check
# what it installed (user, modes, unit, man pages, completions), run the unit's ExecStart
# as the `ward` user with the packaged config (directly: systemd is not PID 1 here, so the
# root key credential is staged the way systemd would stage it), check /healthz and
# `ward doctor`, then purge the package and remove what purging keeps on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-deb: FAILED: $*" >&2; exit 1; }
step() { echo "test-deb: $*"; }

if dpkg -s ward >/dev/null 2>&1 || getent passwd ward >/dev/null || [ -e /var/lib/ward ]; then
    fail "ward is already installed on this machine (or left /var/lib/ward): refusing to touch it"
fi

deb="$(packaging/build-deb.sh | tail -n 1)"
[ -f "$deb" ] || fail "no package at $deb"
step "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"

creds=""
server=""
cleanup() {
    if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -TERM "$server"; wait "$server" || true; fi
    [ -n "$creds" ] && rm -rf "$creds"
    dpkg --purge ward >/dev/null 2>&1 || true
    rm -rf /var/lib/ward /etc/ward
    if getent passwd ward >/dev/null; then userdel ward; fi
    if getent group ward >/dev/null; then groupdel ward; fi
}
trap cleanup EXIT

DEBIAN_FRONTEND=noninteractive dpkg -i "$deb"
step "installed"

# What the package put in place.
getent passwd ward | grep -q ':/usr/sbin/nologin$' || fail "no ward system user with a nologin shell"
[ "$(stat -c '%a %U' /var/lib/ward)" = "700 ward" ] || fail "/var/lib/ward is $(stat -c '%a %U' /var/lib/ward)"
[ "$(stat -c '%a %U' /etc/ward/root.key)" = "600 root" ] || fail "root key is $(stat -c '%a %U' /etc/ward/root.key)"
[ "$(stat -c '%a %U:%G' /etc/ward/ward.toml)" = "640 root:ward" ] || fail "ward.toml is $(stat -c '%a %U:%G' /etc/ward/ward.toml)"
unit="$(dpkg -L ward | grep '/systemd/system/ward.service$')" || fail "no systemd unit"
for directive in ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes ReadWritePaths=/var/lib/ward \
    LoadCredential=root.key:/etc/ward/root.key User=ward; do
    grep -qx "$directive" "$unit" || fail "the unit lacks $directive"
done
if command -v systemd-analyze >/dev/null; then
    verdict="$(systemd-analyze verify "$unit" 2>&1 || true)"
    [ -z "$verdict" ] || fail "systemd-analyze verify: $verdict"
fi
for f in /usr/share/man/man1/ward.1.gz /usr/share/man/man1/ward-doctor.1.gz \
    /usr/share/bash-completion/completions/ward /usr/share/zsh/vendor-completions/_ward \
    /usr/share/fish/vendor_completions.d/ward.fish; do
    [ -s "$f" ] || fail "missing $f"
done
zcat /usr/share/man/man1/ward.1.gz | grep -q '^\.TH ward 1' || fail "ward.1 is not a man page"
ward --version | grep -Eq '^ward [0-9.]+ \(commit [0-9a-f]+(-modified)?|unknown' || fail "ward --version: $(ward --version)"
step "files, modes, unit, man pages and completions in place; $(ward --version)"

# The unit's ExecStart, as systemd would run it: as `ward`, with the root key staged as a
# credential (a directory only the service user can read) and %d replaced by it. The
# listen address moves to a free port through the environment (which wins over the file).
exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"
creds="$(mktemp -d /run/ward-credentials.XXXXXX)"
install -o ward -g ward -m 0400 /etc/ward/root.key "$creds/root.key"
chown ward:ward "$creds"
chmod 0500 "$creds"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp)"
# shellcheck disable=SC2086 # ExecStart is a command line: split it like systemd does.
WARD_LISTEN="127.0.0.1:$port" setpriv --reuid=ward --regid=ward --init-groups -- \
    ${exec_start//%d/$creds} > "$log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "$log"; fail "ward serve exited"; }
    sleep 0.2
done
[ "$(curl -fsS "http://127.0.0.1:$port/healthz")" = '{"status":"ok"}' ] || { cat "$log"; fail "/healthz"; }
grep -q "Operator token (shown once" "$log" || fail "no operator token at first start"
grep -q "root key is a file next to the data" "$log" && fail "the packaged layout keeps the key next to the data"
[ "$(stat -c '%U' /var/lib/ward/ward.db)" = ward ] || fail "ward.db is not owned by ward"
step "ward serve answers /healthz as the ward user"

# ward doctor on the installed deployment, as the service user with the same files.
setpriv --reuid=ward --regid=ward --init-groups -- \
    ward doctor --config /etc/ward/ward.toml --key-file "$creds/root.key" > "$log.doctor" \
    || { cat "$log.doctor"; fail "ward doctor found a failure"; }
grep -q '^ok    root_key' "$log.doctor" || { cat "$log.doctor"; fail "the root key is not reported apart from the data"; }
step "ward doctor: $(tail -n 1 "$log.doctor")"

kill -TERM "$server"
wait "$server" || fail "ward serve did not stop cleanly on SIGTERM"
server=""
rm -f "$log" "$log.doctor"

dpkg --purge ward
[ -e /usr/bin/ward ] && fail "/usr/bin/ward survived the purge"
[ -d /var/lib/ward ] || fail "purging deleted the vault's data"
step "purged (data and root key kept, as documented); removing them"
