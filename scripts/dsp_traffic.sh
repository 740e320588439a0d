#!/usr/bin/env bash
# What one training step sends to the DSP, with subgraph reuse and with --no-reuse, and under the
# planner's placement (--backend auto): messages, bytes each way, preparations, weights copied and
# packed, co-scheduled runs. Counts, not times (the DSP runs under an emulator). Writes
# bench/results/dsp-traffic.{tsv,md} and prints the table.
#   scripts/dsp_traffic.sh [--batch B] [MODEL:PRECISION ...]
#   (default: batch 16; lenet5:niti cnn6-nobn:niti lenet5:int8 cnn6:int8)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MANDHELING:-$root/build/mandheling}
batch=16
if [ "${1:-}" = --batch ]; then batch=$2; shift 2; fi
runs=${*:-lenet5:niti cnn6-nobn:niti lenet5:int8 cnn6:int8}
out=$root/bench/results
mkdir -p "$out"
"$bin" info --model lenet5 | grep -q "^dsp: available" || { echo "no DSP: $("$bin" info --model lenet5 | grep '^dsp:')"; exit 1; }
tsv=$out/dsp-traffic.tsv
printf 'model\tprecision\tmode\tgemms\tmessages\tmib_to\tmib_from\tsubgraph_runs\tcosched\tpreparations\tnodes_checked\tweights_mib\tpacked_mib\teltwise\tsegment_runs\n' >"$tsv"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for r in $runs; do
  m=${r%%:*} p=${r##*:}
  for mode in reuse no-segments no-reuse auto; do
    args=(bench --model "$m" --precision "$p" --batch "$batch" --steps 1 --json "$T/j.json")
    case $mode in
      reuse) args+=(--backend dsp) ;;
      no-segments) args+=(--backend dsp --no-segments) ;;
      no-reuse) args+=(--backend dsp --no-reuse) ;;
      auto) args+=(--backend auto) ;;
    esac
    echo "$m $p $mode ..." >&2
    "$bin" "${args[@]}" >/dev/null
    python3 - "$T/j.json" "$m" "$p" "$mode" >>"$tsv" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
g = lambda k: j.get(k, 0)
mib = lambda k: "%.2f" % (g(k) / 1048576)
print("\t".join(map(str, [sys.argv[2], sys.argv[3], sys.argv[4], g("dsp_gemms"), g("dsp_messages"), mib("dsp_bytes_to"),
      mib("dsp_bytes_from"), g("dsp_subgraph_runs"), g("dsp_cosched_runs"), g("dsp_subgraph_prepares"),
      g("dsp_nodes_checked"), mib("dsp_weight_bytes"), mib("dsp_packed_bytes"), g("dsp_eltwise_ops"),
      g("dsp_segment_runs")])))
PY
  done
done
python3 - "$tsv" "$batch" >"$out/dsp-traffic.md" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print("Per training step at batch %s (`scripts/dsp_traffic.sh`): `dsp` = every pass on the DSP, niti's chains of"
      " convolution, ReLU and max-pool as segments (one message per pass), the rest as subgraphs prepared once;"
      " `no-segments` = every layer its own message (`--no-segments`); `no-reuse` = every subgraph rebuilt before"
      " each run (segments need reuse); `auto` = the sd865 plan's placement.\n" % sys.argv[2])
print("| model | algorithm | mode | GEMMs on DSP | messages | segment runs | MiB to DSP | MiB from DSP | subgraph runs (CPU beside) | preparations (nodes checked) | weights copied MiB | packed MiB | ReLU/pool/add on DSP |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    mode = {"reuse": "dsp", "no-segments": "no-segments", "no-reuse": "no-reuse", "auto": "auto"}[r["mode"]]
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s (%s) | %s (%s) | %s | %s | %s |" % (r["model"], r["precision"], mode,
          r["gemms"], r["messages"], r["segment_runs"], r["mib_to"], r["mib_from"], r["subgraph_runs"], r["cosched"],
          r["preparations"], r["nodes_checked"], r["weights_mib"], r["packed_mib"], r["eltwise"]))
PY
cat "$out/dsp-traffic.md"
