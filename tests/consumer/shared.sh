#!/usr/bin/env bash
# hello-http built against libherd.so, which herd builds but does not install (servers link
# libherd.a; lib/meson.build says why), for whoever links it on purpose: the uninstalled .pc of
# BUILD_ROOT, whose -lherd finds libherd.so beside libherd.a in BUILD_ROOT/lib. Then run: its own asio code and Worker::attach drive one
# io_context with libherd's one copy of asio (exported on purpose, see lib/herd/detail/
# asio_export.hpp), so it must serve, and drain and exit 0 on QUIT.
#
#   tests/consumer/shared.sh SOURCE_ROOT BUILD_ROOT
set -euo pipefail

src=$(cd "${1:?usage: shared.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
build=$(cd "${2:?usage: shared.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herd-shared.XXXXXX")
server_pid=
cleanup()
{
    if [[ -n $server_pid ]]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [[ -f $tmp/server.log ]] && cat "$tmp/server.log" >&2; exit 1; }

export PKG_CONFIG_PATH="$build/meson-uninstalled"
flags=$(pkg-config --cflags --libs herd-uninstalled) || fail "pkg-config cannot resolve herd-uninstalled"
echo "pkg-config: $flags"

echo "== build hello-http against libherd.so"
# shellcheck disable=SC2086  # pkg-config output is a list of words
${CXX:-c++} -std=c++20 -O0 -o "$tmp/hello-http" "$src/examples/hello_http.cpp" \
    -I"$src/examples" $flags || fail "building hello-http against the shared library"
export LD_LIBRARY_PATH="$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# (whole outputs first: grep -q would end the pipe early, and pipefail would call that a failure)
linked=$(ldd "$tmp/hello-http")
[[ $linked == *libherd.so* ]] || fail "hello-http is not linked against libherd.so: $linked"
# asio's scheduler is libherd's, not a second copy in the program
symbols=$(nm -C "$tmp/hello-http")
if grep -E ' [TW] boost::asio::detail::scheduler::run\(' <<<"$symbols"; then fail "hello-http defines its own asio scheduler"; fi

echo "== run it"
: >"$tmp/server.log"
"$tmp/hello-http" --workers 1 --heartbeat-interval 100ms --listen 127.0.0.1:0 2>"$tmp/server.log" &
server_pid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.log" | head -1)
    grep -q "all 1 workers ready" "$tmp/server.log" && [[ -n $port ]] && break
    kill -0 "$server_pid" 2>/dev/null || fail "hello-http exited at start"
    sleep 0.1
done
grep -q "all 1 workers ready" "$tmp/server.log" || fail "no worker ready within 10 s"
body=$(curl -sS --max-time 5 "http://127.0.0.1:$port/") || fail "GET / on port $port"
[[ $body == "Hello, world!" ]] || fail "GET / answered '$body'"
body=$(curl -sS --max-time 5 "http://127.0.0.1:$port/sleep?ms=50") || fail "GET /sleep (a timer on the shared io_context)"
[[ $body == "slept 50 ms" ]] || fail "GET /sleep answered '$body'"

echo "== QUIT"
kill -QUIT "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=
((rc == 0)) || fail "hello-http exited $rc after QUIT"
grep -q "exiting with code 0" "$tmp/server.log" || fail "no 'exiting with code 0' line"
echo "shared-library consumer: OK"
