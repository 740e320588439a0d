#!/usr/bin/env bash
# Drives `mandheling` like a user with broken inputs: corrupt IDX files, incomplete data
# directories, bad checkpoints, a bad model file, unknown options and bad option values.
# Every case must exit non-zero without a signal (code < 128), name the offending file or flag
# on stderr, and leave an existing --save target byte for byte unchanged.
# usage: bash cli_errors.sh <mandheling-binary> <source-dir> <build-dir>   (exit 77: skipped)
set -u
BIN=${1:?usage: cli_errors.sh <mandheling> <source-dir> <build-dir>}
SRC=${2:-.}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { echo "SKIP: python3 not found"; exit 77; }
command -v sha256sum >/dev/null || { echo "SKIP: sha256sum not found"; exit 77; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failed=0
passed=0

fail() { # name, reason
  echo "FAIL $1: $2"
  echo "     command: ${CMD[*]}"
  sed 's/^/     stderr: /' "$T/err" | head -5
  failed=$((failed + 1))
}

# expect_fail NAME NEEDLE ARGS... : the command must fail cleanly, say NEEDLE on stderr and leave
# $T/keep.st (the --save target of the train cases) unchanged.
expect_fail() {
  local name=$1 needle=$2
  shift 2
  CMD=("$BIN" "$@")
  local before after rc
  before=$(sha256sum <"$T/keep.st")
  "${CMD[@]}" >"$T/out" 2>"$T/err" </dev/null
  rc=$?
  after=$(sha256sum <"$T/keep.st")
  if [ "$rc" -eq 0 ]; then fail "$name" "exit code 0 (expected an error)"
  elif [ "$rc" -ge 128 ]; then fail "$name" "killed by a signal (exit code $rc)"
  elif grep -qE "AddressSanitizer|LeakSanitizer|runtime error:|Segmentation fault|Assertion" "$T/err"; then
    fail "$name" "sanitizer or assertion report on stderr"
  elif ! grep -qF -- "$needle" "$T/err"; then fail "$name" "stderr does not name '$needle'"
  elif [ "$before" != "$after" ]; then fail "$name" "the existing --save target was modified"
  else
    echo "ok   $name (exit $rc)"
    passed=$((passed + 1))
  fi
}

expect_ok() { # NAME NEEDLE ARGS... : exit 0 and NEEDLE on stdout
  local name=$1 needle=$2
  shift 2
  CMD=("$BIN" "$@")
  "${CMD[@]}" >"$T/out" 2>"$T/err" </dev/null
  local rc=$?
  if [ "$rc" -ne 0 ]; then fail "$name" "exit code $rc (expected 0)"
  elif ! grep -qF -- "$needle" "$T/out"; then fail "$name" "stdout lacks '$needle'"
  else
    echo "ok   $name"
    passed=$((passed + 1))
  fi
}

# ---- a tiny valid data set (random pixels, 256 train / 64 test) and corrupt copies ----------
"$PY" - "$T" <<'EOF' || { echo "FAIL: could not create the test data"; exit 1; }
import gzip, os, random, shutil, struct, sys
root = sys.argv[1]
good = os.path.join(root, "good")
os.makedirs(good)
rnd = random.Random(7)
def write(path, raw, gz=True):
    with (gzip.open(path, "wb", compresslevel=1) if gz else open(path, "wb")) as f:
        f.write(raw)
def images(n): return struct.pack(">IIII", 0x803, n, 28, 28) + bytes(rnd.randrange(256) for _ in range(n * 784))
def labels(n): return struct.pack(">II", 0x801, n) + bytes(rnd.randrange(10) for _ in range(n))
files = {"train-images-idx3-ubyte.gz": images(256), "train-labels-idx1-ubyte.gz": labels(256),
         "t10k-images-idx3-ubyte.gz": images(64), "t10k-labels-idx1-ubyte.gz": labels(64)}
for name, raw in files.items():
    write(os.path.join(good, name), raw)
def variant(case, name, raw=None, gz=True, remove=False, cut=None):
    d = os.path.join(root, case)
    shutil.copytree(good, d)
    p = os.path.join(d, name)
    if remove:
        os.remove(p)
    elif cut is not None:
        b = open(p, "rb").read()
        open(p, "wb").write(b[:cut(len(b))])
    else:
        if not gz:
            os.remove(p)
            p = p[:-3]
        write(p, raw, gz)
variant("trunc-gz", "train-images-idx3-ubyte.gz", cut=lambda n: n // 2)
variant("trunc-idx", "t10k-images-idx3-ubyte.gz", raw=files["t10k-images-idx3-ubyte.gz"][:-100])
bad = bytearray(files["t10k-images-idx3-ubyte.gz"]); bad[3] = 0x04
variant("bad-magic", "t10k-images-idx3-ubyte.gz", raw=bytes(bad))
bad = bytearray(files["train-labels-idx1-ubyte.gz"]); bad[0] = 0x12
variant("bad-magic-plain", "train-labels-idx1-ubyte.gz", raw=bytes(bad), gz=False)
bad = bytearray(files["train-labels-idx1-ubyte.gz"]); bad[8 + 17] = 10
variant("label-10", "train-labels-idx1-ubyte.gz", raw=bytes(bad))
bad = bytearray(files["t10k-labels-idx1-ubyte.gz"]); bad[8 + 17] = 10
variant("test-label-10", "t10k-labels-idx1-ubyte.gz", raw=bytes(bad))
variant("test-trunc-gz", "t10k-images-idx3-ubyte.gz", cut=lambda n: n // 2)
lab = files["t10k-labels-idx1-ubyte.gz"]
variant("count-mismatch", "t10k-labels-idx1-ubyte.gz", raw=struct.pack(">II", 0x801, 61) + lab[8:8 + 61])
variant("missing", "t10k-labels-idx1-ubyte.gz", remove=True)
variant("not-gzip", "train-labels-idx1-ubyte.gz", cut=lambda n: 0)
os.makedirs(os.path.join(root, "empty"))
EOF

# a real checkpoint of lenet5 (2 steps) and the --save target every failing run must leave alone
if ! "$BIN" train --model lenet5 --data "$T/good" --max-steps 2 --batch 32 --quiet --save "$T/lenet5.st" \
  >"$T/out" 2>"$T/err"; then
  CMD=("$BIN" train --model lenet5 --data "$T/good" --max-steps 2 --save "$T/lenet5.st")
  fail "setup" "training lenet5 for 2 steps failed"
  exit 1
fi
cp "$T/lenet5.st" "$T/keep.st"
size=$(wc -c <"$T/lenet5.st")
head -c 100 "$T/lenet5.st" >"$T/trunc-header.st"
head -c $((size / 2)) "$T/lenet5.st" >"$T/trunc-half.st"
head -c $((size - 1)) "$T/lenet5.st" >"$T/trunc-last.st"
: >"$T/zero.st"
printf 'input 1x28x28\nconv c1 out=6 k=5 pad=2\nrelu\nmaxpool k=2\nconv c2 out=16 k=5 kernal=1\nflatten\nlinear out=10\n' \
  >"$T/syntax.mh"
printf 'input 1x28x28\nflatten\nlinear fc out=10 in=flatten1,input\n' >"$T/inputs.mh"
printf 'input 1x28x28\nflatten\nlinear out=10\n' >"$T/mlp.mh"
KEEP=(--save "$T/keep.st")
TR=(train --quiet --max-steps 2 --batch 32)

# ---- data files -----------------------------------------------------------------------------
expect_fail "truncated gzip IDX" "trunc-gz/train-images-idx3-ubyte.gz" "${TR[@]}" --data "$T/trunc-gz" "${KEEP[@]}"
expect_fail "truncated IDX body" "trunc-idx/t10k-images-idx3-ubyte.gz" "${TR[@]}" --data "$T/trunc-idx" "${KEEP[@]}"
expect_fail "IDX bad magic (gz)" "bad-magic/t10k-images-idx3-ubyte.gz" "${TR[@]}" --data "$T/bad-magic" "${KEEP[@]}"
expect_fail "IDX bad magic (plain)" "bad-magic-plain/train-labels-idx1-ubyte" "${TR[@]}" --data "$T/bad-magic-plain" "${KEEP[@]}"
expect_fail "label of 10" "label-10/train-labels-idx1-ubyte.gz" "${TR[@]}" --data "$T/label-10" "${KEEP[@]}"
expect_fail "label count mismatch" "count-mismatch/t10k-labels-idx1-ubyte.gz" "${TR[@]}" --data "$T/count-mismatch" "${KEEP[@]}"
expect_fail "empty gz file" "not-gzip/train-labels-idx1-ubyte.gz" "${TR[@]}" --data "$T/not-gzip" "${KEEP[@]}"
expect_fail "data dir missing a file" "t10k-labels-idx1-ubyte" "${TR[@]}" --data "$T/missing" "${KEEP[@]}"
expect_fail "data dir without a data set" "$T/empty" "${TR[@]}" --data "$T/empty" "${KEEP[@]}"
expect_fail "data dir does not exist" "$T/nonexistent" "${TR[@]}" --data "$T/nonexistent" "${KEEP[@]}"
expect_fail "data dir is a file" "$T/mlp.mh" "${TR[@]}" --data "$T/mlp.mh" "${KEEP[@]}"
# eval reads the test split only: the checkpoint carries the training split's normalisation
expect_fail "eval: label of 10" "test-label-10/t10k-labels-idx1-ubyte.gz" eval --load "$T/lenet5.st" --data "$T/test-label-10"
expect_fail "eval: truncated gzip IDX" "test-trunc-gz/t10k-images-idx3-ubyte.gz" eval --load "$T/lenet5.st" --data "$T/test-trunc-gz"

# ---- checkpoints ----------------------------------------------------------------------------
for c in trunc-header trunc-half trunc-last zero; do
  expect_fail "resume: checkpoint $c" "$T/$c.st" "${TR[@]}" --data "$T/good" --resume "$T/$c.st" --max-steps 4 "${KEEP[@]}"
  expect_fail "eval: checkpoint $c" "$T/$c.st" eval --load "$T/$c.st" --data "$T/good"
done
expect_fail "resume: checkpoint does not exist" "$T/nope.st" "${TR[@]}" --data "$T/good" --resume "$T/nope.st" "${KEEP[@]}"
expect_fail "resume: not a checkpoint" "$T/syntax.mh" "${TR[@]}" --data "$T/good" --resume "$T/syntax.mh" "${KEEP[@]}"
expect_fail "resume: checkpoint of another model" "$T/lenet5.st" "${TR[@]}" --model cnn6 --data "$T/good" \
  --resume "$T/lenet5.st" --max-steps 4 "${KEEP[@]}"
expect_fail "resume: checkpoint of another model file" "$T/lenet5.st" "${TR[@]}" --model "$T/mlp.mh" --data "$T/good" \
  --resume "$T/lenet5.st" --max-steps 4 "${KEEP[@]}"
expect_fail "eval: checkpoint of another model" "$T/lenet5.st" eval --model cnn6-nobn --load "$T/lenet5.st" --data "$T/good"
expect_fail "eval: --load missing" "--load" eval --data "$T/good"

# ---- model files ----------------------------------------------------------------------------
expect_fail "model file syntax error" "syntax.mh:5: conv: unknown key 'kernal'" "${TR[@]}" --model "$T/syntax.mh" \
  --data "$T/good" "${KEEP[@]}"
expect_fail "model file bad in=" "inputs.mh:3: linear: too many inputs" "${TR[@]}" --model "$T/inputs.mh" --data "$T/good" "${KEEP[@]}"
expect_fail "info: model file syntax error" "syntax.mh:5:" info --model "$T/syntax.mh"
expect_fail "eval: model file syntax error" "syntax.mh:5:" eval --model "$T/syntax.mh" --load "$T/lenet5.st" --data "$T/good"
expect_fail "model neither zoo nor file" "$T/nope.mh" "${TR[@]}" --model "$T/nope.mh" --data "$T/good" "${KEEP[@]}"
expect_fail "model file is a directory" "$T/empty" info --model "$T/empty"
expect_fail "model shape does not fit the data" "$T/good" "${TR[@]}" --model resnet18 --data "$T/good" "${KEEP[@]}"

# ---- options --------------------------------------------------------------------------------
expect_fail "train: unknown option" "--bogus" "${TR[@]}" --data "$T/good" --bogus "${KEEP[@]}"
expect_fail "eval: unknown option" "--bogus" eval --load "$T/lenet5.st" --data "$T/good" --bogus
expect_fail "info: unknown option" "--bogus" info --model lenet5 --bogus
expect_fail "bench: unknown option" "--bogus" bench --model lenet5 --bogus
expect_fail "--isa unknown" "--isa sse9" "${TR[@]}" --data "$T/good" --isa sse9 "${KEEP[@]}"
expect_fail "bench --isa unknown" "--isa sse9" bench --model lenet5 --isa sse9
MH_ISA=sse9 expect_fail "MH_ISA unknown" "MH_ISA sse9" "${TR[@]}" --data "$T/good" "${KEEP[@]}"
# a kernel table this CPU does not support is refused by name (mandheling info marks them "no")
missing=$("$BIN" info --model lenet5 2>/dev/null | awk '/^kernel tables/ {on = 1; next} on && $2 == "no" {print $1}')
for isa in $missing; do
  expect_fail "--isa $isa (not supported by this CPU)" "lacks it" "${TR[@]}" --data "$T/good" --isa "$isa" "${KEEP[@]}"
done
[ -n "$missing" ] || echo "note: this CPU supports every kernel table; the refusal of an unsupported one is not exercised here"
expect_fail "unknown command" "frobnicate" frobnicate
expect_fail "--epochs abc" "--epochs" "${TR[@]}" --data "$T/good" --epochs abc "${KEEP[@]}"
expect_fail "--epochs 3x (trailing characters)" "--epochs" "${TR[@]}" --data "$T/good" --epochs 3x "${KEEP[@]}"
expect_fail "--seed 7q (trailing characters)" "--seed" "${TR[@]}" --data "$T/good" --seed 7q "${KEEP[@]}"
expect_fail "--lr x" "--lr" "${TR[@]}" --data "$T/good" --lr x "${KEEP[@]}"
expect_fail "--lr 0.1x (trailing characters)" "--lr" "${TR[@]}" --data "$T/good" --lr 0.1x "${KEEP[@]}"
expect_fail "--lr nan" "--lr" "${TR[@]}" --data "$T/good" --lr nan "${KEEP[@]}"
expect_fail "--schedule bogus" "--schedule" "${TR[@]}" --data "$T/good" --schedule bogus "${KEEP[@]}"
expect_fail "--batch 0" "--batch" "${TR[@]}" --data "$T/good" --batch 0 "${KEEP[@]}"
expect_fail "--batch too large for int" "--batch" "${TR[@]}" --data "$T/good" --batch 99999999999 "${KEEP[@]}"
expect_fail "--epochs 0" "--epochs" "${TR[@]}" --data "$T/good" --epochs 0 "${KEEP[@]}"
expect_fail "--threads 0" "--threads" "${TR[@]}" --data "$T/good" --threads 0 "${KEEP[@]}"
expect_fail "--momentum 1.5" "--momentum" "${TR[@]}" --data "$T/good" --momentum 1.5 "${KEEP[@]}"
expect_fail "plan --profile (the device profile is --device everywhere)" "--profile" plan --model lenet5 --profile sd865
expect_fail "--gamma 0" "--gamma" "${TR[@]}" --data "$T/good" --gamma 0 "${KEEP[@]}"
expect_fail "--optimizer rmsprop" "--optimizer" "${TR[@]}" --data "$T/good" --optimizer rmsprop "${KEEP[@]}"
expect_fail "--optimizer adam under niti" "--optimizer" "${TR[@]}" --data "$T/good" --precision niti --optimizer adam "${KEEP[@]}"
expect_fail "--beta1 1" "--betas" "${TR[@]}" --data "$T/good" --optimizer adam --beta1 1 "${KEEP[@]}"
expect_fail "--beta2 x" "--beta2" "${TR[@]}" --data "$T/good" --optimizer adam --beta2 x "${KEEP[@]}"
expect_fail "--eps 0" "--eps" "${TR[@]}" --data "$T/good" --optimizer adamw --eps 0 "${KEEP[@]}"
expect_fail "--nesterov with adam" "--nesterov" "${TR[@]}" --data "$T/good" --optimizer adam --nesterov "${KEEP[@]}"
expect_fail "--seed -1" "--seed" "${TR[@]}" --data "$T/good" --seed -1 "${KEEP[@]}"
expect_fail "--max-steps -5" "--max-steps" train --quiet --data "$T/good" --max-steps -5 "${KEEP[@]}"
expect_fail "--precision int3" "--precision" "${TR[@]}" --data "$T/good" --precision int3 "${KEEP[@]}"
expect_fail "niti on a batch-norm model" "batchnorm" "${TR[@]}" --data "$T/good" --model cnn6 --precision niti "${KEEP[@]}"
expect_fail "--rescale bogus" "--rescale" "${TR[@]}" --data "$T/good" --precision niti --rescale bogus "${KEEP[@]}"
expect_fail "--mu 9" "--mu" "${TR[@]}" --data "$T/good" --precision niti --mu 9 "${KEEP[@]}"
expect_fail "--mu 4,x" "--mu" "${TR[@]}" --data "$T/good" --precision niti --mu 4,x "${KEEP[@]}"
expect_fail "--backend gpu" "--backend" "${TR[@]}" --data "$T/good" --precision int8 --backend gpu "${KEEP[@]}"
expect_fail "--device missing profile" "$T/none.profile" "${TR[@]}" --data "$T/good" --precision int8 --backend auto --device "$T/none.profile" "${KEEP[@]}"
expect_fail "flag with a value" "--quiet" "${TR[@]}" --data "$T/good" --quiet=1 "${KEEP[@]}"
expect_fail "option without its value" "--save" "${TR[@]}" --data "$T/good" --save
expect_fail "resume: --epochs 0" "--epochs" "${TR[@]}" --data "$T/good" --resume "$T/lenet5.st" --epochs 0 "${KEEP[@]}"
expect_fail "eval: --batch x" "--batch" eval --load "$T/lenet5.st" --data "$T/good" --batch x
expect_fail "info: --model missing" "--model" info
expect_fail "info: --batch 0" "--batch" info --model lenet5 --batch 0
expect_fail "bench: --steps 0" "--steps" bench --model lenet5 --steps 0
expect_fail "no command" "usage" 

# ---- help -----------------------------------------------------------------------------------
expect_ok "mandheling --help" "usage" --help
# paths of about 4,000 characters (PATH_MAX is 4,096) in every place a path goes: the JSON summaries
# hold them in full, and files are written next to them
L="$T"
while [ ${#L} -lt 3900 ]; do L="$L/$(printf 'p%.0s' $(seq 1 200))"; done
mkdir -p "$L" && cp -r "$T/good" "$L/data" && cp "$T/mlp.mh" "$L/model.mh"
cp "$SRC/profiles/sd865.profile" "$L/x.profile"
expect_ok "4,000-character paths: train --model, --data, --device, --save, --json" "checkpoint written" \
  train --quiet --max-steps 2 --batch 32 --model "$L/model.mh" --data "$L/data" --device "$L/x.profile" \
  --save "$L/m.st" --json "$L/train.json"
if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['data']==sys.argv[2] and d['model']==sys.argv[3]" \
  "$L/train.json" "$L/data" "$L/model.mh" 2>/dev/null; then echo "ok   the JSON summary holds them whole"; passed=$((passed + 1))
else fail "the JSON summary holds them whole" "$(head -c 200 "$L/train.json" 2>&1)"; fi
expect_ok "4,000-character paths: eval --json, plan --device --json" "test accuracy" eval --load "$L/m.st" --data "$L/data" --json "$L/eval.json"
expect_ok "4,000-character paths: plan --device --json" "predicted step" plan --model "$L/model.mh" --device "$L/x.profile" --json "$L/plan.json"
expect_ok "4,000-character paths: predict --out" "predictions" predict --load "$L/m.st" --data "$L/data" --out "$L/p.csv"
mkdir -p "$T/test-only" && cp "$T"/good/t10k-* "$T/test-only/"
expect_ok "eval: a data directory with no training split" "test accuracy" eval --load "$T/lenet5.st" --data "$T/test-only"
for c in train eval info bench; do
  expect_ok "$c --help" "usage: mandheling $c" "$c" --help
done

# ---- known engine bug (expected failure until fixed) ----------------------------------------
# `train --step-size -1` is accepted and saved, but loading such a checkpoint insists on
# step_size in [0, 100000], so the run can never be resumed. Either fix turns this into "ok".
CMD=("$BIN" train --quiet --data "$T/good" --schedule step --step-size -1 --max-steps 1 --save "$T/ss.st")
if ! "${CMD[@]}" >"$T/out" 2>"$T/err" </dev/null; then
  echo "ok   --step-size -1 is refused"
  passed=$((passed + 1))
else
  CMD=("$BIN" train --quiet --data "$T/good" --resume "$T/ss.st" --max-steps 2)
  if "${CMD[@]}" >"$T/out" 2>"$T/err" </dev/null; then
    echo "ok   --step-size -1 checkpoint resumes"
    passed=$((passed + 1))
  else
    echo "XFAIL --step-size -1: accepted by train, its checkpoint refused by --resume (known engine bug):"
    sed 's/^/     stderr: /' "$T/err" | head -2
  fi
fi

echo "cli_errors: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
