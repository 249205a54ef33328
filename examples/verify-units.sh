#!/usr/bin/env bash
# Every systemd unit in examples/ passes `systemd-analyze verify` without a single warning, and
# uses nothing newer than systemd 252 (Debian 12).
#
#   examples/verify-units.sh SOURCE_ROOT BUILD_ROOT
#
# verify wants the programs of ExecStart= and ExecReload= to exist: each unit is checked in a
# temporary copy whose /usr/local/bin/ paths name the binaries of BUILD_ROOT. Exit 77 (skipped)
# when systemd-analyze is not installed.
set -euo pipefail

src=$(cd "${1:?usage: verify-units.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
build=$(cd "${2:?usage: verify-units.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze is not installed (Debian package systemd)"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herd-units.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

failed=0
shopt -s nullglob
units=("$src"/examples/*.service "$src"/examples/*.socket)
((${#units[@]} > 0)) || { echo "FAIL: no unit in $src/examples"; exit 1; }
# Every unit is copied first: a socket and its service name each other (Service=, Requires=)
for unit in "${units[@]}"; do
    sed -e "s|/usr/local/bin/hello-http|$build/examples/hello-http|g" \
        -e "s|/usr/local/bin/job-worker|$build/examples/job-worker|g" \
        -e "s|/usr/local/bin/herdctl|$build/tools/herdctl|g" \
        -e "s|/usr/local/bin/herd |$build/tools/herd |g" "$unit" >"$tmp/${unit##*/}"
done
for unit in "${units[@]}"; do
    name=${unit##*/}
    # Features of systemd 253 and later are refused by 252, which Debian 12 runs
    if grep -nE '^[[:space:]]*(Type=notify-reload|ReloadSignal=)' "$unit"; then
        echo "FAIL: $name uses a setting systemd 252 does not know (see the comment in the unit)"
        failed=1
    fi
    # Any line verify prints is a warning about the unit: "Unknown key", "Failed to parse", ...
    out=$(cd "$tmp" && systemd-analyze verify --man=no --generators=no "./$name" 2>&1) || failed=1
    if [[ -n $out ]]; then
        echo "FAIL: systemd-analyze verify $name:"
        echo "$out"
        failed=1
    else
        echo "ok: $name ($(systemd-analyze --version | head -1))"
    fi
done
exit "$failed"
