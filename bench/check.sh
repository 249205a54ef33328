#!/usr/bin/env bash
# bench-check: `herd-bench --check`, and once more when a target was missed. The figures are
# latencies on a shared machine: a regression misses both runs, a busy moment rarely does.
set -u
bench=$1
"$bench" --check
rc=$?
if ((rc == 1)); then
    echo
    echo "bench-check: a target was missed; measuring once more (a regression misses twice)"
    echo
    "$bench" --check
    rc=$?
fi
exit $rc
