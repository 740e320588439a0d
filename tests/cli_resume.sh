#!/usr/bin/env bash
# Bit-exact resumption: training 2N steps in one run must give the same checkpoint tensors, bit
# for bit, as training N steps, saving, and resuming to 2N, with N falling in the middle of an
# epoch. On a slice of the real Fashion-MNIST (512 train / 128 test), lenet5 and cnn6 in fp32 and
# lenet5 in int8 and niti (int8 parameters, exponents and the adaptive rescale histories), batch 16:
# 32 steps per epoch, 3 epochs, N = 48 (epoch 2, step 16 of 32); then lenet5 again under each option
# the checkpoint must restore (the step schedule, Nesterov with other hyper-parameters, --augment,
# int8 with both, niti with its own mu schedule and exact rescaling, Adam, AdamW, frozen layers).
# The test accuracy and loss the resumed run reports must equal `mandheling eval` of the checkpoint
# it saved.
# usage: bash cli_resume.sh <mandheling-binary> <source-dir> <build-dir>   (exit 77: skipped)
set -u
BIN=${1:?usage: cli_resume.sh <mandheling> <source-dir> <build-dir>}
FMNIST=${MH_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { echo "SKIP: python3 not found"; exit 77; }
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [ -f "$FMNIST/$f.gz" ] || { echo "SKIP: $FMNIST/$f.gz not found"; exit 77; }
done

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
BATCH=16 EPOCHS=3 N=48 # 512 / 16 = 32 steps per epoch; N = 1.5 epochs, 2N = all 3 epochs

# the first 512 training and 128 test samples, re-headed and gzipped
"$PY" "$2/tests/slice_fmnist.py" "$FMNIST" "$T/data" 512 128 || { echo "FAIL: could not slice $FMNIST"; exit 1; }

# compare.py A B: every tensor of two safetensors files, byte for byte, plus the training position
cat >"$T/compare.py" <<'EOF'
import json, struct, sys
def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}, meta
(a, ma), (b, mb) = load(sys.argv[1]), load(sys.argv[2])
bad = 0
if sorted(a) != sorted(b):
    print("  tensor names differ: only in A %s, only in B %s" % (sorted(set(a) - set(b)), sorted(set(b) - set(a))))
    bad += 1
for name in sorted(set(a) & set(b)):
    if a[name][:2] != b[name][:2]:
        print("  %s: dtype/shape %s vs %s" % (name, a[name][:2], b[name][:2])); bad += 1
    elif a[name][2] != b[name][2]:
        x, y = a[name][2], b[name][2]
        diff = sum(1 for i in range(0, len(x), 4) if x[i:i + 4] != y[i:i + 4])
        print("  %s: %d of %d values differ" % (name, diff, len(x) // 4)); bad += 1
for key in ("step", "epoch", "batch_in_epoch", "model", "precision", "rescale", "mu"):
    if ma.get(key) != mb.get(key):
        print("  metadata %s: %r vs %r" % (key, ma.get(key), mb.get(key))); bad += 1
print("  %d tensors compared, step %s epoch %s: %s" % (len(a), ma.get("step"), ma.get("epoch"),
                                                        "identical" if not bad else "%d differences" % bad))
sys.exit(1 if bad else 0)
EOF

failed=0
run() { # label, args...: runs the binary, reports a failure with its stderr
  local label=$1
  shift
  if ! "$BIN" "$@" >"$T/out" 2>"$T/err" </dev/null; then
    echo "FAIL $label: $BIN $*"
    sed 's/^/     stderr: /' "$T/err" | head -5
    return 1
  fi
}

# same_metric A.json B.json: test_accuracy and test_loss of two JSON summaries are equal
cat >"$T/same_metric.py" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
bad = [k for k in ("test_accuracy", "test_loss") if a.get(k) != b.get(k)]
for k in bad:
    print("  %s: the resumed run reported %r, eval of its checkpoint %r" % (k, a.get(k), b.get(k)))
sys.exit(1 if bad else 0)
EOF

# model:precision:extra options
cases=(lenet5:fp32: cnn6:fp32: lenet5:int8: lenet5:niti:
       "lenet5:fp32:--schedule step --step-size 1 --gamma 0.5"
       "lenet5:fp32:--nesterov --momentum 0.8 --wd 0.001 --lr 0.03"
       "lenet5:fp32:--augment"
       "lenet5:int8:--augment --schedule step --step-size 1"
       "lenet5:niti:--mu 5,3 --rescale exact"
       "lenet5:fp32:--optimizer adamw --lr 0.003 --wd 0.01 --beta2 0.99 --eps 1e-7"
       "lenet5:int8:--optimizer adam --lr 0.002 --schedule constant"
       "lenet5:fp32:--freeze conv1..conv2"
       "lenet5:int8:--train-only fc2..fc3 --optimizer adamw --lr 0.003")
for case in "${cases[@]}"; do
  IFS=: read -r model precision extra <<<"$case"
  read -r -a opts <<<"$extra"
  common=(--data "$T/data" --batch $BATCH --epochs $EPOCHS --seed 3 --precision $precision "${opts[@]}" --quiet)
  label="$model ($precision${extra:+ $extra})"
  start=$SECONDS
  if run "$label: A (0 -> 2N)" train --model $model "${common[@]}" --max-steps $((2 * N)) --save "$T/a.st" &&
    run "$label: B1 (0 -> N)" train --model $model "${common[@]}" --max-steps $N --save "$T/b1.st" &&
    run "$label: B2 (resume N -> 2N)" train --data "$T/data" --resume "$T/b1.st" --max-steps $((2 * N)) \
      --save "$T/b2.st" --json "$T/b2.json" --quiet &&
    run "$label: eval of B2" eval --data "$T/data" --load "$T/b2.st" --json "$T/e2.json"; then
    if "$PY" "$T/compare.py" "$T/a.st" "$T/b2.st" >"$T/cmp" 2>&1 &&
      "$PY" "$T/same_metric.py" "$T/b2.json" "$T/e2.json" >>"$T/cmp" 2>&1; then
      echo "ok   $label: resume at step $N of $((2 * N)) is bit-exact, eval agrees ($((SECONDS - start)) s)"
      cat "$T/cmp"
    else
      echo "FAIL $label: the resumed run differs from the uninterrupted one, or its eval from its report"
      cat "$T/cmp"
      failed=$((failed + 1))
    fi
  else
    failed=$((failed + 1))
  fi
done
[ "$failed" -eq 0 ]
