#!/usr/bin/env bash
# `meson install --destdir`, then the shipped example examples/consumer/cmake builds against the
# staged tree with find_package(herd) alone, compiling with the definitions libherd was built
# with and linking libherd statically.
#
#   tests/consumer/cmake.sh SOURCE_ROOT BUILD_ROOT
set -euo pipefail

src=$(cd "${1:?usage: cmake.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
build=$(cd "${2:?usage: cmake.sh SOURCE_ROOT BUILD_ROOT}" && pwd)
command -v cmake >/dev/null || { echo "SKIP: cmake is not installed"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herd-cmake.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

stage="$tmp/stage"
meson install -C "$build" --no-rebuild --quiet --destdir "$stage" >"$tmp/install.log" 2>&1 \
    || { cat "$tmp/install.log" >&2; fail "meson install"; }
config=$(find "$stage" -path '*/cmake/herd/herdConfig.cmake' -print -quit)
[[ -n $config ]] || fail "herdConfig.cmake was not installed"
[[ -f ${config%/*}/herdConfigVersion.cmake ]] || fail "herdConfigVersion.cmake was not installed"
echo "installed: ${config#"$stage"}"

echo "== cmake configure and build"
cmake -G Ninja -S "$src/examples/consumer/cmake" -B "$tmp/build" -DCMAKE_PREFIX_PATH="${config%/*}" \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
    >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log" >&2; fail "cmake configure with find_package(herd)"; }
cmake --build "$tmp/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; fail "building against herd::herd"; }
for definition in BOOST_ASIO_SEPARATE_COMPILATION BOOST_PROCESS_V2_SEPARATE_COMPILATION; do
    grep -q -- "-D$definition" "$tmp/build/compile_commands.json" || fail "the compile command lacks -D$definition"
done

linked=$(ldd "$tmp/build/hello")
[[ $linked != *libherd* ]] || fail "the server loads a shared libherd: $linked"

echo "== hello --check / --version"
"$tmp/build/hello" --check || fail "hello --check exited $?"
"$tmp/build/hello" --version || fail "hello --version exited $?"
echo "cmake-consumer: OK"
