#!/usr/bin/env bash
# Fuzz every input that crosses a trust boundary: tests/fuzz/run.sh SECONDS [TARGET...]
#
# Builds the libFuzzer targets with clang (tests/fuzz/Makefile, into build-fuzz/ or
# $HERD_FUZZ_BUILD; only what changed is built again), then runs each for SECONDS on a scratch
# copy of its seed corpus (tests/fuzz/corpus/TARGET/, never grown in place), with its dictionary
# (tests/fuzz/TARGET.dict) where there is one. One line per target: its name, executions and
# findings. A finding (crash, failed check, leak, timeout, out of memory, UBSan error) is kept
# in build-fuzz/findings/TARGET/ and its path printed; a finding, or a target that cannot be
# built, makes the exit code 1. Usage errors exit 2.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${HERD_FUZZ_BUILD:-$root/build-fuzz}
make_args=(-f "$here/Makefile" "ROOT=$root" "OUT=$out")

if (($# < 1)) || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: tests/fuzz/run.sh SECONDS [TARGET...]  (SECONDS: a whole number above 0, per target)" >&2
    exit 2
fi
seconds=$1
shift
all=($(make -s "${make_args[@]}" print-targets))
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do
    [[ " ${all[*]} " == *" $t "* ]] || { echo "run.sh: no fuzz target '$t' (${all[*]})" >&2; exit 2; }
done

mkdir -p "$out/logs"
failed=0
# Every target at once (-k: one that fails leaves the others built); the log is shown on failure.
if ! make -k -j"$(nproc)" "${make_args[@]}" "${targets[@]}" >"$out/logs/build.log" 2>&1; then
    grep -E 'error|Error' "$out/logs/build.log" | head -20 >&2
fi

for t in "${targets[@]}"; do
    bin=$out/$t-fuzz
    if ! make "${make_args[@]}" "$bin" >>"$out/logs/build.log" 2>&1; then
        printf '%-10s cannot be built: see %s\n' "$t" "$out/logs/build.log"
        failed=1
        continue
    fi
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/herd-fuzz-$t.XXXXXX")
    mkdir -p "$scratch/corpus" "$scratch/findings"
    cp -R "$here/corpus/$t/." "$scratch/corpus/" 2>/dev/null
    opts=(-max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix="$scratch/findings/")
    [[ -f $here/$t.dict ]] && opts+=(-dict="$here/$t.dict")
    log=$out/logs/$t.log
    "$bin" "${opts[@]}" "$scratch/corpus" >"$log" 2>&1 </dev/null
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    reproducers=()
    for f in "$scratch/findings"/*; do
        [[ -f $f && $(basename "$f") != slow-unit-* ]] || continue
        mkdir -p "$out/findings/$t"
        mv "$f" "$out/findings/$t/"
        reproducers+=("$out/findings/$t/$(basename "$f")")
    done
    findings=${#reproducers[@]}
    ((rc != 0 && findings == 0)) && findings=1
    printf '%-10s %12s executions  %d findings\n' "$t" "${runs:-?}" "$findings"
    if ((findings)); then
        failed=1
        why=$(grep -m1 -E 'check failed|runtime error|ERROR: |terminate called|what\(\)' "$log")
        echo "    ${why:-exited with $rc}"
        for r in "${reproducers[@]}"; do echo "    reproducer: $r  (run: $bin $r)"; done
        ((${#reproducers[@]})) || echo "    no reproducer was written: see $log"
        echo "    log: $log"
    fi
    rm -rf "$scratch"
done
exit "$failed"
