#!/usr/bin/env bash
# Runs that leave a record: `train --log` rows (every N steps and at each epoch's end, with the test
# accuracy the summary reports), scripts/plot_log.py rendering one; SIGINT mid-epoch gives exit 130
# and a checkpoint from which --resume ends byte for byte where an uninterrupted run ends;
# --save-every leaves a loadable checkpoint at a multiple of N steps when the process is killed -9.
# usage: bash cli_runlog.sh <mandheling-binary> <source-dir> <build-dir>   (exit 77: skipped)
set -u
BIN=${1:?usage: cli_runlog.sh <mandheling> <source-dir> <build-dir>}
SRC=${2:?}
FMNIST=${MH_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { echo "SKIP: python3 not found"; exit 77; }
[ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || { echo "SKIP: $FMNIST not found"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$PY" "$SRC/tests/slice_fmnist.py" "$FMNIST" "$T/data" 1024 256 || { echo "FAIL: slicing"; exit 1; }
passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }
rows() { [ -f "$1" ] && echo $(($(wc -l <"$1") - 1)) || echo 0; }

# the log: 2 epochs of 32 steps (batch 32), a row every 8 steps and one per epoch's end
"$BIN" train --model lenet5 --data "$T/data" --batch 32 --epochs 2 --quiet --log "$T/log.csv" --log-every 8 \
  --json "$T/sum.json" >/dev/null 2>"$T/err"
cat >"$T/check_log.py" <<'EOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
s = json.load(open(sys.argv[2]))
ends = [r for r in rows if r["epoch_end"] == "1"]
assert len(rows) == 8 + 2 and len(ends) == 2, (len(rows), len(ends))
assert [int(r["step"]) for r in rows if r["epoch_end"] == "0"] == [8, 16, 24, 32, 40, 48, 56, 64]
assert abs(float(ends[-1]["test_accuracy"]) - s["test_accuracy"]) < 1e-6, (ends[-1], s["test_accuracy"])
assert abs(float(ends[-1]["test_loss"]) - s["test_loss"]) < 1e-5
assert all(r["precision"] == "fp32" and r["backend"] == "cpu" for r in rows)
assert float(rows[0]["train_loss"]) > float(ends[-1]["train_loss"])
assert all(r["rescale_calls"] == "0" and r["dsp_gemms"] == "0" for r in rows)  # fp32 on the CPU
print("%d rows; final test accuracy %s" % (len(rows), ends[-1]["test_accuracy"]))
EOF
if "$PY" "$T/check_log.py" "$T/log.csv" "$T/sum.json" >"$T/out" 2>&1; then ok "--log: a row every 8 steps and per epoch, ending at the summary's accuracy ($(cat "$T/out"))"
else bad "--log: $(tail -2 "$T/out")"; fi
if "$PY" -c "import matplotlib" 2>/dev/null; then
  if "$PY" "$SRC/scripts/plot_log.py" "$T/log.csv" -o "$T/log.png" >/dev/null 2>&1 && [ -s "$T/log.png" ] &&
    head -c 8 "$T/log.png" | od -An -tx1 | grep -q "89 50 4e 47"; then ok "plot_log.py draws it (a PNG)"
  else bad "plot_log.py"; fi
else echo "skip plot_log.py: no matplotlib for $PY"; fi

# niti: the rescale counters grow row by row
"$BIN" train --model lenet5 --data "$T/data" --batch 32 --epochs 1 --precision niti --quiet --log "$T/niti.csv" \
  --log-every 8 >/dev/null 2>&1
if "$PY" -c "
import csv, sys
c = [int(r['rescale_calls']) for r in csv.DictReader(open(sys.argv[1]))]
assert len(c) == 5 and c[0] > 0 and c == sorted(c) and c[-2] > c[0], c" "$T/niti.csv" 2>"$T/out"; then ok "--log: niti's rescale counts per row, growing"
else bad "niti's log counters: $(tail -1 "$T/out")"; fi

# SIGINT in the middle of an epoch, then --resume: the same end as an uninterrupted run
common=(--model cnn6 --data "$T/data" --batch 16 --epochs 2 --seed 4 --quiet)
"$BIN" train "${common[@]}" --save "$T/a.st" >/dev/null 2>&1
"$BIN" train "${common[@]}" --save "$T/b.st" --log "$T/b.csv" --log-every 1 >/dev/null 2>"$T/b.err" &
pid=$!
for i in $(seq 1 600); do [ "$(rows "$T/b.csv")" -ge 10 ] && break; sleep 0.05; done
kill -INT $pid
wait $pid
rc=$?
at=$(rows "$T/b.csv")
if [ $rc -eq 130 ] && [ -f "$T/b.st" ] && grep -q "interrupted at step" "$T/b.err"; then ok "SIGINT: exit 130 and a checkpoint ($(grep -o 'interrupted at step [0-9]*' "$T/b.err"))"
else bad "SIGINT: exit $rc, $(cat "$T/b.err")"; fi
"$BIN" train --data "$T/data" --resume "$T/b.st" --save "$T/c.st" --quiet >/dev/null 2>&1
step_of() { "$PY" -c "import json,struct,sys; r=open(sys.argv[1],'rb').read(); n=struct.unpack('<Q',r[:8])[0]; print(json.loads(r[8:8+n])['__metadata__']['step'])" "$1" 2>/dev/null; }
if "$PY" "$SRC/scripts/same_checkpoint.py" "$T/a.st" "$T/c.st" "resumed vs uninterrupted" >"$T/out" 2>&1 &&
  [ "$(step_of "$T/a.st")" = 128 ] && [ "$(step_of "$T/c.st")" = 128 ]; then
  ok "resumed after the interrupt: byte for byte the uninterrupted run's checkpoint"
else bad "the resumed run differs: $(tail -1 "$T/out")"; fi

# --save-every 20, killed -9 past step 45: the checkpoint of step 40 survives and loads
"$BIN" train "${common[@]}" --save "$T/d.st" --save-every 20 --log "$T/d.csv" --log-every 1 >/dev/null 2>&1 &
pid=$!
for i in $(seq 1 600); do [ "$(rows "$T/d.csv")" -ge 45 ] && break; sleep 0.05; done
kill -KILL $pid
wait $pid 2>/dev/null
step=$(step_of "$T/d.st")
if [ -n "$step" ] && [ "$step" -gt 0 ] && [ $((step % 20)) -eq 0 ] && "$BIN" eval --load "$T/d.st" --data "$T/data" >/dev/null 2>&1; then
  ok "--save-every 20 then kill -9: a loadable checkpoint of step $step"
else bad "--save-every: step '${step}'"; fi
ls "$T"/d.st.tmp.* >/dev/null 2>&1 && echo "     (a temporary of an interrupted write remains, as the atomic rename leaves it)"
# flags a resume overrides are named
"$BIN" train --data "$T/data" --resume "$T/c.st" --lr 0.3 --batch 4 --max-steps 129 --quiet >/dev/null 2>"$T/w.err"
if grep -q "ignored: --lr, --batch" "$T/w.err"; then ok "--resume names the flags it ignores"
else bad "--resume's warning: $(cat "$T/w.err")"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
