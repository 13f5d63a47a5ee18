#!/usr/bin/env bash
# Builds ward_<version>_amd64.deb: the release binary, then the man pages and shell
# completions rendered by that binary from its own argument definitions, then the package
# (cargo-deb, installed from crates.io when missing). Prints the package's path last.
#
# WARD_DEB_PROFILE picks the Cargo profile (default `release`).
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${WARD_DEB_PROFILE:-release}"
if ! cargo deb --version >/dev/null 2>&1; then
    echo "build-deb: installing cargo-deb" >&2
    cargo install cargo-deb --locked >&2
fi

target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
start=$(date +%s)
cargo build --profile "$profile" -p ward-cli --bin ward >&2
echo "build-deb: $profile build took $(( $(date +%s) - start ))s" >&2

# Cargo names the dev profile's output directory `debug`.
profile_dir="$profile"
[ "$profile" = dev ] && profile_dir=debug
bin="$target_dir/$profile_dir/ward"
out="$target_dir/packaging"
rm -rf "$out"
mkdir -p "$out/man" "$out/completions"
"$bin" man --out-dir "$out/man"
gzip -9n "$out"/man/*.1
"$bin" completions bash > "$out/completions/ward.bash"
"$bin" completions zsh > "$out/completions/_ward"
"$bin" completions fish > "$out/completions/ward.fish"

# Stripped: the profile keeps line tables for backtraces in development, a package ships
# the code only (120 MB become about 20).
cargo deb -p ward-cli --no-build --strip --profile "$profile" --output "$target_dir/debian/" >&2
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
echo "$target_dir/debian/ward_${version}_amd64.deb"
