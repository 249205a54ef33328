#!/usr/bin/env bash
# `meson install --destdir` of a configured herd build, then the shipped example
# examples/consumer/pkg-config built against the staged tree with nothing but pkg-config and make:
# only the public headers are installed, herd.pc links libherd statically (no libherd.so is
# installed, the binary loads none), and a file that includes an internal header does not compile.
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
for header in herd.hpp options.hpp option_types.hpp worker.hpp hooks.hpp acceptor.hpp export.hpp; do
    found=$(find "$stage" -path "*/include/herd/$header" -print -quit)
    [[ -n $found ]] || fail "include/herd/$header was not installed"
done
internal=$(find "$stage" -path '*/include/herd/*/*' -print)
[[ -z $internal ]] || fail "internal headers were installed: $internal"
shared=$(find "$stage" -name 'libherd.so*' -print)
[[ -z $shared ]] || fail "a shared libherd was installed: $shared"
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

echo "== make in a copy of examples/consumer/pkg-config"
cp -a "$src/examples/consumer/pkg-config" "$tmp/app"
make -C "$tmp/app" CXXFLAGS=-O0 >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log" >&2; fail "make against the installed herd"; }
app="$tmp/app/hello"
linked=$(ldd "$app")
[[ $linked != *libherd* ]] || fail "the server loads a shared libherd: $linked"
echo "== app --check / --version"
"$app" --check || fail "installed-tree program --check exited $?"
version=$("$app" --version) || fail "installed-tree program --version exited $?"
[[ $version == *1.0.0* ]] || fail "--version does not show the application's 1.0.0: $version"

echo "== an internal header is out of reach"
printf '#include <herd/config/options.hpp>\nint main() {}\n' >"$tmp/internal.cpp"
# shellcheck disable=SC2086  # pkg-config output is a list of words
if ${CXX:-c++} -std=c++20 -fsyntax-only $(pkg-config --cflags herd) "$tmp/internal.cpp" 2>"$tmp/internal.log"; then
    fail "a file including <herd/config/options.hpp> compiled with pkg-config --cflags herd"
fi
grep -q "herd/config/options.hpp: No such file" "$tmp/internal.log" || { cat "$tmp/internal.log" >&2; fail "failed for another reason"; }

echo "install-pkgconfig: OK"
