#!/usr/bin/env bash
# examples/herd-hello.socket and herd-hello-activated.service, run the way systemd runs them, by
# systemd-socket-activate: it owns a 127.0.0.1 port (the socket's ListenStream= with its port
# made free), and the first connection starts the service's own ExecStart= with the socket in
# LISTEN_FDS; curl is answered, the service's ExecReload= (herdctl upgrade) completes while
# requests keep being answered, and QUIT ends it with exit code 0. Paths of /usr/local/bin are
# the build's, those of /run/herd-hello-activated a temporary directory. Exit 77 (skipped)
# without systemd-socket-activate (Debian package systemd) or curl.
#
#   examples/verify-socket-activation.sh SOURCE_ROOT BUILD_ROOT
set -euo pipefail

src=$(cd "${1:?usage: verify-socket-activation.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
build=$(cd "${2:?usage: verify-socket-activation.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
activate=$(command -v systemd-socket-activate || true)
[[ -n $activate ]] || { echo "SKIP: systemd-socket-activate is not installed (Debian package systemd)"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herd-activate.XXXXXX")
manager=
cleanup()
{
    if [[ -n $manager ]]; then kill -KILL -- "-$manager" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [[ -f $tmp/log ]] && cat "$tmp/log"; exit 1; }
within_5s() { for _ in $(seq 100); do "$@" && return 0; sleep 0.05; done; "$@"; }
answered_since() { (($(grep -c '^[0-9]' "$tmp/answers" || true) >= $1)); }

# A unit's setting, continuation lines joined, /usr/local/bin and the runtime directory replaced
setting()
{
    sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$1" | sed -n "s/^$2=//p" | tr -s ' ' |
        sed -e "s|/usr/local/bin/hello-http|$build/examples/hello-http|g" \
            -e "s|/usr/local/bin/herdctl|$build/tools/herdctl|g" \
            -e "s|/run/herd-hello-activated/|$tmp/|g"
}
socket_unit=$src/examples/herd-hello.socket
service_unit=$src/examples/herd-hello-activated.service
[[ $(setting "$socket_unit" Service) == herd-hello-activated.service ]] || fail "herd-hello.socket's Service= is not herd-hello-activated.service"
listen=$(setting "$socket_unit" ListenStream)
name=$(setting "$socket_unit" FileDescriptorName)
[[ $listen == 127.0.0.1:* && -n $name ]] || fail "herd-hello.socket: ListenStream=$listen FileDescriptorName=$name"
read -r -a start <<<"$(setting "$service_unit" ExecStart)"
read -r -a reload <<<"$(setting "$service_unit" ExecReload)"
[[ ${start[0]} == "$build/examples/hello-http" && ${reload[0]} == "$build/tools/herdctl" ]] ||
    fail "ExecStart=${start[*]} ExecReload=${reload[*]}"
if [[ " ${start[*]} " == *" --listen "* || " ${start[*]} " == *" -l "* ]]; then fail "ExecStart= has --listen"; fi

# The socket's address on a free port; the service's command as the socket's program. setsid: a
# process group of its own, which systemd-socket-activate execs into (so the manager's pid is $!).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
setsid "$activate" -l "127.0.0.1:$port" --fdname="$name" \
    "${start[@]}" --heartbeat-interval 200ms </dev/null >"$tmp/log" 2>&1 &
manager=$!
within_5s grep -qs "Listening on 127.0.0.1:$port" "$tmp/log" || fail "systemd-socket-activate does not listen on 127.0.0.1:$port"
if pgrep -P "$manager" >/dev/null; then fail "a program started before the first connection"; fi

echo "== the first connection starts the service, and is answered"
body=$(curl -sS --max-time 15 "http://127.0.0.1:$port/") || fail "GET / on the activated socket"
[[ $body == "Hello, world!" ]] || fail "GET / answered '$body'"
within_5s grep -q "all 4 workers ready" "$tmp/log" || fail "not 'all 4 workers ready' within 5 s"
# No --listen: the one listener is the socket systemd-socket-activate passed
grep -q "listening on 127.0.0.1:$port\$" "$tmp/log" || fail "the manager does not serve 127.0.0.1:$port"
[[ $(cat "$tmp/herd-hello.pid") == "$manager" ]] || fail "the pid file is not the activated process's pid $manager"

echo "== ExecReload (herdctl upgrade) while requests keep coming"
: >"$tmp/answers"
(
    while [[ ! -e $tmp/stop ]]; do
        curl -sS --max-time 5 "http://127.0.0.1:$port/pid" >>"$tmp/answers" 2>&1 || echo "FAILED" >>"$tmp/answers"
        echo >>"$tmp/answers"
    done
) &
client=$!
"${reload[@]}" || { touch "$tmp/stop"; wait "$client"; fail "ExecReload= failed"; }
before=$(grep -c '^[0-9]' "$tmp/answers" || true)
within_5s answered_since $((before + 5)) || true   # the count is checked below
touch "$tmp/stop"
wait "$client"
grep -q "upgrade to generation 2 complete" "$tmp/log" || fail "no 'upgrade to generation 2 complete'"
answered=$(grep -c '^[0-9]' "$tmp/answers" || true)
if grep -v '^[0-9]*$' "$tmp/answers" | grep -q .; then fail "a request failed during the upgrade: $(grep -v '^[0-9]*$' "$tmp/answers" | head -3)"; fi
((answered >= before + 5)) || fail "only $answered requests answered ($before before the upgrade completed)"
kill -0 "$manager" || fail "the manager's pid changed with the upgrade"
# The socket went through the upgrade: a worker of generation 2 answers on it
pid=$(curl -sS --max-time 5 "http://127.0.0.1:$port/pid") || fail "GET /pid after the upgrade"
grep -q "worker $pid spawned in slot [0-9]* (generation 2)" "$tmp/log" || fail "/pid answered $pid, not a worker of generation 2"

echo "== QUIT ends it cleanly"
kill -QUIT "$manager"
rc=0
wait "$manager" || rc=$?
manager=
((rc == 0)) || fail "exit code $rc after QUIT"
grep -q "exiting with code 0" "$tmp/log" || fail "no 'exiting with code 0'"
echo "socket activation: OK ($answered requests answered across the upgrade)"
