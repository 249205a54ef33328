#!/usr/bin/env bash
# `meson install --destdir` of a configured herd build, then a program built against the
# staged tree with nothing but pkg-config.
#
#   tests/consumer/install.sh SOURCE_ROOT BUILD_ROOT
#
# The build is already up to date when meson test runs this, so install does not rebuild.
set -euo pipefail

src=$(cd "${1:?usage: install.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
build=$(cd "${2:?usage: install.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herd-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

stage="$tmp/stage"
echo "== meson install --destdir"
meson install -C "$build" --no-rebuild --quiet --destdir "$stage" >"$tmp/install.log" 2>&1 \
    || { cat "$tmp/install.log" >&2; fail "meson install"; }

# Headers and pkg-config file where a user looks for them
for header in herd.hpp options.hpp worker.hpp; do
    found=$(find "$stage" -path "*/include/herd/$header" -print -quit)
    [[ -n $found ]] || fail "include/herd/$header was not installed"
done
# Under meson's libdir, whatever it is here: lib, lib64 (no dpkg-dev), lib/x86_64-linux-gnu
libdir=$(meson introspect "$build" --buildoptions \
    | python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "libdir"))') \
    || fail "cannot read libdir from meson introspect"
prefix_opt=$(meson introspect "$build" --buildoptions \
    | python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
[[ $libdir == /* ]] || libdir="$prefix_opt/$libdir"
pc="$stage$libdir/pkgconfig/herd.pc"
[[ -f $pc ]] || fail "$libdir/pkgconfig/herd.pc was not installed (found: $(find "$stage" -name '*.pc' | tr '\n' ' '))"
echo "installed: ${pc#"$stage"}"
cat "$pc"

# Point the staged .pc at the staged tree (it names the real prefix, e.g. /usr/local)
prefix=$(sed -n 's/^prefix=//p' "$pc")
[[ -n $prefix ]] || fail "herd.pc has no prefix= line"
mkdir -p "$tmp/pkgconfig"
sed "s|^prefix=.*|prefix=$stage$prefix|" "$pc" >"$tmp/pkgconfig/herd.pc"
export PKG_CONFIG_PATH="$tmp/pkgconfig"

echo "== pkg-config --cflags --libs herd"
flags=$(pkg-config --cflags --libs herd) || fail "pkg-config cannot resolve herd (and its Requires)"
echo "$flags"

echo "== build a program with pkg-config"
# shellcheck disable=SC2086  # pkg-config output is a list of words
${CXX:-c++} -std=c++20 -o "$tmp/app" "$src/tests/consumer/project/main.cpp" $flags \
    || fail "compiling and linking against the installed herd"

libdir=$(pkg-config --variable=libdir herd)
[[ -d $libdir ]] || fail "herd.pc's libdir $libdir does not exist in the staged tree"
echo "== app --check / --version"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/app" --check \
    || fail "installed-tree program --check exited $?"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/app" --version \
    || fail "installed-tree program --version exited $?"

echo "install-pkgconfig: OK"
