#!/usr/bin/env bash
# bench/run.sh — nnc against PyTorch on Fashion-MNIST, whole epochs, in one run (issue 9):
# examples/fashion.nn (MLP) and examples/fashion_cnn.nn (CNN), seconds per epoch, images/s,
# GFLOP/s and % of the measured FMA peak, the ratio against PyTorch's best configuration, test
# accuracies, inference at batch 1 and 1000, nnc's compile time and peak memory. Writes its
# section of bench/RESULTS.md; --scaling: the MLP epoch against batch, width and threads. Not a
# test. Options: see `bench/run.sh --help` (bench/speed.py).
#
#   bench/run.sh                 # both models, 3 epochs each side and configuration
#   bench/run.sh --epochs 1 --models fashion --out /tmp/r.md
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ -x /usr/bin/python3 ] || { echo "run.sh: error: /usr/bin/python3 (with Debian's python3-torch) is needed" >&2; exit 1; }
[ -x "$repo/build/nnc" ] || { echo "run.sh: error: build nnc first: cmake -S . -B build -G Ninja && cmake --build build" >&2; exit 1; }
[ -e "$repo/data/mnist/train-images-idx3-ubyte" ] || [ -e "$repo/data/mnist/train-images-idx3-ubyte.gz" ] ||
  "$repo/scripts/get-mnist.sh" "$repo/data/mnist"
# PyTorch's best configuration needs an optimized BLAS: Debian's python3-torch calls whatever
# libblas.so.3 is installed, by default the reference one (bench/README.md, "PyTorch's BLAS").
# Unless the system's is OpenBLAS already, OpenBLAS (OpenMP build) is unpacked into
# build/openblas and given to the PyTorch side alone.
blas_args=()
if ! readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 | grep -q openblas; then
  ob=$repo/build/openblas
  lib=$ob/root/usr/lib/x86_64-linux-gnu/openblas-openmp
  if [ ! -e "$lib/libblas.so.3" ]; then
    mkdir -p "$ob"
    (cd "$ob" && rm -f ./*.deb && apt-get download libopenblas0-openmp >/dev/null && dpkg -x libopenblas0-openmp_*.deb root) ||
      { echo "run.sh: error: cannot unpack OpenBLAS for PyTorch (apt-get download libopenblas0-openmp)" >&2; exit 1; }
  fi
  blas_args=(--torch-ld-library-path "$lib")
fi
exec /usr/bin/python3 "$repo/bench/speed.py" "${blas_args[@]}" "$@"
