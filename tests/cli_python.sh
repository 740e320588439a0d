#!/usr/bin/env bash
# The Python package over the shared library (tests/python_api.py), and the notebook-style example
# (python/examples/train_lenet5.py) drawing its curve, with /usr/bin/python3 and numpy.
# usage: bash cli_python.sh <mandheling-binary> <source-dir> <build-dir>   (exit 77: skipped)
set -u
SRC=${2:?usage: cli_python.sh <mandheling> <source-dir> <build-dir>} BLD=${3:?}
FMNIST=${MH_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
PY=/usr/bin/python3
[ -f "$BLD/libmandheling.so" ] || { echo "SKIP: no shared library in this build (sanitizer or fuzz build)"; exit 77; }
"$PY" -c "import numpy" 2>/dev/null || { echo "SKIP: $PY has no numpy (python3-numpy)"; exit 77; }
[ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || { echo "SKIP: $FMNIST not found"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$PY" "$SRC/tests/slice_fmnist.py" "$FMNIST" "$T/data" 512 256 || { echo "FAIL: slicing"; exit 1; }
export MANDHELING_LIB=$BLD/libmandheling.so
"$PY" "$SRC/tests/python_api.py" "$SRC" "$T/data" "$T"
rc=$?
if "$PY" -c "import matplotlib" 2>/dev/null; then
  if "$PY" "$SRC/python/examples/train_lenet5.py" --data "$T/data" --train 512 --epochs 1 --out "$T/curve.png" >"$T/ex" 2>&1 &&
    [ -s "$T/curve.png" ]; then echo "ok   the example trains lenet5 and draws its curve ($(grep accuracy "$T/ex"))"
  else echo "FAIL the example: $(tail -3 "$T/ex")"; rc=1; fi
fi
exit $rc
