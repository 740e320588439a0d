#!/usr/bin/env bash
# The whole test run: the release build's CTest suite, the same suite under ASan+UBSan, a short
# libFuzzer run of every parser, and the arm64 cross-build's unit tests under qemu-aarch64 with its
# checkpoints compared to x86's. Ends with one line "N passed, M failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${JOBS:-2}
fuzz_seconds=${FUZZ_SECONDS:-10}
passed=0 failed=0

count_ctest() { # parses "N% tests passed, F tests failed out of T"
  local log=$1 line
  line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1)
  if [ -z "$line" ]; then failed=$((failed + 1)); echo "no CTest summary in $log"; return; fi
  local f t
  f=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
  t=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
  passed=$((passed + t - f)); failed=$((failed + f))
}

stage() { echo; echo "=== $*"; }

stage "release build and tests"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
  cmake --build "$root/build" -j"$jobs" >/dev/null || { echo "release build failed"; failed=$((failed + 1)); }
(cd "$root/build" && ctest --output-on-failure -j"$jobs" 2>&1) | tee "$root/build/ctest.log"
count_ctest "$root/build/ctest.log"

stage "ASan+UBSan build and tests"
cmake -S "$root" -B "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug -DMH_SANITIZE=ON -DCMAKE_C_FLAGS="-O1" >/dev/null &&
  cmake --build "$root/build-asan" -j"$jobs" >/dev/null || { echo "sanitizer build failed"; failed=$((failed + 1)); }
(cd "$root/build-asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j"$jobs" 2>&1) | tee "$root/build-asan/ctest.log"
count_ctest "$root/build-asan/ctest.log"

stage "fuzzing every parser for ${fuzz_seconds}s each"
if command -v clang >/dev/null; then
  CC=clang cmake -S "$root" -B "$root/build-fuzz" -DCMAKE_BUILD_TYPE=Debug -DMH_FUZZ=ON >/dev/null &&
    cmake --build "$root/build-fuzz" -j"$jobs" >/dev/null || { echo "fuzz build failed"; failed=$((failed + 1)); }
  for f in "$root"/build-fuzz/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus="$root/build-fuzz/corpus-$name"
    mkdir -p "$corpus"
    seeds="$root/fuzz/seeds/${name#fuzz_}"
    if "$f" -max_total_time="$fuzz_seconds" -print_final_stats=0 "$corpus" $( [ -d "$seeds" ] && echo "$seeds" ) \
        >"$root/build-fuzz/$name.log" 2>&1; then
      echo "$name: ok ($(grep -Eo '#[0-9]+' "$root/build-fuzz/$name.log" | tail -1 | tr -d '#') runs)"
      passed=$((passed + 1))
    else
      echo "$name: FAILED"; tail -30 "$root/build-fuzz/$name.log"; failed=$((failed + 1))
    fi
  done
else
  echo "clang not found: fuzzing skipped"
fi

stage "arm64 cross-build: unit tests under qemu-aarch64, checkpoints against x86"
if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null &&
  [ -e /usr/lib/aarch64-linux-gnu/libz.so ] && [ -e /lib/ld-linux-aarch64.so.1 ]; then
  cmake -S "$root" -B "$root/build-arm64" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DMH_DSP=OFF >/dev/null &&
    cmake --build "$root/build-arm64" -j"$jobs" >/dev/null || { echo "arm64 build failed"; failed=$((failed + 1)); }
  (cd "$root/build-arm64" && ctest --output-on-failure -j"$jobs" 2>&1) | tee "$root/build-arm64/ctest.log"
  count_ctest "$root/build-arm64/ctest.log"
  # the portable kernels give the x86 tables' integer results: int8 and niti checkpoints byte-identical
  data="$root/build-arm64/fmnist-slice"
  rm -rf "$data" && python3 "$root/tests/slice_fmnist.py" /usr/share/datasets/fashion-mnist "$data" 256 64 >/dev/null 2>&1
  for p in int8 niti; do
    "$root/build/mandheling" train --model lenet5 --data "$data" --epochs 1 --batch 32 --precision $p --quiet \
      --save "$root/build-arm64/x86-$p.st" >/dev/null 2>&1
    qemu-aarch64 -L / "$root/build-arm64/mandheling" train --model lenet5 --data "$data" --epochs 1 --batch 32 \
      --precision $p --quiet --save "$root/build-arm64/arm64-$p.st" >/dev/null 2>&1
    if python3 "$root/scripts/same_checkpoint.py" "$root/build-arm64/x86-$p.st" "$root/build-arm64/arm64-$p.st" "lenet5 $p, 8 steps"; then
      passed=$((passed + 1))
    else failed=$((failed + 1)); fi
  done
else
  echo "no arm64 cross toolchain (gcc-aarch64-linux-gnu, zlib1g-dev:arm64, qemu-user): skipped"
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
