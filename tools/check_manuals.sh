#!/usr/bin/env bash
# The manual pages say what the programs accept: every long option of `herd --help` is in herd(1),
# every key a config file may hold is in herd.conf(5), every herdctl command is in herdctl(1);
# the pages parse as roff where groff is installed; the bash completion loads and completes.
#   check_manuals.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
fail=0
man1=$build/tools/herd.1 conf=$build/tools/herd.conf.5 ctl=$build/tools/herdctl.1
for page in "$man1" "$conf" "$ctl"; do
    [[ -s $page ]] || { echo "missing or empty: $page"; exit 1; }
done
plain() { sed 's/\\-/-/g; s/\\f[BIR]//g' "$1"; }
herd_page=$(plain "$man1") conf_page=$(plain "$conf") ctl_page=$(plain "$ctl")
for opt in $("$build/tools/herd" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
    grep -q -- "$opt" <<<"$herd_page" || { echo "herd(1) lacks $opt"; fail=1; }
done
# Keys of the file: the long options of herd --help that the file accepts (not the command line's own)
for opt in $("$build/tools/herd" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
    case $opt in --config|--check|--daemon|--help|--version|--adopt-check) continue ;; esac
    grep -q -- "^${opt#--} = " <<<"$conf_page" || { echo "herd.conf(5) lacks the key ${opt#--}"; fail=1; }
done
for command in status scale reload upgrade stop restart start plan ready metrics; do
    grep -qw -- "$command" <<<"$ctl_page" || { echo "herdctl(1) lacks $command"; fail=1; }
done
if command -v groff >/dev/null; then
    for page in "$man1" "$conf" "$ctl"; do
        warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1 || true)
        [[ -z $warnings ]] || { echo "groff warns on $page: $warnings"; fail=1; }
    done
else
    echo "groff not installed: the pages' roff is not checked"
fi
# Completion: commands from nothing, options from a dash
out=$(bash -c '
    source "$1"
    COMP_WORDS=(herdctl st); COMP_CWORD=1; _herdctl; echo "${COMPREPLY[*]}"
    COMP_WORDS=(herdctl --j); COMP_CWORD=1; _herdctl; echo "${COMPREPLY[*]}"
    COMP_WORDS=(herdctl stop --n); COMP_CWORD=2; _herdctl; echo "${COMPREPLY[*]}"
' _ "$src/tools/herdctl.bash-completion")
expected=$'status stop start\n--json\n--now'
[[ $out == "$expected" ]] || { echo "completion gave:"; echo "$out"; echo "expected:"; echo "$expected"; fail=1; }
((fail == 0)) && echo "manual pages and completion: ok"
exit $fail
