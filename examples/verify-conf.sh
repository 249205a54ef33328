#!/usr/bin/env bash
# examples/herd.conf is what `herd-man conf` writes from the option table (so it cannot drift
# from the options herd accepts), herd and hello-http accept it as shipped, and herd accepts it
# with every key uncommented, each at the value the file shows (placeholders filled in).
#
#   examples/verify-conf.sh SOURCE_ROOT BUILD_ROOT
set -euo pipefail

src=$(cd "${1:?usage: verify-conf.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
build=$(cd "${2:?usage: verify-conf.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
conf=$src/examples/herd.conf
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herd-conf.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

echo "== examples/herd.conf is what herd-man conf writes"
"$build/tools/herd-man" conf >"$tmp/generated.conf"
diff -u "$conf" "$tmp/generated.conf" ||
    fail "examples/herd.conf differs from the option table: build/tools/herd-man conf > examples/herd.conf"

echo "== as shipped"
"$build/tools/herd" --check --config "$conf" -- /bin/true || fail "herd --check refuses examples/herd.conf"
"$build/examples/hello-http" --check --config "$conf" || fail "hello-http --check refuses examples/herd.conf"

echo "== every key uncommented"
# '#key = value' and '#[pool.NAME]' lines lose their '#'; a parameter shown in capitals gets a
# value of its kind; the sample `worker = web` pool runs a program instead (herd has no types).
sed -E -e 's/^#([a-z-]+ = )/\1/' -e 's/^#(\[pool\.)/\1/' \
    -e "s|^(pid-file\|control\|log-file) = PATH\$|\\1 = $tmp/\\1|" \
    -e 's/ = ADDR$/ = 127.0.0.1:0/' -e 's/ = NAME$/ = sample/' -e 's/^user = USER$/user = nobody/' \
    -e 's/^group = GROUP$/group = nogroup/' -e 's/ = PLAN$/ = restart, wait/' \
    -e 's|^worker = web$|command = /bin/true|' "$conf" >"$tmp/all.conf"
if grep -nE '^#[a-z-]+ = |= [A-Z]+$' "$tmp/all.conf" | grep -v '= TERM$'; then
    fail "a key above is still commented out or has no value of its kind"
fi
keys=$(grep -cE '^[a-z-]+ = ' "$tmp/all.conf")
((keys >= 30)) || fail "only $keys keys uncommented"
"$build/tools/herd" --check --config "$tmp/all.conf" || fail "herd --check refuses examples/herd.conf uncommented"
echo "examples/herd.conf: OK ($keys keys)"
