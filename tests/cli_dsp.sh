#!/usr/bin/env bash
# Backends are interchangeable (DESIGN.md contract 2): on a slice of the real Fashion-MNIST, lenet5
# trained in int8 and in niti for 300 steps (3 epochs) with --backend dsp (integer GEMMs on the Hexagon program
# under qemu-hexagon) writes a checkpoint byte-identical to --backend cpu, every layer prepared as a
# DSP subgraph once; niti with --no-reuse (every subgraph rebuilt before each run) gives the same
# checkpoint again. Without an emulator, --backend dsp says why and trains on the CPU, with the same
# checkpoint again.
# usage: bash cli_dsp.sh <mandheling-binary> <source-dir> <build-dir>   (exit 77: skipped)
set -u
BIN=${1:?usage: cli_dsp.sh <mandheling> <source-dir> <build-dir>}
FMNIST=${MH_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { echo "SKIP: python3 not found"; exit 77; }
[ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || { echo "SKIP: $FMNIST not found"; exit 77; }
"$BIN" info --model lenet5 | grep -q "^dsp: available" || { echo "SKIP: $("$BIN" info --model lenet5 | grep '^dsp:')"; exit 77; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$PY" "$2/tests/slice_fmnist.py" "$FMNIST" "$T/data" 800 64 || { echo "FAIL: could not slice $FMNIST"; exit 1; }
failed=0
for precision in int8 niti; do
  common=(train --model lenet5 --data "$T/data" --batch 8 --max-steps 300 --seed 5 --precision $precision)
  start=$SECONDS
  "$BIN" "${common[@]}" --backend cpu --quiet --save "$T/cpu.st" >"$T/cpu.out" 2>&1 || { echo "FAIL $precision cpu run"; cat "$T/cpu.out"; failed=$((failed + 1)); continue; }
  "$BIN" "${common[@]}" --backend dsp --quiet --save "$T/dsp.st" >"$T/dsp.out" 2>&1 || { echo "FAIL $precision dsp run"; cat "$T/dsp.out"; failed=$((failed + 1)); continue; }
  line=$(grep -m1 '^dsp:' "$T/dsp.out")
  if ! cmp -s "$T/cpu.st" "$T/dsp.st"; then
    echo "FAIL $precision: --backend dsp checkpoint differs from --backend cpu"; failed=$((failed + 1))
  elif ! echo "$line" | grep -q ", 0 on the CPU instead$"; then
    echo "FAIL $precision: not every GEMM ran on the DSP: $line"; failed=$((failed + 1))
  elif ! grep -q "subgraphs (reused): [0-9]* runs ([0-9]* with CPU work beside them), 5 preparations" "$T/dsp.out"; then
    echo "FAIL $precision: lenet5's 5 layers were not each prepared once:"; grep '^dsp:' "$T/dsp.out"; failed=$((failed + 1))
  else
    echo "ok   lenet5 $precision: 300 steps on the DSP are bit-identical to the CPU ($((SECONDS - start)) s)"
    grep '^dsp:' "$T/dsp.out" | sed 's/^/     /'
  fi
  if [ $precision = niti ]; then # rebuilding every subgraph before each run changes nothing but the traffic
    "$BIN" "${common[@]}" --backend dsp --no-reuse --quiet --save "$T/noreuse.st" >"$T/noreuse.out" 2>&1 &&
      sub=$(grep 'subgraphs (--no-reuse' "$T/noreuse.out") && runs=$(echo "$sub" | sed -E 's/.*: ([0-9]+) runs \([0-9]+ with CPU work beside them\), ([0-9]+) preparations.*/\1 \2/')
    if cmp -s "$T/cpu.st" "$T/noreuse.st" && [ -n "${runs:-}" ] && [ "${runs% *}" = "${runs#* }" ]; then
      echo "ok   lenet5 niti --no-reuse: the same checkpoint, one preparation per run"
      echo "     $sub"
    else
      echo "FAIL niti --no-reuse:"; sed 's/^/     /' "$T/noreuse.out" | tail -4; failed=$((failed + 1))
    fi
  fi
  if [ $precision = int8 ]; then # no emulator: a clear warning, then the CPU, same result
    if MH_QEMU_HEXAGON=/nonexistent/qemu-hexagon "$BIN" "${common[@]}" --backend dsp --save "$T/nodsp.st" >"$T/nodsp.out" 2>&1 &&
      grep -q "qemu-hexagon not found.*training on the CPU" "$T/nodsp.out" && cmp -s "$T/cpu.st" "$T/nodsp.st"; then
      echo "ok   without qemu-hexagon, the same checkpoint after: $(grep -m1 'qemu-hexagon not found' "$T/nodsp.out")"
    else
      echo "FAIL without qemu-hexagon:"; sed 's/^/     /' "$T/nodsp.out" | head -5; failed=$((failed + 1))
    fi
  fi
done
[ "$failed" -eq 0 ]
