#!/usr/bin/env bash
# Training-step speed of this build against an earlier commit of the project, on this machine: the
# base commit is built in a temporary worktree, then both `mandheling bench` binaries run each model and
# algorithm in interleaved rounds (same batch, threads and, with --isa, kernel table for this build).
# Prints per model and algorithm the median step of each over the rounds, its range and the ratio.
#   scripts/bench_base.sh --base COMMIT [--isa NAME] [--batch B] [--threads T] [--rounds R] [MODEL...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MANDHELING:-$root/build/mandheling}
base='' isa=() batch=32 threads=2 rounds=3
while [ $# -gt 0 ]; do
  case $1 in
    --base) base=$2; shift 2 ;;
    --isa) isa=(--isa "$2"); shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) break ;;
  esac
done
[ -n "$base" ] || { echo "usage: $0 --base COMMIT [--isa NAME] [--batch B] [--threads T] [--rounds R] [MODEL...]" >&2; exit 2; }
models=${*:-lenet5 cnn6 cnn6-nobn vgg11 resnet18 mobilenetv2}
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$root" worktree add --detach "$work/src" "$base" >/dev/null 2>&1
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build" -j2 --target mandheling >/dev/null
old=$work/build/mandheling
steps_for() { case $1 in lenet5|cnn6|cnn6-nobn) echo 30 ;; *) echo 12 ;; esac; }
median_of() { sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' | head -1; }
raw=$work/raw.tsv
for r in $(seq "$rounds"); do
  for m in $models; do
    variants=(fp32 int8)
    info=$("$bin" info --model "$m") # (not piped into grep -q: with pipefail its early exit fails the pipe)
    grep -q "niti.*n/a" <<<"$info" || variants+=(niti)
    for v in "${variants[@]}"; do
      args=(bench --model "$m" --batch "$batch" --threads "$threads" --steps "$(steps_for "$m")" --precision "$v")
      a=$("$old" "${args[@]}" | median_of) b=$("$bin" "${args[@]}" "${isa[@]}" | median_of)
      printf '%s\t%s\t%s\t%s\n' "$m" "$v" "$a" "$b" | tee -a "$raw"
    done
  done
done
echo
echo "$("$bin" info --model lenet5 | sed -n 's/^cpu: //p'); base $(git -C "$root" rev-parse --short "$base"), this build ${isa[*]:-(default table)}"
/usr/bin/python3 - "$raw" <<'PY'
import collections, statistics, sys
a, b, order = collections.defaultdict(list), collections.defaultdict(list), []
for line in open(sys.argv[1]):
    m, v, x, y = line.split()
    a[m, v].append(float(x)), b[m, v].append(float(y))
    if (m, v) not in order: order.append((m, v))
print("| model | algorithm | base ms (range) | this build ms (range) | this / base |\n|---|---|---:|---:|---:|")
for k in order:
    ma, mb = statistics.median(a[k]), statistics.median(b[k])
    print(f"| {k[0]} | {k[1]} | {ma:.1f} ({min(a[k]):.1f}-{max(a[k]):.1f}) | {mb:.1f} ({min(b[k]):.1f}-{max(b[k]):.1f}) | {mb / ma:.2f}x |")
PY
