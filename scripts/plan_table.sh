#!/usr/bin/env bash
# The README's sd865 table: `mandheling plan` at batch 32 for the zoo (modelled, not measured), one
# markdown row per model and algorithm, from the calibrated DSP cost model of this tree.
#   scripts/plan_table.sh [--device PROFILE]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MANDHELING:-$root/build/mandheling}
device=sd865
if [ "${1:-}" = --device ]; then device=$2; fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "| model | algorithm | CPU only, fp32 (ms / mJ) | CPU only, this algorithm (ms) | DSP wherever it can (ms) | co-scheduled (ms / mJ) | time vs fp32 | energy vs fp32 | MACs on DSP | hand-offs |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in lenet5:int8 lenet5:niti cnn6:int8 cnn6-nobn:niti vgg11:int8 resnet18:int8 mobilenetv2:int8; do
  "$bin" plan --model "${r%%:*}" --precision "${r##*:}" --device "$device" --batch 32 --json "$T/p.json" >/dev/null
  python3 - "$T/p.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print("| %s | %s | %.2f / %.3f | %.2f | %.2f | %.2f / %.3f | %.2fx | %.2fx | %.0f%% | %d |" % (
    j["model"], j["precision"], j["cpu_fp32_ms"], j["cpu_fp32_mj"], j["cpu_ms"], j["dsp_ms"], j["cosched_ms"],
    j["cosched_mj"], j["cpu_fp32_ms"] / j["cosched_ms"], j["cpu_fp32_mj"] / j["cosched_mj"],
    100 * j["cosched_dsp_macs_share"], j["cosched_handoffs"]))
PY
done
