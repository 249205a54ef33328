#!/usr/bin/env bash
# Vendor herd as a meson subproject of a tiny project and build against dependency('herd').
#
#   tests/consumer/run.sh SOURCE_ROOT
#
# Copies tests/consumer/project to a temporary directory, puts a copy of SOURCE_ROOT (without
# .git, build directories or downloaded subprojects) at subprojects/herd, configures it with
# herd's own tests off and downloads forbidden, builds the consumer and runs it:
# --check and --version must exit 0, and a one-worker pool must become ready and stop on TERM.
set -euo pipefail

src=$(cd "${1:?usage: run.sh SOURCE_ROOT}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herd-consumer.XXXXXX")
server_pid=
cleanup()
{
    if [[ -n $server_pid ]]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# The consumer project, with herd vendored the way a user would: a plain copy of the tree
mkdir -p "$tmp/consumer/subprojects/herd/subprojects"
cp -a "$src/tests/consumer/project/." "$tmp/consumer/"
shopt -s dotglob nullglob
for entry in "$src"/*; do
    case ${entry##*/} in
        .git | build* | subprojects) ;;
        *) cp -a "$entry" "$tmp/consumer/subprojects/herd/" ;;
    esac
done
for wrap in "$src"/subprojects/*.wrap; do cp -a "$wrap" "$tmp/consumer/subprojects/herd/subprojects/"; done
shopt -u dotglob nullglob

# ccache hits across temporary directories: paths are relative to the build directory
export CCACHE_NOHASHDIR=true CCACHE_BASEDIR="$tmp"

echo "== meson setup (herd as a subproject)"
meson setup "$tmp/build" "$tmp/consumer" -Dherd:tests=false --wrap-mode=nodownload \
    || fail "meson setup of the consumer project"
grep -q "herd" "$tmp/build/meson-logs/meson-log.txt" || fail "herd subproject not configured"

echo "== meson compile consumer"
meson compile -C "$tmp/build" consumer || fail "building the consumer against dependency('herd')"
bin="$tmp/build/consumer"
[[ -x $bin ]] || fail "no consumer binary at $bin"

echo "== consumer --check"
"$bin" --check --workers 2 || fail "consumer --check exited $?"

echo "== consumer --version"
version=$("$bin" --version) || fail "consumer --version exited $?"
echo "$version"
[[ $version == *1.2.3* ]] || fail "consumer --version does not show the application's version 1.2.3"

echo "== consumer runs a pool of one worker"
log="$tmp/consumer.log"
"$bin" --workers 1 --heartbeat-interval 100ms --listen 127.0.0.1:0 2>"$log" &
server_pid=$!
for _ in $(seq 100); do
    grep -q "ready in slot 0" "$log" && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
grep -q "ready in slot 0" "$log" || { cat "$log" >&2; fail "no worker became ready within 10 s"; }
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=
cat "$log"
((rc == 0)) || fail "consumer exited $rc after TERM"

echo "consumer-subproject: OK"
