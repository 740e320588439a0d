#!/usr/bin/env bash
# The library as a dependency: installs the build into a temporary prefix, moves the prefix
# elsewhere (an install is relocatable), then builds examples/train_lenet5.c against it with
# pkg-config and with CMake's find_package, runs both (a few training steps on a slice of
# Fashion-MNIST), and checks that the installed command finds its profiles and DSP program, and that
# the shared library exports only the public API.
# usage: bash cli_install.sh <mandheling-binary> <source-dir> <build-dir>   (exit 77: skipped)
set -u
SRC=${2:?usage: cli_install.sh <mandheling> <source-dir> <build-dir>} BLD=${3:?}
FMNIST=${MH_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
[ -f "$BLD/libmandheling.so" ] || { echo "SKIP: no shared library in this build (sanitizer or fuzz build)"; exit 77; }
command -v pkg-config >/dev/null || { echo "SKIP: pkg-config not found"; exit 77; }
[ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || { echo "SKIP: $FMNIST not found"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); sed 's/^/     /' "$T/log" 2>/dev/null | tail -8; }
step() { # NAME COMMAND...
  local name=$1; shift
  if "$@" >"$T/log" 2>&1; then ok "$name"; else bad "$name"; fi
}
python3 "$SRC/tests/slice_fmnist.py" "$FMNIST" "$T/data" 512 128 || { echo "FAIL: slicing"; exit 1; }
step "cmake --install into a prefix" cmake --install "$BLD" --prefix "$T/first"
mv "$T/first" "$T/prefix" # relocated: nothing may point into the first place
P=$T/prefix
step "pkg-config: compile and link the example" sh -c \
  "cc -std=c11 '$SRC/examples/train_lenet5.c' \$(PKG_CONFIG_PATH='$P/lib/pkgconfig' pkg-config --cflags --libs mandheling) \
   -Wl,-rpath,'$P/lib' -o '$T/ex_pc'"
step "pkg-config build runs: trains, evaluates, predicts" "$T/ex_pc" "$T/data" 20
grep -q "test accuracy" "$T/log" && grep -q "predicted class" "$T/log" || bad "its output: $(head -3 "$T/log")"
step "CMake: find_package(mandheling) configures and builds the example" sh -c \
  "cmake -S '$SRC/examples' -B '$T/exb' -DCMAKE_PREFIX_PATH='$P' -DCMAKE_BUILD_RPATH='$P/lib' && cmake --build '$T/exb'"
step "CMake build runs" "$T/exb/train_lenet5" "$T/data" 20
step "the installed command finds its profile (relocated)" "$P/bin/mandheling" plan --model lenet5 --device sd865
if "$P/bin/mandheling" info --model lenet5 2>&1 | grep "^dsp:" | grep -q "$P/lib/mandheling/mandheling_dsp.elf\|not found (Debian package"; then
  ok "the installed command uses the installed DSP program"
else bad "the installed command's DSP program: $("$P/bin/mandheling" info --model lenet5 2>&1 | grep '^dsp:')"; fi
nm -D --defined-only "$P/lib/libmandheling.so" | awk '$2 == "T" {print $3}' >"$T/syms"
others=$(grep -v '^mh_' "$T/syms" | head -5)
internal=$(grep -c '^mh__' "$T/syms")
if [ -s "$T/syms" ] && [ -z "$others" ] && [ "$internal" -eq 0 ]; then ok "the shared library exports $(wc -l <"$T/syms") functions, all mh_ and public"
else bad "exports beyond the public API: ${others:-} ($internal mh__ ones)"; fi
readelf -d "$P/lib/libmandheling.so" | grep -q "SONAME.*libmandheling.so.0" && ok "it has a soname" || bad "no soname"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
