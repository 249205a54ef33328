#!/usr/bin/env bash
# Vendor herd as a meson subproject of the shipped example project and build against dependency('herd').
#
#   tests/consumer/run.sh SOURCE_ROOT
#
# Copies examples/consumer/meson to a temporary directory, puts a copy of SOURCE_ROOT (without
# .git, build directories or downloaded subprojects) at subprojects/herd, configures it with
# herd's own tests off and downloads forbidden, builds the server and runs it: --check and
# --version must exit 0, libherd must be linked in statically, a one-worker pool must become ready,
# answer a client and stop on TERM. A file that includes an internal header of herd's must not compile.
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
cp -a "$src/examples/consumer/meson/." "$tmp/consumer/"
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

# A target beside the example that reaches for an internal header: dependency('herd') must not let it
printf '#include <herd/core/policy.hpp>\nint main() {}\n' >"$tmp/consumer/internal.cpp"
printf "executable('internal', 'internal.cpp', dependencies : herd_dep, build_by_default : false)\n" \
    >>"$tmp/consumer/meson.build"

echo "== meson setup (herd as a subproject)"
meson setup "$tmp/build" "$tmp/consumer" -Dherd:tests=false --wrap-mode=nodownload \
    || fail "meson setup of the consumer project"
grep -q "herd" "$tmp/build/meson-logs/meson-log.txt" || fail "herd subproject not configured"

echo "== meson compile hello"
meson compile -C "$tmp/build" hello || fail "building the example against dependency('herd')"
bin="$tmp/build/hello"
[[ -x $bin ]] || fail "no server binary at $bin"
linked=$(ldd "$bin")
[[ $linked != *libherd* ]] || fail "the server loads a shared libherd: $linked"

echo "== an internal header is out of reach"
if meson compile -C "$tmp/build" internal >"$tmp/internal.log" 2>&1; then
    fail "a file including <herd/core/policy.hpp> compiled against dependency('herd')"
fi
grep -q "herd/core/policy.hpp: No such file" "$tmp/internal.log" \
    || { cat "$tmp/internal.log" >&2; fail "the internal build failed for another reason than the missing header"; }

echo "== consumer --check"
"$bin" --check --workers 2 || fail "consumer --check exited $?"

echo "== consumer --version"
version=$("$bin" --version) || fail "consumer --version exited $?"
echo "$version"
[[ $version == *1.0.0* ]] || fail "consumer --version does not show the application's version 1.0.0"

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
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
[[ -n $port ]] || { cat "$log" >&2; fail "no 'listening on' line"; }
exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect to 127.0.0.1:$port"
read -r -t 5 answer <&3 || true
exec 3<&-
[[ $answer == "hello from herd" ]] || { cat "$log" >&2; fail "the server answered '$answer'"; }
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=
cat "$log"
((rc == 0)) || fail "consumer exited $rc after TERM"

echo "consumer-subproject: OK"
