#!/usr/bin/env bash
# examples/logrotate/herd-hello rotates hello-http's --log-file: hello-http runs with a log file
# and a pid file in a temporary directory, the file is moved away, the snippet's own postrotate
# script runs (taken from the file, its paths pointed at the temporary directory; by logrotate
# itself, with a state file there, when logrotate is installed), and then the manager and every
# worker hold the new file open and write their next lines into it.
#
#   examples/verify-logrotate.sh SOURCE_ROOT BUILD_ROOT
set -euo pipefail

src=$(cd "${1:?usage: verify-logrotate.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
build=$(cd "${2:?usage: verify-logrotate.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
snippet=$src/examples/logrotate/herd-hello
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herd-logrotate.XXXXXX")
log=$tmp/hello-http.log
pidfile=$tmp/herd-hello.pid
manager=
cleanup()
{
    if [[ -n $manager ]]; then kill -KILL -- "-$manager" 2>/dev/null || kill -KILL "$manager" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$log"*; do echo "== $f"; cat "$f"; done; exit 1; }
# Poll `$@` every 50 ms for up to 10 s
within_10s() { for _ in $(seq 200); do "$@" && return 0; sleep 0.05; done; "$@"; }

# The snippet, its paths in the temporary directory
grep -q '/var/log/herd-hello/hello-http.log {' "$snippet" || fail "the snippet names no /var/log/herd-hello/hello-http.log"
grep -q '/run/herd-hello/herd-hello.pid' "$snippet" || fail "the snippet's postrotate names no pid file"
sed -e "s|/var/log/herd-hello/hello-http.log|$log|" -e "s|/run/herd-hello/herd-hello.pid|$pidfile|" \
    "$snippet" >"$tmp/herd-hello"
sed -n '/^[[:space:]]*postrotate$/,/^[[:space:]]*endscript$/p' "$tmp/herd-hello" | sed '1d;$d' >"$tmp/postrotate.sh"
grep -q 'kill -USR1' "$tmp/postrotate.sh" || fail "no 'kill -USR1' in the snippet's postrotate script"

# hello-http in a process group of its own, with a log file and a pid file
setsid "$build/examples/hello-http" -w 2 -l 127.0.0.1:0 --heartbeat-interval 100ms \
    --log-file "$log" --pid-file "$pidfile" </dev/null >"$tmp/stderr" 2>&1 &
manager=$!
within_10s grep -qs "all 2 workers ready" "$log" || fail "hello-http not ready within 10 s"
workers=$(sed -n 's/.*worker \([0-9]*\) ready in slot.*/\1/p' "$log")
(($(wc -w <<<"$workers") == 2)) || fail "expected 2 workers, found: $workers"

# Each process writes to the file now at $log (not to the one moved away)
writes_to_new_file()
{
    local pid fd target
    for pid in "$manager" $workers; do
        local found=0
        for fd in /proc/"$pid"/fd/*; do
            target=$(readlink "$fd" 2>/dev/null) || continue
            [[ $target == "$log" ]] && found=1
            [[ $target == "$log.1" ]] && return 1
        done
        ((found)) || return 1
    done
}
writes_to_new_file || fail "the processes do not hold $log open before the rotation"

echo "== rotate"
if command -v logrotate >/dev/null; then
    logrotate --state "$tmp/state" --force "$tmp/herd-hello" || fail "logrotate failed"
else
    echo "(logrotate is not installed: the move, then the snippet's postrotate script with sh)"
    mv "$log" "$log.1"
    sh -e "$tmp/postrotate.sh" || fail "the postrotate script failed"
fi
[[ -e $log.1 ]] || fail "no $log.1 after the rotation"
within_10s test -e "$log" || fail "the manager did not create a new $log after USR1"
within_10s writes_to_new_file || fail "a process still writes to the rotated file: $(ls -l /proc/"$manager"/fd/ /proc/{${workers// /,}}/fd/ 2>&1)"
grep -q "received USR1: reopening log files" "$log.1" || fail "no 'reopening log files' line in the rotated file"

echo "== QUIT: the last lines of the manager and of each worker land in the new file"
kill -QUIT "$manager"
rc=0
wait "$manager" || rc=$?
manager=
((rc == 0)) || fail "hello-http exited $rc after QUIT"
for w in $workers; do
    grep -q "worker $w stopping gracefully" "$log" || fail "worker $w's last line is not in the new file"
done
grep -q "exiting with code 0" "$log" || fail "the manager's last line is not in the new file"
if grep -q "stopping gracefully\|exiting with code" "$log.1"; then fail "a line after the rotation went to the old file"; fi
echo "logrotate snippet: OK"
