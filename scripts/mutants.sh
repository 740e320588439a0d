#!/usr/bin/env bash
# Mutation testing of the test suite: applies each single-line change of meaning in
# scripts/mutants.list to the source tree, rebuilds, runs the suite that should notice it, restores
# the file, and reports which mutants the tests killed. On demand only (not part of CI: ~45 minutes).
#
#   bash scripts/mutants.sh                 every mutant
#   bash scripts/mutants.sh WORD...         only mutants whose file or description contains a WORD
#   bash scripts/mutants.sh --check         only check that every pattern occurs exactly once
#
# Environment: MUTANTS_BUILD (default build-mutants), JOBS (default 2), MUTANTS_LIST.
# Suites: fast = the release CTest suite without the DSP tests; dsp = the DSP tests (skipped where
# the DSP program or qemu-hexagon is missing). A mutant that does not compile is an error of the list.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
list=${MUTANTS_LIST:-$root/scripts/mutants.list}
build=${MUTANTS_BUILD:-$root/build-mutants}
jobs=${JOBS:-2}
check_only=0
filters=()
for a in "$@"; do
  case $a in
    --check) check_only=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) filters+=("$a") ;;
  esac
done

# apply.py FILE FIND REPLACE: replaces the one occurrence of FIND (\n, \t escapes) in FILE.
apply=$(mktemp)
backup=$(mktemp)
cat >"$apply" <<'EOF'
import sys
path, find, repl = sys.argv[1], sys.argv[2], sys.argv[3]
unesc = lambda s: s.replace("\\n", "\n").replace("\\t", "\t")
find, repl = unesc(find), unesc(repl)
text = open(path).read()
n = text.count(find)
if n != 1:
    sys.exit("pattern occurs %d times in %s: %r" % (n, path, find))
if len(sys.argv) > 4:
    sys.exit(0)
open(path, "w").write(text.replace(find, repl))
EOF
current=""
restore() { [ -n "$current" ] && cp "$backup" "$root/$current" && current=""; }
trap 'restore; rm -f "$apply" "$backup"' EXIT
trap 'exit 130' INT TERM

# Parse the list into parallel arrays.
ids=() kinds=() suites=() files=() descs=() finds=() repls=()
kind="" suite="" file="" desc="" find=""
while IFS= read -r line || [ -n "$line" ]; do
  case $line in
    "@ "*|"@= "*)
      kind=${line%% *}
      rest=${line#* }
      suite=${rest%% *}; rest=${rest#* }
      file=${rest%% | *}; desc=${rest#* | } ;;
    "- "*) find=${line#- } ;;
    "+ "*)
      ids+=($(( ${#ids[@]} + 1 ))); kinds+=("$kind"); suites+=("$suite"); files+=("$file"); descs+=("$desc")
      finds+=("$find"); repls+=("${line#+ }") ;;
  esac
done <"$list"
total=${#ids[@]}

selected=()
for i in "${!ids[@]}"; do
  keep=1
  if [ ${#filters[@]} -gt 0 ]; then
    keep=0
    for w in "${filters[@]}"; do [[ "${files[$i]} ${descs[$i]}" == *"$w"* ]] && keep=1; done
  fi
  [ $keep -eq 1 ] && selected+=("$i")
done

# Every pattern must still occur exactly once.
bad=0
for i in "${selected[@]}"; do
  if ! python3 "$apply" "$root/${files[$i]}" "${finds[$i]}" "" --check 2>/tmp/mutants.err.$$; then
    echo "list error, mutant ${ids[$i]} (${files[$i]}: ${descs[$i]}): $(cat /tmp/mutants.err.$$)"
    bad=$((bad + 1))
  fi
done
rm -f /tmp/mutants.err.$$
if [ $check_only -eq 1 ]; then
  echo "${#selected[@]} of $total mutants checked, $bad list errors"
  exit $((bad > 0))
fi
[ $bad -eq 0 ] || { echo "fix the list first"; exit 2; }
if ! git -C "$root" diff --quiet -- src dsp include; then
  echo "src/, dsp/ or include/ has uncommitted changes: commit or stash them first (mutants restore files)"
  exit 2
fi

dsp_ok=1
build_tree() { cmake --build "$build" -j"$jobs" >"$build/mutant-build.log" 2>&1; }
run_suite() { # suite -> 0 pass, 1 fail; the failed tests' names in $failed_tests
  local log="$build/mutant-ctest.log"
  if [ "$1" = dsp ]; then (cd "$build" && timeout 1800 ctest -R dsp --timeout 900 >"$log" 2>&1)
  else (cd "$build" && timeout 900 ctest -j"$jobs" -E dsp --timeout 300 >"$log" 2>&1); fi
  local rc=$?
  failed_tests=$(sed -n 's/^[[:space:]]*[0-9]* - \([a-z_0-9]*\) (.*/\1/p' "$log" | tr '\n' ' ')
  return $((rc != 0))
}

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 2
build_tree || { echo "the unmutated tree does not build (see $build/mutant-build.log)"; exit 2; }
[ -f "$build/mandheling_dsp.elf" ] && command -v qemu-hexagon >/dev/null || dsp_ok=0
echo "baseline: the unmutated suite must pass"
run_suite fast || { echo "baseline fast suite fails: $failed_tests"; exit 2; }
if [ $dsp_ok -eq 1 ] && printf '%s\n' "${selected[@]}" | while read -r i; do [ "${suites[$i]}" = dsp ] && exit 0; done; then
  run_suite dsp || { echo "baseline DSP suite fails: $failed_tests"; exit 2; }
fi

killed=0 survived=0 equivalent=0 skipped=0 n=0
survivors=()
tsv="$build/mutants.tsv"
printf 'id\tresult\tseconds\tsuite\tfile\tdescription\tfailed tests\n' >"$tsv"
for i in "${selected[@]}"; do
  n=$((n + 1))
  id=${ids[$i]} f=${files[$i]} s=${suites[$i]}
  label=$(printf '[%2d/%d] #%-3s %-44s %s' "$n" "${#selected[@]}" "$id" "$f" "${descs[$i]}")
  if [ "$s" = dsp ] && [ $dsp_ok -eq 0 ]; then
    echo "$label: skipped (no DSP here)"; skipped=$((skipped + 1)); continue
  fi
  t0=$SECONDS
  cp "$root/$f" "$backup"
  current=$f
  python3 "$apply" "$root/$f" "${finds[$i]}" "${repls[$i]}" || { restore; exit 2; }
  if ! build_tree; then
    restore
    echo "$label: DOES NOT COMPILE (an error of the list; see $build/mutant-build.log)"
    exit 2
  fi
  if run_suite "$s"; then result=survived; else result=killed; fi
  restore
  dt=$((SECONDS - t0))
  if [ "${kinds[$i]}" = "@=" ]; then
    equivalent=$((equivalent + 1))
    echo "$label: $result (equivalent, not scored) ${dt}s"
  elif [ $result = killed ]; then
    killed=$((killed + 1))
    echo "$label: killed by ${failed_tests% } (${dt}s)"
  else
    survived=$((survived + 1))
    survivors+=("#$id $f: ${descs[$i]}")
    echo "$label: SURVIVED (${dt}s)"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$result" "$dt" "$s" "$f" "${descs[$i]}" "$failed_tests" >>"$tsv"
done
build_tree >/dev/null 2>&1 # leave the build matching the restored tree

scored=$((killed + survived))
echo
echo "mutants: $killed of $scored killed ($(( scored ? 100 * killed / scored : 0 ))%), $survived survived," \
  "$equivalent equivalent (not scored), $skipped skipped; details in $tsv"
for s in "${survivors[@]}"; do echo "  survivor: $s"; done
