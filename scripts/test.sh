#!/usr/bin/env bash
# The whole test run: the release build's CTest suite, the same suite under ASan+UBSan, and a short
# libFuzzer run of every parser. Ends with one line "N passed, M failed".
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

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
