#!/usr/bin/env bash
# The DSP at work, for `make run`: lenet5 trained integer-only (niti) for 100 steps with every
# pass that can run on the Hexagon program there (emulated by qemu-hexagon), then the same 100
# steps on the CPU; the two checkpoints must be byte-identical. Fashion-MNIST's first 3,200
# training and 1,000 test images (emulation is slow). Without a DSP it says why.
#   scripts/dsp_demo.sh [BUILD_DIR]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
bin=$build/mandheling
dsp=$("$bin" info --model lenet5 | grep '^dsp:')
if ! echo "$dsp" | grep -q '^dsp: available'; then
  echo "$dsp"
  echo "(no DSP run: the training above is the main job)"
  exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fmnist=${MH_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
py=/usr/bin/python3
[ -x "$py" ] || py=python3
"$py" "$root/tests/slice_fmnist.py" "$fmnist" "$T/data" 3200 1000 || exit 1
common=(train --model lenet5 --data "$T/data" --precision niti --batch 32 --max-steps 100 --seed 1)
echo "== niti on the Hexagon DSP program (qemu-hexagon: exact results, the times are the emulator's) =="
"$bin" "${common[@]}" --backend dsp --save "$T/dsp.st" || exit 1
echo "== the same 100 steps on the CPU =="
"$bin" "${common[@]}" --backend cpu --quiet --save "$T/cpu.st" | grep '^model' || exit 1
if cmp -s "$T/dsp.st" "$T/cpu.st"; then
  echo "DSP and CPU checkpoints are byte-identical."
else
  echo "DSP and CPU checkpoints differ: this is a bug."
  exit 1
fi
