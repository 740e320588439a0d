#!/usr/bin/env bash
# Installs what building, testing and the main job need on Debian 12 (as root, via apt-get), skipping
# packages already present. --with-peers adds the benchmark/accuracy peers: PyTorch, numpy,
# matplotlib (plots) and OpenBLAS (the GEMM peer of build/gemm_bench). qemu-user runs the Hexagon DSP
# program (qemu-hexagon); protobuf-c and ONNX's schema (libonnx-dev) build the ONNX export.
set -euo pipefail
pkgs=(build-essential cmake clang lld llvm libclang-rt-14-dev zlib1g-dev python3 dataset-fashion-mnist qemu-user
      protobuf-c-compiler libprotobuf-c-dev libonnx-dev pkg-config)
case "${1:-}" in --with-peers|--with-torch) pkgs+=(python3-torch python3-numpy python3-matplotlib libopenblas-dev) ;; esac
# the arm64 cross-build of make test: the cross compiler, and zlib and glibc for arm64 (multiarch)
pkgs+=(gcc-aarch64-linux-gnu)
arm64_pkgs=(zlib1g-dev:arm64 libc6:arm64)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
arm64_missing=()
for p in "${arm64_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || arm64_missing+=("$p")
done
if [ ${#arm64_missing[@]} -gt 0 ] && [ "$(id -u)" -eq 0 ]; then
  # optional: without them make test skips the arm64 stage
  export DEBIAN_FRONTEND=noninteractive
  { dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64; } &&
    apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${arm64_missing[@]}" ||
    echo "setup: the arm64 packages (${arm64_missing[*]}) could not be installed: make test skips the arm64 stage"
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]}; run as root (sudo make run) or install them yourself" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
